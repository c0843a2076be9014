// A small harness for driving raft::Node in unit tests: members with
// in-memory storage, a message queue the test controls, partitions, and
// "virtual" peers (voters that exist only as message addresses, so that a
// test can read what a node sends them and answer by hand).
//
// Every Ready is handled the way node.h prescribes: send `messages`, persist
// snapshot, entries and hard state, send `messages_after_persist`, apply, then
// advance(). Because the harness is single-threaded, "send" means "append to
// the queue"; nothing is delivered until the test asks for it.
//
// While handling Readies the harness checks a few invariants that hold for
// every correct Raft (Raft paper Figure 2 and Figure 3): terms never go back,
// a node never votes for two candidates in one term, the commit index never
// goes back, committed entries are handed out once, in log order, without gaps.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "raft/node.h"
#include "raft/storage.h"

namespace qkv {

inline void PrintTo(Code c, std::ostream* os) { *os << code_name(c); }

}  // namespace qkv

namespace qkv::raft {

// Lets GoogleTest print roles by name.
inline void PrintTo(Role r, std::ostream* os) { *os << role_name(r); }

}  // namespace qkv::raft

namespace qkv::raft::rafttest {

// Every test group uses a group id other than 0, so that a core that forgets
// to stamp `group` on what it sends is caught.
inline constexpr uint64_t kGroup = 7;

struct Options {
  int election_timeout_ticks = 10;
  int heartbeat_interval_ticks = 1;
  // Off by default here (unlike Config): most paper rules are about plain Raft.
  bool pre_vote = false;
  bool check_quorum = false;
  // Member `id` gets random_seed = seed * 1000 + id, so members differ.
  uint64_t seed = 1;
  bool TEST_commit_old_term_by_counting = false;
  bool TEST_vote_without_log_check = false;
};

inline Config make_config(uint64_t id, LogStorage* storage, const Options& o) {
  Config c;
  c.id = id;
  c.group = kGroup;
  c.storage = storage;
  c.election_timeout_ticks = o.election_timeout_ticks;
  c.heartbeat_interval_ticks = o.heartbeat_interval_ticks;
  c.pre_vote = o.pre_vote;
  c.check_quorum = o.check_quorum;
  c.random_seed = o.seed * 1000 + id;
  c.TEST_commit_old_term_by_counting = o.TEST_commit_old_term_by_counting;
  c.TEST_vote_without_log_check = o.TEST_vote_without_log_check;
  return c;
}

inline Entry make_entry(uint64_t index, uint64_t term, std::string data = {}) {
  Entry e;
  e.set_group(kGroup);
  e.set_index(index);
  e.set_term(term);
  e.set_type(raftpb::ENTRY_NORMAL);
  e.set_data(std::move(data));
  return e;
}

inline Message make_msg(MessageType type, uint64_t from, uint64_t to, uint64_t term) {
  Message m;
  m.set_group(kGroup);
  m.set_type(type);
  m.set_from(from);
  m.set_to(to);
  m.set_term(term);
  return m;
}

// An AppendEntries from `from` (the leader) to `to`: entries follow the entry
// at (index, log_term).
inline Message make_app(uint64_t from, uint64_t to, uint64_t term, uint64_t index,
                        uint64_t log_term, std::vector<Entry> entries, uint64_t commit) {
  Message m = make_msg(raftpb::MSG_APP, from, to, term);
  m.set_index(index);
  m.set_log_term(log_term);
  m.set_commit(commit);
  for (auto& e : entries) *m.add_entries() = std::move(e);
  return m;
}

// A RequestVote from candidate `from` whose last entry is (index, log_term).
inline Message make_vote(uint64_t from, uint64_t to, uint64_t term, uint64_t log_term,
                         uint64_t index) {
  Message m = make_msg(raftpb::MSG_VOTE, from, to, term);
  m.set_log_term(log_term);
  m.set_index(index);
  return m;
}

inline ConfState voters_conf(const std::vector<uint64_t>& voters) {
  ConfState cs;
  for (uint64_t v : voters) cs.add_voters(v);
  return cs;
}

// The data of a pre-loaded entry. It is a function of (index, term), as the
// Log Matching Property (paper §5.3) demands of entries in real logs: two logs
// agree on an entry's content exactly when they agree on its term.
inline std::string entry_data(uint64_t index, uint64_t term) {
  return "i" + std::to_string(index) + "t" + std::to_string(term);
}

// A storage bootstrapped for `voters` (snapshot at index 1, term 1), followed
// by one entry per element of `terms` at indexes 2, 3, ... A hard state
// {hard_term, vote, commit 1} is saved when hard_term is non-zero or entries
// were added (hard_term then defaults to the last entry's term).
inline std::unique_ptr<MemoryStorage> new_storage(const std::vector<uint64_t>& voters,
                                                  const std::vector<uint64_t>& terms = {},
                                                  uint64_t hard_term = 0, uint64_t vote = kNone) {
  auto s = std::make_unique<MemoryStorage>();
  Status st = s->apply_snapshot(bootstrap_snapshot(kGroup, voters_conf(voters)));
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  std::vector<Entry> ents;
  for (size_t i = 0; i < terms.size(); ++i) {
    uint64_t index = 2 + i;
    ents.push_back(make_entry(index, terms[i], entry_data(index, terms[i])));
  }
  if (!ents.empty()) {
    st = s->append(ents);
    EXPECT_TRUE(st.is_ok()) << st.to_string();
  }
  if (hard_term == 0 && !terms.empty()) hard_term = *std::max_element(terms.begin(), terms.end());
  if (hard_term != 0) {
    HardState hs;
    hs.set_group(kGroup);
    hs.set_term(hard_term);
    hs.set_vote(vote);
    hs.set_commit(1);
    s->set_hard_state(hs);
  }
  return s;
}

// (index, term, data) of every entry in the storage's log, snapshot excluded.
using LogView = std::vector<std::tuple<uint64_t, uint64_t, std::string>>;

inline std::vector<Entry> log_entries(const MemoryStorage& s) {
  if (s.last_index() < s.first_index()) return {};
  auto r = s.entries(s.first_index(), s.last_index() + 1, UINT64_MAX);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  if (!r.is_ok()) return {};
  return *r;
}

inline LogView log_view(const MemoryStorage& s) {
  LogView v;
  for (const Entry& e : log_entries(s)) v.emplace_back(e.index(), e.term(), e.data());
  return v;
}

inline LogView log_view(const std::vector<Entry>& ents) {
  LogView v;
  for (const Entry& e : ents) v.emplace_back(e.index(), e.term(), e.data());
  return v;
}

// Terms of the entries after the snapshot, in index order.
inline std::vector<uint64_t> log_terms(const MemoryStorage& s) {
  std::vector<uint64_t> t;
  for (const Entry& e : log_entries(s)) t.push_back(e.term());
  return t;
}

inline std::string describe(const Message& m) { return m.ShortDebugString(); }

inline std::string describe(const std::vector<Message>& ms) {
  std::string out;
  for (const Message& m : ms) out += "\n  " + m.ShortDebugString();
  return out.empty() ? " (none)" : out;
}

inline bool is_type(const Message& m, MessageType t) { return m.type() == t; }

inline std::vector<Message> filter(const std::vector<Message>& ms,
                                   const std::function<bool(const Message&)>& pred) {
  std::vector<Message> out;
  for (const Message& m : ms)
    if (pred(m)) out.push_back(m);
  return out;
}

inline std::vector<Message> of_type(const std::vector<Message>& ms, MessageType t) {
  return filter(ms, [t](const Message& m) { return m.type() == t; });
}

struct Member {
  uint64_t id = kNone;
  Options opts;
  std::unique_ptr<MemoryStorage> storage;
  std::unique_ptr<Node> node;
  uint64_t applied_index = 0;
  std::vector<Entry> applied;          // committed entries handed out, in order
  std::vector<ReadState> read_states;  // every ReadState handed out
  std::vector<Message> sent;           // every message handed out, in order
  // Readies whose entries started at or below the persisted last index while
  // the node was leader, i.e. a leader rewriting its own log (paper §5.3,
  // Leader Append-Only).
  int leader_log_rewrites = 0;
};

// A set of members plus the message queue between them. Voters named in the
// configuration but never add()ed are virtual peers: their messages stay in
// the queue for the test to take() and answer.
class Network {
 public:
  explicit Network(std::vector<uint64_t> voters, Options opts = {})
      : voters_(std::move(voters)), opts_(opts) {}

