// The Lua 5.1 engine behind EVAL (script.h). Redis 7.0's scripting API and
// conversions, on a fresh, sandboxed, limited Lua state per run.
//
// Lua reports errors with longjmp, which skips C++ destructors: every
// function here that calls a Lua API that can raise (anything that
// allocates, lua_error, luaL_error) keeps no object with a destructor in
// its frame. Scratch buffers live in the Run, which outlives the Lua state.
#include <lua.hpp>  // lua.h, lualib.h, lauxlib.h (Lua 5.1, a C library)
extern "C" {
#include <lua-bitop.h>  // luaopen_bit
#include <lua-cjson.h>  // luaopen_cjson
}

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kv/commands.h"
#include "kv/handlers.h"
#include "kv/script.h"
#include "kv/sha1.h"
#include "net/resp.h"

namespace qkv::kv {

namespace {

// The chunk name: Lua's messages then read "user_script:3: ...", as Redis's.
constexpr const char* kChunkName = "@user_script";
// Instructions between two calls of the count hook.
constexpr int kHookStep = 1000;
// Extra heap granted after a failed run, to turn the error into text.
constexpr uint64_t kErrorHeadroomBytes = 64 << 10;
// The deepest reply a script may return (a follower relaying it parses it
// with net::ReplyLimits, whose depth_max this is).
const uint64_t kReplyDepthMax = net::ReplyLimits{}.depth_max;
// What redis.REDIS_VERSION says (the server's INFO says the same).
constexpr const char* kRedisVersion = "7.0.0";
constexpr int kRedisVersionNum = 0x070000;

// Redis's errors, without the "script: ..." suffix a raised error gets.
constexpr const char* kErrNoArgs =
    "ERR Please specify at least one argument for this redis lib call";
constexpr const char* kErrArgType =
    "ERR Lua redis lib command arguments must be strings or integers";
constexpr const char* kErrUnknownCommand = "ERR Unknown Redis command called from script";
constexpr const char* kErrWrongArgs = "ERR Wrong number of args calling Redis command from script";
constexpr const char* kErrNotAllowed = "ERR This Redis command is not allowed from script";
constexpr const char* kErrReadOnly = "ERR Write commands are not allowed from read-only scripts.";
constexpr const char* kErrStackLimit = "ERR reached lua stack limit";

// rand48 (POSIX drand48's generator), as Redis's math.random uses it.
struct Rand48 {
  static constexpr uint64_t kInitial = 0x1234ABCD330E;  // rand48's state before any seed
  uint64_t x = kInitial;
  void seed(int32_t s) { x = (static_cast<uint64_t>(static_cast<uint32_t>(s)) << 16) | 0x330E; }
  int32_t next() {
    x = (0x5DEECE66Dull * x + 0xB) & ((1ull << 48) - 1);
    return static_cast<int32_t>(x >> 17);
  }
};

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A Lua number as a reply integer: C's (long long) cast of Redis, with
// what x86 gives for the undefined cases (NaN, out of range): INT64_MIN.
int64_t number_to_int64(lua_Number n) {
  if (!(n >= -9223372036854775808.0 && n < 9223372036854775808.0)) return INT64_MIN;
  return static_cast<int64_t>(n);
}

}  // namespace

struct ScriptEngine::Run {
  CommandContext* ctx = nullptr;
  std::string_view sha;
  std::string_view bytecode;
  std::span<const std::string_view> keys, argv;
  bool read_only = false;
  int resp = 2;  // redis.setresp()

  uint64_t memory_bytes = 0;
  uint64_t memory_bytes_max = 0;
  bool memory_exceeded = false;
  uint64_t instructions = 0;
  uint64_t instructions_max = 0;
  bool instructions_exceeded = false;

  Rand48 rand;
  uint64_t calls = 0;       // redis.call()s so far (each gets its own randomness)
  uint64_t object_ids = 0;  // tostring()'s numbers

  // redis.call's scratch.
  std::vector<std::string> call_args;
  std::vector<std::string_view> call_views;
  std::string call_reply;
  const char* call_error = nullptr;
  std::string call_error_text;
  net::ReplyParser parser;

