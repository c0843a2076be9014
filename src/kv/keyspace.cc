#include "kv/keyspace.h"

#include <algorithm>
#include <map>
#include <set>

#include "base/check.h"
#include "kv/stream.h"
#include "kv/events.h"

namespace qkv::kv {

namespace {

std::string printable_key(std::string_view k) {
  std::string out;
  for (char c : k) {
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(c);
    } else {
      static const char* kHex = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[(static_cast<uint8_t>(c) >> 4) & 0xf]);
      out.push_back(kHex[static_cast<uint8_t>(c) & 0xf]);
    }
  }
  return out;
}

}  // namespace

Keyspace::Keyspace(Txn* txn, int64_t now_ms, KeyspaceCounters* counters)
    : txn_(txn), now_ms_(now_ms), counters_(counters) {
  QKV_CHECK(txn_ != nullptr && counters_ != nullptr);
}

void Keyspace::corrupt(std::string_view storage_key) {
  // Recorded as a failed transaction: the apply fails (fatal for the node)
  // or the read returns the error. Never silently treated as absent.
  txn_->fail(
      Status(Code::kCorruption, "undecodable key-value record at " + printable_key(storage_key)));
}

std::optional<Record> Keyspace::load(std::string_view key) {
  const std::string sk = data_key(key);
  auto raw = txn_->get(sk);
  if (!raw) return std::nullopt;
  Record r;
  CollectionMeta meta;
  if (!decode_record(*raw, &r) ||
      (is_collection(r.type) && !decode_collection_meta(r.type, r.payload, &meta))) {
    corrupt(sk);
    return std::nullopt;
  }
  return r;
}

std::optional<Record> Keyspace::find(std::string_view key) {
  auto r = load(key);
  if (r && !live(*r)) return std::nullopt;
  return r;
}

void Keyspace::write_record(std::string_view key, const std::optional<Record>& old,
                            const Record& r) {
  QKV_CHECK(r.expire_at_ms >= 0) << "negative expiry " << r.expire_at_ms;
  if (old) {
    if (old->expire_at_ms != 0) {
      txn_->del(expiry_key(old->expire_at_ms, key));
      counters_->expires--;
    }
  } else {
    counters_->keys++;
  }
  if (r.expire_at_ms != 0) {
    txn_->put(expiry_key(r.expire_at_ms, key), std::string());
    counters_->expires++;
    min_expiry_written_ = std::min(min_expiry_written_, r.expire_at_ms);
  }
  txn_->put(data_key(key), encode_record(r));
}

void Keyspace::delete_elements(std::string_view key, const Record& old) {
  if (!is_collection(old.type)) return;
  CollectionMeta meta;
  if (!decode_collection_meta(old.type, old.payload, &meta)) return;  // load() failed the txn
  const std::string prefix = element_prefix(key);
  // A stream has two records per entry and, with groups, PEL and consumer
  // records that its meta does not count.
  const bool large = old.type == ValueType::kStream
                         ? 2 * meta.count > kPointDeleteElementsMax || meta.groups > 0
                         : meta.size(old.type) > kPointDeleteElementsMax;
  if (large) {
    txn_->delete_range(prefix, prefix_end(prefix));
    return;
  }
  std::vector<std::string> keys;
  txn_->scan(prefix, prefix, [&](std::string_view sk, std::string_view) {
    keys.emplace_back(sk);
    return true;
  });
  for (const auto& k : keys) txn_->del(k);
}

void Keyspace::log_changed(std::string_view key) {
  auto& keys = log_->keys_changed;
  if (keys.empty() || keys.back() != key) keys.emplace_back(key);
}

void Keyspace::put(std::string_view key, const Record& r) {
  auto old = load(key);
  if (old) delete_elements(key, *old);
  if (old && old->type == ValueType::kStream) stream_gone(key);
  write_record(key, old, r);
  if (log_ == nullptr) return;
  log_changed(key);
  if (log_->want_keyspace && (!old || !live(*old)) && removed_live_ != key) {
    if (old) log_->keyspace.push_back(KeyspaceEvent{kNotifyExpired, "expired", std::string(key)});
    log_->keyspace.push_back(KeyspaceEvent{kNotifyNew, "new", std::string(key)});
  }
}

void Keyspace::update(std::string_view key, const Record& r) {
  auto old = load(key);
  QKV_CHECK(old && old->type == r.type) << "update() of a missing key or to another type";
  write_record(key, old, r);
  if (log_ != nullptr) log_changed(key);
}

bool Keyspace::remove(std::string_view key) {
  auto old = load(key);
  if (!old) return false;
  delete_elements(key, *old);
  if (old->type == ValueType::kStream) stream_gone(key);
  if (old->expire_at_ms != 0) {
    txn_->del(expiry_key(old->expire_at_ms, key));
    counters_->expires--;
  }
  counters_->keys--;
  txn_->del(data_key(key));
  const bool was_live = live(*old);
  if (log_ != nullptr) {
    log_changed(key);
    if (log_->want_keyspace) {
      if (was_live) {
        removed_live_.assign(key);
      } else {
        log_->keyspace.push_back(KeyspaceEvent{kNotifyExpired, "expired", std::string(key)});
      }
    }
  }
  return was_live;
}

