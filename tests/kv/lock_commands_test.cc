// Native locks (LOCK, LOCK.REFRESH, UNLOCK, LOCK.INFO, FENCE) and blocked
// clients in the replicated state (block, unblock, renewblock, timers,
// unblockstale; BLPOP, BRPOP, BLMOVE, BRPOPLPUSH): replies, FIFO serving,
// deadlines and leases in entry-stamp time, the events the server acts on.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "kv/commands.h"
#include "kv/waiters.h"
#include "kv_test_util.h"

namespace qkv::kv {
namespace {

using test::Arr;
using test::Bulk;
using test::Err;
using test::Int;
using test::KvHarness;
using test::Nil;
using test::Ok;

const std::string kBlocked(kBlockedReply);

class KvLocks : public ::testing::Test {
 protected:
  void SetUp() override {
    kv.sm().set_event_sink(
        [this](ApplyEvents& ev) {
          for (auto& s : ev.served) served.emplace_back(s.waiter_id, s.reply);
          for (auto& c : ev.served_changes) served_changes.push_back(c);
        },
        false);
  }
  void TearDown() override { EXPECT_OK(kv.sm().TEST_check_invariants()); }

  // Proposes `block id lease_ms args...` as the server does.
  std::string block(const std::string& id, std::vector<std::string> args,
                    int64_t lease_ms = 30000) {
    std::vector<std::string> cmd{"block", id, std::to_string(lease_ms)};
    cmd.insert(cmd.end(), args.begin(), args.end());
    return kv.apply_one(cmd, /*internal=*/true);
  }
  // Fires what the leader would find due now.
  std::string fire_timers() {
    auto due = kv.sm().due_timers(kv.now_ms(), 1000);
    if (due.empty()) return "";
    std::vector<std::string> cmd{"timers"};
    cmd.insert(cmd.end(), due.begin(), due.end());
    return kv.apply_one(cmd, /*internal=*/true);
  }
  int64_t token(const std::string& reply) {
    EXPECT_EQ(reply[0], ':') << reply;
    return std::stoll(reply.substr(1));
  }
  // The served waiters so far, then forgets them.
  std::vector<std::pair<std::string, std::string>> take() {
    auto out = std::move(served);
    served.clear();
    return out;
  }
  using Served = std::vector<std::pair<std::string, std::string>>;