  // The outcome.
  std::string reply;            // the script's reply, in the client's protocol
  std::string reply_error;      // a failure writing the reply (its final text)
  bool raised = false;          // the script failed
  bool error_is_table = false;  // error({err=...}) or a failed redis.call
  std::string error;            // the raised error's text
  int error_line = -1;          // where (user_script's line), -1 if unknown
  int status = 0;               // lua_cpcall's
};

namespace {

using Run = ScriptEngine::Run;

Run* run_of(lua_State* L) {
  void* ud = nullptr;
  lua_getallocf(L, &ud);
  return static_cast<Run*>(ud);
}

// The allocator: counts the heap, refuses growth past the limit. Lua turns
// a refusal into a "not enough memory" error (LUA_ERRMEM).
void* limited_alloc(void* ud, void* ptr, size_t osize, size_t nsize) {
  auto* run = static_cast<Run*>(ud);
  const size_t old = ptr == nullptr ? 0 : osize;
  if (nsize == 0) {
    std::free(ptr);
    run->memory_bytes -= old;
    return nullptr;
  }
  if (nsize > old && run->memory_bytes - old + nsize > run->memory_bytes_max) {
    run->memory_exceeded = true;
    return nullptr;
  }
  void* p = std::realloc(ptr, nsize);
  if (p == nullptr) return nullptr;
  run->memory_bytes = run->memory_bytes - old + nsize;
  return p;
}

void count_hook(lua_State* L, lua_Debug* /*ar*/) {
  Run* run = run_of(L);
  run->instructions += kHookStep;
  if (run->instructions_exceeded || run->instructions > run->instructions_max) {
    // From now on every instruction raises again: a pcall in the script
    // cannot swallow the limit.
    run->instructions_exceeded = true;
    lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
    luaL_error(L, "Script exceeded script-instructions-max");
  }
}

// Records the line of user_script where the error was raised; returns the
// error object unchanged.
int message_handler(lua_State* L) {
  Run* run = run_of(L);
  lua_Debug ar;
  for (int level = 0; lua_getstack(L, level, &ar) != 0; level++) {
    if (lua_getinfo(L, "Sl", &ar) != 0 && ar.currentline > 0 &&
        std::strcmp(ar.source, kChunkName) == 0) {
      run->error_line = ar.currentline;
      break;
    }
  }
  return 1;
}

// --- Values ------------------------------------------------------------------

void push_error_table(lua_State* L, const char* msg, size_t len) {
  lua_createtable(L, 0, 1);
  lua_pushlstring(L, msg, len);
  lua_setfield(L, -2, "err");
}

// {name = s}
void push_field_table(lua_State* L, const char* name, const std::string& s) {
  lua_createtable(L, 0, 1);
  lua_pushlstring(L, s.data(), s.size());
  lua_setfield(L, -2, name);
}

// A RESP value as Redis 7 gives it to Lua (RESP2 and RESP3 conversions).
void push_value(lua_State* L, const net::Value& v) {
  if (lua_checkstack(L, 4) == 0) luaL_error(L, "reached lua stack limit");
  using net::Type;
  switch (v.type) {
    case Type::kSimpleString:
      push_field_table(L, "ok", v.str);
      return;
    case Type::kError:
    case Type::kBlobError:
      push_error_table(L, v.str.data(), v.str.size());
      return;
    case Type::kInteger:
      lua_pushnumber(L, static_cast<lua_Number>(v.integer));
      return;
    case Type::kBulkString:
      lua_pushlstring(L, v.str.data(), v.str.size());
      return;
    case Type::kNullBulk:
    case Type::kNullArray:
      lua_pushboolean(L, 0);
      return;
    case Type::kNull:
      lua_pushnil(L);
      return;
    case Type::kArray:
    case Type::kPush:
      lua_createtable(L, static_cast<int>(v.elements.size()), 0);
      for (size_t i = 0; i < v.elements.size(); i++) {
        push_value(L, v.elements[i]);
        lua_rawseti(L, -2, static_cast<int>(i + 1));
      }
      return;
    case Type::kSet:
      lua_createtable(L, 0, 1);
      lua_createtable(L, 0, static_cast<int>(v.elements.size()));
      for (const net::Value& e : v.elements) {
        push_value(L, e);
        lua_pushboolean(L, 1);
        lua_rawset(L, -3);
      }
      lua_setfield(L, -2, "set");
      return;
    case Type::kMap:
      lua_createtable(L, 0, 1);
      lua_createtable(L, 0, static_cast<int>(v.elements.size() / 2));
      for (size_t i = 0; i + 1 < v.elements.size(); i += 2) {
        push_value(L, v.elements[i]);
        push_value(L, v.elements[i + 1]);
        lua_rawset(L, -3);
      }
      lua_setfield(L, -2, "map");
      return;
    case Type::kDouble:
      lua_createtable(L, 0, 1);
      lua_pushnumber(L, v.real);
      lua_setfield(L, -2, "double");
      return;
    case Type::kBoolean:
      lua_pushboolean(L, v.integer != 0);
      return;
    case Type::kBigNumber:
      push_field_table(L, "big_number", v.str);
      return;
    case Type::kVerbatim: {
      lua_createtable(L, 0, 1);
      lua_createtable(L, 0, 2);
      const std::string_view format = v.verbatim_format();
      const std::string_view text = v.verbatim_text();
      lua_pushlstring(L, format.data(), format.size());
      lua_setfield(L, -2, "format");
      lua_pushlstring(L, text.data(), text.size());
      lua_setfield(L, -2, "string");
      lua_setfield(L, -2, "verbatim_string");
      return;
    }
  }
  lua_pushnil(L);
}

// Raises a failure of the reply's conversion (its text is final).
[[noreturn]] void reply_failed(lua_State* L, Run* run, const char* text) {
  run->reply_error = text;
  lua_pushstring(L, text);
  lua_error(L);
  std::abort();  // lua_error does not return
}

// t[name] (raw) pushed; returns its type.
int raw_field(lua_State* L, int t, const char* name) {
  lua_pushstring(L, name);
  lua_rawget(L, t < 0 ? t - 1 : t);
  return lua_type(L, -1);
}

// Counts the pairs of the table at `t` (absolute index).
int count_pairs(lua_State* L, int t) {
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, t) != 0) {
    lua_pop(L, 1);
    n++;
  }
  return n;
}

