#include "raft/raft.h"

#include <algorithm>

namespace qkv::raft {

namespace {

MessageType vote_resp_type(MessageType t) {
  switch (t) {
    case raftpb::MSG_VOTE: return raftpb::MSG_VOTE_RESP;
    case raftpb::MSG_PRE_VOTE: return raftpb::MSG_PRE_VOTE_RESP;
    default: QKV_FATAL() << "not a vote message: " << MessageType_Name(t);
  }
  return raftpb::MSG_NONE;
}

// Messages a leader may send before its own log write is durable (thesis
// §10.2.1): they only carry what the leader has, and its own log counts for
// commitment only after it is persisted.
bool is_leader_streaming_msg(MessageType t) {
  return t == raftpb::MSG_APP || t == raftpb::MSG_HEARTBEAT || t == raftpb::MSG_SNAP ||
         t == raftpb::MSG_TIMEOUT_NOW || t == raftpb::MSG_READ_INDEX_RESP;
}

}  // namespace

Raft::Raft(const Config& c)
    : cfg_(c),
      id_(c.id),
      group_(c.group),
      log_(c.storage, c.committed_bytes_per_ready_max),
      trk_(c.inflight_msgs_max),
      rng_(c.random_seed * 0x9E3779B97F4A7C15ULL + c.id) {
  InitialState st = c.storage->initial_state();
  auto r = restore_conf_state(st.conf_state, log_.last_index(), c.inflight_msgs_max);
  QKV_CHECK(r.is_ok()) << "bad conf state in storage: " << r.status().to_string();
  switch_to_config(std::move(r).value());
  const HardState& hs = st.hard_state;
  if (hs.term() != 0 || hs.vote() != 0 || hs.commit() != 0) {
    QKV_CHECK(hs.commit() >= log_.committed() && hs.commit() <= log_.last_index())
        << "hard state commit " << hs.commit() << " out of range [" << log_.committed() << ", "
        << log_.last_index() << "]";
    log_.commit_to(hs.commit());
    term_ = hs.term();
    vote_ = hs.vote();
  }
  // currentTerm is never below the term of the last log entry (a bootstrap
  // snapshot is at term 1 before any election).
  term_ = std::max(term_, log_.last_term());
  if (c.applied > 0) log_.set_applied_on_start(std::min(c.applied, log_.committed()));
  config_index_ = log_.applied();
  become_follower(term_, kNone);
}

// ---------------------------------------------------------------------------
// Roles

void Raft::reset(uint64_t term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNone;
  }
  lead_ = kNone;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  reset_randomized_election_timeout();
  abort_leader_transfer();
  trk_.reset_votes();
  uint64_t last = log_.last_index();
  for (auto& [id, pr] : trk_.progress) {
    bool learner = pr.is_learner;
    pr = Progress(trk_.inflight_max());
    pr.next = last + 1;
    pr.is_learner = learner;
    if (id == id_) pr.match = log_.persisted_index();
  }
  pending_conf_index_ = 0;
  uncommitted_bytes_ = 0;
  read_only_.reset();
  pending_reads_.clear();
  outgoing_snapshots_.clear();
  snapshot_stalls_.clear();
  lease_disabled_ = false;
}

void Raft::reset_randomized_election_timeout() {
  randomized_election_timeout_ =
      cfg_.election_timeout_ticks +
      static_cast<int>(rng_.uniform(static_cast<uint64_t>(cfg_.election_timeout_ticks)));
}

void Raft::become_follower(uint64_t term, uint64_t lead) {
  reset(term);
  step_fn_ = &Raft::step_follower;
  lead_ = lead;
  role_ = Role::kFollower;
}

void Raft::become_pre_candidate() {
  QKV_CHECK(role_ != Role::kLeader) << "invalid transition [leader -> pre-candidate]";
  // PreVote does not change the term or the vote (thesis §9.6).
  step_fn_ = &Raft::step_candidate;
  trk_.reset_votes();
  lead_ = kNone;
  role_ = Role::kPreCandidate;
}

void Raft::become_candidate() {
  QKV_CHECK(role_ != Role::kLeader) << "invalid transition [leader -> candidate]";
  reset(term_ + 1);
  step_fn_ = &Raft::step_candidate;
  vote_ = id_;
  role_ = Role::kCandidate;
}

void Raft::become_leader() {
  QKV_CHECK(role_ != Role::kFollower) << "invalid transition [follower -> leader]";
  reset(term_);
  step_fn_ = &Raft::step_leader;
  lead_ = id_;
  role_ = Role::kLeader;
  Progress& self = trk_.progress.at(id_);
  self.become_replicate();
  self.match = log_.persisted_index();
  self.next = log_.last_index() + 1;
  self.recent_active = true;
  // Any conf change in the log may be unapplied: allow no new one until
  // everything up to here is applied.
  pending_conf_index_ = log_.last_index();
  // A no-op entry of this term lets the leader commit the entries of earlier
  // terms (Raft paper §5.4.2, §8). It does not count against the cap.
  Entry e;
  append_entry(std::move(e));
}

bool Raft::promotable() const {
  auto it = trk_.progress.find(id_);
  return it != trk_.progress.end() && !it->second.is_learner && !log_.has_pending_snapshot() &&
         trk_.is_voter(id_);
}

// ---------------------------------------------------------------------------
// Ticks

void Raft::advance_clock(uint64_t ticks) { tick_count_ += ticks; }

void Raft::tick() {
  tick_count_++;
  tick_timeouts();
}

void Raft::tick_timeouts() {
  if (role_ == Role::kLeader) {
    tick_heartbeat();
  } else {
    tick_election();
  }
}

void Raft::tick_election() {
  election_elapsed_++;
  if (promotable() && election_elapsed_ >= randomized_election_timeout_) {
    election_elapsed_ = 0;
    hup(cfg_.pre_vote ? CampaignType::kPreElection : CampaignType::kElection);
  }
}

