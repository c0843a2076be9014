// Stream commands: ids, ranges, trimming, consumer groups and their PEL
// (XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM), XINFO, determinism of
// `*` ids and idle times (the entry's stamp only), and the key-level
// operations (DEL, RENAME, EXPIRE, FLUSHALL, TYPE, SCAN TYPE).
#include <gtest/gtest.h>

#include "kv/commands.h"
#include "kv/handlers.h"
#include "kv_test_util.h"

namespace qkv::kv {
namespace {

using test::Arr;
using test::Bulk;
using test::Err;
using test::Int;
using test::kT0;
using test::KvHarness;
using test::Nil;
using test::Ok;
using test::Simple;

const std::string kNullArr = "*-1\r\n";
const std::string kInvalidId = Err("ERR Invalid stream ID specified as stream command argument");

// [id, [f, v, ...]]
std::string Entry(std::string_view id, std::initializer_list<std::string_view> fields) {
  std::string f = "*" + std::to_string(fields.size()) + "\r\n";
  for (auto s : fields) f += Bulk(s);
  return Arr({Bulk(id), f});
}

class KvStream : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_OK(kv.sm().TEST_check_invariants()); }
  KvHarness kv;
};

TEST_F(KvStream, AddExplicitAndAutoIds) {
  EXPECT_EQ(kv({"XADD", "s", "1-1", "a", "1"}), Bulk("1-1"));
  EXPECT_EQ(
      kv({"XADD", "s", "1-1", "a", "1"}),
      Err("ERR The ID specified in XADD is equal or smaller than the target stream top item"));
  EXPECT_EQ(kv({"XADD", "s", "1-*", "a", "1"}), Bulk("1-2"));
  EXPECT_EQ(kv({"XADD", "s", "5", "a", "1"}), Bulk("5-0"));
  EXPECT_EQ(kv({"XADD", "s", "0-0", "a", "1"}),
            Err("ERR The ID specified in XADD must be greater than 0-0"));
  EXPECT_EQ(kv({"XADD", "s", "x-1", "a", "1"}), kInvalidId);
  EXPECT_EQ(kv({"XADD", "s", "5-0", "a"}), Err("ERR wrong number of arguments for 'xadd' command"));
  // '*' is the stamp's ms, or the last id's successor when time is behind.
  EXPECT_EQ(kv({"XADD", "s", "*", "a", "1"}), Bulk(std::to_string(kT0) + "-0"));
  EXPECT_EQ(kv({"XADD", "s", "*", "a", "1"}), Bulk(std::to_string(kT0) + "-1"));
  kv.advance(5);
  EXPECT_EQ(kv({"XADD", "s", "*", "a", "1"}), Bulk(std::to_string(kT0 + 5) + "-0"));
  EXPECT_EQ(kv({"XADD", "s", std::to_string(kT0 + 100) + "-7", "a", "1"}),
            Bulk(std::to_string(kT0 + 100) + "-7"));
  EXPECT_EQ(kv({"XADD", "s", "*", "a", "1"}), Bulk(std::to_string(kT0 + 100) + "-8"));
  EXPECT_EQ(kv({"XLEN", "s"}), Int(8));
  EXPECT_EQ(kv({"XADD", "nokey", "NOMKSTREAM", "*", "a", "1"}), Nil());
  EXPECT_EQ(kv({"EXISTS", "nokey"}), Int(0));
  EXPECT_EQ(kv({"XADD", "t", "18446744073709551615-18446744073709551615", "a", "1"}),
            Bulk("18446744073709551615-18446744073709551615"));
  EXPECT_EQ(kv({"XADD", "t", "*", "a", "1"}),
            Err("ERR The stream has exhausted the last possible ID, unable to add more items"));
  EXPECT_EQ(kv({"TYPE", "s"}), Simple("stream"));
  kv({"SET", "str", "x"});
  EXPECT_EQ(kv({"XADD", "str", "*", "a", "1"}), Err(kErrWrongType));
  EXPECT_EQ(kv({"XLEN", "str"}), Err(kErrWrongType));
}

