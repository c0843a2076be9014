#include "cluster/node.h"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cluster/snapshot_transfer.h"

namespace qkv::cluster {

using Clock = std::chrono::steady_clock;

namespace {
// CLOCK_BOOTTIME: monotonic, and it also counts time the machine spent
// suspended (a lease must have ended after a suspend too).
int64_t boot_us() {
  timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}
}  // namespace

std::string encode_member_context(const PeerAddress& a) {
  return a.host + ":" + std::to_string(a.port);
}

std::optional<PeerAddress> decode_member_context(std::string_view s) {
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  PeerAddress a;
  a.host = std::string(s.substr(0, colon));
  unsigned long port = 0;
  for (char c : s.substr(colon + 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    port = port * 10 + static_cast<unsigned long>(c - '0');
    if (port > 65535) return std::nullopt;
  }
  if (port == 0) return std::nullopt;
  a.port = static_cast<uint16_t>(port);
  return a;
}

Node::Node(asio::io_context& io, NodeOptions options, StateMachineFactory factory)
    : io_(io), opts_(std::move(options)), factory_(std::move(factory)), tick_timer_(io) {}

Node::~Node() {
  *alive_ = false;
  stop();
  persist_pool_.join();
  snapshot_pool_.join();  // a file being written stops at its next block
}

namespace {

std::string peers_file(const std::string& dir) { return dir + "/peers"; }

class NoRecords final : public storage::RecordSource {
 public:
  Result<bool> next(std::string_view*, std::string_view*) override { return false; }
};

std::map<uint64_t, PeerAddress> load_peers(const std::string& dir) {
  std::map<uint64_t, PeerAddress> out;
  std::ifstream in(peers_file(dir));
  uint64_t id;
  std::string hostport;
  while (in >> id >> hostport) {
    if (auto a = decode_member_context(hostport)) out[id] = *a;
  }
  return out;
}

void save_peers(const std::string& dir, const std::map<uint64_t, PeerAddress>& peers) {
  std::string tmp = peers_file(dir) + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& [id, a] : peers) out << id << " " << encode_member_context(a) << "\n";
  }
  std::rename(tmp.c_str(), peers_file(dir).c_str());
}

}  // namespace

Status Node::start() {
  fs_ = opts_.TEST_file_system ? opts_.TEST_file_system
                               : std::make_shared<storage::PosixFileSystem>();
  if (Status s = fs_->create_dirs(opts_.data_dir); !s.is_ok()) return s;
  storage::WalRecovery rec;
  auto ls = storage::LogStore::open(fs_.get(), opts_.data_dir + "/wal", opts_.wal, &rec);
  if (!ls.is_ok()) return ls.status();
  log_store_ = std::move(ls).value();
  for (const auto& note : rec.notes) std::fprintf(stderr, "quorumkv: %s\n", note.c_str());

  addresses_ = opts_.initial_members;
  for (auto& [id, a] : load_peers(opts_.data_dir)) addresses_[id] = a;

  transport_ = std::make_unique<net::PeerTransport>(io_, opts_.id, opts_.transport);
  auto alive = alive_;
  transport_->set_handlers(
      [this, alive](raftpb::Message&& m) {
        if (*alive) on_raft_message(std::move(m));
      },
      [this, alive](uint64_t from, netpb::Forward&& f) {
        if (*alive && forward_handler_) forward_handler_(from, std::move(f));
      },
      [this, alive](uint64_t peer) {
        if (!*alive) return;
        for (auto& [gid, g] : groups_) g.raft->report_unreachable(peer);
      });
  transport_->set_snapshot_handlers(
      [this, alive](uint64_t from, netpb::SnapshotFetch&& f) {
        if (*alive) on_snapshot_fetch(from, std::move(f));
      },
      [this, alive](uint64_t from, netpb::SnapshotData&& d) {
        if (*alive) on_snapshot_data(from, std::move(d));
      });
  // Files written for followers by an earlier run are stale; partially
  // received ones are kept to resume.
  if (Status s = fs_->create_dirs(snapshot_dir("send")); !s.is_ok()) return s;
  if (Status s = fs_->create_dirs(snapshot_dir("recv")); !s.is_ok()) return s;
  if (auto names = fs_->list_dir(snapshot_dir("send")); names.is_ok()) {
    for (const auto& n : *names)
      (void)fs_->remove_file(storage::path_join(snapshot_dir("send"), n));
  }
  if (Status s = transport_->listen(opts_.peer_host, opts_.peer_port); !s.is_ok()) return s;
  for (const auto& [id, a] : addresses_) {
    if (id != opts_.id) transport_->add_peer(id, a.host, a.port);
  }
  bool fresh = !log_store_->has_group(1);
  if (Status s = open_group(1, fresh); !s.is_ok()) return s;
  save_peers(opts_.data_dir, addresses_);
  clock_start_us_ = boot_us();
  schedule_tick();
  kick();
  return Status::ok();
}