  // Adds a real member; by default with a freshly bootstrapped storage.
  Member& add(uint64_t id, std::unique_ptr<MemoryStorage> storage = nullptr,
              std::optional<Options> opts = std::nullopt) {
    auto m = std::make_unique<Member>();
    m->id = id;
    m->storage = storage ? std::move(storage) : new_storage(voters_);
    m->applied_index = m->storage->first_index() - 1;
    m->opts = opts ? *opts : opts_;
    Member& ref = *m;
    members_[id] = std::move(m);
    start(ref);
    return ref;
  }

  // A crash and restart: the Node and everything it had not handed out are
  // lost; a new Node is built from what was persisted, told what was applied.
  void restart(uint64_t id) {
    Member& m = member(id);
    m.node.reset();
    start(m);
  }

  // Adds every voter as a real member.
  void add_all() {
    for (uint64_t id : voters_) add(id);
  }

  bool is_member(uint64_t id) const { return members_.count(id) != 0; }
  Member& member(uint64_t id) {
    auto it = members_.find(id);
    QKV_CHECK(it != members_.end()) << "no member " << id;
    return *it->second;
  }
  Node& node(uint64_t id) { return *member(id).node; }
  MemoryStorage& storage(uint64_t id) { return *member(id).storage; }
  HardState hard_state(uint64_t id) { return storage(id).initial_state().hard_state; }
  std::vector<uint64_t> member_ids() const {
    std::vector<uint64_t> ids;
    for (const auto& [id, m] : members_) ids.push_back(id);
    return ids;
  }

