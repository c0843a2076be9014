#include "storage/state_store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "unit/temp_dir.h"

namespace qkv::storage {
namespace {

namespace fs = std::filesystem;

#define ASSERT_OK(expr)                                         \
  do {                                                          \
    const ::qkv::Status _s = (expr);                            \
    ASSERT_TRUE(_s.is_ok()) << #expr << ": " << _s.to_string(); \
  } while (0)

raftpb::ConfState Conf(std::initializer_list<uint64_t> voters) {
  raftpb::ConfState c;
  for (uint64_t v : voters) c.add_voters(v);
  return c;
}

// Records from a map, in order; optionally failing after `fail_after`.
class MapSource final : public RecordSource {
 public:
  explicit MapSource(std::map<std::string, std::string> m, int fail_after = -1)
      : m_(std::move(m)), it_(m_.begin()), fail_after_(fail_after) {}
  Result<bool> next(std::string_view* key, std::string_view* value) override {
    if (fail_after_ >= 0 && n_++ == fail_after_) return Status(Code::kIoError, "source broke");
    if (it_ == m_.end()) return false;
    *key = it_->first;
    *value = it_->second;
    ++it_;
    return true;
  }

 private:
  std::map<std::string, std::string> m_;
  std::map<std::string, std::string>::iterator it_;
  int fail_after_;
  int n_ = 0;
};

// Records in the given (possibly wrong) order.
class VectorSource final : public RecordSource {
 public:
  explicit VectorSource(std::vector<std::pair<std::string, std::string>> v) : v_(std::move(v)) {}
  Result<bool> next(std::string_view* key, std::string_view* value) override {
    if (i_ == v_.size()) return false;
    *key = v_[i_].first;
    *value = v_[i_].second;
    i_++;
    return true;
  }

 private:
  std::vector<std::pair<std::string, std::string>> v_;
  size_t i_ = 0;
};

class StateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.path();
    dir_ = root_ + "/state";
  }
  void TearDown() override { store_.reset(); }

  StateStore* open(const StateStoreOptions& o = small_options(), std::string dir = "") {
    store_.reset();
    auto s = StateStore::open(dir.empty() ? dir_ : dir, o);
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    if (!s.is_ok()) return nullptr;
    store_ = std::move(s).value();
    return store_.get();
  }
  static StateStoreOptions small_options() {
    StateStoreOptions o;
    o.write_buffer_bytes = 4 << 20;
    o.block_cache_bytes = 4 << 20;
    o.background_jobs = 1;
    return o;
  }

  std::map<std::string, std::string> dump(StateStore* s, uint64_t group) {
    ScanOptions so;
    so.keys_max = 1000000;
    so.bytes_max = 1ull << 30;
    auto r = s->scan(group, so);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    std::map<std::string, std::string> out;
    if (!r.is_ok()) return out;
    EXPECT_FALSE(r->next_start.has_value());
    for (auto& [k, v] : r->items) out[k] = v;
    return out;
  }

  void put(uint64_t group, uint64_t index, std::map<std::string, std::string> kv,
           const raftpb::ConfState* conf = nullptr, uint64_t term = 1) {
    StateBatch b(group);
    for (auto& [k, v] : kv) b.put(k, v);
    ASSERT_OK(store_->apply(b, index, term, conf));
  }

  test::TempDir tmp_{"qkv-state-test"};  // before store_: removed after it closes
  std::string root_, dir_;
  std::unique_ptr<StateStore> store_;
};

