// Stream commands, with consumer groups. Semantics, replies and error texts
// follow Redis 7.0; the deliberate differences are listed in
// docs/COMMANDS.md. A stream is a Stream (stream.h): entries, a reverse
// index, groups, their PELs and consumers as element records of the key, so
// each command costs what it reads or changes, never the stream's size.
//
// Time is only ctx.ks.now_ms() (the entry's stamp): `*` ids, delivery
// times, idle times and consumers' seen times are the same on every replica.
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "kv/handlers.h"
#include "kv/stream.h"

namespace qkv::kv {

namespace {

constexpr std::string_view kErrInvalidId =
    "ERR Invalid stream ID specified as stream command argument";
constexpr std::string_view kErrKeyMustExist =
    "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to "
    "use the MKSTREAM option to create an empty stream automatically.";

// Redis's string2ull: string2ll, else strtoull over the C string (leading
// space, '+', and a '-' that wraps around are all accepted).
bool parse_u64(std::string_view arg, uint64_t* out) {
  const std::string s(arg.substr(0, arg.find('\0')));
  int64_t ll = 0;
  if (net::parse_int64(s, &ll)) {
    if (ll < 0) return false;
    *out = static_cast<uint64_t>(ll);
    return true;
  }
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (errno == EINVAL || errno == ERANGE || *end != '\0') return false;
  *out = v;
  return true;
}

// Redis's stream id parser. "ms-seq", or "ms" (seq = missing_seq); not
// strict: "-" and "+" are the smallest and largest ids. With `seq_given`
// (XADD), "ms-*" asks for an automatic sequence (*seq_given = false).
bool parse_id(std::string_view arg, uint64_t missing_seq, bool strict, StreamId* id,
              bool* seq_given = nullptr) {
  if (arg.size() > 127) return false;
  const std::string_view buf = arg.substr(0, arg.find('\0'));
  if (strict && (buf == "-" || buf == "+")) return false;
  if (seq_given != nullptr) *seq_given = true;
  if (buf == "-") {
    *id = StreamId{};
    return true;
  }
  if (buf == "+") {
    *id = StreamId::max();
    return true;
  }
  const size_t dash = buf.find('-');
  if (dash == std::string_view::npos) {
    if (!parse_u64(buf, &id->ms)) return false;
    id->seq = missing_seq;
    return true;
  }
  if (!parse_u64(buf.substr(0, dash), &id->ms)) return false;
  const std::string_view seq = buf.substr(dash + 1);
  if (seq_given != nullptr && seq == "*") {
    id->seq = 0;
    *seq_given = false;
    return true;
  }
  return parse_u64(seq, &id->seq);
}

bool parse_strict_id(CommandContext& ctx, std::string_view arg, StreamId* id) {
  if (parse_id(arg, 0, true, id)) return true;
  ctx.out.error(kErrInvalidId);
  return false;
}

// An interval bound: "(" id excludes it (a strict id then).
bool parse_interval_id(CommandContext& ctx, std::string_view arg, uint64_t missing_seq,
                       StreamId* id, bool* exclusive) {
  *exclusive = arg.size() > 1 && arg[0] == '(';
  const bool ok = *exclusive ? parse_id(arg.substr(1), missing_seq, true, id)
                             : parse_id(arg, missing_seq, false, id);
  if (!ok) ctx.out.error(kErrInvalidId);
  return ok;
}

// Interval start and end as XRANGE, XPENDING and XAUTOCLAIM read them.
bool parse_start(CommandContext& ctx, std::string_view arg, StreamId* id) {
  bool ex = false;
  if (!parse_interval_id(ctx, arg, 0, id, &ex)) return false;
  if (ex && !id->incr()) {
    ctx.out.error("ERR invalid start ID for the interval");
    return false;
  }
  return true;
}

bool parse_end(CommandContext& ctx, std::string_view arg, StreamId* id) {
  bool ex = false;
  if (!parse_interval_id(ctx, arg, UINT64_MAX, id, &ex)) return false;
  if (ex && !id->decr()) {
    ctx.out.error("ERR invalid end ID for the interval");
    return false;
  }
  return true;
}

bool parse_ll(CommandContext& ctx, std::string_view arg, int64_t* out, std::string_view msg = {}) {
  if (net::parse_int64(arg, out)) return true;
  ctx.out.error(msg.empty() ? std::string(kErrNotInteger) : "ERR " + std::string(msg));
  return false;
}

// The live stream at `key`: WRONGTYPE (false) for another type; *s stays
// empty when absent.
bool open_stream(CommandContext& ctx, std::string_view key, std::optional<Stream>* s) {
  std::optional<Record> rec;
  if (!find_typed(ctx, key, ValueType::kStream, &rec)) return false;
  if (rec) s->emplace(ctx.ks, key, std::move(*rec));
  return true;
}

void reply_id(CommandContext& ctx, StreamId id) { ctx.out.bulk(id.str()); }

// [id, [field, value, ...]].
void reply_entry(CommandContext& ctx, StreamId id, std::string_view fields) {
  std::vector<std::string_view> f;
  Stream::decode_fields(fields, &f);
  ctx.out.array(2);
  reply_id(ctx, id);
  ctx.out.array(f.size());
  for (auto v : f) ctx.out.bulk(v);
}

// Writes the entry `id` if it exists; false if not.
bool reply_entry_at(CommandContext& ctx, Stream& s, StreamId id) {
  auto v = s.entry(id);
  if (!v) return false;
  reply_entry(ctx, id, *v);
  return true;
}

std::string nogroup_error(std::string_view key, std::string_view group) {
  return "NOGROUP No such key '" + std::string(key) + "' or consumer group '" + std::string(group) +
         "'";
}

std::string nogroup_for_key_error(std::string_view group, std::string_view key) {
  return "NOGROUP No such consumer group '" + std::string(group) + "' for key name '" +
         std::string(key) + "'";
}

std::string subcommand_syntax_error(std::string_view container, std::string_view sub) {
  return "ERR unknown subcommand or wrong number of arguments for '" +
         std::string(sub.substr(0, 128)) + "'. Try " + std::string(container) + " HELP.";
}

// --- Consumer group counters (Redis 7.0's entries-read and lag) -------------

// True if an XDEL tombstone may lie at or after `start`.
bool has_tombstones_from(const StreamMeta& m, StreamId start) {
  if (m.length == 0 || m.max_deleted.is_zero()) return false;
  if (m.first > m.max_deleted) return false;
  return start <= m.max_deleted;
}

// The number of entries up to and including `id` ever added, when it can be
// known; kEntriesReadUnknown otherwise.
int64_t estimate_entries_read(const StreamMeta& m, StreamId id) {
  const auto added = static_cast<int64_t>(m.entries_added);
  if (m.entries_added == 0) return 0;
  if (m.length == 0 && id <= m.last) return added;
  if (id == m.last) return added;
  if (id > m.last) return kEntriesReadUnknown;
  if (m.max_deleted.is_zero() || m.max_deleted < m.first) {
    if (id < m.first) return added - static_cast<int64_t>(m.length);
    if (id == m.first) return added - static_cast<int64_t>(m.length) + 1;
  }
  return kEntriesReadUnknown;
}

// The group's lag, if it can be known.
std::optional<int64_t> group_lag(const StreamMeta& m, const StreamGroup& g) {
  const auto added = static_cast<int64_t>(m.entries_added);
  if (m.entries_added == 0) return 0;
  if (g.entries_read != kEntriesReadUnknown && !has_tombstones_from(m, g.last)) {
    return added - g.entries_read;
  }
  const int64_t read = estimate_entries_read(m, g.last);
  if (read == kEntriesReadUnknown) return std::nullopt;
  return added - read;
}

void reply_optional_int(CommandContext& ctx, std::optional<int64_t> v) {
  if (v) {
    ctx.out.integer(*v);
  } else {
    ctx.out.null();
  }
}

// A consumer of the group, created (seen now) if new; its record is written.
StreamConsumer touch_consumer(CommandContext& ctx, Stream& s, StreamGroup& g,
                              std::string_view name, int64_t now) {
  auto c = s.consumer(g, name);
  const bool is_new = !c;
  if (is_new) {
    c.emplace(StreamConsumer{std::string(name), now, 0});
    notify(ctx, kNotifyStream, "xgroup-createconsumer", s.key());
  }
  c->seen_ms = now;
  s.put_consumer(g, *c, is_new);
  return *c;
}

// --- XADD / XTRIM arguments ----------------------------------------------------

enum class Trim : uint8_t { kNone, kMaxLen, kMinId };

struct AddTrimArgs {
  Trim trim = Trim::kNone;
  bool approx = false;
  int64_t maxlen = 0;
  StreamId minid;
  int64_t limit = 0;
  bool nomkstream = false;
  bool id_given = false;
  bool seq_given = true;
  StreamId id;
  size_t id_pos = 0;  // XADD: where the id is
};

// Redis's streamParseAddOrTrimArgsOrReply. False after an error reply.
bool parse_add_trim(CommandContext& ctx, Args args, bool xadd, AddTrimArgs* a) {
  bool limit_given = false;
  size_t i = 2;
  for (; i < args.size(); i++) {
    const size_t more = args.size() - 1 - i;
    const std::string_view opt = args[i];
    if (xadd && opt == "*") {
      break;
    } else if ((ieq(opt, "maxlen") || ieq(opt, "minid")) && more > 0) {
      const bool maxlen = ieq(opt, "maxlen");
      if (a->trim != Trim::kNone) {
        ctx.out.error(
            "ERR syntax error, MAXLEN and MINID options at the same time are not compatible");
        return false;
      }
      a->approx = false;
      if (more >= 2 && args[i + 1] == "~") {
        a->approx = true;
        i++;
      } else if (more >= 2 && args[i + 1] == "=") {
        i++;
      }
      if (maxlen) {
        if (!parse_ll(ctx, args[i + 1], &a->maxlen)) return false;
        if (a->maxlen < 0) {
          ctx.out.error("ERR The MAXLEN argument must be >= 0.");
          return false;
        }
        a->trim = Trim::kMaxLen;
      } else {
        if (!parse_strict_id(ctx, args[i + 1], &a->minid)) return false;
        a->trim = Trim::kMinId;
      }
      i++;
    } else if (ieq(opt, "limit") && more > 0) {
      if (!parse_ll(ctx, args[i + 1], &a->limit)) return false;
      if (a->limit < 0) {
        ctx.out.error("ERR The LIMIT argument must be >= 0.");
        return false;
      }
      limit_given = true;
      i++;
    } else if (xadd && ieq(opt, "nomkstream")) {
      a->nomkstream = true;
    } else if (xadd) {
      if (!parse_id(opt, 0, true, &a->id, &a->seq_given)) {
        ctx.out.error(kErrInvalidId);
        return false;
      }
      a->id_given = true;
      break;
    } else {
      ctx.out.error(kErrSyntax);
      return false;
    }
  }
  a->id_pos = i;
  if (a->limit != 0 && a->trim == Trim::kNone) {
    ctx.out.error("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy");
    return false;
  }
  if (!xadd && a->trim == Trim::kNone) {
    ctx.out.error("ERR syntax error, XTRIM must be called with a trimming strategy");
    return false;
  }
  if (!a->approx) {
    if (limit_given) {
      ctx.out.error("ERR syntax error, LIMIT cannot be used without the special ~ option");
      return false;
    }
    a->limit = 0;
  } else if (!limit_given) {
    // Redis: 100 * stream-node-max-entries (100).
    a->limit = 10000;
  }
  return true;
}

// Trims exactly (an approximate trim too, up to its LIMIT: see
// docs/COMMANDS.md). Returns the number of entries deleted.
uint64_t apply_trim(Stream& s, const AddTrimArgs& a) {
  const auto limit = static_cast<uint64_t>(a.limit);
  if (a.trim == Trim::kMaxLen) return s.trim_maxlen(static_cast<uint64_t>(a.maxlen), limit);
  if (a.trim == Trim::kMinId) return s.trim_minid(a.minid, limit);
  return 0;
}

// --- XREAD / XREADGROUP ---------------------------------------------------------

struct ReadArgs {
  int64_t timeout_ms = -1;  // -1: no BLOCK
  int64_t count = 0;
  bool noack = false;
  std::string_view group, consumer;
  bool has_group = false;
  size_t streams_at = 0;  // first key
  size_t nkeys = 0;
};

bool parse_read_args(CommandContext& ctx, Args args, bool group_cmd, ReadArgs* r) {
  for (size_t i = 1; i < args.size(); i++) {
    const size_t more = args.size() - 1 - i;
    const std::string_view o = args[i];
    if (ieq(o, "block") && more > 0) {
      i++;
      if (!parse_ll(ctx, args[i], &r->timeout_ms, "timeout is not an integer or out of range")) {
        return false;
      }
      if (r->timeout_ms < 0) {
        ctx.out.error("ERR timeout is negative");
        return false;
      }
      if (r->timeout_ms > 0 && r->timeout_ms > INT64_MAX - ctx.ks.now_ms()) {
        ctx.out.error("ERR timeout is out of range");
        return false;
      }
    } else if (ieq(o, "count") && more > 0) {
      i++;
      if (!parse_ll(ctx, args[i], &r->count)) return false;
      if (r->count < 0) r->count = 0;
    } else if (ieq(o, "streams") && more > 0) {
      r->streams_at = i + 1;
      const size_t n = args.size() - r->streams_at;
      if (n % 2 != 0) {
        // Redis 7.0's text, for XREADGROUP too.
        ctx.out.error(
            "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be "
            "specified.");
        return false;
      }
      r->nkeys = n / 2;
      break;
    } else if (ieq(o, "group") && more >= 2) {
      if (!group_cmd) {
        ctx.out.error(
            "ERR The GROUP option is only supported by XREADGROUP. You called XREAD "
            "instead.");
        return false;
      }
      r->group = args[i + 1];
      r->consumer = args[i + 2];
      r->has_group = true;
      i += 2;
    } else if (ieq(o, "noack")) {
      if (!group_cmd) {
        ctx.out.error(
            "ERR The NOACK option is only supported by XREADGROUP. You called XREAD "
            "instead.");
        return false;
      }
      r->noack = true;
    } else {
      ctx.out.error(kErrSyntax);
      return false;
    }
  }
  if (r->streams_at == 0) {
    ctx.out.error(kErrSyntax);
    return false;
  }
  if (group_cmd && !r->has_group) {
    ctx.out.error("ERR Missing GROUP option for XREADGROUP");
    return false;
  }
  return true;
}

// XREAD and XREADGROUP.
void read_command(CommandContext& ctx, Args args, bool group_cmd) {
  ReadArgs r;
  if (!parse_read_args(ctx, args, group_cmd, &r)) return;
  struct Target {
    std::optional<Stream> stream;
    std::optional<StreamGroup> group;
    StreamId after;
    bool new_entries = false;  // XREADGROUP '>'
  };
  std::vector<Target> targets(r.nkeys);
  for (size_t k = 0; k < r.nkeys; k++) {
    Target& t = targets[k];
    const std::string_view key = args[r.streams_at + k];
    const std::string_view id = args[r.streams_at + r.nkeys + k];
    if (!open_stream(ctx, key, &t.stream)) return;
    if (group_cmd) {
      if (t.stream) t.group = t.stream->group(r.group);
      if (!t.group) {
        ctx.out.error("NOGROUP No such key '" + std::string(key) + "' or consumer group '" +
                      std::string(r.group) + "' in XREADGROUP with GROUP option");
        return;
      }
    }
    if (id == "$") {
      if (group_cmd) {
        ctx.out.error(
            "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the "
            "history of this consumer by specifying a proper ID, or use the > ID to get new "
            "messages. The $ ID would just return an empty result set.");
        return;
      }
      t.after = t.stream ? t.stream->meta().last : StreamId{};
    } else if (id == ">") {
      if (!group_cmd) {
        ctx.out.error(
            "ERR The > ID can be specified only when calling XREADGROUP using the GROUP "
            "<group> <consumer> option.");
        return;
      }
      t.new_entries = true;
    } else if (!parse_strict_id(ctx, id, &t.after)) {
      return;
    }
  }
  const int64_t now = ctx.ks.now_ms();
  const uint64_t cap = ctx.options.stream_reply_entries_max;
  const uint64_t count =
      r.count == 0 ? cap : std::min<uint64_t>(static_cast<uint64_t>(r.count), cap);
  const size_t mark = ctx.out.deferred_len();
  size_t served = 0;
  for (size_t k = 0; k < r.nkeys; k++) {
    Target& t = targets[k];
    if (!t.stream) continue;
    if (group_cmd) {
      // A key named twice: the earlier read changed its group and PEL.
      for (size_t j = 0; j < k; j++) {
        if (args[r.streams_at + j] != args[r.streams_at + k]) continue;
        if (!open_stream(ctx, args[r.streams_at + k], &t.stream) || !t.stream) return;
        t.group = t.stream->group(r.group);
        break;
      }
    }
    Stream& s = *t.stream;
    const bool history = group_cmd && !t.new_entries;
    StreamId start = t.new_entries ? t.group->last : t.after;
    if (!history) {
      // Served only if an entry follows `start`.
      if (!start.incr() || !s.first_entry_from(start)) continue;
    } else if (!start.incr()) {
      start = StreamId::max();  // nothing can follow max: an empty history
    }
    if (ctx.out.protocol() == net::Protocol::kResp2) ctx.out.array(2);
    ctx.out.bulk(args[r.streams_at + k]);
    served++;
    const size_t entries_mark = ctx.out.deferred_len();
    uint64_t n = 0;
    if (!group_cmd) {
      s.for_each_entry(
          start,
          [&](StreamId id, std::string_view fields) {
            reply_entry(ctx, id, fields);
            return ++n < count;
          },
          count);
      ctx.out.fill_deferred_array(entries_mark, n);
      continue;
    }
    StreamGroup& g = *t.group;
    const StreamConsumer c = touch_consumer(ctx, s, g, r.consumer, now);
    if (history) {
      // The consumer's own pending entries: redelivered (a deleted one as
      // [id, nil]).
      std::vector<StreamId> ids;
      s.for_each_consumer_nack(
          g, c.name, start,
          [&](StreamId id) {
            ids.push_back(id);
            return ids.size() < count;
          },
          count);
      for (StreamId id : ids) {
        if (reply_entry_at(ctx, s, id)) {
          auto old = s.nack(g, id);
          if (old) {
            StreamNack nk = *old;
            nk.delivery_ms = now;
            nk.deliveries++;
            s.put_nack(g, id, nk, old);
          }
        } else {
          ctx.out.array(2);
          reply_id(ctx, id);
          ctx.out.null_array();
        }
      }
      n = ids.size();
    } else {
      std::vector<std::pair<StreamId, std::string>> got;
      s.for_each_entry(
          start,
          [&](StreamId id, std::string_view fields) {
            got.emplace_back(id, fields);
            return got.size() < count;
          },
          count);
      const StreamMeta& m = s.meta();
      for (const auto& [id, fields] : got) {
        if (id > g.last) {
          if (g.entries_read != kEntriesReadUnknown && !has_tombstones_from(m, id)) {
            g.entries_read++;
          } else if (m.entries_added != 0) {
            g.entries_read = estimate_entries_read(m, id);
          }
          g.last = id;
        }
        reply_entry(ctx, id, fields);
        if (r.noack) continue;
        // An entry already pending (after XGROUP SETID went back) moves to
        // this consumer, counted as a first delivery.
        auto old = s.nack(g, id);
        s.put_nack(g, id, StreamNack{now, 1, c.name}, old);
      }
      n = got.size();
    }
    s.put_group(g, false);
    ctx.out.fill_deferred_array(entries_mark, n);
  }
  if (served > 0) {
    if (ctx.out.protocol() == net::Protocol::kResp2) {
      ctx.out.fill_deferred_array(mark, served);
    } else {
      ctx.out.fill_deferred_map(mark, served);
    }
    return;
  }
  // Nothing to serve. With BLOCK the client should now wait for an XADD to
  // one of the keys (or XGROUP SETID / DESTROY, DEL of a group's key) until
  // its timeout, then get this same null reply; the server does not block
  // yet (see stream_read_block_ms() in handlers.h): it answers at once, as
  // Redis does for a client that may not block (MULTI, scripts).
  ctx.out.null_array();
}

// --- XPENDING / XCLAIM / XAUTOCLAIM helpers --------------------------------------

bool open_group(CommandContext& ctx, std::string_view key, std::string_view group,
                std::optional<Stream>* s, std::optional<StreamGroup>* g) {
  if (!open_stream(ctx, key, s)) return false;
  if (*s) *g = (*s)->group(group);
  if (!*g) {
    ctx.out.error(nogroup_error(key, group));
    return false;
  }
  return true;
}

// XINFO STREAM [FULL [COUNT n]].
void xinfo_stream(CommandContext& ctx, Args args, Stream& s) {
  bool full = false;
  int64_t count = static_cast<int64_t>(ctx.options.stream_info_full_count_default);
  if (args.size() > 3) {
    if (!ieq(args[3], "full")) {
      ctx.out.error(subcommand_syntax_error("XINFO", args[1]));
      return;
    }
    full = true;
    if (args.size() > 4) {
      if (args.size() != 6 || !ieq(args[4], "count")) {
        ctx.out.error(subcommand_syntax_error("XINFO", args[1]));
        return;
      }
      if (!parse_ll(ctx, args[5], &count)) return;
      if (count < 0) count = 0;
    }
  }
  const uint64_t cap = ctx.options.stream_reply_entries_max;
  const uint64_t limit = count == 0 ? cap : std::min<uint64_t>(static_cast<uint64_t>(count), cap);
  const StreamMeta& m = s.meta();
  ctx.out.map(full ? 9 : 10);
  ctx.out.bulk("length");
  ctx.out.integer(static_cast<int64_t>(m.length));
  // Redis's radix tree of listpacks does not exist here: an estimate of
  // Redis's figures for the same entries (one node per 100).
  const auto nodes = static_cast<int64_t>((m.length + 99) / 100);
  ctx.out.bulk("radix-tree-keys");
  ctx.out.integer(nodes);
  ctx.out.bulk("radix-tree-nodes");
  ctx.out.integer(nodes + 1);
  ctx.out.bulk("last-generated-id");
  reply_id(ctx, m.last);
  ctx.out.bulk("max-deleted-entry-id");
  reply_id(ctx, m.max_deleted);
  ctx.out.bulk("entries-added");
  ctx.out.integer(static_cast<int64_t>(m.entries_added));
  ctx.out.bulk("recorded-first-entry-id");
  reply_id(ctx, m.first);
  if (!full) {
    ctx.out.bulk("groups");
    ctx.out.integer(static_cast<int64_t>(m.groups));
    for (bool first : {true, false}) {
      ctx.out.bulk(first ? "first-entry" : "last-entry");
      std::optional<StreamId> id = first ? s.first_entry_from(StreamId{}) : s.last_entry();
      if (!id || !reply_entry_at(ctx, s, *id)) ctx.out.null();
    }
    return;
  }
  ctx.out.bulk("entries");
  const size_t mark = ctx.out.deferred_len();
  uint64_t n = 0;
  s.for_each_entry(
      StreamId{},
      [&](StreamId id, std::string_view fields) {
        reply_entry(ctx, id, fields);
        return ++n < limit;
      },
      limit);
  ctx.out.fill_deferred_array(mark, n);
  ctx.out.bulk("groups");
  ctx.out.array(m.groups);
  s.for_each_group([&](const StreamGroup& g) {
    ctx.out.map(7);
    ctx.out.bulk("name");
    ctx.out.bulk(g.name);
    ctx.out.bulk("last-delivered-id");
    reply_id(ctx, g.last);
    ctx.out.bulk("entries-read");
    reply_optional_int(ctx, g.entries_read == kEntriesReadUnknown
                                ? std::nullopt
                                : std::optional<int64_t>(g.entries_read));
    ctx.out.bulk("lag");
    reply_optional_int(ctx, group_lag(m, g));
    ctx.out.bulk("pel-count");
    ctx.out.integer(static_cast<int64_t>(g.pending));
    ctx.out.bulk("pending");
    const size_t pmark = ctx.out.deferred_len();
    uint64_t pn = 0;
    s.for_each_nack(
        g, StreamId{},
        [&](StreamId id, const StreamNack& nk) {
          ctx.out.array(4);
          reply_id(ctx, id);
          ctx.out.bulk(nk.consumer);
          ctx.out.integer(nk.delivery_ms);
          ctx.out.integer(static_cast<int64_t>(nk.deliveries));
          return ++pn < limit;
        },
        limit);
    ctx.out.fill_deferred_array(pmark, pn);
    ctx.out.bulk("consumers");
    ctx.out.array(g.consumers);
    s.for_each_consumer(g, [&](const StreamConsumer& c) {
      ctx.out.map(4);
      ctx.out.bulk("name");
      ctx.out.bulk(c.name);
      ctx.out.bulk("seen-time");
      ctx.out.integer(c.seen_ms);
      ctx.out.bulk("pel-count");
      ctx.out.integer(static_cast<int64_t>(c.pending));
      ctx.out.bulk("pending");
      std::vector<StreamId> ids;
      s.for_each_consumer_nack(
          g, c.name, StreamId{},
          [&](StreamId id) {
            ids.push_back(id);
            return ids.size() < limit;
          },
          limit);
      ctx.out.array(ids.size());
      for (StreamId id : ids) {
        auto nk = s.nack(g, id);
        ctx.out.array(3);
        reply_id(ctx, id);
        ctx.out.integer(nk ? nk->delivery_ms : 0);
        ctx.out.integer(nk ? static_cast<int64_t>(nk->deliveries) : 0);
      }
      return true;
    });
    return true;
  });
}

// Subcommands of XGROUP and XINFO: name, arity (counting the container).
struct Sub {
  std::string_view name;
  int arity;
};

// Checks the subcommand and its arity as the server does for Redis's
// containers; replies the error and returns nullptr when wrong.
const Sub* find_sub(CommandContext& ctx, Args args, std::string_view container,
                    std::span<const Sub> subs) {
  for (const Sub& s : subs) {
    if (!ieq(args[1], s.name)) continue;
    const auto n = static_cast<int64_t>(args.size());
    if (s.arity >= 0 ? n != s.arity : n < -s.arity) {
      ctx.out.error(arity_error(std::string(container) + "|" + std::string(s.name)));
      return nullptr;
    }
    return &s;
  }
  ctx.out.error(unknown_subcommand_error(container, args[1]));
  return nullptr;
}

void reply_help(CommandContext& ctx, std::initializer_list<std::string_view> lines) {
  ctx.out.array(lines.size());
  for (auto l : lines) ctx.out.simple_string(l);
}

}  // namespace

std::optional<int64_t> stream_read_block_ms(Args args) {
  std::optional<int64_t> out;
  for (size_t i = 1; i + 1 < args.size(); i++) {
    if (ieq(args[i], "streams")) break;
    if (ieq(args[i], "block")) {
      int64_t v = 0;
      if (!net::parse_int64(args[i + 1], &v) || v < 0) return std::nullopt;
      out = v;
      i++;
    } else if (ieq(args[i], "count")) {
      i++;
    } else if (ieq(args[i], "group")) {
      i += 2;
    }
  }
  return out;
}

void xread_keys(Args args, std::vector<size_t>* out) {
  size_t streams = 0;
  for (size_t i = 1; i < args.size(); i++) {
    if (ieq(args[i], "block") || ieq(args[i], "count")) {
      i++;
    } else if (ieq(args[i], "group")) {
      i += 2;
    } else if (ieq(args[i], "noack")) {
      continue;
    } else if (ieq(args[i], "streams")) {
      streams = i;
      break;
    } else {
      break;
    }
  }
  if (streams == 0) return;
  const size_t n = args.size() - streams - 1;
  if (n == 0 || n % 2 != 0) return;
  for (size_t k = 0; k < n / 2; k++) out->push_back(streams + 1 + k);
}

// XADD key [NOMKSTREAM] [<MAXLEN | MINID> [= | ~] threshold [LIMIT count]] <* | id>
//   field value [field value ...]
void cmd_xadd(CommandContext& ctx, Args args) {
  AddTrimArgs a;
  if (!parse_add_trim(ctx, args, true, &a)) return;
  const size_t field_pos = a.id_pos + 1;
  if (args.size() < field_pos + 2 || (args.size() - field_pos) % 2 == 1) {
    ctx.out.error(arity_error(ctx.spec.name));
    return;
  }
  if (a.id_given && a.seq_given && a.id.is_zero()) {
    ctx.out.error("ERR The ID specified in XADD must be greater than 0-0");
    return;
  }
  std::optional<Stream> s;
  if (!open_stream(ctx, args[1], &s)) return;
  if (!s) {
    if (a.nomkstream) {
      ctx.out.null();
      return;
    }
    s.emplace(Stream::create(ctx.ks, args[1]));
  }
  const StreamId last = s->meta().last;
  if (last == StreamId::max()) {
    ctx.out.error("ERR The stream has exhausted the last possible ID, unable to add more items");
    return;
  }
  StreamId id;
  if (!a.id_given) {
    // Redis: the stamp's ms, or the last id's successor if time went back.
    const auto now = static_cast<uint64_t>(std::max<int64_t>(ctx.ks.now_ms(), 0));
    id = now > last.ms ? StreamId{now, 0} : last;
    if (now <= last.ms) id.incr();
  } else if (!a.seq_given && a.id.ms == last.ms) {
    if (last.seq == UINT64_MAX) {
      ctx.out.error(
          "ERR The ID specified in XADD is equal or smaller than the target stream top item");
      return;
    }
    id = StreamId{last.ms, last.seq + 1};
  } else {
    id = a.id;
  }
  if (id <= last) {
    ctx.out.error(
        "ERR The ID specified in XADD is equal or smaller than the target stream top item");
    // A stream this command created stays absent (nothing saved).
    return;
  }
  s->append(id, args.subspan(field_pos));
  reply_id(ctx, id);
  const uint64_t trimmed = apply_trim(*s, a);
  s->save();
  notify(ctx, kNotifyStream, "xadd", args[1]);
  if (trimmed > 0) notify(ctx, kNotifyStream, "xtrim", args[1]);
}

// XTRIM key <MAXLEN | MINID> [= | ~] threshold [LIMIT count]
void cmd_xtrim(CommandContext& ctx, Args args) {
  AddTrimArgs a;
  if (!parse_add_trim(ctx, args, false, &a)) return;
  std::optional<Stream> s;
  if (!open_stream(ctx, args[1], &s)) return;
  if (!s) {
    ctx.out.integer(0);
    return;
  }
  const uint64_t n = apply_trim(*s, a);
  s->save();
  if (n > 0) notify(ctx, kNotifyStream, "xtrim", args[1]);
  ctx.out.integer(static_cast<int64_t>(n));
}

// XLEN key
void cmd_xlen(CommandContext& ctx, Args args) {
  std::optional<Stream> s;
  if (!open_stream(ctx, args[1], &s)) return;
  ctx.out.integer(s ? static_cast<int64_t>(s->meta().length) : 0);
}

namespace {

// XRANGE key start end [COUNT count]; XREVRANGE key end start [COUNT count]
void range_command(CommandContext& ctx, Args args, bool rev) {
  StreamId start, end;
  if (!parse_start(ctx, rev ? args[3] : args[2], &start)) return;
  if (!parse_end(ctx, rev ? args[2] : args[3], &end)) return;
  int64_t count = -1;
  for (size_t j = 4; j < args.size(); j++) {
    if (ieq(args[j], "count") && j + 1 < args.size()) {
      if (!parse_ll(ctx, args[j + 1], &count)) return;
      if (count < 0) count = 0;
      j++;
    } else {
      ctx.out.error(kErrSyntax);
      return;
    }
  }
  std::optional<Stream> s;
  if (!open_stream(ctx, args[1], &s)) return;
  if (!s) {
    ctx.out.array(0);
    return;
  }
  if (count == 0) {
    ctx.out.null_array();
    return;
  }
  const uint64_t cap = ctx.options.stream_reply_entries_max;
  // One more than the cap is read to tell "exactly the cap" from "more".
  const uint64_t want = count < 0 ? cap + 1 : static_cast<uint64_t>(count);
  const size_t mark = ctx.out.deferred_len();
  uint64_t n = 0;
  auto visit = [&](StreamId id, std::string_view fields) {
    if (rev ? id < start : id > end) return false;
    reply_entry(ctx, id, fields);
    return ++n < want;
  };
  if (start <= end) {
    if (rev) {
      s->for_each_entry_reverse(end, visit, std::min<uint64_t>(want, 1024));
    } else {
      s->for_each_entry(start, visit, std::min<uint64_t>(want, 1024));
    }
  }
  if (n > cap) {
    ctx.out.out()->resize(mark);
    ctx.out.error("ERR " + std::string(rev ? "XREVRANGE" : "XRANGE") + " would return more than " +
                  std::to_string(cap) + " entries (stream-reply-entries-max); use COUNT");
    return;
  }
  ctx.out.fill_deferred_array(mark, n);
}

}  // namespace

// XRANGE key start end [COUNT count]
void cmd_xrange(CommandContext& ctx, Args args) { range_command(ctx, args, false); }

// XREVRANGE key end start [COUNT count]
void cmd_xrevrange(CommandContext& ctx, Args args) { range_command(ctx, args, true); }

// XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]
void cmd_xread(CommandContext& ctx, Args args) { read_command(ctx, args, false); }

// XREADGROUP GROUP group consumer [COUNT count] [BLOCK milliseconds] [NOACK]
//   STREAMS key [key ...] id [id ...]
void cmd_xreadgroup(CommandContext& ctx, Args args) { read_command(ctx, args, true); }

// XDEL key id [id ...]
void cmd_xdel(CommandContext& ctx, Args args) {
  std::optional<Stream> s;
  if (!open_stream(ctx, args[1], &s)) return;
  if (!s) {
    ctx.out.integer(0);
    return;
  }
  std::vector<StreamId> ids(args.size() - 2);
  for (size_t j = 2; j < args.size(); j++) {
    if (!parse_strict_id(ctx, args[j], &ids[j - 2])) return;
  }
  int64_t deleted = 0;
  for (StreamId id : ids) {
    if (!s->remove_entry(id)) continue;
    StreamMeta& m = s->mutable_meta();
    if (id > m.max_deleted) m.max_deleted = id;
    deleted++;
  }
  s->save();
  if (deleted > 0) notify(ctx, kNotifyStream, "xdel", args[1]);
  ctx.out.integer(deleted);
}

// XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]
void cmd_xsetid(CommandContext& ctx, Args args) {
  StreamId id, max_deleted;
  int64_t entries_added = -1;
  if (!parse_strict_id(ctx, args[2], &id)) return;
  for (size_t i = 3; i < args.size(); i += 2) {
    const bool more = i + 1 < args.size();
    if (ieq(args[i], "entriesadded") && more) {
      if (!parse_ll(ctx, args[i + 1], &entries_added)) return;
      if (entries_added < 0) {
        ctx.out.error("ERR entries_added must be positive");
        return;
      }
    } else if (ieq(args[i], "maxdeletedid") && more) {
      if (!parse_strict_id(ctx, args[i + 1], &max_deleted)) return;
      if (id < max_deleted) {
        ctx.out.error(
            "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id");
        return;
      }
    } else {
      ctx.out.error(kErrSyntax);
      return;
    }
  }
  std::optional<Stream> s;
  if (!open_stream(ctx, args[1], &s)) return;
  if (!s) {
    ctx.out.error(kErrNoSuchKey);
    return;
  }
  const StreamMeta& m = s->meta();
  if (id < m.max_deleted) {
    ctx.out.error("ERR The ID specified in XSETID is smaller than current max_deleted_entry_id");
    return;
  }
  if (m.length > 0) {
    const std::optional<StreamId> top = s->last_entry();
    if (top && id < *top) {
      ctx.out.error("ERR The ID specified in XSETID is smaller than the target stream top item");
      return;
    }
    if (entries_added != -1 && m.length > static_cast<uint64_t>(entries_added)) {
      ctx.out.error(
          "ERR The entries_added specified in XSETID is smaller than the target stream length");
      return;
    }
  }
  StreamMeta& w = s->mutable_meta();
  w.last = id;
  if (entries_added != -1) w.entries_added = static_cast<uint64_t>(entries_added);
  if (!max_deleted.is_zero()) w.max_deleted = max_deleted;
  s->save();
  notify(ctx, kNotifyStream, "xsetid", args[1]);
  ctx.out.ok();
}

// XGROUP CREATE key group <id | $> [MKSTREAM] [ENTRIESREAD entries-read]
//      | SETID key group <id | $> [ENTRIESREAD entries-read]
//      | DESTROY key group | CREATECONSUMER key group consumer
//      | DELCONSUMER key group consumer | HELP
void cmd_xgroup(CommandContext& ctx, Args args) {
  static constexpr Sub kSubs[] = {{"create", -5},        {"setid", -5},      {"destroy", 4},
                                  {"createconsumer", 5}, {"delconsumer", 5}, {"help", 2}};
  const Sub* sub = find_sub(ctx, args, "xgroup", kSubs);
  if (sub == nullptr) return;
  const std::string_view op = sub->name;
  if (op == "help") {
    reply_help(
        ctx,
        {"XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
         "CREATE <key> <groupname> <id|$> [option]",
         "    Create a new consumer group. Options are:", "    * MKSTREAM",
         "      Create the empty stream if it does not exist.", "    * ENTRIESREAD entries_read",
         "      Set the group's entries_read counter (internal use).",
         "CREATECONSUMER <key> <groupname> <consumer>",
         "    Create a new consumer in the specified group.",
         "DELCONSUMER <key> <groupname> <consumer>", "    Remove the specified consumer.",
         "DESTROY <key> <groupname>", "    Remove the specified group.",
         "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
         "    Set the current group ID and entries_read counter.", "HELP",
         "    Prints this help."});
    return;
  }
  const std::string_view key = args[2], name = args[3];
  bool mkstream = false;
  int64_t entries_read = kEntriesReadUnknown;
  auto parse_entries_read = [&](std::string_view v) {
    if (!parse_ll(ctx, v, &entries_read)) return false;
    if (entries_read < 0 && entries_read != kEntriesReadUnknown) {
      ctx.out.error("ERR value for ENTRIESREAD must be positive or -1");
      return false;
    }
    return true;
  };
  if (op == "create" || op == "setid") {
    for (size_t i = 5; i < args.size();) {
      if (op == "create" && ieq(args[i], "mkstream")) {
        mkstream = true;
        i++;
      } else if (ieq(args[i], "entriesread") && i + 1 < args.size()) {
        if (!parse_entries_read(args[i + 1])) return;
        i += 2;
      } else {
        ctx.out.error(subcommand_syntax_error("XGROUP", args[1]));
        return;
      }
    }
  }
  std::optional<Stream> s;
  if (!open_stream(ctx, key, &s)) return;
  std::optional<StreamGroup> g;
  if (!mkstream) {
    if (!s) {
      ctx.out.error(kErrKeyMustExist);
      return;
    }
    g = s->group(name);
    if (!g && (op == "setid" || op == "createconsumer" || op == "delconsumer")) {
      ctx.out.error(nogroup_for_key_error(name, key));
      return;
    }
  } else if (s) {
    g = s->group(name);
  }
  if (op == "create") {
    if (args.size() > 8) {
      ctx.out.error(subcommand_syntax_error("XGROUP", args[1]));
      return;
    }
    StreamId id;
    if (args[4] == "$") {
      if (s) id = s->meta().last;
    } else if (!parse_strict_id(ctx, args[4], &id)) {
      return;
    }
    if (!s) s.emplace(Stream::create(ctx.ks, key));
    if (g) {
      ctx.out.error("BUSYGROUP Consumer Group name already exists");
      return;
    }
    s->put_group(StreamGroup{std::string(name), id, entries_read, 0, 0}, true);
    s->save();
    notify(ctx, kNotifyStream, "xgroup-create", key);
    ctx.out.ok();
  } else if (op == "setid") {
    if (args.size() != 5 && args.size() != 7) {
      ctx.out.error(subcommand_syntax_error("XGROUP", args[1]));
      return;
    }
    StreamId id;
    if (args[4] == "$") {
      id = s->meta().last;
    } else if (!parse_id(args[4], 0, false, &id)) {
      ctx.out.error(kErrInvalidId);
      return;
    }
    if (args.size() == 7) {
      if (!ieq(args[5], "entriesread")) {
        ctx.out.error(kErrSyntax);
        return;
      }
      if (!parse_entries_read(args[6])) return;
    }
    g->last = id;
    g->entries_read = entries_read;
    s->put_group(*g, false);
    notify(ctx, kNotifyStream, "xgroup-setid", key);
    ctx.out.ok();
  } else if (op == "destroy") {
    if (!g) {
      ctx.out.integer(0);
      return;
    }
    s->destroy_group(*g);
    s->save();
    ctx.ks.note_list_push(key);  // its blocked XREADGROUP clients get NOGROUP
    notify(ctx, kNotifyStream, "xgroup-destroy", key);
    ctx.out.integer(1);
  } else if (op == "createconsumer") {
    if (s->consumer(*g, args[4])) {
      ctx.out.integer(0);
      return;
    }
    s->put_consumer(*g, StreamConsumer{std::string(args[4]), ctx.ks.now_ms(), 0}, true);
    s->put_group(*g, false);
    notify(ctx, kNotifyStream, "xgroup-createconsumer", key);
    ctx.out.integer(1);
  } else {  // delconsumer
    auto c = s->consumer(*g, args[4]);
    uint64_t pending = 0;
    if (c) {
      pending = s->delete_consumer(*g, *c);
      s->put_group(*g, false);
      notify(ctx, kNotifyStream, "xgroup-delconsumer", key);
    }
    ctx.out.integer(static_cast<int64_t>(pending));
  }
}

// XACK key group id [id ...]
void cmd_xack(CommandContext& ctx, Args args) {
  std::optional<Stream> s;
  if (!open_stream(ctx, args[1], &s)) return;
  std::optional<StreamGroup> g;
  if (s) g = s->group(args[2]);
  if (!g) {  // nothing to acknowledge: the ids are not even parsed (Redis)
    ctx.out.integer(0);
    return;
  }
  std::vector<StreamId> ids(args.size() - 3);
  for (size_t j = 3; j < args.size(); j++) {
    if (!parse_strict_id(ctx, args[j], &ids[j - 3])) return;
  }
  int64_t acked = 0;
  for (StreamId id : ids) {
    auto n = s->nack(*g, id);
    if (!n) continue;
    s->del_nack(*g, id, *n);
    acked++;
  }
  if (acked > 0) s->put_group(*g, false);
  ctx.out.integer(acked);
}

// XPENDING key group [[IDLE min-idle-time] start end count [consumer]]
void cmd_xpending(CommandContext& ctx, Args args) {
  const bool summary = args.size() == 3;
  if (!summary && (args.size() < 6 || args.size() > 9)) {
    ctx.out.error(kErrSyntax);
    return;
  }
  int64_t min_idle = 0, count = 0;
  StreamId start, end;
  std::optional<std::string_view> consumer_name;
  if (!summary) {
    size_t at = 3;
    if (ieq(args[3], "idle")) {
      if (!parse_ll(ctx, args[4], &min_idle)) return;
      if (args.size() < 8) {
        ctx.out.error(kErrSyntax);
        return;
      }
      at += 2;
    }
    if (!parse_ll(ctx, args[at + 2], &count)) return;
    if (count < 0) count = 0;
    if (!parse_start(ctx, args[at], &start)) return;
    if (!parse_end(ctx, args[at + 1], &end)) return;
    if (at + 3 < args.size()) consumer_name = args[at + 3];
  }
  std::optional<Stream> s;
  std::optional<StreamGroup> g;
  if (!open_group(ctx, args[1], args[2], &s, &g)) return;
  if (summary) {
    ctx.out.array(4);
    ctx.out.integer(static_cast<int64_t>(g->pending));
    if (g->pending == 0) {
      ctx.out.null();
      ctx.out.null();
      ctx.out.null_array();
      return;
    }
    // First and last pending ids: one walk of the PEL (O(pending); the
    // PEL has no newest-first index).
    std::optional<StreamId> first, last;
    s->for_each_nack(*g, StreamId{}, [&](StreamId id, const StreamNack&) {
      if (!first) first = id;
      last = id;
      return true;
    });
    std::vector<std::pair<std::string, uint64_t>> counts;
    s->for_each_consumer(*g, [&](const StreamConsumer& c) {
      if (c.pending > 0) counts.emplace_back(c.name, c.pending);
      return true;
    });
    reply_id(ctx, first.value_or(StreamId{}));
    reply_id(ctx, last.value_or(StreamId{}));
    ctx.out.array(counts.size());
    for (const auto& [name, n] : counts) {
      ctx.out.array(2);
      ctx.out.bulk(name);
      ctx.out.bulk_integer(static_cast<int64_t>(n));
    }
    return;
  }
  const int64_t now = ctx.ks.now_ms();
  const uint64_t cap = ctx.options.stream_reply_entries_max;
  const uint64_t want = std::min<uint64_t>(static_cast<uint64_t>(count), cap);
  const size_t mark = ctx.out.deferred_len();
  uint64_t n = 0;
  auto emit = [&](StreamId id, const StreamNack& nk) {
    if (n >= want || id > end) return false;
    if (min_idle > 0 && now - nk.delivery_ms < min_idle) return true;
    ctx.out.array(4);
    reply_id(ctx, id);
    ctx.out.bulk(nk.consumer);
    ctx.out.integer(std::max<int64_t>(now - nk.delivery_ms, 0));
    ctx.out.integer(static_cast<int64_t>(nk.deliveries));
    return ++n < want;
  };
  if (want > 0 && consumer_name) {
    if (s->consumer(*g, *consumer_name)) {
      s->for_each_consumer_nack(*g, *consumer_name, start, [&](StreamId id) {
        auto nk = s->nack(*g, id);
        return nk ? emit(id, *nk) : false;
      });
    }
  } else if (want > 0) {
    s->for_each_nack(*g, start, emit);
  }
  ctx.out.fill_deferred_array(mark, n);
}

// XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms]
//   [TIME unix-time-milliseconds] [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID lastid]
void cmd_xclaim(CommandContext& ctx, Args args) {
  std::optional<Stream> s;
  std::optional<StreamGroup> g;
  if (!open_group(ctx, args[1], args[2], &s, &g)) return;
  int64_t min_idle = 0;
  if (!parse_ll(ctx, args[4], &min_idle, "Invalid min-idle-time argument for XCLAIM")) return;
  if (min_idle < 0) min_idle = 0;
  size_t j = 5;
  std::vector<StreamId> ids;
  for (; j < args.size(); j++) {
    StreamId id;
    if (!parse_id(args[j], 0, true, &id)) break;
    ids.push_back(id);
  }
  const int64_t now = ctx.ks.now_ms();
  int64_t delivery_ms = -1, retry = -1;
  bool force = false, justid = false;
  StreamId last_id;
  for (; j < args.size(); j++) {
    const bool more = j + 1 < args.size();
    const std::string_view o = args[j];
    if (ieq(o, "force")) {
      force = true;
    } else if (ieq(o, "justid")) {
      justid = true;
    } else if (ieq(o, "idle") && more) {
      if (!parse_ll(ctx, args[++j], &delivery_ms, "Invalid IDLE option argument for XCLAIM")) {
        return;
      }
      delivery_ms = now - delivery_ms;
    } else if (ieq(o, "time") && more) {
      if (!parse_ll(ctx, args[++j], &delivery_ms, "Invalid TIME option argument for XCLAIM")) {
        return;
      }
    } else if (ieq(o, "retrycount") && more) {
      if (!parse_ll(ctx, args[++j], &retry, "Invalid RETRYCOUNT option argument for XCLAIM")) {
        return;
      }
    } else if (ieq(o, "lastid") && more) {
      if (!parse_strict_id(ctx, args[++j], &last_id)) return;
    } else {
      ctx.out.error("ERR Unrecognized XCLAIM option '" + std::string(o) + "'");
      return;
    }
  }
  bool group_changed = false;
  if (last_id > g->last) {
    g->last = last_id;
    group_changed = true;
  }
  if (delivery_ms == -1 || delivery_ms < 0 || delivery_ms > now) delivery_ms = now;
  const std::string consumer(args[3]);
  bool consumer_ready = false;
  const size_t mark = ctx.out.deferred_len();
  uint64_t n = 0;
  for (StreamId id : ids) {
    auto old = s->nack(*g, id);
    auto fields = s->entry(id);
    if (!fields) {
      // Deleted from the stream: it leaves the PEL too.
      if (old) {
        s->del_nack(*g, id, *old);
        group_changed = true;
      }
      continue;
    }
    if (!old && !force) continue;
    if (old && min_idle > 0 && now - old->delivery_ms < min_idle) continue;
    if (!consumer_ready) {
      touch_consumer(ctx, *s, *g, consumer, now);
      consumer_ready = true;
      group_changed = true;
    }
    StreamNack nk = old ? *old : StreamNack{now, 1, consumer};
    nk.consumer = consumer;
    nk.delivery_ms = delivery_ms;
    if (retry >= 0) {
      nk.deliveries = static_cast<uint64_t>(retry);
    } else if (!justid) {
      nk.deliveries++;
    }
    s->put_nack(*g, id, nk, old);
    if (justid) {
      reply_id(ctx, id);
    } else {
      reply_entry(ctx, id, *fields);
    }
    n++;
  }
  if (group_changed) s->put_group(*g, false);
  ctx.out.fill_deferred_array(mark, n);
}

// XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]
void cmd_xautoclaim(CommandContext& ctx, Args args) {
  int64_t min_idle = 0;
  if (!parse_ll(ctx, args[4], &min_idle, "Invalid min-idle-time argument for XAUTOCLAIM")) {
    return;
  }
  if (min_idle < 0) min_idle = 0;
  StreamId start;
  if (!parse_start(ctx, args[5], &start)) return;
  constexpr int64_t kAttemptsFactor = 10;
  int64_t count = 100;
  bool justid = false;
  for (size_t j = 6; j < args.size(); j++) {
    if (ieq(args[j], "count") && j + 1 < args.size()) {
      if (!parse_range_arg(ctx, args[j + 1], 1, INT64_MAX / 16, &count, "COUNT must be > 0")) {
        return;
      }
      j++;
    } else if (ieq(args[j], "justid")) {
      justid = true;
    } else {
      ctx.out.error(kErrSyntax);
      return;
    }
  }
  std::optional<Stream> s;
  std::optional<StreamGroup> g;
  if (!open_group(ctx, args[1], args[2], &s, &g)) return;
  const int64_t now = ctx.ks.now_ms();
  count = std::min<int64_t>(count, static_cast<int64_t>(ctx.options.stream_reply_entries_max));
  int64_t attempts = count * kAttemptsFactor;
  // Read the PEL window first (attempts entries at most, and one more for
  // the cursor), then change it.
  std::vector<std::pair<StreamId, StreamNack>> window;
  s->for_each_nack(
      *g, start,
      [&](StreamId id, const StreamNack& nk) {
        window.emplace_back(id, nk);
        return static_cast<int64_t>(window.size()) < attempts + 1;
      },
      static_cast<uint64_t>(std::min<int64_t>(attempts + 1, 1024)));
  const std::string consumer(args[3]);
  bool consumer_ready = false;
  std::vector<StreamId> deleted;
  // The claimed entries go to `body` first: the cursor precedes them.
  std::string body;
  net::ReplyWriter w(&body, ctx.out.protocol());
  uint64_t claimed = 0;
  size_t i = 0;
  for (; i < window.size() && attempts > 0 && count > 0; i++, attempts--) {
    const auto& [id, old] = window[i];
    auto fields = s->entry(id);
    if (!fields) {
      s->del_nack(*g, id, old);
      deleted.push_back(id);
      count--;
      continue;
    }
    if (min_idle > 0 && now - old.delivery_ms < min_idle) continue;
    if (!consumer_ready) {
      touch_consumer(ctx, *s, *g, consumer, now);
      consumer_ready = true;
    }
    StreamNack nk = old;
    nk.consumer = consumer;
    nk.delivery_ms = now;
    if (!justid) nk.deliveries++;
    s->put_nack(*g, id, nk, std::optional<StreamNack>(old));
    if (justid) {
      w.bulk(id.str());
    } else {
      std::vector<std::string_view> f;
      Stream::decode_fields(*fields, &f);
      w.array(2);
      w.bulk(id.str());
      w.array(f.size());
      for (auto v : f) w.bulk(v);
    }
    claimed++;
    count--;
  }
  const StreamId next = i < window.size() ? window[i].first : StreamId{};
  ctx.out.array(3);
  reply_id(ctx, next);
  ctx.out.array(claimed);
  ctx.out.out()->append(body);
  ctx.out.array(deleted.size());
  for (StreamId id : deleted) reply_id(ctx, id);
  if (consumer_ready || !deleted.empty()) s->put_group(*g, false);
}

// XINFO STREAM key [FULL [COUNT count]] | GROUPS key | CONSUMERS key group | HELP
void cmd_xinfo(CommandContext& ctx, Args args) {
  static constexpr Sub kSubs[] = {{"stream", -3}, {"groups", 3}, {"consumers", 4}, {"help", 2}};
  const Sub* sub = find_sub(ctx, args, "xinfo", kSubs);
  if (sub == nullptr) return;
  if (sub->name == "help") {
    reply_help(ctx,
               {"XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CONSUMERS <key> <groupname>", "    Show consumers of <groupname>.", "GROUPS <key>",
                "    Show the stream consumer groups.", "STREAM <key> [FULL [COUNT <count>]",
                "    Show information about the stream.", "HELP", "    Prints this help."});
    return;
  }
  std::optional<Stream> s;
  if (!open_stream(ctx, args[2], &s)) return;
  if (!s) {
    ctx.out.error(kErrNoSuchKey);
    return;
  }
  const int64_t now = ctx.ks.now_ms();
  if (sub->name == "stream") {
    xinfo_stream(ctx, args, *s);
  } else if (sub->name == "groups") {
    const StreamMeta& m = s->meta();
    ctx.out.array(m.groups);
    s->for_each_group([&](const StreamGroup& g) {
      ctx.out.map(6);
      ctx.out.bulk("name");
      ctx.out.bulk(g.name);
      ctx.out.bulk("consumers");
      ctx.out.integer(static_cast<int64_t>(g.consumers));
      ctx.out.bulk("pending");
      ctx.out.integer(static_cast<int64_t>(g.pending));
      ctx.out.bulk("last-delivered-id");
      reply_id(ctx, g.last);
      ctx.out.bulk("entries-read");
      reply_optional_int(ctx, g.entries_read == kEntriesReadUnknown
                                  ? std::nullopt
                                  : std::optional<int64_t>(g.entries_read));
      ctx.out.bulk("lag");
      reply_optional_int(ctx, group_lag(m, g));
      return true;
    });
  } else {
    auto g = s->group(args[3]);
    if (!g) {
      ctx.out.error(nogroup_for_key_error(args[3], args[2]));
      return;
    }
    ctx.out.array(g->consumers);
    s->for_each_consumer(*g, [&](const StreamConsumer& c) {
      ctx.out.map(3);
      ctx.out.bulk("name");
      ctx.out.bulk(c.name);
      ctx.out.bulk("pending");
      ctx.out.integer(static_cast<int64_t>(c.pending));
      ctx.out.bulk("idle");
      ctx.out.integer(now - c.seen_ms);
      return true;
    });
  }
}

}  // namespace qkv::kv