  KvHarness kv;
  Served served;
  std::vector<std::pair<uint64_t, std::string>> served_changes;
};

TEST_F(KvLocks, GrantRefreshUnlockAndTokensIncrease) {
  const int64_t t1 = token(kv({"LOCK", "L", "alice", "1000"}));
  EXPECT_EQ(kv({"LOCK", "L", "bob", "1000"}), Nil());
  // The holder asking again (a retry) refreshes and keeps its token.
  EXPECT_EQ(kv({"LOCK", "L", "alice", "5000"}), Int(t1));
  EXPECT_EQ(kv({"LOCK.REFRESH", "L", "alice", "2000"}), Int(t1));
  EXPECT_EQ(kv({"LOCK.REFRESH", "L", "bob", "2000"}), Nil());
  EXPECT_EQ(kv({"TYPE", "L"}), "+lock\r\n");
  EXPECT_EQ(kv({"GET", "L"}), Err(kErrWrongType));
  EXPECT_EQ(kv({"UNLOCK", "L", "bob"}), Int(0));
  EXPECT_EQ(kv({"UNLOCK", "L", "alice"}), Int(1));
  EXPECT_EQ(kv({"UNLOCK", "L", "alice"}), Int(0));
  EXPECT_EQ(kv({"LOCK.INFO", "L"}), Nil());
  const int64_t t2 = token(kv({"LOCK", "L", "bob", "1000"}));
  EXPECT_GT(t2, t1);
  // Another lock's grant also takes a larger token: one counter per group.
  const int64_t t3 = token(kv({"LOCK", "M", "carol", "1000"}));
  EXPECT_GT(t3, t2);
  // FLUSHALL and a restart never bring tokens back.
  EXPECT_EQ(kv({"FLUSHALL"}), Ok());
  kv.reopen();
  kv.sm().set_event_sink([](ApplyEvents&) {}, false);
  EXPECT_GT(token(kv({"LOCK", "L", "dave", "1000"})), t3);
}

TEST_F(KvLocks, LeaseExpiresInEntryTime) {
  const int64_t t1 = token(kv({"LOCK", "L", "alice", "1000"}));
  kv.advance(999);
  EXPECT_EQ(kv({"LOCK", "L", "bob", "1000"}), Nil());
  EXPECT_EQ(kv({"LOCK.INFO", "L"}),
            Arr({Bulk("owner"), Bulk("alice"), Bulk("token"), Int(t1), Bulk("ttl_ms"), Int(1),
                 Bulk("waiters"), Int(0)}));
  kv.advance(1);
  // The lease ended at the stamp: free for everyone, no write needed.
  EXPECT_EQ(kv({"LOCK.REFRESH", "L", "alice", "1000"}), Nil());
  EXPECT_EQ(kv({"UNLOCK", "L", "alice"}), Int(0));
  EXPECT_GT(token(kv({"LOCK", "L", "bob", "1000"})), t1);
}

TEST_F(KvLocks, Errors) {
  EXPECT_EQ(kv({"LOCK", "L", "a", "0"}),
            Err("ERR the lock's ttl must be a number of milliseconds > 0"));
  EXPECT_EQ(kv({"LOCK", "L", "a", "x"}),
            Err("ERR the lock's ttl must be a number of milliseconds > 0"));
  EXPECT_EQ(kv({"LOCK", "L", "a", "10", "WAIT"}), Err(kErrSyntax));
  EXPECT_EQ(kv({"LOCK", "L", "a", "10", "NOWAIT", "5"}), Err(kErrSyntax));
  EXPECT_EQ(kv({"LOCK", "L", "a", "10", "WAIT", "-1"}),
            Err("ERR WAIT must be a number of milliseconds >= 0"));
  EXPECT_EQ(kv({"SET", "s", "v"}), Ok());
  EXPECT_EQ(kv({"LOCK", "s", "a", "10"}), Err(kErrWrongType));
  EXPECT_EQ(kv({"UNLOCK", "s", "a"}), Err(kErrWrongType));
  EXPECT_EQ(kv({"FENCE", "L", "x"}), Err("ERR the fencing token must be an integer >= 0"));
  EXPECT_EQ(kv({"FENCE", "L", "1", "NOSUCH"}),
            Err("ERR unknown command 'NOSUCH', with args beginning with: "));
  EXPECT_EQ(kv({"FENCE", "L", "1", "BLPOP", "l", "0"}), Err("ERR FENCE cannot run 'blpop'"));
  EXPECT_EQ(kv({"FENCE", "L", "1", "SET", "k"}),
            Err("ERR wrong number of arguments for 'set' command"));
}

TEST_F(KvLocks, FenceRunsOnlyWithTheCurrentToken) {
  const int64_t t1 = token(kv({"LOCK", "L", "alice", "1000"}));
  EXPECT_EQ(kv({"FENCE", "L", std::to_string(t1)}), Ok());
  EXPECT_EQ(kv({"FENCE", "L", std::to_string(t1), "SET", "data", "from-alice"}), Ok());
  EXPECT_EQ(kv({"GET", "data"}), Bulk("from-alice"));
  // Alice pauses; her lease ends; bob takes the lock.
  kv.advance(1000);
  EXPECT_EQ(kv({"FENCE", "L", std::to_string(t1), "SET", "data", "late"}),
            Err("FENCED token " + std::to_string(t1) + " does not hold lock 'L'"));
  const int64_t t2 = token(kv({"LOCK", "L", "bob", "1000"}));
  EXPECT_EQ(kv({"FENCE", "L", std::to_string(t1), "SET", "data", "late"}),
            Err("FENCED token " + std::to_string(t1) + " does not hold lock 'L' (held with token " +
                std::to_string(t2) + ")"));
  EXPECT_EQ(kv({"GET", "data"}), Bulk("from-alice"));
  EXPECT_EQ(kv({"FENCE", "L", std::to_string(t2), "INCR", "n"}), Int(1));
  // Keys: the lock, then the inner command's.
  const CommandSpec* fence = find_command("fence");
  std::vector<std::string_view> args{"FENCE", "L", "7", "MSET", "a", "1", "b", "2"};
  EXPECT_EQ(command_keys(*fence, args), (std::vector<size_t>{1, 4, 6}));
}

TEST_F(KvLocks, WaitersAreGrantedInOrderOnUnlockAndOnLeaseEnd) {
  const int64_t t1 = token(kv({"LOCK", "L", "alice", "1000"}));
  EXPECT_EQ(block("w1", {"LOCK", "L", "bob", "500", "WAIT", "10000"}), kBlocked);
  EXPECT_EQ(block("w2", {"LOCK", "L", "carol", "500", "WAIT", "10000"}), kBlocked);
  // Proposed twice (a retried forward): still one waiter.
  EXPECT_EQ(block("w2", {"LOCK", "L", "carol", "500", "WAIT", "10000"}), kBlocked);
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(kv({"UNLOCK", "L", "alice"}), Int(1));
  Served s = take();
  ASSERT_EQ(s.size(), 1u);  // only the first waiter wakes
  EXPECT_EQ(s[0].first, "w1");
  const int64_t t2 = token(s[0].second);
  EXPECT_GT(t2, t1);
  // A newcomer cannot jump the queue, even once bob's lease ended.
  kv.advance(600);
  EXPECT_EQ(kv({"LOCK", "L", "dave", "500"}), Nil());
  s = take();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].first, "w2");
  EXPECT_GT(token(s[0].second), t2);
  // Carol's lease ends with nobody writing: the leader's timer hands over.
  EXPECT_EQ(block("w3", {"LOCK", "L", "erin", "500", "WAIT", "10000"}), kBlocked);
  kv.advance(600);
  fire_timers();
  s = take();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].first, "w3");
}