// The Lua value at the top of the stack as a reply (Redis 7's Lua to RESP
// conversion); pops it.
void write_value(lua_State* L, Run* run, net::ReplyWriter& w, uint64_t depth) {
  if (depth > kReplyDepthMax || lua_checkstack(L, 4) == 0) reply_failed(L, run, kErrStackLimit);
  if (w.out()->size() > run->ctx->options.script_reply_bytes_max) {
    reply_failed(L, run, "ERR Script reply exceeds script-reply-bytes-max");
  }
  const int t = lua_gettop(L);
  size_t len = 0;
  switch (lua_type(L, t)) {
    case LUA_TSTRING: {
      const char* s = lua_tolstring(L, t, &len);
      w.bulk(std::string_view(s, len));
      break;
    }
    case LUA_TBOOLEAN:
      if (run->resp == 2) {
        if (lua_toboolean(L, t) != 0) {
          w.integer(1);
        } else {
          w.null();
        }
      } else {
        w.boolean(lua_toboolean(L, t) != 0);
      }
      break;
    case LUA_TNUMBER:
      w.integer(number_to_int64(lua_tonumber(L, t)));
      break;
    case LUA_TTABLE: {
      if (raw_field(L, t, "err") == LUA_TSTRING) {
        const char* s = lua_tolstring(L, -1, &len);
        w.error(std::string_view(s, len));
        break;
      }
      lua_pop(L, 1);
      if (raw_field(L, t, "ok") == LUA_TSTRING) {
        const char* s = lua_tolstring(L, -1, &len);
        w.simple_string(std::string_view(s, len));
        break;
      }
      lua_pop(L, 1);
      if (raw_field(L, t, "double") == LUA_TNUMBER) {
        w.double_value(lua_tonumber(L, -1));
        break;
      }
      lua_pop(L, 1);
      if (raw_field(L, t, "big_number") == LUA_TSTRING) {
        const char* s = lua_tolstring(L, -1, &len);
        w.big_number(std::string_view(s, len));
        break;
      }
      lua_pop(L, 1);
      if (raw_field(L, t, "map") == LUA_TTABLE) {
        const int m = lua_gettop(L);
        w.map(static_cast<size_t>(count_pairs(L, m)));
        lua_pushnil(L);
        while (lua_next(L, m) != 0) {
          lua_pushvalue(L, -2);  // the key, written (and popped) as a copy
          write_value(L, run, w, depth + 1);
          write_value(L, run, w, depth + 1);
        }
        break;
      }
      lua_pop(L, 1);
      if (raw_field(L, t, "set") == LUA_TTABLE) {
        const int s = lua_gettop(L);
        w.set(static_cast<size_t>(count_pairs(L, s)));
        lua_pushnil(L);
        while (lua_next(L, s) != 0) {
          lua_pop(L, 1);
          lua_pushvalue(L, -1);
          write_value(L, run, w, depth + 1);
        }
        break;
      }
      lua_pop(L, 1);
      if (raw_field(L, t, "verbatim_string") == LUA_TTABLE) {
        const int v = lua_gettop(L);
        const bool text = raw_field(L, v, "string") == LUA_TSTRING;
        const bool format = raw_field(L, v, "format") == LUA_TSTRING;
        size_t text_len = 0, format_len = 0;
        const char* text_s = text ? lua_tolstring(L, -2, &text_len) : nullptr;
        const char* format_s = format ? lua_tolstring(L, -1, &format_len) : nullptr;
        if (text && format && format_len == 3) {
          w.verbatim(std::string_view(text_s, text_len), std::string_view(format_s, format_len));
          break;
        }
        lua_pop(L, 2);
      }
      lua_pop(L, 1);
      // An array: elements 1, 2, ... up to the first nil.
      int n = 0;
      for (;;) {
        lua_rawgeti(L, t, n + 1);
        const bool end = lua_isnil(L, -1);
        lua_pop(L, 1);
        if (end) break;
        n++;
      }
      w.array(static_cast<size_t>(n));
      for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, t, i);
        write_value(L, run, w, depth + 1);
      }
      break;
    }
    default:  // nil, functions, coroutines, userdata
      w.null();
      break;
  }
  lua_settop(L, t - 1);
}

// --- redis.* -----------------------------------------------------------------

// Raises (redis.call) or returns (redis.pcall) an error table.
int call_failed(lua_State* L, bool raise, const char* msg, size_t len) {
  push_error_table(L, msg, len);
  if (raise) lua_error(L);
  return 1;
}