TEST_F(StateStoreTest, ApplyGetAndApplied) {
  StateStore* s = open();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->applied(1).index(), 0u);
  EXPECT_TRUE(s->groups().empty());
  raftpb::ConfState c = Conf({1, 2, 3});
  put(1, 5, {{"a", "1"}, {"b", "2"}}, &c, 2);
  auto v = s->get(1, "a");
  ASSERT_TRUE(v.is_ok());
  ASSERT_TRUE(v->has_value());
  EXPECT_EQ(**v, "1");
  EXPECT_FALSE(s->get(1, "zz")->has_value());
  EXPECT_FALSE(s->get(2, "a")->has_value());
  raftpb::SnapshotMetadata m = s->applied(1);
  EXPECT_EQ(m.group(), 1u);
  EXPECT_EQ(m.index(), 5u);
  EXPECT_EQ(m.term(), 2u);
  EXPECT_EQ(m.conf_state().voters_size(), 3);

  // Without a conf the membership stays; deletes and range deletes apply.
  StateBatch b(1);
  b.del("a");
  b.put("c", "3");
  b.put("d", "4");
  b.put("e", "5");
  EXPECT_EQ(b.ops(), 4u);
  EXPECT_GT(b.bytes(), 0u);
  ASSERT_OK(s->apply(b, 6, 2, nullptr));
  EXPECT_EQ(b.ops(), 0u);  // consumed
  EXPECT_EQ(s->applied(1).conf_state().voters_size(), 3);
  StateBatch r(1);
  r.delete_range("c", "e");
  ASSERT_OK(s->apply(r, 7, 3, nullptr));
  EXPECT_EQ(dump(s, 1), (std::map<std::string, std::string>{{"b", "2"}, {"e", "5"}}));
  StateBatch all(1);
  all.delete_range("", "");
  ASSERT_OK(s->apply(all, 8, 3, nullptr));
  EXPECT_TRUE(dump(s, 1).empty());
  EXPECT_EQ(s->groups(), (std::vector<uint64_t>{1}));
}

TEST_F(StateStoreTest, AppliedIndexMustIncrease) {
  // The "fast" style forks here: the child fails the CHECK before touching
  // RocksDB (whose threads it lacks), and leaves no temp directory behind.
  StateStore* s = open();
  ASSERT_NE(s, nullptr);
  put(1, 5, {{"a", "1"}});
  EXPECT_DEATH(
      {
        StateBatch b(1);
        b.put("a", "2");
        (void)s->apply(b, 5, 1, nullptr);
      },
      "applied index must increase");
  EXPECT_DEATH(
      {
        StateBatch b(1);
        (void)s->apply(b, 6, 0, nullptr);
      },
      "applied term went back");
}

TEST_F(StateStoreTest, RestartResumesFromAppliedIndex) {
  StateStore* s = open();
  ASSERT_NE(s, nullptr);
  raftpb::ConfState c = Conf({1, 2});
  for (uint64_t i = 1; i <= 10; i++)
    put(7, i, {{"k" + std::to_string(i), "v"}}, i == 3 ? &c : nullptr);
  put(8, 4, {{"x", "y"}});
  s = open();  // close without sync: RocksDB's WAL is in the page cache
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->groups(), (std::vector<uint64_t>{7, 8}));
  EXPECT_EQ(s->applied(7).index(), 10u);
  EXPECT_EQ(s->applied(7).conf_state().voters_size(), 2);
  EXPECT_EQ(s->applied(8).index(), 4u);
  EXPECT_EQ(dump(s, 7).size(), 10u);
  // What recovery found is durable.
  EXPECT_EQ(s->durable_applied(7), 10u);
  put(7, 11, {{"k11", "v"}});
  EXPECT_EQ(s->applied(7).index(), 11u);
}

