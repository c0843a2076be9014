// WAL group-commit benchmark on the real disk: appends per second and syncs
// per second with 1, 8 and 64 concurrent appenders (each appends a 100-byte
// entry and waits until it is durable), beside the disk's raw fsync rate
// measured in the same run (128-byte sequential pwrite + fdatasync into a
// preallocated file, in a loop: the best one syncer can do).
//
//   wal-bench [--dir DIR] [--seconds S] [--appenders 1,8,64]
#include <fcntl.h>
#include <unistd.h>

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

int main(int argc, char** argv) {
  std::string dir = "/tmp";
  double seconds = 3;
  std::vector<int> appenders = {1, 8, 64};
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (a == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (a == "--appenders" && i + 1 < argc) {
      appenders.clear();
      std::string list = argv[++i];
      size_t pos = 0;
      while (pos < list.size()) {
        size_t comma = list.find(',', pos);
        appenders.push_back(std::atoi(list.substr(pos, comma - pos).c_str()));
        pos = comma == std::string::npos ? list.size() : comma + 1;
      }
    } else {
      std::fprintf(stderr, "usage: wal-bench [--dir DIR] [--seconds S] [--appenders 1,8,64]\n");
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
  std::printf("| appenders | appends/s | syncs/s | appends/sync | syncs/s ÷ raw fsync/s | appends/s ÷ raw fsync/s |\n");
  std::printf("| --- | --- | --- | --- | --- | --- |\n");
  PosixFileSystem fs;
  for (int k : appenders) {
    std::string wdir = root + "/wal-" + std::to_string(k);
    WalRecovery rec;
    auto w = Wal::open(&fs, wdir, WalOptions{}, &rec);
    if (!w.is_ok()) {
      std::fprintf(stderr, "%s\n", w.status().to_string().c_str());
      return 1;
    }
    Wal& wal = **w;
    std::atomic<bool> stop{false};
    std::vector<std::thread> th;
    std::string payload(100, 'v');
    auto start = Clock::now();
    for (int t = 0; t < k; t++) {
      th.emplace_back([&, t] {
        uint64_t idx = 0;
        while (!stop.load(std::memory_order_relaxed)) {
          WalBatch b;
          qkv::raftpb::Entry e;
          e.set_index(++idx);
          e.set_term(1);
          e.set_data(payload);
          b.add_entry(static_cast<uint64_t>(t + 1), e);
          if (!wal.write(b).is_ok()) std::abort();
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto& x : th) x.join();
    double el = std::chrono::duration<double>(Clock::now() - start).count();
    WalStats st = wal.stats();
    double aps = static_cast<double>(st.appends) / el, sps = static_cast<double>(st.syncs) / el;
    std::printf("| %d | %.0f | %.0f | %.1f | %.2f | %.2f |\n", k, aps, sps,
                st.syncs ? static_cast<double>(st.appends) / static_cast<double>(st.syncs) : 0.0,
                sps / raw, aps / raw);
  }
  (void)std::system(("rm -rf " + root).c_str());
  return 0;
}
