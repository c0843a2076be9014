// LogStore under a real Raft group: three nodes, each with its own in-memory
// file system, WAL and LogStore, crash and restart at random (including in
// the middle of handling a Ready: after sending the leader's early messages
// but before the sync). Checks that no acknowledged (applied) entry is ever
// lost or changed and that the nodes converge.
#include "storage/log_store.h"

#include <gtest/gtest.h>

#include <deque>

namespace qkv::storage {
namespace {

using raft::Config;
using raft::Node;
using raft::Ready;

struct TestNode {
  std::unique_ptr<MemFileSystem> fs = std::make_unique<MemFileSystem>();
  std::unique_ptr<LogStore> store;
  std::unique_ptr<Node> node;
  std::vector<std::string> applied;  // the state machine: data of applied entries
  uint64_t applied_index = 0;
};

class LogStoreClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    raft::ConfState cs;
    for (uint64_t i = 1; i <= 3; i++) cs.add_voters(i);
    for (uint64_t i = 1; i <= 3; i++) {
      auto& n = nodes_[i];
      open_store(n);
      ASSERT_TRUE(n.store->bootstrap(1, raft::bootstrap_snapshot(1, cs)).is_ok());
      start(i);
    }
  }

  void open_store(TestNode& n) {
    WalOptions o;
    o.preallocate = false;
    o.segment_bytes_max = 4096;
    auto s = LogStore::open(n.fs.get(), "/data/wal", o);
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    n.store = std::move(s).value();
  }

  void start(uint64_t id) {
    auto& n = nodes_[id];
    Config c;
    c.id = id;
    c.group = 1;
    c.storage = n.store->group(1);
    c.random_seed = 1000 + id + restarts_;
    // The state machine is volatile here: it is rebuilt from the log base.
    n.applied.clear();
    n.applied_index = c.storage->first_index() - 1;
    c.applied = n.applied_index;
    auto node = Node::create(c);
    ASSERT_TRUE(node.is_ok()) << node.status().to_string();
    n.node = std::move(node).value();
  }

  void crash(uint64_t id, bool mid_ready) {
    auto& n = nodes_[id];
    if (mid_ready && n.node->has_ready()) {
      Ready rd = n.node->ready();
      for (auto& m : rd.messages) net_.push_back(m);  // sent, never persisted
    }
    n.node.reset();
    n.store.reset();
    n.fs->crash();
    restarts_++;
    open_store(n);
    start(id);
  }

  void handle_ready(uint64_t id) {
    auto& n = nodes_[id];
    if (!n.node->has_ready()) return;
    Ready rd = n.node->ready();
    for (auto& m : rd.messages) net_.push_back(m);
    if (n.store->must_write(1, rd)) {
      ASSERT_TRUE(n.store->stage(1, rd).is_ok());
      ASSERT_TRUE(n.store->flush().is_ok());
    } else {
      n.store->note_commit(1, rd);  // as cluster::Node does: no write at all
    }
    for (auto& m : rd.messages_after_persist) net_.push_back(m);
    for (const auto& e : rd.committed_entries) {
      ASSERT_EQ(e.index(), n.applied_index + 1);
      n.applied_index = e.index();
      if (e.type() == raftpb::ENTRY_NORMAL && !e.data().empty()) {
        n.applied.push_back(e.data());
        // State-machine safety across all nodes and crashes: one value per index.
        auto [it, fresh] = chosen_.emplace(e.index(), e.data());
        ASSERT_EQ(it->second, e.data()) << "index " << e.index() << " applied differently";
      }
    }
    n.node->advance();
  }

  void step_all(int rounds) {
    for (int r = 0; r < rounds; r++) {
      for (auto& [id, n] : nodes_) {
        n.node->tick();
        handle_ready(id);
      }
      size_t k = net_.size();
      for (size_t j = 0; j < k; j++) {
        raft::Message m = net_.front();
        net_.pop_front();
        (void)nodes_[m.to()].node->step(m);
      }
      for (auto& [id, n] : nodes_) handle_ready(id);
    }
  }

  uint64_t leader() {
    for (auto& [id, n] : nodes_) {
      if (n.node->role() == raft::Role::kLeader) return id;
    }
    return 0;
  }

  std::map<uint64_t, TestNode> nodes_;
  std::deque<raft::Message> net_;
  std::map<uint64_t, std::string> chosen_;
  uint64_t restarts_ = 0;
};