  // Handles every Ready `id` has, as node.h prescribes. Returns the messages
  // they held (also queued). If `readies` is given, each Ready is appended.
  std::vector<Message> process(uint64_t id, std::vector<Ready>* readies = nullptr) {
    Member& m = member(id);
    std::vector<Message> out;
    for (int i = 0; m.node->has_ready(); ++i) {
      if (i >= 1000) {
        ADD_FAILURE() << "node " << id << " keeps producing Readies";
        break;
      }
      Ready rd = m.node->ready();
      handle(m, rd, &out);
      if (readies) readies->push_back(rd);
      m.node->advance();
    }
    return out;
  }

  // Persists and applies one Ready for member `m` and queues its messages,
  // without calling advance(). For tests that drive a Ready by hand.
  void handle(Member& m, const Ready& rd, std::vector<Message>* out = nullptr) {
    queue(m, rd.messages, out);
    if (rd.snapshot) {
      Status s = m.storage->apply_snapshot(*rd.snapshot);
      EXPECT_TRUE(s.is_ok()) << "node " << m.id << " apply_snapshot: " << s.to_string();
      m.applied_index = rd.snapshot->metadata().index();
    }
    if (!rd.entries.empty()) {
      if (m.node->role() == Role::kLeader &&
          rd.entries.front().index() <= m.storage->last_index()) {
        ++m.leader_log_rewrites;
      }
      Status s = m.storage->append(rd.entries);
      EXPECT_TRUE(s.is_ok()) << "node " << m.id << " append: " << s.to_string();
    }
    if (rd.hard_state) {
      HardState old = m.storage->initial_state().hard_state;
      const HardState& hs = *rd.hard_state;
      EXPECT_GE(hs.term(), old.term()) << "node " << m.id << ": term went back";
      if (hs.term() == old.term() && old.vote() != kNone) {
        EXPECT_EQ(hs.vote(), old.vote())
            << "node " << m.id << " voted for two candidates in term " << hs.term();
      }
      EXPECT_GE(hs.commit(), old.commit()) << "node " << m.id << ": commit went back";
      m.storage->set_hard_state(hs);
    }
    queue(m, rd.messages_after_persist, out);
    for (const Entry& e : rd.committed_entries) {
      EXPECT_EQ(e.index(), m.applied_index + 1)
          << "node " << m.id << " applies out of order: " << e.ShortDebugString();
      m.applied_index = e.index();
      m.applied.push_back(e);
    }
    for (const ReadState& r : rd.read_states) m.read_states.push_back(r);
  }

  void process_all() {
    for (uint64_t id : member_ids()) process(id);
  }

  // Steps `msg` into its recipient (a member) and handles the Readies.
  Status step(const Message& msg) {
    Status s = node(msg.to()).step(msg);
    process(msg.to());
    return s;
  }

  std::deque<Message>& pending() { return pending_; }

  // Removes and returns the queued messages matching `pred`.
  std::vector<Message> take(const std::function<bool(const Message&)>& pred) {
    std::vector<Message> out;
    std::deque<Message> keep;
    for (Message& m : pending_) {
      if (pred(m)) {
        out.push_back(std::move(m));
      } else {
        keep.push_back(std::move(m));
      }
    }
    pending_ = std::move(keep);
    return out;
  }
  std::vector<Message> take_all() {
    return take([](const Message&) { return true; });
  }
  std::vector<Message> take_to(uint64_t to) {
    return take([to](const Message& m) { return m.to() == to; });
  }

  // Delivers queued messages matching `pred`, oldest first, including those
  // produced on the way, until none is left. Messages across a cut are
  // dropped; messages to virtual peers stay queued. Returns how many were
  // delivered.
  size_t deliver_if(const std::function<bool(const Message&)>& pred) {
    size_t delivered = 0;
    for (;;) {
      auto it = std::find_if(pending_.begin(), pending_.end(), [&](const Message& m) {
        return pred(m) && (dropped(m) || is_member(m.to()));
      });
      if (it == pending_.end()) break;
      Message m = std::move(*it);
      pending_.erase(it);
      if (dropped(m)) continue;
      (void)step(m);
      if (++delivered > 200000) {
        ADD_FAILURE() << "messages never stop flowing";
        break;
      }
    }
    return delivered;
  }

  // Handles every Ready and delivers every message until the network is quiet.
  size_t stabilize() {
    process_all();
    return deliver_if([](const Message&) { return true; });
  }

