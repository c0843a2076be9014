#include "storage/snapshot_file.h"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "storage/coding.h"
#include "storage/crc32c.h"

namespace qkv::storage {

namespace {


std::string hex32(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "%08" PRIx32, v);
  return b;
}

std::string encode_header(const raftpb::SnapshotMetadata& meta) {
  std::string conf = meta.conf_state().SerializeAsString();
  QKV_CHECK_LE(conf.size(), kSnapshotConfBytesMax) << "ConfState too large for a snapshot header";
  std::string h(kSnapshotMagic, sizeof kSnapshotMagic);
  put_u32(h, kSnapshotVersion);
  put_u64(h, meta.group());
  put_u64(h, meta.index());
  put_u64(h, meta.term());
  put_u32(h, static_cast<uint32_t>(conf.size()));
  h += conf;
  put_u32(h, crc32c(h));
  return h;
}

// A frame's header: type, length and the crc32c of type, length and body.
std::string frame_header(uint8_t type, std::string_view body) {
  std::string h(1, static_cast<char>(type));
  put_u32(h, static_cast<uint32_t>(body.size()));
  uint32_t crc = crc32c_extend(crc32c(h), body.data(), body.size());
  put_u32(h, crc);
  return h;
}

struct Frame {
  uint8_t type = 0;
  uint64_t offset = 0;
  std::string_view body;
  uint64_t end = 0;
};

// Parses and checksums the frame at `off`. On failure, *err_off and *err say
// where and what.
bool parse_frame(std::string_view file, uint64_t off, Frame* f, uint64_t* err_off,
                 std::string* err) {
  *err_off = off;
  const uint64_t left = file.size() - off;
  if (left < kSnapshotFrameHeaderBytes) {
    *err = "truncated frame header: expected " + std::to_string(kSnapshotFrameHeaderBytes) +
           " bytes, found " + std::to_string(left);
    return false;
  }
  const char* p = file.data() + off;
  const uint8_t type = static_cast<uint8_t>(p[0]);
  const uint32_t len = get_u32(p + 1);
  if (type == kSnapshotBlockType) {
    if (len > kSnapshotBlockBytesMax) {
      *err = "block length " + std::to_string(len) + " exceeds the format's limit " +
             std::to_string(kSnapshotBlockBytesMax);
      return false;
    }
  } else if (type == kSnapshotTrailerType) {
    if (len != kSnapshotTrailerBodyBytes) {
      *err = "trailer length: expected " + std::to_string(kSnapshotTrailerBodyBytes) + ", found " +
             std::to_string(len);
      return false;
    }
  } else {
    char b[96];
    std::snprintf(b, sizeof b, "unknown frame type 0x%02x (expected 'B' block or 'T' trailer)",
                  type);
    *err = b;
    return false;
  }
  if (left - kSnapshotFrameHeaderBytes < len) {
    *err = std::string(type == kSnapshotBlockType ? "block" : "trailer") + " truncated: expected " +
           std::to_string(len) + " body bytes, found " +
           std::to_string(left - kSnapshotFrameHeaderBytes);
    return false;
  }
  const uint32_t want = get_u32(p + 5);
  const uint32_t got = crc32c_extend(crc32c(p, 5), p + kSnapshotFrameHeaderBytes, len);
  if (want != got) {
    *err = std::string(type == kSnapshotBlockType ? "block" : "trailer") +
           " checksum mismatch: expected crc32c " + hex32(want) + ", computed " + hex32(got);
    return false;
  }
  f->type = type;
  f->offset = off;
  f->body = std::string_view(p + kSnapshotFrameHeaderBytes, len);
  f->end = off + kSnapshotFrameHeaderBytes + len;
  return true;
}

// Parses the header. Returns its length, or 0 with *err_off and *err set.
uint64_t parse_header(std::string_view file, raftpb::SnapshotMetadata* meta, uint64_t* err_off,
                      std::string* err) {
  *err_off = 0;
  if (file.size() < kSnapshotHeaderFixedBytes + 4) {
    *err = "truncated header: expected at least " + std::to_string(kSnapshotHeaderFixedBytes + 4) +
           " bytes, found " + std::to_string(file.size());
    return 0;
  }
  const char* p = file.data();
  if (std::memcmp(p, kSnapshotMagic, sizeof kSnapshotMagic) != 0) {
    std::string found;
    for (size_t i = 0; i < sizeof kSnapshotMagic; i++) {
      char b[4];
      std::snprintf(b, sizeof b, "%02x", static_cast<uint8_t>(p[i]));
      found += b;
    }
    *err = "bad magic: expected 514b56534e415000 (\"QKVSNAP\\0\"), found " + found;
    return 0;
  }
  const uint32_t version = get_u32(p + 8);
  if (version != kSnapshotVersion) {
    *err_off = 8;
    *err = "unsupported version: expected " + std::to_string(kSnapshotVersion) + ", found " +
           std::to_string(version);
    return 0;
  }
  const uint32_t conf_len = get_u32(p + 36);
  if (conf_len > kSnapshotConfBytesMax) {
    *err_off = 36;
    *err = "ConfState length " + std::to_string(conf_len) + " exceeds the limit " +
           std::to_string(kSnapshotConfBytesMax);
    return 0;
  }
  const uint64_t len = kSnapshotHeaderFixedBytes + conf_len + 4;
  if (file.size() < len) {
    *err = "truncated header: expected " + std::to_string(len) + " bytes, found " +
           std::to_string(file.size());
    return 0;
  }
  const uint32_t want = get_u32(p + len - 4);
  const uint32_t got = crc32c(p, len - 4);
  if (want != got) {
    *err_off = len - 4;
    *err = "header checksum mismatch: expected crc32c " + hex32(want) + ", computed " + hex32(got);
    return 0;
  }
  meta->Clear();
  meta->set_group(get_u64(p + 12));
  meta->set_index(get_u64(p + 20));
  meta->set_term(get_u64(p + 28));
  if (!meta->mutable_conf_state()->ParseFromArray(p + kSnapshotHeaderFixedBytes,
                                                  static_cast<int>(conf_len))) {
    *err_off = kSnapshotHeaderFixedBytes;
    *err = "unparsable ConfState in the header";
    return 0;
  }
  return len;
}

}  // namespace