Status Node::open_group(uint64_t gid, bool fresh) {
  Group& g = groups_[gid];
  g.id = gid;
  auto sm = factory_(gid);
  if (!sm.is_ok()) return sm.status();
  g.sm = std::move(sm).value();
  raft::MemoryStorage* storage = log_store_->group(gid);
  if (fresh && !opts_.join) {
    raft::ConfState cs;
    for (const auto& [id, a] : opts_.initial_members) cs.add_voters(id);
    if (cs.voters_size() == 0) cs.add_voters(opts_.id);
    raft::Snapshot boot = raft::bootstrap_snapshot(gid, cs);
    NoRecords none;
    if (Status s = g.sm->restore(boot.metadata(), none); !s.is_ok()) return s;
    if (Status s = log_store_->bootstrap(gid, boot); !s.is_ok()) return s;
  }
  uint64_t applied = g.sm->applied_index();
  uint64_t base = storage->first_index() - 1;
  if (applied < base && recover_received_snapshot(g, base).is_ok()) {
    applied = g.sm->applied_index();
  }
  if (applied < base) {
    // The log was compacted past what the state machine holds (a snapshot
    // was installed and the process died before applying it).
    return Status(Code::kCorruption, "group " + std::to_string(gid) + ": applied index " +
                                         std::to_string(applied) + " is below the log base " +
                                         std::to_string(base) +
                                         "; the state machine cannot catch up from this log");
  }
  if (applied > 0) storage->set_conf_state(g.sm->conf_state());
  // A commit index written without a sync (log_store.h) may come back lower
  // than what the state machine applied: everything applied was committed,
  // and is in the log, so resume from there.
  if (raft::HardState hs = storage->initial_state().hard_state; hs.commit() < applied) {
    QKV_CHECK_LE(applied, storage->last_index())
        << "group " << gid << ": applied index " << applied << " is past the log";
    hs.set_commit(applied);
    storage->set_hard_state(hs);
  }
  g.last_snapshot_index = base;
  raft::Config c;
  c.id = opts_.id;
  c.group = gid;
  c.storage = storage;
  c.applied = applied;
  c.election_timeout_ticks = opts_.election_ticks;
  c.heartbeat_interval_ticks = opts_.heartbeat_ticks;
  c.read_mode = opts_.read_mode;
  c.lease_margin_ticks = opts_.lease_margin_ticks;
  c.msg_bytes_max = opts_.msg_bytes_max;
  c.inflight_msgs_max = opts_.inflight_msgs_max;
  c.uncommitted_bytes_max = opts_.uncommitted_bytes_max;
  c.snapshot_chunk_bytes = opts_.snapshot_chunk_bytes;
  c.coalesce_appends = opts_.coalesce_appends;
  c.random_seed = static_cast<uint64_t>(Clock::now().time_since_epoch().count()) ^ opts_.id;
  auto node = raft::Node::create(c);
  if (!node.is_ok()) return node.status();
  g.raft = std::move(node).value();
  // A single founding member elects itself at once.
  if (fresh && opts_.initial_members.size() <= 1 && !opts_.join) g.raft->campaign();
  return Status::ok();
}

void Node::stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& [gid, o] : outgoing_) {
    if (o) o->cancel->store(true);
  }
  asio::error_code ec;
  tick_timer_.cancel();
  if (transport_) transport_->close();
  for (auto& [gid, g] : groups_) {
    for (auto& [idx, w] : g.waiters) w.cb(Status(Code::kIoError, "node stopping"), {});
    g.waiters.clear();
    for (auto& [cb, t] : g.reads_unasked) cb(Status(Code::kIoError, "node stopping"));
    g.reads_unasked.clear();
    for (auto& [ctx, rs] : g.reads_asked)
      for (auto& r : rs) r.first(Status(Code::kIoError, "node stopping"));
    g.reads_asked.clear();
    for (auto& [i, r] : g.reads_ready) r.first(Status(Code::kIoError, "node stopping"));
    g.reads_ready.clear();
  }
}