void Raft::tick_heartbeat() {
  heartbeat_elapsed_++;
  election_elapsed_++;
  if (election_elapsed_ >= cfg_.election_timeout_ticks) {
    election_elapsed_ = 0;
    if (cfg_.check_quorum) {
      Message m;
      m.set_type(raftpb::MSG_CHECK_QUORUM);
      m.set_from(id_);
      m.set_group(group_);
      (void)step(m);
    }
    // A transfer that did not finish within an election timeout is abandoned.
    if (role_ == Role::kLeader && lead_transferee_ != kNone) abort_leader_transfer();
  }
  if (role_ != Role::kLeader) return;
  if (heartbeat_elapsed_ >= cfg_.heartbeat_interval_ticks) {
    heartbeat_elapsed_ = 0;
    bcast_heartbeat();
  }
}

// ---------------------------------------------------------------------------
// Elections

void Raft::hup(CampaignType t) {
  if (role_ == Role::kLeader) return;
  if (!promotable()) return;
  // An unapplied conf change could make this node unpromotable; wait.
  if (log_.applied() < log_.committed()) {
    auto ents = log_.slice(log_.applied() + 1, log_.committed() + 1, UINT64_MAX);
    QKV_CHECK(ents.is_ok()) << "unapplied entries unavailable: " << ents.status().to_string();
    for (const auto& e : *ents) {
      if (e.type() == raftpb::ENTRY_CONF_CHANGE) return;
    }
  }
  campaign(t);
}

void Raft::campaign(CampaignType t) {
  uint64_t term;
  MessageType vote_msg;
  if (t == CampaignType::kPreElection) {
    become_pre_candidate();
    vote_msg = raftpb::MSG_PRE_VOTE;
    term = term_ + 1;  // the term we would use; not adopted until PreVote wins
  } else {
    become_candidate();
    vote_msg = raftpb::MSG_VOTE;
    term = term_;
  }
  if (poll(id_, vote_resp_type(vote_msg), true) == VoteResult::kWon) {
    // A single-voter group wins at once.
    if (t == CampaignType::kPreElection) {
      campaign(CampaignType::kElection);
    } else {
      become_leader();
      bcast_append();  // to learners, if any
    }
    return;
  }
  for (uint64_t id : trk_.voter_ids()) {
    if (id == id_) continue;
    Message m;
    m.set_to(id);
    m.set_term(term);
    m.set_type(vote_msg);
    m.set_index(log_.last_index());
    m.set_log_term(log_.last_term());
    if (t == CampaignType::kTransfer) m.set_context(kCampaignTransfer);
    send(std::move(m));
  }
}

VoteResult Raft::poll(uint64_t id, MessageType t, bool granted) {
  trk_.record_vote(id, granted);
  return std::get<2>(trk_.tally_votes());
}

Status Raft::campaign_now() {
  // Campaigning is voting for oneself: inside a leader's lease that would
  // break this node's promise not to vote (the leader may be serving lease
  // reads on the strength of it).
  if (cfg_.read_mode == ReadMode::kLease && in_lease()) {
    return Status(Code::kInvalidArgument,
                  "refusing to campaign: a leader's read lease is in force "
                  "(use transfer_leader)");
  }
  hup(cfg_.pre_vote ? CampaignType::kPreElection : CampaignType::kElection);
  return Status::ok();
}

bool Raft::in_lease() const {
  if (!cfg_.check_quorum) return false;
  if (lead_ != kNone && election_elapsed_ < cfg_.election_timeout_ticks) return true;
  // After a restart this node may have promised a leader, before crashing,
  // not to vote for a while; keep the promise (needed for lease reads).
  return cfg_.read_mode == ReadMode::kLease &&
         tick_count_ < static_cast<uint64_t>(cfg_.election_timeout_ticks);
}

void Raft::learn_commit(uint64_t commit, uint64_t commit_term) {
  // A peer's commit index is a fact about the whole group. If our entry at
  // that index has the same term, our log up to it is identical to the
  // peer's (Log Matching, Raft paper §5.3), so it is committed here too.
  // Without this, voters of a joint configuration whose commit index lags
  // (the leader that told them died) could wait forever for the vote of a
  // node that already applied its own removal and no longer campaigns.
  if (commit > log_.committed() && commit_term != 0 && log_.match_term(commit, commit_term)) {
    log_.commit_to(commit);
  }
}

void Raft::handle_vote_request(const Message& m) {
  // Raft paper §5.2, §5.4.1: one vote per term, first come first served,
  // and only for a candidate whose log is at least as up to date.
  bool can_vote = vote_ == m.from() || (vote_ == kNone && lead_ == kNone) ||
                  (m.type() == raftpb::MSG_PRE_VOTE && m.term() > term_);
  bool log_ok = cfg_.TEST_vote_without_log_check || log_.is_up_to_date(m.index(), m.log_term());
  Message r;
  r.set_to(m.from());
  r.set_type(vote_resp_type(m.type()));
  // Tell the candidate what we know is committed (see learn_commit()).
  r.set_commit(log_.committed());
  r.set_log_term(log_.zero_term_on_error(log_.committed()));
  if (can_vote && log_ok) {
    // A granted PreVote carries the term of the request, so the
    // pre-candidate can count it; a real vote is at our (equal) term.
    r.set_term(m.term());
    send(std::move(r));
    if (m.type() == raftpb::MSG_VOTE) {
      election_elapsed_ = 0;
      vote_ = m.from();
    }
  } else {
    r.set_term(term_);
    r.set_reject(true);
    send(std::move(r));
  }
}

// ---------------------------------------------------------------------------
// Step

