// List commands (the non-blocking ones): replies, errors, WRONGTYPE, large
// lists, and the pushes reported for blocked pops.
#include <gtest/gtest.h>

#include "kv/commands.h"
#include "kv/keyspace.h"
#include "kv/txn.h"
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
using test::Simple;

const std::string kWrongType = Err(kErrWrongType);

class KvLists : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_OK(kv.sm().TEST_check_invariants()); }
  // The whole list as one string, elements separated by spaces.
  std::string all(const std::string& key) {
    net::ReplyParser p;
    p.feed(kv.run({"LRANGE", key, "0", "-1"}));
    EXPECT_EQ(p.next(), net::Parsed::kItem);
    std::string out;
    for (const auto& e : p.value().elements) out += (out.empty() ? "" : " ") + e.str;
    return out;
  }
  KvHarness kv;
};

TEST_F(KvLists, PushPop) {
  EXPECT_EQ(kv({"RPUSH", "l", "a", "b"}), Int(2));
  EXPECT_EQ(kv({"LPUSH", "l", "x", "y"}), Int(4));
  EXPECT_EQ(all("l"), "y x a b");
  EXPECT_EQ(kv({"LPUSHX", "nokey", "a"}), Int(0));
  EXPECT_EQ(kv({"RPUSHX", "nokey", "a"}), Int(0));
  EXPECT_EQ(kv({"EXISTS", "nokey"}), Int(0));
  EXPECT_EQ(kv({"RPUSHX", "l", "z"}), Int(5));
  EXPECT_EQ(kv({"LPUSHX", "l", "w"}), Int(6));
  EXPECT_EQ(kv({"LLEN", "l"}), Int(6));
  EXPECT_EQ(kv({"LLEN", "nokey"}), Int(0));
  EXPECT_EQ(kv({"LPOP", "l"}), Bulk("w"));
  EXPECT_EQ(kv({"RPOP", "l"}), Bulk("z"));
  EXPECT_EQ(kv({"LPOP", "l", "2"}), Arr({Bulk("y"), Bulk("x")}));
  EXPECT_EQ(kv({"RPOP", "l", "0"}), Arr({}));
  EXPECT_EQ(kv({"RPOP", "l", "-1"}), Err("ERR value is out of range, must be positive"));
  EXPECT_EQ(kv({"RPOP", "l", "1", "2"}), Err("ERR wrong number of arguments for 'rpop' command"));
  EXPECT_EQ(kv({"RPOP", "l", "10"}), Arr({Bulk("b"), Bulk("a")}));
  EXPECT_EQ(kv({"EXISTS", "l"}), Int(0));
  EXPECT_EQ(kv({"LPOP", "l"}), Nil());
  EXPECT_EQ(kv({"LPOP", "l", "1"}), "*-1\r\n");
  kv.protocol = net::Protocol::kResp3;
  EXPECT_EQ(kv({"LPOP", "l", "1"}), "_\r\n");
  EXPECT_EQ(kv({"TYPE", "l"}), Simple("none"));
  EXPECT_EQ(kv({"DBSIZE"}), Int(0));
}

TEST_F(KvLists, RangeIndexSet) {
  kv({"RPUSH", "l", "a", "b", "c", "d", "e"});
  EXPECT_EQ(kv({"LRANGE", "l", "1", "2"}), Arr({Bulk("b"), Bulk("c")}));
  EXPECT_EQ(kv({"LRANGE", "l", "-2", "100"}), Arr({Bulk("d"), Bulk("e")}));
  EXPECT_EQ(kv({"LRANGE", "l", "-100", "0"}), Arr({Bulk("a")}));
  EXPECT_EQ(kv({"LRANGE", "l", "3", "1"}), Arr({}));
  EXPECT_EQ(kv({"LRANGE", "l", "5", "10"}), Arr({}));
  EXPECT_EQ(kv({"LRANGE", "l", "x", "1"}), Err(kErrNotInteger));
  EXPECT_EQ(kv({"LRANGE", "nokey", "0", "-1"}), Arr({}));
  EXPECT_EQ(kv({"LINDEX", "l", "0"}), Bulk("a"));
  EXPECT_EQ(kv({"LINDEX", "l", "-1"}), Bulk("e"));
  EXPECT_EQ(kv({"LINDEX", "l", "5"}), Nil());
  EXPECT_EQ(kv({"LINDEX", "l", "-6"}), Nil());
  EXPECT_EQ(kv({"LINDEX", "l", "x"}), Err(kErrNotInteger));
  EXPECT_EQ(kv({"LINDEX", "nokey", "x"}), Nil());  // the key is looked up first
  EXPECT_EQ(kv({"LSET", "l", "1", "B"}), Ok());
  EXPECT_EQ(kv({"LSET", "l", "-1", "E"}), Ok());
  EXPECT_EQ(kv({"LSET", "l", "5", "x"}), Err("ERR index out of range"));
  EXPECT_EQ(kv({"LSET", "nokey", "0", "x"}), Err(kErrNoSuchKey));
  EXPECT_EQ(all("l"), "a B c d E");
}

