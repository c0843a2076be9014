// Internal: the data command handlers the table points at, and the helpers
// they share. Each handler replies exactly one RESP value.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "kv/commands.h"

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

}  // namespace qkv::kv
