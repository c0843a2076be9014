// The persistent layout (key encodings, hash slots, records) and glob
// patterns.
#include "kv/layout.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "kv/glob.h"
#include "kv/txn.h"
#include "storage/read_cache.h"
#include "storage/state_store.h"
#include "kv_test_util.h"

namespace qkv::kv {
namespace {

TEST(KvLayout, Crc16IsXmodem) {
  EXPECT_EQ(crc16("123456789"), 0x31C3);  // the standard check value
  EXPECT_EQ(crc16(""), 0);
}

TEST(KvLayout, KeySlotMatchesRedisCluster) {
  // Values from the Redis Cluster specification and CLUSTER KEYSLOT.
  EXPECT_EQ(key_slot("foo"), 12182);
  EXPECT_EQ(key_slot("somekey"), 11058);
  EXPECT_EQ(key_slot("foo{hash_tag}"), 2515);
  EXPECT_EQ(key_slot("bar{hash_tag}"), 2515);
  // Hash tags: the first '{' and the first '}' after it, if not empty.
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("{user1000}.followers"));
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("user1000"));
  EXPECT_EQ(key_slot("foo{}{bar}"), crc16("foo{}{bar}") % kSlots);  // empty tag: whole key
  EXPECT_EQ(key_slot("foo{{bar}}zap"), key_slot("{bar"));
  EXPECT_EQ(key_slot("foo{bar}{zap}"), key_slot("bar"));
  EXPECT_EQ(key_slot("{"), crc16("{") % kSlots);
}

TEST(KvLayout, PositionsOrderBySlotThenHash) {
  const std::string k = "some key";
  const uint64_t pos = key_position(k);
  EXPECT_EQ(position_slot(pos), key_slot(k));
  EXPECT_EQ(pos & ((uint64_t{1} << kPositionHashBits) - 1),
            key_hash(k) & ((uint64_t{1} << kPositionHashBits) - 1));
  // Keys with the same hash tag share a slot, so a slot's keys are one range.
  for (int i = 0; i < 100; i++) {
    const uint64_t p = key_position("{tag}" + std::to_string(i));
    EXPECT_GE(p, slot_first_position(key_slot("tag")));
    EXPECT_LT(p, slot_first_position(key_slot("tag") + 1));
  }
  // The hash is part of the persistent format: pin it.
  EXPECT_EQ(key_hash(""), 0xf52a15e9a9b5e89bull);
  EXPECT_EQ(key_hash("foo"), 0x6c2fe7703e1b0bcaull);
  EXPECT_EQ(key_position("foo"), 0xbe5be7703e1b0bcaull);
  EXPECT_NE(key_hash("a"), key_hash("b"));
}

TEST(KvLayout, DataKeysSortByPositionAndRoundTrip) {
  std::set<std::string> storage_keys;
  std::vector<std::string> keys = {"", "a", "b", "key:1", std::string("\0\xff", 2), "{x}y"};
  for (const auto& k : keys) {
    const std::string sk = data_key(k);
    uint64_t pos = 0;
    std::string_view back;
    ASSERT_TRUE(parse_data_key(sk, &pos, &back));
    EXPECT_EQ(back, k);
    EXPECT_EQ(pos, key_position(k));
    EXPECT_GE(sk, data_key_at(pos));
    storage_keys.insert(sk);
  }
  uint64_t last = 0;
  for (const auto& sk : storage_keys) {
    uint64_t pos = 0;
    std::string_view k;
    ASSERT_TRUE(parse_data_key(sk, &pos, &k));
    EXPECT_GE(pos, last);
    last = pos;
  }
  uint64_t pos = 0;
  std::string_view k;
  EXPECT_FALSE(parse_data_key("k123", &pos, &k));
  EXPECT_FALSE(parse_data_key(expiry_key(5, "x"), &pos, &k));
}

TEST(KvLayout, ExpiryKeysSortByTime) {
  EXPECT_LT(expiry_key(5, "zzz"), expiry_key(6, "a"));
  EXPECT_LT(expiry_key(255, "a"), expiry_key(256, "a"));
  int64_t at = 0;
  std::string_view k;
  const std::string sk = expiry_key(1'700'000'000'000, "key");  // k points into it
  ASSERT_TRUE(parse_expiry_key(sk, &at, &k));
  EXPECT_EQ(at, 1'700'000'000'000);
  EXPECT_EQ(k, "key");
}

TEST(KvLayout, RecordsRoundTrip) {
  Record r;
  r.payload = std::string("va\0lue", 6);
  Record back;
  ASSERT_TRUE(decode_record(encode_record(r), &back));
  EXPECT_EQ(back.type, ValueType::kString);
  EXPECT_EQ(back.expire_at_ms, 0);
  EXPECT_EQ(back.payload, r.payload);
  EXPECT_EQ(encode_record(r).size(), 2 + r.payload.size());  // no expiry field when none

  r.expire_at_ms = 1'700'000'000'123;
  ASSERT_TRUE(decode_record(encode_record(r), &back));
  EXPECT_EQ(back.expire_at_ms, r.expire_at_ms);
  EXPECT_EQ(back.payload, r.payload);

  EXPECT_FALSE(decode_record("", &back));
  EXPECT_FALSE(decode_record("\x01", &back));
  EXPECT_FALSE(decode_record(std::string("\x09\x00", 2), &back));      // unknown type
  EXPECT_FALSE(decode_record(std::string("\x01\x80", 2), &back));      // unknown flag
  EXPECT_FALSE(decode_record(std::string("\x01\x01\x00", 3), &back));  // short expiry
}