TEST_F(KvLists, InsertRemTrim) {
  kv({"RPUSH", "l", "a", "b", "a", "c", "a"});
  EXPECT_EQ(kv({"LINSERT", "l", "BEFORE", "b", "x"}), Int(6));
  EXPECT_EQ(kv({"LINSERT", "l", "after", "a", "y"}), Int(7));
  EXPECT_EQ(all("l"), "a y x b a c a");
  EXPECT_EQ(kv({"LINSERT", "l", "AFTER", "zz", "q"}), Int(-1));
  EXPECT_EQ(kv({"LINSERT", "l", "middle", "a", "q"}), Err(kErrSyntax));
  EXPECT_EQ(kv({"LINSERT", "nokey", "BEFORE", "a", "q"}), Int(0));
  EXPECT_EQ(kv({"LINSERT", "l", "AFTER", "a", "end"}), Int(8));
  EXPECT_EQ(all("l"), "a end y x b a c a");
  EXPECT_EQ(kv({"LREM", "l", "-1", "a"}), Int(1));  // the last one
  EXPECT_EQ(all("l"), "a end y x b a c");
  EXPECT_EQ(kv({"LREM", "l", "1", "a"}), Int(1));  // the first one
  EXPECT_EQ(all("l"), "end y x b a c");
  kv({"RPUSH", "l", "a", "a"});
  EXPECT_EQ(kv({"LREM", "l", "0", "a"}), Int(3));
  EXPECT_EQ(all("l"), "end y x b c");
  EXPECT_EQ(kv({"LREM", "l", "0", "zz"}), Int(0));
  EXPECT_EQ(kv({"LREM", "l", "x", "a"}), Err(kErrNotInteger));
  EXPECT_EQ(kv({"LREM", "nokey", "0", "a"}), Int(0));
  EXPECT_EQ(kv({"LTRIM", "l", "1", "-2"}), Ok());
  EXPECT_EQ(all("l"), "y x b");
  EXPECT_EQ(kv({"LTRIM", "l", "1", "100"}), Ok());
  EXPECT_EQ(all("l"), "x b");
  EXPECT_EQ(kv({"LTRIM", "nokey", "0", "1"}), Ok());
  EXPECT_EQ(kv({"LTRIM", "l", "5", "10"}), Ok());  // empty range: the key goes
  EXPECT_EQ(kv({"EXISTS", "l"}), Int(0));
  kv({"RPUSH", "l", "a"});
  EXPECT_EQ(kv({"LREM", "l", "0", "a"}), Int(1));
  EXPECT_EQ(kv({"EXISTS", "l"}), Int(0));
}

