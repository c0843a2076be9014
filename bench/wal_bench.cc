// WAL group-commit benchmark on the real disk: appends per second, syncs
// per second and the latency of a durable append with 1, 8 and 64 concurrent
// appenders (each appends an entry of --entry-bytes, 100 by default, and waits
// until it is durable),
// beside the disk's raw fsync rate measured in the same run (128-byte
// sequential pwrite + fdatasync into a preallocated file, in a loop: the best
// one syncer can do).
//
// --wals N runs N WALs at once, each with its appenders (the nodes of a
// local cluster share one disk). --prefill off,on measures the WAL without
// and with its zero-filled spare segments (WalOptions::prefill), taking turns
// for --rounds rounds. Before each measurement every WAL is written 5 MiB in
// 4 KiB batches, so that with prefill on it already writes into a spare.
//
//   wal-bench [--dir DIR] [--seconds S] [--appenders 1,8,64] [--wals N]
//             [--prefill off,on] [--rounds R] [--entry-bytes B]
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "storage/wal.h"

using namespace qkv::storage;
using Clock = std::chrono::steady_clock;

namespace {

double raw_fsync_rate(const std::string& dir, double seconds, double* p50_us) {
  std::string path = dir + "/raw-fsync.tmp";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    std::perror("open");
    std::exit(1);
  }
  // Same pattern as the WAL: small sequential writes into preallocated space.
  std::string block(128, 'x');
  (void)::posix_fallocate(fd, 0, 64 << 20);
  std::vector<double> lat;
  auto start = Clock::now();
  uint64_t n = 0;
  while (std::chrono::duration<double>(Clock::now() - start).count() < seconds) {
    auto t0 = Clock::now();
    if (::pwrite(fd, block.data(), block.size(),
                 static_cast<off_t>((n * block.size()) % (64 << 20))) < 0 ||
        ::fdatasync(fd) != 0) {
      std::perror("write/fdatasync");
      std::exit(1);
    }
    lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    n++;
  }
  double el = std::chrono::duration<double>(Clock::now() - start).count();
  ::close(fd);
  ::unlink(path.c_str());
  std::sort(lat.begin(), lat.end());
  *p50_us = lat.empty() ? 0 : lat[lat.size() / 2];
  return static_cast<double>(n) / el;
}

}  // namespace

std::vector<std::string> split(const std::string& list) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < list.size()) {
    size_t comma = list.find(',', pos);
    out.push_back(list.substr(pos, comma - pos));
    pos = comma == std::string::npos ? list.size() : comma + 1;
  }
  return out;
}

