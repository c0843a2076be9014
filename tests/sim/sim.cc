#include "sim/sim.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <sstream>
#include <tuple>
#include <vector>

#include "raft/node.h"
#include "raft/raft.h"  // Node::TEST_raft().check_invariants()
#include "raft/storage.h"
#include "sim/oracle.h"
#include "sim/rng.h"
#include "sim/state_machine.h"

namespace qkv::sim {

using raft::Role;
using raftpb::ConfChange;
using raftpb::ConfState;
using raftpb::Entry;
using raftpb::Message;
using raftpb::Snapshot;

const char* bug_name(Bug b) {
  switch (b) {
    case Bug::kNone:
      return "none";
    case Bug::kCommitOldTerm:
      return "commit-old-term";
    case Bug::kVoteWithoutLogCheck:
      return "vote-without-log-check";
  }
  return "?";
}

const char* faults_name(unsigned f) {
  switch (f) {
    case kFaultNone:
      return "none";
    case kFaultNet:
      return "net";
    case kFaultCrash:
      return "crash";
    default:
      return "all";
  }
}

const char* early_apply_name(EarlyApplyChoice e) {
  switch (e) {
    case EarlyApplyChoice::kOff:
      return "off";
    case EarlyApplyChoice::kOn:
      return "on";
    default:
      return "mixed";
  }
}

const char* read_mode_name(ReadModeChoice r) {
  switch (r) {
    case ReadModeChoice::kReadIndex:
      return "readindex";
    case ReadModeChoice::kLease:
      return "lease";
    case ReadModeChoice::kMixed:
      return "mixed";
  }
  return "?";
}

void SimStats::add(const SimStats& o) {
  leaders += o.leaders;
  max_term = std::max(max_term, o.max_term);
  writes_proposed += o.writes_proposed;
  writes_acked += o.writes_acked;
  propose_refused += o.propose_refused;
  uncommitted_limit += o.uncommitted_limit;
  reads_issued += o.reads_issued;
  reads_served += o.reads_served;
  lease_reads_served += o.lease_reads_served;
  msgs_sent += o.msgs_sent;
  msgs_dropped += o.msgs_dropped;
  msgs_duplicated += o.msgs_duplicated;
  snap_chunks_sent += o.snap_chunks_sent;
  snapshots_created += o.snapshots_created;
  snapshots_installed += o.snapshots_installed;
  crashes += o.crashes;
  crashes_mid_ready += o.crashes_mid_ready;
  early_messages += o.early_messages;
  early_applies += o.early_applies;
  pauses += o.pauses;
  partitions += o.partitions;
  transfers += o.transfers;
  conf_changes_proposed += o.conf_changes_proposed;
  conf_changes_applied += o.conf_changes_applied;
  joint_configs += o.joint_configs;
  nodes_added += o.nodes_added;
  nodes_decommissioned += o.nodes_decommissioned;
  liveness_ticks_max = std::max(liveness_ticks_max, o.liveness_ticks_max);
}

std::string SimStats::to_string() const {
  std::ostringstream o;
  o << "leaders=" << leaders << " max_term=" << max_term << " writes=" << writes_proposed << "/"
    << writes_acked << "(proposed/acked) refused=" << propose_refused
    << " uncommitted_cap=" << uncommitted_limit << " reads=" << reads_issued << "/" << reads_served
    << "(issued/served) lease_reads=" << lease_reads_served << " msgs=" << msgs_sent
    << " dropped=" << msgs_dropped << " duplicated=" << msgs_duplicated
    << " snap_chunks=" << snap_chunks_sent << " snapshots=" << snapshots_created << "/"
    << snapshots_installed << "(taken/installed) crashes=" << crashes
    << " mid_ready_crashes=" << crashes_mid_ready << " early_applies=" << early_applies
    << " early_messages=" << early_messages
    << " pauses=" << pauses
    << " partitions=" << partitions << " transfers=" << transfers
    << " conf_changes=" << conf_changes_proposed << "/" << conf_changes_applied
    << "(proposed/applied) joint=" << joint_configs << " nodes_added=" << nodes_added
    << " decommissioned=" << nodes_decommissioned << " liveness_ticks_max=" << liveness_ticks_max;
  return o.str();
}

namespace {

constexpr uint64_t kTickUnits = 10;  // simulated time units per tick
constexpr uint64_t kGroup = 7;       // the simulated Raft group's id
constexpr uint64_t kSpareIds = 6;    // node ids available for membership changes
constexpr uint64_t kMaxId = 7 + kSpareIds;

// ---------------------------------------------------------------------------
// Parameters drawn per seed ("swarm testing": each seed runs a different mix
// of features and rates, so rare combinations show up across seeds).

struct Params {
  // Raft configuration.
  int election_timeout = 10;
  int heartbeat = 1;
  bool pre_vote = true;
  bool check_quorum = true;
  raft::ReadMode read_mode = raft::ReadMode::kReadIndex;
  int lease_margin = 1;
  uint64_t msg_bytes_max = 1 << 20;
  uint64_t inflight_msgs_max = 256;
  uint64_t uncommitted_bytes_max = 0;
  uint64_t committed_bytes_per_ready_max = 64 << 20;
  uint64_t snapshot_chunk_bytes = 64;
  uint64_t snapshot_inflight_chunks_max = 4;
  // Ready handling: synchronous (within the step that produced it) or
  // asynchronous (persisted after a simulated disk latency, while the node
  // keeps stepping other inputs).
  bool async_ready = false;
  bool early_apply = false;  // set from SimOptions, not drawn (sim.h)
  bool coalesce_appends = false;  // likewise
  bool early_messages = false;    // likewise
  uint64_t disk_delay_max = 5;
  // Network (time units; a tick is kTickUnits).
  uint64_t delay_max = 10;
  // Links deliver in order (like TCP) unless this seed reorders messages.
  bool reorder = false;
  double p_drop = 0, p_dup = 0, p_long_delay = 0, p_net_change = 0;
  // Crashes.
  double p_crash = 0, p_pause = 0, p_ready_crash = 0;
  double p_kill_new_leader = 0;  // crash a node shortly after it becomes leader
  uint64_t down_ticks_max = 20;
  // Workload.
  double p_write = 0.5, p_read = 0.2, p_transfer = 0, p_conf = 0, p_campaign = 0;
  uint64_t write_burst_max = 2;
  uint64_t keys = 8;
  uint64_t payload_max = 16;
  // Snapshots: taken when applied - snapshot index >= threshold.
  uint64_t snap_threshold = 30;
  uint64_t snap_keep_max = 10;
  double p_snap_forced = 0;