TEST_F(KvLists, Pos) {
  kv({"RPUSH", "l", "a", "b", "c", "1", "2", "3", "c", "c"});
  EXPECT_EQ(kv({"LPOS", "l", "c"}), Int(2));
  EXPECT_EQ(kv({"LPOS", "l", "c", "RANK", "2"}), Int(6));
  EXPECT_EQ(kv({"LPOS", "l", "c", "RANK", "-1"}), Int(7));
  EXPECT_EQ(kv({"LPOS", "l", "c", "RANK", "-3"}), Int(2));
  EXPECT_EQ(kv({"LPOS", "l", "c", "RANK", "4"}), Nil());
  EXPECT_EQ(kv({"LPOS", "l", "c", "COUNT", "2"}), Arr({Int(2), Int(6)}));
  EXPECT_EQ(kv({"LPOS", "l", "c", "COUNT", "0"}), Arr({Int(2), Int(6), Int(7)}));
  EXPECT_EQ(kv({"LPOS", "l", "c", "RANK", "-1", "COUNT", "2"}), Arr({Int(7), Int(6)}));
  EXPECT_EQ(kv({"LPOS", "l", "c", "COUNT", "0", "MAXLEN", "7"}), Arr({Int(2), Int(6)}));
  EXPECT_EQ(kv({"LPOS", "l", "zz", "COUNT", "0"}), Arr({}));
  EXPECT_EQ(kv({"LPOS", "nokey", "a"}), Nil());
  EXPECT_EQ(kv({"LPOS", "nokey", "a", "COUNT", "1"}), Arr({}));
  EXPECT_EQ(kv({"LPOS", "l", "c", "RANK", "0"}),
            Err("ERR RANK can't be zero: use 1 to start from the first match, 2 from the "
                "second ... or use negative to start from the end of the list"));
  EXPECT_EQ(kv({"LPOS", "l", "c", "COUNT", "-1"}), Err("ERR COUNT can't be negative"));
  EXPECT_EQ(kv({"LPOS", "l", "c", "MAXLEN", "-1"}), Err("ERR MAXLEN can't be negative"));
  EXPECT_EQ(kv({"LPOS", "l", "c", "bogus"}), Err(kErrSyntax));
}

TEST_F(KvLists, MoveAndRotate) {
  kv({"RPUSH", "src", "a", "b", "c"});
  EXPECT_EQ(kv({"LMOVE", "src", "dst", "LEFT", "RIGHT"}), Bulk("a"));
  EXPECT_EQ(kv({"LMOVE", "src", "dst", "right", "left"}), Bulk("c"));
  EXPECT_EQ(all("dst"), "c a");
  EXPECT_EQ(kv({"LMOVE", "src", "src", "LEFT", "RIGHT"}), Bulk("b"));  // one element: itself
  EXPECT_EQ(all("src"), "b");
  kv({"RPUSH", "r", "1", "2", "3"});
  EXPECT_EQ(kv({"RPOPLPUSH", "r", "r"}), Bulk("3"));  // a rotation
  EXPECT_EQ(all("r"), "3 1 2");
  EXPECT_EQ(kv({"LMOVE", "src", "dst", "up", "LEFT"}), Err(kErrSyntax));
  EXPECT_EQ(kv({"LMOVE", "nokey", "dst", "LEFT", "LEFT"}), Nil());
  EXPECT_EQ(kv({"RPOPLPUSH", "src", "dst"}), Bulk("b"));
  EXPECT_EQ(kv({"EXISTS", "src"}), Int(0));
  EXPECT_EQ(all("dst"), "b c a");
  kv({"SET", "str", "v"});
  EXPECT_EQ(kv({"LMOVE", "dst", "str", "LEFT", "LEFT"}), kWrongType);
  EXPECT_EQ(kv({"LMOVE", "str", "dst", "LEFT", "LEFT"}), kWrongType);
  EXPECT_EQ(kv({"LMOVE", "nokey", "str", "LEFT", "LEFT"}), Nil());
  EXPECT_EQ(all("dst"), "b c a");  // unchanged by the failed moves
}

TEST_F(KvLists, WrongType) {
  kv({"SET", "str", "v"});
  for (const auto& cmd : std::vector<std::vector<std::string>>{
           {"LPUSH", "str", "a"},
           {"RPUSH", "str", "a"},
           {"LPUSHX", "str", "a"},
           {"RPUSHX", "str", "a"},
           {"LPOP", "str"},
           {"RPOP", "str", "1"},
           {"LLEN", "str"},
           {"LRANGE", "str", "0", "1"},
           {"LINDEX", "str", "0"},
           {"LSET", "str", "0", "a"},
           {"LINSERT", "str", "BEFORE", "a", "b"},
           {"LREM", "str", "0", "a"},
           {"LTRIM", "str", "0", "1"},
           {"LPOS", "str", "a"},
           {"RPOPLPUSH", "str", "x"},
       }) {
    EXPECT_EQ(kv.run(cmd), kWrongType) << cmd[0];
  }
  // Argument errors first where Redis checks them first.
  EXPECT_EQ(kv({"LRANGE", "str", "x", "1"}), Err(kErrNotInteger));
  EXPECT_EQ(kv({"LINSERT", "str", "middle", "a", "b"}), Err(kErrSyntax));
  EXPECT_EQ(kv({"LPOP", "str", "-1"}), Err("ERR value is out of range, must be positive"));
}

