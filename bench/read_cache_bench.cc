// Micro benchmarks of the read cache (src/storage/read_cache.h) at the size
// a default node reaches: a hit, a miss and its fill (with eviction once
// full), an update through a write batch, and a range deletion of a few
// keys (what deleting or trimming a large collection costs every node's
// apply) in a cache of `range/0` entries.
//
//   build/bench/read_cache_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>
#include <rocksdb/write_batch.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "storage/read_cache.h"

namespace qkv::storage {
namespace {

// Keys shaped like the store's: a tag and an 8-byte group id, then the kv
// layout's tag and 8-byte position (a hash), then the key.
std::string key_of(uint64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "key:%012llu",
                static_cast<unsigned long long>(i * 2654435761ull % 1000000007ull));
  std::string k("d\0\0\0\0\0\0\0\x01k", 10);
  uint64_t h = std::hash<std::string_view>{}(buf);
  for (int b = 7; b >= 0; b--) k.push_back(static_cast<char>(h >> (8 * b)));
  return k + buf;
}

void fill_keys(ReadCache& c, uint64_t n, const std::string& value) {
  for (uint64_t i = 0; i < n; i++) {
    std::optional<std::string> v;
    uint64_t gen = 0;
    const std::string k = key_of(i);
    if (!c.find(k, &v, &gen)) c.fill(k, std::optional<std::string>(value), gen);
  }
}

constexpr uint64_t kCacheBytes = 64ull << 20;

uint64_t rss_bytes() {
  std::ifstream f("/proc/self/statm");
  uint64_t pages = 0, rss = 0;
  f >> pages >> rss;
  return rss * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

void BM_Hit(benchmark::State& state) {
  ReadCache c(kCacheBytes, 64 << 10);
  const uint64_t n = static_cast<uint64_t>(state.range(0));
  const uint64_t rss_before = rss_bytes();
  fill_keys(c, n, std::string(100, 'v'));
  // What an entry (a 34-byte key, a 100-byte value) really costs, against
  // what the cache counts for it.
  // (The first run's figure: later runs reuse memory the allocator kept.)
  const auto st = c.stats();
  static const double rss_per_entry =
      static_cast<double>(rss_bytes() - rss_before) / static_cast<double>(st.entries);
  state.counters["rss_per_entry"] = rss_per_entry;
  state.counters["charged_per_entry"] =
      static_cast<double>(st.bytes) / static_cast<double>(st.entries);
  uint64_t i = 0;
  std::optional<std::string> v;
  uint64_t gen = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(c.find(key_of(i++ % n), &v, &gen));
  }
}
BENCHMARK(BM_Hit)->Arg(200000);

void BM_MissAndFill(benchmark::State& state) {
  // Full: every fill evicts.
  ReadCache c(kCacheBytes, 64 << 10);
  const std::string value(100, 'v');
  fill_keys(c, 1000000, value);
  uint64_t i = 2000000;
  for (auto _ : state) {
    std::optional<std::string> v;
    uint64_t gen = 0;
    const std::string k = key_of(i++);
    if (!c.find(k, &v, &gen)) c.fill(k, std::optional<std::string>(value), gen);
  }
  state.counters["entries"] = static_cast<double>(c.stats().entries);
}
BENCHMARK(BM_MissAndFill);

void BM_UpdateByBatch(benchmark::State& state) {
  ReadCache c(kCacheBytes, 64 << 10);
  const uint64_t n = 200000;
  fill_keys(c, n, std::string(100, 'v'));
  uint64_t i = 0;
  const std::string value(100, 'w');
  for (auto _ : state) {
    rocksdb::WriteBatch wb;
    wb.Put(key_of(i++ % n), value);
    wb.Put("m-applied", "12345678");
    c.apply_batch(wb);
  }
}
BENCHMARK(BM_UpdateByBatch);

void BM_SmallRangeDeletion(benchmark::State& state) {
  ReadCache c(kCacheBytes, 64 << 10);
  const uint64_t n = static_cast<uint64_t>(state.range(0));
  fill_keys(c, n, std::string(100, 'v'));
  uint64_t i = 0;
  for (auto _ : state) {
    // A range holding about one cached key.
    const std::string b = key_of(i++ % n);
    rocksdb::WriteBatch wb;
    wb.DeleteRange(b, b + '\x01');
    c.apply_batch(wb);
  }
  state.counters["entries"] = static_cast<double>(c.stats().entries);
}
BENCHMARK(BM_SmallRangeDeletion)->Arg(1000)->Arg(200000);

}  // namespace
}  // namespace qkv::storage

BENCHMARK_MAIN();