  std::string describe() const {
    std::ostringstream o;
    o << "et=" << election_timeout << " hb=" << heartbeat << " prevote=" << pre_vote
      << " checkquorum=" << check_quorum
      << " read=" << (read_mode == raft::ReadMode::kLease ? "lease" : "readindex")
      << " lease_margin=" << lease_margin << " msg_bytes=" << msg_bytes_max
      << " inflight=" << inflight_msgs_max << " uncommitted_max=" << uncommitted_bytes_max
      << " committed_per_ready=" << committed_bytes_per_ready_max
      << " chunk=" << snapshot_chunk_bytes << " chunk_inflight=" << snapshot_inflight_chunks_max
      << " async_ready=" << async_ready << " early_apply=" << early_apply
      << " coalesce_appends=" << coalesce_appends << " early_messages=" << early_messages
      << " disk_delay=" << disk_delay_max
      << " delay_max=" << delay_max << " reorder=" << reorder << " drop=" << p_drop
      << " dup=" << p_dup << " long_delay=" << p_long_delay << " net_change=" << p_net_change
      << " crash=" << p_crash << " kill_new_leader=" << p_kill_new_leader << " pause=" << p_pause
      << " ready_crash=" << p_ready_crash << " down_max=" << down_ticks_max << " write=" << p_write
      << "x" << write_burst_max << " read=" << p_read << " transfer=" << p_transfer
      << " conf=" << p_conf << " campaign=" << p_campaign << " keys=" << keys
      << " payload=" << payload_max << " snap_threshold=" << snap_threshold
      << " snap_keep=" << snap_keep_max << " snap_forced=" << p_snap_forced;
    return o.str();
  }
};

template <typename T>
T pick_of(SimRng& r, std::initializer_list<T> l) {
  return *(l.begin() + r.below(l.size()));
}

Params sample_params(SimRng& r, const SimOptions& o) {
  Params p;
  p.election_timeout = static_cast<int>(r.range(5, 12));
  p.heartbeat = static_cast<int>(r.range(1, std::max(1, p.election_timeout / 4)));
  bool lease = o.read_mode == ReadModeChoice::kLease ||
               (o.read_mode == ReadModeChoice::kMixed && r.chance(0.4));
  p.read_mode = lease ? raft::ReadMode::kLease : raft::ReadMode::kReadIndex;
  p.check_quorum = lease || r.chance(0.75);
  p.pre_vote = r.chance(0.8);
  p.lease_margin = static_cast<int>(r.range(0, 2));
  // Small messages and windows split a new leader's catch-up into many
  // round trips: that is where old-term entries get acknowledged without the
  // leader's own entry (Raft paper Figure 8).
  p.msg_bytes_max =
      r.chance(0.5) ? pick_of<uint64_t>(r, {1, 64}) : pick_of<uint64_t>(r, {256, 4096, 1 << 20});
  p.inflight_msgs_max =
      r.chance(0.5) ? pick_of<uint64_t>(r, {1, 2}) : pick_of<uint64_t>(r, {4, 256});
  p.uncommitted_bytes_max = pick_of<uint64_t>(r, {0, 600, 4096, 64 << 20});
  p.committed_bytes_per_ready_max = pick_of<uint64_t>(r, {1, 200, 64 << 20});
  p.snapshot_chunk_bytes = pick_of<uint64_t>(r, {16, 64, 200, 1024});
  p.snapshot_inflight_chunks_max = pick_of<uint64_t>(r, {1, 2, 4});
  p.async_ready = r.chance(0.5);
  p.disk_delay_max = r.range(1, 15);
  p.delay_max = r.range(2, 25);
  if (o.faults & kFaultNet) {
    p.p_drop = r.chance(0.8) ? r.real(0, 0.1) : 0;
    p.p_dup = r.chance(0.6) ? r.real(0, 0.05) : 0;
    p.p_long_delay = r.chance(0.6) ? r.real(0, 0.05) : 0;
    p.p_net_change = r.real(0.01, 0.06);
    p.reorder = r.chance(0.7);
  }
  if (o.faults & kFaultCrash) {
    p.p_crash = r.real(0.003, 0.03);
    // A paused leader's clock stops: lease reads assume bounded clock drift,
    // so pauses are only injected into seeds that do not use leases.
    p.p_pause = lease ? 0 : (r.chance(0.5) ? r.real(0, 0.01) : 0);
    p.p_ready_crash = r.chance(0.7) ? r.real(0, 0.01) : 0;
    p.down_ticks_max = r.range(2, 5 * static_cast<uint64_t>(p.election_timeout));
    p.p_kill_new_leader = r.chance(0.4) ? r.real(0.05, 0.5) : 0;
  }
  p.p_write = r.real(0.1, 0.9);
  p.write_burst_max = r.range(1, 4);
  p.p_read = r.real(0.05, 0.6);
  p.p_transfer = r.chance(0.7) ? r.real(0, 0.03) : 0;
  p.p_conf = r.chance(0.75) ? r.real(0.005, 0.06) : 0;
  p.p_campaign = r.chance(0.3) ? r.real(0, 0.01) : 0;
  p.keys = r.range(1, 20);
  p.payload_max = r.range(0, 40);
  p.snap_threshold = pick_of<uint64_t>(r, {3, 10, 30, 100, 1000});
  p.snap_keep_max = r.range(0, 30);
  p.p_snap_forced = r.chance(0.5) ? r.real(0, 0.02) : 0;
  p.early_apply = p.async_ready && (o.early_apply == EarlyApplyChoice::kOn ||
                                    (o.early_apply == EarlyApplyChoice::kMixed && o.seed % 2 == 1));
  p.coalesce_appends = o.coalesce_appends == CoalesceChoice::kOn ||
                       (o.coalesce_appends == CoalesceChoice::kMixed && (o.seed / 2) % 2 == 1);
  p.early_messages =
      p.async_ready && (o.early_messages == EarlyMessagesChoice::kOn ||
                        (o.early_messages == EarlyMessagesChoice::kMixed && (o.seed / 4) % 2 == 1));
  return p;
}

// ---------------------------------------------------------------------------
// Events

enum class EvKind : uint8_t {
  kTick,          // a node's clock ticks
  kDeliver,       // a message arrives
  kDriver,        // once per tick: workload, faults, liveness checks
  kRestart,       // a crashed node comes back
  kPersist,       // the disk finished writing a node's outstanding Ready
  kResume,        // a paused node continues
  kDecommission,  // a removed node is shut down for good
  kUnreachable,   // the transport reports a peer unreachable to a node
  kClog,          // a link starts holding messages
  kUnclog,        // a clogged link releases them
  kCrash,         // a node crashes (scheduled by the new-leader nemesis)
};

struct Event {
  uint64_t time = 0;
  uint64_t seq = 0;
  EvKind kind = EvKind::kTick;
  uint64_t node = 0;
  uint64_t incarnation = 0;
  uint64_t a = 0, b = 0;
  std::shared_ptr<const Message> msg;
};

struct EventAfter {
  bool operator()(const Event& x, const Event& y) const {
    return std::tie(x.time, x.seq) > std::tie(y.time, y.seq);
  }
};

// ---------------------------------------------------------------------------
// Nodes and clients

struct Proposal {
  uint64_t term = 0;
  uint64_t write_id = 0;
  uint64_t key = 0;
  bool probe = false;
};

struct Ack {
  uint64_t write_id = 0;
  uint64_t index = 0;
  uint64_t term = 0;
  uint64_t hash = 0;
};

enum class ReadPhase { kWaitState, kWaitApply, kDone };

struct Read {
  uint64_t node = 0;
  uint64_t incarnation = 0;
  uint64_t key = 0;
  uint64_t issued_step = 0;
  uint64_t min_index = 0;    // commit index known anywhere when issued
  uint64_t acked_index = 0;  // index of the last write to `key` acked before issue
  uint64_t acked_write = 0;
  uint64_t read_index = 0;
  ReadPhase phase = ReadPhase::kWaitState;
};

struct SimNode {
  uint64_t id = 0;
  std::unique_ptr<raft::MemoryStorage> disk;  // the durable state: survives crashes
  raftpb::HardState disk_hs;                  // mirror of the durable hard state
  uint64_t commit_checked = 0;                // durable log recorded up to here (oracle)
  uint64_t mem_commit_checked = 0;            // in-memory commit recorded up to here
  std::unique_ptr<raft::Node> node;           // null while down
  StateMachine sm;                            // volatile
  bool up = false;
  bool paused = false;
  bool decommissioned = false;
  bool decommission_scheduled = false;
  bool was_member = false;
  uint64_t incarnation = 0;
  // The Ready being handled (async mode: between ready() and advance()).
  std::optional<raft::Ready> inflight;
  int crash_at = 0;  // crash point chosen for the inflight Ready
  uint64_t early_conf = 0;  // last conf change of `inflight` applied before its sync
  uint64_t leader_check_term = 0;
  std::map<uint64_t, Proposal> proposals;  // by log index
  std::vector<uint64_t> waiting_reads;     // read ids waiting for the apply index
  std::vector<Event> deferred;             // events held while paused
  std::string conf;                        // conf_string of the config after the last advance()
};

std::string describe(const Message& m) {
  std::ostringstream o;
  const std::string& name = raftpb::MessageType_Name(m.type());
  o << (name.rfind("MSG_", 0) == 0 ? name.substr(4) : name) << " " << m.from() << "->" << m.to()
    << " t" << m.term();
  if (m.index() || m.log_term()) o << " i=" << m.index() << " lt=" << m.log_term();
  if (m.entries_size()) {
    o << " ents=[" << m.entries(0).index() << ".." << m.entries(m.entries_size() - 1).index()
      << "]";
  }
  if (m.commit()) o << " c=" << m.commit();
  if (m.reject()) o << " REJECT hint=" << m.reject_hint();
  if (!m.context().empty()) o << " ctx=" << m.context();
  if (m.type() == raftpb::MSG_SNAP || m.type() == raftpb::MSG_SNAP_RESP) {
    o << " snap=(" << m.snapshot().index() << "," << m.snapshot().term()
      << ") off=" << m.snapshot_offset() << " size=" << m.snapshot_size()
      << " chunk=" << m.snapshot_chunk().size();
  }
  return o.str();
}

std::string describe_entry(const Entry& e) {
  std::ostringstream o;
  o << "(" << e.index() << "," << e.term();
  if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
    ConfChange cc;
    if (cc.ParseFromString(e.data())) {
      o << ",conf:";
      if (cc.changes_size() == 0) o << "leave-joint";
      for (const auto& c : cc.changes()) {
        o << (c.type() == raftpb::CONF_ADD_VOTER     ? "+v"
              : c.type() == raftpb::CONF_ADD_LEARNER ? "+l"
                                                     : "-")
          << c.node_id();
      }
      if (cc.transition() != raftpb::TRANSITION_AUTO) {
        o << "/" << raftpb::ConfChangeTransition_Name(cc.transition());
      }
    }
  } else if (e.data().empty()) {
    o << ",noop";
  } else if (auto w = decode_write(e.data())) {
    o << ",w" << w->id << ":k" << w->key;
  }
  o << ")";
  return o.str();
}

bool conf_has(const ConfState& cs, uint64_t id) {
  auto in = [id](const auto& r) { return std::find(r.begin(), r.end(), id) != r.end(); };
  return in(cs.voters()) || in(cs.learners()) || in(cs.voters_outgoing()) || in(cs.learners_next());
}

// ---------------------------------------------------------------------------
// The cluster

// Formats a trace line only when tracing (--verbose): free otherwise.
#define SIM_TRACE(...)                  \
  do {                                  \
    if (opt_.trace) trace(__VA_ARGS__); \
  } while (0)

class Cluster {
 public:
  explicit Cluster(const SimOptions& opt)
      : opt_(opt), rng_(opt.seed), params_(sample_params(rng_, opt)), oracle_(ConfState()) {}

  SimResult run();

 private:
  enum class Phase { kFault, kLiveness, kDone };

  template <typename... A>
  void trace(const A&... a) {
    *opt_.trace << "[" << steps_ << " t=" << now_ / kTickUnits << "." << now_ % kTickUnits << "] ";
    (*opt_.trace << ... << a);
    *opt_.trace << '\n';
  }

  void fail(const std::string& what) {
    if (!oracle_.failed()) SIM_TRACE("VIOLATION: ", what);
    oracle_.fail(what);
  }

  void schedule(Event e) {
    e.seq = seq_++;
    queue_.push(std::move(e));
  }
  void schedule_at(uint64_t time, EvKind kind, uint64_t node = 0, uint64_t inc = 0, uint64_t a = 0,
                   uint64_t b = 0) {
    Event e;
    e.time = time;
    e.kind = kind;
    e.node = node;
    e.incarnation = inc;
    e.a = a;
    e.b = b;
    schedule(std::move(e));
  }

  // ---- setup ----
  void init();
  raft::Config node_config(SimNode& n);
  void start_node(SimNode& n);
  SimNode* add_node();

  // ---- event handlers ----
  void dispatch(Event& ev);
  void on_tick(const Event& ev);
  void on_deliver(Event& ev);
  void on_persist(Event& ev);
  void on_resume(SimNode& n);

  // ---- node plumbing ----
  void after_input(SimNode& n);
  void drive_ready(SimNode& n);
  void begin_ready(SimNode& n);
  void finish_ready(SimNode& n);
  void apply_ready(SimNode& n, const raft::Ready& rd, uint64_t& last_conf);
  void post_advance(SimNode& n, const raft::Ready& rd, uint64_t last_conf);
  void maybe_snapshot(SimNode& n, bool forced);
  void crash(SimNode& n, const char* why, bool restart = true);
  void send(SimNode& from, Message m);
  uint64_t sample_delay();
  void membership_update(uint64_t index, const ConfState& cs);
  bool removal_durable() const;

