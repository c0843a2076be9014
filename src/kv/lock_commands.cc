// Native locks with fencing tokens: LOCK, LOCK.REFRESH, UNLOCK, LOCK.INFO,
// FENCE (docs/LOCKS.md has the safety argument).
//
// A lock is a key of type "lock" whose record holds the owner, the fencing
// token of the grant and the lease's end, in entry-stamp time (never a
// local clock: every replica decides alike). A lease that ended frees the
// lock for every command at once, whether or not anything was written
// since; a timer ('t', waiters.h) makes the leader propose the hand-over to
// the next waiter, so waiters do not depend on another client's command.
//
// Tokens come from one counter per group (KeyspaceCounters::fence, kept by
// FLUSHALL): every grant of any lock gets a larger token than every grant
// before it, so the tokens of successive holders of one lock strictly
// increase.
#include <string>
#include <vector>

#include "kv/handlers.h"
#include "kv/kv.pb.h"
#include "kv/waiters.h"

namespace qkv::kv {

namespace {

constexpr char kTimerLock = 'L';

// The lock record at `name`: false (WRONGTYPE replied) if the key holds
// another type; *out is empty when there is no lock.
bool load_lock(CommandContext& ctx, std::string_view name, std::optional<kvpb::Lock>* out,
               bool reply_wrongtype = true) {
  out->reset();
  auto rec = ctx.ks.find(name);
  if (!rec) return true;
  if (rec->type != ValueType::kLock) {
    if (reply_wrongtype) ctx.out.error(kErrWrongType);
    return false;
  }
  kvpb::Lock l;
  if (!l.ParseFromString(rec->payload)) {
    ctx.ks.txn().fail(Status(Code::kCorruption, "undecodable lock record"));
    return false;
  }
  *out = std::move(l);
  return true;
}

bool live(CommandContext& ctx, const kvpb::Lock& l) {
  return l.lease_until_ms() > ctx.ks.now_ms();
}

// Writes the lock (and moves its timer from old's lease end to l's).
void store_lock(CommandContext& ctx, std::string_view name, const kvpb::Lock& l,
                const std::optional<kvpb::Lock>& old) {
  if (old) del_timer(ctx.ks, old->lease_until_ms(), kTimerLock, name);
  Record r;
  r.type = ValueType::kLock;
  r.payload = l.SerializeAsString();
  ctx.ks.put(name, r);
  put_timer(ctx.ks, l.lease_until_ms(), kTimerLock, name);
}

void release(CommandContext& ctx, std::string_view name, const kvpb::Lock& l) {
  del_timer(ctx.ks, l.lease_until_ms(), kTimerLock, name);
  ctx.ks.remove(name);
}

bool parse_ttl(CommandContext& ctx, std::string_view arg, int64_t* ttl_ms) {
  return parse_range_arg(ctx, arg, 1, INT64_MAX / 2, ttl_ms,
                         "the lock's ttl must be a number of milliseconds > 0");
}

}  // namespace

bool lock_held(CommandContext& ctx, std::string_view name) {
  std::optional<kvpb::Lock> l;
  if (!load_lock(ctx, name, &l, /*reply_wrongtype=*/false)) return true;  // not a lock
  return l && live(ctx, *l);
}

uint64_t grant_lock(CommandContext& ctx, std::string_view name, std::string_view owner,
                    int64_t ttl_ms) {
  std::optional<kvpb::Lock> old;
  if (!load_lock(ctx, name, &old, /*reply_wrongtype=*/false)) old.reset();
  kvpb::Lock l;
  l.set_owner(std::string(owner));
  l.set_token(++ctx.ks.mutable_counters().fence);
  l.set_lease_until_ms(ctx.ks.now_ms() + ttl_ms);
  store_lock(ctx, name, l, old);
  return l.token();
}

bool try_lock(CommandContext& ctx, Args args) {
  const std::string_view name = args[1], owner = args[2];
  int64_t ttl = 0;
  if (!parse_ttl(ctx, args[3], &ttl)) return true;
  std::optional<kvpb::Lock> l;
  if (!load_lock(ctx, name, &l)) return true;
  if (l && live(ctx, *l)) {
    if (l->owner() != owner) return false;
    // The holder asks again (a retry after an unknown outcome): a refresh,
    // same token.
    auto old = l;
    l->set_lease_until_ms(ctx.ks.now_ms() + ttl);
    store_lock(ctx, name, *l, old);
    ctx.out.integer(static_cast<int64_t>(l->token()));
    return true;
  }
  // Free: those queued before us come first.
  serve_waiters(ctx, name);
  if (lock_held(ctx, name)) return false;
  ctx.out.integer(static_cast<int64_t>(grant_lock(ctx, name, owner, ttl)));
  return true;
}

void lock_timer_fired(CommandContext& ctx, std::string_view name) {
  std::optional<kvpb::Lock> l;
  if (!load_lock(ctx, name, &l, /*reply_wrongtype=*/false)) return;
  if (l && live(ctx, *l)) return;  // refreshed: its new timer is due later
  if (l) release(ctx, name, *l);
  serve_waiters(ctx, name);
}

// LOCK name owner ttl_ms [WAIT ms]
void cmd_lock(CommandContext& ctx, Args args) {
  if (args.size() != 4 && args.size() != 6) {
    ctx.out.error(kErrSyntax);
    return;
  }
  int64_t ttl = 0, wait = 0;
  if (!parse_ttl(ctx, args[3], &ttl)) return;
  if (args.size() == 6) {
    if (!ieq(args[4], "wait")) {
      ctx.out.error(kErrSyntax);
      return;
    }
    if (!parse_range_arg(ctx, args[5], 0, INT64_MAX / 2, &wait,
                         "WAIT must be a number of milliseconds >= 0")) {
      return;
    }
  }
  // Run as a plain command (MULTI, a script) it never waits.
  if (!try_lock(ctx, args)) ctx.out.null();
}

// LOCK.REFRESH name owner ttl_ms
void cmd_lock_refresh(CommandContext& ctx, Args args) {
  int64_t ttl = 0;
  if (!parse_ttl(ctx, args[3], &ttl)) return;
  std::optional<kvpb::Lock> l;
  if (!load_lock(ctx, args[1], &l)) return;
  if (!l || !live(ctx, *l) || l->owner() != args[2]) {
    ctx.out.null();
    return;
  }
  auto old = l;
  l->set_lease_until_ms(ctx.ks.now_ms() + ttl);
  store_lock(ctx, args[1], *l, old);
  ctx.out.integer(static_cast<int64_t>(l->token()));
}

// UNLOCK name owner
void cmd_unlock(CommandContext& ctx, Args args) {
  std::optional<kvpb::Lock> l;
  if (!load_lock(ctx, args[1], &l)) return;
  if (!l || !live(ctx, *l) || l->owner() != args[2]) {
    ctx.out.integer(0);
    return;
  }
  release(ctx, args[1], *l);
  serve_waiters(ctx, args[1]);
  ctx.out.integer(1);
}

// LOCK.INFO name: nil when free, else owner, token, the lease's ms left and
// the number of waiters (as a map in RESP3).
void cmd_lock_info(CommandContext& ctx, Args args) {
  std::optional<kvpb::Lock> l;
  if (!load_lock(ctx, args[1], &l)) return;
  if (!l || !live(ctx, *l)) {
    ctx.out.null();
    return;
  }
  ctx.out.map(4);
  ctx.out.bulk("owner");
  ctx.out.bulk(l->owner());
  ctx.out.bulk("token");
  ctx.out.integer(static_cast<int64_t>(l->token()));
  ctx.out.bulk("ttl_ms");
  ctx.out.integer(l->lease_until_ms() - ctx.ks.now_ms());
  ctx.out.bulk("waiters");
  ctx.out.integer(static_cast<int64_t>(waiter_count(ctx.ks, args[1])));
}

// FENCE name token [command [arg ...]]: runs the command (or just answers
// OK) only if `token` is the token of the lock's current, unexpired grant;
// otherwise -FENCED and nothing runs. One entry: the check and the write
// are atomic.
void cmd_fence(CommandContext& ctx, Args args) {
  int64_t signed_token = 0;
  if (!net::parse_int64(args[2], &signed_token) || signed_token < 0) {
    ctx.out.error("ERR the fencing token must be an integer >= 0");
    return;
  }
  const auto token = static_cast<uint64_t>(signed_token);
  const CommandSpec* inner = nullptr;
  if (args.size() > 3) {
    inner = find_command(args[3]);
    if (inner == nullptr) {
      ctx.out.error(unknown_command_error(args.subspan(3)));
      return;
    }
    if (inner->handler == nullptr || (inner->flags & kCmdBlocking) != 0 ||
        inner->name == "fence" || inner->name.starts_with("eval") || inner->name == "script") {
      ctx.out.error("ERR FENCE cannot run '" + std::string(inner->name) + "'");
      return;
    }
    if (!arity_ok(*inner, args.size() - 3)) {
      ctx.out.error(arity_error(inner->name));
      return;
    }
  }
  std::optional<kvpb::Lock> l;
  if (!load_lock(ctx, args[1], &l)) return;
  if (!l || !live(ctx, *l) || l->token() != token) {
    std::string e = "FENCED token " + std::to_string(token) + " does not hold lock '" +
                    std::string(args[1]) + "'";
    if (l && live(ctx, *l)) e += " (held with token " + std::to_string(l->token()) + ")";
    ctx.out.error(e);
    return;
  }
  if (inner == nullptr) {
    ctx.out.ok();
    return;
  }
  CommandContext sub{ctx.ks, ctx.out, ctx.options, *inner, ctx.random, ctx.scripts, ctx.events};
  inner->handler(sub, args.subspan(3));
}

// FENCE's keys: the lock, then the keys of the command it runs.
void fence_keys(Args args, std::vector<size_t>* out) {
  out->push_back(1);
  if (args.size() <= 3) return;
  const CommandSpec* inner = find_command(args[3]);
  if (inner == nullptr || !arity_ok(*inner, args.size() - 3)) return;
  for (size_t i : command_keys(*inner, args.subspan(3))) out->push_back(i + 3);
}

}  // namespace qkv::kv
