// MULTI / EXEC / DISCARD / WATCH / UNWATCH.
//
// Commands sent after MULTI are checked (known, right arity, a data
// command) and queued; EXEC runs them as one unit: a transaction with a
// write is proposed as ONE Raft entry (a kvpb.KvBatch of its commands), so
// every replica applies all of it at one point of the log, with nothing in
// between (atomic and isolated); a read-only transaction runs its reads back
// to back after one read barrier. The reply is the array of the commands'
// replies; as in Redis, a command that fails at run time (WRONGTYPE, ...)
// leaves its error in the array and the others still run. A command refused
// while queueing makes EXEC answer EXECABORT.
#include <set>

#include "kv/kv.pb.h"
#include "server/reply_util.h"
#include "server/server.h"

#include "kv/waiters.h"

namespace qkv::server {

namespace {
using Clock = std::chrono::steady_clock;
}  // namespace

bool Server::handle_transaction(const std::shared_ptr<Client>& c, std::vector<std::string>& args,
                                const kv::CommandSpec* spec, ReplyFn& reply) {
  const std::string name = lower(args[0]);
  const bool txn_cmd = name == "multi" || name == "exec" || name == "discard" ||
                       name == "watch" || name == "unwatch";
  if (!txn_cmd && !c->in_multi) return false;
  if (!c->authed && !(spec != nullptr && (spec->flags & kv::kCmdNoAuth))) {
    if (c->in_multi) c->multi_dirty = true;
    reply(err("NOAUTH Authentication required."));
    return true;
  }
  auto reset = [&] {
    c->in_multi = false;
    c->multi_dirty = false;
    c->multi_queue.clear();
    c->multi_bytes = 0;
    c->watched.clear();  // EXEC and DISCARD unwatch everything
  };
  if (name == "multi") {
    if (args.size() != 1) {
      reply(err(kv::arity_error("multi")));
    } else if (c->in_multi) {
      reply(err("ERR MULTI calls can not be nested"));
    } else {
      c->in_multi = true;
      reply("+OK\r\n");
    }
    return true;
  }
  if (name == "discard") {
    if (args.size() != 1) {
      reply(err(kv::arity_error("discard")));
    } else if (!c->in_multi) {
      reply(err("ERR DISCARD without MULTI"));
    } else {
      reset();
      reply("+OK\r\n");
    }
    return true;
  }
  if (name == "watch") {
    if (c->in_multi) {
      c->multi_dirty = true;  // as Redis: the error also aborts the transaction
      reply(err("ERR WATCH inside MULTI is not allowed"));
    } else if (args.size() < 2) {
      reply(err(kv::arity_error("watch")));
    } else {
      // The applied index here is at most the commit index, so a write
      // acknowledged before this WATCH is at or below it: EXEC never misses
      // a change, and may abort for a write this node had not applied yet
      // (a retry then succeeds).
      const uint64_t at = sm_->applied_index();
      for (size_t i = 1; i < args.size(); i++) c->watched.emplace_back(std::move(args[i]), at);
      reply("+OK\r\n");
    }
    return true;
  }
  if (name == "unwatch") {
    if (args.size() != 1) {
      reply(err(kv::arity_error("unwatch")));
    } else if (c->in_multi) {
      reply("+QUEUED\r\n");  // as Redis: queued, and a no-op (EXEC unwatches anyway)
    } else {
      c->watched.clear();
      reply("+OK\r\n");
    }
    return true;
  }
  if (name == "exec") {
    if (args.size() != 1) {
      reply(err(kv::arity_error("exec")));
      return true;
    }
    if (!c->in_multi) {
      reply(err("ERR EXEC without MULTI"));
      return true;
    }
    if (c->multi_dirty) {
      reset();
      reply(err("EXECABORT Transaction discarded because of previous errors."));
      return true;
    }
    auto cmds = std::make_shared<Commands>(std::move(c->multi_queue));
    std::shared_ptr<const Watches> watches;
    if (!c->watched.empty()) watches = std::make_shared<const Watches>(std::move(c->watched));
    reset();
    stats_.commands_processed++;
    if (cmds->empty()) {
      reply("*0\r\n");
      return true;
    }
    if (fatal()) {
      reply(fatal_error_reply());
      return true;
    }
    bool all_reads = true;
    for (const auto& a : *cmds) {
      const kv::CommandSpec* s = kv::find_command(a[0]);
      all_reads = all_reads && s != nullptr && s->is_readonly();
    }
    const auto deadline = Clock::now() + std::chrono::milliseconds(cfg_.request_timeout_ms);
    if (watches) {
      // The leader checks the watched keys against its log, then proposes
      // (even a read-only transaction: the check and the reads must be one
      // point of the log).
      propose_or_forward(std::move(*cmds), Unit::kTransaction, c->proto, std::move(reply), deadline,
                         std::move(watches));
    } else if (all_reads && c->stale_reads) {
      // READONLY connection: the local state, as for single reads.
      std::string out = "*" + std::to_string(cmds->size()) + "\r\n";
      for (const auto& a : *cmds) {
        auto v = views(a);
        if (Status rs = sm_->execute_read(v, c->proto, now_ms(), &out); !rs.is_ok()) {
          reply(err("ERR " + rs.to_string()));
          return true;
        }
      }
      reply(std::move(out));
    } else if (all_reads) {
      read_with_barrier(std::move(cmds), /*txn=*/true, c->proto, std::move(reply), deadline);
    } else {
      propose_or_forward(std::move(*cmds), Unit::kTransaction, c->proto, std::move(reply), deadline);
    }
    return true;
  }
  // Inside MULTI: check and queue.
  if (spec == nullptr) {
    c->multi_dirty = true;
    auto v = views(args);
    reply(err(kv::unknown_command_error(v)));
    return true;
  }
  if (!kv::arity_ok(*spec, args.size())) {
    c->multi_dirty = true;
    reply(err(kv::arity_error(spec->name)));
    return true;
  }
  if (spec->is_local() || spec->handler == nullptr) {
    c->multi_dirty = true;
    reply(err("ERR '" + std::string(spec->name) +
              "' is not allowed inside MULTI here (only data commands are; docs/COMMANDS.md)"));
    return true;
  }
  const size_t bytes = command_bytes(args);
  if (c->multi_bytes + bytes > cfg_.multi_bytes_max) {
    c->multi_dirty = true;
    reply(err("ERR transaction exceeds multi-bytes-max (" + std::to_string(cfg_.multi_bytes_max) +
              " bytes)"));
    return true;
  }
  c->multi_bytes += bytes;
  c->multi_queue.push_back(std::move(args));
  reply("+QUEUED\r\n");
  return true;
}

void Server::forwarded_transaction(netpb::Forward&& f, ForwardAnswer answer) {
  kvpb::KvBatch batch;
  if (!batch.ParseFromString(f.payload()) || batch.requests_size() == 0) {
    answer('R', err("ERR malformed forwarded transaction"));
    return;
  }
  if (!node_->is_leader(kGroup)) {
    answer('A', {});
    return;
  }
  for (const auto& req : batch.requests()) {
    const kv::CommandSpec* spec = req.args_size() > 0 ? kv::find_command(req.args(0)) : nullptr;
    if (spec == nullptr || spec->is_local() || spec->handler == nullptr ||
        !kv::arity_ok(*spec, static_cast<size_t>(req.args_size())) || req.internal()) {
      answer('R', err("ERR forwarded transaction holds an invalid command"));
      return;
    }
  }
  if (f.watched_size() > 0) {
    Watches w;
    for (const auto& x : f.watched()) w.emplace_back(x.key(), x.index());
    if (watched_keys_changed(w)) {
      answer('N', {});
      return;
    }
  }
  batch.set_stamp_ms(now_ms());  // the leader stamps every entry
  node_->propose(kGroup, batch.SerializeAsString(), answer_proposal(std::move(answer), 'B'));
}

void Server::note_served_changes(const kv::ApplyEvents& ev) {
  for (const auto& [index, key] : ev.served_changes) {
    uint64_t& at = served_changes_[key];
    at = std::max(at, index);
  }
  if (served_changes_.size() < served_prune_at_) return;
  const uint64_t first = node_->log_bounds(kGroup).first;
  std::erase_if(served_changes_, [first](const auto& kv) { return kv.second < first; });
  served_prune_at_ = std::max(kServedChangesPruneMin, 2 * served_changes_.size());
}

bool Server::watched_keys_changed(const Watches& watches) {
  if (watches.empty()) return false;
  uint64_t from = UINT64_MAX;
  for (const auto& [k, index] : watches) from = std::min(from, index);
  const auto [first, last] = node_->log_bounds(kGroup);
  if (from + 1 < first) return true;  // compacted: cannot tell, so changed
  // Beyond watch-scan-entries-max entries the scan costs more than a retry.
  if (last > from + cfg_.watch_scan_entries_max) return true;
  std::set<std::string_view> keys;
  for (const auto& [k, index] : watches) keys.insert(k);
  auto changed = [&](std::string_view key, uint64_t entry) {
    if (!keys.count(key)) return false;
    for (const auto& [k, index] : watches) {
      if (k == key && entry > index) return true;
    }
    return false;
  };
  // Serving a blocked BLMOVE or BRPOPLPUSH changes its destination, which
  // the entry that pushed to its source does not name. Applied entries:
  // what their serving changed was noted (note_served_changes), unless this
  // process did not apply them itself (a restart, a snapshot).
  const uint64_t applied = sm_->applied_index();
  // A leader that has not applied up to a watch index yet (just elected)
  // cannot tell which blocked clients were queued then: changed.
  if (applied < from) return true;
  if (const uint64_t n = snapshots_installed(); n != served_snapshots_seen_) {
    served_snapshots_seen_ = n;
    served_known_from_ = std::max(served_known_from_, applied + 1);
  }
  if (from + 1 < served_known_from_) return true;
  for (const auto& [k, index] : watches) {
    auto it = served_changes_.find(k);
    if (it != served_changes_.end() && it->second > index) return true;
  }
  // Entries not applied yet: one that writes a key with blocked clients
  // may serve them, and what that changes is not known yet: assume it
  // changes a watched key.
  auto may_serve = [&](std::string_view key, uint64_t entry) {
    return entry > applied && sm_->waiter_total() > 0 && sm_->waiters_on(key) > 0;
  };
  uint64_t lo = from + 1;
  while (lo <= last) {
    auto ents = node_->log_entries(kGroup, lo, last + 1, 8ull << 20);
    if (!ents.is_ok() || ents->empty()) return true;
    for (const raftpb::Entry& e : *ents) {
      lo = e.index() + 1;
      if (e.type() != raftpb::ENTRY_NORMAL || e.data().empty()) continue;
      kvpb::KvBatch batch;
      if (!batch.ParseFromString(e.data())) continue;  // applied as an error, changes nothing
      for (const auto& req : batch.requests()) {
        if (req.args_size() == 0) continue;
        const std::string name = lower(req.args(0));
        if (req.internal() && name == kv::kDelExpiredCommand) {
          for (int i = 1; i < req.args_size(); i++) {
            if (changed(req.args(i), e.index())) return true;
          }
          continue;
        }
        std::vector<std::string_view> argv(req.args().begin(), req.args().end());
        if (req.internal() && name == kv::kBlockCommand && argv.size() > 3) {
          // A blocking command tried at once (kv/waiters.h): its own keys.
          const kv::CommandSpec* inner = kv::find_command(argv[3]);
          const std::span<const std::string_view> cmd(argv.begin() + 3, argv.end());
          if (inner == nullptr || !kv::arity_ok(*inner, cmd.size())) continue;
          for (size_t i : kv::command_keys(*inner, cmd)) {
            if (changed(cmd[i], e.index()) || may_serve(cmd[i], e.index())) return true;
          }
          continue;
        }
        if (req.internal() && name == kv::kTimersCommand) {
          // A lease ended: that lock was released, maybe granted to its
          // next waiter (a wait that ended changes no key).
          for (size_t i = 1; i < argv.size(); ++i) {
            const auto lock = kv::timer_lock_name(argv[i]);
            if (lock && changed(*lock, e.index())) return true;
          }
          continue;
        }
        const kv::CommandSpec* spec = kv::find_command(req.args(0));
        if (spec == nullptr || !spec->is_write()) continue;
        // A write without key positions (FLUSHDB, FLUSHALL) touches all;
        // so may a script (it can write keys it did not declare).
        if ((spec->first_key == 0 && spec->find_keys == nullptr) ||
            spec->name.starts_with("eval")) {
          for (const auto& [k, index] : watches) {
            if (e.index() > index) return true;
          }
          continue;
        }
        const size_t n = static_cast<size_t>(req.args_size());
        if (!kv::arity_ok(*spec, n)) continue;  // applied as an arity error: changes nothing
        for (size_t i : kv::command_keys(*spec, argv)) {
          const std::string& key = req.args(static_cast<int>(i));
          if (changed(key, e.index()) || may_serve(key, e.index())) return true;
        }
      }
    }
  }
  return false;
}

}  // namespace qkv::server
