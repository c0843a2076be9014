// Raft paper tests: one test per rule of the Raft paper ("In Search of an
// Understandable Consensus Algorithm", extended version: Figure 2 and §5–§6)
// and of the thesis extensions the core implements (Ongaro's dissertation:
// PreVote §9.6, CheckQuorum §6.2, ReadIndex §6.4, leader transfer §3.10,
// membership §4.3). Each test is named after its rule and quotes it.
//
// The tests drive raft::Node through its public API only. Most use one real
// node and "virtual" peers (addresses whose messages the test reads and
// answers by hand) so that they can assert on concrete messages; the rest use
// a small network of real nodes (tests/unit/raft_test_util.h).
//
// Every group is bootstrapped from bootstrap_snapshot(): its log starts after
// index 1, term 1, so a fresh node's last entry is (index 1, term 1). Logs in
// these tests are written as the terms of the entries at index 2, 3, ...
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "raft/node.h"
#include "raft/storage.h"
#include "unit/raft_test_util.h"

namespace qkv::raft {
namespace {

using namespace rafttest;  // NOLINT: test-local harness

constexpr int kEt = 10;  // election timeout ticks used throughout

bool has_grant(const std::vector<Message>& ms, MessageType type, uint64_t to) {
  for (const Message& m : ms)
    if (m.type() == type && m.to() == to && !m.reject()) return true;
  return false;
}

std::set<uint64_t> recipients(const std::vector<Message>& ms) {
  std::set<uint64_t> s;
  for (const Message& m : ms) s.insert(m.to());
  return s;
}

std::vector<std::string> applied_data(Member& m) {
  std::vector<std::string> out;
  for (const Entry& e : m.applied)
    if (e.type() == raftpb::ENTRY_NORMAL && !e.data().empty()) out.push_back(e.data());
  return out;
}

// ---------------------------------------------------------------------------
// Contract: one node hosts many groups, so every message names its group.
// ---------------------------------------------------------------------------

TEST(RaftPaperTest, MessageForAnotherGroupIsRefused) {
  Network net({1, 2, 3});
  net.add(1, new_storage({1, 2, 3}, {}, /*hard_term=*/2));
  Message m = make_app(2, 1, 5, 1, 1, {make_entry(2, 5, "x")}, 2);
  m.set_group(kGroup + 1);
  Status s = net.node(1).step(m);
  EXPECT_EQ(s.code(), Code::kStaleMessage) << s.to_string();
  net.process(1);
  EXPECT_EQ(net.node(1).term(), 2u);
  EXPECT_EQ(net.node(1).leader(), kNone);
  EXPECT_EQ(net.storage(1).last_index(), 1u);
  EXPECT_TRUE(net.take_all().empty());
}

// ---------------------------------------------------------------------------
// §5.1, Figure 2 "Rules for All Servers": "If RPC request or response
// contains term T > currentTerm: set currentTerm = T, convert to follower."
// ---------------------------------------------------------------------------

// Puts member 1 of {1,2,3} (hard state term 3) into `role` at term 3 or 4.
void become(Network& net, Role role) {
  net.add(1, new_storage({1, 2, 3}, {}, /*hard_term=*/3));
  if (role == Role::kCandidate) {
    net.node(1).campaign();
    net.process(1);
    ASSERT_EQ(net.node(1).role(), Role::kCandidate);
  } else if (role == Role::kLeader) {
    ASSERT_NO_FATAL_FAILURE(elect_with_virtual_peers(net, 1));
  }
  net.take_all();
}

void check_update_term_on_request(Role role) {
  SCOPED_TRACE(role_name(role));
  Network net({1, 2, 3});
  ASSERT_NO_FATAL_FAILURE(become(net, role));
  ASSERT_LT(net.node(1).term(), 5u);
  // An AppendEntries (heartbeat) from leader 2 of term 5.
  EXPECT_TRUE(net.step(make_app(2, 1, 5, 1, 1, {}, 1)).is_ok());
  EXPECT_EQ(net.node(1).role(), Role::kFollower);
  EXPECT_EQ(net.node(1).term(), 5u);
  EXPECT_EQ(net.node(1).leader(), 2u);
  HardState hs = net.hard_state(1);
  EXPECT_EQ(hs.term(), 5u) << "the new term must be persisted";
  EXPECT_EQ(hs.vote(), kNone) << "votedFor belongs to the old term";
}

void check_update_term_on_response(Role role) {
  SCOPED_TRACE(role_name(role));
  Network net({1, 2, 3});
  ASSERT_NO_FATAL_FAILURE(become(net, role));
  // A response from a peer that has moved on to term 5.
  Message resp =
      make_msg(role == Role::kLeader ? raftpb::MSG_APP_RESP : raftpb::MSG_VOTE_RESP, 2, 1, 5);
  resp.set_reject(true);
  resp.set_index(1);
  (void)net.step(resp);
  EXPECT_EQ(net.node(1).role(), Role::kFollower);
  EXPECT_EQ(net.node(1).term(), 5u);
  EXPECT_EQ(net.node(1).leader(), kNone) << "a response does not tell who leads term 5";
  EXPECT_EQ(net.hard_state(1).term(), 5u);
}

TEST(RaftPaperTest, FollowerUpdatesTermOnHigherTermMessage) {
  check_update_term_on_request(Role::kFollower);
}

TEST(RaftPaperTest, CandidateUpdatesTermAndRevertsToFollowerOnHigherTermMessage) {
  check_update_term_on_request(Role::kCandidate);
  check_update_term_on_response(Role::kCandidate);
}

TEST(RaftPaperTest, LeaderUpdatesTermAndRevertsToFollowerOnHigherTermMessage) {
  check_update_term_on_request(Role::kLeader);
  check_update_term_on_response(Role::kLeader);
}

// §5.1: "If a server receives a request with a stale term number, it rejects
// the request." Figure 2, AppendEntries: "Reply false if term < currentTerm".
// Any reply must carry the receiver's term, so that the stale sender learns it.
TEST(RaftPaperTest, RejectsAppendEntriesWithStaleTerm) {
  for (bool extensions : {false, true}) {
    SCOPED_TRACE(extensions ? "pre_vote and check_quorum" : "plain Raft");
    Options o;
    o.pre_vote = o.check_quorum = extensions;
    Network net({1, 2, 3}, o);
    net.add(1, new_storage({1, 2, 3}, {1, 2}, /*hard_term=*/3));
    LogView before = log_view(net.storage(1));
    (void)net.step(make_app(2, 1, 2, 3, 2, {make_entry(4, 2, "stale")}, 4));
    EXPECT_EQ(net.node(1).term(), 3u);
    EXPECT_EQ(net.node(1).leader(), kNone) << "a stale leader must not be recognised";
    EXPECT_EQ(log_view(net.storage(1)), before) << "entries from a stale leader were appended";
    EXPECT_EQ(net.hard_state(1).commit(), 1u);
    for (const Message& m : net.take_all()) {
      EXPECT_EQ(m.term(), 3u) << describe(m);
      if (m.type() == raftpb::MSG_APP_RESP) {
        EXPECT_FALSE(!m.reject() && m.index() >= 4) << "stale append acknowledged: " << describe(m);
      }
    }
  }
}

// Figure 2, RequestVote: "Reply false if term < currentTerm".
TEST(RaftPaperTest, RejectsRequestVoteWithStaleTerm) {
  Network net({1, 2, 3});
  net.add(1, new_storage({1, 2, 3}, {}, /*hard_term=*/3));
  (void)net.step(make_vote(2, 1, 2, /*log_term=*/5, /*index=*/10));
  auto out = net.take_all();
  EXPECT_FALSE(has_grant(out, raftpb::MSG_VOTE_RESP, 2)) << describe(out);
  for (const Message& m : out) EXPECT_EQ(m.term(), 3u) << describe(m);
  EXPECT_EQ(net.node(1).term(), 3u);
  EXPECT_EQ(net.hard_state(1).vote(), kNone);
}

// A vote granted in an earlier term is not a vote in this one (§5.2: "A
// candidate wins an election if it receives votes from a majority of the
// servers in the full cluster for the same term").
TEST(RaftPaperTest, CandidateIgnoresVotesFromEarlierTerms) {
  Network net({1, 2, 3});
  net.add(1, new_storage({1, 2, 3}, {}, /*hard_term=*/3));
  net.node(1).campaign();
  net.process(1);
  ASSERT_EQ(net.node(1).term(), 4u);
  for (uint64_t from : {2, 3}) (void)net.step(make_msg(raftpb::MSG_VOTE_RESP, from, 1, 3));
  EXPECT_EQ(net.node(1).role(), Role::kCandidate) << "won with votes of term 3";
  (void)net.step(make_msg(raftpb::MSG_VOTE_RESP, 2, 1, 4));
  EXPECT_EQ(net.node(1).role(), Role::kLeader);
}

// ---------------------------------------------------------------------------
// §5.2 Leader election.
// ---------------------------------------------------------------------------

// §5.2: "If a follower receives no communication over a period of time called
// the election timeout, then it assumes there is no viable leader and begins
// an election ... a follower increments its current term and transitions to
// candidate state. It then votes for itself and issues RequestVote RPCs in
// parallel to each of the other servers." Figure 2: RequestVote carries
// lastLogIndex and lastLogTerm.
TEST(RaftPaperTest, FollowerStartsElectionOnElectionTimeout) {
  Network net({1, 2, 3});
  net.add(1);
  uint64_t t0 = net.node(1).term();
  net.tick(1, kEt - 1);
  EXPECT_EQ(net.node(1).role(), Role::kFollower) << "campaigned before the election timeout";
  EXPECT_TRUE(of_type(net.take_all(), raftpb::MSG_VOTE).empty());
  int ticks = kEt - 1;
  while (net.node(1).role() == Role::kFollower && ticks < 2 * kEt - 1) {
    net.tick(1);
    ++ticks;
  }
  ASSERT_EQ(net.node(1).role(), Role::kCandidate) << "no election after " << ticks << " ticks";
  EXPECT_EQ(net.node(1).term(), t0 + 1);
  HardState hs = net.hard_state(1);
  EXPECT_EQ(hs.term(), t0 + 1);
  EXPECT_EQ(hs.vote(), 1u) << "a candidate votes for itself";
  auto votes = of_type(net.take_all(), raftpb::MSG_VOTE);
  EXPECT_EQ(recipients(votes), (std::set<uint64_t>{2, 3})) << describe(votes);
  EXPECT_EQ(votes.size(), 2u) << describe(votes);
  for (const Message& v : votes) {
    EXPECT_EQ(v.term(), t0 + 1) << describe(v);
    EXPECT_EQ(v.index(), 1u) << "lastLogIndex: " << describe(v);
    EXPECT_EQ(v.log_term(), 1u) << "lastLogTerm: " << describe(v);
  }
}

// §5.2: "A server remains in follower state as long as it receives valid RPCs
// from a leader or candidate. Leaders send periodic heartbeats ... to all
// followers in order to maintain their authority."
TEST(RaftPaperTest, FollowerRemainsFollowerWhileHearingFromLeader) {
  Network net({1, 2, 3});
  net.add(1, new_storage({1, 2, 3}, {}, /*hard_term=*/2));
  for (int i = 0; i < 10 * kEt; ++i) {
    if (i % (kEt - 1) == 0) {
      Message hb = make_msg(raftpb::MSG_HEARTBEAT, 2, 1, 2);
      hb.set_commit(1);
      (void)net.step(hb);
    }
    net.tick(1);
  }
  EXPECT_EQ(net.node(1).role(), Role::kFollower);
  EXPECT_EQ(net.node(1).term(), 2u);
  EXPECT_EQ(net.node(1).leader(), 2u);
  EXPECT_TRUE(of_type(net.member(1).sent, raftpb::MSG_VOTE).empty());
}

// §5.2: "A candidate wins an election if it receives votes from a majority of
// the servers in the full cluster for the same term ... Once a candidate wins
// an election, it becomes leader. It then sends heartbeat messages to all of
// the other servers to establish its authority."
TEST(RaftPaperTest, CandidateWinsElectionWithMajority) {
  struct Case {
    uint64_t size;
    std::map<uint64_t, bool> votes;  // voter -> granted
  };
  const std::vector<Case> cases = {
      {1, {}},
      {3, {{2, true}, {3, true}}},
      {3, {{2, true}}},
      {3, {{2, false}, {3, true}}},
      {5, {{2, true}, {3, true}, {4, true}, {5, true}}},
      {5, {{2, true}, {3, true}}},
      {5, {{2, false}, {3, true}, {4, false}, {5, true}}},
      // No majority either way: the candidate keeps waiting.
      {3, {}},
      {5, {{2, true}}},
      {5, {{2, false}, {3, false}}},
      {5, {{2, true}, {3, false}, {4, false}}},
      // A majority rejected: the candidate lost.
      {3, {{2, false}, {3, false}}},
      {5, {{2, false}, {3, false}, {4, false}}},
  };
  for (const Case& c : cases) {
    std::vector<uint64_t> voters;
    for (uint64_t i = 1; i <= c.size; ++i) voters.push_back(i);
    std::string label = "size " + std::to_string(c.size) + ", votes";
    uint64_t granted = 1, rejected = 0;  // a candidate votes for itself
    for (auto [id, g] : c.votes) {
      label += " " + std::to_string(id) + (g ? "+" : "-");
      (g ? granted : rejected)++;
    }
    SCOPED_TRACE(label);
    Network net(voters);
    net.add(1);
    net.node(1).campaign();
    net.process(1);
    uint64_t term = net.node(1).term();
    net.take_all();
    for (auto [id, g] : c.votes) {
      Message r = make_msg(raftpb::MSG_VOTE_RESP, id, 1, term);
      r.set_reject(!g);
      (void)net.step(r);
    }
    uint64_t quorum = c.size / 2 + 1;
    if (granted >= quorum) {
      EXPECT_EQ(net.node(1).role(), Role::kLeader);
      EXPECT_EQ(net.node(1).leader(), 1u);
      EXPECT_EQ(net.node(1).term(), term);
      std::set<uint64_t> others(voters.begin() + 1, voters.end());
      auto apps = of_type(net.take_all(), raftpb::MSG_APP);
      EXPECT_EQ(recipients(apps), others) << "the new leader must assert itself to every peer";
    } else if (rejected >= quorum) {
      EXPECT_NE(net.node(1).role(), Role::kLeader);
    } else {
      EXPECT_EQ(net.node(1).role(), Role::kCandidate);
      EXPECT_EQ(net.node(1).term(), term);
    }
  }
}

// §5.2: "While waiting for votes, a candidate may receive an AppendEntries RPC
// from another server claiming to be leader. If the leader's term ... is at
// least as large as the candidate's current term, then the candidate
// recognizes the leader as legitimate and returns to follower state."
// Within the same term it keeps its vote (for itself): one vote per term.
TEST(RaftPaperTest, CandidateRevertsToFollowerOnAppendEntriesFromLeader) {
  struct Case {
    MessageType type;
    uint64_t term;
  };
  for (Case c :
       {Case{raftpb::MSG_APP, 4}, Case{raftpb::MSG_HEARTBEAT, 4}, Case{raftpb::MSG_APP, 5}}) {
    SCOPED_TRACE("type " + std::to_string(c.type) + " term " + std::to_string(c.term));
    Network net({1, 2, 3});
    net.add(1, new_storage({1, 2, 3}, {}, /*hard_term=*/3));
    net.node(1).campaign();
    net.process(1);
    ASSERT_EQ(net.node(1).role(), Role::kCandidate);
    ASSERT_EQ(net.node(1).term(), 4u);
    Message m = c.type == raftpb::MSG_APP ? make_app(2, 1, c.term, 1, 1, {}, 1)
                                          : make_msg(raftpb::MSG_HEARTBEAT, 2, 1, c.term);
    m.set_commit(1);
    (void)net.step(m);
    EXPECT_EQ(net.node(1).role(), Role::kFollower);
    EXPECT_EQ(net.node(1).leader(), 2u);
    EXPECT_EQ(net.node(1).term(), c.term);
    if (c.term == 4) {
      EXPECT_EQ(net.hard_state(1).vote(), 1u) << "the vote of term 4 was for itself";
    }
  }
}

// §5.2: "The third possible outcome is that a candidate neither wins nor
// loses the election ... each candidate will time out and start a new
// election by incrementing its term and initiating another round of
// RequestVote RPCs."
TEST(RaftPaperTest, CandidateStartsNewElectionOnSplitVoteTimeout) {
  Network net({1, 2, 3});
  net.add(1);
  net.node(1).campaign();
  net.process(1);
  uint64_t t = net.node(1).term();
  net.take_all();
  net.tick(1, kEt - 1);
  EXPECT_EQ(net.node(1).term(), t) << "new election before the election timeout";
  EXPECT_TRUE(of_type(net.take_all(), raftpb::MSG_VOTE).empty());
  for (int i = kEt - 1; i < 2 * kEt - 1 && net.node(1).term() == t; ++i) net.tick(1);
  EXPECT_EQ(net.node(1).role(), Role::kCandidate);
  ASSERT_EQ(net.node(1).term(), t + 1) << "no new election after 2 election timeouts";
  EXPECT_EQ(net.hard_state(1).term(), t + 1);
  EXPECT_EQ(net.hard_state(1).vote(), 1u);
  auto votes = of_type(net.take_all(), raftpb::MSG_VOTE);
  EXPECT_EQ(recipients(votes), (std::set<uint64_t>{2, 3})) << describe(votes);
  for (const Message& v : votes) EXPECT_EQ(v.term(), t + 1);
}

// Ticks a fresh follower until it campaigns; returns the number of ticks.
int ticks_to_campaign(uint64_t seed) {
  Options o;
  o.seed = seed;
  Network net({1, 2, 3}, o);
  net.add(1);
  for (int i = 1; i <= 4 * kEt; ++i) {
    net.tick(1);
    if (net.node(1).role() != Role::kFollower) return i;
  }
  return -1;
}

// §5.2: "Raft uses randomized election timeouts ... election timeouts are
// chosen randomly from a fixed interval". Here the interval is
// [election_timeout_ticks, 2 * election_timeout_ticks), and the seed is the
// only source of randomness (deterministic replay).
TEST(RaftPaperTest, ElectionTimeoutIsRandomizedWithinInterval) {
  std::set<int> seen;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    int t = ticks_to_campaign(seed);
    EXPECT_GE(t, kEt) << "seed " << seed;
    EXPECT_LT(t, 2 * kEt) << "seed " << seed;
    seen.insert(t);
  }
  EXPECT_GE(seen.size(), static_cast<size_t>(kEt / 2)) << "timeouts are hardly randomized";
  EXPECT_EQ(ticks_to_campaign(42), ticks_to_campaign(42)) << "same seed, different timeout";
}

// §5.2: "each candidate restarts its randomized election timeout at the start
// of an election, and it waits for that timeout to elapse before starting the
// next election".
TEST(RaftPaperTest, ElectionTimeoutIsRerandomizedForEachElection) {
  Network net({1, 2, 3});
  net.add(1);
  std::set<int> seen;
  uint64_t term = net.node(1).term();
  int since = 0;
  for (int elections = 0; elections < 100;) {
    net.tick(1);
    net.take_all();
    ++since;
    ASSERT_LT(since, 2 * kEt) << "no election within 2 election timeouts";
    if (net.node(1).term() != term) {
      EXPECT_GE(since, kEt);
      seen.insert(since);
      term = net.node(1).term();
      since = 0;
      ++elections;
    }
  }
  EXPECT_GE(seen.size(), static_cast<size_t>(kEt / 2));
}

// §5.2: randomization "spread[s] out the servers so that in most cases only a
// single server will time out". Five fresh followers rarely time out on the
// same tick.
TEST(RaftPaperTest, ElectionTimeoutsOfDifferentNodesRarelyConflict) {
  const int trials = 300;
  int conflicts = 0;
  for (int trial = 1; trial <= trials; ++trial) {
    Options o;
    o.seed = trial;
    Network net({1, 2, 3, 4, 5}, o);
    net.add_all();
    for (int t = 0; t < 2 * kEt; ++t) {
      int campaigning = 0;
      for (uint64_t id : net.member_ids()) {
        net.tick(id);
        if (net.node(id).role() != Role::kFollower) ++campaigning;
      }
      net.take_all();
      if (campaigning > 0) {
        if (campaigning > 1) ++conflicts;
        break;
      }
    }
  }
  EXPECT_LE(conflicts, trials * 3 / 10) << conflicts << " of " << trials << " trials";
}

// §5.2: "Each server will vote for at most one candidate in a given term, on a
// first-come-first-served basis." Figure 2, RequestVote: "If votedFor is null
// or candidateId, and candidate's log is at least as up-to-date as receiver's
// log, grant vote".
TEST(RaftPaperTest, FollowerVotesForAtMostOneCandidatePerTerm) {
  struct Case {
    uint64_t voted_for;
    uint64_t candidate;
    bool reject;
  };
  for (Case c : {Case{kNone, 2, false}, Case{kNone, 3, false}, Case{2, 2, false}, Case{3, 3, false},
                 Case{2, 3, true}, Case{3, 2, true}}) {
    SCOPED_TRACE("voted for " + std::to_string(c.voted_for) + ", candidate " +
                 std::to_string(c.candidate));
    Network net({1, 2, 3});
    net.add(1, new_storage({1, 2, 3}, {}, /*hard_term=*/1, c.voted_for));
    (void)net.step(make_vote(c.candidate, 1, 1, 1, 1));
    auto resps = of_type(net.take_all(), raftpb::MSG_VOTE_RESP);
    ASSERT_EQ(resps.size(), 1u) << describe(resps);
    EXPECT_EQ(resps[0].to(), c.candidate);
    EXPECT_EQ(resps[0].term(), 1u);
    EXPECT_EQ(resps[0].reject(), c.reject);
    EXPECT_EQ(net.hard_state(1).vote(), c.reject ? c.voted_for : c.candidate);
  }
}

TEST(RaftPaperTest, VotesAreFirstComeFirstServed) {
  Network net({1, 2, 3});
  net.add(1, new_storage({1, 2, 3}, {}, /*hard_term=*/2));
  auto vote_reply = [&](uint64_t from, uint64_t term) {
    (void)net.step(make_vote(from, 1, term, 1, 1));
    auto r = of_type(net.take_all(), raftpb::MSG_VOTE_RESP);
    EXPECT_EQ(r.size(), 1u) << describe(r);
    return r.empty() ? std::optional<bool>() : std::optional<bool>(!r[0].reject());
  };
  EXPECT_EQ(vote_reply(2, 3), true) << "first request of term 3";
  EXPECT_EQ(vote_reply(3, 3), false) << "second candidate of term 3";
  EXPECT_EQ(vote_reply(2, 3), true) << "a retransmitted request gets the same answer";
  EXPECT_EQ(net.hard_state(1).vote(), 2u);
  EXPECT_EQ(vote_reply(3, 4), true) << "a new term, a new vote";
  EXPECT_EQ(net.hard_state(1).vote(), 3u);
  EXPECT_EQ(net.hard_state(1).term(), 4u);
}

// Figure 2, "Persistent state on all servers (Updated on stable storage before
// responding to RPCs)": currentTerm and votedFor. A granted vote may only be
// sent after the vote is durable, i.e. in messages_after_persist of a Ready
// whose hard state (or an earlier one) holds it.
TEST(RaftPaperTest, VoteIsPersistedBeforeItIsGranted) {
  Network net({1, 2, 3});
  net.add(1, new_storage({1, 2, 3}, {}, /*hard_term=*/2));
  ASSERT_TRUE(net.node(1).step(make_vote(2, 1, 3, 1, 1)).is_ok());
  std::vector<Ready> readies;
  net.process(1, &readies);
  bool vote_saved = false, granted = false;
  for (const Ready& rd : readies) {
    if (rd.hard_state && rd.hard_state->term() == 3 && rd.hard_state->vote() == 2) {
      vote_saved = true;
      EXPECT_TRUE(rd.must_sync) << "a new vote must be synced";
    }
    EXPECT_FALSE(has_grant(rd.messages, raftpb::MSG_VOTE_RESP, 2))
        << "vote granted before it was persisted: " << describe(rd.messages);
    if (has_grant(rd.messages_after_persist, raftpb::MSG_VOTE_RESP, 2)) {
      EXPECT_TRUE(vote_saved) << "vote granted in a Ready that does not persist it";
      granted = true;
    }
  }
  EXPECT_TRUE(granted);
}

// §5.4.1: "the voter denies its vote if its own log is more up-to-date than
// that of the candidate ... If the logs have last entries with different
// terms, then the log with the later term is more up-to-date. If the logs end
// with the same term, then whichever log is longer is more up-to-date."
TEST(RaftPaperTest, VoterRejectsCandidateWithLessUpToDateLog) {
  struct Case {
    uint64_t log_term, index;
    bool reject;
  };
  // The voter's log: 2@1, 3@2, i.e. last entry (index 3, term 2).
  const std::vector<Case> cases = {
      {2, 3, false},  // same last term, same length
      {2, 4, false},  // same last term, longer
      {3, 2, false},  // later last term, shorter
      {3, 4, false},  // later last term, longer
      {2, 2, true},   // same last term, shorter
      {1, 3, true},   // earlier last term, same length
      {1, 5, true},   // earlier last term, longer
  };
  for (bool without_log_check : {false, true}) {
    for (const Case& c : cases) {
      SCOPED_TRACE("candidate last entry (" + std::to_string(c.index) + ", term " +
                   std::to_string(c.log_term) + ")" +
                   (without_log_check ? ", TEST_vote_without_log_check" : ""));
      Options o;
      o.TEST_vote_without_log_check = without_log_check;
      Network net({1, 2, 3}, o);
      net.add(1, new_storage({1, 2, 3}, {1, 2}, /*hard_term=*/2));
      (void)net.step(make_vote(2, 1, 3, c.log_term, c.index));
      auto resps = of_type(net.take_all(), raftpb::MSG_VOTE_RESP);
      ASSERT_EQ(resps.size(), 1u) << describe(resps);
      EXPECT_EQ(resps[0].term(), 3u);
      // The switch that breaks §5.4.1 must make this test fail: it is the
      // control showing the test can catch the bug.
      EXPECT_EQ(resps[0].reject(), without_log_check ? false : c.reject);
      EXPECT_EQ(net.node(1).term(), 3u) << "the candidate's term is adopted either way";
    }
  }
}

// Election Safety (Figure 3): "at most one leader can be elected in a given
// term." State Machine Safety: "if a server has applied a log entry at a given
// index to its state machine, no other server will ever apply a different log
// entry for the same index." Leader Completeness: "if a log entry is committed
// in a given term, then that entry will be present in the logs of the leaders
// for all higher-numbered terms." Checked over a seeded run with shifting
// partitions.
TEST(RaftPaperTest, SafetyPropertiesHoldUnderPartitions) {
  for (uint64_t seed : {1, 2, 3, 4}) {
    bool extensions = seed % 2 == 0;
    SCOPED_TRACE("seed " + std::to_string(seed) +
                 (extensions ? " with pre_vote/check_quorum" : ""));
    Options o;
    o.seed = seed;
    o.pre_vote = o.check_quorum = extensions;
    Network net({1, 2, 3, 4, 5}, o);
    net.add_all();
    std::mt19937_64 rng(seed);
    std::map<uint64_t, std::set<uint64_t>> leaders_by_term;
    // index -> (first entry applied there, a term at or after the one in
    // which it was committed: the applier's term when we saw it applied).
    std::map<uint64_t, std::pair<Entry, uint64_t>> committed;
    int proposals = 0;
    for (int tick = 0; tick < 2000; ++tick) {
      if (tick % 60 == 0) {
        net.heal();
        for (uint64_t id : net.member_ids())
          if (rng() % 5 == 0) net.isolate(id);
      }
      if (tick % 7 == 0) {
        for (uint64_t id : net.leaders())
          (void)net.node(id).propose("p" + std::to_string(proposals++));
      }
      net.tick_all();
      for (uint64_t id : net.leaders()) {
        leaders_by_term[net.node(id).term()].insert(id);
        // Leader Completeness, for the entries known committed before this
        // leader's term (a deposed leader that has not heard yet is exempt).
        for (const auto& [index, ec] : committed) {
          const auto& [e, committed_by] = ec;
          if (net.node(id).term() <= committed_by) continue;
          auto t = net.storage(id).term(index);
          ASSERT_TRUE(t.is_ok() && *t == e.term())
              << "leader " << id << " of term " << net.node(id).term() << " lacks committed entry "
              << e.ShortDebugString();
        }
      }
      for (uint64_t id : net.member_ids()) {
        for (const Entry& e : net.member(id).applied) {
          auto [it, fresh] = committed.emplace(e.index(), std::pair(e, net.node(id).term()));
          if (!fresh) {
            ASSERT_EQ(log_view({it->second.first}), log_view({e}))
                << "node " << id << " applied a different entry at index " << e.index();
          }
        }
        net.member(id).applied.clear();
      }
    }
    for (const auto& [term, ids] : leaders_by_term) {
      EXPECT_LE(ids.size(), 1u) << "two leaders in term " << term;
    }
    EXPECT_GT(committed.size(), 20u) << "the run made too little progress to mean anything";
  }
}

// ---------------------------------------------------------------------------
// §5.3 Log replication.
// ---------------------------------------------------------------------------

// §5.2: leaders "send periodic heartbeats (AppendEntries RPCs that carry no
// log entries) to all followers"; Figure 2, Leaders: "repeat during idle
// periods to prevent election timeouts". Heartbeats carry the leader's term
// and commit index.
TEST(RaftPaperTest, LeaderSendsHeartbeatEveryHeartbeatInterval) {
  Options o;
  o.heartbeat_interval_ticks = 3;
  Network net({1, 2, 3}, o);
  net.add(1);
  ASSERT_NO_FATAL_FAILURE(elect_with_virtual_peers(net, 1));
  uint64_t term = net.node(1).term();
  uint64_t commit = net.hard_state(1).commit();
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    net.tick(1, 2);
    auto early = of_type(net.take_all(), raftpb::MSG_HEARTBEAT);
    EXPECT_TRUE(early.empty()) << "heartbeat before the interval:" << describe(early);
    net.tick(1);
    auto hbs = of_type(net.take_all(), raftpb::MSG_HEARTBEAT);
    EXPECT_EQ(recipients(hbs), (std::set<uint64_t>{2, 3})) << describe(hbs);
    for (const Message& hb : hbs) {
      EXPECT_EQ(hb.term(), term) << describe(hb);
      EXPECT_EQ(hb.commit(), commit) << describe(hb);
      EXPECT_EQ(hb.entries_size(), 0) << describe(hb);
    }
  }
}