// Runs the command in run->call_views (C++ only: nothing here raises a Lua
// error). False with run->call_error (or call_error_text) if refused.
bool execute_call(Run* run) {
  CommandContext& ctx = *run->ctx;
  const auto args = std::span<const std::string_view>(run->call_views);
  run->call_reply.clear();
  net::ReplyWriter w(&run->call_reply,
                     run->resp == 3 ? net::Protocol::kResp3 : net::Protocol::kResp2);
  const CommandSpec* spec = find_command(args[0]);
  if (spec == nullptr) {
    // TIME is no command of the table (a client has no use for a replica's
    // clock); in a script it is the entry's stamp.
    if (ieq(args[0], "time") && args.size() == 1) {
      const int64_t now_ms = ctx.ks.now_ms();
      w.array(2);
      w.bulk(std::to_string(now_ms / 1000));
      w.bulk(std::to_string((now_ms % 1000) * 1000));
      return true;
    }
    run->call_error = kErrUnknownCommand;
    return false;
  }
  if (!arity_ok(*spec, args.size())) {
    run->call_error = kErrWrongArgs;
    return false;
  }
  // The two local commands a script may use, answered here.
  if (spec->name == "ping" || spec->name == "echo") {
    if (spec->name == "echo") {
      w.bulk(args[1]);
    } else if (args.size() == 1) {
      w.simple_string("PONG");
    } else if (args.size() == 2) {
      w.bulk(args[1]);
    } else {
      w.error(arity_error("ping"));
    }
    return true;
  }
  if (spec->handler == nullptr || spec->is_internal() ||
      (spec->flags & (kCmdNoScript | kCmdBlocking | kCmdAdmin)) != 0) {
    run->call_error = kErrNotAllowed;
    return false;
  }
  if (spec->is_write() && (run->read_only || !ctx.ks.txn().writable())) {
    run->call_error = kErrReadOnly;
    return false;
  }
  run->calls++;
  execute_command(ctx.ks, w, ctx.options, args, /*internal=*/false,
                  splitmix64(ctx.random ^ (run->calls * 0x9E3779B97F4A7C15ull)), ctx.scripts,
                  ctx.events);
  return true;
}

int redis_call_impl(lua_State* L, bool raise) {
  Run* run = run_of(L);
  const int argc = lua_gettop(L);
  if (argc == 0) return call_failed(L, raise, kErrNoArgs, std::strlen(kErrNoArgs));
  // Arguments: strings, or numbers printed as Redis 7.0 prints them (%.17g).
  if (run->call_args.size() < static_cast<size_t>(argc)) run->call_args.resize(argc);
  run->call_views.clear();
  for (int i = 1; i <= argc; i++) {
    std::string& a = run->call_args[i - 1];
    if (lua_type(L, i) == LUA_TSTRING) {
      size_t len = 0;
      const char* s = lua_tolstring(L, i, &len);
      a.assign(s, len);
    } else if (lua_type(L, i) == LUA_TNUMBER) {
      char buf[64];
      const int n =
          std::snprintf(buf, sizeof buf, "%.17g", static_cast<double>(lua_tonumber(L, i)));
      a.assign(buf, static_cast<size_t>(n));
    } else {
      return call_failed(L, raise, kErrArgType, std::strlen(kErrArgType));
    }
    run->call_views.push_back(a);
  }
  if (!execute_call(run)) {
    return call_failed(L, raise, run->call_error, std::strlen(run->call_error));
  }
  run->parser.reset();
  run->parser.feed(run->call_reply);
  if (run->parser.next() != net::Parsed::kItem) {
    // Our own handlers' replies always parse; a failure is a bug.
    run->call_error_text = "ERR unparsable reply from '" + std::string(run->call_views[0]) + "'";
    return call_failed(L, raise, run->call_error_text.data(), run->call_error_text.size());
  }
  const net::Value& v = run->parser.value();
  if (v.is_error()) return call_failed(L, raise, v.str.data(), v.str.size());
  push_value(L, v);
  return 1;
}

int redis_call(lua_State* L) { return redis_call_impl(L, /*raise=*/true); }
int redis_pcall(lua_State* L) { return redis_call_impl(L, /*raise=*/false); }

[[noreturn]] void raise_error_table(lua_State* L, const char* msg) {
  push_error_table(L, msg, std::strlen(msg));
  lua_error(L);
  std::abort();
}

// redis.error_reply(msg): {err = msg}; a leading '-' is dropped, and a
// message without an error code (no space) gets "ERR ".
int redis_error_reply(lua_State* L) {
  if (lua_gettop(L) != 1 || lua_type(L, 1) != LUA_TSTRING) {
    push_error_table(L, "ERR wrong number or type of arguments", 37);
    return 1;
  }
  size_t len = 0;
  const char* s = lua_tolstring(L, 1, &len);
  if (len > 0 && s[0] == '-') {
    s++;
    len--;
  }
  lua_createtable(L, 0, 1);
  if (std::memchr(s, ' ', len) == nullptr) {
    lua_pushliteral(L, "ERR ");
    lua_pushlstring(L, s, len);
    lua_concat(L, 2);
  } else {
    lua_pushlstring(L, s, len);
  }
  lua_setfield(L, -2, "err");
  return 1;
}

int redis_status_reply(lua_State* L) {
  if (lua_gettop(L) != 1 || lua_type(L, 1) != LUA_TSTRING) {
    push_error_table(L, "ERR wrong number or type of arguments", 37);
    return 1;
  }
  lua_createtable(L, 0, 1);
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "ok");
  return 1;
}

int redis_sha1hex(lua_State* L) {
  if (lua_gettop(L) != 1) raise_error_table(L, "ERR wrong number of arguments");
  size_t len = 0;
  const char* s = lua_isstring(L, 1) != 0 ? lua_tolstring(L, 1, &len) : "";
  const auto digest = sha1(std::string_view(s, len));
  static constexpr char kHex[] = "0123456789abcdef";
  char hex[40];
  for (size_t i = 0; i < digest.size(); i++) {
    hex[2 * i] = kHex[digest[i] >> 4];
    hex[2 * i + 1] = kHex[digest[i] & 15];
  }
  lua_pushlstring(L, hex, sizeof hex);
  return 1;
}

