#include "storage/wal.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "storage/crc32c.h"
#include "unit/temp_dir.h"

namespace qkv::storage {
namespace {

raftpb::Entry E(uint64_t index, uint64_t term, std::string data = "") {
  raftpb::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(std::move(data));
  return e;
}

raftpb::HardState HS(uint64_t term, uint64_t vote, uint64_t commit) {
  raftpb::HardState hs;
  hs.set_term(term);
  hs.set_vote(vote);
  hs.set_commit(commit);
  return hs;
}

raftpb::SnapshotMetadata Meta(uint64_t index, uint64_t term) {
  raftpb::SnapshotMetadata m;
  m.set_index(index);
  m.set_term(term);
  m.mutable_conf_state()->add_voters(1);
  return m;
}

std::vector<uint64_t> indexes(const RecoveredGroup& g) {
  std::vector<uint64_t> out;
  for (const auto& e : g.entries) out.push_back(e.index());
  return out;
}

class WalTest : public ::testing::Test {
 protected:
  std::unique_ptr<Wal> open(WalRecovery* rec, WalOptions opts = {}) {
    opts.preallocate = false;
    auto w = Wal::open(&fs, "/wal", opts, rec);
    EXPECT_TRUE(w.is_ok()) << w.status().to_string();
    return w.is_ok() ? std::move(w).value() : nullptr;
  }
  std::string only_segment() {
    auto names = fs.list_dir("/wal");
    EXPECT_TRUE(names.is_ok());
    EXPECT_EQ(names->size(), 1u);
    return "/wal/" + names->front();
  }
  FaultInjectionFileSystem fs{7};
};

TEST(Crc32cTest, KnownValues) {
  // RFC 3720 test vector: 32 bytes of zeros.
  std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(zeros), 0x8A9136AAu);
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c_extend(crc32c("1234"), "56789", 5), 0xE3069283u);
}

