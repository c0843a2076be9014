#include "storage/read_cache.h"

#include <gtest/gtest.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <string>

namespace qkv::storage {
namespace {

using Opt = std::optional<std::string>;

// A read: the cached answer, or what `store` says (filled in).
Opt read(ReadCache& c, const std::string& key, const Opt& store, bool* hit = nullptr) {
  Opt v;
  uint64_t g = 0;
  if (c.find(key, &v, &g)) {
    if (hit) *hit = true;
    return v;
  }
  if (hit) *hit = false;
  c.fill(key, store, g);
  return store;
}

TEST(ReadCache, ReadsFillAndHitIncludingAbsentKeys) {
  ReadCache c(1 << 20, 1 << 10);
  bool hit = false;
  EXPECT_EQ(read(c, "a", "1", &hit), Opt("1"));
  EXPECT_FALSE(hit);
  EXPECT_EQ(read(c, "a", "stale store answer never asked", &hit), Opt("1"));
  EXPECT_TRUE(hit);
  EXPECT_EQ(read(c, "b", std::nullopt, &hit), std::nullopt);
  EXPECT_EQ(read(c, "b", "x", &hit), std::nullopt);
  EXPECT_TRUE(hit);
  const ReadCache::Stats s = c.stats();
  EXPECT_EQ(s.hits, 2u);
  EXPECT_EQ(s.misses, 2u);
  EXPECT_EQ(s.entries, 2u);
  EXPECT_EQ(s.bytes, 1 + 1 + 1 + 2 * ReadCache::kEntryOverhead);
}

TEST(ReadCache, AReadThatRacedAWriteIsNotKept) {
  ReadCache c(1 << 20, 1 << 10);
  Opt v;
  uint64_t g = 0;
  ASSERT_FALSE(c.find("k", &v, &g));
  // The store read returned "old"; before it is filled in, a write of "new"
  // to k is applied (k was not cached, so the write itself adds nothing).
  rocksdb::WriteBatch wb;
  ASSERT_TRUE(wb.Put("k", "new").ok());
  c.apply_batch(wb);
  c.fill("k", Opt("old"), g);
  bool hit = true;
  EXPECT_EQ(read(c, "k", "new", &hit), Opt("new"));
  EXPECT_FALSE(hit);
  // The same for a range erase (snapshot install).
  ASSERT_FALSE(c.find("j", &v, &g));
  c.erase_range("a", "z");
  c.fill("j", Opt("old"), g);
  EXPECT_EQ(read(c, "j", "new", &hit), Opt("new"));
  EXPECT_FALSE(hit);
}

TEST(ReadCache, WritesUpdateCachedKeysAndNeverAddKeys) {
  ReadCache c(1 << 20, 1 << 10);
  read(c, "a", "1");
  read(c, "b", "2");
  read(c, "c", std::nullopt);
  read(c, "k1", "x");
  read(c, "k2", "y");
  read(c, "l", "z");
  rocksdb::WriteBatch wb;
  ASSERT_TRUE(wb.Put("a", "10").ok());
  ASSERT_TRUE(wb.Delete("b").ok());
  ASSERT_TRUE(wb.Put("c", "now here").ok());
  ASSERT_TRUE(wb.Put("new", "not read yet").ok());
  ASSERT_TRUE(wb.DeleteRange("k", "l").ok());
  c.apply_batch(wb);
  bool hit = false;
  EXPECT_EQ(read(c, "a", "?", &hit), Opt("10"));
  EXPECT_TRUE(hit);
  EXPECT_EQ(read(c, "c", "?", &hit), Opt("now here"));
  EXPECT_TRUE(hit);
  EXPECT_EQ(read(c, "l", "?", &hit), Opt("z"));  // outside [k, l)
  EXPECT_TRUE(hit);
  for (const char* gone : {"b", "new", "k1", "k2"}) {
    read(c, gone, "store", &hit);
    EXPECT_FALSE(hit) << gone;
  }
  // A value grown past the largest kept drops the key.
  rocksdb::WriteBatch big;
  ASSERT_TRUE(big.Put("a", std::string(2000, 'v')).ok());
  c.apply_batch(big);
  read(c, "a", "store", &hit);
  EXPECT_FALSE(hit);
}

TEST(ReadCache, WithFillOnWriteWritesAddKeysIntoFreeBytesAndNeverEvict) {
  // Room for 4 entries with 1-byte keys and values of up to 10 bytes.
  const uint64_t max = 4 * (ReadCache::kEntryOverhead + 11);
  ReadCache c(max, 1 << 10, /*fill_on_write=*/true);
  rocksdb::WriteBatch wb;
  ASSERT_TRUE(wb.Put("a", "1").ok());
  ASSERT_TRUE(wb.Put("b", "2").ok());
  ASSERT_TRUE(wb.Put("b", "22").ok());  // the last write of a key in a batch wins
  ASSERT_TRUE(wb.Put("c", "3").ok());
  ASSERT_TRUE(wb.Delete("c").ok());  // added, then gone again
  ASSERT_TRUE(wb.Put("d", "4").ok());
  ASSERT_TRUE(wb.DeleteRange("d", "e").ok());
  c.apply_batch(wb);
  EXPECT_EQ(c.stats().entries, 2u);
  bool hit = false;
  EXPECT_EQ(read(c, "a", "?", &hit), Opt("1"));
  EXPECT_TRUE(hit);
  EXPECT_EQ(read(c, "b", "?", &hit), Opt("22"));
  EXPECT_TRUE(hit);
  for (const char* gone : {"c", "d"}) {
    read(c, gone, std::nullopt, &hit);
    EXPECT_FALSE(hit) << gone;
  }
  // c and d are now cached as absent (two reads filled them): the cache is
  // full. A write of a new key finds no free bytes and evicts nothing...
  ASSERT_EQ(c.stats().entries, 4u);
  rocksdb::WriteBatch more;
  ASSERT_TRUE(more.Put("e", "5").ok());
  // ...while a write of a cached key still takes its new value.
  ASSERT_TRUE(more.Put("a", "0123456789").ok());
  c.apply_batch(more);
  EXPECT_EQ(c.stats().evictions, 0u);
  EXPECT_EQ(c.stats().entries, 4u);
  EXPECT_LE(c.stats().bytes, max);
  read(c, "e", "5", &hit);
  EXPECT_FALSE(hit);
  EXPECT_EQ(read(c, "a", "?", &hit), Opt("0123456789"));
  EXPECT_TRUE(hit);
  // A value over the largest kept is not added.
  ReadCache small(1 << 20, 4, /*fill_on_write=*/true);
  rocksdb::WriteBatch big;
  ASSERT_TRUE(big.Put("k", "12345").ok());
  ASSERT_TRUE(big.Put("l", "1234").ok());
  small.apply_batch(big);
  read(small, "k", "12345", &hit);
  EXPECT_FALSE(hit);
  EXPECT_EQ(read(small, "l", "?", &hit), Opt("1234"));
  EXPECT_TRUE(hit);
}

TEST(ReadCache, StaysWithinItsBytesAndKeepsWhatIsReadOften) {
  const uint64_t max = 20 * (ReadCache::kEntryOverhead + 10);
  ReadCache c(max, 1 << 10);
  read(c, "hot", "h");
  int hot_hits = 0;
  for (int i = 0; i < 2000; i++) {
    read(c, "cold" + std::to_string(i), std::string(4, 'c'));
    ASSERT_LE(c.stats().bytes, max);
    bool hit = false;
    read(c, "hot", "h", &hit);
    hot_hits += hit ? 1 : 0;
  }
  EXPECT_GT(c.stats().evictions, 1900u);
  // CLOCK: a key read between every two fills is almost never evicted.
  EXPECT_GE(hot_hits, 1990);
  // Values over the largest kept, and entries over the whole budget, are
  // not kept.
  bool hit = true;
  read(c, "big", std::string(2000, 'b'));
  read(c, "big", "x", &hit);
  EXPECT_FALSE(hit);
  ReadCache shared(4000, 1 << 20);  // values up to a quarter of the cache
  read(shared, "k", std::string(1000, 'v'));
  read(shared, "k", "x", &hit);
  EXPECT_TRUE(hit);
  read(shared, "l", std::string(1001, 'v'));
  read(shared, "l", "x", &hit);
  EXPECT_FALSE(hit);
  ReadCache tiny(ReadCache::kEntryOverhead, 1 << 10);
  read(tiny, "k", "v");
  read(tiny, "k", "v", &hit);
  EXPECT_FALSE(hit);
  EXPECT_EQ(tiny.stats().bytes, 0u);
}

// Range deletions, through a prefix group or a pass over the table: each
// erases exactly the cached keys in [begin, end), an empty end reaching to
// the last key, and the table, the groups and the byte count stay in step
// through fills, updates and evictions.
TEST(ReadCache, RangeDeletionsEraseExactlyTheKeysInTheirRange) {
  // Three groups of 1,000 keys (a group: keys sharing their first
  // kGroupPrefixBytes bytes), plus short keys that belong to no shared
  // group. A range within one group goes through that group's list; one
  // that crosses into the next group, or has no end, through the table.
  auto key = [](int i) {
    char b[16];
    std::snprintf(b, sizeof b, "%04d", i % 1000);
    if (i >= 3000) return "s" + std::string(b);  // shorter than a group prefix
    return std::string(ReadCache::kGroupPrefixBytes, static_cast<char>('a' + i / 1000)) + b;
  };
  const uint64_t max = 400 * (ReadCache::kEntryOverhead + 22 + 3);
  ReadCache c(max, 1 << 10);
  std::map<std::string, Opt> store;  // what the "store" holds
  std::mt19937 rng(5);
  for (int round = 0; round < 1500; round++) {
    for (int n = 0; n < 20; n++) {
      const std::string k = key(static_cast<int>(rng() % 4000));
      Opt want = store.count(k) ? store[k] : Opt();
      ASSERT_EQ(read(c, k, want), want) << k;
    }
    if (rng() % 3 == 0) {  // an update through a batch
      const std::string k = key(static_cast<int>(rng() % 4000));
      rocksdb::WriteBatch wb;
      ASSERT_TRUE(wb.Put(k, "u" + std::to_string(round)).ok());
      c.apply_batch(wb);
      store[k] = "u" + std::to_string(round);
    }
    int lo = static_cast<int>(rng() % 3990), hi = lo + 1 + static_cast<int>(rng() % 40);
    if (lo >= 3000) hi = std::min(hi, 3999);
    std::string b = key(lo), e = rng() % 10 == 0 ? std::string() : key(hi);
    auto in_store = [&](const std::string& k) { return store.count(k) ? store[k] : Opt(); };
    // Cached before the deletion: its first key, and the keys just outside.
    const std::string before = lo > 0 ? key(lo - 1) : std::string();
    for (const std::string& k : {b, before, e}) {
      if (!k.empty()) read(c, k, in_store(k));
    }
    // (One fill may have evicted another: find() says which are there,
    // and fills nothing.)
    auto cached = [&](const std::string& k) {
      Opt v;
      uint64_t g = 0;
      return !k.empty() && c.find(k, &v, &g);
    };
    const bool before_cached = cached(before), e_cached = cached(e);
    rocksdb::WriteBatch wb;
    ASSERT_TRUE(wb.DeleteRange(b, e).ok());
    c.apply_batch(wb);
    for (auto it = store.lower_bound(b); it != store.end() && (e.empty() || it->first < e);) {
      it = store.erase(it);
    }
    bool hit = false;
    for (const std::string& k : {before, e}) {  // hits: nothing filled meanwhile
      if (!(k == before ? before_cached : e_cached)) continue;
      hit = false;
      ASSERT_EQ(read(c, k, in_store(k), &hit), in_store(k));
      EXPECT_TRUE(hit) << "round " << round << ": " << k << " is outside the range";
    }
    read(c, b, Opt(), &hit);
    EXPECT_FALSE(hit) << "round " << round << ": " << b << " survived its range";
    const auto st = c.stats();
    ASSERT_LE(st.bytes, max);
    ASSERT_EQ(st.bytes == 0, st.entries == 0);
  }
  EXPECT_GT(c.stats().evictions, 0u);
  EXPECT_GT(c.stats().hits, 1000u);
  // Everything, then nothing.
  c.erase_range("", "");
  EXPECT_EQ(c.stats().entries, 0u);
  EXPECT_EQ(c.stats().bytes, 0u);
  ASSERT_EQ(read(c, key(1), Opt("x")), Opt("x"));
  bool hit = false;
  read(c, key(1), Opt("y"), &hit);
  EXPECT_TRUE(hit);
}

}  // namespace
}  // namespace qkv::storage