void Node::fail_node(const std::string& why) {
  if (!fatal_.empty()) return;
  fatal_ = why;
  std::fprintf(stderr, "quorumkv: FATAL: %s\n", why.c_str());
  stop();
}

// ---------------------------------------------------------------------------
// Ticks and the Ready loop

void Node::schedule_tick() {
  if (stopped_) return;
  // On the tick grid (no drift); after a stall the missed callbacks are
  // skipped, not run in a burst (sync_clock keeps the lease clock on time).
  const auto period = std::chrono::milliseconds(opts_.tick_ms);
  auto next = tick_timer_.expiry() + period;
  if (next <= asio::steady_timer::clock_type::now()) {
    next = asio::steady_timer::clock_type::now() + period;
  }
  tick_timer_.expires_at(next);
  auto alive = alive_;
  tick_timer_.async_wait([this, alive](const asio::error_code& ec) {
    if (ec || !*alive || stopped_) return;
    tick();
    schedule_tick();
  });
}

void Node::sync_clock() {
  if (stopped_) return;
  const int64_t tick_us = int64_t{opts_.tick_ms} * 1000;
  const uint64_t target = static_cast<uint64_t>((boot_us() - clock_start_us_) / tick_us);
  if (target <= clock_ticks_) return;
  const uint64_t delta = target - clock_ticks_;
  clock_ticks_ = target;
  for (auto& [gid, g] : groups_) g.raft->advance_clock(delta);
}

void Node::tick() {
  sync_clock();
  ticks_run_++;
  for (auto& [gid, g] : groups_) {
    g.raft->tick_timeouts();
    expire_requests(g);
    ask_reads(g);
  }
  snapshot_tick();
  kick();
}

void Node::kick() {
  if (kicked_ || stopped_) return;
  kicked_ = true;
  auto alive = alive_;
  asio::post(io_, [this, alive] {
    if (!*alive) return;
    kicked_ = false;
    run_ready_loop();
  });
}

void Node::send_all(std::vector<raftpb::Message>& msgs) {
  for (auto& m : msgs) {
    if (m.to() == opts_.id) continue;
    if (!transport_->send(std::move(m))) {
      // Unknown peer or full queue: Raft retransmits.
    }
  }
}

void Node::run_ready_loop() {
  if (stopped_) return;
  if (persisting_) {
    // A leader's appends of entries proposed since leave now, while its own
    // disk is busy (raft::Node::take_early_messages); the next Ready
    // persists those entries here.
    for (auto& [gid, g] : groups_) {
      if (!g.ready || !opts_.early_messages) continue;
      std::vector<raftpb::Message> msgs = g.raft->take_early_messages();
      send_all(msgs);
    }
    // Entries committed since the outstanding Readies were taken (the
    // followers' acknowledgements arrive while this node syncs its next
    // batch) are applied now if durable here, not after that sync.
    for (auto& [gid, g] : groups_) {
      if (!g.ready) continue;
      std::vector<raftpb::Entry> ents = g.raft->durable_committed();
      if (ents.empty()) continue;
      apply_entries(g, ents, std::nullopt);
      if (stopped_) return;
      serve_reads(g);
    }
    return;
  }
  bool staged = false;
  bool leader_staged = false;
  bool handled = false;
  for (auto& [gid, g] : groups_) {
    if (!g.raft->has_ready()) continue;
    g.ready = g.raft->ready();
    raft::Ready& rd = *g.ready;
    send_all(rd.messages);
    g.ready_writes = log_store_->must_write(gid, rd);
    if (!g.ready_writes) {
      // Nothing to make durable (at most a new commit index, volatile in
      // Raft): no hop through the persist thread (decision 22).
      log_store_->note_commit(gid, rd);
      continue;
    }
    g.ready_first_new = rd.entries.empty() ? 0 : rd.entries.front().index();
    if (Status s = log_store_->stage_taking_entries(gid, rd); !s.is_ok()) {
      fail_node("cannot stage group " + std::to_string(gid) + ": " + s.to_string());
      return;
    }
    staged = true;
    leader_staged = leader_staged || g.raft->role() == raft::Role::kLeader;
  }
  if (staged) {
    persisting_ = true;
    if (!leader_staged && opts_.follower_sync_inline) {
      // ARCHITECTURE decision 22: a follower syncs on its io thread, and
      // finishes the Readies at once: its acknowledgements leave before it
      // applies what they carried committed (finish_ready sends, then
      // applies), so the leader's commit does not wait for this apply.
      auto t0 = Clock::now();
      bool synced = false;
      Status st = log_store_->flush(&synced);
      if (synced) fsync_latency_.add(Clock::now() - t0);
      on_persisted(st);
      return;
    }
    auto alive = alive_;
    asio::post(persist_pool_, [this, alive] {
      auto t0 = Clock::now();
      bool synced = false;
      Status st = log_store_->flush(&synced);
      auto took = Clock::now() - t0;
      asio::post(io_, [this, alive, st, took, synced] {
        if (!*alive) return;
        if (synced) fsync_latency_.add(took);
        on_persisted(st);
      });
    });
  }
  // While the disk works: finish the Readies that wrote nothing, and apply
  // what the others hand out that is already durable here.
  for (auto& [gid, g] : groups_) {
    if (!g.ready) continue;
    handled = true;
    if (!g.ready_writes) {
      finish_ready(g);
    } else {
      apply_durable(g, *g.ready);
    }
    if (stopped_) return;
  }
  if (handled && !staged) kick();
}

