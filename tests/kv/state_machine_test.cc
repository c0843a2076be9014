// KvStateMachine as a Raft group's state machine: entries and batches,
// stamps and deterministic expiry, snapshots, restarts.
#include "kv/state_machine.h"

#include <gtest/gtest.h>

#include <random>

#include "kv/commands.h"
#include "kv/kv.pb.h"
#include "kv/layout.h"
#include "kv_test_util.h"
#include "raft/node.h"

namespace qkv::kv {
namespace {

using test::Arr;
using test::Bulk;
using test::Err;
using test::Int;
using test::KvHarness;
using test::Nil;
using test::Ok;

raftpb::Entry entry(uint64_t index, uint64_t term, std::string data,
                    raftpb::EntryType type = raftpb::ENTRY_NORMAL) {
  raftpb::Entry e;
  e.set_group(1);
  e.set_index(index);
  e.set_term(term);
  e.set_type(type);
  e.set_data(std::move(data));
  return e;
}

std::string req(int64_t stamp, std::initializer_list<std::string_view> args,
                net::Protocol p = net::Protocol::kResp2) {
  std::vector<std::string_view> v(args);
  return encode_request(stamp, p, v);
}

// Every record of the group, for comparing replicas.
std::vector<std::pair<std::string, std::string>> dump(KvHarness& h) {
  storage::ScanOptions so;
  so.keys_max = 1 << 20;
  auto r = h.store().scan(h.sm().group(), so);
  QKV_CHECK(r.is_ok());
  QKV_CHECK(!r->next_start.has_value());
  return r->items;
}

TEST(KvStateMachine, EntriesGiveRepliesAndAdvanceTheIndex) {
  KvHarness kv;
  EXPECT_EQ(kv.sm().applied_index(), 1u);  // the bootstrap snapshot
  EXPECT_EQ(kv.sm().conf_state().voters_size(), 1);
  std::vector<raftpb::Entry> es = {
      entry(2, 1, ""),  // a leader's no-op
      entry(3, 1, req(test::kT0, {"SET", "k", "v"})),
      entry(4, 2, "conf change bytes", raftpb::ENTRY_CONF_CHANGE),
      entry(5, 2, req(test::kT0, {"GET", "k"})),
  };
  raftpb::ConfState cs;
  cs.add_voters(1);
  cs.add_voters(2);
  std::vector<std::string> results;
  ASSERT_OK(kv.sm().apply(es, cs, &results));
  EXPECT_EQ(results, (std::vector<std::string>{"", Ok(), "", Bulk("v")}));
  EXPECT_EQ(kv.sm().applied_index(), 5u);
  EXPECT_EQ(kv.store().applied(1).term(), 2u);
  EXPECT_EQ(kv.sm().conf_state().voters_size(), 2);
  EXPECT_EQ(kv.sm().last_stamp_ms(), test::kT0);
}

// The store's read cache holds what reads found: a write load (whose
// applies read each key's old record) leaves it empty; reads fill it and
// then see every later write.
TEST(KvStateMachine, OnlyReadsFillTheReadCache) {
  KvHarness kv;
  const uint64_t at_open = kv.store().read_cache_stats().entries;  // the counters, read at open
  for (int i = 0; i < 100; i++) {
    EXPECT_EQ(kv({"SET", "k" + std::to_string(i), "v"}), Ok());
    EXPECT_EQ(kv({"INCR", "n"}), Int(i + 1));
  }
  EXPECT_EQ(kv.store().read_cache_stats().entries, at_open);
  for (int i = 0; i < 100; i++) EXPECT_EQ(kv({"GET", "k" + std::to_string(i)}), Bulk("v"));
  EXPECT_EQ(kv({"GET", "n"}), Bulk("100"));
  EXPECT_GE(kv.store().read_cache_stats().entries, at_open + 101);
  const uint64_t hits = kv.store().read_cache_stats().hits;
  EXPECT_EQ(kv({"SET", "k7", "w"}), Ok());
  EXPECT_EQ(kv({"DEL", "k8"}), Int(1));
  EXPECT_EQ(kv({"INCR", "n"}), Int(101));
  EXPECT_EQ(kv({"GET", "k7"}), Bulk("w"));
  EXPECT_EQ(kv({"GET", "k8"}), Nil());
  EXPECT_EQ(kv({"GET", "n"}), Bulk("101"));
  EXPECT_GE(kv.store().read_cache_stats().hits, hits + 3);
  EXPECT_EQ(kv({"FLUSHALL"}), Ok());
  EXPECT_EQ(kv({"GET", "k7"}), Nil());
}

// Deleting a collection of more than 64 elements is one range deletion,
// which reaches the read cache through the element prefix's group
// (src/storage/read_cache.h): the deleted elements read back gone, and
// the cached elements of another collection stay cached.
TEST(KvStateMachine, LargeCollectionsDeletedUnderTheReadCacheReadBackGone) {
  KvHarness kv;
  for (const std::string h : {"h1", "h2"}) {
    std::vector<std::string> args = {"HSET", h};
    for (int i = 0; i < 100; i++) {
      args.push_back("f" + std::to_string(i));
      args.push_back(h + "v" + std::to_string(i));
    }
    EXPECT_EQ(kv.run(args), Int(100));
    EXPECT_EQ(kv({"SADD", "s" + h, "a", "b"}), Int(2));
  }
  for (int i = 0; i < 100; i += 7) {
    EXPECT_EQ(kv({"HGET", "h1", "f" + std::to_string(i)}), Bulk("h1v" + std::to_string(i)));
    EXPECT_EQ(kv({"HGET", "h2", "f" + std::to_string(i)}), Bulk("h2v" + std::to_string(i)));
  }
  EXPECT_EQ(kv({"DEL", "h1"}), Int(1));
  const uint64_t hits = kv.store().read_cache_stats().hits;
  for (int i = 0; i < 100; i += 7) {
    EXPECT_EQ(kv({"HGET", "h1", "f" + std::to_string(i)}), Nil()) << i;
    EXPECT_EQ(kv({"HGET", "h2", "f" + std::to_string(i)}), Bulk("h2v" + std::to_string(i)));
  }
  EXPECT_GE(kv.store().read_cache_stats().hits, hits + 15) << "h2's fields stayed cached";
  EXPECT_EQ(kv({"HLEN", "h1"}), Int(0));
  // Made again: the new fields, not the deleted ones.
  EXPECT_EQ(kv({"HSET", "h1", "f7", "again"}), Int(1));
  EXPECT_EQ(kv({"HGET", "h1", "f7"}), Bulk("again"));
  EXPECT_EQ(kv({"HGET", "h1", "f14"}), Nil());
}

TEST(KvStateMachine, BatchesRunInOrderWithConcatenatedReplies) {
  KvHarness kv;
  std::vector<std::string_view> a = {"SET", "n", "10"}, b = {"INCR", "n"}, c = {"GET", "n"},
                                d = {"GET", "missing"};
  std::vector<RequestView> reqs = {{net::Protocol::kResp2, a},
                                   {net::Protocol::kResp2, b},
                                   {net::Protocol::kResp3, c},
                                   {net::Protocol::kResp3, d}};
  auto res = kv.apply_payloads({encode_batch(test::kT0, reqs)});
  const std::string want = Ok() + Int(11) + Bulk("11") + "_\r\n";
  EXPECT_EQ(res[0], want);
  auto split = split_replies(res[0], 4);
  ASSERT_TRUE(split.is_ok()) << split.status().to_string();
  EXPECT_EQ(*split, (std::vector<std::string>{Ok(), Int(11), Bulk("11"), "_\r\n"}));
  EXPECT_FALSE(split_replies(res[0], 3).is_ok());
  EXPECT_FALSE(split_replies(res[0], 5).is_ok());
}

TEST(KvStateMachine, LaterEntriesOfOneApplySeeEarlierOnes) {
  KvHarness kv;
  auto res =
      kv.apply_payloads({req(test::kT0, {"SET", "k", "1"}), req(test::kT0, {"APPEND", "k", "2"}),
                         req(test::kT0, {"RENAME", "k", "j"}), req(test::kT0, {"GET", "j"}),
                         req(test::kT0, {"DBSIZE"})});
  EXPECT_EQ(res, (std::vector<std::string>{Ok(), Int(2), Ok(), Bulk("12"), Int(1)}));
  EXPECT_OK(kv.sm().TEST_check_invariants());
}

TEST(KvStateMachine, MalformedEntriesAreAnsweredNotFatal) {
  KvHarness kv;
  auto res = kv.apply_payloads({"\xff\xff garbage", req(test::kT0, {"SET", "k", "v"})});
  EXPECT_EQ(res[0], Err("ERR malformed replicated entry (not applied)"));
  EXPECT_EQ(res[1], Ok());
  kvpb::KvBatch empty_args;
  empty_args.set_stamp_ms(test::kT0);
  empty_args.add_requests();
  res = kv.apply_payloads({empty_args.SerializeAsString()});
  EXPECT_EQ(res[0], Err("ERR empty command"));
}

TEST(KvStateMachine, StampsNeverGoBackwards) {
  KvHarness kv;
  kv.apply_payloads({req(test::kT0 + 1000, {"SET", "k", "v", "PX", "500"})});
  EXPECT_EQ(kv.sm().last_stamp_ms(), test::kT0 + 1000);
  // A leader with a slow clock stamps earlier: the applied time stays.
  auto res = kv.apply_payloads({req(test::kT0, {"PTTL", "k"})});
  EXPECT_EQ(res[0], Int(500));
  EXPECT_EQ(kv.sm().last_stamp_ms(), test::kT0 + 1000);
  // Reads are never evaluated before the last stamp either.
  std::string reply;
  std::vector<std::string_view> pttl = {"PTTL", "k"};
  ASSERT_OK(kv.sm().execute_read(pttl, net::Protocol::kResp2, test::kT0, &reply));
  EXPECT_EQ(reply, Int(500));
  res = kv.apply_payloads({req(test::kT0 + 1500, {"GET", "k"})});
  EXPECT_EQ(res[0], Nil());
  kv.reopen();
  EXPECT_EQ(kv.sm().last_stamp_ms(), test::kT0 + 1500);  // persisted
}

TEST(KvStateMachine, ExpiryIndexAndDeletionEntries) {
  KvHarness kv;
  kv.apply_payloads({req(test::kT0, {"SET", "a", "1", "PX", "100"}),
                     req(test::kT0, {"SET", "b", "1", "PX", "300"}),
                     req(test::kT0, {"SET", "c", "1", "PX", "200"}),
                     req(test::kT0, {"SET", "d", "1"})});
  EXPECT_EQ(kv.sm().expires_count(), 3u);
  EXPECT_TRUE(kv.sm().expired_keys_to_delete(test::kT0 + 99, 10).empty());
  EXPECT_EQ(kv.sm().expired_keys_to_delete(test::kT0 + 250, 10),
            (std::vector<std::string>{"a", "c"}));  // earliest expiry first
  EXPECT_EQ(kv.sm().expired_keys_to_delete(test::kT0 + 1000, 2),
            (std::vector<std::string>{"a", "c"}));
  // Between finding and deleting, c gets a new TTL and a is rewritten
  // without one: only keys still expired at the deletion's stamp go.
  auto keys = kv.sm().expired_keys_to_delete(test::kT0 + 350, 10);
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "c", "b"}));
  kv.apply_payloads(
      {req(test::kT0 + 150, {"PEXPIRE", "c", "10000"}), req(test::kT0 + 150, {"SET", "a", "2"})});
  EXPECT_EQ(kv.sm().key_count(), 4u);  // b's expired record still counts
  auto res = kv.apply_payloads({encode_expired_deletion(test::kT0 + 350, keys)});
  EXPECT_EQ(res[0], Int(1));
  EXPECT_EQ(kv.sm().expired_keys_deleted(), 1u);
  kv.set_now(test::kT0 + 350);
  EXPECT_EQ(kv({"MGET", "a", "b", "c", "d"}), Arr({Bulk("2"), Nil(), Bulk("1"), Bulk("1")}));
  EXPECT_EQ(kv({"DBSIZE"}), Int(3));
  EXPECT_EQ(kv.sm().expires_count(), 1u);
  EXPECT_OK(kv.sm().TEST_check_invariants());
}

