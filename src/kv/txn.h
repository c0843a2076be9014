// Txn: a transaction over one group's range of a StateStore. Reads see the
// transaction's own writes (an ordered overlay of pending puts and deletes
// in front of the store), so the commands of one apply() see each other's
// effects before anything is written; commit() turns the overlay into one
// StateBatch. Reads also cache what they fetch, so a command that looks a
// key up and then rewrites it reads the store once.
//
// Errors: a store read that fails is recorded in status() (sticky) and the
// read answers "absent"; the caller must check status() before using any
// result of the transaction (a failed read-only command returns the status;
// a failed apply is fatal). Keys here are storage keys (layout.h), without
// the store's group prefix.
//
// Not thread-safe. The store must not change under a live Txn (the node
// applies and reads on one thread).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "storage/state_store.h"

namespace qkv::kv {

class Txn {
 public:
  // writable = false: a read-only view; put(), del() and clear() CHECK-fail.
  Txn(const storage::StateStore* store, uint64_t group, bool writable);
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;

  std::optional<std::string> get(std::string_view key);
  void put(std::string_view key, std::string value);
  void del(std::string_view key);
  // Every key of the group is gone (FLUSHDB); later puts still apply.
  void clear();
  // Every key in [begin, end) is gone (a collection's elements); later puts
  // still apply. `end` must be greater than `begin`. Committed as one
  // RocksDB range deletion: O(1) here whatever the range holds, but each
  // one costs later reads that cross it until compaction drops it, so use
  // it for large ranges only.
  void delete_range(std::string_view begin, std::string_view end);

  // Calls fn(key, value) for the keys starting with `prefix`, from `start`
  // (clamped to the prefix) in key order, until fn returns false. The
  // overlay may not be changed from inside fn. `first_page_keys` (if not 0)
  // sizes the first store read for a caller that knows how many rows it
  // wants (LRANGE 0 9 reads 10 rows, not a whole page); later pages are
  // kScanPageKeys.
  using Visitor = std::function<bool(std::string_view key, std::string_view value)>;
  void scan(std::string_view prefix, std::string_view start, const Visitor& fn,
            uint64_t first_page_keys = 0);

  // Adds the pending writes to `batch` (a delete_range of the whole group
  // first after clear()). The transaction stays usable.
  void commit(storage::StateBatch* batch) const;

  // Records an error found above the store (an undecodable record): the
  // transaction is then failed like after a failed read.
  void fail(const Status& s);

  bool writable() const { return writable_; }
  bool has_writes() const { return writes_ > 0 || cleared_; }
  // Whether this transaction's deletions (clear(), delete_range()) reach a
  // key that starts with `prefix`.
  bool deletes_under(std::string_view prefix) const;
  const Status& status() const { return status_; }
  // How many store reads this transaction made (tests check the cache).
  uint64_t TEST_store_reads() const { return store_reads_; }

  // Rows fetched from the store per scan page.
  static constexpr uint64_t kScanPageKeys = 256;

 private:
  struct Entry {
    std::optional<std::string> value;  // nullopt: absent
    bool dirty = false;                // a write (else a cached read)
  };
  const storage::StateStore* store_;
  uint64_t group_;
  bool writable_;
  bool cleared_ = false;
  uint64_t writes_ = 0;
  uint64_t store_reads_ = 0;
  // True if `key` lies in a range deleted by delete_range().
  bool in_deleted_range(std::string_view key) const;

  std::map<std::string, Entry, std::less<>> overlay_;
  std::vector<std::pair<std::string, std::string>> deleted_ranges_;  // [begin, end)
  Status status_;
};

}  // namespace qkv::kv
