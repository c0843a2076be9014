// cluster::Node: one quorumkv process. It hosts Raft groups (group 1 today;
// every structure is keyed by group id for sharding later), drives each
// group's Ready loop, and owns the node's WAL (LogStore), applied state
// (through each group's GroupStateMachine) and peer transport.
//
// The Ready loop (DESIGN.md, node.h; docs/ARCHITECTURE.md decision 22):
//   io thread:      ready() of every group; send `messages` at once; stage
//                   what must be written (entries, snapshot, term, vote)
//   persist thread: one WAL write + fdatasync for every group's batch
//   io thread, meanwhile: apply the committed entries already durable here
//                   and answer their proposers; a Ready that writes nothing
//                   (at most a new commit index) is finished at once
//   io thread, after the sync: send `messages_after_persist`; apply the
//                   rest; answer proposals and reads; advance(); loop
// While a batch is being persisted the io thread keeps stepping messages,
// taking proposals and ticking, so the next batch grows (group commit).
// A node applies only entries durable in its own log, so its applied index
// never passes what a crash leaves of its log.
//
// Thread-safety: every public call on the io_context's thread.
#pragma once

#include <array>
#include <asio.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/status.h"
#include "net/transport.h"
#include "raft/node.h"
#include "storage/log_store.h"
#include "storage/snapshot_file.h"
#include "storage/state_store.h"

namespace qkv::cluster {

struct PeerAddress {
  std::string host;
  uint16_t port = 0;
};

struct NodeOptions {
  uint64_t id = 1;
  uint64_t cluster_id = 0;
  std::string data_dir = "./quorumkv-data";
  std::string peer_host = "127.0.0.1";
  uint16_t peer_port = 0;  // 0 picks a free port
  // Founding members (id -> peer address), this node included. Used only
  // when the data directory is new.
  std::map<uint64_t, PeerAddress> initial_members;
  // Join an existing cluster (as a learner added by an operator) instead of
  // founding one: start with an empty log and wait for the leader.
  bool join = false;