TEST_F(KvStream, RangeAndRevRange) {
  for (int i = 1; i <= 5; i++) {
    kv({"XADD", "s", std::to_string(i) + "-0", "f", "v" + std::to_string(i)});
  }
  EXPECT_EQ(kv({"XRANGE", "s", "2", "3"}),
            Arr({Entry("2-0", {"f", "v2"}), Entry("3-0", {"f", "v3"})}));
  EXPECT_EQ(kv({"XRANGE", "s", "(2-0", "+", "COUNT", "2"}),
            Arr({Entry("3-0", {"f", "v3"}), Entry("4-0", {"f", "v4"})}));
  EXPECT_EQ(kv({"XREVRANGE", "s", "+", "-", "COUNT", "2"}),
            Arr({Entry("5-0", {"f", "v5"}), Entry("4-0", {"f", "v4"})}));
  EXPECT_EQ(kv({"XREVRANGE", "s", "(4-0", "2"}),
            Arr({Entry("3-0", {"f", "v3"}), Entry("2-0", {"f", "v2"})}));
  EXPECT_EQ(kv({"XRANGE", "s", "-", "+", "COUNT", "0"}), kNullArr);
  EXPECT_EQ(kv({"XRANGE", "s", "4", "2"}), Arr({}));
  EXPECT_EQ(kv({"XRANGE", "nokey", "-", "+"}), Arr({}));
  EXPECT_EQ(kv({"XRANGE", "s", "(18446744073709551615-18446744073709551615", "+"}),
            Err("ERR invalid start ID for the interval"));
  EXPECT_EQ(kv({"XRANGE", "s", "-", "(0-0"}), Err("ERR invalid end ID for the interval"));
  EXPECT_EQ(kv({"XRANGE", "s", "(-", "+"}), kInvalidId);
  EXPECT_EQ(kv({"XRANGE", "s", "-", "+", "COUNT"}), Err(kErrSyntax));
  EXPECT_EQ(kv({"XDEL", "s", "3-0", "9-0"}), Int(1));
  EXPECT_EQ(kv({"XREVRANGE", "s", "3-5", "-"}),
            Arr({Entry("2-0", {"f", "v2"}), Entry("1-0", {"f", "v1"})}));
}

TEST_F(KvStream, RangeReplyLimit) {
  KvOptions o;
  o.stream_reply_entries_max = 3;
  KvHarness small(o);
  for (int i = 1; i <= 4; i++) small({"XADD", "s", std::to_string(i), "f", "v"});
  EXPECT_EQ(small({"XRANGE", "s", "-", "+"}),
            Err("ERR XRANGE would return more than 3 entries (stream-reply-entries-max); use "
                "COUNT"));
  EXPECT_EQ(small({"XRANGE", "s", "2", "+"}).substr(0, 4), "*3\r\n");
  EXPECT_EQ(small({"XREVRANGE", "s", "+", "-", "COUNT", "2"}).substr(0, 4), "*2\r\n");
  EXPECT_OK(small.sm().TEST_check_invariants());
}

