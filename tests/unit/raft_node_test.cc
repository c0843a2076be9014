// Smoke tests of raft::Node through its public API on a tiny in-memory
// network (the simulator and the paper tests go much further).
#include "raft/node.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>

namespace qkv::raft {
namespace {

TEST(RaftNodeConfig, LeaseMarginIsCheckedInLeaseModeOnly) {
  MemoryStorage st;
  Config c;
  c.id = 1;
  c.storage = &st;
  c.election_timeout_ticks = 3;
  c.lease_margin_ticks = 3;
  c.read_mode = ReadMode::kReadIndex;
  EXPECT_TRUE(Node::create(c).is_ok());  // the margin means nothing without leases
  c.read_mode = ReadMode::kLease;
  c.check_quorum = true;
  EXPECT_EQ(Node::create(c).code(), Code::kInvalidArgument);
  c.lease_margin_ticks = -1;
  EXPECT_EQ(Node::create(c).code(), Code::kInvalidArgument);
  c.lease_margin_ticks = 2;
  EXPECT_TRUE(Node::create(c).is_ok());
  c.check_quorum = false;
  EXPECT_EQ(Node::create(c).code(), Code::kInvalidArgument);  // leases need CheckQuorum
}

struct Cluster {
  explicit Cluster(int n, Config base = {}) {
    ConfState cs;
    for (int i = 1; i <= n; i++) cs.add_voters(i);
    for (int i = 1; i <= n; i++) {
      auto st = std::make_unique<MemoryStorage>();
      EXPECT_TRUE(st->apply_snapshot(bootstrap_snapshot(0, cs)).is_ok());
      Config c = base;
      c.id = i;
      c.storage = st.get();
      c.random_seed = 42;
      auto node = Node::create(c);
      EXPECT_TRUE(node.is_ok()) << node.status().to_string();
      storages.push_back(std::move(st));
      nodes.push_back(std::move(node).value());
      applied.emplace_back();
    }
  }

  Node& node(uint64_t id) { return *nodes[id - 1]; }

  // A node joining later: empty storage, no configuration.
  void add_empty_node() {
    auto st = std::make_unique<MemoryStorage>();
    Config c;
    c.id = nodes.size() + 1;
    c.storage = st.get();
    auto node = Node::create(c);
    ASSERT_TRUE(node.is_ok());
    storages.push_back(std::move(st));
    nodes.push_back(std::move(node).value());
    applied.emplace_back();
  }

  // Handles every Ready and delivers every message until quiescent.
  void stabilize() {
    for (int round = 0; round < 1000; round++) {
      bool any = false;
      for (size_t i = 0; i < nodes.size(); i++) {
        Node& n = *nodes[i];
        if (!n.has_ready()) continue;
        any = true;
        Ready rd = n.ready();
        if (getenv("QKV_TRACE")) fprintf(stderr, "ready node %zu: snap=%d ents=%zu committed=%zu hs=%s\n", i+1, (int)rd.snapshot.has_value(), rd.entries.size(), rd.committed_entries.size(), rd.hard_state ? rd.hard_state->ShortDebugString().c_str() : "-");
        for (auto& m : rd.messages) queue.push_back(m);
        if (rd.snapshot) {
          EXPECT_TRUE(storages[i]->apply_snapshot(*rd.snapshot).is_ok());
        }
        EXPECT_TRUE(storages[i]->append(rd.entries).is_ok());
        if (rd.hard_state) storages[i]->set_hard_state(*rd.hard_state);
        for (auto& m : rd.messages_after_persist) queue.push_back(m);
        for (auto& e : rd.committed_entries) {
          if (e.type() == raftpb::ENTRY_NORMAL && !e.data().empty()) applied[i].push_back(e.data());
        }
        for (auto& rs : rd.read_states) reads.push_back(rs);
        if (rd.conf_state) conf_states[i + 1] = *rd.conf_state;
        n.advance();
      }
      while (!queue.empty()) {
        any = true;
        Message m = queue.front();
        queue.pop_front();
        if (getenv("QKV_TRACE")) fprintf(stderr, "%s\n", m.ShortDebugString().substr(0, 300).c_str());
        EXPECT_TRUE(node(m.to()).step(m).is_ok());
      }
      if (!any) return;
    }
    FAIL() << "did not stabilize";
  }