TEST(KvStateMachine, ExpiryScanResumesWhereNothingIsEarlier) {
  KvHarness kv;
  kv.apply_payloads({req(test::kT0, {"SET", "a", "1", "PX", "100"}),
                     req(test::kT0, {"SET", "b", "1", "PX", "5000"})});
  auto keys = kv.sm().expired_keys_to_delete(test::kT0 + 200, 10);
  EXPECT_EQ(keys, (std::vector<std::string>{"a"}));
  kv.apply_payloads({encode_expired_deletion(test::kT0 + 200, keys)});
  EXPECT_TRUE(kv.sm().expired_keys_to_delete(test::kT0 + 200, 10).empty());
  // An expiry earlier than anything seen so far (an absolute time in the
  // past) is still found.
  kv.apply_payloads({req(test::kT0 + 300, {"SET", "c", "1", "PXAT", "1"})});
  EXPECT_EQ(kv.sm().expired_keys_to_delete(test::kT0 + 300, 10), (std::vector<std::string>{"c"}));
  kv.apply_payloads(
      {req(test::kT0 + 300, {"SET", "d", "1", "PX", "1"}), req(test::kT0 + 300, {"DEL", "c"})});
  EXPECT_EQ(kv.sm().expired_keys_to_delete(test::kT0 + 6000, 10),
            (std::vector<std::string>{"d", "b"}));
  // After a restart or a snapshot the scan starts from the beginning.
  kv.reopen();
  EXPECT_EQ(kv.sm().expired_keys_to_delete(test::kT0 + 6000, 10),
            (std::vector<std::string>{"d", "b"}));
}

