// Limits of the key-value state machine (STYLE.md point 7). Every replica of
// a group must run with the same values for the options marked
// "replicated": they change what a command does, so replicas that disagree
// would diverge.
#pragma once

#include <cstdint>

namespace qkv::kv {

struct KvOptions {
  // Replicated. The longest string value APPEND and SETRANGE may build.
  // Redis: proto-max-bulk-len (512 MiB); the error text names that setting.
  uint64_t string_bytes_max = 512ull << 20;

  // The most keys one KEYS reply may hold; a larger answer is refused with
  // an error that suggests SCAN (Redis has no limit).
  uint64_t keys_reply_max = 1ull << 24;
  // SCAN's COUNT is capped to this many keys examined per call.
  uint64_t scan_count_max = 100000;
  // RANDOMKEY gives up (nil) after examining this many expired keys in a row.
  uint64_t randomkey_examined_max = 1000;
  // SRANDMEMBER and HRANDFIELD with a negative count (repeats allowed) refuse
  // a count larger than this (Redis has no limit and builds any reply).
  uint64_t random_reply_max = 1ull << 20;

  // Lua scripts (EVAL, EVALSHA, SCRIPT LOAD; script.h). Replicated: these
  // decide where a script stops, and the script's writes and reply up to
  // there. Redis has none of these limits (a runaway script there is
  // stopped by SCRIPT KILL, which a replicated log cannot do).
  // The longest script body EVAL and SCRIPT LOAD accept.
  uint64_t script_bytes_max = 4ull << 20;
  // Lua VM instructions one run may execute (counted in steps of 1000). Lua
  // 5.1 runs 80-200M instructions/s here, so 100M is about a second: far
  // above what a Redis-style script needs (a lock release: ~50), and a
  // runaway script holds the group's apply (on every replica) for about as
  // long as Redis takes to start answering BUSY (lua-time-limit: 5 s). C
  // library calls (string.rep, string.find) count as one instruction; their
  // work is bounded by the memory limit, except backtracking patterns.
  uint64_t script_instructions_max = 100'000'000;
  // Bytes of Lua heap one run may hold (its fresh state's base libraries,
  // ~30 KiB, included).
  uint64_t script_memory_bytes_max = 128ull << 20;
  // The longest reply a script may return (a table can repeat one large
  // string many times for little memory).
  uint64_t script_reply_bytes_max = 512ull << 20;
  // Not replicated (local memory only): compiled scripts kept per state
  // machine, least recently used evicted first; a miss recompiles from the
  // replicated body.
  uint64_t script_cache_entries_max = 1024;
  uint64_t script_cache_bytes_max = 64ull << 20;

  // Streams (stream_commands.cc). Replicated: XREADGROUP and XAUTOCLAIM
  // change the PEL for the entries they deliver, up to this cap.
  // The most entries one stream reply holds. XRANGE and XREVRANGE that would
  // return more (no COUNT, or a larger one) are refused with an error that
  // suggests COUNT; XREAD, XREADGROUP (per stream), XPENDING, XAUTOCLAIM and
  // XINFO STREAM FULL (its COUNT 0, "everything") are capped to it. Redis
  // has no limit.
  uint64_t stream_reply_entries_max = 1ull << 20;
  // XINFO STREAM FULL's default COUNT (entries, and PEL entries per group
  // and per consumer), as in Redis.
  uint64_t stream_info_full_count_default = 10;

  // snapshot() carries the group's whole data in the Raft snapshot's `data`
  // (in memory); a larger state fails to snapshot (kInvalidArgument) and the
  // log is simply not compacted.
  uint64_t snapshot_bytes_max = 2ull << 30;
};

}  // namespace qkv::kv
