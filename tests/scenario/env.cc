#include "env.h"

#include <algorithm>
#include <functional>

#include "format.h"
#include "script.h"

namespace qkv::scenario {
namespace {

constexpr uint64_t kGroup = 1;
constexpr int kStabilizeRoundsMax = 10000;

// A malformed command: reported in the output and counted as a script error.
struct ScriptError {
  std::string what;
};

const char* role_str(raft::Role r) {
  switch (r) {
    case raft::Role::kFollower:
      return "follower";
    case raft::Role::kPreCandidate:
      return "pre-candidate";
    case raft::Role::kCandidate:
      return "candidate";
    case raft::Role::kLeader:
      return "leader";
  }
  return "?";
}

uint64_t parse_u64(const std::string& s, const std::string& what) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) {
    throw ScriptError{what + ": not a number: " + s};
  }
  return std::stoull(s);
}

bool parse_bool(const std::string& s, const std::string& what) {
  if (s == "true") return true;
  if (s == "false") return false;
  throw ScriptError{what + ": want true or false, got " + s};
}

// "(1,2,3)" or "1,2,3" -> {1,2,3}; "()" -> {}.
std::vector<uint64_t> parse_id_list(const std::string& s, const std::string& what) {
  std::string body = s;
  if (!body.empty() && body.front() == '(') body.erase(0, 1);
  if (!body.empty() && body.back() == ')') body.pop_back();
  std::vector<uint64_t> ids;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t comma = body.find(',', pos);
    if (comma == std::string::npos) comma = body.size();
    ids.push_back(parse_u64(body.substr(pos, comma - pos), what));
    pos = comma + 1;
  }
  return ids;
}

bool is_option(const std::string& word) {
  size_t eq = word.find('=');
  if (eq == std::string::npos || eq == 0) return false;
  for (size_t i = 0; i < eq; ++i) {
    char ch = word[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_')) {
      return false;
    }
  }
  return true;
}

Command parse_command(const std::string& line) {
  std::string error;
  std::vector<std::string> words = split_words(line, &error);
  if (!error.empty()) throw ScriptError{error};
  if (words.empty()) throw ScriptError{"empty command"};
  Command c;
  c.name = words[0];
  for (size_t i = 1; i < words.size(); ++i) {
    if (is_option(words[i])) {
      size_t eq = words[i].find('=');
      c.opts[words[i].substr(0, eq)] = words[i].substr(eq + 1);
    } else {
      c.args.push_back(words[i]);
    }
  }
  return c;
}

void want_args(const Command& c, size_t lo, size_t hi) {
  if (c.args.size() < lo || c.args.size() > hi) {
    throw ScriptError{c.name + ": wrong number of arguments"};
  }
}

void allow_opts(const Command& c, std::initializer_list<const char*> names) {
  for (const auto& [k, v] : c.opts) {
    bool known = false;
    for (const char* n : names) known = known || k == n;
    if (!known) throw ScriptError{c.name + ": unknown option " + k};
  }
}

std::string sm_data(const std::vector<std::pair<uint64_t, std::string>>& sm, uint64_t upto) {
  std::string data;
  bool first = true;
  for (const auto& [index, item] : sm) {
    if (index > upto) break;
    if (!first) data += "\n";
    data += item;
    first = false;
  }
  return data;
}

}  // namespace

std::string Env::run(const std::string& line) {
  out_.str("");
  out_.clear();
  violations_.clear();
  try {
    Command c = parse_command(line);
    static const std::map<std::string, std::function<void(Env*, const Command&)>> kCommands = {
        {"add-nodes", &Env::cmd_add_nodes},
        {"campaign", &Env::cmd_campaign},
        {"tick", [](Env* e, const Command& c) { e->cmd_tick(c, 0); }},
        {"tick-election", [](Env* e, const Command& c) { e->cmd_tick(c, 1); }},
        {"tick-heartbeat", [](Env* e, const Command& c) { e->cmd_tick(c, 2); }},
        {"advance-clock", &Env::cmd_advance_clock},
        {"propose", &Env::cmd_propose},
        {"propose-conf-change", &Env::cmd_propose_conf_change},
        {"read-index", &Env::cmd_read_index},
        {"transfer-leader", &Env::cmd_transfer_leader},
        {"report-unreachable", &Env::cmd_report_unreachable},
        {"process-ready", &Env::cmd_process_ready},
        {"deliver-msgs", &Env::cmd_deliver_msgs},
        {"stabilize", &Env::cmd_stabilize},
        {"partition", &Env::cmd_partition},
        {"heal", &Env::cmd_heal},
        {"crash", &Env::cmd_crash},
        {"restart", &Env::cmd_restart},
        {"compact", &Env::cmd_compact},
        {"raft-state", &Env::cmd_raft_state},
        {"raft-log", &Env::cmd_raft_log},
        {"status", &Env::cmd_status},
        {"state-machine", &Env::cmd_state_machine},
        {"log-level", &Env::cmd_log_level},
    };
    auto it = kCommands.find(c.name);
    if (it == kCommands.end()) throw ScriptError{"unknown command " + c.name};
    it->second(this, c);
  } catch (const ScriptError& e) {
    ++script_errors_;
    out_ << "SCRIPT ERROR: " << e.what << "\n";
    // A script error is shown even when output is silenced.
    std::string s = out_.str();
    s.pop_back();
    return s;
  }
  check_invariants();
  std::string s = quiet_ ? std::string() : out_.str();
  for (const auto& v : violations_) s += "INVARIANT VIOLATION: " + v + "\n";
  if (s.empty()) return "ok";
  s.pop_back();  // the last newline
  return s;
}

