// Generic key commands, expiry, keyspace iteration and the internal expiry
// deletion. Semantics, replies and error texts follow Redis 7.0.
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "kv/glob.h"
#include "kv/handlers.h"

namespace qkv::kv {

namespace {

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();

// RENAME key newkey | RENAMENX key newkey
void rename_generic(CommandContext& ctx, Args args, bool nx) {
  auto rec = ctx.ks.find(args[1]);
  if (!rec) {
    ctx.out.error(kErrNoSuchKey);
    return;
  }
  if (args[1] == args[2]) {
    if (nx) {
      ctx.out.integer(0);
    } else {
      ctx.out.ok();
    }
    return;
  }
  if (nx && ctx.ks.exists(args[2])) {
    ctx.out.integer(0);
    return;
  }
  ctx.ks.rename(args[1], args[2]);  // with the source's TTL and elements
  notify(ctx, kNotifyGeneric, "rename_from", args[1]);
  notify(ctx, kNotifyGeneric, "rename_to", args[2]);
  if (nx) {
    ctx.out.integer(1);
  } else {
    ctx.out.ok();
  }
}

// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT key time [NX | XX | GT | LT]
void expire_generic(CommandContext& ctx, Args args, bool seconds, bool relative) {
  bool nx = false, xx = false, gt = false, lt = false;
  for (size_t j = 3; j < args.size(); j++) {
    if (ieq(args[j], "nx")) {
      nx = true;
    } else if (ieq(args[j], "xx")) {
      xx = true;
    } else if (ieq(args[j], "gt")) {
      gt = true;
    } else if (ieq(args[j], "lt")) {
      lt = true;
    } else {
      std::string e = "ERR Unsupported option ";
      e.append(args[j]);
      ctx.out.error(e);
      return;
    }
  }
  if (nx && (xx || gt || lt)) {
    ctx.out.error("ERR NX and XX, GT or LT options at the same time are not compatible");
    return;
  }
  if (gt && lt) {
    ctx.out.error("ERR GT and LT options at the same time are not compatible");
    return;
  }
  int64_t when = 0;
  if (!parse_int_arg(ctx, args[2], &when)) return;
  if (seconds) {
    if (when > kInt64Max / 1000 || when < kInt64Min / 1000) {
      ctx.out.error(invalid_expire_error(ctx.spec.name));
      return;
    }
    when *= 1000;
  }
  if (relative) {
    if (when > kInt64Max - ctx.ks.now_ms()) {
      ctx.out.error(invalid_expire_error(ctx.spec.name));
      return;
    }
    when += ctx.ks.now_ms();
  }
  auto rec = ctx.ks.find(args[1]);
  if (!rec) {
    ctx.out.integer(0);
    return;
  }
  // A key without a TTL counts as an infinite TTL for GT and LT.
  const int64_t current = rec->expire_at_ms;
  if ((nx && current != 0) || (xx && current == 0) || (gt && (current == 0 || when <= current)) ||
      (lt && current != 0 && when >= current)) {
    ctx.out.integer(0);
    return;
  }
  if (when <= ctx.ks.now_ms()) {
    ctx.ks.remove(args[1]);
    notify(ctx, kNotifyGeneric, "del", args[1]);
  } else {
    rec->expire_at_ms = when;
    ctx.ks.update(args[1], *rec);
    notify(ctx, kNotifyGeneric, "expire", args[1]);
  }
  ctx.out.integer(1);
}

// TTL, PTTL, EXPIRETIME, PEXPIRETIME key
void ttl_generic(CommandContext& ctx, Args args, bool ms, bool absolute) {
  auto rec = ctx.ks.find(args[1]);
  if (!rec) {
    ctx.out.integer(-2);
    return;
  }
  if (rec->expire_at_ms == 0) {
    ctx.out.integer(-1);
    return;
  }
  int64_t t = absolute ? rec->expire_at_ms : rec->expire_at_ms - ctx.ks.now_ms();
  if (t < 0) t = 0;
  ctx.out.integer(ms ? t : (t + 500) / 1000);
}

}  // namespace

bool parse_cursor(std::string_view s, uint64_t* out) {
  std::string buf(s);
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(buf.c_str(), &end, 10);
  if ((!buf.empty() && std::isspace(static_cast<unsigned char>(buf[0]))) || *end != '\0' ||
      errno == ERANGE) {
    return false;
  }
  *out = v;
  return true;
}

// DEL key [key ...] | UNLINK key [key ...]
void cmd_del(CommandContext& ctx, Args args) {
  int64_t n = 0;
  for (size_t i = 1; i < args.size(); i++) {
    if (ctx.ks.remove(args[i])) {
      notify(ctx, kNotifyGeneric, "del", args[i]);
      n++;
    }
  }
  ctx.out.integer(n);
}

// EXISTS key [key ...]   (a key named twice counts twice)
void cmd_exists(CommandContext& ctx, Args args) {
  int64_t n = 0;
  for (size_t i = 1; i < args.size(); i++) {
    if (ctx.ks.exists(args[i])) n++;
  }
  ctx.out.integer(n);
}

// TYPE key
void cmd_type(CommandContext& ctx, Args args) {
  auto rec = ctx.ks.find(args[1]);
  ctx.out.simple_string(rec ? type_name(rec->type) : "none");
}

// RENAME key newkey
void cmd_rename(CommandContext& ctx, Args args) { rename_generic(ctx, args, false); }

// RENAMENX key newkey
void cmd_renamenx(CommandContext& ctx, Args args) { rename_generic(ctx, args, true); }

// EXPIRE key seconds [NX | XX | GT | LT]
void cmd_expire(CommandContext& ctx, Args args) { expire_generic(ctx, args, true, true); }

// PEXPIRE key milliseconds [NX | XX | GT | LT]
void cmd_pexpire(CommandContext& ctx, Args args) { expire_generic(ctx, args, false, true); }

// EXPIREAT key unix-time-seconds [NX | XX | GT | LT]
void cmd_expireat(CommandContext& ctx, Args args) { expire_generic(ctx, args, true, false); }

// PEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT]
void cmd_pexpireat(CommandContext& ctx, Args args) { expire_generic(ctx, args, false, false); }

// TTL key
void cmd_ttl(CommandContext& ctx, Args args) { ttl_generic(ctx, args, false, false); }

// PTTL key
void cmd_pttl(CommandContext& ctx, Args args) { ttl_generic(ctx, args, true, false); }

// EXPIRETIME key
void cmd_expiretime(CommandContext& ctx, Args args) { ttl_generic(ctx, args, false, true); }

// PEXPIRETIME key
void cmd_pexpiretime(CommandContext& ctx, Args args) { ttl_generic(ctx, args, true, true); }

// PERSIST key
void cmd_persist(CommandContext& ctx, Args args) {
  auto rec = ctx.ks.find(args[1]);
  if (!rec || rec->expire_at_ms == 0) {
    ctx.out.integer(0);
    return;
  }
  rec->expire_at_ms = 0;
  ctx.ks.update(args[1], *rec);
  notify(ctx, kNotifyGeneric, "persist", args[1]);
  ctx.out.integer(1);
}

// KEYS pattern
void cmd_keys(CommandContext& ctx, Args args) {
  const std::string_view pattern = args[1];
  if (glob_is_literal(pattern)) {
    // One possible match: a lookup, not a scan.
    if (ctx.ks.exists(pattern)) {
      ctx.out.array(1);
      ctx.out.bulk(pattern);
    } else {
      ctx.out.array(0);
    }
    return;
  }
  std::vector<std::string> keys;
  bool too_many = false;
  const bool all = pattern == "*";
  ctx.ks.for_each(0, [&](uint64_t, std::string_view key, const Record& r) {
    if (!ctx.ks.live(r) || (!all && !glob_match(pattern, key))) return true;
    if (keys.size() >= ctx.options.keys_reply_max) {
      too_many = true;
      return false;
    }
    keys.emplace_back(key);
    return true;
  });
  if (too_many) {
    ctx.out.error("ERR KEYS would return more than " + std::to_string(ctx.options.keys_reply_max) +
                  " keys (keys-reply-max); use SCAN");
    return;
  }
  ctx.out.array(keys.size());
  for (const auto& k : keys) ctx.out.bulk(k);
}

// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
//
// The cursor is a key position (layout.h): keys come in position order and
// a call stops only between two positions, so a key present for the whole
// iteration is returned exactly once (Redis: at least once), whichever
// node serves each call.
void cmd_scan(CommandContext& ctx, Args args) {
  uint64_t cursor = 0;
  if (!parse_cursor(args[1], &cursor)) {
    ctx.out.error(kErrInvalidCursor);
    return;
  }
  int64_t count = 10;
  std::string_view pattern;
  bool use_pattern = false;
  bool use_type = false;
  std::optional<ValueType> type;
  for (size_t j = 2; j < args.size(); j += 2) {
    const bool has_value = j + 1 < args.size();
    if (ieq(args[j], "count") && has_value) {
      if (!parse_int_arg(ctx, args[j + 1], &count)) return;
      if (count < 1) {
        ctx.out.error(kErrSyntax);
        return;
      }
    } else if (ieq(args[j], "match") && has_value) {
      pattern = args[j + 1];
      use_pattern = pattern != "*";
    } else if (ieq(args[j], "type") && has_value) {
      use_type = true;
      type = type_from_name(args[j + 1]);  // an unknown type matches nothing
    } else {
      ctx.out.error(kErrSyntax);
      return;
    }
  }
  const uint64_t budget =
      std::min<uint64_t>(static_cast<uint64_t>(count), ctx.options.scan_count_max);
  std::vector<std::string> keys;
  uint64_t examined = 0;
  uint64_t last_position = 0;
  uint64_t next_cursor = 0;
  ctx.ks.for_each(cursor, [&](uint64_t position, std::string_view key, const Record& r) {
    // Stop only where the position changes: the next call resumes there.
    if (examined >= budget && position != last_position) {
      next_cursor = position;
      return false;
    }
    examined++;
    last_position = position;
    if (!ctx.ks.live(r)) return true;
    if (use_type && (!type || r.type != *type)) return true;
    if (use_pattern && !glob_match(pattern, key)) return true;
    keys.emplace_back(key);
    return true;
  });
  ctx.out.array(2);
  ctx.out.bulk(std::to_string(next_cursor));
  ctx.out.array(keys.size());
  for (const auto& k : keys) ctx.out.bulk(k);
}

// RANDOMKEY
//
// Picks a random position and returns the first live key at or after it
// (wrapping around). Keys after a wide gap of positions are likelier.
void cmd_randomkey(CommandContext& ctx, Args) {
  if (ctx.ks.counters().keys == 0) {
    ctx.out.null();
    return;
  }
  const uint64_t start = ctx.random;
  std::optional<std::string> found;
  uint64_t expired_seen = 0;
  bool wrapped = false;
  auto visit = [&](uint64_t position, std::string_view key, const Record& r) {
    if (wrapped && position >= start) return false;
    if (!ctx.ks.live(r)) return ++expired_seen < ctx.options.randomkey_examined_max;
    found.emplace(key);
    return false;
  };
  ctx.ks.for_each(start, visit);
  if (!found && expired_seen < ctx.options.randomkey_examined_max &&
      ctx.ks.txn().status().is_ok()) {
    wrapped = true;
    ctx.ks.for_each(0, visit);
  }
  if (found) {
    ctx.out.bulk(*found);
  } else {
    ctx.out.null();
  }
}

// DBSIZE   (expired keys not yet deleted count, as in Redis)
void cmd_dbsize(CommandContext& ctx, Args) {
  ctx.out.integer(static_cast<int64_t>(ctx.ks.counters().keys));
}

// FLUSHDB [ASYNC | SYNC] | FLUSHALL [ASYNC | SYNC]   (no keyspace notification,
// as in Redis 7.0; the Keyspace logs the flush for CLIENT TRACKING)
void cmd_flushdb(CommandContext& ctx, Args args) {
  if (args.size() > 2 || (args.size() == 2 && !ieq(args[1], "async") && !ieq(args[1], "sync"))) {
    ctx.out.error(kErrSyntax);
    return;
  }
  ctx.ks.clear();
  ctx.out.ok();
}

// DELEXPIRED key [key ...]   (internal)
//
// Each deletion's "expired" notification comes from Keyspace::remove()
// (it is sent for any expired record deleted or overwritten).
void cmd_delexpired(CommandContext& ctx, Args args) {
  int64_t n = 0;
  for (size_t i = 1; i < args.size(); i++) {
    if (ctx.ks.remove_if_expired(args[i])) n++;
  }
  ctx.out.integer(n);
}

}  // namespace qkv::kv
