// RAFT admin commands (membership, leadership, snapshots), used by quorumctl.
//
//   RAFT STATUS                        this node's view (any node)
//   RAFT MEMBERS                       members: name-derived id, peer address, role, progress
//   RAFT ADD-LEARNER name host:port    add a non-voting member (it catches up by log or snapshot)
//   RAFT ADD-VOTER name [host:port]    add a voter, or promote a learner
//   RAFT REMOVE name|id                remove a member
//   RAFT TRANSFER name|id              hand leadership to a voter
//   RAFT SNAPSHOT                      snapshot and compact this node's log now
//   RAFT DIGEST                        [applied index, digest of the group's state there]
//                                      (O(state): for tests and audits; replicas at the
//                                      same applied index must have the same digest)
//
// Changes run on the leader: a follower forwards them like writes.
#include <sstream>

#include "server/reply_util.h"
#include "server/server.h"

namespace qkv::server {

namespace {



// A member named by its name or by its numeric id.
uint64_t member_id(const std::string& s) {
  bool digits = !s.empty();
  for (char c : s) digits = digits && c >= '0' && c <= '9';
  if (digits && s.size() < 17) return std::stoull(s);
  return node_id_for_name(s);
}

}  // namespace

bool Server::is_admin_change(const std::vector<std::string>& args) {
  if (args.size() < 2 || upper(args[0]) != "RAFT") return false;
  std::string sub = upper(args[1]);
  return sub == "ADD-LEARNER" || sub == "ADD-VOTER" || sub == "REMOVE" || sub == "TRANSFER";
}

void Server::execute_admin(std::vector<std::string> args, net::Protocol proto, ReplyFn reply) {
  std::string out;
  net::ReplyWriter w(&out, proto);
  if (args.size() < 2) {
    reply(err("ERR wrong number of arguments for 'raft' command"));
    return;
  }
  std::string sub = upper(args[1]);
  auto groups = node_->status();
  const cluster::GroupStatus& g = groups.at(0);
  if (sub == "STATUS") {
    w.map(8);
    w.bulk("id");
    w.integer(static_cast<int64_t>(node_->id()));
    w.bulk("name");
    w.bulk(cfg_.name);
    w.bulk("role");
    w.bulk(raft::role_name(g.raft.soft_state.role));
    w.bulk("term");
    w.integer(static_cast<int64_t>(g.raft.hard_state.term()));
    w.bulk("leader");
    w.integer(static_cast<int64_t>(g.raft.soft_state.lead));
    w.bulk("commit");
    w.integer(static_cast<int64_t>(g.raft.hard_state.commit()));
    w.bulk("applied");
    w.integer(static_cast<int64_t>(g.applied));
    w.bulk("last_index");
    w.integer(static_cast<int64_t>(g.raft.last_index));
    reply(std::move(out));
    return;
  }
  if (sub == "MEMBERS") {
    // One line per member: id addr role [match lag state] (progress on the leader).
    const auto& cs = g.raft.conf_state;
    std::vector<std::pair<uint64_t, std::string>> members;
    for (auto id : cs.voters()) members.emplace_back(id, "voter");
    for (auto id : cs.voters_outgoing()) {
      bool in = false;
      for (auto& m : members) in = in || m.first == id;
      if (!in) members.emplace_back(id, "voter(outgoing)");
    }
    for (auto id : cs.learners()) members.emplace_back(id, "learner");
    for (auto id : cs.learners_next()) members.emplace_back(id, "voter(becoming learner)");
    w.array(members.size());
    for (const auto& [id, role] : members) {
      std::ostringstream line;
      auto a = node_->peer_address(id);
      line << "id=" << id << " addr=" << (a ? a->host + ":" + std::to_string(a->port) : "?")
           << " role=" << role;
      if (id == g.raft.soft_state.lead) line << " leader";
      if (id == node_->id()) line << " self";
      auto p = g.raft.progress.find(id);
      if (p != g.raft.progress.end()) {
        line << " match=" << p->second.match << " lag="
             << (g.raft.last_index - std::min(p->second.match, g.raft.last_index))
             << " state=" << p->second.state;
      }
      w.bulk(line.str());
    }
    reply(std::move(out));
    return;
  }
  if (sub == "DIGEST") {
    // A pinned, consistent view: the records and the applied index agree.
    auto src = sm_->open_snapshot();
    if (!src.is_ok()) {
      reply(err("ERR " + src.status().to_string()));
      return;
    }
    // FNV-1a over (key length, key, value length, value) of every record,
    // in key order.
    uint64_t h = 0xcbf29ce484222325ull;
    auto mix = [&h](std::string_view s) {
      for (unsigned char c : s) {
        h ^= c;
        h *= 0x100000001b3ull;
      }
    };
    auto mix_len = [&mix](size_t n) {
      char b[8];
      for (int i = 0; i < 8; i++) b[i] = static_cast<char>(n >> (8 * i));
      mix(std::string_view(b, 8));
    };
    uint64_t records = 0;
    for (;;) {
      std::string_view k, v;
      auto more = src->records->next(&k, &v);
      if (!more.is_ok()) {
        reply(err("ERR " + more.status().to_string()));
        return;
      }
      if (!*more) break;
      mix_len(k.size());
      mix(k);
      mix_len(v.size());
      mix(v);
      records++;
    }
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
    w.array(3);
    w.integer(static_cast<int64_t>(src->meta.index()));
    w.bulk(hex);
    w.integer(static_cast<int64_t>(records));
    reply(std::move(out));
    return;
  }
  if (sub == "SNAPSHOT") {
    Status s = node_->take_snapshot(1);
    reply(s.is_ok() ? std::string("+OK\r\n") : err("ERR " + s.to_string()));
    return;
  }
  if (!is_admin_change(args)) {
    reply(err("ERR unknown subcommand '" + args[1] + "'. Try RAFT HELP."));
    return;
  }
  // Changes: on the leader, or forwarded to it.
  if (!node_->is_leader(1)) {
    propose_or_forward(std::move(args), proto, std::move(reply),
                       std::chrono::steady_clock::now() +
                           std::chrono::milliseconds(cfg_.request_timeout_ms));
    return;
  }
  run_admin_change(std::move(args), std::move(reply));
}

void Server::run_admin_change(std::vector<std::string> args, ReplyFn reply) {
  std::string sub = upper(args[1]);
  auto done = [reply](Status s, std::string) {
    if (s.is_ok()) {
      reply("+OK\r\n");
    } else {
      reply(err("ERR " + s.to_string()));
    }
  };
  if (sub == "ADD-LEARNER" || sub == "ADD-VOTER") {
    if (args.size() == 3) {
      // Promoting a known member: its address is in the address book.
      if (auto a = node_->peer_address(member_id(args[2]))) {
        args.push_back(a->host + ":" + std::to_string(a->port));
      }
    }
    if (args.size() != 4) {
      reply(err("ERR usage: RAFT " + sub + " name host:port (the address may be left out for a "
                "known member)"));
      return;
    }
    auto hp = parse_host_port(args[3]);
    if (!hp.is_ok()) {
      reply(err("ERR " + hp.status().message()));
      return;
    }
    node_->add_member(1, member_id(args[2]), cluster::PeerAddress{hp->host, hp->port},
                      sub == "ADD-LEARNER", done);
  } else if (sub == "REMOVE") {
    if (args.size() != 3) {
      reply(err("ERR usage: RAFT REMOVE name|id"));
      return;
    }
    node_->remove_member(1, member_id(args[2]), done);
  } else if (sub == "TRANSFER") {
    if (args.size() != 3) {
      reply(err("ERR usage: RAFT TRANSFER name|id"));
      return;
    }
    Status s = node_->transfer_leader(1, member_id(args[2]));
    reply(s.is_ok() ? std::string("+OK\r\n") : err("ERR " + s.to_string()));
  }
}

}  // namespace qkv::server
