// raft-sim: runs the deterministic cluster simulator over many seeds.
//
//   raft-sim --seeds 2000                       CI budget, node counts rotate 3/5/7
//   raft-sim --seeds 100000 --seed-start 5000   a long run
//   raft-sim --seed 1234 --nodes 5 --verbose    replay one seed with a full trace
//   raft-sim --seeds 2000 --bug commit-old-term --expect-violation
//
// Exit status: 0 if no seed violated an oracle (with --expect-violation: 0 iff
// some seed violated a safety oracle), 1 otherwise, 2 on bad usage. With more
// than one seed every seed runs in its own child process, so a CHECK failure
// inside the core (abort) fails that seed only; its replay command is printed.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "base/check.h"
#include "sim/sim.h"

namespace {

using qkv::sim::Bug;
using qkv::sim::ReadModeChoice;
using qkv::sim::SimOptions;
using qkv::sim::SimResult;

// Preformatted so the abort handler only needs write(2).
char g_crash_note[512];

bool g_flush_trace = false;

void on_fatal_signal(int sig) {
  // A --verbose trace is most useful up to the crash. Flushing a stream in a
  // signal handler is not async-signal-safe; the aborts that get here come
  // from CHECK failures and exceptions, outside stream operations.
  if (g_flush_trace) std::cout.flush();
  ssize_t ignored = write(STDERR_FILENO, g_crash_note, strlen(g_crash_note));
  (void)ignored;
  signal(sig, SIG_DFL);
  raise(sig);
}

std::string replay_command(const SimOptions& o) {
  std::string s = "raft-sim --seed " + std::to_string(o.seed) + " --nodes " +
                  std::to_string(o.nodes) + " --faults " + qkv::sim::faults_name(o.faults) +
                  " --steps " + std::to_string(o.steps) + " --read-mode " +
                  qkv::sim::read_mode_name(o.read_mode) + " --early-apply " +
                  qkv::sim::early_apply_name(o.early_apply) + " --coalesce-appends " +
                  qkv::sim::early_apply_name(o.coalesce_appends) + " --early-messages " +
                  qkv::sim::early_apply_name(o.early_messages);
  if (o.bug != Bug::kNone) s += std::string(" --bug ") + qkv::sim::bug_name(o.bug);
  if (!o.core_invariants) s += " --no-core-invariants";
  return s + " --verbose";
}

static_assert(std::is_trivially_copyable_v<qkv::sim::SimStats>);

// The fixed part of a SimResult as a child process sends it to its parent.
struct WireResult {
  uint8_t violation = 0;
  uint8_t liveness = 0;
  uint64_t steps = 0, ticks = 0, liveness_ticks = 0, fingerprint = 0;
  qkv::sim::SimStats stats;
  uint64_t message_bytes = 0, params_bytes = 0;
};

bool write_all(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = write(fd, c, n);
    if (w <= 0) return false;
    c += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool read_all(int fd, void* p, size_t n) {
  char* c = static_cast<char*>(p);
  while (n > 0) {
    ssize_t r = read(fd, c, n);
    if (r <= 0) return false;
    c += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

SimResult run_checked(const SimOptions& o, bool check_determinism) {
  SimResult r = qkv::sim::run_seed(o);
  if (check_determinism) {
    SimOptions again = o;
    again.trace = nullptr;
    SimResult r2 = qkv::sim::run_seed(again);
    if (r2.fingerprint != r.fingerprint || r2.steps != r.steps) {
      r.violation = true;
      r.liveness = false;
      r.message = "simulator: the seed does not replay identically (fingerprints " +
                  std::to_string(r.fingerprint) + " and " + std::to_string(r2.fingerprint) + ")";
    }
  }
  return r;
}

// A seed running in a child process, so that a CHECK failure (abort) in the
// core costs one seed, not the whole run.
struct Child {
  pid_t pid = 0;
  int fd = -1;
};

Child spawn(const SimOptions& o, bool check_determinism) {
  std::cout.flush();
  std::cerr.flush();
  fflush(nullptr);
  int fds[2];
  QKV_CHECK(pipe(fds) == 0) << "pipe failed";
  pid_t pid = fork();
  QKV_CHECK(pid >= 0) << "fork failed";
  if (pid == 0) {
    close(fds[0]);
    SimResult r = run_checked(o, check_determinism);
    WireResult w;
    w.violation = r.violation;
    w.liveness = r.liveness;
    w.steps = r.steps;
    w.ticks = r.ticks;
    w.liveness_ticks = r.liveness_ticks;
    w.fingerprint = r.fingerprint;
    w.stats = r.stats;
    w.message_bytes = r.message.size();
    w.params_bytes = r.params.size();
    // Results are a few kilobytes: they fit in the pipe's buffer, so the
    // child exits without waiting for the parent to read.
    bool ok = write_all(fds[1], &w, sizeof(w)) &&
              write_all(fds[1], r.message.data(), r.message.size()) &&
              write_all(fds[1], r.params.data(), r.params.size());
    _exit(ok ? 0 : 3);
  }
  close(fds[1]);
  return Child{pid, fds[0]};
}

// Reads the result of a child that has exited with `status`.
SimResult collect(const Child& c, int status) {
  SimResult r;
  WireResult w;
  bool ok = read_all(c.fd, &w, sizeof(w));
  if (ok) {
    r.message.resize(w.message_bytes);
    r.params.resize(w.params_bytes);
    ok = read_all(c.fd, r.message.data(), r.message.size()) &&
         read_all(c.fd, r.params.data(), r.params.size());
  }
  close(c.fd);
  if (!ok || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    r = SimResult();
    r.violation = true;
    r.message = WIFSIGNALED(status)
                    ? "process died of signal " + std::to_string(WTERMSIG(status)) +
                          " (a CHECK failed in the core or the simulator; see stderr above)"
                    : "child process failed";
    return r;
  }
  r.violation = w.violation;
  r.liveness = w.liveness;
  r.steps = w.steps;
  r.ticks = w.ticks;
  r.liveness_ticks = w.liveness_ticks;
  r.fingerprint = w.fingerprint;
  r.stats = w.stats;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Deterministic whole-cluster simulator for the QuorumKV Raft core"};
  uint64_t seeds = 1;
  uint64_t seed_start = 1;
  std::optional<uint64_t> seed;
  int nodes = 0;
  std::string faults = "all";
  uint64_t steps = SimOptions().steps;
  std::string bug = "none";
  std::string read_mode = "mixed";
  std::string early_apply = "mixed";
  std::string coalesce_appends = "mixed";
  std::string early_messages = "mixed";
  bool verbose = false;
  bool expect_violation = false;
  bool no_core_invariants = false;
  bool check_determinism = false;
  uint64_t max_failures = 20;

  app.add_option("--seeds", seeds, "number of seeds to run")->check(CLI::PositiveNumber);
  app.add_option("--seed-start", seed_start, "first seed");
  app.add_option("--seed", seed, "run exactly this seed (replay)");
  app.add_option("--nodes", nodes, "founding voters: 3, 5, 7, or 0 to rotate by seed")
      ->check(CLI::IsMember({0, 3, 5, 7}));
  app.add_option("--faults", faults, "fault classes to inject")
      ->check(CLI::IsMember({"none", "net", "crash", "all"}));
  app.add_option("--steps", steps, "events per seed in the fault phase")
      ->check(CLI::PositiveNumber);
  app.add_option("--bug", bug, "break the core on purpose (the oracles must notice)")
      ->check(CLI::IsMember({"none", "commit-old-term", "vote-without-log-check"}));
  app.add_option("--read-mode", read_mode, "read mode of the core; mixed draws one per seed")
      ->check(CLI::IsMember({"readindex", "lease", "mixed"}));
  app.add_option("--early-apply", early_apply,
                 "asynchronous seeds apply durable committed entries before the sync: "
                 "on, off, or mixed (odd seeds)")
      ->check(CLI::IsMember({"on", "off", "mixed"}));
  app.add_option("--coalesce-appends", coalesce_appends,
                 "leaders build one MsgApp per follower per Ready (Config::coalesce_appends): "
                 "on, off, or mixed (seeds with seed/2 odd)")
      ->check(CLI::IsMember({"on", "off", "mixed"}));
  app.add_option("--early-messages", early_messages,
                 "asynchronous seeds send a leader's appends of new entries while its Ready "
                 "is persisted (raft::Node::take_early_messages): on, off, or mixed (seeds with "
                 "seed/4 odd)")
      ->check(CLI::IsMember({"on", "off", "mixed"}));
  app.add_flag("--verbose,-v", verbose, "print a trace of every event (use with --seed)");
  app.add_flag("--expect-violation", expect_violation,
               "succeed iff some seed violates a safety oracle; stop at the first one");
  std::vector<std::string> expect_texts;
  app.add_option("--expect-text", expect_texts,
                 "with --expect-violation: only violations whose text contains one of these "
                 "count (repeatable)");
  bool no_fork = false;
  uint64_t jobs = 1;
  app.add_option("--jobs,-j", jobs, "seeds run in parallel (child processes)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--no-fork", no_fork,
               "run every seed in this process (default with several seeds: one child "
               "process per seed, so that a CHECK failure costs one seed, not the run)");
  app.add_flag("--no-core-invariants", no_core_invariants,
               "do not run the core's own invariant checker after every input");
  app.add_flag("--check-determinism", check_determinism,
               "run every seed twice and compare the event fingerprints; only a "
               "difference fails the run (oracle violations are printed)");
  app.add_option("--max-failures", max_failures, "stop after this many failing seeds (0: never)");
  CLI11_PARSE(app, argc, argv);

  SimOptions base;
  base.faults = faults == "none"    ? qkv::sim::kFaultNone
                : faults == "net"   ? qkv::sim::kFaultNet
                : faults == "crash" ? qkv::sim::kFaultCrash
                                    : qkv::sim::kFaultAll;
  base.steps = steps;
  base.bug = bug == "commit-old-term"          ? Bug::kCommitOldTerm
             : bug == "vote-without-log-check" ? Bug::kVoteWithoutLogCheck
                                               : Bug::kNone;
  base.read_mode = read_mode == "readindex" ? ReadModeChoice::kReadIndex
                   : read_mode == "lease"   ? ReadModeChoice::kLease
                                            : ReadModeChoice::kMixed;
  base.core_invariants = !no_core_invariants;
  auto choice = [](const std::string& v) {
    return v == "on"    ? qkv::sim::EarlyApplyChoice::kOn
           : v == "off" ? qkv::sim::EarlyApplyChoice::kOff
                        : qkv::sim::EarlyApplyChoice::kMixed;
  };
  base.early_apply = choice(early_apply);
  base.coalesce_appends = choice(coalesce_appends);
  base.early_messages = choice(early_messages);
  if (seed) {
    seed_start = *seed;
    seeds = 1;
  }
  if (verbose && seeds > 1) {
    std::cerr << "--verbose prints a trace per event; use it with --seed\n";
    return 2;
  }

  g_flush_trace = verbose;
  signal(SIGABRT, on_fatal_signal);
  signal(SIGSEGV, on_fatal_signal);
  signal(SIGFPE, on_fatal_signal);

  static const int kRotation[3] = {3, 5, 7};
  qkv::sim::SimStats total;
  uint64_t total_steps = 0, total_ticks = 0, ran = 0;
  uint64_t failures = 0, safety = 0, expected = 0, liveness = 0, deaths = 0, nondeterministic = 0;
  std::vector<uint64_t> failed_seeds;
  auto options = [&](uint64_t s) {
    SimOptions o = base;
    o.seed = s;
    o.nodes = nodes != 0 ? nodes : kRotation[s % 3];
    o.trace = verbose ? &std::cout : nullptr;
    snprintf(g_crash_note, sizeof(g_crash_note),
             "\nraft-sim: process died in seed %llu (a CHECK in the core or the simulator).\n"
             "  replay: %s\n",
             static_cast<unsigned long long>(s), replay_command(o).c_str());
    return o;
  };
  // Accounts for one seed's result, in seed order. Returns true to stop.
  auto report = [&](const SimOptions& o, const SimResult& r) {
    ran++;
    total_steps += r.steps;
    total_ticks += r.ticks;
    total.add(r.stats);
    if (seeds == 1) {
      std::cout << "seed " << o.seed << " nodes=" << o.nodes << " params: " << r.params << "\n"
                << "  steps=" << r.steps << " ticks=" << r.ticks
                << " liveness_ticks=" << r.liveness_ticks << " fingerprint=" << std::hex
                << r.fingerprint << std::dec << "\n  " << r.stats.to_string() << "\n";
    }
    if (!r.violation) return false;
    failures++;
    failed_seeds.push_back(o.seed);
    // A process death (a CHECK or an exception in the core) fails the seed
    // but is not an oracle's finding: --expect-violation does not count it.
    bool counts = false;
    if (r.message.rfind("process died", 0) == 0) {
      deaths++;
    } else if (r.message.rfind("simulator: the seed does not", 0) == 0) {
      nondeterministic++;
    } else if (r.liveness) {
      liveness++;
    } else {
      safety++;
      counts = expect_texts.empty();
      for (const auto& t : expect_texts) counts = counts || r.message.find(t) != std::string::npos;
      if (counts) expected++;
    }
    std::cout << "FAIL seed=" << o.seed << " nodes=" << o.nodes << ": " << r.message << "\n"
              << "  replay: " << replay_command(o) << "\n";
    std::cout.flush();
    if (expect_violation && counts) return true;
    if (max_failures != 0 && failures >= max_failures) {
      std::cout << "stopping after " << failures << " failing seeds\n";
      return true;
    }
    return false;
  };

  auto t0 = std::chrono::steady_clock::now();
  const uint64_t end = seed_start + seeds;
  if (seeds == 1 || no_fork) {
    for (uint64_t s = seed_start; s < end; s++) {
      SimOptions o = options(s);
      if (report(o, run_checked(o, check_determinism))) break;
    }
  } else {
    // Up to `jobs` children at once; results are reported in seed order.
    std::map<pid_t, std::pair<uint64_t, Child>> running;
    std::map<uint64_t, SimResult> finished;
    uint64_t next = seed_start, next_report = seed_start;
    bool stop = false;
    while (true) {
      while (!stop && next < end && running.size() < jobs) {
        Child c = spawn(options(next), check_determinism);
        running[c.pid] = {next, c};
        next++;
      }
      if (running.empty()) break;
      int status = 0;
      pid_t pid = waitpid(-1, &status, 0);
      auto it = running.find(pid);
      if (pid < 0 || it == running.end()) continue;
      finished[it->second.first] = collect(it->second.second, status);
      running.erase(it);
      for (auto f = finished.find(next_report); !stop && f != finished.end();
           f = finished.find(next_report)) {
        stop = report(options(next_report), f->second);
        finished.erase(f);
        next_report++;
      }
      if (stop) {
        for (auto& [child, entry] : running) kill(child, SIGKILL);
      }
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string list;
  for (size_t i = 0; i < failed_seeds.size(); i++) {
    list += (i ? "," : "") + std::to_string(failed_seeds[i]);
  }
  std::cout << "seeds=" << ran << " steps=" << total_steps << " ticks=" << total_ticks
            << " violations=" << failures << " (safety " << safety << ", liveness " << liveness
            << ", died " << deaths << ") failed_seeds=" << (list.empty() ? "-" : list)
            << " time=" << secs << "s\n";
  if (seeds > 1) std::cout << "coverage: " << total.to_string() << "\n";
  if (expect_violation) {
    if (expected > 0) {
      std::cout << "expected safety violation found after " << ran << " seeds\n";
      return 0;
    }
    std::cout << "expected a safety violation, none found in " << ran << " seeds\n";
    return 1;
  }
  if (check_determinism) {
    std::cout << "determinism: " << nondeterministic << " of " << ran
              << " seeds did not replay identically\n";
    return nondeterministic == 0 ? 0 : 1;
  }
  return failures == 0 ? 0 : 1;
}
