#include "kv/collection.h"

#include <algorithm>
#include <set>

#include "base/check.h"

namespace qkv::kv {

uint64_t Rng::next() {
  // SplitMix64.
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t Rng::below(uint64_t n) {
  QKV_CHECK(n > 0);
  // Rejection keeps it uniform: draws at or above the largest multiple of
  // n are drawn again.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  for (;;) {
    const uint64_t x = next();
    if (x < limit) return x % n;
  }
}

Collection::Collection(Keyspace& ks, std::string_view key, Record rec)
    : Collection(ks, key, std::move(rec), true) {}

Collection::Collection(Keyspace& ks, std::string_view key, Record rec, bool exists)
    : ks_(ks), key_(key), rec_(std::move(rec)), exists_(exists) {
  QKV_CHECK(is_collection(rec_.type));
  if (exists_) {
    // Keyspace::load() validated the record; a failed transaction gives an
    // empty collection whose result is discarded.
    if (!decode_collection_meta(rec_.type, rec_.payload, &meta_)) meta_ = CollectionMeta{};
  } else {
    meta_.head = meta_.tail = kListSeqStart;
  }
}

Collection Collection::create(Keyspace& ks, std::string_view key, ValueType t) {
  ks.remove(key);  // an expired record and its elements
  Record r;
  r.type = t;
  return Collection(ks, key, std::move(r), false);
}

// --- Sets and hashes ---------------------------------------------------------

std::optional<std::string> Collection::get(std::string_view member) {
  if (size() == 0) return std::nullopt;
  return ks_.get_element(key_, member_sub_key(member));
}

bool Collection::set(std::string_view member, std::string_view value) {
  const std::string sub = member_sub_key(member);
  const bool is_new = size() == 0 || !ks_.get_element(key_, sub).has_value();
  ks_.put_element(key_, sub, value);
  if (is_new) {
    meta_.count++;
    dirty_ = true;
  }
  return is_new;
}

bool Collection::erase(std::string_view member) {
  if (size() == 0) return false;
  const std::string sub = member_sub_key(member);
  if (!ks_.get_element(key_, sub)) return false;
  ks_.del_element(key_, sub);
  meta_.count--;
  dirty_ = true;
  return true;
}

void Collection::for_each_member(uint64_t from_hash, const MemberVisitor& fn,
                                 uint64_t expected) {
  if (size() == 0) return;
  ks_.for_each_element(
      key_, encode_u64be(from_hash),
      [&](std::string_view sub, std::string_view value) {
        uint64_t h = 0;
        std::string_view member;
        if (!parse_member_sub_key(sub, &h, &member)) return false;
        return fn(h, member, value);
      },
      expected);
}

std::vector<std::pair<std::string, std::string>> Collection::members() {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(size());
  for_each_member(0, [&](uint64_t, std::string_view m, std::string_view v) {
    out.emplace_back(m, v);
    return true;
  });
  return out;
}

std::pair<std::string, std::string> Collection::nth_member(uint64_t n) {
  std::pair<std::string, std::string> out;
  uint64_t i = 0;
  for_each_member(
      0,
      [&](uint64_t, std::string_view m, std::string_view v) {
        if (i++ < n) return true;
        out = {std::string(m), std::string(v)};
        return false;
      },
      n + 1);
  return out;
}

std::pair<std::string, std::string> Collection::random_member(Rng& rng) {
  QKV_CHECK(size() > 0);
  if (size() <= kUniformPickMax) return nth_member(rng.below(size()));
  std::optional<std::pair<std::string, std::string>> found;
  auto first = [&](uint64_t, std::string_view m, std::string_view v) {
    found.emplace(m, v);
    return false;
  };
  for_each_member(rng.next(), first, 1);
  if (!found) for_each_member(0, first, 1);  // past the last hash: wrap around
  return found ? std::move(*found) : std::pair<std::string, std::string>{};
}

std::vector<std::pair<std::string, std::string>> Collection::random_distinct(Rng& rng,
                                                                             uint64_t count) {
  QKV_CHECK(count < size());
  std::vector<std::pair<std::string, std::string>> out;
  if (count == 0) return out;
  // Few members, or most of them wanted: read them all and shuffle the
  // first `count` into place (Fisher-Yates).
  if (size() <= 4 * kUniformPickMax || count * 2 > size()) {
    auto all = members();
    for (uint64_t i = 0; i < count && i < all.size(); i++) {
      std::swap(all[i], all[i + rng.below(all.size() - i)]);
    }
    all.resize(std::min<uint64_t>(count, all.size()));
    return all;
  }
  // Many members, a minority of them wanted: random seeks, skipping repeats.
  std::set<std::string> seen;
  while (out.size() < count) {
    auto m = random_member(rng);
    if (seen.insert(m.first).second) out.push_back(std::move(m));
  }
  return out;
}

// --- Lists -------------------------------------------------------------------

std::string Collection::at(uint64_t index) {
  QKV_CHECK(index < size());
  auto v = ks_.get_element(key_, list_sub(index));
  return v ? std::move(*v) : std::string();  // absent only if the txn failed
}

void Collection::set_at(uint64_t index, std::string_view value) {
  QKV_CHECK(index < size());
  ks_.put_element(key_, list_sub(index), value);
}

void Collection::push_front(std::string_view value) {
  QKV_CHECK(meta_.head > 0) << "list sequence numbers exhausted at the head";
  meta_.head--;
  ks_.put_element(key_, list_sub_key(meta_.head), value);
  ks_.note_list_push(key_);
  dirty_ = true;
}

void Collection::push_back(std::string_view value) {
  QKV_CHECK(meta_.tail < UINT64_MAX) << "list sequence numbers exhausted at the tail";
  ks_.put_element(key_, list_sub_key(meta_.tail), value);
  meta_.tail++;
  ks_.note_list_push(key_);
  dirty_ = true;
}

std::string Collection::pop_front() {
  std::string v = at(0);
  ks_.del_element(key_, list_sub(0));
  meta_.head++;
  dirty_ = true;
  return v;
}

std::string Collection::pop_back() {
  std::string v = at(size() - 1);
  ks_.del_element(key_, list_sub(size() - 1));
  meta_.tail--;
  dirty_ = true;
  return v;
}

void Collection::for_each_item(uint64_t from, const ItemVisitor& fn, uint64_t expected) {
  if (from >= size()) return;
  ks_.for_each_element(
      key_, list_sub(from),
      [&](std::string_view sub, std::string_view value) {
        uint64_t seq = 0;
        if (!decode_u64be(sub, &seq) || seq >= meta_.tail) return false;
        return fn(seq - meta_.head, value);
      },
      expected);
}

void Collection::replace_tail(uint64_t from, const std::vector<std::string>& items) {
  QKV_CHECK(from <= size());
  const uint64_t old_tail = meta_.tail;
  const uint64_t new_tail = meta_.head + from + items.size();
  for (uint64_t j = 0; j < items.size(); j++) {
    ks_.put_element(key_, list_sub_key(meta_.head + from + j), items[j]);
  }
  if (new_tail < old_tail) {
    ks_.del_elements(key_, list_sub_key(new_tail), list_sub_key(old_tail), old_tail - new_tail);
  }
  if (new_tail > old_tail) ks_.note_list_push(key_);
  meta_.tail = new_tail;
  dirty_ = true;
}

void Collection::drop_front(uint64_t n) {
  QKV_CHECK(n <= size());
  if (n == 0) return;
  ks_.del_elements(key_, list_sub(0), list_sub(n), n);
  meta_.head += n;
  dirty_ = true;
}

void Collection::drop_back(uint64_t n) {
  QKV_CHECK(n <= size());
  if (n == 0) return;
  ks_.del_elements(key_, list_sub(size() - n), list_sub_key(meta_.tail), n);
  meta_.tail -= n;
  dirty_ = true;
}

void Collection::save() {
  if (!dirty_) return;
  dirty_ = false;
  if (size() == 0) {
    if (exists_) ks_.remove(key_);
    exists_ = false;
    meta_ = CollectionMeta{};
    meta_.head = meta_.tail = kListSeqStart;
    return;
  }
  rec_.payload = encode_collection_meta(rec_.type, meta_);
  if (exists_) {
    ks_.update(key_, rec_);
  } else {
    ks_.put(key_, rec_);
    exists_ = true;
  }
}

}  // namespace qkv::kv
