// String commands, each against a real StateStore through the state
// machine (writes applied as entries, reads through execute_read).
#include <gtest/gtest.h>

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

const std::string kWrongType(kErrWrongType);
const std::string kNotInt(kErrNotInteger);
const std::string kSyntax(kErrSyntax);

// A key of another type (a list), to check WRONGTYPE.
void put_list(KvHarness& kv, const std::string& key) {
  ASSERT_EQ(kv.run({"RPUSH", key, "x"}), test::Int(1));
}

class KvStrings : public ::testing::Test {
 protected:
  KvHarness kv;
};

TEST_F(KvStrings, GetSet) {
  EXPECT_EQ(kv({"GET", "k"}), Nil());
  EXPECT_EQ(kv({"SET", "k", "v"}), Ok());
  EXPECT_EQ(kv({"GET", "k"}), Bulk("v"));
  EXPECT_EQ(kv({"set", "k", ""}), Ok());
  EXPECT_EQ(kv({"get", "k"}), Bulk(""));
  std::string binary("a\0\r\nb", 5);
  EXPECT_EQ(kv.run({"SET", binary, binary}), Ok());
  EXPECT_EQ(kv.run({"GET", binary}), Bulk(binary));
  EXPECT_EQ(kv({"GET"}), Err("ERR wrong number of arguments for 'get' command"));
  EXPECT_EQ(kv({"SET", "k"}), Err("ERR wrong number of arguments for 'set' command"));
}

TEST_F(KvStrings, SetConditions) {
  EXPECT_EQ(kv({"SET", "k", "1", "XX"}), Nil());
  EXPECT_EQ(kv({"SET", "k", "1", "NX"}), Ok());
  EXPECT_EQ(kv({"SET", "k", "2", "NX"}), Nil());
  EXPECT_EQ(kv({"GET", "k"}), Bulk("1"));
  EXPECT_EQ(kv({"SET", "k", "2", "xx"}), Ok());
  EXPECT_EQ(kv({"GET", "k"}), Bulk("2"));
  EXPECT_EQ(kv({"SET", "k", "3", "NX", "XX"}), Err(kSyntax));
  EXPECT_EQ(kv({"SET", "k", "3", "NX", "NX"}), Nil());  // repeating is fine
  EXPECT_EQ(kv({"SET", "k", "3", "bogus"}), Err(kSyntax));
}

TEST_F(KvStrings, SetGet) {
  EXPECT_EQ(kv({"SET", "k", "1", "GET"}), Nil());
  EXPECT_EQ(kv({"SET", "k", "2", "GET"}), Bulk("1"));
  EXPECT_EQ(kv({"SET", "k", "3", "NX", "GET"}), Bulk("2"));  // not set, old value returned
  EXPECT_EQ(kv({"GET", "k"}), Bulk("2"));
  EXPECT_EQ(kv({"SET", "other", "3", "XX", "GET"}), Nil());
  EXPECT_EQ(kv({"EXISTS", "other"}), Int(0));
}

