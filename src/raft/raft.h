// The Raft state machine behind raft::Node. Internal to src/raft: the public
// API is node.h. One step function per role (STYLE.md point 3).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "raft/confchange.h"
#include "raft/log.h"
#include "raft/node.h"
#include "raft/read_only.h"
#include "raft/tracker.h"

namespace qkv::raft {

using raftpb::EntryType;

enum class CampaignType { kPreElection, kElection, kTransfer };

// The campaign kind travels in the context of vote requests: a transfer
// campaign (TimeoutNow) bypasses the followers' leader lease.
inline constexpr const char* kCampaignTransfer = "CampaignTransfer";

// A small deterministic PRNG (SplitMix64): the core's only randomness.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  uint64_t uniform(uint64_t n) { return n == 0 ? 0 : next() % n; }

 private:
  uint64_t state_;
};

class Raft {
 public:
  explicit Raft(const Config& c);

  // ---- inputs ----
  // One tick: the lease clock moves by one and the timeouts run.
  void tick();
  // The timeouts of one tick (heartbeat, election, CheckQuorum), without
  // moving the lease clock: for a driver that keeps the lease clock on
  // real time with advance_clock().
  void tick_timeouts();
  // Moves the lease clock (the tick counter that stamps heartbeats and
  // times a leader's lease) by `ticks` without running timeouts: ticks that
  // passed while the node could not run them (paused, its thread busy).
  // The lease then ends in time, while the election and CheckQuorum timers,
  // which count ticks run, do not fire on a backlog of messages the node
  // has not read yet.
  void advance_clock(uint64_t ticks);
  Status step(const Message& m);
  Result<Proposed> propose(std::string data, EntryType type);
  Result<Proposed> propose_conf_change(const ConfChange& cc);
  Status read_index(std::string ctx);
  Status transfer_leader(uint64_t transferee);
  void hup(CampaignType t);
  // An election started by the owner (operator or test).
  Status campaign_now();

  // ---- for Node (Ready / advance) ----
  std::vector<Message> take_messages() { return std::exchange(msgs_, {}); }
  std::vector<Message> take_messages_after_persist() {
    return std::exchange(msgs_after_persist_, {});
  }
  std::vector<ReadState> take_read_states() { return std::exchange(read_states_, {}); }
  bool has_messages() const {
    return !msgs_.empty() || !msgs_after_persist_.empty() || appends_pending_;
  }
  // With Config::coalesce_appends: sends the appends that proposals since
  // the last call deferred (Node::ready() calls it first).
  void flush_appends();
  bool has_read_states() const { return !read_states_.empty(); }
  HardState hard_state() const;
  SoftState soft_state() const { return SoftState{lead_, role_}; }
  // Called by advance(): entries up to (index, term) and the snapshot are
  // durable; committed entries up to applied_index were applied.
  void on_persisted(uint64_t last_index, uint64_t last_term, uint64_t snapshot_index);
  // conf_changes: the ENTRY_CONF_CHANGE entries among those applied;
  // data_bytes: the payload bytes of all of them.
  void on_applied(const std::vector<Entry>& conf_changes, uint64_t data_bytes,
                  uint64_t applied_index);
  // The membership once these conf-change entries are applied (a dry run).
  ConfState conf_state_after(const std::vector<Entry>& conf_changes) const;

  // ---- state (read by Node and tests) ----
  const Config& config() const { return cfg_; }
  uint64_t id() const { return id_; }
  uint64_t group() const { return group_; }
  uint64_t term() const { return term_; }
  uint64_t vote() const { return vote_; }
  uint64_t lead() const { return lead_; }
  Role role() const { return role_; }
  uint64_t lead_transferee() const { return lead_transferee_; }
  bool is_learner() const { return is_learner_; }
  const RaftLog& log() const { return log_; }
  RaftLog& log() { return log_; }
  const ProgressTracker& tracker() const { return trk_; }
  int randomized_election_timeout() const { return randomized_election_timeout_; }
  int election_elapsed() const { return election_elapsed_; }
  uint64_t uncommitted_bytes() const { return uncommitted_bytes_; }
  size_t pending_read_count() const { return read_only_.pending() + pending_reads_.size(); }
  // Whether a lease read could be served now (only meaningful on a leader).
  bool lease_valid() const;

  // Invariants that must hold after every step; CHECK-fails otherwise.
  void check_invariants() const;

