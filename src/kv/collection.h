// Collection: one list, set or hash as a command reads or changes it — its
// record (type, expiry, CollectionMeta: docs/KV_FORMAT.md) and its elements
// in a Keyspace. Changes to the elements go to the Keyspace at once; the
// record (count, list bounds) is written by save(), which every write
// command must call last: it deletes the key when the collection became
// empty (Redis never keeps an empty collection).
//
// Sets and hashes: members in hash order (member_hash), one element each
// (a set member's value is empty). Lists: dense sequence numbers from head
// to tail; index i is sequence head + i, so LINDEX, LSET and the pops are
// one point read or write, LRANGE one range scan.
//
// Not thread-safe; lives for one command.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kv/keyspace.h"
#include "kv/layout.h"

namespace qkv::kv {

// Deterministic randomness for SPOP, SRANDMEMBER and HRANDFIELD: a
// SplitMix64 sequence from the command's seed (CommandContext::random,
// derived from the Raft entry when applied), so replicas pick the same
// members.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next();
  // Uniform in [0, n); n > 0.
  uint64_t below(uint64_t n);

 private:
  uint64_t state_;
};

class Collection {
 public:
  // The collection whose live record `rec` was found at `key` (a
  // collection type).
  Collection(Keyspace& ks, std::string_view key, Record rec);
  // A new, empty collection of type t at `key`: whatever the key held
  // (usually nothing live: an expired record) is deleted first, with its
  // elements. Nothing is stored until save() with at least one element.
  static Collection create(Keyspace& ks, std::string_view key, ValueType t);

  ValueType type() const { return rec_.type; }
  uint64_t size() const { return meta_.size(rec_.type); }
  const std::string& key() const { return key_; }
  const Record& record() const { return rec_; }

  // --- Sets and hashes -------------------------------------------------
  std::optional<std::string> get(std::string_view member);
  bool contains(std::string_view member) { return get(member).has_value(); }
  // Adds the member or replaces its value; true if it is new.
  bool set(std::string_view member, std::string_view value = {});
  // True if it was there.
  bool erase(std::string_view member);
  // fn(hash, member, value) for the members whose hash is >= from_hash, in
  // hash order, until fn returns false. fn may not change the collection.
  // `expected` (if not 0): how many the caller wants (sizes the first read).
  using MemberVisitor =
      std::function<bool(uint64_t hash, std::string_view member, std::string_view value)>;
  void for_each_member(uint64_t from_hash, const MemberVisitor& fn, uint64_t expected = 0);
  // Every member (with its value), in hash order.
  std::vector<std::pair<std::string, std::string>> members();
  // A member picked at random: uniformly among up to kUniformPickMax
  // members (a walk), else the first member at or after a random hash
  // (O(log n); a member after a wide gap of hashes is likelier).
  std::pair<std::string, std::string> random_member(Rng& rng);
  // `count` distinct members picked at random (count < size()).
  std::vector<std::pair<std::string, std::string>> random_distinct(Rng& rng, uint64_t count);
  static constexpr uint64_t kUniformPickMax = 1024;

  // --- Lists (index 0 is the head) ------------------------------------------
  // index < size().
  std::string at(uint64_t index);
  void set_at(uint64_t index, std::string_view value);
  void push_front(std::string_view value);
  void push_back(std::string_view value);
  // size() > 0.
  std::string pop_front();
  std::string pop_back();
  // fn(index, value) for the elements from index `from` on, until fn
  // returns false. fn may not change the collection. `expected` (if not 0):
  // how many the caller wants (sizes the first store read).
  using ItemVisitor = std::function<bool(uint64_t index, std::string_view value)>;
  void for_each_item(uint64_t from, const ItemVisitor& fn, uint64_t expected = 0);
  // The elements from index `from` on (from <= size()) become `items`
  // (LINSERT, LREM): O(size() - from + items.size()) writes.
  void replace_tail(uint64_t from, const std::vector<std::string>& items);
  // Deletes n <= size() elements at the front / the back (LTRIM).
  void drop_front(uint64_t n);
  void drop_back(uint64_t n);

  // Writes the record if anything changed: deletes the key when the
  // collection is empty, stores it when new.
  void save();

 private:
  Collection(Keyspace& ks, std::string_view key, Record rec, bool exists);
  // The element at list index i (i < size()).
  std::string list_sub(uint64_t index) const { return list_sub_key(meta_.head + index); }
  // The n-th member in hash order (n < size()).
  std::pair<std::string, std::string> nth_member(uint64_t n);

  Keyspace& ks_;
  std::string key_;
  Record rec_;
  CollectionMeta meta_;
  bool exists_;  // a record is stored for it
  bool dirty_ = false;
};

}  // namespace qkv::kv
