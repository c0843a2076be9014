// Lua scripting: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT, through the
// state machine (writes applied as entries, reads through execute_read),
// and the engine's cache on its own.
#include <gtest/gtest.h>

#include <string>

#include "kv/commands.h"
#include "kv/script.h"
#include "kv/sha1.h"
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

// redis-py's Lock scripts (redis/lock.py, python3-redis 4.3), verbatim.
const std::string kLockRelease = R"(
        local token = redis.call('get', KEYS[1])
        if not token or token ~= ARGV[1] then
            return 0
        end
        redis.call('del', KEYS[1])
        return 1
    )";
const std::string kLockExtend = R"(
        local token = redis.call('get', KEYS[1])
        if not token or token ~= ARGV[1] then
            return 0
        end
        local expiration = redis.call('pttl', KEYS[1])
        if not expiration then
            expiration = 0
        end
        if expiration < 0 then
            return 0
        end

        local newttl = ARGV[2]
        if ARGV[3] == "0" then
            newttl = ARGV[2] + expiration
        end
        redis.call('pexpire', KEYS[1], newttl)
        return 1
    )";
const std::string kLockReacquire = R"(
        local token = redis.call('get', KEYS[1])
        if not token or token ~= ARGV[1] then
            return 0
        end
        redis.call('pexpire', KEYS[1], ARGV[2])
        return 1
    )";

// The error of a script that failed at a line: Redis 7.0's suffix.
std::string ScriptErr(std::string_view msg, std::string_view body, int line) {
  return Err(std::string(msg) + " script: " + sha1_hex(body) +
             ", on @user_script:" + std::to_string(line) + ".");
}

class KvScript : public ::testing::Test {
 protected:
  std::string eval(const std::string& body, std::vector<std::string> rest = {"0"}) {
    std::vector<std::string> args{"EVAL", body};
    args.insert(args.end(), rest.begin(), rest.end());
    return kv.run(args);
  }
  KvHarness kv;
};