TEST_F(StateStoreTest, ScanOrderAndGroupIsolation) {
  StateStore* s = open();
  ASSERT_NE(s, nullptr);
  const std::vector<uint64_t> groups = {0, 1, 255, 256, UINT64_MAX - 1, UINT64_MAX};
  const std::vector<std::string> keys = {
      std::string("\0", 1),       "a",      "ab",     "abc",    "b", std::string("\xff", 1),
      std::string("\xff\xff", 2), "user:1", "user:2", "user:10"};
  uint64_t index = 1;
  for (uint64_t g : groups) {
    StateBatch b(g);
    for (const auto& k : keys) b.put(k, k + "@" + std::to_string(g));
    ASSERT_OK(s->apply(b, index++, 1, nullptr));
  }
  std::vector<std::string> sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  for (uint64_t g : groups) {
    auto all = dump(s, g);
    ASSERT_EQ(all.size(), keys.size()) << "group " << g;
    for (const auto& [k, v] : all) EXPECT_EQ(v, k + "@" + std::to_string(g));
    ScanOptions so;
    so.keys_max = 100;
    auto r = s->scan(g, so);
    ASSERT_TRUE(r.is_ok());
    std::vector<std::string> got;
    for (auto& [k, v] : r->items) got.push_back(k);
    EXPECT_EQ(got, sorted) << "group " << g;
  }
  // Prefix, start, and continuation by keys and by bytes.
  ScanOptions so;
  so.prefix = "user:";
  auto r = s->scan(1, so);
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->items.size(), 3u);
  EXPECT_EQ(r->items[0].first, "user:1");
  EXPECT_EQ(r->items[1].first, "user:10");
  EXPECT_EQ(r->items[2].first, "user:2");
  so.start = "user:10";
  r = s->scan(1, so);
  ASSERT_EQ(r->items.size(), 2u);
  EXPECT_EQ(r->items[0].first, "user:10");
  so = ScanOptions();
  so.prefix = std::string("\xff", 1);
  r = s->scan(UINT64_MAX, so);
  ASSERT_EQ(r->items.size(), 2u);  // "\xff", "\xff\xff": the prefix has no successor
  so = ScanOptions();
  so.keys_max = 3;
  std::vector<std::string> paged;
  for (;;) {
    r = s->scan(UINT64_MAX, so);
    ASSERT_TRUE(r.is_ok());
    ASSERT_LE(r->items.size(), 3u);
    for (auto& [k, v] : r->items) paged.push_back(k);
    if (!r->next_start) break;
    so.start = *r->next_start;
  }
  EXPECT_EQ(paged, sorted);
  so = ScanOptions();
  so.bytes_max = 1;  // at least one item per call
  r = s->scan(0, so);
  ASSERT_EQ(r->items.size(), 1u);
  EXPECT_EQ(r->next_start, std::optional<std::string>("a"));
}

TEST_F(StateStoreTest, DeleteGroupRemovesOnlyThatGroup) {
  StateStore* s = open();
  ASSERT_NE(s, nullptr);
  raftpb::ConfState c = Conf({1});
  put(1, 3, {{"a", "1"}, {"b", "2"}}, &c);
  put(2, 4, {{"a", "x"}}, &c);
  put(3, 5, {{"a", "y"}}, &c);
  ASSERT_OK(s->delete_group(2));
  EXPECT_TRUE(dump(s, 2).empty());
  EXPECT_EQ(s->applied(2).index(), 0u);
  EXPECT_EQ(s->groups(), (std::vector<uint64_t>{1, 3}));
  ASSERT_OK(s->sync());
  s = open();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->groups(), (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(dump(s, 1).size(), 2u);
  EXPECT_EQ(dump(s, 3).size(), 1u);
  EXPECT_TRUE(dump(s, 2).empty());
  put(2, 1, {{"new", "life"}});  // a deleted group can start again
  EXPECT_EQ(s->applied(2).index(), 1u);
}

TEST_F(StateStoreTest, SyncAdvancesDurableApplied) {
  StateStore* s = open();
  ASSERT_NE(s, nullptr);
  put(1, 1, {{"a", "1"}});
  put(1, 2, {{"a", "2"}});
  EXPECT_EQ(s->durable_applied(1), 0u);
  ASSERT_OK(s->sync());
  EXPECT_EQ(s->durable_applied(1), 2u);
  put(1, 3, {{"a", "3"}});
  EXPECT_EQ(s->durable_applied(1), 2u);
}

TEST_F(StateStoreTest, OptionsAndLimits) {
  StateStoreOptions bad = small_options();
  bad.sync_writes = true;
  bad.disable_rocksdb_wal = true;
  EXPECT_EQ(StateStore::open(dir_, bad).code(), Code::kInvalidArgument);

  StateStoreOptions o = small_options();
  o.batch_bytes_max = 100;
  o.sync_writes = true;
  StateStore* s = open(o);
  ASSERT_NE(s, nullptr);
  StateBatch b(1);
  b.put("k", std::string(200, 'x'));
  EXPECT_EQ(s->apply(b, 1, 1, nullptr).code(), Code::kInvalidArgument);
  EXPECT_EQ(s->applied(1).index(), 0u);
  put(1, 1, {{"k", "small"}});
  // A second instance on the same directory is refused (RocksDB's lock).
  EXPECT_FALSE(StateStore::open(dir_, o).is_ok());
}

TEST_F(StateStoreTest, RefusesForeignRocksDbWithoutLayoutVersion) {
  fs::create_directories(dir_ + "/db");
  rocksdb::Options o;
  o.create_if_missing = true;
  rocksdb::DB* db = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(o, dir_ + "/db", &db).ok());
  ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "foreign", "data").ok());
  delete db;
  auto s = StateStore::open(dir_, small_options());
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_NE(s.status().message().find("layout version"), std::string::npos);
}