// ---------------------------------------------------------------------------
// Peers

Env::Peer& Env::peer(uint64_t id) {
  auto it = peers_.find(id);
  if (it == peers_.end()) throw ScriptError{"no node " + std::to_string(id)};
  return it->second;
}

Env::Peer& Env::live_peer(uint64_t id) {
  Peer& p = peer(id);
  if (!p.node) throw ScriptError{"node " + std::to_string(id) + " is down"};
  return p;
}

uint64_t Env::parse_id(const std::string& s) const { return parse_u64(s, "node id"); }

std::vector<uint64_t> Env::ids_or_all(const std::vector<std::string>& words) const {
  std::vector<uint64_t> ids;
  for (const auto& w : words) ids.push_back(parse_id(w));
  if (ids.empty()) {
    for (const auto& [id, p] : peers_) ids.push_back(id);
  }
  return ids;
}

void Env::start(Peer& p) {
  raft::Config cfg = p.config;
  cfg.storage = p.storage.get();
  cfg.applied = p.applied;
  auto node = raft::Node::create(cfg);
  if (!node.is_ok()) {
    throw ScriptError{"node " + std::to_string(p.id) + ": create: " + node.status().to_string()};
  }
  p.node = std::move(node).value();
}

void Env::note_state(Peer& p, const std::string& indent) {
  if (!p.node) return;
  raft::Role role = p.node->role();
  uint64_t term = p.node->term();
  uint64_t lead = p.node->leader();
  if (role == p.shown_role && term == p.shown_term && lead == p.shown_lead) return;
  p.shown_role = role;
  p.shown_term = term;
  p.shown_lead = lead;
  out_ << indent << "state " << p.id << ": " << role_str(role) << " term=" << term
       << " lead=" << lead << "\n";
}

// ---------------------------------------------------------------------------
// Commands