TEST_F(KvStream, TrimAndDelete) {
  for (int i = 1; i <= 10; i++) kv({"XADD", "s", std::to_string(i), "f", "v"});
  EXPECT_EQ(kv({"XTRIM", "s", "MAXLEN", "8"}), Int(2));
  EXPECT_EQ(kv({"XTRIM", "s", "MINID", "5"}), Int(2));
  EXPECT_EQ(kv({"XTRIM", "s", "MAXLEN", "~", "2", "LIMIT", "3"}), Int(3));
  EXPECT_EQ(kv({"XLEN", "s"}), Int(3));
  EXPECT_EQ(kv({"XADD", "s", "MAXLEN", "2", "11", "f", "v"}), Bulk("11-0"));
  EXPECT_EQ(kv({"XRANGE", "s", "-", "+"}),
            Arr({Entry("10-0", {"f", "v"}), Entry("11-0", {"f", "v"})}));
  EXPECT_EQ(kv({"XTRIM", "s", "MAXLEN", "=", "1", "LIMIT", "1"}),
            Err("ERR syntax error, LIMIT cannot be used without the special ~ option"));
  EXPECT_EQ(kv({"XTRIM", "s", "LIMIT", "1"}),
            Err("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"));
  EXPECT_EQ(kv({"XTRIM", "s", "MAXLEN", "1", "MINID", "1"}),
            Err("ERR syntax error, MAXLEN and MINID options at the same time are not compatible"));
  EXPECT_EQ(kv({"XTRIM", "s", "MAXLEN", "-1"}), Err("ERR The MAXLEN argument must be >= 0."));
  EXPECT_EQ(kv({"XTRIM", "nokey", "MAXLEN", "1"}), Int(0));
  // Emptied streams stay (as in Redis), with their counters.
  EXPECT_EQ(kv({"XDEL", "s", "10", "11"}), Int(2));
  EXPECT_EQ(kv({"XLEN", "s"}), Int(0));
  EXPECT_EQ(kv({"EXISTS", "s"}), Int(1));
  EXPECT_EQ(
      kv({"XADD", "s", "11", "f", "v"}),
      Err("ERR The ID specified in XADD is equal or smaller than the target stream top item"));
  EXPECT_EQ(kv({"XSETID", "s", "5"}),
            Err("ERR The ID specified in XSETID is smaller than current max_deleted_entry_id"));
  EXPECT_EQ(kv({"XSETID", "s", "20", "ENTRIESADDED", "30"}), Ok());
  EXPECT_EQ(kv({"XADD", "s", "*", "f", "v"}), Bulk(std::to_string(kT0) + "-0"));
  EXPECT_EQ(kv({"XSETID", "nokey", "1"}), Err(kErrNoSuchKey));
}