TEST_F(StateStoreTest, GroupSnapshotIsConsistent) {
  StateStore* s = open();
  ASSERT_NE(s, nullptr);
  raftpb::ConfState c = Conf({1, 2, 3});
  put(4, 10, {{"a", "1"}, {"b", "2"}}, &c, 3);
  put(5, 10, {{"a", "other"}});
  auto snap = s->snapshot(4);
  ASSERT_TRUE(snap.is_ok());
  // Changes after the snapshot are not in it.
  StateBatch b(4);
  b.put("a", "changed");
  b.put("c", "3");
  b.del("b");
  raftpb::ConfState c2 = Conf({1});
  ASSERT_OK(s->apply(b, 11, 4, &c2));
  EXPECT_EQ((*snap)->meta().index(), 10u);
  EXPECT_EQ((*snap)->meta().term(), 3u);
  EXPECT_EQ((*snap)->meta().conf_state().voters_size(), 3);
  std::map<std::string, std::string> got;
  std::string_view k, v;
  for (;;) {
    auto more = (*snap)->next(&k, &v);
    ASSERT_TRUE(more.is_ok());
    if (!*more) break;
    got[std::string(k)] = std::string(v);
  }
  EXPECT_EQ(got, (std::map<std::string, std::string>{{"a", "1"}, {"b", "2"}}));
}

TEST_F(StateStoreTest, InstallSnapshotReplacesTheGroupOnly) {
  StateStore* s = open();
  ASSERT_NE(s, nullptr);
  raftpb::ConfState c = Conf({1});
  put(1, 5, {{"a", "old"}, {"b", "old"}, {"c", "old"}}, &c);
  put(2, 6, {{"a", "g2"}, {"b", "g2"}}, &c);
  put(0, 7, {{"z", "g0"}}, &c);
  auto snap_before = s->snapshot(1);
  ASSERT_TRUE(snap_before.is_ok());

  raftpb::SnapshotMetadata meta;
  meta.set_group(1);
  meta.set_index(100);
  meta.set_term(9);
  *meta.mutable_conf_state() = Conf({1, 2, 3});
  MapSource src({{"b", "new"}, {"d", "new"}});
  ASSERT_OK(s->install_snapshot(meta, src));
  EXPECT_EQ(dump(s, 1), (std::map<std::string, std::string>{{"b", "new"}, {"d", "new"}}));
  EXPECT_EQ(dump(s, 2), (std::map<std::string, std::string>{{"a", "g2"}, {"b", "g2"}}));
  EXPECT_EQ(dump(s, 0), (std::map<std::string, std::string>{{"z", "g0"}}));
  EXPECT_EQ(s->applied(1).index(), 100u);
  EXPECT_EQ(s->applied(1).term(), 9u);
  EXPECT_EQ(s->applied(1).conf_state().voters_size(), 3);
  EXPECT_EQ(s->durable_applied(1), 100u);  // ingestion is durable
  // A snapshot taken before still sees the old state.
  std::string_view k, v;
  int n = 0;
  while (*(*snap_before)->next(&k, &v)) {
    EXPECT_EQ(v, "old");
    n++;
  }
  EXPECT_EQ(n, 3);
  snap_before->reset();
  EXPECT_TRUE(fs::is_empty(dir_ + "/ingest"));

  // Applying continues above the snapshot; the state survives a restart.
  put(1, 101, {{"e", "after"}}, nullptr, 9);
  s = open();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(dump(s, 1),
            (std::map<std::string, std::string>{{"b", "new"}, {"d", "new"}, {"e", "after"}}));
  EXPECT_EQ(s->applied(1).index(), 101u);
  EXPECT_EQ(s->applied(1).conf_state().voters_size(), 3);
  EXPECT_EQ(dump(s, 2).size(), 2u);
}

