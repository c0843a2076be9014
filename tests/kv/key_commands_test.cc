// Generic key commands, expiry, iteration and the keyspace commands.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "kv/commands.h"
#include "kv/layout.h"
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

class KvKeys : public ::testing::Test {
 protected:
  // The keys of a KEYS or SCAN page reply, sorted.
  static std::vector<std::string> parse_keys(std::string_view resp, std::string* cursor = nullptr) {
    net::ReplyParser p;
    p.feed(resp);
    EXPECT_EQ(p.next(), net::Parsed::kItem);
    const net::Value& v = p.value();
    const net::Value* list = &v;
    if (cursor != nullptr) {
      EXPECT_EQ(v.elements.size(), 2u);
      *cursor = v.elements[0].str;
      list = &v.elements[1];
    }
    std::vector<std::string> out;
    for (const auto& e : list->elements) out.push_back(e.str);
    std::sort(out.begin(), out.end());
    return out;
  }

  // A whole SCAN iteration; every key once.
  std::vector<std::string> scan_all(std::vector<std::string> options, int* calls = nullptr) {
    std::string cursor = "0";
    std::vector<std::string> all;
    int n = 0;
    do {
      std::vector<std::string> cmd = {"SCAN", cursor};
      cmd.insert(cmd.end(), options.begin(), options.end());
      auto page = parse_keys(kv.run(cmd), &cursor);
      all.insert(all.end(), page.begin(), page.end());
      n++;
    } while (cursor != "0");
    if (calls != nullptr) *calls = n;
    std::sort(all.begin(), all.end());
    return all;
  }

  KvHarness kv;
};

TEST_F(KvKeys, DelUnlinkExists) {
  kv({"MSET", "a", "1", "b", "2", "c", "3"});
  EXPECT_EQ(kv({"EXISTS", "a", "a", "x"}), Int(2));
  EXPECT_EQ(kv({"DEL", "a", "x", "a"}), Int(1));
  EXPECT_EQ(kv({"UNLINK", "b", "c"}), Int(2));
  EXPECT_EQ(kv({"EXISTS", "a", "b", "c"}), Int(0));
  EXPECT_EQ(kv({"DBSIZE"}), Int(0));
  EXPECT_EQ(kv({"DEL"}), Err("ERR wrong number of arguments for 'del' command"));
}

TEST_F(KvKeys, Type) {
  EXPECT_EQ(kv({"TYPE", "k"}), Simple("none"));
  kv({"SET", "k", "v"});
  EXPECT_EQ(kv({"TYPE", "k"}), Simple("string"));
}

TEST_F(KvKeys, Rename) {
  EXPECT_EQ(kv({"RENAME", "a", "b"}), Err("ERR no such key"));
  EXPECT_EQ(kv({"RENAMENX", "a", "b"}), Err("ERR no such key"));
  EXPECT_EQ(kv({"RENAME", "a", "a"}), Err("ERR no such key"));
  kv({"SET", "a", "1", "EX", "100"});
  EXPECT_EQ(kv({"RENAME", "a", "a"}), Ok());
  EXPECT_EQ(kv({"RENAMENX", "a", "a"}), Int(0));
  EXPECT_EQ(kv({"RENAME", "a", "b"}), Ok());
  EXPECT_EQ(kv({"GET", "b"}), Bulk("1"));
  EXPECT_EQ(kv({"TTL", "b"}), Int(100));  // the TTL moves with the value
  EXPECT_EQ(kv({"EXISTS", "a"}), Int(0));
  kv({"SET", "c", "3"});
  EXPECT_EQ(kv({"RENAMENX", "b", "c"}), Int(0));
  EXPECT_EQ(kv({"RENAME", "b", "c"}), Ok());  // overwrites
  EXPECT_EQ(kv({"GET", "c"}), Bulk("1"));
  EXPECT_EQ(kv({"TTL", "c"}), Int(100));
  EXPECT_EQ(kv({"RENAMENX", "c", "d"}), Int(1));
  EXPECT_EQ(kv({"DBSIZE"}), Int(1));
  EXPECT_OK(kv.sm().TEST_check_invariants());
}