  // Ticks one node n times, handling its Readies after each tick. Nothing is
  // delivered.
  void tick(uint64_t id, int n = 1) {
    for (int i = 0; i < n; ++i) {
      node(id).tick();
      process(id);
    }
  }

  // n rounds of: tick every member, then stabilize.
  void tick_all(int n = 1) {
    for (int i = 0; i < n; ++i) {
      for (uint64_t id : member_ids()) tick(id);
      stabilize();
    }
  }

  void isolate(uint64_t id) { isolated_.insert(id); }
  void cut(uint64_t a, uint64_t b) {
    cut_.insert({a, b});
    cut_.insert({b, a});
  }
  void heal() {
    isolated_.clear();
    cut_.clear();
  }
  bool dropped(const Message& m) const {
    return isolated_.count(m.from()) || isolated_.count(m.to()) || cut_.count({m.from(), m.to()});
  }

  // The members that consider themselves leader.
  std::vector<uint64_t> leaders() {
    std::vector<uint64_t> out;
    for (auto& [id, m] : members_)
      if (m->node->role() == Role::kLeader) out.push_back(id);
    return out;
  }

  const std::vector<uint64_t>& voters() const { return voters_; }

 private:
  void start(Member& m) {
    Config cfg = make_config(m.id, m.storage.get(), m.opts);
    cfg.applied = m.applied_index;
    auto r = Node::create(cfg);
    EXPECT_TRUE(r.is_ok()) << "Node::create(" << m.id << "): " << r.status().to_string();
    if (r.is_ok()) m.node = std::move(*r);
  }

  void queue(Member& m, const std::vector<Message>& ms, std::vector<Message>* out) {
    for (const Message& msg : ms) {
      EXPECT_EQ(msg.group(), kGroup) << "node " << m.id << " sent " << describe(msg);
      EXPECT_EQ(msg.from(), m.id) << "node " << m.id << " sent " << describe(msg);
      m.sent.push_back(msg);
      pending_.push_back(msg);
      if (out) out->push_back(msg);
    }
  }

  std::vector<uint64_t> voters_;
  Options opts_;
  std::map<uint64_t, std::unique_ptr<Member>> members_;
  std::deque<Message> pending_;
  std::set<uint64_t> isolated_;
  std::set<std::pair<uint64_t, uint64_t>> cut_;
};

// Answers every (pre-)vote request queued for a virtual peer with a grant (or
// a rejection, for peers in `rejecters`) and steps the answers into the
// candidate. Returns how many requests were answered.
inline int answer_votes(Network& net, uint64_t candidate,
                        const std::set<uint64_t>& rejecters = {}) {
  auto reqs = net.take([&](const Message& m) {
    return m.from() == candidate && !net.is_member(m.to()) &&
           (m.type() == raftpb::MSG_VOTE || m.type() == raftpb::MSG_PRE_VOTE);
  });
  for (const Message& req : reqs) {
    MessageType t =
        req.type() == raftpb::MSG_VOTE ? raftpb::MSG_VOTE_RESP : raftpb::MSG_PRE_VOTE_RESP;
    Message resp = make_msg(t, req.to(), candidate, req.term());
    resp.set_reject(rejecters.count(req.to()) != 0);
    (void)net.step(resp);
  }
  return static_cast<int>(reqs.size());
}

// Acknowledges, from every virtual peer, that it holds `id`'s log up to index.
inline void ack_append(Network& net, uint64_t id, const std::vector<uint64_t>& peers,
                       uint64_t index) {
  for (uint64_t p : peers) {
    Message resp = make_msg(raftpb::MSG_APP_RESP, p, id, net.node(id).term());
    resp.set_index(index);
    (void)net.step(resp);
  }
}

// Makes member `id` leader, the other voters being virtual peers that grant
// every (pre-)vote; then, if commit_noop, has them all acknowledge the
// leader's log so its no-op entry commits. Leaves the queue empty.
inline void elect_with_virtual_peers(Network& net, uint64_t id, bool commit_noop = true) {
  net.node(id).campaign();
  net.process(id);
  for (int i = 0; i < 3 && net.node(id).role() != Role::kLeader; ++i) {
    answer_votes(net, id);
  }
  ASSERT_EQ(net.node(id).role(), Role::kLeader) << "node " << id << " could not be elected";
  if (commit_noop) {
    std::vector<uint64_t> peers;
    for (uint64_t v : net.voters())
      if (v != id && !net.is_member(v)) peers.push_back(v);
    ack_append(net, id, peers, net.node(id).status().last_index);
    ASSERT_EQ(net.hard_state(id).commit(), net.node(id).status().last_index)
        << "the leader's no-op did not commit";
  }
  net.take_all();
}

}  // namespace qkv::raft::rafttest