TEST_F(StateStoreTest, InstallFromAnotherStoresSnapshotAndEmptySnapshot) {
  StateStore* s = open();
  ASSERT_NE(s, nullptr);
  raftpb::ConfState c = Conf({4, 5});
  std::map<std::string, std::string> want;
  for (int i = 0; i < 2000; i++) {
    want["key" + std::to_string(i)] = std::string(static_cast<size_t>(i % 50), 'v');
  }
  put(3, 50, want, &c, 4);
  auto other = StateStore::open(root_ + "/other", small_options());
  ASSERT_TRUE(other.is_ok());
  {
    StateBatch b(3);
    b.put("stale", "x");
    ASSERT_OK((*other)->apply(b, 2, 1, nullptr));
    auto snap = s->snapshot(3);
    ASSERT_TRUE(snap.is_ok());
    EXPECT_GT((*snap)->approximate_bytes(), 0u);
    ASSERT_OK((*other)->install_snapshot((*snap)->meta(), **snap));
  }
  EXPECT_EQ(dump(other->get(), 3), want);
  EXPECT_EQ((*other)->applied(3).index(), 50u);
  EXPECT_EQ((*other)->applied(3).conf_state().voters(1), 5u);

  // An empty snapshot empties the group.
  raftpb::SnapshotMetadata meta = (*other)->applied(3);
  meta.set_index(60);
  MapSource empty({});
  ASSERT_OK((*other)->install_snapshot(meta, empty));
  EXPECT_TRUE(dump(other->get(), 3).empty());
  EXPECT_EQ((*other)->applied(3).index(), 60u);
}

TEST_F(StateStoreTest, FailedOrBadInstallChangesNothing) {
  StateStore* s = open();
  ASSERT_NE(s, nullptr);
  put(1, 5, {{"a", "old"}});
  raftpb::SnapshotMetadata meta;
  meta.set_group(1);
  meta.set_index(9);
  meta.set_term(2);

  MapSource broken({{"x", "1"}, {"y", "2"}, {"z", "3"}}, 2);
  EXPECT_EQ(s->install_snapshot(meta, broken).code(), Code::kIoError);
  VectorSource unordered({{"b", "1"}, {"a", "2"}});
  Status st = s->install_snapshot(meta, unordered);
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_NE(st.message().find("strictly increasing"), std::string::npos) << st.to_string();
  VectorSource dup({{"a", "1"}, {"a", "2"}});
  EXPECT_EQ(s->install_snapshot(meta, dup).code(), Code::kCorruption);
  EXPECT_EQ(dump(s, 1), (std::map<std::string, std::string>{{"a", "old"}}));
  EXPECT_EQ(s->applied(1).index(), 5u);
  EXPECT_TRUE(fs::is_empty(dir_ + "/ingest"));

  // Stale: not above the applied index.
  meta.set_index(5);
  MapSource ok(std::map<std::string, std::string>{{"q", "1"}});
  st = s->install_snapshot(meta, ok);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("stale"), std::string::npos);
}

