// ReadCache: what StateStore::get() found for the keys read lately, so a key
// read again does not walk RocksDB's memtables and files (a GET's largest
// cost: docs/ARCHITECTURE.md, decision 41).
//
// Filled by reads, and by writes while it has room:
//   - A read's miss is kept, evicting others if need be (the reads of
//     applies excepted: StateStore::get's fill_cache).
//   - With fill_on_write (off by default), a written key the cache does not
//     hold is added when it fits in the free bytes; a write never evicts. So
//     a working set that fits is cached on every node as it is written (a
//     SET then finds the old record here, a new leader starts warm), while a
//     write load larger than the cache leaves what reads keep alone instead
//     of churning it (docs/ARCHITECTURE.md, decision 41, says why it is off).
//
// Coherent with the store by construction:
//   - A read takes the write generation before it asks RocksDB, and its
//     answer is kept only if no write was applied to the cache since: a
//     read that raced a write never leaves the older value behind.
//   - Every write to the store passes here after RocksDB took it
//     (apply_batch for a WriteBatch, erase_range for an ingested snapshot or
//     a dropped group): a cached key it reaches takes the new value, becomes
//     absent, or is erased (a range deletion); a key it adds has the value
//     RocksDB now holds.
//   - A failed write is fatal for the node (state_store.h): the cache then
//     still equals what RocksDB holds.
//
// Bounded by bytes_max (key + value + kEntryOverhead per entry); values
// above value_bytes_max, or above a quarter of bytes_max, are not kept.
// Eviction is CLOCK over the hash table's buckets: an entry read since the
// hand last passed survives one more turn.
//
// Range deletions: the entries whose keys share their first
// kGroupPrefixBytes bytes are linked in a list (a group), found by a hash of
// that prefix. A range whose two ends share that prefix can only reach keys
// of that group, so it costs the group's entries, not a pass over the whole
// table. Deleting or trimming a large collection is such a range, applied on
// every node (the store's keys are a tag and a group id, then the kv
// layout's element prefix: a tag and the key's 8-byte position, 18 bytes in
// all: docs/KV_FORMAT.md; KvLayout.ACollectionsElementRangeIsOneReadCacheGroup
// pins it); wider ranges (FLUSHALL, a snapshot install, a group dropped)
// still pass over the table. Only performance depends on that layout; any
// range is erased exactly.
//
// Thread-safe (one mutex; the node reads and applies on one thread, so it
// is never contended there).
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/hash.h"

namespace rocksdb {
class WriteBatch;
}  // namespace rocksdb

namespace qkv::storage {

class ReadCache {
 public:
  // Bytes counted per entry beyond its key and value: the hash table's node
  // (128 with jemalloc's size classes) and bucket (8), its group's node and
  // bucket (40, when its prefix is its own), and the rounding of the key's
  // and value's own allocations (read_cache_bench: 369 bytes of RSS for a
  // 34-byte key and a 100-byte value, counted as 366).
  static constexpr uint64_t kEntryOverhead = 232;
  // Keys sharing this many first bytes form a group (above).
  static constexpr size_t kGroupPrefixBytes = 18;
  // No value larger than this share of the cache is kept (whatever
  // value_bytes_max says), so one entry never evicts most of the others.
  static constexpr uint64_t kValueShareDivisor = 4;

  ReadCache(uint64_t bytes_max, uint64_t value_bytes_max, bool fill_on_write = false);
  ReadCache(const ReadCache&) = delete;
  ReadCache& operator=(const ReadCache&) = delete;

  // If `key` is cached: *value = its value (nullopt: known absent) and true.
  // Else false, and *generation is what to pass to fill() after reading
  // the store.
  bool find(std::string_view key, std::optional<std::string>* value, uint64_t* generation);
  // Keeps what a read of `key` found (nullopt: absent), unless a write
  // reached the cache since `generation` was taken.
  void fill(std::string_view key, const std::optional<std::string>& value, uint64_t generation);

  // A write RocksDB took: Put, Delete, SingleDelete and DeleteRange records
  // update or erase the cached keys they reach; with fill_on_write, a Put
  // of a key not cached adds it if it fits in the free bytes.
  void apply_batch(const rocksdb::WriteBatch& wb);
  // Every key in [begin, end) is gone or changed (snapshot install, group
  // deletion).
  void erase_range(std::string_view begin, std::string_view end);

  struct Stats {
    uint64_t hits = 0, misses = 0, entries = 0, bytes = 0, evictions = 0;
  };
  Stats stats() const;
  uint64_t bytes_max() const { return bytes_max_; }

 private:
  struct Entry {
    std::optional<std::string> value;
    bool referenced = false;
    // Its group's list, and its key (the table's, which never moves).
    Entry* prev = nullptr;
    Entry* next = nullptr;
    const std::string* key = nullptr;
  };
  // Keys come from clients: a keyed hash, so none can crowd one bucket.
  using Map = std::unordered_map<std::string, Entry, KeyedHash, std::equal_to<>>;

  static uint64_t charge(std::string_view key, const std::optional<std::string>& value) {
    return key.size() + (value ? value->size() : 0) + kEntryOverhead;
  }
  static uint64_t charge(std::string_view key, std::string_view value) {
    return key.size() + value.size() + kEntryOverhead;
  }
  // Under mu_: the write paths.
  void put_locked(std::string_view key, std::string_view value);
  void erase_locked(std::string_view key);
  void erase_entry_locked(Map::iterator it);
  static uint64_t group_of(std::string_view key);
  void link_locked(Map::iterator it);
  void unlink_locked(Entry* e);
  void erase_range_locked(std::string_view begin, std::string_view end);
  void evict_locked();

  const uint64_t bytes_max_;
  const uint64_t value_bytes_max_;
  const bool fill_on_write_;
  mutable std::mutex mu_;
  Map map_;                  // guarded by mu_
  std::unordered_map<uint64_t, Entry*> groups_;  // guarded by mu_; a group's first entry
  uint64_t bytes_ = 0;       // guarded by mu_
  uint64_t generation_ = 0;  // guarded by mu_; raised by every write
  size_t hand_ = 0;          // guarded by mu_; the CLOCK hand (a bucket)
  Stats stats_;              // guarded by mu_ (entries and bytes filled in by stats())

  friend class ReadCacheBatchHandler;
};

}  // namespace qkv::storage
