#include "storage/snapshot_file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <optional>
#include <random>

#include "storage/crc32c.h"
#include "unit/temp_dir.h"

namespace qkv::storage {
namespace {

#define ASSERT_OK(expr)                                         \
  do {                                                          \
    const ::qkv::Status _s = (expr);                            \
    ASSERT_TRUE(_s.is_ok()) << #expr << ": " << _s.to_string(); \
  } while (0)

using Records = std::map<std::string, std::string>;

raftpb::SnapshotMetadata Meta(uint64_t group, uint64_t index, uint64_t term) {
  raftpb::SnapshotMetadata m;
  m.set_group(group);
  m.set_index(index);
  m.set_term(term);
  m.mutable_conf_state()->add_voters(1);
  m.mutable_conf_state()->add_voters(2);
  m.mutable_conf_state()->add_learners(9);
  return m;
}

Records make_records(int n, size_t value_bytes = 10) {
  Records r;
  for (int i = 0; i < n; i++) {
    char k[32];
    std::snprintf(k, sizeof k, "key%06d", i);
    r[k] = std::string(value_bytes + static_cast<size_t>(i % 7), static_cast<char>('a' + i % 26));
  }
  return r;
}

class SnapshotFileTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(mfs.create_dirs("/snap")); }
  void TearDown() override { store_.reset(); }

  // Writes records to a snapshot file; returns its bytes.
  std::string write(const std::string& path, const raftpb::SnapshotMetadata& meta,
                    const Records& records, uint64_t block_bytes = 256) {
    SnapshotWriterOptions o;
    o.block_bytes = block_bytes;
    auto w = SnapshotWriter::create(&mfs, path, meta, o);
    EXPECT_TRUE(w.is_ok()) << w.status().to_string();
    for (const auto& [k, v] : records) EXPECT_TRUE((*w)->add(k, v).is_ok());
    auto info = (*w)->finish();
    EXPECT_TRUE(info.is_ok()) << info.status().to_string();
    EXPECT_EQ(info->records, records.size());
    auto bytes = mfs.read_file(path);
    EXPECT_TRUE(bytes.is_ok());
    EXPECT_EQ(info->bytes, bytes->size());
    return *bytes;
  }

  // Reads every record; returns the error if any (records read so far in *out).
  Status read_all(std::string_view bytes, Records* out,
                  std::vector<uint64_t>* block_offsets = nullptr) {
    auto r = SnapshotReader::open_bytes(bytes, "test.snap");
    if (!r.is_ok()) return r.status();
    std::string_view k, v;
    for (;;) {
      auto more = (*r)->next(&k, &v);
      if (!more.is_ok()) return more.status();
      if (!*more) return Status::ok();
      (*out)[std::string(k)] = std::string(v);
      if (block_offsets) block_offsets->push_back((*r)->block_offset());
    }
  }

  StateStore* store() {
    if (!store_) {
      tmp_.emplace("qkv-snapfile-test");
      root_ = tmp_->path();
      StateStoreOptions o;
      o.write_buffer_bytes = 4 << 20;
      o.block_cache_bytes = 4 << 20;
      auto s = StateStore::open(root_ + "/state", o);
      EXPECT_TRUE(s.is_ok()) << s.status().to_string();
      store_ = std::move(s).value();
    }
    return store_.get();
  }

  Records dump(uint64_t group) {
    ScanOptions so;
    so.keys_max = 1000000;
    so.bytes_max = 1ull << 30;
    Records out;
    auto r = store()->scan(group, so);
    EXPECT_TRUE(r.is_ok());
    for (auto& [k, v] : r->items) out[k] = v;
    return out;
  }

  FaultInjectionFileSystem mfs{11};
  // Made on the first store(); declared before store_ so it goes after it.
  std::optional<test::TempDir> tmp_;
  std::string root_;
  std::unique_ptr<StateStore> store_;
};