TEST_F(KvStrings, SetExpiryOptions) {
  const int64_t t = kv.now_ms();
  EXPECT_EQ(kv({"SET", "k", "v", "EX", "10"}), Ok());
  EXPECT_EQ(kv({"PTTL", "k"}), Int(10000));
  EXPECT_EQ(kv({"SET", "k", "v", "PX", "1500"}), Ok());
  EXPECT_EQ(kv({"PTTL", "k"}), Int(1500));
  EXPECT_EQ(kv({"TTL", "k"}), Int(2));  // rounded
  EXPECT_EQ(kv.run({"SET", "k", "v", "EXAT", std::to_string(t / 1000 + 100)}), Ok());
  EXPECT_EQ(kv({"PEXPIRETIME", "k"}), Int((t / 1000 + 100) * 1000));
  EXPECT_EQ(kv.run({"SET", "k", "v", "PXAT", std::to_string(t + 77)}), Ok());
  EXPECT_EQ(kv({"PTTL", "k"}), Int(77));
  EXPECT_EQ(kv({"SET", "k", "w", "KEEPTTL"}), Ok());
  EXPECT_EQ(kv({"PTTL", "k"}), Int(77));
  EXPECT_EQ(kv({"GET", "k"}), Bulk("w"));
  EXPECT_EQ(kv({"SET", "k", "v"}), Ok());  // a plain SET drops the TTL
  EXPECT_EQ(kv({"PTTL", "k"}), Int(-1));
  // The last of repeated options of one kind wins; two kinds conflict.
  EXPECT_EQ(kv({"SET", "k", "v", "EX", "10", "EX", "20"}), Ok());
  EXPECT_EQ(kv({"TTL", "k"}), Int(20));
  EXPECT_EQ(kv({"SET", "k", "v", "EX", "10", "PX", "20"}), Err(kSyntax));
  EXPECT_EQ(kv({"SET", "k", "v", "KEEPTTL", "EX", "20"}), Err(kSyntax));
  EXPECT_EQ(kv({"SET", "k", "v", "EX"}), Err(kSyntax));
  // Invalid times.
  const std::string bad = "ERR invalid expire time in 'set' command";
  EXPECT_EQ(kv({"SET", "k", "v", "EX", "0"}), Err(bad));
  EXPECT_EQ(kv({"SET", "k", "v", "PX", "-5"}), Err(bad));
  EXPECT_EQ(kv({"SET", "k", "v", "EX", "9223372036854775807"}), Err(bad));
  EXPECT_EQ(kv({"SET", "k", "v", "PX", "9223372036854775807"}), Err(bad));
  EXPECT_EQ(kv({"SET", "k", "v", "EX", "abc"}), Err(kNotInt));
  EXPECT_EQ(kv({"SET", "k", "v", "EX", "1.5"}), Err(kNotInt));
  EXPECT_EQ(kv({"GET", "k"}), Bulk("v"));
}

TEST_F(KvStrings, SetWithPastAbsoluteExpiryStoresAnExpiredKey) {
  EXPECT_EQ(kv({"SET", "k", "v", "PXAT", "1"}), Ok());
  EXPECT_EQ(kv({"GET", "k"}), Nil());
  EXPECT_EQ(kv({"EXISTS", "k"}), Int(0));
  EXPECT_EQ(kv({"DBSIZE"}), Int(1));  // as Redis: counted until deleted
  EXPECT_OK(kv.sm().TEST_check_invariants());
}

TEST_F(KvStrings, SetnxSetexPsetex) {
  EXPECT_EQ(kv({"SETNX", "k", "1"}), Int(1));
  EXPECT_EQ(kv({"SETNX", "k", "2"}), Int(0));
  EXPECT_EQ(kv({"GET", "k"}), Bulk("1"));
  EXPECT_EQ(kv({"SETEX", "k", "5", "v"}), Ok());
  EXPECT_EQ(kv({"PTTL", "k"}), Int(5000));
  EXPECT_EQ(kv({"PSETEX", "k", "5", "w"}), Ok());
  EXPECT_EQ(kv({"PTTL", "k"}), Int(5));
  EXPECT_EQ(kv({"SETEX", "k", "0", "v"}), Err("ERR invalid expire time in 'setex' command"));
  EXPECT_EQ(kv({"PSETEX", "k", "-1", "v"}), Err("ERR invalid expire time in 'psetex' command"));
  EXPECT_EQ(kv({"SETEX", "k", "x", "v"}), Err(kNotInt));
  EXPECT_EQ(kv({"SETEX", "k", "1"}), Err("ERR wrong number of arguments for 'setex' command"));
}

TEST_F(KvStrings, GetsetGetdel) {
  EXPECT_EQ(kv({"GETSET", "k", "1"}), Nil());
  EXPECT_EQ(kv({"SET", "k", "1", "EX", "100"}), Ok());
  EXPECT_EQ(kv({"GETSET", "k", "2"}), Bulk("1"));
  EXPECT_EQ(kv({"TTL", "k"}), Int(-1));  // GETSET drops the TTL
  EXPECT_EQ(kv({"GETDEL", "k"}), Bulk("2"));
  EXPECT_EQ(kv({"GETDEL", "k"}), Nil());
  EXPECT_EQ(kv({"EXISTS", "k"}), Int(0));
  EXPECT_EQ(kv({"DBSIZE"}), Int(0));
}