void LatencyHistogram::add(std::chrono::steady_clock::duration took) {
  const auto us = static_cast<uint64_t>(
      std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(took).count()));
  size_t b = 0;
  while (b < kBoundsUs.size() && us > kBoundsUs[b]) b++;
  counts[b]++;
  sum_us += us;
}

void Node::on_persisted(Status st) {
  persisting_ = false;
  if (!st.is_ok()) {
    fail_node("WAL write failed: " + st.to_string());
    return;
  }
  for (auto& [gid, g] : groups_) {
    if (g.ready) finish_ready(g);
    if (stopped_) return;
  }
  kick();
}

void Node::apply_durable(Group& g, raft::Ready& rd) {
  // Committed entries may be applied (and their proposers answered) as soon
  // as they are durable on this node as well as committed: ready() hands out
  // every entry not yet persisted in rd.entries (one Ready is outstanding at
  // a time; staging moved them out: ready_first_new is the first), so
  // committed entries below it are on disk here.
  // Those at or above it wait for this Ready's sync: a node never applies
  // what a crash could take from its own log (applied <= last durable index
  // is what a restart relies on, open_group()).
  if (rd.snapshot || rd.committed_entries.empty()) return;
  if (g.ready_first_new != 0 && rd.committed_entries.back().index() >= g.ready_first_new) return;
  apply_entries(g, rd.committed_entries, rd.conf_state);
  rd.committed_entries.clear();  // finish_ready() keeps conf_state for the peers
  take_read_states(g, rd);
  serve_reads(g);
}

void Node::take_read_states(Group& g, raft::Ready& rd) {
  for (const auto& rs : rd.read_states) {
    auto it = g.reads_asked.find(rs.context);
    if (it == g.reads_asked.end()) continue;
    for (auto& r : it->second) g.reads_ready.emplace(rs.index, std::move(r));
    g.reads_asked.erase(it);
  }
  rd.read_states.clear();
}

void Node::finish_ready(Group& g) {
  raft::Ready rd = std::move(*g.ready);
  g.ready.reset();
  // Messages of a term this node has left are stale (node.h, step 3).
  uint64_t term = g.raft->term();
  std::erase_if(rd.messages_after_persist,
                [term](const raftpb::Message& m) { return m.term() != 0 && m.term() < term; });
  send_all(rd.messages_after_persist);
  if (rd.snapshot) {
    if (Status s = restore_snapshot(g, *rd.snapshot); !s.is_ok()) {
      fail_node("cannot install snapshot: " + s.to_string());
      return;
    }
    g.last_snapshot_index = rd.snapshot->metadata().index();
  }
  apply_entries(g, rd.committed_entries, rd.conf_state);
  if (stopped_) return;
  take_read_states(g, rd);
  g.raft->advance();
  if (rd.conf_state || rd.snapshot) update_peers_from_conf(g);
  serve_reads(g);
  // A soft-state change (lost leadership) fails what waits on this leader.
  if (rd.soft_state && rd.soft_state->role != raft::Role::kLeader) {
    for (auto& [ctx, rs] : g.reads_asked) {
      for (auto& r : rs) r.first(leader_error(g));
    }
    g.reads_asked.clear();
  }
  maybe_snapshot(g);
}