// Where a reader gets bytes: a whole file in memory, or ranged reads of a
// file through FileSystem (so a snapshot never has to fit in memory).
class ByteSource {
 public:
  explicit ByteSource(std::string_view bytes) : bytes_(bytes), size_(bytes.size()) {}
  ByteSource(FileSystem* fs, std::string path, uint64_t size)
      : fs_(fs), path_(std::move(path)), size_(size) {}
  uint64_t size() const { return size_; }
  // Bytes [off, off + n), cut at the end of the file. In ranged mode the
  // view stays valid until the next call.
  Result<std::string_view> get(uint64_t off, uint64_t n) {
    if (off >= size_) return std::string_view();
    n = std::min(n, size_ - off);
    if (fs_ == nullptr) return bytes_.substr(off, n);
    auto r = fs_->read_range(path_, off, n);
    if (!r.is_ok()) return r.status();
    buf_ = std::move(r).value();
    if (buf_.size() != n) {
      return Status(Code::kIoError, "read " + path_ + ": expected " + std::to_string(n) +
                                        " bytes at offset " + std::to_string(off) + ", got " +
                                        std::to_string(buf_.size()) + " (file changed?)");
    }
    return std::string_view(buf_);
  }
  // The bytes parse_frame() needs for the frame at `off` (its header and
  // the body its length announces, cut at the end of the file).
  Result<std::string_view> frame(uint64_t off) {
    if (fs_ == nullptr) return bytes_.substr(std::min<uint64_t>(off, size_));
    auto h = get(off, kSnapshotFrameHeaderBytes);
    if (!h.is_ok() || h->size() < kSnapshotFrameHeaderBytes) return h;
    const uint64_t len = std::min<uint64_t>(get_u32(h->data() + 1), kSnapshotBlockBytesMax + 1);
    return get(off, kSnapshotFrameHeaderBytes + len);
  }
  // The bytes parse_header() needs.
  Result<std::string_view> header() {
    if (fs_ == nullptr) return bytes_;
    auto h = get(0, kSnapshotHeaderFixedBytes + 4);
    if (!h.is_ok() || h->size() < kSnapshotHeaderFixedBytes + 4) return h;
    const uint64_t conf_len = std::min<uint64_t>(get_u32(h->data() + 36), kSnapshotConfBytesMax + 1);
    return get(0, kSnapshotHeaderFixedBytes + conf_len + 4);
  }

 private:
  std::string_view bytes_;
  FileSystem* fs_ = nullptr;
  std::string path_;
  uint64_t size_;
  std::string buf_;
};