  int tick_ms = 50;
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  raft::ReadMode read_mode = raft::ReadMode::kReadIndex;
  // raft::Config::lease_margin_ticks: a lease read is served only while
  // the lease has this many ticks left (clock rate drift between nodes,
  // and the tick granularity on both sides). Lease mode needs
  // election_ticks above it (raft::Config::validate).
  int lease_margin_ticks = 2;
  // A proposal or read not done within this time fails (outcome unknown
  // for a write).
  int request_timeout_ms = 3000;
  // A Ready that stages entries for no group this node leads is synced on
  // the io thread (no hand-off to the persist thread and back: a follower's
  // sync is on the path of every commit; ARCHITECTURE decision 22).
  bool follower_sync_inline = true;
  // While its disk syncs one Ready, a leader sends the appends of entries
  // proposed since (raft::Node::take_early_messages) instead of holding them
  // for the next Ready.
  bool early_messages = true;
  // Take a snapshot and compact the log every this many applied entries.
  uint64_t snapshot_entries = 20000;
  // Raft limits (see raft::Config).
  uint64_t msg_bytes_max = 1 << 20;
  uint64_t inflight_msgs_max = 256;
  uint64_t uncommitted_bytes_max = 64 << 20;
  uint64_t snapshot_chunk_bytes = 1 << 20;
  // raft::Config::coalesce_appends: one MsgApp per follower per Ready
  // instead of one per proposal (-13% instructions per SET on the leader,
  // bench/README.md "Pipeline").
  bool coalesce_appends = true;
  // Snapshot files (docs/ARCHITECTURE.md, "Snapshot transfer"): a node that
  // needs one pulls it in chunks of snapshot_chunk_bytes from the node that
  // sent InstallSnapshot. A request unanswered this long is sent again.
  int snapshot_fetch_timeout_ms = 5000;
  // Larger snapshots are refused by the receiver.
  uint64_t snapshot_bytes_max = 64ull << 30;
  // A file this node serves is deleted after this long without a request.
  int snapshot_idle_ms = 60000;
  // Receive snapshots at most this fast (bytes/s; 0: no limit), to spare
  // the serving node's disk and network.
  uint64_t snapshot_recv_bytes_per_sec = 0;
  // How often a transfer in progress logs its progress.
  int snapshot_progress_log_ms = 2000;
  storage::WalOptions wal;
  net::TransportOptions transport;
  // Test seam: the file system of the data directory (null: the real one).
  // Tests give an in-memory one with a crash model to cut the power.
  std::shared_ptr<storage::FileSystem> TEST_file_system;
};

// A consistent view of a group's applied state, to write a snapshot file
// from: records in strictly increasing key order.
struct SnapshotSource {
  raftpb::SnapshotMetadata meta;
  uint64_t approximate_bytes = 0;  // for progress reports (0: unknown)
  std::unique_ptr<storage::RecordSource> records;
};

// What a group's state machine does with committed entries. Implemented by
// the kv layer. Called on the io thread.
class GroupStateMachine {
 public:
  virtual ~GroupStateMachine() = default;
  // Applies committed entries in order (normal and conf-change; index
  // increasing, starting at applied_index() + 1) and makes their effects and
  // the new applied index (and `conf`, if set: the membership afterwards)
  // atomic. For each entry, appends the result for its proposer (may be
  // empty). A failure is fatal for the node.
  virtual Status apply(const std::vector<raftpb::Entry>& entries,
                       const std::optional<raftpb::ConfState>& conf,
                       std::vector<std::string>* results) = 0;
  // Replaces the whole state, atomically, with `records` (a snapshot's, as
  // open_snapshot() produced them on some replica) at `meta`.
  virtual Status restore(const raftpb::SnapshotMetadata& meta, storage::RecordSource& records) = 0;
  // Makes the applied state durable and returns its metadata: the log up to
  // its index may then be dropped.
  virtual Result<raftpb::SnapshotMetadata> persist_applied() = 0;
  // A view of the applied state as of now. Its records may be read on
  // another thread while apply() goes on.
  virtual Result<SnapshotSource> open_snapshot() = 0;
  virtual uint64_t applied_index() const = 0;
  virtual raftpb::ConfState conf_state() const = 0;
};

using StateMachineFactory =
    std::function<Result<std::unique_ptr<GroupStateMachine>>(uint64_t group)>;

struct GroupStatus {
  uint64_t group = 0;
  raft::NodeStatus raft;
  uint64_t applied = 0;
  uint64_t snapshot_index = 0;
  uint64_t first_index = 0;
  size_t pending_proposals = 0;
  size_t pending_reads = 0;
  // Ticks of the clock whose timeouts did not run (the io thread was busy
  // or the process paused for longer than a tick), since start: node-wide.
  uint64_t ticks_late = 0;
};

// Snapshot transfers of one group, for INFO and metrics.
struct SnapshotStatus {
  uint64_t group = 0;
  // Receiving (this node is behind): 0 when idle.
  uint64_t recv_source = 0;
  uint64_t recv_index = 0;
  storage::TransferProgress recv;
  // Serving a file to followers: its index (0: none), and while it is being
  // written, the progress of that.
  uint64_t send_index = 0;
  bool send_building = false;
  storage::TransferProgress send_build;
  // Since start.
  uint64_t received_total = 0;    // snapshots installed from a peer
  uint64_t recv_bytes_total = 0;  // bytes received
  uint64_t built_total = 0;       // files written for peers
  uint64_t sent_bytes_total = 0;  // bytes served
};

// Latencies for /metrics: a count per bucket (upper bounds in us; the last
// bucket has none) and their sum. Used on the io thread only.
struct LatencyHistogram {
  static constexpr std::array<uint64_t, 12> kBoundsUs{100,   250,   500,   1000,   2500,   5000,
                                                      10000, 25000, 50000, 100000, 250000, 1000000};
  std::array<uint64_t, kBoundsUs.size() + 1> counts{};
  uint64_t sum_us = 0;
  void add(std::chrono::steady_clock::duration took);
};

class Node {
 public:
  using ProposeCallback = std::function<void(Status, std::string result)>;
  using ReadCallback = std::function<void(Status)>;
  using ForwardHandler = std::function<void(uint64_t from, netpb::Forward&&)>;