void Node::apply_entries(Group& g, const std::vector<raftpb::Entry>& ents,
                         const std::optional<raftpb::ConfState>& conf) {
  if (ents.empty()) return;
  std::vector<std::string> results;
  results.reserve(ents.size());
  if (Status s = g.sm->apply(ents, conf, &results); !s.is_ok()) {
    fail_node("cannot apply entries: " + s.to_string());
    return;
  }
  for (size_t i = 0; i < ents.size(); i++) {
    const auto& e = ents[i];
    if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
      raftpb::ConfChange cc;
      if (cc.ParseFromString(e.data())) {
        auto addr = decode_member_context(cc.context());
        for (const auto& ch : cc.changes()) {
          if (ch.type() != raftpb::CONF_REMOVE_NODE && addr) addresses_[ch.node_id()] = *addr;
        }
      }
    }
    auto it = g.waiters.find(e.index());
    if (it == g.waiters.end()) continue;
    Waiter w = std::move(it->second);
    g.waiters.erase(it);
    if (w.term == e.term()) {
      proposal_latency_.add(Clock::now() - w.proposed);
      w.cb(Status::ok(), i < results.size() ? std::move(results[i]) : std::string());
    } else {
      w.cb(Status(Code::kNotLeader, "proposal lost to a leader change (not applied)"), {});
    }
  }
  // Waiters at indexes now owned by another term can never succeed.
  uint64_t last = ents.back().index();
  while (!g.waiters.empty() && g.waiters.begin()->first <= last) {
    auto w = std::move(g.waiters.begin()->second);
    g.waiters.erase(g.waiters.begin());
    w.cb(Status(Code::kNotLeader, "proposal lost to a leader change (not applied)"), {});
  }
}

void Node::update_peers_from_conf(Group& g) {
  raftpb::ConfState cs = g.raft->conf_state();
  std::set<uint64_t> members;
  for (auto id : cs.voters()) members.insert(id);
  for (auto id : cs.learners()) members.insert(id);
  for (auto id : cs.voters_outgoing()) members.insert(id);
  for (auto id : cs.learners_next()) members.insert(id);
  for (uint64_t id : members) {
    if (id == opts_.id) continue;
    auto a = addresses_.find(id);
    if (a != addresses_.end()) transport_->add_peer(id, a->second.host, a->second.port);
  }
  save_peers(opts_.data_dir, addresses_);
}

void Node::maybe_snapshot(Group& g) {
  uint64_t applied = g.sm->applied_index();
  if (opts_.snapshot_entries == 0 || applied < g.last_snapshot_index + opts_.snapshot_entries) {
    return;
  }
  (void)take_snapshot(g.id);
}

Status Node::take_snapshot(uint64_t gid) {
  auto it = groups_.find(gid);
  if (it == groups_.end()) return Status(Code::kNotFound, "no such group");
  Group& g = it->second;
  // Not while a WAL batch is being written: LogStore::compact must not run
  // beside flush() (a Ready with nothing to write is finished while
  // another group's batch may be in flight).
  if (g.ready || persisting_) {
    return Status(Code::kUnavailable, "a Ready is being persisted; try again");
  }
  // The state machine's durable state is the snapshot: compaction keeps
  // only its metadata (followers get a file written on demand).
  auto meta = g.sm->persist_applied();
  if (!meta.is_ok()) return meta.status();
  if (meta->index() <= g.last_snapshot_index) return Status::ok();
  auto snap = std::make_shared<raftpb::Snapshot>();
  *snap->mutable_metadata() = *meta;
  if (Status s = log_store_->compact(gid, snap); !s.is_ok()) {
    fail_node("cannot compact the log: " + s.to_string());
    return s;
  }
  g.last_snapshot_index = meta->index();
  return Status::ok();
}

// ---------------------------------------------------------------------------
// Requests

Status Node::leader_error(const Group& g) const {
  uint64_t lead = g.raft->leader();
  if (lead == raft::kNone || lead == opts_.id) {
    return Status(Code::kNoLeader, "no leader is known");
  }
  return Status(Code::kNotLeader, std::to_string(lead));
}