TEST(KvStateMachine, ExpiryDeletionUsesTheEntryStampNotTheClock) {
  KvHarness kv;
  kv.apply_payloads({req(test::kT0, {"SET", "a", "1", "PX", "100"})});
  // A deletion stamped before the expiry deletes nothing.
  std::vector<std::string> keys = {"a"};
  auto res = kv.apply_payloads({encode_expired_deletion(test::kT0 + 50, keys)});
  EXPECT_EQ(res[0], Int(0));
  EXPECT_EQ(kv.sm().key_count(), 1u);
  res = kv.apply_payloads({encode_expired_deletion(test::kT0 + 100, keys)});
  EXPECT_EQ(res[0], Int(1));
  EXPECT_EQ(kv.sm().key_count(), 0u);
}

// Random writes with random stamps (sometimes going back) and random
// batching, applied to two replicas: same replies, same bytes.
TEST(KvStateMachine, ReplicasAreDeterministic) {
  KvHarness r1, r2;
  std::mt19937_64 rng(42);
  auto pick = [&](std::vector<std::string> v) { return v[rng() % v.size()]; };
  const std::vector<std::string> keys = {"a", "b", "c", "{t}1", "{t}2"};
  int64_t stamp = test::kT0;
  for (int round = 0; round < 200; round++) {
    std::vector<std::string> payloads;
    const int n = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < n; i++) {
      stamp += static_cast<int64_t>(rng() % 100) - 20;
      std::vector<std::string> args;
      switch (rng() % 9) {
        case 0:
          args = {"SET", pick(keys), pick({"1", "x", "2.5"}), "PX", pick({"30", "200", "5000"})};
          break;
        case 1:
          args = {"INCR", pick(keys)};
          break;
        case 2:
          args = {"APPEND", pick(keys), "z"};
          break;
        case 3:
          args = {"PEXPIRE", pick(keys), pick({"10", "100", "-1"})};
          break;
        case 4:
          args = {"RENAME", pick(keys), pick(keys)};
          break;
        case 5:
          args = {"DEL", pick(keys)};
          break;
        case 6:
          args = {"RANDOMKEY"};
          break;
        case 7:
          args = {"INCRBYFLOAT", pick(keys), "0.25"};
          break;
        default: {
          auto expired = r1.sm().expired_keys_to_delete(stamp, 3);
          payloads.push_back(encode_expired_deletion(stamp, expired));
          continue;
        }
      }
      std::vector<std::string_view> views(args.begin(), args.end());
      payloads.push_back(encode_request(stamp, net::Protocol::kResp2, views));
    }
    EXPECT_EQ(r1.apply_payloads(payloads), r2.apply_payloads(payloads)) << "round " << round;
  }
  EXPECT_EQ(dump(r1), dump(r2));
  EXPECT_EQ(r1.sm().last_stamp_ms(), r2.sm().last_stamp_ms());
  EXPECT_OK(r1.sm().TEST_check_invariants());
  EXPECT_OK(r2.sm().TEST_check_invariants());
}