Status Raft::step(const Message& m) {
  if (m.group() != group_) {
    return Status(Code::kStaleMessage, "message for group " + std::to_string(m.group()) +
                                           " stepped into group " + std::to_string(group_));
  }
  if (m.term() == 0) {
    // Local message (or a message that does not carry a term).
  } else if (m.term() > term_) {
    if (m.type() == raftpb::MSG_VOTE || m.type() == raftpb::MSG_PRE_VOTE) {
      bool force = m.context() == kCampaignTransfer;
      if (!force && in_lease()) {
        // We heard from a leader within the minimum election timeout: ignore
        // the request, the candidate is likely partitioned (thesis §4.2.3).
        return Status::ok();
      }
    }
    if (m.type() == raftpb::MSG_PRE_VOTE) {
      // Never change our term in response to a PreVote.
    } else if (m.type() == raftpb::MSG_PRE_VOTE_RESP && !m.reject()) {
      // A granted PreVote carries our future term; we adopt it on winning.
    } else {
      bool from_leader = m.type() == raftpb::MSG_APP || m.type() == raftpb::MSG_HEARTBEAT ||
                         m.type() == raftpb::MSG_SNAP;
      become_follower(m.term(), from_leader ? m.from() : kNone);
    }
  } else if (m.term() < term_) {
    if (m.type() == raftpb::MSG_HEARTBEAT || m.type() == raftpb::MSG_APP ||
        m.type() == raftpb::MSG_SNAP) {
      // A stale leader: tell it our term so it steps down (Raft paper
      // Figure 2: reply false with currentTerm). Never stay silent: a node
      // whose term ran ahead but that cannot campaign (a new member that
      // has not received its configuration yet) would otherwise wait
      // forever for a leader that never learns the term (found by the
      // simulator, seed 81574; the disruption this may cause without
      // PreVote is the price of liveness).
      Message r;
      r.set_to(m.from());
      r.set_type(raftpb::MSG_APP_RESP);
      send(std::move(r));
    } else if (m.type() == raftpb::MSG_PRE_VOTE || m.type() == raftpb::MSG_VOTE) {
      // Reject with our term (Raft paper Figure 2) so the candidate learns
      // it: a candidate stuck below the term of a voter it needs would
      // otherwise never be elected (found by the simulator).
      Message r;
      r.set_to(m.from());
      r.set_term(term_);
      r.set_type(vote_resp_type(m.type()));
      r.set_reject(true);
      r.set_commit(log_.committed());
      r.set_log_term(log_.zero_term_on_error(log_.committed()));
      send(std::move(r));
    }
    return Status::ok();
  }

  if (m.type() == raftpb::MSG_VOTE_RESP || m.type() == raftpb::MSG_PRE_VOTE_RESP) {
    learn_commit(m.commit(), m.log_term());
  }
  switch (m.type()) {
    case raftpb::MSG_HUP:
      hup(cfg_.pre_vote ? CampaignType::kPreElection : CampaignType::kElection);
      break;
    case raftpb::MSG_VOTE:
    case raftpb::MSG_PRE_VOTE:
      handle_vote_request(m);
      break;
    default:
      (this->*step_fn_)(m);
  }
  return Status::ok();
}

void Raft::step_leader(const Message& m) {
  switch (m.type()) {
    case raftpb::MSG_BEAT:
      bcast_heartbeat();
      return;
    case raftpb::MSG_CHECK_QUORUM:
      if (!trk_.quorum_active(id_)) {
        // Thesis §6.2: a leader that has not heard from a quorum within an
        // election timeout steps down, so clients can find the real leader.
        become_follower(term_, kNone);
        return;
      }
      for (auto& [id, pr] : trk_.progress) {
        if (id != id_) pr.recent_active = false;
      }
      return;
    case raftpb::MSG_READ_INDEX:
      handle_read_index(m);
      return;
    case raftpb::MSG_TRANSFER_LEADER:
      handle_transfer_leader(m.index());
      return;
    default:
      break;
  }
  auto it = trk_.progress.find(m.from());
  if (it == trk_.progress.end()) return;  // not (or no longer) a member
  Progress& pr = it->second;
  switch (m.type()) {
    case raftpb::MSG_APP_RESP:
      handle_append_response(m, pr);
      break;
    case raftpb::MSG_HEARTBEAT_RESP:
      handle_heartbeat_response(m, pr);
      break;
    case raftpb::MSG_SNAP_RESP:
      handle_snapshot_response(m, pr);
      break;
    case raftpb::MSG_UNREACHABLE:
      // The transport failed to deliver: stop pipelining until a probe succeeds.
      if (pr.state == ProgressState::kReplicate) pr.become_probe();
      break;
    default:
      break;  // vote responses of a term we already won, etc.
  }
}

void Raft::step_candidate(const Message& m) {
  MessageType my_resp =
      role_ == Role::kPreCandidate ? raftpb::MSG_PRE_VOTE_RESP : raftpb::MSG_VOTE_RESP;
  switch (m.type()) {
    case raftpb::MSG_APP:
      become_follower(m.term(), m.from());  // a leader of our term exists
      handle_append_entries(m);
      return;
    case raftpb::MSG_HEARTBEAT:
      become_follower(m.term(), m.from());
      handle_heartbeat(m);
      return;
    case raftpb::MSG_SNAP:
      become_follower(m.term(), m.from());
      handle_snapshot_chunk(m);
      return;
    case raftpb::MSG_READ_INDEX_RESP:
      // A response to a read asked while we were a follower of this term.
      read_states_.push_back(ReadState{m.index(), m.context()});
      return;
    default:
      break;
  }
  if (m.type() != my_resp) return;
  switch (poll(m.from(), m.type(), !m.reject())) {
    case VoteResult::kWon:
      if (role_ == Role::kPreCandidate) {
        campaign(CampaignType::kElection);
      } else {
        become_leader();
        bcast_append();
      }
      break;
    case VoteResult::kLost:
      // A rejection carries the voter's term, which may be higher.
      become_follower(term_, kNone);
      break;
    case VoteResult::kPending:
      break;
  }
}

