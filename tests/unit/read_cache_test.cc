#include "storage/read_cache.h"

#include <gtest/gtest.h>
#include <rocksdb/write_batch.h>

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

}  // namespace
}  // namespace qkv::storage