 private:
  using StepFn = void (Raft::*)(const Message&);

  // Roles.
  void become_follower(uint64_t term, uint64_t lead);
  void become_pre_candidate();
  void become_candidate();
  void become_leader();
  void reset(uint64_t term);
  void reset_randomized_election_timeout();
  void step_leader(const Message& m);
  void step_candidate(const Message& m);
  void step_follower(const Message& m);
  void tick_election();
  void tick_heartbeat();

  // Elections.
  void campaign(CampaignType t);
  VoteResult poll(uint64_t id, MessageType t, bool granted);
  bool promotable() const;
  bool in_lease() const;
  void handle_vote_request(const Message& m);
  void learn_commit(uint64_t commit, uint64_t commit_term);

  // Replication.
  void send(Message m);
  Proposed append_entry(Entry e);
  void bcast_append();
  void bcast_commit();
  // A MSG_APP to `to` after the entry at (prev, prev_term), with our commit index.
  Message append_to(uint64_t to, uint64_t prev, uint64_t prev_term) const;
  bool maybe_send_append(uint64_t to, bool send_if_empty);
  bool maybe_send_snapshot(uint64_t to, Progress& pr);
  void send_snapshot_chunks(uint64_t to, Progress& pr);
  void bcast_heartbeat();
  void send_heartbeat(uint64_t to, const std::string& ctx);
  bool maybe_commit();
  void on_commit_advanced();
  void handle_append_entries(const Message& m);
  void handle_heartbeat(const Message& m);
  void handle_snapshot_chunk(const Message& m);
  void handle_append_response(const Message& m, Progress& pr);
  void handle_heartbeat_response(const Message& m, Progress& pr);
  void handle_snapshot_response(const Message& m, Progress& pr);
  bool restore(const Snapshot& s);

  // Reads.
  void handle_read_index(const Message& m);
  void send_read_index_response(const Message& m);
  void respond_read_index(const Message& req, uint64_t index);
  bool committed_entry_in_current_term() const;

  // Leader transfer.
  void handle_transfer_leader(uint64_t transferee);
  void send_timeout_now(uint64_t to);
  void abort_leader_transfer() { lead_transferee_ = kNone; }

  // Membership.
  void apply_conf_change(const ConfChange& cc);
  void switch_to_config(ConfChangeResult r);
  Status check_conf_change(const ConfChange& cc) const;

  // Uncommitted log cap.
  bool increase_uncommitted(const Entry& e);
  void reduce_uncommitted(uint64_t data_bytes);

  Config cfg_;
  uint64_t id_;
  uint64_t group_;
  uint64_t term_ = 0;
  uint64_t vote_ = kNone;
  uint64_t lead_ = kNone;
  Role role_ = Role::kFollower;
  StepFn step_fn_ = nullptr;
  bool is_learner_ = false;
  RaftLog log_;
  ProgressTracker trk_;
  std::vector<Message> msgs_;
  std::vector<Message> msgs_after_persist_;
  bool appends_pending_ = false;  // proposals not yet sent (coalesce_appends)
  std::vector<ReadState> read_states_;
  ReadOnly read_only_;
  std::vector<Message> pending_reads_;  // reads waiting for a commit in this term
  uint64_t lead_transferee_ = kNone;
  // Entries up to this index may hold a conf change not yet applied; no new
  // change is accepted until applied passes it.
  uint64_t pending_conf_index_ = 0;
  // The log index the tracker's configuration reflects: the last conf change
  // applied, or the snapshot restored.
  uint64_t config_index_ = 0;
  uint64_t uncommitted_bytes_ = 0;
  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_election_timeout_ = 0;
  uint64_t tick_count_ = 0;
  // Once TimeoutNow was sent in this term, the followers' promise not to vote
  // is void (a transfer campaign bypasses it): no more lease reads.
  bool lease_disabled_ = false;
  Rng rng_;

  // A snapshot being received in chunks.
  struct IncomingSnapshot {
    raftpb::SnapshotMetadata meta;
    uint64_t size = 0;
    std::string data;
  };
  std::optional<IncomingSnapshot> incoming_snapshot_;
  // The snapshot being sent to each follower in kSnapshot state.
  std::map<uint64_t, std::shared_ptr<const Snapshot>> outgoing_snapshots_;
  // Heartbeat responses seen without snapshot progress, per follower.
  std::map<uint64_t, int> snapshot_stalls_;
};

}  // namespace qkv::raft
