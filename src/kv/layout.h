// How the key-value data of one group is laid out in its StateStore range
// (the grammar is docs/KV_FORMAT.md). Pure functions; this encoding is a
// persistent format shared by every replica, so any change needs a new
// format version.
//
//   '#' name                       group metadata (key count, expiry count, last stamp)
//   'e' expire_at_ms:u64be key     expiry index: one entry per key with a TTL
//   'k' position:u64be key         a key's record: type, flags, [expiry], payload
//   'c' position:u64be key_len:u32be key sub-key
//                                  an element of a list, set or hash (its
//                                  count or list bounds are in the record)
//
// A key's position is slot << 50 | (hash(key) mod 2^50), where slot is the
// Redis Cluster hash slot. Records are so ordered by slot (a slot is one
// contiguous range: moving slots between shards is a range copy) and,
// within a slot, by hash: SCAN's cursor is simply the position to resume at.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace qkv::kv {

// The kind of value a key holds. Codes are persistent.
enum class ValueType : uint8_t {
  kString = 1,
  kList = 2,    // a collection (is_collection()): elements under 'c'
  kSet = 3,     // a collection
  kZSet = 4,    // reserved: not implemented yet (see below)
  kHash = 5,    // a collection
  kStream = 6,  // a collection: entries, groups, PELs under 'c' (stream.h)
  kLock = 7,    // a native lock (LOCK/UNLOCK): holder, token, lease, waiters
  // Records of the reserved types are accepted with an opaque payload
  // (tests write them to check WRONGTYPE, TYPE and SCAN's TYPE filter).
};

// Lists, sets, hashes and streams keep their elements as separate 'c'
// records.
inline bool is_collection(ValueType t) {
  return t == ValueType::kList || t == ValueType::kSet || t == ValueType::kHash ||
         t == ValueType::kStream;
}

// What TYPE replies: "string", "list", ... ("none" is the caller's).
std::string_view type_name(ValueType t);
// The type named by `name` (case-insensitive), as SCAN's TYPE option reads it.
std::optional<ValueType> type_from_name(std::string_view name);

// A key's record.
struct Record {
  ValueType type = ValueType::kString;
  int64_t expire_at_ms = 0;  // absolute, ms since the Unix epoch; 0 = no expiry
  std::string payload;       // a string's bytes; a collection's CollectionMeta
};

inline constexpr uint8_t kRecordFlagExpiry = 0x01;

std::string encode_record(const Record& r);
// False if the bytes are not a valid record.
bool decode_record(std::string_view bytes, Record* r);
// Only the header (type and expiry), without copying the payload.
bool decode_record_header(std::string_view bytes, ValueType* type, int64_t* expire_at_ms);

// Redis Cluster's hash slot of a key: CRC16 (XMODEM) of the key, or of its
// hash tag (the bytes between the first '{' and the first '}' after it, if
// not empty), mod 16384.
inline constexpr uint32_t kSlots = 16384;
uint16_t key_slot(std::string_view key);
uint16_t crc16(std::string_view bytes);
// A 64-bit hash of the whole key (FNV-1a, then the SplitMix64 finalizer).
uint64_t key_hash(std::string_view key);
// slot << 50 | (key_hash(key) & (2^50 - 1)).
inline constexpr int kPositionHashBits = 50;
uint64_t key_position(std::string_view key);
inline uint16_t position_slot(uint64_t position) {
  return static_cast<uint16_t>(position >> kPositionHashBits);
}
// The first position of a slot (for range operations on slots).
inline uint64_t slot_first_position(uint16_t slot) {
  return static_cast<uint64_t>(slot) << kPositionHashBits;
}

// What a collection's record holds (its payload, encoded by
// encode_collection_meta()):
//   set, hash: count:u64be                 the number of elements (> 0)
//   list:      head:u64be tail:u64be       elements at sequence numbers
//                                          head .. tail-1, dense (count =
//                                          tail - head > 0)
//   stream:    kStreamMetaBytes            stream.h's StreamMeta; count is
//                                          its length (may be 0), groups its
//                                          consumer groups
// An empty list, set or hash is never stored: its key is deleted with its
// last element, as in Redis. A stream may be empty (Redis keeps it too).
struct CollectionMeta {
  uint64_t count = 0;   // sets, hashes, streams (entries)
  uint64_t head = 0;    // lists
  uint64_t tail = 0;
  uint64_t groups = 0;  // streams
  uint64_t size(ValueType t) const { return t == ValueType::kList ? tail - head : count; }
};
// The size of a stream's record payload (stream.h, StreamMeta).
inline constexpr size_t kStreamMetaBytes = 72;

