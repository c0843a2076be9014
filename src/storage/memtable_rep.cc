#include "storage/memtable_rep.h"

#include <rocksdb/slice.h>
#include <rocksdb/version.h>

#include <atomic>
#include <bit>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/check.h"
#include "base/hash.h"

// RocksDB hands a memtable representation its arena as an Allocator, a class
// its public headers only declare. Its interface (memory/allocator.h), which
// has been these four virtual functions since RocksDB took it from LevelDB:
// the arena of a memtable and the arena an iterator is placed in are both
// reached through it. MemTableRepTest runs every path that uses it.
static_assert(ROCKSDB_MAJOR >= 6 && ROCKSDB_MAJOR <= 8,
              "check rocksdb::Allocator and rocksdb::LookupKey against this RocksDB");
namespace rocksdb {
class Allocator {
 public:
  virtual ~Allocator() {}
  virtual char* Allocate(size_t bytes) = 0;
  virtual char* AllocateAligned(size_t bytes, size_t huge_page_size = 0,
                                Logger* logger = nullptr) = 0;
  virtual size_t BlockSize() const = 0;
};
}  // namespace rocksdb

namespace qkv::storage {
namespace {

static_assert(std::endian::native == std::endian::little,
              "internal keys end in a little-endian (sequence << 8 | type)");

constexpr int kMaxHeight = 12;  // 4^12 user keys before the list degrades
constexpr size_t kFirstTableSlots = 1024;

// An entry as MemTable::Add encodes it: varint32 length of the internal key,
// the internal key (the user key, then 8 bytes: sequence << 8 | type), varint32
// length of the value, the value.
struct KeyParts {
  std::string_view user_key;
  uint64_t packed;  // sequence << 8 | type: larger comes first in the order
};

const char* decode_varint32(const char* p, uint32_t* v) {
  uint32_t result = 0;
  for (int shift = 0; shift <= 28; shift += 7) {
    const uint32_t byte = static_cast<unsigned char>(*p++);
    result |= (byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return p;
    }
  }
  QKV_CHECK(false) << "memtable entry with a bad length";
  return p;
}

KeyParts internal_key_parts(const char* ikey, size_t size) {
  QKV_CHECK_GE(size, 8u) << "internal key without its sequence";
  uint64_t packed;
  std::memcpy(&packed, ikey + size - 8, 8);
  return {std::string_view(ikey, size - 8), packed};
}

KeyParts entry_parts(const char* entry) {
  uint32_t size = 0;
  const char* ikey = decode_varint32(entry, &size);
  return internal_key_parts(ikey, size);
}

// One version of a user key: MemTable::Add's entry follows the two links.
struct Version {
  std::atomic<Version*> older{nullptr};
  std::atomic<Version*> newer{nullptr};
  char* entry() { return reinterpret_cast<char*>(this + 1); }
  const char* entry() const { return reinterpret_cast<const char*>(this + 1); }
  uint64_t packed() const { return entry_parts(entry()).packed; }
};
static_assert(sizeof(Version) == 16 && alignof(Version) == 8);

// One user key: its versions, newest to oldest, and its skip list links
// (height of them, after the node).
struct Node {
  uint64_t hash;
  // In the first version's entry (the arena's). A copy after the links
  // (one cache line less per step of a search) measured no faster in
  // bench/memtable_bench and cost the key's size again.
  const char* key_data;
  uint32_t key_size;
  uint32_t height;
  std::atomic<Version*> newest;
  std::atomic<Version*> oldest;