TEST_F(KvKeys, ExpireFamily) {
  EXPECT_EQ(kv({"EXPIRE", "k", "10"}), Int(0));
  kv({"SET", "k", "v"});
  EXPECT_EQ(kv({"TTL", "k"}), Int(-1));
  EXPECT_EQ(kv({"PTTL", "k"}), Int(-1));
  EXPECT_EQ(kv({"TTL", "nope"}), Int(-2));
  EXPECT_EQ(kv({"EXPIRETIME", "nope"}), Int(-2));
  EXPECT_EQ(kv({"EXPIRETIME", "k"}), Int(-1));
  EXPECT_EQ(kv({"EXPIRE", "k", "10"}), Int(1));
  EXPECT_EQ(kv({"PTTL", "k"}), Int(10000));
  EXPECT_EQ(kv({"PEXPIRE", "k", "1234"}), Int(1));
  EXPECT_EQ(kv({"PTTL", "k"}), Int(1234));
  EXPECT_EQ(kv({"TTL", "k"}), Int(1));
  const int64_t at_s = kv.now_ms() / 1000 + 3600;
  EXPECT_EQ(kv.run({"EXPIREAT", "k", std::to_string(at_s)}), Int(1));
  EXPECT_EQ(kv({"EXPIRETIME", "k"}), Int(at_s));
  EXPECT_EQ(kv.run({"PEXPIREAT", "k", std::to_string(at_s * 1000 + 499)}), Int(1));
  EXPECT_EQ(kv({"EXPIRETIME", "k"}), Int(at_s));  // rounded to the nearest second
  EXPECT_EQ(kv.run({"PEXPIREAT", "k", std::to_string(at_s * 1000 + 500)}), Int(1));
  EXPECT_EQ(kv({"EXPIRETIME", "k"}), Int(at_s + 1));
  EXPECT_EQ(kv({"PEXPIRETIME", "k"}), Int(at_s * 1000 + 500));
  EXPECT_EQ(kv({"PERSIST", "k"}), Int(1));
  EXPECT_EQ(kv({"PERSIST", "k"}), Int(0));
  EXPECT_EQ(kv({"PERSIST", "nope"}), Int(0));
  EXPECT_EQ(kv({"TTL", "k"}), Int(-1));
  EXPECT_OK(kv.sm().TEST_check_invariants());
}

TEST_F(KvKeys, ExpireInThePastDeletes) {
  kv({"SET", "k", "v"});
  EXPECT_EQ(kv({"EXPIRE", "k", "-1"}), Int(1));
  EXPECT_EQ(kv({"EXISTS", "k"}), Int(0));
  EXPECT_EQ(kv({"DBSIZE"}), Int(0));  // deleted at once, not just hidden
  kv({"SET", "k", "v"});
  EXPECT_EQ(kv({"PEXPIREAT", "k", "0"}), Int(1));
  EXPECT_EQ(kv({"DBSIZE"}), Int(0));
  kv({"SET", "k", "v"});
  EXPECT_EQ(kv({"EXPIREAT", "k", "-9223372036854775"}), Int(1));
  EXPECT_EQ(kv({"DBSIZE"}), Int(0));
}

TEST_F(KvKeys, ExpireOptions) {
  kv({"SET", "k", "v"});
  EXPECT_EQ(kv({"EXPIRE", "k", "100", "XX"}), Int(0));  // no TTL yet
  EXPECT_EQ(kv({"EXPIRE", "k", "100", "GT"}), Int(0));  // no TTL = infinite
  EXPECT_EQ(kv({"EXPIRE", "k", "100", "LT"}), Int(1));
  EXPECT_EQ(kv({"EXPIRE", "k", "50", "NX"}), Int(0));
  EXPECT_EQ(kv({"EXPIRE", "k", "50", "GT"}), Int(0));
  EXPECT_EQ(kv({"EXPIRE", "k", "200", "gt"}), Int(1));
  EXPECT_EQ(kv({"EXPIRE", "k", "300", "LT"}), Int(0));
  EXPECT_EQ(kv({"EXPIRE", "k", "10", "xx", "lt"}), Int(1));
  EXPECT_EQ(kv({"TTL", "k"}), Int(10));
  EXPECT_EQ(kv({"EXPIRE", "k", "10", "NX", "XX"}),
            Err("ERR NX and XX, GT or LT options at the same time are not compatible"));
  EXPECT_EQ(kv({"EXPIRE", "k", "10", "GT", "LT"}),
            Err("ERR GT and LT options at the same time are not compatible"));
  EXPECT_EQ(kv({"EXPIRE", "k", "10", "foo"}), Err("ERR Unsupported option foo"));
  // Options before the time: an unknown option wins over a bad time.
  EXPECT_EQ(kv({"EXPIRE", "k", "x", "foo"}), Err("ERR Unsupported option foo"));
  EXPECT_EQ(kv({"EXPIRE", "k", "x"}), Err(std::string(kErrNotInteger)));
  EXPECT_EQ(kv({"EXPIRE", "k", "9223372036854775807"}),
            Err("ERR invalid expire time in 'expire' command"));
  EXPECT_EQ(kv({"PEXPIRE", "k", "9223372036854775807"}),
            Err("ERR invalid expire time in 'pexpire' command"));
  EXPECT_EQ(kv({"EXPIREAT", "k", "9223372036854775807"}),
            Err("ERR invalid expire time in 'expireat' command"));
  EXPECT_EQ(kv({"PEXPIREAT", "k", "9223372036854775807"}), Int(1));  // absolute ms: fits
  EXPECT_EQ(kv({"PEXPIRETIME", "k"}), Int(9223372036854775807));
  EXPECT_EQ(kv({"EXPIRE", "missing", "10", "foo"}), Err("ERR Unsupported option foo"));
}