TEST_F(KvStream, GroupsDeliveryAckAndPending) {
  kv({"XADD", "s", "1", "a", "1"});
  kv({"XADD", "s", "2", "b", "2"});
  kv({"XADD", "s", "3", "c", "3"});
  EXPECT_EQ(kv({"XGROUP", "CREATE", "s", "g", "0"}), Ok());
  EXPECT_EQ(kv({"XGROUP", "CREATE", "s", "g", "0"}),
            Err("BUSYGROUP Consumer Group name already exists"));
  EXPECT_EQ(kv({"XGROUP", "CREATE", "nokey", "g", "$"}),
            Err("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you "
                "may want to use the MKSTREAM option to create an empty stream automatically."));
  EXPECT_EQ(kv({"XREADGROUP", "GROUP", "g", "alice", "COUNT", "2", "STREAMS", "s", ">"}),
            Arr({Arr({Bulk("s"), Arr({Entry("1-0", {"a", "1"}), Entry("2-0", {"b", "2"})})})}));
  kv.advance(100);
  EXPECT_EQ(kv({"XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", ">"}),
            Arr({Arr({Bulk("s"), Arr({Entry("3-0", {"c", "3"})})})}));
  EXPECT_EQ(kv({"XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", ">"}), kNullArr);
  EXPECT_EQ(kv({"XREADGROUP", "GROUP", "g", "bob", "BLOCK", "10", "STREAMS", "s", ">"}), kNullArr);
  kv.advance(50);
  EXPECT_EQ(kv({"XPENDING", "s", "g"}),
            Arr({Int(3), Bulk("1-0"), Bulk("3-0"),
                 Arr({Arr({Bulk("alice"), Bulk("2")}), Arr({Bulk("bob"), Bulk("1")})})}));
  // Idle times come from the stamps: alice's entries were delivered 150 ms ago.
  EXPECT_EQ(kv({"XPENDING", "s", "g", "-", "+", "10"}),
            Arr({Arr({Bulk("1-0"), Bulk("alice"), Int(150), Int(1)}),
                 Arr({Bulk("2-0"), Bulk("alice"), Int(150), Int(1)}),
                 Arr({Bulk("3-0"), Bulk("bob"), Int(50), Int(1)})}));
  EXPECT_EQ(kv({"XPENDING", "s", "g", "IDLE", "100", "-", "+", "10", "alice"}),
            Arr({Arr({Bulk("1-0"), Bulk("alice"), Int(150), Int(1)}),
                 Arr({Bulk("2-0"), Bulk("alice"), Int(150), Int(1)})}));
  EXPECT_EQ(kv({"XPENDING", "s", "g", "(1-0", "+", "1"}),
            Arr({Arr({Bulk("2-0"), Bulk("alice"), Int(150), Int(1)})}));
  EXPECT_EQ(kv({"XPENDING", "s", "g", "-", "+", "10", "nobody"}), Arr({}));
  EXPECT_EQ(kv({"XPENDING", "s", "g", "-", "+"}), Err(kErrSyntax));
  EXPECT_EQ(kv({"XPENDING", "s", "nog"}), Err("NOGROUP No such key 's' or consumer group 'nog'"));
  // History: alice's pending entries again, counted as a second delivery.
  EXPECT_EQ(kv({"XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0"}),
            Arr({Arr({Bulk("s"), Arr({Entry("1-0", {"a", "1"}), Entry("2-0", {"b", "2"})})})}));
  EXPECT_EQ(kv({"XACK", "s", "g", "1-0", "1-0", "9-0"}), Int(1));
  EXPECT_EQ(kv({"XACK", "s", "g", "bad"}), kInvalidId);
  EXPECT_EQ(kv({"XACK", "s", "nog", "1"}), Int(0));
  EXPECT_EQ(kv({"XPENDING", "s", "g", "-", "+", "10"}),
            Arr({Arr({Bulk("2-0"), Bulk("alice"), Int(0), Int(2)}),
                 Arr({Bulk("3-0"), Bulk("bob"), Int(50), Int(1)})}));
  // A deleted entry stays pending and is read back as [id, nil].
  EXPECT_EQ(kv({"XDEL", "s", "2"}), Int(1));
  EXPECT_EQ(kv({"XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0"}),
            Arr({Arr({Bulk("s"), Arr({Arr({Bulk("2-0"), kNullArr})})})}));
  EXPECT_EQ(kv({"XINFO", "GROUPS", "s"}),
            Arr({Arr({Bulk("name"), Bulk("g"), Bulk("consumers"), Int(2), Bulk("pending"), Int(2),
                      Bulk("last-delivered-id"), Bulk("3-0"), Bulk("entries-read"), Int(3),
                      Bulk("lag"), Int(0)})}));
  EXPECT_EQ(kv({"XGROUP", "DELCONSUMER", "s", "g", "alice"}), Int(1));
  EXPECT_EQ(kv({"XGROUP", "CREATECONSUMER", "s", "g", "carol"}), Int(1));
  EXPECT_EQ(kv({"XGROUP", "CREATECONSUMER", "s", "g", "carol"}), Int(0));
  EXPECT_EQ(
      kv({"XINFO", "CONSUMERS", "s", "g"}),
      Arr({Arr({Bulk("name"), Bulk("bob"), Bulk("pending"), Int(1), Bulk("idle"), Int(50)}),
           Arr({Bulk("name"), Bulk("carol"), Bulk("pending"), Int(0), Bulk("idle"), Int(0)})}));
  EXPECT_EQ(kv({"XGROUP", "DESTROY", "s", "g"}), Int(1));
  EXPECT_EQ(kv({"XGROUP", "DESTROY", "s", "g"}), Int(0));
  EXPECT_EQ(kv({"XINFO", "GROUPS", "s"}), Arr({}));
}