  std::string_view key() const { return {key_data, key_size}; }
  std::atomic<Node*>& next(int level) {
    return reinterpret_cast<std::atomic<Node*>*>(this + 1)[level];
  }
};
static_assert(sizeof(Node) % alignof(std::atomic<Node*>) == 0);

// Open addressing, linear probing, at most half full. Replaced by one twice
// the size when full; replaced tables stay until the memtable goes, so a
// reader still probing one reads valid memory (and finds every key that was
// there: a key added since has a sequence number the reader cannot see, as
// the writer publishes the sequence after the insert).
struct Table {
  explicit Table(size_t slots) : mask(slots - 1), slot(new std::atomic<Node*>[slots]()) {}
  size_t mask;
  std::unique_ptr<std::atomic<Node*>[]> slot;
};

class KeyIndexedRep final : public rocksdb::MemTableRep {
 public:
  explicit KeyIndexedRep(rocksdb::Allocator* allocator) : rocksdb::MemTableRep(allocator) {
    char* mem = allocator_->AllocateAligned(sizeof(Node) + kMaxHeight * sizeof(std::atomic<Node*>));
    head_ = new (mem) Node{0, "", 0, kMaxHeight, {nullptr}, {nullptr}};
    for (int i = 0; i < kMaxHeight; i++) new (&head_->next(i)) std::atomic<Node*>(nullptr);
    tables_.push_back(std::make_unique<Table>(kFirstTableSlots));
    table_.store(tables_.back().get(), std::memory_order_release);
    heap_bytes_.store(kFirstTableSlots * sizeof(std::atomic<Node*>), std::memory_order_relaxed);
  }

  rocksdb::KeyHandle Allocate(const size_t len, char** buf) override {
    Version* v = new (allocator_->AllocateAligned(sizeof(Version) + len)) Version();
    *buf = v->entry();
    return v;
  }

  void Insert(rocksdb::KeyHandle handle) override {
    Version* v = static_cast<Version*>(handle);
    const KeyParts k = entry_parts(v->entry());
    const uint64_t h = keyed_hash(k.user_key);
    if (Node* n = find(k.user_key, h)) {
      add_version(n, v, k.packed);
    } else {
      add_node(k.user_key, h, v);
    }
    versions_.fetch_add(1, std::memory_order_relaxed);
  }

  bool Contains(const char* entry) const override {
    const KeyParts k = entry_parts(entry);
    const Node* n = find(k.user_key, keyed_hash(k.user_key));
    if (n == nullptr) return false;
    for (const Version* v = n->newest.load(std::memory_order_acquire); v != nullptr;
         v = v->older.load(std::memory_order_acquire)) {
      const uint64_t p = v->packed();
      if (p == k.packed) return true;
      if (p < k.packed) return false;
    }
    return false;
  }

  // From the first version at or after k (in internal key order) through the
  // versions of the same user key, while the callback asks for more.
  void Get(const rocksdb::LookupKey& k, void* arg,
           bool (*callback)(void* arg, const char* entry)) override {
    // LookupKey (db/dbformat.h) begins with a pointer to its memtable key:
    // varint32 length, then the internal key. The class is internal to
    // RocksDB; that layout has not changed since LevelDB.
    const char* memtable_key = *reinterpret_cast<const char* const*>(&k);
    const KeyParts t = entry_parts(memtable_key);
    const Node* n = find(t.user_key, keyed_hash(t.user_key));
    if (n == nullptr) return;
    const Version* v = n->newest.load(std::memory_order_acquire);
    while (v != nullptr && v->packed() > t.packed) v = v->older.load(std::memory_order_acquire);
    for (; v != nullptr; v = v->older.load(std::memory_order_acquire)) {
      if (!callback(arg, v->entry())) return;
    }
  }

  uint64_t ApproximateNumEntries(const rocksdb::Slice& start_ikey,
                                 const rocksdb::Slice& end_ikey) override {
    const KeyParts s = internal_key_parts(start_ikey.data(), start_ikey.size());
    const KeyParts e = internal_key_parts(end_ikey.data(), end_ikey.size());
    uint64_t below_start = 0, below_end = 0;
    find_at_or_above(s.user_key, nullptr, &below_start);
    find_at_or_above(e.user_key, nullptr, &below_end);
    if (below_end <= below_start) return 0;
    const uint64_t nodes = nodes_.load(std::memory_order_relaxed);
    const uint64_t versions = versions_.load(std::memory_order_relaxed);
    if (nodes == 0) return 0;
    return (below_end - below_start) * versions / nodes;
  }

