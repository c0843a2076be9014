// Helpers the data command handlers share (handlers.h).
#include <algorithm>
#include <string>
#include <vector>

#include "kv/glob.h"
#include "kv/handlers.h"

namespace qkv::kv {

void notify(CommandContext& ctx, NotifyClass cls, std::string_view event, std::string_view key) {
  if (ctx.events == nullptr || !ctx.events->want_keyspace) return;
  ctx.events->keyspace.push_back(KeyspaceEvent{cls, std::string(event), std::string(key)});
}

bool find_typed(CommandContext& ctx, std::string_view key, ValueType t,
                std::optional<Record>* rec) {
  *rec = ctx.ks.find(key);
  if (*rec && (*rec)->type != t) {
    ctx.out.error(kErrWrongType);
    return false;
  }
  return true;
}

bool open_collection(CommandContext& ctx, std::string_view key, ValueType t, bool create,
                     std::optional<Collection>* c) {
  std::optional<Record> rec;
  if (!find_typed(ctx, key, t, &rec)) return false;
  if (rec) {
    c->emplace(ctx.ks, key, std::move(*rec));
  } else if (create) {
    c->emplace(Collection::create(ctx.ks, key, t));
  }
  return true;
}

bool parse_range_arg(CommandContext& ctx, std::string_view arg, int64_t min, int64_t max,
                     int64_t* out, std::string_view msg) {
  int64_t v = 0;
  if (!net::parse_int64(arg, &v)) {
    ctx.out.error(msg.empty() ? std::string(kErrNotInteger) : "ERR " + std::string(msg));
    return false;
  }
  if (v < min || v > max) {
    ctx.out.error(msg.empty() ? "ERR value is out of range, value must between " +
                                    std::to_string(min) + " and " + std::to_string(max)
                              : "ERR " + std::string(msg));
    return false;
  }
  *out = v;
  return true;
}

bool parse_positive_arg(CommandContext& ctx, std::string_view arg, int64_t* out,
                        std::string_view msg) {
  return parse_range_arg(ctx, arg, 0, INT64_MAX, out, msg);
}

void member_scan(CommandContext& ctx, Args args, ValueType t) {
  uint64_t cursor = 0;
  if (!parse_cursor(args[2], &cursor)) {
    ctx.out.error(kErrInvalidCursor);
    return;
  }
  std::optional<Collection> c;
  if (!open_collection(ctx, args[1], t, false, &c)) return;
  if (!c) {
    ctx.out.array(2);
    ctx.out.bulk("0");
    ctx.out.array(0);
    return;
  }
  int64_t count = 10;
  std::string_view pattern;
  bool use_pattern = false;
  for (size_t j = 3; j < args.size(); j += 2) {
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
    } else {
      ctx.out.error(kErrSyntax);
      return;
    }
  }
  const uint64_t budget =
      std::min<uint64_t>(static_cast<uint64_t>(count), ctx.options.scan_count_max);
  const bool with_values = t == ValueType::kHash;
  std::vector<std::string> items;
  uint64_t examined = 0, last_hash = 0, next_cursor = 0;
  c->for_each_member(
      cursor,
      [&](uint64_t h, std::string_view member, std::string_view value) {
        // Stop only where the hash changes: the next call resumes there.
        if (examined >= budget && h != last_hash) {
          next_cursor = h;
          return false;
        }
        examined++;
        last_hash = h;
        if (use_pattern && !glob_match(pattern, member)) return true;
        items.emplace_back(member);
        if (with_values) items.emplace_back(value);
        return true;
      },
      budget + 1);
  ctx.out.array(2);
  ctx.out.bulk(std::to_string(next_cursor));
  ctx.out.array(items.size());
  for (const auto& s : items) ctx.out.bulk(s);
}

}  // namespace qkv::kv
