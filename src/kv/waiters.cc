// Blocked clients in the replicated state (waiters.h), and the blocking
// list commands BLPOP, BRPOP, BLMOVE, BRPOPLPUSH. Run as plain commands
// (inside MULTI, a script, or tried by `block`) they never wait: they pop
// if they can and otherwise give their timeout reply at once, as Redis
// does inside a transaction.
#include "kv/waiters.h"

#include <cmath>
#include <string>
#include <vector>

#include "kv/handlers.h"
#include "kv/kv.pb.h"
#include "kv/stream.h"

namespace qkv::kv {

namespace {

constexpr char kWaiterRecord = 'i';
constexpr char kWaiterQueue = 'q';
constexpr char kTimerWaiter = 'W';
constexpr char kTimerLock = 'L';

std::string waiter_record_key(std::string_view id) {
  std::string k;
  k.reserve(2 + id.size());
  k.push_back(kWaiterTag);
  k.push_back(kWaiterRecord);
  k.append(id);
  return k;
}

// 'w' 'q' position key_len key: a key's queue.
std::string queue_prefix(std::string_view key) {
  std::string k;
  k.reserve(2 + 8 + 4 + key.size());
  k.push_back(kWaiterTag);
  k.push_back(kWaiterQueue);
  put_u64be(&k, key_position(key));
  put_u32be(&k, static_cast<uint32_t>(key.size()));
  k.append(key);
  return k;
}

std::string queue_key(std::string_view key, uint64_t seq) {
  std::string k = queue_prefix(key);
  put_u64be(&k, seq);
  return k;
}

std::string timer_key(int64_t at_ms, char kind, std::string_view name) {
  std::string k;
  k.reserve(1 + 8 + 1 + name.size());
  k.push_back(kTimerTag);
  put_u64be(&k, static_cast<uint64_t>(std::max<int64_t>(at_ms, 0)));
  k.push_back(kind);
  k.append(name);
  return k;
}

std::optional<kvpb::Waiter> load_waiter(Keyspace& ks, std::string_view id) {
  auto v = ks.txn().get(waiter_record_key(id));
  if (!v) return std::nullopt;
  kvpb::Waiter w;
  if (!w.ParseFromString(*v)) {
    ks.txn().fail(Status(Code::kCorruption, "undecodable waiter record"));
    return std::nullopt;
  }
  return w;
}

void remove_waiter(Keyspace& ks, std::string_view id, const kvpb::Waiter& w) {
  QKV_CHECK(ks.counters().waiters > 0) << "waiter count out of step";
  ks.mutable_counters().waiters--;
  for (const auto& key : w.keys()) ks.txn().del(queue_key(key, w.seq()));
  ks.txn().del(timer_key(w.deadline_ms(), kTimerWaiter, id));
  ks.txn().del(waiter_record_key(id));
}

net::Protocol protocol_of(uint32_t p) {
  return p == 3 ? net::Protocol::kResp3 : net::Protocol::kResp2;
}

// What a waiter of this command gets when its time is up.
bool is_stream_read(std::string_view command) {
  return ieq(command, "xread") || ieq(command, "xreadgroup");
}

void timeout_reply(net::ReplyWriter& w, std::string_view command) {
  if (ieq(command, "blpop") || ieq(command, "brpop") || is_stream_read(command)) {
    w.null_array();
  } else {
    w.null();  // BLMOVE, BRPOPLPUSH, LOCK
  }
}

void emit(CommandContext& ctx, std::string_view id, std::string reply) {
  if (ctx.events != nullptr) ctx.events->served.push_back(ServedWaiter{std::string(id), std::move(reply)});
}

// Removes the waiter and emits its timeout reply.
void time_out(CommandContext& ctx, std::string_view id, const kvpb::Waiter& w) {
  remove_waiter(ctx.ks, id, w);
  std::string reply;
  net::ReplyWriter rw(&reply, protocol_of(w.protocol()));
  timeout_reply(rw, w.args_size() > 0 ? std::string_view(w.args(0)) : std::string_view());
  emit(ctx, id, std::move(reply));
}

// Redis's timeout argument of the blocking list commands: seconds, a float,
// not negative; 0 waits forever. Replies the error and returns false.
bool parse_timeout_seconds(CommandContext& ctx, std::string_view arg, int64_t* timeout_ms) {
  long double secs = 0;
  if (!parse_long_double(arg, &secs) || std::isnan(secs)) {
    ctx.out.error("ERR timeout is not a float or out of range");
    return false;
  }
  if (secs < 0) {
    ctx.out.error("ERR timeout is negative");
    return false;
  }
  const long double ms = secs * 1000.0L;
  if (ms > static_cast<long double>(INT64_MAX / 2)) {
    ctx.out.error("ERR timeout is out of range");
    return false;
  }
  *timeout_ms = static_cast<int64_t>(std::ceil(ms));
  return true;
}

// LOCK's WAIT: milliseconds, an integer >= 0.
bool parse_wait_ms(CommandContext& ctx, Args args, int64_t* wait_ms) {
  *wait_ms = 0;
  if (args.size() == 4) return true;
  if (args.size() != 6 || !ieq(args[4], "wait")) {
    ctx.out.error(kErrSyntax);
    return false;
  }
  return parse_range_arg(ctx, args[5], 0, INT64_MAX / 2, wait_ms,
                         "WAIT must be a number of milliseconds >= 0");
}

// BLPOP, BRPOP: pops from the first non-empty list. False (nothing
// written) if every list is empty.
bool try_pop(CommandContext& ctx, Args args, bool left) {
  for (size_t i = 1; i + 1 < args.size(); i++) {
    std::optional<Collection> l;
    if (!open_collection(ctx, args[i], ValueType::kList, /*create=*/false, &l)) return true;
    if (!l) continue;
    std::string v = left ? l->pop_front() : l->pop_back();
    const bool emptied = l->size() == 0;
    l->save();
    notify(ctx, kNotifyList, left ? "lpop" : "rpop", args[i]);
    if (emptied) notify(ctx, kNotifyGeneric, "del", args[i]);
    ctx.out.array(2);
    ctx.out.bulk(args[i]);
    ctx.out.bulk(v);
    return true;
  }
  return false;
}

// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout, BRPOPLPUSH
// source destination timeout: LMOVE when the source has an element.
bool try_move(CommandContext& ctx, Args args) {
  std::optional<Collection> src;
  if (!open_collection(ctx, args[1], ValueType::kList, /*create=*/false, &src)) return true;
  if (!src) return false;
  std::vector<std::string_view> lmove{"lmove", args[1], args[2]};
  if (args.size() == 6) {
    lmove.push_back(args[3]);
    lmove.push_back(args[4]);
  } else {
    lmove.push_back("RIGHT");
    lmove.push_back("LEFT");
  }
  src.reset();  // LMOVE reopens it
  cmd_lmove(ctx, lmove);
  return true;
}

// Validates a blocking command's arguments (replying the error); its
// timeout in ms (0: none).
bool parse_blocking(CommandContext& ctx, Args args, int64_t* timeout_ms) {
  const std::string_view name = args[0];
  if (ieq(name, "lock")) {
    int64_t ttl = 0;
    if (!parse_range_arg(ctx, args[3], 1, INT64_MAX / 2, &ttl,
                         "the lock's ttl must be a number of milliseconds > 0")) {
      return false;
    }
    return parse_wait_ms(ctx, args, timeout_ms);
  }
  if (is_stream_read(name)) {
    // Validated by the command itself when tried; BLOCK is its timeout.
    *timeout_ms = stream_read_block_ms(args).value_or(0);
    return true;
  }
  if (ieq(name, "blmove")) {
    for (size_t i : {3, 4}) {
      if (!ieq(args[i], "left") && !ieq(args[i], "right")) {
        ctx.out.error(kErrSyntax);
        return false;
      }
    }
  }
  return parse_timeout_seconds(ctx, args.back(), timeout_ms);
}

// Runs a blockable command once, without waiting: true if it replied (a
// value or an error), false if it would have to wait (nothing written).
bool try_blocking(CommandContext& ctx, Args args) {
  const std::string_view name = args[0];
  if (ieq(name, "blpop")) return try_pop(ctx, args, /*left=*/true);
  if (ieq(name, "brpop")) return try_pop(ctx, args, /*left=*/false);
  if (ieq(name, "blmove") || ieq(name, "brpoplpush")) return try_move(ctx, args);
  if (is_stream_read(name)) {
    // Served when it reads something (or fails); its null reply means wait.
    std::string probe;
    net::ReplyWriter w(&probe, ctx.out.protocol());
    CommandContext sub{ctx.ks, w, ctx.options, ctx.spec, ctx.random, ctx.scripts, ctx.events};
    ctx.spec.handler(sub, args);
    if (net::is_null_reply(probe)) return false;
    ctx.out.out()->append(probe);
    return true;
  }
  QKV_CHECK(ieq(name, "lock")) << "not a blockable command: " << name;
  return try_lock(ctx, args);
}

// The keys a waiter of this command queues on.
std::vector<std::string_view> waiter_keys(Args args) {
  const std::string_view name = args[0];
  if (is_stream_read(name)) {
    std::vector<std::string_view> keys;
    for (size_t i : command_keys(*find_command(name), args)) keys.push_back(args[i]);
    return keys;
  }
  if (ieq(name, "blpop") || ieq(name, "brpop")) return {args.begin() + 1, args.end() - 1};
  return {args[1]};  // BLMOVE, BRPOPLPUSH: the source; LOCK: the lock
}

// Tries to serve the waiter `id`: true if it got its reply (and is gone).
bool try_serve(CommandContext& ctx, std::string_view id, const kvpb::Waiter& w) {
  std::vector<std::string_view> args(w.args().begin(), w.args().end());
  const CommandSpec* spec = find_command(args[0]);
  QKV_CHECK(spec != nullptr) << "a waiter of an unknown command";
  std::string reply;
  net::ReplyWriter rw(&reply, protocol_of(w.protocol()));
  CommandContext sub{ctx.ks, rw, ctx.options, *spec, ctx.random, ctx.scripts, ctx.events};
  bool served = false;
  if (ieq(args[0], "lock")) {
    // Serving a lock waiter: only when the lock is free, and it is granted
    // to this waiter (no second look at the queue).
    if (lock_held(ctx, args[1])) return false;
    int64_t ttl = 0;
    net::parse_int64(args[3], &ttl);
    rw.integer(static_cast<int64_t>(grant_lock(sub, args[1], args[2], ttl)));
    served = true;
  } else {
    served = try_blocking(sub, args);
  }
  if (!served) return false;
  remove_waiter(ctx.ks, id, w);
  emit(ctx, id, std::move(reply));
  return true;
}

}  // namespace

bool is_blockable(std::string_view command) {
  return ieq(command, "blpop") || ieq(command, "brpop") || ieq(command, "blmove") ||
         ieq(command, "brpoplpush") || ieq(command, "lock") || is_stream_read(command);
}

void put_timer(Keyspace& ks, int64_t at_ms, char kind, std::string_view name) {
  ks.txn().put(timer_key(at_ms, kind, name), "");
}

void del_timer(Keyspace& ks, int64_t at_ms, char kind, std::string_view name) {
  ks.txn().del(timer_key(at_ms, kind, name));
}

std::vector<std::string> due_timers(Keyspace& ks, size_t max_n) {
  std::vector<std::string> out;
  const std::string prefix(1, kTimerTag);
  ks.txn().scan(prefix, prefix, [&](std::string_view k, std::string_view) {
    if (out.size() >= max_n || k.size() < 10) return false;
    const auto at = static_cast<int64_t>(get_u64be(k.data() + 1));
    if (at > ks.now_ms()) return false;
    out.emplace_back(k.substr(1));  // at_ms kind name
    return true;
  });
  return out;
}

std::optional<std::string_view> timer_lock_name(std::string_view t) {
  if (t.size() < 10 || t[8] != kTimerLock) return std::nullopt;
  return t.substr(9);
}

Status TEST_check_waiters(Keyspace& ks) {
  uint64_t n = 0;
  Status bad;
  const std::string records(waiter_record_key(""));
  std::vector<std::pair<std::string, kvpb::Waiter>> all;
  ks.txn().scan(records, records, [&](std::string_view k, std::string_view v) {
    kvpb::Waiter w;
    if (!w.ParseFromArray(v.data(), static_cast<int>(v.size()))) {
      bad = Status(Code::kCorruption, "undecodable waiter");
      return false;
    }
    all.emplace_back(std::string(k.substr(2)), std::move(w));
    return true;
  });
  for (const auto& [id, w] : all) {
    n++;
    for (const auto& key : w.keys()) {
      auto q = ks.txn().get(queue_key(key, w.seq()));
      if (!q || *q != id) bad = Status(Code::kCorruption, "waiter " + id + " missing from a queue");
    }
    if (!ks.txn().get(timer_key(w.deadline_ms(), kTimerWaiter, id))) {
      bad = Status(Code::kCorruption, "waiter " + id + " has no timer");
    }
  }
  uint64_t queued = 0;
  const std::string queues{kWaiterTag, kWaiterQueue};
  ks.txn().scan(queues, queues, [&](std::string_view, std::string_view) {
    queued++;
    return true;
  });
  uint64_t keys = 0;
  for (const auto& [id, w] : all) keys += static_cast<uint64_t>(w.keys_size());
  if (queued != keys) bad = Status(Code::kCorruption, "stale queue entries");
  if (n != ks.counters().waiters) {
    bad = Status(Code::kCorruption, "waiter count " + std::to_string(ks.counters().waiters) +
                                        ", records " + std::to_string(n));
  }
  return bad;
}

uint64_t waiter_count(Keyspace& ks, std::string_view key) {
  uint64_t n = 0;
  const std::string prefix = queue_prefix(key);
  ks.txn().scan(prefix, prefix, [&](std::string_view, std::string_view) {
    n++;
    return true;
  });
  return n;
}

std::vector<std::string> keys_with_waiters(Keyspace& ks) {
  std::vector<std::string> keys;
  const std::string prefix{kWaiterTag, kWaiterQueue};
  ks.txn().scan(prefix, prefix, [&](std::string_view k, std::string_view) {
    // 'w' 'q' position:u64be key_len:u32be key seq:u64be
    if (k.size() < 2 + 8 + 4 + 8) return true;
    const uint32_t n = get_u32be(k.data() + 10);
    if (k.size() != 2 + 8 + 4 + size_t{n} + 8) return true;
    std::string_view key = k.substr(14, n);
    if (keys.empty() || keys.back() != key) keys.emplace_back(key);
    return true;
  });
  return keys;
}

void serve_waiters(CommandContext& ctx, std::string_view key) {
  const std::string prefix = queue_prefix(key);
  // Lists and locks are served in queue order, and the first waiter that
  // cannot be served stops the rest (they want the same element or lock).
  // Stream reads each wait for something of their own (an id, a group):
  // one left waiting does not stop the next. `from` is where to look next.
  std::string from = prefix;
  for (;;) {
    // The first waiter from `from` on (re-read after each one served:
    // serving changes the queue).
    std::string id;
    std::string qkey;
    ctx.ks.txn().scan(prefix, from, [&](std::string_view k, std::string_view v) {
      qkey.assign(k);
      id.assign(v);
      return false;
    });
    if (qkey.empty() || !ctx.ks.txn().status().is_ok()) return;
    auto w = load_waiter(ctx.ks, id);
    if (!w) {
      ctx.ks.txn().del(qkey);  // cannot happen: waiters are removed with their queue entries
      continue;
    }
    if (w->deadline_ms() <= ctx.ks.now_ms()) {
      time_out(ctx, id, *w);
      continue;
    }
    if (try_serve(ctx, id, *w)) continue;
    if (w->args_size() == 0 || !is_stream_read(w->args(0))) return;
    from = qkey;
    from.push_back('\0');  // the next queue key after this one
  }
}

// --- Blocking list commands, run once ------------------------------------

// BLPOP key [key ...] timeout
void cmd_blpop(CommandContext& ctx, Args args) {
  int64_t timeout = 0;
  if (!parse_timeout_seconds(ctx, args.back(), &timeout)) return;
  if (!try_pop(ctx, args, /*left=*/true)) ctx.out.null_array();
}

// BRPOP key [key ...] timeout
void cmd_brpop(CommandContext& ctx, Args args) {
  int64_t timeout = 0;
  if (!parse_timeout_seconds(ctx, args.back(), &timeout)) return;
  if (!try_pop(ctx, args, /*left=*/false)) ctx.out.null_array();
}

// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout
void cmd_blmove(CommandContext& ctx, Args args) {
  int64_t timeout = 0;
  if (!parse_blocking(ctx, args, &timeout)) return;
  if (!try_move(ctx, args)) ctx.out.null();
}

// BRPOPLPUSH source destination timeout
void cmd_brpoplpush(CommandContext& ctx, Args args) {
  int64_t timeout = 0;
  if (!parse_timeout_seconds(ctx, args.back(), &timeout)) return;
  if (!try_move(ctx, args)) ctx.out.null();
}

// --- Internal commands -----------------------------------------------------

// block id lease_ms command [arg ...]
void cmd_block(CommandContext& ctx, Args args) {
  const std::string_view id = args[1];
  int64_t lease_ms = 0;
  if (!net::parse_int64(args[2], &lease_ms) || lease_ms <= 0 || id.empty()) {
    ctx.out.error("ERR block: bad waiter id or lease");
    return;
  }
  const Args cmd = args.subspan(3);
  const CommandSpec* spec = find_command(cmd[0]);
  if (spec == nullptr || !is_blockable(spec->name)) {
    ctx.out.error("ERR block: not a blocking command");
    return;
  }
  if (!arity_ok(*spec, cmd.size())) {
    ctx.out.error(arity_error(spec->name));
    return;
  }
  // Proposed twice (a retried forward): the first one queued it.
  if (load_waiter(ctx.ks, id)) {
    ctx.out.out()->append(kBlockedReply);
    return;
  }
  CommandContext sub{ctx.ks, ctx.out, ctx.options, *spec, ctx.random, ctx.scripts, ctx.events};
  int64_t timeout = 0;
  if (!parse_blocking(sub, cmd, &timeout)) return;
  if (try_blocking(sub, cmd)) return;

  kvpb::Waiter w;
  for (const auto a : cmd) w.add_args(std::string(a));
  if (ieq(cmd[0], "xread")) {
    // "$" means after the stream's last id at the time of blocking: fixed
    // now, so later entries serve the waiter.
    const auto keys = command_keys(*spec, cmd);
    const size_t n = keys.size();
    for (size_t k = 0; k < n; k++) {
      const size_t id_pos = keys[k] + n;
      if (id_pos >= cmd.size() || cmd[id_pos] != "$") continue;
      StreamId last;
      if (auto rec = ctx.ks.find(cmd[keys[k]]); rec && rec->type == ValueType::kStream) {
        last = Stream(ctx.ks, cmd[keys[k]], *rec).meta().last;
      }
      w.set_args(static_cast<int>(id_pos),
                 std::to_string(last.ms) + "-" + std::to_string(last.seq));
    }
  }
  w.set_protocol(ctx.out.protocol() == net::Protocol::kResp3 ? 3 : 2);
  w.set_renewable(timeout == 0);
  w.set_deadline_ms(ctx.ks.now_ms() + (timeout == 0 ? lease_ms : timeout));
  w.set_seq(++ctx.ks.mutable_counters().waiter_seq);
  for (const auto k : waiter_keys(cmd)) {
    // BLPOP k k 0 queues once on k.
    if (std::find(w.keys().begin(), w.keys().end(), k) != w.keys().end()) continue;
    w.add_keys(std::string(k));
    ctx.ks.txn().put(queue_key(k, w.seq()), std::string(id));
  }
  put_timer(ctx.ks, w.deadline_ms(), kTimerWaiter, id);
  ctx.ks.txn().put(waiter_record_key(id), w.SerializeAsString());
  ctx.ks.mutable_counters().waiters++;
  ctx.out.out()->append(kBlockedReply);
}

// unblock id [id ...]: replies how many were waiting.
void cmd_unblock(CommandContext& ctx, Args args) {
  int64_t n = 0;
  for (size_t i = 1; i < args.size(); i++) {
    auto w = load_waiter(ctx.ks, args[i]);
    if (!w) continue;
    time_out(ctx, args[i], *w);
    n++;
  }
  ctx.out.integer(n);
}

// renewblock lease_ms id [id ...]: replies how many leases were extended.
void cmd_renewblock(CommandContext& ctx, Args args) {
  int64_t lease_ms = 0;
  if (!net::parse_int64(args[1], &lease_ms) || lease_ms <= 0) {
    ctx.out.error("ERR renewblock: bad lease");
    return;
  }
  int64_t n = 0;
  for (size_t i = 2; i < args.size(); i++) {
    auto w = load_waiter(ctx.ks, args[i]);
    if (!w || !w->renewable()) continue;
    const int64_t deadline = ctx.ks.now_ms() + lease_ms;
    if (deadline <= w->deadline_ms()) continue;
    del_timer(ctx.ks, w->deadline_ms(), kTimerWaiter, args[i]);
    w->set_deadline_ms(deadline);
    put_timer(ctx.ks, deadline, kTimerWaiter, args[i]);
    ctx.ks.txn().put(waiter_record_key(args[i]), w->SerializeAsString());
    n++;
  }
  ctx.out.integer(n);
}

// timers timer [timer ...]: each timer is at_ms:u64be kind name (from
// due_timers()); fires those that exist and are due at the entry's stamp.
// Replies how many fired.
void cmd_timers(CommandContext& ctx, Args args) {
  int64_t n = 0;
  for (size_t i = 1; i < args.size(); i++) {
    const std::string_view t = args[i];
    if (t.size() < 10) continue;
    const auto at = static_cast<int64_t>(get_u64be(t.data()));
    const std::string key = std::string(1, kTimerTag) + std::string(t);
    if (at > ctx.ks.now_ms() || !ctx.ks.txn().get(key)) continue;
    ctx.ks.txn().del(key);
    const std::string_view name = t.substr(9);
    if (t[8] == kTimerWaiter) {
      auto w = load_waiter(ctx.ks, name);
      if (w && w->deadline_ms() <= ctx.ks.now_ms()) time_out(ctx, name, *w);
    } else if (t[8] == kTimerLock) {
      lock_timer_fired(ctx, name);
    }
    n++;
  }
  ctx.out.integer(n);
}

// unblockstale id_prefix keep_prefix: drops the waiters whose id starts
// with id_prefix but not keep_prefix (a restarted node's old ones).
void cmd_unblockstale(CommandContext& ctx, Args args) {
  const std::string prefix = waiter_record_key(args[1]);
  std::vector<std::pair<std::string, kvpb::Waiter>> stale;
  ctx.ks.txn().scan(prefix, prefix, [&](std::string_view k, std::string_view v) {
    const std::string_view id = k.substr(2);
    if (id.starts_with(args[2])) return true;
    kvpb::Waiter w;
    if (w.ParseFromArray(v.data(), static_cast<int>(v.size()))) stale.emplace_back(std::string(id), std::move(w));
    return stale.size() < 100000;
  });
  for (const auto& [id, w] : stale) time_out(ctx, id, w);
  ctx.out.integer(static_cast<int64_t>(stale.size()));
}

}  // namespace qkv::kv
