#include "storage/wal.h"

#include <algorithm>
#include <cinttypes>
#include <cstring>

#include "storage/coding.h"
#include "storage/crc32c.h"

namespace qkv::storage {

namespace {

constexpr char kSegmentMagic[8] = {'Q', 'K', 'V', 'W', 'A', 'L', '\0', '\1'};
constexpr char kSpareName[] = "spare.wal.tmp";
// A spare is written and synced in pieces of this size, so the page cache
// never holds much of it dirty at once (a sync of the segment in use would
// not wait on it anyway: it is another file).
constexpr uint64_t kSpareChunkBytes = 1ull << 20;


bool all_zero(const std::string& s, size_t from) {
  for (size_t i = from; i < s.size(); i++)
    if (s[i] != 0) return false;
  return true;
}

std::string segment_name(uint64_t seq) {
  char b[32];
  std::snprintf(b, sizeof b, "%016" PRIx64 ".wal", seq);
  return b;
}

bool parse_segment_name(const std::string& name, uint64_t* seq) {
  if (name.size() != 20 || name.substr(16) != ".wal") return false;
  uint64_t v = 0;
  for (int i = 0; i < 16; i++) {
    char c = name[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  *seq = v;
  return true;
}

std::string segment_header(uint64_t seq) {
  std::string h(kSegmentMagic, 8);
  put_u64(h, seq);
  put_u32(h, crc32c(h));
  put_u32(h, 0);  // reserved
  return h;
}

}  // namespace

// ---------------------------------------------------------------------------
// WalBatch

void WalBatch::add(RecordType t, uint64_t group, uint64_t term, uint64_t index,
                   std::string_view payload, std::string_view payload2) {
  size_t body = kRecordBodyFixedBytes + payload.size() + payload2.size();
  size_t start = buf_.size();
  put_u32(buf_, static_cast<uint32_t>(body));
  put_u32(buf_, 0);  // crc, filled below
  buf_.push_back(static_cast<char>(t));
  put_u64(buf_, group);
  put_u64(buf_, term);
  put_u64(buf_, index);
  buf_.append(payload);
  buf_.append(payload2);
  uint32_t crc = crc32c(buf_.data() + start + kRecordHeaderBytes, body);
  for (int i = 0; i < 4; i++) buf_[start + 4 + i] = static_cast<char>(crc >> (8 * i));
  infos_.push_back(Info{t, group, term, index, body, {}, 0});
}

void WalBatch::add_entry(uint64_t group, const raftpb::Entry& e) {
  char type = static_cast<char>(e.type());
  add(RecordType::kEntry, group, e.term(), e.index(), std::string_view(&type, 1), e.data());
}

void WalBatch::add_hard_state(uint64_t group, const raftpb::HardState& hs) {
  std::string vote;
  put_u64(vote, hs.vote());
  add(RecordType::kHardState, group, hs.term(), hs.commit(), vote);
  infos_.back().vote = hs.vote();
}

void WalBatch::add_snapshot(uint64_t group, const raftpb::SnapshotMetadata& meta) {
  std::string conf = meta.conf_state().SerializeAsString();
  add(RecordType::kSnapshot, group, meta.term(), meta.index(), conf);
  infos_.back().conf = std::move(conf);
}

void WalBatch::add_compact(uint64_t group, const raftpb::SnapshotMetadata& meta) {
  std::string conf = meta.conf_state().SerializeAsString();
  add(RecordType::kCompact, group, meta.term(), meta.index(), conf);
  infos_.back().conf = std::move(conf);
}

// ---------------------------------------------------------------------------
// Wal

Wal::Wal(FileSystem* fs, std::string dir, WalOptions options)
    : fs_(fs), dir_(std::move(dir)), opts_(options) {}

Wal::~Wal() {
  if (filler_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    spare_cv_.notify_all();
    filler_.join();
  }
  if (file_) (void)file_->close();
}

std::string Wal::segment_path(uint64_t seq) const { return path_join(dir_, segment_name(seq)); }

std::string Wal::spare_path() const { return path_join(dir_, kSpareName); }

Result<std::unique_ptr<Wal>> Wal::open(FileSystem* fs, const std::string& dir,
                                       const WalOptions& options, WalRecovery* recovery) {
  if (Status s = fs->create_dirs(dir); !s.is_ok()) return s;
  std::unique_ptr<Wal> wal(new Wal(fs, dir, options));
  WalRecovery local;
  if (Status s = wal->recover(recovery ? recovery : &local); !s.is_ok()) return s;
  if (options.prefill) wal->filler_ = std::thread(&Wal::fill_spares, wal.get());
  return wal;
}

namespace {

// Applies one decoded record to the recovered state of its group.
Status apply_record(RecordType type, uint64_t group, uint64_t term, uint64_t index,
                    const char* payload, size_t payload_len, WalRecovery* rec) {
  RecoveredGroup& g = rec->groups[group];
  switch (type) {
    case RecordType::kEntry: {
      if (payload_len < 1) return Status(Code::kCorruption, "entry record without a type");
      uint64_t base = g.base ? g.base->index() : 0;
      if (index <= base) return Status::ok();  // covered by the snapshot
      // An entry may start a group's run above its base: the base may be
      // restated later in the segment (older segments were deleted). The
      // run is checked against the base once everything is replayed.
      if (!g.entries.empty()) {
        uint64_t first = g.entries.front().index();
        uint64_t last = g.entries.back().index();
        if (index > last + 1) {
          return Status(Code::kCorruption, "entry " + std::to_string(index) + " of group " +
                                               std::to_string(group) + " leaves a gap after " +
                                               std::to_string(last));
        }
        // A later write of an index overwrites it and everything after it.
        if (index < first) {
          g.entries.clear();
        } else if (index <= last) {
          g.entries.resize(index - first);
        }
      }
      raftpb::Entry e;
      e.set_group(group);
      e.set_term(term);
      e.set_index(index);
      e.set_type(static_cast<raftpb::EntryType>(static_cast<uint8_t>(payload[0])));
      e.set_data(payload + 1, payload_len - 1);
      g.entries.push_back(std::move(e));
      return Status::ok();
    }
    case RecordType::kHardState: {
      if (payload_len != 8) return Status(Code::kCorruption, "hard state record of bad size");
      raftpb::HardState hs;
      hs.set_group(group);
      hs.set_term(term);
      hs.set_commit(index);
      hs.set_vote(get_u64(payload));
      g.hard_state = hs;
      return Status::ok();
    }
    case RecordType::kSnapshot:
    case RecordType::kCompact: {
      raftpb::SnapshotMetadata meta;
      meta.set_group(group);
      meta.set_term(term);
      meta.set_index(index);
      if (!meta.mutable_conf_state()->ParseFromArray(payload, static_cast<int>(payload_len))) {
        return Status(Code::kCorruption, "undecodable conf state in a snapshot record");
      }
      if (g.base && g.base->index() > index) return Status::ok();  // older than what we have
      g.base = meta;
      if (type == RecordType::kSnapshot) {
        g.entries.clear();  // the log is replaced
      } else {
        auto it = std::find_if(g.entries.begin(), g.entries.end(),
                               [&](const raftpb::Entry& e) { return e.index() > index; });
        // Entries above the base stay, even if they start past index + 1:
        // a run whose beginning was in a deleted segment (the check after
        // replay rejects a real hole).
        g.entries.erase(g.entries.begin(), it);
      }
      return Status::ok();
    }
  }
  return Status(Code::kCorruption, "unknown record type " + std::to_string(int(type)));
}

}  // namespace

Status Wal::replay_segment(size_t i, const std::string& path, bool last, WalRecovery* rec,
                           uint64_t* valid_end, bool* truncated_rest) {
  auto data_r = fs_->read_file(path);
  if (!data_r.is_ok()) return data_r.status();
  const std::string& data = *data_r;
  Segment& seg = segments_[i];
  auto corrupt = [&](uint64_t off, const std::string& what) -> Status {
    return Status(Code::kCorruption, "wal: " + path + " at offset " + std::to_string(off) + ": " +
                                         what + " (start with --repair-wal to truncate here)");
  };
  // Header.
  if (data.size() < kSegmentHeaderBytes || std::memcmp(data.data(), kSegmentMagic, 8) != 0 ||
      get_u64(data.data() + 8) != seg.seq ||
      get_u32(data.data() + 16) != crc32c(data.data(), 16)) {
    if (last && all_zero(data, 0)) {
      // Created but never written before a crash.
      *valid_end = 0;
      rec->notes.push_back("wal: " + path + " has no header (torn at creation); rewritten");
      return Status::ok();
    }
    if (opts_.repair) {
      *valid_end = 0;
      *truncated_rest = true;
      rec->notes.push_back("wal: repair: " + path + " has a bad header; dropped with all later");
      return Status::ok();
    }
    return corrupt(0, "bad segment header (expected magic QKVWAL, sequence " +
                          std::to_string(seg.seq) + ")");
  }
  uint64_t off = kSegmentHeaderBytes;
  while (off < data.size()) {
    size_t left = data.size() - off;
    if (left < kRecordHeaderBytes) {
      if (all_zero(data, off)) break;  // preallocated space
    }
    uint32_t len = left >= 4 ? get_u32(data.data() + off) : 0;
    if (left >= kRecordHeaderBytes && len == 0 && all_zero(data, off)) break;  // end of data
    std::string problem;
    uint64_t extent_end = data.size();  // where a torn record would end
    if (left < kRecordHeaderBytes) {
      problem = "partial record header";
    } else if (len < kRecordBodyFixedBytes || len > opts_.record_bytes_max) {
      problem = "record length " + std::to_string(len) + " out of range";
      extent_end = off + 4;  // only a partly written length can be torn like this
    } else if (left - kRecordHeaderBytes < len) {
      problem = "record of " + std::to_string(len) + " bytes runs past the end of the file";
    } else {
      uint32_t want = get_u32(data.data() + off + 4);
      uint32_t got = crc32c(data.data() + off + kRecordHeaderBytes, len);
      extent_end = off + kRecordHeaderBytes + len;
      if (want != got) {
        char b[96];
        std::snprintf(b, sizeof b, "checksum mismatch: expected crc32c %08x, computed %08x", want,
                      got);
        problem = b;
      }
    }
    if (problem.empty()) {
      const char* body = data.data() + off + kRecordHeaderBytes;
      auto type = static_cast<RecordType>(static_cast<uint8_t>(body[0]));
      uint64_t group = get_u64(body + 1), term = get_u64(body + 9), index = get_u64(body + 17);
      Status s = apply_record(type, group, term, index, body + kRecordBodyFixedBytes,
                              len - kRecordBodyFixedBytes, rec);
      if (!s.is_ok()) {
        if (opts_.repair) {
          problem = s.message();
        } else {
          return corrupt(off, s.message());
        }
      } else {
        if (type == RecordType::kEntry) {
          uint64_t& m = seg.max_entry_index[group];
          m = std::max(m, index);
        }
        rec->records++;
        off += kRecordHeaderBytes + len;
        continue;
      }
    }
    // A bad record. At the end of the last segment, with nothing written
    // after it, it is a torn write: truncate. Anything else is corruption.
    bool torn = last && all_zero(data, std::min<uint64_t>(extent_end, data.size()));
    if (torn) {
      rec->notes.push_back("wal: " + path + ": torn write at offset " + std::to_string(off) +
                           " (" + problem + "); truncated " +
                           std::to_string(data.size() - off) + " bytes");
    } else if (opts_.repair) {
      rec->notes.push_back("wal: repair: " + path + " at offset " + std::to_string(off) + ": " +
                           problem + "; truncated here, dropping everything after");
      *truncated_rest = true;
    } else {
      return corrupt(off, problem);
    }
    break;
  }
  *valid_end = off;
  return Status::ok();
}

Status Wal::recover(WalRecovery* rec) {
  // A spare left by an earlier run may be incomplete; a new one is made
  // when needed.
  if (fs_->exists(spare_path())) (void)fs_->remove_file(spare_path());
  auto names = fs_->list_dir(dir_);
  if (!names.is_ok()) return names.status();
  std::vector<uint64_t> seqs;
  for (const auto& n : *names) {
    uint64_t seq;
    if (parse_segment_name(n, &seq)) seqs.push_back(seq);
  }
  std::sort(seqs.begin(), seqs.end());
  for (size_t i = 1; i < seqs.size(); i++) {
    if (seqs[i] != seqs[i - 1] + 1) {
      return Status(Code::kCorruption, "wal: segment " + segment_name(seqs[i - 1] + 1) +
                                           " is missing from " + dir_);
    }
  }
  for (uint64_t seq : seqs) segments_.push_back(Segment{seq, segment_path(seq), {}, 0});
  uint64_t valid_end = 0;
  for (size_t i = 0; i < segments_.size(); i++) {
    bool last = i + 1 == segments_.size();
    bool truncated_rest = false;
    if (Status s = replay_segment(i, segments_[i].path, last, rec, &valid_end, &truncated_rest);
        !s.is_ok()) {
      return s;
    }
    if (truncated_rest && !last) {
      // Repair: drop every later segment.
      for (size_t j = i + 1; j < segments_.size(); j++) {
        if (Status s = fs_->remove_file(segments_[j].path); !s.is_ok()) return s;
      }
      segments_.resize(i + 1);
      break;
    }
  }
  rec->segments = segments_.size();
  for (const auto& [g, rg] : rec->groups) {
    uint64_t base = rg.base ? rg.base->index() : 0;
    if (!rg.entries.empty() && rg.entries.front().index() != base + 1) {
      return Status(Code::kCorruption,
                    "wal: group " + std::to_string(g) + " has entries from " +
                        std::to_string(rg.entries.front().index()) + " but its log base is " +
                        std::to_string(base) + ": a segment is missing from " + dir_);
    }
  }
  // Group metadata for checkpoints and releases.
  for (auto& [g, rg] : rec->groups) {
    GroupMeta& gm = groups_[g];
    gm.hard_state = rg.hard_state;
    if (rg.base) {
      gm.has_base = true;
      gm.base_index = rg.base->index();
      gm.base_term = rg.base->term();
      gm.base_conf = rg.base->conf_state().SerializeAsString();
      gm.released = rg.base->index();
      gm.durable_base = rg.base->index();
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (segments_.empty()) return start_segment_locked(1);
  Segment& tail = segments_.back();
  if (valid_end < kSegmentHeaderBytes) {
    // A segment without a valid header: rewrite it from scratch.
    uint64_t seq = tail.seq;
    segments_.pop_back();
    return start_segment_locked(seq);
  }
  auto f = fs_->reopen(tail.path, valid_end);
  if (!f.is_ok()) return f.status();
  file_ = std::shared_ptr<WritableFile>(std::move(f).value());
  if (opts_.preallocate) {
    if (Status s = file_->preallocate(opts_.segment_bytes_max); !s.is_ok()) return s;
  }
  // Make the truncation durable before anything new is appended after it.
  if (Status s = file_->sync(); !s.is_ok()) return s;
  return delete_released_segments_locked();
}

std::shared_ptr<WritableFile> Wal::take_spare_locked(const std::string& path) {
  if (spare_ != Spare::kReady) {
    if (spare_ == Spare::kFailed) spare_ = Spare::kNone;  // try again for the next segment
    return nullptr;
  }
  spare_ = Spare::kNone;
  if (!fs_->rename(spare_path(), path).is_ok()) {
    (void)fs_->remove_file(spare_path());
    stats_.spare_failures++;
    return nullptr;
  }
  auto f = fs_->overwrite(path);
  if (!f.is_ok()) {
    stats_.spare_failures++;  // create() below cuts the renamed file
    return nullptr;
  }
  stats_.spares_used++;
  return std::shared_ptr<WritableFile>(std::move(f).value());
}

Status Wal::start_segment_locked(uint64_t seq) {
  std::string path = segment_path(seq);
  std::shared_ptr<WritableFile> file = take_spare_locked(path);
  const bool prefilled = file != nullptr;
  if (!file) {
    auto f = fs_->create(path);
    if (!f.is_ok()) return f.status();
    file = std::shared_ptr<WritableFile>(std::move(f).value());
    if (opts_.preallocate) {
      if (Status s = file->preallocate(opts_.segment_bytes_max); !s.is_ok()) return s;
    }
  }
  WalBatch checkpoint;
  std::string header = segment_header(seq);
  // The new segment restates every group's log base and hard state, so
  // older segments are never needed for them.
  for (const auto& [g, gm] : groups_) {
    if (gm.has_base) {
      raftpb::SnapshotMetadata meta;
      meta.set_index(gm.base_index);
      meta.set_term(gm.base_term);
      (void)meta.mutable_conf_state()->ParseFromString(gm.base_conf);
      checkpoint.add_compact(g, meta);
    }
    if (gm.hard_state) checkpoint.add_hard_state(g, *gm.hard_state);
  }
  if (Status s = file->append(header + checkpoint.buf_); !s.is_ok()) return s;
  if (Status s = file->sync(); !s.is_ok()) return s;
  if (Status s = fs_->sync_dir(dir_); !s.is_ok()) return s;
  segments_.push_back(Segment{seq, path, {}, file->size()});
  file_ = std::move(file);
  current_prefilled_ = prefilled;
  stats_.segments_created++;
  return Status::ok();
}

void Wal::want_spare_locked() {
  if (!opts_.prefill || spare_ != Spare::kNone) return;
  uint64_t start = current_prefilled_ ? opts_.segment_bytes_max / 2 : opts_.prefill_start_bytes;
  if (file_->size() < start) return;
  spare_ = Spare::kWanted;
  spare_cv_.notify_one();
}

void Wal::fill_spares() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    spare_cv_.wait(lock, [&] { return stop_ || spare_ == Spare::kWanted; });
    if (stop_) return;
    spare_ = Spare::kFilling;
    lock.unlock();
    Status s = make_spare();
    lock.lock();
    if (s.is_ok()) {
      spare_ = Spare::kReady;
      stats_.spares_made++;
    } else {
      // Not fatal: rotation makes an ordinary segment. No retry before the
      // next rotation, so a full disk is not rewritten in a loop.
      (void)fs_->remove_file(spare_path());
      spare_ = Spare::kFailed;
      if (!stop_) stats_.spare_failures++;
    }
  }
}

Status Wal::make_spare() {
  auto f = fs_->create(spare_path());
  if (!f.is_ok()) return f.status();
  std::unique_ptr<WritableFile> file = std::move(f).value();
  if (Status s = file->preallocate(opts_.segment_bytes_max); !s.is_ok()) return s;
  const std::string zeros(std::min(opts_.segment_bytes_max, kSpareChunkBytes), '\0');
  for (uint64_t done = 0; done < opts_.segment_bytes_max;) {
    if (stop_) return Status(Code::kIoError, "wal: closed while making a spare segment");
    size_t n = std::min<uint64_t>(zeros.size(), opts_.segment_bytes_max - done);
    if (Status s = file->append(std::string_view(zeros.data(), n)); !s.is_ok()) return s;
    if (Status s = file->sync(); !s.is_ok()) return s;
    done += n;
  }
  return file->close();
}

Status Wal::rotate_locked() {
  // Everything in the old segment must be durable before records in the
  // new one can be reported durable.
  if (Status s = file_->sync(); !s.is_ok()) {
    failed_ = s;
    return s;
  }
  mark_durable_locked(appended_seq_);
  // The old file is closed when the last user (maybe a concurrent syncer)
  // drops it.
  uint64_t seq = segments_.back().seq + 1;
  if (Status s = start_segment_locked(seq); !s.is_ok()) {
    if (s.code() == Code::kNoSpace) {
      // Keep writing the old segment; try again at the next append.
      (void)fs_->remove_file(segment_path(seq));
      return s;
    }
    failed_ = s;
    return s;
  }
  return delete_released_segments_locked();
}

void Wal::mark_durable_locked(uint64_t seq) {
  durable_seq_ = std::max(durable_seq_, seq);
  size_t kept = 0;
  for (auto& pb : pending_bases_) {
    if (pb.seq <= durable_seq_) {
      GroupMeta& gm = groups_[pb.group];
      gm.durable_base = std::max(gm.durable_base, pb.index);
    } else {
      pending_bases_[kept++] = pb;
    }
  }
  pending_bases_.resize(kept);
}

void Wal::note_batch_locked(const WalBatch& batch, Segment& seg, uint64_t seq) {
  for (const auto& in : batch.infos_) {
    GroupMeta& gm = groups_[in.group];
    switch (in.type) {
      case RecordType::kEntry: {
        uint64_t& m = seg.max_entry_index[in.group];
        m = std::max(m, in.index);
        break;
      }
      case RecordType::kHardState: {
        raftpb::HardState hs;
        hs.set_group(in.group);
        hs.set_term(in.term);
        hs.set_commit(in.index);
        hs.set_vote(in.vote);
        gm.hard_state = hs;
        break;
      }
      case RecordType::kSnapshot:
      case RecordType::kCompact:
        if (!gm.has_base || in.index >= gm.base_index) {
          gm.has_base = true;
          gm.base_index = in.index;
          gm.base_term = in.term;
          gm.base_conf = in.conf;
          pending_bases_.push_back(PendingBase{seq, in.group, in.index});
        }
        break;
    }
  }
}

Result<uint64_t> Wal::append(const WalBatch& batch) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!failed_.is_ok()) return failed_;
  for (const auto& in : batch.infos_) {
    if (in.body_bytes > opts_.record_bytes_max) {
      return Status(Code::kInvalidArgument,
                    "wal record of " + std::to_string(in.body_bytes) + " bytes exceeds " +
                        "record_bytes_max " + std::to_string(opts_.record_bytes_max));
    }
  }
  if (batch.empty()) return appended_seq_;
  // Rotate when the segment is full, or early into the first spare.
  bool early = spare_ == Spare::kReady && !current_prefilled_;
  if (file_->size() > segments_.back().start_bytes &&
      (early || file_->size() + batch.buf_.size() > opts_.segment_bytes_max)) {
    bool fits = file_->size() + batch.buf_.size() <= opts_.segment_bytes_max;
    if (Status s = rotate_locked(); !s.is_ok()) {
      // An early rotation that found no space leaves the old segment in
      // use (rotate_locked synced it); the batch still fits there.
      if (!(early && fits && s.code() == Code::kNoSpace)) return s;
    }
  }
  uint64_t before = file_->size();
  if (Status s = file_->append(batch.buf_); !s.is_ok()) {
    // Undo a partial write so no half batch sits in front of later ones.
    if (Status t = file_->truncate(before); !t.is_ok()) {
      failed_ = Status(Code::kIoError, "wal: cannot undo a failed write: " + t.message());
      return failed_;
    }
    return s;
  }
  note_batch_locked(batch, segments_.back(), appended_seq_ + 1);
  want_spare_locked();
  stats_.appends++;
  stats_.records += batch.infos_.size();
  stats_.bytes += batch.buf_.size();
  return ++appended_seq_;
}

Status Wal::sync_to(uint64_t seq) {
  std::unique_lock<std::mutex> lock(mu_);
  QKV_CHECK_LE(seq, appended_seq_) << "sync_to a batch never appended";
  while (durable_seq_ < seq) {
    if (!failed_.is_ok()) return failed_;
    if (syncing_) {
      cv_.wait(lock);
      continue;
    }
    // Become the syncer for everything appended so far.
    syncing_ = true;
    uint64_t target = appended_seq_;
    std::shared_ptr<WritableFile> f = file_;
    lock.unlock();
    Status s = f->sync();
    lock.lock();
    syncing_ = false;
    if (!s.is_ok()) {
      failed_ = Status(Code::kIoError, "wal: sync failed, the node must stop: " + s.message());
    } else {
      mark_durable_locked(target);
      stats_.syncs++;
      if (Status d = delete_released_segments_locked(); !d.is_ok()) failed_ = d;
    }
    cv_.notify_all();
  }
  return failed_.is_ok() ? Status::ok() : failed_;
}

Status Wal::write(const WalBatch& batch) {
  auto seq = append(batch);
  if (!seq.is_ok()) return seq.status();
  return sync_to(*seq);
}

Status Wal::release(uint64_t group, uint64_t index) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!failed_.is_ok()) return failed_;
  GroupMeta& gm = groups_[group];
  gm.released = std::max(gm.released, index);
  return delete_released_segments_locked();
}

