// Three cluster::Nodes in one process over loopback TCP, with a toy state
// machine: elections, replication through the WAL, linearizable read
// barriers, proposals refused on followers, failover after a node stops.
#include <gtest/gtest.h>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

#include "cluster/node.h"
#include "storage/file_system.h"
#include "unit/temp_dir.h"

namespace qkv::cluster {
namespace {

class VectorSource final : public storage::RecordSource {
 public:
  std::vector<std::pair<std::string, std::string>> records;
  Result<bool> next(std::string_view* k, std::string_view* v) override {
    if (i_ == records.size()) return false;
    *k = records[i_].first;
    *v = records[i_].second;
    i_++;
    return true;
  }

 private:
  size_t i_ = 0;
};

class ListMachine : public GroupStateMachine {
 public:
  Status apply(const std::vector<raftpb::Entry>& entries,
               const std::optional<raftpb::ConfState>& conf,
               std::vector<std::string>* results) override {
    for (const auto& e : entries) {
      if (e.index() != applied_ + 1) return Status(Code::kCorruption, "gap in applied entries");
      applied_ = e.index();
      term_ = e.term();
      if (e.type() == raftpb::ENTRY_NORMAL && !e.data().empty()) values.push_back(e.data());
      results->push_back("ok:" + std::to_string(values.size()));
      if (on_apply) on_apply(e);
    }
    if (conf) conf_ = *conf;
    return Status::ok();
  }
  Status restore(const raftpb::SnapshotMetadata& meta, storage::RecordSource& records) override {
    std::vector<std::string> got;
    std::string_view k, v;
    for (;;) {
      auto more = records.next(&k, &v);
      if (!more.is_ok()) return more.status();
      if (!*more) break;
      got.emplace_back(v);
    }
    values = std::move(got);
    applied_ = meta.index();
    term_ = meta.term();
    conf_ = meta.conf_state();
    restores++;
    return Status::ok();
  }
  raftpb::SnapshotMetadata meta() const {
    raftpb::SnapshotMetadata m;
    m.set_group(1);
    m.set_index(applied_);
    m.set_term(term_);
    *m.mutable_conf_state() = conf_;
    return m;
  }
  Result<raftpb::SnapshotMetadata> persist_applied() override { return meta(); }
  Result<SnapshotSource> open_snapshot() override {
    auto src = std::make_unique<VectorSource>();
    for (size_t i = 0; i < values.size(); i++) {
      char k[24];
      std::snprintf(k, sizeof k, "v%012zu", i);
      src->records.emplace_back(k, values[i]);
    }
    SnapshotSource s;
    s.meta = meta();
    s.records = std::move(src);
    return s;
  }
  uint64_t applied_index() const override { return applied_; }
  raftpb::ConfState conf_state() const override { return conf_; }
  std::vector<std::string> values;
  int restores = 0;
  std::function<void(const raftpb::Entry&)> on_apply;  // after each entry

 private:
  uint64_t applied_ = 0;
  uint64_t term_ = 0;
  raftpb::ConfState conf_;
};

// Forwards to a ListMachine that outlives node restarts (as durable state would).
class Forwarder : public GroupStateMachine {
 public:
  explicit Forwarder(std::shared_ptr<ListMachine> m) : m_(std::move(m)) {}
  Status apply(const std::vector<raftpb::Entry>& e, const std::optional<raftpb::ConfState>& c,
               std::vector<std::string>* r) override {
    return m_->apply(e, c, r);
  }
  Status restore(const raftpb::SnapshotMetadata& meta, storage::RecordSource& r) override {
    return m_->restore(meta, r);
  }
  Result<raftpb::SnapshotMetadata> persist_applied() override { return m_->persist_applied(); }
  Result<SnapshotSource> open_snapshot() override { return m_->open_snapshot(); }
  uint64_t applied_index() const override { return m_->applied_index(); }
  raftpb::ConfState conf_state() const override { return m_->conf_state(); }

