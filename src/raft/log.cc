#include "raft/log.h"

#include <algorithm>
#include <limits>

namespace qkv::raft {

// ---- Unstable ----

std::optional<uint64_t> Unstable::maybe_first_index() const {
  if (snapshot) return snapshot->metadata().index() + 1;
  return std::nullopt;
}

std::optional<uint64_t> Unstable::maybe_last_index() const {
  if (!entries.empty()) return offset + entries.size() - 1;
  if (snapshot) return snapshot->metadata().index();
  return std::nullopt;
}

std::optional<uint64_t> Unstable::maybe_term(uint64_t i) const {
  if (i < offset) {
    if (snapshot && snapshot->metadata().index() == i) return snapshot->metadata().term();
    return std::nullopt;
  }
  auto last = maybe_last_index();
  if (!last || i > *last) return std::nullopt;
  return entries[i - offset].term();
}

void Unstable::stable_to(uint64_t i, uint64_t t) {
  auto gt = maybe_term(i);
  if (!gt) return;
  // Only stabilize if the entry still has the term it had when handed out:
  // it may have been overwritten by a new leader since.
  if (*gt == t && i >= offset) {
    entries.erase(entries.begin(), entries.begin() + static_cast<long>(i + 1 - offset));
    offset = i + 1;
  }
}

void Unstable::stable_snap_to(uint64_t i) {
  if (snapshot && snapshot->metadata().index() == i) snapshot.reset();
}

void Unstable::restore(const Snapshot& s) {
  offset = s.metadata().index() + 1;
  entries.clear();
  snapshot = s;
}

void Unstable::truncate_and_append(const std::vector<Entry>& ents) {
  QKV_CHECK(!ents.empty());
  uint64_t after = ents[0].index();
  if (after == offset + entries.size()) {
    entries.insert(entries.end(), ents.begin(), ents.end());
  } else if (after <= offset) {
    // Replace the unstable entries entirely; the storage suffix from `after`
    // on is superseded too (the application truncates it when persisting).
    offset = after;
    entries = ents;
  } else {
    entries.resize(after - offset);
    entries.insert(entries.end(), ents.begin(), ents.end());
  }
}

std::vector<Entry> Unstable::slice(uint64_t lo, uint64_t hi) const {
  QKV_CHECK(lo <= hi && lo >= offset && hi <= offset + entries.size())
      << "unstable slice [" << lo << "," << hi << ") out of [" << offset << ","
      << offset + entries.size() << ")";
  return std::vector<Entry>(entries.begin() + static_cast<long>(lo - offset),
                            entries.begin() + static_cast<long>(hi - offset));
}

// ---- RaftLog ----

RaftLog::RaftLog(LogStorage* storage, uint64_t committed_bytes_per_ready_max)
    : storage_(storage), committed_bytes_per_ready_max_(committed_bytes_per_ready_max) {
  uint64_t first = storage_->first_index();
  uint64_t last = storage_->last_index();
  unstable_.offset = last + 1;
  committed_ = first - 1;
  applied_ = first - 1;
}

void RaftLog::set_applied_on_start(uint64_t applied) {
  if (applied > applied_) applied_ = applied;
  if (committed_ < applied_) committed_ = applied_;
}

uint64_t RaftLog::first_index() const {
  if (auto i = unstable_.maybe_first_index()) return *i;
  return storage_->first_index();
}

uint64_t RaftLog::last_index() const {
  if (auto i = unstable_.maybe_last_index()) return *i;
  return storage_->last_index();
}

uint64_t RaftLog::last_term() const {
  auto t = term(last_index());
  QKV_CHECK(t.is_ok()) << "term of the last index unavailable: " << t.status().to_string();
  return *t;
}

Result<uint64_t> RaftLog::term(uint64_t i) const {
  // The valid range is [first_index - 1, last_index].
  uint64_t dummy = first_index() - 1;
  if (i < dummy) return Status(Code::kCompacted, "term of a compacted entry");
  if (i > last_index()) return Status(Code::kUnavailable, "term beyond the last index");
  if (auto t = unstable_.maybe_term(i)) return *t;
  return storage_->term(i);
}

uint64_t RaftLog::zero_term_on_error(uint64_t i) const {
  auto t = term(i);
  return t.is_ok() ? *t : 0;
}

bool RaftLog::match_term(uint64_t i, uint64_t t) const {
  auto gt = term(i);
  return gt.is_ok() && *gt == t;
}

Status RaftLog::must_check_out_of_bounds(uint64_t lo, uint64_t hi) const {
  QKV_CHECK_LE(lo, hi) << "invalid slice";
  uint64_t fi = first_index();
  if (lo < fi) return Status(Code::kCompacted, "slice below the first index");
  uint64_t length = last_index() + 1 - fi;
  QKV_CHECK(hi <= fi + length) << "slice [" << lo << "," << hi << ") out of bound [" << fi
                               << "," << last_index() << "]";
  return Status::ok();
}

Result<std::vector<Entry>> RaftLog::entries(uint64_t lo, uint64_t bytes_max) const {
  if (lo > last_index()) return std::vector<Entry>{};
  return slice(lo, last_index() + 1, bytes_max);
}

Result<std::vector<Entry>> RaftLog::slice(uint64_t lo, uint64_t hi, uint64_t bytes_max) const {
  Status st = must_check_out_of_bounds(lo, hi);
  if (!st.is_ok()) return st;
  std::vector<Entry> out;
  if (lo == hi) return out;
  if (lo < unstable_.offset) {
    auto stored = storage_->entries(lo, std::min(hi, unstable_.offset), bytes_max);
    if (!stored.is_ok()) {
      if (stored.code() == Code::kCompacted) return stored.status();
      QKV_FATAL() << "storage entries [" << lo << "," << std::min(hi, unstable_.offset)
                  << ") unavailable: " << stored.status().to_string();
    }
    out = std::move(stored).value();
    // Stop if storage cut the batch short because of the byte limit.
    if (out.size() < std::min(hi, unstable_.offset) - lo) return out;
  }
  if (hi > unstable_.offset) {
    uint64_t from = std::max(lo, unstable_.offset);
    uint64_t bytes = 0;
    for (const auto& e : out) bytes += entry_bytes(e);
    for (uint64_t i = from; i < hi; i++) {
      const Entry& e = unstable_.entries[i - unstable_.offset];
      bytes += entry_bytes(e);
      if (!out.empty() && bytes > bytes_max) break;
      out.push_back(e);
    }
  }
  return out;
}

std::optional<uint64_t> RaftLog::maybe_append(uint64_t index, uint64_t log_term,
                                              uint64_t committed,
                                              const std::vector<Entry>& ents) {
  if (!match_term(index, log_term)) return std::nullopt;
  uint64_t last_new = index + ents.size();
  uint64_t ci = find_conflict(ents);
  if (ci != 0) {
    QKV_CHECK(ci > committed_) << "entry " << ci << " conflicts with committed entry (committed "
                               << committed_ << ")";
    std::vector<Entry> rest(ents.begin() + static_cast<long>(ci - (index + 1)), ents.end());
    append(rest);
  }
  commit_to(std::min(committed, last_new));
  return last_new;
}

uint64_t RaftLog::append(const std::vector<Entry>& ents) {
  if (ents.empty()) return last_index();
  uint64_t after = ents[0].index() - 1;
  QKV_CHECK(after >= committed_) << "append after " << after << " is below committed "
                                 << committed_;
  unstable_.truncate_and_append(ents);
  return last_index();
}

uint64_t RaftLog::find_conflict(const std::vector<Entry>& ents) const {
  for (const auto& e : ents) {
    if (!match_term(e.index(), e.term())) return e.index();
  }
  return 0;
}

std::pair<uint64_t, uint64_t> RaftLog::find_conflict_by_term(uint64_t i, uint64_t t) const {
  for (;;) {
    auto our = term(i);
    if (!our.is_ok()) return {i, 0};
    if (*our <= t) return {i, *our};
    if (i == 0) return {0, 0};
    i--;
  }
}

bool RaftLog::is_up_to_date(uint64_t last_i, uint64_t t) const {
  // Raft paper §5.4.1: compare last terms, then lengths.
  uint64_t lt = last_term();
  return t > lt || (t == lt && last_i >= last_index());
}

bool RaftLog::maybe_commit(uint64_t max_index, uint64_t t) {
  if (max_index > committed_ && zero_term_on_error(max_index) == t) {
    commit_to(max_index);
    return true;
  }
  return false;
}

void RaftLog::commit_to(uint64_t to_commit) {
  if (to_commit > committed_) {
    QKV_CHECK(to_commit <= last_index()) << "commit " << to_commit << " out of range [last "
                                         << last_index() << "]";
    committed_ = to_commit;
  }
}

void RaftLog::applied_to(uint64_t i) {
  if (i == 0) return;
  QKV_CHECK(i <= committed_ && i >= applied_)
      << "applied " << i << " out of range [prev applied " << applied_ << ", committed "
      << committed_ << "]";
  applied_ = i;
}

void RaftLog::restore(const Snapshot& s) {
  committed_ = s.metadata().index();
  unstable_.restore(s);
}

bool RaftLog::has_next_committed_entries() const {
  if (unstable_.snapshot) return false;  // apply the snapshot first
  uint64_t off = std::max(applied_ + 1, first_index());
  return committed_ + 1 > off;
}

std::vector<Entry> RaftLog::next_committed_entries() const {
  if (!has_next_committed_entries()) return {};
  uint64_t off = std::max(applied_ + 1, first_index());
  auto ents = slice(off, committed_ + 1, committed_bytes_per_ready_max_);
  QKV_CHECK(ents.is_ok()) << "committed entries unavailable: " << ents.status().to_string();
  return std::move(ents).value();
}

Result<std::shared_ptr<const Snapshot>> RaftLog::snapshot() const {
  if (unstable_.snapshot) return std::make_shared<const Snapshot>(*unstable_.snapshot);
  return storage_->snapshot();
}

uint64_t RaftLog::persisted_index() const {
  // With a snapshot not yet persisted, only the storage's own snapshot index
  // is known to match: storage entries above it may be superseded.
  if (unstable_.snapshot) return storage_->first_index() - 1;
  return unstable_.offset - 1;
}

}  // namespace qkv::raft
