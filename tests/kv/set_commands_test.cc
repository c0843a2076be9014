// Set commands: replies, errors, WRONGTYPE, random picks (deterministic per
// entry), set algebra and large sets.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "kv/commands.h"
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
using Strings = std::vector<std::string>;

using test::sorted;

class KvSets : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_OK(kv.sm().TEST_check_invariants()); }
  KvHarness kv;
};

TEST_F(KvSets, AddRemMembers) {
  EXPECT_EQ(kv({"SADD", "s", "a", "b", "a"}), Int(2));
  EXPECT_EQ(kv({"SADD", "s", "b", "c"}), Int(1));
  EXPECT_EQ(kv({"SCARD", "s"}), Int(3));
  EXPECT_EQ(kv({"SCARD", "nokey"}), Int(0));
  EXPECT_EQ(sorted(kv({"SMEMBERS", "s"})), (Strings{"a", "b", "c"}));
  EXPECT_EQ(kv({"SMEMBERS", "nokey"}), Arr({}));
  EXPECT_EQ(kv({"SISMEMBER", "s", "a"}), Int(1));
  EXPECT_EQ(kv({"SISMEMBER", "s", "z"}), Int(0));
  EXPECT_EQ(kv({"SISMEMBER", "nokey", "a"}), Int(0));
  EXPECT_EQ(kv({"SMISMEMBER", "s", "a", "z", "c"}), Arr({Int(1), Int(0), Int(1)}));
  EXPECT_EQ(kv({"SMISMEMBER", "nokey", "a"}), Arr({Int(0)}));
  EXPECT_EQ(kv({"SREM", "s", "a", "z", "a"}), Int(1));
  EXPECT_EQ(kv({"SREM", "nokey", "a"}), Int(0));
  EXPECT_EQ(kv({"TYPE", "s"}), Simple("set"));
  EXPECT_EQ(kv({"SREM", "s", "b", "c"}), Int(2));
  EXPECT_EQ(kv({"EXISTS", "s"}), Int(0));
  EXPECT_EQ(kv({"DBSIZE"}), Int(0));
  kv.protocol = net::Protocol::kResp3;
  kv({"SADD", "s", "x"});
  EXPECT_EQ(kv({"SMEMBERS", "s"}), "~1\r\n$1\r\nx\r\n");
  EXPECT_EQ(kv({"SMEMBERS", "nokey"}), "~0\r\n");
}

TEST_F(KvSets, Move) {
  kv({"SADD", "a", "x", "y"});
  EXPECT_EQ(kv({"SMOVE", "nokey", "b", "x"}), Int(0));
  EXPECT_EQ(kv({"SMOVE", "a", "b", "z"}), Int(0));
  EXPECT_EQ(kv({"SMOVE", "a", "a", "x"}), Int(1));
  EXPECT_EQ(kv({"SMOVE", "a", "a", "z"}), Int(0));
  EXPECT_EQ(kv({"SMOVE", "a", "b", "x"}), Int(1));
  EXPECT_EQ(sorted(kv({"SMEMBERS", "b"})), (Strings{"x"}));
  EXPECT_EQ(kv({"SMOVE", "a", "b", "y"}), Int(1));
  EXPECT_EQ(kv({"EXISTS", "a"}), Int(0));  // emptied
  EXPECT_EQ(sorted(kv({"SMEMBERS", "b"})), (Strings{"x", "y"}));
  kv({"SET", "str", "v"});
  EXPECT_EQ(kv({"SMOVE", "b", "str", "x"}), kWrongType);
  EXPECT_EQ(kv({"SMOVE", "str", "b", "x"}), kWrongType);
  EXPECT_EQ(kv({"SMOVE", "nokey", "str", "x"}), Int(0));  // a missing source answers first
}

