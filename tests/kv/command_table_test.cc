// The declarative command table: completeness, consistency, lookups, key
// positions and the error texts produced from it.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "kv/commands.h"

namespace qkv::kv {
namespace {

TEST(KvCommandTable, HasEveryCommandOfTheIssue) {
  const char* names[] = {
      "ping",  "echo",       "hello",       "auth",        "select",   "quit",      "command",
      "info",  "client",     "dbsize",      "flushdb",     "flushall", "get",       "set",
      "setnx", "setex",      "psetex",      "getset",      "getdel",   "getex",     "mget",
      "mset",  "msetnx",     "append",      "strlen",      "getrange", "setrange",  "incr",
      "decr",  "incrby",     "decrby",      "incrbyfloat", "del",      "unlink",    "exists",
      "type",  "rename",     "renamenx",    "expire",      "pexpire",  "expireat",  "pexpireat",
      "ttl",   "pttl",       "persist",     "keys",        "scan",     "randomkey", "config",
      "cas",   "expiretime", "pexpiretime",
  };
  for (const char* n : names) {
    const CommandSpec* s = find_command(n);
    ASSERT_NE(s, nullptr) << n;
    EXPECT_EQ(s->name, n);
    EXPECT_FALSE(s->summary.empty()) << n;
    EXPECT_FALSE(s->syntax.empty()) << n;
    EXPECT_FALSE(s->group.empty()) << n;
  }
}

TEST(KvCommandTable, HasTheCollectionCommandsOfIssue6) {
  const char* names[] = {
      "hset",       "hget",        "hmget",       "hdel",        "hgetall",   "hexists",
      "hincrby",    "hincrbyfloat", "hkeys",      "hvals",       "hlen",      "hsetnx",
      "hscan",      "hmset",       "hstrlen",     "hrandfield",  "sadd",      "srem",
      "smembers",   "sismember",   "smismember",  "scard",       "spop",      "srandmember",
      "sinter",     "sunion",      "sdiff",       "sinterstore", "sunionstore", "sdiffstore",
      "sscan",      "smove",       "sintercard",  "lpush",       "rpush",     "lpushx",
      "rpushx",     "lpop",        "rpop",        "llen",        "lrange",    "lindex",
      "lset",       "linsert",     "lrem",        "ltrim",       "lpos",      "lmove",
      "rpoplpush",
  };
  for (const char* n : names) {
    const CommandSpec* s = find_command(n);
    ASSERT_NE(s, nullptr) << n;
    EXPECT_NE(s->handler, nullptr) << n;
    EXPECT_TRUE(s->group == "hash" || s->group == "set" || s->group == "list") << n;
  }
  auto flags = [](std::string_view n) { return redis_flag_names(find_command(n)->flags); };
  using V = std::vector<std::string_view>;
  EXPECT_EQ(flags("hset"), (V{"write", "denyoom", "fast"}));
  EXPECT_EQ(flags("hgetall"), (V{"readonly"}));
  EXPECT_EQ(flags("spop"), (V{"write", "fast"}));
  EXPECT_EQ(flags("srandmember"), (V{"readonly"}));
  EXPECT_EQ(flags("lrem"), (V{"write"}));
  using P = std::vector<size_t>;
  EXPECT_EQ(key_positions(*find_command("smove"), 4), (P{1, 2}));
  EXPECT_EQ(key_positions(*find_command("sunionstore"), 4), (P{1, 2, 3}));
  EXPECT_EQ(key_positions(*find_command("lmove"), 5), (P{1, 2}));
}

TEST(KvCommandTable, EntriesAreConsistent) {
  std::set<std::string_view> names;
  for (const CommandSpec& s : command_table()) {
    EXPECT_TRUE(names.insert(s.name).second) << s.name;
    EXPECT_NE(s.arity, 0) << s.name;
    for (char c : s.name) EXPECT_FALSE(c >= 'A' && c <= 'Z') << s.name;
    if (s.is_local()) {
      EXPECT_EQ(s.handler, nullptr) << s.name;
      EXPECT_FALSE(s.is_write()) << s.name;
    } else {
      EXPECT_NE(s.handler, nullptr) << s.name;
      EXPECT_NE(s.is_write(), s.is_readonly()) << s.name << ": exactly one of write/readonly";
      EXPECT_TRUE(s.subcommands.empty()) << s.name;
    }
    EXPECT_FALSE(s.is_internal()) << s.name;
    // Key positions: all zero, or a sane range.
    if (s.first_key == 0) {
      EXPECT_EQ(s.last_key, 0) << s.name;
      EXPECT_EQ(s.key_step, 0) << s.name;
    } else {
      EXPECT_GT(s.key_step, 0) << s.name;
      EXPECT_TRUE(s.last_key < 0 || s.last_key >= s.first_key) << s.name;
    }
    for (const CommandSpec& sub : s.subcommands) {
      EXPECT_EQ(sub.name.substr(0, sub.name.find('|')), s.name);
      EXPECT_TRUE(sub.is_local()) << sub.name;
      EXPECT_LE(std::abs(sub.arity), 5) << sub.name;
    }
  }
}

TEST(KvCommandTable, FlagsMatchRedis) {
  auto flags = [](std::string_view n) { return redis_flag_names(find_command(n)->flags); };
  using V = std::vector<std::string_view>;
  EXPECT_EQ(flags("get"), (V{"readonly", "fast"}));
  EXPECT_EQ(flags("set"), (V{"write", "denyoom"}));
  EXPECT_EQ(flags("incr"), (V{"write", "denyoom", "fast"}));
  EXPECT_EQ(flags("del"), (V{"write"}));
  EXPECT_EQ(flags("keys"), (V{"readonly"}));
  EXPECT_EQ(flags("hello"), (V{"noscript", "loading", "stale", "fast", "no_auth", "allow_busy"}));
  EXPECT_EQ(flags("ping"), (V{"fast"}));
  EXPECT_EQ(find_command("mset")->key_step, 2);
  EXPECT_EQ(find_command("rename")->last_key, 2);
}

TEST(KvCommandTable, LookupIsCaseInsensitive) {
  EXPECT_EQ(find_command("GeT"), find_command("get"));
  EXPECT_EQ(find_command("INCRBYFLOAT")->name, "incrbyfloat");
  EXPECT_EQ(find_command("nosuchcommand"), nullptr);
  EXPECT_EQ(find_command(""), nullptr);
  EXPECT_EQ(find_command(std::string(1000, 'a')), nullptr);
  // Internal commands are invisible to clients.
  EXPECT_EQ(find_command("delexpired"), nullptr);
  ASSERT_NE(find_internal_command("DELEXPIRED"), nullptr);
  EXPECT_TRUE(find_internal_command("delexpired")->is_internal());
}

TEST(KvCommandTable, Subcommands) {
  const CommandSpec* config = find_command("config");
  ASSERT_NE(config, nullptr);
  const CommandSpec* get = find_subcommand(*config, "GET");
  ASSERT_NE(get, nullptr);
  EXPECT_EQ(get->name, "config|get");
  EXPECT_EQ(get->arity, -3);
  EXPECT_NE(find_subcommand(*config, "resetstat"), nullptr);
  EXPECT_EQ(find_subcommand(*config, "nope"), nullptr);
  const CommandSpec* client = find_command("client");
  for (const char* sub : {"id", "setname", "getname", "list"}) {
    EXPECT_NE(find_subcommand(*client, sub), nullptr) << sub;
  }
  const CommandSpec* command = find_command("command");
  for (const char* sub : {"count", "info", "docs"}) {
    EXPECT_NE(find_subcommand(*command, sub), nullptr) << sub;
  }
}

TEST(KvCommandTable, Arity) {
  const CommandSpec& get = *find_command("get");
  EXPECT_FALSE(arity_ok(get, 1));
  EXPECT_TRUE(arity_ok(get, 2));
  EXPECT_FALSE(arity_ok(get, 3));
  const CommandSpec& set = *find_command("set");
  EXPECT_FALSE(arity_ok(set, 2));
  EXPECT_TRUE(arity_ok(set, 3));
  EXPECT_TRUE(arity_ok(set, 9));
}

TEST(KvCommandTable, KeyPositions) {
  using V = std::vector<size_t>;
  EXPECT_EQ(key_positions(*find_command("get"), 2), (V{1}));
  EXPECT_EQ(key_positions(*find_command("set"), 5), (V{1}));
  EXPECT_EQ(key_positions(*find_command("mget"), 4), (V{1, 2, 3}));
  EXPECT_EQ(key_positions(*find_command("mset"), 5), (V{1, 3}));
  EXPECT_EQ(key_positions(*find_command("mset"), 4), (V{1}));  // dangling key without value
  EXPECT_EQ(key_positions(*find_command("rename"), 3), (V{1, 2}));
  EXPECT_EQ(key_positions(*find_command("keys"), 2), (V{}));
  EXPECT_EQ(key_positions(*find_command("ping"), 1), (V{}));
}

TEST(KvCommandTable, ErrorTexts) {
  EXPECT_EQ(arity_error("get"), "ERR wrong number of arguments for 'get' command");
  EXPECT_EQ(arity_error("config|get"), "ERR wrong number of arguments for 'config|get' command");
  std::vector<std::string_view> a = {"foo", "a", "b"};
  EXPECT_EQ(unknown_command_error(a),
            "ERR unknown command 'foo', with args beginning with: 'a' 'b' ");
  std::vector<std::string_view> none = {"foo"};
  EXPECT_EQ(unknown_command_error(none), "ERR unknown command 'foo', with args beginning with: ");
  // Arguments are listed while the list is under 128 bytes, each cut to
  // what is left.
  std::string long_arg(200, 'x');
  std::vector<std::string_view> many = {"foo", long_arg, "b"};
  EXPECT_EQ(unknown_command_error(many), "ERR unknown command 'foo', with args beginning with: '" +
                                             std::string(128, 'x') + "' ");
  std::string y130(130, 'y');
  std::vector<std::string_view> second = {"foo", "a", y130, "c"};
  EXPECT_EQ(
      unknown_command_error(second),
      "ERR unknown command 'foo', with args beginning with: 'a' '" + std::string(124, 'y') + "' ");
  EXPECT_EQ(unknown_subcommand_error("config", "foo"),
            "ERR unknown subcommand 'foo'. Try CONFIG HELP.");
  EXPECT_EQ(invalid_expire_error("set"), "ERR invalid expire time in 'set' command");
}

}  // namespace
}  // namespace qkv::kv