 private:
  std::shared_ptr<ListMachine> m_;
};

// An in-memory file system whose WAL syncs can be held (the disk is slow)
// and then let through or failed (the power is cut during the sync).
class GatedFileSystem final : public storage::MemFileSystem {
 public:
  void hold() {
    std::lock_guard<std::mutex> l(gate_mu_);
    held_ = true;
  }
  void release() {
    {
      std::lock_guard<std::mutex> l(gate_mu_);
      held_ = false;
    }
    gate_cv_.notify_all();
  }
  void cut_power() {
    {
      std::lock_guard<std::mutex> l(gate_mu_);
      failing_ = true;
    }
    gate_cv_.notify_all();
  }
  // After crash(): a new disk in the old one's place.
  void reset_gate() {
    std::lock_guard<std::mutex> l(gate_mu_);
    held_ = false;
    failing_ = false;
  }
  int waiting() {
    std::lock_guard<std::mutex> l(gate_mu_);
    return waiting_;
  }
  // Called before each WAL sync, on the syncing thread.
  void set_on_wal_sync(std::function<void()> f) {
    std::lock_guard<std::mutex> l(gate_mu_);
    on_wal_sync_ = std::move(f);
  }

 protected:
  Status on_sync(const std::string& path, File& f) override {
    if (path.find("/wal/") == std::string::npos) return Status::ok();
    std::function<void()> hook;
    {
      std::lock_guard<std::mutex> l(gate_mu_);
      hook = on_wal_sync_;
    }
    if (hook) hook();
    std::unique_lock<std::mutex> l(gate_mu_);
    waiting_++;
    gate_cv_.wait(l, [&] { return !held_ || failing_; });
    waiting_--;
    if (failing_) return Status(Code::kIoError, "power cut during fdatasync");
    return Status::ok();
  }

 private:
  std::mutex gate_mu_;
  std::condition_variable gate_cv_;
  std::function<void()> on_wal_sync_;
  bool held_ = false;
  bool failing_ = false;
  int waiting_ = 0;
};

TEST(LatencyHistogramTest, CountsByUpperBoundAndSums) {
  LatencyHistogram h;
  h.add(std::chrono::microseconds(100));  // at a bound: that bucket
  h.add(std::chrono::microseconds(101));  // above it: the next
  h.add(std::chrono::seconds(5));         // above every bound: the last
  h.add(std::chrono::microseconds(-3));   // a clock step back counts as 0
  EXPECT_EQ(h.counts[0], 2u);
  EXPECT_EQ(h.counts[1], 1u);
  EXPECT_EQ(h.counts.back(), 1u);
  EXPECT_EQ(h.sum_us, 100u + 101u + 5000000u);
}

class ClusterNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Reserve three ports.
    std::map<uint64_t, PeerAddress> members;
    std::vector<std::unique_ptr<net::PeerTransport>> probes;
    for (uint64_t id = 1; id <= 3; id++) {
      probes.push_back(
          std::make_unique<net::PeerTransport>(io_, 100 + id, net::TransportOptions{}));
      ASSERT_TRUE(probes.back()->listen("127.0.0.1", 0).is_ok());
      members[id] = PeerAddress{"127.0.0.1", probes.back()->listen_port()};
    }
    for (auto& p : probes) p->close();
    probes.clear();
    io_.run_for(std::chrono::milliseconds(10));
    for (uint64_t id = 1; id <= 3; id++) {
      NodeOptions o;
      o.id = id;
      o.data_dir = tmp_.path() + "/n" + std::to_string(id);
      o.peer_port = members[id].port;
      o.initial_members = members;
      o.tick_ms = 10;
      o.snapshot_entries = 0;
      o.wal.preallocate = false;
      options_[id] = o;
      start(id);
    }
  }
  void TearDown() override {
    nodes_.clear();
    io_.run_for(std::chrono::milliseconds(20));
  }
  void start(uint64_t id) {
    if (!machines_[id]) machines_[id] = std::make_shared<ListMachine>();
    auto m = machines_[id];
    nodes_[id] = std::make_unique<Node>(io_, options_[id], [m](uint64_t) {
      return Result<std::unique_ptr<GroupStateMachine>>(std::make_unique<Forwarder>(m));
    });
    Status s = nodes_[id]->start();
    ASSERT_TRUE(s.is_ok()) << s.to_string();
  }
  template <typename F>
  bool run_until(F pred, int ms = 10000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (!pred() && std::chrono::steady_clock::now() < deadline) {
      io_.run_for(std::chrono::milliseconds(5));
      if (io_.stopped()) io_.restart();
    }
    return pred();
  }
  // Restarts the cluster on gated in-memory disks, with an election timeout
  // long enough (1 s) that a held sync does not depose the leader.
  void restart_on_gated_disks(bool follower_sync_inline = false) {
    nodes_.clear();
    io_.run_for(std::chrono::milliseconds(20));
    for (auto& [id, o] : options_) {
      disks_[id] = std::make_shared<GatedFileSystem>();
      o.TEST_file_system = disks_[id];
      o.data_dir = "/mem/n" + std::to_string(id);
      o.election_ticks = 100;
      // A gate holds a sync until the test releases it, and every node runs
      // on this one thread: a follower syncing on it would stop them all
      // (so a test that syncs inline holds no follower's gate).
      o.follower_sync_inline = follower_sync_inline;
      machines_[id] = std::make_shared<ListMachine>();
    }
    for (uint64_t id = 1; id <= 3; id++) start(id);
  }
  uint64_t leader() {
    for (auto& [id, n] : nodes_) {
      if (n && n->is_leader(1)) return id;
    }
    return 0;
  }