TEST_F(KvStrings, Getex) {
  EXPECT_EQ(kv({"GETEX", "k"}), Nil());
  EXPECT_EQ(kv({"SET", "k", "v"}), Ok());
  EXPECT_EQ(kv({"GETEX", "k"}), Bulk("v"));
  EXPECT_EQ(kv({"GETEX", "k", "EX", "100"}), Bulk("v"));
  EXPECT_EQ(kv({"TTL", "k"}), Int(100));
  EXPECT_EQ(kv({"GETEX", "k", "PX", "100"}), Bulk("v"));
  EXPECT_EQ(kv({"PTTL", "k"}), Int(100));
  EXPECT_EQ(kv({"GETEX", "k", "PERSIST"}), Bulk("v"));
  EXPECT_EQ(kv({"TTL", "k"}), Int(-1));
  EXPECT_EQ(kv.run({"GETEX", "k", "EXAT", std::to_string(kv.now_ms() / 1000 + 50)}), Bulk("v"));
  EXPECT_EQ(kv({"PEXPIRETIME", "k"}), Int((kv.now_ms() / 1000 + 50) * 1000));
  // An absolute time in the past deletes the key after returning it.
  EXPECT_EQ(kv({"GETEX", "k", "PXAT", "1"}), Bulk("v"));
  EXPECT_EQ(kv({"EXISTS", "k"}), Int(0));
  EXPECT_EQ(kv({"DBSIZE"}), Int(0));
  // The syntax is checked before the key is looked up, the time after.
  EXPECT_EQ(kv({"GETEX", "missing", "EX", "0"}), Nil());
  EXPECT_EQ(kv({"GETEX", "missing", "EX", "x"}), Nil());
  kv({"SET", "k", "v"});
  EXPECT_EQ(kv({"GETEX", "k", "EX", "0"}), Err("ERR invalid expire time in 'getex' command"));
  EXPECT_EQ(kv({"GETEX", "k", "EX", "x"}), Err(kNotInt));
  EXPECT_EQ(kv({"GETEX", "missing", "PERSIST", "EX", "1"}), Err(kSyntax));
  EXPECT_EQ(kv({"GETEX", "missing", "EX", "1", "PX", "1"}), Err(kSyntax));
  EXPECT_EQ(kv({"GETEX", "missing", "NX"}), Err(kSyntax));
  EXPECT_EQ(kv({"GETEX", "missing", "EX"}), Err(kSyntax));
}

TEST_F(KvStrings, MgetMsetMsetnx) {
  EXPECT_EQ(kv({"MSET", "a", "1", "b", "2"}), Ok());
  EXPECT_EQ(kv({"MGET", "a", "nope", "b"}), Arr({Bulk("1"), Nil(), Bulk("2")}));
  EXPECT_EQ(kv({"MSET", "a"}), Err("ERR wrong number of arguments for 'mset' command"));
  EXPECT_EQ(kv({"MSET", "a", "1", "b"}), Err("ERR wrong number of arguments for 'mset' command"));
  EXPECT_EQ(kv({"MSETNX", "a", "1", "b"}),
            Err("ERR wrong number of arguments for 'msetnx' command"));
  EXPECT_EQ(kv({"MSETNX", "c", "3", "a", "x"}), Int(0));
  EXPECT_EQ(kv({"EXISTS", "c"}), Int(0));  // all or nothing
  EXPECT_EQ(kv({"MSETNX", "c", "3", "d", "4"}), Int(1));
  EXPECT_EQ(kv({"MGET", "c", "d"}), Arr({Bulk("3"), Bulk("4")}));
  EXPECT_EQ(kv({"MSET", "a", "1", "a", "2"}), Ok());  // the last one wins
  EXPECT_EQ(kv({"GET", "a"}), Bulk("2"));
  EXPECT_EQ(kv({"DBSIZE"}), Int(4));
}

