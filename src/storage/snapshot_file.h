// Snapshot files: one Raft group's applied state at one index, as a
// self-describing, checksummed file written through FileSystem, and the
// resumable chunked transfer of such a file to another node (DESIGN.md,
// "Storage"; the grammar is in docs/STORAGE_FORMATS_STATE.md).
//
//   header   magic, version, group, index, term, ConfState, crc32c
//   block*   [type 'B'][length][crc32c][count][key_len value_len key value]*count
//   trailer  [type 'T'][length][crc32c][records][blocks][crc32c of all before it]
//
// Keys are strictly increasing across the whole file, so a reader can check
// order and a receiver can stream records straight into an SST.
//
// The flow between two nodes:
//   sender:    write_snapshot_file(fs, path, *store->snapshot(g), ...)
//              SnapshotSender::open(fs, path) -> offer(); read_chunk(offset, n)
//   receiver:  SnapshotReceiver::open(fs, dir, store, offer) -> bytes_held()
//              (the sender starts there: 0, or where an earlier attempt
//              stopped); write_chunk(...) for each chunk -> bytes held;
//              install() once complete().
//
// Memory: nothing holds a whole file. Readers fetch one frame at a time with
// ranged reads (FileSystem::read_range), the writer holds one block, the
// sender reads each chunk when asked and the receiver appends it. A block
// holds about SnapshotWriterOptions::block_bytes of records (256 KiB), so a
// snapshot of any size moves in bounded memory.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "raft/raft.pb.h"
#include "storage/file_system.h"
#include "storage/state_store.h"

namespace qkv::storage {

class ByteSource;  // snapshot_file.cc

// Format constants (docs/STORAGE_FORMATS_STATE.md).
inline constexpr char kSnapshotMagic[8] = {'Q', 'K', 'V', 'S', 'N', 'A', 'P', '\0'};
inline constexpr uint32_t kSnapshotVersion = 1;
// magic, version, group, index, term, conf_len; then conf and a crc32c.
inline constexpr size_t kSnapshotHeaderFixedBytes = 8 + 4 + 8 + 8 + 8 + 4;
inline constexpr uint32_t kSnapshotConfBytesMax = 1u << 20;
inline constexpr size_t kSnapshotFrameHeaderBytes = 9;  // type u8, length u32, crc32c u32
inline constexpr uint8_t kSnapshotBlockType = 'B';
inline constexpr uint8_t kSnapshotTrailerType = 'T';
inline constexpr uint32_t kSnapshotTrailerBodyBytes = 20;  // records u64, blocks u64, crc u32
// The largest block body the format allows (and so the largest record:
// key + value + 8 bytes of lengths + 4 bytes of count).
inline constexpr uint64_t kSnapshotBlockBytesMax = 1ull << 30;

struct SnapshotFileInfo {
  raftpb::SnapshotMetadata meta;
  uint64_t bytes = 0;  // the file's size
  uint64_t records = 0;
  uint64_t blocks = 0;
  uint32_t file_crc = 0;  // the trailer's crc32c of every byte before the trailer
};

// ---------------------------------------------------------------------------
// Progress of a long transfer (the server logs it and exports it as metrics).

struct TransferProgress {
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;     // 0 when unknown
  uint64_t elapsed_ms = 0;      // since this attempt started
  double rate_bytes_per_s = 0;  // bytes moved by this attempt / elapsed
  double eta_s = -1;            // estimated seconds left; -1 when unknown
};

// Milliseconds from some fixed point; injected so tests control time.
using NowMsFn = std::function<uint64_t()>;
NowMsFn steady_clock_ms();

// Tracks one attempt of a transfer. Not thread-safe.
class ProgressMeter {
 public:
  // bytes_done_at_start: what an earlier attempt already moved (a resumed
  // transfer); it counts in bytes_done but not in the rate.
  ProgressMeter(NowMsFn now_ms, uint64_t bytes_total, uint64_t bytes_done_at_start);
  void set_done(uint64_t bytes_done) { done_ = bytes_done; }
  void set_total(uint64_t bytes_total) { total_ = bytes_total; }
  TransferProgress progress() const;

 private:
  NowMsFn now_ms_;
  uint64_t start_ms_;
  uint64_t total_;
  uint64_t base_;
  uint64_t done_;
};

// ---------------------------------------------------------------------------
// Writing

struct SnapshotWriterOptions {
  // A block is closed once its body reaches this size (a bigger record gets
  // a block of its own). Bounds the writer's memory and the reader's unit of
  // validation.
  uint64_t block_bytes = 256ull << 10;
  // fsync the file and its directory at finish().
  bool sync = true;
  NowMsFn now_ms = steady_clock_ms();  // for progress reports
};

// Streams records into a snapshot file. Writes `path`.tmp and renames it to
// `path` at finish(); a writer destroyed before finish() removes the
// temporary file. After an error every call returns it. Not thread-safe.
class SnapshotWriter {
 public:
  static Result<std::unique_ptr<SnapshotWriter>> create(FileSystem* fs, const std::string& path,
                                                        const raftpb::SnapshotMetadata& meta,
                                                        const SnapshotWriterOptions& options);
  ~SnapshotWriter();