  // Declared first: removed only after the nodes and the io_context are gone.
  test::TempDir tmp_{"qkv-cluster-test"};
  asio::io_context io_;
  std::map<uint64_t, NodeOptions> options_;
  std::map<uint64_t, std::unique_ptr<Node>> nodes_;
  std::map<uint64_t, std::shared_ptr<ListMachine>> machines_;
  std::map<uint64_t, std::shared_ptr<GatedFileSystem>> disks_;
};

TEST_F(ClusterNodeTest, ReplicatesReadsAndFailsOver) {
  ASSERT_TRUE(run_until([&] { return leader() != 0; }));
  uint64_t l = leader();
  int done = 0;
  for (int i = 0; i < 50; i++) {
    nodes_[l]->propose(1, "v" + std::to_string(i), [&](Status s, std::string r) {
      EXPECT_TRUE(s.is_ok()) << s.to_string();
      done++;
    });
  }
  ASSERT_TRUE(run_until([&] { return done == 50; }));
  // A follower refuses proposals and names the leader.
  uint64_t f = l % 3 + 1;
  Status refused;
  nodes_[f]->propose(1, "x", [&](Status s, std::string) { refused = s; });
  EXPECT_EQ(refused.code(), Code::kNotLeader);
  EXPECT_EQ(refused.message(), std::to_string(l));
  // A read barrier on the follower returns once it applied all 50. (On a
  // loaded machine an election may intervene: the barrier then fails with
  // the new leader's name, and the caller asks again, as clients do.)
  bool read_ok = false;
  for (int attempt = 0; attempt < 20 && !read_ok; attempt++) {
    bool answered = false;
    nodes_[f]->read_barrier(1, [&](Status s) {
      answered = true;
      if (!s.is_ok()) {
        EXPECT_TRUE(s.code() == Code::kNotLeader || s.code() == Code::kNoLeader ||
                    s.code() == Code::kTimedOut)
            << s.to_string();
        return;
      }
      EXPECT_GE(machines_[f]->values.size(), 50u);
      read_ok = true;
    });
    ASSERT_TRUE(run_until([&] { return answered; }));
  }
  ASSERT_TRUE(read_ok);
  // Stop the leader: another is elected and takes writes; nothing is lost.
  nodes_[l].reset();
  ASSERT_TRUE(run_until([&] { return leader() != 0; }));
  uint64_t l2 = leader();
  EXPECT_NE(l2, l);
  bool wrote = false;
  nodes_[l2]->propose(1, "after", [&](Status s, std::string) {
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    wrote = true;
  });
  ASSERT_TRUE(run_until([&] { return wrote; }));
  EXPECT_EQ(machines_[l2]->values.size(), 51u);
  EXPECT_EQ(machines_[l2]->values[0], "v0");
  // The old leader restarts from its data directory and catches up.
  start(l);
  ASSERT_TRUE(run_until([&] { return machines_[l]->values.size() == 51; }));
  EXPECT_EQ(machines_[l]->values.back(), "after");
}