TEST_F(KvStream, ClaimAndAutoClaim) {
  for (int i = 1; i <= 4; i++) kv({"XADD", "s", std::to_string(i), "f", std::to_string(i)});
  kv({"XGROUP", "CREATE", "s", "g", "0"});
  kv({"XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"});
  kv.advance(1000);
  // Not idle enough / idle enough; JUSTID keeps the delivery count.
  EXPECT_EQ(kv({"XCLAIM", "s", "g", "c2", "2000", "1"}), Arr({}));
  EXPECT_EQ(kv({"XCLAIM", "s", "g", "c2", "500", "1", "2"}),
            Arr({Entry("1-0", {"f", "1"}), Entry("2-0", {"f", "2"})}));
  EXPECT_EQ(kv({"XCLAIM", "s", "g", "c3", "0", "3", "JUSTID", "IDLE", "300"}), Arr({Bulk("3-0")}));
  EXPECT_EQ(kv({"XPENDING", "s", "g", "-", "+", "10"}),
            Arr({Arr({Bulk("1-0"), Bulk("c2"), Int(0), Int(2)}),
                 Arr({Bulk("2-0"), Bulk("c2"), Int(0), Int(2)}),
                 Arr({Bulk("3-0"), Bulk("c3"), Int(300), Int(1)}),
                 Arr({Bulk("4-0"), Bulk("c1"), Int(1000), Int(1)})}));
  EXPECT_EQ(
      kv({"XCLAIM", "s", "g", "c3", "0", "4", "RETRYCOUNT", "9", "TIME", std::to_string(kT0)}),
      Arr({Entry("4-0", {"f", "4"})}));
  EXPECT_EQ(kv({"XPENDING", "s", "g", "4", "4", "1"}),
            Arr({Arr({Bulk("4-0"), Bulk("c3"), Int(1000), Int(9)})}));
  EXPECT_EQ(kv({"XCLAIM", "s", "g", "c3", "x", "4"}),
            Err("ERR Invalid min-idle-time argument for XCLAIM"));
  EXPECT_EQ(kv({"XCLAIM", "s", "g", "c3", "0", "4", "BOGUS"}),
            Err("ERR Unrecognized XCLAIM option 'BOGUS'"));
  // A deleted entry leaves the PEL when claimed.
  kv({"XDEL", "s", "1"});
  EXPECT_EQ(kv({"XCLAIM", "s", "g", "c3", "0", "1"}), Arr({}));
  EXPECT_EQ(kv({"XPENDING", "s", "g"}).substr(0, 8), "*4\r\n:3\r\n");
  // FORCE creates a PEL entry; LASTID moves last-delivered-id forward.
  kv({"XADD", "s", "5", "f", "5"});
  EXPECT_EQ(kv({"XCLAIM", "s", "g", "c4", "0", "5", "FORCE", "JUSTID", "LASTID", "5"}),
            Arr({Bulk("5-0")}));
  // XAUTOCLAIM: cursor, claimed entries, deleted ids.
  kv({"XDEL", "s", "2"});
  kv.advance(10);
  EXPECT_EQ(kv({"XAUTOCLAIM", "s", "g", "c5", "5", "0", "COUNT", "2"}),
            Arr({Bulk("4-0"), Arr({Entry("3-0", {"f", "3"})}), Arr({Bulk("2-0")})}));
  EXPECT_EQ(kv({"XAUTOCLAIM", "s", "g", "c5", "0", "(3", "JUSTID"}),
            Arr({Bulk("0-0"), Arr({Bulk("4-0"), Bulk("5-0")}), Arr({})}));
  EXPECT_EQ(kv({"XAUTOCLAIM", "s", "g", "c5", "0", "0", "COUNT", "0"}),
            Err("ERR COUNT must be > 0"));
  EXPECT_EQ(kv({"XAUTOCLAIM", "s", "nog", "c5", "0", "0"}),
            Err("NOGROUP No such key 's' or consumer group 'nog'"));
  EXPECT_EQ(kv({"XINFO", "CONSUMERS", "s", "g"}).substr(0, 4), "*5\r\n");
}