void Raft::step_follower(const Message& m) {
  switch (m.type()) {
    case raftpb::MSG_APP:
      election_elapsed_ = 0;
      lead_ = m.from();
      handle_append_entries(m);
      break;
    case raftpb::MSG_HEARTBEAT:
      election_elapsed_ = 0;
      lead_ = m.from();
      handle_heartbeat(m);
      break;
    case raftpb::MSG_SNAP:
      election_elapsed_ = 0;
      lead_ = m.from();
      handle_snapshot_chunk(m);
      break;
    case raftpb::MSG_TRANSFER_LEADER:
    case raftpb::MSG_READ_INDEX:
      if (lead_ == kNone) return;  // dropped; the caller times out
      {
        Message f = m;
        f.set_to(lead_);
        f.set_term(0);
        send(std::move(f));
      }
      break;
    case raftpb::MSG_TIMEOUT_NOW:
      // Leader transfer (thesis §3.10): campaign at once, skipping PreVote
      // and the followers' lease.
      hup(CampaignType::kTransfer);
      break;
    case raftpb::MSG_READ_INDEX_RESP:
      read_states_.push_back(ReadState{m.index(), m.context()});
      break;
    default:
      break;
  }
}

// ---------------------------------------------------------------------------
// Sending

void Raft::send(Message m) {
  m.set_group(group_);
  if (m.from() == kNone) m.set_from(id_);
  MessageType t = m.type();
  if (t == raftpb::MSG_VOTE || t == raftpb::MSG_VOTE_RESP || t == raftpb::MSG_PRE_VOTE ||
      t == raftpb::MSG_PRE_VOTE_RESP) {
    QKV_CHECK(m.term() != 0) << "vote message without a term: " << MessageType_Name(t);
  } else if (t == raftpb::MSG_READ_INDEX || t == raftpb::MSG_TRANSFER_LEADER) {
    // Forwarded requests carry no term: any leader may answer.
    m.set_term(0);
  } else {
    m.set_term(term_);
  }
  if (role_ == Role::kLeader && is_leader_streaming_msg(t)) {
    msgs_.push_back(std::move(m));
  } else {
    msgs_after_persist_.push_back(std::move(m));
  }
}

Proposed Raft::append_entry(Entry e) {
  uint64_t index = log_.last_index() + 1;
  e.set_group(group_);
  e.set_term(term_);
  e.set_index(index);
  log_.append({std::move(e)});
  // The leader's own progress advances when the entry is persisted
  // (on_persisted), not here.
  return Proposed{index, term_};
}

void Raft::bcast_append() {
  for (auto& [id, pr] : trk_.progress) {
    if (id == id_) continue;
    maybe_send_append(id, true);
  }
}

// Tells every follower a new commit index. A follower in Replicate state
// that was sent everything gets an unanswered commit_only append (its
// answer would repeat what the leader knows); the others get what
// maybe_send_append() sends them.
void Raft::bcast_commit() {
  for (auto& [id, pr] : trk_.progress) {
    if (id == id_) continue;
    if (pr.state != ProgressState::kReplicate || pr.is_paused() ||
        pr.next <= log_.last_index()) {
      maybe_send_append(id, true);
      continue;
    }
    // Sent everything: the append names our last entry.
    Message m = append_to(id, log_.last_index(), log_.last_term());
    m.set_commit_only(true);
    send(std::move(m));
  }
}

Message Raft::append_to(uint64_t to, uint64_t prev, uint64_t prev_term) const {
  Message m;
  m.set_to(to);
  m.set_type(raftpb::MSG_APP);
  m.set_index(prev);
  m.set_log_term(prev_term);
  m.set_commit(log_.committed());
  return m;
}

bool Raft::maybe_send_append(uint64_t to, bool send_if_empty) {
  Progress& pr = trk_.progress.at(to);
  if (pr.is_paused()) return false;
  uint64_t prev = pr.next - 1;
  auto prev_term = log_.term(prev);
  auto ents = log_.entries(pr.next, cfg_.msg_bytes_max);
  if (!prev_term.is_ok() || !ents.is_ok()) {
    // The entries the follower needs are compacted.
    return maybe_send_snapshot(to, pr);
  }
  if (ents->empty() && !send_if_empty) return false;
  Message m = append_to(to, prev, *prev_term);
  for (auto& e : *ents) *m.add_entries() = std::move(e);
  if (m.entries_size() > 0) {
    uint64_t last = m.entries(m.entries_size() - 1).index();
    if (pr.state == ProgressState::kReplicate) {
      pr.optimistic_update(last);
      pr.inflights.add(last);
    }
  }
  if (pr.state == ProgressState::kProbe) pr.probe_sent = true;
  send(std::move(m));
  return true;
}

bool Raft::maybe_send_snapshot(uint64_t to, Progress& pr) {
  if (!pr.recent_active) return false;  // wait until it responds at all
  auto snap = log_.snapshot();
  if (!snap.is_ok()) {
    QKV_CHECK(snap.code() == Code::kSnapshotTemporarilyUnavailable)
        << "snapshot unavailable: " << snap.status().to_string();
    return false;
  }
  QKV_CHECK((*snap)->metadata().index() != 0) << "need a non-empty snapshot";
  outgoing_snapshots_[to] = *snap;
  snapshot_stalls_[to] = 0;
  pr.become_snapshot((*snap)->metadata().index());
  send_snapshot_chunks(to, pr);
  return true;
}