void Node::await_proposal(Group& g, Result<raft::Proposed> p, ProposeCallback cb) {
  if (!p.is_ok()) {
    cb(p.code() == Code::kNotLeader ? leader_error(g) : p.status(), {});
    return;
  }
  g.waiters[p->index] = Waiter{p->term, std::move(cb), Clock::now()};
  kick();
}

void Node::propose(uint64_t gid, std::string payload, ProposeCallback cb) {
  auto it = groups_.find(gid);
  if (stopped_ || it == groups_.end()) {
    cb(Status(Code::kNotFound, "no such group"), {});
    return;
  }
  Group& g = it->second;
  await_proposal(g, g.raft->propose(std::move(payload)), std::move(cb));
}

void Node::read_barrier(uint64_t gid, ReadCallback cb) {
  auto it = groups_.find(gid);
  if (stopped_ || it == groups_.end()) {
    cb(Status(Code::kNotFound, "no such group"));
    return;
  }
  Group& g = it->second;
  if (g.raft->leader() == raft::kNone) {
    cb(Status(Code::kNoLeader, "no leader is known"));
    return;
  }
  g.reads_unasked.emplace_back(std::move(cb),
                               Clock::now() + std::chrono::milliseconds(opts_.request_timeout_ms));
  // Ask at once if nothing is in flight; otherwise the next round (after
  // the current one returns) takes every read that arrived meanwhile.
  if (g.reads_asked.empty()) ask_reads(g);
}

void Node::ask_reads(Group& g) {
  if (g.reads_unasked.empty()) return;
  sync_clock();  // a lease is judged by the clock
  std::string ctx = std::to_string(opts_.id) + "/" + std::to_string(++g.read_seq);
  Status s = g.raft->read_index(ctx);
  if (!s.is_ok()) {
    for (auto& [cb, t] : g.reads_unasked) cb(s);
    g.reads_unasked.clear();
    return;
  }
  auto& slot = g.reads_asked[ctx];
  for (auto& r : g.reads_unasked) slot.push_back(std::move(r));
  g.reads_unasked.clear();
  kick();
}

void Node::serve_reads(Group& g) {
  uint64_t applied = g.sm->applied_index();
  while (!g.reads_ready.empty() && g.reads_ready.begin()->first <= applied) {
    auto r = std::move(g.reads_ready.begin()->second);
    g.reads_ready.erase(g.reads_ready.begin());
    r.first(Status::ok());
  }
  if (!g.reads_unasked.empty() && g.reads_asked.empty()) ask_reads(g);
}

void Node::expire_requests(Group& g) {
  auto now = Clock::now();
  const auto proposed_by = now - std::chrono::milliseconds(opts_.request_timeout_ms);
  for (auto it = g.waiters.begin(); it != g.waiters.end();) {
    if (it->second.proposed <= proposed_by) {
      auto cb = std::move(it->second.cb);
      it = g.waiters.erase(it);
      cb(Status(Code::kTimedOut, "not committed in time; the outcome is unknown"), {});
    } else {
      ++it;
    }
  }
  // A read round whose answer was lost (leader change, dropped message)
  // fails its readers at their deadline; they may retry.
  for (auto it = g.reads_asked.begin(); it != g.reads_asked.end();) {
    auto& rs = it->second;
    for (size_t i = 0; i < rs.size();) {
      if (rs[i].second <= now) {
        auto cb = std::move(rs[i].first);
        rs.erase(rs.begin() + static_cast<long>(i));
        cb(Status(Code::kTimedOut, "no read index from a leader in time"));
      } else {
        i++;
      }
    }
    it = rs.empty() ? g.reads_asked.erase(it) : std::next(it);
  }
  for (auto it = g.reads_ready.begin(); it != g.reads_ready.end();) {
    if (it->second.second <= now) {
      auto cb = std::move(it->second.first);
      it = g.reads_ready.erase(it);
      cb(Status(Code::kTimedOut, "the state machine did not catch up in time"));
    } else {
      ++it;
    }
  }
}

void Node::on_raft_message(raftpb::Message&& m) {
  if (stopped_) return;
  sync_clock();  // a read index request is judged by the clock
  auto it = groups_.find(m.group());
  if (it == groups_.end()) return;
  if (m.type() == raftpb::MSG_SNAP) {
    on_install_snapshot(it->second, std::move(m));  // snapshot_transfer.cc
  } else {
    (void)it->second.raft->step(m);
  }
  kick();
}

