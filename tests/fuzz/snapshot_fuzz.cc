// Fuzz target for the snapshot reader: arbitrary bytes as a snapshot file
// must never crash it, every record it yields must lie inside a block whose
// checksum really matches (checked here independently of the reader), and a
// file it accepts to the end must be whole by the prefix scan too.
//
// The first input byte selects variants so the fuzzer gets past checksums:
//   bit 0: prepend a valid header (the rest of the input is the frames)
//   bit 1: recompute every checksum and the trailer's counts before reading
//          (reaches the record parser and the key-order checks)
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "storage/crc32c.h"
#include "storage/snapshot_file.h"

namespace {

using namespace qkv::storage;

uint32_t get_u32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
void set_u32(char* p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = static_cast<char>(v >> (8 * i));
}
void set_u64(char* p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = static_cast<char>(v >> (8 * i));
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "snapshot_fuzz: %s\n", what);
    std::abort();
  }
}

std::string valid_header() {
  MemFileSystem fs;
  (void)fs.create_dirs("/h");
  qkv::raftpb::SnapshotMetadata m;
  m.set_group(3);
  m.set_index(10);
  m.set_term(2);
  m.mutable_conf_state()->add_voters(1);
  auto w = SnapshotWriter::create(&fs, "/h/s", m, {});
  (void)(*w)->finish();
  std::string f = *fs.read_file("/h/s");
  return f.substr(0, f.size() - kSnapshotFrameHeaderBytes - kSnapshotTrailerBodyBytes);
}

// Makes every checksum (and the trailer's counts) match what precedes it,
// as far as the framing can be followed.
void fix_checksums(std::string& s) {
  if (s.size() < kSnapshotHeaderFixedBytes + 4) return;
  uint64_t conf = get_u32(s.data() + 36);
  if (conf > kSnapshotConfBytesMax || s.size() < kSnapshotHeaderFixedBytes + conf + 4) return;
  uint64_t off = kSnapshotHeaderFixedBytes + conf;
  set_u32(s.data() + off, crc32c(s.data(), off));
  off += 4;
  uint64_t records = 0, blocks = 0;
  while (s.size() - off >= kSnapshotFrameHeaderBytes) {
    char* p = s.data() + off;
    uint64_t len = get_u32(p + 1);
    if (len > s.size() - off - kSnapshotFrameHeaderBytes) return;
    char* body = p + kSnapshotFrameHeaderBytes;
    if (static_cast<uint8_t>(p[0]) == kSnapshotTrailerType && len == kSnapshotTrailerBodyBytes) {
      set_u64(body, records);
      set_u64(body + 8, blocks);
      set_u32(body + 16, crc32c(s.data(), off));
    } else if (len >= 4) {
      records += get_u32(body);
      blocks++;
    }
    set_u32(p + 5, crc32c_extend(crc32c(p, 5), body, len));
    off += kSnapshotFrameHeaderBytes + len;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string kHeader = valid_header();
  if (size == 0) return 0;
  std::string image;
  if (data[0] & 1) image = kHeader;
  image.append(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 2) fix_checksums(image);

  bool complete = false;
  const uint64_t prefix = snapshot_valid_prefix(image, &complete);
  check(prefix <= image.size(), "valid prefix longer than the input");

  auto r = SnapshotReader::open_bytes(image, "fuzz");
  if (!r.is_ok()) {
    check(r.code() == qkv::Code::kCorruption, "open failed with a code other than kCorruption");
    return 0;
  }
  const char* base = image.data();
  uint64_t n = 0;
  for (;;) {
    std::string_view k, v;
    auto more = (*r)->next(&k, &v);
    if (!more.is_ok()) {
      check(more.code() == qkv::Code::kCorruption,
            "read failed with a code other than kCorruption");
      break;
    }
    if (!*more) {
      // Accepted to the end: the prefix scan must agree that it is whole.
      check(complete && prefix == image.size(), "reader accepted a file the prefix scan did not");
      check((*r)->records() == n, "record count disagrees");
      break;
    }
    n++;
    // The record's block, checked independently: its checksum matches and
    // the key and value lie inside its body.
    const uint64_t off = (*r)->block_offset();
    check(off + kSnapshotFrameHeaderBytes <= image.size(), "block offset out of range");
    const char* p = base + off;
    check(static_cast<uint8_t>(p[0]) == kSnapshotBlockType, "record from a non-block frame");
    const uint64_t len = get_u32(p + 1);
    check(len <= image.size() - off - kSnapshotFrameHeaderBytes, "block runs past the input");
    const char* body = p + kSnapshotFrameHeaderBytes;
    check(get_u32(p + 5) == crc32c_extend(crc32c(p, 5), body, len),
          "record yielded from a block with a bad checksum");
    check(k.data() >= body && k.data() + k.size() <= body + len, "key outside its block");
    check(v.data() >= body && v.data() + v.size() <= body + len, "value outside its block");
    check(off < prefix, "record from a block beyond the valid prefix");
  }
  return 0;
}
