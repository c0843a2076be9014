#include "kv/txn.h"

#include <algorithm>

#include "base/check.h"
#include "kv/layout.h"

namespace qkv::kv {

Txn::Txn(const storage::StateStore* store, uint64_t group, bool writable)
    : store_(store), group_(group), writable_(writable) {
  QKV_CHECK(store_ != nullptr);
}

void Txn::fail(const Status& s) {
  if (status_.is_ok()) status_ = s;
}

std::optional<std::string> Txn::get(std::string_view key) {
  auto it = overlay_.find(key);
  if (it != overlay_.end()) return it->second.value;
  if (cleared_ || in_deleted_range(key)) return std::nullopt;
  store_reads_++;
  // An apply's reads (a writable transaction) do not fill the store's read
  // cache: a write load would fill it with what it overwrites.
  auto r = store_->get(group_, key, /*fill_cache=*/!writable_);
  if (!r.is_ok()) {
    fail(r.status());
    return std::nullopt;
  }
  // Only a writable transaction caches: a read-only one is short-lived and
  // may read many keys once (MGET, EXISTS) where a cache only costs memory.
  if (writable_) overlay_.emplace(std::string(key), Entry{*r, false});
  return std::move(r).value();
}

void Txn::put(std::string_view key, std::string value) {
  QKV_CHECK(writable_) << "write in a read-only transaction";
  auto it = overlay_.find(key);
  if (it == overlay_.end()) it = overlay_.emplace(std::string(key), Entry{}).first;
  it->second.value = std::move(value);
  it->second.dirty = true;
  writes_++;
}

void Txn::del(std::string_view key) {
  QKV_CHECK(writable_) << "write in a read-only transaction";
  auto it = overlay_.find(key);
  if (it == overlay_.end()) it = overlay_.emplace(std::string(key), Entry{}).first;
  it->second.value.reset();
  it->second.dirty = true;
  writes_++;
}

void Txn::clear() {
  QKV_CHECK(writable_) << "write in a read-only transaction";
  overlay_.clear();
  deleted_ranges_.clear();
  cleared_ = true;
  writes_++;
}

void Txn::delete_range(std::string_view begin, std::string_view end) {
  QKV_CHECK(writable_) << "write in a read-only transaction";
  QKV_CHECK(begin < end) << "empty or reversed range";
  overlay_.erase(overlay_.lower_bound(begin), overlay_.lower_bound(end));
  // After clear() the store is already gone as a whole.
  if (!cleared_) deleted_ranges_.emplace_back(begin, end);
  writes_++;
}

bool Txn::deletes_under(std::string_view prefix) const {
  if (cleared_) return true;
  const std::string end = prefix_end(prefix);  // empty: no end
  for (const auto& [b, e] : deleted_ranges_) {
    // [b, e) meets [prefix, end).
    if (e > prefix && (end.empty() || b < end)) return true;
  }
  return false;
}

bool Txn::in_deleted_range(std::string_view key) const {
  for (const auto& [b, e] : deleted_ranges_) {
    if (key >= b && key < e) return true;
  }
  return false;
}

void Txn::scan(std::string_view prefix, std::string_view start, const Visitor& fn,
               uint64_t first_page_keys) {
  std::string pos(std::max(start, prefix));
  auto ov = overlay_.lower_bound(pos);
  auto in_prefix = [&](std::string_view k) { return k.substr(0, prefix.size()) == prefix; };
  // Overlay entries before `bound` (all of them when bound is null); false
  // if fn asked to stop.
  auto drain_overlay = [&](const std::string* bound) {
    for (; ov != overlay_.end() && (bound == nullptr || ov->first < *bound); ++ov) {
      if (!in_prefix(ov->first)) return bound != nullptr;  // past the prefix: nothing more
      if (ov->second.value && !fn(ov->first, *ov->second.value)) return false;
    }
    return true;
  };
  if (!cleared_) {
    while (true) {
      storage::ScanOptions so;
      so.prefix = std::string(prefix);
      so.start = pos;
      so.keys_max = first_page_keys != 0 ? std::min(first_page_keys, kScanPageKeys) : kScanPageKeys;
      first_page_keys = 0;
      store_reads_++;
      auto page = store_->scan(group_, so);
      if (!page.is_ok()) {
        fail(page.status());
        return;
      }
      for (const auto& [k, v] : page->items) {
        if (!drain_overlay(&k)) return;
        if (ov != overlay_.end() && ov->first == k) {
          const Entry& e = ov->second;
          ++ov;
          if (e.value && !fn(k, *e.value)) return;
        } else if (!in_deleted_range(k) && !fn(k, v)) {
          return;
        }
      }
      if (!page->next_start) break;
      pos = std::move(*page->next_start);
    }
  }
  drain_overlay(nullptr);
}

void Txn::commit(storage::StateBatch* batch) const {
  if (cleared_) batch->delete_range("", "");
  // Before the point writes: a put after a range deletion must survive it
  // (a write batch applies in order).
  for (const auto& [b, e] : deleted_ranges_) batch->delete_range(b, e);
  for (const auto& [k, e] : overlay_) {
    if (!e.dirty) continue;
    if (e.value) {
      batch->put(k, *e.value);
    } else if (!cleared_) {
      batch->del(k);
    }
  }
}

}  // namespace qkv::kv