TEST_F(SnapshotFileTest, RoundTrip) {
  for (int n : {0, 1, 5, 300}) {
    Records recs = make_records(n);
    recs[std::string("\0bin\xff", 5)] = std::string("\0\1\2", 3);
    recs[""] = "empty key";
    std::string bytes = write("/snap/a", Meta(3, 77, 5), recs, 128);
    auto r = SnapshotReader::open_bytes(bytes, "a");
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    EXPECT_EQ((*r)->meta().group(), 3u);
    EXPECT_EQ((*r)->meta().index(), 77u);
    EXPECT_EQ((*r)->meta().term(), 5u);
    EXPECT_EQ((*r)->meta().conf_state().voters_size(), 2);
    EXPECT_EQ((*r)->meta().conf_state().learners(0), 9u);
    Records got;
    ASSERT_OK(read_all(bytes, &got));
    EXPECT_EQ(got, recs);
    auto info = verify_snapshot_file(&mfs, "/snap/a");
    ASSERT_TRUE(info.is_ok()) << info.status().to_string();
    EXPECT_EQ(info->records, recs.size());
    EXPECT_EQ(info->bytes, bytes.size());
    if (n == 300) {
      EXPECT_GT(info->blocks, 10u);
    }
    EXPECT_FALSE(mfs.exists("/snap/a.tmp"));
  }
}

TEST_F(SnapshotFileTest, WriterRefusesUnorderedKeysAndHugeRecords) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto w = SnapshotWriter::create(&mfs, "/snap/u", Meta(1, 1, 1), {});
  ASSERT_TRUE(w.is_ok());
  ASSERT_OK((*w)->add("b", "1"));
  EXPECT_DEATH((void)(*w)->add("a", "1"), "strictly increasing");
  EXPECT_DEATH((void)(*w)->add("b", "1"), "strictly increasing");
  // An abandoned writer leaves no file behind.
  w->reset();
  EXPECT_FALSE(mfs.exists("/snap/u.tmp"));
  EXPECT_FALSE(mfs.exists("/snap/u"));
}

TEST_F(SnapshotFileTest, WriterNoSpaceIsAnErrorAndLeavesNoFile) {
  mfs.set_space_limit_bytes(2000);
  auto w = SnapshotWriter::create(&mfs, "/snap/full", Meta(1, 1, 1), {.block_bytes = 100});
  ASSERT_TRUE(w.is_ok());
  Status st;
  for (const auto& [k, v] : make_records(200)) {
    st = (*w)->add(k, v);
    if (!st.is_ok()) break;
  }
  EXPECT_EQ(st.code(), Code::kNoSpace);
  EXPECT_EQ((*w)->finish().code(), Code::kNoSpace);  // sticky
  w->reset();
  EXPECT_FALSE(mfs.exists("/snap/full.tmp"));
  EXPECT_FALSE(mfs.exists("/snap/full"));
}

TEST_F(SnapshotFileTest, EveryBitFlipIsRefusedAndNoRecordComesFromTheBadBlock) {
  Records recs = make_records(40);
  std::string good = write("/snap/g", Meta(1, 10, 2), recs, 200);
  // The frame offsets, to know which block a flipped byte is in.
  std::vector<uint64_t> offs;
  Records all;
  ASSERT_OK(read_all(good, &all, &offs));
  for (size_t pos = 0; pos < good.size(); pos++) {
    std::string bad = good;
    bad[pos] ^= static_cast<char>(1 << (pos % 8));
    Records got;
    std::vector<uint64_t> got_offs;
    Status st = read_all(bad, &got, &got_offs);
    ASSERT_FALSE(st.is_ok()) << "flip at " << pos << " not detected";
    EXPECT_EQ(st.code(), Code::kCorruption);
    EXPECT_NE(st.message().find("test.snap at offset "), std::string::npos) << st.message();
    for (uint64_t o : got_offs) {
      // Every record returned comes from a block that ends before the flip.
      uint32_t len = 0;
      for (int i = 3; i >= 0; i--) len = (len << 8) | static_cast<uint8_t>(good[o + 1 + i]);
      EXPECT_LE(o + kSnapshotFrameHeaderBytes + len, pos)
          << "record from the block at " << o << " despite a flip at " << pos;
    }
    for (const auto& [k, v] : got) EXPECT_EQ(recs.at(k), v);
  }
}

TEST_F(SnapshotFileTest, EveryTruncationIsRefused) {
  std::string good = write("/snap/t", Meta(1, 10, 2), make_records(20), 100);
  for (size_t len = 0; len < good.size(); len++) {
    Records got;
    Status st = read_all(std::string_view(good).substr(0, len), &got);
    ASSERT_EQ(st.code(), Code::kCorruption) << "truncation to " << len;
  }
  Records got;
  Status st = read_all(good + "x", &got);
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_NE(st.message().find("1 unexpected bytes after the trailer"), std::string::npos)
      << st.message();
}

