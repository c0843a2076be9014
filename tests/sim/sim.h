// The deterministic whole-cluster Raft simulator (DESIGN.md, "Testing
// strategy" point 2; STYLE.md point 9).
//
// One seed is one run: a cluster of 3, 5 or 7 voters of raft::Node on one
// thread, a simulated network (delay, reordering, drop, duplication,
// partitions, one-way cuts, clogged links), crashes that lose everything not
// persisted (also in the middle of handling a Ready), paused nodes, client
// writes and linearizable reads, leader transfers, membership changes and
// snapshots with compaction. Every parameter of a run is drawn from a PRNG
// seeded with the seed, so a seed replays exactly.
//
// A run has two phases. The fault phase executes `steps` events with faults
// injected; the liveness phase then heals every fault, restarts crashed nodes
// and requires, within a bounded number of ticks, a leader, a fresh write
// committed and applied, and every member converged on the same state.
// Safety oracles (oracle.h) run after every step of both phases.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

namespace qkv::sim {

enum FaultBits : unsigned {
  kFaultNone = 0,
  kFaultNet = 1,    // drop, duplicate, long delays, partitions, clogging
  kFaultCrash = 2,  // crashes and restarts, crashes mid-Ready, paused nodes
  kFaultAll = 3,
};

enum class Bug { kNone, kCommitOldTerm, kVoteWithoutLogCheck };
enum class ReadModeChoice { kReadIndex, kLease, kMixed };
// Asynchronous seeds only: whether nodes apply committed entries that are
// durable on their own disk while a Ready is being persisted (as
// cluster::Node does: Node::durable_committed() and a Ready's committed
// entries below its new ones). kMixed: odd seeds do (chosen without drawing
// from the seed's PRNG, so `off` replays the schedules of earlier versions).
enum class EarlyApplyChoice { kOff, kOn, kMixed };
// Config::coalesce_appends (one MsgApp per follower per Ready, as
// cluster::Node runs the core). kMixed: seeds with seed/2 odd (chosen
// without drawing from the PRNG, so `off` replays earlier schedules).
using CoalesceChoice = EarlyApplyChoice;
// Asynchronous seeds send a node's early messages (raft::Node::
// take_early_messages) while its Ready is persisted, as cluster::Node does.
// kMixed: seeds with seed/4 odd.
using EarlyMessagesChoice = EarlyApplyChoice;

struct SimOptions {
  uint64_t seed = 1;
  int nodes = 3;  // founding voters: 3, 5 or 7
  unsigned faults = kFaultAll;
  uint64_t steps = 20000;  // events executed in the fault phase
  Bug bug = Bug::kNone;
  ReadModeChoice read_mode = ReadModeChoice::kMixed;
  EarlyApplyChoice early_apply = EarlyApplyChoice::kMixed;
  CoalesceChoice coalesce_appends = CoalesceChoice::kMixed;
  EarlyMessagesChoice early_messages = EarlyMessagesChoice::kMixed;
  // Also run the core's own invariant checker (Raft::check_invariants) after
  // every input. A failure there aborts the process.
  bool core_invariants = true;
  // Non-null: write a human-readable trace of every event here.
  std::ostream* trace = nullptr;
};

// Counters of what a run exercised (coverage), summed over seeds.
struct SimStats {
  uint64_t leaders = 0;  // distinct (term, leader) pairs
  uint64_t max_term = 0;
  uint64_t writes_proposed = 0;  // accepted by a leader
  uint64_t writes_acked = 0;
  uint64_t propose_refused = 0;  // not leader, transfer, uncommitted cap...
  uint64_t uncommitted_limit = 0;
  uint64_t reads_issued = 0;
  uint64_t reads_served = 0;
  uint64_t lease_reads_served = 0;
  uint64_t msgs_sent = 0;
  uint64_t msgs_dropped = 0;
  uint64_t msgs_duplicated = 0;
  uint64_t snap_chunks_sent = 0;
  uint64_t snapshots_created = 0;
  uint64_t snapshots_installed = 0;
  uint64_t crashes = 0;
  uint64_t crashes_mid_ready = 0;
  uint64_t early_messages = 0;  // sent by take_early_messages()
  uint64_t early_applies = 0;  // entries applied before their Ready's sync returned
  uint64_t pauses = 0;
  uint64_t partitions = 0;
  uint64_t transfers = 0;
  uint64_t conf_changes_proposed = 0;
  uint64_t conf_changes_applied = 0;  // distinct conf entries applied
  uint64_t joint_configs = 0;         // conf entries that entered a joint config
  uint64_t nodes_added = 0;
  uint64_t nodes_decommissioned = 0;
  uint64_t liveness_ticks_max = 0;

  void add(const SimStats& o);
  std::string to_string() const;
};

struct SimResult {
  bool violation = false;
  bool liveness = false;  // the violation is of liveness, not safety
  std::string message;    // the violation
  std::string params;     // the parameters drawn for this seed
  uint64_t steps = 0;     // events executed (both phases)
  uint64_t ticks = 0;     // simulated ticks
  uint64_t liveness_ticks = 0;
  uint64_t fingerprint = 0;  // hash of the whole event sequence (replay check)
  SimStats stats;
};

// Runs one seed to completion (or to the first violation).
SimResult run_seed(const SimOptions& opt);

const char* bug_name(Bug b);
const char* faults_name(unsigned f);
const char* read_mode_name(ReadModeChoice r);
const char* early_apply_name(EarlyApplyChoice e);

}  // namespace qkv::sim
