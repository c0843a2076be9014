// The command table (STYLE.md point 8): every command the server knows, as
// data. The server layer checks arity, flags (write or read, local, admin),
// key positions (routing: key -> slot -> shard) and leadership once,
// centrally, from this table; a data command's handler holds only the
// command's meaning.
//
// Three kinds of entries:
//   data commands   (handler set) run by the state machine: writes when a
//                   Raft entry holding them is applied, reads through
//                   KvStateMachine::execute_read()
//   local commands  (kCmdLocal, no handler) served by the server layer on
//                   the node that received them: PING ECHO HELLO AUTH SELECT
//                   QUIT COMMAND INFO CLIENT CONFIG
//   internal ones   (kCmdInternal) proposed by nodes themselves (expiry
//                   deletions); invisible to find_command(), so clients can
//                   never run them
//
// Names are lower case; lookups are case-insensitive. Container commands
// (COMMAND, CLIENT, CONFIG) list their subcommands, named "config|get" as
// Redis's COMMAND INFO does; a subcommand's arity counts the container.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kv/keyspace.h"
#include "kv/options.h"
#include "net/resp.h"

namespace qkv::kv {

// Command flags. The first group has Redis's meaning and name (COMMAND INFO
// lists them); the last two are ours.
enum CommandFlag : uint32_t {
  kCmdWrite = 1u << 0,     // may change data: goes through the Raft log
  kCmdReadonly = 1u << 1,  // reads data only: served by the read path
  kCmdDenyOom = 1u << 2,   // may grow memory use
  kCmdAdmin = 1u << 3,     // administrative
  kCmdNoScript = 1u << 4,
  kCmdLoading = 1u << 5,  // allowed while loading data
  kCmdStale = 1u << 6,    // allowed on a replica with stale data
  kCmdFast = 1u << 7,     // O(1) or O(log n)
  kCmdNoAuth = 1u << 8,   // allowed before AUTH
  kCmdAllowBusy = 1u << 9,
  kCmdBlocking = 1u << 10,  // may block the client
  kCmdLocal = 1u << 16,     // ours: served by the server layer, never replicated
  kCmdInternal = 1u << 17,  // ours: proposed by nodes only
};

// Redis's names of the Redis flags set in `flags`, in Redis's order
// ("write", "readonly", "denyoom", ...). Our own flags are not listed.
std::vector<std::string_view> redis_flag_names(uint32_t flags);

struct CommandSpec;
class ScriptEngine;  // script.h
struct ApplyEvents;  // events.h

// What a handler works with. Reply exactly one RESP value to `out`.
struct CommandContext {
  Keyspace& ks;  // the data, as of ks.now_ms()
  net::ReplyWriter& out;
  const KvOptions& options;
  const CommandSpec& spec;  // the command being run (its name for errors)
  uint64_t random = 0;      // RANDOMKEY's randomness (derived from the entry when applied)
  ScriptEngine* scripts = nullptr;  // the state machine's Lua engine (EVAL, SCRIPT)
  // What applying the command caused that the server acts on (served
  // blocked clients, lock grants, changed keys); null for reads.
  ApplyEvents* events = nullptr;
};

// args[0] is the command name as sent. Arity is checked before the call.
using CommandHandler = void (*)(CommandContext& ctx, std::span<const std::string_view> args);
// For commands whose keys move with their arguments (Redis's "movablekeys":
// EVAL's numkeys, XREAD's STREAMS, FENCE's inner command): appends the
// positions of the keys of a request that passed the arity check. Garbage
// arguments give the keys that can be found (the handler reports the error).
using KeyFinder = void (*)(std::span<const std::string_view> args, std::vector<size_t>* out);

struct CommandSpec {
  std::string_view name;  // lower case; "container|sub" for a subcommand
  int arity;              // n: exactly n arguments, name included; -n: at least n
  uint32_t flags;         // CommandFlag bits
  // Key positions (1-based; last_key -1 = the last argument, -2 the one
  // before, ...; all 0 when the command takes no key).
  int first_key, last_key, key_step;
  std::string_view acl_categories;  // "@read @string @fast"
  std::string_view tips;            // COMMAND INFO's tips, space separated
  std::string_view group;    // COMMAND DOCS group: "string", "generic", "connection", "server"
  std::string_view since;    // the Redis version that introduced it ("ours" for CAS)
  std::string_view summary;  // one line, for COMMAND DOCS
  std::string_view syntax;   // "SET key value [NX | XX] ..."
  CommandHandler handler;    // data commands only
  std::span<const CommandSpec> subcommands;
  KeyFinder find_keys = nullptr;  // movable keys; first/last/step are then 0