TEST_F(ClusterNodeTest, LaggingNodeCatchesUpByAStreamedSnapshotFile) {
  // Compact every 20 entries; move snapshots in small chunks.
  nodes_.clear();
  io_.run_for(std::chrono::milliseconds(20));
  for (auto& [id, o] : options_) {
    o.snapshot_entries = 20;
    o.snapshot_chunk_bytes = 700;
    o.snapshot_progress_log_ms = 0;
  }
  for (uint64_t id = 1; id <= 3; id++) start(id);
  ASSERT_TRUE(run_until([&] { return leader() != 0; }));
  uint64_t l = leader();
  uint64_t lag = l % 3 + 1;
  nodes_[lag].reset();  // falls behind
  int done = 0;
  for (int i = 0; i < 300; i++) {
    nodes_[l]->propose(1, "value-" + std::to_string(i) + std::string(40, 'x'),
                       [&](Status s, std::string) {
                         EXPECT_TRUE(s.is_ok()) << s.to_string();
                         done++;
                       });
    if (i % 50 == 49) {
      ASSERT_TRUE(run_until([&] { return done == i + 1; }));
    }
  }
  ASSERT_TRUE(run_until([&] { return done == 300; }));
  auto st = nodes_[l]->status();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_GT(st[0].first_index, 200u) << "the leader's log must have been compacted";
  // The lagging node restarts: the log it needs is gone, so it fetches a
  // snapshot file (many chunks) and then the rest of the log.
  start(lag);
  ASSERT_TRUE(run_until([&] { return machines_[lag]->values.size() == 300; }, 20000));
  EXPECT_EQ(machines_[lag]->values, machines_[l]->values);
  EXPECT_GE(machines_[lag]->restores, 1);
  auto recv = nodes_[lag]->snapshot_status();
  ASSERT_EQ(recv.size(), 1u);
  EXPECT_GE(recv[0].received_total, 1u);
  EXPECT_GT(recv[0].recv_bytes_total, 300u * 40);
  auto sent = nodes_[l]->snapshot_status();
  EXPECT_GE(sent[0].built_total, 1u);
  EXPECT_GE(sent[0].sent_bytes_total, recv[0].recv_bytes_total);
  // Nothing is left in the receive folder.
  EXPECT_TRUE(std::filesystem::is_empty(options_[lag].data_dir + "/snapshots/recv"));
  // It takes new writes like any follower.
  bool wrote = false;
  nodes_[l]->propose(1, "after", [&](Status s, std::string) { wrote = s.is_ok(); });
  ASSERT_TRUE(run_until([&] { return wrote && machines_[lag]->values.size() == 301; }));
}

// A follower acknowledges entries only once they are durable on its disk:
// with both followers' syncs held, the leader's own sync is not a majority,
// so nothing is answered (decision 22: the commit-only shortcut must not
// release acknowledgements early).
TEST_F(ClusterNodeTest, NoAnswerBeforeAMajorityHasSynced) {
  restart_on_gated_disks();
  ASSERT_TRUE(run_until([&] { return leader() != 0; }));
  uint64_t l = leader();
  bool warm = false;
  nodes_[l]->propose(1, "warm", [&](Status s, std::string) { warm = s.is_ok(); });
  ASSERT_TRUE(run_until([&] { return warm; }));
  std::vector<uint64_t> followers;
  for (uint64_t id = 1; id <= 3; id++) {
    if (id != l) followers.push_back(id);
  }
  for (uint64_t f : followers) disks_[f]->hold();
  int done = 0;
  for (int i = 0; i < 5; i++) {
    nodes_[l]->propose(1, "v" + std::to_string(i), [&](Status s, std::string) {
      EXPECT_TRUE(s.is_ok()) << s.to_string();
      done++;
    });
  }
  ASSERT_TRUE(run_until(
      [&] { return disks_[followers[0]]->waiting() > 0 && disks_[followers[1]]->waiting() > 0; }));
  run_until([] { return false; }, 200);
  EXPECT_EQ(done, 0) << "answered before any follower's sync returned";
  EXPECT_EQ(machines_[l]->values.size(), 1u);
  disks_[followers[0]]->release();  // one follower + the leader: a majority
  ASSERT_TRUE(run_until([&] { return done == 5; }));
  disks_[followers[1]]->release();
}