// An apply writes only the '#' counters that changed: the records must not
// depend on how entries were grouped into applies (replicas batch
// differently), including across restarts, FLUSHALL, SCRIPT FLUSH (a range
// deletion under '#') and the counters that are not key counts (LOCK's
// fencing token).
TEST(KvStateMachine, CountersDoNotDependOnApplyBatches) {
  KvHarness whole, single;
  std::mt19937_64 rng(7);
  const std::vector<std::string> keys = {"a", "b", "c", "{t}1", "{t}2"};
  auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  int64_t stamp = test::kT0;
  for (int round = 0; round < 120; round++) {
    std::vector<std::string> payloads;
    const int n = 1 + static_cast<int>(rng() % 6);
    for (int i = 0; i < n; i++) {
      stamp += static_cast<int64_t>(rng() % 50);
      std::vector<std::string> args;
      switch (rng() % 10) {
        case 0: args = {"SET", pick(keys), "v", "PX", pick({"20", "5000"})}; break;
        case 1: args = {"SET", pick(keys), "w"}; break;
        case 2: args = {"DEL", pick(keys)}; break;
        case 3: args = {"PERSIST", pick(keys)}; break;
        case 4: args = {"LOCK", pick({"l1", "l2"}), "me", "1000"}; break;
        case 5: args = {"UNLOCK", pick({"l1", "l2"}), "me"}; break;
        case 6: args = {"SCRIPT", "LOAD", "return " + std::to_string(rng() % 3)}; break;
        case 7: args = {"SCRIPT", "FLUSH"}; break;
        case 8: args = {"FLUSHALL"}; break;
        default: args = {"RPUSH", pick(keys), "x"}; break;
      }
      std::vector<std::string_view> views(args.begin(), args.end());
      payloads.push_back(encode_request(stamp, net::Protocol::kResp2, views));
    }
    std::vector<std::string> a = whole.apply_payloads(payloads), b;
    for (const auto& p : payloads) {
      auto r = single.apply_payloads({p});
      b.insert(b.end(), r.begin(), r.end());
    }
    ASSERT_EQ(a, b) << "round " << round;
    ASSERT_EQ(dump(whole), dump(single)) << "round " << round;
    if (round % 40 == 39) {
      // What is in memory was written: the counters and the stamp loaded
      // at open are those the applies left.
      const KeyspaceCounters counters = whole.sm().TEST_counters();
      const int64_t last_stamp = whole.sm().last_stamp_ms();
      whole.reopen();
      single.reopen();
      ASSERT_EQ(dump(whole), dump(single)) << "round " << round;
      EXPECT_EQ(whole.sm().TEST_counters(), counters) << "round " << round;
      EXPECT_EQ(single.sm().TEST_counters(), counters) << "round " << round;
      EXPECT_EQ(whole.sm().last_stamp_ms(), last_stamp) << "round " << round;
    }
  }
  EXPECT_OK(whole.sm().TEST_check_invariants());
  EXPECT_OK(single.sm().TEST_check_invariants());
  EXPECT_EQ(whole.sm().last_stamp_ms(), single.sm().last_stamp_ms());
}