// A long list: pushes at both ends, indexes, trims that delete ranges,
// LINSERT/LREM rewrites, expiry and deletion of the whole list.
TEST_F(KvLists, LongList) {
  std::vector<std::string> push = {"RPUSH", "l"};
  for (int i = 0; i < 500; i++) push.push_back(std::to_string(i));
  EXPECT_EQ(kv.run(push), Int(500));
  push[0] = "LPUSH";
  EXPECT_EQ(kv.run(push), Int(1000));  // 499 ... 0 0 ... 499
  EXPECT_EQ(kv({"LINDEX", "l", "0"}), Bulk("499"));
  EXPECT_EQ(kv({"LINDEX", "l", "500"}), Bulk("0"));
  EXPECT_EQ(kv({"LINDEX", "l", "-1"}), Bulk("499"));
  EXPECT_EQ(kv({"LPOS", "l", "250", "RANK", "-1"}), Int(750));
  EXPECT_EQ(kv({"LTRIM", "l", "100", "-101"}), Ok());  // drops 100 at each end (range deletions)
  EXPECT_EQ(kv({"LLEN", "l"}), Int(800));
  EXPECT_EQ(kv({"LINDEX", "l", "0"}), Bulk("399"));
  EXPECT_OK(kv.sm().TEST_check_invariants());
  EXPECT_EQ(kv({"LINSERT", "l", "BEFORE", "0", "mid"}), Int(801));
  EXPECT_EQ(kv({"LINDEX", "l", "399"}), Bulk("mid"));
  EXPECT_EQ(kv({"LREM", "l", "0", "5"}), Int(2));
  EXPECT_EQ(kv({"LLEN", "l"}), Int(799));
  EXPECT_OK(kv.sm().TEST_check_invariants());
  EXPECT_EQ(kv({"LRANGE", "l", "398", "400"}), Arr({Bulk("mid"), Bulk("0"), Bulk("0")}));  // a "5" went before
  EXPECT_EQ(kv({"RENAME", "l", "m"}), Ok());
  EXPECT_EQ(kv({"LINDEX", "m", "400"}), Bulk("0"));
  EXPECT_EQ(kv({"PEXPIRE", "m", "10"}), Int(1));
  kv.advance(10);
  EXPECT_EQ(kv({"LLEN", "m"}), Int(0));
  EXPECT_EQ(kv({"RPUSH", "m", "fresh"}), Int(1));  // over the expired list
  EXPECT_EQ(all("m"), "fresh");
  EXPECT_EQ(kv({"DBSIZE"}), Int(1));
}

// Pushes are reported for blocked pops, each list once.
TEST(KvListPushes, KeyspaceReportsListsThatReceivedElements) {
  KvHarness kv;
  Txn txn(&kv.store(), 1, /*writable=*/true);
  KeyspaceCounters counters;
  Keyspace ks(&txn, test::kT0, &counters);
  std::string reply;
  net::ReplyWriter w(&reply);
  auto run = [&](std::vector<std::string_view> args) {
    execute_command(ks, w, KvOptions{}, args, false, 0);
  };
  run({"RPUSH", "a", "1"});
  run({"LPUSH", "b", "1", "2"});
  run({"RPUSH", "a", "2"});
  run({"SADD", "s", "x"});
  run({"LPOP", "a"});
  run({"LMOVE", "a", "c", "LEFT", "RIGHT"});
  run({"LINSERT", "b", "BEFORE", "1", "0"});
  EXPECT_EQ(ks.lists_pushed(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(reply, ":1\r\n:2\r\n:2\r\n:1\r\n$1\r\n1\r\n$1\r\n2\r\n:3\r\n");
}

}  // namespace
}  // namespace qkv::kv
