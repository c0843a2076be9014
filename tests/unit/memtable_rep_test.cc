// The key-indexed memtable (storage/memtable_rep.h) against RocksDB's own
// skip list: two databases given the same writes must answer every read the
// same way, at the latest state and at snapshots, through point reads and
// through iterators moved in both directions; and readers running beside the
// writer must never see a key go back.
#include "storage/memtable_rep.h"

#include <gtest/gtest.h>
#include <rocksdb/comparator.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "base/check.h"
#include "unit/temp_dir.h"

namespace qkv::storage {
namespace {


struct TempDir : test::TempDir {
  TempDir() : test::TempDir("qkv-memtable") {}
};

std::unique_ptr<rocksdb::DB> Open(const std::string& dir, bool indexed, size_t write_buffer) {
  rocksdb::Options o;
  o.create_if_missing = true;
  o.write_buffer_size = write_buffer;
  if (indexed) {
    o.memtable_factory = std::make_shared<KeyIndexedMemTableFactory>();
    o.allow_concurrent_memtable_write = false;
  }
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(o, dir, &db);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return std::unique_ptr<rocksdb::DB>(db);
}

// Keys that share prefixes, are prefixes of each other, hold bytes above
// 0x7f and zero bytes, and one empty key: where a bytewise order is easy to
// get wrong.
std::vector<std::string> Keys() {
  std::vector<std::string> keys = {"", "a", "ab", "abc", "b", std::string("a\0b", 3),
                                   "\x80", "\xff\xff", "zz"};
  for (int i = 0; i < 120; i++) {
    std::string k = "k" + std::to_string(i * 7919 % 1000);
    if (i % 5 == 0) k += std::string(1, static_cast<char>(0x90 + i % 16));
    keys.push_back(k);
  }
  return keys;
}

std::string Describe(rocksdb::Iterator* it) {
  if (!it->Valid()) return "<end>";
  return it->key().ToString() + "=" + it->value().ToString();
}

struct Pair {
  std::unique_ptr<rocksdb::DB> a, b;  // a: key-indexed, b: skip list
};

void Differential(uint32_t seed, size_t write_buffer) {
  SCOPED_TRACE("seed " + std::to_string(seed) + " write buffer " + std::to_string(write_buffer));
  TempDir da, db;
  Pair p{Open(da.path(), true, write_buffer), Open(db.path(), false, write_buffer)};
  ASSERT_TRUE(p.a && p.b);
  std::mt19937 rng(seed);
  const std::vector<std::string> keys = Keys();
  // A few keys are written far more often, as the store's metadata is.
  auto pick = [&] {
    if (rng() % 3 == 0) return keys[rng() % 4];
    return keys[rng() % keys.size()];
  };
  struct Snap {
    const rocksdb::Snapshot* a;
    const rocksdb::Snapshot* b;
  };
  std::vector<Snap> snaps;
  int value_counter = 0;

  auto check_reads = [&](const rocksdb::Snapshot* sa, const rocksdb::Snapshot* sb) {
    rocksdb::ReadOptions ra, rb;
    ra.snapshot = sa;
    rb.snapshot = sb;
    for (int i = 0; i < 20; i++) {
      const std::string k = pick();
      std::string va, vb;
      rocksdb::Status s1 = p.a->Get(ra, k, &va), s2 = p.b->Get(rb, k, &vb);
      ASSERT_EQ(s1.code(), s2.code()) << "Get " << k;
      if (s1.ok()) {
        ASSERT_EQ(va, vb) << "Get " << k;
      }
    }
    std::unique_ptr<rocksdb::Iterator> ia(p.a->NewIterator(ra)), ib(p.b->NewIterator(rb));
    for (int step = 0; step < 40; step++) {
      const int op = static_cast<int>(rng() % 8);
      std::string what;
      if (op == 0) {
        ia->SeekToFirst(), ib->SeekToFirst(), what = "SeekToFirst";
      } else if (op == 1) {
        ia->SeekToLast(), ib->SeekToLast(), what = "SeekToLast";
      } else if (op == 2) {
        const std::string k = pick();
        ia->Seek(k), ib->Seek(k), what = "Seek " + k;
      } else if (op == 3) {
        const std::string k = pick();
        ia->SeekForPrev(k), ib->SeekForPrev(k), what = "SeekForPrev " + k;
      } else if (op <= 5) {
        if (!ia->Valid() || !ib->Valid()) continue;
        ia->Next(), ib->Next(), what = "Next";
      } else {
        if (!ia->Valid() || !ib->Valid()) continue;
        ia->Prev(), ib->Prev(), what = "Prev";
      }
      ASSERT_EQ(Describe(ia.get()), Describe(ib.get())) << what;
      ASSERT_TRUE(ia->status().ok() && ib->status().ok());
    }
    // A whole pass each way.
    std::vector<std::string> fa, fb;
    for (ia->SeekToFirst(); ia->Valid(); ia->Next()) fa.push_back(Describe(ia.get()));
    for (ib->SeekToFirst(); ib->Valid(); ib->Next()) fb.push_back(Describe(ib.get()));
    ASSERT_EQ(fa, fb);
    fa.clear(), fb.clear();
    for (ia->SeekToLast(); ia->Valid(); ia->Prev()) fa.push_back(Describe(ia.get()));
    for (ib->SeekToLast(); ib->Valid(); ib->Prev()) fb.push_back(Describe(ib.get()));
    ASSERT_EQ(fa, fb);
  };

  for (int round = 0; round < 300; round++) {
    rocksdb::WriteBatch batch;
    const int ops = 1 + static_cast<int>(rng() % 12);
    for (int i = 0; i < ops; i++) {
      const int op = static_cast<int>(rng() % 20);
      if (op < 14) {
        // Values of varied size, some large enough to take arena blocks.
        std::string v = "v" + std::to_string(value_counter++);
        if (rng() % 10 == 0) v.append(rng() % 5000, 'x');
        ASSERT_TRUE(batch.Put(pick(), v).ok());
      } else if (op < 18) {
        ASSERT_TRUE(batch.Delete(pick()).ok());
      } else {
        std::string lo = pick(), hi = pick();
        if (hi < lo) std::swap(lo, hi);
        if (lo != hi) {
          ASSERT_TRUE(batch.DeleteRange(lo, hi).ok());
        }
      }
    }
    rocksdb::WriteBatch copy = batch;
    ASSERT_TRUE(p.a->Write(rocksdb::WriteOptions(), &batch).ok());
    ASSERT_TRUE(p.b->Write(rocksdb::WriteOptions(), &copy).ok());
    if (rng() % 10 == 0) snaps.push_back({p.a->GetSnapshot(), p.b->GetSnapshot()});
    if (snaps.size() > 4 || (!snaps.empty() && rng() % 15 == 0)) {
      const size_t i = rng() % snaps.size();
      p.a->ReleaseSnapshot(snaps[i].a);
      p.b->ReleaseSnapshot(snaps[i].b);
      snaps.erase(snaps.begin() + static_cast<long>(i));
    }
    if (round % 3 == 0) {
      check_reads(nullptr, nullptr);
      if (::testing::Test::HasFatalFailure()) return;
      if (!snaps.empty()) {
        const Snap& s = snaps[rng() % snaps.size()];
        check_reads(s.a, s.b);
        if (::testing::Test::HasFatalFailure()) return;
      }
    }
    if (round % 100 == 99) {
      // Flushing reads the memtable in order into a table file.
      ASSERT_TRUE(p.a->Flush(rocksdb::FlushOptions()).ok());
      ASSERT_TRUE(p.b->Flush(rocksdb::FlushOptions()).ok());
    }
  }
  for (const Snap& s : snaps) {
    p.a->ReleaseSnapshot(s.a);
    p.b->ReleaseSnapshot(s.b);
  }
  check_reads(nullptr, nullptr);
}

TEST(MemTableRep, AnswersAsRocksDbsSkipListDoesWhileAllIsInTheMemtable) {
  for (uint32_t seed = 1; seed <= 6; seed++) {
    Differential(seed, 64 << 20);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(MemTableRep, AnswersAsRocksDbsSkipListDoesAcrossFlushes) {
  // Small memtables: many are filled, switched and flushed while read.
  for (uint32_t seed = 101; seed <= 104; seed++) {
    Differential(seed, 64 << 10);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(MemTableRep, ManyVersionsOfOneKeyReadBackwardsAndAtOldSnapshots) {
  TempDir d;
  std::unique_ptr<rocksdb::DB> db = Open(d.path(), true, 64 << 20);
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "a", "first").ok());
  ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "c", "last").ok());
  const rocksdb::Snapshot* early = nullptr;
  for (int i = 0; i < 20000; i++) {
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "b", std::to_string(i)).ok());
    if (i == 10) early = db->GetSnapshot();
  }
  std::string v;
  ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), "b", &v).ok());
  EXPECT_EQ(v, "19999");
  rocksdb::ReadOptions at_early;
  at_early.snapshot = early;
  ASSERT_TRUE(db->Get(at_early, "b", &v).ok());
  EXPECT_EQ(v, "10");
  for (const rocksdb::ReadOptions& ro : {rocksdb::ReadOptions(), at_early}) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro));
    std::string seen;
    for (it->SeekToLast(); it->Valid(); it->Prev()) seen += it->key().ToString() + it->value().ToString() + ";";
    EXPECT_EQ(seen, ro.snapshot ? "clast;b10;afirst;" : "clast;b19999;afirst;");
  }
  db->ReleaseSnapshot(early);
  // The memtable's entry count over a range is estimated, not walked.
  uint64_t count = 0, size = 0;
  rocksdb::Range all("a", "d");
  db->GetApproximateMemTableStats(all, &count, &size);
  EXPECT_GT(count, 20002u / 4);
  EXPECT_LT(count, 20002u * 4);
}