TEST(KvLayout, TypeNames) {
  EXPECT_EQ(type_name(ValueType::kString), "string");
  EXPECT_EQ(type_from_name("STRING"), ValueType::kString);
  EXPECT_EQ(type_from_name("list"), ValueType::kList);
  EXPECT_EQ(type_from_name("Stream"), ValueType::kStream);
  EXPECT_FALSE(type_from_name("none").has_value());
  EXPECT_FALSE(type_from_name("").has_value());
}

TEST(KvLayout, ElementKeys) {
  // A key's elements form one range, even when another key starts with the
  // same bytes; they sit at the key's position.
  const std::string p = element_prefix("big");
  EXPECT_EQ(p[0], kElementTag);
  const std::string e = element_key("big", member_sub_key("m"));
  EXPECT_EQ(e.substr(0, p.size()), p);
  EXPECT_NE(element_key("bigger", "").substr(0, p.size()), p);
  uint64_t pos = 0, h = 0;
  std::string_view key, sub, member;
  ASSERT_TRUE(parse_element_key(e, &pos, &key, &sub));
  EXPECT_EQ(pos, key_position("big"));
  EXPECT_EQ(key, "big");
  ASSERT_TRUE(parse_member_sub_key(sub, &h, &member));
  EXPECT_EQ(member, "m");
  EXPECT_EQ(h, member_hash("m"));
  EXPECT_FALSE(parse_element_key("c123", &pos, &key, &sub));
  EXPECT_FALSE(parse_element_key(data_key("k"), &pos, &key, &sub));
  // List sub-keys sort by sequence number.
  EXPECT_LT(list_sub_key(kListSeqStart - 1), list_sub_key(kListSeqStart));
  EXPECT_EQ(prefix_end("ab"), "ac");
  EXPECT_EQ(prefix_end(std::string("a\xff", 2)), "b");
  EXPECT_EQ(prefix_end("\xff"), "");
}

// The read cache groups keys by their first ReadCache::kGroupPrefixBytes
// bytes in the store, so that deleting a collection (a range from its
// element prefix to that prefix's end) walks only that collection's cached
// elements (storage/read_cache.h). That rests on this layout: the store's
// tag and group id, then an element key's tag and 8-byte position.
TEST(KvLayout, ACollectionsElementRangeIsOneReadCacheGroup) {
  constexpr size_t n = storage::ReadCache::kGroupPrefixBytes;
  for (const std::string key : {"", "h", "a much longer key than the prefix"}) {
    const std::string begin = storage::state_data_key(7, element_prefix(key));
    const std::string end = storage::state_data_key(7, prefix_end(element_prefix(key)));
    const std::string elem = storage::state_data_key(7, element_key(key, "field"));
    ASSERT_GE(begin.size(), n);
    ASSERT_GE(end.size(), n);
    EXPECT_EQ(begin.substr(0, n), end.substr(0, n)) << "key '" << key << "'";
    EXPECT_EQ(begin.substr(0, n), elem.substr(0, n)) << "key '" << key << "'";
  }
  // Different collections land in different groups (their positions).
  EXPECT_NE(storage::state_data_key(7, element_prefix("h1")).substr(0, n),
            storage::state_data_key(7, element_prefix("h2")).substr(0, n));
}

TEST(KvLayout, CollectionMetaRoundTrips) {
  CollectionMeta m;
  m.count = 5;
  CollectionMeta back;
  ASSERT_TRUE(decode_collection_meta(ValueType::kSet, encode_collection_meta(ValueType::kSet, m),
                                     &back));
  EXPECT_EQ(back.size(ValueType::kSet), 5u);
  m.head = kListSeqStart - 2;
  m.tail = kListSeqStart + 1;
  ASSERT_TRUE(decode_collection_meta(ValueType::kList,
                                     encode_collection_meta(ValueType::kList, m), &back));
  EXPECT_EQ(back.size(ValueType::kList), 3u);
  // Empty collections and other types are never valid metadata.
  EXPECT_FALSE(decode_collection_meta(ValueType::kHash, encode_u64be(0), &back));
  EXPECT_FALSE(decode_collection_meta(ValueType::kString, encode_u64be(1), &back));
  EXPECT_FALSE(decode_collection_meta(ValueType::kList, encode_u64be(1), &back));
}