TEST_F(KvStrings, AppendStrlen) {
  EXPECT_EQ(kv({"STRLEN", "k"}), Int(0));
  EXPECT_EQ(kv({"APPEND", "k", "ab"}), Int(2));
  EXPECT_EQ(kv({"EXPIRE", "k", "100"}), Int(1));
  EXPECT_EQ(kv({"APPEND", "k", "cd"}), Int(4));
  EXPECT_EQ(kv({"GET", "k"}), Bulk("abcd"));
  EXPECT_EQ(kv({"TTL", "k"}), Int(100));  // APPEND keeps the TTL
  EXPECT_EQ(kv({"STRLEN", "k"}), Int(4));
}

TEST_F(KvStrings, StringSizeLimit) {
  KvOptions o;
  o.string_bytes_max = 10;
  KvHarness small(o);
  const std::string too_long(kErrStringTooLong);
  EXPECT_EQ(small({"APPEND", "k", "12345"}), Int(5));
  EXPECT_EQ(small({"APPEND", "k", "12345"}), Int(10));
  EXPECT_EQ(small({"APPEND", "k", "1"}), Err(too_long));
  EXPECT_EQ(small({"SETRANGE", "j", "9", "x"}), Int(10));
  EXPECT_EQ(small({"SETRANGE", "j", "10", "x"}), Err(too_long));
  EXPECT_EQ(small({"SETRANGE", "j", "9223372036854775807", "x"}), Err(too_long));
  EXPECT_EQ(small({"SETRANGE", "j", "100", ""}), Int(10));  // nothing to write: no check
  // The default is Redis's proto-max-bulk-len, 512 MiB.
  EXPECT_EQ(KvOptions{}.string_bytes_max, 512ull << 20);
  EXPECT_EQ(kv({"SETRANGE", "big", "536870912", "x"}), Err(too_long));
}

TEST_F(KvStrings, Getrange) {
  EXPECT_EQ(kv({"GETRANGE", "k", "0", "1"}), Bulk(""));
  EXPECT_EQ(kv({"SET", "k", "hello"}), Ok());
  EXPECT_EQ(kv({"GETRANGE", "k", "0", "1"}), Bulk("he"));
  EXPECT_EQ(kv({"GETRANGE", "k", "-3", "-1"}), Bulk("llo"));
  EXPECT_EQ(kv({"GETRANGE", "k", "0", "-1"}), Bulk("hello"));
  EXPECT_EQ(kv({"GETRANGE", "k", "0", "100"}), Bulk("hello"));
  EXPECT_EQ(kv({"GETRANGE", "k", "3", "1"}), Bulk(""));
  EXPECT_EQ(kv({"GETRANGE", "k", "0", "-100"}), Bulk("h"));  // Redis 7.0 clamps the end to 0
  EXPECT_EQ(kv({"GETRANGE", "k", "-100", "-200"}), Bulk(""));
  EXPECT_EQ(kv({"GETRANGE", "k", "10", "20"}), Bulk(""));
  EXPECT_EQ(kv({"GETRANGE", "k", "a", "1"}), Err(kNotInt));
  EXPECT_EQ(kv({"GETRANGE", "k", "-9223372036854775808", "9223372036854775807"}), Bulk("hello"));
}

TEST_F(KvStrings, Setrange) {
  EXPECT_EQ(kv({"SETRANGE", "k", "0", ""}), Int(0));
  EXPECT_EQ(kv({"EXISTS", "k"}), Int(0));  // no key created for an empty value
  EXPECT_EQ(kv({"SETRANGE", "k", "3", "ab"}), Int(5));
  EXPECT_EQ(kv({"GET", "k"}), Bulk(std::string("\0\0\0ab", 5)));
  EXPECT_EQ(kv({"SETRANGE", "k", "1", "XYZW"}), Int(5));
  EXPECT_EQ(kv({"GET", "k"}), Bulk(std::string("\0XYZW", 5)));
  EXPECT_EQ(kv({"SETRANGE", "k", "-1", "x"}), Err("ERR offset is out of range"));
  EXPECT_EQ(kv({"SETRANGE", "k", "x", "x"}), Err(kNotInt));
}