TEST_F(SnapshotFileTest, CorruptionMessagesArePrecise) {
  std::string good = write("/snap/p", Meta(1, 10, 2), make_records(20), 100);
  const uint64_t header =
      kSnapshotHeaderFixedBytes + Meta(1, 10, 2).conf_state().ByteSizeLong() + 4;
  auto message = [&](std::string bytes) {
    Records got;
    Status st = read_all(bytes, &got);
    EXPECT_EQ(st.code(), Code::kCorruption);
    return st.message();
  };
  std::string b = good;
  b[0] = 'X';
  EXPECT_NE(message(b).find("at offset 0: bad magic: expected 514b56534e415000"), std::string::npos)
      << message(b);
  b = good;
  b[8] = 2;
  EXPECT_NE(message(b).find("at offset 8: unsupported version: expected 1, found 2"),
            std::string::npos);
  b = good;
  b[14] ^= 1;  // inside the group id
  EXPECT_NE(message(b).find("header checksum mismatch: expected crc32c"), std::string::npos);
  b = good;
  b[header + kSnapshotFrameHeaderBytes + 6] ^= 4;  // inside the first block's body
  std::string m = message(b);
  EXPECT_NE(m.find("snapshot: test.snap at offset " + std::to_string(header) +
                   ": block checksum mismatch: expected crc32c "),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(", computed "), std::string::npos);
  b = good;
  b[header] = 'Z';
  EXPECT_NE(message(b).find("unknown frame type 0x5a"), std::string::npos);
  b = good.substr(0, good.size() - kSnapshotFrameHeaderBytes - kSnapshotTrailerBodyBytes);
  EXPECT_NE(message(b).find("missing trailer"), std::string::npos);
  b = good.substr(0, good.size() - 3);
  EXPECT_NE(message(b).find("trailer truncated: expected 20 body bytes, found 17"),
            std::string::npos)
      << message(b);
  // A whole block removed: every remaining frame is intact, the trailer's
  // counts and file checksum are not.
  {
    std::vector<uint64_t> offs;
    Records all;
    ASSERT_OK(read_all(good, &all, &offs));
    std::vector<uint64_t> blocks(offs.begin(), offs.end());
    blocks.erase(std::unique(blocks.begin(), blocks.end()), blocks.end());
    ASSERT_GE(blocks.size(), 3u);
    b = good.substr(0, blocks[1]) + good.substr(blocks[2]);
    EXPECT_NE(message(b).find("trailer record count"), std::string::npos) << message(b);
  }
  // Keys out of order inside blocks with valid checksums.
  {
    SnapshotWriterOptions o;
    o.block_bytes = 1;  // one record per block
    auto w1 = SnapshotWriter::create(&mfs, "/snap/x1", Meta(1, 1, 1), o);
    ASSERT_OK((*w1)->add("b", "1"));
    ASSERT_TRUE((*w1)->finish().is_ok());
    auto w2 = SnapshotWriter::create(&mfs, "/snap/x2", Meta(1, 1, 1), o);
    ASSERT_OK((*w2)->add("a", "1"));
    ASSERT_OK((*w2)->add("c", "1"));
    ASSERT_TRUE((*w2)->finish().is_ok());
    std::string one = *mfs.read_file("/snap/x1"), two = *mfs.read_file("/snap/x2");
    // header + block("b") from one, then block("a") + ... from two.
    const uint64_t h = kSnapshotHeaderFixedBytes + Meta(1, 1, 1).conf_state().ByteSizeLong() + 4;
    const uint64_t block = kSnapshotFrameHeaderBytes + 4 + 8 + 2;
    b = one.substr(0, h + block) + two.substr(h);
    m = message(b);
    EXPECT_NE(m.find("at offset " + std::to_string(h + block + kSnapshotFrameHeaderBytes + 4) +
                     ": record 0: key not above the previous key"),
              std::string::npos)
        << m;
  }
}

TEST_F(SnapshotFileTest, ValidPrefixStopsAtTheLastWholeFrame) {
  std::string good = write("/snap/v", Meta(1, 10, 2), make_records(30), 100);
  bool complete = false;
  EXPECT_EQ(snapshot_valid_prefix(good, &complete), good.size());
  EXPECT_TRUE(complete);
  uint64_t prev = 0;
  for (size_t len = 0; len < good.size(); len++) {
    uint64_t p = snapshot_valid_prefix(std::string_view(good).substr(0, len), &complete);
    EXPECT_FALSE(complete);
    EXPECT_LE(p, len);
    EXPECT_GE(p, prev);
    prev = p;
  }
  EXPECT_EQ(snapshot_valid_prefix("garbage", &complete), 0u);
  std::string bad = good;
  bad[good.size() / 2] ^= 1;
  EXPECT_LT(snapshot_valid_prefix(bad, &complete), good.size() / 2);
  EXPECT_FALSE(complete);
}