// Thesis §6.4 / paper §8: "each leader commit[s] a blank no-op entry into the
// log at the start of its term." It is appended at once and replicated to
// every follower.
TEST(RaftPaperTest, LeaderAppendsNoopEntryAtStartOfTerm) {
  Network net({1, 2, 3});
  net.add(1);
  net.node(1).campaign();
  net.process(1);
  uint64_t term = net.node(1).term();
  net.take_all();
  (void)net.step(make_msg(raftpb::MSG_VOTE_RESP, 2, 1, term));
  ASSERT_EQ(net.node(1).role(), Role::kLeader);
  EXPECT_EQ(log_view(net.storage(1)), (LogView{{2, term, ""}}))
      << "the new leader's log must end with one empty entry of its term";
  auto ents = log_entries(net.storage(1));
  ASSERT_EQ(ents.size(), 1u);
  EXPECT_EQ(ents[0].type(), raftpb::ENTRY_NORMAL);
  auto apps = of_type(net.take_all(), raftpb::MSG_APP);
  EXPECT_EQ(recipients(apps), (std::set<uint64_t>{2, 3})) << describe(apps);
  for (const Message& a : apps) {
    EXPECT_EQ(a.term(), term);
    EXPECT_EQ(a.index(), 1u) << describe(a);
    EXPECT_EQ(a.log_term(), 1u) << describe(a);
    ASSERT_EQ(a.entries_size(), 1) << describe(a);
    EXPECT_EQ(a.entries(0).index(), 2u);
    EXPECT_EQ(a.entries(0).term(), term);
  }
  EXPECT_EQ(net.hard_state(1).commit(), 1u) << "the no-op committed without a majority";
}