// redis.log(level, message ...): checked, then dropped (the state machine
// has no log; every replica would write the same line anyway).
int redis_log(lua_State* L) {
  if (lua_gettop(L) < 2) raise_error_table(L, "ERR redis.log() requires two arguments or more.");
  if (lua_type(L, 1) != LUA_TNUMBER) {
    raise_error_table(L, "ERR First argument must be a number (log level).");
  }
  const lua_Number level = lua_tonumber(L, 1);
  if (level < 0 || level > 3) raise_error_table(L, "ERR Invalid debug level.");
  return 0;
}

int redis_setresp(lua_State* L) {
  Run* run = run_of(L);
  if (lua_gettop(L) != 1) raise_error_table(L, "ERR redis.setresp() requires one argument.");
  const lua_Number v = lua_tonumber(L, 1);
  if (v != 2 && v != 3) raise_error_table(L, "ERR RESP version must be 2 or 3.");
  run->resp = static_cast<int>(v);
  return 0;
}

// redis.set_repl(flags): accepted and ignored (the Raft log replicates the
// script's effects as a whole).
int redis_set_repl(lua_State* L) {
  if (lua_gettop(L) != 1) raise_error_table(L, "ERR redis.set_repl() requires one argument.");
  const auto flags = static_cast<int64_t>(lua_tonumber(L, 1));
  if ((flags & ~int64_t{3}) != 0) {
    raise_error_table(
        L, "ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.");
  }
  return 0;
}

int redis_true(lua_State* L) {
  lua_pushboolean(L, 1);
  return 1;
}

int redis_false(lua_State* L) {
  lua_pushboolean(L, 0);
  return 1;
}

int redis_nothing(lua_State* /*L*/) { return 0; }

// redis.acl_check_cmd(command, ...): there are no ACLs, so any known
// command is allowed.
int redis_acl_check_cmd(lua_State* L) {
  if (lua_gettop(L) < 1) raise_error_table(L, kErrNoArgs);
  if (lua_type(L, 1) != LUA_TSTRING ||
      find_command(std::string_view(lua_tostring(L, 1))) == nullptr) {
    raise_error_table(L, "ERR Invalid command passed to redis.acl_check_cmd()");
  }
  lua_pushboolean(L, 1);
  return 1;
}

// --- The sandbox ---------------------------------------------------------------

int math_random(lua_State* L) {
  Run* run = run_of(L);
  constexpr int32_t kRandMax = 2147483647;  // Redis's REDIS_LRAND48_MAX
  const lua_Number r =
      static_cast<lua_Number>(run->rand.next() % kRandMax) / static_cast<lua_Number>(kRandMax);
  switch (lua_gettop(L)) {
    case 0:
      lua_pushnumber(L, r);
      break;
    case 1: {
      const int u = luaL_checkint(L, 1);
      luaL_argcheck(L, 1 <= u, 1, "interval is empty");
      lua_pushnumber(L, std::floor(r * u) + 1);
      break;
    }
    case 2: {
      const int l = luaL_checkint(L, 1);
      const int u = luaL_checkint(L, 2);
      luaL_argcheck(L, l <= u, 2, "interval is empty");
      lua_pushnumber(L, std::floor(r * (u - l + 1)) + l);
      break;
    }
    default:
      return luaL_error(L, "wrong number of arguments");
  }
  return 1;
}

int math_randomseed(lua_State* L) {
  run_of(L)->rand.seed(static_cast<int32_t>(luaL_checkint(L, 1)));
  return 0;
}

constexpr const char* kIdsKey = "qkv.object_ids";

// tostring() that never prints an address: tables, functions, coroutines
// and userdata are numbered in the order tostring() first sees them.
int deterministic_tostring(lua_State* L) {
  luaL_checkany(L, 1);
  if (luaL_callmeta(L, 1, "__tostring") != 0) return 1;
  switch (lua_type(L, 1)) {
    case LUA_TNUMBER:
      lua_pushvalue(L, 1);
      lua_tostring(L, -1);
      return 1;
    case LUA_TSTRING:
      lua_pushvalue(L, 1);
      return 1;
    case LUA_TBOOLEAN:
      lua_pushstring(L, lua_toboolean(L, 1) != 0 ? "true" : "false");
      return 1;
    case LUA_TNIL:
      lua_pushliteral(L, "nil");
      return 1;
    default:
      break;
  }
  Run* run = run_of(L);
  lua_getfield(L, LUA_REGISTRYINDEX, kIdsKey);
  lua_pushvalue(L, 1);
  lua_rawget(L, -2);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushvalue(L, 1);
    lua_pushnumber(L, static_cast<lua_Number>(++run->object_ids));
    lua_rawset(L, -3);
    lua_pushvalue(L, 1);
    lua_rawget(L, -2);
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s: 0x%08llx", luaL_typename(L, 1),
                static_cast<unsigned long long>(lua_tonumber(L, -1)));
  lua_pushstring(L, buf);
  return 1;
}

