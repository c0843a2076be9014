// The scenario environment: a cluster of raft::Node instances on one thread,
// each with its own MemoryStorage and a toy state machine, joined by a
// simulated network that holds every sent message until a script delivers or
// drops it. Commands (README.md) drive it and return the text they print.
//
// After every command the environment checks Raft invariants (election safety,
// vote and term monotonicity, state machine safety, leader completeness) and
// appends "INVARIANT VIOLATION" lines to the output if one is broken, so a
// script that blesses a violation is visibly wrong. Read states are checked
// for linearizability: a read may not miss a write applied before it began.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "raft/node.h"

namespace qkv::scenario {

// A parsed command line: the command name, positional words and key=value
// options (values keep their parentheses, e.g. "(1,2,3)").
struct Command {
  std::string name;
  std::vector<std::string> args;
  std::map<std::string, std::string> opts;
};

class Env {
 public:
  Env() = default;
  // Runs one command line; returns its output (never empty: "ok" if silent).
  std::string run(const std::string& line);
  // Commands that were malformed (unknown name, bad argument). A script with
  // one fails even when its expected output is being rewritten.
  int script_errors() const { return script_errors_; }

 private:
  // The durable and volatile halves of one cluster member.
  struct Peer {
    uint64_t id = 0;
    raft::Config config;  // storage and applied are filled in at (re)start
    std::unique_ptr<raft::MemoryStorage> storage;
    std::unique_ptr<raft::Node> node;  // null while crashed
    // The toy state machine: the data of every applied normal entry, with its
    // index. It lives in memory: a restart rebuilds it from the storage's
    // snapshot and the core hands out the committed entries after it again,
    // conf changes included (the storage's ConfState stays the snapshot's).
    // With save_conf_state the state machine is durable instead: a restart
    // resumes at `applied`, and the membership is saved with
    // MemoryStorage::set_conf_state after each applied change.
    uint64_t applied = 0;
    bool save_conf_state = false;
    std::vector<std::pair<uint64_t, std::string>> sm;
    // Membership in effect from each index on, for snapshots at any index.
    std::map<uint64_t, raft::ConfState> conf_history;
    // What was last reported for this node, to print changes only.
    raft::Role shown_role = raft::Role::kFollower;
    uint64_t shown_term = 0;
    uint64_t shown_lead = 0;
    // Last hard state persisted, to check it only moves forward.
    raft::HardState persisted;
  };

  // Command handlers; each writes to out_ and may throw Error.
  void cmd_add_nodes(const Command& c);
  void cmd_campaign(const Command& c);
  void cmd_tick(const Command& c, int ticks_kind);
  void cmd_advance_clock(const Command& c);
  void cmd_propose(const Command& c);
  void cmd_propose_conf_change(const Command& c);
  void cmd_read_index(const Command& c);
  void cmd_transfer_leader(const Command& c);
  void cmd_report_unreachable(const Command& c);
  void cmd_process_ready(const Command& c);
  void cmd_deliver_msgs(const Command& c);
  void cmd_stabilize(const Command& c);
  void cmd_partition(const Command& c);
  void cmd_heal(const Command& c);
  void cmd_crash(const Command& c);
  void cmd_restart(const Command& c);
  void cmd_compact(const Command& c);
  void cmd_raft_state(const Command& c);
  void cmd_raft_log(const Command& c);
  void cmd_status(const Command& c);
  void cmd_state_machine(const Command& c);
  void cmd_log_level(const Command& c);

  Peer& peer(uint64_t id);
  Peer& live_peer(uint64_t id);
  uint64_t parse_id(const std::string& s) const;
  std::vector<uint64_t> ids_or_all(const std::vector<std::string>& words) const;
  void start(Peer& p);

  // Handles one Ready of p in the documented order; prints it.
  void handle_ready(Peer& p);
  // Delivers (or drops) queued messages addressed to `to` that match the
  // filter; returns how many were taken off the network.
  size_t deliver_to(uint64_t to, bool drop, const std::string& type, int64_t count);
  bool connected(uint64_t a, uint64_t b) const;

  // Prints "state N: ROLE term=T lead=L" if the role, term or leader changed.
  void note_state(Peer& p, const std::string& indent);
  void check_invariants();
  void violation(const std::string& what);

  std::ostringstream out_;
  std::map<uint64_t, Peer> peers_;
  std::deque<raft::Message> net_;
  // Partition: node id -> component; nodes absent from the map share
  // component 0. Empty when the network is healed.
  std::map<uint64_t, int> component_;
  bool quiet_ = false;
  int script_errors_ = 0;
  std::vector<std::string> violations_;

  // Invariant bookkeeping across the whole run.
  std::map<uint64_t, uint64_t> leader_of_term_;
  struct Applied {
    uint64_t term = 0;
    std::string desc;        // fmt_entry of the entry applied at this index
    uint64_t seen_term = 0;  // lowest node term at which any node applied it
  };
  std::map<uint64_t, Applied> applied_;
  // Linearizable reads: for each outstanding read ctx, the highest index any
  // node had applied (so possibly acknowledged to a client) when the read was
  // requested. The read index handed out must not be below it.
  std::map<std::string, uint64_t> read_floor_;
};

}  // namespace qkv::scenario