  // ---- clients ----
  void client_write();
  void client_read();
  void on_client_apply(SimNode& n, const Entry& e);
  void apply_durable(SimNode& n, const std::vector<Entry>& ents, const char* how);
  void on_read_state(SimNode& n, const raft::ReadState& rs);
  void serve_reads(SimNode& n);
  void transfer();
  void conf_change();
  void propose_conf_change(SimNode& leader, const ConfChange& cc);

  // ---- faults ----
  void driver();
  void net_fault();
  void heal_network();
  void crash_some_node();
  void pause_some_node();

  // ---- liveness ----
  void enter_liveness();
  void liveness_driver();
  std::string cluster_report();

  SimNode* leader();
  SimNode* random_up_node();
  SimNode* find(uint64_t id) {
    auto it = nodes_.find(id);
    return it == nodes_.end() ? nullptr : &it->second;
  }
  std::vector<uint64_t> network_ids() const {
    std::vector<uint64_t> v;
    for (const auto& [id, n] : nodes_) {
      if (!n.decommissioned) v.push_back(id);
    }
    return v;
  }

  SimOptions opt_;
  SimRng rng_;
  Params params_;
  Oracle oracle_;
  SimStats stats_;
  Phase phase_ = Phase::kFault;

  std::priority_queue<Event, std::vector<Event>, EventAfter> queue_;
  uint64_t seq_ = 0;
  uint64_t now_ = 0;
  uint64_t steps_ = 0;
  uint64_t fingerprint_ = 0;

  std::map<uint64_t, SimNode> nodes_;
  uint64_t next_id_ = 0;

  // Network state: cut links drop, clogged links hold.
  bool cut_[kMaxId + 1][kMaxId + 1] = {};
  bool clog_[kMaxId + 1][kMaxId + 1] = {};
  uint64_t fifo_[kMaxId + 1][kMaxId + 1] = {};  // last delivery time per link
  std::map<std::pair<uint64_t, uint64_t>, std::vector<std::shared_ptr<const Message>>> held_;
  uint64_t storm_until_tick_ = 0;  // heavy packet loss until then

  // Membership as last applied anywhere (for decommissioning removed nodes).
  uint64_t latest_conf_index_ = 0;
  ConfState latest_conf_;
  std::set<uint64_t> conf_entries_seen_;
  std::set<uint64_t> joint_seen_;

  // Clients.
  uint64_t write_seq_ = 0;
  uint64_t read_seq_ = 0;
  std::vector<Ack> acks_;
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> key_acked_;  // key -> (index, write id)
  uint64_t max_acked_index_ = 0;
  std::map<uint64_t, Read> reads_;