TEST_F(KvSets, PopAndRandMember) {
  EXPECT_EQ(kv({"SPOP", "nokey"}), Nil());
  EXPECT_EQ(kv({"SPOP", "nokey", "2"}), Arr({}));
  EXPECT_EQ(kv({"SRANDMEMBER", "nokey"}), Nil());
  EXPECT_EQ(kv({"SRANDMEMBER", "nokey", "-2"}), Arr({}));
  kv({"SADD", "s", "a", "b", "c", "d"});
  EXPECT_EQ(kv({"SPOP", "s", "-1"}), Err("ERR value is out of range, must be positive"));
  EXPECT_EQ(kv({"SPOP", "s", "x"}), Err("ERR value is out of range, must be positive"));
  EXPECT_EQ(kv({"SPOP", "s", "1", "2"}), Err(kErrSyntax));
  EXPECT_EQ(kv({"SRANDMEMBER", "s", "x"}), Err(kErrNotInteger));
  EXPECT_EQ(kv({"SRANDMEMBER", "s", "1", "2"}), Err(kErrSyntax));
  EXPECT_EQ(kv({"SPOP", "s", "0"}), Arr({}));
  EXPECT_EQ(kv({"SRANDMEMBER", "s", "0"}), Arr({}));
  EXPECT_EQ(sorted(kv({"SRANDMEMBER", "s", "10"})), (Strings{"a", "b", "c", "d"}));
  const Strings three = sorted(kv({"SRANDMEMBER", "s", "3"}));
  EXPECT_EQ(three.size(), 3u);
  EXPECT_EQ(std::set<std::string>(three.begin(), three.end()).size(), 3u);
  EXPECT_EQ(sorted(kv({"SRANDMEMBER", "s", "-9"})).size(), 9u);
  const Strings popped = sorted(kv({"SPOP", "s", "3"}));
  ASSERT_EQ(popped.size(), 3u);
  EXPECT_EQ(kv({"SCARD", "s"}), Int(1));
  for (const auto& m : popped) EXPECT_EQ(kv.run({"SISMEMBER", "s", m}), Int(0)) << m;
  const std::string last = kv({"SPOP", "s"});
  EXPECT_EQ(kv({"EXISTS", "s"}), Int(0));
  Strings all = popped;
  all.push_back(last.substr(4, 1));
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (Strings{"a", "b", "c", "d"}));
  kv.protocol = net::Protocol::kResp3;
  kv({"SADD", "s", "a"});
  EXPECT_EQ(kv({"SPOP", "s", "5"}), "~1\r\n$1\r\na\r\n");
  EXPECT_EQ(kv({"SPOP", "s", "5"}), "~0\r\n");
}

// Replicas applying the same entries pop the same members: the randomness
// comes from the entry.
TEST_F(KvSets, PopIsDeterministicAcrossReplicas) {
  KvHarness other;
  std::vector<std::string> add = {"SADD", "s"};
  for (int i = 0; i < 3000; i++) add.push_back("m" + std::to_string(i));  // walks and seeks
  std::vector<std::vector<std::string>> cmds = {add,
                                                {"SPOP", "s"},
                                                {"SPOP", "s", "5"},
                                                {"SPOP", "s", "700"},
                                                {"SPOP", "s", "2000"},
                                                {"SPOP", "s"}};
  for (const auto& c : cmds) {
    EXPECT_EQ(kv.run(c), other.run(c)) << c[0];
  }
  EXPECT_EQ(kv({"SCARD", "s"}), Int(3000 - 1 - 5 - 700 - 2000 - 1));
  EXPECT_EQ(sorted(kv({"SMEMBERS", "s"})), sorted(other({"SMEMBERS", "s"})));
  // Random picks from a large set are members and, with a positive count,
  // distinct.
  const Strings picks = sorted(kv({"SRANDMEMBER", "s", "200"}));
  EXPECT_EQ(std::set<std::string>(picks.begin(), picks.end()).size(), 200u);
  for (const auto& m : picks) EXPECT_EQ(kv.run({"SISMEMBER", "s", m}), Int(1));
  EXPECT_OK(other.sm().TEST_check_invariants());
}

TEST_F(KvSets, Algebra) {
  kv({"SADD", "a", "1", "2", "3", "4"});
  kv({"SADD", "b", "3", "4", "5"});
  kv({"SADD", "c", "4", "6"});
  EXPECT_EQ(sorted(kv({"SINTER", "a", "b"})), (Strings{"3", "4"}));
  EXPECT_EQ(sorted(kv({"SINTER", "a", "b", "c"})), (Strings{"4"}));
  EXPECT_EQ(kv({"SINTER", "a", "nokey"}), Arr({}));
  EXPECT_EQ(sorted(kv({"SUNION", "a", "nokey", "c"})), (Strings{"1", "2", "3", "4", "6"}));
  EXPECT_EQ(sorted(kv({"SDIFF", "a", "b", "nokey"})), (Strings{"1", "2"}));
  EXPECT_EQ(kv({"SDIFF", "nokey", "a"}), Arr({}));
  EXPECT_EQ(kv({"SINTERCARD", "2", "a", "b"}), Int(2));
  EXPECT_EQ(kv({"SINTERCARD", "2", "a", "b", "LIMIT", "1"}), Int(1));
  EXPECT_EQ(kv({"SINTERCARD", "2", "a", "b", "LIMIT", "0"}), Int(2));
  EXPECT_EQ(kv({"SINTERCARD", "0", "a"}), Err("ERR numkeys should be greater than 0"));
  EXPECT_EQ(kv({"SINTERCARD", "x", "a"}), Err("ERR numkeys should be greater than 0"));
  EXPECT_EQ(kv({"SINTERCARD", "3", "a", "b"}),
            Err("ERR Number of keys can't be greater than number of args"));
  EXPECT_EQ(kv({"SINTERCARD", "1", "a", "LIMIT", "-1"}), Err("ERR LIMIT can't be negative"));
  EXPECT_EQ(kv({"SINTERCARD", "1", "a", "bogus"}), Err(kErrSyntax));
  // STORE: replaces the destination whatever it held; an empty result deletes it.
  kv({"SET", "d", "string"});
  EXPECT_EQ(kv({"SUNIONSTORE", "d", "a", "b"}), Int(5));
  EXPECT_EQ(kv({"TYPE", "d"}), Simple("set"));
  EXPECT_EQ(kv({"SINTERSTORE", "a", "a", "b"}), Int(2));  // a source as destination
  EXPECT_EQ(sorted(kv({"SMEMBERS", "a"})), (Strings{"3", "4"}));
  EXPECT_EQ(kv({"SDIFFSTORE", "d", "a", "b"}), Int(0));
  EXPECT_EQ(kv({"EXISTS", "d"}), Int(0));
  EXPECT_EQ(kv({"SINTERSTORE", "c", "nokey", "a"}), Int(0));
  EXPECT_EQ(kv({"EXISTS", "c"}), Int(0));
  kv.protocol = net::Protocol::kResp3;
  EXPECT_EQ(kv({"SINTER", "a", "nokey"}), "~0\r\n");
}