  Node(asio::io_context& io, NodeOptions options, StateMachineFactory factory);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Opens the stores, recovers or bootstraps group 1, listens for peers and
  // starts ticking.
  Status start();
  // Stops ticking and closes connections. In-flight requests fail.
  void stop();

  // Proposes a command. cb runs once it is applied (with the state
  // machine's result), or fails: kNotLeader (message names the leader),
  // kNoLeader, kTimedOut (outcome unknown), kTransferInProgress, ...
  void propose(uint64_t group, std::string payload, ProposeCallback cb);
  // Linearizable read barrier: cb(OK) once the local state machine has
  // applied everything committed before the call (ReadIndex, or the lease).
  // Reads are batched: one ReadIndex round serves every read waiting.
  void read_barrier(uint64_t group, ReadCallback cb);

  // Membership and leadership (leader only; kNotLeader otherwise). Node
  // addresses travel in the change's context.
  void add_member(uint64_t group, uint64_t id, const PeerAddress& addr, bool learner,
                  ProposeCallback cb);
  void remove_member(uint64_t group, uint64_t id, ProposeCallback cb);
  Status transfer_leader(uint64_t group, uint64_t to);
  Status take_snapshot(uint64_t group);
  // The Raft log of a group on this node (a leader's includes entries not yet
  // committed): entries [lo, hi), first and last index.
  Result<std::vector<raftpb::Entry>> log_entries(uint64_t group, uint64_t lo, uint64_t hi,
                                                 uint64_t bytes_max) const;
  std::pair<uint64_t, uint64_t> log_bounds(uint64_t group) const;
  // Every member of the group (voters and learners, joint ones included).
  std::vector<uint64_t> members(uint64_t group) const;

  uint64_t id() const { return opts_.id; }
  uint64_t leader(uint64_t group) const;
  bool is_leader(uint64_t group) const;
  std::optional<PeerAddress> peer_address(uint64_t id) const;
  std::vector<GroupStatus> status() const;
  std::vector<SnapshotStatus> snapshot_status() const;
  uint16_t peer_port() const { return transport_->listen_port(); }
  net::PeerTransport& transport() { return *transport_; }
  void set_forward_handler(ForwardHandler h) { forward_handler_ = std::move(h); }
  // A fatal storage error stops the node; this says why (empty if fine).
  const std::string& fatal_error() const { return fatal_; }
  // The WAL's fdatasync latencies.
  const LatencyHistogram& fsync_latency() const { return fsync_latency_; }
  // From a proposal on this node to its apply here, for the proposals that
  // were applied (commit, the sync of both sides and the apply included).
  const LatencyHistogram& proposal_latency() const { return proposal_latency_; }
  // The WAL's counters (segments, spares). Thread-safe.
  storage::WalStats wal_stats() const;

 private:
  struct Waiter {
    uint64_t term;
    ProposeCallback cb;
    // When it was proposed: its latency, and its deadline (request_timeout_ms on).
    std::chrono::steady_clock::time_point proposed;
  };
  struct Group {
    uint64_t id = 0;
    std::unique_ptr<raft::Node> raft;
    std::unique_ptr<GroupStateMachine> sm;
    std::map<uint64_t, Waiter> waiters;  // by log index
    // Reads waiting for a ReadIndex round to be asked, asked, or applied.
    using PendingRead = std::pair<ReadCallback, std::chrono::steady_clock::time_point>;
    std::vector<PendingRead> reads_unasked;
    std::map<std::string, std::vector<PendingRead>> reads_asked;  // by ctx
    std::multimap<uint64_t, PendingRead> reads_ready;             // by read index
    uint64_t read_seq = 0;
    uint64_t last_snapshot_index = 0;
    std::optional<raft::Ready> ready;  // handed out, not advanced yet
    bool ready_writes = false;         // `ready` is staged in the WAL batch
    uint64_t ready_first_new = 0;      // index of its first entry to persist (0: none)
  };