TEST_F(WalTest, RoundTripSeveralGroups) {
  {
    WalRecovery rec;
    auto wal = open(&rec);
    EXPECT_TRUE(rec.groups.empty());
    WalBatch b;
    b.add_entry(1, E(1, 1, "a"));
    b.add_entry(2, E(1, 1, "x"));
    b.add_entry(1, E(2, 1, "b"));
    b.add_hard_state(1, HS(1, 3, 2));
    ASSERT_TRUE(wal->write(b).is_ok());
  }
  fs.crash();
  WalRecovery rec;
  auto wal = open(&rec);
  ASSERT_EQ(rec.groups.size(), 2u);
  EXPECT_EQ(indexes(rec.groups[1]), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(rec.groups[1].entries[1].data(), "b");
  EXPECT_EQ(rec.groups[1].entries[1].group(), 1u);
  ASSERT_TRUE(rec.groups[1].hard_state.has_value());
  EXPECT_EQ(rec.groups[1].hard_state->vote(), 3u);
  EXPECT_EQ(rec.groups[1].hard_state->commit(), 2u);
  EXPECT_EQ(indexes(rec.groups[2]), (std::vector<uint64_t>{1}));
}

TEST_F(WalTest, UnsyncedBatchIsLostAtCrash) {
  {
    WalRecovery rec;
    auto wal = open(&rec);
    WalBatch b;
    b.add_entry(1, E(1, 1));
    ASSERT_TRUE(wal->write(b).is_ok());
    WalBatch c;
    c.add_entry(1, E(2, 1));
    ASSERT_TRUE(wal->append(c).is_ok());  // never synced
  }
  fs.crash();
  WalRecovery rec;
  auto wal = open(&rec);
  EXPECT_EQ(indexes(rec.groups[1]), (std::vector<uint64_t>{1}));
}

TEST_F(WalTest, LaterWriteOverwritesSuffix) {
  WalRecovery rec;
  auto wal = open(&rec);
  WalBatch b;
  for (uint64_t i = 1; i <= 5; i++) b.add_entry(1, E(i, 1));
  b.add_entry(1, E(3, 2, "new"));  // a new leader's entry at 3 truncates 3..5
  ASSERT_TRUE(wal->write(b).is_ok());
  wal.reset();
  WalRecovery rec2;
  wal = open(&rec2);
  EXPECT_EQ(indexes(rec2.groups[1]), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(rec2.groups[1].entries[2].term(), 2u);
}

TEST_F(WalTest, SnapshotReplacesLogAndCompactKeepsSuffix) {
  WalRecovery rec;
  auto wal = open(&rec);
  WalBatch b;
  for (uint64_t i = 1; i <= 5; i++) b.add_entry(1, E(i, 1));
  b.add_compact(1, Meta(3, 1));
  for (uint64_t i = 1; i <= 3; i++) b.add_entry(2, E(i, 1));
  b.add_snapshot(2, Meta(10, 2));
  b.add_entry(2, E(11, 2));
  ASSERT_TRUE(wal->write(b).is_ok());
  wal.reset();
  WalRecovery rec2;
  wal = open(&rec2);
  EXPECT_EQ(rec2.groups[1].base->index(), 3u);
  EXPECT_EQ(indexes(rec2.groups[1]), (std::vector<uint64_t>{4, 5}));
  EXPECT_EQ(rec2.groups[2].base->index(), 10u);
  EXPECT_EQ(rec2.groups[2].base->conf_state().voters_size(), 1);
  EXPECT_EQ(indexes(rec2.groups[2]), (std::vector<uint64_t>{11}));
}

TEST_F(WalTest, GapIsCorruption) {
  WalRecovery rec;
  auto wal = open(&rec);
  WalBatch b;
  b.add_entry(1, E(1, 1));
  b.add_entry(1, E(3, 1));
  ASSERT_TRUE(wal->write(b).is_ok());
  wal.reset();
  WalRecovery rec2;
  auto r = Wal::open(&fs, "/wal", WalOptions{}, &rec2);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("gap"), std::string::npos) << r.status().message();
}

TEST_F(WalTest, RotationAndSegmentDeletion) {
  WalOptions opts;
  opts.segment_bytes_max = 4096;
  WalRecovery rec;
  auto wal = open(&rec, opts);
  std::string payload(500, 'p');
  for (uint64_t i = 1; i <= 40; i++) {
    WalBatch b;
    b.add_entry(1, E(i, 1, payload));
    b.add_hard_state(1, HS(1, 1, i));
    ASSERT_TRUE(wal->write(b).is_ok());
  }
  EXPECT_GT(wal->stats().live_segments, 4u);
  // A snapshot at 35 releases everything up to it.
  WalBatch c;
  c.add_compact(1, Meta(35, 1));
  ASSERT_TRUE(wal->write(c).is_ok());
  ASSERT_TRUE(wal->release(1, 35).is_ok());
  EXPECT_LE(wal->stats().live_segments, 3u);
  EXPECT_GT(wal->stats().segments_deleted, 0u);
  wal.reset();
  fs.crash();
  WalRecovery rec2;
  wal = open(&rec2, opts);
  EXPECT_EQ(rec2.groups[1].base->index(), 35u);
  EXPECT_EQ(indexes(rec2.groups[1]), (std::vector<uint64_t>{36, 37, 38, 39, 40}));
  EXPECT_EQ(rec2.groups[1].hard_state->commit(), 40u);
}

TEST_F(WalTest, TornTailIsTruncated) {
  {
    WalRecovery rec;
    auto wal = open(&rec);
    WalBatch b;
    b.add_entry(1, E(1, 1, "durable"));
    ASSERT_TRUE(wal->write(b).is_ok());
    WalBatch c;
    c.add_entry(1, E(2, 1, std::string(100, 'x')));
    ASSERT_TRUE(wal->append(c).is_ok());
  }
  std::string seg = only_segment();
  auto data = *fs.read_file(seg);
  // Keep only part of the second record, as a torn write would.
  fs.TEST_write_raw(seg, data.substr(0, data.size() - 60));
  WalRecovery rec;
  auto wal = open(&rec);
  EXPECT_EQ(indexes(rec.groups[1]), (std::vector<uint64_t>{1}));
  ASSERT_EQ(rec.notes.size(), 1u);
  EXPECT_NE(rec.notes[0].find("torn write"), std::string::npos);
  // The WAL is writable after the truncation.
  WalBatch d;
  d.add_entry(1, E(2, 1, "again"));
  ASSERT_TRUE(wal->write(d).is_ok());
  wal.reset();
  WalRecovery rec2;
  wal = open(&rec2);
  EXPECT_EQ(indexes(rec2.groups[1]), (std::vector<uint64_t>{1, 2}));
  EXPECT_TRUE(rec2.notes.empty());
}

TEST_F(WalTest, ZeroTailFromPreallocationIsNotCorruption) {
  {
    WalRecovery rec;
    auto wal = open(&rec);
    WalBatch b;
    b.add_entry(1, E(1, 1));
    ASSERT_TRUE(wal->write(b).is_ok());
  }
  std::string seg = only_segment();
  fs.TEST_write_raw(seg, *fs.read_file(seg) + std::string(4096, '\0'));
  WalRecovery rec;
  auto wal = open(&rec);
  EXPECT_EQ(indexes(rec.groups[1]), (std::vector<uint64_t>{1}));
  EXPECT_TRUE(rec.notes.empty());
}

TEST_F(WalTest, MidFileCorruptionRefusesToStartWithPreciseMessage) {
  {
    WalRecovery rec;
    auto wal = open(&rec);
    for (uint64_t i = 1; i <= 3; i++) {
      WalBatch b;
      b.add_entry(1, E(i, 1, "payload"));
      ASSERT_TRUE(wal->write(b).is_ok());
    }
  }
  std::string seg = only_segment();
  uint64_t rec_bytes = kRecordHeaderBytes + kRecordBodyFixedBytes + 1 + 7;
  uint64_t second = kSegmentHeaderBytes + rec_bytes;
  ASSERT_TRUE(fs.flip_bit(seg, second + kRecordHeaderBytes + 30, 3).is_ok());
  WalRecovery rec;
  auto r = Wal::open(&fs, "/wal", WalOptions{}, &rec);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.code(), Code::kCorruption);
  const std::string& msg = r.status().message();
  EXPECT_NE(msg.find(seg), std::string::npos) << msg;
  EXPECT_NE(msg.find("offset " + std::to_string(second)), std::string::npos) << msg;
  EXPECT_NE(msg.find("checksum mismatch"), std::string::npos) << msg;
  // With the repair flag it starts, keeping what precedes the damage.
  WalOptions repair;
  repair.repair = true;
  WalRecovery rec2;
  auto wal = open(&rec2, repair);
  ASSERT_NE(wal, nullptr);
  EXPECT_EQ(indexes(rec2.groups[1]), (std::vector<uint64_t>{1}));
  ASSERT_FALSE(rec2.notes.empty());
  EXPECT_NE(rec2.notes[0].find("repair"), std::string::npos);
}

