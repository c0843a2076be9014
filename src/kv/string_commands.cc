// String commands. Semantics, replies and error texts follow Redis 7.0;
// the few deliberate differences are listed in docs/KV_FORMAT.md.
#include <strings.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "kv/handlers.h"

namespace qkv::kv {

namespace {

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();

// How an expiry argument is given.
enum class ExpireArg : uint8_t { kNone, kEx, kPx, kExAt, kPxAt };

// The expiry option an argument of SET or GETEX names (kNone if none).
ExpireArg expire_kind(std::string_view a) {
  if (ieq(a, "ex")) return ExpireArg::kEx;
  if (ieq(a, "px")) return ExpireArg::kPx;
  if (ieq(a, "exat")) return ExpireArg::kExAt;
  if (ieq(a, "pxat")) return ExpireArg::kPxAt;
  return ExpireArg::kNone;
}

// SET, GETEX, SETEX and PSETEX read an expiry time the same way: a positive
// integer in the unit of the option, relative (EX, PX) or absolute (EXAT,
// PXAT); anything that does not fit in int64 ms is an invalid expire time.
bool parse_expire_at(CommandContext& ctx, ExpireArg kind, std::string_view arg, int64_t* at_ms) {
  int64_t v = 0;
  if (!parse_int_arg(ctx, arg, &v)) return false;
  const bool seconds = kind == ExpireArg::kEx || kind == ExpireArg::kExAt;
  if (v <= 0 || (seconds && v > kInt64Max / 1000)) {
    ctx.out.error(invalid_expire_error(ctx.spec.name));
    return false;
  }
  if (seconds) v *= 1000;
  if (kind == ExpireArg::kEx || kind == ExpireArg::kPx) {
    if (v > kInt64Max - ctx.ks.now_ms()) {
      ctx.out.error(invalid_expire_error(ctx.spec.name));
      return false;
    }
    v += ctx.ks.now_ms();
  }
  *at_ms = v;
  return true;
}

void reply_string_or_null(CommandContext& ctx, const std::optional<Record>& rec) {
  if (rec) {
    ctx.out.bulk(rec->payload);
  } else {
    ctx.out.null();
  }
}

Record string_record(std::string_view value, int64_t expire_at_ms = 0) {
  Record r;
  r.type = ValueType::kString;
  r.expire_at_ms = expire_at_ms;
  r.payload.assign(value);
  return r;
}

// SETEX key seconds value | PSETEX key milliseconds value
void setex_generic(CommandContext& ctx, Args args, ExpireArg unit) {
  int64_t at = 0;
  if (!parse_expire_at(ctx, unit, args[2], &at)) return;
  ctx.ks.put(args[1], string_record(args[3], at));
  notify(ctx, kNotifyString, "set", args[1]);
  notify(ctx, kNotifyGeneric, "expire", args[1]);
  ctx.out.ok();
}

// INCR, DECR, INCRBY, DECRBY: the value must read as an int64.
void incr_generic(CommandContext& ctx, std::string_view key, int64_t delta) {
  std::optional<Record> rec;
  if (!find_string(ctx, key, &rec)) return;
  int64_t v = 0;
  if (rec && !net::parse_int64(rec->payload, &v)) {
    ctx.out.error(kErrNotInteger);
    return;
  }
  int64_t result = 0;
  if (__builtin_add_overflow(v, delta, &result)) {
    ctx.out.error(kErrOverflow);
    return;
  }
  // An existing key keeps its TTL.
  ctx.ks.put(key, string_record(std::to_string(result), rec ? rec->expire_at_ms : 0));
  notify(ctx, kNotifyString, "incrby", key);
  ctx.out.integer(result);
}

}  // namespace

bool ieq(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

bool parse_int_arg(CommandContext& ctx, std::string_view arg, int64_t* out) {
  if (net::parse_int64(arg, out)) return true;
  ctx.out.error(kErrNotInteger);
  return false;
}

bool parse_long_double(std::string_view s, long double* out) {
  constexpr size_t kLongDoubleCharsMax = 5 * 1024;
  if (s.empty() || s.size() >= kLongDoubleCharsMax) return false;
  // strtold needs a terminated string; it must consume every byte (so an
  // embedded NUL makes the value invalid).
  char buf[kLongDoubleCharsMax];
  s.copy(buf, s.size());
  buf[s.size()] = '\0';
  char* end = nullptr;
  errno = 0;
  const long double v = std::strtold(buf, &end);
  if (std::isspace(static_cast<unsigned char>(buf[0])) || end != buf + s.size() ||
      (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || v == 0)) || std::isnan(v)) {
    return false;
  }
  *out = v;
  return true;
}

bool find_string(CommandContext& ctx, std::string_view key, std::optional<Record>* rec) {
  return find_typed(ctx, key, ValueType::kString, rec);
}

// GET key
void cmd_get(CommandContext& ctx, Args args) {
  std::optional<Record> rec;
  if (!find_string(ctx, args[1], &rec)) return;
  reply_string_or_null(ctx, rec);
}

// SET key value [NX | XX] [GET] [EX seconds | PX milliseconds |
//     EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]
void cmd_set(CommandContext& ctx, Args args) {
  bool nx = false, xx = false, get = false, keepttl = false;
  ExpireArg expire = ExpireArg::kNone;
  std::string_view expire_arg;
  for (size_t j = 3; j < args.size(); j++) {
    const std::string_view a = args[j];
    const bool has_next = j + 1 < args.size();
    // Repeating an option is accepted (the last expiry value wins); two
    // different expiry options, or NX with XX, are a syntax error.
    auto expire_option = [&](ExpireArg kind) {
      return !keepttl && (expire == ExpireArg::kNone || expire == kind) && has_next;
    };
    if (ieq(a, "nx") && !xx) {
      nx = true;
    } else if (ieq(a, "xx") && !nx) {
      xx = true;
    } else if (ieq(a, "get")) {
      get = true;
    } else if (ieq(a, "keepttl") && expire == ExpireArg::kNone) {
      keepttl = true;
    } else if (ExpireArg k = expire_kind(a); k != ExpireArg::kNone && expire_option(k)) {
      expire = k;
      expire_arg = args[++j];
    } else {
      ctx.out.error(kErrSyntax);
      return;
    }
  }
  int64_t at = 0;
  if (expire != ExpireArg::kNone && !parse_expire_at(ctx, expire, expire_arg, &at)) return;

  std::optional<Record> old;
  if (get) {
    if (!find_string(ctx, args[1], &old)) return;
  } else {
    old = ctx.ks.find(args[1]);
  }
  if ((nx && old) || (xx && !old)) {
    if (get) {
      reply_string_or_null(ctx, old);
    } else {
      ctx.out.null();
    }
    return;
  }
  if (keepttl && old) at = old->expire_at_ms;
  // An absolute expiry already past stores the key expired (as Redis does):
  // absent from now on, counted by DBSIZE until the expiry deletion.
  ctx.ks.put(args[1], string_record(args[2], at));
  notify(ctx, kNotifyString, "set", args[1]);
  if (expire != ExpireArg::kNone) notify(ctx, kNotifyGeneric, "expire", args[1]);
  if (get) {
    reply_string_or_null(ctx, old);
  } else {
    ctx.out.ok();
  }
}

// SETNX key value
void cmd_setnx(CommandContext& ctx, Args args) {
  if (ctx.ks.exists(args[1])) {
    ctx.out.integer(0);
    return;
  }
  ctx.ks.put(args[1], string_record(args[2]));
  notify(ctx, kNotifyString, "set", args[1]);
  ctx.out.integer(1);
}

// SETEX key seconds value
void cmd_setex(CommandContext& ctx, Args args) { setex_generic(ctx, args, ExpireArg::kEx); }

// PSETEX key milliseconds value
void cmd_psetex(CommandContext& ctx, Args args) { setex_generic(ctx, args, ExpireArg::kPx); }

// GETSET key value
void cmd_getset(CommandContext& ctx, Args args) {
  std::optional<Record> old;
  if (!find_string(ctx, args[1], &old)) return;
  ctx.ks.put(args[1], string_record(args[2]));
  notify(ctx, kNotifyString, "set", args[1]);
  reply_string_or_null(ctx, old);
}

// GETDEL key
void cmd_getdel(CommandContext& ctx, Args args) {
  std::optional<Record> old;
  if (!find_string(ctx, args[1], &old)) return;
  if (old) {
    ctx.ks.remove(args[1]);
    notify(ctx, kNotifyGeneric, "del", args[1]);
  }
  reply_string_or_null(ctx, old);
}

// GETEX key [EX seconds | PX milliseconds | EXAT unix-time-seconds |
//     PXAT unix-time-milliseconds | PERSIST]
void cmd_getex(CommandContext& ctx, Args args) {
  bool persist = false;
  ExpireArg expire = ExpireArg::kNone;
  std::string_view expire_arg;
  for (size_t j = 2; j < args.size(); j++) {
    const std::string_view a = args[j];
    const bool has_next = j + 1 < args.size();
    auto expire_option = [&](ExpireArg kind) {
      return !persist && (expire == ExpireArg::kNone || expire == kind) && has_next;
    };
    if (ieq(a, "persist") && expire == ExpireArg::kNone) {
      persist = true;
    } else if (ExpireArg k = expire_kind(a); k != ExpireArg::kNone && expire_option(k)) {
      expire = k;
      expire_arg = args[++j];
    } else {
      ctx.out.error(kErrSyntax);
      return;
    }
  }
  // The syntax is checked first, the time only for an existing string.
  std::optional<Record> rec;
  if (!find_string(ctx, args[1], &rec)) return;
  if (!rec) {
    ctx.out.null();
    return;
  }
  int64_t at = 0;
  if (expire != ExpireArg::kNone && !parse_expire_at(ctx, expire, expire_arg, &at)) return;
  ctx.out.bulk(rec->payload);
  if (expire != ExpireArg::kNone) {
    if (at <= ctx.ks.now_ms()) {
      ctx.ks.remove(args[1]);
      notify(ctx, kNotifyGeneric, "del", args[1]);
    } else {
      rec->expire_at_ms = at;
      ctx.ks.put(args[1], *rec);
      notify(ctx, kNotifyGeneric, "expire", args[1]);
    }
  } else if (persist && rec->expire_at_ms != 0) {
    rec->expire_at_ms = 0;
    ctx.ks.put(args[1], *rec);
    notify(ctx, kNotifyGeneric, "persist", args[1]);
  }
}

// MGET key [key ...]
void cmd_mget(CommandContext& ctx, Args args) {
  ctx.out.array(args.size() - 1);
  for (size_t i = 1; i < args.size(); i++) {
    auto rec = ctx.ks.find(args[i]);
    if (rec && rec->type == ValueType::kString) {
      ctx.out.bulk(rec->payload);
    } else {
      ctx.out.null();
    }
  }
}

// MSET key value [key value ...]
void cmd_mset(CommandContext& ctx, Args args) {
  if (args.size() % 2 == 0) {
    ctx.out.error(arity_error(ctx.spec.name));
    return;
  }
  for (size_t i = 1; i < args.size(); i += 2) {
    ctx.ks.put(args[i], string_record(args[i + 1]));
    notify(ctx, kNotifyString, "set", args[i]);
  }
  ctx.out.ok();
}

// MSETNX key value [key value ...]
void cmd_msetnx(CommandContext& ctx, Args args) {
  if (args.size() % 2 == 0) {
    ctx.out.error(arity_error(ctx.spec.name));
    return;
  }
  for (size_t i = 1; i < args.size(); i += 2) {
    if (ctx.ks.exists(args[i])) {
      ctx.out.integer(0);
      return;
    }
  }
  for (size_t i = 1; i < args.size(); i += 2) {
    ctx.ks.put(args[i], string_record(args[i + 1]));
    notify(ctx, kNotifyString, "set", args[i]);
  }
  ctx.out.integer(1);
}

// APPEND key value
void cmd_append(CommandContext& ctx, Args args) {
  std::optional<Record> rec;
  if (!find_string(ctx, args[1], &rec)) return;
  if (!rec) {
    ctx.ks.put(args[1], string_record(args[2]));
    notify(ctx, kNotifyString, "append", args[1]);
    ctx.out.integer(static_cast<int64_t>(args[2].size()));
    return;
  }
  if (rec->payload.size() + args[2].size() > ctx.options.string_bytes_max) {
    ctx.out.error(kErrStringTooLong);
    return;
  }
  rec->payload.append(args[2]);
  ctx.ks.put(args[1], *rec);  // keeps the TTL
  notify(ctx, kNotifyString, "append", args[1]);
  ctx.out.integer(static_cast<int64_t>(rec->payload.size()));
}

// STRLEN key
void cmd_strlen(CommandContext& ctx, Args args) {
  std::optional<Record> rec;
  if (!find_string(ctx, args[1], &rec)) return;
  ctx.out.integer(rec ? static_cast<int64_t>(rec->payload.size()) : 0);
}

// GETRANGE key start end
void cmd_getrange(CommandContext& ctx, Args args) {
  int64_t start = 0, end = 0;
  if (!parse_int_arg(ctx, args[2], &start) || !parse_int_arg(ctx, args[3], &end)) return;
  std::optional<Record> rec;
  if (!find_string(ctx, args[1], &rec)) return;
  if (!rec) {
    ctx.out.bulk("");
    return;
  }
  const auto len = static_cast<int64_t>(rec->payload.size());
  if (start < 0 && end < 0 && start > end) {
    ctx.out.bulk("");
    return;
  }
  if (start < 0) start += len;
  if (end < 0) end += len;
  if (start < 0) start = 0;
  if (end < 0) end = 0;
  if (end >= len) end = len - 1;
  if (start > end || len == 0) {
    ctx.out.bulk("");
    return;
  }
  ctx.out.bulk(std::string_view(rec->payload)
                   .substr(static_cast<size_t>(start), static_cast<size_t>(end - start + 1)));
}

// SETRANGE key offset value
void cmd_setrange(CommandContext& ctx, Args args) {
  int64_t offset = 0;
  if (!parse_int_arg(ctx, args[2], &offset)) return;
  if (offset < 0) {
    ctx.out.error(kErrOffsetOutOfRange);
    return;
  }
  const std::string_view value = args[3];
  std::optional<Record> rec;
  if (!find_string(ctx, args[1], &rec)) return;
  if (value.empty()) {
    // Nothing to write: no key is created, an existing one is unchanged.
    ctx.out.integer(rec ? static_cast<int64_t>(rec->payload.size()) : 0);
    return;
  }
  const uint64_t max = ctx.options.string_bytes_max;
  if (value.size() > max || static_cast<uint64_t>(offset) > max - value.size()) {
    ctx.out.error(kErrStringTooLong);
    return;
  }
  Record r = rec ? std::move(*rec) : string_record("");
  const auto off = static_cast<size_t>(offset);
  if (r.payload.size() < off + value.size()) r.payload.resize(off + value.size(), '\0');
  r.payload.replace(off, value.size(), value);
  ctx.ks.put(args[1], r);  // an existing key keeps its TTL
  notify(ctx, kNotifyString, "setrange", args[1]);
  ctx.out.integer(static_cast<int64_t>(r.payload.size()));
}

// INCR key
void cmd_incr(CommandContext& ctx, Args args) { incr_generic(ctx, args[1], 1); }

// DECR key
void cmd_decr(CommandContext& ctx, Args args) { incr_generic(ctx, args[1], -1); }

// INCRBY key increment
void cmd_incrby(CommandContext& ctx, Args args) {
  int64_t incr = 0;
  if (!parse_int_arg(ctx, args[2], &incr)) return;
  incr_generic(ctx, args[1], incr);
}

// DECRBY key decrement
void cmd_decrby(CommandContext& ctx, Args args) {
  int64_t decr = 0;
  if (!parse_int_arg(ctx, args[2], &decr)) return;
  if (decr == kInt64Min) {
    ctx.out.error(kErrDecrOverflow);
    return;
  }
  incr_generic(ctx, args[1], -decr);
}

// INCRBYFLOAT key increment
//
// Computed in long double and stored as Redis prints it ("%.17Lf", trailing
// zeros removed). Replicas must therefore share the long double format
// (x86-64's 80-bit extended precision), i.e. run on the same architecture.
void cmd_incrbyfloat(CommandContext& ctx, Args args) {
  std::optional<Record> rec;
  if (!find_string(ctx, args[1], &rec)) return;
  long double value = 0, incr = 0;
  if ((rec && !parse_long_double(rec->payload, &value)) || !parse_long_double(args[2], &incr)) {
    ctx.out.error(kErrNotFloat);
    return;
  }
  value += incr;
  if (std::isnan(value) || std::isinf(value)) {
    ctx.out.error(kErrNanOrInfinity);
    return;
  }
  std::string text = net::format_long_double(value, net::LongDoubleFormat::kHuman);
  ctx.out.bulk(text);
  ctx.ks.put(args[1], string_record(text, rec ? rec->expire_at_ms : 0));
  notify(ctx, kNotifyString, "incrbyfloat", args[1]);
}

// CAS key expected new
//
// Ours: atomic compare-and-set of a string. If the key holds a string equal
// to `expected`, sets it to `new` keeping its TTL and replies 1; otherwise
// (a different value, or no key: a missing key equals nothing, not even
// "") changes nothing and replies 0. WRONGTYPE for a key of another type.
void cmd_cas(CommandContext& ctx, Args args) {
  std::optional<Record> rec;
  if (!find_string(ctx, args[1], &rec)) return;
  if (!rec || rec->payload != args[2]) {
    ctx.out.integer(0);
    return;
  }
  rec->payload.assign(args[3]);
  ctx.ks.put(args[1], *rec);
  notify(ctx, kNotifyString, "set", args[1]);  // ours: a CAS that swaps is a SET
  ctx.out.integer(1);
}

}  // namespace qkv::kv
