// Stream: one stream as a command reads or changes it (the grammar is
// docs/KV_FORMAT.md). The key's record holds the StreamMeta; everything else
// is an element record under the key's element prefix, told apart by the
// first byte of its sub-key:
//
//   'E' ms:u64be seq:u64be                    -> fields   an entry
//   'R' ~ms:u64be ~seq:u64be                  -> ""       the entry, newest first
//   'G' group                                 -> group    a consumer group
//   'P' len:u32be group ms seq                -> nack     the group's PEL
//   'C' len:u32be group consumer              -> consumer a group's consumer
//   'Q' len:u32be group len:u32be consumer ms seq -> ""   a consumer's PEL
//
// So every operation touches only what it reads or changes: XADD writes two
// entry records and the meta, XRANGE and XREVRANGE are one range scan each
// (the 'R' index gives newest-first order without a reverse iterator),
// delivering an entry to a consumer writes its 'P' and 'Q' records, XACK
// deletes them, and a consumer's pending entries are a range of their own.
//
// Changes go to the Keyspace at once (write-through); save() writes the
// record (the meta), and must be called last by every command that changed
// the stream. Unlike the other collections, an empty stream is kept.
//
// Not thread-safe; lives for one command.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "kv/keyspace.h"
#include "kv/layout.h"

namespace qkv::kv {

struct StreamId {
  uint64_t ms = 0;
  uint64_t seq = 0;
  auto operator<=>(const StreamId&) const = default;
  bool is_zero() const { return ms == 0 && seq == 0; }
  static constexpr StreamId max() { return {UINT64_MAX, UINT64_MAX}; }
  // The next / previous id; false (and no change) at max() / 0-0.
  bool incr();
  bool decr();
  // "ms-seq".
  std::string str() const;
};

// ms:u64be seq:u64be.
std::string encode_stream_id(StreamId id);
StreamId decode_stream_id(const char* p);

// The record payload (kStreamMetaBytes, layout.h):
//   length last first max_deleted entries_added groups
// (ids as ms:u64be seq:u64be, the rest u64be).
struct StreamMeta {
  uint64_t length = 0;         // entries now
  StreamId last;               // the last id ever generated (XADD, XSETID)
  StreamId first;              // the first entry's id; 0-0 when empty
  StreamId max_deleted;        // the largest id XDEL deleted (XSETID may set it)
  uint64_t entries_added = 0;  // entries ever added (XSETID may set it)
  uint64_t groups = 0;         // consumer groups
};
std::string encode_stream_meta(const StreamMeta& m);
bool decode_stream_meta(std::string_view payload, StreamMeta* m);

// Redis's "invalid" entries-read counter of a group.
inline constexpr int64_t kEntriesReadUnknown = -1;

struct StreamGroup {
  std::string name;
  StreamId last;  // last-delivered-id
  int64_t entries_read = kEntriesReadUnknown;
  uint64_t pending = 0;  // PEL entries
  uint64_t consumers = 0;
};

struct StreamNack {
  int64_t delivery_ms = 0;  // last delivery, stamp time
  uint64_t deliveries = 0;
  std::string consumer;
};

struct StreamConsumer {
  std::string name;
  int64_t seen_ms = 0;   // last time it read or claimed
  uint64_t pending = 0;  // its PEL entries
};

class Stream {
 public:
  // The stream whose live record `rec` (type kStream) was found at `key`.
  Stream(Keyspace& ks, std::string_view key, Record rec);
  // A new, empty stream at `key` (whatever the key held, expired, is
  // deleted first). Stored by save().
  static Stream create(Keyspace& ks, std::string_view key);

  const StreamMeta& meta() const { return meta_; }
  StreamMeta& mutable_meta() {
    dirty_ = true;
    return meta_;
  }
  const std::string& key() const { return key_; }
  Keyspace& ks() { return ks_; }