TEST_F(SnapshotFileTest, ProgressMeter) {
  uint64_t now = 1000;
  ProgressMeter m([&] { return now; }, 10000, 2000);  // resumed at 2000
  TransferProgress p = m.progress();
  EXPECT_EQ(p.bytes_done, 2000u);
  EXPECT_EQ(p.rate_bytes_per_s, 0);
  EXPECT_EQ(p.eta_s, -1);
  now += 2000;
  m.set_done(6000);
  p = m.progress();
  EXPECT_EQ(p.elapsed_ms, 2000u);
  EXPECT_DOUBLE_EQ(p.rate_bytes_per_s, 2000.0);  // 4000 bytes in 2 s
  EXPECT_DOUBLE_EQ(p.eta_s, 2.0);
  m.set_done(10000);
  EXPECT_EQ(m.progress().eta_s, 0);
  ProgressMeter unknown([&] { return now; }, 0, 0);
  now += 10;
  unknown.set_done(100);
  EXPECT_EQ(unknown.progress().eta_s, -1);
  EXPECT_GT(unknown.progress().rate_bytes_per_s, 0);
}

// Store -> file -> chunked transfer with a lost chunk, a duplicate, a bad
// chunk, a broken connection and a receiver restart (with a power loss) ->
// install on another store.
TEST_F(SnapshotFileTest, TransferRoundTripSurvivesLossDuplicationAndRestart) {
  StateStore* src = store();
  raftpb::ConfState c;
  c.add_voters(1);
  c.add_voters(2);
  c.add_voters(3);
  Records want = make_records(3000, 40);
  StateBatch b(6);
  for (const auto& [k, v] : want) b.put(k, v);
  b.put("zzz-other", "in another group? no, same group");
  want["zzz-other"] = "in another group? no, same group";
  ASSERT_OK(src->apply(b, 120, 7, &c));
  StateBatch other(5);
  other.put("key000001", "group 5");
  ASSERT_OK(src->apply(other, 3, 1, nullptr));

  // The sender side: a file from a consistent snapshot, with progress.
  std::vector<TransferProgress> reports;
  {
    auto snap = src->snapshot(6);
    ASSERT_TRUE(snap.is_ok());
    SnapshotWriterOptions wo;
    wo.block_bytes = 4096;
    auto info = write_snapshot_file(&mfs, "/snap/send", **snap, wo,
                                    [&](const TransferProgress& p) { reports.push_back(p); });
    ASSERT_TRUE(info.is_ok()) << info.status().to_string();
    EXPECT_EQ(info->records, want.size());
    ASSERT_GT(reports.size(), 10u);
    EXPECT_EQ(reports.back().bytes_done, info->bytes);
    EXPECT_EQ(reports.back().bytes_total, info->bytes);
    for (size_t i = 1; i < reports.size(); i++)
      EXPECT_GE(reports[i].bytes_done, reports[i - 1].bytes_done);
  }
  auto sender = SnapshotSender::open(&mfs, "/snap/send");
  ASSERT_TRUE(sender.is_ok()) << sender.status().to_string();
  const SnapshotOffer offer = (*sender)->offer();
  EXPECT_EQ(offer.group, 6u);
  EXPECT_EQ(offer.index, 120u);
  EXPECT_EQ(offer.term, 7u);

  // The receiver: a separate store (another node), receiving into /recv.
  test::TempDir dst_dir("qkv-snapfile-dst");
  const std::string& dst_root = dst_dir.path();
  auto dst = StateStore::open(dst_root + "/state", StateStoreOptions{});
  ASSERT_TRUE(dst.is_ok());
  {
    StateBatch old(6);
    old.put("old-key", "must vanish");
    ASSERT_OK((*dst)->apply(old, 50, 3, nullptr));
    StateBatch keep(5);
    keep.put("mine", "must stay");
    ASSERT_OK((*dst)->apply(keep, 9, 2, nullptr));
  }
  SnapshotReceiverOptions ro;
  ro.chunk_bytes_max = 8192;
  ro.sync_interval_bytes = 10000;
  uint64_t now = 0;
  ro.now_ms = [&] { return now; };
  auto rcv = SnapshotReceiver::open(&mfs, "/recv", dst->get(), offer, ro);
  ASSERT_TRUE(rcv.is_ok()) << rcv.status().to_string();
  EXPECT_EQ((*rcv)->bytes_held(), 0u);

  const uint64_t chunk = 5000;
  auto send = [&](uint64_t off) -> Result<uint64_t> {
    auto ch = (*sender)->read_chunk(off, chunk);
    EXPECT_TRUE(ch.is_ok());
    now += 10;
    return (*rcv)->write_chunk(ch->offset, ch->data, ch->crc);
  };
  // Chunks 0 and 1 arrive; chunk 2 is lost; chunk 3 arrives (a gap: ignored).
  ASSERT_EQ(*send(0), chunk);
  ASSERT_EQ(*send(chunk), 2 * chunk);
  ASSERT_EQ(*send(3 * chunk), 2 * chunk);
  // A duplicate of chunk 1 changes nothing; a chunk overlapping the end of
  // what is held adds only its new part.
  ASSERT_EQ(*send(chunk), 2 * chunk);
  ASSERT_EQ(*send(2 * chunk - 100), 3 * chunk - 100);
  // A damaged chunk is refused, with nothing written.
  auto ch = (*sender)->read_chunk(3 * chunk - 100, chunk);
  ch->data[10] ^= 1;
  auto bad = (*rcv)->write_chunk(ch->offset, ch->data, ch->crc);
  EXPECT_EQ(bad.code(), Code::kCorruption);
  EXPECT_NE(bad.status().message().find("checksum mismatch"), std::string::npos);
  EXPECT_EQ((*rcv)->bytes_held(), 3 * chunk - 100);
  TransferProgress p = (*rcv)->progress();
  EXPECT_EQ(p.bytes_done, 3 * chunk - 100);
  EXPECT_EQ(p.bytes_total, offer.total_bytes);
  EXPECT_GT(p.rate_bytes_per_s, 0);
  EXPECT_GT(p.eta_s, 0);

  // A broken connection: the receiver object survives, the sender asks
  // where to resume.
  uint64_t off = (*rcv)->bytes_held();
  for (int i = 0; i < 3; i++) off = *send(off);

  // The receiver node restarts, losing unsynced bytes (power loss).
  const uint64_t before_crash = (*rcv)->bytes_held();
  rcv->reset();
  mfs.crash();
  rcv = SnapshotReceiver::open(&mfs, "/recv", dst->get(), offer, ro);
  ASSERT_TRUE(rcv.is_ok()) << rcv.status().to_string();
  off = (*rcv)->bytes_held();
  EXPECT_GT(off, 0u) << "synced whole blocks survive";
  EXPECT_LE(off, before_crash);
  EXPECT_EQ((*rcv)->progress().bytes_done, off);
  // Resume from there to the end.
  while (!(*rcv)->complete()) {
    auto next = send(off);
    ASSERT_TRUE(next.is_ok()) << next.status().to_string();
    ASSERT_GT(*next, off);
    off = *next;
    (*sender)->acknowledged(off);
  }
  EXPECT_EQ((*sender)->progress().bytes_done, offer.total_bytes);
  ASSERT_OK((*rcv)->install());
  EXPECT_FALSE(mfs.exists((*rcv)->temp_path()));

  // The group is replaced; the other group is untouched.
  ScanOptions so;
  so.keys_max = 100000;
  so.bytes_max = 1ull << 30;
  Records got;
  auto scanned = (*dst)->scan(6, so);
  ASSERT_TRUE(scanned.is_ok());
  for (auto& [k, v] : scanned->items) got[k] = v;
  EXPECT_EQ(got, want);
  EXPECT_EQ((*dst)->applied(6).index(), 120u);
  EXPECT_EQ((*dst)->applied(6).term(), 7u);
  EXPECT_EQ((*dst)->applied(6).conf_state().voters_size(), 3);
  EXPECT_EQ((*(*dst)->get(5, "mine")).value_or(""), "must stay");
  EXPECT_FALSE((*dst)->get(6, "old-key")->has_value());
  rcv->reset();
  dst->reset();
}