TEST_F(KvLocks, AWaiterTimesOutWithNil) {
  token(kv({"LOCK", "L", "alice", "10000"}));
  EXPECT_EQ(block("w1", {"LOCK", "L", "bob", "500", "WAIT", "100"}), kBlocked);
  kv.advance(99);
  fire_timers();
  EXPECT_TRUE(take().empty());
  kv.advance(1);
  fire_timers();
  EXPECT_EQ(take(), (Served{{"w1", Nil()}}));
  EXPECT_EQ(kv({"UNLOCK", "L", "alice"}), Int(1));
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(kv({"LOCK.INFO", "L"}), Nil());
  // A free lock is granted at once by `block`.
  EXPECT_EQ(block("w2", {"LOCK", "L", "bob", "500", "WAIT", "100"})[0], ':');
}

TEST_F(KvLocks, BlockedPopsAreServedFirstComeFirstServed) {
  EXPECT_EQ(block("w1", {"BLPOP", "a", "b", "0"}), kBlocked);
  EXPECT_EQ(block("w2", {"BRPOP", "b", "0"}), kBlocked);
  EXPECT_EQ(block("w3", {"BLPOP", "b", "0"}), kBlocked);
  EXPECT_EQ(kv({"RPUSH", "b", "x", "y"}), Int(2));
  EXPECT_EQ(take(), (Served{{"w1", Arr({Bulk("b"), Bulk("x")})},
                            {"w2", Arr({Bulk("b"), Bulk("y")})}}));
  EXPECT_EQ(kv({"EXISTS", "b"}), Int(0));
  // w1 waited on a too: it was removed from both queues.
  EXPECT_EQ(kv({"RPUSH", "a", "z"}), Int(1));
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(kv({"LPUSH", "b", "q"}), Int(1));
  EXPECT_EQ(take(), (Served{{"w3", Arr({Bulk("b"), Bulk("q")})}}));
  // Elements present: served at once, not queued.
  EXPECT_EQ(block("w4", {"BLPOP", "a", "0"}), Arr({Bulk("a"), Bulk("z")}));
}