  // Keys must be strictly increasing (CHECKed). kInvalidArgument if the
  // record cannot fit in a block (kSnapshotBlockBytesMax).
  Status add(std::string_view key, std::string_view value);
  // Writes the last block and the trailer, syncs, renames.
  Result<SnapshotFileInfo> finish();

  uint64_t bytes_written() const { return written_; }  // appended to the file so far
  uint64_t records() const { return records_; }

 private:
  SnapshotWriter(FileSystem* fs, std::string path, SnapshotWriterOptions options);
  Status append(std::string_view bytes);
  Status flush_block();

  FileSystem* fs_;
  std::string path_, tmp_path_;
  SnapshotWriterOptions opts_;
  raftpb::SnapshotMetadata meta_;
  std::unique_ptr<WritableFile> file_;
  std::string block_;  // body of the open block, count placeholder first
  uint32_t block_records_ = 0;
  std::string last_key_;
  uint64_t records_ = 0, blocks_ = 0, written_ = 0;
  uint32_t file_crc_ = 0;
  Status failed_;
  bool finished_ = false;
};

// Writes the group's snapshot to `path`, streaming from `snap`. progress (if
// set) is called after each block with bytes_total = RocksDB's size estimate
// (so bytes_done may pass it).
Result<SnapshotFileInfo> write_snapshot_file(
    FileSystem* fs, const std::string& path, GroupSnapshot& snap,
    const SnapshotWriterOptions& options,
    const std::function<void(const TransferProgress&)>& progress = {});
// The same from any record source (keys strictly increasing) with the
// metadata it is at; stops with kUnavailable soon after *cancel becomes true.
Result<SnapshotFileInfo> write_snapshot_file(
    FileSystem* fs, const std::string& path, const raftpb::SnapshotMetadata& meta,
    RecordSource& records, uint64_t approximate_bytes, const SnapshotWriterOptions& options,
    const std::function<void(const TransferProgress&)>& progress = {},
    const std::atomic<bool>* cancel = nullptr);

// ---------------------------------------------------------------------------
// Reading

// Reads and validates a snapshot file: the header at open, each block (its
// checksum, its records' framing, and key order) before the first of its
// records is returned, and the trailer (counts and the checksum of the whole
// file) before next() reports the end. Any damage is a kCorruption naming the
// file, the offset and what was expected and found; the error is sticky. A
// record is never returned from a block whose checksum does not match.
// Never crashes on arbitrary bytes. Not thread-safe.
class SnapshotReader final : public RecordSource {
 public:
  // Reads the file a frame at a time (see "Memory" above); the file must not
  // change while the reader is in use.
  static Result<std::unique_ptr<SnapshotReader>> open(FileSystem* fs, const std::string& path);
  // Reads `bytes`, which must outlive the reader; `name` is used in errors.
  static Result<std::unique_ptr<SnapshotReader>> open_bytes(std::string_view bytes,
                                                            std::string name);

  const raftpb::SnapshotMetadata& meta() const { return meta_; }
  ~SnapshotReader() override;
  // Returns false only at a valid end of file (trailer verified).
  Result<bool> next(std::string_view* key, std::string_view* value) override;
  // Reads (and so validates) the rest of the file.
  Result<SnapshotFileInfo> verify();

  // Offset of the frame holding the last record returned.
  uint64_t block_offset() const { return block_offset_; }
  uint64_t records() const { return records_; }

 private:
  explicit SnapshotReader(std::string name);
  Status parse_header();
  Status load_frame();
  Status corrupt(uint64_t offset, const std::string& what);