// Every kind of write the store takes (puts, deletes, range deletions, a
// whole group's deletion, a snapshot install, a group dropped) against a
// model, with gets in between answered through the read cache: small
// enough to evict, and large enough to hold everything; filled by reads
// only, or by writes too.
TEST_F(StateStoreTest, ReadsThroughTheCacheAlwaysMatchTheStore) {
  for (const int round : {0, 1, 2, 3, 4}) {
    const uint64_t cache_bytes = std::array<uint64_t, 5>{0, 2048, 1 << 20, 2048, 1 << 20}[round];
    const bool fill_on_write = round >= 3;
    SCOPED_TRACE("cache of " + std::to_string(cache_bytes) +
                 (fill_on_write ? ", filled by writes" : ", filled by reads"));
    StateStoreOptions o = small_options();
    o.read_cache_bytes = cache_bytes;
    o.read_cache_fill_on_write = fill_on_write;
    // Close the last round's store first: its background compaction may
    // still be deleting files under dir_.
    store_.reset();
    fs::remove_all(dir_);
    StateStore* s = open(o);
    ASSERT_NE(s, nullptr);
    std::map<uint64_t, std::map<std::string, std::string>> model;
    std::map<uint64_t, uint64_t> index;
    std::mt19937_64 rng(cache_bytes + 11 + round);
    auto key = [&] { return "k" + std::to_string(rng() % 40); };
    for (int step = 0; step < 3000; step++) {
      const uint64_t g = 1 + rng() % 2;
      const int what = static_cast<int>(rng() % 100);
      if (what < 55) {
        const std::string k = key();
        auto v = s->get(g, k);
        ASSERT_TRUE(v.is_ok());
        auto it = model[g].find(k);
        ASSERT_EQ(v->has_value(), it != model[g].end()) << "step " << step << " key " << k;
        if (it != model[g].end()) {
          ASSERT_EQ(**v, it->second) << "step " << step << " key " << k;
        }
        continue;
      }
      if (what < 90) {
        StateBatch b(g);
        for (int n = 1 + static_cast<int>(rng() % 3); n > 0; n--) {
          const std::string k = key();
          if (rng() % 3 == 0) {
            b.del(k);
            model[g].erase(k);
          } else {
            const std::string v = std::string(rng() % 40, 'v') + std::to_string(step);
            b.put(k, v);
            model[g][k] = v;
          }
        }
        if (rng() % 8 == 0) {
          std::string lo = key(), hi = key();
          if (lo > hi) std::swap(lo, hi);
          if (lo == hi) hi += "~";
          b.delete_range(lo, hi);
          auto& m = model[g];
          m.erase(m.lower_bound(lo), m.lower_bound(hi));
        }
        if (rng() % 50 == 0) {
          b.delete_range("", "");
          model[g].clear();
        }
        ASSERT_OK(s->apply(b, ++index[g], 1, nullptr));
      } else if (what < 95) {
        raftpb::SnapshotMetadata meta;
        meta.set_group(g);
        index[g] += 10;
        meta.set_index(index[g]);
        meta.set_term(1);
        std::map<std::string, std::string> next;
        for (int n = static_cast<int>(rng() % 20); n > 0; n--)
          next[key()] = "snap" + std::to_string(step);
        MapSource src(next);
        ASSERT_OK(s->install_snapshot(meta, src));
        model[g] = std::move(next);
      } else {
        ASSERT_OK(s->delete_group(g));
        model[g].clear();
        index[g] = 0;
      }
    }
    const ReadCache::Stats st = s->read_cache_stats();
    EXPECT_LE(st.bytes, cache_bytes);
    if (cache_bytes == 0) {
      EXPECT_EQ(st.hits, 0u);
    } else {
      EXPECT_GT(st.hits, 100u) << "cache of " << cache_bytes;
      EXPECT_GT(st.misses, 100u);
    }
    if (cache_bytes == 2048) {
      EXPECT_GT(st.evictions, 0u);
    }
  }
}

TEST_F(StateStoreTest, MemoryUseCountsTheMemtables) {
  StateStore* s = open();
  ASSERT_NE(s, nullptr);
  const uint64_t before = s->memory_use().memtables;
  StateBatch b(1);
  for (int i = 0; i < 100; i++) b.put("k" + std::to_string(i), std::string(1000, 'v'));
  ASSERT_OK(s->apply(b, 1, 1, nullptr));
  EXPECT_GE(s->memory_use().memtables, before + 100 * 1000);
}