  size_t ApproximateMemoryUsage() override { return heap_bytes_.load(std::memory_order_relaxed); }

  Iterator* GetIterator(rocksdb::Arena* arena) override;

  // --- for the iterator -----------------------------------------------------

  Node* first() const { return head_->next(0).load(std::memory_order_acquire); }

  // The first node whose key is at or above key; with prev, the last node
  // below key at each level; with below, about how many nodes are below key
  // (the steps taken at each level, each worth four of the level below: the
  // list's branching).
  Node* find_at_or_above(std::string_view key, Node** prev, uint64_t* below = nullptr) const {
    Node* x = head_;
    int level = max_height_.load(std::memory_order_relaxed) - 1;
    uint64_t steps = 0;
    for (;;) {
      Node* next = x->next(level).load(std::memory_order_acquire);
      if (next != nullptr && next->key() < key) {
        x = next;
        steps++;
        continue;
      }
      if (prev != nullptr) prev[level] = x;
      if (level == 0) {
        if (below != nullptr) *below = steps;
        return next;
      }
      steps *= 4;
      level--;
    }
  }

  // The last node whose key is below key (nullptr: none).
  Node* find_below(std::string_view key) const {
    Node* prev[kMaxHeight];
    find_at_or_above(key, prev);
    return prev[0] == head_ ? nullptr : prev[0];
  }

  Node* find_last() const {
    Node* x = head_;
    int level = max_height_.load(std::memory_order_relaxed) - 1;
    for (;;) {
      Node* next = x->next(level).load(std::memory_order_acquire);
      if (next != nullptr) {
        x = next;
      } else if (level == 0) {
        return x == head_ ? nullptr : x;
      } else {
        level--;
      }
    }
  }

 private:
  const Node* find(std::string_view key, uint64_t h) const {
    return const_cast<KeyIndexedRep*>(this)->find(key, h);
  }
  Node* find(std::string_view key, uint64_t h) {
    const Table* t = table_.load(std::memory_order_acquire);
    for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
      Node* n = t->slot[i].load(std::memory_order_acquire);
      if (n == nullptr) return nullptr;
      if (n->hash == h && n->key() == key) return n;
    }
  }

  // The writer's: v goes before the first version it follows in the order.
  void add_version(Node* n, Version* v, uint64_t packed) {
    Version* head = n->newest.load(std::memory_order_relaxed);
    if (packed > head->packed()) {
      // A sequence number above all before it: always, from RocksDB's one
      // writer.
      v->older.store(head, std::memory_order_relaxed);
      n->newest.store(v, std::memory_order_release);
      head->newer.store(v, std::memory_order_release);
      return;
    }
    Version* prev = head;
    for (Version* o = prev->older.load(std::memory_order_relaxed);
         o != nullptr && o->packed() >= packed; o = o->older.load(std::memory_order_relaxed)) {
      prev = o;
    }
    Version* next = prev->older.load(std::memory_order_relaxed);
    v->older.store(next, std::memory_order_relaxed);
    v->newer.store(prev, std::memory_order_relaxed);
    prev->older.store(v, std::memory_order_release);
    if (next != nullptr) {
      next->newer.store(v, std::memory_order_release);
    } else {
      n->oldest.store(v, std::memory_order_release);
    }
  }