// A follower that syncs on its io thread (decision 22) sends the
// acknowledgement of what it synced before it applies the entries that came
// committed along with them: the leader's next commit waits for the
// follower's sync, never for its apply. Checked on every apply of a follower
// after its first sync: something was handed to the leader's connection
// since that sync (the acknowledgement).
TEST_F(ClusterNodeTest, AFollowerAcknowledgesBeforeItApplies) {
  restart_on_gated_disks(/*follower_sync_inline=*/true);
  ASSERT_TRUE(run_until([&] { return leader() != 0; }));
  uint64_t l = leader();
  bool warm = false;
  nodes_[l]->propose(1, "warm", [&](Status s, std::string) { warm = s.is_ok(); });
  ASSERT_TRUE(run_until([&] { return warm; }));
  // What the hooks and callbacks touch lives as long as they do (a failing
  // run_until returns with proposals pending; TearDown answers them).
  struct Probe {
    std::thread::id io_thread = std::this_thread::get_id();
    std::map<uint64_t, uint64_t> at_sync;  // by follower: accepted at its last sync
    int checked = 0, late = 0, done = 0;
    std::function<void(int)> chain;
  };
  auto p = std::make_shared<Probe>();
  std::vector<uint64_t> followers;
  for (uint64_t id = 1; id <= 3; id++) {
    if (id != l) followers.push_back(id);
  }
  // Unset on every way out, before TearDown stops the nodes.
  struct Unhook {
    std::vector<std::shared_ptr<ListMachine>> machines;
    std::vector<std::shared_ptr<GatedFileSystem>> disks;
    ~Unhook() {
      for (auto& m : machines) m->on_apply = nullptr;
      for (auto& d : disks) d->set_on_wal_sync(nullptr);
    }
  } unhook;
  for (uint64_t id : followers) {
    unhook.machines.push_back(machines_[id]);
    unhook.disks.push_back(disks_[id]);
  }
  for (uint64_t id : followers) {
    Node* n = nodes_[id].get();
    Probe* q = p.get();
    disks_[id]->set_on_wal_sync([q, n, id, l] {
      if (std::this_thread::get_id() != q->io_thread) return;  // not an inline sync
      q->at_sync[id] = n->transport().stats(l).accepted;
    });
    machines_[id]->on_apply = [q, n, id, l](const raftpb::Entry&) {
      if (!q->at_sync.count(id)) return;
      q->checked++;
      if (n->transport().stats(l).accepted <= q->at_sync[id]) q->late++;
    };
  }
  // Writes proposed together and writes proposed as the one before is
  // answered: the followers' appends come with and without commits.
  Node* leader_node = nodes_[l].get();
  for (int i = 0; i < 30; i++) {
    leader_node->propose(1, "a" + std::to_string(i), [p](Status s, std::string) {
      EXPECT_TRUE(s.is_ok()) << s.to_string();
      p->done++;
    });
  }
  p->chain = [w = std::weak_ptr<Probe>(p), leader_node](int i) {
    auto q = w.lock();
    if (!q || i == 30) return;
    leader_node->propose(1, "b" + std::to_string(i), [q, i](Status s, std::string) {
      if (!s.is_ok()) return;  // stopped: TearDown answers what is pending
      q->done++;
      q->chain(i + 1);
    });
  };
  p->chain(0);
  ASSERT_TRUE(run_until([&] {
    if (p->done != 60) return false;
    for (uint64_t f : followers) {
      if (machines_[f]->values.size() != 61) return false;
    }
    return true;
  }));
  EXPECT_GT(p->checked, 0);
  EXPECT_EQ(p->late, 0) << "of " << p->checked << " applies on followers, " << p->late
                        << " came before the acknowledgement of their sync";
}