TEST_F(KvLocks, APipelinedRunServesWaitersAfterEachCommandATransactionAfterAll) {
  std::vector<std::string_view> push = {"LPUSH", "q", "a"}, pop = {"LPOP", "q"};
  std::vector<RequestView> reqs = {{net::Protocol::kResp2, push}, {net::Protocol::kResp2, pop}};
  // A pipelined run: the waiter gets the element before LPOP runs.
  EXPECT_EQ(block("w1", {"BLPOP", "q", "0"}), kBlocked);
  auto res = kv.apply_payloads({encode_batch(kv.now_ms(), reqs, /*pipeline=*/true)});
  EXPECT_EQ(res[0], Int(1) + Nil());
  EXPECT_EQ(take(), (Served{{"w1", Arr({Bulk("q"), Bulk("a")})}}));
  // A transaction: LPOP takes it, the waiter still waits.
  EXPECT_EQ(block("w2", {"BLPOP", "q", "0"}), kBlocked);
  res = kv.apply_payloads({encode_batch(kv.now_ms(), reqs)});
  EXPECT_EQ(res[0], Int(1) + Bulk("a"));
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(kv({"RPUSH", "q", "b"}), Int(1));
  EXPECT_EQ(take(), (Served{{"w2", Arr({Bulk("q"), Bulk("b")})}}));
  // Two pushes to one list in a run serve two waiters (a list pushed to
  // again after its waiters were served counts again).
  EXPECT_EQ(block("w3", {"BLPOP", "q", "0"}), kBlocked);
  EXPECT_EQ(block("w4", {"BLPOP", "q", "0"}), kBlocked);
  std::vector<std::string_view> push_b = {"LPUSH", "q", "b"};
  std::vector<RequestView> two = {{net::Protocol::kResp2, push}, {net::Protocol::kResp2, push_b}};
  res = kv.apply_payloads({encode_batch(kv.now_ms(), two, /*pipeline=*/true)});
  EXPECT_EQ(res[0], Int(1) + Int(1));
  EXPECT_EQ(take(), (Served{{"w3", Arr({Bulk("q"), Bulk("a")})},
                            {"w4", Arr({Bulk("q"), Bulk("b")})}}));
  EXPECT_EQ(kv({"EXISTS", "q"}), Int(0));
}

TEST_F(KvLocks, ServingReportsTheKeysItChangedWithThePushingEntry) {
  // WATCH needs them: the pushing entry does not name a BLMOVE's destination.
  EXPECT_EQ(block("w1", {"BLMOVE", "src", "mid", "LEFT", "RIGHT", "0"}), kBlocked);
  EXPECT_EQ(block("w2", {"BRPOPLPUSH", "mid", "dst", "0"}), kBlocked);
  EXPECT_TRUE(served_changes.empty());
  const uint64_t push_index = kv.next_index();
  EXPECT_EQ(kv({"RPUSH", "src", "e"}), Int(1));
  EXPECT_EQ(take().size(), 2u);
  std::set<std::string> keys;
  for (const auto& [index, key] : served_changes) {
    EXPECT_EQ(index, push_index);
    keys.insert(key);
  }
  // (The pushed key itself may be left out: the entry names it.)
  keys.erase("src");
  EXPECT_EQ(keys, (std::set<std::string>{"mid", "dst"}));
  served_changes.clear();
  // A push nobody waits for reports nothing.
  EXPECT_EQ(kv({"RPUSH", "src", "f"}), Int(1));
  EXPECT_TRUE(served_changes.empty());
}

TEST_F(KvLocks, BlockedMoveChainsToTheNextWaiter) {
  EXPECT_EQ(block("m", {"BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"}), kBlocked);
  EXPECT_EQ(block("p", {"BLPOP", "dst", "0"}), kBlocked);
  EXPECT_EQ(block("r", {"BRPOPLPUSH", "src", "other", "0"}), kBlocked);
  EXPECT_EQ(kv({"LPUSH", "src", "one", "two"}), Int(2));
  // As Redis: the source's queue first, then the destination's.
  EXPECT_EQ(take(), (Served{{"m", Bulk("two")}, {"r", Bulk("one")},
                            {"p", Arr({Bulk("dst"), Bulk("two")})}}));
  EXPECT_EQ(kv({"LRANGE", "other", "0", "-1"}), Arr({Bulk("one")}));
  EXPECT_EQ(kv({"EXISTS", "src", "dst"}), Int(0));
}

