// Internal: the data command handlers the table points at, and the helpers
// they share. Each handler replies exactly one RESP value.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "kv/collection.h"
#include "kv/commands.h"
#include "kv/events.h"

namespace qkv::kv {

using Args = std::span<const std::string_view>;

// Strings (string_commands.cc).
void cmd_get(CommandContext& ctx, Args args);
void cmd_set(CommandContext& ctx, Args args);
void cmd_setnx(CommandContext& ctx, Args args);
void cmd_setex(CommandContext& ctx, Args args);
void cmd_psetex(CommandContext& ctx, Args args);
void cmd_getset(CommandContext& ctx, Args args);
void cmd_getdel(CommandContext& ctx, Args args);
void cmd_getex(CommandContext& ctx, Args args);
void cmd_mget(CommandContext& ctx, Args args);
void cmd_mset(CommandContext& ctx, Args args);
void cmd_msetnx(CommandContext& ctx, Args args);
void cmd_append(CommandContext& ctx, Args args);
void cmd_strlen(CommandContext& ctx, Args args);
void cmd_getrange(CommandContext& ctx, Args args);
void cmd_setrange(CommandContext& ctx, Args args);
void cmd_incr(CommandContext& ctx, Args args);
void cmd_decr(CommandContext& ctx, Args args);
void cmd_incrby(CommandContext& ctx, Args args);
void cmd_decrby(CommandContext& ctx, Args args);
void cmd_incrbyfloat(CommandContext& ctx, Args args);
void cmd_cas(CommandContext& ctx, Args args);

// Keys, expiry, the keyspace (key_commands.cc).
void cmd_del(CommandContext& ctx, Args args);
void cmd_exists(CommandContext& ctx, Args args);
void cmd_type(CommandContext& ctx, Args args);
void cmd_rename(CommandContext& ctx, Args args);
void cmd_renamenx(CommandContext& ctx, Args args);
void cmd_expire(CommandContext& ctx, Args args);
void cmd_pexpire(CommandContext& ctx, Args args);
void cmd_expireat(CommandContext& ctx, Args args);
void cmd_pexpireat(CommandContext& ctx, Args args);
void cmd_ttl(CommandContext& ctx, Args args);
void cmd_pttl(CommandContext& ctx, Args args);
void cmd_expiretime(CommandContext& ctx, Args args);
void cmd_pexpiretime(CommandContext& ctx, Args args);
void cmd_persist(CommandContext& ctx, Args args);
void cmd_keys(CommandContext& ctx, Args args);
void cmd_scan(CommandContext& ctx, Args args);
void cmd_randomkey(CommandContext& ctx, Args args);
void cmd_dbsize(CommandContext& ctx, Args args);
void cmd_flushdb(CommandContext& ctx, Args args);
void cmd_delexpired(CommandContext& ctx, Args args);

// Hashes (hash_commands.cc).
void cmd_hset(CommandContext& ctx, Args args);
void cmd_hmset(CommandContext& ctx, Args args);
void cmd_hsetnx(CommandContext& ctx, Args args);
void cmd_hget(CommandContext& ctx, Args args);
void cmd_hmget(CommandContext& ctx, Args args);
void cmd_hdel(CommandContext& ctx, Args args);
void cmd_hgetall(CommandContext& ctx, Args args);
void cmd_hkeys(CommandContext& ctx, Args args);
void cmd_hvals(CommandContext& ctx, Args args);
void cmd_hexists(CommandContext& ctx, Args args);
void cmd_hlen(CommandContext& ctx, Args args);
void cmd_hstrlen(CommandContext& ctx, Args args);
void cmd_hincrby(CommandContext& ctx, Args args);
void cmd_hincrbyfloat(CommandContext& ctx, Args args);
void cmd_hrandfield(CommandContext& ctx, Args args);
void cmd_hscan(CommandContext& ctx, Args args);

// Sets (set_commands.cc).
void cmd_sadd(CommandContext& ctx, Args args);
void cmd_srem(CommandContext& ctx, Args args);
void cmd_smembers(CommandContext& ctx, Args args);
void cmd_sismember(CommandContext& ctx, Args args);
void cmd_smismember(CommandContext& ctx, Args args);
void cmd_scard(CommandContext& ctx, Args args);
void cmd_smove(CommandContext& ctx, Args args);
void cmd_spop(CommandContext& ctx, Args args);
void cmd_srandmember(CommandContext& ctx, Args args);
void cmd_sinter(CommandContext& ctx, Args args);
void cmd_sintercard(CommandContext& ctx, Args args);
void cmd_sinterstore(CommandContext& ctx, Args args);
void cmd_sunion(CommandContext& ctx, Args args);
void cmd_sunionstore(CommandContext& ctx, Args args);
void cmd_sdiff(CommandContext& ctx, Args args);
void cmd_sdiffstore(CommandContext& ctx, Args args);
void cmd_sscan(CommandContext& ctx, Args args);

// Lists (list_commands.cc).
void cmd_lpush(CommandContext& ctx, Args args);
void cmd_rpush(CommandContext& ctx, Args args);
void cmd_lpushx(CommandContext& ctx, Args args);
void cmd_rpushx(CommandContext& ctx, Args args);
void cmd_lpop(CommandContext& ctx, Args args);
void cmd_rpop(CommandContext& ctx, Args args);
void cmd_llen(CommandContext& ctx, Args args);
void cmd_lrange(CommandContext& ctx, Args args);
void cmd_lindex(CommandContext& ctx, Args args);
void cmd_lset(CommandContext& ctx, Args args);
void cmd_linsert(CommandContext& ctx, Args args);
void cmd_lrem(CommandContext& ctx, Args args);
void cmd_ltrim(CommandContext& ctx, Args args);
void cmd_lpos(CommandContext& ctx, Args args);
void cmd_lmove(CommandContext& ctx, Args args);
void cmd_rpoplpush(CommandContext& ctx, Args args);

// Streams (stream_commands.cc).
void cmd_xadd(CommandContext& ctx, Args args);
void cmd_xtrim(CommandContext& ctx, Args args);
void cmd_xlen(CommandContext& ctx, Args args);
void cmd_xrange(CommandContext& ctx, Args args);
void cmd_xrevrange(CommandContext& ctx, Args args);
void cmd_xread(CommandContext& ctx, Args args);
void cmd_xreadgroup(CommandContext& ctx, Args args);
void cmd_xdel(CommandContext& ctx, Args args);
void cmd_xsetid(CommandContext& ctx, Args args);
void cmd_xgroup(CommandContext& ctx, Args args);
void cmd_xack(CommandContext& ctx, Args args);
void cmd_xpending(CommandContext& ctx, Args args);
void cmd_xclaim(CommandContext& ctx, Args args);
void cmd_xautoclaim(CommandContext& ctx, Args args);
void cmd_xinfo(CommandContext& ctx, Args args);
// KeyFinder of XREAD and XREADGROUP: the keys after STREAMS (the first half
// of what follows it), as Redis's xreadGetKeys finds them.
void xread_keys(Args args, std::vector<size_t>* out);
// For the server's blocking of XREAD / XREADGROUP: the BLOCK timeout of a
// request (ms; 0 = forever), or nullopt without a valid BLOCK option. The
// handler answers the null array when nothing can be served (see the
// comment at its end in stream_commands.cc); a client with a BLOCK
// timeout should then wait for a write to one of its keys and run the
// command again (XREADGROUP with '>' only: an explicit id reads the
// consumer's history, which never blocks).
std::optional<int64_t> stream_read_block_ms(Args args);

// Scripts (script_commands.cc).
void cmd_eval(CommandContext& ctx, Args args);
void cmd_evalsha(CommandContext& ctx, Args args);
void cmd_eval_ro(CommandContext& ctx, Args args);
void cmd_evalsha_ro(CommandContext& ctx, Args args);
void cmd_script(CommandContext& ctx, Args args);
// EVAL's keys (a KeyFinder): the numkeys arguments after numkeys.
void eval_keys(Args args, std::vector<size_t>* out);

// Locks and fencing (lock_commands.cc).
void cmd_lock(CommandContext& ctx, Args args);
void cmd_lock_refresh(CommandContext& ctx, Args args);
void cmd_unlock(CommandContext& ctx, Args args);
void cmd_lock_info(CommandContext& ctx, Args args);
void cmd_fence(CommandContext& ctx, Args args);
void fence_keys(Args args, std::vector<size_t>* out);

// Blocking list commands, run once, and the internal commands of blocked
// clients (waiters.cc).
void cmd_blpop(CommandContext& ctx, Args args);
void cmd_brpop(CommandContext& ctx, Args args);
void cmd_blmove(CommandContext& ctx, Args args);
void cmd_brpoplpush(CommandContext& ctx, Args args);
void cmd_block(CommandContext& ctx, Args args);
void cmd_unblock(CommandContext& ctx, Args args);
void cmd_renewblock(CommandContext& ctx, Args args);
void cmd_timers(CommandContext& ctx, Args args);
void cmd_unblockstale(CommandContext& ctx, Args args);

// Keyspace notifications (command_util.cc).

// Appends the notification `event` of class `cls` for `key` to the
// command's apply events, if it has some and they collect notifications
// (ApplyEvents::want_keyspace). Call it after the change, only when
// something changed, in Redis's order; "new" and "expired" come from the
// Keyspace itself (Keyspace::set_change_log).
void notify(CommandContext& ctx, NotifyClass cls, std::string_view event, std::string_view key);

// --- Helpers ---------------------------------------------------------------

// ASCII case-insensitive equality.
bool ieq(std::string_view a, std::string_view b);

// Integer arguments as Redis's string2ll reads them; on failure replies
// "ERR value is not an integer or out of range" and returns false.
bool parse_int_arg(CommandContext& ctx, std::string_view arg, int64_t* out);

// Long doubles as Redis's string2ld reads them (strtold of every byte, no
// leading space, not NaN, no overflow, no underflow to zero, shorter than
// 5 KiB).
bool parse_long_double(std::string_view s, long double* out);

// The live record of `key` if it is a string. Replies WRONGTYPE and returns
// false if it holds another type; *rec is nullopt when the key is absent.
bool find_string(CommandContext& ctx, std::string_view key, std::optional<Record>* rec);

// The live record of `key` if it holds type t. Replies WRONGTYPE and
// returns false if it holds another type; *rec is nullopt when absent.
bool find_typed(CommandContext& ctx, std::string_view key, ValueType t,
                std::optional<Record>* rec);

// The collection of type t at `key`. Replies WRONGTYPE and returns false if
// the key holds another type. When the key is absent, *c stays empty, or
// with `create` holds a new empty collection (stored by its save()).
bool open_collection(CommandContext& ctx, std::string_view key, ValueType t, bool create,
                     std::optional<Collection>* c);

// HSCAN and SSCAN: key cursor [MATCH pattern] [COUNT count]. The cursor is
// a member hash (layout.h): a call stops only where the hash changes, so a
// member present for the whole iteration is returned exactly once.
void member_scan(CommandContext& ctx, Args args, ValueType t);

// A SCAN-family cursor as Redis reads it (strtoul): decimal, optional sign
// (a negative one wraps around), nothing after it, no leading space; the
// empty string is cursor 0.
bool parse_cursor(std::string_view s, uint64_t* out);

// Redis's getRangeLongFromObjectOrReply: an integer in [min, max]. On
// failure replies `msg` (prefixed "ERR ") if given, else Redis's default
// texts ("value is not an integer or out of range" when it does not parse,
// "value is out of range, value must between MIN and MAX" when outside).
bool parse_range_arg(CommandContext& ctx, std::string_view arg, int64_t min, int64_t max,
                     int64_t* out, std::string_view msg = {});
// Redis's getPositiveLongFromObjectOrReply: [0, INT64_MAX], `msg` (default
// "value is out of range, must be positive") for anything else.
bool parse_positive_arg(CommandContext& ctx, std::string_view arg, int64_t* out,
                        std::string_view msg = "value is out of range, must be positive");

}  // namespace qkv::kv
