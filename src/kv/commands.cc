#include "kv/commands.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <string>
#include <unordered_map>

#include "base/check.h"
#include "kv/handlers.h"

namespace qkv::kv {

namespace {

// Flag sets that recur.
constexpr uint32_t kW = kCmdWrite;
constexpr uint32_t kR = kCmdReadonly;
constexpr uint32_t kF = kCmdFast;
constexpr uint32_t kM = kCmdDenyOom;
constexpr uint32_t kLocal = kCmdLocal;
constexpr uint32_t kLS = kCmdLoading | kCmdStale;
constexpr uint32_t kNoScriptLS = kCmdNoScript | kCmdLoading | kCmdStale;
constexpr uint32_t kAdminLS = kCmdAdmin | kCmdNoScript | kCmdLoading | kCmdStale;
constexpr uint32_t kPreAuth =
    kCmdNoScript | kCmdLoading | kCmdStale | kCmdFast | kCmdNoAuth | kCmdAllowBusy;

constexpr std::span<const CommandSpec> kNoSub;

// Subcommands of the local container commands (the server layer serves
// them). Arity counts the container's name.
const CommandSpec kCommandSubcommands[] = {
    {"command|count", 2, kLocal | kLS, 0, 0, 0, "@slow @connection", "", "server", "2.8.13",
     "Returns the number of commands.", "COMMAND COUNT", nullptr, kNoSub},
    {"command|docs", -2, kLocal | kLS, 0, 0, 0, "@slow @connection",
     "nondeterministic_output_order", "server", "7.0.0",
     "Returns documentary information about commands.",
     "COMMAND DOCS [command-name [command-name ...]]", nullptr, kNoSub},
    {"command|help", 2, kLocal | kLS, 0, 0, 0, "@slow @connection", "", "server", "5.0.0",
     "Returns helpful text about the different subcommands.", "COMMAND HELP", nullptr, kNoSub},
    {"command|info", -2, kLocal | kLS, 0, 0, 0, "@slow @connection",
     "nondeterministic_output_order", "server", "2.8.13",
     "Returns information about commands, or all of them.",
     "COMMAND INFO [command-name [command-name ...]]", nullptr, kNoSub},
};

const CommandSpec kClientSubcommands[] = {
    {"client|caching", 3, kLocal | kNoScriptLS, 0, 0, 0, "@slow @connection", "", "connection",
     "6.0.0", "Instructs the server whether to track the keys in the next request.",
     "CLIENT CACHING <YES | NO>", nullptr, kNoSub},
    {"client|getname", 2, kLocal | kNoScriptLS, 0, 0, 0, "@slow @connection", "", "connection",
     "2.6.9", "Returns the name of the connection.", "CLIENT GETNAME", nullptr, kNoSub},
    {"client|getredir", 2, kLocal | kNoScriptLS, 0, 0, 0, "@slow @connection", "", "connection",
     "6.0.0",
     "Returns the client ID to which the connection's tracking notifications are redirected.",
     "CLIENT GETREDIR", nullptr, kNoSub},
    {"client|help", 2, kLocal | kLS, 0, 0, 0, "@slow @connection", "", "connection", "5.0.0",
     "Returns helpful text about the different subcommands.", "CLIENT HELP", nullptr, kNoSub},
    {"client|id", 2, kLocal | kNoScriptLS, 0, 0, 0, "@slow @connection", "", "connection", "5.0.0",
     "Returns the unique id of the connection.", "CLIENT ID", nullptr, kNoSub},
    {"client|list", -2, kLocal | kAdminLS, 0, 0, 0, "@admin @slow @dangerous @connection",
     "nondeterministic_output", "connection", "2.4.0", "Lists the open connections.",
     "CLIENT LIST [TYPE <NORMAL | MASTER | REPLICA | PUBSUB>] [ID client-id [client-id ...]]",
     nullptr, kNoSub},
    {"client|setname", 3, kLocal | kNoScriptLS, 0, 0, 0, "@slow @connection", "", "connection",
     "2.6.9", "Sets the name of the connection.", "CLIENT SETNAME connection-name", nullptr,
     kNoSub},
    {"client|tracking", -3, kLocal | kNoScriptLS, 0, 0, 0, "@slow @connection", "", "connection",
     "6.0.0", "Controls server-assisted client-side caching for the connection.",
     "CLIENT TRACKING <ON | OFF> [REDIRECT client-id] [PREFIX prefix [PREFIX prefix ...]] "
     "[BCAST] [OPTIN] [OPTOUT] [NOLOOP]",
     nullptr, kNoSub},
    {"client|trackinginfo", 2, kLocal | kNoScriptLS, 0, 0, 0, "@slow @connection", "", "connection",
     "6.2.0", "Returns information about server-assisted client-side caching for the connection.",
     "CLIENT TRACKINGINFO", nullptr, kNoSub},
};

const CommandSpec kConfigSubcommands[] = {
    {"config|get", -3, kLocal | kAdminLS, 0, 0, 0, "@admin @slow @dangerous", "", "server", "2.0.0",
     "Returns the values of settings (glob patterns allowed).",
     "CONFIG GET parameter [parameter ...]", nullptr, kNoSub},
    {"config|help", 2, kLocal | kLS, 0, 0, 0, "@slow", "", "server", "5.0.0",
     "Returns helpful text about the different subcommands.", "CONFIG HELP", nullptr, kNoSub},
    {"config|resetstat", 2, kLocal | kAdminLS, 0, 0, 0, "@admin @slow @dangerous", "", "server",
     "2.0.0", "Resets the statistics INFO reports.", "CONFIG RESETSTAT", nullptr, kNoSub},
    {"config|set", -4, kLocal | kAdminLS, 0, 0, 0, "@admin @slow @dangerous",
     "request_policy:all_nodes response_policy:all_succeeded", "server", "2.0.0",
     "Changes settings at run time.", "CONFIG SET parameter value [parameter value ...]", nullptr,
     kNoSub},
};

// clang-format off
// name, arity, flags, first/last/step key, ACL categories, tips, group, since,
// summary, syntax, handler, subcommands.
const CommandSpec kCommands[] = {
    // --- Connection and server: served by the server layer ---------------
    {"auth", -2, kLocal | kPreAuth, 0, 0, 0, "@fast @connection", "", "connection", "1.0.0",
     "Authenticates the connection.", "AUTH [username] password", nullptr, kNoSub},
    {"client", -2, kLocal, 0, 0, 0, "@slow", "", "connection", "2.4.0",
     "A container for connection commands.", "CLIENT subcommand [argument ...]", nullptr,
     kClientSubcommands},
    {"command", -1, kLocal | kLS, 0, 0, 0, "@slow @connection", "nondeterministic_output_order",
     "server", "2.8.13", "Returns details about every command.", "COMMAND", nullptr,
     kCommandSubcommands},
    {"config", -2, kLocal, 0, 0, 0, "@slow", "", "server", "2.0.0",
     "A container for settings commands.", "CONFIG subcommand [argument ...]", nullptr,
     kConfigSubcommands},
    {"echo", 2, kLocal | kLS | kF, 0, 0, 0, "@fast @connection", "", "connection", "1.0.0",
     "Returns the given string.", "ECHO message", nullptr, kNoSub},
    {"hello", -1, kLocal | kPreAuth, 0, 0, 0, "@fast @connection", "", "connection", "6.0.0",
     "Handshake: chooses the protocol version, optionally authenticates and names the connection.",
     "HELLO [protover [AUTH username password] [SETNAME clientname]]", nullptr, kNoSub},
    {"info", -1, kLocal | kLS, 0, 0, 0, "@slow @dangerous",
     "nondeterministic_output request_policy:all_shards response_policy:special", "server",
     "1.0.0", "Returns information and statistics about the server.", "INFO [section [section ...]]",
     nullptr, kNoSub},
    {"ping", -1, kLocal | kF, 0, 0, 0, "@fast @connection",
     "request_policy:all_shards response_policy:all_succeeded", "connection", "1.0.0",
     "Returns PONG, or the given message.", "PING [message]", nullptr, kNoSub},
    {"quit", -1, kLocal | kPreAuth, 0, 0, 0, "@fast @connection", "", "connection", "1.0.0",
     "Closes the connection.", "QUIT", nullptr, kNoSub},
    // Transactions (src/server/transaction.cc): the server runs them; the
    // table gives COMMAND and the docs.
    {"multi", 1, kLocal | kNoScriptLS | kF, 0, 0, 0, "@fast @transaction", "", "transactions",
     "1.2.0", "Starts a transaction.", "MULTI", nullptr, kNoSub},
    {"exec", 1, kLocal | kNoScriptLS, 0, 0, 0, "@slow @transaction", "", "transactions", "1.2.0",
     "Runs the commands queued since MULTI as one Raft entry (atomic, isolated); a null reply "
     "if a WATCHed key changed.",
     "EXEC", nullptr, kNoSub},
    {"discard", 1, kLocal | kNoScriptLS | kF, 0, 0, 0, "@fast @transaction", "", "transactions",
     "2.0.0", "Discards a transaction.", "DISCARD", nullptr, kNoSub},
    {"watch", -2, kLocal | kNoScriptLS | kF, 1, -1, 1, "@fast @transaction", "", "transactions",
     "2.2.0", "Makes the next EXEC run only if none of the keys changes before it.",
     "WATCH key [key ...]", nullptr, kNoSub},
    {"unwatch", 1, kLocal | kNoScriptLS | kF, 0, 0, 0, "@fast @transaction", "", "transactions",
     "2.2.0", "Forgets every WATCHed key.", "UNWATCH", nullptr, kNoSub},
    // Pub/sub (src/server/pubsub.cc): broadcast to every member, not replicated.
    {"publish", 3, kLocal | kLS | kF, 0, 0, 0, "@pubsub @fast", "", "pubsub", "2.0.0",
     "Posts a message to a channel on every node; returns this node's receivers.",
     "PUBLISH channel message", nullptr, kNoSub},
    {"subscribe", -2, kLocal | kNoScriptLS, 0, 0, 0, "@pubsub @slow", "", "pubsub", "2.0.0",
     "Listens for messages published to channels.", "SUBSCRIBE channel [channel ...]", nullptr,
     kNoSub},
    {"psubscribe", -2, kLocal | kNoScriptLS, 0, 0, 0, "@pubsub @slow", "", "pubsub", "2.0.0",
     "Listens for messages published to channels matching glob patterns.",
     "PSUBSCRIBE pattern [pattern ...]", nullptr, kNoSub},
    {"unsubscribe", -1, kLocal | kNoScriptLS, 0, 0, 0, "@pubsub @slow", "", "pubsub", "2.0.0",
     "Stops listening to channels (all of them without arguments).",
     "UNSUBSCRIBE [channel [channel ...]]", nullptr, kNoSub},
    {"punsubscribe", -1, kLocal | kNoScriptLS, 0, 0, 0, "@pubsub @slow", "", "pubsub", "2.0.0",
     "Stops listening to patterns (all of them without arguments).",
     "PUNSUBSCRIBE [pattern [pattern ...]]", nullptr, kNoSub},
    {"pubsub", -2, kLocal | kLS, 0, 0, 0, "@pubsub @slow", "", "pubsub", "2.8.0",
     "This node's channels and subscribers: CHANNELS [pattern], NUMSUB [channel ...], NUMPAT.",
     "PUBSUB CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT", nullptr, kNoSub},
    {"select", 2, kLocal | kLS | kF, 0, 0, 0, "@fast @connection", "", "connection", "1.0.0",
     "Selects the database of the connection (only database 0 exists).", "SELECT index", nullptr,
     kNoSub},
    {"raft", -2, kLocal | kCmdAdmin, 0, 0, 0, "@admin @slow @dangerous", "", "server", "ours",
     "Raft membership and status: STATUS, MEMBERS, ADD-LEARNER, ADD-VOTER, REMOVE, TRANSFER, "
     "SNAPSHOT, DIGEST (quorumctl uses it).",
     "RAFT STATUS | MEMBERS | DIGEST | ADD-LEARNER name host:port | ADD-VOTER name host:port | "
     "REMOVE name | TRANSFER name | SNAPSHOT",
     nullptr, kNoSub},
    {"readonly", 1, kLocal | kLS | kF, 0, 0, 0, "@fast @connection", "", "connection", "3.0.0",
     "Lets this connection's reads be served from the node's local state without a read "
     "barrier (stale reads on a follower).",
     "READONLY", nullptr, kNoSub},
    {"readwrite", 1, kLocal | kLS | kF, 0, 0, 0, "@fast @connection", "", "connection", "3.0.0",
     "Back to linearizable reads for this connection (the default).", "READWRITE", nullptr,
     kNoSub},

    // --- Keyspace ----------------------------------------------------------
    {"dbsize", 1, kR | kF, 0, 0, 0, "@keyspace @read @fast",
     "request_policy:all_shards response_policy:agg_sum", "server", "1.0.0",
     "Returns the number of keys (expired ones not yet deleted included).", "DBSIZE", cmd_dbsize,
     kNoSub},
    {"flushall", -1, kW, 0, 0, 0, "@keyspace @write @slow @dangerous",
     "request_policy:all_shards response_policy:all_succeeded", "server", "1.0.0",
     "Deletes every key.", "FLUSHALL [ASYNC | SYNC]", cmd_flushdb, kNoSub},
    {"flushdb", -1, kW, 0, 0, 0, "@keyspace @write @slow @dangerous",
     "request_policy:all_shards response_policy:all_succeeded", "server", "1.0.0",
     "Deletes every key of the database.", "FLUSHDB [ASYNC | SYNC]", cmd_flushdb, kNoSub},
    {"del", -2, kW, 1, -1, 1, "@keyspace @write @slow",
     "request_policy:multi_shard response_policy:agg_sum", "generic", "1.0.0",
     "Deletes keys; returns how many existed.", "DEL key [key ...]", cmd_del, kNoSub},
    {"unlink", -2, kW | kF, 1, -1, 1, "@keyspace @write @fast",
     "request_policy:multi_shard response_policy:agg_sum", "generic", "4.0.0",
     "Deletes keys (the same as DEL here); returns how many existed.", "UNLINK key [key ...]",
     cmd_del, kNoSub},
    {"exists", -2, kR | kF, 1, -1, 1, "@keyspace @read @fast",
     "request_policy:multi_shard response_policy:agg_sum", "generic", "1.0.0",
     "Counts the given keys that exist (a key named twice counts twice).", "EXISTS key [key ...]",
     cmd_exists, kNoSub},
    {"type", 2, kR | kF, 1, 1, 1, "@keyspace @read @fast", "", "generic", "1.0.0",
     "Returns the type of the value of a key, or none.", "TYPE key", cmd_type, kNoSub},
    {"rename", 3, kW, 1, 2, 1, "@keyspace @write @slow", "", "generic", "1.0.0",
     "Renames a key, replacing any key of the new name.", "RENAME key newkey", cmd_rename, kNoSub},
    {"renamenx", 3, kW | kF, 1, 2, 1, "@keyspace @write @fast", "", "generic", "1.0.0",
     "Renames a key only if the new name is free.", "RENAMENX key newkey", cmd_renamenx, kNoSub},
    {"keys", 2, kR, 0, 0, 0, "@keyspace @read @slow @dangerous",
     "request_policy:all_shards nondeterministic_output_order", "generic", "1.0.0",
     "Returns every key matching a glob pattern.", "KEYS pattern", cmd_keys, kNoSub},
    {"scan", -2, kR, 0, 0, 0, "@keyspace @read @slow", "nondeterministic_output request_policy:special",
     "generic", "2.8.0", "Iterates over the keys with a cursor.",
     "SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]", cmd_scan, kNoSub},
    {"randomkey", 1, kR, 0, 0, 0, "@keyspace @read @slow",
     "request_policy:all_shards nondeterministic_output", "generic", "1.0.0",
     "Returns a random key.", "RANDOMKEY", cmd_randomkey, kNoSub},

    // --- Expiry --------------------------------------------------------------
    {"expire", -3, kW | kF, 1, 1, 1, "@keyspace @write @fast", "", "generic", "1.0.0",
     "Sets a key's time to live in seconds.", "EXPIRE key seconds [NX | XX | GT | LT]",
     cmd_expire, kNoSub},
    {"pexpire", -3, kW | kF, 1, 1, 1, "@keyspace @write @fast", "", "generic", "2.6.0",
     "Sets a key's time to live in milliseconds.",
     "PEXPIRE key milliseconds [NX | XX | GT | LT]", cmd_pexpire, kNoSub},
    {"expireat", -3, kW | kF, 1, 1, 1, "@keyspace @write @fast", "", "generic", "1.2.0",
     "Sets a key's expiry as a Unix time in seconds.",
     "EXPIREAT key unix-time-seconds [NX | XX | GT | LT]", cmd_expireat, kNoSub},
    {"pexpireat", -3, kW | kF, 1, 1, 1, "@keyspace @write @fast", "", "generic", "2.6.0",
     "Sets a key's expiry as a Unix time in milliseconds.",
     "PEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT]", cmd_pexpireat, kNoSub},
    {"ttl", 2, kR | kF, 1, 1, 1, "@keyspace @read @fast", "nondeterministic_output", "generic",
     "1.0.0", "Returns a key's time to live in seconds (-1: none, -2: no key).", "TTL key",
     cmd_ttl, kNoSub},
    {"pttl", 2, kR | kF, 1, 1, 1, "@keyspace @read @fast", "nondeterministic_output", "generic",
     "2.6.0", "Returns a key's time to live in milliseconds (-1: none, -2: no key).", "PTTL key",
     cmd_pttl, kNoSub},
    {"expiretime", 2, kR | kF, 1, 1, 1, "@keyspace @read @fast", "", "generic", "7.0.0",
     "Returns a key's expiry as a Unix time in seconds (-1: none, -2: no key).",
     "EXPIRETIME key", cmd_expiretime, kNoSub},
    {"pexpiretime", 2, kR | kF, 1, 1, 1, "@keyspace @read @fast", "", "generic", "7.0.0",
     "Returns a key's expiry as a Unix time in milliseconds (-1: none, -2: no key).",
     "PEXPIRETIME key", cmd_pexpiretime, kNoSub},
    {"persist", 2, kW | kF, 1, 1, 1, "@keyspace @write @fast", "", "generic", "2.2.0",
     "Removes a key's time to live.", "PERSIST key", cmd_persist, kNoSub},

    // --- Strings -------------------------------------------------------------
    {"get", 2, kR | kF, 1, 1, 1, "@read @string @fast", "", "string", "1.0.0",
     "Returns the string value of a key.", "GET key", cmd_get, kNoSub},
    {"set", -3, kW | kM, 1, 1, 1, "@write @string @slow", "", "string", "1.0.0",
     "Sets the string value of a key, with conditions and an expiry.",
     "SET key value [NX | XX] [GET] [EX seconds | PX milliseconds | "
     "EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]",
     cmd_set, kNoSub},
    {"setnx", 3, kW | kM | kF, 1, 1, 1, "@write @string @fast", "", "string", "1.0.0",
     "Sets a key only if it does not exist.", "SETNX key value", cmd_setnx, kNoSub},
    {"setex", 4, kW | kM, 1, 1, 1, "@write @string @slow", "", "string", "2.0.0",
     "Sets a key and its time to live in seconds.", "SETEX key seconds value", cmd_setex, kNoSub},
    {"psetex", 4, kW | kM, 1, 1, 1, "@write @string @slow", "", "string", "2.6.0",
     "Sets a key and its time to live in milliseconds.", "PSETEX key milliseconds value",
     cmd_psetex, kNoSub},
    {"getset", 3, kW | kM | kF, 1, 1, 1, "@write @string @fast", "", "string", "1.0.0",
     "Sets a key and returns its old value.", "GETSET key value", cmd_getset, kNoSub},
    {"getdel", 2, kW | kF, 1, 1, 1, "@write @string @fast", "", "string", "6.2.0",
     "Returns a key's value and deletes the key.", "GETDEL key", cmd_getdel, kNoSub},
    {"getex", -2, kW | kF, 1, 1, 1, "@write @string @fast", "", "string", "6.2.0",
     "Returns a key's value and changes its expiry.",
     "GETEX key [EX seconds | PX milliseconds | EXAT unix-time-seconds | "
     "PXAT unix-time-milliseconds | PERSIST]",
     cmd_getex, kNoSub},
    {"mget", -2, kR | kF, 1, -1, 1, "@read @string @fast", "request_policy:multi_shard", "string",
     "1.0.0", "Returns the values of several keys.", "MGET key [key ...]", cmd_mget, kNoSub},
    {"mset", -3, kW | kM, 1, -1, 2, "@write @string @slow",
     "request_policy:multi_shard response_policy:all_succeeded", "string", "1.0.1",
     "Sets several keys at once.", "MSET key value [key value ...]", cmd_mset, kNoSub},
    {"msetnx", -3, kW | kM, 1, -1, 2, "@write @string @slow",
     "request_policy:multi_shard response_policy:agg_min", "string", "1.0.1",
     "Sets several keys at once, only if none of them exists.", "MSETNX key value [key value ...]",
     cmd_msetnx, kNoSub},
    {"append", 3, kW | kM | kF, 1, 1, 1, "@write @string @fast", "", "string", "2.0.0",
     "Appends to a string; returns the new length.", "APPEND key value", cmd_append, kNoSub},
    {"strlen", 2, kR | kF, 1, 1, 1, "@read @string @fast", "", "string", "2.2.0",
     "Returns the length of a string.", "STRLEN key", cmd_strlen, kNoSub},
    {"getrange", 4, kR, 1, 1, 1, "@read @string @slow", "", "string", "2.4.0",
     "Returns a substring (inclusive offsets, negative from the end).", "GETRANGE key start end",
     cmd_getrange, kNoSub},
    {"setrange", 4, kW | kM, 1, 1, 1, "@write @string @slow", "", "string", "2.2.0",
     "Overwrites part of a string, zero-padding as needed; returns the new length.",
     "SETRANGE key offset value", cmd_setrange, kNoSub},
    {"incr", 2, kW | kM | kF, 1, 1, 1, "@write @string @fast", "", "string", "1.0.0",
     "Adds one to an integer.", "INCR key", cmd_incr, kNoSub},
    {"decr", 2, kW | kM | kF, 1, 1, 1, "@write @string @fast", "", "string", "1.0.0",
     "Subtracts one from an integer.", "DECR key", cmd_decr, kNoSub},
    {"incrby", 3, kW | kM | kF, 1, 1, 1, "@write @string @fast", "", "string", "1.0.0",
     "Adds to an integer.", "INCRBY key increment", cmd_incrby, kNoSub},
    {"decrby", 3, kW | kM | kF, 1, 1, 1, "@write @string @fast", "", "string", "1.0.0",
     "Subtracts from an integer.", "DECRBY key decrement", cmd_decrby, kNoSub},
    {"incrbyfloat", 3, kW | kM | kF, 1, 1, 1, "@write @string @fast", "", "string", "2.6.0",
     "Adds to a floating point number.", "INCRBYFLOAT key increment", cmd_incrbyfloat, kNoSub},
    {"cas", 4, kW | kM | kF, 1, 1, 1, "@write @string @fast", "", "string", "ours",
     "Sets a string to a new value if it equals the expected one (1), else nothing (0).",
     "CAS key expected new", cmd_cas, kNoSub},

    // --- Hashes --------------------------------------------------------------
    {"hset", -4, kW | kM | kF, 1, 1, 1, "@write @hash @fast", "", "hash", "2.0.0",
     "Sets fields of a hash; returns how many are new.",
     "HSET key field value [field value ...]", cmd_hset, kNoSub},
    {"hmset", -4, kW | kM | kF, 1, 1, 1, "@write @hash @fast", "", "hash", "2.0.0",
     "Sets fields of a hash (replies OK; HSET does the same).",
     "HMSET key field value [field value ...]", cmd_hmset, kNoSub},
    {"hsetnx", 4, kW | kM | kF, 1, 1, 1, "@write @hash @fast", "", "hash", "2.0.0",
     "Sets a field only if it does not exist.",
     "HSETNX key field value", cmd_hsetnx, kNoSub},
    {"hget", 3, kR | kF, 1, 1, 1, "@read @hash @fast", "", "hash", "2.0.0",
     "Returns the value of a field.",
     "HGET key field", cmd_hget, kNoSub},
    {"hmget", -3, kR | kF, 1, 1, 1, "@read @hash @fast", "", "hash", "2.0.0",
     "Returns the values of several fields.",
     "HMGET key field [field ...]", cmd_hmget, kNoSub},
    {"hdel", -3, kW | kF, 1, 1, 1, "@write @hash @fast", "", "hash", "2.0.0",
     "Deletes fields; returns how many existed (the key goes with its last field).",
     "HDEL key field [field ...]", cmd_hdel, kNoSub},
    {"hgetall", 2, kR, 1, 1, 1, "@read @hash @slow", "nondeterministic_output_order", "hash", "2.0.0",
     "Returns every field and value (RESP3: a map).",
     "HGETALL key", cmd_hgetall, kNoSub},
    {"hkeys", 2, kR, 1, 1, 1, "@read @hash @slow", "nondeterministic_output_order", "hash", "2.0.0",
     "Returns every field.",
     "HKEYS key", cmd_hkeys, kNoSub},
    {"hvals", 2, kR, 1, 1, 1, "@read @hash @slow", "nondeterministic_output_order", "hash", "2.0.0",
     "Returns every value.",
     "HVALS key", cmd_hvals, kNoSub},
    {"hexists", 3, kR | kF, 1, 1, 1, "@read @hash @fast", "", "hash", "2.0.0",
     "Tells whether a field exists.",
     "HEXISTS key field", cmd_hexists, kNoSub},
    {"hlen", 2, kR | kF, 1, 1, 1, "@read @hash @fast", "", "hash", "2.0.0",
     "Returns the number of fields.",
     "HLEN key", cmd_hlen, kNoSub},
    {"hstrlen", 3, kR | kF, 1, 1, 1, "@read @hash @fast", "", "hash", "3.2.0",
     "Returns the length of a field's value.",
     "HSTRLEN key field", cmd_hstrlen, kNoSub},
    {"hincrby", 4, kW | kM | kF, 1, 1, 1, "@write @hash @fast", "", "hash", "2.0.0",
     "Adds to the integer value of a field.",
     "HINCRBY key field increment", cmd_hincrby, kNoSub},
    {"hincrbyfloat", 4, kW | kM | kF, 1, 1, 1, "@write @hash @fast", "", "hash", "2.6.0",
     "Adds to the floating point value of a field.",
     "HINCRBYFLOAT key field increment", cmd_hincrbyfloat, kNoSub},
    {"hrandfield", -2, kR, 1, 1, 1, "@read @hash @slow", "nondeterministic_output", "hash", "6.2.0",
     "Returns random fields (negative count: repeats allowed).",
     "HRANDFIELD key [count [WITHVALUES]]", cmd_hrandfield, kNoSub},
    {"hscan", -3, kR, 1, 1, 1, "@read @hash @slow", "nondeterministic_output", "hash", "2.8.0",
     "Iterates over the fields and values with a cursor.",
     "HSCAN key cursor [MATCH pattern] [COUNT count]", cmd_hscan, kNoSub},

    // --- Sets ----------------------------------------------------------------
    {"sadd", -3, kW | kM | kF, 1, 1, 1, "@write @set @fast", "", "set", "1.0.0",
     "Adds members to a set; returns how many are new.",
     "SADD key member [member ...]", cmd_sadd, kNoSub},
    {"srem", -3, kW | kF, 1, 1, 1, "@write @set @fast", "", "set", "1.0.0",
     "Removes members; returns how many existed (the key goes with its last member).",
     "SREM key member [member ...]", cmd_srem, kNoSub},
    {"smembers", 2, kR, 1, 1, 1, "@read @set @slow", "nondeterministic_output_order", "set", "1.0.0",
     "Returns every member (RESP3: a set).",
     "SMEMBERS key", cmd_smembers, kNoSub},
    {"sismember", 3, kR | kF, 1, 1, 1, "@read @set @fast", "", "set", "1.0.0",
     "Tells whether a member belongs to a set.",
     "SISMEMBER key member", cmd_sismember, kNoSub},
    {"smismember", -3, kR | kF, 1, 1, 1, "@read @set @fast", "", "set", "6.2.0",
     "Tells, for each member, whether it belongs to a set.",
     "SMISMEMBER key member [member ...]", cmd_smismember, kNoSub},
    {"scard", 2, kR | kF, 1, 1, 1, "@read @set @fast", "", "set", "1.0.0",
     "Returns the number of members.",
     "SCARD key", cmd_scard, kNoSub},
    {"smove", 4, kW | kF, 1, 2, 1, "@write @set @fast", "", "set", "1.0.0",
     "Moves a member from one set to another.",
     "SMOVE source destination member", cmd_smove, kNoSub},
    {"spop", -2, kW | kF, 1, 1, 1, "@write @set @fast", "nondeterministic_output", "set", "1.0.0",
     "Removes and returns random members.",
     "SPOP key [count]", cmd_spop, kNoSub},
    {"srandmember", -2, kR, 1, 1, 1, "@read @set @slow", "nondeterministic_output", "set", "1.0.0",
     "Returns random members (negative count: repeats allowed).",
     "SRANDMEMBER key [count]", cmd_srandmember, kNoSub},
    {"sinter", -2, kR, 1, -1, 1, "@read @set @slow", "nondeterministic_output_order", "set", "1.0.0",
     "Returns the intersection of sets.",
     "SINTER key [key ...]", cmd_sinter, kNoSub},
    // Its keys follow numkeys (Redis: movablekeys); the table names the first.
    {"sintercard", -3, kR, 2, 2, 1, "@read @set @slow", "", "set", "7.0.0",
     "Returns the size of the intersection of sets, counting up to a limit.",
     "SINTERCARD numkeys key [key ...] [LIMIT limit]", cmd_sintercard, kNoSub},
    {"sinterstore", -3, kW | kM, 1, -1, 1, "@write @set @slow", "", "set", "1.0.0",
     "Stores the intersection of sets; returns its size.",
     "SINTERSTORE destination key [key ...]", cmd_sinterstore, kNoSub},
    {"sunion", -2, kR, 1, -1, 1, "@read @set @slow", "nondeterministic_output_order", "set", "1.0.0",
     "Returns the union of sets.",
     "SUNION key [key ...]", cmd_sunion, kNoSub},
    {"sunionstore", -3, kW | kM, 1, -1, 1, "@write @set @slow", "", "set", "1.0.0",
     "Stores the union of sets; returns its size.",
     "SUNIONSTORE destination key [key ...]", cmd_sunionstore, kNoSub},
    {"sdiff", -2, kR, 1, -1, 1, "@read @set @slow", "nondeterministic_output_order", "set", "1.0.0",
     "Returns the members of the first set that are in none of the others.",
     "SDIFF key [key ...]", cmd_sdiff, kNoSub},
    {"sdiffstore", -3, kW | kM, 1, -1, 1, "@write @set @slow", "", "set", "1.0.0",
     "Stores the difference of sets; returns its size.",
     "SDIFFSTORE destination key [key ...]", cmd_sdiffstore, kNoSub},
    {"sscan", -3, kR, 1, 1, 1, "@read @set @slow", "nondeterministic_output", "set", "2.8.0",
     "Iterates over the members with a cursor.",
     "SSCAN key cursor [MATCH pattern] [COUNT count]", cmd_sscan, kNoSub},

    // --- Lists ----------------------------------------------------------------
    // The blocking ones wait in the replicated state (waiters.h); run inside
    // MULTI or a script they answer at once.
    {"blpop", -3, kW | kCmdBlocking, 1, -2, 1, "@write @list @slow @blocking", "", "list",
     "2.0.0",
     "Pops the first element of the first non-empty list, waiting up to timeout seconds "
     "(0: forever) for one; blocked clients are served first come, first served.",
     "BLPOP key [key ...] timeout", cmd_blpop, kNoSub},
    {"brpop", -3, kW | kCmdBlocking, 1, -2, 1, "@write @list @slow @blocking", "", "list",
     "2.0.0", "Pops the last element of the first non-empty list, waiting as BLPOP does.",
     "BRPOP key [key ...] timeout", cmd_brpop, kNoSub},
    {"blmove", 6, kW | kM | kCmdBlocking, 1, 2, 1, "@write @list @slow @blocking", "", "list",
     "6.2.0", "LMOVE, waiting up to timeout seconds for the source to have an element.",
     "BLMOVE source destination LEFT | RIGHT LEFT | RIGHT timeout", cmd_blmove, kNoSub},
    {"brpoplpush", 4, kW | kM | kCmdBlocking, 1, 2, 1, "@write @list @slow @blocking", "",
     "list", "2.2.0", "BLMOVE source destination RIGHT LEFT timeout.",
     "BRPOPLPUSH source destination timeout", cmd_brpoplpush, kNoSub},
    {"lpush", -3, kW | kM | kF, 1, 1, 1, "@write @list @fast", "", "list", "1.0.0",
     "Prepends elements (the last one given ends up first); returns the length.",
     "LPUSH key element [element ...]", cmd_lpush, kNoSub},
    {"rpush", -3, kW | kM | kF, 1, 1, 1, "@write @list @fast", "", "list", "1.0.0",
     "Appends elements; returns the length.",
     "RPUSH key element [element ...]", cmd_rpush, kNoSub},
    {"lpushx", -3, kW | kM | kF, 1, 1, 1, "@write @list @fast", "", "list", "2.2.0",
     "Prepends elements only if the list exists.",
     "LPUSHX key element [element ...]", cmd_lpushx, kNoSub},
    {"rpushx", -3, kW | kM | kF, 1, 1, 1, "@write @list @fast", "", "list", "2.2.0",
     "Appends elements only if the list exists.",
     "RPUSHX key element [element ...]", cmd_rpushx, kNoSub},
    {"lpop", -2, kW | kF, 1, 1, 1, "@write @list @fast", "", "list", "1.0.0",
     "Removes and returns the first elements.",
     "LPOP key [count]", cmd_lpop, kNoSub},
    {"rpop", -2, kW | kF, 1, 1, 1, "@write @list @fast", "", "list", "1.0.0",
     "Removes and returns the last elements.",
     "RPOP key [count]", cmd_rpop, kNoSub},
    {"llen", 2, kR | kF, 1, 1, 1, "@read @list @fast", "", "list", "1.0.0",
     "Returns the length of a list.",
     "LLEN key", cmd_llen, kNoSub},
    {"lrange", 4, kR, 1, 1, 1, "@read @list @slow", "", "list", "1.0.0",
     "Returns a range of elements (inclusive indexes, negative from the end).",
     "LRANGE key start stop", cmd_lrange, kNoSub},
    {"lindex", 3, kR, 1, 1, 1, "@read @list @slow", "", "list", "1.0.0",
     "Returns the element at an index.",
     "LINDEX key index", cmd_lindex, kNoSub},
    {"lset", 4, kW | kM, 1, 1, 1, "@write @list @slow", "", "list", "1.0.0",
     "Sets the element at an index.",
     "LSET key index element", cmd_lset, kNoSub},
    {"linsert", 5, kW | kM, 1, 1, 1, "@write @list @slow", "", "list", "2.2.0",
     "Inserts an element before or after the first occurrence of a pivot (O(n)).",
     "LINSERT key <BEFORE | AFTER> pivot element", cmd_linsert, kNoSub},
    {"lrem", 4, kW, 1, 1, 1, "@write @list @slow", "", "list", "1.0.0",
     "Removes occurrences of an element (O(n)).",
     "LREM key count element", cmd_lrem, kNoSub},
    {"ltrim", 4, kW, 1, 1, 1, "@write @list @slow", "", "list", "1.0.0",
     "Keeps only a range of elements.",
     "LTRIM key start stop", cmd_ltrim, kNoSub},
    {"lpos", -3, kR, 1, 1, 1, "@read @list @slow", "", "list", "6.0.6",
     "Returns the indexes of matching elements.",
     "LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]", cmd_lpos, kNoSub},
    {"lmove", 5, kW | kM, 1, 2, 1, "@write @list @slow", "", "list", "6.2.0",
     "Pops an element from one list and pushes it onto another (or the same).",
     "LMOVE source destination <LEFT | RIGHT> <LEFT | RIGHT>", cmd_lmove, kNoSub},
    {"rpoplpush", 3, kW | kM, 1, 2, 1, "@write @list @slow", "", "list", "1.2.0",
     "Pops the last element of a list and prepends it to another (LMOVE ... RIGHT LEFT).",
     "RPOPLPUSH source destination", cmd_rpoplpush, kNoSub},

    // --- Streams (stream_commands.cc) ---------------------------------------
    {"xadd", -5, kW | kM | kF, 1, 1, 1, "@write @stream @fast", "nondeterministic_output", "stream",
     "5.0.0", "Appends an entry (its id given, or * from the entry's stamp), optionally trimming.",
     "XADD key [NOMKSTREAM] [<MAXLEN | MINID> [= | ~] threshold [LIMIT count]] <* | id> "
     "field value [field value ...]", cmd_xadd, kNoSub},
    {"xtrim", -4, kW, 1, 1, 1, "@write @stream @slow", "nondeterministic_output", "stream", "5.0.0",
     "Deletes the oldest entries beyond a length or below an id; returns how many.",
     "XTRIM key <MAXLEN | MINID> [= | ~] threshold [LIMIT count]", cmd_xtrim, kNoSub},
    {"xlen", 2, kR | kF, 1, 1, 1, "@read @stream @fast", "", "stream", "5.0.0",
     "Returns the number of entries.", "XLEN key", cmd_xlen, kNoSub},
    {"xrange", -4, kR, 1, 1, 1, "@read @stream @slow", "", "stream", "5.0.0",
     "Returns the entries between two ids (inclusive, or exclusive with '(').",
     "XRANGE key start end [COUNT count]", cmd_xrange, kNoSub},
    {"xrevrange", -4, kR, 1, 1, 1, "@read @stream @slow", "", "stream", "5.0.0",
     "Returns the entries between two ids, newest first.",
     "XREVRANGE key end start [COUNT count]", cmd_xrevrange, kNoSub},
    // Keys move: after STREAMS (xread_keys).
    {"xread", -4, kR | kCmdBlocking, 0, 0, 0, "@read @stream @slow @blocking", "", "stream",
     "5.0.0", "Returns the entries after given ids from one or more streams (BLOCK: not yet "
     "waiting, answers at once).",
     "XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]", cmd_xread,
     kNoSub, xread_keys},
    {"xreadgroup", -7, kW | kCmdBlocking, 0, 0, 0, "@write @stream @slow @blocking", "", "stream",
     "5.0.0", "Delivers new entries to a consumer of a group (pending until XACK), or "
     "redelivers its pending ones.",
     "XREADGROUP GROUP group consumer [COUNT count] [BLOCK milliseconds] [NOACK] STREAMS key "
     "[key ...] id [id ...]", cmd_xreadgroup, kNoSub, xread_keys},
    {"xdel", -3, kW | kF, 1, 1, 1, "@write @stream @fast", "", "stream", "5.0.0",
     "Deletes entries; returns how many existed.", "XDEL key id [id ...]", cmd_xdel, kNoSub},
    {"xsetid", -3, kW | kM | kF, 1, 1, 1, "@write @stream @fast", "", "stream", "5.0.0",
     "Sets a stream's last id (and its entries-added and max-deleted-id counters).",
     "XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]", cmd_xsetid,
     kNoSub},
    // A container in Redis; here one data command whose handler checks the
    // subcommand and its arity (create -5, setid -5, destroy 4,
    // createconsumer 5, delconsumer 5, help 2). The key is the 2nd argument.
    {"xgroup", -2, kW | kM, 2, 2, 1, "@write @stream @slow", "", "stream", "5.0.0",
     "Consumer groups: CREATE, SETID, DESTROY, CREATECONSUMER, DELCONSUMER, HELP.",
     "XGROUP CREATE key group <id | $> [MKSTREAM] [ENTRIESREAD entries-read] | SETID key group "
     "<id | $> [ENTRIESREAD entries-read] | DESTROY key group | CREATECONSUMER key group consumer "
     "| DELCONSUMER key group consumer | HELP", cmd_xgroup, kNoSub},
    {"xack", -4, kW | kF, 1, 1, 1, "@write @stream @fast", "", "stream", "5.0.0",
     "Acknowledges pending entries of a group; returns how many were pending.",
     "XACK key group id [id ...]", cmd_xack, kNoSub},
    {"xpending", -3, kR, 1, 1, 1, "@read @stream @slow", "", "stream", "5.0.0",
     "Returns a group's pending entries: a summary, or a range with idle times and delivery "
     "counts.", "XPENDING key group [[IDLE min-idle-time] start end count [consumer]]",
     cmd_xpending, kNoSub},
    {"xclaim", -6, kW | kF, 1, 1, 1, "@write @stream @fast", "", "stream", "5.0.0",
     "Hands pending entries idle for long enough over to another consumer.",
     "XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME unix-time-milliseconds] "
     "[RETRYCOUNT count] [FORCE] [JUSTID] [LASTID lastid]", cmd_xclaim, kNoSub},
    {"xautoclaim", -6, kW | kF, 1, 1, 1, "@write @stream @fast", "", "stream", "6.2.0",
     "Claims pending entries idle for long enough, scanning the PEL from a cursor; returns the "
     "next cursor, the entries and the ids that no longer exist.",
     "XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]", cmd_xautoclaim,
     kNoSub},
    // A container in Redis, as XGROUP (stream -3, groups 3, consumers 4, help 2).
    {"xinfo", -2, kR, 2, 2, 1, "@read @stream @slow", "", "stream", "5.0.0",
     "Stream, group and consumer information: STREAM [FULL [COUNT n]], GROUPS, CONSUMERS, HELP.",
     "XINFO STREAM key [FULL [COUNT count]] | GROUPS key | CONSUMERS key group | HELP", cmd_xinfo,
     kNoSub},

    // --- Scripts (script_commands.cc) ---------------------------------------
    // Keys follow numkeys (movable: eval_keys). SCRIPT is one data row
    // whose handler serves its subcommands (EXISTS too, through the log).
    {"eval", -3, kW | kCmdNoScript, 0, 0, 0, "@slow @scripting", "", "scripting", "2.6.0",
     "Runs a Lua script (registering it for EVALSHA).",
     "EVAL script numkeys [key [key ...]] [arg [arg ...]]", cmd_eval, kNoSub, eval_keys},
    {"evalsha", -3, kW | kCmdNoScript, 0, 0, 0, "@slow @scripting", "", "scripting", "2.6.0",
     "Runs a Lua script stored by SCRIPT LOAD or EVAL, named by its SHA-1.",
     "EVALSHA sha1 numkeys [key [key ...]] [arg [arg ...]]", cmd_evalsha, kNoSub, eval_keys},
    {"eval_ro", -3, kR | kCmdNoScript, 0, 0, 0, "@slow @scripting", "", "scripting", "7.0.0",
     "Runs a read-only Lua script (served by the read path; not registered).",
     "EVAL_RO script numkeys [key [key ...]] [arg [arg ...]]", cmd_eval_ro, kNoSub, eval_keys},
    {"evalsha_ro", -3, kR | kCmdNoScript, 0, 0, 0, "@slow @scripting", "", "scripting", "7.0.0",
     "Runs a stored Lua script read-only.",
     "EVALSHA_RO sha1 numkeys [key [key ...]] [arg [arg ...]]", cmd_evalsha_ro, kNoSub,
     eval_keys},
    {"script", -2, kW | kCmdNoScript, 0, 0, 0, "@slow @scripting", "", "scripting", "2.6.0",
     "The script cache: SCRIPT LOAD script | EXISTS sha1 [sha1 ...] | FLUSH [ASYNC|SYNC] | "
     "KILL | HELP.",
     "SCRIPT subcommand [argument ...]", cmd_script, kNoSub},

    // --- Locks and fencing (lock_commands.cc) -------------------------------
    {"lock", -4, kW | kCmdBlocking, 1, 1, 1, "@write @slow @blocking", "", "lock", "ours",
     "Takes a lock for ttl_ms and returns its fencing token (larger than every token granted "
     "before); nil if another owner holds it, or, with WAIT, once WAIT ms passed in the queue.",
     "LOCK name owner ttl_ms [WAIT ms]", cmd_lock, kNoSub},
    {"lock.refresh", 4, kW | kF, 1, 1, 1, "@write @fast", "", "lock", "ours",
     "Extends the lease of a lock the owner holds to ttl_ms from now; returns its token, or nil "
     "if the owner does not hold it.",
     "LOCK.REFRESH name owner ttl_ms", cmd_lock_refresh, kNoSub},
    {"unlock", 3, kW | kF, 1, 1, 1, "@write @fast", "", "lock", "ours",
     "Releases a lock the owner holds (1) and grants it to the first waiter; 0 if not held.",
     "UNLOCK name owner", cmd_unlock, kNoSub},
    {"lock.info", 2, kR | kF, 1, 1, 1, "@read @fast", "", "lock", "ours",
     "The holder of a lock: owner, token, ttl_ms left, waiters; nil if free.", "LOCK.INFO name",
     cmd_lock_info, kNoSub},
    {"fence", -3, kW, 0, 0, 0, "@write @slow", "", "lock", "ours",
     "Runs the command only if token is the current token of the lock (atomically); -FENCED "
     "otherwise. Without a command: the check alone.",
     "FENCE name token [command [arg ...]]", cmd_fence, kNoSub, fence_keys},
};

// Proposed by nodes only.
const CommandSpec kInternalCommands[] = {
    // Blocked clients (waiters.h).
    {"block", -4, kW | kCmdInternal, 0, 0, 0, "@write", "", "list", "ours",
     "Runs a blocking command, or queues its client.", "BLOCK id lease_ms command [arg ...]",
     cmd_block, kNoSub},
    {"unblock", -2, kW | kCmdInternal, 0, 0, 0, "@write", "", "list", "ours",
     "Gives waiters their timeout reply now.", "UNBLOCK id [id ...]", cmd_unblock, kNoSub},
    {"renewblock", -3, kW | kCmdInternal, 0, 0, 0, "@write", "", "list", "ours",
     "Extends the leases of waiters without a timeout.", "RENEWBLOCK lease_ms id [id ...]",
     cmd_renewblock, kNoSub},
    {"timers", -2, kW | kCmdInternal, 0, 0, 0, "@write", "", "list", "ours",
     "Fires the given timers that are due.", "TIMERS timer [timer ...]", cmd_timers, kNoSub},
    {"unblockstale", 3, kW | kCmdInternal, 0, 0, 0, "@write", "", "list", "ours",
     "Drops the waiters of a node's previous run.", "UNBLOCKSTALE id_prefix keep_prefix",
     cmd_unblockstale, kNoSub},
    {"delexpired", -2, kW | kCmdInternal, 1, -1, 1, "@keyspace @write", "", "generic", "ours",
     "Deletes the given keys whose expiry has passed at the entry's stamp.",
     "DELEXPIRED key [key ...]", cmd_delexpired, kNoSub},
};
// clang-format on

// Names up to this long are looked up; longer ones cannot be commands.
constexpr size_t kNameBytesMax = 64;

// A command or subcommand name in ASCII lower case, written into `buf` (it
// runs on every request: no allocation, no locale); nullopt if too long to
// be one. Bytes outside A-Z are kept, so non-ASCII names match nothing.
std::optional<std::string_view> lower_name(std::string_view name, char (&buf)[kNameBytesMax]) {
  if (name.size() > kNameBytesMax) return std::nullopt;
  for (size_t i = 0; i < name.size(); i++) {
    const char c = name[i];
    buf[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return std::string_view(buf, name.size());
}

using Index = std::unordered_map<std::string_view, const CommandSpec*>;

Index build_index(std::span<const CommandSpec> specs) {
  Index idx;
  for (const auto& s : specs) {
    QKV_CHECK(idx.emplace(s.name, &s).second) << "command listed twice: " << s.name;
    if (s.handler != nullptr) {
      QKV_CHECK(!s.is_local()) << s.name << ": a local command has no handler";
    } else {
      QKV_CHECK(s.is_local()) << s.name << ": a data command needs a handler";
    }
    QKV_CHECK(s.is_write() != s.is_readonly() || s.is_local()) << s.name;
  }
  return idx;
}

const CommandSpec* lookup(const Index& idx, std::string_view name) {
  char buf[kNameBytesMax];
  const auto lower = lower_name(name, buf);
  if (!lower) return nullptr;
  auto it = idx.find(*lower);
  return it == idx.end() ? nullptr : it->second;
}

// printf's "%.*s" of a Redis string: up to n bytes, stopping at a NUL.
std::string_view c_prefix(std::string_view s, size_t n) {
  s = s.substr(0, n);
  return s.substr(0, s.find('\0'));
}

}  // namespace

std::vector<std::string_view> redis_flag_names(uint32_t flags) {
  static constexpr std::pair<uint32_t, std::string_view> kNames[] = {
      {kCmdWrite, "write"},     {kCmdReadonly, "readonly"},    {kCmdDenyOom, "denyoom"},
      {kCmdAdmin, "admin"},     {kCmdNoScript, "noscript"},    {kCmdBlocking, "blocking"},
      {kCmdLoading, "loading"}, {kCmdStale, "stale"},          {kCmdFast, "fast"},
      {kCmdNoAuth, "no_auth"},  {kCmdAllowBusy, "allow_busy"},
  };
  std::vector<std::string_view> out;
  for (const auto& [bit, name] : kNames) {
    if (flags & bit) out.push_back(name);
  }
  return out;
}

std::span<const CommandSpec> command_table() { return kCommands; }

const CommandSpec* find_command(std::string_view name) {
  static const Index idx = build_index(kCommands);
  return lookup(idx, name);
}

const CommandSpec* find_internal_command(std::string_view name) {
  static const Index idx = build_index(kInternalCommands);
  return lookup(idx, name);
}

const CommandSpec* find_subcommand(const CommandSpec& container, std::string_view name) {
  char buf[kNameBytesMax];
  const auto lower = lower_name(name, buf);
  if (!lower) return nullptr;
  for (const auto& s : container.subcommands) {
    const std::string_view sub = s.name.substr(s.name.find('|') + 1);
    if (sub == *lower) return &s;
  }
  return nullptr;
}

bool arity_ok(const CommandSpec& spec, size_t argc) {
  const auto n = static_cast<int64_t>(argc);
  return spec.arity >= 0 ? n == spec.arity : n >= -static_cast<int64_t>(spec.arity);
}

std::vector<size_t> key_positions(const CommandSpec& spec, size_t argc) {
  std::vector<size_t> out;
  if (spec.first_key <= 0 || spec.key_step <= 0) return out;
  int64_t last = spec.last_key >= 0 ? spec.last_key : static_cast<int64_t>(argc) + spec.last_key;
  for (int64_t i = spec.first_key; i <= last && i < static_cast<int64_t>(argc);
       i += spec.key_step) {
    // A key of a pair whose value is missing (MSET k) is not counted.
    if (spec.key_step > 1 && i + 1 >= static_cast<int64_t>(argc)) break;
    out.push_back(static_cast<size_t>(i));
  }
  return out;
}

std::vector<size_t> command_keys(const CommandSpec& spec, std::span<const std::string_view> args) {
  if (spec.find_keys == nullptr) return key_positions(spec, args.size());
  std::vector<size_t> out;
  spec.find_keys(args, &out);
  return out;
}

std::string arity_error(std::string_view full_name) {
  std::string e = "ERR wrong number of arguments for '";
  e.append(full_name);
  e.append("' command");
  return e;
}

std::string unknown_command_error(std::span<const std::string_view> args) {
  // Redis 7: the name up to 128 bytes, then each argument quoted and
  // followed by a space while the list is under 128 bytes, each cut to what
  // is left of the 128.
  constexpr size_t kMax = 128;
  std::string list;
  for (size_t i = 1; i < args.size() && list.size() < kMax; i++) {
    const size_t precision = kMax - list.size();
    list.push_back('\'');
    list.append(c_prefix(args[i], precision));
    list.append("' ");
  }
  std::string e = "ERR unknown command '";
  if (!args.empty()) e.append(c_prefix(args[0], kMax));
  e.append("', with args beginning with: ");
  e.append(list);
  return e;
}

std::string unknown_subcommand_error(std::string_view container, std::string_view sub) {
  std::string upper(c_prefix(container, container.size()));
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string e = "ERR unknown subcommand '";
  e.append(c_prefix(sub, 128));
  e.append("'. Try ");
  e.append(upper);
  e.append(" HELP.");
  return e;
}

std::string invalid_expire_error(std::string_view full_name) {
  std::string e = "ERR invalid expire time in '";
  e.append(full_name);
  e.append("' command");
  return e;
}

void execute_command(Keyspace& ks, net::ReplyWriter& out, const KvOptions& options,
                     std::span<const std::string_view> args, bool internal, uint64_t random,
                     ScriptEngine* scripts, ApplyEvents* events) {
  if (args.empty()) {
    out.error("ERR empty command");
    return;
  }
  const CommandSpec* spec = internal ? find_internal_command(args[0]) : nullptr;
  if (spec == nullptr) spec = find_command(args[0]);
  if (spec == nullptr) {
    out.error(unknown_command_error(args));
    return;
  }
  if (spec->handler == nullptr) {
    out.error("ERR '" + std::string(spec->name) + "' is served by the node, not replicated");
    return;
  }
  if (!arity_ok(*spec, args.size())) {
    out.error(arity_error(spec->name));
    return;
  }
  CommandContext ctx{ks, out, options, *spec, random, scripts, events};
  // The command's writes are logged into its events (keys changed, for
  // CLIENT TRACKING; "new" and "expired" notifications). A command run
  // inside another (a script's redis.call) logs into the outer one's.
  ApplyEvents* const outer = ks.change_log();
  if (events != nullptr) ks.set_change_log(events);
  spec->handler(ctx, args);
  ks.set_change_log(outer);
}

}  // namespace qkv::kv