  // Liveness phase.
  uint64_t live_start_tick_ = 0;
  uint64_t live_bound_ticks_ = 0;  // without progress
  static constexpr uint64_t kLivenessCapTicks = 5000;
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> live_progress_;  // id -> (applied, log)
  uint64_t live_progress_tick_ = 0;
  bool probe_acked_ = false;
  uint64_t probe_index_ = 0;
  uint64_t probe_node_ = 0, probe_inc_ = 0, probe_tick_ = 0;
  uint64_t liveness_ticks_ = 0;
};

// ---------------------------------------------------------------------------
// Setup

void Cluster::init() {
  ConfState boot;
  for (int i = 1; i <= opt_.nodes; i++) boot.add_voters(static_cast<uint64_t>(i));
  oracle_ = Oracle(boot);
  latest_conf_ = boot;
  latest_conf_index_ = 1;
  SIM_TRACE("seed ", opt_.seed, " nodes=", opt_.nodes, " faults=", faults_name(opt_.faults),
            " bug=", bug_name(opt_.bug), " params: ", params_.describe());
  for (uint64_t id = 1; id <= static_cast<uint64_t>(opt_.nodes); id++) {
    SimNode& n = nodes_[id];
    n.id = id;
    n.disk = std::make_unique<raft::MemoryStorage>();
    Status st = n.disk->apply_snapshot(raft::bootstrap_snapshot(kGroup, boot));
    QKV_CHECK(st.is_ok()) << st.to_string();
    n.was_member = true;
    start_node(n);
  }
  next_id_ = static_cast<uint64_t>(opt_.nodes) + 1;
  schedule_at(kTickUnits, EvKind::kDriver);
}

raft::Config Cluster::node_config(SimNode& n) {
  raft::Config c;
  c.id = n.id;
  c.group = kGroup;
  c.storage = n.disk.get();
  c.applied = n.sm.applied();
  c.coalesce_appends = params_.coalesce_appends;
  c.election_timeout_ticks = params_.election_timeout;
  c.heartbeat_interval_ticks = params_.heartbeat;
  c.pre_vote = params_.pre_vote;
  c.check_quorum = params_.check_quorum;
  c.read_mode = params_.read_mode;
  c.lease_margin_ticks = params_.lease_margin;
  c.msg_bytes_max = params_.msg_bytes_max;
  c.inflight_msgs_max = params_.inflight_msgs_max;
  c.uncommitted_bytes_max = params_.uncommitted_bytes_max;
  c.committed_bytes_per_ready_max = params_.committed_bytes_per_ready_max;
  c.snapshot_chunk_bytes = params_.snapshot_chunk_bytes;
  c.snapshot_inflight_chunks_max = params_.snapshot_inflight_chunks_max;
  c.random_seed = rng_.next();
  c.TEST_commit_old_term_by_counting = opt_.bug == Bug::kCommitOldTerm;
  c.TEST_vote_without_log_check = opt_.bug == Bug::kVoteWithoutLogCheck;
  return c;
}

// Boots (or reboots) a node from its disk: the state machine is rebuilt from
// the durable snapshot; the core replays the committed log after it.
void Cluster::start_node(SimNode& n) {
  auto snap = n.disk->snapshot();
  QKV_CHECK(snap.is_ok()) << snap.status().to_string();
  if (auto err = n.sm.restore(**snap)) {
    fail("node " + std::to_string(n.id) + " cannot restore its own snapshot: " + *err);
    return;
  }
  oracle_.on_restore(n.id, (*snap)->metadata(), n.sm.chain());
  // As cluster::Node::open_group: with early applies the state machine (here
  // its snapshot) may be ahead of the durable commit index, which is volatile
  // in Raft; everything applied was committed and is in the log.
  if (raft::HardState hs = n.disk->initial_state().hard_state; hs.commit() < n.sm.applied()) {
    QKV_CHECK_LE(n.sm.applied(), n.disk->last_index()) << "applied index past the log";
    hs.set_commit(n.sm.applied());
    n.disk->set_hard_state(hs);
  }
  auto created = raft::Node::create(node_config(n));
  if (!created.is_ok()) {
    fail("Node::create failed for node " + std::to_string(n.id) + ": " +
         created.status().to_string());
    return;
  }
  n.node = std::move(created).value();
  n.up = true;
  n.paused = false;
  n.incarnation++;
  n.inflight.reset();
  n.crash_at = 0;
  n.leader_check_term = 0;
  n.disk_hs = n.disk->initial_state().hard_state;
  n.mem_commit_checked = 0;
  n.conf = conf_string(n.node->conf_state());
  SIM_TRACE("n", n.id, " start (incarnation ", n.incarnation, ") applied=", n.sm.applied(), " ",
            conf_string(n.disk->initial_state().conf_state), " hs=(t", n.disk_hs.term(), " v",
            n.disk_hs.vote(), " c", n.disk_hs.commit(), ") log=[", n.disk->first_index(), "..",
            n.disk->last_index(), "]");
  schedule_at(now_ + rng_.range(1, kTickUnits), EvKind::kTick, n.id, n.incarnation);
  after_input(n);
}

SimNode* Cluster::add_node() {
  if (next_id_ > static_cast<uint64_t>(opt_.nodes) + kSpareIds) return nullptr;
  uint64_t id = next_id_++;
  SimNode& n = nodes_[id];
  n.id = id;
  n.disk = std::make_unique<raft::MemoryStorage>();  // empty: gets a snapshot from the leader
  stats_.nodes_added++;
  SIM_TRACE("n", id, " created with an empty disk");
  start_node(n);
  return &n;
}

// ---------------------------------------------------------------------------
// Events

SimResult Cluster::run() {
  init();
  live_bound_ticks_ = 200 + 40 * static_cast<uint64_t>(params_.election_timeout);
  while (!oracle_.failed() && phase_ != Phase::kDone) {
    if (phase_ == Phase::kFault && steps_ >= opt_.steps) enter_liveness();
    if (oracle_.failed()) break;
    if (queue_.empty()) {
      fail("simulator: no more events");
      break;
    }
    Event ev = queue_.top();
    queue_.pop();
    now_ = ev.time;
    steps_++;
    fingerprint_ = hash_combine(fingerprint_, (ev.time << 8) ^ static_cast<uint64_t>(ev.kind));
    fingerprint_ = hash_combine(fingerprint_, (ev.node << 32) ^ ev.a);
    dispatch(ev);
  }
  SimResult r;
  r.violation = oracle_.failed();
  r.message = oracle_.violation();
  r.liveness = r.violation && r.message.rfind("liveness:", 0) == 0;
  r.params = params_.describe();
  r.steps = steps_;
  r.ticks = now_ / kTickUnits;
  r.liveness_ticks = liveness_ticks_;
  for (const auto& [id, n] : nodes_) {
    fingerprint_ = hash_combine(fingerprint_, hash_combine(n.sm.applied(), n.sm.chain()));
  }
  r.fingerprint = fingerprint_;
  stats_.leaders = oracle_.leaders_elected();
  stats_.max_term = oracle_.max_leader_term();
  stats_.liveness_ticks_max = liveness_ticks_;
  r.stats = stats_;
  return r;
}

void Cluster::dispatch(Event& ev) {
  switch (ev.kind) {
    case EvKind::kTick:
      on_tick(ev);
      break;
    case EvKind::kDeliver:
      on_deliver(ev);
      break;
    case EvKind::kDriver:
      if (phase_ == Phase::kFault) {
        driver();
      } else {
        liveness_driver();
      }
      schedule_at(now_ + kTickUnits, EvKind::kDriver);
      break;
    case EvKind::kRestart: {
      SimNode* n = find(ev.node);
      if (n && !n->up && !n->decommissioned && n->incarnation == ev.incarnation) {
        SIM_TRACE("n", n->id, " restart");
        start_node(*n);
      }
      break;
    }
    case EvKind::kPersist:
      on_persist(ev);
      break;
    case EvKind::kCrash: {
      SimNode* n = find(ev.node);
      if (n && n->up && n->incarnation == ev.incarnation && phase_ == Phase::kFault) {
        crash(*n, "nemesis: new leader");
      }
      break;
    }
    case EvKind::kResume: {
      SimNode* n = find(ev.node);
      if (n && n->up && n->paused && n->incarnation == ev.incarnation) on_resume(*n);
      break;
    }
    case EvKind::kDecommission: {
      SimNode* n = find(ev.node);
      if (n == nullptr || n->decommissioned) break;
      n->decommission_scheduled = false;
      if (conf_has(latest_conf_, n->id)) break;
      if (!removal_durable()) {
        // Members that have not learnt the removal is committed still use the
        // old config, which may need this node's vote: wait.
        n->decommission_scheduled = true;
        schedule_at(now_ + 5 * kTickUnits, EvKind::kDecommission, n->id);
        break;
      }
      SIM_TRACE("n", n->id, " decommissioned (not in ", conf_string(latest_conf_), ")");
      if (n->up) crash(*n, "decommission", /*restart=*/false);
      n->decommissioned = true;
      stats_.nodes_decommissioned++;
      break;
    }
    case EvKind::kUnreachable: {
      SimNode* n = find(ev.node);
      if (n && n->up && !n->paused && n->incarnation == ev.incarnation) {
        SIM_TRACE("n", n->id, " report_unreachable(", ev.a, ")");
        n->node->report_unreachable(ev.a);
        after_input(*n);
      }
      break;
    }
    case EvKind::kClog:
      if (phase_ == Phase::kFault) {
        SIM_TRACE("clog ", ev.a, "->", ev.b);
        clog_[ev.a][ev.b] = true;
      }
      break;
    case EvKind::kUnclog:
      if (clog_[ev.a][ev.b]) {
        SIM_TRACE("unclog ", ev.a, "->", ev.b);
        clog_[ev.a][ev.b] = false;
        auto it = held_.find({ev.a, ev.b});
        if (it != held_.end()) {
          for (auto& m : it->second) {
            Event d;
            d.time = now_ + sample_delay();
            d.kind = EvKind::kDeliver;
            d.msg = std::move(m);
            schedule(std::move(d));
          }
          held_.erase(it);
        }
      }
      break;
  }
}

void Cluster::on_tick(const Event& ev) {
  SimNode* n = find(ev.node);
  if (n == nullptr || !n->up || n->incarnation != ev.incarnation) return;  // chain ends
  schedule_at(now_ + kTickUnits, EvKind::kTick, n->id, n->incarnation);
  if (n->paused) return;  // a stopped process does not count time
  n->node->tick();
  after_input(*n);
}

void Cluster::on_deliver(Event& ev) {
  const Message& m = *ev.msg;
  fingerprint_ = hash_combine(
      fingerprint_, (static_cast<uint64_t>(m.type()) << 48) ^ (m.term() << 24) ^ m.index());
  SimNode* n = find(m.to());
  if (n == nullptr || !n->up) {
    stats_.msgs_dropped++;
    return;
  }
  if (n->paused) {
    n->deferred.push_back(std::move(ev));
    return;
  }
  if (m.from() <= kMaxId && m.to() <= kMaxId) {
    if (cut_[m.from()][m.to()]) {
      SIM_TRACE("drop (cut) ", describe(m));
      stats_.msgs_dropped++;
      return;
    }
    if (clog_[m.from()][m.to()]) {
      held_[{m.from(), m.to()}].push_back(std::move(ev.msg));
      return;
    }
  }
  SIM_TRACE("deliver ", describe(m));
  Status st = n->node->step(m);
  if (!st.is_ok()) SIM_TRACE("n", n->id, " step: ", st.to_string());
  after_input(*n);
}

void Cluster::on_persist(Event& ev) {
  SimNode* n = find(ev.node);
  if (n == nullptr || !n->up || n->incarnation != ev.incarnation || !n->inflight) return;
  if (n->paused) {
    n->deferred.push_back(std::move(ev));
    return;
  }
  finish_ready(*n);
  if (n->up) after_input(*n);
}

void Cluster::on_resume(SimNode& n) {
  SIM_TRACE("n", n.id, " resumes (", n.deferred.size(), " held events)");
  n.paused = false;
  std::vector<Event> held = std::move(n.deferred);
  n.deferred.clear();
  uint64_t t = now_;
  for (Event& e : held) {
    e.time = ++t;
    schedule(std::move(e));
  }
}

// ---------------------------------------------------------------------------
// Node plumbing: the Ready contract

void Cluster::after_input(SimNode& n) {
  if (!n.up || oracle_.failed()) return;
  if (n.node->role() == Role::kLeader) oracle_.on_leader(n.id, n.node->term());
  if (opt_.core_invariants) n.node->TEST_raft().check_invariants();
  // A commit decision counts as soon as it is made, durable or not: in Raft
  // every node's commit index, even in memory, covers only entries stored on
  // a majority. (The core's log is read through the TEST_ seam.)
  const raft::RaftLog& log = n.node->TEST_raft().log();
  if (uint64_t c = log.committed(); c > n.mem_commit_checked) {
    for (uint64_t i = std::max(n.mem_commit_checked + 1, log.first_index()); i <= c; i++) {
      auto t = log.term(i);
      if (t.is_ok()) {
        oracle_.on_committed(i, *t, n.id, "has committed (in memory)", n.node->term());
      }
      if (oracle_.failed()) return;
    }
    n.mem_commit_checked = c;
  }
  if (params_.early_messages && n.inflight) {
    // What cluster::Node does while the disk works: a leader's appends of
    // entries proposed since leave before this Ready's sync and theirs.
    for (Message& m : n.node->take_early_messages()) {
      stats_.early_messages++;
      send(n, std::move(m));
    }
  }
  if (params_.early_apply && n.inflight) {
    // What cluster::Node does while the disk works (node.h: durable_committed).
    std::vector<Entry> ents = n.node->durable_committed();
    if (!ents.empty()) {
      apply_durable(n, ents, "durable_committed()");
      if (oracle_.failed() || !n.up) return;
      serve_reads(n);
    }
  }
  drive_ready(n);
}

void Cluster::drive_ready(SimNode& n) {
  // Each Ready may apply as little as one entry (committed_bytes_per_ready_max),
  // so the bound on rounds grows with the backlog to apply.
  uint64_t limit = 1000;
  if (n.up) {
    raft::NodeStatus st = n.node->status();
    limit += st.hard_state.commit() - std::min(st.applied, st.hard_state.commit());
  }
  for (uint64_t rounds = 0; n.up && !n.inflight && !oracle_.failed() && n.node->has_ready();
       rounds++) {
    if (rounds > limit) {
      fail("contract: node " + std::to_string(n.id) + " has a Ready after " +
           std::to_string(limit) + " rounds");
      return;
    }
    begin_ready(n);
    if (params_.async_ready || !n.up || !n.inflight) return;
    finish_ready(n);
  }
}

// Step 1 of the Ready contract: take the Ready and send `messages`.
void Cluster::begin_ready(SimNode& n) {
  raft::Ready rd = n.node->ready();
  if (rd.soft_state) {
    SIM_TRACE("n", n.id, " becomes ", raft::role_name(rd.soft_state->role), " (lead ",
              rd.soft_state->lead, ", term ", n.node->term(), ")");
    if (rd.soft_state->role == Role::kLeader) {
      oracle_.on_leader(n.id, n.node->term());
      n.leader_check_term = n.node->term();
      if (phase_ == Phase::kFault && rng_.chance(params_.p_kill_new_leader)) {
        // Figure 8 of the Raft paper needs leaders that die while old-term
        // entries are only partly replicated.
        schedule_at(now_ + rng_.range(1, 3 * kTickUnits), EvKind::kCrash, n.id, n.incarnation);
      }
    }
  }
  if (opt_.trace) {
    std::ostringstream o;
    if (rd.hard_state) {
      o << " hs=(t" << rd.hard_state->term() << " v" << rd.hard_state->vote() << " c"
        << rd.hard_state->commit() << ")";
    }
    if (rd.snapshot) {
      o << " snapshot=(" << rd.snapshot->metadata().index() << "," << rd.snapshot->metadata().term()
        << ")";
    }
    if (!rd.entries.empty()) {
      o << " ents=";
      for (const auto& e : rd.entries) o << describe_entry(e);
    }
    if (!rd.committed_entries.empty()) {
      o << " commit=[" << rd.committed_entries.front().index() << ".."
        << rd.committed_entries.back().index() << "]";
    }
    if (!rd.read_states.empty()) o << " read_states=" << rd.read_states.size();
    o << " msgs=" << rd.messages.size() << "+" << rd.messages_after_persist.size();
    trace("n", n.id, " ready", o.str());
  }
  if ((!rd.entries.empty() || rd.snapshot) && !rd.must_sync) {
    fail("contract: node " + std::to_string(n.id) + " Ready has entries but must_sync is false");
    return;
  }
  n.crash_at = 0;
  if ((opt_.faults & kFaultCrash) && phase_ == Phase::kFault &&
      rng_.chance(params_.p_ready_crash)) {
    n.crash_at = static_cast<int>(rng_.range(1, 3));
  }
  std::vector<Message> msgs = std::move(rd.messages);
  rd.messages.clear();
  n.early_conf = 0;
  if (params_.early_apply && !rd.snapshot && !rd.committed_entries.empty() &&
      (rd.entries.empty() ||
       rd.committed_entries.back().index() < rd.entries.front().index())) {
    // Committed entries below the Ready's new ones are durable already:
    // apply them before the sync (cluster::Node::apply_durable). A crash
    // point below may then cut the power between this apply and the sync.
    std::vector<Entry> ents = std::move(rd.committed_entries);
    rd.committed_entries.clear();
    for (const Entry& e : ents) {
      if (e.type() == raftpb::ENTRY_CONF_CHANGE) n.early_conf = e.index();
    }
    n.inflight = std::move(rd);
    for (Message& m : msgs) send(n, std::move(m));
    apply_durable(n, ents, "a Ready's committed_entries");
    if (oracle_.failed() || !n.up) return;
  } else {
    n.inflight = std::move(rd);
    for (Message& m : msgs) send(n, std::move(m));
  }
  if (n.crash_at == 1) {
    stats_.crashes_mid_ready++;
    crash(n, "mid-Ready: messages sent, nothing persisted");
    return;
  }
  if (params_.async_ready) {
    schedule_at(now_ + rng_.range(1, params_.disk_delay_max), EvKind::kPersist, n.id,
                n.incarnation);
  }
}

// Steps 2-5: persist, send messages_after_persist, apply, advance.
void Cluster::finish_ready(SimNode& n) {
  raft::Ready rd = std::move(*n.inflight);
  n.inflight.reset();
  const std::string who = "node " + std::to_string(n.id);

  // 2. Persist: snapshot, entries, hard state. MemoryStorage is the disk.
  if (rd.snapshot) {
    oracle_.on_snapshot_persist(n.id, rd.snapshot->metadata());
    Status st = n.disk->apply_snapshot(*rd.snapshot);
    if (!st.is_ok()) {
      fail("contract: " + who + " cannot persist the Ready's snapshot: " + st.to_string());
      return;
    }
  }
  if (!rd.entries.empty()) {
    oracle_.on_append(n.id, *n.disk, n.disk_hs.commit(), rd.entries);
    if (oracle_.failed()) return;
    Status st = n.disk->append(rd.entries);
    if (!st.is_ok()) {
      fail("contract: " + who + " cannot persist the Ready's entries: " + st.to_string());
      return;
    }
  }
  if (rd.hard_state) {
    oracle_.on_hard_state(n.id, n.disk_hs, *rd.hard_state);
    n.disk->set_hard_state(*rd.hard_state);
    n.disk_hs = *rd.hard_state;
    oracle_.on_commit(n.id, *n.disk, n.disk_hs.commit(), n.commit_checked, n.disk_hs.term());
  }
  if (n.leader_check_term != 0) {
    oracle_.check_leader_completeness(n.id, n.leader_check_term, *n.disk);
    n.leader_check_term = 0;
  }
  if (oracle_.failed()) return;
  if (n.crash_at == 2) {
    stats_.crashes_mid_ready++;
    crash(n, "mid-Ready: persisted, messages_after_persist not sent");
    return;
  }

  // 3. Messages that needed the write to be durable.
  for (Message& m : rd.messages_after_persist) send(n, std::move(m));
  if (n.crash_at == 3) {
    stats_.crashes_mid_ready++;
    crash(n, "mid-Ready: persisted and sent, nothing applied");
    return;
  }

  // 4. Apply.
  uint64_t last_conf = n.early_conf;
  n.early_conf = 0;
  apply_ready(n, rd, last_conf);
  if (oracle_.failed()) return;

  // 5. Advance.
  n.node->advance();
  post_advance(n, rd, last_conf);
}

void Cluster::apply_ready(SimNode& n, const raft::Ready& rd, uint64_t& last_conf) {
  const std::string who = "node " + std::to_string(n.id);
  if (rd.snapshot) {
    const auto& meta = rd.snapshot->metadata();
    if (meta.index() <= n.sm.applied()) {
      fail("contract: " + who + " was handed a snapshot at " + std::to_string(meta.index()) +
           " but has applied up to " + std::to_string(n.sm.applied()));
      return;
    }
    if (auto err = n.sm.restore(*rd.snapshot)) {
      fail(who + " cannot restore the snapshot it was sent: " + *err);
      return;
    }
    oracle_.on_restore(n.id, meta, n.sm.chain());
    stats_.snapshots_installed++;
    SIM_TRACE("n", n.id, " installed snapshot (", meta.index(), ",", meta.term(), ") ",
              conf_string(meta.conf_state()));
    // Proposals inside the snapshot: their outcome is unknown to this client.
    n.proposals.erase(n.proposals.begin(), n.proposals.upper_bound(meta.index()));
  }
  for (const Entry& e : rd.committed_entries) {
    if (e.index() != n.sm.applied() + 1) {
      fail("contract: " + who + " must apply index " + std::to_string(n.sm.applied() + 1) +
           " next but was handed " + std::to_string(e.index()));
      return;
    }
    if (e.index() > n.disk_hs.commit()) {
      fail("contract: " + who + " was handed committed entry " + std::to_string(e.index()) +
           " above its durable commit index " + std::to_string(n.disk_hs.commit()));
      return;
    }
    n.sm.apply(e);
    oracle_.on_apply(n.id, e, n.sm.chain());
    if (oracle_.failed()) return;
    on_client_apply(n, e);
    if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
      last_conf = e.index();
      if (conf_entries_seen_.insert(e.index()).second) stats_.conf_changes_applied++;
      SIM_TRACE("n", n.id, " applies conf change ", describe_entry(e));
    }
  }
  for (const raft::ReadState& rs : rd.read_states) {
    on_read_state(n, rs);
    if (oracle_.failed()) return;
  }
  serve_reads(n);
}