void Raft::send_snapshot_chunks(uint64_t to, Progress& pr) {
  auto it = outgoing_snapshots_.find(to);
  if (it == outgoing_snapshots_.end()) return;
  const Snapshot& snap = *it->second;
  const std::string& data = snap.data();
  uint64_t size = data.size();
  uint64_t chunk = std::max<uint64_t>(cfg_.snapshot_chunk_bytes, 1);
  uint64_t window = chunk * std::max<uint64_t>(cfg_.snapshot_inflight_chunks_max, 1);
  // snapshot_sent_bytes == size + 1 marks "the final chunk was sent".
  while (pr.snapshot_sent_bytes <= size &&
         pr.snapshot_sent_bytes - pr.snapshot_acked_bytes < window) {
    uint64_t off = pr.snapshot_sent_bytes;
    uint64_t end = std::min(size, off + chunk);
    Message m;
    m.set_to(to);
    m.set_type(raftpb::MSG_SNAP);
    *m.mutable_snapshot() = snap.metadata();
    m.set_index(snap.metadata().index());
    m.set_snapshot_offset(off);
    m.set_snapshot_size(size);
    m.set_snapshot_chunk(data.substr(off, end - off));
    m.set_commit(log_.committed());
    send(std::move(m));
    pr.snapshot_sent_bytes = end == size ? size + 1 : end;
  }
}

void Raft::bcast_heartbeat() {
  std::string ctx = read_only_.last_pending_request_ctx();
  for (auto& [id, pr] : trk_.progress) {
    if (id == id_) continue;
    send_heartbeat(id, ctx);
  }
}

void Raft::send_heartbeat(uint64_t to, const std::string& ctx) {
  const Progress& pr = trk_.progress.at(to);
  // Never tell a follower to commit past what it is known to hold.
  Message m;
  m.set_to(to);
  m.set_type(raftpb::MSG_HEARTBEAT);
  m.set_commit(std::min(pr.match, log_.committed()));
  m.set_context(ctx);
  m.set_sent_tick(tick_count_);
  send(std::move(m));
}

bool Raft::maybe_commit() {
  uint64_t mci = trk_.committed();
  if (cfg_.TEST_commit_old_term_by_counting) {
    // Deliberately wrong (Raft paper §5.4.2, Figure 8): commit whatever a
    // majority holds, whatever its term.
    if (mci > log_.committed() && mci <= log_.last_index()) {
      log_.commit_to(mci);
      return true;
    }
    return false;
  }
  // Only entries of the current term are committed by counting replicas
  // (Raft paper §5.4.2); earlier ones are committed with them.
  return log_.maybe_commit(mci, term_);
}

void Raft::on_commit_advanced() {
  if (!committed_entry_in_current_term() || pending_reads_.empty()) return;
  auto reads = std::exchange(pending_reads_, {});
  for (const auto& m : reads) send_read_index_response(m);
}

// ---------------------------------------------------------------------------
// Follower side of replication

void Raft::handle_append_entries(const Message& m) {
  Message r;
  r.set_to(m.from());
  r.set_type(raftpb::MSG_APP_RESP);
  if (m.index() < log_.committed()) {
    // Everything up to our commit index is known to match.
    r.set_index(log_.committed());
    send(std::move(r));
    return;
  }
  std::vector<Entry> ents(m.entries().begin(), m.entries().end());
  if (auto last_new = log_.maybe_append(m.index(), m.log_term(), m.commit(), ents)) {
    if (m.commit_only() && ents.empty()) return;  // nothing to tell (raft.proto)
    r.set_index(*last_new);
    send(std::move(r));
    return;
  }
  // Consistency check failed (Raft paper §5.3). Help the leader skip back
  // over a whole term at once: the largest index <= min(m.index, last) whose
  // term is <= m.log_term.
  uint64_t hint_index = std::min(m.index(), log_.last_index());
  auto [idx, t] = log_.find_conflict_by_term(hint_index, m.log_term());
  r.set_index(m.index());
  r.set_reject(true);
  r.set_reject_hint(idx);
  r.set_log_term(t);
  send(std::move(r));
}

void Raft::handle_heartbeat(const Message& m) {
  log_.commit_to(m.commit());
  Message r;
  r.set_to(m.from());
  r.set_type(raftpb::MSG_HEARTBEAT_RESP);
  r.set_context(m.context());
  r.set_sent_tick(m.sent_tick());
  send(std::move(r));
}

void Raft::handle_snapshot_chunk(const Message& m) {
  const auto& meta = m.snapshot();
  auto reply = [&](bool reject, uint64_t held) {
    Message r;
    r.set_to(m.from());
    r.set_type(raftpb::MSG_SNAP_RESP);
    r.set_index(meta.index());
    r.set_reject(reject);
    r.set_snapshot_offset(held);
    send(std::move(r));
  };
  if (meta.index() <= log_.committed()) {
    // Already have everything it covers.
    incoming_snapshot_.reset();
    Message r;
    r.set_to(m.from());
    r.set_type(raftpb::MSG_APP_RESP);
    r.set_index(log_.committed());
    send(std::move(r));
    return;
  }
  if (!incoming_snapshot_ || incoming_snapshot_->meta.index() != meta.index() ||
      incoming_snapshot_->meta.term() != meta.term() ||
      incoming_snapshot_->size != m.snapshot_size()) {
    if (m.snapshot_offset() != 0) {
      reply(true, 0);  // restart the transfer from the beginning
      return;
    }
    incoming_snapshot_ = IncomingSnapshot{meta, m.snapshot_size(), {}};
  }
  IncomingSnapshot& in = *incoming_snapshot_;
  uint64_t held = in.data.size();
  uint64_t off = m.snapshot_offset();
  const std::string& chunk = m.snapshot_chunk();
  if (off > held) {
    reply(true, held);  // a chunk went missing; resume from what we hold
    return;
  }
  uint64_t end = off + chunk.size();
  if (end > in.size) {
    incoming_snapshot_.reset();
    reply(true, 0);
    return;
  }
  if (end > held) in.data.append(chunk, held - off, end - held);
  if (in.data.size() < in.size) {
    reply(false, in.data.size());
    return;
  }
  Snapshot s;
  *s.mutable_metadata() = in.meta;
  s.set_data(std::move(in.data));
  incoming_snapshot_.reset();
  Message r;
  r.set_to(m.from());
  r.set_type(raftpb::MSG_APP_RESP);
  if (restore(s)) {
    r.set_index(log_.last_index());
  } else {
    r.set_index(log_.committed());
  }
  send(std::move(r));
}