// add-nodes N [voters=(..)] [learners=(..)] [option=value...]
void Env::cmd_add_nodes(const Command& c) {
  want_args(c, 1, 1);
  allow_opts(c, {"voters", "learners", "pre-vote", "check-quorum", "read-mode", "election-ticks",
                 "heartbeat-ticks", "lease-margin-ticks", "msg-bytes-max", "inflight-msgs-max",
                 "uncommitted-bytes-max", "committed-bytes-per-ready-max", "snapshot-chunk-bytes",
                 "snapshot-inflight-chunks-max", "seed", "save-conf-state",
                 "test-commit-old-term-by-counting", "test-vote-without-log-check"});
  uint64_t n = parse_u64(c.args[0], "add-nodes count");
  raft::Config base;
  base.group = kGroup;
  auto opt = [&](const char* name) -> const std::string* {
    auto it = c.opts.find(name);
    return it == c.opts.end() ? nullptr : &it->second;
  };
  if (auto* v = opt("pre-vote")) base.pre_vote = parse_bool(*v, "pre-vote");
  if (auto* v = opt("check-quorum")) base.check_quorum = parse_bool(*v, "check-quorum");
  if (auto* v = opt("read-mode")) {
    if (*v == "lease") {
      base.read_mode = raft::ReadMode::kLease;
    } else if (*v == "readindex") {
      base.read_mode = raft::ReadMode::kReadIndex;
    } else {
      throw ScriptError{"read-mode: want lease or readindex"};
    }
  }
  auto num = [&](const char* name, auto* field) {
    if (auto* v = opt(name)) {
      *field = static_cast<std::remove_pointer_t<decltype(field)>>(parse_u64(*v, name));
    }
  };
  num("election-ticks", &base.election_timeout_ticks);
  num("heartbeat-ticks", &base.heartbeat_interval_ticks);
  num("lease-margin-ticks", &base.lease_margin_ticks);
  num("msg-bytes-max", &base.msg_bytes_max);
  num("inflight-msgs-max", &base.inflight_msgs_max);
  num("uncommitted-bytes-max", &base.uncommitted_bytes_max);
  num("committed-bytes-per-ready-max", &base.committed_bytes_per_ready_max);
  num("snapshot-chunk-bytes", &base.snapshot_chunk_bytes);
  num("snapshot-inflight-chunks-max", &base.snapshot_inflight_chunks_max);
  uint64_t seed = 0;
  num("seed", &seed);
  bool save_conf_state = false;
  if (auto* v = opt("save-conf-state")) save_conf_state = parse_bool(*v, "save-conf-state");
  if (auto* v = opt("test-commit-old-term-by-counting")) {
    base.TEST_commit_old_term_by_counting = parse_bool(*v, "test-commit-old-term-by-counting");
  }
  if (auto* v = opt("test-vote-without-log-check")) {
    base.TEST_vote_without_log_check = parse_bool(*v, "test-vote-without-log-check");
  }

  std::optional<raft::ConfState> initial;
  if (auto* v = opt("voters")) {
    initial.emplace();
    for (uint64_t id : parse_id_list(*v, "voters")) initial->add_voters(id);
    if (auto* l = opt("learners")) {
      for (uint64_t id : parse_id_list(*l, "learners")) initial->add_learners(id);
    }
  } else if (opt("learners")) {
    throw ScriptError{"learners= needs voters="};
  }

  uint64_t next_id = peers_.empty() ? 1 : peers_.rbegin()->first + 1;
  for (uint64_t k = 0; k < n; ++k) {
    uint64_t id = next_id + k;
    Peer& p = peers_[id];
    p.id = id;
    p.config = base;
    p.config.id = id;
    // Each node gets its own fixed seed, so elections are reproducible.
    p.config.random_seed = seed * 1000 + id;
    p.save_conf_state = save_conf_state;
    p.storage = std::make_unique<raft::MemoryStorage>();
    raft::Config check = p.config;
    check.storage = p.storage.get();
    Status valid = check.validate();
    if (!valid.is_ok()) {
      peers_.erase(id);
      throw ScriptError{"config: " + valid.to_string()};
    }
    if (initial) {
      raft::Snapshot snap = raft::bootstrap_snapshot(kGroup, *initial);
      Status s = p.storage->apply_snapshot(snap);
      if (!s.is_ok()) throw ScriptError{"bootstrap: " + s.to_string()};
      p.applied = snap.metadata().index();
      p.conf_history[snap.metadata().index()] = snap.metadata().conf_state();
      p.persisted = p.storage->initial_state().hard_state;
    }
    start(p);
    p.shown_role = p.node->role();
    p.shown_term = p.node->term();
    p.shown_lead = p.node->leader();
  }
}

// campaign ID
void Env::cmd_campaign(const Command& c) {
  want_args(c, 1, 1);
  allow_opts(c, {});
  Peer& p = live_peer(parse_id(c.args[0]));
  p.node->campaign();
  note_state(p, "");
}

// advance-clock ID N: N ticks pass without being run (the node was paused).
void Env::cmd_advance_clock(const Command& c) {
  want_args(c, 2, 2);
  allow_opts(c, {});
  Peer& p = live_peer(parse_id(c.args[0]));
  p.node->advance_clock(parse_u64(c.args[1], "tick count"));
  note_state(p, "");
}

// tick ID [N] | tick-election ID | tick-heartbeat ID
void Env::cmd_tick(const Command& c, int ticks_kind) {
  want_args(c, 1, ticks_kind == 0 ? 2 : 1);
  allow_opts(c, {});
  Peer& p = live_peer(parse_id(c.args[0]));
  uint64_t n = 1;
  if (ticks_kind == 0 && c.args.size() == 2) n = parse_u64(c.args[1], "tick count");
  if (ticks_kind == 2) n = p.config.heartbeat_interval_ticks;
  if (ticks_kind == 1) {
    // A leader ticks one election timeout T (one CheckQuorum and transfer
    // timeout period). Any other node ticks until its election timer fires,
    // which shows as a change of role or term: at most 2T-1 ticks, since the
    // randomized timeout lies in [T, 2T).
    uint64_t t = static_cast<uint64_t>(p.config.election_timeout_ticks);
    if (p.node->role() == raft::Role::kLeader) {
      n = t;
    } else {
      raft::Role role = p.node->role();
      uint64_t term = p.node->term();
      for (uint64_t i = 0; i < 2 * t - 1; ++i) {
        p.node->tick();
        note_state(p, "");
        if (p.node->role() != role || p.node->term() != term) break;
      }
      return;
    }
  }
  for (uint64_t i = 0; i < n; ++i) {
    p.node->tick();
    note_state(p, "");
  }
}