void Keyspace::rename(std::string_view from, std::string_view to) {
  QKV_CHECK(from != to);
  auto rec = find(from);
  QKV_CHECK(rec.has_value()) << "rename() of a missing key";
  std::vector<std::pair<std::string, std::string>> elements;
  if (is_collection(rec->type)) {
    for_each_element(from, "", [&](std::string_view sub, std::string_view v) {
      elements.emplace_back(sub, v);
      return true;
    });
  }
  // As Redis, which deletes the destination and adds it again: a "new"
  // notification even over a live key.
  const bool to_live = log_ != nullptr && log_->want_keyspace && exists(to);
  remove(from);
  put(to, *rec);
  if (to_live) log_->keyspace.push_back(KeyspaceEvent{kNotifyNew, "new", std::string(to)});
  for (const auto& [sub, v] : elements) put_element(to, sub, v);
}

std::optional<std::string> Keyspace::get_element(std::string_view key, std::string_view sub_key) {
  return txn_->get(element_key(key, sub_key));
}

void Keyspace::put_element(std::string_view key, std::string_view sub_key,
                           std::string_view value) {
  txn_->put(element_key(key, sub_key), std::string(value));
  if (log_ != nullptr) log_changed(key);
}

void Keyspace::del_element(std::string_view key, std::string_view sub_key) {
  txn_->del(element_key(key, sub_key));
  if (log_ != nullptr) log_changed(key);
}

void Keyspace::del_elements(std::string_view key, std::string_view from, std::string_view to,
                            uint64_t count) {
  if (count == 0) return;
  if (log_ != nullptr) log_changed(key);
  const std::string begin = element_key(key, from), end = element_key(key, to);
  if (count > kPointDeleteElementsMax) {
    txn_->delete_range(begin, end);
    return;
  }
  std::vector<std::string> keys;
  txn_->scan(element_prefix(key), begin, [&](std::string_view sk, std::string_view) {
    if (sk >= end) return false;
    keys.emplace_back(sk);
    return true;
  });
  for (const auto& k : keys) txn_->del(k);
}

void Keyspace::for_each_element(std::string_view key, std::string_view from,
                                const ElementVisitor& fn, uint64_t expected) {
  const std::string prefix = element_prefix(key);
  std::string start = prefix;
  start.append(from);
  txn_->scan(
      prefix, start,
      [&](std::string_view sk, std::string_view v) { return fn(sk.substr(prefix.size()), v); },
      expected);
}

void Keyspace::stream_gone(std::string_view key) {
  // Its groups went with it: blocked XREADGROUP clients are tried again
  // (and get NOGROUP, or read the new stream).
  if (counters_->waiters > 0) note_list_push(key);
}

void Keyspace::note_list_push(std::string_view key) {
  if (std::find(lists_pushed_.begin(), lists_pushed_.end(), key) == lists_pushed_.end()) {
    lists_pushed_.emplace_back(key);
  }
}

bool Keyspace::remove_if_expired(std::string_view key) {
  auto old = load(key);
  if (!old || old->expire_at_ms == 0 || old->expire_at_ms > now_ms_) return false;
  remove(key);
  return true;
}

void Keyspace::clear() {
  if (log_ != nullptr) log_->flushed = true;
  cleared_ = true;
  // With no record there is nothing under 'k' or 'e': skip the range
  // deletion (RocksDB pays for each range tombstone on later reads until
  // its memtable is flushed).
  if (counters_->keys == 0) return;
  for (const char tag : {kDataTag, kElementTag, kExpiryTag}) {
    const std::string begin(1, tag);
    txn_->delete_range(begin, prefix_end(begin));
  }
  counters_->keys = 0;
  counters_->expires = 0;
}

void Keyspace::for_each(uint64_t from, const KeyVisitor& fn) {
  const std::string prefix(1, kDataTag);
  txn_->scan(prefix, data_key_at(from), [&](std::string_view sk, std::string_view v) {
    uint64_t pos = 0;
    std::string_view key;
    Record r;
    if (!parse_data_key(sk, &pos, &key) || !decode_record(v, &r)) {
      corrupt(sk);
      return false;
    }
    return fn(pos, key, r);
  });
}

std::vector<std::string> Keyspace::expired_keys(size_t max_n, int64_t from_ms, int64_t* first_ms) {
  std::vector<std::string> out;
  if (first_ms != nullptr) *first_ms = INT64_MAX;
  if (max_n == 0) return out;
  const std::string prefix(1, kExpiryTag);
  bool first = true;
  txn_->scan(prefix, expiry_key(std::max<int64_t>(from_ms, 0), ""),
             [&](std::string_view sk, std::string_view) {
               int64_t at = 0;
               std::string_view key;
               if (!parse_expiry_key(sk, &at, &key)) {
                 corrupt(sk);
                 return false;
               }
               if (first && first_ms != nullptr) *first_ms = at;
               first = false;
               if (at > now_ms_) return false;
               out.emplace_back(key);
               return out.size() < max_n;
             });
  return out;
}

