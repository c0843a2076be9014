// StateStore: the applied state of every Raft group on a node, in one
// RocksDB instance (DESIGN.md, "Storage"; formats: docs/STORAGE_FORMATS_STATE.md).
//
// Key layout (each group owns two contiguous ranges, so groups never collide
// and a group can be scanned, snapshotted or dropped by range):
//   'd' group:u64be user_key    the group's data
//   'm' group:u64be name        the group's metadata ("applied", "conf")
//   'v'                         the layout version of the whole store
//
// The applied index is written in the same RocksDB WriteBatch as the data
// changes of the entries it covers, so after any crash the data and the
// applied index agree. Writes are not synced by default: the Raft WAL holds
// every entry above what the store has made durable, and replays them after a
// restart from applied(group).index. sync() makes everything applied so far
// durable; call it before releasing Raft log entries below the applied index
// (only entries up to durable_applied(group) may be released).
//
// Snapshots: snapshot(group) pins a consistent RocksDB snapshot of the
// group's data and metadata; install_snapshot() replaces a group's whole
// state atomically (an SST file with range tombstones and the new keys,
// ingested in one step), so a crash at any point leaves either the old state
// or the new one.
//
// Errors: RocksDB I/O failures come back as kIoError (kNoSpace for a full
// disk, kCorruption for damaged files). A failed sync() or write makes the
// store refuse every later write and sync with the same status: the node must stop
// (a failed fsync is never retried, see wal.h).
//
// Thread-safety: every method may be called from any thread. Calls that
// change one group (apply, install_snapshot, delete_group) must be
// serialized by the caller for that group; different groups may proceed in
// parallel. Iterators and GroupSnapshots must be destroyed before the store.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "raft/raft.pb.h"
#include "storage/read_cache.h"

namespace rocksdb {
class DB;
class Iterator;
class Slice;
class Snapshot;
class WriteBatch;
}  // namespace rocksdb

namespace qkv::storage {

class StateStore;

struct StateStoreOptions {
  // RocksDB memtable size and count (memory: write_buffer_bytes *
  // write_buffers_max at most).
  uint64_t write_buffer_bytes = 64ull << 20;
  int write_buffers_max = 3;
  uint64_t block_cache_bytes = 128ull << 20;
  // The memtable representation: memtable_rep.h's, where a key's versions
  // are found by a hash of the key, or RocksDB's skip list.
  bool key_indexed_memtable = true;
  // What get() found lately (read_cache.h): bytes in all (0: no cache), the
  // largest value kept, and whether writes add keys while it has room.
  uint64_t read_cache_bytes = 64ull << 20;
  uint64_t read_cache_value_bytes_max = 64ull << 10;
  bool read_cache_fill_on_write = false;
  int background_jobs = 2;
  // Sync every apply() (not needed for safety: the Raft WAL replays).
  bool sync_writes = false;
  // Skip RocksDB's own WAL: the Raft WAL already holds every applied entry.
  // Unsynced applies are then lost at a crash or close (the applied index
  // with them, consistently), and sync() flushes the memtables instead of
  // syncing RocksDB's WAL.
  bool disable_rocksdb_wal = false;
  // Limits: one StateBatch, one scan() answer.
  uint64_t batch_bytes_max = 256ull << 20;
  uint64_t scan_keys_max = 100000;
  uint64_t scan_bytes_max = 64ull << 20;
};

// Records in strictly increasing key order, e.g. a GroupSnapshot or a
// SnapshotReader. Keys are a group's user keys (without the group prefix).
class RecordSource {
 public:
  virtual ~RecordSource() = default;
  // Sets *key and *value (valid until the next call) and returns true, or
  // returns false at the end. An error ends the stream.
  virtual Result<bool> next(std::string_view* key, std::string_view* value) = 0;
};

// Data changes for one group, applied atomically with its applied index.
// Not thread-safe.
class StateBatch {
 public:
  explicit StateBatch(uint64_t group);
  ~StateBatch();
  StateBatch(const StateBatch&) = delete;
  StateBatch& operator=(const StateBatch&) = delete;

  uint64_t group() const { return group_; }
  void put(std::string_view key, std::string_view value);
  void del(std::string_view key);
  // Deletes the group's keys in [begin, end); an empty end means "to the end
  // of the group's keys".
  void delete_range(std::string_view begin, std::string_view end);
  uint64_t ops() const { return ops_; }
  uint64_t bytes() const;
  void clear();

 private:
  friend class StateStore;
  uint64_t group_;
  uint64_t ops_ = 0;
  std::unique_ptr<rocksdb::WriteBatch> wb_;
};

// A consistent, read-only view of one group's state at one point: its
// applied metadata and its data agree. Pins a RocksDB snapshot (old versions
// are kept while it lives: do not hold one for long). Not thread-safe.
class GroupSnapshot final : public RecordSource {
 public:
  ~GroupSnapshot() override;
  // group, index, term and conf_state of the applied state.
  const raftpb::SnapshotMetadata& meta() const { return meta_; }
  // RocksDB's estimate of the group's data size (for progress reports).
  uint64_t approximate_bytes() const { return approximate_bytes_; }
  // The group's records in key order (false at the end, and after).
  Result<bool> next(std::string_view* key, std::string_view* value) override;