TEST_F(KvKeys, ExpiredKeysAreAbsentForEveryCommand) {
  kv({"SET", "k", "v", "PX", "100"});
  kv({"SET", "n", "5", "PX", "100"});
  kv.advance(99);
  EXPECT_EQ(kv({"GET", "k"}), Bulk("v"));
  kv.advance(1);  // expiry <= now: gone
  EXPECT_EQ(kv({"GET", "k"}), Nil());
  EXPECT_EQ(kv({"EXISTS", "k"}), Int(0));
  EXPECT_EQ(kv({"TYPE", "k"}), Simple("none"));
  EXPECT_EQ(kv({"TTL", "k"}), Int(-2));
  EXPECT_EQ(kv({"STRLEN", "k"}), Int(0));
  EXPECT_EQ(kv({"KEYS", "*"}), Arr({}));
  EXPECT_EQ(kv({"RANDOMKEY"}), Nil());
  EXPECT_EQ(kv({"RENAME", "k", "j"}), Err("ERR no such key"));
  EXPECT_EQ(kv({"EXPIRE", "k", "100"}), Int(0));
  EXPECT_EQ(kv({"PERSIST", "k"}), Int(0));
  EXPECT_EQ(kv({"DEL", "k"}), Int(0));   // deletes the record, answers 0
  EXPECT_EQ(kv({"INCR", "n"}), Int(1));  // starts from nothing, without the old TTL
  EXPECT_EQ(kv({"TTL", "n"}), Int(-1));
  EXPECT_EQ(kv({"SETNX", "k", "again"}), Int(1));
  EXPECT_EQ(kv({"DBSIZE"}), Int(2));
  EXPECT_OK(kv.sm().TEST_check_invariants());
}

TEST_F(KvKeys, Keys) {
  kv({"MSET", "user:1", "a", "user:2", "b", "item:1", "c", "user:10", "d"});
  EXPECT_EQ(parse_keys(kv({"KEYS", "*"})),
            (std::vector<std::string>{"item:1", "user:1", "user:10", "user:2"}));
  EXPECT_EQ(parse_keys(kv({"KEYS", "user:?"})), (std::vector<std::string>{"user:1", "user:2"}));
  EXPECT_EQ(parse_keys(kv({"KEYS", "user:1"})), (std::vector<std::string>{"user:1"}));
  EXPECT_EQ(kv({"KEYS", "nope"}), Arr({}));
  EXPECT_EQ(parse_keys(kv({"KEYS", "*:1*"})),
            (std::vector<std::string>{"item:1", "user:1", "user:10"}));
  KvOptions o;
  o.keys_reply_max = 2;
  KvHarness small(o);
  small({"MSET", "a", "1", "b", "2", "c", "3"});
  EXPECT_EQ(small({"KEYS", "*"}),
            Err("ERR KEYS would return more than 2 keys (keys-reply-max); use SCAN"));
  EXPECT_EQ(parse_keys(small({"KEYS", "[ab]"})), (std::vector<std::string>{"a", "b"}));
}

TEST_F(KvKeys, ScanVisitsEveryKeyExactlyOnce) {
  std::vector<std::string> want;
  std::vector<std::string> mset = {"MSET"};
  for (int i = 0; i < 500; i++) {
    want.push_back("key:" + std::to_string(i));
    mset.push_back(want.back());
    mset.push_back("v");
  }
  kv.run(mset);
  std::sort(want.begin(), want.end());
  int calls = 0;
  EXPECT_EQ(scan_all({}, &calls), want);
  EXPECT_GE(calls, 50);  // COUNT 10 by default
  EXPECT_EQ(scan_all({"COUNT", "1"}), want);
  EXPECT_EQ(scan_all({"COUNT", "1000"}, &calls), want);
  EXPECT_EQ(calls, 1);
  auto ones = scan_all({"MATCH", "key:1*", "COUNT", "7"});
  EXPECT_EQ(ones.size(), 111u);  // 1, 10-19, 100-199
  EXPECT_EQ(scan_all({"TYPE", "string", "COUNT", "50"}), want);
  EXPECT_EQ(scan_all({"TYPE", "STRING"}).size(), 500u);
  EXPECT_TRUE(scan_all({"TYPE", "list"}).empty());
  EXPECT_TRUE(scan_all({"TYPE", "nosuchtype"}).empty());  // Redis 7.0: no error
}