// §5.3: "The leader appends the command to its log as a new entry, then
// issues AppendEntries RPCs in parallel to each of the other servers to
// replicate the entry." Figure 2: prevLogIndex, prevLogTerm, leaderCommit.
TEST(RaftPaperTest, LeaderAppendsProposalToLogAndReplicatesIt) {
  Network net({1, 2, 3});
  net.add(1);
  ASSERT_NO_FATAL_FAILURE(elect_with_virtual_peers(net, 1));
  uint64_t term = net.node(1).term();
  uint64_t last = net.node(1).status().last_index;
  uint64_t commit = net.hard_state(1).commit();
  auto p = net.node(1).propose("some data");
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  EXPECT_EQ(p->index, last + 1);
  EXPECT_EQ(p->term, term);
  std::vector<Ready> readies;
  net.process(1, &readies);
  ASSERT_FALSE(readies.empty());
  EXPECT_EQ(log_view(readies[0].entries), (LogView{{last + 1, term, "some data"}}));
  auto apps = of_type(net.take_all(), raftpb::MSG_APP);
  EXPECT_EQ(recipients(apps), (std::set<uint64_t>{2, 3})) << describe(apps);
  for (const Message& a : apps) {
    EXPECT_EQ(a.term(), term);
    EXPECT_EQ(a.index(), last) << "prevLogIndex";
    EXPECT_EQ(a.log_term(), term) << "prevLogTerm";
    EXPECT_EQ(a.commit(), commit) << "leaderCommit";
    EXPECT_EQ(log_view({a.entries().begin(), a.entries().end()}),
              (LogView{{last + 1, term, "some data"}}));
  }
  EXPECT_EQ(net.hard_state(1).commit(), commit) << "committed without any follower";
}

