// The write-ahead log: one per node, shared by all its Raft groups, so one
// fsync makes every group's batch durable (DESIGN.md, "Storage").
//
// Records are appended in batches (one write per batch) and made durable by
// sync_to(): concurrent callers share one fdatasync (group commit), and a
// batch is reported durable only after a sync that started after it was
// written has returned. A failed sync is fatal: the WAL refuses every later
// call (the page cache may have dropped the data; retrying could report
// lost data as durable).
//
// The log is a sequence of segment files that rotate at segment_bytes_max.
// At each rotation the new segment starts with a checkpoint of every group's
// hard state and log base, so an old segment can be deleted once every group
// has released (compacted) all entries it holds. Formats: docs/ARCHITECTURE.md.
//
// With prefill on, a background thread keeps one spare segment whose blocks
// are already written (with zeros) and synced, and rotation renames it into
// place. A sync of a record in such a segment overwrites allocated blocks; in
// a segment reserved with fallocate, whose blocks are still unwritten, the
// file system must also journal their conversion (ext4: a journal commit per
// sync). The spare is begun once the segment being written holds
// prefill_start_bytes (half a segment when that one is itself prefilled), so
// a node that writes little never pays for one, and the WAL rotates into the
// first spare early rather than keep writing a segment that is not
// prefilled.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "raft/raft.pb.h"
#include "storage/file_system.h"

namespace qkv::storage {

enum class RecordType : uint8_t {
  kEntry = 1,      // a Raft entry; payload = [entry type u8][data]
  kHardState = 2,  // term, index = commit; payload = [vote u64]
  kSnapshot = 3,   // a snapshot was installed at (index, term): the log is replaced; payload = ConfState
  kCompact = 4,    // entries up to index are covered by a snapshot and released; payload = ConfState
};

constexpr size_t kRecordHeaderBytes = 8;  // length u32, crc32c u32
constexpr size_t kRecordBodyFixedBytes = 25;  // type u8, group u64, term u64, index u64
constexpr size_t kSegmentHeaderBytes = 24;

struct WalOptions {
  uint64_t segment_bytes_max = 64ull << 20;
  uint64_t record_bytes_max = 64ull << 20;
  bool preallocate = true;
  // Keep a zero-filled spare segment (above). Costs one segment of disk
  // space and writing each segment twice (zeros, then records).
  bool prefill = false;
  uint64_t prefill_start_bytes = 4ull << 20;
  // Truncate at the first corrupt record (losing everything after it)
  // instead of refusing to start.
  bool repair = false;
};

// Records to append, encoded as they are added. Order them as a Ready
// requires: snapshot, entries, hard state.
class WalBatch {
 public:
  void add_entry(uint64_t group, const raftpb::Entry& e);
  void add_hard_state(uint64_t group, const raftpb::HardState& hs);
  void add_snapshot(uint64_t group, const raftpb::SnapshotMetadata& meta);
  void add_compact(uint64_t group, const raftpb::SnapshotMetadata& meta);
  bool empty() const { return buf_.empty(); }
  size_t bytes() const { return buf_.size(); }
  size_t records() const { return infos_.size(); }
  void clear() {
    buf_.clear();
    infos_.clear();
  }

 private:
  friend class Wal;
  struct Info {
    RecordType type;
    uint64_t group, term, index;
    size_t body_bytes;
    std::string conf;  // kSnapshot / kCompact only
    uint64_t vote = 0;
  };
  void add(RecordType t, uint64_t group, uint64_t term, uint64_t index, std::string_view payload,
           std::string_view payload2 = {});
  std::string buf_;
  std::vector<Info> infos_;
};

// What recovery found for one group.
struct RecoveredGroup {
  std::optional<raftpb::SnapshotMetadata> base;  // last snapshot installed or compacted to
  std::vector<raftpb::Entry> entries;            // after base, contiguous
  std::optional<raftpb::HardState> hard_state;
};

struct WalRecovery {
  std::map<uint64_t, RecoveredGroup> groups;
  uint64_t records = 0;
  uint64_t segments = 0;
  std::vector<std::string> notes;  // e.g. a torn tail that was truncated
};

struct WalStats {
  uint64_t appends = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;
  uint64_t syncs = 0;
  uint64_t segments_created = 0;
  uint64_t segments_deleted = 0;
  uint64_t live_segments = 0;
  uint64_t spares_made = 0;      // zero-filled spare segments made
  uint64_t spares_used = 0;      // rotations into a spare
  uint64_t spare_failures = 0;   // spares abandoned (e.g. no space); rotation then falls back
  bool spare_in_progress = false;  // a spare is wanted or being made
};

class Wal {
 public:
  // Opens (creating if empty) the WAL in dir and replays it into *recovery.
  // kCorruption, with file and offset, for damage before the tail.
  static Result<std::unique_ptr<Wal>> open(FileSystem* fs, const std::string& dir,
                                           const WalOptions& options, WalRecovery* recovery);
  ~Wal();