// A reader on another thread while batches are applied: every value it
// sees is one that was written, never older than one it saw before (the
// read cache must not keep the answer of a read that raced a write).
TEST_F(StateStoreTest, ConcurrentReadsNeverGoBack) {
  StateStore* s = open();
  ASSERT_NE(s, nullptr);
  constexpr int kWrites = 3000;
  std::atomic<bool> done{false};
  std::atomic<int> went_back{0};
  std::atomic<int> reads{0};
  std::thread reader([&] {
    int last = -1;
    while (!done.load()) {
      auto v = s->get(1, "counter");
      if (!v.is_ok()) {
        went_back++;
        return;
      }
      const int now = v->has_value() ? std::stoi(**v) : -1;
      if (now < last) went_back++;
      last = now;
      reads++;
    }
  });
  for (int i = 0; i < kWrites; i++) {
    StateBatch b(1);
    b.put("counter", std::to_string(i));
    ASSERT_OK(s->apply(b, static_cast<uint64_t>(i + 1), 1, nullptr));
  }
  done = true;
  reader.join();
  EXPECT_EQ(went_back.load(), 0);
  EXPECT_GT(reads.load(), 0);
  auto v = s->get(1, "counter");
  ASSERT_TRUE(v.is_ok() && v->has_value());
  EXPECT_EQ(**v, std::to_string(kWrites - 1));
}

// A crash image: the store's directory copied while it is open (what a
// process crash leaves), optionally with RocksDB's WAL cut short (a power
// loss dropping unsynced bytes). Whatever survives, the applied index and the
// data must agree: the data is exactly the model after `applied` entries.
class StateStoreCrashTest : public StateStoreTest {
 protected:
  // model[i] = the group's data after applying entry i.
  std::vector<std::map<std::string, std::string>> run(uint64_t entries, bool sync_midway) {
    std::vector<std::map<std::string, std::string>> model(1);
    std::mt19937_64 rng(42);
    for (uint64_t i = 1; i <= entries; i++) {
      std::map<std::string, std::string> next = model.back();
      StateBatch b(1);
      for (int op = 0; op < 3; op++) {
        std::string k = "k" + std::to_string(rng() % 10);
        if (rng() % 4 == 0) {
          b.del(k);
          next.erase(k);
        } else {
          std::string v = "v" + std::to_string(i) + "-" + std::to_string(op);
          b.put(k, v);
          next[k] = v;
        }
      }
      EXPECT_TRUE(store_->apply(b, i, 1, nullptr).is_ok());
      model.push_back(std::move(next));
      // Another group in the same batches of the WAL.
      StateBatch o(2);
      o.put("other", std::to_string(i));
      EXPECT_TRUE(store_->apply(o, i, 1, nullptr).is_ok());
      if (sync_midway && i == entries / 2) {
        EXPECT_TRUE(store_->sync().is_ok());
      }
    }
    return model;
  }

  std::string crash_image(const std::string& name) {
    std::string img = root_ + "/" + name;
    fs::remove_all(img);
    fs::copy(dir_, img, fs::copy_options::recursive);
    fs::remove(img + "/db/LOCK");
    return img;
  }

  static std::string newest_wal(const std::string& dbdir) {
    std::string best;
    for (const auto& e : fs::directory_iterator(dbdir)) {
      std::string n = e.path().filename();
      if (n.size() > 4 && n.substr(n.size() - 4) == ".log" && n > best) best = n;
    }
    return best.empty() ? "" : dbdir + "/" + best;
  }

  void check_image(const std::string& img,
                   const std::vector<std::map<std::string, std::string>>& model,
                   uint64_t applied_min, uint64_t* applied_out, const StateStoreOptions& o) {
    auto st = StateStore::open(img, o);
    ASSERT_TRUE(st.is_ok()) << st.status().to_string();
    uint64_t a = (*st)->applied(1).index();
    ASSERT_LT(a, model.size());
    EXPECT_GE(a, applied_min);
    EXPECT_EQ(dump(st->get(), 1), model[a]) << "applied index " << a;
    uint64_t a2 = (*st)->applied(2).index();
    auto other = (*st)->get(2, "other");
    ASSERT_TRUE(other.is_ok());
    if (a2 == 0) {
      EXPECT_FALSE(other->has_value());
    } else {
      EXPECT_EQ(other->value_or(""), std::to_string(a2));
    }
    *applied_out = a;
  }
};