// Member 1 is elected over virtual peers and sends one proposal, "x", to
// them; the queue is left empty.
void elect_and_send_x(Network& net, Proposed* out) {
  net.add(1);
  ASSERT_NO_FATAL_FAILURE(elect_with_virtual_peers(net, 1));
  auto p = net.node(1).propose("x");
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  net.process(1);
  net.take_all();
  *out = *p;
}

// §5.3: "A log entry is committed once the leader that created the entry has
// replicated it on a majority of the servers ... Once a follower learns that
// a log entry is committed, it applies the entry to its state machine."
TEST(RaftPaperTest, LeaderCommitsEntryOnceReplicatedOnMajority) {
  struct Case {
    uint64_t size;
    std::vector<uint64_t> acks;
    bool commit;
  };
  const std::vector<Case> cases = {
      {1, {}, true},     {3, {}, false},    {3, {2}, true},
      {3, {2, 3}, true}, {5, {}, false},    {5, {2}, false},
      {5, {2, 3}, true}, {5, {3, 5}, true}, {5, {2, 3, 4, 5}, true},
  };
  for (const Case& c : cases) {
    std::string label = "size " + std::to_string(c.size) + ", acks";
    for (uint64_t a : c.acks) label += " " + std::to_string(a);
    SCOPED_TRACE(label);
    std::vector<uint64_t> voters;
    for (uint64_t i = 1; i <= c.size; ++i) voters.push_back(i);
    Network net(voters);
    Proposed x;
    ASSERT_NO_FATAL_FAILURE(elect_and_send_x(net, &x));
    const Proposed* p = &x;
    ack_append(net, 1, c.acks, p->index);
    EXPECT_EQ(net.hard_state(1).commit(), c.commit ? p->index : p->index - 1);
    EXPECT_EQ(applied_data(net.member(1)),
              c.commit ? std::vector<std::string>{"x"} : std::vector<std::string>{});
    if (c.commit && c.size > 1) {
      // Figure 2: followers learn the commit index from the leader's next
      // AppendEntries (or heartbeat).
      net.tick(1);
      bool told = false;
      for (const Message& m : net.take_all())
        if ((m.type() == raftpb::MSG_APP || m.type() == raftpb::MSG_HEARTBEAT) &&
            m.commit() == p->index)
          told = true;
      EXPECT_TRUE(told) << "no follower was told the new commit index";
    }
  }
}

// Not a rule of the paper but a message it leaves open: a leader tells a
// follower that was sent every entry of a new commit index with a commit_only
// append, and an accepted one is not answered (the answer would repeat the
// follower's last acknowledgement; raft.proto). A follower that does not
// hold the entry the append names still answers, with a rejection, so the
// leader learns it has to probe.
TEST(RaftPaperTest, CommitOnlyAppendsAreAnsweredOnlyWhenRejected) {
  {
    SCOPED_TRACE("leader");
    Network net({1, 2, 3});
    Proposed x;
    ASSERT_NO_FATAL_FAILURE(elect_and_send_x(net, &x));
    const Proposed* p = &x;
    ack_append(net, 1, {2}, p->index);
    ASSERT_EQ(net.hard_state(1).commit(), p->index);
    auto apps = of_type(net.take_all(), raftpb::MSG_APP);
    // Both followers were sent the entry (3 has not acknowledged it yet): each
    // is told the commit index with an empty commit_only append after it.
    EXPECT_EQ(recipients(apps), (std::set<uint64_t>{2, 3})) << describe(apps);
    for (const Message& m : apps) {
      EXPECT_TRUE(m.commit_only()) << describe(m);
      EXPECT_EQ(m.entries_size(), 0) << describe(m);
      EXPECT_EQ(m.index(), p->index) << describe(m);
      EXPECT_EQ(m.log_term(), p->term) << describe(m);
      EXPECT_EQ(m.commit(), p->index) << describe(m);
    }
  }
  {
    SCOPED_TRACE("follower");
    Network net({1, 2, 3});
    net.add(1, new_storage({1, 2, 3}, {}, /*hard_term=*/2));
    (void)net.step(make_app(2, 1, 2, 1, 1, {make_entry(2, 2, "a")}, 1));
    ASSERT_EQ(of_type(net.take_all(), raftpb::MSG_APP_RESP).size(), 1u);
    Message commit = make_app(2, 1, 2, 2, 2, {}, 2);
    commit.set_commit_only(true);
    (void)net.step(commit);
    EXPECT_EQ(net.hard_state(1).commit(), 2u);
    EXPECT_EQ(applied_data(net.member(1)), std::vector<std::string>{"a"});
    auto resps = of_type(net.take_all(), raftpb::MSG_APP_RESP);
    EXPECT_TRUE(resps.empty()) << "an accepted commit_only append was answered: "
                               << describe(resps);
    // One naming an entry this follower lacks is rejected, and says so.
    Message ahead = make_app(2, 1, 2, 5, 2, {}, 5);
    ahead.set_commit_only(true);
    (void)net.step(ahead);
    resps = of_type(net.take_all(), raftpb::MSG_APP_RESP);
    ASSERT_EQ(resps.size(), 1u) << describe(resps);
    EXPECT_TRUE(resps[0].reject()) << describe(resps[0]);
    EXPECT_EQ(net.hard_state(1).commit(), 2u);
    // A plain empty append (a probe) is still answered.
    (void)net.step(make_app(2, 1, 2, 2, 2, {}, 2));
    resps = of_type(net.take_all(), raftpb::MSG_APP_RESP);
    ASSERT_EQ(resps.size(), 1u) << describe(resps);
    EXPECT_FALSE(resps[0].reject()) << describe(resps[0]);
  }
}

// Raft thesis §10.2.1, as this core implements it: the leader's own log
// counts toward a majority only once its entries are persisted (advance()). A
// follower's acknowledgement arriving while the leader's own write is still
// in flight must not commit the entry in a 3-node group.
TEST(RaftPaperTest, LeaderCountsItsOwnEntryOnlyAfterPersisting) {
  Network net({1, 2, 3});
  net.add(1);
  ASSERT_NO_FATAL_FAILURE(elect_with_virtual_peers(net, 1));
  uint64_t commit = net.hard_state(1).commit();
  auto p = net.node(1).propose("x");
  ASSERT_TRUE(p.is_ok());
  ASSERT_TRUE(net.node(1).has_ready());
  Ready rd = net.node(1).ready();
  ASSERT_EQ(log_view(rd.entries), (LogView{{p->index, p->term, "x"}}));
  // Follower 2 acknowledges before the leader has persisted the entry.
  Message ack = make_msg(raftpb::MSG_APP_RESP, 2, 1, p->term);
  ack.set_index(p->index);
  ASSERT_TRUE(net.node(1).step(ack).is_ok());
  EXPECT_EQ(net.node(1).status().hard_state.commit(), commit)
      << "committed with only one durable copy";
  for (const Entry& e : rd.committed_entries) EXPECT_LT(e.index(), p->index);
  // Now the leader's write is durable.
  net.handle(net.member(1), rd);
  net.node(1).advance();
  net.process(1);
  EXPECT_EQ(net.hard_state(1).commit(), p->index);
  EXPECT_EQ(applied_data(net.member(1)), std::vector<std::string>{"x"});
}