TEST_F(KvStrings, IncrDecr) {
  EXPECT_EQ(kv({"INCR", "n"}), Int(1));
  EXPECT_EQ(kv({"INCRBY", "n", "10"}), Int(11));
  EXPECT_EQ(kv({"DECR", "n"}), Int(10));
  EXPECT_EQ(kv({"DECRBY", "n", "-5"}), Int(15));
  EXPECT_EQ(kv({"GET", "n"}), Bulk("15"));
  EXPECT_EQ(kv({"EXPIRE", "n", "100"}), Int(1));
  EXPECT_EQ(kv({"INCR", "n"}), Int(16));
  EXPECT_EQ(kv({"TTL", "n"}), Int(100));  // INCR keeps the TTL
  for (const char* bad : {"abc", " 1", "1 ", "+1", "01", "1.0", "", "99999999999999999999"}) {
    EXPECT_EQ(kv.run({"SET", "s", bad}), Ok());
    EXPECT_EQ(kv({"INCR", "s"}), Err(kNotInt)) << "value '" << bad << "'";
  }
  EXPECT_EQ(kv({"INCRBY", "n", "x"}), Err(kNotInt));
  EXPECT_EQ(kv({"SET", "n", "9223372036854775807"}), Ok());
  EXPECT_EQ(kv({"INCR", "n"}), Err("ERR increment or decrement would overflow"));
  EXPECT_EQ(kv({"SET", "n", "-9223372036854775808"}), Ok());
  EXPECT_EQ(kv({"DECR", "n"}), Err("ERR increment or decrement would overflow"));
  EXPECT_EQ(kv({"DECRBY", "n", "-9223372036854775808"}), Err("ERR decrement would overflow"));
  EXPECT_EQ(kv({"INCRBY", "n", "9223372036854775807"}), Int(-1));
  EXPECT_EQ(kv({"SET", "n", "0"}), Ok());
  EXPECT_EQ(kv({"DECR", "n"}), Int(-1));
}

TEST_F(KvStrings, Incrbyfloat) {
  EXPECT_EQ(kv({"INCRBYFLOAT", "f", "1.5"}), Bulk("1.5"));
  EXPECT_EQ(kv({"INCRBYFLOAT", "f", "0.1"}), Bulk("1.6"));
  EXPECT_EQ(kv({"INCRBYFLOAT", "f", "-1.6"}), Bulk("0"));
  EXPECT_EQ(kv({"SET", "f", "10"}), Ok());
  EXPECT_EQ(kv({"INCRBYFLOAT", "f", "5.0e3"}), Bulk("5010"));
  EXPECT_EQ(kv({"INCRBYFLOAT", "f", "0x10"}), Bulk("5026"));  // strtold reads hex, as in Redis
  EXPECT_EQ(kv({"GET", "f"}), Bulk("5026"));
  const std::string not_float(kErrNotFloat);
  for (const char* bad : {"abc", " 1", "1 ", "nan", "", "1e5000"}) {
    EXPECT_EQ(kv.run({"INCRBYFLOAT", "f", bad}), Err(not_float)) << bad;
  }
  EXPECT_EQ(kv({"INCRBYFLOAT", "f", "inf"}), Err("ERR increment would produce NaN or Infinity"));
  EXPECT_EQ(kv({"SET", "s", "hello"}), Ok());
  EXPECT_EQ(kv({"INCRBYFLOAT", "s", "1"}), Err(not_float));
  EXPECT_EQ(kv({"SET", "f", "1", "EX", "100"}), Ok());
  EXPECT_EQ(kv({"INCRBYFLOAT", "f", "1"}), Bulk("2"));
  EXPECT_EQ(kv({"TTL", "f"}), Int(100));  // keeps the TTL
}