TEST_F(StateStoreCrashTest, AppliedIndexAndDataAgreeAfterLosingTheWalTail) {
  StateStore* s = open();
  ASSERT_NE(s, nullptr);
  const uint64_t n = 200;
  auto model = run(n, /*sync_midway=*/true);
  std::string img = crash_image("img");
  std::string wal = newest_wal(img + "/db");  // before opening the image rotates it
  ASSERT_FALSE(wal.empty());
  const uint64_t wal_bytes = fs::file_size(wal);
  uint64_t a = 0;
  check_image(img, model, n, &a, small_options());  // a process crash loses nothing
  EXPECT_EQ(a, n);

  ASSERT_GT(wal_bytes, 0u);
  std::set<uint64_t> seen;
  std::mt19937_64 rng(7);
  for (int round = 0; round < 24; round++) {
    std::string cut = crash_image("cut");
    std::string w = newest_wal(cut + "/db");
    const uint64_t len = round == 0 ? 0 : rng() % wal_bytes;
    fs::resize_file(w, len);
    if (round % 3 == 2 && len > 16) {
      // A torn, garbled last write rather than a clean cut.
      FILE* f = std::fopen(w.c_str(), "r+b");
      ASSERT_NE(f, nullptr);
      std::fseek(f, static_cast<long>(len - 7), SEEK_SET);
      std::fputs("garbage", f);
      std::fclose(f);
    }
    // Cuts below the synced prefix are harsher than a real crash; the
    // agreement of index and data must hold all the same.
    check_image(cut, model, 0, &a, small_options());
    seen.insert(a);
  }
  EXPECT_GT(seen.size(), 3u) << "the cuts should land on different entries";
}

TEST_F(StateStoreCrashTest, InstalledSnapshotSurvivesLosingRocksDbsWal) {
  StateStore* s = open();
  ASSERT_NE(s, nullptr);
  raftpb::ConfState c = Conf({1});
  put(1, 5, {{"a", "old"}, {"b", "old"}}, &c);
  put(2, 6, {{"x", "unsynced"}}, &c);
  raftpb::SnapshotMetadata meta;
  meta.set_group(1);
  meta.set_index(50);
  meta.set_term(4);
  *meta.mutable_conf_state() = Conf({1, 2});
  MapSource src({{"b", "new"}, {"c", "new"}});
  ASSERT_OK(s->install_snapshot(meta, src));
  // A power loss right after the install returns: RocksDB's unsynced WAL is
  // gone entirely. The install is not: either state, never a mix, and here
  // the new one because install_snapshot() is durable on return.
  std::string img = crash_image("img");
  for (const auto& e : fs::directory_iterator(img + "/db")) {
    std::string n = e.path().filename();
    if (n.size() > 4 && n.substr(n.size() - 4) == ".log") fs::resize_file(e.path(), 0);
  }
  // An install interrupted before its ingestion leaves a staging file.
  {
    std::FILE* f = std::fopen((img + "/ingest/g1-interrupted.sst").c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("half an sst", f);
    std::fclose(f);
  }
  auto st = StateStore::open(img, small_options());
  ASSERT_TRUE(st.is_ok()) << st.status().to_string();
  EXPECT_EQ(dump(st->get(), 1), (std::map<std::string, std::string>{{"b", "new"}, {"c", "new"}}));
  EXPECT_EQ((*st)->applied(1).index(), 50u);
  EXPECT_EQ((*st)->applied(1).conf_state().voters_size(), 2);
  EXPECT_TRUE(fs::is_empty(img + "/ingest"));
}

TEST_F(StateStoreCrashTest, WithoutRocksDbWalAProcessCrashKeepsWhatSyncFlushed) {
  StateStoreOptions o = small_options();
  o.disable_rocksdb_wal = true;
  StateStore* s = open(o);
  ASSERT_NE(s, nullptr);
  const uint64_t n = 100;
  auto model = run(n, /*sync_midway=*/true);
  EXPECT_EQ(s->durable_applied(1), n / 2);
  std::string img = crash_image("img");
  uint64_t a = 0;
  check_image(img, model, n / 2, &a, o);
  EXPECT_EQ(a, n / 2);  // the memtable (entries after the sync) is lost
  ASSERT_OK(s->sync());
  img = crash_image("img2");
  check_image(img, model, n, &a, o);
  EXPECT_EQ(a, n);
}

}  // namespace
}  // namespace qkv::storage
