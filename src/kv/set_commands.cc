// Set commands. Semantics, replies and error texts follow Redis 7.0; the
// deliberate differences are listed in docs/COMMANDS.md. A set is a
// Collection (collection.h): one element per member, in member-hash order,
// so replies list members in that order (Redis: its hash table's order).
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "kv/handlers.h"

namespace qkv::kv {

namespace {

enum class SetOp : uint8_t { kInter, kUnion, kDiff };

// The sets named by `keys` (nullopt for a missing key). False after a
// WRONGTYPE reply: every key is checked, whatever the others hold.
bool load_sets(CommandContext& ctx, Args keys, std::vector<std::optional<Collection>>* sets) {
  sets->clear();
  sets->reserve(keys.size());
  for (std::string_view k : keys) {
    sets->emplace_back();
    if (!open_collection(ctx, k, ValueType::kSet, false, &sets->back())) return false;
  }
  return true;
}

// The members of the intersection, union or difference of `keys`, in a
// deterministic order; with limit > 0 (intersection only) at most `limit`.
// False after a WRONGTYPE reply.
bool set_operation(CommandContext& ctx, Args keys, SetOp op, uint64_t limit,
                   std::vector<std::string>* out) {
  std::vector<std::optional<Collection>> sets;
  if (!load_sets(ctx, keys, &sets)) return false;
  out->clear();
  switch (op) {
    case SetOp::kInter: {
      for (const auto& s : sets) {
        if (!s) return true;  // an empty set: an empty intersection
      }
      // Walk the smallest set, look the members up in the others.
      auto smallest = std::min_element(sets.begin(), sets.end(), [](const auto& a, const auto& b) {
        return a->size() < b->size();
      });
      (*smallest)->for_each_member(0, [&](uint64_t, std::string_view m, std::string_view) {
        for (auto it = sets.begin(); it != sets.end(); ++it) {
          if (it != smallest && !(*it)->contains(m)) return true;
        }
        out->emplace_back(m);
        return limit == 0 || out->size() < limit;
      });
      return true;
    }
    case SetOp::kUnion: {
      std::set<std::string, std::less<>> seen;
      for (auto& s : sets) {
        if (!s) continue;
        s->for_each_member(0, [&](uint64_t, std::string_view m, std::string_view) {
          if (seen.emplace(m).second) out->emplace_back(m);
          return true;
        });
      }
      return true;
    }
    case SetOp::kDiff: {
      if (!sets[0]) return true;
      sets[0]->for_each_member(0, [&](uint64_t, std::string_view m, std::string_view) {
        for (size_t i = 1; i < sets.size(); i++) {
          if (sets[i] && sets[i]->contains(m)) return true;
        }
        out->emplace_back(m);
        return true;
      });
      return true;
    }
  }
  return true;
}

void reply_set(CommandContext& ctx, const std::vector<std::string>& members) {
  ctx.out.set(members.size());
  for (const auto& m : members) ctx.out.bulk(m);
}

// SINTER, SUNION, SDIFF key [key ...]
void set_op_command(CommandContext& ctx, Args args, SetOp op) {
  std::vector<std::string> members;
  if (!set_operation(ctx, args.subspan(1), op, 0, &members)) return;
  reply_set(ctx, members);
}

// SINTERSTORE, SUNIONSTORE, SDIFFSTORE destination key [key ...]
void set_op_store_command(CommandContext& ctx, Args args, SetOp op, std::string_view event) {
  std::vector<std::string> members;
  if (!set_operation(ctx, args.subspan(2), op, 0, &members)) return;
  // An empty result deletes the destination: a "del" if it existed (looked
  // up only when notifications are collected).
  const bool dst_existed = members.empty() && ctx.events != nullptr && ctx.events->want_keyspace &&
                           ctx.ks.exists(args[1]);
  // The destination is replaced whatever it held (an empty result deletes it).
  Collection dst = Collection::create(ctx.ks, args[1], ValueType::kSet);
  for (const auto& m : members) dst.set(m);
  dst.save();
  if (!members.empty()) {
    notify(ctx, kNotifySet, event, args[1]);
  } else if (dst_existed) {
    notify(ctx, kNotifyGeneric, "del", args[1]);
  }
  ctx.out.integer(static_cast<int64_t>(members.size()));
}

// After a removal from the set at `key` saved: "del" if it is now empty.
void notify_if_emptied(CommandContext& ctx, const Collection& s, std::string_view key) {
  if (s.size() == 0) notify(ctx, kNotifyGeneric, "del", key);
}

// SRANDMEMBER and SPOP: `count` members of `s` picked at random, distinct
// unless `repeats`.
std::vector<std::string> pick_members(CommandContext& ctx, Collection& s, uint64_t count,
                                      bool repeats) {
  Rng rng(ctx.random);
  std::vector<std::string> out;
  if (repeats) {
    out.reserve(count);
    for (uint64_t i = 0; i < count; i++) out.push_back(s.random_member(rng).first);
  } else if (count >= s.size()) {
    for (auto& [m, v] : s.members()) out.push_back(std::move(m));
  } else {
    for (auto& [m, v] : s.random_distinct(rng, count)) out.push_back(std::move(m));
  }
  return out;
}

}  // namespace

// SADD key member [member ...]
void cmd_sadd(CommandContext& ctx, Args args) {
  std::optional<Collection> s;
  if (!open_collection(ctx, args[1], ValueType::kSet, true, &s)) return;
  int64_t added = 0;
  for (size_t i = 2; i < args.size(); i++) {
    if (s->set(args[i])) added++;
  }
  s->save();
  if (added > 0) notify(ctx, kNotifySet, "sadd", args[1]);
  ctx.out.integer(added);
}

// SREM key member [member ...]
void cmd_srem(CommandContext& ctx, Args args) {
  std::optional<Collection> s;
  if (!open_collection(ctx, args[1], ValueType::kSet, false, &s)) return;
  int64_t removed = 0;
  if (s) {
    for (size_t i = 2; i < args.size(); i++) {
      if (s->erase(args[i])) removed++;
    }
    s->save();
    if (removed > 0) {
      notify(ctx, kNotifySet, "srem", args[1]);
      notify_if_emptied(ctx, *s, args[1]);
    }
  }
  ctx.out.integer(removed);
}

// SMEMBERS key   (RESP3: a set)
void cmd_smembers(CommandContext& ctx, Args args) {
  std::optional<Collection> s;
  if (!open_collection(ctx, args[1], ValueType::kSet, false, &s)) return;
  const uint64_t n = s ? s->size() : 0;
  ctx.out.set(n);
  if (!s) return;
  uint64_t written = 0;
  s->for_each_member(0, [&](uint64_t, std::string_view m, std::string_view) {
    ctx.out.bulk(m);
    return ++written < n;
  });
}

// SISMEMBER key member
void cmd_sismember(CommandContext& ctx, Args args) {
  std::optional<Collection> s;
  if (!open_collection(ctx, args[1], ValueType::kSet, false, &s)) return;
  ctx.out.integer(s && s->contains(args[2]) ? 1 : 0);
}

// SMISMEMBER key member [member ...]
void cmd_smismember(CommandContext& ctx, Args args) {
  std::optional<Collection> s;
  if (!open_collection(ctx, args[1], ValueType::kSet, false, &s)) return;
  ctx.out.array(args.size() - 2);
  for (size_t i = 2; i < args.size(); i++) ctx.out.integer(s && s->contains(args[i]) ? 1 : 0);
}

// SCARD key
void cmd_scard(CommandContext& ctx, Args args) {
  std::optional<Collection> s;
  if (!open_collection(ctx, args[1], ValueType::kSet, false, &s)) return;
  ctx.out.integer(s ? static_cast<int64_t>(s->size()) : 0);
}

// SMOVE source destination member
void cmd_smove(CommandContext& ctx, Args args) {
  std::optional<Collection> src, dst;
  std::optional<Record> dst_rec;
  if (!open_collection(ctx, args[1], ValueType::kSet, false, &src)) return;
  if (!src) {
    ctx.out.integer(0);
    return;
  }
  if (!find_typed(ctx, args[2], ValueType::kSet, &dst_rec)) return;
  if (args[1] == args[2]) {
    ctx.out.integer(src->contains(args[3]) ? 1 : 0);
    return;
  }
  if (!src->erase(args[3])) {
    ctx.out.integer(0);
    return;
  }
  src->save();
  notify(ctx, kNotifySet, "srem", args[1]);
  notify_if_emptied(ctx, *src, args[1]);
  if (!open_collection(ctx, args[2], ValueType::kSet, true, &dst)) return;
  const bool added = dst->set(args[3]);
  dst->save();
  if (added) notify(ctx, kNotifySet, "sadd", args[2]);
  ctx.out.integer(1);
}

// SPOP key [count]   (the count variant replies a set in RESP3)
void cmd_spop(CommandContext& ctx, Args args) {
  if (args.size() > 3) {
    ctx.out.error(kErrSyntax);
    return;
  }
  std::optional<Collection> s;
  if (args.size() == 2) {
    if (!open_collection(ctx, args[1], ValueType::kSet, false, &s)) return;
    if (!s) {
      ctx.out.null();
      return;
    }
    const std::string m = pick_members(ctx, *s, 1, false)[0];
    s->erase(m);
    s->save();
    notify(ctx, kNotifySet, "spop", args[1]);
    notify_if_emptied(ctx, *s, args[1]);
    ctx.out.bulk(m);
    return;
  }
  int64_t count = 0;
  if (!parse_positive_arg(ctx, args[2], &count)) return;
  if (!open_collection(ctx, args[1], ValueType::kSet, false, &s)) return;
  if (!s || count == 0) {
    ctx.out.set(0);
    return;
  }
  const std::vector<std::string> popped =
      pick_members(ctx, *s, static_cast<uint64_t>(count), false);
  for (const auto& m : popped) s->erase(m);
  s->save();
  notify(ctx, kNotifySet, "spop", args[1]);
  notify_if_emptied(ctx, *s, args[1]);
  reply_set(ctx, popped);
}

// SRANDMEMBER key [count]
void cmd_srandmember(CommandContext& ctx, Args args) {
  if (args.size() > 3) {
    ctx.out.error(kErrSyntax);
    return;
  }
  std::optional<Collection> s;
  if (args.size() == 2) {
    if (!open_collection(ctx, args[1], ValueType::kSet, false, &s)) return;
    if (!s) {
      ctx.out.null();
      return;
    }
    ctx.out.bulk(pick_members(ctx, *s, 1, false)[0]);
    return;
  }
  int64_t l = 0;
  if (!parse_range_arg(ctx, args[2], -INT64_MAX, INT64_MAX, &l)) return;
  if (!open_collection(ctx, args[1], ValueType::kSet, false, &s)) return;
  if (!s || l == 0) {
    ctx.out.array(0);
    return;
  }
  const bool repeats = l < 0;
  const uint64_t count = repeats ? static_cast<uint64_t>(-l) : static_cast<uint64_t>(l);
  if (repeats && count > ctx.options.random_reply_max) {
    ctx.out.error("ERR count is larger than random-reply-max (" +
                  std::to_string(ctx.options.random_reply_max) + ")");
    return;
  }
  const std::vector<std::string> picked = pick_members(ctx, *s, count, repeats);
  ctx.out.array(picked.size());
  for (const auto& m : picked) ctx.out.bulk(m);
}

// SINTER key [key ...]
void cmd_sinter(CommandContext& ctx, Args args) { set_op_command(ctx, args, SetOp::kInter); }

// SINTERCARD numkeys key [key ...] [LIMIT limit]
void cmd_sintercard(CommandContext& ctx, Args args) {
  int64_t numkeys = 0;
  if (!parse_range_arg(ctx, args[1], 1, INT64_MAX, &numkeys, "numkeys should be greater than 0")) {
    return;
  }
  if (numkeys > static_cast<int64_t>(args.size()) - 2) {
    ctx.out.error("ERR Number of keys can't be greater than number of args");
    return;
  }
  int64_t limit = 0;
  for (size_t j = 2 + static_cast<size_t>(numkeys); j < args.size(); j++) {
    if (ieq(args[j], "limit") && j + 1 < args.size()) {
      if (!parse_positive_arg(ctx, args[++j], &limit, "LIMIT can't be negative")) return;
    } else {
      ctx.out.error(kErrSyntax);
      return;
    }
  }
  std::vector<std::string> members;
  if (!set_operation(ctx, args.subspan(2, static_cast<size_t>(numkeys)), SetOp::kInter,
                     static_cast<uint64_t>(limit), &members)) {
    return;
  }
  ctx.out.integer(static_cast<int64_t>(members.size()));
}

// SINTERSTORE destination key [key ...]
void cmd_sinterstore(CommandContext& ctx, Args args) {
  set_op_store_command(ctx, args, SetOp::kInter, "sinterstore");
}

// SUNION key [key ...]
void cmd_sunion(CommandContext& ctx, Args args) { set_op_command(ctx, args, SetOp::kUnion); }

// SUNIONSTORE destination key [key ...]
void cmd_sunionstore(CommandContext& ctx, Args args) {
  set_op_store_command(ctx, args, SetOp::kUnion, "sunionstore");
}

// SDIFF key [key ...]
void cmd_sdiff(CommandContext& ctx, Args args) { set_op_command(ctx, args, SetOp::kDiff); }

// SDIFFSTORE destination key [key ...]
void cmd_sdiffstore(CommandContext& ctx, Args args) {
  set_op_store_command(ctx, args, SetOp::kDiff, "sdiffstore");
}

// SSCAN key cursor [MATCH pattern] [COUNT count]
void cmd_sscan(CommandContext& ctx, Args args) { member_scan(ctx, args, ValueType::kSet); }

}  // namespace qkv::kv