bool Raft::restore(const Snapshot& s) {
  const auto& meta = s.metadata();
  if (meta.index() <= log_.committed()) return false;
  QKV_CHECK(role_ == Role::kFollower) << "snapshot restored by a " << role_name(role_);
  if (log_.match_term(meta.index(), meta.term())) {
    // Our log already has the snapshot's last entry: just commit up to it.
    log_.commit_to(meta.index());
    return false;
  }
  log_.restore(s);
  config_index_ = meta.index();
  auto r = restore_conf_state(meta.conf_state(), log_.last_index(), trk_.inflight_max());
  QKV_CHECK(r.is_ok()) << "snapshot with a bad conf state: " << r.status().to_string();
  switch_to_config(std::move(r).value());
  return true;
}

// ---------------------------------------------------------------------------
// Leader side of replication

void Raft::handle_append_response(const Message& m, Progress& pr) {
  pr.recent_active = true;
  if (m.reject()) {
    uint64_t next_probe = m.reject_hint();
    if (m.log_term() > 0) {
      // The follower's entry at reject_hint has term log_term: skip every
      // index where our term is larger (they cannot match).
      next_probe = log_.find_conflict_by_term(m.reject_hint(), m.log_term()).first;
    }
    if (pr.maybe_decr_to(m.index(), next_probe)) {
      if (pr.state == ProgressState::kReplicate) pr.become_probe();
      maybe_send_append(m.from(), true);
    }
    return;
  }
  bool was_paused = pr.is_paused();
  bool updated = pr.maybe_update(m.index());
  if (updated || (pr.match == m.index() && pr.state == ProgressState::kProbe)) {
    switch (pr.state) {
      case ProgressState::kProbe:
        pr.become_replicate();
        break;
      case ProgressState::kSnapshot:
        if (pr.match >= pr.pending_snapshot) {
          outgoing_snapshots_.erase(m.from());
          pr.become_probe();
          pr.become_replicate();
        }
        break;
      case ProgressState::kReplicate:
        pr.inflights.free_le(m.index());
        break;
    }
    if (maybe_commit()) {
      on_commit_advanced();
      bcast_commit();
    } else if (was_paused) {
      maybe_send_append(m.from(), true);
    }
    // Pipeline: keep sending while the window has room.
    while (maybe_send_append(m.from(), false)) {
    }
    if (m.from() == lead_transferee_ && pr.match == log_.last_index()) {
      send_timeout_now(m.from());
    }
  }
}

void Raft::handle_heartbeat_response(const Message& m, Progress& pr) {
  pr.recent_active = true;
  pr.probe_sent = false;
  pr.last_ack_tick = std::max(pr.last_ack_tick, m.sent_tick());
  pr.has_ack_tick = true;
  if (pr.state == ProgressState::kReplicate && pr.inflights.full()) {
    // A full window with no progress may mean a lost MSG_APP: free a slot so
    // the next append reveals the gap.
    pr.inflights.free_first_one();
  }
  if (pr.state == ProgressState::kSnapshot) {
    int& stalls = snapshot_stalls_[m.from()];
    if (++stalls >= 2) {
      // No snapshot progress across two heartbeats: resend from what the
      // follower acknowledged (chunks were lost or the connection broke).
      stalls = 0;
      pr.snapshot_sent_bytes = pr.snapshot_acked_bytes;
      send_snapshot_chunks(m.from(), pr);
    }
  } else if (pr.match < log_.last_index()) {
    maybe_send_append(m.from(), true);
  }
  if (m.context().empty()) return;
  const auto* acks = read_only_.recv_ack(m.from(), m.context());
  if (acks == nullptr || trk_.vote_result(*acks) != VoteResult::kWon) return;
  for (auto& rs : read_only_.advance(m.context())) respond_read_index(rs.req, rs.index);
}

void Raft::handle_snapshot_response(const Message& m, Progress& pr) {
  pr.recent_active = true;
  if (pr.state != ProgressState::kSnapshot || m.index() != pr.pending_snapshot) return;
  snapshot_stalls_[m.from()] = 0;
  if (m.reject()) {
    pr.snapshot_acked_bytes = m.snapshot_offset();
    pr.snapshot_sent_bytes = m.snapshot_offset();
  } else {
    pr.snapshot_acked_bytes = std::max(pr.snapshot_acked_bytes, m.snapshot_offset());
    if (pr.snapshot_sent_bytes < pr.snapshot_acked_bytes) {
      pr.snapshot_sent_bytes = pr.snapshot_acked_bytes;
    }
  }
  send_snapshot_chunks(m.from(), pr);
}

// ---------------------------------------------------------------------------
// Proposals

Result<Proposed> Raft::propose(std::string data, EntryType type) {
  if (role_ != Role::kLeader) {
    if (lead_ != kNone) {
      return Status(Code::kNotLeader, "leader is " + std::to_string(lead_));
    }
    return Status(Code::kNoLeader, "no leader is known");
  }
  if (!trk_.progress.count(id_)) return Status(Code::kNotLeader, "this node was removed");
  if (lead_transferee_ != kNone) {
    return Status(Code::kTransferInProgress,
                  "leadership transfer to " + std::to_string(lead_transferee_) + " in progress");
  }
  Entry e;
  e.set_type(type);
  e.set_data(std::move(data));
  if (!increase_uncommitted(e)) {
    return Status(Code::kUncommittedLimit, "uncommitted log bytes at the limit of " +
                                               std::to_string(cfg_.uncommitted_bytes_max));
  }
  Proposed p = append_entry(std::move(e));
  if (cfg_.coalesce_appends) {
    appends_pending_ = true;
  } else {
    bcast_append();
  }
  return p;
}