TEST(KvStateMachine, SnapshotRestoresOnAnotherStore) {
  KvHarness src;
  std::vector<std::string> mset = {"MSET"};
  for (int i = 0; i < 1000; i++) {
    mset.push_back("key" + std::to_string(i));
    mset.push_back(std::string(static_cast<size_t>(i % 50), 'v'));
  }
  src.run(mset);
  src.run({"SET", "ttl", "x", "PX", "5000"});
  src.run({"SET", "gone", "x", "PX", "1"});
  src.advance(10);
  src.run({"INCR", "counter"});
  auto snap = src.sm().snapshot();
  ASSERT_TRUE(snap.is_ok()) << snap.status().to_string();
  EXPECT_EQ((*snap)->metadata().index(), src.sm().applied_index());
  EXPECT_EQ((*snap)->metadata().group(), 1u);
  auto again = src.sm().snapshot();
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(again->get(), snap->get());  // cached while nothing is applied

  KvHarness dst;
  dst.run({"SET", "old", "junk"});
  ASSERT_OK(dst.sm().restore(**snap));
  EXPECT_EQ(dst.sm().applied_index(), src.sm().applied_index());
  EXPECT_EQ(dump(dst), dump(src));
  EXPECT_EQ(dst.sm().key_count(), src.sm().key_count());
  EXPECT_EQ(dst.sm().expires_count(), 2u);
  EXPECT_EQ(dst.sm().last_stamp_ms(), src.sm().last_stamp_ms());
  dst.set_now(src.now_ms());
  EXPECT_EQ(dst({"GET", "old"}), Nil());
  EXPECT_EQ(dst({"GET", "key7"}), Bulk("vvvvvvv"));
  EXPECT_EQ(dst({"PTTL", "ttl"}), Int(4990));
  EXPECT_EQ(dst({"DBSIZE"}), Int(1003));
  EXPECT_OK(dst.sm().TEST_check_invariants());
  // The restored replica continues from the snapshot's index.
  EXPECT_EQ(dst({"INCR", "counter"}), Int(2));
  // A snapshot not newer than the state is refused.
  EXPECT_EQ(dst.sm().restore(**snap).code(), Code::kInvalidArgument);
}

