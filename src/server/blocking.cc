// Blocked clients: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH and LOCK ... WAIT
// (kv/waiters.h; docs/ARCHITECTURE.md decision 38).
//
// The node holding the connection names the waiter "<node>/<run_id>/<n>"
// and proposes `block <id> <lease> <command>`. Its reply is the command's
// answer when it could be served at once, or kBlockedReply; from then on
// the node answers the client when its own state machine applies the entry
// that served the waiter (ApplyEvents::served). That entry may come from
// any leader, before or after the reply to `block` arrives. Here, on the io
// thread, the node also:
//   - proposes `unblock` for the waiters of a connection that closed;
//   - renews the leases of its waiters without timeout (`renewblock`);
//   - as leader, proposes `timers` for due deadlines and lock leases;
//   - once after start, proposes `unblockstale` for its previous run's
//     waiters, which no connection waits for any more.
#include <string>
#include <vector>

#include "kv/waiters.h"
#include "server/reply_util.h"
#include "server/server.h"

namespace qkv::server {

namespace {

using Clock = std::chrono::steady_clock;

// Ids per renewal or unblock entry.
constexpr size_t kIdsPerEntry = 1000;
// Timers fired per `timers` entry.
constexpr size_t kTimersPerEntry = 256;

// LOCK waits only with WAIT ms > 0; without, it is a plain write.
bool lock_waits(const std::vector<std::string>& args) {
  if (args.size() != 6) return false;
  int64_t ms = 0;
  return net::parse_int64(args[5], &ms) && ms > 0;
}

}  // namespace

bool Server::execute_blocking(const std::shared_ptr<Client>& c, std::vector<std::string>& args,
                              ReplyFn reply) {
  const std::string name = lower(args[0]);
  if (!kv::is_blockable(name) || (name == "lock" && !lock_waits(args))) return false;
  if ((name == "xread" || name == "xreadgroup") &&
      !kv::stream_read_block_ms(views(args)).has_value()) {
    return false;  // no BLOCK: a plain read or write
  }
  if (fatal()) return false;  // execute_data answers it
  std::string id = cfg_.name + "/" + run_id_ + "/" + std::to_string(next_waiter_++);
  blocked_[id] = Blocked{c->id, std::move(reply)};
  std::vector<std::string> cmd{std::string(kv::kBlockCommand), id,
                               std::to_string(cfg_.block_lease_ms)};
  for (auto& a : args) cmd.push_back(std::move(a));
  auto alive = alive_;
  propose_or_forward(
      std::move(cmd), c->proto,
      [this, alive, id](std::string r) {
        if (!*alive) return;
        auto it = blocked_.find(id);
        if (it == blocked_.end()) return;  // served (or gone) already
        if (r == kv::kBlockedReply) {  // waits: an apply will answer it
          it->second.queued = true;
          return;
        }
        Blocked b = std::move(it->second);
        blocked_.erase(it);
        if (r.starts_with("-CLUSTERDOWN")) {
          // Maybe queued after all: make sure nothing is served to nobody.
          propose_or_forward(std::vector<std::string>{std::string(kv::kUnblockCommand), id},
                             net::Protocol::kResp2, [](std::string) {},
                             Clock::now() + std::chrono::milliseconds(cfg_.request_timeout_ms));
        }
        b.reply(std::move(r));
      },
      Clock::now() + std::chrono::milliseconds(cfg_.request_timeout_ms));
  return true;
}

size_t Server::blocked_clients() const {
  size_t n = 0;
  for (const auto& [id, b] : blocked_) n += b.queued ? 1 : 0;
  return n;
}

void Server::serve_blocked(kv::ApplyEvents& ev) {
  for (auto& s : ev.served) {
    auto it = blocked_.find(s.waiter_id);
    if (it == blocked_.end()) continue;  // another node's, or answered
    Blocked b = std::move(it->second);
    blocked_.erase(it);
    b.reply(std::move(s.reply));
  }
}

bool Server::unblock_client(const Client& c) {
  std::vector<std::string> cmd{std::string(kv::kUnblockCommand)};
  for (auto it = blocked_.begin(); it != blocked_.end();) {
    if (it->second.client_id == c.id) {
      cmd.push_back(it->first);
      it = blocked_.erase(it);
    } else {
      ++it;
    }
  }
  if (cmd.size() == 1) return false;
  if (stopped_) return true;
  // Best effort: if it fails, the waiters end with their deadline or lease.
  propose_or_forward(std::move(cmd), net::Protocol::kResp2, [](std::string) {},
                     Clock::now() + std::chrono::milliseconds(cfg_.request_timeout_ms));
  return true;
}

void Server::blocking_tick() {
  if (!sm_ || fatal()) return;
  const auto deadline = Clock::now() + std::chrono::milliseconds(cfg_.request_timeout_ms);
  auto alive = alive_;
  // The leader fires due deadlines and lock leases, one entry at a time.
  if (node_->is_leader(kGroup) && !timers_inflight_) {
    const int64_t t = now_ms();
    auto due = sm_->due_timers(t, kTimersPerEntry);
    if (!due.empty()) {
      std::vector<std::string_view> args{kv::kTimersCommand};
      for (const auto& d : due) args.push_back(d);
      timers_inflight_ = true;
      node_->propose(kGroup, kv::encode_internal(t, net::Protocol::kResp2, args),
                     [this, alive](Status, std::string) {
                       if (*alive) timers_inflight_ = false;
                     });
    }
  }
  if (node_->leader(kGroup) == raft::kNone) return;
  // Once: the previous run's waiters of this node.
  if (!stale_waiters_dropped_) {
    stale_waiters_dropped_ = true;
    propose_or_forward(
        std::vector<std::string>{std::string(kv::kUnblockStaleCommand), cfg_.name + "/",
                                 cfg_.name + "/" + run_id_ + "/"},
        net::Protocol::kResp2,
        [this, alive](std::string r) {
          if (*alive && !r.starts_with(":")) stale_waiters_dropped_ = false;  // again later
        },
        deadline);
  }
  // Leases of the waiters without timeout, renewed every third of a lease.
  const auto now = Clock::now();
  if (blocked_.empty() || now < next_renewal_) return;
  next_renewal_ = now + std::chrono::milliseconds(cfg_.block_lease_ms / 3);
  std::vector<std::string> cmd;
  for (const auto& [id, b] : blocked_) {
    if (cmd.empty()) cmd = {std::string(kv::kRenewBlockCommand), std::to_string(cfg_.block_lease_ms)};
    cmd.push_back(id);
    if (cmd.size() - 2 == kIdsPerEntry) {
      propose_or_forward(std::move(cmd), net::Protocol::kResp2, [](std::string) {}, deadline);
      cmd.clear();
    }
  }
  if (!cmd.empty()) {
    propose_or_forward(std::move(cmd), net::Protocol::kResp2, [](std::string) {}, deadline);
  }
}

}  // namespace qkv::server