TEST_F(KvSets, WrongType) {
  kv({"SET", "str", "v"});
  kv({"SADD", "s", "a"});
  for (const auto& cmd : std::vector<std::vector<std::string>>{
           {"SADD", "str", "a"},
           {"SREM", "str", "a"},
           {"SMEMBERS", "str"},
           {"SISMEMBER", "str", "a"},
           {"SMISMEMBER", "str", "a"},
           {"SCARD", "str"},
           {"SPOP", "str"},
           {"SPOP", "str", "1"},
           {"SRANDMEMBER", "str"},
           {"SRANDMEMBER", "str", "1"},
           {"SINTER", "s", "str"},
           {"SINTER", "nokey", "str"},  // every key is checked
           {"SUNION", "s", "str"},
           {"SDIFF", "nokey", "str"},
           {"SINTERSTORE", "d", "s", "str"},
           {"SUNIONSTORE", "d", "str"},
           {"SDIFFSTORE", "d", "s", "str"},
           {"SINTERCARD", "2", "s", "str"},
           {"SSCAN", "str", "0"},
           {"GET", "s"},
           {"HGET", "s", "a"},
           {"LLEN", "s"},
       }) {
    EXPECT_EQ(kv.run(cmd), kWrongType) << cmd[0];
  }
  EXPECT_EQ(kv({"EXISTS", "d"}), Int(0));
}

TEST_F(KvSets, LargeSetDeletedByRangeDeletion) {
  std::vector<std::string> add = {"SADD", "big"};
  for (int i = 0; i < 1000; i++) add.push_back(std::to_string(i));
  EXPECT_EQ(kv.run(add), Int(1000));
  kv({"SADD", "small", "x"});
  kv({"SADD", "bigger", "x"});  // a key that starts like "big"
  EXPECT_EQ(kv({"EXPIRE", "big", "100"}), Int(1));
  EXPECT_EQ(kv({"SCARD", "big"}), Int(1000));
  EXPECT_EQ(kv({"DEL", "big"}), Int(1));
  EXPECT_OK(kv.sm().TEST_check_invariants());
  EXPECT_EQ(kv({"SCARD", "big"}), Int(0));
  EXPECT_EQ(kv({"SADD", "big", "new"}), Int(1));
  EXPECT_EQ(kv({"SMEMBERS", "big"}), Arr({Bulk("new")}));
  EXPECT_EQ(kv({"SMEMBERS", "bigger"}), Arr({Bulk("x")}));
  // A whole SSCAN over a large set with a small COUNT.
  kv.run(add);
  std::string cursor = "0";
  std::set<std::string> seen;
  size_t total = 0;
  do {
    net::ReplyParser p;
    p.feed(kv.run({"SSCAN", "big", cursor, "COUNT", "37"}));
    ASSERT_EQ(p.next(), net::Parsed::kItem);
    cursor = p.value().elements[0].str;
    for (const auto& e : p.value().elements[1].elements) {
      seen.insert(e.str);
      total++;
    }
  } while (cursor != "0");
  EXPECT_EQ(seen.size(), 1001u);
  EXPECT_EQ(total, 1001u);  // each once
  // RENAME moves every member.
  EXPECT_EQ(kv({"RENAME", "big", "moved"}), Ok());
  EXPECT_EQ(kv({"SCARD", "moved"}), Int(1001));
  EXPECT_EQ(kv({"SISMEMBER", "moved", "999"}), Int(1));
  EXPECT_EQ(kv({"SCARD", "big"}), Int(0));
  // Overwritten by a string, then by a new set: no old member survives.
  EXPECT_EQ(kv({"SET", "moved", "s"}), Ok());
  EXPECT_OK(kv.sm().TEST_check_invariants());
  EXPECT_EQ(kv({"DEL", "moved"}), Int(1));
  EXPECT_EQ(kv({"SADD", "moved", "only"}), Int(1));
  EXPECT_EQ(kv({"SCARD", "moved"}), Int(1));
}

}  // namespace
}  // namespace qkv::kv