Status Wal::delete_released_segments_locked() {
  // Only a prefix of old segments is deleted, so the rest stays contiguous.
  size_t n = 0;
  while (n + 1 < segments_.size()) {
    const Segment& seg = segments_[n];
    bool needed = false;
    for (const auto& [g, max_index] : seg.max_entry_index) {
      auto it = groups_.find(g);
      if (it == groups_.end() ||
          std::min(it->second.released, it->second.durable_base) < max_index) {
        needed = true;
        break;
      }
    }
    if (needed) break;
    n++;
  }
  for (size_t i = 0; i < n; i++) {
    if (Status s = fs_->remove_file(segments_[i].path); !s.is_ok()) return s;
    stats_.segments_deleted++;
  }
  if (n > 0) {
    segments_.erase(segments_.begin(), segments_.begin() + static_cast<long>(n));
    if (Status s = fs_->sync_dir(dir_); !s.is_ok()) return s;
  }
  return Status::ok();
}

WalStats Wal::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  WalStats s = stats_;
  s.live_segments = segments_.size();
  s.spare_in_progress = spare_ == Spare::kWanted || spare_ == Spare::kFilling;
  return s;
}

uint64_t Wal::last_seq() const {
  std::lock_guard<std::mutex> lock(mu_);
  return appended_seq_;
}

uint64_t Wal::durable_seq() const {
  std::lock_guard<std::mutex> lock(mu_);
  return durable_seq_;
}

}  // namespace qkv::storage