TEST_F(SnapshotFileTest, ReceiverRestartWithoutCrashKeepsEverythingAndNewOfferReplacesOld) {
  Records recs = make_records(500, 30);
  std::string bytes = write("/snap/r", Meta(2, 40, 3), recs, 1024);
  auto sender = SnapshotSender::open(&mfs, "/snap/r");
  ASSERT_TRUE(sender.is_ok());
  SnapshotReceiverOptions ro;
  ro.sync_interval_bytes = 0;
  auto rcv = SnapshotReceiver::open(&mfs, "/recv", store(), (*sender)->offer(), ro);
  ASSERT_TRUE(rcv.is_ok());
  auto c = (*sender)->read_chunk(0, 3000);
  ASSERT_EQ(*(*rcv)->write_chunk(0, c->data, c->crc), 3000u);
  const std::string part = (*rcv)->temp_path();
  rcv->reset();
  // Reopened with the same offer: only whole frames are kept.
  rcv = SnapshotReceiver::open(&mfs, "/recv", store(), (*sender)->offer(), ro);
  ASSERT_TRUE(rcv.is_ok());
  const uint64_t held = (*rcv)->bytes_held();
  bool complete = false;
  EXPECT_EQ(held, snapshot_valid_prefix(std::string_view(bytes).substr(0, 3000), &complete));
  EXPECT_GT(held, 1000u);
  EXPECT_EQ(mfs.read_file(part)->size(), held);
  rcv->reset();

  // A newer snapshot of the same group: the old partial file goes.
  std::string bytes2 = write("/snap/r2", Meta(2, 45, 3), recs, 1024);
  auto sender2 = SnapshotSender::open(&mfs, "/snap/r2");
  ASSERT_TRUE(sender2.is_ok());
  rcv = SnapshotReceiver::open(&mfs, "/recv", store(), (*sender2)->offer(), ro);
  ASSERT_TRUE(rcv.is_ok());
  EXPECT_EQ((*rcv)->bytes_held(), 0u);
  EXPECT_FALSE(mfs.exists(part));
  EXPECT_EQ(mfs.list_dir("/recv")->size(), 1u);
  ASSERT_OK((*rcv)->abandon());
  EXPECT_TRUE(mfs.list_dir("/recv")->empty());
}

