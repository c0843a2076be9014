#include "raft/storage.h"

namespace qkv::raft {

MemoryStorage::MemoryStorage() : snapshot_(std::make_shared<Snapshot>()) {
  ents_.emplace_back();  // dummy entry at index 0, term 0
}

InitialState MemoryStorage::initial_state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return InitialState{hard_state_, conf_state_};
}

Result<std::vector<Entry>> MemoryStorage::entries(uint64_t lo, uint64_t hi,
                                                  uint64_t bytes_max) const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t offset = ents_[0].index();
  if (lo <= offset) return Status(Code::kCompacted, "requested entries are compacted");
  if (hi > last_index_locked() + 1) {
    return Status(Code::kUnavailable, "requested entries beyond the last index");
  }
  QKV_CHECK_LE(lo, hi);
  std::vector<Entry> out;
  uint64_t bytes = 0;
  for (uint64_t i = lo; i < hi; i++) {
    const Entry& e = ents_[i - offset];
    bytes += entry_bytes(e);
    if (!out.empty() && bytes > bytes_max) break;
    out.push_back(e);
  }
  return out;
}

Result<uint64_t> MemoryStorage::term(uint64_t i) const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t offset = ents_[0].index();
  if (i < offset) return Status(Code::kCompacted, "term of a compacted entry");
  if (i - offset >= ents_.size()) return Status(Code::kUnavailable, "term beyond the last index");
  return ents_[i - offset].term();
}

uint64_t MemoryStorage::first_index() const {
  std::lock_guard<std::mutex> lock(mu_);
  return first_index_locked();
}

uint64_t MemoryStorage::last_index() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_index_locked();
}

Result<std::shared_ptr<const Snapshot>> MemoryStorage::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshot_;
}

void MemoryStorage::set_hard_state(const HardState& hs) {
  std::lock_guard<std::mutex> lock(mu_);
  hard_state_ = hs;
}

void MemoryStorage::set_conf_state(const ConfState& cs) {
  std::lock_guard<std::mutex> lock(mu_);
  conf_state_ = cs;
}

Status MemoryStorage::apply_snapshot(const Snapshot& snap) {
  std::lock_guard<std::mutex> lock(mu_);
  if (snap.metadata().index() < snapshot_->metadata().index()) {
    return Status(Code::kInvalidArgument, "snapshot older than the current one");
  }
  snapshot_ = std::make_shared<Snapshot>(snap);
  conf_state_ = snap.metadata().conf_state();
  ents_.clear();
  Entry dummy;
  dummy.set_index(snap.metadata().index());
  dummy.set_term(snap.metadata().term());
  ents_.push_back(std::move(dummy));
  return Status::ok();
}

Result<std::shared_ptr<const Snapshot>> MemoryStorage::create_snapshot(uint64_t i,
                                                                       const ConfState& cs,
                                                                       std::string data) {
  std::lock_guard<std::mutex> lock(mu_);
  if (i <= snapshot_->metadata().index()) {
    return Status(Code::kInvalidArgument, "snapshot index not above the current snapshot");
  }
  uint64_t offset = ents_[0].index();
  if (i > last_index_locked()) {
    return Status(Code::kUnavailable, "snapshot index beyond the last index");
  }
  auto s = std::make_shared<Snapshot>();
  s->mutable_metadata()->set_group(snapshot_->metadata().group());
  s->mutable_metadata()->set_index(i);
  s->mutable_metadata()->set_term(ents_[i - offset].term());
  *s->mutable_metadata()->mutable_conf_state() = cs;
  s->set_data(std::move(data));
  snapshot_ = s;
  return std::shared_ptr<const Snapshot>(s);
}

Status MemoryStorage::compact(uint64_t compact_index) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t offset = ents_[0].index();
  if (compact_index <= offset) return Status(Code::kCompacted, "already compacted");
  if (compact_index > last_index_locked()) {
    return Status(Code::kUnavailable, "compact index beyond the last index");
  }
  uint64_t k = compact_index - offset;
  Entry dummy;
  dummy.set_index(ents_[k].index());
  dummy.set_term(ents_[k].term());
  std::vector<Entry> rest;
  rest.reserve(ents_.size() - k);
  rest.push_back(std::move(dummy));
  for (uint64_t j = k + 1; j < ents_.size(); j++) rest.push_back(std::move(ents_[j]));
  ents_ = std::move(rest);
  return Status::ok();
}

Status MemoryStorage::append(const std::vector<Entry>& entries) {
  if (entries.empty()) return Status::ok();
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t first = first_index_locked();
  uint64_t last = entries.back().index();
  if (last < first) return Status::ok();  // entirely compacted
  for (size_t j = 1; j < entries.size(); j++) {
    QKV_CHECK_EQ(entries[j].index(), entries[j - 1].index() + 1) << "non-contiguous append";
  }
  // Skip the part already compacted.
  size_t skip = 0;
  if (first > entries[0].index()) skip = first - entries[0].index();
  uint64_t offset = entries[skip].index() - ents_[0].index();
  if (offset > ents_.size()) {
    return Status(Code::kInvalidArgument, "append leaves a gap in the log");
  }
  ents_.resize(offset);  // truncate the conflicting (or overwritten) suffix
  for (size_t j = skip; j < entries.size(); j++) ents_.push_back(entries[j]);
  return Status::ok();
}

}  // namespace qkv::raft
