// Blocked clients in the replicated state: BLPOP, BRPOP, BLMOVE,
// BRPOPLPUSH and LOCK ... WAIT (docs/ARCHITECTURE.md decision 38).
//
// A client that must wait is not held by one node's memory: the node that
// holds its connection proposes `block <id> <lease_ms> <command...>`. When
// applied, the command is tried at once; if it cannot be served, a waiter
// is queued, per key, in the group's state, in the order the entries were
// applied. Every later entry that pushes to a list (or frees a lock) serves
// the first waiters of that key, first blocked first served, by running
// their command; the reply goes into ApplyEvents::served under the waiter's
// id (a stream read that finds nothing for itself does not hold back the
// ones behind it; XGROUP DESTROY, deleting or replacing a stream and
// FLUSHALL try the waiters again, so XREADGROUP gets NOGROUP). Every
// replica computes the same serving, so the node holding the
// client answers it from its own applies, whoever leads, across leader
// changes; an element is handed to exactly one waiter, in the log.
//
// Time: a waiter has a deadline (its timeout, or, without one, a lease the
// node renews with `renewblock`); the leader proposes `timers` for the due
// ones and they get their timeout reply. A node that restarts proposes
// `unblockstale` for its previous incarnation's waiters; a connection that
// closes, `unblock` for its own.
//
// Storage (docs/KV_FORMAT.md):
//   'w' 'i' id                                  -> kvpb::Waiter
//   'w' 'q' position:u64be key_len:u32be key seq:u64be -> id   (a key's queue)
//   't' at_ms:u64be kind:u8 name                -> ""  (kind 'W': a waiter's
//        deadline, name its id; kind 'L': a lock's lease end, name the lock)
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kv/handlers.h"
#include "kv/keyspace.h"

namespace qkv::kv {

// Internal commands (proposed by nodes; clients cannot name them).
//   block id lease_ms command [arg ...]    runs or queues a blocking command
//   unblock id [id ...]                    its timeout reply, now
//   renewblock lease_ms id [id ...]        extends leases of waiters without timeout
//   timers timer [timer ...]               fires the due timers among those given
//   unblockstale id_prefix keep_prefix     drops a node's previous waiters
inline constexpr std::string_view kBlockCommand = "block";
inline constexpr std::string_view kUnblockCommand = "unblock";
inline constexpr std::string_view kRenewBlockCommand = "renewblock";
inline constexpr std::string_view kTimersCommand = "timers";
inline constexpr std::string_view kUnblockStaleCommand = "unblockstale";
// The reply of `block` when the client now waits (clients never see it).
inline constexpr std::string_view kBlockedReply = "+BLOCKED\r\n";

// True for a command that `block` can queue (BLPOP, BRPOP, BLMOVE,
// BRPOPLPUSH, LOCK, XREAD, XREADGROUP).
bool is_blockable(std::string_view command);

// Up to max_n timers due at ks.now_ms() (arguments for `timers`), earliest
// first.
std::vector<std::string> due_timers(Keyspace& ks, size_t max_n);

// Serves the first waiters of `key` that can now be served (after a push or
// a lock's release). ctx is any command context of the entry (its Keyspace,
// options and events).
void serve_waiters(CommandContext& ctx, std::string_view key);
// The keys blocked clients wait on (after FLUSHALL: their waiters are tried
// again). O(waiters).
std::vector<std::string> keys_with_waiters(Keyspace& ks);

// The lock a `timers` argument names, if it is a lock lease's timer (a
// waiter's timer names no key).
std::optional<std::string_view> timer_lock_name(std::string_view timer_arg);

// Checks that the waiter records, their queue entries and timers agree,
// and the waiter count. O(waiters): tests only.
Status TEST_check_waiters(Keyspace& ks);

// The number of waiters queued on `key` (LOCK.INFO, tests).
uint64_t waiter_count(Keyspace& ks, std::string_view key);

// Timers of locks (lock_commands.cc keeps one per held lock).
void put_timer(Keyspace& ks, int64_t at_ms, char kind, std::string_view name);
void del_timer(Keyspace& ks, int64_t at_ms, char kind, std::string_view name);
// Called by `timers` for a due lock timer (lock_commands.cc).
void lock_timer_fired(CommandContext& ctx, std::string_view name);
// LOCK name owner ttl_ms [WAIT ms] once (lock_commands.cc): true if it
// replied (the token, or an error), false if another owner holds the lock
// (nothing written). A free lock goes to its queued waiters first.
bool try_lock(CommandContext& ctx, Args args);
// Grants the free lock `name` to owner for ttl_ms: the new token
// (lock_commands.cc; serving a LOCK waiter).
uint64_t grant_lock(CommandContext& ctx, std::string_view name, std::string_view owner,
                    int64_t ttl_ms);
// True if the lock `name` is held at ctx's time (or the key is not a lock).
bool lock_held(CommandContext& ctx, std::string_view name);

}  // namespace qkv::kv