TEST_F(SnapshotFileTest, ReceiverRefusesBadOffersAndChunks) {
  std::string bytes = write("/snap/o", Meta(2, 40, 3), make_records(50), 1024);
  auto sender = SnapshotSender::open(&mfs, "/snap/o");
  ASSERT_TRUE(sender.is_ok());
  SnapshotOffer offer = (*sender)->offer();
  SnapshotReceiverOptions ro;
  ro.snapshot_bytes_max = offer.total_bytes - 1;
  EXPECT_EQ(SnapshotReceiver::open(&mfs, "/recv", store(), offer, ro).code(),
            Code::kInvalidArgument);
  ro = SnapshotReceiverOptions();
  ro.chunk_bytes_max = 100;
  auto rcv = SnapshotReceiver::open(&mfs, "/recv", store(), offer, ro);
  ASSERT_TRUE(rcv.is_ok());
  std::string big(101, 'x');
  EXPECT_EQ((*rcv)->write_chunk(0, big, crc32c(big)).code(), Code::kInvalidArgument);
  std::string tail(10, 'x');
  EXPECT_EQ((*rcv)->write_chunk(offer.total_bytes - 5, tail, crc32c(tail)).code(),
            Code::kInvalidArgument);
  EXPECT_EQ((*sender)->read_chunk(offer.total_bytes + 1, 10).code(), Code::kInvalidArgument);
  EXPECT_EQ((*sender)->read_chunk(0, 0).code(), Code::kInvalidArgument);
  auto last = (*sender)->read_chunk(offer.total_bytes - 10, 100);
  EXPECT_TRUE(last->last);
  EXPECT_EQ(last->data.size(), 10u);
  rcv->reset();

  // Stale: the store already applied past the offer; the partial file goes.
  StateBatch b(2);
  ASSERT_OK(store()->apply(b, 40, 3, nullptr));
  auto stale = SnapshotReceiver::open(&mfs, "/recv", store(), offer, SnapshotReceiverOptions());
  EXPECT_EQ(stale.code(), Code::kInvalidArgument);
  EXPECT_NE(stale.status().message().find("stale"), std::string::npos);
  EXPECT_TRUE(mfs.list_dir("/recv")->empty());

  // A damaged file is never offered.
  std::string bad = bytes;
  bad[bad.size() / 2] ^= 1;
  mfs.TEST_write_raw("/snap/bad", bad);
  auto s2 = SnapshotSender::open(&mfs, "/snap/bad");
  EXPECT_EQ(s2.code(), Code::kCorruption);
}