TEST_F(KvKeys, ScanCursorIsStableAcrossWrites) {
  for (int i = 0; i < 100; i++) kv.run({"SET", "k" + std::to_string(i), "v"});
  // Keys present for the whole iteration are returned, however the data
  // changes between calls.
  std::string cursor = "0";
  std::set<std::string> seen;
  int round = 0;
  do {
    auto page = parse_keys(kv.run({"SCAN", cursor, "COUNT", "5"}), &cursor);
    for (const auto& k : page) EXPECT_TRUE(seen.insert(k).second) << "twice: " << k;
    kv.run({"SET", "new" + std::to_string(round), "v"});
    kv.run({"DEL", "new" + std::to_string(round - 3)});
    round++;
  } while (cursor != "0");
  for (int i = 0; i < 100; i++) EXPECT_TRUE(seen.count("k" + std::to_string(i))) << i;
}

TEST_F(KvKeys, ScanErrorsAndExpiredKeys) {
  EXPECT_EQ(kv({"SCAN", "x"}), Err("ERR invalid cursor"));
  EXPECT_EQ(kv({"SCAN", " 0"}), Err("ERR invalid cursor"));
  EXPECT_EQ(kv({"SCAN", "18446744073709551616"}), Err("ERR invalid cursor"));
  EXPECT_EQ(kv({"SCAN", "0", "COUNT", "0"}), Err(std::string(kErrSyntax)));
  EXPECT_EQ(kv({"SCAN", "0", "COUNT", "x"}), Err(std::string(kErrNotInteger)));
  EXPECT_EQ(kv({"SCAN", "0", "MATCH"}), Err(std::string(kErrSyntax)));
  EXPECT_EQ(kv({"SCAN", "0", "FOO", "1"}), Err(std::string(kErrSyntax)));
  EXPECT_EQ(kv({"SCAN", "0"}), Arr({Bulk("0"), Arr({})}));
  EXPECT_EQ(kv({"SCAN", ""}), Arr({Bulk("0"), Arr({})}));  // strtoul reads "" as 0
  kv({"SET", "live", "1"});
  kv({"SET", "dead", "1", "PX", "1"});
  kv.advance(5);
  EXPECT_EQ(scan_all({}), (std::vector<std::string>{"live"}));
}

TEST_F(KvKeys, ScanExaminesAtMostCountRecords) {
  // Many expired keys: each call still does bounded work.
  std::vector<std::string> mset = {"MSET"};
  for (int i = 0; i < 300; i++) kv.run({"SET", "e" + std::to_string(i), "v", "PX", "1"});
  kv({"SET", "live", "1"});
  kv.advance(10);
  int calls = 0;
  EXPECT_EQ(scan_all({"COUNT", "10"}, &calls), (std::vector<std::string>{"live"}));
  EXPECT_GE(calls, 25);
  KvOptions o;
  o.scan_count_max = 3;
  KvHarness capped(o);
  for (int i = 0; i < 10; i++) capped.run({"SET", "k" + std::to_string(i), "v"});
  std::string cursor;
  auto page = parse_keys(capped({"SCAN", "0", "COUNT", "1000"}), &cursor);
  EXPECT_LE(page.size(), 4u);  // 3, or one more sharing a position
  EXPECT_NE(cursor, "0");
}

TEST_F(KvKeys, Randomkey) {
  EXPECT_EQ(kv({"RANDOMKEY"}), Nil());
  kv({"MSET", "a", "1", "b", "2", "c", "3"});
  std::set<std::string> seen;
  for (int i = 0; i < 200; i++) {
    std::string r = kv({"RANDOMKEY"});
    ASSERT_EQ(r.substr(0, 4), "$1\r\n") << r;
    seen.insert(r.substr(4, 1));
  }
  EXPECT_EQ(seen, (std::set<std::string>{"a", "b", "c"}));
  kv({"DEL", "a", "b", "c"});
  kv({"SET", "x", "1", "PX", "1"});
  kv.advance(2);
  EXPECT_EQ(kv({"RANDOMKEY"}), Nil());  // only an expired key left
}