  void add_node(std::string_view key, uint64_t h, Version* v) {
    Node* prev[kMaxHeight];
    Node* at = find_at_or_above(key, prev);
    QKV_CHECK(at == nullptr || at->key() != key) << "a memtable key missing from its index";
    const int height = random_height();
    const int max = max_height_.load(std::memory_order_relaxed);
    if (height > max) {
      for (int i = max; i < height; i++) prev[i] = head_;
      // Readers that see the new height before the links find nullptr there
      // and go down a level.
      max_height_.store(height, std::memory_order_relaxed);
    }
    char* mem = allocator_->AllocateAligned(sizeof(Node) + height * sizeof(std::atomic<Node*>));
    Node* n = new (mem) Node{h, key.data(), static_cast<uint32_t>(key.size()),
                             static_cast<uint32_t>(height), {v}, {v}};
    for (int i = 0; i < height; i++) {
      new (&n->next(i)) std::atomic<Node*>(prev[i]->next(i).load(std::memory_order_relaxed));
    }
    for (int i = 0; i < height; i++) prev[i]->next(i).store(n, std::memory_order_release);

    Table* t = table_.load(std::memory_order_relaxed);
    const uint64_t nodes = nodes_.load(std::memory_order_relaxed);
    if ((nodes + 1) * 2 > t->mask + 1) t = grow(t);
    place(t, n);
    nodes_.store(nodes + 1, std::memory_order_relaxed);
  }

  static void place(Table* t, Node* n) {
    for (size_t i = n->hash & t->mask;; i = (i + 1) & t->mask) {
      if (t->slot[i].load(std::memory_order_relaxed) == nullptr) {
        t->slot[i].store(n, std::memory_order_release);
        return;
      }
    }
  }

  Table* grow(const Table* old) {
    const size_t slots = (old->mask + 1) * 2;
    tables_.push_back(std::make_unique<Table>(slots));
    Table* t = tables_.back().get();
    for (size_t i = 0; i <= old->mask; i++) {
      if (Node* n = old->slot[i].load(std::memory_order_relaxed)) place(t, n);
    }
    heap_bytes_.fetch_add(slots * sizeof(std::atomic<Node*>), std::memory_order_relaxed);
    table_.store(t, std::memory_order_release);
    return t;
  }

  int random_height() {
    // xorshift64*: the heights only need to be independent of the keys.
    int height = 1;
    for (;;) {
      rng_ ^= rng_ >> 12;
      rng_ ^= rng_ << 25;
      rng_ ^= rng_ >> 27;
      const uint64_t r = rng_ * 0x2545F4914F6CDD1DULL;
      for (int bits = 0; bits < 32; bits++) {
        if (height >= kMaxHeight || ((r >> (2 * bits)) & 3) != 0) return height;
        height++;
      }
    }
  }

  Node* head_ = nullptr;
  std::atomic<int> max_height_{1};
  std::atomic<Table*> table_{nullptr};
  // The writer's alone.
  std::vector<std::unique_ptr<Table>> tables_;
  uint64_t rng_ = 0x9E3779B97F4A7C15ULL;
  // Written by the writer (nodes_ also sizes the index), read by any thread
  // for estimates.
  std::atomic<uint64_t> nodes_{0};
  std::atomic<uint64_t> versions_{0};
  std::atomic<size_t> heap_bytes_{0};
};

class KeyIndexedIterator final : public rocksdb::MemTableRep::Iterator {
 public:
  explicit KeyIndexedIterator(const KeyIndexedRep* rep) : rep_(rep) {}

  bool Valid() const override { return v_ != nullptr; }
  const char* key() const override { return v_->entry(); }

  void Next() override {
    if (const Version* o = v_->older.load(std::memory_order_acquire)) {
      v_ = o;
      return;
    }
    at_newest(node_->next(0).load(std::memory_order_acquire));
  }

  void Prev() override {
    if (const Version* n = v_->newer.load(std::memory_order_acquire)) {
      v_ = n;
      return;
    }
    at_oldest(rep_->find_below(node_->key()));
  }