// The core's snapshot not yet handed out in a Ready: one it restored from the
// leader while the previous Ready was outstanding (asynchronous seeds). Its
// config is already the node's config.
const Snapshot* pending_snapshot(raft::Node& node) {
  const auto& s = node.TEST_raft().log().unstable_snapshot();
  return s ? &*s : nullptr;
}

void Cluster::post_advance(SimNode& n, const raft::Ready& rd, uint64_t last_conf) {
  if (const Snapshot* pending = pending_snapshot(*n.node)) {
    // The entries just applied are superseded; the config must be the
    // snapshot's (checked again when that snapshot is handed out).
    ConfState cs = n.node->conf_state();
    if (conf_string(cs) != conf_string(pending->metadata().conf_state())) {
      fail("config agreement: node " + std::to_string(n.id) + " restored a snapshot at " +
           std::to_string(pending->metadata().index()) + " with " +
           conf_string(pending->metadata().conf_state()) + " but its config is " + conf_string(cs));
    }
    n.conf = conf_string(cs);
    return;
  }
  if (last_conf != 0 || rd.snapshot || rd.conf_state) {
    // Ready::conf_state is the membership after applying the Ready, set when
    // it changes: what the application persists with its applied index.
    std::string now = conf_string(n.node->conf_state());
    if (rd.conf_state && conf_string(*rd.conf_state) != now) {
      fail("contract: node " + std::to_string(n.id) + " Ready::conf_state is " +
           conf_string(*rd.conf_state) + " but after advance() the config is " + now);
      return;
    }
    if (!rd.conf_state && now != n.conf) {
      fail("contract: node " + std::to_string(n.id) + " config changed from " + n.conf + " to " +
           now + " by a Ready without conf_state");
      return;
    }
    n.conf = now;
  }
  if (last_conf != 0) {
    ConfState cs = n.node->conf_state();
    oracle_.on_conf_applied(n.id, last_conf, cs);
    if (cs.voters_outgoing_size() > 0 && joint_seen_.insert(last_conf).second) {
      stats_.joint_configs++;
    }
    SIM_TRACE("n", n.id, " config after ", last_conf, ": ", conf_string(cs));
    membership_update(last_conf, cs);
  } else if (rd.snapshot) {
    ConfState cs = n.node->conf_state();
    oracle_.on_snapshot_conf(n.id, rd.snapshot->metadata(), cs);
    membership_update(rd.snapshot->metadata().index(), cs);
  }
  if (oracle_.failed()) return;
  if (n.node->role() == Role::kLeader) oracle_.on_leader(n.id, n.node->term());
  maybe_snapshot(n, false);
}

// The application snapshots its state machine and compacts the log.
void Cluster::maybe_snapshot(SimNode& n, bool forced) {
  // Not while a Ready is outstanding, nor while the core holds a restored
  // snapshot the state machine has not installed: conf_state() must be the
  // config at the applied index.
  if (!n.up || n.inflight || pending_snapshot(*n.node)) return;
  uint64_t applied = n.sm.applied();
  auto snap = n.disk->snapshot();
  uint64_t snap_index = (*snap)->metadata().index();
  if (applied <= snap_index) return;
  if (!forced && applied - snap_index < params_.snap_threshold) return;
  ConfState cs = n.node->conf_state();
  auto created = n.disk->create_snapshot(applied, cs, n.sm.serialize());
  if (!created.is_ok()) {
    fail("node " + std::to_string(n.id) + " cannot snapshot at applied index " +
         std::to_string(applied) + ": " + created.status().to_string());
    return;
  }
  // The state machine is volatile: a restart resumes from this snapshot, so
  // this is the membership to restart with (storage.h, set_conf_state).
  n.disk->set_conf_state(cs);
  stats_.snapshots_created++;
  uint64_t first = n.disk->first_index();
  uint64_t keep = rng_.range(0, params_.snap_keep_max);
  uint64_t compact = applied > keep ? applied - keep : 0;
  if (compact >= first) {
    Status st = n.disk->compact(compact);
    if (!st.is_ok()) {
      fail("node " + std::to_string(n.id) + " cannot compact to " + std::to_string(compact) + ": " +
           st.to_string());
      return;
    }
  }
  SIM_TRACE("n", n.id, " snapshot at ", applied, " ",
            conf_string((*created)->metadata().conf_state()), ", log now [", n.disk->first_index(),
            "..", n.disk->last_index(), "]");
}

void Cluster::membership_update(uint64_t index, const ConfState& cs) {
  if (index <= latest_conf_index_) return;
  latest_conf_index_ = index;
  latest_conf_ = cs;
  for (auto& [id, n] : nodes_) {
    if (conf_has(cs, id)) {
      n.was_member = true;
    } else if (n.was_member && !n.decommissioned && !n.decommission_scheduled) {
      // The operator shuts a removed node down some time after its removal.
      n.decommission_scheduled = true;
      uint64_t delay = phase_ == Phase::kFault ? rng_.range(0, 30) : 0;
      schedule_at(now_ + 1 + delay * kTickUnits, EvKind::kDecommission, id);
    }
  }
}