TEST_F(KvKeys, RandomkeyIsDeterministicWhenApplied) {
  KvHarness other;
  for (KvHarness* h : {&kv, &other}) {
    for (int i = 0; i < 50; i++) h->run({"SET", "k" + std::to_string(i), "v"});
  }
  for (int i = 0; i < 20; i++) {
    EXPECT_EQ(kv.apply_one({"RANDOMKEY"}), other.apply_one({"RANDOMKEY"}));
  }
}

TEST_F(KvKeys, DbsizeFlush) {
  EXPECT_EQ(kv({"DBSIZE"}), Int(0));
  kv({"MSET", "a", "1", "b", "2"});
  kv({"SET", "c", "3", "EX", "100"});
  EXPECT_EQ(kv({"DBSIZE"}), Int(3));
  EXPECT_EQ(kv({"FLUSHDB", "x"}), Err(std::string(kErrSyntax)));
  EXPECT_EQ(kv({"FLUSHDB", "ASYNC", "x"}), Err(std::string(kErrSyntax)));
  EXPECT_EQ(kv({"FLUSHDB", "async"}), Ok());
  EXPECT_EQ(kv({"DBSIZE"}), Int(0));
  EXPECT_EQ(kv({"KEYS", "*"}), Arr({}));
  kv({"SET", "d", "4", "EX", "100"});
  EXPECT_EQ(kv({"FLUSHALL", "SYNC"}), Ok());
  EXPECT_EQ(kv({"GET", "d"}), Nil());
  EXPECT_EQ(kv.sm().expires_count(), 0u);
  EXPECT_TRUE(kv.sm().expired_keys_to_delete(kv.now_ms() + 1'000'000, 10).empty());
  EXPECT_OK(kv.sm().TEST_check_invariants());
}

TEST_F(KvKeys, FlushThenWriteInOneApply) {
  kv({"MSET", "a", "1", "b", "2"});
  std::vector<std::string_view> flush = {"FLUSHALL"}, set = {"SET", "c", "3"}, get = {"GET", "a"},
                                keys = {"KEYS", "*"};
  std::vector<RequestView> reqs = {{net::Protocol::kResp2, flush},
                                   {net::Protocol::kResp2, set},
                                   {net::Protocol::kResp2, get},
                                   {net::Protocol::kResp2, keys}};
  auto res = kv.apply_payloads({encode_batch(kv.now_ms(), reqs)});
  EXPECT_EQ(res[0], Ok() + Ok() + Nil() + Arr({Bulk("c")}));
  EXPECT_EQ(kv({"KEYS", "*"}), Arr({Bulk("c")}));
  EXPECT_EQ(kv({"DBSIZE"}), Int(1));
  EXPECT_OK(kv.sm().TEST_check_invariants());
  kv.reopen();
  EXPECT_EQ(kv({"DBSIZE"}), Int(1));
  EXPECT_EQ(kv({"GET", "c"}), Bulk("3"));
}

TEST_F(KvKeys, UnknownAndLocalCommands) {
  EXPECT_EQ(kv.apply_one({"NOSUCH", "a"}),
            Err("ERR unknown command 'NOSUCH', with args beginning with: 'a' "));
  EXPECT_EQ(kv.apply_one({"PING"}), Err("ERR 'ping' is served by the node, not replicated"));
  // Internal commands need the internal flag.
  EXPECT_EQ(kv.apply_one({"DELEXPIRED", "a"}),
            Err("ERR unknown command 'DELEXPIRED', with args beginning with: 'a' "));
  EXPECT_EQ(kv.apply_one({"DELEXPIRED", "a"}, /*internal=*/true), Int(0));
  std::string reply;
  std::vector<std::string_view> set = {"SET", "a", "b"};
  Status s = kv.sm().execute_read(set, net::Protocol::kResp2, kv.now_ms(), &reply);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_TRUE(reply.empty());
  std::vector<std::string_view> ping = {"PING"};
  EXPECT_EQ(kv.sm().execute_read(ping, net::Protocol::kResp2, kv.now_ms(), &reply).code(),
            Code::kInvalidArgument);
  std::vector<std::string_view> bad = {"GET"};
  EXPECT_OK(kv.sm().execute_read(bad, net::Protocol::kResp2, kv.now_ms(), &reply));
  EXPECT_EQ(reply, Err("ERR wrong number of arguments for 'get' command"));
}

}  // namespace
}  // namespace qkv::kv