// Where a new list starts: room for 2^63 pushes at either end.
inline constexpr uint64_t kListSeqStart = uint64_t{1} << 63;

std::string encode_collection_meta(ValueType t, const CollectionMeta& m);
// False if `payload` is not a valid meta of a collection of type t.
bool decode_collection_meta(ValueType t, std::string_view payload, CollectionMeta* m);

inline constexpr char kMetaTag = '#';
inline constexpr char kElementTag = 'c';
inline constexpr char kExpiryTag = 'e';
inline constexpr char kDataTag = 'k';
// Reserved for blocked clients (BLPOP and friends, lock waiters): their
// queues per key, and the index of their deadlines.
inline constexpr char kWaiterTag = 'w';
inline constexpr char kTimerTag = 't';

// 'k' position key.
std::string data_key(std::string_view key);
// 'k' position: where the records from `position` on start.
std::string data_key_at(uint64_t position);
// Splits a data key; false if it is not one.
bool parse_data_key(std::string_view storage_key, uint64_t* position, std::string_view* key);

// 'c' position:u64be key_len:u32be key: every element of the collection at
// `key` starts with this (the length makes a key's elements a range of
// their own even when another key starts with the same bytes).
std::string element_prefix(std::string_view key);
// element_prefix(key) + sub_key.
std::string element_key(std::string_view key, std::string_view sub_key);
// Splits an element key; false if it is not one.
bool parse_element_key(std::string_view storage_key, uint64_t* position, std::string_view* key,
                       std::string_view* sub_key);
// Sub-keys. A set member or hash field: member_hash(member):u64be member, so
// the members are in hash order (SSCAN and HSCAN's cursor is a hash, random
// picks seek to a random hash). A list element: its sequence number.
std::string member_sub_key(std::string_view member);
inline uint64_t member_hash(std::string_view member) { return key_hash(member); }
// Splits a member sub-key; false if it is too short.
bool parse_member_sub_key(std::string_view sub_key, uint64_t* hash, std::string_view* member);
std::string list_sub_key(uint64_t seq);
// The smallest storage key greater than every key starting with `prefix`
// ("" when there is none: the prefix is all 0xff bytes).
std::string prefix_end(std::string_view prefix);

// 'e' expire_at_ms key.
std::string expiry_key(int64_t expire_at_ms, std::string_view key);
bool parse_expiry_key(std::string_view storage_key, int64_t* expire_at_ms, std::string_view* key);

// '#' name.
std::string meta_key(std::string_view name);
inline constexpr std::string_view kMetaKeys = "keys";        // u64be: records under 'k'
inline constexpr std::string_view kMetaExpires = "expires";  // u64be: records with an expiry
inline constexpr std::string_view kMetaStamp = "stamp";      // u64be: largest stamp applied
inline constexpr std::string_view kMetaFormat = "format";    // u64be: layout version
// meta_key(kMetaScriptPrefix + sha1 hex): a script's body (SCRIPT LOAD, EVAL).
inline constexpr std::string_view kMetaScriptPrefix = "script:";
inline constexpr std::string_view kMetaFence = "fence";      // u64be: last fencing token granted
inline constexpr std::string_view kMetaWaiterSeq = "waiter_seq";  // u64be: last waiter number
inline constexpr std::string_view kMetaWaiters = "waiters";  // u64be: waiters queued
inline constexpr uint64_t kFormatVersion = 1;

void put_u64be(std::string* out, uint64_t v);
void put_u32be(std::string* out, uint32_t v);
uint64_t get_u64be(const char* p);
uint32_t get_u32be(const char* p);
std::string encode_u64be(uint64_t v);
// False unless `bytes` is exactly 8 bytes.
bool decode_u64be(std::string_view bytes, uint64_t* v);

}  // namespace qkv::kv