TEST_F(WalTest, CorruptionInOlderSegmentRefuses) {
  WalOptions opts;
  opts.segment_bytes_max = 1024;
  {
    WalRecovery rec;
    auto wal = open(&rec, opts);
    for (uint64_t i = 1; i <= 20; i++) {
      WalBatch b;
      b.add_entry(1, E(i, 1, std::string(200, 'z')));
      ASSERT_TRUE(wal->write(b).is_ok());
    }
  }
  auto names = *fs.list_dir("/wal");
  ASSERT_GT(names.size(), 2u);
  // Damage the very last record of the first segment: not a tail, since
  // later segments exist.
  std::string first = "/wal/" + names[0];
  auto data = *fs.read_file(first);
  ASSERT_TRUE(fs.flip_bit(first, data.size() - 5, 0).is_ok());
  WalRecovery rec;
  auto r = Wal::open(&fs, "/wal", opts, &rec);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.code(), Code::kCorruption);
}

TEST_F(WalTest, NoSpaceIsACleanErrorAndTheWalStaysUsable) {
  WalRecovery rec;
  auto wal = open(&rec);
  WalBatch b;
  b.add_entry(1, E(1, 1, "ok"));
  ASSERT_TRUE(wal->write(b).is_ok());
  fs.set_space_limit_bytes(200);
  WalBatch big;
  big.add_entry(1, E(2, 1, std::string(1000, 'b')));
  auto r = wal->append(big);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.code(), Code::kNoSpace);
  fs.set_space_limit_bytes(UINT64_MAX);
  WalBatch c;
  c.add_entry(1, E(2, 1, "after"));
  ASSERT_TRUE(wal->write(c).is_ok());
  wal.reset();
  WalRecovery rec2;
  wal = open(&rec2);
  EXPECT_EQ(indexes(rec2.groups[1]), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(rec2.groups[1].entries[1].data(), "after");
}