namespace {

// Parses the frame at `off` of `src`; offsets in *f and *err_off are the file's.
bool parse_frame_at(ByteSource& src, uint64_t off, Frame* f, uint64_t* err_off, std::string* err,
                    Status* io) {
  auto win = src.frame(off);
  if (!win.is_ok()) {
    *io = win.status();
    return false;
  }
  if (!parse_frame(*win, 0, f, err_off, err)) {
    *err_off += off;
    return false;
  }
  f->offset += off;
  f->end += off;
  return true;
}

uint64_t valid_prefix(ByteSource& src, bool* complete, Status* io) {
  *complete = false;
  raftpb::SnapshotMetadata meta;
  uint64_t err_off = 0;
  std::string err;
  auto h = src.header();
  if (!h.is_ok()) {
    *io = h.status();
    return 0;
  }
  uint64_t off = parse_header(*h, &meta, &err_off, &err);
  if (off == 0) return 0;
  Frame f;
  while (off < src.size() && parse_frame_at(src, off, &f, &err_off, &err, io)) {
    off = f.end;
    if (f.type == kSnapshotTrailerType) {
      *complete = true;
      break;
    }
  }
  return off;
}

}  // namespace

// ---------------------------------------------------------------------------
// Progress

NowMsFn steady_clock_ms() {
  return [] {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
  };
}

ProgressMeter::ProgressMeter(NowMsFn now_ms, uint64_t bytes_total, uint64_t bytes_done_at_start)
    : now_ms_(std::move(now_ms)),
      start_ms_(now_ms_()),
      total_(bytes_total),
      base_(bytes_done_at_start),
      done_(bytes_done_at_start) {}

TransferProgress ProgressMeter::progress() const {
  TransferProgress p;
  p.bytes_done = done_;
  p.bytes_total = total_;
  const uint64_t now = now_ms_();
  p.elapsed_ms = now > start_ms_ ? now - start_ms_ : 0;
  const uint64_t moved = done_ > base_ ? done_ - base_ : 0;
  if (p.elapsed_ms > 0) p.rate_bytes_per_s = static_cast<double>(moved) * 1000.0 / p.elapsed_ms;
  if (total_ > 0 && done_ >= total_) {
    p.eta_s = 0;
  } else if (total_ > 0 && p.rate_bytes_per_s > 0) {
    p.eta_s = static_cast<double>(total_ - done_) / p.rate_bytes_per_s;
  }
  return p;
}

// ---------------------------------------------------------------------------
// SnapshotWriter

SnapshotWriter::SnapshotWriter(FileSystem* fs, std::string path, SnapshotWriterOptions options)
    : fs_(fs), path_(std::move(path)), tmp_path_(path_ + ".tmp"), opts_(std::move(options)) {}

SnapshotWriter::~SnapshotWriter() {
  if (!finished_) {
    if (file_) (void)file_->close();
    (void)fs_->remove_file(tmp_path_);
  }
}

Result<std::unique_ptr<SnapshotWriter>> SnapshotWriter::create(
    FileSystem* fs, const std::string& path, const raftpb::SnapshotMetadata& meta,
    const SnapshotWriterOptions& options) {
  QKV_CHECK(options.block_bytes > 0);
  std::unique_ptr<SnapshotWriter> w(new SnapshotWriter(fs, path, options));
  w->meta_ = meta;
  auto f = fs->create(w->tmp_path_);
  if (!f.is_ok()) return f.status();
  w->file_ = std::move(f).value();
  if (Status s = w->append(encode_header(meta)); !s.is_ok()) return s;
  w->block_.assign(4, '\0');
  return w;
}

Status SnapshotWriter::append(std::string_view bytes) {
  if (Status s = file_->append(bytes); !s.is_ok()) {
    failed_ = s;
    return s;
  }
  file_crc_ = crc32c_extend(file_crc_, bytes.data(), bytes.size());
  written_ += bytes.size();
  return Status::ok();
}

Status SnapshotWriter::flush_block() {
  if (block_records_ == 0) return Status::ok();
  set_u32(block_.data(), block_records_);
  std::string frame = frame_header(kSnapshotBlockType, block_);
  frame += block_;
  if (Status s = append(frame); !s.is_ok()) return s;
  blocks_++;
  block_.assign(4, '\0');
  block_records_ = 0;
  return Status::ok();
}