TEST(KvStateMachine, DamagedSnapshotsChangeNothing) {
  KvHarness src;
  src.run({"SET", "k", "v"});
  auto snap = src.sm().snapshot();
  ASSERT_TRUE(snap.is_ok());
  KvHarness dst;
  dst.run({"SET", "mine", "1"});
  raftpb::Snapshot bad = **snap;
  std::string data = bad.data();
  data[data.size() / 2] ^= 0x40;
  bad.set_data(data);
  EXPECT_FALSE(dst.sm().restore(bad).is_ok());
  bad = **snap;
  bad.mutable_metadata()->set_index(bad.metadata().index() + 1);  // data for another index
  EXPECT_EQ(dst.sm().restore(bad).code(), Code::kCorruption);
  bad = **snap;
  bad.mutable_metadata()->set_group(7);  // metadata and data disagree
  EXPECT_EQ(dst.sm().restore(bad).code(), Code::kCorruption);
  // A whole snapshot of another group.
  KvHarness other(KvOptions{}, 7);
  other.run({"SET", "theirs", "1"});
  auto other_snap = other.sm().snapshot();
  ASSERT_TRUE(other_snap.is_ok());
  EXPECT_EQ(dst.sm().restore(**other_snap).code(), Code::kInvalidArgument);
  EXPECT_EQ(dst({"GET", "mine"}), Bulk("1"));
  EXPECT_EQ(dst.sm().key_count(), 1u);
}

