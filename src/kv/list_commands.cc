// List commands (the non-blocking ones). Semantics, replies and error texts
// follow Redis 7.0; the deliberate differences are listed in
// docs/COMMANDS.md. A list is a Collection (collection.h) with dense
// sequence numbers: pushes, pops, LINDEX, LSET and the start of LRANGE are
// point operations; LINSERT and LREM rewrite the elements after the first
// one they change, LTRIM deletes what it drops (a range deletion when
// large). Every push is reported by Keyspace::note_list_push() for blocked
// pops.
#include <algorithm>
#include <string>
#include <vector>

#include "kv/handlers.h"

namespace qkv::kv {

namespace {

enum class End : uint8_t { kLeft, kRight };

// LEFT | RIGHT (any case); syntax error otherwise.
bool parse_end(CommandContext& ctx, std::string_view arg, End* end) {
  if (ieq(arg, "left")) {
    *end = End::kLeft;
  } else if (ieq(arg, "right")) {
    *end = End::kRight;
  } else {
    ctx.out.error(kErrSyntax);
    return false;
  }
  return true;
}

void push(Collection& l, End end, std::string_view v) {
  if (end == End::kLeft) {
    l.push_front(v);
  } else {
    l.push_back(v);
  }
}

std::string pop(Collection& l, End end) {
  return end == End::kLeft ? l.pop_front() : l.pop_back();
}

// Keyspace notifications of a push and of a pop (the latter with a "del"
// when it emptied the list), after the change.
void notify_push(CommandContext& ctx, End end, std::string_view key) {
  notify(ctx, kNotifyList, end == End::kLeft ? "lpush" : "rpush", key);
}
void notify_pop(CommandContext& ctx, End end, const Collection& l, std::string_view key) {
  notify(ctx, kNotifyList, end == End::kLeft ? "lpop" : "rpop", key);
  if (l.size() == 0) notify(ctx, kNotifyGeneric, "del", key);
}

// LPUSH, RPUSH, LPUSHX, RPUSHX key element [element ...]
void push_command(CommandContext& ctx, Args args, End end, bool only_existing) {
  std::optional<Collection> l;
  if (!open_collection(ctx, args[1], ValueType::kList, !only_existing, &l)) return;
  if (!l) {
    ctx.out.integer(0);
    return;
  }
  for (size_t i = 2; i < args.size(); i++) push(*l, end, args[i]);
  l->save();
  notify_push(ctx, end, args[1]);
  ctx.out.integer(static_cast<int64_t>(l->size()));
}

// LPOP, RPOP key [count]
void pop_command(CommandContext& ctx, Args args, End end) {
  if (args.size() > 3) {
    ctx.out.error(arity_error(ctx.spec.name));
    return;
  }
  const bool has_count = args.size() == 3;
  int64_t count = 0;
  if (has_count && !parse_positive_arg(ctx, args[2], &count)) return;
  std::optional<Collection> l;
  if (!open_collection(ctx, args[1], ValueType::kList, false, &l)) return;
  if (!l) {
    if (has_count) {
      ctx.out.null_array();
    } else {
      ctx.out.null();
    }
    return;
  }
  if (!has_count) {
    ctx.out.bulk(pop(*l, end));
  } else {
    const uint64_t n = std::min<uint64_t>(static_cast<uint64_t>(count), l->size());
    ctx.out.array(n);
    for (uint64_t i = 0; i < n; i++) ctx.out.bulk(pop(*l, end));
  }
  l->save();
  if (!has_count || count > 0) notify_pop(ctx, end, *l, args[1]);
}

// Redis's list range rule: negative indexes count from the end; false when
// the range is empty, else [*start, *end] within [0, len).
bool clamp_range(int64_t len, int64_t* start, int64_t* end) {
  if (*start < 0) *start += len;
  if (*end < 0) *end += len;
  if (*start < 0) *start = 0;
  if (*start > *end || *start >= len) return false;
  if (*end >= len) *end = len - 1;
  return true;
}

}  // namespace

// LPUSH key element [element ...]
void cmd_lpush(CommandContext& ctx, Args args) { push_command(ctx, args, End::kLeft, false); }

// RPUSH key element [element ...]
void cmd_rpush(CommandContext& ctx, Args args) { push_command(ctx, args, End::kRight, false); }

// LPUSHX key element [element ...]
void cmd_lpushx(CommandContext& ctx, Args args) { push_command(ctx, args, End::kLeft, true); }

// RPUSHX key element [element ...]
void cmd_rpushx(CommandContext& ctx, Args args) { push_command(ctx, args, End::kRight, true); }

// LPOP key [count]
void cmd_lpop(CommandContext& ctx, Args args) { pop_command(ctx, args, End::kLeft); }

// RPOP key [count]
void cmd_rpop(CommandContext& ctx, Args args) { pop_command(ctx, args, End::kRight); }

// LLEN key
void cmd_llen(CommandContext& ctx, Args args) {
  std::optional<Collection> l;
  if (!open_collection(ctx, args[1], ValueType::kList, false, &l)) return;
  ctx.out.integer(l ? static_cast<int64_t>(l->size()) : 0);
}

// LRANGE key start stop
void cmd_lrange(CommandContext& ctx, Args args) {
  int64_t start = 0, end = 0;
  if (!parse_int_arg(ctx, args[2], &start) || !parse_int_arg(ctx, args[3], &end)) return;
  std::optional<Collection> l;
  if (!open_collection(ctx, args[1], ValueType::kList, false, &l)) return;
  if (!l || !clamp_range(static_cast<int64_t>(l->size()), &start, &end)) {
    ctx.out.array(0);
    return;
  }
  const auto last = static_cast<uint64_t>(end);
  ctx.out.array(static_cast<size_t>(end - start + 1));
  l->for_each_item(
      static_cast<uint64_t>(start),
      [&](uint64_t i, std::string_view v) {
        ctx.out.bulk(v);
        return i < last;
      },
      last - static_cast<uint64_t>(start) + 1);
}

// LINDEX key index
void cmd_lindex(CommandContext& ctx, Args args) {
  std::optional<Collection> l;
  if (!open_collection(ctx, args[1], ValueType::kList, false, &l)) return;
  if (!l) {
    ctx.out.null();
    return;
  }
  int64_t index = 0;
  if (!parse_int_arg(ctx, args[2], &index)) return;
  const auto len = static_cast<int64_t>(l->size());
  if (index < 0) index += len;
  if (index < 0 || index >= len) {
    ctx.out.null();
    return;
  }
  ctx.out.bulk(l->at(static_cast<uint64_t>(index)));
}

// LSET key index element
void cmd_lset(CommandContext& ctx, Args args) {
  std::optional<Collection> l;
  if (!open_collection(ctx, args[1], ValueType::kList, false, &l)) return;
  if (!l) {
    ctx.out.error(kErrNoSuchKey);
    return;
  }
  int64_t index = 0;
  if (!parse_int_arg(ctx, args[2], &index)) return;
  const auto len = static_cast<int64_t>(l->size());
  if (index < 0) index += len;
  if (index < 0 || index >= len) {
    ctx.out.error("ERR index out of range");
    return;
  }
  l->set_at(static_cast<uint64_t>(index), args[3]);
  notify(ctx, kNotifyList, "lset", args[1]);
  ctx.out.ok();
}

// LINSERT key BEFORE | AFTER pivot element
void cmd_linsert(CommandContext& ctx, Args args) {
  bool after = false;
  if (ieq(args[2], "after")) {
    after = true;
  } else if (!ieq(args[2], "before")) {
    ctx.out.error(kErrSyntax);
    return;
  }
  std::optional<Collection> l;
  if (!open_collection(ctx, args[1], ValueType::kList, false, &l)) return;
  if (!l) {
    ctx.out.integer(0);
    return;
  }
  // The elements from the insertion point on, the new one first.
  std::optional<uint64_t> at;
  std::vector<std::string> tail;
  l->for_each_item(0, [&](uint64_t i, std::string_view v) {
    if (!at && v == args[3]) {
      at = after ? i + 1 : i;
      if (!after) tail.emplace_back(args[4]);
    }
    if (at && i >= *at) tail.emplace_back(v);
    if (at && after && i + 1 == *at) tail.emplace_back(args[4]);
    return true;
  });
  if (!at) {
    ctx.out.integer(-1);
    return;
  }
  l->replace_tail(*at, tail);
  l->save();
  notify(ctx, kNotifyList, "linsert", args[1]);
  ctx.out.integer(static_cast<int64_t>(l->size()));
}

// LREM key count element
void cmd_lrem(CommandContext& ctx, Args args) {
  int64_t count = 0;
  if (!parse_int_arg(ctx, args[2], &count)) return;
  std::optional<Collection> l;
  if (!open_collection(ctx, args[1], ValueType::kList, false, &l)) return;
  if (!l) {
    ctx.out.integer(0);
    return;
  }
  std::vector<std::string> items;
  items.reserve(l->size());
  l->for_each_item(0, [&](uint64_t, std::string_view v) {
    items.emplace_back(v);
    return true;
  });
  // Mark the removed ones: count > 0 from the head, < 0 from the tail, 0 all.
  const uint64_t limit = count == 0  ? UINT64_MAX
                         : count > 0 ? static_cast<uint64_t>(count)
                                     : 0 - static_cast<uint64_t>(count);
  std::vector<bool> removed(items.size(), false);
  uint64_t n = 0;
  for (size_t k = 0; k < items.size() && n < limit; k++) {
    const size_t i = count < 0 ? items.size() - 1 - k : k;
    if (items[i] == args[3]) {
      removed[i] = true;
      n++;
    }
  }
  if (n > 0) {
    size_t first = 0;
    while (!removed[first]) first++;
    std::vector<std::string> kept;
    for (size_t i = first; i < items.size(); i++) {
      if (!removed[i]) kept.push_back(std::move(items[i]));
    }
    l->replace_tail(first, kept);
    l->save();
    notify(ctx, kNotifyList, "lrem", args[1]);
    if (l->size() == 0) notify(ctx, kNotifyGeneric, "del", args[1]);
  }
  ctx.out.integer(static_cast<int64_t>(n));
}

// LTRIM key start stop
void cmd_ltrim(CommandContext& ctx, Args args) {
  int64_t start = 0, end = 0;
  if (!parse_int_arg(ctx, args[2], &start) || !parse_int_arg(ctx, args[3], &end)) return;
  std::optional<Collection> l;
  if (!open_collection(ctx, args[1], ValueType::kList, false, &l)) return;
  if (l) {
    const auto len = static_cast<int64_t>(l->size());
    if (!clamp_range(len, &start, &end)) {
      l->drop_front(static_cast<uint64_t>(len));
    } else {
      l->drop_back(static_cast<uint64_t>(len - end - 1));
      l->drop_front(static_cast<uint64_t>(start));
    }
    l->save();
    notify(ctx, kNotifyList, "ltrim", args[1]);
    if (l->size() == 0) notify(ctx, kNotifyGeneric, "del", args[1]);
  }
  ctx.out.ok();
}

// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
void cmd_lpos(CommandContext& ctx, Args args) {
  int64_t rank = 1, count = -1, maxlen = 0;
  for (size_t j = 3; j < args.size(); j++) {
    const bool more = j + 1 < args.size();
    if (ieq(args[j], "rank") && more) {
      if (!parse_int_arg(ctx, args[++j], &rank)) return;
      if (rank == 0) {
        ctx.out.error(
            "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second "
            "... or use negative to start from the end of the list");
        return;
      }
    } else if (ieq(args[j], "count") && more) {
      if (!parse_positive_arg(ctx, args[++j], &count, "COUNT can't be negative")) return;
    } else if (ieq(args[j], "maxlen") && more) {
      if (!parse_positive_arg(ctx, args[++j], &maxlen, "MAXLEN can't be negative")) return;
    } else {
      ctx.out.error(kErrSyntax);
      return;
    }
  }
  const bool from_tail = rank < 0;
  // Redis accepts RANK INT64_MIN; its negation stays negative, so every
  // match qualifies and COUNT never ends the search.
  const bool wrapped = rank == INT64_MIN;
  const uint64_t want_rank = wrapped ? 1 : static_cast<uint64_t>(from_tail ? -rank : rank);
  std::optional<Collection> l;
  if (!open_collection(ctx, args[1], ValueType::kList, false, &l)) return;
  if (!l) {
    if (count != -1) {
      ctx.out.array(0);
    } else {
      ctx.out.null();
    }
    return;
  }
  const uint64_t len = l->size();
  std::vector<int64_t> found;
  uint64_t matches = 0, scanned = 0;
  auto visit = [&](uint64_t i, std::string_view v) {
    if (maxlen != 0 && scanned >= static_cast<uint64_t>(maxlen)) return false;
    scanned++;
    if (v != args[2]) return true;
    matches++;
    if (matches < want_rank) return true;
    found.push_back(static_cast<int64_t>(i));
    if (count == -1) return false;
    return wrapped || count == 0 || found.size() < static_cast<uint64_t>(count);
  };
  if (!from_tail) {
    l->for_each_item(0, visit);
  } else {
    // Backwards: one point read per element (the sequence numbers are dense).
    for (uint64_t k = 0; k < len; k++) {
      const uint64_t i = len - 1 - k;
      if (!visit(i, l->at(i))) break;
    }
  }
  if (count != -1) {
    ctx.out.array(found.size());
    for (int64_t i : found) ctx.out.integer(i);
  } else if (!found.empty()) {
    ctx.out.integer(found[0]);
  } else {
    ctx.out.null();
  }
}

// LMOVE source destination LEFT | RIGHT LEFT | RIGHT
void cmd_lmove(CommandContext& ctx, Args args) {
  End from = End::kLeft, to = End::kLeft;
  if (!parse_end(ctx, args[3], &from) || !parse_end(ctx, args[4], &to)) return;
  std::optional<Collection> src;
  if (!open_collection(ctx, args[1], ValueType::kList, false, &src)) return;
  if (!src) {
    ctx.out.null();
    return;
  }
  std::optional<Record> dst_rec;
  if (!find_typed(ctx, args[2], ValueType::kList, &dst_rec)) return;
  const std::string v = pop(*src, from);
  // Notified as Redis does: the push to the destination, then the pop.
  if (args[1] == args[2]) {
    push(*src, to, v);  // a rotation
    src->save();
    notify_push(ctx, to, args[2]);
  } else {
    src->save();
    std::optional<Collection> dst;
    if (!open_collection(ctx, args[2], ValueType::kList, true, &dst)) return;
    push(*dst, to, v);
    dst->save();
    notify_push(ctx, to, args[2]);
  }
  notify_pop(ctx, from, *src, args[1]);
  ctx.out.bulk(v);
}

// RPOPLPUSH source destination
void cmd_rpoplpush(CommandContext& ctx, Args args) {
  const std::string_view lmove[] = {"lmove", args[1], args[2], "right", "left"};
  cmd_lmove(ctx, lmove);
}

}  // namespace qkv::kv