Status SnapshotWriter::add(std::string_view key, std::string_view value) {
  QKV_CHECK(!finished_) << "add() after finish()";
  if (!failed_.is_ok()) return failed_;
  QKV_CHECK(records_ == 0 || key > std::string_view(last_key_))
      << "snapshot keys must be strictly increasing";
  const uint64_t rec = 8 + key.size() + value.size();
  if (rec + 4 > kSnapshotBlockBytesMax) {
    return Status(Code::kInvalidArgument,
                  "record of " + std::to_string(rec) + " bytes does not fit in a snapshot block");
  }
  if (block_records_ > 0 && block_.size() + rec > kSnapshotBlockBytesMax) {
    if (Status s = flush_block(); !s.is_ok()) return s;
  }
  put_u32(block_, static_cast<uint32_t>(key.size()));
  put_u32(block_, static_cast<uint32_t>(value.size()));
  block_.append(key);
  block_.append(value);
  block_records_++;
  records_++;
  last_key_.assign(key);
  if (block_.size() >= opts_.block_bytes) return flush_block();
  return Status::ok();
}

Result<SnapshotFileInfo> SnapshotWriter::finish() {
  QKV_CHECK(!finished_) << "finish() twice";
  if (!failed_.is_ok()) return failed_;
  if (Status s = flush_block(); !s.is_ok()) return s;
  const uint32_t crc_before_trailer = file_crc_;
  std::string body;
  put_u64(body, records_);
  put_u64(body, blocks_);
  put_u32(body, crc_before_trailer);
  std::string frame = frame_header(kSnapshotTrailerType, body);
  frame += body;
  if (Status s = append(frame); !s.is_ok()) return s;
  if (opts_.sync) {
    if (Status s = file_->sync(); !s.is_ok()) return failed_ = s;
  }
  if (Status s = file_->close(); !s.is_ok()) return failed_ = s;
  if (Status s = fs_->rename(tmp_path_, path_); !s.is_ok()) return failed_ = s;
  finished_ = true;
  if (opts_.sync) {
    if (Status s = fs_->sync_dir(dir_name(path_)); !s.is_ok()) return s;
  }
  SnapshotFileInfo info;
  info.meta = meta_;
  info.bytes = written_;
  info.records = records_;
  info.blocks = blocks_;
  info.file_crc = crc_before_trailer;
  return info;
}

Result<SnapshotFileInfo> write_snapshot_file(
    FileSystem* fs, const std::string& path, GroupSnapshot& snap,
    const SnapshotWriterOptions& options,
    const std::function<void(const TransferProgress&)>& progress) {
  return write_snapshot_file(fs, path, snap.meta(), snap, snap.approximate_bytes(), options,
                             progress);
}

Result<SnapshotFileInfo> write_snapshot_file(
    FileSystem* fs, const std::string& path, const raftpb::SnapshotMetadata& meta,
    RecordSource& records, uint64_t approximate_bytes, const SnapshotWriterOptions& options,
    const std::function<void(const TransferProgress&)>& progress,
    const std::atomic<bool>* cancel) {
  auto w = SnapshotWriter::create(fs, path, meta, options);
  if (!w.is_ok()) return w.status();
  ProgressMeter meter(options.now_ms, approximate_bytes, 0);
  uint64_t reported = (*w)->bytes_written();
  for (;;) {
    std::string_view key, value;
    Result<bool> more = records.next(&key, &value);
    if (!more.is_ok()) return more.status();
    if (!*more) break;
    if (Status s = (*w)->add(key, value); !s.is_ok()) return s;
    if ((*w)->bytes_written() != reported) {  // a block was written
      reported = (*w)->bytes_written();
      if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
        return Status(Code::kUnavailable, "snapshot file " + path + ": cancelled");
      }
      if (progress) {
        meter.set_done(reported);
        progress(meter.progress());
      }
    }
  }
  auto info = (*w)->finish();
  if (info.is_ok() && progress) {
    meter.set_total(info->bytes);
    meter.set_done(info->bytes);
    progress(meter.progress());
  }
  return info;
}

// ---------------------------------------------------------------------------
// SnapshotReader

Status SnapshotReader::corrupt(uint64_t offset, const std::string& what) {
  error_ = Status(Code::kCorruption,
                  "snapshot: " + name_ + " at offset " + std::to_string(offset) + ": " + what);
  return error_;
}

Result<std::unique_ptr<SnapshotReader>> SnapshotReader::open(FileSystem* fs,
                                                             const std::string& path) {
  auto size = fs->file_size(path);
  if (!size.is_ok()) return size.status();
  std::unique_ptr<SnapshotReader> r(new SnapshotReader(path));
  r->src_ = std::make_unique<ByteSource>(fs, path, *size);
  if (Status s = r->parse_header(); !s.is_ok()) return s;
  return r;
}

Result<std::unique_ptr<SnapshotReader>> SnapshotReader::open_bytes(std::string_view bytes,
                                                                   std::string name) {
  std::unique_ptr<SnapshotReader> r(new SnapshotReader(std::move(name)));
  r->src_ = std::make_unique<ByteSource>(bytes);
  if (Status s = r->parse_header(); !s.is_ok()) return s;
  return r;
}