  // Steps each message into its receiver, then has every receiver other than
  // the leader persist its Readies (entries, hard state) and advance; returns
  // what they send after persisting (their acknowledgements), undelivered.
  std::vector<Message> persist_at_followers(const std::vector<Message>& msgs, uint64_t leader) {
    for (const auto& m : msgs) EXPECT_TRUE(node(m.to()).step(m).is_ok());
    std::vector<Message> out;
    for (uint64_t f = 1; f <= nodes.size(); f++) {
      if (f == leader) continue;
      Node& n = node(f);
      while (n.has_ready()) {
        Ready rd = n.ready();
        EXPECT_TRUE(storages[f - 1]->append(rd.entries).is_ok());
        if (rd.hard_state) storages[f - 1]->set_hard_state(*rd.hard_state);
        for (auto& m : rd.messages_after_persist) out.push_back(m);
        n.advance();
      }
    }
    return out;
  }

  std::vector<std::unique_ptr<MemoryStorage>> storages;
  std::vector<std::unique_ptr<Node>> nodes;
  std::vector<std::vector<std::string>> applied;
  std::deque<Message> queue;
  std::vector<ReadState> reads;
  std::map<uint64_t, ConfState> conf_states;  // last Ready::conf_state per node
};

TEST(RaftNodeTest, ElectsLeaderAndReplicates) {
  Cluster c(3);
  c.node(1).campaign();
  c.stabilize();
  ASSERT_EQ(c.node(1).role(), Role::kLeader);
  EXPECT_EQ(c.node(2).leader(), 1u);
  auto p = c.node(1).propose("hello");
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  c.stabilize();
  for (int i = 0; i < 3; i++) {
    ASSERT_EQ(c.applied[i].size(), 1u) << "node " << i + 1;
    EXPECT_EQ(c.applied[i][0], "hello");
  }
}

// Node::durable_committed(): while the leader's Ready with B is outstanding
// (its own write of B in flight), the followers' acknowledgements commit A
// and B. A, durable on the leader, is handed out at once; B, committed but
// not durable on the leader, is not (thesis §10.2.1 lets the leader commit
// before its own write; it applies only what its own log holds). advance()
// acknowledges A, so the next Ready hands out B alone.
TEST(RaftNodeTest, DurableCommittedWhileTheNextAppendIsPending) {
  Cluster c(3);
  c.node(1).campaign();
  c.stabilize();
  ASSERT_EQ(c.node(1).role(), Role::kLeader);
  Node& l = c.node(1);
  EXPECT_TRUE(l.durable_committed().empty()) << "no Ready outstanding";
  ASSERT_TRUE(l.propose("A").is_ok());
  Ready r1 = l.ready();
  ASSERT_EQ(r1.entries.size(), 1u);
  ASSERT_TRUE(c.storages[0]->append(r1.entries).is_ok());
  l.advance();
  ASSERT_TRUE(l.propose("B").is_ok());
  Ready r2 = l.ready();  // B: the leader's write is in flight from here on
  ASSERT_EQ(r2.entries.size(), 1u);
  EXPECT_TRUE(l.durable_committed().empty()) << "A is not committed yet";
  // The followers persist A and B and acknowledge both.
  std::vector<Message> to_followers = r1.messages;
  to_followers.insert(to_followers.end(), r2.messages.begin(), r2.messages.end());
  for (auto& m : c.persist_at_followers(to_followers, 1)) ASSERT_TRUE(l.step(m).is_ok());
  ASSERT_EQ(l.status().hard_state.commit(), r2.entries[0].index()) << "B committed by 2 and 3";
  std::vector<Entry> early = l.durable_committed();
  ASSERT_EQ(early.size(), 1u);
  EXPECT_EQ(early[0].data(), "A");
  EXPECT_TRUE(l.durable_committed().empty()) << "handed out twice";
  ASSERT_TRUE(c.storages[0]->append(r2.entries).is_ok());
  l.advance();
  Ready r3 = l.ready();
  ASSERT_EQ(r3.committed_entries.size(), 1u);
  EXPECT_EQ(r3.committed_entries[0].data(), "B");
  l.advance();
}

// Node::take_early_messages(): while the leader's Ready with A is
// outstanding, B is proposed; its appends leave at once, before the leader
// has written A or B. The followers' acknowledgements commit both, but the
// leader hands out only what its own disk holds: B comes in the next Ready's
// entries, and is applied after that Ready's sync.
TEST(RaftNodeTest, EarlyMessagesCarryEntriesProposedWhileAReadyIsSynced) {
  for (bool coalesce : {false, true}) {
    Config base;
    base.coalesce_appends = coalesce;
    Cluster c(3, base);
    c.node(1).campaign();
    c.stabilize();
    ASSERT_EQ(c.node(1).role(), Role::kLeader);
    Node& l = c.node(1);
    EXPECT_TRUE(l.take_early_messages().empty()) << "no Ready outstanding";
    ASSERT_TRUE(l.propose("A").is_ok());
    Ready r1 = l.ready();  // A: the leader's write is in flight from here on
    ASSERT_EQ(r1.entries.size(), 1u);
    EXPECT_TRUE(l.take_early_messages().empty()) << "nothing new since the Ready";
    ASSERT_TRUE(l.propose("B").is_ok());
    std::vector<Message> early = l.take_early_messages();
    std::map<uint64_t, std::vector<std::string>> sent;
    for (const auto& m : early) {
      ASSERT_EQ(m.type(), raftpb::MSG_APP) << m.ShortDebugString();
      for (const auto& e : m.entries()) sent[m.to()].push_back(e.data());
    }
    EXPECT_EQ(sent[2], std::vector<std::string>{"B"}) << "coalesce=" << coalesce;
    EXPECT_EQ(sent[3], std::vector<std::string>{"B"}) << "coalesce=" << coalesce;
    EXPECT_TRUE(l.take_early_messages().empty()) << "taken twice";
    // The followers get A's appends, then B's, persist both and acknowledge.
    std::vector<Message> to_followers = r1.messages;
    to_followers.insert(to_followers.end(), early.begin(), early.end());
    for (auto& m : c.persist_at_followers(to_followers, 1)) ASSERT_TRUE(l.step(m).is_ok());
    const uint64_t b_index = r1.entries[0].index() + 1;
    ASSERT_EQ(l.status().hard_state.commit(), b_index) << "A and B committed by 2 and 3";
    EXPECT_TRUE(l.durable_committed().empty()) << "neither is on the leader's disk yet";
    ASSERT_TRUE(c.storages[0]->append(r1.entries).is_ok());
    l.advance();
    Ready r2 = l.ready();
    ASSERT_EQ(r2.entries.size(), 1u) << "B is persisted by the next Ready";
    EXPECT_EQ(r2.entries[0].data(), "B");
    // A is durable here now; B is applied after this Ready's sync (step 4).
    ASSERT_EQ(r2.committed_entries.size(), 2u);
    EXPECT_EQ(r2.committed_entries[0].data(), "A");
    EXPECT_EQ(r2.committed_entries[1].data(), "B");
    for (const auto& m : r2.messages) {
      EXPECT_EQ(m.entries_size(), 0) << "B's appends were not sent again: "
                                     << m.ShortDebugString();
    }
    ASSERT_TRUE(c.storages[0]->append(r2.entries).is_ok());
    l.advance();
  }
}

// Nothing leaves early before a new term or vote is durable: a node that
// starts an election while a Ready is outstanding sends its vote requests
// only after the Ready carrying its vote is synced.
TEST(RaftNodeTest, NoEarlyMessagesBeforeANewTermOrVoteIsDurable) {
  Config base;
  base.pre_vote = false;  // a pre-candidate changes neither term nor vote
  Cluster c(3, base);
  c.node(1).campaign();
  c.stabilize();
  ASSERT_EQ(c.node(1).role(), Role::kLeader);
  Node& f = c.node(2);
  // An append from the leader leaves node 2 with a Ready to persist.
  ASSERT_TRUE(c.node(1).propose("x").is_ok());
  Ready lr = c.node(1).ready();
  for (auto& m : lr.messages) {
    if (m.to() == 2) {
      ASSERT_TRUE(f.step(m).is_ok());
    }
  }
  Ready r1 = f.ready();
  ASSERT_EQ(r1.entries.size(), 1u);
  // While it is synced, node 2 campaigns (term and vote change).
  const uint64_t term = f.term();
  f.campaign();
  ASSERT_GT(f.term(), term);
  EXPECT_TRUE(f.take_early_messages().empty()) << "vote requests before the vote is durable";
  ASSERT_TRUE(c.storages[1]->append(r1.entries).is_ok());
  if (r1.hard_state) c.storages[1]->set_hard_state(*r1.hard_state);
  f.advance();
  Ready r2 = f.ready();
  ASSERT_TRUE(r2.hard_state.has_value());
  EXPECT_EQ(r2.hard_state->vote(), 2u);
  int votes = 0;
  for (const auto& m : r2.messages) EXPECT_NE(m.type(), raftpb::MSG_VOTE);
  for (const auto& m : r2.messages_after_persist) votes += m.type() == raftpb::MSG_VOTE;
  EXPECT_EQ(votes, 2) << "the vote requests wait for the sync";
  // With that hard state durable and nothing changed, nothing is withheld.
  c.storages[1]->set_hard_state(*r2.hard_state);
  f.advance();
}

// Config::coalesce_appends: proposals between two Readies leave in one
// MsgApp per follower (entry batching), not one per proposal; replication
// is otherwise unchanged.
TEST(RaftNodeTest, CoalescedAppendsCarryEveryProposalSinceTheLastReady) {
  for (bool coalesce : {false, true}) {
    Config base;
    base.coalesce_appends = coalesce;
    Cluster c(3, base);
    c.node(1).campaign();
    c.stabilize();
    ASSERT_EQ(c.node(1).role(), Role::kLeader);
    for (int i = 0; i < 3; i++) ASSERT_TRUE(c.node(1).propose("p" + std::to_string(i)).is_ok());
    ASSERT_TRUE(c.node(1).has_ready());
    Ready rd = c.node(1).ready();
    std::map<uint64_t, int> apps, ents;
    for (const auto& m : rd.messages) {
      if (m.type() != raftpb::MSG_APP) continue;
      apps[m.to()]++;
      ents[m.to()] += m.entries_size();
    }
    for (uint64_t f = 2; f <= 3; f++) {
      EXPECT_EQ(apps[f], coalesce ? 1 : 3) << "coalesce=" << coalesce << " to " << f;
      EXPECT_EQ(ents[f], 3) << "coalesce=" << coalesce << " to " << f;
    }
    for (auto& m : rd.messages) c.queue.push_back(m);
    ASSERT_TRUE(c.storages[0]->append(rd.entries).is_ok());
    if (rd.hard_state) c.storages[0]->set_hard_state(*rd.hard_state);
    c.node(1).advance();
    c.stabilize();
    for (int i = 0; i < 3; i++) {
      EXPECT_EQ(c.applied[i], (std::vector<std::string>{"p0", "p1", "p2"})) << "node " << i + 1;
    }
  }
}

TEST(RaftNodeTest, FollowerRefusesProposalWithLeaderHint) {
  Cluster c(3);
  c.node(1).campaign();
  c.stabilize();
  auto p = c.node(2).propose("x");
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.code(), Code::kNotLeader);
}

TEST(RaftNodeTest, ReadIndexOnLeaderAndFollower) {
  Cluster c(3);
  c.node(1).campaign();
  c.stabilize();
  ASSERT_TRUE(c.node(1).propose("a").is_ok());
  c.stabilize();
  ASSERT_TRUE(c.node(1).read_index("r1").is_ok());
  ASSERT_TRUE(c.node(3).read_index("r2").is_ok());
  c.stabilize();
  ASSERT_EQ(c.reads.size(), 2u);
  for (auto& r : c.reads) EXPECT_EQ(r.index, c.node(1).status().hard_state.commit());
}

TEST(RaftNodeTest, SingleNodeCommits) {
  Cluster c(1);
  c.node(1).campaign();
  c.stabilize();
  ASSERT_EQ(c.node(1).role(), Role::kLeader);
  ASSERT_TRUE(c.node(1).propose("solo").is_ok());
  c.stabilize();
  ASSERT_EQ(c.applied[0].size(), 1u);
}

TEST(RaftNodeTest, ElectionByTicks) {
  Cluster c(3);
  for (int t = 0; t < 100 && c.node(1).role() != Role::kLeader &&
                  c.node(2).role() != Role::kLeader && c.node(3).role() != Role::kLeader;
       t++) {
    for (auto& n : c.nodes) n->tick();
    c.stabilize();
  }
  int leaders = 0;
  for (auto& n : c.nodes) leaders += n->role() == Role::kLeader;
  EXPECT_EQ(leaders, 1);
}

TEST(RaftNodeTest, AddLearnerAndPromote) {
  Cluster c(3);
  c.add_empty_node();
  c.node(1).campaign();
  c.stabilize();
  ASSERT_TRUE(c.node(1).propose("before").is_ok());
  c.stabilize();
  ConfChange cc;
  auto* ch = cc.add_changes();
  ch->set_type(raftpb::CONF_ADD_LEARNER);
  ch->set_node_id(4);
  ASSERT_TRUE(c.node(1).propose_conf_change(cc).is_ok());
  c.stabilize();
  EXPECT_EQ(c.node(1).conf_state().learners_size(), 1);
  // Every member was told the new membership with the Ready that applied it,
  // and it matches what the core applied at advance().
  for (uint64_t id = 1; id <= 4; id++) {
    ASSERT_TRUE(c.conf_states.count(id)) << "node " << id;
    EXPECT_EQ(c.conf_states[id].SerializeAsString(), c.node(id).conf_state().SerializeAsString());
  }
  // The learner caught up by snapshot (its log starts empty) and log.
  EXPECT_EQ(c.node(4).status().applied, c.node(1).status().applied);
  EXPECT_EQ(c.node(4).conf_state().learners_size(), 1);
  ch->set_type(raftpb::CONF_ADD_VOTER);
  ASSERT_TRUE(c.node(1).propose_conf_change(cc).is_ok());
  c.stabilize();
  EXPECT_EQ(c.node(1).conf_state().voters_size(), 4);
  EXPECT_EQ(c.node(1).conf_state().learners_size(), 0);
}

TEST(RaftNodeTest, StepRejectsOtherGroup) {
  Cluster c(3);
  Message m;
  m.set_group(7);
  m.set_from(2);
  m.set_to(1);
  m.set_type(raftpb::MSG_HEARTBEAT);
  m.set_term(5);
  EXPECT_EQ(c.node(1).step(m).code(), Code::kStaleMessage);
}

}  // namespace
}  // namespace qkv::raft