  // The first entry at or after the target.
  void Seek(const rocksdb::Slice& internal_key, const char* /*memtable_key*/) override {
    const KeyParts t = internal_key_parts(internal_key.data(), internal_key.size());
    Node* n = rep_->find_at_or_above(t.user_key, nullptr);
    if (n != nullptr && n->key() == t.user_key) {
      const Version* v = n->newest.load(std::memory_order_acquire);
      while (v != nullptr && v->packed() > t.packed) v = v->older.load(std::memory_order_acquire);
      if (v != nullptr) {
        node_ = n;
        v_ = v;
        return;
      }
      n = n->next(0).load(std::memory_order_acquire);
    }
    at_newest(n);
  }

  // The last entry at or before the target.
  void SeekForPrev(const rocksdb::Slice& internal_key, const char* /*memtable_key*/) override {
    const KeyParts t = internal_key_parts(internal_key.data(), internal_key.size());
    Node* n = rep_->find_at_or_above(t.user_key, nullptr);
    if (n != nullptr && n->key() == t.user_key) {
      const Version* last = nullptr;
      for (const Version* v = n->newest.load(std::memory_order_acquire);
           v != nullptr && v->packed() >= t.packed; v = v->older.load(std::memory_order_acquire)) {
        last = v;
      }
      if (last != nullptr) {
        node_ = n;
        v_ = last;
        return;
      }
    }
    at_oldest(rep_->find_below(t.user_key));
  }

  void SeekToFirst() override { at_newest(rep_->first()); }
  void SeekToLast() override { at_oldest(rep_->find_last()); }

 private:
  void at_newest(Node* n) {
    node_ = n;
    v_ = n != nullptr ? n->newest.load(std::memory_order_acquire) : nullptr;
  }
  void at_oldest(Node* n) {
    node_ = n;
    v_ = n != nullptr ? n->oldest.load(std::memory_order_acquire) : nullptr;
  }

  const KeyIndexedRep* rep_;
  Node* node_ = nullptr;
  const Version* v_ = nullptr;
};

rocksdb::MemTableRep::Iterator* KeyIndexedRep::GetIterator(rocksdb::Arena* arena) {
  if (arena == nullptr) return new KeyIndexedIterator(this);
  // An Arena is an Allocator (its only base). The caller destroys the
  // iterator in place and frees the arena's memory with the arena.
  char* mem = reinterpret_cast<rocksdb::Allocator*>(arena)->AllocateAligned(
      sizeof(KeyIndexedIterator));
  return new (mem) KeyIndexedIterator(this);
}

}  // namespace

rocksdb::MemTableRep* KeyIndexedMemTableFactory::CreateMemTableRep(
    const rocksdb::MemTableRep::KeyComparator& compare, rocksdb::Allocator* allocator,
    const rocksdb::SliceTransform* /*prefix_extractor*/, rocksdb::Logger* /*logger*/) {
  // The order of user keys here is bytewise (unsigned bytes, a prefix
  // first). A column family with another comparator must not get this
  // representation: check a few pairs whose order would differ.
  auto entry = [](std::string_view user_key, uint64_t sequence) {
    std::string e(1, static_cast<char>(user_key.size() + 8));
    e.append(user_key);
    const uint64_t packed = sequence << 8 | 1;  // a value
    e.append(reinterpret_cast<const char*>(&packed), 8);
    return e;
  };
  const std::pair<std::string_view, std::string_view> ordered[] = {
      {"a", "b"}, {"a", "ab"}, {"a", "\x80"}, {"", "a"}};
  for (const auto& [lo, hi] : ordered) {
    QKV_CHECK(compare(entry(lo, 7).c_str(), entry(hi, 7).c_str()) < 0 &&
              compare(entry(hi, 7).c_str(), entry(lo, 7).c_str()) > 0)
        << "the key-indexed memtable needs RocksDB's bytewise comparator";
  }
  QKV_CHECK(compare(entry("a", 9).c_str(), entry("a", 7).c_str()) < 0)
      << "the key-indexed memtable needs RocksDB's internal key order";
  return new KeyIndexedRep(allocator);
}

}  // namespace qkv::storage