// propose ID DATA [count=K] [bytes=N]: N pads DATA with '.' to N bytes.
void Env::cmd_propose(const Command& c) {
  want_args(c, 2, 2);
  allow_opts(c, {"count", "bytes"});
  Peer& p = live_peer(parse_id(c.args[0]));
  uint64_t count = 1;
  if (auto it = c.opts.find("count"); it != c.opts.end()) count = parse_u64(it->second, "count");
  std::string data = c.args[1];
  if (auto it = c.opts.find("bytes"); it != c.opts.end()) {
    uint64_t n = parse_u64(it->second, "bytes");
    if (n > data.size()) data.append(n - data.size(), '.');
  }
  for (uint64_t i = 0; i < count; ++i) {
    auto r = p.node->propose(data);
    if (r.is_ok()) {
      out_ << "proposed " << r->term << "/" << r->index << "\n";
    } else {
      out_ << "error: " << r.status().to_string() << "\n";
    }
  }
  note_state(p, "");
}

// propose-conf-change ID [v4] [l5] [r2]... [transition=auto|implicit|explicit] [ctx=X]
void Env::cmd_propose_conf_change(const Command& c) {
  if (c.args.empty()) throw ScriptError{"propose-conf-change: missing node id"};
  allow_opts(c, {"transition", "ctx"});
  Peer& p = live_peer(parse_id(c.args[0]));
  raft::ConfChange cc;
  for (size_t i = 1; i < c.args.size(); ++i) {
    if (!parse_conf_change_single(c.args[i], cc.add_changes())) {
      throw ScriptError{"bad conf change " + c.args[i] + " (want v<id>, l<id> or r<id>)"};
    }
  }
  if (auto it = c.opts.find("transition"); it != c.opts.end()) {
    if (it->second == "auto") {
      cc.set_transition(raftpb::TRANSITION_AUTO);
    } else if (it->second == "implicit") {
      cc.set_transition(raftpb::TRANSITION_JOINT_IMPLICIT);
    } else if (it->second == "explicit") {
      cc.set_transition(raftpb::TRANSITION_JOINT_EXPLICIT);
    } else {
      throw ScriptError{"transition: want auto, implicit or explicit"};
    }
  }
  if (auto it = c.opts.find("ctx"); it != c.opts.end()) cc.set_context(it->second);
  auto r = p.node->propose_conf_change(cc);
  if (r.is_ok()) {
    out_ << "proposed " << r->term << "/" << r->index << " " << fmt_conf_change(cc) << "\n";
  } else {
    out_ << "error: " << r.status().to_string() << "\n";
  }
  note_state(p, "");
}

// read-index ID CTX
void Env::cmd_read_index(const Command& c) {
  want_args(c, 2, 2);
  allow_opts(c, {});
  Peer& p = live_peer(parse_id(c.args[0]));
  uint64_t floor = 0;
  for (const auto& [id, q] : peers_) floor = std::max(floor, q.applied);
  read_floor_[c.args[1]] = floor;
  Status s = p.node->read_index(c.args[1]);
  if (!s.is_ok()) out_ << "error: " << s.to_string() << "\n";
  note_state(p, "");
}

// transfer-leader FROM TO: asks node FROM to hand leadership to TO.
void Env::cmd_transfer_leader(const Command& c) {
  want_args(c, 2, 2);
  allow_opts(c, {});
  Peer& p = live_peer(parse_id(c.args[0]));
  Status s = p.node->transfer_leader(parse_id(c.args[1]));
  if (!s.is_ok()) out_ << "error: " << s.to_string() << "\n";
  note_state(p, "");
}

// report-unreachable ID PEER
void Env::cmd_report_unreachable(const Command& c) {
  want_args(c, 2, 2);
  allow_opts(c, {});
  Peer& p = live_peer(parse_id(c.args[0]));
  p.node->report_unreachable(parse_id(c.args[1]));
  note_state(p, "");
}

// process-ready [ID...]
void Env::cmd_process_ready(const Command& c) {
  allow_opts(c, {});
  for (uint64_t id : ids_or_all(c.args)) {
    Peer& p = peer(id);
    if (!p.node) {
      if (!c.args.empty()) out_ << "> " << id << " is down\n";
      continue;
    }
    if (!p.node->has_ready()) {
      out_ << "> " << id << " no ready\n";
      continue;
    }
    handle_ready(p);
  }
}