SnapshotReader::SnapshotReader(std::string name) : name_(std::move(name)) {}
SnapshotReader::~SnapshotReader() = default;

Status SnapshotReader::parse_header() {
  uint64_t err_off = 0;
  std::string err;
  auto h = src_->header();
  if (!h.is_ok()) return error_ = h.status();
  uint64_t len = storage::parse_header(*h, &meta_, &err_off, &err);
  if (len == 0) return corrupt(err_off, err);
  off_ = len;
  crc_ = crc32c(h->data(), len);
  return Status::ok();
}

// Loads the next frame: a block is validated whole before any of its
// records is returned; the trailer ends the file.
Status SnapshotReader::load_frame() {
  if (off_ == src_->size()) {
    return corrupt(off_, "missing trailer: the file ends after " + std::to_string(blocks_) +
                             " blocks (truncated?)");
  }
  Frame f;
  uint64_t err_off = 0;
  std::string err;
  Status io;
  if (!parse_frame_at(*src_, off_, &f, &err_off, &err, &io)) {
    if (!io.is_ok()) return error_ = io;
    return corrupt(err_off, err);
  }
  const char* body = f.body.data();
  const uint64_t body_off = f.offset + kSnapshotFrameHeaderBytes;
  if (f.type == kSnapshotTrailerType) {
    const uint64_t records = get_u64(body), blocks = get_u64(body + 8);
    const uint32_t file_crc = get_u32(body + 16);
    if (records != records_) {
      return corrupt(body_off, "trailer record count: expected " + std::to_string(records) +
                                   " (stored), found " + std::to_string(records_));
    }
    if (blocks != blocks_) {
      return corrupt(body_off + 8, "trailer block count: expected " + std::to_string(blocks) +
                                       " (stored), found " + std::to_string(blocks_));
    }
    if (file_crc != crc_) {
      return corrupt(body_off + 16, "file checksum mismatch: expected crc32c " + hex32(file_crc) +
                                        ", computed " + hex32(crc_));
    }
    if (f.end != src_->size()) {
      return corrupt(f.end,
                     std::to_string(src_->size() - f.end) + " unexpected bytes after the trailer");
    }
    info_.meta = meta_;
    info_.bytes = src_->size();
    info_.records = records_;
    info_.blocks = blocks_;
    info_.file_crc = file_crc;
    done_ = true;
    return Status::ok();
  }
  // A block: check every record's framing and the key order first.
  const uint64_t n = f.body.size();
  if (n < 4)
    return corrupt(body_off, "block of " + std::to_string(n) + " bytes has no record count");
  const uint32_t count = get_u32(body);
  if (count == 0) return corrupt(body_off, "block with no records");
  uint64_t pos = 4;
  std::string_view prev = last_key_;
  bool have_prev = records_ > 0;
  for (uint32_t i = 0; i < count; i++) {
    if (n - pos < 8) {
      return corrupt(body_off + pos,
                     "record " + std::to_string(i) + " of " + std::to_string(count) +
                         ": truncated lengths: expected 8 bytes, found " + std::to_string(n - pos));
    }
    const uint64_t klen = get_u32(body + pos), vlen = get_u32(body + pos + 4);
    if (n - pos - 8 < klen + vlen) {
      return corrupt(body_off + pos,
                     "record " + std::to_string(i) + " of " + std::to_string(count) +
                         ": expected " + std::to_string(klen + vlen) +
                         " key and value bytes, found " + std::to_string(n - pos - 8));
    }
    std::string_view key(body + pos + 8, klen);
    if (have_prev && key <= prev) {
      return corrupt(body_off + pos, "record " + std::to_string(i) +
                                         ": key not above the previous key (keys must be "
                                         "strictly increasing)");
    }
    prev = key;
    have_prev = true;
    pos += 8 + klen + vlen;
  }
  if (pos != n) {
    return corrupt(body_off + pos, std::to_string(n - pos) + " bytes after the block's " +
                                       std::to_string(count) + " records");
  }
  last_key_.assign(prev);
  block_ = f.body.substr(4);
  block_left_ = count;
  block_offset_ = f.offset;
  blocks_++;
  crc_ = crc32c_extend(crc_, f.body.data() - kSnapshotFrameHeaderBytes, f.end - f.offset);
  off_ = f.end;
  return Status::ok();
}