// A proposal that cannot commit (both followers' syncs held) fails with
// kTimedOut once request_timeout_ms has passed since it was proposed, not
// before.
TEST_F(ClusterNodeTest, AProposalThatCannotCommitTimesOutAfterTheRequestTimeout) {
  for (auto& [id, o] : options_) o.request_timeout_ms = 400;
  restart_on_gated_disks();
  ASSERT_TRUE(run_until([&] { return leader() != 0; }));
  uint64_t l = leader();
  bool warm = false;
  nodes_[l]->propose(1, "warm", [&](Status s, std::string) { warm = s.is_ok(); });
  ASSERT_TRUE(run_until([&] { return warm; }));
  std::vector<uint64_t> followers;
  for (uint64_t id = 1; id <= 3; id++) {
    if (id != l) {
      followers.push_back(id);
      disks_[id]->hold();
    }
  }
  Status status = Status::ok();
  bool done = false;
  const auto t0 = std::chrono::steady_clock::now();
  nodes_[l]->propose(1, "stuck", [&](Status s, std::string) {
    status = s;
    done = true;
  });
  run_until([] { return false; }, 200);
  EXPECT_FALSE(done) << "answered before its timeout: " << status.to_string();
  ASSERT_TRUE(run_until([&] { return done; }, 5000));
  EXPECT_EQ(status.code(), Code::kTimedOut) << status.to_string();
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(400));
  for (uint64_t f : followers) disks_[f]->release();
}

// The leader applies an entry only once it is durable in its own log, even
// when the followers alone made it committed; entries it already holds are
// applied while its next sync is in flight. A power cut during that sync
// loses no acknowledged write, and the restarted leader's applied index is
// within its log (open_group checks it).
TEST_F(ClusterNodeTest, LeaderAppliesOnlyWhatItsOwnDiskHolds) {
  restart_on_gated_disks();
  ASSERT_TRUE(run_until([&] { return leader() != 0; }));
  uint64_t l = leader();
  bool warm = false;
  nodes_[l]->propose(1, "warm", [&](Status s, std::string) { warm = s.is_ok(); });
  ASSERT_TRUE(run_until([&] { return warm; }));
  std::vector<uint64_t> followers;
  for (uint64_t id = 1; id <= 3; id++) {
    if (id != l) followers.push_back(id);
  }
  // A: synced by the leader only (followers held), so not committed yet.
  for (uint64_t f : followers) disks_[f]->hold();
  Status a_status(Code::kTimedOut, "pending"), b_status(Code::kTimedOut, "pending");
  bool a_done = false, b_done = false;
  nodes_[l]->propose(1, "A", [&](Status s, std::string) {
    a_status = s;
    a_done = true;
  });
  ASSERT_TRUE(run_until([&] { return disks_[followers[0]]->waiting() > 0; }));
  run_until([] { return false; }, 50);  // the leader's sync of A returns
  // B: the leader's own sync is held.
  disks_[l]->hold();
  nodes_[l]->propose(1, "B", [&](Status s, std::string) {
    b_status = s;
    b_done = true;
  });
  ASSERT_TRUE(run_until([&] { return disks_[l]->waiting() > 0; }));
  // The followers sync A and B: both are committed (two of three).
  for (uint64_t f : followers) disks_[f]->release();
  ASSERT_TRUE(run_until([&] { return machines_[followers[0]]->values.size() >= 2; }));
  ASSERT_TRUE(run_until([&] { return a_done; }));
  EXPECT_TRUE(a_status.is_ok()) << a_status.to_string();
  run_until([] { return false; }, 200);
  EXPECT_FALSE(b_done) << "B was answered before the leader's own sync of it returned";
  EXPECT_EQ(machines_[l]->values, (std::vector<std::string>{"warm", "A"}));
  // Power cut during the leader's sync of B: the node stops, B's fate is
  // unknown to its client, and the unsynced tail of the leader's WAL is lost.
  disks_[l]->cut_power();
  ASSERT_TRUE(run_until([&] { return b_done; }));
  EXPECT_FALSE(b_status.is_ok());
  EXPECT_FALSE(nodes_[l]->fatal_error().empty());
  nodes_[l].reset();
  disks_[l]->crash();
  disks_[l]->reset_gate();
  start(l);
  // B was committed by the followers: every node ends with warm, A, B.
  bool wrote = false;
  ASSERT_TRUE(run_until([&] { return leader() != 0; }));
  nodes_[leader()]->propose(1, "C", [&](Status s, std::string) { wrote = s.is_ok(); });
  ASSERT_TRUE(run_until([&] {
    for (auto& [id, m] : machines_) {
      if (m->values.size() != 4) return false;
    }
    return wrote;
  }));
  for (auto& [id, m] : machines_) {
    EXPECT_EQ(m->values, (std::vector<std::string>{"warm", "A", "B", "C"})) << "node " << id;
  }
}

}  // namespace
}  // namespace qkv::cluster