TEST_F(KvStream, ReadAndStreamsArguments) {
  kv({"XADD", "a", "1", "f", "v"});
  kv({"XADD", "b", "2", "f", "v"});
  EXPECT_EQ(kv({"XREAD", "STREAMS", "a", "b", "0", "0"}),
            Arr({Arr({Bulk("a"), Arr({Entry("1-0", {"f", "v"})})}),
                 Arr({Bulk("b"), Arr({Entry("2-0", {"f", "v"})})})}));
  EXPECT_EQ(kv({"XREAD", "COUNT", "1", "STREAMS", "a", "b", "1", "$"}), kNullArr);
  EXPECT_EQ(kv({"XREAD", "BLOCK", "0", "STREAMS", "a", "$"}), kNullArr);
  EXPECT_EQ(kv({"XREAD", "BLOCK", "-1", "STREAMS", "a", "$"}), Err("ERR timeout is negative"));
  EXPECT_EQ(kv({"XREAD", "STREAMS", "a", "b", "0"}),
            Err("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be "
                "specified."));
  EXPECT_EQ(kv({"XREAD", "STREAMS", "a", ">"}),
            Err("ERR The > ID can be specified only when calling XREADGROUP using the GROUP "
                "<group> <consumer> option."));
  EXPECT_EQ(kv({"XREADGROUP", "GROUP", "g", "c", "STREAMS", "a", ">"}),
            Err("NOGROUP No such key 'a' or consumer group 'g' in XREADGROUP with GROUP option"));
  kv.protocol = net::Protocol::kResp3;
  EXPECT_EQ(kv({"XREAD", "STREAMS", "a", "0"}),
            "%1\r\n" + Bulk("a") + Arr({Entry("1-0", {"f", "v"})}));
  EXPECT_EQ(kv({"XREAD", "STREAMS", "a", "1"}), "_\r\n");
  // Key positions move with the arguments.
  std::vector<std::string_view> req = {"XREADGROUP", "GROUP", "g",  "c", "COUNT", "1",
                                       "STREAMS",    "k1",    "k2", ">", ">"};
  EXPECT_EQ(command_keys(*find_command("xreadgroup"), req), (std::vector<size_t>{7, 8}));
  std::vector<std::string_view> bad = {"XREAD", "STREAMS", "k1", "k2", "0"};
  EXPECT_EQ(command_keys(*find_command("xread"), bad), (std::vector<size_t>{}));
  EXPECT_EQ(stream_read_block_ms(req), std::nullopt);
  std::vector<std::string_view> blk = {"XREAD", "BLOCK", "250", "STREAMS", "k", "$"};
  EXPECT_EQ(stream_read_block_ms(blk), 250);
  EXPECT_EQ(redis_flag_names(find_command("xread")->flags),
            (std::vector<std::string_view>{"readonly", "blocking"}));
  EXPECT_TRUE(find_command("xreadgroup")->is_write());
}

TEST_F(KvStream, KeyOperations) {
  kv({"XADD", "s", "1", "f", "v"});
  kv({"XGROUP", "CREATE", "s", "g", "0"});
  kv({"XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"});
  EXPECT_EQ(kv({"RENAME", "s", "t"}), Ok());
  EXPECT_EQ(kv({"XPENDING", "t", "g"}).substr(0, 8), "*4\r\n:1\r\n");
  EXPECT_EQ(kv({"SCAN", "0", "TYPE", "stream"}), Arr({Bulk("0"), Arr({Bulk("t")})}));
  EXPECT_OK(kv.sm().TEST_check_invariants());
  EXPECT_EQ(kv({"SET", "t", "x"}), Ok());  // replaces the stream and its elements
  EXPECT_OK(kv.sm().TEST_check_invariants());
  kv({"XADD", "s", "1", "f", "v"});
  kv({"XGROUP", "CREATE", "s", "g", "0"});
  EXPECT_EQ(kv({"PEXPIRE", "s", "10"}), Int(1));
  kv.advance(20);
  EXPECT_EQ(kv({"XLEN", "s"}), Int(0));
  EXPECT_EQ(kv({"XADD", "s", "1", "f", "v"}), Bulk("1-0"));  // a new stream
  EXPECT_EQ(kv({"XINFO", "GROUPS", "s"}), Arr({}));
  EXPECT_EQ(kv({"DEL", "s"}), Int(1));
  kv({"XGROUP", "CREATE", "e", "g", "$", "MKSTREAM"});
  EXPECT_EQ(kv({"XLEN", "e"}), Int(0));
  EXPECT_EQ(kv({"FLUSHALL"}), Ok());
  EXPECT_EQ(kv({"DBSIZE"}), Int(0));
}