TEST_F(LogStoreClusterTest, SurvivesRandomCrashes) {
  uint64_t rng = 42;
  auto rnd = [&](uint64_t n) {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (rng >> 33) % n;
  };
  int proposed = 0;
  for (int round = 0; round < 300; round++) {
    step_all(3);
    if (uint64_t l = leader()) {
      auto p = nodes_[l].node->propose("v" + std::to_string(proposed));
      if (p.is_ok()) proposed++;
    }
    if (rnd(10) == 0) crash(1 + rnd(3), rnd(2) == 0);
    if (rnd(25) == 0 && leader()) {
      // Snapshot and compact the leader's log now and then.
      auto& n = nodes_[leader()];
      uint64_t a = n.applied_index;
      if (a > n.store->group(1)->first_index() + 5) {
        auto snap = std::make_shared<raft::Snapshot>();
        snap->mutable_metadata()->set_index(a);
        snap->mutable_metadata()->set_term(*n.store->group(1)->term(a));
        *snap->mutable_metadata()->mutable_conf_state() = n.node->conf_state();
        ASSERT_TRUE(n.store->compact(1, snap).is_ok());
      }
    }
    if (HasFatalFailure()) return;
  }
  step_all(60);
  ASSERT_NE(leader(), 0u);
  // Everything applied anywhere is in every log or below its base, and the
  // nodes agree on their last applied index.
  uint64_t commit = nodes_[leader()].node->status().hard_state.commit();
  for (auto& [id, n] : nodes_) {
    EXPECT_EQ(n.applied_index, commit) << "node " << id;
  }
  EXPECT_GT(chosen_.size(), 100u);
  EXPECT_GT(restarts_, 10u);
}

TEST(LogStoreTest, RecoversGroupsAndHardState) {
  MemFileSystem fs;
  WalOptions o;
  o.preallocate = false;
  {
    auto s = LogStore::open(&fs, "/w", o);
    ASSERT_TRUE(s.is_ok());
    raft::ConfState cs;
    cs.add_voters(1);
    ASSERT_TRUE((*s)->bootstrap(7, raft::bootstrap_snapshot(7, cs)).is_ok());
    Ready rd;
    raft::Entry e;
    e.set_index(2);
    e.set_term(2);
    e.set_data("x");
    rd.entries.push_back(e);
    raft::HardState hs;
    hs.set_term(2);
    hs.set_vote(1);
    hs.set_commit(2);
    rd.hard_state = hs;
    ASSERT_TRUE((*s)->stage(7, rd).is_ok());
    EXPECT_EQ((*s)->group(7)->last_index(), 1u);  // not before flush
    ASSERT_TRUE((*s)->flush().is_ok());
    EXPECT_EQ((*s)->group(7)->last_index(), 2u);
  }
  fs.crash();
  auto s = LogStore::open(&fs, "/w", o);
  ASSERT_TRUE(s.is_ok());
  raft::MemoryStorage* ms = (*s)->group(7);
  EXPECT_EQ(ms->first_index(), 2u);
  EXPECT_EQ(ms->last_index(), 2u);
  EXPECT_EQ(ms->initial_state().hard_state.vote(), 1u);
  EXPECT_EQ(ms->initial_state().conf_state.voters_size(), 1);
}

// A LogStore with group 7 bootstrapped (one voter) and a Ready holding entry
// 2 of term 2 with a hard state (term 2, vote 1, commit `commit`).
std::unique_ptr<LogStore> open_bootstrapped(MemFileSystem* fs, const WalOptions& o) {
  auto s = LogStore::open(fs, "/w", o);
  EXPECT_TRUE(s.is_ok());
  raft::ConfState cs;
  cs.add_voters(1);
  EXPECT_TRUE((*s)->bootstrap(7, raft::bootstrap_snapshot(7, cs)).is_ok());
  return std::move(s).value();
}

Ready entry_ready(uint64_t commit, std::string data = "") {
  Ready rd;
  raft::Entry e;
  e.set_index(2);
  e.set_term(2);
  e.set_data(std::move(data));
  rd.entries.push_back(e);
  raft::HardState hs;
  hs.set_term(2);
  hs.set_vote(1);
  hs.set_commit(commit);
  rd.hard_state = hs;
  return rd;
}