TEST_F(WalTest, FailedSyncIsFatal) {
  WalRecovery rec;
  auto wal = open(&rec);
  WalBatch b;
  b.add_entry(1, E(1, 1));
  fs.set_fail_sync(true);
  EXPECT_EQ(wal->write(b).code(), Code::kIoError);
  fs.set_fail_sync(false);
  // Never retried: the WAL refuses everything from now on.
  EXPECT_EQ(wal->write(b).code(), Code::kIoError);
  EXPECT_FALSE(wal->append(b).is_ok());
}

TEST_F(WalTest, RecordOverLimitRefused) {
  WalOptions opts;
  opts.record_bytes_max = 100;
  WalRecovery rec;
  auto wal = open(&rec, opts);
  WalBatch b;
  b.add_entry(1, E(1, 1, std::string(200, 'x')));
  EXPECT_EQ(wal->append(b).code(), Code::kInvalidArgument);
}

TEST_F(WalTest, GroupCommitSharesSyncs) {
  WalRecovery rec;
  auto wal = open(&rec);
  constexpr int kThreads = 8, kPerThread = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      for (int i = 1; i <= kPerThread; i++) {
        WalBatch b;
        b.add_entry(static_cast<uint64_t>(t + 1), E(static_cast<uint64_t>(i), 1));
        ASSERT_TRUE(wal->write(b).is_ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  WalStats st = wal->stats();
  EXPECT_EQ(st.appends, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_LE(st.syncs, st.appends);
  EXPECT_EQ(wal->durable_seq(), wal->last_seq());
  wal.reset();
  fs.crash();
  WalRecovery rec2;
  wal = open(&rec2);
  for (int t = 1; t <= kThreads; t++) {
    EXPECT_EQ(rec2.groups[static_cast<uint64_t>(t)].entries.size(),
              static_cast<size_t>(kPerThread));
  }
}

// Waits (bounded) until the prefill thread is idle: no spare wanted or
// being made.
bool wait_spare_idle(Wal* wal) {
  for (int i = 0; i < 10000; i++) {
    if (!wal->stats().spare_in_progress) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

WalOptions prefill_options() {
  WalOptions o;
  o.segment_bytes_max = 4096;
  o.prefill = true;
  o.prefill_start_bytes = 1024;
  return o;
}

// Writes entries of group 1 (index, index+1, ...) and checks what a reopen
// after a crash finds.
class SpareTest : public WalTest {
 protected:
  void SetUp() override {
    opts = prefill_options();
    wal = open(&rec, opts);
    ASSERT_NE(wal, nullptr);
  }
  Status write_one() {
    WalBatch b;
    b.add_entry(1, E(index + 1, 1, std::string(300, 's')));
    b.add_hard_state(1, HS(1, 1, index + 1));
    Status r = wal->write(b);
    if (r.is_ok()) index++;
    return r;
  }
  // Writes until a spare is ready while the first (ordinary) segment is in
  // use, so that the next write rotates early into it.
  void until_spare_ready() {
    while (!wal->stats().spare_in_progress && wal->stats().spares_made == 0 && index < 4) {
      ASSERT_TRUE(write_one().is_ok());
    }
    ASSERT_TRUE(wait_spare_idle(wal.get()));
    ASSERT_EQ(wal->stats().spares_made, 1u);
    ASSERT_EQ(wal->stats().segments_created, 1u);
  }
  // Writes n batches, each time waiting for a spare wanted to be made.
  void write_with_spares(int n) {
    for (int i = 0; i < n; i++) {
      ASSERT_TRUE(write_one().is_ok());
      ASSERT_TRUE(wait_spare_idle(wal.get()));
    }
  }
  // After the early rotation into a spare that could not be taken: an
  // ordinary segment instead, one failure, no spare file left.
  void expect_spare_dropped() {
    WalStats st = wal->stats();
    EXPECT_EQ(st.segments_created, 2u);
    EXPECT_EQ(st.spares_used, 0u);
    EXPECT_EQ(st.spare_failures, 1u);
    EXPECT_FALSE(fs.exists("/wal/spare.wal.tmp"));
  }
  void crash_and_check() {
    wal.reset();
    fs.crash();
    WalRecovery rec2;
    wal = open(&rec2, opts);
    ASSERT_NE(wal, nullptr);
    std::vector<uint64_t> want;
    for (uint64_t i = 1; i <= index; i++) want.push_back(i);
    EXPECT_EQ(indexes(rec2.groups[1]), want);
    ASSERT_TRUE(rec2.groups[1].hard_state.has_value());
    EXPECT_EQ(rec2.groups[1].hard_state->commit(), index);
    EXPECT_TRUE(rec2.notes.empty()) << rec2.notes[0];
    EXPECT_FALSE(fs.exists("/wal/spare.wal.tmp"));
  }
  WalOptions opts;
  WalRecovery rec;
  std::unique_ptr<Wal> wal;
  uint64_t index = 0;
};

TEST_F(SpareTest, PrefillRotatesEarlyIntoAZeroFilledSpareAndRecovers) {
  // Past prefill_start_bytes of the first (ordinary) segment, a spare is made.
  until_spare_ready();
  EXPECT_TRUE(fs.exists("/wal/spare.wal.tmp"));
  EXPECT_EQ(*fs.file_size("/wal/spare.wal.tmp"), 4096u);
  // The next write rotates into it at once, though the segment is not full.
  ASSERT_TRUE(write_one().is_ok());
  EXPECT_EQ(wal->stats().segments_created, 2u);
  EXPECT_EQ(wal->stats().spares_used, 1u);
  EXPECT_FALSE(fs.exists("/wal/spare.wal.tmp"));
  // From then on each segment is a spare, made while half of the one
  // before was written, and keeps its full length of zeros after its records.
  write_with_spares(60);
  WalStats st = wal->stats();
  EXPECT_GE(st.spares_used, 4u);
  EXPECT_EQ(st.spare_failures, 0u);
  auto names = *fs.list_dir("/wal");
  size_t full = 0;
  for (const auto& n : names) {
    if (n != "spare.wal.tmp" && *fs.file_size("/wal/" + n) == 4096u) full++;
  }
  EXPECT_GE(full, 4u);
  // Everything written survives a crash; the spare is not taken for a
  // segment, and a leftover spare is removed at open.
  crash_and_check();
}

TEST_F(WalTest, PrefilledSegmentsSurviveTornWritesAtCrash) {
  // Crash with unsynced batches in a prefilled segment, keeping a random
  // part of the bytes written over its zeros: recovery keeps every synced
  // entry, then a prefix of the unsynced ones, and never reports corruption.
  fs.set_torn_writes(true);
  WalOptions opts = prefill_options();
  uint64_t synced = 0, appended = 0, used = 0;
  for (int round = 0; round < 30; round++) {
    WalRecovery rec;
    auto wal = open(&rec, opts);
    ASSERT_NE(wal, nullptr);
    const auto& got = rec.groups[1].entries;
    ASSERT_GE(got.size(), synced) << "round " << round;
    ASSERT_LE(got.size(), appended);
    for (size_t i = 0; i < got.size(); i++) ASSERT_EQ(got[i].index(), i + 1);
    appended = synced = got.size();
    for (int i = 0; i < 12; i++) {
      WalBatch b;
      b.add_entry(1, E(++appended, 1, std::string(150 + 10 * i, 'a' + round % 26)));
      if (i % 3 == 2) {
        ASSERT_TRUE(wal->write(b).is_ok());
        synced = appended;
      } else {
        ASSERT_TRUE(wal->append(b).is_ok());
      }
      if (i % 4 == 0) {
        ASSERT_TRUE(wait_spare_idle(wal.get()));
      }
    }
    used += wal->stats().spares_used;
    wal.reset();
    fs.crash();
  }
  EXPECT_GT(used, 10u);
}

TEST_F(WalTest, ASpareRenamedButNeverWrittenIsRewritten) {
  // A crash after the spare became the newest segment but before its header
  // was synced leaves a segment of zeros: it is made again, not corruption.
  WalOptions opts = prefill_options();
  {
    WalRecovery rec;
    auto wal = open(&rec, opts);
    WalBatch b;
    b.add_entry(1, E(1, 1, "kept"));
    ASSERT_TRUE(wal->write(b).is_ok());
  }
  fs.TEST_write_raw("/wal/0000000000000002.wal", std::string(4096, '\0'));
  fs.TEST_write_raw("/wal/spare.wal.tmp", std::string(100, '\0'));
  WalRecovery rec;
  auto wal = open(&rec, opts);
  EXPECT_EQ(indexes(rec.groups[1]), (std::vector<uint64_t>{1}));
  ASSERT_EQ(rec.notes.size(), 1u);
  EXPECT_NE(rec.notes[0].find("no header"), std::string::npos);
  EXPECT_FALSE(fs.exists("/wal/spare.wal.tmp"));
  WalBatch c;
  c.add_entry(1, E(2, 1, "after"));
  ASSERT_TRUE(wal->write(c).is_ok());
  wal.reset();
  WalRecovery rec2;
  wal = open(&rec2, opts);
  EXPECT_EQ(indexes(rec2.groups[1]), (std::vector<uint64_t>{1, 2}));
}

TEST_F(WalTest, ASpareThatFindsNoSpaceIsAbandonedAndTheWalGoesOn) {
  WalOptions opts = prefill_options();
  WalRecovery rec;
  auto wal = open(&rec, opts);
  fs.set_space_limit_bytes(5000);  // room for segments, not for a spare beside them
  uint64_t index = 0;
  for (int i = 0; i < 12; i++) {
    WalBatch b;
    b.add_entry(1, E(++index, 1, std::string(300, 'n')));
    auto r = wal->write(b);
    if (!r.is_ok()) {
      // Only the ordinary out-of-space error of a full disk, never a fatal one.
      ASSERT_EQ(r.code(), Code::kNoSpace) << r.to_string();
      index--;
      WalBatch c;
      c.add_compact(1, Meta(index, 1));
      ASSERT_TRUE(wal->write(c).is_ok());
      ASSERT_TRUE(wal->release(1, index).is_ok());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  for (int i = 0; i < 10000 && wal->stats().spare_failures == 0; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_GT(wal->stats().spare_failures, 0u);
  EXPECT_EQ(wal->stats().spares_used, 0u);
  EXPECT_FALSE(fs.exists("/wal/spare.wal.tmp"));
  fs.set_space_limit_bytes(UINT64_MAX);
  WalBatch d;
  d.add_entry(1, E(++index, 1, "fine"));
  ASSERT_TRUE(wal->write(d).is_ok());
}

TEST_F(SpareTest, ASpareThatCannotBeRenamedIsDroppedForAnOrdinarySegment) {
  until_spare_ready();
  fs.set_fail_rename(true);
  ASSERT_TRUE(write_one().is_ok());  // rotates early: the rename fails
  expect_spare_dropped();
  // The WAL goes on through full segments while renames fail: each spare
  // made meanwhile is dropped at its rotation.
  write_with_spares(30);
  EXPECT_GE(wal->stats().segments_created, 5u);
  EXPECT_EQ(wal->stats().spares_used, 0u);
  EXPECT_GE(wal->stats().spare_failures, 2u);
  // Once renames work again, spares are used again.
  fs.set_fail_rename(false);
  for (int i = 0; i < 30 && wal->stats().spares_used == 0; i++) {
    ASSERT_TRUE(write_one().is_ok());
    ASSERT_TRUE(wait_spare_idle(wal.get()));
  }
  EXPECT_GE(wal->stats().spares_used, 1u);
  crash_and_check();
}

TEST_F(SpareTest, ASpareThatCannotBeOpenedIsCutToAnOrdinarySegment) {
  until_spare_ready();
  fs.set_fail_overwrite(true);
  // The spare is renamed into place, then cannot be opened to write over
  // its zeros: create() cuts it and the segment is an ordinary one.
  ASSERT_TRUE(write_one().is_ok());
  expect_spare_dropped();
  auto names = *fs.list_dir("/wal");
  ASSERT_EQ(names.size(), 2u);
  EXPECT_LT(*fs.file_size("/wal/" + names.back()), 4096u);  // no zeros left after its records
  fs.set_fail_overwrite(false);
  write_with_spares(20);
  EXPECT_GE(wal->stats().spares_used, 1u);
  crash_and_check();
}

TEST_F(SpareTest, AnEarlyRotationWithoutSpaceKeepsTheSegmentInUse) {
  until_spare_ready();
  // The spare cannot be renamed and no new segment can be created: the
  // early rotation gives up, and the batch goes into the old segment,
  // which has room for it.
  fs.set_fail_rename(true);
  fs.set_fail_create(true);
  const uint64_t before = *fs.file_size("/wal/0000000000000001.wal");
  ASSERT_TRUE(write_one().is_ok());
  // The segment in use wants a spare again at once, which cannot be
  // created either: two failures, and no retry before the next rotation.
  ASSERT_TRUE(wait_spare_idle(wal.get()));
  WalStats st = wal->stats();
  EXPECT_EQ(st.segments_created, 1u);
  EXPECT_EQ(st.spare_failures, 2u);
  EXPECT_GT(*fs.file_size("/wal/0000000000000001.wal"), before);
  EXPECT_FALSE(fs.exists("/wal/0000000000000002.wal"));
  // A rotation of a full segment that finds no space is the ordinary
  // out-of-space error, and the WAL stays usable.
  Status full = Status::ok();
  for (int i = 0; i < 20 && full.is_ok(); i++) full = write_one();
  EXPECT_EQ(full.code(), Code::kNoSpace) << full.to_string();
  fs.set_fail_rename(false);
  fs.set_fail_create(false);
  ASSERT_TRUE(write_one().is_ok());
  EXPECT_EQ(wal->stats().segments_created, 2u);
  crash_and_check();
}

TEST_F(WalTest, PrefillConcurrentWritersLoseNothingAtCrash) {
  WalOptions opts = prefill_options();
  opts.segment_bytes_max = 16384;
  opts.prefill_start_bytes = 2048;
  WalRecovery rec;
  auto wal = open(&rec, opts);
  // Each writer goes on until the WAL has rotated into two spares (however
  // slow the prefill thread is here), within a bound.
  constexpr int kThreads = 4, kPerThreadMin = 300, kPerThreadMax = 200000;
  std::vector<std::thread> threads;
  std::vector<int> written(kThreads, 0);
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      int i = 0;
      while (i < kPerThreadMax && (i < kPerThreadMin || wal->stats().spares_used < 2)) {
        WalBatch b;
        b.add_entry(static_cast<uint64_t>(t + 1), E(static_cast<uint64_t>(++i), 1, "v"));
        ASSERT_TRUE(wal->write(b).is_ok());
      }
      written[t] = i;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_GE(wal->stats().spares_used, 2u);
  wal.reset();
  fs.crash();
  WalRecovery rec2;
  wal = open(&rec2, opts);
  for (int t = 1; t <= kThreads; t++) {
    EXPECT_EQ(rec2.groups[static_cast<uint64_t>(t)].entries.size(),
              static_cast<size_t>(written[t - 1]));
  }
}

TEST_F(WalTest, PosixPrefillRoundTrip) {
  test::TempDir tmp("qkv-wal-test");
  const std::string& dir = tmp.path();
  PosixFileSystem pfs;
  WalOptions opts;
  opts.segment_bytes_max = 256 << 10;
  opts.prefill = true;
  opts.prefill_start_bytes = 8 << 10;
  uint64_t index = 0;
  {
    WalRecovery rec;
    auto wal = Wal::open(&pfs, dir + "/wal", opts, &rec);
    ASSERT_TRUE(wal.is_ok()) << wal.status().to_string();
    while ((*wal)->stats().spares_used < 3 && index < 100000) {
      WalBatch b;
      b.add_entry(1, E(++index, 1, std::string(1000, 'd')));
      ASSERT_TRUE((*wal)->write(b).is_ok());
    }
    EXPECT_GE((*wal)->stats().spares_used, 3u);
    EXPECT_EQ((*wal)->stats().spare_failures, 0u);
    // The segment in use is the spare the last write rotated into: written
    // over in place, it keeps its full length (a prefilled segment is not
    // preallocated, so a cut file would show here).
    auto names = pfs.list_dir(dir + "/wal");
    ASSERT_TRUE(names.is_ok());
    std::string newest;
    for (const auto& n : *names) {
      if (n.size() == 20 && n.ends_with(".wal")) newest = std::max(newest, n);
    }
    EXPECT_EQ(*pfs.file_size(dir + "/wal/" + newest), 256u << 10) << newest;
  }
  WalRecovery rec;
  auto wal = Wal::open(&pfs, dir + "/wal", opts, &rec);
  ASSERT_TRUE(wal.is_ok()) << wal.status().to_string();
  ASSERT_EQ(rec.groups[1].entries.size(), index);
  EXPECT_EQ(rec.groups[1].entries.back().index(), index);
  EXPECT_TRUE(rec.notes.empty());
  wal->reset();
}

TEST_F(WalTest, PosixRoundTrip) {
  test::TempDir tmp("qkv-wal-test");
  const std::string& dir = tmp.path();
  PosixFileSystem pfs;
  {
    WalRecovery rec;
    auto wal = Wal::open(&pfs, dir + "/wal", WalOptions{}, &rec);
    ASSERT_TRUE(wal.is_ok()) << wal.status().to_string();
    WalBatch b;
    b.add_entry(1, E(1, 1, "disk"));
    b.add_hard_state(1, HS(1, 1, 1));
    ASSERT_TRUE((*wal)->write(b).is_ok());
  }
  WalRecovery rec;
  auto wal = Wal::open(&pfs, dir + "/wal", WalOptions{}, &rec);
  ASSERT_TRUE(wal.is_ok()) << wal.status().to_string();
  EXPECT_EQ(indexes(rec.groups[1]), (std::vector<uint64_t>{1}));
  EXPECT_TRUE(rec.notes.empty());  // the preallocated zeros are not a torn tail
}

}  // namespace
}  // namespace qkv::storage