  // Appends a batch. Returns its sequence number (not yet durable). On
  // kNoSpace nothing of the batch remains and the WAL stays usable.
  Result<uint64_t> append(const WalBatch& batch);
  // Returns once every batch up to seq is durable.
  Status sync_to(uint64_t seq);
  // Appends and syncs.
  Status write(const WalBatch& batch);
  // The group no longer needs entries up to index (they are in a snapshot);
  // deletes segments nobody needs any more. A segment is deleted only once
  // the record that moved the group's log base past its entries is durable,
  // so a crash can never leave a group's log with a hole.
  Status release(uint64_t group, uint64_t index);

  WalStats stats() const;
  uint64_t last_seq() const;
  uint64_t durable_seq() const;

 private:
  struct Segment {
    uint64_t seq = 0;
    std::string path;
    std::map<uint64_t, uint64_t> max_entry_index;  // group -> highest entry index in it
    uint64_t start_bytes = 0;  // header and checkpoint
  };
  struct GroupMeta {
    std::optional<raftpb::HardState> hard_state;
    uint64_t base_index = 0, base_term = 0;
    std::string base_conf;
    bool has_base = false;
    uint64_t released = 0;      // what the owner released with release()
    uint64_t durable_base = 0;  // base index whose record is durable
  };
  // A base record (kSnapshot / kCompact) not yet known durable.
  struct PendingBase {
    uint64_t seq, group, index;
  };

  Wal(FileSystem* fs, std::string dir, WalOptions options);
  Status recover(WalRecovery* recovery);
  Status replay_segment(size_t i, const std::string& path, bool last, WalRecovery* recovery,
                        uint64_t* valid_end, bool* truncated_rest);
  Status start_segment_locked(uint64_t seq);
  // Renames the spare to path and opens it; null if there is no spare or
  // that fails (the caller then makes a segment the ordinary way).
  std::shared_ptr<WritableFile> take_spare_locked(const std::string& path);
  void want_spare_locked();
  void fill_spares();  // the prefill thread
  Status make_spare();
  std::string spare_path() const;
  Status rotate_locked();
  void note_batch_locked(const WalBatch& batch, Segment& seg, uint64_t seq);
  void mark_durable_locked(uint64_t seq);
  Status delete_released_segments_locked();
  std::string segment_path(uint64_t seq) const;

  FileSystem* fs_;
  std::string dir_;
  WalOptions opts_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Segment> segments_;  // oldest first; back() is being written
  std::shared_ptr<WritableFile> file_;
  std::map<uint64_t, GroupMeta> groups_;
  std::vector<PendingBase> pending_bases_;
  uint64_t appended_seq_ = 0;
  uint64_t durable_seq_ = 0;
  bool syncing_ = false;
  Status failed_;  // sticky: a failed sync or an unrecoverable write
  WalStats stats_;

  // Prefill (guarded by mu_ except stop_).
  enum class Spare { kNone, kWanted, kFilling, kReady, kFailed };
  Spare spare_ = Spare::kNone;
  bool current_prefilled_ = false;  // the segment being written was a spare
  std::condition_variable spare_cv_;
  std::atomic<bool> stop_{false};
  std::thread filler_;
};

}  // namespace qkv::storage