// deliver-msgs [ID...] [drop=true] [type=MSG_X] [count=N]
void Env::cmd_deliver_msgs(const Command& c) {
  allow_opts(c, {"drop", "type", "count"});
  bool drop = false;
  std::string type;
  int64_t count = -1;
  if (auto it = c.opts.find("drop"); it != c.opts.end()) drop = parse_bool(it->second, "drop");
  if (auto it = c.opts.find("type"); it != c.opts.end()) {
    raftpb::MessageType t;
    if (!raftpb::MessageType_Parse(it->second, &t)) {
      throw ScriptError{"type: unknown message type " + it->second};
    }
    type = it->second;
  }
  if (auto it = c.opts.find("count"); it != c.opts.end()) {
    count = static_cast<int64_t>(parse_u64(it->second, "count"));
  }
  size_t n = 0;
  for (uint64_t id : ids_or_all(c.args)) {
    size_t k = deliver_to(id, drop, type, count);
    n += k;
    if (count >= 0) count -= static_cast<int64_t>(k);
  }
  if (n == 0) out_ << "no messages\n";
}

// stabilize [ID...]: handles Readies and delivers messages among the given
// nodes (default all) until nothing is left to do.
void Env::cmd_stabilize(const Command& c) {
  allow_opts(c, {});
  std::vector<uint64_t> ids = ids_or_all(c.args);
  for (uint64_t id : ids) peer(id);
  for (int round = 0; round < kStabilizeRoundsMax; ++round) {
    bool busy = false;
    for (uint64_t id : ids) {
      Peer& p = peers_.at(id);
      if (p.node && p.node->has_ready()) {
        handle_ready(p);
        busy = true;
      }
    }
    for (uint64_t id : ids) {
      if (deliver_to(id, false, "", -1) > 0) busy = true;
    }
    if (!busy) return;
  }
  throw ScriptError{"stabilize: no quiescence after many rounds (livelock?)"};
}

// partition A B [/ C D ...]: the listed groups are cut off from each other and
// from all unlisted nodes (which form one more group).
void Env::cmd_partition(const Command& c) {
  allow_opts(c, {});
  if (c.args.empty()) throw ScriptError{"partition: no nodes"};
  component_.clear();
  int comp = 1;
  for (const auto& w : c.args) {
    if (w == "/") {
      ++comp;
      continue;
    }
    uint64_t id = parse_id(w);
    peer(id);
    component_[id] = comp;
  }
}

void Env::cmd_heal(const Command& c) {
  want_args(c, 0, 0);
  allow_opts(c, {});
  component_.clear();
}

// crash ID: the node stops; what it persisted stays in its storage. Messages it
// already sent stay on the network; messages to it are lost (dropped when
// delivered while it is down, or when it restarts).
void Env::cmd_crash(const Command& c) {
  want_args(c, 1, 1);
  allow_opts(c, {});
  Peer& p = live_peer(parse_id(c.args[0]));
  p.node.reset();
}

// restart ID: rebuilds the node from its storage and applied index.
void Env::cmd_restart(const Command& c) {
  want_args(c, 1, 1);
  allow_opts(c, {});
  Peer& p = peer(parse_id(c.args[0]));
  if (p.node) throw ScriptError{"node " + std::to_string(p.id) + " is not down"};
  // Messages sent to the node before or while it was down died with its
  // connections.
  std::deque<raft::Message> rest;
  for (auto& m : net_) {
    if (m.to() == p.id) {
      out_ << "  " << fmt_message(m) << " (dropped: node was down)\n";
    } else {
      rest.push_back(std::move(m));
    }
  }
  net_ = std::move(rest);
  if (!p.save_conf_state) {
    // The in-memory state machine is lost; rebuild it from the snapshot.
    auto snap = p.storage->snapshot();
    if (!snap.is_ok()) throw ScriptError{"restart: snapshot: " + snap.status().to_string()};
    const raft::Snapshot& sn = **snap;
    p.sm.clear();
    const std::string& data = sn.data();
    size_t pos = 0;
    while (pos < data.size()) {
      size_t nl = data.find('\n', pos);
      if (nl == std::string::npos) nl = data.size();
      p.sm.emplace_back(sn.metadata().index(), data.substr(pos, nl - pos));
      pos = nl + 1;
    }
    p.applied = sn.metadata().index();
    p.conf_history.clear();
    p.conf_history[sn.metadata().index()] = sn.metadata().conf_state();
  }
  start(p);
  p.shown_term = ~uint64_t{0};  // always show the state after a restart
  note_state(p, "");
}