TEST_F(SnapshotFileTest, CorruptTransferIsRefusedAtInstallAndRestarts) {
  Records recs = make_records(200);
  std::string bytes = write("/snap/c", Meta(4, 30, 2), recs, 512);
  auto sender = SnapshotSender::open(&mfs, "/snap/c");
  ASSERT_TRUE(sender.is_ok());
  SnapshotOffer offer = (*sender)->offer();
  // The bytes get damaged before the chunk checksum is computed (a bad disk
  // or memory on the sender): the chunks check out, the file does not.
  std::string damaged = bytes;
  damaged[bytes.size() / 3] ^= 0x10;
  StateBatch b(4);
  b.put("existing", "1");
  ASSERT_OK(store()->apply(b, 10, 1, nullptr));
  auto rcv = SnapshotReceiver::open(&mfs, "/recv", store(), offer, SnapshotReceiverOptions());
  ASSERT_TRUE(rcv.is_ok());
  for (uint64_t off = 0; off < damaged.size(); off += 1000) {
    std::string_view d = std::string_view(damaged).substr(off, 1000);
    ASSERT_TRUE((*rcv)->write_chunk(off, d, crc32c(d.data(), d.size())).is_ok());
  }
  ASSERT_TRUE((*rcv)->complete());
  Status st = (*rcv)->install();
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_NE(st.message().find((*rcv)->temp_path() + " at offset "), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("checksum mismatch"), std::string::npos) << st.message();
  EXPECT_EQ((*rcv)->bytes_held(), 0u);
  EXPECT_EQ(store()->applied(4).index(), 10u);
  EXPECT_EQ(dump(4), (Records{{"existing", "1"}}));
  // A clean resend installs.
  for (uint64_t off = 0; off < bytes.size(); off += 1000) {
    auto c = (*sender)->read_chunk(off, 1000);
    ASSERT_TRUE((*rcv)->write_chunk(off, c->data, c->crc).is_ok());
  }
  ASSERT_OK((*rcv)->install());
  EXPECT_EQ(dump(4), recs);
  EXPECT_EQ(store()->applied(4).index(), 30u);
}

TEST_F(SnapshotFileTest, ReceiverNoSpaceKeepsAPrefixAndResumes) {
  std::string bytes = write("/snap/n", Meta(4, 30, 2), make_records(200), 512);
  auto sender = SnapshotSender::open(&mfs, "/snap/n");
  ASSERT_TRUE(sender.is_ok());
  auto rcv =
      SnapshotReceiver::open(&mfs, "/recv", store(), (*sender)->offer(), SnapshotReceiverOptions());
  ASSERT_TRUE(rcv.is_ok());
  // The sender's file uses bytes.size(); 1500 more bytes fit.
  mfs.set_space_limit_bytes(bytes.size() + 1500);
  uint64_t off = 0;
  Status st;
  while (off < bytes.size()) {
    auto c = (*sender)->read_chunk(off, 1000);
    auto r = (*rcv)->write_chunk(off, c->data, c->crc);
    if (!r.is_ok()) {
      st = r.status();
      break;
    }
    off = *r;
  }
  EXPECT_EQ(st.code(), Code::kNoSpace);
  EXPECT_EQ((*rcv)->bytes_held(), off);
  EXPECT_EQ(mfs.read_file((*rcv)->temp_path())->size(), off);
  mfs.set_space_limit_bytes(UINT64_MAX);
  while (!(*rcv)->complete()) {
    auto c = (*sender)->read_chunk(off, 1000);
    off = *(*rcv)->write_chunk(off, c->data, c->crc);
  }
  ASSERT_OK((*rcv)->install());
  EXPECT_EQ(dump(4).size(), 200u);
}

TEST_F(SnapshotFileTest, PosixFileSystemRoundTrip) {
  PosixFileSystem pfs;
  StateStore* s = store();
  StateBatch b(1);
  for (const auto& [k, v] : make_records(100)) b.put(k, v);
  ASSERT_OK(s->apply(b, 5, 1, nullptr));
  auto snap = s->snapshot(1);
  ASSERT_TRUE(snap.is_ok());
  const std::string path = root_ + "/g1.snap";
  auto info = write_snapshot_file(&pfs, path, **snap, SnapshotWriterOptions());
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  auto v = verify_snapshot_file(&pfs, path);
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_EQ(v->records, 100u);
  EXPECT_EQ(v->file_crc, info->file_crc);
}

}  // namespace
}  // namespace qkv::storage