// loadstring(s [, name]) that refuses precompiled (binary) chunks, whose
// bytecode Lua 5.1 does not fully verify.
int safe_loadstring(lua_State* L) {
  size_t len = 0;
  const char* s = luaL_checklstring(L, 1, &len);
  const char* name = luaL_optstring(L, 2, s);
  if (len > 0 && s[0] == LUA_SIGNATURE[0]) {
    lua_pushnil(L);
    lua_pushliteral(L, "loading binary chunks is not allowed");
    return 2;
  }
  if (luaL_loadbuffer(L, s, len, name) == 0) return 1;
  lua_pushnil(L);
  lua_insert(L, -2);
  return 2;
}

// load(reader [, name]): the reader's pieces joined, then as loadstring.
int safe_load(lua_State* L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  const char* name = luaL_optstring(L, 2, "=(load)");
  lua_settop(L, 2);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (;;) {
    lua_pushvalue(L, 1);
    lua_call(L, 0, 1);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      break;
    }
    if (lua_type(L, -1) != LUA_TSTRING)
      return luaL_error(L, "reader function must return a string");
    if (lua_objlen(L, -1) == 0) {
      lua_pop(L, 1);
      break;
    }
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  lua_pushcfunction(L, safe_loadstring);
  lua_insert(L, -2);
  lua_pushstring(L, name);
  lua_call(L, 2, 2);
  return 2;
}

// pcall() as in Redis 7.0: an error table with an `err` field (a failed
// redis.call, error({err = ...})) is caught as its text.
int redis_style_pcall(lua_State* L) {
  luaL_checkany(L, 1);
  const int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  lua_pushboolean(L, status == 0 ? 1 : 0);
  lua_insert(L, 1);
  if (status != 0 && lua_type(L, -1) == LUA_TTABLE) {
    if (raw_field(L, -1, "err") == LUA_TSTRING) {
      lua_replace(L, -2);
    } else {
      lua_pop(L, 1);
    }
  }
  return lua_gettop(L);
}

int globals_newindex(lua_State* L) { return luaL_error(L, "Attempt to modify a readonly table"); }

int globals_index(lua_State* L) {
  const char* name = lua_tostring(L, 2);
  return luaL_error(L, "Script attempted to access nonexistent global variable '%s'",
                    name != nullptr ? name : "?");
}

void set_function(lua_State* L, const char* name, lua_CFunction f) {
  lua_pushcfunction(L, f);
  lua_setfield(L, -2, name);
}

void set_number(lua_State* L, const char* name, lua_Number n) {
  lua_pushnumber(L, n);
  lua_setfield(L, -2, name);
}

void open_library(lua_State* L, lua_CFunction open, const char* name) {
  lua_pushcfunction(L, open);
  lua_pushstring(L, name);
  lua_call(L, 1, 0);
}

void push_strings(lua_State* L, std::span<const std::string_view> items) {
  lua_createtable(L, static_cast<int>(items.size()), 0);
  for (size_t i = 0; i < items.size(); i++) {
    lua_pushlstring(L, items[i].data(), items[i].size());
    lua_rawseti(L, -2, static_cast<int>(i + 1));
  }
}

// The globals of a run: Redis 7.0's set (base, table, string, math, cjson,
// bit, redis, KEYS, ARGV), read-only.
void setup_globals(lua_State* L, Run* run) {
  open_library(L, luaopen_base, "");
  open_library(L, luaopen_table, LUA_TABLIBNAME);
  open_library(L, luaopen_string, LUA_STRLIBNAME);
  open_library(L, luaopen_math, LUA_MATHLIBNAME);
  open_library(L, luaopen_bit, "bit");
  lua_pushcfunction(L, luaopen_cjson);
  lua_call(L, 0, 1);
  lua_setglobal(L, "cjson");

  for (const char* name : {"dofile", "loadfile", "print", "newproxy", "getfenv", "setfenv",
                           "module", "require", "package", "os", "io", "debug"}) {
    lua_pushnil(L);
    lua_setglobal(L, name);
  }
  lua_pushcfunction(L, safe_loadstring);
  lua_setglobal(L, "loadstring");
  lua_pushcfunction(L, safe_load);
  lua_setglobal(L, "load");
  lua_pushcfunction(L, deterministic_tostring);
  lua_setglobal(L, "tostring");
  lua_pushcfunction(L, redis_style_pcall);
  lua_setglobal(L, "pcall");
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, kIdsKey);

  lua_getglobal(L, "math");
  set_function(L, "random", math_random);
  set_function(L, "randomseed", math_randomseed);
  lua_pop(L, 1);
  // Every run starts where a fresh Redis starts its first script.
  run->rand.x = Rand48::kInitial;

  lua_createtable(L, 0, 32);
  set_function(L, "call", redis_call);
  set_function(L, "pcall", redis_pcall);
  set_function(L, "error_reply", redis_error_reply);
  set_function(L, "status_reply", redis_status_reply);
  set_function(L, "sha1hex", redis_sha1hex);
  set_function(L, "log", redis_log);
  set_function(L, "setresp", redis_setresp);
  set_function(L, "set_repl", redis_set_repl);
  set_function(L, "replicate_commands", redis_true);
  set_function(L, "breakpoint", redis_false);
  set_function(L, "debug", redis_nothing);
  set_function(L, "acl_check_cmd", redis_acl_check_cmd);
  set_number(L, "LOG_DEBUG", 0);
  set_number(L, "LOG_VERBOSE", 1);
  set_number(L, "LOG_NOTICE", 2);
  set_number(L, "LOG_WARNING", 3);
  set_number(L, "REPL_NONE", 0);
  set_number(L, "REPL_AOF", 1);
  set_number(L, "REPL_SLAVE", 2);
  set_number(L, "REPL_REPLICA", 2);
  set_number(L, "REPL_ALL", 3);
  lua_pushstring(L, kRedisVersion);
  lua_setfield(L, -2, "REDIS_VERSION");
  set_number(L, "REDIS_VERSION_NUM", kRedisVersionNum);
  lua_setglobal(L, "redis");

  push_strings(L, run->keys);
  lua_setglobal(L, "KEYS");
  push_strings(L, run->argv);
  lua_setglobal(L, "ARGV");

  // Last: from here on a new global, or reading an absent one, is an error.
  lua_pushvalue(L, LUA_GLOBALSINDEX);
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, globals_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, globals_index);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  lua_pop(L, 1);
}