// An operator shuts a removed node down only once a majority of the voters of
// the config that removed it durably know that config is committed (their
// durable commit index or snapshot covers it): they apply it even after a
// restart, and can then elect a leader among themselves without the removed
// node. Shutting it down earlier can leave the group without a quorum in the
// config that the other members still use (configs take effect when applied).
bool Cluster::removal_durable() const {
  if (latest_conf_.voters_outgoing_size() > 0) return false;
  size_t know = 0;
  for (uint64_t v : latest_conf_.voters()) {
    auto it = nodes_.find(v);
    if (it == nodes_.end()) continue;
    const SimNode& n = it->second;
    auto snap = n.disk->snapshot();
    uint64_t durable = std::max(n.disk_hs.commit(), (*snap)->metadata().index());
    if (durable >= latest_conf_index_) know++;
  }
  return know > static_cast<size_t>(latest_conf_.voters_size()) / 2;
}

// Everything volatile is lost: the core's memory, the state machine, the
// outstanding Ready, the clients waiting on this node. The disk stays.
void Cluster::crash(SimNode& n, const char* why, bool restart) {
  SIM_TRACE("n", n.id, " CRASH (", why, ")");
  n.node.reset();
  n.up = false;
  n.paused = false;
  n.inflight.reset();
  n.crash_at = 0;
  n.leader_check_term = 0;
  n.sm.reset();
  n.proposals.clear();
  for (uint64_t id : n.waiting_reads) reads_[id].phase = ReadPhase::kDone;
  n.waiting_reads.clear();
  n.deferred.clear();
  n.incarnation++;
  stats_.crashes++;
  if (restart) {
    uint64_t down = phase_ == Phase::kFault ? rng_.range(1, params_.down_ticks_max) : 1;
    schedule_at(now_ + down * kTickUnits, EvKind::kRestart, n.id, n.incarnation);
  }
}

uint64_t Cluster::sample_delay() {
  uint64_t d = rng_.range(1, params_.delay_max);
  if (phase_ == Phase::kFault && rng_.chance(params_.p_long_delay)) d += rng_.range(20, 100);
  return d;
}

void Cluster::send(SimNode& from, Message m) {
  stats_.msgs_sent++;
  // A forwarded MSG_READ_INDEX keeps the original requester as `from`, so the
  // leader answers it directly (as etcd's raft does).
  bool relay = m.type() == raftpb::MSG_READ_INDEX;
  if ((m.from() != from.id && !relay) || m.to() == raft::kNone || m.from() == raft::kNone ||
      (m.to() == from.id && !relay) || m.group() != kGroup) {
    fail("contract: node " + std::to_string(from.id) +
         " emits a malformed message: " + describe(m));
    return;
  }
  // Durability before acknowledgement (Raft paper Figure 2, "persistent
  // state ... updated on stable storage before responding to RPCs").
  if (m.type() == raftpb::MSG_VOTE_RESP && !m.reject()) {
    oracle_.on_vote_granted(from.id, m.term(), m.to());
    // Either the vote is durable, or a later term is (then the node can never
    // vote in this term again, which is as good).
    if (from.disk_hs.term() < m.term() ||
        (from.disk_hs.term() == m.term() && from.disk_hs.vote() != m.to())) {
      fail("durability: node " + std::to_string(from.id) + " grants its vote to " +
           std::to_string(m.to()) + " in term " + std::to_string(m.term()) +
           " before the vote is durable (disk: term " + std::to_string(from.disk_hs.term()) +
           " vote " + std::to_string(from.disk_hs.vote()) + ")");
      return;
    }
  }
  if (m.type() == raftpb::MSG_APP_RESP && !m.reject() && m.index() > from.disk->last_index()) {
    fail("durability: node " + std::to_string(from.id) + " acknowledges entries up to " +
         std::to_string(m.index()) + " but its disk holds up to " +
         std::to_string(from.disk->last_index()) + ": " + describe(m));
    return;
  }
  if (m.type() == raftpb::MSG_SNAP) stats_.snap_chunks_sent++;
  uint64_t f = from.id, t = m.to();
  if (t > kMaxId) {
    fail("contract: node " + std::to_string(f) + " sends to unknown node " + std::to_string(t));
    return;
  }
  auto msg = std::make_shared<const Message>(std::move(m));
  if (cut_[f][t]) {
    stats_.msgs_dropped++;
    SIM_TRACE("drop (cut) ", describe(*msg));
    if (rng_.chance(0.2)) {
      schedule_at(now_ + 1, EvKind::kUnreachable, f, from.incarnation, t);
    }
    return;
  }
  if (phase_ == Phase::kFault) {
    double p = storm_until_tick_ > now_ / kTickUnits ? 0.5 : params_.p_drop;
    if (rng_.chance(p)) {
      stats_.msgs_dropped++;
      SIM_TRACE("drop ", describe(*msg));
      return;
    }
  }
  SIM_TRACE("send ", describe(*msg));
  Event e;
  e.kind = EvKind::kDeliver;
  e.time = now_ + sample_delay();
  if (!params_.reorder || phase_ != Phase::kFault) {
    // In order per link: a healthy TCP connection.
    e.time = std::max(e.time, fifo_[f][t]);
    fifo_[f][t] = e.time;
  }
  e.msg = msg;
  schedule(e);
  if (phase_ == Phase::kFault && rng_.chance(params_.p_dup)) {
    stats_.msgs_duplicated++;
    e.time = now_ + sample_delay();
    schedule(std::move(e));
  }
}

// ---------------------------------------------------------------------------
// Clients

SimNode* Cluster::leader() {
  SimNode* best = nullptr;
  for (auto& [id, n] : nodes_) {
    if (!n.up || n.paused || n.node->role() != Role::kLeader) continue;
    if (best == nullptr || n.node->term() > best->node->term()) best = &n;
  }
  return best;
}

SimNode* Cluster::random_up_node() {
  std::vector<SimNode*> up;
  for (auto& [id, n] : nodes_) {
    if (n.up && !n.paused) up.push_back(&n);
  }
  return up.empty() ? nullptr : rng_.pick(up);
}

void Cluster::client_write() {
  SimNode* n = rng_.chance(0.85) ? leader() : nullptr;
  if (n == nullptr) n = random_up_node();
  if (n == nullptr) return;
  Write w;
  w.id = ++write_seq_;
  w.key = rng_.below(params_.keys);
  uint64_t len = rng_.range(0, params_.payload_max);
  for (uint64_t i = 0; i < len; i++) w.payload.push_back(static_cast<char>('a' + rng_.below(26)));
  auto r = n->node->propose(encode_write(w));
  if (r.is_ok()) {
    stats_.writes_proposed++;
    SIM_TRACE("n", n->id, " client proposes w", w.id, " k", w.key, " -> (", r->index, ",", r->term,
              ")");
    n->proposals[r->index] = Proposal{r->term, w.id, w.key, false};
  } else {
    stats_.propose_refused++;
    if (r.code() == Code::kUncommittedLimit) stats_.uncommitted_limit++;
    SIM_TRACE("n", n->id, " client proposal w", w.id, " refused: ", r.status().to_string());
  }
  after_input(*n);
}

// Applies committed entries handed out before the outstanding Ready's sync
// returned. The rule under test: a node applies only entries durable in its
// own log (the disk holds this very entry), so that its applied index never
// passes what a crash leaves of its log; the commit index itself need not
// be durable (it is volatile in Raft).
void Cluster::apply_durable(SimNode& n, const std::vector<Entry>& ents, const char* how) {
  const std::string who = "node " + std::to_string(n.id);
  for (const Entry& e : ents) {
    if (e.index() != n.sm.applied() + 1) {
      fail("contract: " + who + " must apply index " + std::to_string(n.sm.applied() + 1) +
           " next but " + how + " handed " + std::to_string(e.index()));
      return;
    }
    auto t = n.disk->term(e.index());
    if (e.index() > n.disk->last_index() || !t.is_ok() || *t != e.term()) {
      fail("contract: " + who + " was handed entry (" + std::to_string(e.index()) + ", " +
           std::to_string(e.term()) + ") to apply by " + how + " before it is durable on its disk");
      return;
    }
    n.sm.apply(e);
    stats_.early_applies++;
    oracle_.on_apply(n.id, e, n.sm.chain());
    if (oracle_.failed()) return;
    on_client_apply(n, e);
    if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
      if (conf_entries_seen_.insert(e.index()).second) stats_.conf_changes_applied++;
      SIM_TRACE("n", n.id, " applies conf change ", describe_entry(e), " before the sync");
    } else {
      SIM_TRACE("n", n.id, " applies ", e.index(), " before the sync (", how, ")");
    }
  }
}

// A proposal is acknowledged when its (index, term) is applied on the node
// that accepted it; another term at that index means it was lost.
void Cluster::on_client_apply(SimNode& n, const Entry& e) {
  auto it = n.proposals.find(e.index());
  if (it == n.proposals.end()) return;
  Proposal p = it->second;
  n.proposals.erase(n.proposals.begin(), std::next(it));
  if (p.term != e.term()) {
    SIM_TRACE("n", n.id, " client: w", p.write_id, " lost (index ", e.index(), " has term ",
              e.term(), ")");
    return;
  }
  auto w = decode_write(e.data());
  if (!w || w->id != p.write_id) {
    fail("contract: node " + std::to_string(n.id) + " accepted w" + std::to_string(p.write_id) +
         " at (" + std::to_string(e.index()) + ", " + std::to_string(e.term()) +
         ") but a different entry is there: " + describe_entry(e));
    return;
  }
  acks_.push_back(Ack{p.write_id, e.index(), e.term(), entry_hash(e)});
  auto& ka = key_acked_[p.key];
  if (e.index() > ka.first) ka = {e.index(), p.write_id};
  max_acked_index_ = std::max(max_acked_index_, e.index());
  stats_.writes_acked++;
  SIM_TRACE("n", n.id, " client: w", p.write_id, " ACKED at (", e.index(), ",", e.term(), ")");
  if (p.probe) {
    probe_acked_ = true;
    probe_index_ = e.index();
  }
}

