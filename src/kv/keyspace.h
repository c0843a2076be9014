// Keyspace: the logical keys of one group at one moment, over a Txn.
//
// Time: every Keyspace has one `now_ms`: the entry's stamp when applying,
// the caller's clock for a local read. A key whose expiry is <= now_ms is
// absent for every operation here, exactly as if it had been deleted; its
// record stays until a write replaces or deletes it (or the leader's expiry
// deletion does), and until then it still counts in key_count() (as Redis
// counts expired keys not yet evicted in DBSIZE).
//
// Invariants kept by every write (checked by TEST_check_invariants()):
// counters.keys is the number of records under 'k', counters.expires the
// number of those with an expiry, and the 'e' index holds exactly one entry
// (expire_at_ms, key) per record with an expiry.
//
// Not thread-safe; lives for one command batch or one read.
#pragma once

#include <climits>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kv/layout.h"
#include "kv/txn.h"

namespace qkv::kv {

struct KeyspaceCounters {
  uint64_t keys = 0;
  uint64_t expires = 0;
  bool operator==(const KeyspaceCounters&) const = default;
};

class Keyspace {
 public:
  // `counters` are updated by writes; for a read-only txn they are only read.
  Keyspace(Txn* txn, int64_t now_ms, KeyspaceCounters* counters);

  int64_t now_ms() const { return now_ms_; }
  Txn& txn() { return *txn_; }
  const KeyspaceCounters& counters() const { return *counters_; }

  // The key's record, or nullopt if it is absent or expired.
  std::optional<Record> find(std::string_view key);
  bool exists(std::string_view key) { return find(key).has_value(); }

  // Creates or replaces the key's record. An expiry already <= now_ms is
  // allowed (SET ... PXAT in the past): the key is then stored expired, so
  // it is absent but counted until deleted.
  void put(std::string_view key, const Record& r);
  // Deletes the key. True if it was live (an expired record is deleted too,
  // but answers false).
  bool remove(std::string_view key);
  // Deletes the key if its record has an expiry <= now_ms. True if deleted.
  bool remove_if_expired(std::string_view key);
  // Deletes every key.
  void clear();

  // True if the record is not expired at now_ms.
  bool live(const Record& r) const { return r.expire_at_ms == 0 || r.expire_at_ms > now_ms_; }

  // Calls fn(position, key, record) for every record at a position >=
  // `from`, expired ones included (check live()), in position order, until
  // fn returns false. fn may not write.
  using KeyVisitor = std::function<bool(uint64_t position, std::string_view key, const Record& r)>;
  void for_each(uint64_t from, const KeyVisitor& fn);

  // Up to max_n keys whose expiry is <= now_ms, oldest expiry first, read
  // from the expiry index from `from_ms` on (the caller knows there is no
  // entry before it). *first_ms (if set) receives the time of the first
  // entry found, expired or not, or INT64_MAX if there is none.
  std::vector<std::string> expired_keys(size_t max_n, int64_t from_ms = 0,
                                        int64_t* first_ms = nullptr);
  // The earliest expiry this Keyspace wrote (INT64_MAX if none).
  int64_t min_expiry_written() const { return min_expiry_written_; }

  // Recounts everything from the records and compares with the counters and
  // the expiry index. O(n): tests only.
  Status TEST_check_invariants();

 private:
  // The raw record, expired or not.
  std::optional<Record> load(std::string_view key);
  void corrupt(std::string_view storage_key);

  Txn* txn_;
  int64_t now_ms_;
  KeyspaceCounters* counters_;
  int64_t min_expiry_written_ = INT64_MAX;
};

}  // namespace qkv::kv
