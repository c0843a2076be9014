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
// (expire_at_ms, key) per record with an expiry. Every 'c' element belongs
// to a record of a collection type, and a collection's record counts its
// elements exactly (a list's are dense from head to tail); no collection is
// empty.
//
// Collections: the record (type, expiry, CollectionMeta) is written with
// put() when the value is created or replaced and with update() when only
// its expiry or its counts change; the elements with the *_element()
// calls. Replacing or deleting a collection deletes its elements (point
// deletions for small ones, one range deletion for large ones), so a
// command never sees the elements of an older value under the same key.
//
// Not thread-safe; lives for one command batch or one read.
#pragma once

#include <climits>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kv/layout.h"
#include "kv/txn.h"

namespace qkv::kv {

struct ApplyEvents;  // events.h

struct KeyspaceCounters {
  uint64_t keys = 0;
  uint64_t expires = 0;
  // Not key counts: the last fencing token granted (LOCK) and the last
  // waiter sequence number (blocked clients' FIFO order). They only grow:
  // FLUSHALL keeps them, so a token is never granted twice.
  uint64_t fence = 0;
  uint64_t waiter_seq = 0;
  uint64_t waiters = 0;  // blocked clients queued (waiters.h): none, nothing to serve
  bool operator==(const KeyspaceCounters&) const = default;
};

class Keyspace {
 public:
  // `counters` are updated by writes; for a read-only txn they are only read.
  Keyspace(Txn* txn, int64_t now_ms, KeyspaceCounters* counters);

  int64_t now_ms() const { return now_ms_; }
  Txn& txn() { return *txn_; }
  const KeyspaceCounters& counters() const { return *counters_; }
  // For the counters that are not key counts (fence, waiter_seq).
  KeyspaceCounters& mutable_counters() { return *counters_; }

  // The key's record, or nullopt if it is absent or expired.
  std::optional<Record> find(std::string_view key);
  bool exists(std::string_view key) { return find(key).has_value(); }

  // Creates or replaces the key's value. An expiry already <= now_ms is
  // allowed (SET ... PXAT in the past): the key is then stored expired, so
  // it is absent but counted until deleted. A collection the key held
  // (expired or not) loses its elements; a new collection's elements are
  // added after this call.
  void put(std::string_view key, const Record& r);
  // Rewrites the record of an existing key of the same type, keeping its
  // elements: a new expiry, a collection's new count or list bounds.
  void update(std::string_view key, const Record& r);
  // Deletes the key and its elements. True if it was live (an expired
  // record is deleted too, but answers false).
  bool remove(std::string_view key);
  // Moves the live key `from` (value, elements, expiry) to `to`, replacing
  // whatever `to` held. from != to. O(elements): a collection's elements are
  // rewritten under the new name (their storage keys start with it).
  void rename(std::string_view from, std::string_view to);
  // Deletes the key if its record has an expiry <= now_ms. True if deleted.
  bool remove_if_expired(std::string_view key);
  // Deletes every key (records, elements, the expiry index). Blocked
  // clients, locks' fencing counter and scripts stay.
  void clear();

  // The elements of the collection at `key` (the caller has its record).
  // Sub-keys are layout.h's member_sub_key() or list_sub_key().
  std::optional<std::string> get_element(std::string_view key, std::string_view sub_key);
  void put_element(std::string_view key, std::string_view sub_key, std::string_view value);
  void del_element(std::string_view key, std::string_view sub_key);
  // Deletes the `count` elements of `key` whose sub-keys are in [from, to)
  // (point deletions, or one range deletion when there are many).
  void del_elements(std::string_view key, std::string_view from, std::string_view to,
                    uint64_t count);
  // Calls fn(sub_key, value) for the elements of `key` whose sub-key is >=
  // `from`, in sub-key order, until fn returns false. fn may not write.
  // `expected` (if not 0): how many elements the caller will probably
  // visit (sizes the first store read).
  using ElementVisitor = std::function<bool(std::string_view sub_key, std::string_view value)>;
  void for_each_element(std::string_view key, std::string_view from, const ElementVisitor& fn,
                        uint64_t expected = 0);

  // Lists that received elements through this Keyspace (LPUSH, RPUSH,
  // LINSERT, LMOVE's destination ...), each once, in order of first push:
  // what a blocked pop (BLPOP) waits for, reported by the apply path.
  void note_list_push(std::string_view key);
  const std::vector<std::string>& lists_pushed() const { return lists_pushed_; }
  // After their waiters were served: a later push to the same list counts again.
  void clear_lists_pushed() { lists_pushed_.clear(); }
  // Whether clear() ran (FLUSHALL: every waiter is tried again), once.
  bool take_cleared() { return std::exchange(cleared_, false); }

  // The change log (execute_command() attaches the command's ApplyEvents
  // for its duration; null: nothing is recorded, the default). While set,
  // every key written or deleted here is appended to events->keys_changed
  // (once per run of writes to the same key), clear() sets
  // events->flushed, and, if events->want_keyspace, the two keyspace
  // notifications only the Keyspace sees are appended: "expired" when a
  // record found expired is deleted or overwritten (the leader's expiry
  // deletion, or a write that replaces it first), then "new" when put()
  // creates a key that was absent (not one the same command deleted live
  // just before: SINTERSTORE over an existing key replaces it).
  void set_change_log(ApplyEvents* events) {
    log_ = events;
    removed_live_.clear();
  }
  ApplyEvents* change_log() const { return log_; }

  // Collections of at most this many elements are deleted element by
  // element; larger ones by one range deletion (txn.h).
  static constexpr uint64_t kPointDeleteElementsMax = 64;

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
  // Writes the record (and the expiry index and counters) over `old`.
  void write_record(std::string_view key, const std::optional<Record>& old, const Record& r);
  // Deletes every element of `old`, the record of `key` (a no-op unless it
  // is a collection).
  void delete_elements(std::string_view key, const Record& old);

  Txn* txn_;
  int64_t now_ms_;
  KeyspaceCounters* counters_;
  int64_t min_expiry_written_ = INT64_MAX;
  std::vector<std::string> lists_pushed_;
  bool cleared_ = false;
  void stream_gone(std::string_view key);
  ApplyEvents* log_ = nullptr;
  std::string removed_live_;  // the last live key remove() deleted (with log_)
  // Records a change of `key` in log_ (non-null).
  void log_changed(std::string_view key);
};

}  // namespace qkv::kv