  bool is_write() const { return (flags & kCmdWrite) != 0; }
  bool is_readonly() const { return (flags & kCmdReadonly) != 0; }
  bool is_local() const { return (flags & kCmdLocal) != 0; }
  bool is_internal() const { return (flags & kCmdInternal) != 0; }
};

// Every top-level command a client may name (internal ones excluded).
std::span<const CommandSpec> command_table();

// Case-insensitive lookups; nullptr when unknown. find_command() never
// returns an internal command.
const CommandSpec* find_command(std::string_view name);
const CommandSpec* find_internal_command(std::string_view name);
const CommandSpec* find_subcommand(const CommandSpec& container, std::string_view name);

bool arity_ok(const CommandSpec& spec, size_t argc);

// The positions of the keys in a request of argc arguments (for routing and
// COMMAND GETKEYS). Assumes arity_ok(). For MSET-like commands with an
// incomplete last pair, the dangling argument is not a key. Ignores
// find_keys: use command_keys() when the arguments are at hand.
std::vector<size_t> key_positions(const CommandSpec& spec, size_t argc);
// The positions of the keys of a request (args[0] the command name):
// spec.find_keys if the command has movable keys, else key_positions().
std::vector<size_t> command_keys(const CommandSpec& spec, std::span<const std::string_view> args);

// Error texts, without the leading '-', exactly as Redis 7 words them.
//   "ERR wrong number of arguments for 'get' command" (full_name: "get", "config|get")
std::string arity_error(std::string_view full_name);
//   "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
std::string unknown_command_error(std::span<const std::string_view> args);
//   "ERR unknown subcommand 'foo'. Try CONFIG HELP."
std::string unknown_subcommand_error(std::string_view container, std::string_view sub);
//   "ERR invalid expire time in 'set' command"
std::string invalid_expire_error(std::string_view full_name);

inline constexpr std::string_view kErrWrongType =
    "WRONGTYPE Operation against a key holding the wrong kind of value";
inline constexpr std::string_view kErrNotInteger = "ERR value is not an integer or out of range";
inline constexpr std::string_view kErrOverflow = "ERR increment or decrement would overflow";
inline constexpr std::string_view kErrDecrOverflow = "ERR decrement would overflow";
inline constexpr std::string_view kErrNotFloat = "ERR value is not a valid float";
inline constexpr std::string_view kErrNanOrInfinity = "ERR increment would produce NaN or Infinity";
inline constexpr std::string_view kErrSyntax = "ERR syntax error";
inline constexpr std::string_view kErrNoSuchKey = "ERR no such key";
inline constexpr std::string_view kErrStringTooLong =
    "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
inline constexpr std::string_view kErrOffsetOutOfRange = "ERR offset is out of range";
inline constexpr std::string_view kErrInvalidCursor = "ERR invalid cursor";

// Runs one command of a batch: looks it up (internal commands only when
// `internal`), checks that it is a data command and its arity, and calls the
// handler. Every failure is an error reply; nothing here fails otherwise
// (storage errors are in ctx.ks.txn().status()).
void execute_command(Keyspace& ks, net::ReplyWriter& out, const KvOptions& options,
                     std::span<const std::string_view> args, bool internal, uint64_t random,
                     ScriptEngine* scripts = nullptr, ApplyEvents* events = nullptr);

// The internal command that deletes expired keys: "delexpired key [key ...]"
// deletes each key whose expiry is <= the entry's stamp (a key that was
// given a later expiry or none in the meantime is kept), and replies the
// number deleted.
inline constexpr std::string_view kDelExpiredCommand = "delexpired";

}  // namespace qkv::kv