void Raft::flush_appends() {
  if (!appends_pending_) return;
  appends_pending_ = false;
  if (role_ != Role::kLeader) return;
  // Only what is still unsent: an acknowledgement since may have sent the
  // new entries already (pipelining in handle_append_response).
  for (auto& [id, pr] : trk_.progress) {
    if (id != id_) maybe_send_append(id, false);
  }
}

Status Raft::check_conf_change(const ConfChange& cc) const {
  if (pending_conf_index_ > log_.applied()) {
    return Status(Code::kConfChangeInProgress,
                  "a membership change at index " + std::to_string(pending_conf_index_) +
                      " is not applied yet (applied " + std::to_string(log_.applied()) + ")");
  }
  bool joint = trk_.config.joint();
  if (joint && !is_leave_joint(cc)) {
    return Status(Code::kInvalidArgument, "must leave the joint configuration first");
  }
  if (!joint && is_leave_joint(cc)) {
    return Status(Code::kInvalidArgument, "not in a joint configuration");
  }
  // Dry run: the change must be valid against the current configuration,
  // which reflects every change in the log (pending_conf_index <= applied).
  auto r = change_config(trk_, log_.last_index(), cc);
  return r.is_ok() ? Status::ok() : r.status();
}

Result<Proposed> Raft::propose_conf_change(const ConfChange& cc) {
  if (role_ == Role::kLeader && lead_transferee_ == kNone && trk_.progress.count(id_)) {
    if (Status st = check_conf_change(cc); !st.is_ok()) return st;
  }
  std::string data;
  QKV_CHECK(cc.SerializeToString(&data));
  auto p = propose(std::move(data), raftpb::ENTRY_CONF_CHANGE);
  if (p.is_ok()) pending_conf_index_ = p->index;
  return p;
}

bool Raft::increase_uncommitted(const Entry& e) {
  uint64_t s = entry_bytes(e);
  if (cfg_.uncommitted_bytes_max > 0 && uncommitted_bytes_ > 0 &&
      uncommitted_bytes_ + s > cfg_.uncommitted_bytes_max) {
    return false;  // one entry is always allowed, so a big one cannot stall forever
  }
  uncommitted_bytes_ += s;
  return true;
}

void Raft::reduce_uncommitted(uint64_t s) {
  uncommitted_bytes_ = s > uncommitted_bytes_ ? 0 : uncommitted_bytes_ - s;
}

// ---------------------------------------------------------------------------
// Reads (thesis §6.4)

Status Raft::read_index(std::string ctx) {
  Message m;
  m.set_type(raftpb::MSG_READ_INDEX);
  m.set_from(id_);
  m.set_group(group_);
  m.set_context(std::move(ctx));
  if (role_ == Role::kLeader) {
    handle_read_index(m);
    return Status::ok();
  }
  if (lead_ == kNone) return Status(Code::kNoLeader, "no leader is known");
  m.set_to(lead_);
  send(std::move(m));
  return Status::ok();
}

bool Raft::committed_entry_in_current_term() const {
  return log_.zero_term_on_error(log_.committed()) == term_;
}

void Raft::handle_read_index(const Message& m) {
  // A new leader's commit index may lag what earlier leaders committed
  // until it commits an entry of its own term (thesis §6.4 step 1).
  if (!committed_entry_in_current_term()) {
    pending_reads_.push_back(m);
    return;
  }
  send_read_index_response(m);
}

bool Raft::lease_valid() const {
  if (role_ != Role::kLeader || cfg_.read_mode != ReadMode::kLease || !cfg_.check_quorum ||
      lease_disabled_ || lead_transferee_ != kNone) {
    return false;
  }
  // Followers that acknowledged a heartbeat sent at tick t will not vote for
  // anyone else before t + election_timeout (in_lease()), so no other leader
  // can exist before then.
  uint64_t t = trk_.quorum_ack_tick(id_, tick_count_);
  if (t == 0 && !trk_.is_singleton()) return false;
  uint64_t lease_end = t + static_cast<uint64_t>(cfg_.election_timeout_ticks) -
                       static_cast<uint64_t>(cfg_.lease_margin_ticks);
  return tick_count_ < lease_end;
}

void Raft::send_read_index_response(const Message& m) {
  if (trk_.is_singleton() && trk_.is_voter(id_)) {
    respond_read_index(m, log_.committed());
    return;
  }
  if (lease_valid()) {
    respond_read_index(m, log_.committed());
    return;
  }
  read_only_.add_request(log_.committed(), m);
  // The leader acknowledges itself.
  read_only_.recv_ack(id_, m.context());
  bcast_heartbeat();
}

void Raft::respond_read_index(const Message& req, uint64_t index) {
  if (req.from() == kNone || req.from() == id_) {
    read_states_.push_back(ReadState{index, req.context()});
    return;
  }
  Message r;
  r.set_to(req.from());
  r.set_type(raftpb::MSG_READ_INDEX_RESP);
  r.set_index(index);
  r.set_context(req.context());
  send(std::move(r));
}

// ---------------------------------------------------------------------------
// Leader transfer (thesis §3.10)

Status Raft::transfer_leader(uint64_t transferee) {
  if (role_ == Role::kLeader) {
    if (!trk_.is_voter(transferee)) {
      return Status(Code::kInvalidArgument,
                    "node " + std::to_string(transferee) + " is not a voter");
    }
    handle_transfer_leader(transferee);
    return Status::ok();
  }
  if (lead_ == kNone) return Status(Code::kNoLeader, "no leader is known");
  Message m;
  m.set_type(raftpb::MSG_TRANSFER_LEADER);
  m.set_to(lead_);
  m.set_index(transferee);
  send(std::move(m));
  return Status::ok();
}

