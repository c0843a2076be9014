// Hash commands: replies, errors, WRONGTYPE, deletion of empty hashes,
// expiry and the generic commands on hashes.
#include <gtest/gtest.h>

#include <algorithm>

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

using test::sorted;

class KvHashes : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_OK(kv.sm().TEST_check_invariants()); }
  KvHarness kv;
};

TEST_F(KvHashes, SetGetDel) {
  EXPECT_EQ(kv({"HSET", "h", "a", "1", "b", "2"}), Int(2));
  EXPECT_EQ(kv({"HSET", "h", "a", "10", "c", "3"}), Int(1));  // a existed
  EXPECT_EQ(kv({"HGET", "h", "a"}), Bulk("10"));
  EXPECT_EQ(kv({"HGET", "h", "zz"}), Nil());
  EXPECT_EQ(kv({"HGET", "nokey", "a"}), Nil());
  EXPECT_EQ(kv({"HMGET", "h", "a", "zz", "c"}), Arr({Bulk("10"), Nil(), Bulk("3")}));
  EXPECT_EQ(kv({"HMGET", "nokey", "a", "b"}), Arr({Nil(), Nil()}));
  EXPECT_EQ(kv({"HLEN", "h"}), Int(3));
  EXPECT_EQ(kv({"HLEN", "nokey"}), Int(0));
  EXPECT_EQ(kv({"HEXISTS", "h", "b"}), Int(1));
  EXPECT_EQ(kv({"HEXISTS", "h", "zz"}), Int(0));
  EXPECT_EQ(kv({"HSTRLEN", "h", "a"}), Int(2));
  EXPECT_EQ(kv({"HSTRLEN", "h", "zz"}), Int(0));
  EXPECT_EQ(kv({"HDEL", "h", "a", "a", "zz"}), Int(1));
  EXPECT_EQ(kv({"HDEL", "nokey", "a"}), Int(0));
  EXPECT_EQ(kv({"TYPE", "h"}), Simple("hash"));
  EXPECT_EQ(kv({"DBSIZE"}), Int(1));
  // The last field takes the key with it.
  EXPECT_EQ(kv({"HDEL", "h", "b", "c"}), Int(2));
  EXPECT_EQ(kv({"EXISTS", "h"}), Int(0));
  EXPECT_EQ(kv({"TYPE", "h"}), Simple("none"));
  EXPECT_EQ(kv({"DBSIZE"}), Int(0));
}

TEST_F(KvHashes, ArityAndPairs) {
  EXPECT_EQ(kv({"HSET", "h", "a"}), Err("ERR wrong number of arguments for 'hset' command"));
  EXPECT_EQ(kv({"HSET", "h", "a", "1", "b"}),
            Err("ERR wrong number of arguments for 'hset' command"));
  EXPECT_EQ(kv({"HMSET", "h", "a", "1", "b"}),
            Err("ERR wrong number of arguments for 'hmset' command"));
  EXPECT_EQ(kv({"EXISTS", "h"}), Int(0));
  EXPECT_EQ(kv({"HMSET", "h", "a", "1", "b", "2"}), Ok());
  EXPECT_EQ(kv({"HSETNX", "h", "a", "x"}), Int(0));
  EXPECT_EQ(kv({"HSETNX", "h", "z", "x"}), Int(1));
  EXPECT_EQ(kv({"HSETNX", "new", "z", "x"}), Int(1));
  EXPECT_EQ(kv({"HGET", "h", "a"}), Bulk("1"));
  EXPECT_EQ(kv({"HGET", "h", "z"}), Bulk("x"));
}

