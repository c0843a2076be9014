// raft::Node: a deterministic Raft state machine with no I/O, no threads and
// no clock (DESIGN.md, "The Raft core contract"). The owner drives it:
//
//   inputs   tick()                 advance logical time by one tick
//            step(msg)              deliver a message from a peer
//            propose(data)          append a command (leader only)
//            propose_conf_change()  change membership (leader only)
//            read_index(ctx)        ask for a linearizable read point
//            transfer_leader(id)    hand leadership to a voter
//   outputs  ready()                what must be done, as one Ready value
//            advance()              acknowledge that the Ready was handled
//
// Handling a Ready, in this order:
//   1. Send `messages` (may go at once, in parallel with step 2).
//   2. Persist `snapshot`, then `entries`, then `hard_state` (one sync).
//   3. Send `messages_after_persist` — only after step 2 is durable. Any of
//      them whose term is below term() by then may be dropped: the node has
//      moved on (step() may run while a Ready is persisted) and they are
//      stale; the receivers would ignore them or treat them as delayed.
//   4. Apply `snapshot` and `committed_entries` to the state machine, in order.
//      Serve `read_states` once the applied index reaches their index.
//   5. Call advance(). Exactly one Ready is outstanding at a time.
//
// Committed entries already durable on this node need not wait for step 2:
// those of a Ready below entries.front() (every entry not yet persisted is
// in `entries`) may be applied at once, and while the Ready is outstanding
// durable_committed() hands out entries committed since, so that the
// application does not hold them behind the next sync (thesis §10.2.1: the
// leader's own write overlaps replication; an entry committed by the
// followers is applied as soon as it is durable here too).
//
// Not thread-safe: one owner thread per Node.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "raft/raft.pb.h"
#include "raft/storage.h"

namespace qkv::raft {

using raftpb::ConfChange;
using raftpb::Message;
using raftpb::MessageType;

constexpr uint64_t kNone = 0;  // no node; node ids start at 1

enum class Role { kFollower, kPreCandidate, kCandidate, kLeader };
const char* role_name(Role r);

enum class ReadMode {
  kReadIndex,  // confirm leadership with a heartbeat round per batch of reads
  kLease,      // trust a lease timed in ticks; requires check_quorum
};

struct Config {
  uint64_t id = kNone;     // this node, non-zero
  uint64_t group = 0;      // the Raft group this node belongs to
  LogStorage* storage = nullptr;  // not owned; must outlive the Node
  uint64_t applied = 0;    // last index the state machine has applied (on restart)

  // A follower campaigns after a random timeout in
  // [election_timeout_ticks, 2 * election_timeout_ticks). Must exceed
  // heartbeat_interval_ticks.
  int election_timeout_ticks = 10;
  int heartbeat_interval_ticks = 1;

  bool pre_vote = true;      // thesis §9.6
  bool check_quorum = true;  // a leader without a quorum steps down (thesis §6.2)
  ReadMode read_mode = ReadMode::kReadIndex;
  // Lease reads end this many ticks before the followers' election timeout
  // could let another leader be elected (clock drift allowance).
  int lease_margin_ticks = 1;

  uint64_t msg_bytes_max = 1 << 20;            // entry bytes per MSG_APP
  uint64_t inflight_msgs_max = 256;            // MSG_APPs in flight per follower
  uint64_t uncommitted_bytes_max = 64 << 20;   // entry_bytes() of uncommitted entries; 0 = unlimited
  uint64_t committed_bytes_per_ready_max = 64 << 20;
  uint64_t snapshot_chunk_bytes = 1 << 20;     // InstallSnapshot chunk size
  uint64_t snapshot_inflight_chunks_max = 4;

  uint64_t random_seed = 1;  // the only source of randomness

  // A leader builds the MsgApp for new proposals once, at the next ready(),
  // for every proposal since, instead of one MsgApp per follower per
  // proposal (entry batching; the messages leave at ready() either way).
  bool coalesce_appends = false;

  // Test-only switches that break Raft on purpose, so that the simulator's
  // oracles can be shown to catch real bugs. Never set outside tests.
  bool TEST_commit_old_term_by_counting = false;  // breaks Raft paper §5.4.2
  bool TEST_vote_without_log_check = false;       // breaks §5.4.1

  Status validate() const;
};

struct SoftState {
  uint64_t lead = kNone;
  Role role = Role::kFollower;
  bool operator==(const SoftState&) const = default;
};

struct ReadState {
  uint64_t index = 0;    // serve the read once applied >= index
  std::string context;   // the ctx passed to read_index()
};

struct Ready {
  std::optional<SoftState> soft_state;     // set when leader or role changed
  std::optional<HardState> hard_state;     // set when it must be persisted
  std::optional<Snapshot> snapshot;        // a snapshot received from the leader
  std::vector<Entry> entries;              // to append to the log (after snapshot)
  std::vector<Entry> committed_entries;    // to apply, in order
  std::vector<Message> messages;           // may be sent before persisting
  std::vector<Message> messages_after_persist;  // send only after persisting
  std::vector<ReadState> read_states;
  // Set when applying this Ready (its snapshot or a conf change among its
  // committed entries) changes the membership: the membership afterwards.
  // Persist it atomically with the applied index; restart with it.
  std::optional<ConfState> conf_state;
  // True if hard_state, snapshot or entries need an fsync before step 3.
  bool must_sync = false;