TEST_F(KvStrings, Cas) {
  EXPECT_EQ(kv({"CAS", "k", "", "v"}), Int(0));  // a missing key matches nothing
  EXPECT_EQ(kv({"EXISTS", "k"}), Int(0));
  EXPECT_EQ(kv({"SET", "k", "a", "EX", "100"}), Ok());
  EXPECT_EQ(kv({"CAS", "k", "b", "c"}), Int(0));
  EXPECT_EQ(kv({"GET", "k"}), Bulk("a"));
  EXPECT_EQ(kv({"CAS", "k", "a", "c"}), Int(1));
  EXPECT_EQ(kv({"GET", "k"}), Bulk("c"));
  EXPECT_EQ(kv({"TTL", "k"}), Int(100));  // CAS keeps the TTL
  EXPECT_EQ(kv({"SET", "e", "", "EX", "1"}), Ok());
  EXPECT_EQ(kv({"CAS", "e", "", "x"}), Int(1));  // an empty value matches ""
  kv.advance(1000);
  EXPECT_EQ(kv({"CAS", "e", "x", "y"}), Int(0));  // expired: absent
  EXPECT_EQ(kv({"CAS", "k", "c"}), Err("ERR wrong number of arguments for 'cas' command"));
}

TEST_F(KvStrings, WrongType) {
  put_list(kv, "l");
  const std::string wt = Err(kWrongType);
  EXPECT_EQ(kv({"TYPE", "l"}), test::Simple("list"));
  for (const auto& cmd : std::vector<std::vector<std::string>>{
           {"GET", "l"},
           {"SET", "l", "v", "GET"},
           {"GETSET", "l", "v"},
           {"GETDEL", "l"},
           {"GETEX", "l"},
           {"GETEX", "l", "EX", "5"},
           {"APPEND", "l", "x"},
           {"STRLEN", "l"},
           {"GETRANGE", "l", "0", "1"},
           {"SETRANGE", "l", "0", "x"},
           {"SETRANGE", "l", "0", ""},
           {"INCR", "l"},
           {"DECRBY", "l", "2"},
           {"INCRBYFLOAT", "l", "1"},
           {"CAS", "l", "opaque", "x"},
       }) {
    EXPECT_EQ(kv.run(cmd), wt) << cmd[0];
  }
  // Argument errors come first where Redis checks them first.
  EXPECT_EQ(kv({"INCRBY", "l", "x"}), Err(kNotInt));
  EXPECT_EQ(kv({"GETRANGE", "l", "x", "1"}), Err(kNotInt));
  EXPECT_EQ(kv({"SETRANGE", "l", "-1", "x"}), Err("ERR offset is out of range"));
  // MGET answers nil for other types; plain SET, SETNX and MSETNX treat it as a key.
  EXPECT_EQ(kv({"MGET", "l"}), Arr({Nil()}));
  EXPECT_EQ(kv({"SETNX", "l", "x"}), Int(0));
  EXPECT_EQ(kv({"MSETNX", "l", "x"}), Int(0));
  EXPECT_EQ(kv({"SET", "l", "now a string"}), Ok());
  EXPECT_EQ(kv({"GET", "l"}), Bulk("now a string"));
  EXPECT_OK(kv.sm().TEST_check_invariants());
}

TEST_F(KvStrings, Resp3Nulls) {
  kv.protocol = net::Protocol::kResp3;
  EXPECT_EQ(kv({"GET", "k"}), "_\r\n");
  EXPECT_EQ(kv({"SET", "k", "v", "XX"}), "_\r\n");
  EXPECT_EQ(kv({"MGET", "k", "x"}), "*2\r\n_\r\n_\r\n");
  EXPECT_EQ(kv({"SET", "k", "v"}), Ok());
  EXPECT_EQ(kv({"INCRBYFLOAT", "f", "2.5"}), Bulk("2.5"));
}

TEST_F(KvStrings, InvariantsHoldAfterAMix) {
  kv({"SET", "a", "1", "EX", "10"});
  kv({"SET", "a", "2", "PX", "20"});
  kv({"MSET", "a", "3", "b", "4"});
  kv({"GETEX", "b", "EX", "5"});
  kv({"APPEND", "c", "x"});
  kv({"SETRANGE", "c", "5", "y"});
  kv({"GETDEL", "c"});
  kv({"SET", "d", "1", "PXAT", "5"});
  EXPECT_OK(kv.sm().TEST_check_invariants());
  EXPECT_EQ(kv.sm().key_count(), 3u);
  EXPECT_EQ(kv.sm().expires_count(), 2u);  // b and the expired d
}

}  // namespace
}  // namespace qkv::kv