// The representation orders user keys bytewise: a database whose
// comparator orders them otherwise must not open with it.
TEST(MemTableRepDeathTest, RefusesAnotherComparator) {
  TempDir d;
  rocksdb::Options o;
  o.create_if_missing = true;
  o.comparator = rocksdb::ReverseBytewiseComparator();
  o.memtable_factory = std::make_shared<KeyIndexedMemTableFactory>();
  o.allow_concurrent_memtable_write = false;
  EXPECT_DEATH(
      {
        rocksdb::DB* db = nullptr;
        (void)rocksdb::DB::Open(o, d.path(), &db);
        delete db;
      },
      "needs RocksDB's bytewise comparator");
}

TEST(MemTableRep, ConcurrentReadersNeverSeeAKeyGoBack) {
  TempDir d;
  // Small memtables, so readers also cross memtable switches and flushes;
  // more distinct keys than a memtable's first index holds (1,024 slots, at
  // most half full), so readers also probe while the index is replaced by a
  // larger one (a 256 KiB memtable takes about 1,000 of these keys).
  std::unique_ptr<rocksdb::DB> db = Open(d.path(), true, 256 << 10);
  ASSERT_TRUE(db);
  constexpr int kKeys = 5000;
  auto key = [](int i) { return "key" + std::to_string(i * 7 % kKeys); };
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; r++) {
    readers.emplace_back([&, r] {
      std::mt19937 rng(r);
      std::vector<long> seen(kKeys, -1);
      while (!stop.load()) {
        const int i = static_cast<int>(rng() % kKeys);
        std::string v;
        rocksdb::Status s = db->Get(rocksdb::ReadOptions(), key(i), &v);
        if (s.ok()) {
          const long n = std::atol(v.c_str());
          if (n < seen[i]) failures++;
          seen[i] = n;
        } else if (!s.IsNotFound() || seen[i] >= 0) {
          failures++;
        }
        if (rng() % 50 == 0) {
          // An iterator sees every key in order, none older than read before.
          std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
          std::string prev;
          bool first = true;
          for (it->SeekToFirst(); it->Valid(); it->Next()) {
            if (!first && it->key().ToString() <= prev) failures++;
            prev = it->key().ToString();
            first = false;
          }
        }
      }
    });
  }
  for (long n = 0; n < 60000; n++) {
    rocksdb::WriteBatch b;
    ASSERT_TRUE(b.Put(key(static_cast<int>(n % kKeys)), std::to_string(n) + std::string(100, 'v')).ok());
    ASSERT_TRUE(db->Write(rocksdb::WriteOptions(), &b).ok());
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace qkv::storage
