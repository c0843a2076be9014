// Micro benchmarks of the RESP codec: the request parser on a pipelined SET
// stream read in 16 KiB pieces (as a connection reads it), the reply writer,
// the reply parser, and double formatting. Each reports allocations per item,
// which must be 0 in steady state for the request parser and the writer.
//
//   build/bench/resp_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "net/resp.h"

#include "alloc_counter.h"


namespace qkv::net {
namespace {

constexpr size_t kReadBytes = 16 << 10;

// `n` SET requests: key:<12 digits> and a value of `value_bytes`.
std::string set_stream(int n, size_t value_bytes, bool inline_form) {
  std::string s, value(value_bytes, 'v');
  char key[32];
  for (int i = 0; i < n; i++) {
    std::snprintf(key, sizeof(key), "key:%012d", i);
    if (inline_form) {
      s += "SET ";
      s += key;
      s += ' ';
      s += value;
      s += "\r\n";
    } else {
      append_command(&s, {"SET", key, value});
    }
  }
  return s;
}

// Feeds the stream in kReadBytes pieces, parsing every request.
void parse_stream(benchmark::State& state, const std::string& stream, int requests) {
  RequestParser p;
  uint64_t parsed = 0, checksum = 0;
  uint64_t allocs = 0;
  for (auto _ : state) {
    const uint64_t a0 = g_allocs.load(std::memory_order_relaxed);
    for (size_t at = 0; at < stream.size(); at += kReadBytes) {
      const size_t n = std::min(kReadBytes, stream.size() - at);
      auto room = p.prepare(kReadBytes);
      std::memcpy(room.data(), stream.data() + at, n);
      p.commit(n);
      while (p.next() == Parsed::kItem) {
        parsed++;
        checksum += p.args()[2].size();
      }
    }
    allocs += g_allocs.load(std::memory_order_relaxed) - a0;
  }
  if (parsed != static_cast<uint64_t>(requests) * state.iterations())
    state.SkipWithError("lost requests");
  benchmark::DoNotOptimize(checksum);
  state.SetBytesProcessed(static_cast<int64_t>(stream.size()) * state.iterations());
  state.SetItemsProcessed(static_cast<int64_t>(parsed));
  state.counters["allocs/request"] =
      benchmark::Counter(static_cast<double>(allocs) / static_cast<double>(parsed));
}

void BM_ParsePipelinedSet(benchmark::State& state) {
  const int n = 10000;
  parse_stream(state, set_stream(n, static_cast<size_t>(state.range(0)), false), n);
}
BENCHMARK(BM_ParsePipelinedSet)->Arg(16)->Arg(128)->Arg(1024)->Arg(16384);

void BM_ParseInlineSet(benchmark::State& state) {
  const int n = 10000;
  parse_stream(state, set_stream(n, static_cast<size_t>(state.range(0)), true), n);
}
BENCHMARK(BM_ParseInlineSet)->Arg(16)->Arg(128);

void BM_WriteBulkReplies(benchmark::State& state) {
  const std::string value(static_cast<size_t>(state.range(0)), 'v');
  std::string out;
  ReplyWriter w(&out, Protocol::kResp2);
  uint64_t allocs = 0, replies = 0;
  for (auto _ : state) {
    out.clear();
    const uint64_t a0 = g_allocs.load(std::memory_order_relaxed);
    for (int i = 0; i < 1000; i++) {
      w.bulk(value);
      w.integer(i);
      w.ok();
    }
    allocs += g_allocs.load(std::memory_order_relaxed) - a0;
    replies += 3000;
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(replies));
  state.counters["allocs/reply"] =
      benchmark::Counter(static_cast<double>(allocs) / static_cast<double>(replies));
}
BENCHMARK(BM_WriteBulkReplies)->Arg(32)->Arg(1024);

void BM_ParseArrayReply(benchmark::State& state) {
  const bool tree = state.range(0) != 0;
  std::string in;
  ReplyWriter w(&in, Protocol::kResp3);
  for (int r = 0; r < 100; r++) {
    w.array(100);
    for (int i = 0; i < 100; i++) w.bulk("value-" + std::to_string(i));
  }
  ReplyParser p(ReplyLimits{}, tree);
  uint64_t replies = 0;
  for (auto _ : state) {
    for (size_t at = 0; at < in.size(); at += kReadBytes) {
      const size_t n = std::min(kReadBytes, in.size() - at);
      auto room = p.prepare(kReadBytes);
      std::memcpy(room.data(), in.data() + at, n);
      p.commit(n);
      while (p.next() == Parsed::kItem) replies++;
    }
  }
  if (replies != 100 * static_cast<uint64_t>(state.iterations()))
    state.SkipWithError("lost replies");
  state.SetBytesProcessed(static_cast<int64_t>(in.size()) * state.iterations());
  state.SetItemsProcessed(static_cast<int64_t>(replies) * 101);  // values
}
BENCHMARK(BM_ParseArrayReply)->Arg(1)->Arg(0);

void BM_FormatDouble(benchmark::State& state) {
  char buf[kDoubleChars];
  double d = 0.1;
  size_t total = 0;
  for (auto _ : state) {
    total += format_double(d, buf);
    d = d * 1.0000001 + 0.37;
  }
  benchmark::DoNotOptimize(total);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FormatDouble);

}  // namespace
}  // namespace qkv::net

BENCHMARK_MAIN();
