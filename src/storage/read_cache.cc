#include "storage/read_cache.h"

#include <rocksdb/write_batch.h>

#include <algorithm>
#include <vector>

#include "base/check.h"

namespace qkv::storage {

// Replays a WriteBatch into the cache (under the cache's lock).
class ReadCacheBatchHandler final : public rocksdb::WriteBatch::Handler {
 public:
  explicit ReadCacheBatchHandler(ReadCache* cache) : cache_(cache) {}
  rocksdb::Status PutCF(uint32_t, const rocksdb::Slice& key, const rocksdb::Slice& value) override {
    cache_->put_locked(view(key), view(value));
    return rocksdb::Status::OK();
  }
  rocksdb::Status DeleteCF(uint32_t, const rocksdb::Slice& key) override {
    cache_->erase_locked(view(key));
    return rocksdb::Status::OK();
  }
  rocksdb::Status SingleDeleteCF(uint32_t, const rocksdb::Slice& key) override {
    cache_->erase_locked(view(key));
    return rocksdb::Status::OK();
  }
  rocksdb::Status DeleteRangeCF(uint32_t, const rocksdb::Slice& begin,
                                const rocksdb::Slice& end) override {
    cache_->erase_range_locked(view(begin), view(end));
    return rocksdb::Status::OK();
  }
  // The store writes nothing else; anything else empties the cache rather
  // than guess what it changed.
  rocksdb::Status MergeCF(uint32_t, const rocksdb::Slice&, const rocksdb::Slice&) override {
    cache_->erase_range_locked("", "");
    return rocksdb::Status::OK();
  }

 private:
  static std::string_view view(const rocksdb::Slice& s) { return {s.data(), s.size()}; }
  ReadCache* cache_;
};

ReadCache::ReadCache(uint64_t bytes_max, uint64_t value_bytes_max, bool fill_on_write)
    : bytes_max_(bytes_max),
      value_bytes_max_(std::min(value_bytes_max, bytes_max / kValueShareDivisor)),
      fill_on_write_(fill_on_write) {}

bool ReadCache::find(std::string_view key, std::optional<std::string>* value,
                     uint64_t* generation) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find(key);
  if (it == map_.end()) {
    stats_.misses++;
    *generation = generation_;
    return false;
  }
  stats_.hits++;
  it->second.referenced = true;
  *value = it->second.value;
  return true;
}

void ReadCache::fill(std::string_view key, const std::optional<std::string>& value,
                     uint64_t generation) {
  if (value && value->size() > value_bytes_max_) return;
  if (charge(key, value) > bytes_max_) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (generation != generation_) return;  // a write came between the read and now
  auto [it, inserted] = map_.try_emplace(std::string(key));
  if (inserted) {
    link_locked(it);
  } else {
    bytes_ -= charge(it->first, it->second.value);
  }
  it->second.value = value;
  bytes_ += charge(it->first, it->second.value);
  evict_locked();
}

void ReadCache::apply_batch(const rocksdb::WriteBatch& wb) {
  std::lock_guard<std::mutex> lock(mu_);
  generation_++;
  if (map_.empty() && !fill_on_write_) return;
  ReadCacheBatchHandler h(this);
  // Iterating a batch RocksDB has just written cannot fail; if it did, the
  // cache could hold values the store no longer has.
  QKV_CHECK(wb.Iterate(&h).ok()) << "read cache: unreadable write batch";
}

void ReadCache::erase_range(std::string_view begin, std::string_view end) {
  std::lock_guard<std::mutex> lock(mu_);
  generation_++;
  erase_range_locked(begin, end);
}

void ReadCache::put_locked(std::string_view key, std::string_view value) {
  auto it = map_.find(key);
  if (it == map_.end()) {
    // Added only into free bytes: a write never evicts.
    if (!fill_on_write_ || value.size() > value_bytes_max_ ||
        bytes_ + charge(key, value) > bytes_max_) {
      return;
    }
    it = map_.try_emplace(std::string(key)).first;
    link_locked(it);
    it->second.value.emplace(value);
    bytes_ += charge(it->first, it->second.value);
    return;
  }
  if (value.size() > value_bytes_max_) {
    erase_entry_locked(it);
    return;
  }
  bytes_ -= charge(it->first, it->second.value);
  it->second.value.emplace(value);
  bytes_ += charge(it->first, it->second.value);
  evict_locked();
}