TEST(KvScriptSha1, KnownDigests) {
  EXPECT_EQ(sha1_hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(sha1_hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(sha1_hex("The quick brown fox jumps over the lazy dog"),
            "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12");
  // 56 bytes: the padding needs a second block.
  EXPECT_EQ(sha1_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  EXPECT_EQ(sha1_hex(std::string(1000000, 'a')), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  // What Redis answers to SCRIPT LOAD "return 1".
  EXPECT_EQ(sha1_hex("return 1"), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
}

TEST_F(KvScript, LuaToResp2) {
  EXPECT_EQ(eval("return 1"), Int(1));
  EXPECT_EQ(eval("return 3.99"), Int(3));
  EXPECT_EQ(eval("return -3.99"), Int(-3));
  EXPECT_EQ(eval("return 0/0"), Int(INT64_MIN));
  EXPECT_EQ(eval("return 'x'"), Bulk("x"));
  EXPECT_EQ(eval("return true"), Int(1));
  EXPECT_EQ(eval("return false"), Nil());
  EXPECT_EQ(eval("return nil"), Nil());
  EXPECT_EQ(eval("return {1,2,3.7,'x',nil,5}"), Arr({Int(1), Int(2), Int(3), Bulk("x")}));
  EXPECT_EQ(eval("return {1, false, 2}"), Arr({Int(1), Nil(), Int(2)}));
  EXPECT_EQ(eval("return {x=1}"), Arr({}));
  EXPECT_EQ(eval("return {ok='FINE'}"), Simple("FINE"));
  EXPECT_EQ(eval("return {err='x y'}"), Err("x y"));
  EXPECT_EQ(eval("return {err='-x y'}"), Err("-x y"));
  EXPECT_EQ(eval("return {ok='a', err='b'}"), Err("b"));
  EXPECT_EQ(eval("return {err=5}"), Arr({}));
  EXPECT_EQ(eval("return redis.status_reply('x y')"), Simple("x y"));
  EXPECT_EQ(eval("return redis.error_reply('x y')"), Err("x y"));
  EXPECT_EQ(eval("return redis.error_reply('boom')"), Err("ERR boom"));
  EXPECT_EQ(eval("return redis.error_reply('-boom')"), Err("ERR boom"));
  EXPECT_EQ(eval("return redis.error_reply('')"), Err("ERR "));
  EXPECT_EQ(eval("return redis.error_reply(5)"), Err("ERR wrong number or type of arguments"));
  EXPECT_EQ(eval("return {1,{2,{3,{ok='x'}}},{err='E r'}}"),
            Arr({Int(1), Arr({Int(2), Arr({Int(3), Simple("x")})}), Err("E r")}));
  // RESP3 shapes fall back to RESP2 for a RESP2 client.
  EXPECT_EQ(eval("return {map={a=1}}"), Arr({Bulk("a"), Int(1)}));
  EXPECT_EQ(eval("return {set={a=true}}"), Arr({Bulk("a")}));
  EXPECT_EQ(eval("return {double=1.5}"), Bulk("1.5"));
  EXPECT_EQ(eval("return {big_number='123'}"), Bulk("123"));
  EXPECT_EQ(eval("return {verbatim_string={format='txt', string='abc'}}"), Bulk("abc"));
}

TEST_F(KvScript, LuaToResp3) {
  kv.protocol = net::Protocol::kResp3;
  EXPECT_EQ(eval("return {map={a=1}}"), "%1\r\n$1\r\na\r\n:1\r\n");
  EXPECT_EQ(eval("return {set={a=true}}"), "~1\r\n$1\r\na\r\n");
  EXPECT_EQ(eval("return {double=1.5}"), ",1.5\r\n");
  EXPECT_EQ(eval("return {big_number='123'}"), "(123\r\n");
  EXPECT_EQ(eval("return {verbatim_string={format='txt', string='abc'}}"), "=7\r\ntxt:abc\r\n");
  // Booleans follow the script's protocol (redis.setresp), not the client's.
  EXPECT_EQ(eval("return true"), ":1\r\n");
  EXPECT_EQ(eval("return false"), "_\r\n");
  EXPECT_EQ(eval("return nil"), "_\r\n");
  EXPECT_EQ(eval("redis.setresp(3) return {true, false}"), "*2\r\n#t\r\n#f\r\n");
}

TEST_F(KvScript, RespToLua) {
  ASSERT_EQ(kv({"HSET", "h", "f", "v"}), Int(1));
  ASSERT_EQ(kv({"SADD", "s", "a"}), Int(1));
  EXPECT_EQ(eval("local r = redis.call('set', 'a', 'b') return type(r) .. ':' .. r.ok"),
            Bulk("table:OK"));
  EXPECT_EQ(eval("local r = redis.call('get', 'nokey') return {type(r), tostring(r)}"),
            Arr({Bulk("boolean"), Bulk("false")}));
  EXPECT_EQ(eval("return type(redis.call('incr', 'n'))"), Bulk("number"));
  EXPECT_EQ(eval("return redis.call('hgetall', 'h')"), Arr({Bulk("f"), Bulk("v")}));
  EXPECT_EQ(eval("redis.setresp(3) local r = redis.call('hgetall', 'h') return r.map.f"),
            Bulk("v"));
  EXPECT_EQ(eval("redis.setresp(3) local r = redis.call('smembers', 's') return {r.set.a}"),
            Arr({Int(1)}));
  EXPECT_EQ(eval("redis.setresp(3) return {type(redis.call('get', 'nokey'))}"), Arr({Bulk("nil")}));
  // A map returned as is: a RESP3 client gets a map.
  kv.protocol = net::Protocol::kResp3;
  EXPECT_EQ(eval("redis.setresp(3) return redis.call('hgetall', 'h')"),
            "%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
  EXPECT_EQ(eval("return redis.call('hgetall', 'h')"), "*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
}

TEST_F(KvScript, KeysArgvAndNumbers) {
  EXPECT_EQ(eval("return {KEYS[1], KEYS[2], ARGV[1], ARGV[2]}", {"2", "k1", "k2", "a1", "a2"}),
            Arr({Bulk("k1"), Bulk("k2"), Bulk("a1"), Bulk("a2")}));
  EXPECT_EQ(eval("return #KEYS .. ':' .. #ARGV", {"2", "a", "b", "c"}), Bulk("2:1"));
  // Numbers passed to redis.call print as Redis 7.0 prints them (%.17g).
  EXPECT_EQ(eval("return redis.call('set', 'n', 3.5)"), Ok());
  EXPECT_EQ(kv({"GET", "n"}), Bulk("3.5"));
  EXPECT_EQ(eval("redis.call('set', 'n', 0.1) return redis.call('get', 'n')"),
            Bulk("0.10000000000000001"));
  EXPECT_EQ(eval("redis.call('set', 'n', 1500) return redis.call('get', 'n')"), Bulk("1500"));
}

TEST_F(KvScript, NumkeysErrors) {
  EXPECT_EQ(eval("return 1", {"-1"}), Err("ERR Number of keys can't be negative"));
  EXPECT_EQ(eval("return 1", {"2", "a"}),
            Err("ERR Number of keys can't be greater than number of args"));
  EXPECT_EQ(eval("return 1", {"x"}), Err(kErrNotInteger));
  EXPECT_EQ(eval("return 1", {"01"}), Err(kErrNotInteger));
  EXPECT_EQ(kv({"EVAL", "return 1"}), Err("ERR wrong number of arguments for 'eval' command"));
  EXPECT_EQ(kv({"EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "-1"}),
            Err("ERR Number of keys can't be negative"));
}

TEST_F(KvScript, MovableKeys) {
  const CommandSpec* eval_spec = find_command("eval");
  ASSERT_NE(eval_spec, nullptr);
  std::vector<std::string_view> args{"EVAL", "return 1", "2", "k1", "k2", "a"};
  EXPECT_EQ(command_keys(*eval_spec, args), (std::vector<size_t>{3, 4}));
  args = {"EVALSHA", "x", "0", "a"};
  EXPECT_TRUE(command_keys(*find_command("evalsha"), args).empty());
  args = {"EVAL_RO", "x", "5", "a"};  // garbage: no keys (the handler answers)
  EXPECT_TRUE(command_keys(*find_command("eval_ro"), args).empty());
  EXPECT_TRUE(find_command("eval")->is_write());
  EXPECT_TRUE(find_command("eval_ro")->is_readonly());
  EXPECT_TRUE(find_command("evalsha_ro")->is_readonly());
  EXPECT_TRUE(find_command("script")->is_write());
  EXPECT_NE(find_command("eval")->flags & kCmdNoScript, 0u);
}

TEST_F(KvScript, ScriptLoadEvalShaExistsFlush) {
  const std::string sha = sha1_hex("return 1");
  EXPECT_EQ(kv({"EVALSHA", sha, "0"}), Err("NOSCRIPT No matching script. Please use EVAL."));
  EXPECT_EQ(kv({"SCRIPT", "LOAD", "return 1"}), Bulk(sha));
  EXPECT_EQ(kv({"EVALSHA", sha, "0"}), Int(1));
  std::string upper = sha;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(kv({"EVALSHA", upper, "0"}), Int(1));
  EXPECT_EQ(kv({"EVALSHA_RO", sha, "0"}), Int(1));
  EXPECT_EQ(kv({"EVALSHA", "fff", "0"}), Err("NOSCRIPT No matching script. Please use EVAL."));
  EXPECT_EQ(kv({"SCRIPT", "EXISTS", sha, "ffffffffffffffffffffffffffffffffffffffff", upper}),
            Arr({Int(1), Int(0), Int(1)}));
  // EVAL registers its script.
  const std::string sha2 = sha1_hex("return 2");
  EXPECT_EQ(eval("return 2"), Int(2));
  EXPECT_EQ(kv({"EVALSHA", sha2, "0"}), Int(2));
  // Script records are not keys.
  EXPECT_EQ(kv({"DBSIZE"}), Int(0));
  EXPECT_EQ(kv({"KEYS", "*"}), Arr({}));
  EXPECT_EQ(kv({"SCAN", "0"}), Arr({Bulk("0"), Arr({})}));
  EXPECT_EQ(kv({"RANDOMKEY"}), Nil());

  // FLUSHALL keeps the scripts, as in Redis.
  ASSERT_EQ(kv({"SET", "k", "v"}), Ok());
  EXPECT_EQ(kv({"FLUSHALL"}), Ok());
  EXPECT_EQ(kv({"EVALSHA", sha, "0"}), Int(1));

  EXPECT_EQ(kv({"SCRIPT", "FLUSH", "x"}), Err("ERR SCRIPT FLUSH only support SYNC|ASYNC option"));
  EXPECT_EQ(kv({"SCRIPT", "FLUSH", "ASYNC"}), Ok());
  EXPECT_EQ(kv({"EVALSHA", sha, "0"}), Err("NOSCRIPT No matching script. Please use EVAL."));
  EXPECT_EQ(kv({"SCRIPT", "EXISTS", sha, sha2}), Arr({Int(0), Int(0)}));
  EXPECT_EQ(kv({"SCRIPT", "FLUSH"}), Ok());
  EXPECT_OK(kv.sm().TEST_check_invariants());
}

TEST_F(KvScript, ScriptSubcommandErrors) {
  EXPECT_EQ(kv({"SCRIPT", "LOAD", "return 'x"}),
            Err("ERR Error compiling script (new function): user_script:1: unfinished string "
                "near '<eof>'"));
  EXPECT_EQ(kv({"SCRIPT", "LOAD"}), Err("ERR wrong number of arguments for 'script|load' command"));
  EXPECT_EQ(kv({"SCRIPT", "EXISTS"}),
            Err("ERR wrong number of arguments for 'script|exists' command"));
  EXPECT_EQ(kv({"SCRIPT", "bogus"}), Err("ERR unknown subcommand 'bogus'. Try SCRIPT HELP."));
  EXPECT_EQ(kv({"SCRIPT", "KILL"}), Err("NOTBUSY No scripts in execution right now."));
  EXPECT_EQ(kv({"SCRIPT"}), Err("ERR wrong number of arguments for 'script' command"));
  EXPECT_NE(kv({"SCRIPT", "HELP"}).find("LOAD <script>"), std::string::npos);
  // A script that does not compile is not stored.
  EXPECT_EQ(kv({"SCRIPT", "EXISTS", sha1_hex("return 'x")}), Arr({Int(0)}));
  EXPECT_EQ(eval("return 'x"),
            Err("ERR Error compiling script (new function): user_script:1: unfinished string "
                "near '<eof>'"));
}

TEST_F(KvScript, CacheSurvivesRestartAndSnapshot) {
  const std::string sha = sha1_hex(kLockRelease);
  EXPECT_EQ(kv({"SCRIPT", "LOAD", kLockRelease}), Bulk(sha));
  kv.reopen();
  EXPECT_EQ(kv({"SET", "lock", "tok"}), Ok());
  EXPECT_EQ(kv({"EVALSHA", sha, "1", "lock", "tok"}), Int(1));
  EXPECT_EQ(kv({"GET", "lock"}), Nil());

  // A replica restored from a snapshot knows the script too.
  auto snap = kv.sm().snapshot();
  ASSERT_TRUE(snap.is_ok());
  KvHarness other;
  ASSERT_OK(other.sm().restore(*snap.value()));
  EXPECT_EQ(other({"SCRIPT", "EXISTS", sha}), Arr({Int(1)}));
}

TEST_F(KvScript, RedisPyLockScripts) {
  const std::string release = sha1_hex(kLockRelease);
  const std::string extend = sha1_hex(kLockExtend);
  const std::string reacquire = sha1_hex(kLockReacquire);
  // redis-py: SCRIPT LOAD, then EVALSHA (EVAL on NOSCRIPT).
  EXPECT_EQ(kv({"EVALSHA", release, "1", "lock", "tok"}),
            Err("NOSCRIPT No matching script. Please use EVAL."));
  EXPECT_EQ(kv({"SCRIPT", "LOAD", kLockRelease}), Bulk(release));
  EXPECT_EQ(kv({"SCRIPT", "LOAD", kLockExtend}), Bulk(extend));
  EXPECT_EQ(kv({"SCRIPT", "LOAD", kLockReacquire}), Bulk(reacquire));

  // Acquire: SET NX PX.
  EXPECT_EQ(kv({"SET", "lock", "tok", "NX", "PX", "10000"}), Ok());
  EXPECT_EQ(kv({"SET", "lock", "other", "NX", "PX", "10000"}), Nil());
  // Extend by 5000 ms (added to the 10000 left).
  kv.advance(1000);
  EXPECT_EQ(kv({"EVALSHA", extend, "1", "lock", "tok", "5000", "0"}), Int(1));
  EXPECT_EQ(kv({"PTTL", "lock"}), Int(14000));
  // Replace the TTL with 3000 ms.
  EXPECT_EQ(kv({"EVALSHA", extend, "1", "lock", "tok", "3000", "1"}), Int(1));
  EXPECT_EQ(kv({"PTTL", "lock"}), Int(3000));
  // Not the owner.
  EXPECT_EQ(kv({"EVALSHA", extend, "1", "lock", "bad", "3000", "1"}), Int(0));
  EXPECT_EQ(kv({"EVALSHA", reacquire, "1", "lock", "bad", "9000"}), Int(0));
  // Reacquire: a fresh TTL.
  EXPECT_EQ(kv({"EVALSHA", reacquire, "1", "lock", "tok", "9000"}), Int(1));
  EXPECT_EQ(kv({"PTTL", "lock"}), Int(9000));
  // Release: only by the owner.
  EXPECT_EQ(kv({"EVALSHA", release, "1", "lock", "bad"}), Int(0));
  EXPECT_EQ(kv({"EXISTS", "lock"}), Int(1));
  EXPECT_EQ(kv({"EVALSHA", release, "1", "lock", "tok"}), Int(1));
  EXPECT_EQ(kv({"EXISTS", "lock"}), Int(0));
  EXPECT_EQ(kv({"EVALSHA", release, "1", "lock", "tok"}), Int(0));
  // Extend a lock without TTL: pttl -1 -> 0. After expiry: gone -> 0.
  EXPECT_EQ(kv({"SET", "lock", "tok"}), Ok());
  EXPECT_EQ(kv({"EVALSHA", extend, "1", "lock", "tok", "5000", "0"}), Int(0));
  EXPECT_EQ(kv({"SET", "lock", "tok", "PX", "100"}), Ok());
  kv.advance(100);
  EXPECT_EQ(kv({"EVALSHA", extend, "1", "lock", "tok", "5000", "0"}), Int(0));
  // And through EVAL (redis-py's fallback).
  EXPECT_EQ(kv({"SET", "lock", "tok", "PX", "100"}), Ok());
  EXPECT_EQ(eval(kLockRelease, {"1", "lock", "tok"}), Int(1));
  EXPECT_OK(kv.sm().TEST_check_invariants());
}

TEST_F(KvScript, RedisCallErrors) {
  ASSERT_EQ(kv({"SET", "s", "abc"}), Ok());
  std::string body = "return redis.call('incr', KEYS[1])";
  EXPECT_EQ(eval(body, {"1", "s"}), ScriptErr(kErrNotInteger, body, 1));
  EXPECT_EQ(eval("return redis.pcall('incr', KEYS[1])", {"1", "s"}), Err(kErrNotInteger));
  EXPECT_EQ(eval("local r = redis.pcall('incr', KEYS[1]); return r['err']", {"1", "s"}),
            Bulk(kErrNotInteger));
  body = "return redis.call('lpush', KEYS[1], 'x')";
  EXPECT_EQ(eval(body, {"1", "s"}), ScriptErr(kErrWrongType, body, 1));
  body = "return redis.call('nosuch')";
  EXPECT_EQ(eval(body), ScriptErr("ERR Unknown Redis command called from script", body, 1));
  EXPECT_EQ(eval("return redis.pcall('nosuch')"),
            Err("ERR Unknown Redis command called from script"));
  body = "return redis.call('get')";
  EXPECT_EQ(eval(body),
            ScriptErr("ERR Wrong number of args calling Redis command from script", body, 1));
  body = "return redis.call()";
  EXPECT_EQ(eval(body),
            ScriptErr("ERR Please specify at least one argument for this redis lib call", body, 1));
  body = "return redis.call('get', {})";
  EXPECT_EQ(eval(body),
            ScriptErr("ERR Lua redis lib command arguments must be strings or integers", body, 1));
  for (const char* call :
       {"'eval', 'return 1', 0", "'evalsha', 'x', 0", "'script', 'flush'", "'multi'",
        "'client', 'id'", "'config', 'get', 'x'", "'watch', 'k'", "'info'"}) {
    body = std::string("return redis.call(") + call + ")";
    EXPECT_EQ(eval(body), ScriptErr("ERR This Redis command is not allowed from script", body, 1))
        << call;
  }
  // error() and error tables, with the line.
  body = "local x = 1\n\nerror('boom')";
  EXPECT_EQ(eval(body), ScriptErr("ERR user_script:3: boom", body, 3));
  body = "error({err='X boom'})";
  EXPECT_EQ(eval(body), ScriptErr("X boom", body, 1));
  body = "error(12)";
  EXPECT_EQ(eval(body), ScriptErr("ERR user_script:1: 12", body, 1));
  body = "return redis.setresp(4)";
  EXPECT_EQ(eval(body), ScriptErr("ERR RESP version must be 2 or 3.", body, 1));
  // Lua's pcall catches a Redis error as its text (Redis 7.0).
  EXPECT_EQ(eval("local ok, e = pcall(redis.call, 'nosuch') return {tostring(ok), e}"),
            Arr({Bulk("false"), Bulk("ERR Unknown Redis command called from script")}));
  EXPECT_EQ(eval("local ok, e = pcall(error, {err='X boom'}) return e"), Bulk("X boom"));
  EXPECT_EQ(eval("local ok, e = pcall(error, {foo='X'}) return e.foo"), Bulk("X"));
  EXPECT_EQ(eval("return {pcall(function(a, b) return a + b, 'x' end, 1, 2)}"),
            Arr({Int(1), Int(3), Bulk("x")}));
  // Local commands a script may use.
  EXPECT_EQ(eval("return redis.call('ping')"), Simple("PONG"));
  EXPECT_EQ(eval("return redis.call('echo', 'x')"), Bulk("x"));
}

TEST_F(KvScript, WritesBeforeAnErrorStay) {
  const std::string body = "redis.call('set', 'a', '1') error('late')";
  EXPECT_EQ(eval(body), ScriptErr("ERR user_script:1: late", body, 1));
  EXPECT_EQ(kv({"GET", "a"}), Bulk("1"));
}

TEST_F(KvScript, ReadOnlyScripts) {
  ASSERT_EQ(kv({"SET", "a", "v"}), Ok());
  std::string body = "return redis.call('get', KEYS[1])";
  EXPECT_EQ(kv({"EVAL_RO", body, "1", "a"}), Bulk("v"));
  body = "return redis.call('set','a','b')";
  EXPECT_EQ(kv({"EVAL_RO", body, "0"}),
            ScriptErr("ERR Write commands are not allowed from read-only scripts.", body, 1));
  EXPECT_EQ(kv({"EVAL_RO", "return redis.pcall('set','a','b')", "0"}),
            Err("ERR Write commands are not allowed from read-only scripts."));
  // EVAL_RO does not register its script (the read path writes nothing).
  EXPECT_EQ(kv({"SCRIPT", "EXISTS", sha1_hex(body)}), Arr({Int(0)}));
  // A shebang's no-writes flag makes EVAL read-only too.
  body = "#!lua flags=no-writes\nreturn redis.call('set','a','b')";
  EXPECT_EQ(eval(body),
            ScriptErr("ERR Write commands are not allowed from read-only scripts.", body, 2));
  EXPECT_EQ(kv({"GET", "a"}), Bulk("v"));
  // EVALSHA_RO of a script with writes fails the same way.
  ASSERT_EQ(kv({"SCRIPT", "LOAD", "return redis.call('del', KEYS[1])"}),
            Bulk(sha1_hex("return redis.call('del', KEYS[1])")));
  EXPECT_EQ(kv({"EVALSHA_RO", sha1_hex("return redis.call('del', KEYS[1])"), "1", "a"}),
            ScriptErr("ERR Write commands are not allowed from read-only scripts.",
                      "return redis.call('del', KEYS[1])", 1));
  EXPECT_EQ(kv({"GET", "a"}), Bulk("v"));
}

TEST_F(KvScript, Shebang) {
  EXPECT_EQ(eval("#!lua\nreturn 1"), Int(1));
  EXPECT_EQ(eval("#!lua flags=no-writes,allow-oom\nreturn 'x'"), Bulk("x"));
  EXPECT_EQ(eval("#!lua  flags=no-writes  \nreturn 3"), Int(3));
  EXPECT_EQ(eval("#!lua flags=bogus\nreturn 1"),
            Err("ERR Unexpected flag in script shebang: bogus"));
  EXPECT_EQ(eval("#!luax\nreturn 1"), Err("ERR Unexpected engine in script shebang: #!luax"));
  EXPECT_EQ(eval("#!lua name=x\nreturn 1"), Err("ERR Unknown lua shebang option: name=x"));
  EXPECT_EQ(eval("#!lua flags=no-writes"), Err("ERR Invalid script shebang"));
  const std::string body = "#!lua\n\nerror('x')";
  EXPECT_EQ(eval(body), ScriptErr("ERR user_script:3: x", body, 3));
}

TEST_F(KvScript, GlobalsAreProtected) {
  std::string body = "x = 1";
  EXPECT_EQ(eval(body),
            ScriptErr("ERR user_script:1: Attempt to modify a readonly table", body, 1));
  body = "return x";
  EXPECT_EQ(
      eval(body),
      ScriptErr("ERR user_script:1: Script attempted to access nonexistent global variable 'x'",
                body, 1));
  body = "function f() end";
  EXPECT_EQ(eval(body),
            ScriptErr("ERR user_script:1: Attempt to modify a readonly table", body, 1));
  EXPECT_EQ(eval("local function f() return 5 end return f()"), Int(5));
  EXPECT_EQ(eval("KEYS[1] = 'x' return KEYS[1]", {"1", "a"}), Bulk("x"));
}

TEST_F(KvScript, Sandbox) {
  for (const char* name : {"os", "io", "debug", "require", "loadfile", "dofile", "print",
                           "newproxy", "getfenv", "setfenv", "package", "module"}) {
    const std::string body = std::string("return ") + name;
    EXPECT_EQ(eval(body),
              ScriptErr(std::string("ERR user_script:1: Script attempted to access nonexistent "
                                    "global variable '") +
                            name + "'",
                        body, 1))
        << name;
  }
  // What Redis 7.0 offers.
  EXPECT_EQ(eval("return {type(cjson.encode), type(bit.band), type(coroutine.create), "
                 "type(collectgarbage), _VERSION}"),
            Arr({Bulk("function"), Bulk("function"), Bulk("function"), Bulk("function"),
                 Bulk("Lua 5.1")}));
  EXPECT_EQ(eval("return cjson.encode({1,2,'x'})"), Bulk("[1,2,\"x\"]"));
  EXPECT_EQ(eval("return cjson.decode('{\"a\":[1,2]}').a[2]"), Int(2));
  EXPECT_EQ(eval("return bit.band(7, 3)"), Int(3));
  EXPECT_EQ(eval("return loadstring('return 7')()"), Int(7));
  // No bytecode: loadstring and load refuse binary chunks.
  EXPECT_EQ(eval("return loadstring(string.dump(function() return 1 end))"), Nil());
  EXPECT_EQ(eval("local s = string.dump(function() return 1 end) local done = false "
                 "return load(function() if done then return nil end done = true return s end)"),
            Nil());
  EXPECT_EQ(eval("return string.char(27) .. 'Lua'", {"0"}), Bulk("\x1bLua"));
  EXPECT_EQ(eval("\x1bLuaQ"),
            Err("ERR Error compiling script (new function): user_script:1: unexpected symbol "
                "near '<\\27>'"));
  // No addresses: tostring numbers objects per run.
  EXPECT_EQ(
      eval("return {tostring({}), tostring(tostring), tostring({})}"),
      Arr({Bulk("table: 0x00000001"), Bulk("function: 0x00000002"), Bulk("table: 0x00000003")}));
  EXPECT_EQ(eval("local t = {} return {tostring(t), tostring(t), tostring(1.5), tostring(nil)}"),
            Arr({Bulk("table: 0x00000001"), Bulk("table: 0x00000001"), Bulk("1.5"), Bulk("nil")}));
  EXPECT_EQ(eval("return tostring(setmetatable({}, {__tostring = function() return 'me' end}))"),
            Bulk("me"));
}

TEST_F(KvScript, Determinism) {
  // The generator restarts at every run from Redis's seed: a fresh
  // redis-server 7.0 answers 40 and 841 to its first script.
  const std::string body = "return {math.random(100), math.random(1000)}";
  EXPECT_EQ(eval(body), Arr({Int(40), Int(841)}));
  EXPECT_EQ(eval(body), Arr({Int(40), Int(841)}));
  EXPECT_EQ(eval("math.randomseed(5) return math.random(1000)"),
            eval("math.randomseed(5) return math.random(1000)"));
  // Time is the entry's stamp.
  kv.set_now(1'700'000'123'456);
  EXPECT_EQ(eval("return redis.call('time')"), Arr({Bulk("1700000123"), Bulk("456000")}));
  // Two replicas applying the same entries give the same replies.
  KvHarness other;
  for (const char* s :
       {"return {math.random(), collectgarbage('count') > 0, tostring({})}",
        "local t = {} for i = 1, 1000 do t[i] = tostring(i) end return #table.concat(t)",
        "return redis.call('incr', 'c')"}) {
    EXPECT_EQ(eval(s), other.run({"EVAL", s, "0"})) << s;
  }
}

TEST_F(KvScript, InstructionLimit) {
  KvOptions o;
  o.script_instructions_max = 100000;
  KvHarness small(o);
  const std::string err =
      "ERR Script exceeded script-instructions-max (100000 Lua instructions) script: ";
  std::string reply = small.run({"EVAL", "while true do end", "0"});
  EXPECT_EQ(reply.substr(0, 1 + err.size()), "-" + err) << reply;
  // A pcall cannot swallow the limit.
  reply = small.run({"EVAL",
                     "local n = 0 while true do pcall(function() while true do end end) "
                     "n = n + 1 end",
                     "0"});
  EXPECT_EQ(reply.substr(0, 1 + err.size()), "-" + err) << reply;
  reply = small.run({"EVAL",
                     "local co = coroutine.create(function() while true do end end) "
                     "while true do coroutine.resume(co) end",
                     "0"});
  EXPECT_EQ(reply.substr(0, 1 + err.size()), "-" + err) << reply;
  // Writes made before the limit stay (as after any error, in Redis).
  reply = small.run({"EVAL", "redis.call('set', 'k', 'v') while true do end", "0"});
  EXPECT_EQ(reply.substr(0, 1 + err.size()), "-" + err) << reply;
  EXPECT_EQ(small({"GET", "k"}), Bulk("v"));
  // Under the limit: fine.
  EXPECT_EQ(small.run({"EVAL", "local n = 0 for i = 1, 1000 do n = n + i end return n", "0"}),
            Int(500500));
}

TEST_F(KvScript, MemoryLimit) {
  KvOptions o;
  o.script_memory_bytes_max = 4 << 20;
  KvHarness small(o);
  const std::string err =
      "-ERR Script exceeded script-memory-bytes-max (4194304 bytes of Lua heap) script: ";
  std::string reply = small.run({"EVAL", "return string.rep('x', 8 * 1024 * 1024)", "0"});
  EXPECT_EQ(reply.substr(0, err.size()), err) << reply;
  reply = small.run({"EVAL", "local t = {} for i = 1, 1e7 do t[i] = i end return #t", "0"});
  EXPECT_EQ(reply.substr(0, err.size()), err) << reply;
  // A caught memory error is the script's business.
  EXPECT_EQ(
      small.run(
          {"EVAL", "local ok = pcall(string.rep, 'x', 8 * 1024 * 1024) return ok and 1 or 0", "0"}),
      Int(0));
  EXPECT_EQ(small.run({"EVAL", "return #string.rep('x', 1024 * 1024)", "0"}), Int(1 << 20));
}

TEST_F(KvScript, BodyAndReplyLimits) {
  KvOptions o;
  o.script_bytes_max = 16;
  o.script_reply_bytes_max = 1000;
  KvHarness small(o);
  EXPECT_EQ(small({"EVAL", "return 'aaaaaaaaaaaaaaa'", "0"}),
            Err("ERR script is longer than script-bytes-max (16 bytes)"));
  EXPECT_EQ(small({"SCRIPT", "LOAD", "return 'aaaaaaaaaaaaaaa'"}),
            Err("ERR script is longer than script-bytes-max (16 bytes)"));
  o.script_bytes_max = 1000;
  KvHarness small2(o);
  const std::string body =
      "local s = string.rep('x', 100) local t = {} for i = 1, 100 do t[i] = s end return t";
  EXPECT_EQ(small2.run({"EVAL", body, "0"}).substr(0, 49),
            "-ERR Script reply exceeds script-reply-bytes-max ");
  // A table that contains itself.
  const std::string self = "local t = {} t[1] = t return t";
  EXPECT_EQ(small2.run({"EVAL", self, "0"}).substr(0, 29), "-ERR reached lua stack limit ");
}

TEST(KvScriptEngine, CacheIsBounded) {
  KvOptions o;
  o.script_cache_entries_max = 2;
  ScriptEngine engine(o);
  std::string error;
  for (const char* body : {"return 1", "return 2", "return 3"}) {
    ASSERT_TRUE(engine.compile(sha1_hex(body), body, &error)) << error;
  }
  EXPECT_EQ(engine.TEST_cached_entries(), 2u);
  EXPECT_EQ(engine.TEST_compilations(), 3u);
  ASSERT_TRUE(engine.compile(sha1_hex("return 3"), "return 3", &error));
  EXPECT_EQ(engine.TEST_compilations(), 3u);  // a hit
  ASSERT_TRUE(engine.compile(sha1_hex("return 1"), "return 1", &error));
  EXPECT_EQ(engine.TEST_compilations(), 4u);  // evicted, recompiled
  EXPECT_FALSE(engine.compile(sha1_hex("return ("), "return (", &error));
  EXPECT_EQ(error,
            "ERR Error compiling script (new function): user_script:1: unexpected symbol near "
            "'<eof>'");
  engine.clear_cache();
  EXPECT_EQ(engine.TEST_cached_entries(), 0u);
}

TEST_F(KvScript, EvictedScriptsStillRun) {
  KvOptions o;
  o.script_cache_entries_max = 1;
  KvHarness small(o);
  const std::string a = sha1_hex("return 'a'"), b = sha1_hex("return 'b'");
  ASSERT_EQ(small({"SCRIPT", "LOAD", "return 'a'"}), Bulk(a));
  ASSERT_EQ(small({"SCRIPT", "LOAD", "return 'b'"}), Bulk(b));
  for (int i = 0; i < 3; i++) {
    EXPECT_EQ(small({"EVALSHA", a, "0"}), Bulk("a"));
    EXPECT_EQ(small({"EVALSHA", b, "0"}), Bulk("b"));
  }
}

}  // namespace
}  // namespace qkv::kv