TEST(LogStoreTest, OnlyACommitIndexChangeSkipsTheSync) {
  MemFileSystem fs;
  WalOptions o;
  o.preallocate = false;
  {
    auto s = open_bootstrapped(&fs, o);
    Ready rd = entry_ready(1, "x");
    raft::HardState hs = *rd.hard_state;
    ASSERT_TRUE(s->stage(7, rd).is_ok());
    bool synced = false;
    ASSERT_TRUE(s->flush(&synced).is_ok());
    EXPECT_TRUE(synced);  // entries, a term and a vote
    Ready commit_only;
    hs.set_commit(2);
    commit_only.hard_state = hs;
    ASSERT_TRUE(s->stage(7, commit_only).is_ok());
    ASSERT_TRUE(s->flush(&synced).is_ok());
    EXPECT_FALSE(synced);
    EXPECT_EQ(s->group(7)->initial_state().hard_state.commit(), 2u);
    Ready vote;  // a new term must be synced even with must_sync unset
    hs.set_term(3);
    hs.set_vote(0);
    vote.hard_state = hs;
    ASSERT_TRUE(s->stage(7, vote).is_ok());
    ASSERT_TRUE(s->flush(&synced).is_ok());
    EXPECT_TRUE(synced);
  }
  fs.crash();
  auto s = LogStore::open(&fs, "/w", o);
  ASSERT_TRUE(s.is_ok());
  // The unsynced commit index was written before the synced term: it
  // survives here because a later sync covered it.
  EXPECT_EQ((*s)->group(7)->initial_state().hard_state.term(), 3u);
  EXPECT_EQ((*s)->group(7)->initial_state().hard_state.commit(), 2u);
  EXPECT_EQ((*s)->group(7)->last_index(), 2u);
}

TEST(LogStoreTest, AnUnsyncedCommitIndexMayBeLostAtACrash) {
  MemFileSystem fs;
  WalOptions o;
  o.preallocate = false;
  {
    auto s = open_bootstrapped(&fs, o);
    Ready rd = entry_ready(1);
    raft::HardState hs = *rd.hard_state;
    ASSERT_TRUE(s->stage(7, rd).is_ok());
    ASSERT_TRUE(s->flush().is_ok());
    Ready commit_only;
    hs.set_commit(2);
    commit_only.hard_state = hs;
    ASSERT_TRUE(s->stage(7, commit_only).is_ok());
    ASSERT_TRUE(s->flush().is_ok());
  }
  fs.crash();
  auto s = LogStore::open(&fs, "/w", o);
  ASSERT_TRUE(s.is_ok());
  // The entry is durable; the commit index went back (cluster::Node raises
  // it to the applied index at start).
  EXPECT_EQ((*s)->group(7)->last_index(), 2u);
  EXPECT_EQ((*s)->group(7)->initial_state().hard_state.commit(), 1u);
}

// cluster::Node's shortcut (decision 22): a Ready that only moves the
// commit index needs no write; note_commit() keeps the commit index in
// memory and the next staged batch carries it to the WAL.
TEST(LogStoreTest, ACommitOnlyReadyIsNotedAndWrittenWithTheNextBatch) {
  MemFileSystem fs;
  WalOptions o;
  o.preallocate = false;
  {
    auto s = open_bootstrapped(&fs, o);
    Ready rd = entry_ready(1, "x");
    EXPECT_TRUE(s->must_write(7, rd));  // entries (and a new term and vote)
    raft::HardState hs = *rd.hard_state;
    ASSERT_TRUE(s->stage(7, rd).is_ok());
    ASSERT_TRUE(s->flush().is_ok());
    Ready commit_only;
    hs.set_commit(2);
    commit_only.hard_state = hs;
    EXPECT_FALSE(s->must_write(7, commit_only));
    EXPECT_FALSE(s->must_write(7, Ready{}));
    uint64_t appends = s->wal().stats().appends;
    s->note_commit(7, commit_only);
    EXPECT_EQ(s->wal().stats().appends, appends) << "a commit-only Ready wrote to the WAL";
    EXPECT_EQ(s->group(7)->initial_state().hard_state.commit(), 2u);
    Ready vote;  // a new vote (or term) must be written and synced
    raft::HardState hv = hs;
    hv.set_vote(3);
    vote.hard_state = hv;
    EXPECT_TRUE(s->must_write(7, vote));
    Ready snap;
    snap.snapshot = raft::Snapshot();
    EXPECT_TRUE(s->must_write(7, snap));
    // The next batch (an entry, no hard state of its own) carries commit 2.
    Ready more = entry_ready(2, "y");
    more.entries[0].set_index(3);
    more.hard_state.reset();
    ASSERT_TRUE(s->stage(7, more).is_ok());
    bool synced = false;
    ASSERT_TRUE(s->flush(&synced).is_ok());
    EXPECT_TRUE(synced);
  }
  fs.crash();
  auto s = LogStore::open(&fs, "/w", o);
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ((*s)->group(7)->initial_state().hard_state.commit(), 2u);
  EXPECT_EQ((*s)->group(7)->last_index(), 3u);
}

}  // namespace
}  // namespace qkv::storage