Status Keyspace::TEST_check_invariants() {
  KeyspaceCounters seen;
  std::set<std::pair<int64_t, std::string>> want_index;
  struct Collection {
    ValueType type;
    CollectionMeta meta;
    uint64_t elements = 0;
    std::string payload;  // streams: checked by check_stream_elements()
    std::vector<std::pair<std::string, std::string>> stream_elements;
  };
  std::map<std::string, Collection, std::less<>> collections;
  Status bad;
  txn_->scan(std::string(1, kDataTag), "", [&](std::string_view sk, std::string_view v) {
    uint64_t pos = 0;
    std::string_view key;
    Record r;
    if (!parse_data_key(sk, &pos, &key) || !decode_record(v, &r)) {
      bad = Status(Code::kCorruption, "bad record at " + printable_key(sk));
      return false;
    }
    if (pos != key_position(key)) {
      bad = Status(Code::kCorruption, "wrong position for " + printable_key(key));
      return false;
    }
    if (is_collection(r.type)) {
      CollectionMeta meta;
      if (!decode_collection_meta(r.type, r.payload, &meta)) {
        bad = Status(Code::kCorruption, "bad collection record for " + printable_key(key));
        return false;
      }
      collections.emplace(std::string(key), Collection{r.type, meta, 0, r.payload, {}});
    }
    seen.keys++;
    if (r.expire_at_ms != 0) {
      seen.expires++;
      want_index.emplace(r.expire_at_ms, std::string(key));
    }
    return true;
  });
  if (!bad.is_ok()) return bad;
  txn_->scan(std::string(1, kElementTag), "", [&](std::string_view sk, std::string_view v) {
    uint64_t pos = 0;
    std::string_view key, sub;
    if (!parse_element_key(sk, &pos, &key, &sub) || pos != key_position(key)) {
      bad = Status(Code::kCorruption, "bad element key " + printable_key(sk));
      return false;
    }
    auto it = collections.find(key);
    if (it == collections.end()) {
      bad = Status(Code::kCorruption, "element of " + printable_key(key) +
                                          ", which is not a collection: " + printable_key(sk));
      return false;
    }
    Collection& c = it->second;
    c.elements++;
    if (c.type == ValueType::kStream) {
      c.stream_elements.emplace_back(sub, v);
    } else if (c.type == ValueType::kList) {
      uint64_t seq = 0;
      if (!decode_u64be(sub, &seq) || seq < c.meta.head || seq >= c.meta.tail) {
        bad = Status(Code::kCorruption, "list element outside head..tail: " + printable_key(sk));
        return false;
      }
    } else {
      uint64_t h = 0;
      std::string_view member;
      if (!parse_member_sub_key(sub, &h, &member) || h != member_hash(member) ||
          (c.type == ValueType::kSet && !v.empty())) {
        bad = Status(Code::kCorruption, "bad member element " + printable_key(sk));
        return false;
      }
    }
    return true;
  });
  if (!bad.is_ok()) return bad;
  for (const auto& [key, c] : collections) {
    if (c.type == ValueType::kStream) {
      if (Status st = check_stream_elements(key, c.payload, c.stream_elements); !st.is_ok()) {
        return st;
      }
      continue;
    }
    if (c.elements != c.meta.size(c.type)) {
      return Status(Code::kCorruption, printable_key(key) + " has " + std::to_string(c.elements) +
                                           " elements, its record says " +
                                           std::to_string(c.meta.size(c.type)));
    }
  }
  std::set<std::pair<int64_t, std::string>> index;
  txn_->scan(std::string(1, kExpiryTag), "", [&](std::string_view sk, std::string_view) {
    int64_t at = 0;
    std::string_view key;
    if (!parse_expiry_key(sk, &at, &key)) {
      bad = Status(Code::kCorruption, "bad expiry index key " + printable_key(sk));
      return false;
    }
    index.emplace(at, std::string(key));
    return true;
  });
  if (!bad.is_ok()) return bad;
  if (!txn_->status().is_ok()) return txn_->status();
  if (seen.keys != counters_->keys || seen.expires != counters_->expires) {
    return Status(Code::kCorruption, "counters say keys=" + std::to_string(counters_->keys) +
                                         " expires=" + std::to_string(counters_->expires) +
                                         ", records say keys=" + std::to_string(seen.keys) +
                                         " expires=" + std::to_string(seen.expires));
  }
  if (index != want_index) {
    return Status(Code::kCorruption, "expiry index has " + std::to_string(index.size()) +
                                         " entries, records want " +
                                         std::to_string(want_index.size()) + " (or others)");
  }
  return Status::ok();
}

}  // namespace qkv::kv