void Cluster::client_read() {
  SimNode* n = rng_.chance(0.5) ? leader() : nullptr;
  if (n == nullptr) n = random_up_node();
  if (n == nullptr) return;
  uint64_t id = ++read_seq_;
  Read r;
  r.node = n->id;
  r.incarnation = n->incarnation;
  r.key = rng_.below(params_.keys);
  r.issued_step = steps_;
  // Everything committed anywhere, and every acknowledged write, precedes
  // this read in real time: a linearizable read must observe it.
  r.min_index = std::max(oracle_.max_commit(), max_acked_index_);
  auto ka = key_acked_.find(r.key);
  if (ka != key_acked_.end()) {
    r.acked_index = ka->second.first;
    r.acked_write = ka->second.second;
  }
  reads_[id] = r;
  stats_.reads_issued++;
  Status st = n->node->read_index("r:" + std::to_string(id));
  SIM_TRACE("n", n->id, " client read r", id, " k", r.key, " (min index ", r.min_index, ")",
            st.is_ok() ? "" : " refused: " + st.to_string());
  if (!st.is_ok()) reads_[id].phase = ReadPhase::kDone;
  after_input(*n);
}

void Cluster::on_read_state(SimNode& n, const raft::ReadState& rs) {
  uint64_t id = 0;
  if (rs.context.rfind("r:", 0) == 0) id = std::strtoull(rs.context.c_str() + 2, nullptr, 10);
  auto it = reads_.find(id);
  if (it == reads_.end()) {
    fail("contract: node " + std::to_string(n.id) + " yields a ReadState for unknown context '" +
         rs.context + "'");
    return;
  }
  Read& r = it->second;
  if (r.node != n.id) {
    fail("contract: read r" + std::to_string(id) + " was issued on node " + std::to_string(r.node) +
         " but its ReadState appears on node " + std::to_string(n.id));
    return;
  }
  if (rs.index < r.min_index) {
    fail("linearizability: read r" + std::to_string(id) + " on node " + std::to_string(n.id) +
         " got read index " + std::to_string(rs.index) + " but index " +
         std::to_string(r.min_index) + " was committed before the read was issued (step " +
         std::to_string(r.issued_step) + ")");
    return;
  }
  if (r.incarnation != n.incarnation || r.phase != ReadPhase::kWaitState) return;
  SIM_TRACE("n", n.id, " read r", id, " read index ", rs.index);
  r.phase = ReadPhase::kWaitApply;
  r.read_index = rs.index;
  n.waiting_reads.push_back(id);
}

void Cluster::serve_reads(SimNode& n) {
  auto& w = n.waiting_reads;
  for (size_t i = 0; i < w.size();) {
    Read& r = reads_[w[i]];
    if (r.read_index > n.sm.applied()) {
      i++;
      continue;
    }
    const Register* reg = n.sm.get(r.key);
    uint64_t seen = reg ? reg->index : 0;
    if (seen < r.acked_index) {
      fail("linearizability: read r" + std::to_string(w[i]) + " of key " + std::to_string(r.key) +
           " on node " + std::to_string(n.id) + " (read index " + std::to_string(r.read_index) +
           ", applied " + std::to_string(n.sm.applied()) + ") sees the write at index " +
           std::to_string(seen) + " but w" + std::to_string(r.acked_write) + " at index " +
           std::to_string(r.acked_index) + " was acknowledged before the read was issued");
      return;
    }
    SIM_TRACE("n", n.id, " read r", w[i], " served: k", r.key, " = w", reg ? reg->write_id : 0,
              " (index ", seen, ")");
    r.phase = ReadPhase::kDone;
    stats_.reads_served++;
    if (params_.read_mode == raft::ReadMode::kLease) stats_.lease_reads_served++;
    w.erase(w.begin() + static_cast<long>(i));
  }
}

void Cluster::transfer() {
  SimNode* l = leader();
  if (l == nullptr) return;
  ConfState cs = l->node->conf_state();
  uint64_t target = 0;
  if (rng_.chance(0.8) && cs.voters_size() > 1) {
    do {
      target = cs.voters(static_cast<int>(rng_.below(cs.voters_size())));
    } while (target == l->id);
  } else {
    target = rng_.range(1, next_id_ - 1);  // sometimes itself, a learner or a stranger
  }
  Status st = l->node->transfer_leader(target);
  SIM_TRACE("n", l->id, " transfer_leader(", target, ")",
            st.is_ok() ? "" : " refused: " + st.to_string());
  if (st.is_ok()) stats_.transfers++;
  after_input(*l);
}

void Cluster::propose_conf_change(SimNode& l, const ConfChange& cc) {
  std::string data;
  cc.SerializeToString(&data);
  Entry e;
  e.set_type(raftpb::ENTRY_CONF_CHANGE);
  e.set_data(data);
  auto r = l.node->propose_conf_change(cc);
  SIM_TRACE("n", l.id, " propose conf change ", describe_entry(e),
            r.is_ok() ? "" : " refused: " + r.status().to_string());
  if (r.is_ok()) stats_.conf_changes_proposed++;
  after_input(l);
}

void Cluster::conf_change() {
  SimNode* l = leader();
  if (l == nullptr) return;
  ConfState cs = l->node->conf_state();
  if (cs.voters_outgoing_size() > 0) {
    if (!cs.auto_leave()) propose_conf_change(*l, ConfChange());  // leave explicitly
    return;
  }
  std::vector<uint64_t> voters(cs.voters().begin(), cs.voters().end());
  std::vector<uint64_t> learners(cs.learners().begin(), cs.learners().end());
  const size_t min_voters = 2, max_voters = 9;
  ConfChange cc;
  auto add = [&cc](raftpb::ConfChangeType t, uint64_t id) {
    auto* c = cc.add_changes();
    c->set_type(t);
    c->set_node_id(id);
  };
  auto new_id = [this]() -> uint64_t {
    SimNode* n = add_node();
    return n ? n->id : 0;
  };
  switch (rng_.below(8)) {
    case 0:  // add a learner
      if (uint64_t id = new_id()) add(raftpb::CONF_ADD_LEARNER, id);
      break;
    case 1:  // add a voter directly
      if (voters.size() < max_voters) {
        if (uint64_t id = new_id()) add(raftpb::CONF_ADD_VOTER, id);
      }
      break;
    case 2:  // promote a learner
      if (!learners.empty()) add(raftpb::CONF_ADD_VOTER, rng_.pick(learners));
      break;
    case 3:  // remove a voter (possibly the leader itself)
      if (voters.size() > min_voters) add(raftpb::CONF_REMOVE_NODE, rng_.pick(voters));
      break;
    case 4:  // demote a voter
      if (voters.size() > min_voters) add(raftpb::CONF_ADD_LEARNER, rng_.pick(voters));
      break;
    case 5:  // remove a learner
      if (!learners.empty()) add(raftpb::CONF_REMOVE_NODE, rng_.pick(learners));
      break;
    case 6: {  // replace a voter: two voters change, so joint consensus
      uint64_t in = !learners.empty() && rng_.chance(0.5) ? rng_.pick(learners) : new_id();
      if (in != 0) {
        add(raftpb::CONF_ADD_VOTER, in);
        add(raftpb::CONF_REMOVE_NODE, rng_.pick(voters));
      }
      break;
    }
    default: {  // several changes at once
      if (uint64_t id = new_id()) add(raftpb::CONF_ADD_LEARNER, id);
      if (!learners.empty()) add(raftpb::CONF_ADD_VOTER, rng_.pick(learners));
      if (voters.size() > min_voters + 1) add(raftpb::CONF_ADD_LEARNER, rng_.pick(voters));
      break;
    }
  }
  if (cc.changes_size() == 0) return;
  double t = rng_.real(0, 1);
  cc.set_transition(t < 0.7    ? raftpb::TRANSITION_AUTO
                    : t < 0.85 ? raftpb::TRANSITION_JOINT_IMPLICIT
                               : raftpb::TRANSITION_JOINT_EXPLICIT);
  propose_conf_change(*l, cc);
}

// ---------------------------------------------------------------------------
// Faults

void Cluster::driver() {
  const Params& p = params_;
  if (rng_.chance(p.p_write)) {
    uint64_t k = rng_.range(1, p.write_burst_max);
    for (uint64_t i = 0; i < k && !oracle_.failed(); i++) client_write();
  }
  if (rng_.chance(p.p_read)) client_read();
  if (rng_.chance(p.p_transfer)) transfer();
  if (rng_.chance(p.p_conf)) conf_change();
  // A joint configuration entered with TRANSITION_JOINT_EXPLICIT is left by
  // the operator.
  if (SimNode* l = leader(); l && rng_.chance(0.1)) {
    ConfState cs = l->node->conf_state();
    if (cs.voters_outgoing_size() > 0 && !cs.auto_leave()) propose_conf_change(*l, ConfChange());
  }
  if (rng_.chance(p.p_campaign)) {
    if (SimNode* n = random_up_node()) {
      SIM_TRACE("n", n->id, " campaign()");
      n->node->campaign();
      after_input(*n);
    }
  }
  if (rng_.chance(p.p_snap_forced)) {
    if (SimNode* n = random_up_node()) maybe_snapshot(*n, true);
  }
  if ((opt_.faults & kFaultNet) && rng_.chance(p.p_net_change)) net_fault();
  if ((opt_.faults & kFaultCrash) && rng_.chance(p.p_crash)) crash_some_node();
  if ((opt_.faults & kFaultCrash) && rng_.chance(p.p_pause)) pause_some_node();
}

void Cluster::heal_network() {
  SIM_TRACE("network healed");
  for (auto& row : cut_) std::fill(std::begin(row), std::end(row), false);
  for (uint64_t a = 0; a <= kMaxId; a++) {
    for (uint64_t b = 0; b <= kMaxId; b++) {
      if (clog_[a][b]) {
        // Release through the normal unclog path so held messages flow again.
        schedule_at(now_, EvKind::kUnclog, 0, 0, a, b);
      }
    }
  }
  storm_until_tick_ = 0;
}