  // --- Entries ----------------------------------------------------------
  // Appends an entry with fields [name, value, ...] (id > meta().last):
  // updates length, last, first and entries_added.
  void append(StreamId id, std::span<const std::string_view> fields);
  // The entry's encoded fields, if it exists.
  std::optional<std::string> entry(StreamId id);
  bool entry_exists(StreamId id) { return entry(id).has_value(); }
  // Deletes one entry (length and first are updated; max_deleted is the
  // caller's). False if there was none.
  bool remove_entry(StreamId id);
  // fn(id, fields) for the entries with id >= from (reverse: <= from, newest
  // first), in order, until fn returns false. fn may not change the stream.
  using EntryVisitor = std::function<bool(StreamId id, std::string_view fields)>;
  void for_each_entry(StreamId from, const EntryVisitor& fn, uint64_t expected = 0);
  void for_each_entry_reverse(StreamId from, const EntryVisitor& fn, uint64_t expected = 0);
  // The first entry at or after `from` / the last one, if any.
  std::optional<StreamId> first_entry_from(StreamId from);
  std::optional<StreamId> last_entry();
  // Deletes the oldest entries while more than `maxlen` remain, or while
  // the oldest is below `minid`; at most `limit` (0: no limit). Returns the
  // number deleted.
  uint64_t trim_maxlen(uint64_t maxlen, uint64_t limit);
  uint64_t trim_minid(StreamId minid, uint64_t limit);

  // Fields as stored: n:u32be then len:u32be bytes per string.
  static std::string encode_fields(std::span<const std::string_view> fields);
  // Decodes into views of `fields`; false if malformed.
  static bool decode_fields(std::string_view fields, std::vector<std::string_view>* out);

  // --- Groups -------------------------------------------------------------
  std::optional<StreamGroup> group(std::string_view name);
  // Creates (counted in meta().groups) or rewrites a group's record.
  void put_group(const StreamGroup& g, bool is_new);
  // Deletes a group with its PEL and consumers.
  void destroy_group(const StreamGroup& g);
  // fn(group) for every group, in name order, until fn returns false.
  void for_each_group(const std::function<bool(const StreamGroup&)>& fn);

  // --- Consumers ------------------------------------------------------------
  std::optional<StreamConsumer> consumer(const StreamGroup& g, std::string_view name);
  // Creates (g.consumers++) or rewrites a consumer's record (not the group's:
  // the caller puts the group after changing it).
  void put_consumer(StreamGroup& g, const StreamConsumer& c, bool is_new);
  // Deletes a consumer and its pending entries (from the group's PEL too):
  // g.consumers and g.pending are updated. Returns how many were pending.
  uint64_t delete_consumer(StreamGroup& g, const StreamConsumer& c);
  void for_each_consumer(const StreamGroup& g,
                         const std::function<bool(const StreamConsumer&)>& fn);

  // --- Pending entries (PEL) ------------------------------------------------
  std::optional<StreamNack> nack(const StreamGroup& g, StreamId id);
  // Writes the PEL entry `id` as `n`. `old` is its previous state (nullopt
  // if new): the consumers' PELs and pending counts (their records are
  // rewritten: a StreamConsumer read before is stale after) and g.pending
  // follow. The caller puts g.
  void put_nack(StreamGroup& g, StreamId id, const StreamNack& n,
                const std::optional<StreamNack>& old);
  void del_nack(StreamGroup& g, StreamId id, const StreamNack& n);
  // fn(id, nack) for the group's PEL from `from`, in id order.
  void for_each_nack(const StreamGroup& g, StreamId from,
                     const std::function<bool(StreamId, const StreamNack&)>& fn,
                     uint64_t expected = 0);
  // fn(id) for one consumer's PEL from `from`, in id order.
  void for_each_consumer_nack(const StreamGroup& g, std::string_view consumer, StreamId from,
                              const std::function<bool(StreamId)>& fn, uint64_t expected = 0);
  // Writes the record if anything changed (the stream is kept even when
  // empty).
  void save();

 private:
  Stream(Keyspace& ks, std::string_view key, Record rec, bool exists);
  void adjust_consumer(const StreamGroup& g, const std::string& consumer, int64_t delta);

  Keyspace& ks_;
  std::string key_;
  Record rec_;
  StreamMeta meta_;
  bool exists_;
  bool dirty_ = false;
};

// TEST_check_invariants() for one stream: `payload` its record's payload,
// `elements` all its element records (sub-key, value) in order.
Status check_stream_elements(std::string_view key, std::string_view payload,
                             const std::vector<std::pair<std::string, std::string>>& elements);

}  // namespace qkv::kv