  std::unique_ptr<ByteSource> src_;
  std::string name_;
  raftpb::SnapshotMetadata meta_;
  uint64_t off_ = 0;         // next frame
  uint32_t crc_ = 0;         // crc32c of bytes_[0, off_)
  std::string_view block_;   // records of the current block not yet returned
  uint32_t block_left_ = 0;  // how many
  uint64_t block_offset_ = 0;
  std::string last_key_;  // last key of the previous blocks
  uint64_t records_ = 0, blocks_ = 0;
  bool done_ = false;
  Status error_;
  SnapshotFileInfo info_;
};

// Reads and validates the whole file.
Result<SnapshotFileInfo> verify_snapshot_file(FileSystem* fs, const std::string& path);

// The length of the longest prefix of `bytes` made of a valid header and
// whole frames with matching checksums (0 if the header is not intact);
// *complete is set when that prefix ends with a trailer. Used to resume a
// partial transfer after a restart. Records are not validated here.
uint64_t snapshot_valid_prefix(std::string_view bytes, bool* complete);
// The same for a file, read a frame at a time.
Result<uint64_t> snapshot_valid_prefix(FileSystem* fs, const std::string& path, bool* complete);

// ---------------------------------------------------------------------------
// Transfer

// What the sender announces. A receiver resumes a partial file only for an
// identical offer (same file, byte for byte).
struct SnapshotOffer {
  uint64_t group = 0, index = 0, term = 0;
  uint64_t total_bytes = 0;
  uint32_t file_crc = 0;
};

struct SnapshotChunk {
  uint64_t offset = 0;
  std::string data;
  uint32_t crc = 0;  // crc32c of data
  bool last = false;
};

// Serves byte ranges of a finished snapshot file, read from the file when
// asked (the file must not change while the sender is open).
// Thread-compatible: const methods may run concurrently.
class SnapshotSender {
 public:
  // Reads (a frame at a time) and validates the file: a damaged file is
  // never offered.
  static Result<std::unique_ptr<SnapshotSender>> open(FileSystem* fs, const std::string& path,
                                                      NowMsFn now_ms = steady_clock_ms());
  const SnapshotOffer& offer() const { return offer_; }
  const SnapshotFileInfo& info() const { return info_; }
  // Up to max_bytes from offset. kInvalidArgument if offset is past the end
  // or max_bytes is 0.
  Result<SnapshotChunk> read_chunk(uint64_t offset, uint64_t max_bytes) const;
  // The receiver reported holding `bytes`: updates progress.
  void acknowledged(uint64_t bytes) { meter_.set_done(bytes); }
  TransferProgress progress() const { return meter_.progress(); }

 private:
  SnapshotSender() : meter_(steady_clock_ms(), 0, 0) {}
  FileSystem* fs_ = nullptr;
  std::string path_;
  SnapshotOffer offer_;
  SnapshotFileInfo info_;
  ProgressMeter meter_;
};

struct SnapshotReceiverOptions {
  uint64_t snapshot_bytes_max = 64ull << 30;  // larger offers are refused
  uint64_t chunk_bytes_max = 16ull << 20;     // larger chunks are refused
  // Sync the partial file after this many new bytes, so a power loss costs
  // at most this much retransmission (0: sync only when complete).
  uint64_t sync_interval_bytes = 8ull << 20;
  NowMsFn now_ms = steady_clock_ms();
};

// Receives one snapshot of one group into `dir`, as the temporary file
// snap-<group>-<index>-<term>-<bytes>-<crc>.part (hex). The name carries
// the offer, so a receiver opened again with the same offer (after a broken
// connection or a restart) keeps the valid prefix of what it had, and any
// other partial file of the group is removed. Chunks are appended in order:
// a chunk beyond bytes_held() (an earlier one was lost) is ignored and a
// chunk already held (a duplicate) is skipped; either way the answer is the
// number of bytes held, where the sender continues. install() validates the
// whole file, installs it into the StateStore atomically and removes the
// temporary file. Not thread-safe.
class SnapshotReceiver {
 public:
  // kInvalidArgument for an offer over snapshot_bytes_max or (given a
  // store) not newer than the group's applied index (its partial file is
  // then removed). Without a store, install() is unavailable: the caller
  // verify()s the file and installs it from temp_path() itself.
  static Result<std::unique_ptr<SnapshotReceiver>> open(FileSystem* fs, const std::string& dir,
                                                        StateStore* store,
                                                        const SnapshotOffer& offer,
                                                        const SnapshotReceiverOptions& options);
  const SnapshotOffer& offer() const { return offer_; }
  uint64_t bytes_held() const { return held_; }
  bool complete() const { return held_ == offer_.total_bytes; }
  const std::string& temp_path() const { return path_; }

  // Returns the bytes held after the chunk. kCorruption if crc is not the
  // chunk's crc32c (nothing is written); kInvalidArgument if the chunk is
  // over chunk_bytes_max or runs past the offer's size; I/O errors
  // (kNoSpace: nothing of the chunk is kept). A failed sync is sticky.
  Result<uint64_t> write_chunk(uint64_t offset, std::string_view data, uint32_t crc);

  // Requires complete(). Validates the whole file against the offer. On
  // kCorruption the partial file is emptied (bytes_held() becomes 0).
  Status verify();

  // Requires complete() and a store. verify(), then installs the file. On kCorruption the partial file is emptied (bytes_held()
  // becomes 0: the transfer must start again); on other errors it is kept.
  Status install();

  // Removes the temporary file (the transfer is given up).
  Status abandon();

  TransferProgress progress() const { return meter_.progress(); }

 private:
  SnapshotReceiver(FileSystem* fs, std::string dir, StateStore* store, SnapshotOffer offer,
                   SnapshotReceiverOptions options);
  Status reset();

  FileSystem* fs_;
  std::string dir_, path_;
  StateStore* store_;
  SnapshotOffer offer_;
  SnapshotReceiverOptions opts_;
  std::unique_ptr<WritableFile> file_;
  uint64_t held_ = 0;
  uint64_t unsynced_ = 0;
  ProgressMeter meter_;
  Status failed_;
  bool done_ = false;  // installed or abandoned
};

std::string snapshot_receive_file_name(const SnapshotOffer& offer);

}  // namespace qkv::storage
