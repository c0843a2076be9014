// Keyspace notifications and the keys changed that CLIENT TRACKING uses:
// what each command family reports through the state machine's event sink
// (kv/events.h), in Redis 7.0's order and only when something changed.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kv/events.h"
#include "kv_test_util.h"

namespace qkv::kv {
namespace {

using test::KvHarness;

class KvNotify : public ::testing::Test {
 protected:
  void SetUp() override {
    kv.sm().set_event_sink(
        [this](ApplyEvents& ev) {
          for (const auto& e : ev.keyspace) events.push_back(e.event + ":" + e.key);
          for (const auto& e : ev.keyspace) classes.push_back(e.cls);
          changed.insert(changed.end(), ev.keys_changed.begin(), ev.keys_changed.end());
          flushed = flushed || ev.flushed;
        },
        /*keyspace=*/true);
  }
  void TearDown() override { EXPECT_OK(kv.sm().TEST_check_invariants()); }

  // Runs a command; returns the notifications it caused ("event:key").
  std::vector<std::string> run(const std::vector<std::string>& args) {
    clear();
    kv.run(args);
    return events;
  }
  void clear() {
    events.clear();
    classes.clear();
    changed.clear();
    flushed = false;
  }

  KvHarness kv;
  std::vector<std::string> events;
  std::vector<NotifyClass> classes;
  std::vector<std::string> changed;
  bool flushed = false;
};

using V = std::vector<std::string>;

TEST_F(KvNotify, Strings) {
  EXPECT_EQ(run({"SET", "a", "1"}), (V{"new:a", "set:a"}));
  EXPECT_EQ(classes, (std::vector<NotifyClass>{kNotifyNew, kNotifyString}));
  EXPECT_EQ(changed, (V{"a"}));
  EXPECT_EQ(run({"SET", "a", "2"}), (V{"set:a"}));
  EXPECT_EQ(run({"SET", "a", "3", "EX", "10"}), (V{"set:a", "expire:a"}));
  EXPECT_EQ(classes, (std::vector<NotifyClass>{kNotifyString, kNotifyGeneric}));
  EXPECT_EQ(run({"SET", "a", "4", "KEEPTTL"}), (V{"set:a"}));
  EXPECT_EQ(run({"SET", "a", "5", "NX"}), V{});
  EXPECT_EQ(changed, V{});
  EXPECT_EQ(run({"SET", "b", "5", "XX"}), V{});
  EXPECT_EQ(run({"SETNX", "a", "x"}), V{});
  EXPECT_EQ(run({"SETNX", "b", "x"}), (V{"new:b", "set:b"}));
  EXPECT_EQ(run({"SETEX", "c", "10", "x"}), (V{"new:c", "set:c", "expire:c"}));
  EXPECT_EQ(run({"PSETEX", "c", "10000", "y"}), (V{"set:c", "expire:c"}));
  EXPECT_EQ(run({"GETSET", "c", "z"}), (V{"set:c"}));
  EXPECT_EQ(run({"MSET", "a", "1", "d", "2"}), (V{"set:a", "new:d", "set:d"}));
  EXPECT_EQ(changed, (V{"a", "d"}));
  EXPECT_EQ(run({"MSETNX", "a", "1", "e", "2"}), V{});
  EXPECT_EQ(run({"MSETNX", "e", "1", "f", "2"}), (V{"new:e", "set:e", "new:f", "set:f"}));
  EXPECT_EQ(run({"APPEND", "a", "x"}), (V{"append:a"}));
  EXPECT_EQ(run({"APPEND", "g", "x"}), (V{"new:g", "append:g"}));
  EXPECT_EQ(run({"SETRANGE", "g", "0", ""}), V{});
  EXPECT_EQ(run({"SETRANGE", "g", "1", "yz"}), (V{"setrange:g"}));
  EXPECT_EQ(run({"INCR", "n"}), (V{"new:n", "incrby:n"}));
  EXPECT_EQ(run({"DECR", "n"}), (V{"incrby:n"}));
  EXPECT_EQ(run({"INCRBY", "n", "5"}), (V{"incrby:n"}));
  EXPECT_EQ(run({"DECRBY", "n", "5"}), (V{"incrby:n"}));
  EXPECT_EQ(run({"INCR", "a"}), V{});  // not an integer: an error, nothing changed
  EXPECT_EQ(run({"INCRBYFLOAT", "n", "1.5"}), (V{"incrbyfloat:n"}));
  EXPECT_EQ(run({"GETDEL", "n"}), (V{"del:n"}));
  EXPECT_EQ(run({"GETDEL", "n"}), V{});
  EXPECT_EQ(run({"GETEX", "a", "EX", "100"}), (V{"expire:a"}));
  EXPECT_EQ(run({"GETEX", "a", "PERSIST"}), (V{"persist:a"}));
  EXPECT_EQ(run({"GETEX", "a", "PERSIST"}), V{});
  EXPECT_EQ(run({"GETEX", "a"}), V{});
  EXPECT_EQ(run({"GETEX", "a", "PXAT", "1"}), (V{"del:a"}));
  EXPECT_EQ(run({"CAS", "b", "nope", "y"}), V{});
  EXPECT_EQ(run({"CAS", "b", "x", "y"}), (V{"set:b"}));
}

TEST_F(KvNotify, GenericAndExpiry) {
  kv.run({"SET", "a", "1"});
  kv.run({"SET", "b", "1"});
  EXPECT_EQ(run({"DEL", "a", "nokey", "b"}), (V{"del:a", "del:b"}));
  EXPECT_EQ(changed, (V{"a", "b"}));
  EXPECT_EQ(run({"DEL", "a"}), V{});
  kv.run({"SET", "a", "1"});
  EXPECT_EQ(run({"EXPIRE", "a", "100"}), (V{"expire:a"}));
  EXPECT_EQ(run({"EXPIRE", "a", "200", "NX"}), V{});
  EXPECT_EQ(run({"PEXPIRE", "a", "200000", "GT"}), (V{"expire:a"}));
  EXPECT_EQ(run({"PERSIST", "a"}), (V{"persist:a"}));
  EXPECT_EQ(run({"PERSIST", "a"}), V{});
  EXPECT_EQ(run({"EXPIRE", "a", "-1"}), (V{"del:a"}));  // a past time deletes
  EXPECT_EQ(run({"EXPIRE", "a", "10"}), V{});

  kv.run({"SET", "r", "1"});
  EXPECT_EQ(run({"RENAME", "r", "s"}), (V{"new:s", "rename_from:r", "rename_to:s"}));
  EXPECT_EQ(changed, (V{"r", "s"}));
  EXPECT_EQ(run({"RENAME", "s", "s"}), V{});
  kv.run({"SET", "t", "1"});
  EXPECT_EQ(run({"RENAMENX", "s", "t"}), V{});
  EXPECT_EQ(run({"RENAME", "s", "t"}), (V{"new:t", "rename_from:s", "rename_to:t"}));  // as Redis

  // The leader's expiry deletion: "expired", class x.
  kv.run({"SET", "e", "1", "PX", "100"});
  kv.advance(200);
  clear();
  kv.apply_one({"delexpired", "e", "t"}, /*internal=*/true);
  EXPECT_EQ(events, (V{"expired:e"}));
  EXPECT_EQ(classes, (std::vector<NotifyClass>{kNotifyExpired}));
  EXPECT_EQ(changed, (V{"e"}));

  // An expired record overwritten before its deletion: "expired" then "new".
  kv.run({"SET", "e", "1", "PX", "100"});
  kv.advance(200);
  EXPECT_EQ(run({"SET", "e", "2"}), (V{"expired:e", "new:e", "set:e"}));
  kv.run({"SET", "e", "1", "PX", "100"});
  kv.advance(200);
  EXPECT_EQ(run({"DEL", "e"}), (V{"expired:e"}));

  // FLUSHALL: no notification, every key changed.
  kv.run({"SET", "a", "1"});
  EXPECT_EQ(run({"FLUSHALL"}), V{});
  EXPECT_TRUE(flushed);
  EXPECT_EQ(run({"FLUSHDB"}), V{});
  EXPECT_TRUE(flushed);  // even when empty (tracking clients are told)
}

TEST_F(KvNotify, Lists) {
  EXPECT_EQ(run({"RPUSH", "l", "a", "b", "c"}), (V{"new:l", "rpush:l"}));
  EXPECT_EQ(changed, (V{"l"}));
  EXPECT_EQ(run({"LPUSH", "l", "z"}), (V{"lpush:l"}));
  EXPECT_EQ(run({"LPUSHX", "nokey", "z"}), V{});
  EXPECT_EQ(run({"RPUSHX", "l", "d"}), (V{"rpush:l"}));
  EXPECT_EQ(run({"LPOP", "l"}), (V{"lpop:l"}));
  EXPECT_EQ(run({"RPOP", "l", "0"}), V{});
  EXPECT_EQ(run({"RPOP", "l"}), (V{"rpop:l"}));
  EXPECT_EQ(run({"LSET", "l", "0", "A"}), (V{"lset:l"}));
  EXPECT_EQ(changed, (V{"l"}));
  EXPECT_EQ(run({"LSET", "l", "9", "A"}), V{});
  EXPECT_EQ(run({"LINSERT", "l", "BEFORE", "b", "x"}), (V{"linsert:l"}));
  EXPECT_EQ(run({"LINSERT", "l", "BEFORE", "nope", "x"}), V{});
  EXPECT_EQ(run({"LREM", "l", "0", "nope"}), V{});
  EXPECT_EQ(run({"LREM", "l", "0", "x"}), (V{"lrem:l"}));
  EXPECT_EQ(run({"LTRIM", "l", "0", "-1"}), (V{"ltrim:l"}));  // as Redis: even if nothing goes
  EXPECT_EQ(run({"LMOVE", "l", "m", "LEFT", "RIGHT"}), (V{"new:m", "rpush:m", "lpop:l"}));
  EXPECT_EQ(changed, (V{"l", "m"}));
  EXPECT_EQ(run({"RPOPLPUSH", "l", "m"}), (V{"lpush:m", "rpop:l"}));
  EXPECT_EQ(run({"LMOVE", "m", "m", "LEFT", "RIGHT"}), (V{"rpush:m", "lpop:m"}));
  EXPECT_EQ(run({"LTRIM", "m", "5", "6"}), (V{"ltrim:m", "del:m"}));
  kv.run({"RPUSH", "l", "a", "b"});
  EXPECT_EQ(run({"RPOP", "l", "5"}), (V{"rpop:l", "del:l"}));
  kv.run({"RPUSH", "l", "a", "a"});
  EXPECT_EQ(run({"LREM", "l", "0", "a"}), (V{"lrem:l", "del:l"}));
  EXPECT_EQ(classes, (std::vector<NotifyClass>{kNotifyList, kNotifyGeneric}));
}

TEST_F(KvNotify, Hashes) {
  EXPECT_EQ(run({"HSET", "h", "a", "1", "b", "2"}), (V{"new:h", "hset:h"}));
  EXPECT_EQ(classes, (std::vector<NotifyClass>{kNotifyNew, kNotifyHash}));
  EXPECT_EQ(run({"HSET", "h", "a", "1"}), (V{"hset:h"}));  // as Redis: even if unchanged
  EXPECT_EQ(run({"HMSET", "h", "c", "3"}), (V{"hset:h"}));
  EXPECT_EQ(run({"HSETNX", "h", "a", "9"}), V{});
  EXPECT_EQ(run({"HSETNX", "h", "d", "9"}), (V{"hset:h"}));
  EXPECT_EQ(run({"HINCRBY", "h", "a", "2"}), (V{"hincrby:h"}));
  EXPECT_EQ(run({"HINCRBYFLOAT", "h", "a", "0.5"}), (V{"hincrbyfloat:h"}));
  EXPECT_EQ(run({"HDEL", "h", "nope"}), V{});
  EXPECT_EQ(run({"HDEL", "h", "a", "b"}), (V{"hdel:h"}));
  EXPECT_EQ(changed, (V{"h"}));
  EXPECT_EQ(run({"HDEL", "h", "c", "d"}), (V{"hdel:h", "del:h"}));
  EXPECT_EQ(run({"HGET", "h", "a"}), V{});  // a read: nothing at all
}

TEST_F(KvNotify, Sets) {
  EXPECT_EQ(run({"SADD", "s", "a", "b", "c"}), (V{"new:s", "sadd:s"}));
  EXPECT_EQ(run({"SADD", "s", "a"}), V{});
  EXPECT_EQ(run({"SREM", "s", "nope"}), V{});
  EXPECT_EQ(run({"SREM", "s", "a"}), (V{"srem:s"}));
  EXPECT_EQ(run({"SMOVE", "s", "t", "b"}), (V{"srem:s", "new:t", "sadd:t"}));
  EXPECT_EQ(run({"SMOVE", "s", "t", "nope"}), V{});
  kv.run({"SADD", "s", "b"});
  EXPECT_EQ(run({"SMOVE", "s", "t", "b"}), (V{"srem:s"}));  // already in t
  EXPECT_EQ(run({"SMOVE", "s", "t", "c"}), (V{"srem:s", "del:s", "sadd:t"}));
  EXPECT_EQ(run({"SPOP", "t"}), (V{"spop:t"}));
  EXPECT_EQ(run({"SPOP", "t", "0"}), V{});
  EXPECT_EQ(run({"SPOP", "t", "5"}), (V{"spop:t", "del:t"}));
  kv.run({"SADD", "a", "1", "2"});
  kv.run({"SADD", "b", "2", "3"});
  EXPECT_EQ(run({"SINTERSTORE", "d", "a", "b"}), (V{"new:d", "sinterstore:d"}));
  EXPECT_EQ(classes, (std::vector<NotifyClass>{kNotifyNew, kNotifySet}));
  EXPECT_EQ(run({"SUNIONSTORE", "d", "a", "b"}), (V{"sunionstore:d"}));  // replaced: not new
  EXPECT_EQ(run({"SDIFFSTORE", "d", "a", "b"}), (V{"sdiffstore:d"}));
  EXPECT_EQ(run({"SDIFFSTORE", "d", "a", "a"}), (V{"del:d"}));
  EXPECT_EQ(changed, (V{"d"}));
  EXPECT_EQ(run({"SDIFFSTORE", "d", "a", "a"}), V{});
}

TEST_F(KvNotify, Streams) {
  EXPECT_EQ(run({"XADD", "x", "1-1", "f", "v"}), (V{"new:x", "xadd:x"}));
  EXPECT_EQ(classes, (std::vector<NotifyClass>{kNotifyNew, kNotifyStream}));
  EXPECT_EQ(changed, (V{"x"}));
  EXPECT_EQ(run({"XADD", "x", "1-0", "f", "v"}), V{});  // refused: nothing changed
  EXPECT_EQ(run({"XADD", "x", "nomkstream", "2-0", "f", "v"}), (V{"xadd:x"}));
  EXPECT_EQ(run({"XADD", "nokey", "nomkstream", "2-0", "f", "v"}), V{});
  EXPECT_EQ(run({"XADD", "x", "MAXLEN", "1", "3-0", "f", "v"}), (V{"xadd:x", "xtrim:x"}));
  EXPECT_EQ(run({"XTRIM", "x", "MAXLEN", "5"}), V{});
  EXPECT_EQ(run({"XADD", "x", "4-0", "f", "v"}), (V{"xadd:x"}));
  EXPECT_EQ(run({"XTRIM", "x", "MAXLEN", "1"}), (V{"xtrim:x"}));
  EXPECT_EQ(run({"XDEL", "x", "1-0"}), V{});
  EXPECT_EQ(run({"XDEL", "x", "4-0"}), (V{"xdel:x"}));
  EXPECT_EQ(run({"XSETID", "x", "9-0"}), (V{"xsetid:x"}));
  EXPECT_EQ(run({"XGROUP", "CREATE", "x", "g", "0"}), (V{"xgroup-create:x"}));
  EXPECT_EQ(run({"XGROUP", "CREATE", "x", "g", "0"}), V{});  // BUSYGROUP
  EXPECT_EQ(run({"XGROUP", "CREATE", "y", "g", "$", "MKSTREAM"}), (V{"new:y", "xgroup-create:y"}));
  EXPECT_EQ(run({"XGROUP", "SETID", "x", "g", "$"}), (V{"xgroup-setid:x"}));
  EXPECT_EQ(run({"XGROUP", "CREATECONSUMER", "x", "g", "c"}), (V{"xgroup-createconsumer:x"}));
  EXPECT_EQ(run({"XGROUP", "CREATECONSUMER", "x", "g", "c"}), V{});
  EXPECT_EQ(run({"XADD", "x", "10-0", "f", "v"}), (V{"xadd:x"}));
  EXPECT_EQ(run({"XREADGROUP", "GROUP", "g", "d", "STREAMS", "x", ">"}),
            (V{"xgroup-createconsumer:x"}));
  EXPECT_EQ(run({"XREADGROUP", "GROUP", "g", "d", "STREAMS", "x", ">"}), V{});
  EXPECT_EQ(run({"XCLAIM", "x", "g", "e", "0", "10-0"}), (V{"xgroup-createconsumer:x"}));
  EXPECT_EQ(run({"XAUTOCLAIM", "x", "g", "f", "0", "0"}), (V{"xgroup-createconsumer:x"}));
  EXPECT_EQ(run({"XGROUP", "DELCONSUMER", "x", "g", "nobody"}), V{});
  EXPECT_EQ(run({"XGROUP", "DELCONSUMER", "x", "g", "c"}), (V{"xgroup-delconsumer:x"}));
  EXPECT_EQ(run({"XGROUP", "DESTROY", "x", "g"}), (V{"xgroup-destroy:x"}));
  EXPECT_EQ(run({"XGROUP", "DESTROY", "x", "g"}), V{});
  EXPECT_EQ(run({"XRANGE", "x", "-", "+"}), V{});  // a read: nothing at all
}

TEST_F(KvNotify, BlockedClientsServedLater) {
  // A BLPOP served when an element arrives reports its pop (and the list's
  // end) in the pushing entry, after the push, as Redis does.
  EXPECT_EQ(kv.apply_one({"block", "w1", "15000", "BLPOP", "q", "0"}, /*internal=*/true)[0], '+');
  EXPECT_EQ(run({"RPUSH", "q", "a"}), (V{"new:q", "rpush:q", "lpop:q", "del:q"}));
  EXPECT_EQ(changed, (V{"q"}));
  EXPECT_EQ(kv.apply_one({"block", "w2", "15000", "BRPOP", "q", "0"}, /*internal=*/true)[0], '+');
  EXPECT_EQ(run({"RPUSH", "q", "a", "b"}), (V{"new:q", "rpush:q", "rpop:q"}));
  // Tried at once: the pop is the block entry's own.
  clear();
  kv.apply_one({"block", "w3", "15000", "BLPOP", "q", "0"}, /*internal=*/true);
  EXPECT_EQ(events, (V{"lpop:q", "del:q"}));
  // BLMOVE served later: LMOVE's events.
  EXPECT_EQ(kv.apply_one({"block", "w4", "15000", "BLMOVE", "s", "d", "LEFT", "RIGHT", "0"},
                         /*internal=*/true)[0],
            '+');
  EXPECT_EQ(run({"LPUSH", "s", "v"}), (V{"new:s", "lpush:s", "new:d", "rpush:d", "lpop:s", "del:s"}));
  EXPECT_EQ(changed, (V{"s", "d"}));  // CLIENT TRACKING invalidates the destination too
}

TEST_F(KvNotify, NothingCollectedUnlessWanted) {
  kv.sm().set_keyspace_events(false);
  EXPECT_EQ(run({"SET", "a", "1"}), V{});
  EXPECT_EQ(changed, (V{"a"}));  // keys changed are always collected
  EXPECT_EQ(run({"SADD", "s", "a"}), V{});
  EXPECT_EQ(changed, (V{"s"}));
  kv.sm().set_keyspace_events(true);
  EXPECT_EQ(run({"DEL", "a"}), (V{"del:a"}));
}

TEST_F(KvNotify, TransactionsReportEveryCommand) {
  // A MULTI/EXEC is one entry holding its commands: their events in order.
  const std::vector<std::string_view> set_a = {"SET", "a", "1"};
  const std::vector<std::string_view> incr_a = {"INCR", "a"};
  const std::vector<std::string_view> del_a = {"DEL", "a"};
  const RequestView reqs[] = {{net::Protocol::kResp2, set_a, false},
                              {net::Protocol::kResp2, incr_a, false},
                              {net::Protocol::kResp2, del_a, false}};
  clear();
  kv.apply_payloads({encode_batch(kv.now_ms(), reqs)});
  EXPECT_EQ(events, (V{"new:a", "set:a", "incrby:a", "del:a"}));
  EXPECT_EQ(changed, (V{"a"}));  // once per run of changes to the same key
}

}  // namespace
}  // namespace qkv::kv