Result<bool> SnapshotReader::next(std::string_view* key, std::string_view* value) {
  if (!error_.is_ok()) return error_;
  while (block_left_ == 0) {
    if (done_) return false;
    if (Status s = load_frame(); !s.is_ok()) return s;
  }
  // Framing was checked by load_frame().
  const uint32_t klen = get_u32(block_.data()), vlen = get_u32(block_.data() + 4);
  *key = block_.substr(8, klen);
  *value = block_.substr(8 + klen, vlen);
  block_.remove_prefix(8 + static_cast<size_t>(klen) + vlen);
  block_left_--;
  records_++;
  return true;
}

Result<SnapshotFileInfo> SnapshotReader::verify() {
  std::string_view k, v;
  for (;;) {
    Result<bool> more = next(&k, &v);
    if (!more.is_ok()) return more.status();
    if (!*more) return info_;
  }
}

Result<SnapshotFileInfo> verify_snapshot_file(FileSystem* fs, const std::string& path) {
  auto r = SnapshotReader::open(fs, path);
  if (!r.is_ok()) return r.status();
  return (*r)->verify();
}

uint64_t snapshot_valid_prefix(std::string_view bytes, bool* complete) {
  ByteSource src(bytes);
  Status io;
  return valid_prefix(src, complete, &io);
}

Result<uint64_t> snapshot_valid_prefix(FileSystem* fs, const std::string& path, bool* complete) {
  auto size = fs->file_size(path);
  if (!size.is_ok()) return size.status();
  ByteSource src(fs, path, *size);
  Status io;
  uint64_t n = valid_prefix(src, complete, &io);
  if (!io.is_ok()) return io;
  return n;
}

// ---------------------------------------------------------------------------
// SnapshotSender

Result<std::unique_ptr<SnapshotSender>> SnapshotSender::open(FileSystem* fs,
                                                             const std::string& path,
                                                             NowMsFn now_ms) {
  auto r = SnapshotReader::open(fs, path);
  if (!r.is_ok()) return r.status();
  auto info = (*r)->verify();
  if (!info.is_ok()) return info.status();
  std::unique_ptr<SnapshotSender> s(new SnapshotSender());
  s->fs_ = fs;
  s->path_ = path;
  s->info_ = *info;
  s->offer_.group = info->meta.group();
  s->offer_.index = info->meta.index();
  s->offer_.term = info->meta.term();
  s->offer_.total_bytes = info->bytes;
  s->offer_.file_crc = info->file_crc;
  s->meter_ = ProgressMeter(std::move(now_ms), info->bytes, 0);
  return s;
}

Result<SnapshotChunk> SnapshotSender::read_chunk(uint64_t offset, uint64_t max_bytes) const {
  const uint64_t size = info_.bytes;
  if (offset > size) {
    return Status(Code::kInvalidArgument, "snapshot chunk offset " + std::to_string(offset) +
                                              " is past the end (" + std::to_string(size) +
                                              " bytes)");
  }
  if (max_bytes == 0) return Status(Code::kInvalidArgument, "empty snapshot chunk requested");
  const uint64_t n = std::min<uint64_t>(max_bytes, size - offset);
  auto data = fs_->read_range(path_, offset, n);
  if (!data.is_ok()) return data.status();
  if (data->size() != n) {
    return Status(Code::kIoError, "snapshot " + path_ + " shrank: expected " + std::to_string(n) +
                                      " bytes at offset " + std::to_string(offset) + ", read " +
                                      std::to_string(data->size()));
  }
  SnapshotChunk c;
  c.offset = offset;
  c.data = std::move(data).value();
  c.crc = crc32c(c.data);
  c.last = offset + c.data.size() == size;
  return c;
}

// ---------------------------------------------------------------------------
// SnapshotReceiver

std::string snapshot_receive_file_name(const SnapshotOffer& o) {
  char b[128];
  std::snprintf(b, sizeof b,
                "snap-%016" PRIx64 "-%016" PRIx64 "-%016" PRIx64 "-%016" PRIx64 "-%08" PRIx32
                ".part",
                o.group, o.index, o.term, o.total_bytes, o.file_crc);
  return b;
}

SnapshotReceiver::SnapshotReceiver(FileSystem* fs, std::string dir, StateStore* store,
                                   SnapshotOffer offer, SnapshotReceiverOptions options)
    : fs_(fs),
      dir_(std::move(dir)),
      path_(path_join(dir_, snapshot_receive_file_name(offer))),
      store_(store),
      offer_(offer),
      opts_(std::move(options)),
      meter_(opts_.now_ms, offer.total_bytes, 0) {}