// Figure 2, AppendEntries receiver: "If leaderCommit > commitIndex, set
// commitIndex = min(leaderCommit, index of last new entry)"; Rules for All
// Servers: "If commitIndex > lastApplied: increment lastApplied, apply
// log[lastApplied] to state machine" — in log order.
TEST(RaftPaperTest, FollowerAppliesEntriesUpToLeaderCommitInOrder) {
  Network net({1, 2, 3});
  net.add(1, new_storage({1, 2, 3}, {}, /*hard_term=*/2));
  (void)net.step(make_app(
      2, 1, 2, 1, 1, {make_entry(2, 2, "a"), make_entry(3, 2, "b"), make_entry(4, 2, "c")}, 3));
  EXPECT_EQ(net.hard_state(1).commit(), 3u);
  EXPECT_EQ(applied_data(net.member(1)), (std::vector<std::string>{"a", "b"}));
  Message hb = make_msg(raftpb::MSG_HEARTBEAT, 2, 1, 2);
  hb.set_commit(4);
  (void)net.step(hb);
  EXPECT_EQ(net.hard_state(1).commit(), 4u);
  EXPECT_EQ(applied_data(net.member(1)), (std::vector<std::string>{"a", "b", "c"}));
}

// The "index of last new entry" half of the rule: entries after the ones this
// AppendEntries vouched for may still conflict with the leader's log, so the
// follower must not commit them on the leader's word.
TEST(RaftPaperTest, FollowerCommitsOnlyUpToLastEntryVouchedForByLeader) {
  Network net({1, 2, 3});
  // Entries 2..4 of term 1 that the leader of term 2 has not vouched for.
  net.add(1, new_storage({1, 2, 3}, {1, 1, 1}, /*hard_term=*/2));
  (void)net.step(make_app(2, 1, 2, /*index=*/2, /*log_term=*/1, {}, /*commit=*/4));
  EXPECT_EQ(net.hard_state(1).commit(), 2u);
  ASSERT_FALSE(net.member(1).applied.empty());
  EXPECT_EQ(net.member(1).applied.back().index(), 2u);
  auto resps = of_type(net.take_all(), raftpb::MSG_APP_RESP);
  ASSERT_EQ(resps.size(), 1u) << describe(resps);
  EXPECT_FALSE(resps[0].reject());
  EXPECT_EQ(resps[0].index(), 2u) << "acknowledged entries the leader did not send";
}

// All members of a live group apply the same entries in the same order.
TEST(RaftPaperTest, AllMembersApplyCommittedEntriesInLogOrder) {
  Network net({1, 2, 3});
  net.add_all();
  net.node(1).campaign();
  net.stabilize();
  ASSERT_EQ(net.node(1).role(), Role::kLeader);
  std::vector<std::string> want;
  for (int i = 0; i < 5; ++i) {
    want.push_back("v" + std::to_string(i));
    ASSERT_TRUE(net.node(1).propose(want.back()).is_ok());
    net.stabilize();
  }
  net.tick_all(2);
  for (uint64_t id : {1, 2, 3}) {
    SCOPED_TRACE("node " + std::to_string(id));
    EXPECT_EQ(applied_data(net.member(id)), want);
    EXPECT_EQ(log_view(net.member(id).applied), log_view(net.member(1).applied));
  }
}

// Figure 2, AppendEntries receiver: "Reply false if log doesn't contain an
// entry at prevLogIndex whose term matches prevLogTerm". A rejection names the
// rejected index; the follower's log and commit index do not change.
TEST(RaftPaperTest, FollowerRejectsAppendEntriesFailingConsistencyCheck) {
  struct Case {
    uint64_t index, log_term;
    bool reject;
    uint64_t resp_index;
  };
  // Follower log: 2@1, 3@2 (last index 3).
  const std::vector<Case> cases = {
      {1, 1, false, 1},  // matches the snapshot's last entry
      {2, 1, false, 2},  // matches
      {3, 2, false, 3},  // matches the last entry
      {3, 3, true, 3},   // term mismatch at the last entry
      {2, 2, true, 2},   // term mismatch in the middle
      {4, 2, true, 4},   // entry missing
      {5, 3, true, 5},   // entry missing
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("prevLogIndex " + std::to_string(c.index) + " prevLogTerm " +
                 std::to_string(c.log_term));
    Network net({1, 2, 3});
    net.add(1, new_storage({1, 2, 3}, {1, 2}, /*hard_term=*/3));
    LogView before = log_view(net.storage(1));
    (void)net.step(make_app(2, 1, 3, c.index, c.log_term, {}, 1));
    auto resps = of_type(net.take_all(), raftpb::MSG_APP_RESP);
    ASSERT_EQ(resps.size(), 1u) << describe(resps);
    EXPECT_EQ(resps[0].to(), 2u);
    EXPECT_EQ(resps[0].term(), 3u);
    EXPECT_EQ(resps[0].reject(), c.reject) << describe(resps[0]);
    EXPECT_EQ(resps[0].index(), c.resp_index) << describe(resps[0]);
    if (c.reject) {
      EXPECT_LE(resps[0].reject_hint(), std::min<uint64_t>(c.index, 3))
          << "hint beyond the follower's log: " << describe(resps[0]);
    }
    EXPECT_EQ(log_view(net.storage(1)), before);
    EXPECT_EQ(net.hard_state(1).commit(), 1u);
    EXPECT_EQ(net.node(1).leader(), 2u) << "a consistency-check failure is still from the leader";
  }
}

// Figure 2, AppendEntries receiver: "If an existing entry conflicts with a new
// one (same index but different terms), delete the existing entry and all
// that follow it. Append any new entries not already in the log." Entries
// already present are not deleted (a late, shorter AppendEntries must not
// truncate the log).
TEST(RaftPaperTest, FollowerDeletesConflictingEntriesAndAppendsNewOnes) {
  struct Case {
    uint64_t index, log_term;
    std::vector<std::pair<uint64_t, uint64_t>> ents;  // (index, term)
    std::vector<uint64_t> want_terms;                 // of entries 2, 3, ...
  };
  // Follower log: 2@1, 3@2.
  const std::vector<Case> cases = {
      {3, 2, {{4, 3}}, {1, 2, 3}},             // append after the last entry
      {3, 2, {{4, 3}, {5, 4}}, {1, 2, 3, 4}},  // append several
      {2, 1, {{3, 3}, {4, 3}}, {1, 3, 3}},     // conflict at 3: replaced
      {1, 1, {{2, 3}}, {3}},                   // conflict at 2: 2 and 3 deleted
      {1, 1, {{2, 1}}, {1, 2}},                // already present: nothing deleted
      {1, 1, {{2, 1}, {3, 2}}, {1, 2}},        // all present
      {2, 1, {{3, 2}, {4, 4}}, {1, 2, 4}},     // first present, second new
  };
  for (const Case& c : cases) {
    std::string label =
        "prev " + std::to_string(c.index) + "@" + std::to_string(c.log_term) + " entries";
    std::vector<Entry> ents;
    for (auto [i, t] : c.ents) {
      label += " " + std::to_string(i) + "@" + std::to_string(t);
      ents.push_back(make_entry(i, t, entry_data(i, t)));
    }
    SCOPED_TRACE(label);
    Network net({1, 2, 3});
    net.add(1, new_storage({1, 2, 3}, {1, 2}, /*hard_term=*/4));
    (void)net.step(make_app(2, 1, 4, c.index, c.log_term, ents, 1));
    EXPECT_EQ(log_terms(net.storage(1)), c.want_terms);
    for (const Entry& e : log_entries(net.storage(1))) {
      EXPECT_EQ(e.data(), entry_data(e.index(), e.term())) << "wrong content at " << e.index();
    }
    auto resps = of_type(net.take_all(), raftpb::MSG_APP_RESP);
    ASSERT_EQ(resps.size(), 1u) << describe(resps);
    EXPECT_FALSE(resps[0].reject());
    EXPECT_EQ(resps[0].index(), c.ents.back().first) << describe(resps[0]);
  }
}

// Figure 2: log entries are persistent state, "updated on stable storage
// before responding to RPCs". The acknowledgement of an append travels in
// messages_after_persist of a Ready that holds the entries (or a later one).
TEST(RaftPaperTest, AppendIsPersistedBeforeItIsAcknowledged) {
  Network net({1, 2, 3});
  net.add(1, new_storage({1, 2, 3}, {}, /*hard_term=*/2));
  ASSERT_TRUE(net.node(1).step(make_app(2, 1, 2, 1, 1, {make_entry(2, 2, "a")}, 1)).is_ok());
  std::vector<Ready> readies;
  net.process(1, &readies);
  bool persisted = false, acked = false;
  for (const Ready& rd : readies) {
    for (const Entry& e : rd.entries) {
      if (e.index() == 2) {
        persisted = true;
        EXPECT_TRUE(rd.must_sync);
      }
    }
    for (const Message& m : rd.messages) {
      EXPECT_FALSE(m.type() == raftpb::MSG_APP_RESP && !m.reject())
          << "append acknowledged before it was persisted: " << describe(m);
    }
    for (const Message& m : rd.messages_after_persist) {
      if (m.type() == raftpb::MSG_APP_RESP && !m.reject() && m.index() >= 2) {
        EXPECT_TRUE(persisted) << "acknowledged in a Ready that does not persist the entry";
        acked = true;
      }
    }
  }
  EXPECT_TRUE(acked);
}

// §5.5: "Raft RPCs are idempotent ... if a follower receives an AppendEntries
// request that includes log entries already present in its log, it ignores
// those entries in the new request." Late duplicates change nothing.
TEST(RaftPaperTest, DuplicateAppendEntriesAreIgnored) {
  Network net({1, 2, 3});
  net.add(1, new_storage({1, 2, 3}, {}, /*hard_term=*/2));
  Message first = make_app(2, 1, 2, 1, 1, {make_entry(2, 2, "a"), make_entry(3, 2, "b")}, 1);
  Message second = make_app(2, 1, 2, 3, 2, {make_entry(4, 2, "c")}, 1);
  const LogView want = {{2, 2, "a"}, {3, 2, "b"}, {4, 2, "c"}};
  for (const Message& m : {first, second, first, second, first}) {
    (void)net.step(m);
    auto resps = of_type(net.take_all(), raftpb::MSG_APP_RESP);
    ASSERT_EQ(resps.size(), 1u) << describe(resps);
    EXPECT_FALSE(resps[0].reject()) << describe(resps[0]);
    EXPECT_EQ(resps[0].index(), m.index() + m.entries_size()) << describe(resps[0]);
  }
  EXPECT_EQ(log_view(net.storage(1)), want);
  EXPECT_EQ(net.hard_state(1).commit(), 1u);
}

