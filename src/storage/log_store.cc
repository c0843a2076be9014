#include "storage/log_store.h"

namespace qkv::storage {

Result<std::unique_ptr<LogStore>> LogStore::open(FileSystem* fs, const std::string& dir,
                                                 const WalOptions& options,
                                                 WalRecovery* recovery) {
  WalRecovery local;
  WalRecovery* rec = recovery ? recovery : &local;
  auto wal = Wal::open(fs, dir, options, rec);
  if (!wal.is_ok()) return wal.status();
  std::unique_ptr<LogStore> store(new LogStore(std::move(wal).value()));
  for (auto& [g, rg] : rec->groups) {
    raft::MemoryStorage* ms = store->group(g);
    if (rg.base) {
      raft::Snapshot s;
      *s.mutable_metadata() = *rg.base;
      if (Status st = ms->apply_snapshot(s); !st.is_ok()) return st;
    }
    if (Status st = ms->append(rg.entries); !st.is_ok()) return st;
    if (rg.hard_state) ms->set_hard_state(*rg.hard_state);
  }
  return store;
}

raft::MemoryStorage* LogStore::group(uint64_t group) {
  auto& slot = groups_[group];
  if (!slot) slot = std::make_unique<raft::MemoryStorage>();
  return slot.get();
}

std::vector<uint64_t> LogStore::groups() const {
  std::vector<uint64_t> out;
  for (const auto& [g, ms] : groups_) out.push_back(g);
  return out;
}

Status LogStore::bootstrap(uint64_t group, const raft::Snapshot& snap) {
  WalBatch b;
  b.add_snapshot(group, snap.metadata());
  if (Status s = wal_->write(b); !s.is_ok()) return s;
  return this->group(group)->apply_snapshot(snap);
}

bool LogStore::must_write(uint64_t group, const raft::Ready& rd) {
  if (rd.snapshot || !rd.entries.empty()) return true;
  if (!rd.hard_state) return false;
  const raft::HardState prev = this->group(group)->initial_state().hard_state;
  return rd.hard_state->term() != prev.term() || rd.hard_state->vote() != prev.vote();
}

void LogStore::note_commit(uint64_t group, const raft::Ready& rd) {
  if (!rd.hard_state) return;
  this->group(group)->set_hard_state(*rd.hard_state);
  noted_commits_[group] = *rd.hard_state;
}

Status LogStore::stage(uint64_t group, const raft::Ready& rd) {
  raft::Ready copy;
  copy.snapshot = rd.snapshot;
  copy.entries = rd.entries;
  copy.hard_state = rd.hard_state;
  copy.must_sync = rd.must_sync;
  return stage_taking_entries(group, copy);
}

Status LogStore::stage_taking_entries(uint64_t group, raft::Ready& rd) {
  if (!rd.snapshot && rd.entries.empty() && !rd.hard_state) return Status::ok();
  // Commit indexes noted since the last batch go first: they are older than
  // anything staged now (recovery keeps a group's last hard state).
  for (const auto& [g, hs] : noted_commits_) batch_.add_hard_state(g, hs);
  noted_commits_.clear();
  need_sync_ = need_sync_ || rd.must_sync || must_write(group, rd);
  if (rd.snapshot) batch_.add_snapshot(group, rd.snapshot->metadata());
  for (const auto& e : rd.entries) batch_.add_entry(group, e);
  if (rd.hard_state) batch_.add_hard_state(group, *rd.hard_state);
  staged_.push_back(Staged{group, rd.snapshot, std::move(rd.entries), rd.hard_state});
  rd.entries.clear();
  return Status::ok();
}

Status LogStore::flush(bool* synced) {
  if (synced != nullptr) *synced = false;
  if (staged_.empty()) return Status::ok();
  Status s;
  if (need_sync_) {
    s = wal_->write(batch_);
    if (synced != nullptr) *synced = true;
  } else {
    s = wal_->append(batch_).status();  // durable with the next sync
  }
  need_sync_ = false;
  batch_.clear();
  if (!s.is_ok()) {
    staged_.clear();
    return s;
  }
  for (auto& st : staged_) {
    raft::MemoryStorage* ms = group(st.group);
    if (st.snapshot) {
      if (Status a = ms->apply_snapshot(*st.snapshot); !a.is_ok()) return a;
    }
    if (Status a = ms->append(st.entries); !a.is_ok()) return a;
    if (st.hard_state) ms->set_hard_state(*st.hard_state);
  }
  staged_.clear();
  return Status::ok();
}

Status LogStore::compact(uint64_t group, std::shared_ptr<const raft::Snapshot> snap) {
  raft::MemoryStorage* ms = this->group(group);
  const auto& meta = snap->metadata();
  if (meta.index() < ms->first_index()) return Status::ok();  // already compacted past it
  WalBatch b;
  b.add_compact(group, meta);
  if (Status s = wal_->write(b); !s.is_ok()) return s;
  auto created = ms->create_snapshot(meta.index(), meta.conf_state(), snap->data());
  if (!created.is_ok()) return created.status();
  if (Status s = ms->compact(meta.index()); !s.is_ok()) return s;
  return wal_->release(group, meta.index());
}

}  // namespace qkv::storage
