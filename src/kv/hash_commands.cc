// Hash commands. Semantics, replies and error texts follow Redis 7.0; the
// deliberate differences are listed in docs/COMMANDS.md. A hash is a
// Collection (collection.h): one element per field, in field-hash order.
#include <cmath>
#include <string>
#include <vector>

#include "kv/handlers.h"

namespace qkv::kv {

namespace {

// HSET / HMSET key field value [field value ...]: the number of new fields.
bool hset_generic(CommandContext& ctx, Args args, int64_t* added) {
  if (args.size() % 2 == 1) {
    ctx.out.error(arity_error(ctx.spec.name));
    return false;
  }
  std::optional<Collection> h;
  if (!open_collection(ctx, args[1], ValueType::kHash, true, &h)) return false;
  *added = 0;
  for (size_t i = 2; i < args.size(); i += 2) {
    if (h->set(args[i], args[i + 1])) ++*added;
  }
  h->save();
  notify(ctx, kNotifyHash, "hset", args[1]);
  return true;
}

// A field's value as Redis's string2ll reads it.
bool hash_value_int(std::string_view v, int64_t* out) { return net::parse_int64(v, out); }

// HKEYS, HVALS, HGETALL: fields, values or both.
void hash_dump(CommandContext& ctx, std::string_view key, bool fields, bool values) {
  std::optional<Collection> h;
  if (!open_collection(ctx, key, ValueType::kHash, false, &h)) return;
  const uint64_t n = h ? h->size() : 0;
  if (fields && values) {
    ctx.out.map(n);
  } else {
    ctx.out.array(n);
  }
  if (!h) return;
  uint64_t written = 0;
  h->for_each_member(0, [&](uint64_t, std::string_view f, std::string_view v) {
    if (fields) ctx.out.bulk(f);
    if (values) ctx.out.bulk(v);
    return ++written < n;
  });
  // Only a failed read can leave the reply short; the txn's error replaces it.
}

}  // namespace

// HSET key field value [field value ...]
void cmd_hset(CommandContext& ctx, Args args) {
  int64_t added = 0;
  if (hset_generic(ctx, args, &added)) ctx.out.integer(added);
}

// HMSET key field value [field value ...]
void cmd_hmset(CommandContext& ctx, Args args) {
  int64_t added = 0;
  if (hset_generic(ctx, args, &added)) ctx.out.ok();
}

// HSETNX key field value
void cmd_hsetnx(CommandContext& ctx, Args args) {
  std::optional<Collection> h;
  if (!open_collection(ctx, args[1], ValueType::kHash, true, &h)) return;
  if (h->contains(args[2])) {
    ctx.out.integer(0);
    return;
  }
  h->set(args[2], args[3]);
  h->save();
  notify(ctx, kNotifyHash, "hset", args[1]);
  ctx.out.integer(1);
}

// HGET key field
void cmd_hget(CommandContext& ctx, Args args) {
  std::optional<Collection> h;
  if (!open_collection(ctx, args[1], ValueType::kHash, false, &h)) return;
  auto v = h ? h->get(args[2]) : std::nullopt;
  if (v) {
    ctx.out.bulk(*v);
  } else {
    ctx.out.null();
  }
}

// HMGET key field [field ...]
void cmd_hmget(CommandContext& ctx, Args args) {
  std::optional<Collection> h;
  if (!open_collection(ctx, args[1], ValueType::kHash, false, &h)) return;
  ctx.out.array(args.size() - 2);
  for (size_t i = 2; i < args.size(); i++) {
    auto v = h ? h->get(args[i]) : std::nullopt;
    if (v) {
      ctx.out.bulk(*v);
    } else {
      ctx.out.null();
    }
  }
}

// HDEL key field [field ...]
void cmd_hdel(CommandContext& ctx, Args args) {
  std::optional<Collection> h;
  if (!open_collection(ctx, args[1], ValueType::kHash, false, &h)) return;
  int64_t n = 0;
  if (h) {
    for (size_t i = 2; i < args.size() && h->size() > 0; i++) {
      if (h->erase(args[i])) n++;
    }
    h->save();
    if (n > 0) notify(ctx, kNotifyHash, "hdel", args[1]);
    if (h->size() == 0) notify(ctx, kNotifyGeneric, "del", args[1]);
  }
  ctx.out.integer(n);
}

// HGETALL key   (RESP3: a map)
void cmd_hgetall(CommandContext& ctx, Args args) { hash_dump(ctx, args[1], true, true); }

// HKEYS key
void cmd_hkeys(CommandContext& ctx, Args args) { hash_dump(ctx, args[1], true, false); }

// HVALS key
void cmd_hvals(CommandContext& ctx, Args args) { hash_dump(ctx, args[1], false, true); }

// HEXISTS key field
void cmd_hexists(CommandContext& ctx, Args args) {
  std::optional<Collection> h;
  if (!open_collection(ctx, args[1], ValueType::kHash, false, &h)) return;
  ctx.out.integer(h && h->contains(args[2]) ? 1 : 0);
}

// HLEN key
void cmd_hlen(CommandContext& ctx, Args args) {
  std::optional<Collection> h;
  if (!open_collection(ctx, args[1], ValueType::kHash, false, &h)) return;
  ctx.out.integer(h ? static_cast<int64_t>(h->size()) : 0);
}

// HSTRLEN key field
void cmd_hstrlen(CommandContext& ctx, Args args) {
  std::optional<Collection> h;
  if (!open_collection(ctx, args[1], ValueType::kHash, false, &h)) return;
  auto v = h ? h->get(args[2]) : std::nullopt;
  ctx.out.integer(v ? static_cast<int64_t>(v->size()) : 0);
}

// HINCRBY key field increment
void cmd_hincrby(CommandContext& ctx, Args args) {
  int64_t incr = 0;
  if (!parse_int_arg(ctx, args[3], &incr)) return;
  std::optional<Collection> h;
  if (!open_collection(ctx, args[1], ValueType::kHash, true, &h)) return;
  int64_t value = 0;
  if (auto v = h->get(args[2]); v && !hash_value_int(*v, &value)) {
    ctx.out.error("ERR hash value is not an integer");
    return;
  }
  int64_t result = 0;
  if (__builtin_add_overflow(value, incr, &result)) {
    ctx.out.error(kErrOverflow);
    return;
  }
  h->set(args[2], std::to_string(result));
  h->save();
  notify(ctx, kNotifyHash, "hincrby", args[1]);
  ctx.out.integer(result);
}

// HINCRBYFLOAT key field increment
//
// long double, printed as Redis does (like INCRBYFLOAT: replicas must share
// the long double format).
void cmd_hincrbyfloat(CommandContext& ctx, Args args) {
  long double incr = 0;
  if (!parse_long_double(args[3], &incr)) {
    ctx.out.error(kErrNotFloat);
    return;
  }
  if (std::isnan(incr) || std::isinf(incr)) {
    ctx.out.error("ERR value is NaN or Infinity");
    return;
  }
  std::optional<Collection> h;
  if (!open_collection(ctx, args[1], ValueType::kHash, true, &h)) return;
  long double value = 0;
  if (auto v = h->get(args[2]); v && !parse_long_double(*v, &value)) {
    ctx.out.error("ERR hash value is not a float");
    return;
  }
  value += incr;
  if (std::isnan(value) || std::isinf(value)) {
    ctx.out.error(kErrNanOrInfinity);
    return;
  }
  const std::string text = net::format_long_double(value, net::LongDoubleFormat::kHuman);
  h->set(args[2], text);
  h->save();
  notify(ctx, kNotifyHash, "hincrbyfloat", args[1]);
  ctx.out.bulk(text);
}

// HRANDFIELD key [count [WITHVALUES]]
//
// Randomness from ctx.random (the entry's seed when applied): see Rng.
void cmd_hrandfield(CommandContext& ctx, Args args) {
  if (args.size() == 2) {
    std::optional<Collection> h;
    if (!open_collection(ctx, args[1], ValueType::kHash, false, &h)) return;
    if (!h) {
      ctx.out.null();
      return;
    }
    Rng rng(ctx.random);
    ctx.out.bulk(h->random_member(rng).first);
    return;
  }
  int64_t l = 0;
  if (!parse_range_arg(ctx, args[2], -INT64_MAX, INT64_MAX, &l)) return;
  bool with_values = false;
  if (args.size() > 4 || (args.size() == 4 && !ieq(args[3], "withvalues"))) {
    ctx.out.error(kErrSyntax);
    return;
  }
  if (args.size() == 4) {
    with_values = true;
    if (l < -INT64_MAX / 2 || l > INT64_MAX / 2) {
      ctx.out.error("ERR value is out of range");
      return;
    }
  }
  std::optional<Collection> h;
  if (!open_collection(ctx, args[1], ValueType::kHash, false, &h)) return;
  if (!h || l == 0) {
    ctx.out.array(0);
    return;
  }
  const bool distinct = l > 0;
  const uint64_t count = distinct ? static_cast<uint64_t>(l) : static_cast<uint64_t>(-l);
  if (!distinct && count > ctx.options.random_reply_max) {
    ctx.out.error("ERR count is larger than random-reply-max (" +
                  std::to_string(ctx.options.random_reply_max) + ")");
    return;
  }
  Rng rng(ctx.random);
  std::vector<std::pair<std::string, std::string>> picked;
  if (!distinct) {
    picked.reserve(count);
    for (uint64_t i = 0; i < count; i++) picked.push_back(h->random_member(rng));
  } else if (count >= h->size()) {
    picked = h->members();
  } else {
    picked = h->random_distinct(rng, count);
  }
  const bool resp3 = ctx.out.protocol() == net::Protocol::kResp3;
  ctx.out.array(with_values && !resp3 ? picked.size() * 2 : picked.size());
  for (const auto& [f, v] : picked) {
    if (with_values && resp3) ctx.out.array(2);
    ctx.out.bulk(f);
    if (with_values) ctx.out.bulk(v);
  }
}

// HSCAN key cursor [MATCH pattern] [COUNT count]
void cmd_hscan(CommandContext& ctx, Args args) { member_scan(ctx, args, ValueType::kHash); }

}  // namespace qkv::kv