TEST_F(KvStream, InfoStream) {
  kv({"XADD", "s", "1", "a", "1"});
  kv({"XADD", "s", "2", "b", "2"});
  kv({"XGROUP", "CREATE", "s", "g", "0"});
  kv({"XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s", ">"});
  EXPECT_EQ(kv({"XINFO", "STREAM", "s"}), Arr({Bulk("length"),
                                               Int(2),
                                               Bulk("radix-tree-keys"),
                                               Int(1),
                                               Bulk("radix-tree-nodes"),
                                               Int(2),
                                               Bulk("last-generated-id"),
                                               Bulk("2-0"),
                                               Bulk("max-deleted-entry-id"),
                                               Bulk("0-0"),
                                               Bulk("entries-added"),
                                               Int(2),
                                               Bulk("recorded-first-entry-id"),
                                               Bulk("1-0"),
                                               Bulk("groups"),
                                               Int(1),
                                               Bulk("first-entry"),
                                               Entry("1-0", {"a", "1"}),
                                               Bulk("last-entry"),
                                               Entry("2-0", {"b", "2"})}));
  const std::string t = std::to_string(kT0);
  EXPECT_EQ(
      kv({"XINFO", "STREAM", "s", "FULL", "COUNT", "1"}),
      Arr({Bulk("length"), Int(2), Bulk("radix-tree-keys"), Int(1), Bulk("radix-tree-nodes"),
           Int(2), Bulk("last-generated-id"), Bulk("2-0"), Bulk("max-deleted-entry-id"),
           Bulk("0-0"), Bulk("entries-added"), Int(2), Bulk("recorded-first-entry-id"), Bulk("1-0"),
           Bulk("entries"), Arr({Entry("1-0", {"a", "1"})}), Bulk("groups"),
           Arr({Arr({Bulk("name"), Bulk("g"), Bulk("last-delivered-id"), Bulk("1-0"),
                     Bulk("entries-read"), Int(1), Bulk("lag"), Int(1), Bulk("pel-count"), Int(1),
                     Bulk("pending"), Arr({Arr({Bulk("1-0"), Bulk("c"), Int(kT0), Int(1)})}),
                     Bulk("consumers"),
                     Arr({Arr({Bulk("name"), Bulk("c"), Bulk("seen-time"), Int(kT0),
                               Bulk("pel-count"), Int(1), Bulk("pending"),
                               Arr({Arr({Bulk("1-0"), Int(kT0), Int(1)})})})})})})}));
  EXPECT_EQ(kv({"XINFO", "STREAM", "nokey"}), Err(kErrNoSuchKey));
  EXPECT_EQ(kv({"XINFO", "STREAM", "s", "bogus"}),
            Err("ERR unknown subcommand or wrong number of arguments for 'STREAM'. Try XINFO "
                "HELP."));
  EXPECT_EQ(kv({"XINFO", "GROUPS", "s", "x"}),
            Err("ERR wrong number of arguments for 'xinfo|groups' command"));
  EXPECT_EQ(kv({"XINFO", "FOO", "s"}), Err("ERR unknown subcommand 'FOO'. Try XINFO HELP."));
  EXPECT_EQ(kv({"XGROUP", "CREATE", "s"}),
            Err("ERR wrong number of arguments for 'xgroup|create' command"));
  EXPECT_EQ(kv({"XINFO", "HELP"}).substr(0, 4), "*9\r\n");
}

// Two replicas applying the same entries reach the same state: the stamp
// is the only clock.
TEST_F(KvStream, DeterministicAcrossReplicas) {
  KvHarness other;
  for (KvHarness* h : {&kv, &other}) {
    h->set_now(kT0 + 42);
    (*h)({"XADD", "s", "*", "f", "v"});
    (*h)({"XGROUP", "CREATE", "s", "g", "0"});
    (*h)({"XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"});
    h->advance(7);
  }
  EXPECT_EQ(kv({"XPENDING", "s", "g", "-", "+", "10"}),
            other({"XPENDING", "s", "g", "-", "+", "10"}));
  EXPECT_EQ(kv({"XINFO", "STREAM", "s", "FULL"}), other({"XINFO", "STREAM", "s", "FULL"}));
  EXPECT_OK(other.sm().TEST_check_invariants());
}

}  // namespace
}  // namespace qkv::kv