void Cluster::net_fault() {
  bool active = storm_until_tick_ > now_ / kTickUnits;
  for (uint64_t a = 0; a <= kMaxId && !active; a++) {
    for (uint64_t b = 0; b <= kMaxId; b++) active = active || cut_[a][b] || clog_[a][b];
  }
  if (active && rng_.chance(0.35)) {
    heal_network();
    return;
  }
  std::vector<uint64_t> ids = network_ids();
  if (ids.size() < 2) return;
  stats_.partitions++;
  auto cut_both = [this](uint64_t a, uint64_t b) { cut_[a][b] = cut_[b][a] = true; };
  switch (rng_.below(7)) {
    case 0: {  // symmetric split into two sides
      std::vector<uint64_t> side_a, side_b;
      for (uint64_t id : ids) (rng_.chance(0.5) ? side_a : side_b).push_back(id);
      for (uint64_t a : side_a) {
        for (uint64_t b : side_b) cut_both(a, b);
      }
      SIM_TRACE("partition: split ", side_a.size(), "|", side_b.size());
      break;
    }
    case 1: {  // asymmetric: some one-way link cuts
      uint64_t k = rng_.range(1, ids.size());
      for (uint64_t i = 0; i < k; i++) {
        uint64_t a = rng_.pick(ids), b = rng_.pick(ids);
        if (a != b) {
          cut_[a][b] = true;
          SIM_TRACE("partition: one-way cut ", a, "->", b);
        }
      }
      break;
    }
    case 2: {  // isolate the leader
      SimNode* l = leader();
      uint64_t x = l ? l->id : rng_.pick(ids);
      for (uint64_t id : ids) {
        if (id != x) cut_both(x, id);
      }
      SIM_TRACE("partition: isolate leader ", x);
      break;
    }
    case 3: {  // clog links one by one, heal them one by one in random order
      std::vector<std::pair<uint64_t, uint64_t>> links;
      for (uint64_t a : ids) {
        for (uint64_t b : ids) {
          if (a != b && rng_.chance(0.4)) links.push_back({a, b});
        }
      }
      uint64_t t = now_;
      for (auto [a, b] : links) {
        t += rng_.range(1, 3) * kTickUnits;
        schedule_at(t, EvKind::kClog, 0, 0, a, b);
      }
      rng_.shuffle(links);
      for (auto [a, b] : links) {
        t += rng_.range(1, 4) * kTickUnits;
        schedule_at(t, EvKind::kUnclog, 0, 0, a, b);
      }
      SIM_TRACE("partition: clogging ", links.size(), " links");
      break;
    }
    case 4: {  // bridge: two sides that both see one node
      rng_.shuffle(ids);
      uint64_t bridge = ids[0];
      std::vector<uint64_t> side_a, side_b;
      for (size_t i = 1; i < ids.size(); i++) (i % 2 ? side_a : side_b).push_back(ids[i]);
      for (uint64_t a : side_a) {
        for (uint64_t b : side_b) cut_both(a, b);
      }
      SIM_TRACE("partition: bridge through ", bridge);
      break;
    }
    case 5: {  // one node deaf or mute
      uint64_t x = rng_.pick(ids);
      bool inbound = rng_.chance(0.5);
      for (uint64_t id : ids) {
        if (id == x) continue;
        if (inbound) {
          cut_[id][x] = true;
        } else {
          cut_[x][id] = true;
        }
      }
      SIM_TRACE("partition: node ", x, inbound ? " deaf" : " mute");
      break;
    }
    default:  // packet-loss storm
      storm_until_tick_ = now_ / kTickUnits + rng_.range(1, 4 * params_.election_timeout);
      SIM_TRACE("partition: loss storm until tick ", storm_until_tick_);
      break;
  }
}

void Cluster::crash_some_node() {
  size_t alive = 0, down = 0;
  for (const auto& [id, n] : nodes_) {
    if (n.decommissioned) continue;
    (n.up ? alive : down)++;
  }
  if (down + 1 > (alive + down) / 2 + 1) return;  // keep at most about half down
  SimNode* n = rng_.chance(0.3) ? leader() : nullptr;
  if (n == nullptr) n = random_up_node();
  if (n == nullptr) return;
  crash(*n, "crash");
}

void Cluster::pause_some_node() {
  SimNode* n = rng_.chance(0.4) ? leader() : nullptr;
  if (n == nullptr) n = random_up_node();
  if (n == nullptr) return;
  n->paused = true;
  stats_.pauses++;
  uint64_t d = rng_.range(1, 3 * static_cast<uint64_t>(params_.election_timeout));
  SIM_TRACE("n", n->id, " PAUSED for ", d, " ticks");
  schedule_at(now_ + d * kTickUnits, EvKind::kResume, n->id, n->incarnation);
}

// ---------------------------------------------------------------------------
// Liveness

void Cluster::enter_liveness() {
  SIM_TRACE("=== liveness phase: heal everything, restart crashed nodes ===");
  phase_ = Phase::kLiveness;
  live_start_tick_ = now_ / kTickUnits;
  heal_network();
  for (auto& [id, n] : nodes_) {
    if (n.up && n.paused) on_resume(n);
    n.crash_at = 0;  // no more crash points in Readies still outstanding
  }
  for (auto& [id, n] : nodes_) {
    if (!n.up && !n.decommissioned && !oracle_.failed()) start_node(n);
  }
}

void Cluster::liveness_driver() {
  uint64_t tick = now_ / kTickUnits;
  uint64_t elapsed = tick - live_start_tick_;
  // Catching up a far-behind replica with tiny messages takes time, so the
  // bound is on ticks without progress (some node applies more, or a
  // follower's log grows), under an absolute cap.
  for (const auto& [id, n] : nodes_) {
    if (!n.up) continue;
    auto& [applied_max, log_max] = live_progress_[id];
    uint64_t log = n.node->role() == Role::kLeader ? 0 : n.disk->last_index();
    if (n.sm.applied() > applied_max || log > log_max) {
      applied_max = std::max(applied_max, n.sm.applied());
      log_max = std::max(log_max, log);
      live_progress_tick_ = tick;
    }
  }
  uint64_t stalled = tick - std::max(live_progress_tick_, live_start_tick_);
  if (stalled > live_bound_ticks_ || elapsed > kLivenessCapTicks) {
    std::string what = !probe_acked_ ? "no write committed" : "replicas did not converge";
    fail("liveness: " + what + " after healing all faults (" + std::to_string(elapsed) +
         " ticks, the last " + std::to_string(stalled) + " without progress);" + cluster_report());
    return;
  }
  SimNode* l = leader();
  if (l == nullptr) return;
  ConfState cs = l->node->conf_state();
  if (cs.voters_outgoing_size() > 0 && !cs.auto_leave() && tick % 5 == 0) {
    propose_conf_change(*l, ConfChange());
  }
  if (!probe_acked_) {
    if (probe_node_ != l->id || probe_inc_ != l->incarnation ||
        tick - probe_tick_ > 3 * static_cast<uint64_t>(params_.election_timeout)) {
      Write w;
      w.id = ++write_seq_;
      w.key = rng_.below(params_.keys);
      w.payload = "probe";
      auto r = l->node->propose(encode_write(w));
      SIM_TRACE("n", l->id, " liveness probe w", w.id,
                r.is_ok() ? "" : " refused: " + r.status().to_string());
      if (r.is_ok()) {
        l->proposals[r->index] = Proposal{r->term, w.id, w.key, true};
        probe_node_ = l->id;
        probe_inc_ = l->incarnation;
        probe_tick_ = tick;
      }
      after_input(*l);
    }
    return;
  }
  if (cs.voters_outgoing_size() > 0) return;
  uint64_t applied = l->sm.applied();
  if (applied < probe_index_ || l->disk->last_index() != applied) return;
  std::vector<SimNode*> members;
  for (auto* ids : {&cs.voters(), &cs.learners()}) {
    for (uint64_t id : *ids) {
      SimNode* m = find(id);
      if (m == nullptr || !m->up || m->paused) return;
      if (m->sm.applied() != applied || m->sm.chain() != l->sm.chain()) return;
      members.push_back(m);
    }
  }
  // Converged. No acknowledged write may be missing from the common state.
  const AppliedRecord* rec = oracle_.applied_at(applied);
  if (rec == nullptr || rec->chain != l->sm.chain()) {
    fail("state machine safety: the converged state at " + std::to_string(applied) +
         " is not the one first applied there");
    return;
  }
  for (const Ack& a : acks_) {
    const AppliedRecord* r = oracle_.applied_at(a.index);
    if (a.index > applied || r == nullptr || r->term != a.term || r->hash != a.hash) {
      fail("committed entry lost: acknowledged write w" + std::to_string(a.write_id) + " at (" +
           std::to_string(a.index) + ", " + std::to_string(a.term) +
           ") is not in the converged state");
      return;
    }
  }
  liveness_ticks_ = elapsed;
  SIM_TRACE("=== converged after ", elapsed, " ticks: ", members.size(), " members at index ",
            applied, ", ", conf_string(cs), " ===");
  phase_ = Phase::kDone;
}

std::string Cluster::cluster_report() {
  std::ostringstream o;
  for (const auto& [id, n] : nodes_) {
    o << "\n    n" << id << ": ";
    if (n.decommissioned) {
      o << "decommissioned";
      continue;
    }
    if (!n.up) {
      o << "down";
      continue;
    }
    o << raft::role_name(n.node->role()) << " term=" << n.node->term()
      << " lead=" << n.node->leader() << " applied=" << n.sm.applied() << " chain=" << std::hex
      << (n.sm.chain() & 0xffffff) << std::dec << (n.paused ? " PAUSED" : "")
      << (n.inflight ? " READY-OUTSTANDING" : "") << " commit=" << n.disk_hs.commit() << " log=["
      << n.disk->first_index() << ".." << n.disk->last_index() << "] "
      << conf_string(n.node->conf_state());
  }
  return o.str();
}

}  // namespace

SimResult run_seed(const SimOptions& opt) {
  QKV_CHECK(opt.nodes == 3 || opt.nodes == 5 || opt.nodes == 7) << "nodes must be 3, 5 or 7";
  Cluster c(opt);
  return c.run();
}

}  // namespace qkv::sim