const char* bytecode_reader(lua_State* /*L*/, void* ud, size_t* size) {
  auto* rest = static_cast<std::string_view*>(ud);
  *size = rest->size();
  const char* p = rest->empty() ? nullptr : rest->data();
  *rest = std::string_view();
  return p;
}

// Under the message handler: calls the script (argument 1) and writes its
// first result as the reply.
int call_script(lua_State* L) {
  Run* run = run_of(L);
  lua_sethook(L, count_hook, LUA_MASKCOUNT, kHookStep);
  lua_call(L, 0, 1);
  lua_sethook(L, nullptr, 0, 0);
  net::ReplyWriter w(&run->reply, run->ctx->out.protocol());
  write_value(L, run, w, 0);
  return 0;
}

// The whole run, under lua_cpcall: an error anywhere (memory included)
// comes back as a status.
int protected_run(lua_State* L) {
  Run* run = static_cast<Run*>(lua_touserdata(L, 1));
  lua_settop(L, 0);
  setup_globals(L, run);
  lua_pushcfunction(L, message_handler);  // 1
  lua_pushcfunction(L, call_script);      // 2
  std::string_view rest = run->bytecode;
  if (lua_load(L, bytecode_reader, &rest, kChunkName) != 0) lua_error(L);  // 3
  if (lua_pcall(L, 1, 0, 1) == 0) return 0;

  // The script failed: its error object is on the top.
  run->raised = true;
  run->memory_bytes_max += kErrorHeadroomBytes;
  lua_sethook(L, nullptr, 0, 0);
  size_t len = 0;
  if (lua_type(L, -1) == LUA_TTABLE) {
    if (raw_field(L, -1, "err") == LUA_TSTRING) {
      const char* s = lua_tolstring(L, -1, &len);
      run->error.assign(s, len);
    } else {
      run->error = "ERR unknown error";
    }
    run->error_is_table = true;
  } else if (lua_isstring(L, -1) != 0) {
    const char* s = lua_tolstring(L, -1, &len);
    run->error.assign("ERR ");
    run->error.append(s, len);
  } else {
    run->error = "ERR unknown error";
  }
  return 0;
}

}  // namespace

// --- The engine ------------------------------------------------------------------

ScriptEngine::ScriptEngine(const KvOptions& options) : options_(options) {}
ScriptEngine::~ScriptEngine() = default;