TEST(KvStateMachine, SnapshotSizeLimit) {
  KvOptions o;
  o.snapshot_bytes_max = 1000;
  KvHarness kv(o);
  kv.run({"SET", "big", std::string(5000, 'x')});
  auto snap = kv.sm().snapshot();
  EXPECT_EQ(snap.status().code(), Code::kInvalidArgument);
}

TEST(KvStateMachine, SurvivesRestart) {
  KvHarness kv;
  kv.run({"SET", "a", "1", "EX", "100"});
  kv.run({"MSET", "b", "2", "c", "3"});
  const uint64_t applied = kv.sm().applied_index();
  kv.reopen();
  EXPECT_EQ(kv.sm().applied_index(), applied);
  EXPECT_EQ(kv.sm().key_count(), 3u);
  EXPECT_EQ(kv.sm().expires_count(), 1u);
  EXPECT_EQ(kv({"MGET", "a", "b", "c"}), Arr({Bulk("1"), Bulk("2"), Bulk("3")}));
  EXPECT_EQ(kv({"TTL", "a"}), Int(100));
  EXPECT_OK(kv.sm().TEST_check_invariants());
}

TEST(KvStateMachine, GroupsAreIndependent) {
  test::TempDir dir;
  KvHarness g1(dir.path(), KvOptions{}, 1, true);
  g1.run({"SET", "k", "one"});
  g1.close();
  KvHarness g2(dir.path(), KvOptions{}, 2, true);
  EXPECT_EQ(g2({"GET", "k"}), Nil());
  g2.run({"SET", "k", "two"});
  EXPECT_EQ(g2({"DBSIZE"}), Int(1));
  g2.close();
  KvHarness again(dir.path(), KvOptions{}, 1, false);
  EXPECT_EQ(again({"GET", "k"}), Bulk("one"));
}

TEST(KvStateMachineDeathTest, EntriesMustFollowTheAppliedIndex) {
  KvHarness kv;
  std::vector<raftpb::Entry> es = {entry(5, 1, "")};
  std::vector<std::string> results;
  EXPECT_DEATH((void)kv.sm().apply(es, std::nullopt, &results), "entries must follow");
}

TEST(KvEncoding, EncodeRequestRoundTrips) {
  std::vector<std::string_view> args = {"SET", std::string_view("k\0", 2), "v"};
  kvpb::KvBatch b;
  ASSERT_TRUE(b.ParseFromString(encode_request(123, net::Protocol::kResp3, args)));
  EXPECT_EQ(b.stamp_ms(), 123);
  ASSERT_EQ(b.requests_size(), 1);
  EXPECT_EQ(b.requests(0).protocol(), 3u);
  EXPECT_FALSE(b.requests(0).internal());
  EXPECT_EQ(b.requests(0).args(1), std::string("k\0", 2));
  std::vector<std::string> keys = {"x", "y"};
  ASSERT_TRUE(b.ParseFromString(encode_expired_deletion(9, keys)));
  EXPECT_TRUE(b.requests(0).internal());
  EXPECT_EQ(b.requests(0).args(0), kDelExpiredCommand);
  EXPECT_EQ(b.requests(0).args_size(), 3);
}

}  // namespace
}  // namespace qkv::kv
