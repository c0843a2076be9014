#include "kv/stream.h"

#include <map>
#include <set>

#include "base/check.h"

namespace qkv::kv {

namespace {

constexpr char kEntryTag = 'E';
constexpr char kReverseTag = 'R';
constexpr char kGroupTag = 'G';
constexpr char kPelTag = 'P';
constexpr char kConsumerTag = 'C';
constexpr char kConsumerPelTag = 'Q';

constexpr size_t kIdBytes = 16;
constexpr size_t kGroupBytes = 40;       // last entries_read pending consumers
constexpr size_t kConsumerBytes = 16;    // seen_ms pending
constexpr size_t kNackHeaderBytes = 16;  // delivery_ms deliveries, then the consumer

uint32_t get_u32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

void put_id(std::string* out, StreamId id) {
  put_u64be(out, id.ms);
  put_u64be(out, id.seq);
}

std::string entry_sub(StreamId id) {
  std::string s(1, kEntryTag);
  put_id(&s, id);
  return s;
}

std::string reverse_sub(StreamId id) {
  std::string s(1, kReverseTag);
  put_id(&s, StreamId{~id.ms, ~id.seq});
  return s;
}

std::string group_sub(std::string_view name) {
  std::string s(1, kGroupTag);
  s.append(name);
  return s;
}

// tag len:u32be group: the start of one group's PEL, consumers or
// consumer PELs.
std::string group_scope(char tag, std::string_view group) {
  std::string s(1, tag);
  put_u32be(&s, static_cast<uint32_t>(group.size()));
  s.append(group);
  return s;
}

std::string pel_sub(std::string_view group, StreamId id) {
  std::string s = group_scope(kPelTag, group);
  put_id(&s, id);
  return s;
}

std::string consumer_sub(std::string_view group, std::string_view consumer) {
  std::string s = group_scope(kConsumerTag, group);
  s.append(consumer);
  return s;
}

std::string consumer_pel_prefix(std::string_view group, std::string_view consumer) {
  std::string s = group_scope(kConsumerPelTag, group);
  put_u32be(&s, static_cast<uint32_t>(consumer.size()));
  s.append(consumer);
  return s;
}

std::string encode_group(const StreamGroup& g) {
  std::string s;
  put_id(&s, g.last);
  put_u64be(&s, static_cast<uint64_t>(g.entries_read));
  put_u64be(&s, g.pending);
  put_u64be(&s, g.consumers);
  return s;
}

bool decode_group(std::string_view name, std::string_view v, StreamGroup* g) {
  if (v.size() != kGroupBytes) return false;
  g->name = std::string(name);
  g->last = decode_stream_id(v.data());
  g->entries_read = static_cast<int64_t>(get_u64be(v.data() + 16));
  g->pending = get_u64be(v.data() + 24);
  g->consumers = get_u64be(v.data() + 32);
  return true;
}

std::string encode_consumer(const StreamConsumer& c) {
  std::string s;
  put_u64be(&s, static_cast<uint64_t>(c.seen_ms));
  put_u64be(&s, c.pending);
  return s;
}

bool decode_consumer(std::string_view name, std::string_view v, StreamConsumer* c) {
  if (v.size() != kConsumerBytes) return false;
  c->name = std::string(name);
  c->seen_ms = static_cast<int64_t>(get_u64be(v.data()));
  c->pending = get_u64be(v.data() + 8);
  return true;
}

std::string encode_nack(const StreamNack& n) {
  std::string s;
  put_u64be(&s, static_cast<uint64_t>(n.delivery_ms));
  put_u64be(&s, n.deliveries);
  s.append(n.consumer);
  return s;
}

bool decode_nack(std::string_view v, StreamNack* n) {
  if (v.size() < kNackHeaderBytes) return false;
  n->delivery_ms = static_cast<int64_t>(get_u64be(v.data()));
  n->deliveries = get_u64be(v.data() + 8);
  n->consumer = std::string(v.substr(kNackHeaderBytes));
  return true;
}

}  // namespace

bool StreamId::incr() {
  if (seq != UINT64_MAX) {
    seq++;
    return true;
  }
  if (ms == UINT64_MAX) return false;
  ms++;
  seq = 0;
  return true;
}

bool StreamId::decr() {
  if (seq != 0) {
    seq--;
    return true;
  }
  if (ms == 0) return false;
  ms--;
  seq = UINT64_MAX;
  return true;
}

std::string StreamId::str() const { return std::to_string(ms) + "-" + std::to_string(seq); }

std::string encode_stream_id(StreamId id) {
  std::string s;
  put_id(&s, id);
  return s;
}

StreamId decode_stream_id(const char* p) { return StreamId{get_u64be(p), get_u64be(p + 8)}; }

std::string encode_stream_meta(const StreamMeta& m) {
  std::string s;
  put_u64be(&s, m.length);
  put_id(&s, m.last);
  put_id(&s, m.first);
  put_id(&s, m.max_deleted);
  put_u64be(&s, m.entries_added);
  put_u64be(&s, m.groups);
  QKV_CHECK(s.size() == kStreamMetaBytes);
  return s;
}

bool decode_stream_meta(std::string_view payload, StreamMeta* m) {
  if (payload.size() != kStreamMetaBytes) return false;
  const char* p = payload.data();
  m->length = get_u64be(p);
  m->last = decode_stream_id(p + 8);
  m->first = decode_stream_id(p + 24);
  m->max_deleted = decode_stream_id(p + 40);
  m->entries_added = get_u64be(p + 56);
  m->groups = get_u64be(p + 64);
  return true;
}

Stream::Stream(Keyspace& ks, std::string_view key, Record rec)
    : Stream(ks, key, std::move(rec), true) {}

Stream::Stream(Keyspace& ks, std::string_view key, Record rec, bool exists)
    : ks_(ks), key_(key), rec_(std::move(rec)), exists_(exists) {
  QKV_CHECK(rec_.type == ValueType::kStream);
  // Keyspace::load() validated the size; a failed transaction gives an
  // empty stream whose result is discarded.
  if (exists_ && !decode_stream_meta(rec_.payload, &meta_)) meta_ = StreamMeta{};
}

Stream Stream::create(Keyspace& ks, std::string_view key) {
  ks.remove(key);  // an expired record and its elements
  Record r;
  r.type = ValueType::kStream;
  Stream s(ks, key, std::move(r), false);
  s.dirty_ = true;
  return s;
}

// --- Entries ---------------------------------------------------------------

std::string Stream::encode_fields(std::span<const std::string_view> fields) {
  size_t n = 4;
  for (auto f : fields) n += 4 + f.size();
  std::string s;
  s.reserve(n);
  put_u32be(&s, static_cast<uint32_t>(fields.size()));
  for (auto f : fields) {
    put_u32be(&s, static_cast<uint32_t>(f.size()));
    s.append(f);
  }
  return s;
}

bool Stream::decode_fields(std::string_view v, std::vector<std::string_view>* out) {
  out->clear();
  if (v.size() < 4) return false;
  const uint32_t n = get_u32(v.data());
  size_t at = 4;
  for (uint32_t i = 0; i < n; i++) {
    if (v.size() - at < 4) return false;
    const uint32_t len = get_u32(v.data() + at);
    at += 4;
    if (v.size() - at < len) return false;
    out->push_back(v.substr(at, len));
    at += len;
  }
  return at == v.size();
}

void Stream::append(StreamId id, std::span<const std::string_view> fields) {
  QKV_CHECK(id > meta_.last) << "stream ids must grow";
  ks_.note_list_push(key_);  // XREAD/XREADGROUP ... BLOCK waiters (waiters.h)
  ks_.put_element(key_, entry_sub(id), encode_fields(fields));
  ks_.put_element(key_, reverse_sub(id), "");
  meta_.length++;
  meta_.entries_added++;
  meta_.last = id;
  if (meta_.length == 1) meta_.first = id;
  dirty_ = true;
}

std::optional<std::string> Stream::entry(StreamId id) {
  if (meta_.length == 0) return std::nullopt;
  return ks_.get_element(key_, entry_sub(id));
}

bool Stream::remove_entry(StreamId id) {
  if (!entry_exists(id)) return false;
  ks_.del_element(key_, entry_sub(id));
  ks_.del_element(key_, reverse_sub(id));
  meta_.length--;
  if (meta_.length == 0) {
    meta_.first = StreamId{};
  } else if (id == meta_.first) {
    meta_.first = first_entry_from(id).value_or(StreamId{});
  }
  dirty_ = true;
  return true;
}

void Stream::for_each_entry(StreamId from, const EntryVisitor& fn, uint64_t expected) {
  if (meta_.length == 0) return;
  ks_.for_each_element(
      key_, entry_sub(from),
      [&](std::string_view sub, std::string_view v) {
        if (sub.size() != 1 + kIdBytes || sub[0] != kEntryTag) return false;
        return fn(decode_stream_id(sub.data() + 1), v);
      },
      expected);
}

void Stream::for_each_entry_reverse(StreamId from, const EntryVisitor& fn, uint64_t expected) {
  if (meta_.length == 0) return;
  std::vector<StreamId> ids;
  bool more = true;
  // The index gives the ids newest first; each entry is then a point read.
  ks_.for_each_element(
      key_, reverse_sub(from),
      [&](std::string_view sub, std::string_view) {
        if (sub.size() != 1 + kIdBytes || sub[0] != kReverseTag) return false;
        const StreamId r = decode_stream_id(sub.data() + 1);
        const StreamId id{~r.ms, ~r.seq};
        auto v = ks_.get_element(key_, entry_sub(id));
        if (!v) return false;  // only when the txn failed
        more = fn(id, *v);
        return more;
      },
      expected);
}

std::optional<StreamId> Stream::first_entry_from(StreamId from) {
  std::optional<StreamId> out;
  for_each_entry(
      from,
      [&](StreamId id, std::string_view) {
        out = id;
        return false;
      },
      1);
  return out;
}

std::optional<StreamId> Stream::last_entry() {
  if (meta_.length == 0) return std::nullopt;
  std::optional<StreamId> out;
  ks_.for_each_element(
      key_, reverse_sub(StreamId::max()),
      [&](std::string_view sub, std::string_view) {
        if (sub.size() == 1 + kIdBytes && sub[0] == kReverseTag) {
          const StreamId r = decode_stream_id(sub.data() + 1);
          out = StreamId{~r.ms, ~r.seq};
        }
        return false;
      },
      1);
  return out;
}

uint64_t Stream::trim_maxlen(uint64_t maxlen, uint64_t limit) {
  if (meta_.length <= maxlen) return 0;
  uint64_t n = meta_.length - maxlen;
  if (limit != 0 && n > limit) n = limit;
  std::vector<StreamId> ids;
  for_each_entry(
      StreamId{},
      [&](StreamId id, std::string_view) {
        ids.push_back(id);
        return ids.size() < n;
      },
      n);
  for (StreamId id : ids) remove_entry(id);
  return ids.size();
}

uint64_t Stream::trim_minid(StreamId minid, uint64_t limit) {
  std::vector<StreamId> ids;
  for_each_entry(StreamId{}, [&](StreamId id, std::string_view) {
    if (id >= minid || (limit != 0 && ids.size() >= limit)) return false;
    ids.push_back(id);
    return true;
  });
  for (StreamId id : ids) remove_entry(id);
  return ids.size();
}

// --- Groups ----------------------------------------------------------------

std::optional<StreamGroup> Stream::group(std::string_view name) {
  if (meta_.groups == 0) return std::nullopt;
  auto v = ks_.get_element(key_, group_sub(name));
  if (!v) return std::nullopt;
  StreamGroup g;
  if (!decode_group(name, *v, &g)) {
    ks_.txn().fail(Status(Code::kCorruption, "undecodable stream group"));
    return std::nullopt;
  }
  return g;
}

void Stream::put_group(const StreamGroup& g, bool is_new) {
  ks_.put_element(key_, group_sub(g.name), encode_group(g));
  if (is_new) {
    meta_.groups++;
    dirty_ = true;
  }
}

void Stream::destroy_group(const StreamGroup& g) {
  ks_.del_element(key_, group_sub(g.name));
  for (char tag : {kPelTag, kConsumerPelTag, kConsumerTag}) {
    const std::string scope = group_scope(tag, g.name);
    const uint64_t n = tag == kConsumerTag ? g.consumers : g.pending;
    ks_.del_elements(key_, scope, prefix_end(scope), n);
  }
  meta_.groups--;
  dirty_ = true;
}

void Stream::for_each_group(const std::function<bool(const StreamGroup&)>& fn) {
  if (meta_.groups == 0) return;
  ks_.for_each_element(key_, std::string(1, kGroupTag),
                       [&](std::string_view sub, std::string_view v) {
                         if (sub.empty() || sub[0] != kGroupTag) return false;
                         StreamGroup g;
                         if (!decode_group(sub.substr(1), v, &g)) return false;
                         return fn(g);
                       });
}

// --- Consumers ---------------------------------------------------------------

std::optional<StreamConsumer> Stream::consumer(const StreamGroup& g, std::string_view name) {
  if (g.consumers == 0) return std::nullopt;
  auto v = ks_.get_element(key_, consumer_sub(g.name, name));
  if (!v) return std::nullopt;
  StreamConsumer c;
  if (!decode_consumer(name, *v, &c)) {
    ks_.txn().fail(Status(Code::kCorruption, "undecodable stream consumer"));
    return std::nullopt;
  }
  return c;
}

void Stream::put_consumer(StreamGroup& g, const StreamConsumer& c, bool is_new) {
  ks_.put_element(key_, consumer_sub(g.name, c.name), encode_consumer(c));
  if (is_new) g.consumers++;
}

uint64_t Stream::delete_consumer(StreamGroup& g, const StreamConsumer& c) {
  std::vector<StreamId> ids;
  for_each_consumer_nack(g, c.name, StreamId{}, [&](StreamId id) {
    ids.push_back(id);
    return true;
  });
  const std::string prefix = consumer_pel_prefix(g.name, c.name);
  for (StreamId id : ids) {
    ks_.del_element(key_, pel_sub(g.name, id));
    ks_.del_element(key_, prefix + encode_stream_id(id));
  }
  ks_.del_element(key_, consumer_sub(g.name, c.name));
  g.pending -= ids.size();
  g.consumers--;
  return ids.size();
}

void Stream::for_each_consumer(const StreamGroup& g,
                               const std::function<bool(const StreamConsumer&)>& fn) {
  if (g.consumers == 0) return;
  const std::string scope = group_scope(kConsumerTag, g.name);
  ks_.for_each_element(key_, scope, [&](std::string_view sub, std::string_view v) {
    if (!sub.starts_with(scope)) return false;
    StreamConsumer c;
    if (!decode_consumer(sub.substr(scope.size()), v, &c)) return false;
    return fn(c);
  });
}

// --- PEL ---------------------------------------------------------------------

std::optional<StreamNack> Stream::nack(const StreamGroup& g, StreamId id) {
  if (g.pending == 0) return std::nullopt;
  auto v = ks_.get_element(key_, pel_sub(g.name, id));
  if (!v) return std::nullopt;
  StreamNack n;
  if (!decode_nack(*v, &n)) {
    ks_.txn().fail(Status(Code::kCorruption, "undecodable stream PEL entry"));
    return std::nullopt;
  }
  return n;
}

void Stream::adjust_consumer(const StreamGroup& g, const std::string& name, int64_t delta) {
  auto c = consumer(g, name);
  if (!c) return;  // only when the txn failed
  c->pending = static_cast<uint64_t>(static_cast<int64_t>(c->pending) + delta);
  ks_.put_element(key_, consumer_sub(g.name, name), encode_consumer(*c));
}

void Stream::put_nack(StreamGroup& g, StreamId id, const StreamNack& n,
                      const std::optional<StreamNack>& old) {
  ks_.put_element(key_, pel_sub(g.name, id), encode_nack(n));
  if (old && old->consumer == n.consumer) return;
  if (old) {
    ks_.del_element(key_, consumer_pel_prefix(g.name, old->consumer) + encode_stream_id(id));
    adjust_consumer(g, old->consumer, -1);
  } else {
    g.pending++;
  }
  ks_.put_element(key_, consumer_pel_prefix(g.name, n.consumer) + encode_stream_id(id), "");
  adjust_consumer(g, n.consumer, +1);
}

void Stream::del_nack(StreamGroup& g, StreamId id, const StreamNack& n) {
  ks_.del_element(key_, pel_sub(g.name, id));
  ks_.del_element(key_, consumer_pel_prefix(g.name, n.consumer) + encode_stream_id(id));
  adjust_consumer(g, n.consumer, -1);
  g.pending--;
}

void Stream::for_each_nack(const StreamGroup& g, StreamId from,
                           const std::function<bool(StreamId, const StreamNack&)>& fn,
                           uint64_t expected) {
  if (g.pending == 0) return;
  const std::string scope = group_scope(kPelTag, g.name);
  ks_.for_each_element(
      key_, scope + encode_stream_id(from),
      [&](std::string_view sub, std::string_view v) {
        if (!sub.starts_with(scope) || sub.size() != scope.size() + kIdBytes) return false;
        StreamNack n;
        if (!decode_nack(v, &n)) return false;
        return fn(decode_stream_id(sub.data() + scope.size()), n);
      },
      expected);
}

void Stream::for_each_consumer_nack(const StreamGroup& g, std::string_view consumer, StreamId from,
                                    const std::function<bool(StreamId)>& fn, uint64_t expected) {
  if (g.pending == 0) return;
  const std::string prefix = consumer_pel_prefix(g.name, consumer);
  ks_.for_each_element(
      key_, prefix + encode_stream_id(from),
      [&](std::string_view sub, std::string_view) {
        if (!sub.starts_with(prefix) || sub.size() != prefix.size() + kIdBytes) return false;
        return fn(decode_stream_id(sub.data() + prefix.size()));
      },
      expected);
}

void Stream::save() {
  if (!dirty_) return;
  dirty_ = false;
  rec_.payload = encode_stream_meta(meta_);
  if (exists_) {
    ks_.update(key_, rec_);
  } else {
    ks_.put(key_, rec_);
    exists_ = true;
  }
}

// --- Invariants ------------------------------------------------------------------

Status check_stream_elements(std::string_view key, std::string_view payload,
                             const std::vector<std::pair<std::string, std::string>>& elements) {
  auto bad = [&](const std::string& what) {
    return Status(Code::kCorruption, "stream " + std::string(key) + ": " + what);
  };
  StreamMeta m;
  if (!decode_stream_meta(payload, &m)) return bad("bad meta");
  std::set<StreamId> entries, reverse;
  std::map<std::string, StreamGroup> groups;
  // (group, consumer) -> pending seen in 'Q'; (group, id) -> consumer in 'P'.
  std::map<std::pair<std::string, std::string>, uint64_t> consumer_pel;
  std::map<std::pair<std::string, std::string>, uint64_t> consumers;  // -> pending recorded
  std::map<std::pair<std::string, StreamId>, std::string> pel;
  std::set<std::pair<std::string, StreamId>> qpel;
  std::vector<std::string_view> fields;
  auto scoped = [](std::string_view sub, std::string* group, std::string_view* rest) {
    if (sub.size() < 5) return false;
    const uint32_t n = get_u32(sub.data() + 1);
    if (sub.size() - 5 < n) return false;
    *group = std::string(sub.substr(5, n));
    *rest = sub.substr(5 + n);
    return true;
  };
  for (const auto& [sub, v] : elements) {
    if (sub.empty()) return bad("empty sub-key");
    std::string group;
    std::string_view rest;
    switch (sub[0]) {
      case kEntryTag:
        if (sub.size() != 1 + kIdBytes || !Stream::decode_fields(v, &fields) || fields.empty() ||
            fields.size() % 2 != 0) {
          return bad("bad entry");
        }
        entries.insert(decode_stream_id(sub.data() + 1));
        break;
      case kReverseTag: {
        if (sub.size() != 1 + kIdBytes || !v.empty()) return bad("bad reverse index");
        const StreamId r = decode_stream_id(sub.data() + 1);
        reverse.insert(StreamId{~r.ms, ~r.seq});
        break;
      }
      case kGroupTag: {
        StreamGroup g;
        if (!decode_group(std::string_view(sub).substr(1), v, &g)) return bad("bad group");
        groups[g.name] = g;
        break;
      }
      case kPelTag: {
        StreamNack n;
        if (!scoped(sub, &group, &rest) || rest.size() != kIdBytes || !decode_nack(v, &n)) {
          return bad("bad PEL entry");
        }
        pel[{group, decode_stream_id(rest.data())}] = n.consumer;
        break;
      }
      case kConsumerTag: {
        StreamConsumer c;
        if (!scoped(sub, &group, &rest) || !decode_consumer(rest, v, &c)) {
          return bad("bad consumer");
        }
        consumers[{group, c.name}] = c.pending;
        break;
      }
      case kConsumerPelTag: {
        if (!scoped(sub, &group, &rest) || rest.size() < 4 + kIdBytes) {
          return bad("bad consumer PEL entry");
        }
        const uint32_t n = get_u32(rest.data());
        if (rest.size() != 4 + n + kIdBytes) return bad("bad consumer PEL entry");
        const std::string consumer(rest.substr(4, n));
        const StreamId id = decode_stream_id(rest.data() + 4 + n);
        auto it = pel.find({group, id});
        if (it == pel.end() || it->second != consumer) {
          return bad("consumer PEL entry " + id.str() + " of " + consumer +
                     " does not match the group PEL");
        }
        consumer_pel[{group, consumer}]++;
        qpel.insert({group, id});
        break;
      }
      default:
        return bad("unknown sub-key tag");
    }
  }
  if (entries.size() != m.length) {
    return bad(std::to_string(entries.size()) + " entries, meta says " + std::to_string(m.length));
  }
  if (entries != reverse) return bad("the reverse index differs from the entries");
  if (m.length > 0 && (*entries.begin() != m.first || *entries.rbegin() > m.last)) {
    return bad("first or last id wrong");
  }
  if (m.length == 0 && !m.first.is_zero()) return bad("first id of an empty stream");
  if (m.entries_added < m.length) return bad("entries_added < length");
  if (groups.size() != m.groups) return bad("group count");
  std::map<std::string, uint64_t> pending, consumer_count;
  for (const auto& [k, c] : pel) {
    if (groups.count(k.first) == 0) return bad("PEL entry of a missing group");
    if (consumers.count({k.first, c}) == 0) return bad("PEL entry of a missing consumer");
    if (qpel.count(k) == 0) return bad("PEL entry missing from its consumer's PEL");
    pending[k.first]++;
  }
  for (const auto& [k, n] : consumers) {
    if (groups.count(k.first) == 0) return bad("consumer of a missing group");
    consumer_count[k.first]++;
    auto it = consumer_pel.find(k);
    if ((it == consumer_pel.end() ? 0 : it->second) != n) {
      return bad("consumer " + k.second + " pending count");
    }
  }
  for (const auto& [name, g] : groups) {
    if (g.pending != pending[name] || g.consumers != consumer_count[name]) {
      return bad("group " + name + " counts");
    }
  }
  return Status::ok();
}

}  // namespace qkv::kv