void ReadCache::erase_locked(std::string_view key) {
  auto it = map_.find(key);
  if (it != map_.end()) erase_entry_locked(it);
}

void ReadCache::erase_entry_locked(Map::iterator it) {
  bytes_ -= charge(it->first, it->second.value);
  unlink_locked(&it->second);
  map_.erase(it);
}

uint64_t ReadCache::group_of(std::string_view key) {
  return keyed_hash(key.substr(0, kGroupPrefixBytes));
}

void ReadCache::link_locked(Map::iterator it) {
  Entry* e = &it->second;
  e->key = &it->first;
  auto [g, inserted] = groups_.try_emplace(group_of(it->first), e);
  if (!inserted) {
    e->next = g->second;
    g->second->prev = e;
    g->second = e;
  }
}

void ReadCache::unlink_locked(Entry* e) {
  if (e->next != nullptr) e->next->prev = e->prev;
  if (e->prev != nullptr) {
    e->prev->next = e->next;
  } else {  // the group's first entry
    auto g = groups_.find(group_of(*e->key));
    QKV_CHECK(g != groups_.end() && g->second == e) << "read cache: group list out of step";
    if (e->next != nullptr) {
      g->second = e->next;
    } else {
      groups_.erase(g);
    }
  }
  e->prev = e->next = nullptr;
}

void ReadCache::erase_range_locked(std::string_view begin, std::string_view end) {
  // An empty end: no end.
  if (begin.empty() && end.empty()) {
    groups_.clear();
    map_.clear();
    bytes_ = 0;
    return;
  }
  auto in_range = [&](std::string_view k) { return k >= begin && (end.empty() || k < end); };
  const size_t p = kGroupPrefixBytes;
  if (begin.size() >= p && end.size() >= p && begin.compare(0, p, end, 0, p) == 0) {
    // Every key in [begin, end) starts with the ends' shared prefix: only
    // that group can hold one (a hash collision adds others, checked too).
    auto g = groups_.find(group_of(begin));
    if (g == groups_.end()) return;
    for (Entry* e = g->second; e != nullptr;) {
      Entry* next = e->next;  // `g` may go with the last entry: not used again
      if (in_range(*e->key)) {
        auto it = map_.find(*e->key);
        QKV_CHECK(it != map_.end()) << "read cache: group list out of step";
        erase_entry_locked(it);
      }
      e = next;
    }
    return;
  }
  for (auto it = map_.begin(); it != map_.end();) {
    auto next = std::next(it);
    if (in_range(it->first)) erase_entry_locked(it);
    it = next;
  }
}

void ReadCache::evict_locked() {
  if (bytes_ <= bytes_max_) return;
  std::vector<std::string_view> victims;  // views of keys that stay until erased
  // Each bucket is passed at most twice: the first pass clears the
  // referenced flags, the second finds victims.
  for (size_t steps = 0; bytes_ > bytes_max_ && steps < 2 * map_.bucket_count() + 1; steps++) {
    if (hand_ >= map_.bucket_count()) hand_ = 0;
    victims.clear();
    for (auto it = map_.begin(hand_); it != map_.end(hand_); ++it) {
      if (it->second.referenced) {
        it->second.referenced = false;
      } else {
        victims.push_back(it->first);
      }
    }
    for (const std::string_view k : victims) {
      if (bytes_ <= bytes_max_) break;
      erase_locked(k);
      stats_.evictions++;
    }
    hand_++;
  }
  QKV_CHECK(bytes_ <= bytes_max_ || map_.empty()) << "read cache: eviction made no room";
}

ReadCache::Stats ReadCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  s.entries = map_.size();
  s.bytes = bytes_;
  return s;
}

}  // namespace qkv::storage