// Figure 2, "Persistent state on all servers": currentTerm, votedFor and the
// log survive a crash. A restarted server must not vote again in a term it
// voted in, and does not apply entries twice.
TEST(RaftPaperTest, PersistentStateSurvivesRestart) {
  Network net({1, 2, 3});
  net.add(1, new_storage({1, 2, 3}, {}, /*hard_term=*/2));
  (void)net.step(make_app(2, 1, 2, 1, 1, {make_entry(2, 2, "a"), make_entry(3, 2, "b")}, 2));
  ASSERT_EQ(applied_data(net.member(1)), std::vector<std::string>{"a"});
  (void)net.step(make_vote(3, 1, 3, 2, 3));
  ASSERT_TRUE(has_grant(net.take_all(), raftpb::MSG_VOTE_RESP, 3));
  net.restart(1);
  net.process(1);
  EXPECT_EQ(net.node(1).role(), Role::kFollower);
  EXPECT_EQ(net.node(1).term(), 3u);
  EXPECT_EQ(net.node(1).status().hard_state.vote(), 3u);
  EXPECT_EQ(net.node(1).status().hard_state.commit(), 2u);
  EXPECT_EQ(net.node(1).status().last_index, 3u);
  (void)net.step(make_vote(2, 1, 3, 2, 3));
  EXPECT_FALSE(has_grant(net.take_all(), raftpb::MSG_VOTE_RESP, 2))
      << "voted for a second candidate in term 3 after a restart";
  (void)net.step(make_vote(3, 1, 3, 2, 3));
  EXPECT_TRUE(has_grant(net.take_all(), raftpb::MSG_VOTE_RESP, 3));
  // Leader 3 of term 3 commits entry 3: it is applied once, and "a" not again.
  (void)net.step(make_app(3, 1, 3, 3, 2, {}, 3));
  EXPECT_EQ(applied_data(net.member(1)), (std::vector<std::string>{"a", "b"}));
}

// The follower logs of Figure 7 (as terms of entries 1..n; entry 1 is the
// bootstrap snapshot's), against the leader of term 8 whose log is
// 1 1 1 4 4 5 5 6 6 6.
struct Figure7Case {
  const char* name;
  std::vector<uint64_t> terms;  // entries 2, 3, ...
  bool diverges;                // the leader's first probe is rejected
};
const std::vector<uint64_t> kFig7Leader = {1, 1, 4, 4, 5, 5, 6, 6, 6};
const std::vector<Figure7Case> kFig7Followers = {
    {"a", {1, 1, 4, 4, 5, 5, 6, 6}, true},            // missing one entry
    {"b", {1, 1, 4}, true},                           // missing many
    {"c", {1, 1, 4, 4, 5, 5, 6, 6, 6, 6}, false},     // one extra uncommitted entry
    {"d", {1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7}, false},  // extra entries of a later term
    {"e", {1, 1, 4, 4, 4, 4}, true},                  // missing and extra
    {"f", {1, 1, 2, 2, 2, 3, 3, 3, 3, 3}, true},      // a whole divergent history
};

// Sets up Figure 7: member 1 with the leader's log (hard state term 7), member
// 2 with the given follower log, member 3 with the leader's log; then member
// 1 campaigns and wins term 8.
void setup_figure7(Network& net, const Figure7Case& c) {
  net.add(1, new_storage({1, 2, 3}, kFig7Leader, /*hard_term=*/7));
  net.add(2, new_storage({1, 2, 3}, c.terms));
  net.add(3, new_storage({1, 2, 3}, kFig7Leader, /*hard_term=*/7));
  net.node(1).campaign();
  net.stabilize();
  ASSERT_EQ(net.node(1).role(), Role::kLeader);
  ASSERT_EQ(net.node(1).term(), 8u);
  net.tick(1);  // a heartbeat spreads the final commit index
  net.stabilize();
}

// §5.3: "the leader handles inconsistencies by forcing the followers' logs to
// duplicate its own ... After a rejection, the leader decrements nextIndex and
// retries the AppendEntries RPC. Eventually nextIndex will reach a point where
// the leader and follower logs match." Figure 7's followers (a)–(f).
TEST(RaftPaperTest, LeaderRepairsDivergentFollowerLogs) {
  for (const Figure7Case& c : kFig7Followers) {
    SCOPED_TRACE(std::string("Figure 7 follower (") + c.name + ")");
    Network net({1, 2, 3});
    ASSERT_NO_FATAL_FAILURE(setup_figure7(net, c));
    LogView leader = log_view(net.storage(1));
    ASSERT_EQ(leader.size(), kFig7Leader.size() + 1);
    EXPECT_EQ(log_view(net.storage(2)), leader);
    EXPECT_EQ(log_view(net.storage(3)), leader);
    EXPECT_EQ(net.hard_state(2).commit(), 11u);
    EXPECT_EQ(log_view(net.member(2).applied), leader) << "follower applied something else";
    int rejections = 0;
    for (const Message& m : of_type(net.member(2).sent, raftpb::MSG_APP_RESP))
      if (m.reject()) ++rejections;
    if (c.diverges) {
      EXPECT_GE(rejections, 1) << "the consistency check never failed";
    }
  }
}

// §5.3 at the message level: after a rejection the leader retries with a
// lower prevLogIndex (it may use the follower's hint), with the matching
// prevLogTerm from its own log, until the follower accepts.
TEST(RaftPaperTest, LeaderBacksOffNextIndexAfterRejection) {
  for (const Figure7Case& c : kFig7Followers) {
    if (!c.diverges) continue;
    SCOPED_TRACE(std::string("Figure 7 follower (") + c.name + ")");
    Network net({1, 2, 3});
    net.add(1, new_storage({1, 2, 3}, kFig7Leader, /*hard_term=*/7));
    net.node(1).campaign();
    net.process(1);
    answer_votes(net, 1);
    ASSERT_EQ(net.node(1).role(), Role::kLeader);
    // Virtual follower 2 holds the Figure 7 log; its term is the leader's.
    std::vector<uint64_t> fterms = {1};  // index 1
    fterms.insert(fterms.end(), c.terms.begin(), c.terms.end());
    auto fterm = [&](uint64_t i) { return i >= 1 && i <= fterms.size() ? fterms[i - 1] : 0; };
    uint64_t prev = UINT64_MAX;
    bool accepted = false;
    for (int round = 0; round < 12 && !accepted; ++round) {
      auto apps =
          net.take([](const Message& m) { return m.to() == 2 && m.type() == raftpb::MSG_APP; });
      net.take_all();
      ASSERT_EQ(apps.size(), 1u) << "round " << round << describe(apps);
      const Message& a = apps[0];
      auto lt = net.storage(1).term(a.index());
      ASSERT_TRUE(lt.is_ok());
      EXPECT_EQ(a.log_term(), *lt) << "prevLogTerm must be the leader's term at prevLogIndex";
      EXPECT_LT(a.index(), prev) << "nextIndex did not decrease: " << describe(a);
      for (int k = 0; k < a.entries_size(); ++k) EXPECT_EQ(a.entries(k).index(), a.index() + 1 + k);
      prev = a.index();
      Message r = make_msg(raftpb::MSG_APP_RESP, 2, 1, 8);
      if (fterm(a.index()) == a.log_term()) {
        r.set_index(a.index() + a.entries_size());
        accepted = true;
      } else {
        uint64_t hint = std::min<uint64_t>(a.index(), fterms.size());
        r.set_reject(true);
        r.set_index(a.index());
        r.set_reject_hint(hint);
        r.set_log_term(fterm(hint));
      }
      (void)net.step(r);
    }
    EXPECT_TRUE(accepted) << "the leader never found the point where the logs match";
  }
}

// §5.3 and Figure 3, Leader Append-Only: "a leader never overwrites or deletes
// entries in its own log; it only appends new entries." Even while repairing
// followers with longer or conflicting logs.
TEST(RaftPaperTest, LeaderNeverOverwritesOrDeletesItsOwnEntries) {
  for (const Figure7Case& c : kFig7Followers) {
    SCOPED_TRACE(std::string("Figure 7 follower (") + c.name + ")");
    Network net({1, 2, 3});
    LogView before = log_view(*new_storage({1, 2, 3}, kFig7Leader));
    ASSERT_NO_FATAL_FAILURE(setup_figure7(net, c));
    LogView after = log_view(net.storage(1));
    ASSERT_EQ(after.size(), before.size() + 1);
    EXPECT_EQ(LogView(after.begin(), after.end() - 1), before);
    EXPECT_EQ(after.back(), (std::tuple<uint64_t, uint64_t, std::string>{11, 8, ""}));
    EXPECT_EQ(net.member(1).leader_log_rewrites, 0);
  }
}

// ---------------------------------------------------------------------------
// §5.4 Safety.
// ---------------------------------------------------------------------------

// §5.4.2 and Figure 8: "Raft never commits log entries from previous terms by
// counting replicas. Only log entries from the leader's current term are
// committed by counting replicas; once an entry from the current term has been
// committed in this way, then all prior entries are committed indirectly."
TEST(RaftPaperTest, LeaderCommitsOnlyCurrentTermEntriesByCounting) {
  for (bool broken : {false, true}) {
    SCOPED_TRACE(broken ? "TEST_commit_old_term_by_counting (control)" : "Raft");
    Options o;
    o.TEST_commit_old_term_by_counting = broken;
    Network net({1, 2, 3}, o);
    // Entry 2 of term 2 was created by an earlier leader and never committed.
    net.add(1, new_storage({1, 2, 3}, {2}, /*hard_term=*/2));
    net.node(1).campaign();
    net.process(1);
    answer_votes(net, 1);
    ASSERT_EQ(net.node(1).role(), Role::kLeader);
    ASSERT_EQ(net.node(1).term(), 3u);
    ASSERT_EQ(net.storage(1).last_index(), 3u) << "expected the no-op at index 3";
    net.take_all();
    // Follower 2 now holds entry 2: it is on a majority, but of term 2.
    ack_append(net, 1, {2}, 2);
    EXPECT_EQ(net.hard_state(1).commit(), broken ? 2u : 1u);
    // Follower 2 holds the no-op of term 3 as well: both entries commit.
    ack_append(net, 1, {2}, 3);
    EXPECT_EQ(net.hard_state(1).commit(), 3u);
    EXPECT_EQ(log_view(net.member(1).applied), (LogView{{2, 2, entry_data(2, 2)}, {3, 3, ""}}));
  }
}

