// WAL crash test: appends random batches for several groups (entries,
// overwrites, hard states, compactions with segment deletion, snapshot
// installs), syncs at random, injects ENOSPC, and crashes the in-memory file
// system at random points with torn writes, thousands of times. After every
// recovery it checks against an independent model that
//   - every record reported durable (its sync returned OK) survived, and
//   - what was recovered is exactly the effect of some prefix of the records
//     appended (nothing that was not written, nothing out of order).
//
//   wal-crash [--iterations N] [--seed S] [--verbose]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "storage/wal.h"

namespace qkv::storage {
namespace {

struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  uint64_t uniform(uint64_t n) { return n ? next() % n : 0; }
  bool chance(int pct) { return uniform(100) < static_cast<uint64_t>(pct); }
};

// The intended meaning of the records, written independently of the WAL.
struct ModelGroup {
  uint64_t base = 0, base_term = 0;
  bool has_base = false;
  std::vector<std::pair<uint64_t, std::string>> entries;  // (term, data), index = base+1+i
  std::optional<std::tuple<uint64_t, uint64_t, uint64_t>> hs;  // term, vote, commit
  uint64_t last() const { return base + entries.size(); }
  bool operator==(const ModelGroup&) const = default;
};
using Model = std::map<uint64_t, ModelGroup>;

struct Rec {
  RecordType type;
  uint64_t group, term, index;
  std::string data;
  uint64_t vote = 0;
};

void apply_rec(Model& m, const Rec& r) {
  ModelGroup& g = m[r.group];
  switch (r.type) {
    case RecordType::kEntry:
      if (r.index <= g.base) return;
      g.entries.resize(r.index - g.base - 1);
      g.entries.emplace_back(r.term, r.data);
      return;
    case RecordType::kHardState:
      g.hs = std::make_tuple(r.term, r.vote, r.index);
      return;
    case RecordType::kSnapshot:
      g.entries.clear();
      g.base = r.index;
      g.base_term = r.term;
      g.has_base = true;
      return;
    case RecordType::kCompact: {
      uint64_t drop = r.index - g.base;
      g.entries.erase(g.entries.begin(), g.entries.begin() + static_cast<long>(drop));
      g.base = r.index;
      g.base_term = r.term;
      g.has_base = true;
      return;
    }
  }
}

Model from_recovery(const WalRecovery& rec) {
  Model m;
  for (const auto& [id, rg] : rec.groups) {
    ModelGroup& g = m[id];
    if (rg.base) {
      g.base = rg.base->index();
      g.base_term = rg.base->term();
      g.has_base = true;
    }
    for (const auto& e : rg.entries) g.entries.emplace_back(e.term(), e.data());
    if (rg.hard_state) {
      g.hs = std::make_tuple(rg.hard_state->term(), rg.hard_state->vote(),
                             rg.hard_state->commit());
    }
  }
  return m;
}

// Groups with nothing in them compare equal to absent ones.
bool same(const Model& a, const Model& b) {
  auto empty = [](const ModelGroup& g) { return !g.has_base && g.entries.empty() && !g.hs; };
  for (const auto& [id, g] : a) {
    auto it = b.find(id);
    if (it == b.end() ? !empty(g) : !(it->second == g)) return false;
  }
  for (const auto& [id, g] : b) {
    if (!a.count(id) && !empty(g)) return false;
  }
  return true;
}

int run(uint64_t iterations, uint64_t seed, bool verbose) {
  Rng rng{seed};
  FaultInjectionFileSystem fs(seed ^ 0x5eed);
  fs.set_torn_writes(true);
  WalOptions opts;
  opts.segment_bytes_max = 2048;  // rotate often
  opts.preallocate = false;
  Model durable_base;  // state at the last successful open
  uint64_t total_records = 0, total_durable = 0, crashes = 0, nospace = 0, torn_notes = 0;
  for (uint64_t it = 0; it < iterations; it++) {
    WalRecovery rec;
    auto w = Wal::open(&fs, "/wal", opts, &rec);
    if (!w.is_ok()) {
      std::printf("FAIL iteration=%llu seed=%llu: open: %s\n", (unsigned long long)it,
                  (unsigned long long)seed, w.status().to_string().c_str());
      return 1;
    }
    Model recovered = from_recovery(rec);
    if (it > 0 && !same(recovered, durable_base)) {
      std::printf("FAIL iteration=%llu seed=%llu: recovered state differs from the model\n",
                  (unsigned long long)it, (unsigned long long)seed);
      return 1;
    }
    Model model = recovered;
    std::unique_ptr<Wal> wal = std::move(w).value();
    std::vector<Rec> history;
    size_t durable_records = 0;
    std::vector<std::pair<uint64_t, size_t>> pending;  // (seq, records through it)
    int ops = 1 + static_cast<int>(rng.uniform(12));
    for (int op = 0; op < ops; op++) {
      if (rng.chance(8)) {
        fs.set_space_limit_bytes(rng.uniform(8000));
      } else {
        fs.set_space_limit_bytes(UINT64_MAX);
      }
      WalBatch batch;
      std::vector<Rec> recs;
      Model scratch = model;
      int n = 1 + static_cast<int>(rng.uniform(4));
      std::optional<std::pair<uint64_t, uint64_t>> release;
      for (int k = 0; k < n; k++) {
        uint64_t g = 1 + rng.uniform(3);
        ModelGroup& mg = scratch[g];
        uint64_t term = 1 + it / 10;
        uint64_t kind = rng.uniform(100);
        Rec r{RecordType::kEntry, g, term, 0, {}};
        if (kind < 60) {
          uint64_t idx = mg.last() + 1;
          if (!mg.entries.empty() && rng.chance(15)) idx = mg.base + 1 + rng.uniform(mg.entries.size());
          r.index = idx;
          r.data = std::string(rng.uniform(300), static_cast<char>('a' + rng.uniform(26)));
          raftpb::Entry e;
          e.set_index(idx);
          e.set_term(term);
          e.set_data(r.data);
          batch.add_entry(g, e);
        } else if (kind < 80) {
          r.type = RecordType::kHardState;
          r.index = rng.uniform(mg.last() + 1);
          r.vote = rng.uniform(5);
          raftpb::HardState hs;
          hs.set_term(term);
          hs.set_vote(r.vote);
          hs.set_commit(r.index);
          batch.add_hard_state(g, hs);
        } else if (kind < 95) {
          if (mg.entries.empty()) continue;
          r.type = RecordType::kCompact;
          r.index = mg.base + 1 + rng.uniform(mg.entries.size());
          r.term = mg.entries[r.index - mg.base - 1].first;
          raftpb::SnapshotMetadata meta;
          meta.set_index(r.index);
          meta.set_term(r.term);
          meta.mutable_conf_state()->add_voters(1);
          batch.add_compact(g, meta);
          release = std::make_pair(g, r.index);
        } else {
          r.type = RecordType::kSnapshot;
          r.index = mg.last() + 1 + rng.uniform(20);
          raftpb::SnapshotMetadata meta;
          meta.set_index(r.index);
          meta.set_term(term);
          meta.mutable_conf_state()->add_voters(1);
          batch.add_snapshot(g, meta);
        }
        apply_rec(scratch, r);
        recs.push_back(std::move(r));
      }
      if (recs.empty()) continue;
      auto seq = wal->append(batch);
      if (!seq.is_ok()) {
        if (seq.code() != Code::kNoSpace) {
          std::printf("FAIL iteration=%llu seed=%llu: append: %s\n", (unsigned long long)it,
                      (unsigned long long)seed, seq.status().to_string().c_str());
          return 1;
        }
        nospace++;
        continue;  // nothing of the batch was written
      }
      model = std::move(scratch);
      for (auto& r : recs) history.push_back(std::move(r));
      total_records += recs.size();
      pending.emplace_back(*seq, history.size());
      if (release) (void)wal->release(release->first, release->second);
      if (rng.chance(40)) {
        fs.set_space_limit_bytes(UINT64_MAX);
        Status s = wal->sync_to(*seq);
        if (!s.is_ok()) {
          std::printf("FAIL iteration=%llu seed=%llu: sync: %s\n", (unsigned long long)it,
                      (unsigned long long)seed, s.to_string().c_str());
          return 1;
        }
        for (auto& [sq, count] : pending) {
          if (sq <= *seq) durable_records = std::max(durable_records, count);
        }
      }
    }
    wal.reset();
    fs.set_space_limit_bytes(UINT64_MAX);
    fs.crash();
    crashes++;
    total_durable += durable_records;
    // Recover and find the prefix of history that was kept.
    WalRecovery rec2;
    auto w2 = Wal::open(&fs, "/wal", opts, &rec2);
    if (!w2.is_ok()) {
      std::printf("FAIL iteration=%llu seed=%llu: reopen: %s\n", (unsigned long long)it,
                  (unsigned long long)seed, w2.status().to_string().c_str());
      if (verbose) {
        for (const auto& r : history) {
          std::printf("  appended type=%d group=%llu term=%llu index=%llu\n", int(r.type),
                      (unsigned long long)r.group, (unsigned long long)r.term,
                      (unsigned long long)r.index);
        }
        std::printf("  durable records: %zu\n", durable_records);
        auto names = fs.list_dir("/wal");
        for (const auto& n : *names) std::printf("  segment %s\n", n.c_str());
      }
      return 1;
    }
    torn_notes += rec2.notes.size();
    Model got = from_recovery(rec2);
    Model replay = recovered;
    std::optional<size_t> kept;
    for (size_t k = 0; k <= history.size(); k++) {
      if (k > 0) apply_rec(replay, history[k - 1]);
      if (k >= durable_records && same(replay, got)) {
        kept = k;
        break;
      }
    }
    if (!kept) {
      std::printf("FAIL iteration=%llu seed=%llu: recovered state is not a prefix holding all "
                  "%zu durable records (of %zu appended)\n",
                  (unsigned long long)it, (unsigned long long)seed, durable_records,
                  history.size());
      return 1;
    }
    if (verbose) {
      std::printf("iteration %llu: appended %zu records, durable %zu, kept %zu\n",
                  (unsigned long long)it, history.size(), durable_records, *kept);
    }
    durable_base = got;
  }
  std::printf("wal-crash: iterations=%llu crashes=%llu records=%llu durable=%llu enospc=%llu "
              "recovery_notes=%llu violations=0\n",
              (unsigned long long)iterations, (unsigned long long)crashes,
              (unsigned long long)total_records, (unsigned long long)total_durable,
              (unsigned long long)nospace, (unsigned long long)torn_notes);
  return 0;
}

}  // namespace
}  // namespace qkv::storage

int main(int argc, char** argv) {
  uint64_t iterations = 3000, seed = 1;
  bool verbose = false;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--iterations" && i + 1 < argc) {
      iterations = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--seed" && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--verbose") {
      verbose = true;
    } else {
      std::fprintf(stderr, "usage: wal-crash [--iterations N] [--seed S] [--verbose]\n");
      return 2;
    }
  }
  return qkv::storage::run(iterations, seed, verbose);
}