TEST_F(KvLocks, TimeoutsLeasesRenewalAndUnblock) {
  EXPECT_EQ(block("t", {"BLPOP", "l", "0.5"}), kBlocked);
  EXPECT_EQ(block("f", {"BLPOP", "l", "0"}, /*lease_ms=*/1000), kBlocked);
  EXPECT_EQ(block("g", {"BLMOVE", "l", "d", "LEFT", "LEFT", "0"}, 1000), kBlocked);
  kv.advance(500);
  fire_timers();
  EXPECT_EQ(take(), (Served{{"t", "*-1\r\n"}}));
  EXPECT_EQ(kv.apply_one({"renewblock", "1000", "f", "t", "nosuch"}, true), Int(1));
  kv.advance(600);
  fire_timers();  // g's lease ended; f's was renewed
  EXPECT_EQ(take(), (Served{{"g", Nil()}}));
  EXPECT_EQ(kv.apply_one({"unblock", "f", "g"}, true), Int(1));
  EXPECT_EQ(take(), (Served{{"f", "*-1\r\n"}}));
  EXPECT_EQ(kv({"RPUSH", "l", "v"}), Int(1));
  EXPECT_TRUE(take().empty());
  // A restarted node drops its old run's waiters.
  EXPECT_EQ(block("n1/old/1", {"BLPOP", "x", "0"}), kBlocked);
  EXPECT_EQ(block("n1/new/1", {"BLPOP", "x", "0"}), kBlocked);
  EXPECT_EQ(block("n2/old/1", {"BLPOP", "x", "0"}), kBlocked);
  EXPECT_EQ(kv.apply_one({"unblockstale", "n1/", "n1/new/"}, true), Int(1));
  EXPECT_EQ(take(), (Served{{"n1/old/1", "*-1\r\n"}}));
  EXPECT_EQ(kv({"RPUSH", "x", "1", "2", "3"}), Int(3));
  EXPECT_EQ(take(), (Served{{"n1/new/1", Arr({Bulk("x"), Bulk("1")})},
                            {"n2/old/1", Arr({Bulk("x"), Bulk("2")})}}));
  EXPECT_TRUE(kv.sm().due_timers(kv.now_ms() + 100000000, 10).empty());
}

TEST_F(KvLocks, BlockedStreamReadsWaitForNewEntries) {
  EXPECT_EQ(kv({"XADD", "s", "1-1", "f", "old"}), Bulk("1-1"));
  // "$": only entries after the last one when it blocked.
  EXPECT_EQ(block("r", {"XREAD", "BLOCK", "0", "STREAMS", "s", "$"}), kBlocked);
  EXPECT_EQ(kv({"XGROUP", "CREATE", "s", "g", "$"}), Ok());
  EXPECT_EQ(block("g1", {"XREADGROUP", "GROUP", "g", "c1", "BLOCK", "1000", "STREAMS", "s", ">"}),
            kBlocked);
  EXPECT_EQ(block("t", {"XREAD", "BLOCK", "100", "STREAMS", "other", "0"}), kBlocked);
  EXPECT_EQ(kv({"XADD", "s", "2-1", "f", "new"}), Bulk("2-1"));
  const std::string entry = Arr({Bulk("2-1"), Arr({Bulk("f"), Bulk("new")})});
  EXPECT_EQ(take(), (Served{{"r", Arr({Arr({Bulk("s"), Arr({entry})})})},
                            {"g1", Arr({Arr({Bulk("s"), Arr({entry})})})}}));
  EXPECT_EQ(kv({"XPENDING", "s", "g"}),
            Arr({Int(1), Bulk("2-1"), Bulk("2-1"), Arr({Arr({Bulk("c1"), Bulk("1")})})}));
  kv.advance(100);
  fire_timers();
  EXPECT_EQ(take(), (Served{{"t", "*-1\r\n"}}));
  // Something to read: answered at once.
  EXPECT_EQ(block("now", {"XREAD", "BLOCK", "0", "STREAMS", "s", "0"}),
            Arr({Arr({Bulk("s"), Arr({Arr({Bulk("1-1"), Arr({Bulk("f"), Bulk("old")})}), entry})})}));
}

TEST_F(KvLocks, AStreamReaderLeftWaitingDoesNotHoldBackTheNext) {
  EXPECT_EQ(kv({"XADD", "s", "1-1", "f", "a"}), Bulk("1-1"));
  EXPECT_EQ(kv({"XGROUP", "CREATE", "s", "g", "$"}), Ok());
  // First in the queue: a reader of entries after 9-1, which 2-1 is not.
  EXPECT_EQ(block("late", {"XREAD", "BLOCK", "0", "STREAMS", "s", "9-1"}), kBlocked);
  EXPECT_EQ(block("g1", {"XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"}),
            kBlocked);
  EXPECT_EQ(kv({"XADD", "s", "2-1", "f", "b"}), Bulk("2-1"));
  const std::string entry = Arr({Bulk("2-1"), Arr({Bulk("f"), Bulk("b")})});
  EXPECT_EQ(take(), (Served{{"g1", Arr({Arr({Bulk("s"), Arr({entry})})})}}));
  EXPECT_EQ(kv({"XADD", "s", "10-1", "f", "c"}), Bulk("10-1"));
  EXPECT_EQ(take().size(), 1u);  // "late" now
}