namespace qkv::storage {
namespace {

// A file system on which whole-file reads fail: what works on it streams.
class NoWholeReadsFileSystem final : public MemFileSystem {
 public:
  Result<std::string> read_file(const std::string& path) override {
    return Status(Code::kIoError, "read_file(" + path + ") refused: must read ranges");
  }
  Result<std::string> read_range(const std::string& path, uint64_t offset, uint64_t n) override {
    largest_read = std::max(largest_read, n);
    return MemFileSystem::read_range(path, offset, n);
  }
  uint64_t largest_read = 0;
};

TEST(FileSystemRangedReadTest, MemAndPosixAgree) {
  MemFileSystem mem;
  PosixFileSystem posix;
  test::TempDir tmp("qkv-fs-range");
  const std::string& dir = tmp.path();
  std::string content;
  for (int i = 0; i < 100000; i++) content.push_back(static_cast<char>('a' + i % 23));
  for (FileSystem* fs : {static_cast<FileSystem*>(&mem), static_cast<FileSystem*>(&posix)}) {
    ASSERT_OK(fs->create_dirs(dir));
    const std::string path = dir + "/f";
    auto f = fs->create(path);
    ASSERT_TRUE(f.is_ok());
    ASSERT_OK((*f)->append(content));
    ASSERT_OK((*f)->sync());
    ASSERT_OK((*f)->close());
    EXPECT_EQ(*fs->file_size(path), content.size());
    EXPECT_EQ(*fs->read_range(path, 0, 10), content.substr(0, 10));
    EXPECT_EQ(*fs->read_range(path, 54321, 4000), content.substr(54321, 4000));
    EXPECT_EQ(*fs->read_range(path, content.size() - 3, 100), content.substr(content.size() - 3));
    EXPECT_EQ(*fs->read_range(path, content.size(), 100), "");
    EXPECT_EQ(*fs->read_range(path, content.size() + 50, 100), "");
    EXPECT_EQ(fs->read_range(dir + "/missing", 0, 1).code(), Code::kNotFound);
    EXPECT_EQ(fs->file_size(dir + "/missing").code(), Code::kNotFound);
  }
}

TEST(SnapshotStreamingTest, ReaderSenderReceiverNeverReadAWholeFile) {
  NoWholeReadsFileSystem fs;
  ASSERT_OK(fs.create_dirs("/snap"));
  SnapshotWriterOptions wo;
  wo.block_bytes = 4096;
  auto w = SnapshotWriter::create(&fs, "/snap/s", Meta(3, 500, 4), wo);
  ASSERT_TRUE(w.is_ok());
  Records recs = make_records(20000, 40);
  for (const auto& [k, v] : recs) ASSERT_OK((*w)->add(k, v));
  auto info = (*w)->finish();
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  ASSERT_GT(info->bytes, 800000u);

  // Reading streams a block at a time.
  auto r = SnapshotReader::open(&fs, "/snap/s");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  Records got;
  std::string_view k, v;
  while (*(*r)->next(&k, &v)) got[std::string(k)] = std::string(v);
  EXPECT_EQ(got, recs);
  EXPECT_LT(fs.largest_read, 2 * wo.block_bytes);

  // A transfer through sender and receiver, resumed once, installs it all.
  test::TempDir tmp("qkv-snap-stream");
  const std::string& root = tmp.path();
  {
    auto store = StateStore::open(root + "/db", StateStoreOptions{});
    ASSERT_TRUE(store.is_ok()) << store.status().to_string();
    auto sender = SnapshotSender::open(&fs, "/snap/s");
    ASSERT_TRUE(sender.is_ok());
    SnapshotReceiverOptions ro;
    ro.sync_interval_bytes = 64 << 10;
    auto rcv = SnapshotReceiver::open(&fs, "/recv", store->get(), (*sender)->offer(), ro);
    ASSERT_TRUE(rcv.is_ok());
    uint64_t off = 0;
    for (int i = 0; i < 5; i++) {
      auto c = (*sender)->read_chunk(off, 50000);
      off = *(*rcv)->write_chunk(c->offset, c->data, c->crc);
    }
    rcv->reset();  // the connection broke; the node keeps its partial file
    rcv = SnapshotReceiver::open(&fs, "/recv", store->get(), (*sender)->offer(), ro);
    ASSERT_TRUE(rcv.is_ok());
    off = (*rcv)->bytes_held();
    EXPECT_GT(off, 100000u);
    while (!(*rcv)->complete()) {
      auto c = (*sender)->read_chunk(off, 50000);
      ASSERT_TRUE(c.is_ok());
      off = *(*rcv)->write_chunk(c->offset, c->data, c->crc);
    }
    ASSERT_OK((*rcv)->install());
    EXPECT_EQ((*store)->applied(3).index(), 500u);
    EXPECT_EQ((*(*store)->get(3, "key012345")).value_or(""), recs["key012345"]);
    EXPECT_LE(fs.largest_read, 50000u);
  }
}

}  // namespace
}  // namespace qkv::storage
