#include "raft/log.h"

#include <gtest/gtest.h>

namespace qkv::raft {
namespace {

Entry E(uint64_t index, uint64_t term, std::string data = "") {
  Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(std::move(data));
  return e;
}

std::vector<Entry> Es(std::initializer_list<std::pair<uint64_t, uint64_t>> its) {
  std::vector<Entry> out;
  for (auto [i, t] : its) out.push_back(E(i, t));
  return out;
}

class RaftLogTest : public ::testing::Test {
 protected:
  MemoryStorage storage;
};

TEST_F(RaftLogTest, AppendAndTerms) {
  ASSERT_TRUE(storage.append(Es({{1, 1}, {2, 2}})).is_ok());
  RaftLog log(&storage, UINT64_MAX);
  EXPECT_EQ(log.last_index(), 2u);
  log.append(Es({{3, 3}}));
  EXPECT_EQ(log.last_index(), 3u);
  EXPECT_EQ(log.last_term(), 3u);
  EXPECT_EQ(*log.term(2), 2u);
  EXPECT_EQ(log.term(4).code(), Code::kUnavailable);
  EXPECT_EQ(log.unstable_entries().size(), 1u);
  EXPECT_EQ(log.persisted_index(), 2u);
}

TEST_F(RaftLogTest, MaybeAppendTruncatesConflicts) {
  RaftLog log(&storage, UINT64_MAX);
  log.append(Es({{1, 1}, {2, 2}, {3, 3}}));
  // Mismatch at prev index.
  EXPECT_FALSE(log.maybe_append(2, 3, 0, Es({{3, 4}})).has_value());
  // Conflict at 3: truncated and replaced.
  auto last = log.maybe_append(2, 2, 3, Es({{3, 4}, {4, 4}}));
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(*last, 4u);
  EXPECT_EQ(*log.term(3), 4u);
  EXPECT_EQ(log.committed(), 3u);
  // Entries already present are not rewritten; commit bounded by last new.
  last = log.maybe_append(1, 1, 10, Es({{2, 2}}));
  EXPECT_EQ(*last, 2u);
  EXPECT_EQ(log.last_index(), 4u);
  EXPECT_EQ(log.committed(), 3u);
}

TEST_F(RaftLogTest, FindConflictByTerm) {
  RaftLog log(&storage, UINT64_MAX);
  log.append(Es({{1, 1}, {2, 1}, {3, 2}, {4, 2}, {5, 5}}));
  EXPECT_EQ(log.find_conflict_by_term(5, 3), (std::pair<uint64_t, uint64_t>{4, 2}));
  EXPECT_EQ(log.find_conflict_by_term(5, 5), (std::pair<uint64_t, uint64_t>{5, 5}));
  EXPECT_EQ(log.find_conflict_by_term(4, 1), (std::pair<uint64_t, uint64_t>{2, 1}));
  EXPECT_EQ(log.find_conflict_by_term(4, 0), (std::pair<uint64_t, uint64_t>{0, 0}));
}

TEST_F(RaftLogTest, IsUpToDate) {
  RaftLog log(&storage, UINT64_MAX);
  log.append(Es({{1, 1}, {2, 2}, {3, 3}}));
  EXPECT_TRUE(log.is_up_to_date(1, 4));   // higher last term wins
  EXPECT_FALSE(log.is_up_to_date(5, 2));  // lower last term loses, whatever the length
  EXPECT_TRUE(log.is_up_to_date(3, 3));
  EXPECT_FALSE(log.is_up_to_date(2, 3));
}

TEST_F(RaftLogTest, MaybeCommitOnlyMatchingTerm) {
  RaftLog log(&storage, UINT64_MAX);
  log.append(Es({{1, 1}, {2, 2}}));
  EXPECT_FALSE(log.maybe_commit(2, 1));  // entry 2 has term 2
  EXPECT_TRUE(log.maybe_commit(2, 2));
  EXPECT_EQ(log.committed(), 2u);
  EXPECT_FALSE(log.maybe_commit(1, 1));  // never moves back
}

TEST_F(RaftLogTest, NextCommittedEntriesBoundedInBytes) {
  RaftLog log(&storage, 2 * entry_bytes(E(0, 0, "xxxxxxxx")));
  log.append({E(1, 1, "xxxxxxxx"), E(2, 1, "xxxxxxxx"), E(3, 1, "xxxxxxxx")});
  log.commit_to(3);
  auto ents = log.next_committed_entries();
  EXPECT_EQ(ents.size(), 2u);
  log.applied_to(2);
  ents = log.next_committed_entries();
  ASSERT_EQ(ents.size(), 1u);
  EXPECT_EQ(ents[0].index(), 3u);
}

TEST_F(RaftLogTest, StableToIgnoresOverwrittenEntries) {
  RaftLog log(&storage, UINT64_MAX);
  log.append(Es({{1, 1}, {2, 1}}));
  // A new leader overwrote entry 2 before the old one was persisted.
  log.append(Es({{2, 2}}));
  log.stable_to(2, 1);  // stale: must not stabilize the term-2 entry
  EXPECT_EQ(log.unstable_entries().size(), 2u);
  log.stable_to(2, 2);
  EXPECT_TRUE(log.unstable_entries().empty());
}

TEST_F(RaftLogTest, RestoreSnapshot) {
  RaftLog log(&storage, UINT64_MAX);
  log.append(Es({{1, 1}}));
  Snapshot s;
  s.mutable_metadata()->set_index(10);
  s.mutable_metadata()->set_term(3);
  log.restore(s);
  EXPECT_EQ(log.committed(), 10u);
  EXPECT_EQ(log.first_index(), 11u);
  EXPECT_EQ(log.last_index(), 10u);
  EXPECT_EQ(*log.term(10), 3u);
  EXPECT_FALSE(log.has_next_committed_entries());  // the snapshot is applied first
  EXPECT_EQ(log.term(9).code(), Code::kCompacted);
}

TEST(MemoryStorageTest, CompactAndEntries) {
  MemoryStorage s;
  ASSERT_TRUE(s.append(Es({{1, 1}, {2, 1}, {3, 2}, {4, 2}})).is_ok());
  ASSERT_TRUE(s.compact(2).is_ok());
  EXPECT_EQ(s.first_index(), 3u);
  EXPECT_EQ(*s.term(2), 1u);
  EXPECT_EQ(s.entries(2, 4, UINT64_MAX).code(), Code::kCompacted);
  EXPECT_EQ(s.entries(3, 6, UINT64_MAX).code(), Code::kUnavailable);
  auto ents = s.entries(3, 5, 1);  // at least one entry even over the byte limit
  ASSERT_TRUE(ents.is_ok());
  EXPECT_EQ(ents->size(), 1u);
  EXPECT_EQ(s.compact(2).code(), Code::kCompacted);
}

TEST(MemoryStorageTest, AppendTruncatesSuffix) {
  MemoryStorage s;
  ASSERT_TRUE(s.append(Es({{1, 1}, {2, 1}, {3, 1}})).is_ok());
  ASSERT_TRUE(s.append(Es({{2, 2}})).is_ok());
  EXPECT_EQ(s.last_index(), 2u);
  EXPECT_EQ(*s.term(2), 2u);
  EXPECT_EQ(s.append(Es({{5, 2}})).code(), Code::kInvalidArgument);
}

TEST(MemoryStorageTest, SnapshotReplacesLog) {
  MemoryStorage s;
  ASSERT_TRUE(s.append(Es({{1, 1}, {2, 1}})).is_ok());
  ConfState cs;
  cs.add_voters(1);
  auto snap = s.create_snapshot(2, cs, "state");
  ASSERT_TRUE(snap.is_ok());
  EXPECT_EQ((*snap)->metadata().term(), 1u);
  MemoryStorage t;
  ASSERT_TRUE(t.apply_snapshot(**snap).is_ok());
  EXPECT_EQ(t.first_index(), 3u);
  EXPECT_EQ(t.last_index(), 2u);
  EXPECT_EQ(t.initial_state().conf_state.voters_size(), 1);
  Snapshot older;
  older.mutable_metadata()->set_index(1);
  EXPECT_EQ(t.apply_snapshot(older).code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace qkv::raft
