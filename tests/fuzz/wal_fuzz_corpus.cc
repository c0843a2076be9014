// Seed inputs for wal_fuzz: valid WAL images (with the first byte selecting
// "prepend a valid header", as the target expects).
#include <string>
#include <vector>

#include "storage/wal.h"

std::vector<std::string> fuzz_seed_corpus() {
  using namespace qkv::storage;
  std::vector<std::string> out;
  for (int variant = 0; variant < 4; variant++) {
    MemFileSystem fs;
    WalOptions o;
    o.preallocate = false;
    WalRecovery rec;
    auto w = Wal::open(&fs, "/w", o, &rec);
    for (uint64_t i = 1; i <= static_cast<uint64_t>(3 + variant * 3); i++) {
      WalBatch b;
      qkv::raftpb::Entry e;
      e.set_index(i);
      e.set_term(1 + i / 4);
      e.set_data(std::string(i * 3, static_cast<char>('a' + variant)));
      b.add_entry(1 + (i % 2), e);
      if (i % 3 == 0) {
        qkv::raftpb::HardState hs;
        hs.set_term(e.term());
        hs.set_commit(i - 1);
        b.add_hard_state(1, hs);
      }
      if (variant == 3 && i == 6) {
        qkv::raftpb::SnapshotMetadata m;
        m.set_index(2);
        m.set_term(1);
        m.mutable_conf_state()->add_voters(1);
        b.add_compact(2, m);
      }
      (void)(*w)->write(b);
    }
    std::string image = *fs.read_file("/w/0000000000000001.wal");
    out.push_back(std::string(1, '\1') + image.substr(kSegmentHeaderBytes));
  }
  return out;
}