Result<std::unique_ptr<SnapshotReceiver>> SnapshotReceiver::open(
    FileSystem* fs, const std::string& dir, StateStore* store, const SnapshotOffer& offer,
    const SnapshotReceiverOptions& options) {
  if (offer.total_bytes > options.snapshot_bytes_max) {
    return Status(Code::kInvalidArgument, "snapshot of " + std::to_string(offer.total_bytes) +
                                              " bytes exceeds snapshot_bytes_max " +
                                              std::to_string(options.snapshot_bytes_max));
  }
  if (offer.total_bytes <
      kSnapshotHeaderFixedBytes + 4 + kSnapshotFrameHeaderBytes + kSnapshotTrailerBodyBytes) {
    return Status(Code::kInvalidArgument,
                  "snapshot of " + std::to_string(offer.total_bytes) + " bytes is too small");
  }
  if (Status s = fs->create_dirs(dir); !s.is_ok()) return s;
  std::unique_ptr<SnapshotReceiver> r(new SnapshotReceiver(fs, dir, store, offer, options));

  // Partial files of this group for any other offer are obsolete.
  auto names = fs->list_dir(dir);
  if (!names.is_ok()) return names.status();
  char group_prefix[32];
  std::snprintf(group_prefix, sizeof group_prefix, "snap-%016" PRIx64 "-", offer.group);
  const std::string mine = snapshot_receive_file_name(offer);
  bool have = false;
  for (const auto& n : *names) {
    if (n == mine) {
      have = true;
    } else if (n.rfind(group_prefix, 0) == 0 && n.size() > 5 &&
               n.compare(n.size() - 5, 5, ".part") == 0) {
      if (Status s = fs->remove_file(path_join(dir, n)); !s.is_ok()) return s;
    }
  }
  if (store != nullptr && store->applied(offer.group).index() >= offer.index) {
    if (have) (void)fs->remove_file(r->path_);
    (void)fs->sync_dir(dir);
    return Status(Code::kInvalidArgument,
                  "stale snapshot offer for group " + std::to_string(offer.group) + ": index " +
                      std::to_string(offer.index) + " is not above the applied index " +
                      std::to_string(store->applied(offer.group).index()));
  }

  uint64_t keep = 0;
  if (have) {
    // Keep the longest prefix of whole, checksummed frames of this offer.
    bool complete = false;
    auto prefix = snapshot_valid_prefix(fs, r->path_, &complete);
    if (!prefix.is_ok()) return prefix.status();
    keep = *prefix;
    if (keep > 0) {
      auto reader = SnapshotReader::open(fs, r->path_);  // reads only the header
      if (!reader.is_ok() || (*reader)->meta().group() != offer.group ||
          (*reader)->meta().index() != offer.index || (*reader)->meta().term() != offer.term) {
        keep = 0;
      }
    }
    if (keep > offer.total_bytes || (complete && keep != offer.total_bytes)) keep = 0;
    auto f = fs->reopen(r->path_, keep);
    if (!f.is_ok()) return f.status();
    r->file_ = std::move(f).value();
  } else {
    auto f = fs->create(r->path_);
    if (!f.is_ok()) return f.status();
    r->file_ = std::move(f).value();
  }
  // The file (and its truncation) must survive a crash for resumption.
  if (Status s = r->file_->sync(); !s.is_ok()) return s;
  if (Status s = fs->sync_dir(dir); !s.is_ok()) return s;
  r->held_ = keep;
  r->meter_ = ProgressMeter(r->opts_.now_ms, offer.total_bytes, keep);
  return r;
}