TEST_F(KvHashes, GetAllKeysVals) {
  EXPECT_EQ(kv({"HGETALL", "nokey"}), Arr({}));
  EXPECT_EQ(kv({"HKEYS", "nokey"}), Arr({}));
  EXPECT_EQ(kv({"HVALS", "nokey"}), Arr({}));
  kv({"HSET", "h", "a", "1", "b", "2", "c", "3"});
  EXPECT_EQ(sorted(kv({"HGETALL", "h"})),
            (std::vector<std::string>{"1", "2", "3", "a", "b", "c"}));
  EXPECT_EQ(sorted(kv({"HKEYS", "h"})), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(sorted(kv({"HVALS", "h"})), (std::vector<std::string>{"1", "2", "3"}));
  // HGETALL pairs every field with its value, in the order HKEYS gives.
  net::ReplyParser p;
  p.feed(kv({"HGETALL", "h"}));
  ASSERT_EQ(p.next(), net::Parsed::kItem);
  const auto all = p.value().elements;
  ASSERT_EQ(all.size(), 6u);
  for (size_t i = 0; i < 6; i += 2) EXPECT_EQ(kv({"HGET", "h", all[i].str}), Bulk(all[i + 1].str));
  // RESP3: a map.
  kv.protocol = net::Protocol::kResp3;
  EXPECT_EQ(kv({"HGETALL", "h"}).substr(0, 4), "%3\r\n");
  EXPECT_EQ(kv({"HGETALL", "nokey"}), "%0\r\n");
  EXPECT_EQ(kv({"HKEYS", "h"}).substr(0, 4), "*3\r\n");
}

TEST_F(KvHashes, Incr) {
  EXPECT_EQ(kv({"HINCRBY", "h", "n", "5"}), Int(5));
  EXPECT_EQ(kv({"HINCRBY", "h", "n", "-7"}), Int(-2));
  EXPECT_EQ(kv({"HINCRBY", "h", "n", "x"}), Err(kErrNotInteger));
  kv({"HSET", "h", "s", "abc", "big", "9223372036854775807", "f", "1.5"});
  EXPECT_EQ(kv({"HINCRBY", "h", "s", "1"}), Err("ERR hash value is not an integer"));
  EXPECT_EQ(kv({"HINCRBY", "h", "big", "1"}), Err(kErrOverflow));
  EXPECT_EQ(kv({"HINCRBYFLOAT", "h", "f", "0.25"}), Bulk("1.75"));
  EXPECT_EQ(kv({"HINCRBYFLOAT", "h", "n", "1.5"}), Bulk("-0.5"));
  EXPECT_EQ(kv({"HINCRBYFLOAT", "h", "new", "3"}), Bulk("3"));
  EXPECT_EQ(kv({"HINCRBYFLOAT", "h", "s", "1"}), Err("ERR hash value is not a float"));
  EXPECT_EQ(kv({"HINCRBYFLOAT", "h", "f", "x"}), Err(kErrNotFloat));
  EXPECT_EQ(kv({"HINCRBYFLOAT", "h", "f", "inf"}), Err("ERR value is NaN or Infinity"));
  kv({"HSET", "h", "huge", "1.1e4932"});
  EXPECT_EQ(kv({"HINCRBYFLOAT", "h", "huge", "1.1e4932"}), Err(kErrNanOrInfinity));
  EXPECT_EQ(kv({"HGET", "h", "f"}), Bulk("1.75"));
}

TEST_F(KvHashes, RandField) {
  EXPECT_EQ(kv({"HRANDFIELD", "nokey"}), Nil());
  EXPECT_EQ(kv({"HRANDFIELD", "nokey", "3"}), Arr({}));
  kv({"HSET", "h", "a", "1", "b", "2", "c", "3"});
  EXPECT_EQ(kv({"HRANDFIELD", "h", "0"}), Arr({}));
  EXPECT_EQ(kv({"HRANDFIELD", "h", "x"}), Err(kErrNotInteger));
  EXPECT_EQ(kv({"HRANDFIELD", "h", "1", "bogus"}), Err(kErrSyntax));
  EXPECT_EQ(kv({"HRANDFIELD", "h", "-9223372036854775808"}),
            Err("ERR value is out of range, value must between -9223372036854775807 and "
                "9223372036854775807"));
  EXPECT_EQ(kv({"HRANDFIELD", "h", "-4611686018427387904", "WITHVALUES"}),
            Err("ERR value is out of range"));
  EXPECT_EQ(sorted(kv({"HRANDFIELD", "h", "10"})), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(sorted(kv({"HRANDFIELD", "h", "-10"})).size(), 10u);
  const auto two = sorted(kv({"HRANDFIELD", "h", "2"}));
  ASSERT_EQ(two.size(), 2u);
  EXPECT_NE(two[0], two[1]);
  const std::string one = kv({"HRANDFIELD", "h"});
  EXPECT_TRUE(one == Bulk("a") || one == Bulk("b") || one == Bulk("c")) << one;
  // WITHVALUES: flat in RESP2, pairs in RESP3.
  const auto wv = sorted(kv({"HRANDFIELD", "h", "-5", "WITHVALUES"}));
  EXPECT_EQ(wv.size(), 10u);
  kv.protocol = net::Protocol::kResp3;
  EXPECT_EQ(kv({"HRANDFIELD", "h", "1", "WITHVALUES"}).substr(0, 8), "*1\r\n*2\r\n");
  // Repeats allowed only up to random_reply_max.
  EXPECT_EQ(kv({"HRANDFIELD", "h", "-2000000"}),
            Err("ERR count is larger than random-reply-max (1048576)"));
}

TEST_F(KvHashes, Scan) {
  EXPECT_EQ(kv({"HSCAN", "nokey", "0"}), Arr({Bulk("0"), Arr({})}));
  EXPECT_EQ(kv({"HSCAN", "nokey", "x"}), Err(kErrInvalidCursor));
  std::vector<std::string> cmd = {"HSET", "h"};
  for (int i = 0; i < 50; i++) {
    cmd.push_back("f" + std::to_string(i));
    cmd.push_back("v" + std::to_string(i));
  }
  kv.run(cmd);
  EXPECT_EQ(kv({"HSCAN", "h", "0", "COUNT", "0"}), Err(kErrSyntax));
  EXPECT_EQ(kv({"HSCAN", "h", "0", "TYPE", "hash"}), Err(kErrSyntax));
  // A whole iteration with COUNT 7 returns every pair exactly once.
  std::string cursor = "0";
  std::vector<std::string> fields;
  int calls = 0;
  do {
    net::ReplyParser p;
    p.feed(kv.run({"HSCAN", "h", cursor, "COUNT", "7"}));
    ASSERT_EQ(p.next(), net::Parsed::kItem);
    const auto& v = p.value();
    cursor = v.elements[0].str;
    for (size_t i = 0; i < v.elements[1].elements.size(); i += 2) {
      const std::string f = v.elements[1].elements[i].str;
      EXPECT_EQ("v" + f.substr(1), v.elements[1].elements[i + 1].str);
      fields.push_back(f);
    }
    calls++;
  } while (cursor != "0");
  EXPECT_GE(calls, 7);
  std::sort(fields.begin(), fields.end());
  EXPECT_EQ(fields.size(), 50u);
  EXPECT_EQ(std::unique(fields.begin(), fields.end()), fields.end());
  EXPECT_EQ(sorted(kv({"HSCAN", "h", "0", "MATCH", "f1?", "COUNT", "1000"})).size(), 2u);
}

TEST_F(KvHashes, WrongType) {
  kv({"SET", "s", "v"});
  for (const auto& cmd : std::vector<std::vector<std::string>>{
           {"HSET", "s", "a", "1"},
           {"HMSET", "s", "a", "1"},
           {"HSETNX", "s", "a", "1"},
           {"HGET", "s", "a"},
           {"HMGET", "s", "a"},
           {"HDEL", "s", "a"},
           {"HGETALL", "s"},
           {"HKEYS", "s"},
           {"HVALS", "s"},
           {"HEXISTS", "s", "a"},
           {"HLEN", "s"},
           {"HSTRLEN", "s", "a"},
           {"HINCRBY", "s", "a", "1"},
           {"HINCRBYFLOAT", "s", "a", "1"},
           {"HRANDFIELD", "s"},
           {"HRANDFIELD", "s", "2"},
           {"HSCAN", "s", "0"},
       }) {
    EXPECT_EQ(kv.run(cmd), kWrongType) << cmd[0];
  }
  kv({"HSET", "h", "a", "1"});
  for (const auto& cmd : std::vector<std::vector<std::string>>{
           {"GET", "h"}, {"APPEND", "h", "x"}, {"INCR", "h"}, {"SADD", "h", "x"},
           {"LPUSH", "h", "x"}, {"SMEMBERS", "h"}, {"LRANGE", "h", "0", "-1"}}) {
    EXPECT_EQ(kv.run(cmd), kWrongType) << cmd[0];
  }
  // SET replaces a hash, fields and all.
  EXPECT_EQ(kv({"SET", "h", "now a string"}), Ok());
  EXPECT_EQ(kv({"HSET", "s2", "x", "y"}), Int(1));
  EXPECT_EQ(kv({"GET", "h"}), Bulk("now a string"));
}

TEST_F(KvHashes, ExpiryRenameAndDeletion) {
  kv({"HSET", "h", "a", "1", "b", "2"});
  EXPECT_EQ(kv({"EXPIRE", "h", "10"}), Int(1));
  EXPECT_EQ(kv({"HSET", "h", "c", "3"}), Int(1));
  EXPECT_EQ(kv({"TTL", "h"}), Int(10));  // writes keep the TTL
  EXPECT_EQ(kv({"HLEN", "h"}), Int(3));
  EXPECT_EQ(kv({"RENAME", "h", "g"}), Ok());
  EXPECT_EQ(kv({"HGET", "g", "c"}), Bulk("3"));
  EXPECT_EQ(kv({"TTL", "g"}), Int(10));
  EXPECT_EQ(kv({"HLEN", "h"}), Int(0));
  EXPECT_EQ(kv({"PERSIST", "g"}), Int(1));
  EXPECT_EQ(kv({"HLEN", "g"}), Int(3));
  EXPECT_EQ(kv({"PEXPIRE", "g", "500"}), Int(1));
  kv.advance(500);
  // Expired: absent to every command; a new hash under the name starts empty.
  EXPECT_EQ(kv({"HLEN", "g"}), Int(0));
  EXPECT_EQ(kv({"HSET", "g", "z", "26"}), Int(1));
  EXPECT_EQ(sorted(kv({"HGETALL", "g"})), (std::vector<std::string>{"26", "z"}));
  EXPECT_EQ(kv({"TTL", "g"}), Int(-1));
  EXPECT_OK(kv.sm().TEST_check_invariants());
  // The leader's expiry entry deletes an expired hash with its fields.
  kv({"HSET", "e", "a", "1", "b", "2"});
  kv({"PEXPIRE", "e", "100"});
  kv.advance(100);
  auto keys = kv.sm().expired_keys_to_delete(kv.now_ms(), 10);
  ASSERT_EQ(keys, std::vector<std::string>{"e"});
  kv.apply_payloads({encode_expired_deletion(kv.now_ms(), keys)});
  EXPECT_EQ(kv({"DBSIZE"}), Int(1));
  EXPECT_EQ(kv({"DEL", "g"}), Int(1));
  EXPECT_EQ(kv({"DBSIZE"}), Int(0));
}

TEST_F(KvHashes, ScanTypeAndKeys) {
  kv({"HSET", "h", "a", "1"});
  kv({"SADD", "s", "a"});
  kv({"RPUSH", "l", "a"});
  kv({"SET", "k", "v"});
  EXPECT_EQ(kv({"SCAN", "0", "TYPE", "hash"}), Arr({Bulk("0"), Arr({Bulk("h")})}));
  EXPECT_EQ(kv({"SCAN", "0", "TYPE", "set"}), Arr({Bulk("0"), Arr({Bulk("s")})}));
  EXPECT_EQ(kv({"SCAN", "0", "TYPE", "list"}), Arr({Bulk("0"), Arr({Bulk("l")})}));
  EXPECT_EQ(sorted(kv({"KEYS", "*"})), (std::vector<std::string>{"h", "k", "l", "s"}));
  EXPECT_EQ(kv({"DBSIZE"}), Int(4));
  EXPECT_EQ(kv({"FLUSHDB"}), Ok());
  EXPECT_EQ(kv({"DBSIZE"}), Int(0));
  EXPECT_EQ(kv({"HGET", "h", "a"}), Nil());
  EXPECT_EQ(kv({"HSET", "h", "b", "2"}), Int(1));
  EXPECT_EQ(kv({"HLEN", "h"}), Int(1));
}

}  // namespace
}  // namespace qkv::kv