// compact ID INDEX: snapshots the state machine at INDEX and drops the log up
// to INDEX.
void Env::cmd_compact(const Command& c) {
  want_args(c, 2, 2);
  allow_opts(c, {});
  Peer& p = peer(parse_id(c.args[0]));
  uint64_t index = parse_u64(c.args[1], "index");
  if (index > p.applied) {
    throw ScriptError{"compact: index " + std::to_string(index) + " not applied yet"};
  }
  auto cs_it = p.conf_history.upper_bound(index);
  if (cs_it == p.conf_history.begin()) throw ScriptError{"compact: no membership known"};
  --cs_it;
  auto snap = p.storage->create_snapshot(index, cs_it->second, sm_data(p.sm, index));
  if (!snap.is_ok()) {
    out_ << "error: " << snap.status().to_string() << "\n";
    return;
  }
  Status s = p.storage->compact(index);
  if (!s.is_ok()) {
    out_ << "error: " << s.to_string() << "\n";
    return;
  }
  const raft::Snapshot& sn = *snap.value();
  out_ << "snapshot " << sn.metadata().term() << "/" << sn.metadata().index() << " "
       << fmt_conf_state(sn.metadata().conf_state()) << " data=" << sn.data().size() << "B; log ["
       << p.storage->first_index() << "," << p.storage->last_index() << "]\n";
}

// raft-state: one line per node.
void Env::cmd_raft_state(const Command& c) {
  want_args(c, 0, 0);
  allow_opts(c, {});
  for (auto& [id, p] : peers_) {
    if (!p.node) {
      out_ << id << ": down (persisted " << fmt_hard_state(p.storage->initial_state().hard_state)
           << ")\n";
      continue;
    }
    out_ << id << ": " << role_str(p.node->role()) << " term=" << p.node->term()
         << " lead=" << p.node->leader() << "\n";
  }
}

// raft-log ID: the persisted log.
void Env::cmd_raft_log(const Command& c) {
  want_args(c, 1, 1);
  allow_opts(c, {});
  Peer& p = peer(parse_id(c.args[0]));
  uint64_t first = p.storage->first_index();
  uint64_t last = p.storage->last_index();
  auto snap_term = p.storage->term(first - 1);
  out_ << "log [" << first << "," << last << "] after "
       << (snap_term.is_ok() ? std::to_string(*snap_term) : "?") << "/" << first - 1 << "\n";
  if (last < first) return;
  auto ents = p.storage->entries(first, last + 1, UINT64_MAX);
  if (!ents.is_ok()) {
    out_ << "error: " << ents.status().to_string() << "\n";
    return;
  }
  for (const auto& e : *ents) out_ << fmt_entry(e) << "\n";
}

// status ID: the node's view, and replication progress if it leads.
void Env::cmd_status(const Command& c) {
  want_args(c, 1, 1);
  allow_opts(c, {});
  Peer& p = live_peer(parse_id(c.args[0]));
  raft::NodeStatus st = p.node->status();
  out_ << st.id << ": " << role_str(st.soft_state.role) << " " << fmt_hard_state(st.hard_state)
       << " lead=" << st.soft_state.lead << " applied=" << st.applied << " last=" << st.last_index
       << "\n";
  out_ << "conf: " << fmt_conf_state(st.conf_state) << "\n";
  if (st.lead_transferee != raft::kNone) out_ << "transferee: " << st.lead_transferee << "\n";
  for (const auto& [id, pr] : st.progress) {
    out_ << "progress " << id << ": " << pr.state << " match=" << pr.match << " next=" << pr.next
         << (pr.learner ? " learner" : "") << (pr.recent_active ? " active" : "") << "\n";
  }
}

// state-machine ID: what the node has applied.
void Env::cmd_state_machine(const Command& c) {
  want_args(c, 1, 1);
  allow_opts(c, {});
  Peer& p = peer(parse_id(c.args[0]));
  out_ << "applied=" << p.applied << " data=[";
  for (size_t i = 0; i < p.sm.size(); ++i) out_ << (i ? " " : "") << p.sm[i].second;
  out_ << "]\n";
}

// log-level none|info: none silences the output of later commands (errors and
// invariant violations still show).
void Env::cmd_log_level(const Command& c) {
  want_args(c, 1, 1);
  allow_opts(c, {});
  if (c.args[0] == "none") {
    quiet_ = true;
  } else if (c.args[0] == "info") {
    quiet_ = false;
  } else {
    throw ScriptError{"log-level: want none or info"};
  }
}

// ---------------------------------------------------------------------------
// Ready handling and the network

