// Seed inputs for snapshot_fuzz: valid snapshot files (the first byte
// selects the target's variants: 0 = as is, 2 = checksums recomputed, 1 =
// frames only, after the target's own valid header).
#include <string>
#include <vector>

#include "storage/snapshot_file.h"

std::vector<std::string> fuzz_seed_corpus() {
  using namespace qkv::storage;
  std::vector<std::string> out;
  for (int variant = 0; variant < 4; variant++) {
    MemFileSystem fs;
    (void)fs.create_dirs("/s");
    qkv::raftpb::SnapshotMetadata m;
    m.set_group(3);
    m.set_index(10);
    m.set_term(2);
    m.mutable_conf_state()->add_voters(1);
    if (variant == 3) {
      m.mutable_conf_state()->add_voters(2);
      m.mutable_conf_state()->add_voters_outgoing(1);
      m.mutable_conf_state()->add_learners(7);
    }
    SnapshotWriterOptions o;
    o.block_bytes = 32u << variant;
    auto w = SnapshotWriter::create(&fs, "/s/f", m, o);
    const int records = variant == 0 ? 0 : 4 + variant * 6;
    for (int i = 0; i < records; i++) {
      std::string key = "k" + std::to_string(100 + i);
      if (variant == 2 && i % 3 == 0) key += std::string("\0\xff", 2);
      (void)(*w)->add(key,
                      std::string(static_cast<size_t>(i % 9), static_cast<char>('a' + variant)));
    }
    (void)(*w)->finish();
    std::string file = *fs.read_file("/s/f");
    out.push_back(std::string(1, '\0') + file);
    out.push_back(std::string(1, '\2') + file);
    // The target's header is this file's (same metadata) when variant < 3.
    if (variant < 3) {
      const size_t header = kSnapshotHeaderFixedBytes + m.conf_state().ByteSizeLong() + 4;
      out.push_back(std::string(1, '\1') + file.substr(header));
      out.push_back(std::string(1, '\3') + file.substr(header));
    }
  }
  return out;
}