// §5.4.1 and Figure 3, Leader Completeness: a server whose log lacks committed
// entries cannot be elected ("the voter denies its vote if its own log is more
// up-to-date"), and the server that is elected holds every committed entry.
TEST(RaftPaperTest, ElectedLeaderHasAllCommittedEntries) {
  Network net({1, 2, 3});
  net.add_all();
  net.node(1).campaign();
  net.stabilize();
  ASSERT_EQ(net.node(1).role(), Role::kLeader);
  net.isolate(3);
  for (const char* v : {"a", "b", "c"}) {
    ASSERT_TRUE(net.node(1).propose(v).is_ok());
    net.stabilize();
  }
  ASSERT_EQ(applied_data(net.member(1)), (std::vector<std::string>{"a", "b", "c"}));
  LogView committed = log_view(net.storage(1));
  // Leader 1 crashes; node 3, which missed the entries, comes back.
  net.heal();
  net.isolate(1);
  net.node(3).campaign();
  net.stabilize();
  EXPECT_NE(net.node(3).role(), Role::kLeader) << "elected without the committed entries";
  net.node(2).campaign();
  net.stabilize();
  ASSERT_EQ(net.node(2).role(), Role::kLeader);
  LogView l2 = log_view(net.storage(2));
  ASSERT_GE(l2.size(), committed.size());
  EXPECT_EQ(LogView(l2.begin(), l2.begin() + committed.size()), committed);
  net.tick(2);
  net.stabilize();
  EXPECT_EQ(applied_data(net.member(3)), (std::vector<std::string>{"a", "b", "c"}));
}

// §5.1: "If a candidate or leader discovers that its term is out of date, it
// immediately reverts to follower state." A deposed leader's uncommitted
// entries are replaced by the new leader's and never applied.
TEST(RaftPaperTest, StaleLeaderStepsDownAndItsUncommittedEntriesAreDiscarded) {
  Network net({1, 2, 3});
  net.add_all();
  net.node(1).campaign();
  net.stabilize();
  ASSERT_EQ(net.node(1).role(), Role::kLeader);
  uint64_t t = net.node(1).term();
  net.isolate(1);
  ASSERT_TRUE(net.node(1).propose("stale").is_ok());
  net.process(1);
  net.node(2).campaign();
  net.stabilize();
  ASSERT_EQ(net.node(2).role(), Role::kLeader);
  ASSERT_GT(net.node(2).term(), t);
  ASSERT_TRUE(net.node(2).propose("fresh").is_ok());
  net.stabilize();
  EXPECT_EQ(net.node(1).role(), Role::kLeader) << "isolated: it cannot know yet";
  net.heal();
  net.tick(2);  // heartbeat of the new leader
  net.stabilize();
  net.tick(2);
  net.stabilize();
  EXPECT_EQ(net.node(1).role(), Role::kFollower);
  EXPECT_EQ(net.node(1).term(), net.node(2).term());
  EXPECT_EQ(net.node(1).leader(), 2u);
  EXPECT_EQ(log_view(net.storage(1)), log_view(net.storage(2)));
  for (uint64_t id : {1, 2, 3}) {
    SCOPED_TRACE("node " + std::to_string(id));
    EXPECT_EQ(applied_data(net.member(id)), std::vector<std::string>{"fresh"});
  }
}

// ---------------------------------------------------------------------------
// Thesis extensions.
// ---------------------------------------------------------------------------

// Thesis §9.6: "In the Pre-Vote algorithm, a candidate only increments its
// term if it first learns from a majority of the cluster that they would be
// willing to grant the candidate their votes".
TEST(RaftPaperTest, PreVoteDoesNotIncrementTermUntilMajorityWouldVote) {
  Options o;
  o.pre_vote = true;
  Network net({1, 2, 3}, o);
  net.add(1, new_storage({1, 2, 3}, {}, /*hard_term=*/3));
  net.node(1).campaign();
  net.process(1);
  EXPECT_EQ(net.node(1).role(), Role::kPreCandidate);
  EXPECT_EQ(net.node(1).term(), 3u);
  EXPECT_EQ(net.hard_state(1).term(), 3u);
  EXPECT_EQ(net.hard_state(1).vote(), kNone);
  auto pre = of_type(net.take_all(), raftpb::MSG_PRE_VOTE);
  EXPECT_EQ(recipients(pre), (std::set<uint64_t>{2, 3})) << describe(pre);
  for (const Message& m : pre) {
    EXPECT_EQ(m.term(), 4u) << "a pre-vote asks about the term it would campaign in";
    EXPECT_EQ(m.index(), 1u);
    EXPECT_EQ(m.log_term(), 1u);
  }
  // A rejection from a voter still in term 3 changes nothing.
  Message no = make_msg(raftpb::MSG_PRE_VOTE_RESP, 3, 1, 3);
  no.set_reject(true);
  (void)net.step(no);
  EXPECT_EQ(net.node(1).role(), Role::kPreCandidate);
  EXPECT_EQ(net.node(1).term(), 3u);
  EXPECT_EQ(net.hard_state(1).term(), 3u);
  // A majority would vote: now the real election, in term 4.
  (void)net.step(make_msg(raftpb::MSG_PRE_VOTE_RESP, 2, 1, 4));
  EXPECT_EQ(net.node(1).role(), Role::kCandidate);
  EXPECT_EQ(net.node(1).term(), 4u);
  EXPECT_EQ(net.hard_state(1).vote(), 1u);
  auto votes = of_type(net.take_all(), raftpb::MSG_VOTE);
  EXPECT_EQ(recipients(votes), (std::set<uint64_t>{2, 3})) << describe(votes);
}

// A pre-vote is not a vote: answering one changes neither the voter's term nor
// its vote.
TEST(RaftPaperTest, PreVoteDoesNotChangeVoterState) {
  Options o;
  o.pre_vote = true;
  Network net({1, 2, 3}, o);
  net.add(1, new_storage({1, 2, 3}, {}, /*hard_term=*/2));
  Message pv = make_vote(2, 1, 3, 1, 1);
  pv.set_type(raftpb::MSG_PRE_VOTE);
  (void)net.step(pv);
  auto out = net.take_all();
  EXPECT_TRUE(has_grant(out, raftpb::MSG_PRE_VOTE_RESP, 2)) << describe(out);
  EXPECT_EQ(net.node(1).term(), 2u);
  EXPECT_EQ(net.hard_state(1).term(), 2u);
  EXPECT_EQ(net.hard_state(1).vote(), kNone);
  // The real vote of term 3 is still free.
  (void)net.step(make_vote(3, 1, 3, 1, 1));
  EXPECT_TRUE(has_grant(net.take_all(), raftpb::MSG_VOTE_RESP, 3));
}

// Thesis §9.6: PreVote stops a server that was partitioned away from
// disrupting the cluster when it rejoins. Without PreVote (the control), the
// partitioned server's term runs ahead and deposes the leader on rejoin.
TEST(RaftPaperTest, PartitionedNodeWithPreVoteDoesNotDisruptOnRejoin) {
  for (bool pre_vote : {true, false}) {
    SCOPED_TRACE(pre_vote ? "pre_vote + check_quorum" : "plain Raft (control)");
    Options o;
    o.pre_vote = o.check_quorum = pre_vote;
    Network net({1, 2, 3}, o);
    net.add_all();
    net.node(1).campaign();
    net.stabilize();
    ASSERT_EQ(net.node(1).role(), Role::kLeader);
    uint64_t t = net.node(1).term();
    net.isolate(3);
    net.tick_all(10 * kEt);
    EXPECT_EQ(net.node(1).role(), Role::kLeader);
    if (pre_vote) {
      EXPECT_EQ(net.node(3).term(), t) << "the partitioned node inflated its term";
    } else {
      EXPECT_GT(net.node(3).term(), t);
    }
    net.heal();
    net.tick_all(5 * kEt);
    if (pre_vote) {
      EXPECT_EQ(net.node(1).role(), Role::kLeader) << "the rejoining node disrupted the leader";
      for (uint64_t id : {1, 2, 3}) EXPECT_EQ(net.node(id).term(), t) << "node " << id;
      EXPECT_EQ(net.node(3).leader(), 1u);
    } else {
      EXPECT_GT(net.node(1).term(), t) << "control: plain Raft should have been disrupted";
    }
  }
}

// Thesis §6.2: "a leader in Raft steps down if an election timeout elapses
// without a successful round of heartbeats to a majority of its cluster".
TEST(RaftPaperTest, CheckQuorumLeaderStepsDownWithoutQuorum) {
  for (bool check_quorum : {true, false}) {
    SCOPED_TRACE(check_quorum ? "check_quorum" : "no check_quorum (control)");
    Options o;
    o.check_quorum = check_quorum;
    Network net({1, 2, 3}, o);
    net.add_all();
    net.node(1).campaign();
    net.stabilize();
    net.tick_all(3);
    ASSERT_EQ(net.node(1).role(), Role::kLeader);
    uint64_t t = net.node(1).term();
    net.isolate(1);
    net.tick(1, kEt - 1);
    EXPECT_EQ(net.node(1).role(), Role::kLeader) << "stepped down before an election timeout";
    net.tick(1, kEt + 2);
    if (check_quorum) {
      EXPECT_EQ(net.node(1).role(), Role::kFollower);
      EXPECT_EQ(net.node(1).term(), t) << "stepping down needs no new term";
      EXPECT_EQ(net.node(1).leader(), kNone);
      EXPECT_EQ(net.node(1).propose("x").code(), Code::kNoLeader);
    } else {
      net.tick(1, 10 * kEt);
      EXPECT_EQ(net.node(1).role(), Role::kLeader);
    }
  }
}

// Thesis §4.2.3 / §6.2: "if a server receives a RequestVote request within the
// minimum election timeout of hearing from a current leader, it does not
// update its term or grant its vote."
TEST(RaftPaperTest, FollowerIgnoresRequestVoteWhileLeaderIsAlive) {
  for (bool check_quorum : {true, false}) {
    SCOPED_TRACE(check_quorum ? "check_quorum" : "no check_quorum (control)");
    Options o;
    o.check_quorum = check_quorum;
    Network net({1, 2, 3}, o);
    net.add_all();
    net.node(1).campaign();
    net.stabilize();
    net.tick_all(2);
    ASSERT_EQ(net.node(1).role(), Role::kLeader);
    uint64_t t = net.node(1).term();
    net.node(2).campaign();
    net.process(2);
    net.deliver_if([](const Message& m) {
      return m.type() == raftpb::MSG_VOTE || m.type() == raftpb::MSG_VOTE_RESP;
    });
    bool granted = has_grant(net.member(3).sent, raftpb::MSG_VOTE_RESP, 2);
    if (check_quorum) {
      EXPECT_FALSE(granted);
      EXPECT_EQ(net.node(3).term(), t);
      EXPECT_EQ(net.hard_state(3).term(), t);
      EXPECT_EQ(net.node(3).leader(), 1u);
      EXPECT_EQ(net.node(1).role(), Role::kLeader);
      EXPECT_EQ(net.node(1).term(), t);
      EXPECT_NE(net.node(2).role(), Role::kLeader);
    } else {
      EXPECT_TRUE(granted) << "control: plain Raft grants the vote";
      EXPECT_EQ(net.node(3).term(), t + 1);
    }
  }
}

