#include "kv/layout.h"

#include <strings.h>

#include <array>

namespace qkv::kv {

namespace {

constexpr ValueType kAllTypes[] = {ValueType::kString, ValueType::kList, ValueType::kSet,
                                   ValueType::kZSet,   ValueType::kHash, ValueType::kStream,
                                   ValueType::kLock};

}  // namespace

std::string_view type_name(ValueType t) {
  switch (t) {
    case ValueType::kString:
      return "string";
    case ValueType::kList:
      return "list";
    case ValueType::kSet:
      return "set";
    case ValueType::kZSet:
      return "zset";
    case ValueType::kHash:
      return "hash";
    case ValueType::kStream:
      return "stream";
    case ValueType::kLock:
      return "lock";
  }
  return "unknown";
}

std::optional<ValueType> type_from_name(std::string_view name) {
  for (ValueType t : kAllTypes) {
    const std::string_view n = type_name(t);
    if (name.size() == n.size() && strncasecmp(name.data(), n.data(), n.size()) == 0) return t;
  }
  return std::nullopt;
}

void put_u64be(std::string* out, uint64_t v) {
  char b[8];
  for (int i = 7; i >= 0; i--) {
    b[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  out->append(b, 8);
}

void put_u32be(std::string* out, uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  out->append(b, 4);
}

uint64_t get_u64be(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

uint32_t get_u32be(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

std::string encode_u64be(uint64_t v) {
  std::string s;
  put_u64be(&s, v);
  return s;
}

bool decode_u64be(std::string_view bytes, uint64_t* v) {
  if (bytes.size() != 8) return false;
  *v = get_u64be(bytes.data());
  return true;
}

std::string encode_record(const Record& r) {
  std::string out;
  out.reserve(2 + 8 + r.payload.size());
  out.push_back(static_cast<char>(r.type));
  if (r.expire_at_ms != 0) {
    out.push_back(static_cast<char>(kRecordFlagExpiry));
    put_u64be(&out, static_cast<uint64_t>(r.expire_at_ms));
  } else {
    out.push_back(0);
  }
  out.append(r.payload);
  return out;
}

bool decode_record_header(std::string_view bytes, ValueType* type, int64_t* expire_at_ms) {
  if (bytes.size() < 2) return false;
  const auto t = static_cast<uint8_t>(bytes[0]);
  const auto flags = static_cast<uint8_t>(bytes[1]);
  if (t < static_cast<uint8_t>(ValueType::kString) ||
      t > static_cast<uint8_t>(ValueType::kLock)) {
    return false;
  }
  if ((flags & ~kRecordFlagExpiry) != 0) return false;
  *type = static_cast<ValueType>(t);
  *expire_at_ms = 0;
  if (flags & kRecordFlagExpiry) {
    if (bytes.size() < 10) return false;
    *expire_at_ms = static_cast<int64_t>(get_u64be(bytes.data() + 2));
    if (*expire_at_ms == 0) return false;
  }
  return true;
}

bool decode_record(std::string_view bytes, Record* r) {
  if (!decode_record_header(bytes, &r->type, &r->expire_at_ms)) return false;
  const size_t header = r->expire_at_ms != 0 ? 10 : 2;
  r->payload.assign(bytes.substr(header));
  return true;
}

namespace {

// CRC-16/XMODEM, a byte at a time: entry b is the CRC of the byte b.
constexpr std::array<uint16_t, 256> make_crc16_table() {
  std::array<uint16_t, 256> t{};
  for (int b = 0; b < 256; b++) {
    auto crc = static_cast<uint16_t>(b << 8);
    for (int i = 0; i < 8; i++) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<uint16_t>(crc << 1);
    }
    t[static_cast<size_t>(b)] = crc;
  }
  return t;
}
constexpr std::array<uint16_t, 256> kCrc16Table = make_crc16_table();

}  // namespace

uint16_t crc16(std::string_view bytes) {
  // CRC-16/XMODEM: polynomial 0x1021, initial value 0, no reflection.
  uint16_t crc = 0;
  for (char ch : bytes) {
    crc = static_cast<uint16_t>((crc << 8) ^ kCrc16Table[((crc >> 8) ^ static_cast<uint8_t>(ch)) & 0xff]);
  }
  return crc;
}

uint16_t key_slot(std::string_view key) {
  const size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return static_cast<uint16_t>(crc16(key) % kSlots);
}

uint64_t key_hash(std::string_view key) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a offset basis
  for (char ch : key) {
    h ^= static_cast<uint8_t>(ch);
    h *= 0x100000001b3ull;  // FNV prime
  }
  // SplitMix64's finalizer: every input bit affects every output bit.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

uint64_t key_position(std::string_view key) {
  constexpr uint64_t kMask = (uint64_t{1} << kPositionHashBits) - 1;
  return slot_first_position(key_slot(key)) | (key_hash(key) & kMask);
}

std::string data_key_at(uint64_t position) {
  std::string out(1, kDataTag);
  put_u64be(&out, position);
  return out;
}

std::string data_key(std::string_view key) {
  std::string out;
  out.reserve(9 + key.size());
  out.push_back(kDataTag);
  put_u64be(&out, key_position(key));
  out.append(key);
  return out;
}

bool parse_data_key(std::string_view storage_key, uint64_t* position, std::string_view* key) {
  if (storage_key.size() < 9 || storage_key[0] != kDataTag) return false;
  *position = get_u64be(storage_key.data() + 1);
  *key = storage_key.substr(9);
  return true;
}

std::string expiry_key(int64_t expire_at_ms, std::string_view key) {
  std::string out;
  out.reserve(9 + key.size());
  out.push_back(kExpiryTag);
  put_u64be(&out, static_cast<uint64_t>(expire_at_ms));
  out.append(key);
  return out;
}

bool parse_expiry_key(std::string_view storage_key, int64_t* expire_at_ms, std::string_view* key) {
  if (storage_key.size() < 9 || storage_key[0] != kExpiryTag) return false;
  *expire_at_ms = static_cast<int64_t>(get_u64be(storage_key.data() + 1));
  *key = storage_key.substr(9);
  return true;
}

std::string encode_collection_meta(ValueType t, const CollectionMeta& m) {
  std::string out;
  if (t == ValueType::kList) {
    put_u64be(&out, m.head);
    put_u64be(&out, m.tail);
  } else {
    put_u64be(&out, m.count);
  }
  return out;
}

bool decode_collection_meta(ValueType t, std::string_view payload, CollectionMeta* m) {
  if (!is_collection(t)) return false;
  *m = CollectionMeta{};
  if (t == ValueType::kStream) {
    // length:u64be ... groups:u64be (the last field): stream.h's StreamMeta.
    if (payload.size() != kStreamMetaBytes) return false;
    m->count = get_u64be(payload.data());
    m->groups = get_u64be(payload.data() + kStreamMetaBytes - 8);
    return true;
  }
  if (t == ValueType::kList) {
    if (payload.size() != 16) return false;
    m->head = get_u64be(payload.data());
    m->tail = get_u64be(payload.data() + 8);
    return m->head < m->tail;
  }
  if (payload.size() != 8) return false;
  m->count = get_u64be(payload.data());
  return m->count > 0;
}

std::string element_prefix(std::string_view key) {
  std::string out;
  out.reserve(13 + key.size());
  out.push_back(kElementTag);
  put_u64be(&out, key_position(key));
  put_u32be(&out, static_cast<uint32_t>(key.size()));
  out.append(key);
  return out;
}

std::string element_key(std::string_view key, std::string_view sub_key) {
  std::string out = element_prefix(key);
  out.append(sub_key);
  return out;
}

bool parse_element_key(std::string_view storage_key, uint64_t* position, std::string_view* key,
                       std::string_view* sub_key) {
  if (storage_key.size() < 13 || storage_key[0] != kElementTag) return false;
  *position = get_u64be(storage_key.data() + 1);
  uint32_t len = 0;
  for (int i = 0; i < 4; i++) len = (len << 8) | static_cast<uint8_t>(storage_key[9 + i]);
  if (storage_key.size() - 13 < len) return false;
  *key = storage_key.substr(13, len);
  *sub_key = storage_key.substr(13 + len);
  return true;
}

std::string member_sub_key(std::string_view member) {
  std::string out;
  out.reserve(8 + member.size());
  put_u64be(&out, member_hash(member));
  out.append(member);
  return out;
}

bool parse_member_sub_key(std::string_view sub_key, uint64_t* hash, std::string_view* member) {
  if (sub_key.size() < 8) return false;
  *hash = get_u64be(sub_key.data());
  *member = sub_key.substr(8);
  return true;
}

std::string list_sub_key(uint64_t seq) { return encode_u64be(seq); }

std::string prefix_end(std::string_view prefix) {
  std::string out(prefix);
  while (!out.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(out.back());
    if (last != 0xff) {
      last++;
      return out;
    }
    out.pop_back();
  }
  return out;
}

std::string meta_key(std::string_view name) {
  std::string out(1, kMetaTag);
  out.append(name);
  return out;
}

}  // namespace qkv::kv