void Env::handle_ready(Peer& p) {
  raft::Ready rd = p.node->ready();
  const std::string id = std::to_string(p.id);
  out_ << "> " << id << " ready" << (rd.must_sync ? " (sync)" : "") << "\n";
  if (rd.empty()) violation("node " + id + ": has_ready() but the Ready is empty");
  if (rd.soft_state) {
    out_ << "  soft-state: " << role_str(rd.soft_state->role) << " lead=" << rd.soft_state->lead
         << "\n";
  }
  if (rd.hard_state) out_ << "  hard-state: " << fmt_hard_state(*rd.hard_state) << "\n";
  if (rd.snapshot) {
    const auto& md = rd.snapshot->metadata();
    out_ << "  snapshot: " << md.term() << "/" << md.index() << " "
         << fmt_conf_state(md.conf_state()) << " data=" << rd.snapshot->data().size() << "B\n";
  }
  for (const auto& e : rd.entries) out_ << "  append " << fmt_entry(e) << "\n";
  for (const auto& e : rd.committed_entries) out_ << "  apply " << fmt_entry(e) << "\n";
  // A message across a partition is lost when sent.
  auto cut = [&](const raft::Message& m) {
    return connected(m.from(), m.to()) ? "" : " (dropped: partition)";
  };
  for (const auto& m : rd.messages) out_ << "  send " << fmt_message(m) << cut(m) << "\n";
  for (const auto& m : rd.messages_after_persist) {
    out_ << "  send-after-persist " << fmt_message(m) << cut(m) << "\n";
  }
  for (const auto& rs : rd.read_states) {
    out_ << "  read-state index=" << rs.index << " ctx=" << fmt_data(rs.context) << "\n";
    auto it = read_floor_.find(rs.context);
    if (it != read_floor_.end() && rs.index < it->second) {
      violation("stale read: ctx " + fmt_data(rs.context) + " got index " +
                std::to_string(rs.index) + " but index " + std::to_string(it->second) +
                " was applied before the read was requested");
    }
  }

  auto check_msg = [&](const raft::Message& m) {
    if (m.from() != p.id || m.to() == p.id || m.group() != kGroup) {
      violation("node " + id + " sent a misaddressed message: " + fmt_message(m));
    }
  };
  // 1. Messages that may go before persisting.
  for (const auto& m : rd.messages) {
    check_msg(m);
    if (connected(m.from(), m.to())) net_.push_back(m);
  }
  // 2. Persist the snapshot, then entries, then the hard state.
  if (rd.snapshot) {
    Status s = p.storage->apply_snapshot(*rd.snapshot);
    if (!s.is_ok()) violation("node " + id + ": apply_snapshot: " + s.to_string());
  }
  if (!rd.entries.empty()) {
    Status s = p.storage->append(rd.entries);
    if (!s.is_ok()) violation("node " + id + ": append: " + s.to_string());
  }
  if (rd.hard_state) {
    const raft::HardState& old = p.persisted;
    const raft::HardState& hs = *rd.hard_state;
    if (hs.term() < old.term()) violation("node " + id + ": persisted term went backwards");
    if (hs.commit() < old.commit()) violation("node " + id + ": persisted commit went backwards");
    if (hs.term() == old.term() && old.vote() != raft::kNone && hs.vote() != old.vote()) {
      violation("node " + id + ": changed its vote within term " + std::to_string(hs.term()));
    }
    p.storage->set_hard_state(hs);
    p.persisted = hs;
  }
  if (p.persisted.commit() > p.storage->last_index()) {
    violation("node " + id + ": commit " + std::to_string(p.persisted.commit()) +
              " is beyond its persisted log " + std::to_string(p.storage->last_index()));
  }
  // 3. Messages that need the state above to be durable.
  for (const auto& m : rd.messages_after_persist) {
    check_msg(m);
    if (connected(m.from(), m.to())) net_.push_back(m);
  }
  // 4. Apply the snapshot and the committed entries.
  if (rd.snapshot) {
    const auto& md = rd.snapshot->metadata();
    if (md.index() <= p.applied) {
      violation("node " + id + ": snapshot at " + std::to_string(md.index()) +
                " is not ahead of applied " + std::to_string(p.applied));
    }
    p.sm.clear();
    const std::string& data = rd.snapshot->data();
    size_t pos = 0;
    while (pos < data.size()) {
      size_t nl = data.find('\n', pos);
      if (nl == std::string::npos) nl = data.size();
      p.sm.emplace_back(md.index(), data.substr(pos, nl - pos));
      pos = nl + 1;
    }
    p.applied = md.index();
    p.conf_history.clear();
    p.conf_history[md.index()] = md.conf_state();
    auto [it, fresh] = applied_.try_emplace(md.index(), Applied{md.term(), "", p.node->term()});
    if (!fresh && it->second.term != md.term()) {
      violation("node " + id + ": snapshot " + std::to_string(md.term()) + "/" +
                std::to_string(md.index()) + " disagrees with applied " + it->second.desc);
    }
  }
  uint64_t last_cc_index = 0;
  for (const auto& e : rd.committed_entries) {
    if (e.index() != p.applied + 1) {
      violation("node " + id + ": applies " + std::to_string(e.index()) + " after " +
                std::to_string(p.applied));
    }
    p.applied = e.index();
    if (e.index() > p.persisted.commit()) {
      violation("node " + id + ": applies " + std::to_string(e.index()) +
                " beyond persisted commit " + std::to_string(p.persisted.commit()));
    }
    std::string desc = fmt_entry(e);
    auto [it, fresh] = applied_.try_emplace(e.index(), Applied{e.term(), desc, p.node->term()});
    if (!fresh) {
      Applied& a = it->second;
      if (a.term != e.term() || (!a.desc.empty() && a.desc != desc)) {
        violation(
            "node " + id + " applied " + desc + " but another node applied " +
            (a.desc.empty() ? std::to_string(a.term) + "/" + std::to_string(e.index()) : a.desc));
      }
      a.seen_term = std::min(a.seen_term, p.node->term());
      if (a.desc.empty()) a.desc = desc;
    }
    if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
      last_cc_index = e.index();
    } else if (!e.data().empty()) {
      p.sm.emplace_back(e.index(), e.data());
    }
  }
  raft::ConfState before = p.node->conf_state();
  // 5. Acknowledge; the core applies conf changes now.
  p.node->advance();
  raft::ConfState after = p.node->conf_state();
  if (after.SerializeAsString() != before.SerializeAsString()) {
    out_ << "  conf-state: " << fmt_conf_state(after) << "\n";
  }
  if (last_cc_index != 0) {
    p.conf_history[last_cc_index] = after;
    if (p.save_conf_state) p.storage->set_conf_state(after);
  }
  note_state(p, "  ");
}

