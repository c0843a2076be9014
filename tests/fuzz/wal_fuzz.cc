// Fuzz target for WAL recovery: arbitrary bytes as a segment file must never
// crash the reader, and every record it yields must be one that really is in
// the input with a valid checksum.
#include <cstdint>
#include <cstring>
#include <string>

#include "storage/wal.h"

namespace {

using qkv::storage::MemFileSystem;
using qkv::storage::Wal;
using qkv::storage::WalBatch;
using qkv::storage::WalOptions;
using qkv::storage::WalRecovery;

// The segment header for sequence 1 (see docs/ARCHITECTURE.md).
std::string header() {
  MemFileSystem fs;
  (void)fs.create_dirs("/h");
  WalRecovery rec;
  WalOptions o;
  o.preallocate = false;
  auto w = Wal::open(&fs, "/h", o, &rec);
  return fs.read_file("/h/0000000000000001.wal")->substr(0, qkv::storage::kSegmentHeaderBytes);
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "wal_fuzz: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string kHeader = header();
  if (size == 0) return 0;
  std::string image;
  // Half the inputs get a valid header, so the fuzzer reaches the records.
  if (data[0] & 1) image = kHeader;
  image.append(reinterpret_cast<const char*>(data + 1), size - 1);
  for (bool repair : {false, true}) {
    MemFileSystem fs;
    (void)fs.create_dirs("/wal");
    fs.TEST_write_raw("/wal/0000000000000001.wal", image);
    WalOptions opts;
    opts.preallocate = false;
    opts.repair = repair;
    opts.record_bytes_max = 1 << 20;
    WalRecovery rec;
    auto wal = Wal::open(&fs, "/wal", opts, &rec);
    if (!wal.is_ok()) continue;
    for (const auto& [group, g] : rec.groups) {
      for (const auto& e : g.entries) {
        WalBatch b;
        b.add_entry(group, e);
        // Re-encoding gives the record's exact bytes with a valid checksum;
        // they must be in the input.
        std::string enc;
        MemFileSystem tmp;
        (void)tmp.create_dirs("/t");
        WalRecovery r2;
        auto w2 = Wal::open(&tmp, "/t", opts, &r2);
        check(w2.is_ok() && (*w2)->append(b).is_ok(), "re-encoding failed");
        enc = tmp.read_file("/t/0000000000000001.wal")->substr(qkv::storage::kSegmentHeaderBytes);
        check(contains(image, enc), "recovered an entry that is not in the input");
      }
    }
    // A recovered WAL must accept appends.
    WalBatch b;
    qkv::raftpb::Entry e;
    e.set_index(1);
    e.set_term(1);
    b.add_snapshot(99, qkv::raftpb::SnapshotMetadata());
    b.add_entry(99, e);
    check((*wal)->write(b).is_ok(), "recovered WAL refuses appends");
  }
  return 0;
}