// Txn::delete_range hides the store's keys and earlier writes in the range;
// later writes survive it, in reads and once committed.
TEST(KvTxn, DeleteRange) {
  test::KvHarness kv;
  storage::StateStore& store = kv.store();
  {
    storage::StateBatch b(7);
    for (const char* k : {"a", "b1", "b2", "b3", "c"}) b.put(k, "old");
    ASSERT_OK(store.apply(b, 1, 1, nullptr));
  }
  Txn txn(&store, 7, /*writable=*/true);
  txn.put("b0", "pending");
  EXPECT_EQ(txn.get("b2"), "old");  // cached, then deleted
  txn.delete_range("b", "c");
  txn.put("b2", "new");
  EXPECT_EQ(txn.get("b1"), std::nullopt);
  EXPECT_EQ(txn.get("b0"), std::nullopt);
  EXPECT_EQ(txn.get("b2"), "new");
  EXPECT_EQ(txn.get("c"), "old");
  std::vector<std::string> seen;
  txn.scan("", "", [&](std::string_view k, std::string_view v) {
    seen.push_back(std::string(k) + "=" + std::string(v));
    return true;
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"a=old", "b2=new", "c=old"}));
  storage::StateBatch b(7);
  txn.commit(&b);
  ASSERT_OK(store.apply(b, 2, 1, nullptr));
  Txn after(&store, 7, /*writable=*/false);
  seen.clear();
  after.scan("", "", [&](std::string_view k, std::string_view v) {
    seen.push_back(std::string(k) + "=" + std::string(v));
    return true;
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"a=old", "b2=new", "c=old"}));
}

// Txn::deletes_under: whether a deletion reaches any key with a prefix
// (the state machine rewrites its '#' counters when one does).
TEST(KvTxn, DeletesUnder) {
  test::KvHarness kv;
  {
    Txn txn(&kv.store(), 7, /*writable=*/true);
    EXPECT_FALSE(txn.deletes_under("#"));
    txn.delete_range("b", "c");
    EXPECT_TRUE(txn.deletes_under("b"));
    EXPECT_TRUE(txn.deletes_under("bz"));
    EXPECT_FALSE(txn.deletes_under("a"));  // [a, b) ends where the range begins
    EXPECT_FALSE(txn.deletes_under("c"));  // the range ends before c
    EXPECT_FALSE(txn.deletes_under("#"));
    txn.delete_range("#script:", "#script;");
    EXPECT_TRUE(txn.deletes_under("#"));   // a range inside the prefix
    EXPECT_FALSE(txn.deletes_under("#k"));
    txn.delete_range("\xfe", "\xff\x01");
    EXPECT_TRUE(txn.deletes_under("\xff"));  // a prefix with no end
  }
  Txn cleared(&kv.store(), 7, /*writable=*/true);
  cleared.clear();
  EXPECT_TRUE(cleared.deletes_under("#"));
}

TEST(KvGlob, RedisPatterns) {
  struct Case {
    const char* pattern;
    const char* subject;
    bool match;
  };
  const Case cases[] = {
      {"*", "", true},
      {"*", "anything", true},
      {"h?llo", "hello", true},
      {"h?llo", "hllo", false},
      {"h*llo", "hllo", true},
      {"h*llo", "heeeello", true},
      {"h[ae]llo", "hello", true},
      {"h[ae]llo", "hillo", false},
      {"h[^e]llo", "hallo", true},
      {"h[^e]llo", "hello", false},
      {"h[a-b]llo", "hbllo", true},
      {"h[b-a]llo", "hallo", true},
      {"h[a-b]llo", "hcllo", false},
      {"\\*", "*", true},
      {"\\*", "a", false},
      {"a\\", "a\\", true},
      {"[\\]]", "]", true},
      {"[abc", "b", true},
      {"[abc", "d", false},
      {"[", "x", false},
      {"[^", "x", true},
      {"a*b*c", "aXbYc", true},
      {"a*b*c", "aXbY", false},
      {"*a", "ba", true},
      {"a**", "a", true},
      {"a*?", "a", false},
      {"?", "", false},
      {"k[0-9]", "k7", true},
      {"k[0-9]", "kx", false},
      {"*[", "a[", false},
      {"", "", true},
      {"", "a", false},
      {"abc", "abc", true},
      {"ab", "abc", false},
      {"*b", "abc", false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(glob_match(c.pattern, c.subject), c.match)
        << "pattern '" << c.pattern << "' subject '" << c.subject << "'";
  }
}

TEST(KvGlob, NoExponentialBlowup) {
  // A pattern that makes naive recursive matchers take forever.
  std::string pattern;
  for (int i = 0; i < 30; i++) pattern += "a*";
  pattern += "b";
  EXPECT_FALSE(glob_match(pattern, std::string(5000, 'a')));
}

TEST(KvGlob, Literal) {
  EXPECT_TRUE(glob_is_literal("user:1"));
  EXPECT_FALSE(glob_is_literal("user:*"));
  EXPECT_FALSE(glob_is_literal("a?"));
  EXPECT_FALSE(glob_is_literal("[a]"));
  EXPECT_FALSE(glob_is_literal("a\\b"));
}

}  // namespace
}  // namespace qkv::kv