bool Env::connected(uint64_t a, uint64_t b) const {
  if (component_.empty()) return true;
  auto comp = [&](uint64_t id) {
    auto it = component_.find(id);
    return it == component_.end() ? 0 : it->second;
  };
  return comp(a) == comp(b);
}

size_t Env::deliver_to(uint64_t to, bool drop, const std::string& type, int64_t count) {
  std::vector<raft::Message> batch;
  std::deque<raft::Message> rest;
  for (auto& m : net_) {
    bool match = m.to() == to && (type.empty() || raftpb::MessageType_Name(m.type()) == type) &&
                 (count < 0 || static_cast<int64_t>(batch.size()) < count);
    if (match) {
      batch.push_back(std::move(m));
    } else {
      rest.push_back(std::move(m));
    }
  }
  net_ = std::move(rest);
  if (batch.empty()) return 0;
  out_ << "> " << to << " receiving\n";
  for (const auto& m : batch) {
    const char* dropped = nullptr;
    auto it = peers_.find(to);
    if (drop) {
      dropped = "dropped";
    } else if (it == peers_.end()) {
      dropped = "dropped: no such node";
    } else if (!it->second.node) {
      dropped = "dropped: node down";
    } else if (!connected(m.from(), to)) {
      dropped = "dropped: partition";
    }
    if (dropped) {
      out_ << "  " << fmt_message(m) << " (" << dropped << ")\n";
      continue;
    }
    out_ << "  " << fmt_message(m) << "\n";
    Peer& p = it->second;
    Status s = p.node->step(m);
    if (!s.is_ok()) out_ << "  error: " << s.to_string() << "\n";
    note_state(p, "  ");
    check_invariants();
  }
  return batch.size();
}

// ---------------------------------------------------------------------------
// Invariants

void Env::violation(const std::string& what) {
  if (std::find(violations_.begin(), violations_.end(), what) == violations_.end()) {
    violations_.push_back(what);
  }
}

void Env::check_invariants() {
  for (auto& [id, p] : peers_) {
    if (!p.node || p.node->role() != raft::Role::kLeader) continue;
    uint64_t term = p.node->term();
    // Election safety (paper §5.2): at most one leader per term.
    auto [it, fresh] = leader_of_term_.try_emplace(term, id);
    if (!fresh && it->second != id) {
      violation("two leaders in term " + std::to_string(term) + ": " + std::to_string(it->second) +
                " and " + std::to_string(id));
    }
    // Leader completeness (§5.4): a leader elected after an entry was
    // committed has it. An entry applied by a node at term t was committed at
    // a term <= t.
    uint64_t first = p.storage->first_index();
    uint64_t last = p.storage->last_index();
    for (const auto& [index, a] : applied_) {
      if (a.seen_term >= term || index < first) continue;
      auto t =
          index <= last ? p.storage->term(index) : Result<uint64_t>(Status(Code::kUnavailable, ""));
      if (!t.is_ok() || *t != a.term) {
        violation("leader " + std::to_string(id) + " of term " + std::to_string(term) +
                  " lacks committed entry " + std::to_string(a.term) + "/" + std::to_string(index));
      }
    }
  }
}

}  // namespace qkv::scenario