// Thesis §6.4, ReadIndex step 1: "If the leader has not yet marked an entry
// from its current term committed, it waits until it has done so." The read
// index is then at least that entry's index.
TEST(RaftPaperTest, ReadIndexWaitsForCommitInCurrentTerm) {
  Network net({1, 2, 3});
  net.add_all();
  net.node(1).campaign();
  net.process(1);
  auto votes = [](const Message& m) {
    return m.type() == raftpb::MSG_VOTE || m.type() == raftpb::MSG_VOTE_RESP;
  };
  net.deliver_if(votes);
  ASSERT_EQ(net.node(1).role(), Role::kLeader);
  uint64_t noop = net.node(1).status().last_index;
  ASSERT_LT(net.hard_state(1).commit(), noop);
  ASSERT_TRUE(net.node(1).read_index("r1").is_ok());
  net.process(1);
  // Heartbeats flow, but no AppendEntries: the no-op cannot commit.
  auto no_app = [](const Message& m) {
    return m.type() != raftpb::MSG_APP && m.type() != raftpb::MSG_APP_RESP;
  };
  for (int i = 0; i < 5; ++i) {
    net.tick(1);
    net.deliver_if(no_app);
  }
  ASSERT_LT(net.hard_state(1).commit(), noop);
  EXPECT_TRUE(net.member(1).read_states.empty())
      << "read index " << net.member(1).read_states[0].index
      << " served before the leader committed an entry of its term";
  for (int i = 0; i < 5 && net.member(1).read_states.empty(); ++i) {
    net.stabilize();
    net.tick(1);
  }
  net.stabilize();
  ASSERT_EQ(net.member(1).read_states.size(), 1u) << "the read was lost";
  const ReadState& rs = net.member(1).read_states[0];
  EXPECT_EQ(rs.context, "r1");
  EXPECT_GE(rs.index, noop);
  EXPECT_LE(rs.index, net.hard_state(1).commit());
}

// Thesis §6.4, ReadIndex steps 2–3: "The leader records its current commit
// index ... sends a new round of heartbeats, and waits for their
// acknowledgments from a majority of the cluster." 5 members: the leader plus
// one follower are not a majority; plus two are.
TEST(RaftPaperTest, ReadIndexWaitsForHeartbeatQuorum) {
  Network net({1, 2, 3, 4, 5});
  net.add_all();
  net.node(1).campaign();
  net.stabilize();
  ASSERT_EQ(net.node(1).role(), Role::kLeader);
  uint64_t commit = net.hard_state(1).commit();
  ASSERT_TRUE(net.node(1).read_index("r2").is_ok());
  net.process(1);
  auto hb_to = [](uint64_t to) {
    return [to](const Message& m) { return m.type() == raftpb::MSG_HEARTBEAT && m.to() == to; };
  };
  if (std::none_of(net.pending().begin(), net.pending().end(), hb_to(2))) net.tick(1);
  EXPECT_TRUE(net.member(1).read_states.empty()) << "served without confirming leadership";
  for (uint64_t f : {2, 3}) {
    net.deliver_if(hb_to(f));
    net.deliver_if([f](const Message& m) { return m.from() == f && m.to() == 1; });
    if (f == 2) {
      EXPECT_TRUE(net.member(1).read_states.empty())
          << "served with acknowledgements from a minority";
    }
  }
  ASSERT_EQ(net.member(1).read_states.size(), 1u);
  EXPECT_EQ(net.member(1).read_states[0].context, "r2");
  EXPECT_EQ(net.member(1).read_states[0].index, commit);
}

// Thesis §6.4: followers serve reads by asking the leader for its read index.
TEST(RaftPaperTest, FollowerReadIndexIsConfirmedByLeader) {
  Network net({1, 2, 3});
  net.add_all();
  net.node(1).campaign();
  net.stabilize();
  ASSERT_EQ(net.node(1).role(), Role::kLeader);
  uint64_t commit = net.hard_state(1).commit();
  ASSERT_TRUE(net.node(2).read_index("f").is_ok());
  for (int i = 0; i < 3 && net.member(2).read_states.empty(); ++i) {
    net.stabilize();
    if (net.member(2).read_states.empty()) net.tick(1);
  }
  ASSERT_EQ(net.member(2).read_states.size(), 1u);
  EXPECT_EQ(net.member(2).read_states[0].context, "f");
  EXPECT_EQ(net.member(2).read_states[0].index, commit);
}

// Thesis §3.10, leadership transfer: "1. The prior leader stops accepting new
// client requests. 2. The prior leader fully updates the target server's log
// ... 3. The prior leader sends a TimeoutNow request to the target server ...
// the target server ... starts a new election". The transfer is aborted if it
// does not complete within an election timeout.
TEST(RaftPaperTest, LeaderTransferCatchesUpTransfereeWhichThenWins) {
  Options o;
  o.pre_vote = o.check_quorum = true;  // the transferee must get past both
  Network net({1, 2, 3}, o);
  net.add_all();
  net.node(1).campaign();
  net.stabilize();
  ASSERT_EQ(net.node(1).role(), Role::kLeader);
  uint64_t t = net.node(1).term();
  net.isolate(3);
  ASSERT_TRUE(net.node(1).propose("a").is_ok());
  net.stabilize();
  ASSERT_TRUE(net.node(1).transfer_leader(3).is_ok());
  net.stabilize();
  EXPECT_EQ(net.node(1).status().lead_transferee, 3u);
  EXPECT_EQ(net.node(1).propose("b").code(), Code::kTransferInProgress);
  // 3 is unreachable: the transfer is abandoned after an election timeout.
  net.tick_all(2 * kEt);
  EXPECT_EQ(net.node(1).role(), Role::kLeader);
  EXPECT_EQ(net.node(1).status().lead_transferee, kNone) << "transfer never aborted";
  EXPECT_TRUE(net.node(1).propose("b").is_ok());
  net.stabilize();
  // 3 is back but behind: it must be caught up, then told to campaign.
  net.heal();
  ASSERT_TRUE(net.node(1).transfer_leader(3).is_ok());
  for (int i = 0; i < kEt / 2 && net.node(3).role() != Role::kLeader; ++i) net.tick_all();
  ASSERT_EQ(net.node(3).role(), Role::kLeader);
  EXPECT_GT(net.node(3).term(), t);
  EXPECT_EQ(net.node(1).role(), Role::kFollower);
  EXPECT_EQ(net.node(1).leader(), 3u);
  auto timeout_now = of_type(net.member(1).sent, raftpb::MSG_TIMEOUT_NOW);
  EXPECT_EQ(recipients(timeout_now), std::set<uint64_t>{3}) << describe(timeout_now);
  net.stabilize();
  EXPECT_EQ(applied_data(net.member(3)), (std::vector<std::string>{"a", "b"}));
}

// ---------------------------------------------------------------------------
// §6 / thesis §4.3: cluster membership changes.
// ---------------------------------------------------------------------------

ConfChange add_voters(std::vector<uint64_t> ids) {
  ConfChange cc;
  for (uint64_t id : ids) {
    auto* c = cc.add_changes();
    c->set_type(raftpb::CONF_ADD_VOTER);
    c->set_node_id(id);
  }
  return cc;
}

std::vector<uint64_t> sorted(const google::protobuf::RepeatedField<uint64_t>& f) {
  std::vector<uint64_t> v(f.begin(), f.end());
  std::sort(v.begin(), v.end());
  return v;
}

// Once a configuration adding a voter is in effect, a majority of the new,
// larger configuration is needed to commit.
TEST(RaftPaperTest, AddedVoterCountsTowardMajority) {
  Network net({1, 2, 3});
  net.add(1);
  ASSERT_NO_FATAL_FAILURE(elect_with_virtual_peers(net, 1));
  auto p = net.node(1).propose_conf_change(add_voters({4}));
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  net.process(1);
  ack_append(net, 1, {2, 3}, p->index);
  ASSERT_EQ(net.hard_state(1).commit(), p->index);
  EXPECT_EQ(sorted(net.node(1).conf_state().voters()), (std::vector<uint64_t>{1, 2, 3, 4}));
  net.take_all();
  auto x = net.node(1).propose("x");
  ASSERT_TRUE(x.is_ok());
  net.process(1);
  net.take_all();
  ack_append(net, 1, {2}, x->index);
  EXPECT_LT(net.hard_state(1).commit(), x->index) << "2 of 4 voters is not a majority";
  ack_append(net, 1, {4}, x->index);
  EXPECT_EQ(net.hard_state(1).commit(), x->index);
}

// §6: "In the joint consensus ... Agreement (for elections and entry
// commitment) requires separate majorities from both the old and new
// configurations."
TEST(RaftPaperTest, JointConsensusNeedsMajoritiesOfBothConfigurations) {
  Network net({1, 2, 3});
  net.add(1);
  ASSERT_NO_FATAL_FAILURE(elect_with_virtual_peers(net, 1));
  auto p = net.node(1).propose_conf_change(add_voters({4, 5}));
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  net.process(1);
  ack_append(net, 1, {2, 3}, p->index);  // committed by the old configuration
  ASSERT_EQ(net.hard_state(1).commit(), p->index);
  ConfState joint = net.node(1).conf_state();
  EXPECT_EQ(sorted(joint.voters()), (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(sorted(joint.voters_outgoing()), (std::vector<uint64_t>{1, 2, 3}));
  auto x = net.node(1).propose("x");
  ASSERT_TRUE(x.is_ok()) << x.status().to_string();
  net.process(1);
  net.take_all();
  uint64_t last = net.node(1).status().last_index;
  ack_append(net, 1, {4, 5}, last);
  EXPECT_LT(net.hard_state(1).commit(), x->index)
      << "a majority of the new configuration alone committed";
  ack_append(net, 1, {2}, last);
  EXPECT_EQ(net.hard_state(1).commit(), last);
  // The automatic leave-joint entry is committed and applied too.
  ConfState final_cs = net.node(1).conf_state();
  EXPECT_EQ(sorted(final_cs.voters()), (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_TRUE(final_cs.voters_outgoing().empty()) << final_cs.ShortDebugString();
}

}  // namespace
}  // namespace qkv::raft