Result<uint64_t> SnapshotReceiver::write_chunk(uint64_t offset, std::string_view data,
                                               uint32_t crc) {
  QKV_CHECK(!done_) << "write_chunk() after install() or abandon()";
  if (!failed_.is_ok()) return failed_;
  if (data.size() > opts_.chunk_bytes_max) {
    return Status(Code::kInvalidArgument, "snapshot chunk of " + std::to_string(data.size()) +
                                              " bytes exceeds chunk_bytes_max " +
                                              std::to_string(opts_.chunk_bytes_max));
  }
  if (offset > offer_.total_bytes || data.size() > offer_.total_bytes - offset) {
    return Status(Code::kInvalidArgument, "snapshot chunk [" + std::to_string(offset) + ", " +
                                              std::to_string(offset + data.size()) +
                                              ") runs past the snapshot's " +
                                              std::to_string(offer_.total_bytes) + " bytes");
  }
  const uint32_t got = crc32c(data);
  if (got != crc) {
    return Status(Code::kCorruption, "snapshot chunk of group " + std::to_string(offer_.group) +
                                         " at offset " + std::to_string(offset) +
                                         ": checksum mismatch: expected crc32c " + hex32(crc) +
                                         ", computed " + hex32(got));
  }
  // A gap (an earlier chunk was lost) or a duplicate: the sender continues
  // from what we hold.
  if (offset > held_ || offset + data.size() <= held_) return held_;
  std::string_view fresh = data.substr(held_ - offset);
  if (Status s = file_->append(fresh); !s.is_ok()) {
    // Keep nothing of a failed append, so the file stays a prefix.
    if (Status t = file_->truncate(held_); !t.is_ok()) failed_ = t;
    return s;
  }
  held_ += fresh.size();
  unsynced_ += fresh.size();
  meter_.set_done(held_);
  if (complete() || (opts_.sync_interval_bytes > 0 && unsynced_ >= opts_.sync_interval_bytes)) {
    // Never retried (see file_system.h): the data may be lost.
    if (Status s = file_->sync(); !s.is_ok()) return failed_ = s;
    unsynced_ = 0;
  }
  return held_;
}

Status SnapshotReceiver::reset() {
  if (Status s = file_->truncate(0); !s.is_ok()) return failed_ = s;
  if (Status s = file_->sync(); !s.is_ok()) return failed_ = s;
  held_ = 0;
  unsynced_ = 0;
  meter_ = ProgressMeter(opts_.now_ms, offer_.total_bytes, 0);
  return Status::ok();
}

Status SnapshotReceiver::verify() {
  QKV_CHECK(!done_) << "verify() after install() or abandon()";
  QKV_CHECK(complete()) << "verify() of an incomplete snapshot: " << held_ << " of "
                        << offer_.total_bytes << " bytes";
  if (!failed_.is_ok()) return failed_;
  auto check = [&]() -> Status {
    auto r = SnapshotReader::open(fs_, path_);
    if (!r.is_ok()) return r.status();
    auto info = (*r)->verify();
    if (!info.is_ok()) return info.status();
    const auto& m = info->meta;
    if (m.group() != offer_.group || m.index() != offer_.index || m.term() != offer_.term ||
        info->bytes != offer_.total_bytes || info->file_crc != offer_.file_crc) {
      char b[256];
      std::snprintf(b, sizeof b,
                    "snapshot: %s: not the file offered: expected group %" PRIu64 " index %" PRIu64
                    " term %" PRIu64 " bytes %" PRIu64 " crc32c %08" PRIx32 ", found group %" PRIu64
                    " index %" PRIu64 " term %" PRIu64 " bytes %" PRIu64 " crc32c %08" PRIx32,
                    path_.c_str(), offer_.group, offer_.index, offer_.term, offer_.total_bytes,
                    offer_.file_crc, m.group(), m.index(), m.term(), info->bytes, info->file_crc);
      return Status(Code::kCorruption, b);
    }
    return Status::ok();
  };
  if (Status s = check(); !s.is_ok()) {
    if (s.code() != Code::kCorruption) return s;  // an I/O error: kept for a retry
    if (Status t = reset(); !t.is_ok()) return t;
    return s;
  }
  return Status::ok();
}

Status SnapshotReceiver::install() {
  QKV_CHECK(store_ != nullptr) << "install() needs a StateStore";
  QKV_CHECK(!done_) << "install() after install() or abandon()";
  QKV_CHECK(complete()) << "install() of an incomplete snapshot: " << held_ << " of "
                        << offer_.total_bytes << " bytes";
  if (!failed_.is_ok()) return failed_;
  if (Status s = verify(); !s.is_ok()) return s;
  // Second pass streams the records into the store (which revalidates).
  auto r = SnapshotReader::open(fs_, path_);
  if (!r.is_ok()) return r.status();
  Status s = store_->install_snapshot((*r)->meta(), **r);
  if (!s.is_ok() && s.code() != Code::kInvalidArgument) return s;  // kept for a retry
  // Installed, or stale (the group moved past it): the file is done with.
  done_ = true;
  (void)file_->close();
  if (Status t = fs_->remove_file(path_); !t.is_ok()) return s.is_ok() ? t : s;
  (void)fs_->sync_dir(dir_);
  return s;
}

Status SnapshotReceiver::abandon() {
  QKV_CHECK(!done_) << "abandon() after install() or abandon()";
  done_ = true;
  (void)file_->close();
  if (Status s = fs_->remove_file(path_); !s.is_ok()) return s;
  return fs_->sync_dir(dir_);
}

}  // namespace qkv::storage
