#include "kv/keyspace.h"

#include <algorithm>
#include <set>

#include "base/check.h"

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
  if (!decode_record(*raw, &r)) {
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

void Keyspace::put(std::string_view key, const Record& r) {
  QKV_CHECK(r.expire_at_ms >= 0) << "negative expiry " << r.expire_at_ms;
  auto old = load(key);
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

bool Keyspace::remove(std::string_view key) {
  auto old = load(key);
  if (!old) return false;
  if (old->expire_at_ms != 0) {
    txn_->del(expiry_key(old->expire_at_ms, key));
    counters_->expires--;
  }
  counters_->keys--;
  txn_->del(data_key(key));
  return old->expire_at_ms == 0 || old->expire_at_ms > now_ms_;
}

bool Keyspace::remove_if_expired(std::string_view key) {
  auto old = load(key);
  if (!old || old->expire_at_ms == 0 || old->expire_at_ms > now_ms_) return false;
  remove(key);
  return true;
}

void Keyspace::clear() {
  // With no record there is nothing under 'k' or 'e': skip the range
  // deletion (RocksDB pays for each range tombstone on later reads until
  // its memtable is flushed).
  if (counters_->keys == 0) return;
  txn_->clear();
  *counters_ = KeyspaceCounters{};
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
    seen.keys++;
    if (r.expire_at_ms != 0) {
      seen.expires++;
      want_index.emplace(r.expire_at_ms, std::string(key));
    }
    return true;
  });
  if (!bad.is_ok()) return bad;
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
  if (!(seen == *counters_)) {
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