void Node::add_member(uint64_t gid, uint64_t id, const PeerAddress& addr, bool learner,
                      ProposeCallback cb) {
  auto it = groups_.find(gid);
  if (it == groups_.end()) {
    cb(Status(Code::kNotFound, "no such group"), {});
    return;
  }
  raftpb::ConfChange cc;
  auto* ch = cc.add_changes();
  ch->set_type(learner ? raftpb::CONF_ADD_LEARNER : raftpb::CONF_ADD_VOTER);
  ch->set_node_id(id);
  cc.set_context(encode_member_context(addr));
  addresses_[id] = addr;
  if (id != opts_.id) transport_->add_peer(id, addr.host, addr.port);
  Group& g = it->second;
  await_proposal(g, g.raft->propose_conf_change(cc), std::move(cb));
}

void Node::remove_member(uint64_t gid, uint64_t id, ProposeCallback cb) {
  auto it = groups_.find(gid);
  if (it == groups_.end()) {
    cb(Status(Code::kNotFound, "no such group"), {});
    return;
  }
  raftpb::ConfChange cc;
  auto* ch = cc.add_changes();
  ch->set_type(raftpb::CONF_REMOVE_NODE);
  ch->set_node_id(id);
  Group& g = it->second;
  await_proposal(g, g.raft->propose_conf_change(cc), std::move(cb));
}

Status Node::transfer_leader(uint64_t gid, uint64_t to) {
  auto it = groups_.find(gid);
  if (it == groups_.end()) return Status(Code::kNotFound, "no such group");
  Status s = it->second.raft->transfer_leader(to);
  kick();
  return s;
}

Result<std::vector<raftpb::Entry>> Node::log_entries(uint64_t gid, uint64_t lo, uint64_t hi,
                                                     uint64_t bytes_max) const {
  auto it = groups_.find(gid);
  if (it == groups_.end()) return Status(Code::kNotFound, "no such group");
  return it->second.raft->entries(lo, hi, bytes_max);
}

std::pair<uint64_t, uint64_t> Node::log_bounds(uint64_t gid) const {
  auto it = groups_.find(gid);
  if (it == groups_.end()) return {0, 0};
  return {it->second.raft->first_index(), it->second.raft->last_index()};
}

std::vector<uint64_t> Node::members(uint64_t gid) const {
  auto it = groups_.find(gid);
  if (it == groups_.end()) return {};
  raftpb::ConfState cs = it->second.raft->conf_state();
  std::set<uint64_t> ids;
  for (auto id : cs.voters()) ids.insert(id);
  for (auto id : cs.learners()) ids.insert(id);
  for (auto id : cs.voters_outgoing()) ids.insert(id);
  for (auto id : cs.learners_next()) ids.insert(id);
  return std::vector<uint64_t>(ids.begin(), ids.end());
}

uint64_t Node::leader(uint64_t gid) const {
  auto it = groups_.find(gid);
  return it == groups_.end() ? raft::kNone : it->second.raft->leader();
}

bool Node::is_leader(uint64_t gid) const {
  auto it = groups_.find(gid);
  return it != groups_.end() && it->second.raft->role() == raft::Role::kLeader;
}

std::optional<PeerAddress> Node::peer_address(uint64_t id) const {
  auto it = addresses_.find(id);
  if (it == addresses_.end()) return std::nullopt;
  return it->second;
}

std::vector<GroupStatus> Node::status() const {
  std::vector<GroupStatus> out;
  for (const auto& [gid, g] : groups_) {
    GroupStatus s;
    s.group = gid;
    s.raft = g.raft->status();
    s.applied = g.sm->applied_index();
    s.snapshot_index = g.last_snapshot_index;
    s.first_index = log_store_->group(gid)->first_index();
    s.pending_proposals = g.waiters.size();
    s.pending_reads = g.reads_unasked.size() + g.reads_ready.size();
    s.ticks_late = clock_ticks_ > ticks_run_ ? clock_ticks_ - ticks_run_ : 0;
    for (const auto& [ctx, rs] : g.reads_asked) s.pending_reads += rs.size();
    out.push_back(std::move(s));
  }
  return out;
}

storage::WalStats Node::wal_stats() const {
  return log_store_ ? log_store_->wal().stats() : storage::WalStats{};
}

}  // namespace qkv::cluster