namespace {

// Splits off a "#!lua ..." first line. Returns false with the error text
// if the shebang is invalid; *code is what Lua compiles (the first line's
// newline kept, so line numbers do not move).
bool parse_shebang(std::string_view body, ScriptFlags* flags, std::string_view* code,
                   std::string* error) {
  *code = body;
  if (body.substr(0, 2) != "#!") return true;
  const size_t eol = body.find('\n');
  if (eol == std::string_view::npos) {
    *error = "ERR Invalid script shebang";
    return false;
  }
  flags->shebang = true;
  *code = body.substr(eol);
  std::string_view line = body.substr(0, eol);
  std::vector<std::string_view> parts;
  while (!line.empty()) {
    const size_t sp = line.find(' ');
    if (sp != 0) parts.push_back(line.substr(0, sp));
    if (sp == std::string_view::npos) break;
    line.remove_prefix(sp + 1);
  }
  if (parts.empty() || parts[0] != "#!lua") {
    *error = "ERR Unexpected engine in script shebang: " +
             std::string(parts.empty() ? std::string_view("#!") : parts[0]);
    return false;
  }
  for (size_t i = 1; i < parts.size(); i++) {
    if (parts[i].substr(0, 6) != "flags=") {
      *error = "ERR Unknown lua shebang option: " + std::string(parts[i]);
      return false;
    }
    std::string_view list = parts[i].substr(6);
    while (!list.empty()) {
      const size_t comma = list.find(',');
      const std::string_view f = list.substr(0, comma);
      if (f == "no-writes") {
        flags->no_writes = true;
      } else if (f != "allow-oom" && f != "allow-stale" && f != "no-cluster" &&
                 f != "allow-cross-slot-keys") {
        *error = "ERR Unexpected flag in script shebang: " + std::string(f);
        return false;
      }
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  return true;
}

int string_writer(lua_State* /*L*/, const void* p, size_t size, void* ud) {
  static_cast<std::string*>(ud)->append(static_cast<const char*>(p), size);
  return 0;
}

}  // namespace

const ScriptEngine::Compiled* ScriptEngine::compiled(std::string_view sha, std::string_view body,
                                                     std::string* error) {
  if (auto it = cache_.find(sha); it != cache_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return &it->second;
  }
  Compiled c;
  std::string_view code;
  if (!parse_shebang(body, &c.flags, &code, error)) return nullptr;
  compilations_++;
  // A state of its own, with the default allocator: compiling is bounded
  // by script_bytes_max, and its allocations do not touch any run's heap.
  lua_State* L = luaL_newstate();
  if (L == nullptr) {
    *error = "ERR Error compiling script (new function): not enough memory";
    return nullptr;
  }
  int status = 0;
  if (!code.empty() && code[0] == LUA_SIGNATURE[0]) {
    // A precompiled chunk: refused, as Redis's patched Lua does.
    lua_pushliteral(L, "user_script:1: unexpected symbol near '<\\27>'");
    status = LUA_ERRSYNTAX;
  } else {
    status = luaL_loadbuffer(L, code.data(), code.size(), kChunkName);
  }
  if (status != 0) {
    size_t len = 0;
    const char* msg = lua_tolstring(L, -1, &len);
    *error = "ERR Error compiling script (new function): ";
    error->append(msg != nullptr ? std::string_view(msg, len) : std::string_view("error"));
    lua_close(L);
    return nullptr;
  }
  lua_dump(L, string_writer, &c.bytecode);
  lua_close(L);

  lru_.push_front(std::string(sha));
  c.lru = lru_.begin();
  cache_bytes_ += c.bytecode.size();
  auto [it, inserted] = cache_.emplace(std::string(sha), std::move(c));
  (void)inserted;
  evict();
  return &it->second;
}

void ScriptEngine::evict() {
  // The most recent entry always stays (it is about to run).
  while (cache_.size() > 1 && (cache_.size() > options_.script_cache_entries_max ||
                               cache_bytes_ > options_.script_cache_bytes_max)) {
    auto it = cache_.find(lru_.back());
    cache_bytes_ -= it->second.bytecode.size();
    cache_.erase(it);
    lru_.pop_back();
  }
}

bool ScriptEngine::compile(std::string_view sha, std::string_view body, std::string* error) {
  return compiled(sha, body, error) != nullptr;
}

void ScriptEngine::clear_cache() {
  cache_.clear();
  lru_.clear();
  cache_bytes_ = 0;
}

void ScriptEngine::run(CommandContext& ctx, std::string_view sha, std::string_view body,
                       std::span<const std::string_view> keys,
                       std::span<const std::string_view> argv, bool read_only) {
  if (running_) {
    ctx.out.error(kErrNotAllowed);
    return;
  }
  std::string error;
  const Compiled* c = compiled(sha, body, &error);
  if (c == nullptr) {
    ctx.out.error(error);
    return;
  }
  Run run;
  run.ctx = &ctx;
  run.sha = sha;
  run.bytecode = c->bytecode;
  run.keys = keys;
  run.argv = argv;
  run.read_only = read_only || c->flags.no_writes;
  run.memory_bytes_max = ctx.options.script_memory_bytes_max;
  run.instructions_max = ctx.options.script_instructions_max;

  running_ = true;
  lua_State* L = lua_newstate(limited_alloc, &run);
  if (L != nullptr) {
    run.status = lua_cpcall(L, protected_run, &run);
    lua_close(L);
  }
  running_ = false;

  if (L != nullptr && run.status == 0 && !run.raised) {
    ctx.out.out()->append(run.reply);
    return;
  }
  std::string text;
  if (run.instructions_exceeded) {
    text = "ERR Script exceeded script-instructions-max (" +
           std::to_string(ctx.options.script_instructions_max) + " Lua instructions)";
  } else if (!run.reply_error.empty()) {
    text = run.reply_error;
  } else if (L == nullptr || run.status == LUA_ERRMEM || run.memory_exceeded) {
    text = "ERR Script exceeded script-memory-bytes-max (" +
           std::to_string(ctx.options.script_memory_bytes_max) + " bytes of Lua heap)";
    // A memory error the script caught, followed by another error, is
    // reported as that error.
    if (L != nullptr && run.status == 0 && run.raised && run.error != "ERR not enough memory") {
      text = run.error;
    }
  } else {
    text = run.error.empty() ? std::string("ERR Error running script") : run.error;
  }
  text.append(" script: ");
  text.append(sha);
  if (run.error_line > 0) {
    text.append(", on @user_script:");
    text.append(std::to_string(run.error_line));
  }
  text.push_back('.');
  ctx.out.error(text);
}

void ScriptEngineDeleter::operator()(ScriptEngine* e) const { delete e; }

ScriptEnginePtr make_script_engine(const KvOptions& options) {
  return ScriptEnginePtr(new ScriptEngine(options));
}

}  // namespace qkv::kv