double pct(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

WalBatch entry_batch(uint64_t group, uint64_t index, const std::string& payload) {
  WalBatch b;
  qkv::raftpb::Entry e;
  e.set_index(index);
  e.set_term(1);
  e.set_data(payload);
  b.add_entry(group, e);
  return b;
}

int main(int argc, char** argv) {
  std::string dir = "/tmp";
  double seconds = 3;
  std::vector<int> appenders = {1, 8, 64};
  int wals = 1, rounds = 1;
  size_t entry_bytes = 100;
  std::vector<std::string> prefill = {"off"};
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (a == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (a == "--appenders" && i + 1 < argc) {
      appenders.clear();
      for (const auto& x : split(argv[++i])) appenders.push_back(std::atoi(x.c_str()));
    } else if (a == "--wals" && i + 1 < argc) {
      wals = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--entry-bytes" && i + 1 < argc) {
      entry_bytes = static_cast<size_t>(std::max(1, std::atoi(argv[++i])));
    } else if (a == "--rounds" && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--prefill" && i + 1 < argc) {
      prefill = split(argv[++i]);
    } else {
      std::fprintf(stderr,
                   "usage: wal-bench [--dir DIR] [--seconds S] [--appenders 1,8,64] [--wals N] "
                   "[--prefill off,on] [--rounds R] [--entry-bytes 100]\n");
      return 2;
    }
  }
  char tmpl[4096];
  std::snprintf(tmpl, sizeof tmpl, "%s/qkv-wal-bench-XXXXXX", dir.c_str());
  if (!mkdtemp(tmpl)) {
    std::perror("mkdtemp");
    return 1;
  }
  std::string root = tmpl;
  double raw_p50 = 0;
  double raw = raw_fsync_rate(root, seconds, &raw_p50);
  std::printf("raw fdatasync: %.0f/s, p50 %.0f us\n", raw, raw_p50);
  std::printf("| round | appenders | WALs | prefill | appends/s | syncs/s | appends/sync | "
              "append p50 us | append p99 us | syncs/s ÷ raw fsync/s |\n");
  std::printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
  PosixFileSystem fs;
  int run = 0;
  for (int round = 1; round <= rounds; round++) {
    for (int k : appenders) {
      for (const std::string& mode : prefill) {
        WalOptions opts;
        opts.prefill = mode == "on";
        std::vector<std::unique_ptr<Wal>> ws;
        for (int w = 0; w < wals; w++) {
          WalRecovery rec;
          auto opened =
              Wal::open(&fs, root + "/wal-" + std::to_string(run++), opts, &rec);
          if (!opened.is_ok()) {
            std::fprintf(stderr, "%s\n", opened.status().to_string().c_str());
            return 1;
          }
          ws.push_back(std::move(opened).value());
        }
        // Warm-up: 5 MiB per WAL, then (prefill on) into the spare.
        const std::string chunk(4000, 'w');
        for (auto& wal : ws) {
          uint64_t idx = 0;
          for (int i = 0; i < 1300; i++) {
            if (!wal->write(entry_batch(1000, ++idx, chunk)).is_ok()) std::abort();
          }
          for (int i = 0; opts.prefill && wal->stats().spares_used == 0 && i < 20000; i++) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            if (!wal->write(entry_batch(1000, ++idx, chunk)).is_ok()) std::abort();
          }
        }
        std::vector<WalStats> before;
        for (auto& wal : ws) before.push_back(wal->stats());
        std::atomic<bool> stop{false};
        std::vector<std::thread> th;
        std::vector<std::vector<double>> lat(static_cast<size_t>(k * wals));
        const std::string payload(entry_bytes, 'v');
        auto start = Clock::now();
        for (int w = 0; w < wals; w++) {
          for (int t = 0; t < k; t++) {
            th.emplace_back([&, w, t] {
              Wal& wal = *ws[static_cast<size_t>(w)];
              auto& my = lat[static_cast<size_t>(w * k + t)];
              uint64_t idx = 0;
              while (!stop.load(std::memory_order_relaxed)) {
                auto t0 = Clock::now();
                if (!wal.write(entry_batch(static_cast<uint64_t>(t + 1), ++idx, payload)).is_ok()) {
                  std::abort();
                }
                my.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
              }
            });
          }
        }
        std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
        stop = true;
        for (auto& x : th) x.join();
        double el = std::chrono::duration<double>(Clock::now() - start).count();
        uint64_t appends = 0, syncs = 0, used = 0;
        for (size_t w = 0; w < ws.size(); w++) {
          WalStats st = ws[w]->stats();
          appends += st.appends - before[w].appends;
          syncs += st.syncs - before[w].syncs;
          used += st.spares_used;
        }
        std::vector<double> all;
        for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
        double aps = static_cast<double>(appends) / el, sps = static_cast<double>(syncs) / el;
        std::printf("| %d | %d | %d | %s (%llu spares used) | %.0f | %.0f | %.1f | %.0f | %.0f | %.2f |\n",
                    round, k, wals, mode.c_str(), static_cast<unsigned long long>(used), aps, sps,
                    syncs ? static_cast<double>(appends) / static_cast<double>(syncs) : 0.0,
                    pct(all, 0.5), pct(all, 0.99), sps / raw);
        std::fflush(stdout);
        ws.clear();
        (void)std::system(("rm -rf " + root + "/wal-*").c_str());
      }
    }
  }
  (void)std::system(("rm -rf " + root).c_str());
  return 0;
}
