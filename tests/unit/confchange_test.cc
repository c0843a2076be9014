#include "raft/confchange.h"

#include <gtest/gtest.h>

namespace qkv::raft {
namespace {

ConfChange CC(std::initializer_list<std::pair<raftpb::ConfChangeType, uint64_t>> cs,
              raftpb::ConfChangeTransition t = raftpb::TRANSITION_AUTO) {
  ConfChange cc;
  for (auto [type, id] : cs) {
    auto* c = cc.add_changes();
    c->set_type(type);
    c->set_node_id(id);
  }
  cc.set_transition(t);
  return cc;
}

class ConfChangeTest : public ::testing::Test {
 protected:
  ConfChangeTest() : tracker(16) {
    ConfState cs;
    for (uint64_t i : {1, 2, 3}) cs.add_voters(i);
    auto r = restore_conf_state(cs, 10, 16);
    EXPECT_TRUE(r.is_ok());
    tracker.config = r->config;
    tracker.progress = r->progress;
  }
  void adopt(const ConfChangeResult& r) {
    tracker.config = r.config;
    tracker.progress = r.progress;
  }
  ProgressTracker tracker;
};

TEST_F(ConfChangeTest, SimpleAddVoter) {
  Changer ch(tracker, 10);
  auto r = ch.simple(CC({{raftpb::CONF_ADD_VOTER, 4}}));
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->config.voters, (IdSet{1, 2, 3, 4}));
  EXPECT_EQ(r->progress.at(4).next, 11u);
}

TEST_F(ConfChangeTest, SimpleRefusesTwoVoterChanges) {
  Changer ch(tracker, 10);
  auto r = ch.simple(CC({{raftpb::CONF_ADD_VOTER, 4}, {raftpb::CONF_ADD_VOTER, 5}}));
  EXPECT_FALSE(r.is_ok());
}

TEST_F(ConfChangeTest, JointReplaceTwoVotersThenLeave) {
  Changer ch(tracker, 10);
  auto r = ch.enter_joint(true, CC({{raftpb::CONF_ADD_VOTER, 4},
                                    {raftpb::CONF_ADD_VOTER, 5},
                                    {raftpb::CONF_REMOVE_NODE, 1},
                                    {raftpb::CONF_REMOVE_NODE, 2}}));
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->config.voters, (IdSet{3, 4, 5}));
  EXPECT_EQ(r->config.voters_outgoing, (IdSet{1, 2, 3}));
  EXPECT_TRUE(r->config.auto_leave);
  EXPECT_TRUE(r->progress.count(1));  // still needed by the outgoing quorum
  adopt(*r);
  Changer ch2(tracker, 12);
  EXPECT_FALSE(ch2.enter_joint(false, CC({{raftpb::CONF_ADD_VOTER, 6}})).is_ok());
  auto l = ch2.leave_joint();
  ASSERT_TRUE(l.is_ok());
  EXPECT_FALSE(l->config.joint());
  EXPECT_FALSE(l->progress.count(1));
  EXPECT_FALSE(l->config.auto_leave);
}

TEST_F(ConfChangeTest, DemoteVoterInJointGoesToLearnersNext) {
  Changer ch(tracker, 10);
  auto r = ch.enter_joint(false, CC({{raftpb::CONF_ADD_LEARNER, 3}}));
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->config.learners_next, (IdSet{3}));
  EXPECT_TRUE(r->config.learners.empty());
  adopt(*r);
  auto l = Changer(tracker, 10).leave_joint();
  ASSERT_TRUE(l.is_ok());
  EXPECT_EQ(l->config.learners, (IdSet{3}));
  EXPECT_TRUE(l->progress.at(3).is_learner);
}

TEST_F(ConfChangeTest, PromoteLearner) {
  Changer ch(tracker, 10);
  auto r = ch.simple(CC({{raftpb::CONF_ADD_LEARNER, 4}}));
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->config.learners, (IdSet{4}));
  adopt(*r);
  auto p = Changer(tracker, 10).simple(CC({{raftpb::CONF_ADD_VOTER, 4}}));
  ASSERT_TRUE(p.is_ok());
  EXPECT_TRUE(p->config.learners.empty());
  EXPECT_FALSE(p->progress.at(4).is_learner);
}

TEST_F(ConfChangeTest, CannotRemoveAllVoters) {
  ProgressTracker one(16);
  ConfState cs;
  cs.add_voters(1);
  auto r = restore_conf_state(cs, 1, 16);
  one.config = r->config;
  one.progress = r->progress;
  EXPECT_FALSE(Changer(one, 1).simple(CC({{raftpb::CONF_REMOVE_NODE, 1}})).is_ok());
}

TEST_F(ConfChangeTest, LeaveNonJointRefused) {
  EXPECT_FALSE(Changer(tracker, 10).leave_joint().is_ok());
}

TEST(EnterJointModeTest, Modes) {
  EXPECT_EQ(enter_joint_mode(CC({{raftpb::CONF_ADD_VOTER, 4}})), std::make_pair(false, false));
  EXPECT_EQ(enter_joint_mode(CC({{raftpb::CONF_ADD_VOTER, 4}, {raftpb::CONF_ADD_VOTER, 5}})),
            std::make_pair(true, true));
  EXPECT_EQ(enter_joint_mode(CC({{raftpb::CONF_ADD_VOTER, 4}},
                                raftpb::TRANSITION_JOINT_EXPLICIT)),
            std::make_pair(true, false));
}

}  // namespace
}  // namespace qkv::raft