  Status open_group(uint64_t group, bool fresh);
  void tick();
  void schedule_tick();
  // Brings raft's lease clock (raft::Node::advance_clock) up to real time:
  // the ticks since start by the clock. A leader paused (SIGSTOP, a
  // stalled VM) or whose io thread was busy for longer than a tick would
  // otherwise count its read lease in timer callbacks instead of time.
  // Timeouts (election, heartbeat, CheckQuorum) still run once per timer
  // callback (tick()): after a stall the node reads the messages waiting
  // for it before they can fire on their absence. Calls nothing back, so
  // it is safe anywhere; called by the timer and before anything that may
  // decide on a lease (a read index request, a peer message).
  void sync_clock();
  void kick();  // runs the Ready loop soon
  void run_ready_loop();
  void on_persisted(Status st);
  void finish_ready(Group& g);
  void apply_durable(Group& g, raft::Ready& rd);
  void take_read_states(Group& g, raft::Ready& rd);
  // Applies committed entries (durable here) and answers their proposers.
  void apply_entries(Group& g, const std::vector<raftpb::Entry>& ents,
                     const std::optional<raftpb::ConfState>& conf);
  void serve_reads(Group& g);
  void ask_reads(Group& g);
  void expire_requests(Group& g);
  void maybe_snapshot(Group& g);
  void on_raft_message(raftpb::Message&& m);
  // Snapshot transfer (snapshot_transfer.cc).
  struct Outgoing;
  struct Incoming;
  void on_install_snapshot(Group& g, raftpb::Message&& m);
  void on_snapshot_fetch(uint64_t from, netpb::SnapshotFetch&& f);
  void on_snapshot_data(uint64_t from, netpb::SnapshotData&& d);
  void send_fetch(Group& g, Incoming& in);
  void build_snapshot_file(Group& g, uint64_t min_index);
  void snapshot_tick();
  void log_transfer(const char* what, uint64_t gid, uint64_t index, uint64_t peer,
                    const storage::TransferProgress& p);
  Status restore_snapshot(Group& g, const raftpb::Snapshot& snap);
  Status recover_received_snapshot(Group& g, uint64_t base);
  void drop_incoming(uint64_t gid);
  std::string snapshot_dir(const char* sub) const;
  void send_all(std::vector<raftpb::Message>& msgs);
  void update_peers_from_conf(Group& g);
  void fail_node(const std::string& why);
  Status leader_error(const Group& g) const;
  // Registers the waiter of a proposal (or fails cb at once).
  void await_proposal(Group& g, Result<raft::Proposed> p, ProposeCallback cb);

  asio::io_context& io_;
  NodeOptions opts_;
  StateMachineFactory factory_;
  std::shared_ptr<storage::FileSystem> fs_;
  std::unique_ptr<storage::LogStore> log_store_;
  std::unique_ptr<net::PeerTransport> transport_;
  std::map<uint64_t, Group> groups_;
  std::map<uint64_t, PeerAddress> addresses_;
  asio::steady_timer tick_timer_;
  int64_t clock_start_us_ = 0;  // boot_us() at start: lease clock tick 0
  uint64_t clock_ticks_ = 0;    // the lease clock given to every group
  uint64_t ticks_run_ = 0;      // timer callbacks that ran the timeouts
  asio::thread_pool persist_pool_{1};
  asio::thread_pool snapshot_pool_{1};                      // writes snapshot files for peers
  std::map<uint64_t, std::unique_ptr<Outgoing>> outgoing_;  // by group
  std::map<uint64_t, std::unique_ptr<Incoming>> incoming_;  // by group
  std::map<uint64_t, SnapshotStatus> snapshot_counters_;    // by group
  uint64_t snapshot_request_seq_ = 0;
  bool persisting_ = false;
  bool kicked_ = false;
  bool stopped_ = false;
  std::string fatal_;
  ForwardHandler forward_handler_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  LatencyHistogram fsync_latency_;
  LatencyHistogram proposal_latency_;
};

// Context of a ConfChange proposed by add_member: "host:port".
std::string encode_member_context(const PeerAddress& a);
std::optional<PeerAddress> decode_member_context(std::string_view s);

}  // namespace qkv::cluster