void Raft::handle_transfer_leader(uint64_t transferee) {
  if (!trk_.is_voter(transferee)) return;
  if (lead_transferee_ != kNone) {
    if (lead_transferee_ == transferee) return;  // already under way
    abort_leader_transfer();
  }
  if (transferee == id_) return;  // already the leader
  // The transfer must finish within an election timeout or it is abandoned.
  election_elapsed_ = 0;
  lead_transferee_ = transferee;
  const Progress& pr = trk_.progress.at(transferee);
  if (pr.match == log_.last_index()) {
    send_timeout_now(transferee);
  } else {
    maybe_send_append(transferee, true);
  }
}

void Raft::send_timeout_now(uint64_t to) {
  lease_disabled_ = true;
  Message m;
  m.set_to(to);
  m.set_type(raftpb::MSG_TIMEOUT_NOW);
  send(std::move(m));
}

// ---------------------------------------------------------------------------
// Membership

void Raft::apply_conf_change(const ConfChange& cc) {
  auto r = change_config(trk_, log_.last_index(), cc);
  // A change validated against the configuration when proposed can only be
  // invalid here if it raced with another; every replica reaches the same
  // verdict, so skipping it is deterministic.
  if (!r.is_ok()) return;
  switch_to_config(std::move(r).value());
}

ConfState Raft::conf_state_after(const std::vector<Entry>& conf_changes) const {
  ProgressTracker t = trk_;
  for (const auto& e : conf_changes) {
    if (e.index() <= config_index_) continue;
    ConfChange cc;
    QKV_CHECK(cc.ParseFromString(e.data())) << "undecodable conf change at index " << e.index();
    auto r = change_config(t, log_.last_index(), cc);
    if (!r.is_ok()) continue;
    t.config = std::move(r->config);
    t.progress = std::move(r->progress);
  }
  return t.conf_state();
}

void Raft::switch_to_config(ConfChangeResult r) {
  trk_.config = std::move(r.config);
  trk_.progress = std::move(r.progress);
  auto self = trk_.progress.find(id_);
  is_learner_ = self != trk_.progress.end() && self->second.is_learner;
  if (self == trk_.progress.end() || is_learner_ || !trk_.is_voter(id_)) {
    // Removed or demoted: a leader steps down, a campaign is abandoned; the
    // rest elect a new leader.
    if (role_ != Role::kFollower) become_follower(term_, kNone);
    return;
  }
  if (role_ != Role::kLeader || trk_.config.voters.empty()) return;
  if (maybe_commit()) {
    on_commit_advanced();
    bcast_append();
  } else {
    // Probe new members at once rather than at the next heartbeat.
    for (auto& [id, pr] : trk_.progress) {
      if (id != id_) maybe_send_append(id, true);
    }
  }
  if (lead_transferee_ != kNone && !trk_.is_voter(lead_transferee_)) abort_leader_transfer();
}

// ---------------------------------------------------------------------------
// Ready support

HardState Raft::hard_state() const {
  HardState hs;
  hs.set_group(group_);
  hs.set_term(term_);
  hs.set_vote(vote_);
  hs.set_commit(log_.committed());
  return hs;
}

void Raft::on_persisted(uint64_t last_index, uint64_t last_term, uint64_t snapshot_index) {
  if (snapshot_index > 0) log_.stable_snap_to(snapshot_index);
  if (last_index > 0) log_.stable_to(last_index, last_term);
  if (role_ != Role::kLeader) return;
  Progress& self = trk_.progress.at(id_);
  if (self.maybe_update(log_.persisted_index()) && maybe_commit()) {
    on_commit_advanced();
    bcast_commit();
  }
}

void Raft::on_applied(const std::vector<Entry>& conf_changes, uint64_t data_bytes,
                      uint64_t applied_index) {
  if (applied_index > 0) log_.applied_to(applied_index);
  if (role_ == Role::kLeader) reduce_uncommitted(data_bytes);
  for (const auto& e : conf_changes) {
    // A snapshot restored since these entries were handed out already
    // carries their effect (step() may run between ready() and advance()).
    if (e.index() <= config_index_) continue;
    config_index_ = e.index();
    ConfChange cc;
    QKV_CHECK(cc.ParseFromString(e.data())) << "undecodable conf change at index " << e.index();
    apply_conf_change(cc);
  }
  // Leave a joint configuration automatically once entering it is applied.
  if (role_ == Role::kLeader && trk_.config.auto_leave &&
      pending_conf_index_ <= log_.applied() && lead_transferee_ == kNone) {
    ConfChange leave;
    auto p = propose_conf_change(leave);
    (void)p;  // may be refused (e.g. uncommitted cap); retried at the next apply
  }
}

// ---------------------------------------------------------------------------
// Invariants

void Raft::check_invariants() const {
  QKV_CHECK(log_.applied() <= log_.committed())
      << "applied " << log_.applied() << " > committed " << log_.committed();
  QKV_CHECK(log_.committed() <= log_.last_index())
      << "committed " << log_.committed() << " > last " << log_.last_index();
  QKV_CHECK(role_ != Role::kLeader || lead_ == id_) << "leader with lead " << lead_;
  QKV_CHECK(role_ != Role::kCandidate || vote_ == id_) << "candidate voted for " << vote_;
  if (role_ == Role::kLeader) {
    for (const auto& [id, pr] : trk_.progress) {
      QKV_CHECK(pr.match < pr.next) << "progress of " << id << ": " << pr.to_string();
      QKV_CHECK(pr.next <= log_.last_index() + 1 || id == id_)
          << "progress of " << id << " beyond the log: " << pr.to_string();
    }
  }
  for (auto id : trk_.config.learners) {
    QKV_CHECK(!trk_.config.voters.count(id) && !trk_.config.voters_outgoing.count(id))
        << "node " << id << " is voter and learner";
  }
}

}  // namespace qkv::raft