  bool empty() const;
};

struct ProgressStatus {
  uint64_t match = 0;
  uint64_t next = 0;
  std::string state;  // probe, replicate, snapshot
  bool learner = false;
  bool recent_active = false;
};

struct NodeStatus {
  uint64_t id = kNone;
  uint64_t group = 0;
  HardState hard_state;
  SoftState soft_state;
  uint64_t applied = 0;
  uint64_t last_index = 0;
  uint64_t lead_transferee = kNone;
  ConfState conf_state;
  std::map<uint64_t, ProgressStatus> progress;  // filled on the leader only
};

struct Proposed {
  uint64_t index = 0;
  uint64_t term = 0;
};

class Raft;

// The snapshot every founding member of a new group starts from: index 1,
// term 1, the initial membership and no data. Save it in each member's storage
// (MemoryStorage::apply_snapshot) before creating the nodes. A node joining
// later starts with an empty storage and receives a snapshot from the leader.
Snapshot bootstrap_snapshot(uint64_t group, const ConfState& initial);

class Node {
 public:
  // Builds a node from the storage's saved state. A new group is bootstrapped
  // by saving its initial ConfState in the storage before creating the nodes.
  static Result<std::unique_ptr<Node>> create(const Config& config);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  void tick();
  // Raft::tick_timeouts and Raft::advance_clock: the two halves of tick().
  void tick_timeouts();
  void advance_clock(uint64_t ticks);
  // Delivers a message from a peer. kStaleMessage if it is for another group.
  Status step(const Message& m);
  // kNotLeader (message names the leader if known), kNoLeader,
  // kTransferInProgress, kUncommittedLimit.
  Result<Proposed> propose(std::string data);
  // As propose(), plus kConfChangeInProgress while an earlier change is not
  // applied, and kInvalidArgument for a change that is not allowed now.
  Result<Proposed> propose_conf_change(const ConfChange& cc);
  // A ReadState with this ctx appears in a later Ready, unless the request is
  // lost (no leader, leader change): callers time out and retry. ctx must be
  // unique among outstanding requests.
  Status read_index(std::string ctx);
  Status transfer_leader(uint64_t transferee);
  // Starts an election now (used by tests and by operators). Ignored in
  // lease read mode while a leader's lease is in force: campaigning would
  // break this node's promise not to vote, on which the lease rests.
  void campaign();
  // The transport tells the core a peer is unreachable (pauses replication to it).
  void report_unreachable(uint64_t id);

  bool has_ready() const;
  Ready ready();
  void advance();
  // Between ready() and advance(): entries committed and durable in this
  // node's log (persisted by an earlier advance(); index <= the persisted
  // index) that no Ready has handed out, in order, at most
  // committed_bytes_per_ready_max bytes. Apply them at once, after the
  // outstanding Ready's own committed_entries (which come first, and must
  // then be applied before step 2 ends: they are durable whenever anything
  // here is). advance() acknowledges them with the Ready. Empty when no Ready
  // is outstanding, while a snapshot is pending or the Ready hands out conf
  // changes, and up to (not including) a conf-change entry: conf changes
  // reach the application only in a Ready, with its conf_state (decision 3).
  std::vector<Entry> durable_committed();
  // Between ready() and advance(): the messages that may leave before any
  // sync, produced since the outstanding Ready was taken, that the next
  // ready() would put in `messages` (a leader's appends of entries proposed
  // since, heartbeats). Send them at once: a leader's new entries reach the
  // followers while its own disk is still busy with the Ready before
  // (thesis §10.2.1, across Readies). Their entries stay in the log for the
  // next Ready to persist. Empty when no Ready is outstanding, while it holds
  // a snapshot, and when the term or vote differs from the last durable one
  // (nothing leaves before a new term or vote is durable).
  std::vector<Message> take_early_messages();

  NodeStatus status() const;
  ConfState conf_state() const;
  uint64_t id() const;
  uint64_t group() const;
  uint64_t leader() const;
  Role role() const;
  uint64_t term() const;
  // Entries [lo, hi) of this node's log, unstable ones included (a leader's
  // log before they are persisted): kCompacted below the first index.
  Result<std::vector<Entry>> entries(uint64_t lo, uint64_t hi, uint64_t bytes_max) const;
  uint64_t first_index() const;
  uint64_t last_index() const;

  Raft& TEST_raft() { return *raft_; }

 private:
  struct Handed;
  explicit Node(std::unique_ptr<Raft> raft);
  std::unique_ptr<Raft> raft_;
  std::unique_ptr<Handed> handed_;
  HardState prev_hard_state_;
  SoftState prev_soft_state_;
};

}  // namespace qkv::raft