 private:
  friend class StateStore;
  GroupSnapshot() = default;
  StateStore* store_ = nullptr;
  const rocksdb::Snapshot* snap_ = nullptr;
  std::unique_ptr<rocksdb::Iterator> it_;
  std::string end_key_;  // iterate_upper_bound: both must outlive the iterator
  std::unique_ptr<rocksdb::Slice> upper_;
  raftpb::SnapshotMetadata meta_;
  uint64_t approximate_bytes_ = 0;
  bool started_ = false;
  bool done_ = false;
};

struct ScanOptions {
  std::string prefix;               // only keys starting with prefix
  std::string start;                // first key considered (clamped to prefix)
  uint64_t keys_max = 1000;         // capped by StateStoreOptions::scan_keys_max
  uint64_t bytes_max = 1ull << 20;  // capped by StateStoreOptions::scan_bytes_max
};

struct ScanResult {
  std::vector<std::pair<std::string, std::string>> items;  // in key order
  // Where to continue (as ScanOptions::start), or nullopt when done. At
  // least one item is returned per call if any remains, whatever bytes_max.
  std::optional<std::string> next_start;
};

class StateStore {
 public:
  // Opens (creating if needed) the store in `dir`: RocksDB in dir/db and a
  // staging directory dir/ingest for snapshot installs (emptied at open).
  static Result<std::unique_ptr<StateStore>> open(const std::string& dir,
                                                  const StateStoreOptions& options);
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  // Writes the batch's changes and the group's applied index and term (and
  // membership, if conf is not null) in one atomic RocksDB write. The batch
  // is consumed (cleared). CHECKs that applied_index is above the group's
  // current applied index and applied_term not below its term: applying an
  // entry twice is a programmer error. kInvalidArgument if the batch exceeds
  // batch_bytes_max.
  Status apply(StateBatch& batch, uint64_t applied_index, uint64_t applied_term,
               const raftpb::ConfState* conf);

  // The value of `key` in `group`, nullopt if absent. Served from the read
  // cache when the key was read lately (read_cache.h); `fill_cache`: a
  // miss is kept there (false for the reads of applies, so that a write
  // load does not fill the cache with what it overwrites).
  Result<std::optional<std::string>> get(uint64_t group, std::string_view key,
                                         bool fill_cache = true) const;
  // The read cache's counters (all zero without one).
  ReadCache::Stats read_cache_stats() const;
  // What RocksDB holds in memory now (its own estimates): the memtables
  // (at most write_buffer_bytes * write_buffers_max), the block cache's use
  // (at most block_cache_bytes), and the open tables' indexes and filters.
  struct MemoryUse {
    uint64_t memtables = 0, block_cache = 0, table_readers = 0;
  };
  MemoryUse memory_use() const;

  // Up to keys_max keys (and roughly bytes_max bytes) of the group in key
  // order, from options.start, restricted to options.prefix.
  Result<ScanResult> scan(uint64_t group, const ScanOptions& options) const;

  // The group's applied index, term and membership (all zero/empty for a
  // group this store has never seen). Served from memory.
  raftpb::SnapshotMetadata applied(uint64_t group) const;
  // The applied index as of the start of the last successful sync().
  uint64_t durable_applied(uint64_t group) const;
  // The groups with applied state, in order.
  std::vector<uint64_t> groups() const;

  // Makes every apply() that returned before the call durable (syncs
  // RocksDB's WAL, or flushes the memtables when it is disabled). A failure
  // is sticky and fatal for the node.
  Status sync();

  // A consistent view of the group for building a snapshot file.
  Result<std::unique_ptr<GroupSnapshot>> snapshot(uint64_t group);

  // Replaces the group's whole state with `records` (strictly increasing
  // keys) and sets its applied index, term and membership to meta's. Atomic
  // and durable on return: the records are streamed into an SST file in
  // dir/ingest (memory stays bounded by RocksDB's SST index, about 1/100 of
  // the data), which is ingested with range tombstones over the group's old
  // ranges in one step. If `records` fails, or its keys are out of order
  // (kCorruption), nothing changes. kInvalidArgument if meta.index is not
  // above the group's applied index (a stale snapshot).
  Status install_snapshot(const raftpb::SnapshotMetadata& meta, RecordSource& records);

  // Removes all of the group's data and metadata (atomic; not synced).
  Status delete_group(uint64_t group);

  // RocksDB's estimate of the group's data bytes.
  uint64_t approximate_bytes(uint64_t group) const;

  const std::string& dir() const { return dir_; }

 private:
  friend class GroupSnapshot;
  struct Applied {
    uint64_t index = 0, term = 0;
    raftpb::ConfState conf;
  };

  StateStore(std::string dir, StateStoreOptions options);
  Status load_metadata();
  Status write(rocksdb::WriteBatch* wb);
  Status failed() const;
  Status fail(Status s);

  std::string dir_;
  StateStoreOptions opts_;
  std::unique_ptr<rocksdb::DB> db_;
  std::unique_ptr<ReadCache> cache_;  // null: read_cache_bytes is 0
  std::atomic<int> live_views_{0};    // GroupSnapshots alive (CHECKed at close)
  std::atomic<uint64_t> ingest_seq_{0};

  mutable std::mutex mu_;
  std::map<uint64_t, Applied> applied_;           // guarded by mu_
  std::map<uint64_t, uint64_t> durable_applied_;  // guarded by mu_
  Status failed_;                                 // guarded by mu_; sticky
};

// Key encoding, exposed for tests and tools.
std::string state_data_key(uint64_t group, std::string_view user_key);
std::string state_meta_key(uint64_t group, std::string_view name);

}  // namespace qkv::storage
