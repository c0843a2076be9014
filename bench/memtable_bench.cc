// Key comparisons per point operation in RocksDB's memtable (a skip list),
// as the state store configures it, at several memtable sizes.
//
// Keys are shaped like the store's (34 bytes, the 8 bytes after an 11-byte
// prefix random: docs/KV_FORMAT.md orders records by slot and hash) with
// 130-byte values; RocksDB's own WAL is off, and the write buffer is large
// enough that nothing is flushed, so every Put and Get stays in one memtable.
// A counting comparator (bytewise, so the order is the store's) counts the
// user-key comparisons; machine noise does not move the figure.
//
//   build/bench/memtable_bench [entries ...]   (default: 10000 100000 400000)
#include <rocksdb/comparator.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

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
  std::printf("%10s %16s %16s\n", "entries", "cmp per Get", "cmp per Put");
  for (const long n : sizes) {
    std::filesystem::remove_all(dir);
    CountingComparator cmp;
    rocksdb::Options o;
    o.create_if_missing = true;
    o.comparator = &cmp;
    o.write_buffer_size = 1ull << 30;
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
    // Gets of keys written (the old record a SET reads), then Puts of new keys.
    std::mt19937_64 again(1);
    const uint64_t before_gets = cmp.count();
    std::string out;
    for (int i = 0; i < kOps; i++) db->Get(rocksdb::ReadOptions(), store_key(again()), &out);
    const uint64_t before_puts = cmp.count();
    for (int i = 0; i < kOps; i++) db->Put(wo, store_key(fill()), value);
    std::printf("%10ld %16.1f %16.1f\n", n, double(before_puts - before_gets) / kOps,
                double(cmp.count() - before_puts) / kOps);
    db.reset();
  }
  std::filesystem::remove_all(dir);
  return 0;
}