TEST_F(KvLocks, BlockedGroupReadersFailWhenTheirGroupOrStreamGoes) {
  // As Redis: XGROUP DESTROY, deleting or replacing the stream, and
  // FLUSHALL answer blocked XREADGROUP clients with NOGROUP; a plain XREAD
  // and a BLPOP keep waiting.
  const std::string nogroup =
      Err("NOGROUP No such key 's' or consumer group 'g' in XREADGROUP with GROUP option");
  auto reader = [&](const std::string& id) {
    EXPECT_EQ(block(id, {"XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"}),
              kBlocked);
  };
  EXPECT_EQ(kv({"XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"}), Ok());
  EXPECT_EQ(block("plain", {"XREAD", "BLOCK", "0", "STREAMS", "s", "$"}), kBlocked);
  reader("destroyed");
  EXPECT_EQ(kv({"XGROUP", "DESTROY", "s", "g"}), Int(1));
  EXPECT_EQ(take(), (Served{{"destroyed", nogroup}}));
  EXPECT_EQ(kv({"XGROUP", "CREATE", "s", "g", "$"}), Ok());
  reader("deleted");
  EXPECT_EQ(kv({"DEL", "s"}), Int(1));
  EXPECT_EQ(take(), (Served{{"deleted", nogroup}}));
  EXPECT_EQ(kv({"XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"}), Ok());
  reader("replaced");
  EXPECT_EQ(kv({"SET", "s", "x"}), Ok());
  // Both are run again on a string: WRONGTYPE (as Redis 7.2 runs them again).
  auto errors = take();
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].first, "plain");
  EXPECT_EQ(errors[1].first, "replaced");
  for (const auto& [id, reply] : errors) EXPECT_EQ(reply.rfind("-WRONGTYPE", 0), 0u) << reply;
  EXPECT_EQ(kv({"DEL", "s"}), Int(1));
  EXPECT_EQ(kv({"XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"}), Ok());
  EXPECT_EQ(block("plain", {"XREAD", "BLOCK", "0", "STREAMS", "s", "$"}), kBlocked);
  reader("flushed");
  EXPECT_EQ(block("pop", {"BLPOP", "l", "0"}), kBlocked);
  EXPECT_EQ(kv({"FLUSHALL"}), Ok());
  EXPECT_EQ(take(), (Served{{"flushed", nogroup}}));
  // The others still wait.
  EXPECT_EQ(kv({"XADD", "s", "5-1", "f", "v"}), Bulk("5-1"));
  EXPECT_EQ(kv({"RPUSH", "l", "e"}), Int(1));
  auto served = take();
  ASSERT_EQ(served.size(), 2u);
  EXPECT_EQ(served[0].first, "plain");
  EXPECT_EQ(served[1], (std::pair<std::string, std::string>{"pop", Arr({Bulk("l"), Bulk("e")})}));
}

TEST_F(KvLocks, BlockingCommandsRunOnceAnswerAtOnce) {
  EXPECT_EQ(kv({"BLPOP", "l", "0"}), "*-1\r\n");
  EXPECT_EQ(kv({"BLMOVE", "l", "d", "LEFT", "LEFT", "1"}), Nil());
  EXPECT_EQ(kv({"BLPOP", "l", "-1"}), Err("ERR timeout is negative"));
  EXPECT_EQ(kv({"BLPOP", "l", "x"}), Err("ERR timeout is not a float or out of range"));
  EXPECT_EQ(kv({"BLMOVE", "l", "d", "UP", "LEFT", "1"}), Err(kErrSyntax));
  EXPECT_EQ(kv({"SET", "s", "v"}), Ok());
  EXPECT_EQ(kv({"BLPOP", "s", "0"}), Err(kErrWrongType));
  EXPECT_EQ(kv({"RPUSH", "l", "a"}), Int(1));
  EXPECT_EQ(kv({"BRPOPLPUSH", "l", "d", "0"}), Bulk("a"));
  EXPECT_EQ(block("w", {"GET", "x"}), Err("ERR block: not a blocking command"));
  EXPECT_EQ(block("w", {"BLPOP", "l", "-2"}), Err("ERR timeout is negative"));
  kv.protocol = net::Protocol::kResp3;
  EXPECT_EQ(kv({"BLPOP", "nol", "0"}), "_\r\n");
}

}  // namespace
}  // namespace qkv::kv
