#include "raft/tracker.h"

#include <gtest/gtest.h>

namespace qkv::raft {
namespace {

TEST(InflightsTest, AddFreeFull) {
  Inflights in(3);
  in.add(5);
  in.add(7);
  in.add(9);
  EXPECT_TRUE(in.full());
  in.free_le(7);
  EXPECT_EQ(in.count(), 1u);
  EXPECT_FALSE(in.full());
  in.free_first_one();
  EXPECT_EQ(in.count(), 0u);
}

TEST(QuorumTest, MajorityCommitted) {
  IdSet ids{1, 2, 3};
  std::map<uint64_t, uint64_t> match{{1, 10}, {2, 5}, {3, 7}};
  EXPECT_EQ(majority_committed(ids, [&](uint64_t id) { return match[id]; }), 7u);
  IdSet five{1, 2, 3, 4, 5};
  std::map<uint64_t, uint64_t> m5{{1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}};
  EXPECT_EQ(majority_committed(five, [&](uint64_t id) { return m5[id]; }), 3u);
  EXPECT_EQ(majority_committed(IdSet{}, [](uint64_t) { return 0; }), UINT64_MAX);
}

TEST(QuorumTest, JointCommittedIsMinOfHalves) {
  ProgressTracker t(8);
  t.config.voters = {1, 2, 3};
  t.config.voters_outgoing = {3, 4, 5};
  uint64_t m[] = {0, 9, 9, 4, 3, 3};
  for (uint64_t id = 1; id <= 5; id++) {
    Progress p(8);
    p.match = m[id];
    t.progress.emplace(id, std::move(p));
  }
  // Incoming {1,2,3}: 9; outgoing {3,4,5}: 3.
  EXPECT_EQ(t.committed(), 3u);
}

TEST(QuorumTest, VoteResult) {
  IdSet ids{1, 2, 3};
  EXPECT_EQ(majority_vote_result(ids, {{1, true}}), VoteResult::kPending);
  EXPECT_EQ(majority_vote_result(ids, {{1, true}, {2, true}}), VoteResult::kWon);
  EXPECT_EQ(majority_vote_result(ids, {{1, true}, {2, false}, {3, false}}), VoteResult::kLost);
  EXPECT_EQ(majority_vote_result(IdSet{}, {}), VoteResult::kWon);
}

TEST(ProgressTest, ProbeRejectionBacksOff) {
  Progress p(8);
  p.match = 0;
  p.next = 10;
  p.probe_sent = true;
  EXPECT_FALSE(p.maybe_decr_to(5, 3));  // stale: not the last probe (next-1 = 9)
  EXPECT_TRUE(p.maybe_decr_to(9, 3));
  EXPECT_EQ(p.next, 4u);
  EXPECT_FALSE(p.probe_sent);
}

TEST(ProgressTest, ReplicateRejectionResetsToMatch) {
  Progress p(8);
  p.become_replicate();
  p.match = 5;
  p.next = 12;
  EXPECT_FALSE(p.maybe_decr_to(4, 0));  // at or below match: stale
  EXPECT_TRUE(p.maybe_decr_to(8, 0));
  EXPECT_EQ(p.next, 6u);
}

}  // namespace
}  // namespace qkv::raft
