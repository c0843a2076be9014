// Point operations on the state store's two memtable representations, at
// several memtable sizes: RocksDB's skip list (key comparisons per operation,
// which machine noise does not move, and nanoseconds) and ours, indexed by
// key (storage/memtable_rep.h; nanoseconds: it compares no keys but a new
// key's in its list of user keys, which the counting comparator cannot see).
//
// Keys are shaped like the store's (34 bytes, the 8 bytes after an 11-byte
// prefix random: docs/KV_FORMAT.md orders records by slot and hash) with
// 130-byte values; RocksDB's own WAL is off, and the write buffer is large
// enough that nothing is flushed, so every Put and Get stays in one memtable.
// A counting comparator (bytewise, so the order is the store's) counts the
// user-key comparisons. Operations: a Get of a key written (the old record a
// SET reads), a Put of a key written (a SET's new version, and every apply's
// applied index and stamp), a Put of a new key.
//
//   build/bench/memtable_bench [entries ...]   (default: 10000 100000 400000)
#include <rocksdb/comparator.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <unistd.h>

#include <chrono>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "storage/memtable_rep.h"

namespace {

class CountingComparator final : public rocksdb::Comparator {
 public:
  // The name of the bytewise comparator: the same order, so the same shape.
  const char* Name() const override { return "leveldb.BytewiseComparator"; }
  int Compare(const rocksdb::Slice& a, const rocksdb::Slice& b) const override {
    count_++;
    return base_->Compare(a, b);
  }
  void FindShortestSeparator(std::string* start, const rocksdb::Slice& limit) const override {
    base_->FindShortestSeparator(start, limit);
  }
  void FindShortSuccessor(std::string* key) const override { base_->FindShortSuccessor(key); }
  uint64_t count() const { return count_; }

 private:
  const rocksdb::Comparator* base_ = rocksdb::BytewiseComparator();
  mutable uint64_t count_ = 0;
};

std::string store_key(uint64_t random) {
  std::string k(34, 'k');
  std::memcpy(&k[11], &random, sizeof random);
  return k;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<long> sizes;
  for (int i = 1; i < argc; i++) sizes.push_back(std::strtol(argv[i], nullptr, 10));
  if (sizes.empty()) sizes = {10000, 100000, 400000};
  constexpr int kOps = 10000;
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("memtable_bench." + std::to_string(getpid())))
          .string();
  std::printf("%-9s %9s %12s %12s %12s %10s %10s %10s\n", "memtable", "entries", "cmp/Get",
              "cmp/Put old", "cmp/Put new", "ns/Get", "ns/Put old", "ns/Put new");
  for (const bool indexed : {false, true}) {
    for (const long n : sizes) {
      std::filesystem::remove_all(dir);
      CountingComparator cmp;
      rocksdb::Options o;
      o.create_if_missing = true;
      o.comparator = &cmp;
      o.write_buffer_size = 1ull << 30;
      if (indexed) {
        o.memtable_factory = std::make_shared<qkv::storage::KeyIndexedMemTableFactory>();
        o.allow_concurrent_memtable_write = false;
      }
      rocksdb::DB* raw = nullptr;
      if (!rocksdb::DB::Open(o, dir, &raw).ok()) {
        std::fprintf(stderr, "cannot open %s\n", dir.c_str());
        return 1;
      }
      std::unique_ptr<rocksdb::DB> db(raw);
      rocksdb::WriteOptions wo;
      wo.disableWAL = true;
      const std::string value(130, 'v');
      std::mt19937_64 fill(1);
      for (long i = 0; i < n; i++) db->Put(wo, store_key(fill()), value);
      using Clock = std::chrono::steady_clock;
      auto ns_per_op = [](Clock::time_point t0) {
        return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / kOps;
      };
      std::mt19937_64 again(1);
      const uint64_t c0 = cmp.count();
      Clock::time_point t = Clock::now();
      std::string out;
      for (int i = 0; i < kOps; i++) db->Get(rocksdb::ReadOptions(), store_key(again()), &out);
      const double get_ns = ns_per_op(t);
      const uint64_t c1 = cmp.count();
      std::mt19937_64 old_keys(1);
      t = Clock::now();
      for (int i = 0; i < kOps; i++) db->Put(wo, store_key(old_keys()), value);
      const double old_ns = ns_per_op(t);
      const uint64_t c2 = cmp.count();
      t = Clock::now();
      for (int i = 0; i < kOps; i++) db->Put(wo, store_key(fill()), value);
      const double new_ns = ns_per_op(t);
      const uint64_t c3 = cmp.count();
      std::printf("%-9s %9ld %12.1f %12.1f %12.1f %10.0f %10.0f %10.0f\n",
                  indexed ? "indexed" : "skiplist", n, double(c1 - c0) / kOps,
                  double(c2 - c1) / kOps, double(c3 - c2) / kOps, get_ns, old_ns, new_ns);
      db.reset();
    }
  }
  std::filesystem::remove_all(dir);
  return 0;
}
