// The commands a node answers itself (kCmdLocal in the command table),
// INFO, and the HTTP endpoint (/health, /metrics).
#include <unistd.h>

#include <asio/experimental/as_tuple.hpp>
#include <fstream>
#include <random>
#include <sstream>

#include "server/reply_util.h"
#include "server/server.h"

namespace qkv::server {

using asio::awaitable;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto kTupleL = asio::experimental::as_tuple(asio::use_awaitable);

namespace {

// A Prometheus histogram in seconds.
void write_histogram(std::ostringstream& o, const char* name, const cluster::LatencyHistogram& h) {
  o << "# TYPE " << name << " histogram\n";
  uint64_t cum = 0;
  for (size_t b = 0; b < h.counts.size(); b++) {
    cum += h.counts[b];
    o << name << "_bucket{le=\"";
    if (b < h.kBoundsUs.size()) {
      o << static_cast<double>(h.kBoundsUs[b]) / 1e6;
    } else {
      o << "+Inf";
    }
    o << "\"} " << cum << "\n";
  }
  o << name << "_sum " << static_cast<double>(h.sum_us) / 1e6 << "\n";
  o << name << "_count " << cum << "\n";
}

bool glob(std::string_view p, std::string_view s) {
  size_t pi = 0, si = 0, star = std::string_view::npos, mark = 0;
  while (si < s.size()) {
    if (pi < p.size() && (p[pi] == '?' || p[pi] == s[si])) {
      pi++;
      si++;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = si;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') pi++;
  return pi == p.size();
}

uint64_t rss_bytes() {
  std::ifstream f("/proc/self/statm");
  uint64_t size = 0, rss = 0;
  f >> size >> rss;
  return rss * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

void command_info(net::ReplyWriter& w, const kv::CommandSpec& s) {
  w.array(10);
  w.bulk(s.name);
  w.integer(s.arity);
  auto flags = kv::redis_flag_names(s.flags);
  w.set(flags.size());
  for (auto f : flags) w.simple_string(f);
  w.integer(s.first_key);
  w.integer(s.last_key);
  w.integer(s.key_step);
  std::vector<std::string_view> cats;
  std::string_view c = s.acl_categories;
  while (!c.empty()) {
    auto sp = c.find(' ');
    auto tok = c.substr(0, sp);
    if (!tok.empty()) cats.push_back(tok);
    if (sp == std::string_view::npos) break;
    c.remove_prefix(sp + 1);
  }
  w.set(cats.size());
  for (auto x : cats) w.simple_string(x);
  std::vector<std::string_view> tips;
  std::string_view t = s.tips;
  while (!t.empty()) {
    auto sp = t.find(' ');
    auto tok = t.substr(0, sp);
    if (!tok.empty()) tips.push_back(tok);
    if (sp == std::string_view::npos) break;
    t.remove_prefix(sp + 1);
  }
  w.set(tips.size());
  for (auto x : tips) w.bulk(x);
  w.array(0);  // key specifications: not described
  w.array(s.subcommands.size());
  for (const auto& sub : s.subcommands) command_info(w, sub);
}

void command_docs(net::ReplyWriter& w, const kv::CommandSpec& s) {
  w.bulk(s.name);
  size_t n = 3 + (s.subcommands.empty() ? 0 : 1);
  w.map(n);
  w.bulk("summary");
  w.bulk(s.summary);
  w.bulk("since");
  w.bulk(s.since);
  w.bulk("group");
  w.bulk(s.group);
  if (!s.subcommands.empty()) {
    w.bulk("subcommands");
    w.map(s.subcommands.size());
    for (const auto& sub : s.subcommands) command_docs(w, sub);
  }
}

}  // namespace

void Server::execute_local(const std::shared_ptr<Client>& c, const kv::CommandSpec& spec,
                           std::vector<std::string>& args, ReplyFn& reply) {
  std::string out;
  net::ReplyWriter w(&out, c->proto);
  std::string name(spec.name);
  if (!spec.subcommands.empty() && args.size() >= 2 && lower(args[1]) == "help") {
    // CLIENT HELP, COMMAND HELP, CONFIG HELP: one line per subcommand.
    std::vector<std::string> lines;
    for (const auto& sub : spec.subcommands) {
      lines.push_back(std::string(sub.syntax));
      lines.push_back("    " + std::string(sub.summary));
    }
    w.array(lines.size());
    for (const auto& l : lines) w.simple_string(l);
    reply(std::move(out));
    return;
  }
  if (name == "ping") {
    if (args.size() == 1) {
      w.simple_string("PONG");
    } else if (args.size() == 2) {
      w.bulk(args[1]);
    } else {
      reply(err(kv::arity_error("ping")));
      return;
    }
  } else if (name == "echo") {
    w.bulk(args[1]);
  } else if (name == "quit") {
    w.ok();
    c->closing = true;
    c->quit = true;
    c->read_wake.cancel();
  } else if (name == "select") {
    int64_t db = 0;
    if (!net::parse_int64(args[1], &db)) {
      reply(err("ERR value is not an integer or out of range"));
      return;
    }
    if (db != 0) {
      reply(err("ERR DB index is out of range"));
      return;
    }
    w.ok();
  } else if (name == "auth") {
    std::string pass = args.size() == 2 ? args[1] : (args.size() == 3 ? args[2] : "");
    if (args.size() > 3) {
      reply(err("ERR syntax error"));
      return;
    }
    if (cfg_.requirepass.empty()) {
      reply(
          err("ERR AUTH <password> called without any password configured for the default "
              "user. Are you sure your configuration is correct?"));
      return;
    }
    if ((args.size() == 3 && args[1] != "default") || pass != cfg_.requirepass) {
      reply(err("WRONGPASS invalid username-password pair or user is disabled."));
      return;
    }
    c->authed = true;
    c->parser.set_authenticated(true);
    w.ok();
  } else if (name == "hello") {
    size_t i = 1;
    net::Protocol proto = c->proto;
    if (args.size() >= 2) {
      int64_t v = 0;
      if (!net::parse_int64(args[1], &v)) {
        reply(err("ERR Protocol version is not an integer or out of range"));
        return;
      }
      if (v != 2 && v != 3) {
        reply(err("NOPROTO unsupported protocol version"));
        return;
      }
      proto = v == 3 ? net::Protocol::kResp3 : net::Protocol::kResp2;
      i = 2;
    }
    for (; i < args.size(); i++) {
      std::string opt = lower(args[i]);
      if (opt == "auth" && i + 2 < args.size()) {
        if (cfg_.requirepass.empty() || args[i + 1] != "default" ||
            args[i + 2] != cfg_.requirepass) {
          reply(err("WRONGPASS invalid username-password pair or user is disabled."));
          return;
        }
        c->authed = true;
        c->parser.set_authenticated(true);
        i += 2;
      } else if (opt == "setname" && i + 1 < args.size()) {
        c->name = args[++i];
      } else {
        reply(err("ERR Syntax error in HELLO option '" + args[i] + "'"));
        return;
      }
    }
    if (!c->authed) {
      reply(
          err("NOAUTH HELLO must be called with the client already authenticated, otherwise "
              "the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the "
              "client and select the RESP protocol version at the same time"));
      return;
    }
    c->proto = proto;
    w.set_protocol(proto);
    w.map(7);
    w.bulk("server");
    w.bulk("redis");
    w.bulk("version");
    w.bulk("7.0.0");
    w.bulk("proto");
    w.integer(proto == net::Protocol::kResp3 ? 3 : 2);
    w.bulk("id");
    w.integer(static_cast<int64_t>(c->id));
    w.bulk("mode");
    w.bulk("standalone");
    w.bulk("role");
    w.bulk(node_->is_leader(1) ? "master" : "replica");
    w.bulk("modules");
    w.array(0);
  } else if (name == "command") {
    if (args.size() == 1) {
      auto table = kv::command_table();
      w.array(table.size());
      for (const auto& s : table) command_info(w, s);
    } else {
      std::string sub = lower(args[1]);
      if (sub == "count") {
        w.integer(static_cast<int64_t>(kv::command_table().size()));
      } else if (sub == "info") {
        if (args.size() == 2) {
          auto table = kv::command_table();
          w.array(table.size());
          for (const auto& s : table) command_info(w, s);
        } else {
          w.array(args.size() - 2);
          for (size_t i = 2; i < args.size(); i++) {
            const kv::CommandSpec* s = kv::find_command(args[i]);
            if (s) {
              command_info(w, *s);
            } else {
              w.null_array();
            }
          }
        }
      } else if (sub == "docs") {
        std::vector<const kv::CommandSpec*> specs;
        if (args.size() == 2) {
          for (const auto& s : kv::command_table()) specs.push_back(&s);
        } else {
          for (size_t i = 2; i < args.size(); i++) {
            if (auto* s = kv::find_command(args[i])) specs.push_back(s);
          }
        }
        w.map(specs.size());
        for (auto* s : specs) command_docs(w, *s);
      } else {
        reply(err(kv::unknown_subcommand_error("COMMAND", args[1])));
        return;
      }
    }
  } else if (name == "client") {
    std::string sub = lower(args[1]);
    if (sub == "id") {
      w.integer(static_cast<int64_t>(c->id));
    } else if (sub == "setname" && args.size() == 3) {
      for (char ch : args[2]) {
        if (ch == ' ' || ch == '\n' || ch < '!' || ch > '~') {
          reply(err("ERR Client names cannot contain spaces, newlines or special characters."));
          return;
        }
      }
      c->name = args[2];
      w.ok();
    } else if (sub == "getname") {
      if (c->name.empty()) {
        w.null();
      } else {
        w.bulk(c->name);
      }
    } else if (sub == "list") {
      std::string text;
      auto now = Clock::now();
      for (const auto& [id, wc] : clients_) {
        auto cc = wc.lock();
        if (!cc) continue;
        auto age = std::chrono::duration_cast<std::chrono::seconds>(now - cc->created).count();
        text += "id=" + std::to_string(cc->id) + " addr=" + cc->addr + " name=" + cc->name +
                " age=" + std::to_string(age) +
                " db=0 resp=" + std::to_string(cc->proto == net::Protocol::kResp3 ? 3 : 2) +
                " qbuf=" + std::to_string(cc->parser.buffered_bytes()) +
                " omem=" + std::to_string(cc->out.size()) + " cmd=" + std::string(cc->last_cmd) +
                "\n";
      }
      w.verbatim(text);
    } else if (sub == "tracking" || sub == "caching" || sub == "getredir" ||
               sub == "trackinginfo") {
      if (std::string e = client_tracking(c, sub, args, w); !e.empty()) {
        reply(err(e));
        return;
      }
    } else {
      reply(err(kv::unknown_subcommand_error("CLIENT", args[1])));
      return;
    }
  } else if (name == "config") {
    std::string sub = lower(args[1]);
    // Every setting under its flag's name (config.cc), then what Redis
    // clients look for.
    std::vector<std::pair<std::string, std::string>> params;
    for (const Setting& s : config_settings(cfg_)) params.emplace_back(s.name, setting_value(s));
    static const std::pair<const char*, const char*> kRedisOnly[] = {
        {"databases", "1"},
        // Redis settings that mean nothing here: accepted, fixed (docs/COMMANDS.md).
        {"appendonly", "yes"},
        {"appendfsync", "always"},
        {"save", ""},
        {"maxmemory", "0"},
        {"maxmemory-policy", "noeviction"},
        {"timeout", "0"},
        {"tcp-keepalive", "300"},
    };
    for (const auto& [k, v] : kRedisOnly) params.emplace_back(k, v);
    if (sub == "get") {
      std::vector<std::pair<std::string, std::string>> found;
      for (size_t i = 2; i < args.size(); i++) {
        std::string pat = lower(args[i]);
        for (const auto& p : params) {
          if (glob(pat, p.first) && std::find(found.begin(), found.end(), p) == found.end()) {
            found.push_back(p);
          }
        }
      }
      w.map(found.size());
      for (const auto& [k, v] : found) {
        w.bulk(k);
        w.bulk(v);
      }
    } else if (sub == "set") {
      if (args.size() % 2 != 0) {
        reply(err(kv::arity_error("config|set")));
        return;
      }
      for (size_t i = 2; i + 1 < args.size(); i += 2) {
        std::string k = lower(args[i]);
        const std::string& v = args[i + 1];
        int64_t n = 0;
        bool num = net::parse_int64(v, &n) && n >= 0;
        if (k == "maxclients" && num && n > 0) {
          cfg_.maxclients = static_cast<uint64_t>(n);
        } else if (k == "proto-max-bulk-len" && num && n > 0) {
          cfg_.proto_max_bulk_len = static_cast<uint64_t>(n);
        } else if (k == "client-query-buffer-limit" && num && n > 0) {
          cfg_.client_query_buffer_limit = static_cast<uint64_t>(n);
        } else if (k == "client-output-buffer-limit" && num && n > 0) {
          cfg_.client_output_buffer_limit = static_cast<uint64_t>(n);
        } else if (k == "requirepass") {
          cfg_.requirepass = v;
        } else if (k == "notify-keyspace-events") {
          if (std::string e = set_notify_keyspace_events(v); !e.empty()) {
            reply(err(e));
            return;
          }
        } else if (k == "tracking-table-max-keys" && num) {
          set_tracking_table_max_keys(static_cast<uint64_t>(n));
        } else if (k == "appendonly" || k == "appendfsync" || k == "save" || k == "maxmemory" ||
                   k == "maxmemory-policy" || k == "timeout" || k == "tcp-keepalive") {
          // Accepted and ignored: durability and memory are not these knobs here.
        } else {
          reply(
              err("ERR Unknown option or number of arguments for CONFIG SET - '" + args[i] + "'"));
          return;
        }
      }
      w.ok();
    } else if (sub == "resetstat") {
      stats_.commandstats.clear();
      stats_.commands_processed = 0;
      stats_.connections_received = 0;
      stats_.connections_rejected = 0;
      stats_.protocol_errors = 0;
      w.ok();
    } else {
      reply(err(kv::unknown_subcommand_error("CONFIG", args[1])));
      return;
    }
  } else if (name == "readonly") {
    c->stale_reads = true;
    w.ok();
  } else if (name == "readwrite") {
    c->stale_reads = false;
    w.ok();
  } else if (name == "raft") {
    execute_admin(std::move(args), c->proto, std::move(reply));
    return;
  } else if (name == "info") {
    std::string section = args.size() > 1 ? lower(args[1]) : "default";
    std::string text = info(section, c->proto);
    w.verbatim(text);
  } else {
    reply(err("ERR command '" + name + "' is not served by this node"));
    return;
  }
  reply(std::move(out));
}

std::string Server::make_run_id() {
  std::random_device rd;
  std::string id;
  static const char* hex = "0123456789abcdef";
  for (int i = 0; i < 40; i++) id.push_back(hex[rd() % 16]);
  return id;
}

std::string Server::info(const std::string& section, net::Protocol) {
  bool all = section == "all" || section == "everything";
  bool dflt = section == "default";
  auto want = [&](const char* s) { return all || dflt || section == s; };
  std::ostringstream o;
  auto up = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started_).count();
  auto groups = node_->status();
  const cluster::GroupStatus* g = groups.empty() ? nullptr : &groups[0];
  if (want("server")) {
    o << "# Server\r\nredis_version:7.0.0\r\nquorumkv_version:0.1.0\r\nredis_mode:standalone\r\n"
      << "os:Linux\r\narch_bits:" << sizeof(void*) * 8 << "\r\nrun_id:" << run_id_
      << "\r\nprocess_id:" << getpid() << "\r\ntcp_port:" << client_port()
      << "\r\nuptime_in_seconds:" << up << "\r\nuptime_in_days:" << up / 86400
      << "\r\nnode_name:" << cfg_.name << "\r\nnode_id:" << node_->id() << "\r\n\r\n";
  }
  if (want("clients")) {
    size_t n = 0;
    for (const auto& [id, wc] : clients_) n += !wc.expired();
    o << "# Clients\r\nconnected_clients:" << n << "\r\nmaxclients:" << cfg_.maxclients
      << "\r\nblocked_clients:" << blocked_clients() << "\r\n\r\n";
  }
  if (want("memory")) {
    const uint64_t rss = rss_bytes();
    peak_rss_ = std::max(peak_rss_, rss);
    auto human = [](uint64_t b) {
      char s[32];
      std::snprintf(s, sizeof s, "%.2fM", static_cast<double>(b) / (1 << 20));
      return std::string(s);
    };
    o << "# Memory\r\nused_memory:" << rss << "\r\nused_memory_human:" << human(rss)
      << "\r\nused_memory_rss:" << rss << "\r\nused_memory_rss_human:" << human(rss)
      << "\r\nused_memory_peak:" << peak_rss_ << "\r\nused_memory_peak_human:" << human(peak_rss_)
      << "\r\nmem_fragmentation_ratio:1.00\r\nmaxmemory:0\r\nmaxmemory_human:0B"
      << "\r\nmaxmemory_policy:noeviction\r\n";
    if (store_) {
      // Where the state machine's memory goes (their limits: state-*-bytes
      // and read-cache-bytes).
      const storage::StateStore::MemoryUse m = store_->memory_use();
      o << "state_memtables_bytes:" << m.memtables
        << "\r\nstate_block_cache_bytes:" << m.block_cache
        << "\r\nstate_table_readers_bytes:" << m.table_readers
        << "\r\nstate_read_cache_bytes:" << store_->read_cache_stats().bytes << "\r\n";
    }
    o << "\r\n";
  }
  if (want("persistence")) {
    o << "# Persistence\r\nloading:0\r\naof_enabled:1\r\naof_rewrite_in_progress:0"
      << "\r\naof_last_write_status:" << (node_->fatal_error().empty() ? "ok" : "err")
      << "\r\nrdb_changes_since_last_save:0\r\nrdb_bgsave_in_progress:0"
      << "\r\nrdb_last_bgsave_status:ok\r\nquorumkv_durability:majority-fsync\r\n";
    if (g) o << "raft_snapshot_index:" << g->snapshot_index << "\r\n";
    o << "\r\n";
  }
  if (want("stats")) {
    o << "# Stats\r\ntotal_connections_received:" << stats_.connections_received
      << "\r\ntotal_commands_processed:" << stats_.commands_processed
      << "\r\nrejected_connections:" << stats_.connections_rejected
      << "\r\nexpired_keys:" << (sm_ ? sm_->expired_keys_deleted() : 0)
      << "\r\ntotal_error_replies:0\r\nprotocol_errors:" << stats_.protocol_errors
      << "\r\nforwarded_commands:" << stats_.forwarded
      << "\r\nclusterdown_replies:" << stats_.clusterdown;
    const storage::ReadCache::Stats rc =
        store_ ? store_->read_cache_stats() : storage::ReadCache::Stats{};
    o << "\r\nread_cache_hits:" << rc.hits << "\r\nread_cache_misses:" << rc.misses
      << "\r\nread_cache_entries:" << rc.entries << "\r\nread_cache_bytes:" << rc.bytes
      << "\r\nread_cache_evictions:" << rc.evictions << "\r\n\r\n";
  }
  if (want("replication") && g) {
    bool leader = g->raft.soft_state.role == raft::Role::kLeader;
    o << "# Replication\r\nrole:" << (leader ? "master" : "slave") << "\r\n";
    if (!leader && g->raft.soft_state.lead != raft::kNone) {
      auto a = node_->peer_address(g->raft.soft_state.lead);
      o << "master_node_id:" << g->raft.soft_state.lead << "\r\n";
      if (a) o << "master_peer_addr:" << a->host << ":" << a->port << "\r\n";
      o << "master_link_status:up\r\n";
    }
    o << "connected_slaves:" << (leader ? g->raft.progress.size() - 1 : 0)
      << "\r\nmaster_repl_offset:" << g->applied << "\r\n\r\n";
  }
  if (want("raft") && g) {
    o << "# Raft\r\nraft_group:" << g->group
      << "\r\nraft_role:" << raft::role_name(g->raft.soft_state.role)
      << "\r\nraft_term:" << g->raft.hard_state.term()
      << "\r\nraft_leader:" << g->raft.soft_state.lead
      << "\r\nraft_commit_index:" << g->raft.hard_state.commit()
      << "\r\nraft_applied_index:" << g->applied << "\r\nraft_last_index:" << g->raft.last_index
      << "\r\nraft_first_index:" << g->first_index << "\r\nraft_apply_lag:"
      << (g->raft.hard_state.commit() - std::min(g->applied, g->raft.hard_state.commit()))
      << "\r\nraft_pending_proposals:" << g->pending_proposals
      << "\r\nraft_pending_reads:" << g->pending_reads << "\r\nraft_ticks_late:" << g->ticks_late
      << "\r\n";
    for (const auto& [id, pr] : g->raft.progress) {
      o << "raft_member_" << id << ":match=" << pr.match << ",next=" << pr.next
        << ",state=" << pr.state << ",learner=" << (pr.learner ? 1 : 0)
        << ",lag=" << (g->raft.last_index - std::min(pr.match, g->raft.last_index)) << "\r\n";
    }
    for (const auto& ss : node_->snapshot_status()) {
      if (ss.group != g->group) continue;
      o << "snapshot_receiving:" << (ss.recv_source != 0 ? 1 : 0);
      if (ss.recv_source != 0) {
        o << "\r\nsnapshot_recv_from:" << ss.recv_source
          << "\r\nsnapshot_recv_index:" << ss.recv_index
          << "\r\nsnapshot_recv_bytes:" << ss.recv.bytes_done
          << "\r\nsnapshot_recv_total_bytes:" << ss.recv.bytes_total
          << "\r\nsnapshot_recv_rate_bytes_per_sec:"
          << static_cast<uint64_t>(ss.recv.rate_bytes_per_s)
          << "\r\nsnapshot_recv_eta_sec:" << static_cast<int64_t>(ss.recv.eta_s);
      }
      o << "\r\nsnapshot_serving_index:" << ss.send_index
        << "\r\nsnapshot_building:" << (ss.send_building ? 1 : 0);
      if (ss.send_building) {
        o << "\r\nsnapshot_build_bytes:" << ss.send_build.bytes_done
          << "\r\nsnapshot_build_estimated_bytes:" << ss.send_build.bytes_total;
      }
      o << "\r\nsnapshots_installed:" << ss.received_total
        << "\r\nsnapshot_recv_bytes_total:" << ss.recv_bytes_total
        << "\r\nsnapshots_written:" << ss.built_total
        << "\r\nsnapshot_sent_bytes_total:" << ss.sent_bytes_total << "\r\n";
    }
    o << "\r\n";
  }
  if (all || section == "commandstats") {
    o << "# Commandstats\r\n";
    for (const auto& [cmd, cs] : stats_.commandstats) {
      o << "cmdstat_" << cmd << ":calls=" << cs.first << ",usec=" << cs.second
        << ",usec_per_call=" << (cs.first ? static_cast<double>(cs.second) / cs.first : 0.0)
        << ",rejected_calls=0,failed_calls=0\r\n";
    }
    o << "\r\n";
  }
  if (want("keyspace")) {
    o << "# Keyspace\r\n";
    if (sm_ && sm_->key_count() > 0) {
      o << "db0:keys=" << sm_->key_count() << ",expires=" << sm_->expires_count()
        << ",avg_ttl=0\r\n";
    }
  }
  return o.str();
}

std::string Server::metrics() {
  std::ostringstream o;
  auto groups = node_->status();
  for (const auto& g : groups) {
    std::string l = "{group=\"" + std::to_string(g.group) + "\"}";
    o << "quorumkv_raft_role"
      << "{group=\"" << g.group << "\",role=\"" << raft::role_name(g.raft.soft_state.role)
      << "\"} 1\n";
    o << "quorumkv_raft_is_leader" << l << " "
      << (g.raft.soft_state.role == raft::Role::kLeader ? 1 : 0) << "\n";
    o << "quorumkv_raft_term" << l << " " << g.raft.hard_state.term() << "\n";
    o << "quorumkv_raft_commit_index" << l << " " << g.raft.hard_state.commit() << "\n";
    o << "quorumkv_raft_applied_index" << l << " " << g.applied << "\n";
    o << "quorumkv_raft_apply_lag" << l << " "
      << (g.raft.hard_state.commit() - std::min(g.applied, g.raft.hard_state.commit())) << "\n";
  }
  for (const auto& ss : node_->snapshot_status()) {
    std::string l = "{group=\"" + std::to_string(ss.group) + "\"}";
    o << "quorumkv_snapshot_receiving" << l << " " << (ss.recv_source != 0 ? 1 : 0) << "\n";
    o << "quorumkv_snapshot_recv_bytes" << l << " " << ss.recv.bytes_done << "\n";
    o << "quorumkv_snapshot_recv_total_bytes" << l << " " << ss.recv.bytes_total << "\n";
    o << "quorumkv_snapshot_recv_rate_bytes_per_second" << l << " " << ss.recv.rate_bytes_per_s
      << "\n";
    o << "quorumkv_snapshot_recv_eta_seconds" << l << " " << ss.recv.eta_s << "\n";
    o << "quorumkv_snapshot_building" << l << " " << (ss.send_building ? 1 : 0) << "\n";
    o << "quorumkv_snapshot_build_bytes" << l << " " << ss.send_build.bytes_done << "\n";
    o << "quorumkv_snapshots_installed_total" << l << " " << ss.received_total << "\n";
    o << "quorumkv_snapshot_recv_bytes_total" << l << " " << ss.recv_bytes_total << "\n";
    o << "quorumkv_snapshots_written_total" << l << " " << ss.built_total << "\n";
    o << "quorumkv_snapshot_sent_bytes_total" << l << " " << ss.sent_bytes_total << "\n";
  }
  if (store_) {
    const storage::StateStore::MemoryUse m = store_->memory_use();
    o << "quorumkv_state_memtables_bytes " << m.memtables << "\n";
    o << "quorumkv_state_block_cache_bytes " << m.block_cache << "\n";
    o << "quorumkv_state_table_readers_bytes " << m.table_readers << "\n";
    o << "quorumkv_state_read_cache_bytes " << store_->read_cache_stats().bytes << "\n";
  }
  write_histogram(o, "quorumkv_wal_fsync_seconds", node_->fsync_latency());
  write_histogram(o, "quorumkv_proposal_seconds", node_->proposal_latency());
  const storage::WalStats ws = node_->wal_stats();
  o << "quorumkv_wal_syncs_total " << ws.syncs << "\n";
  o << "quorumkv_wal_segments_live " << ws.live_segments << "\n";
  o << "quorumkv_wal_segments_created_total " << ws.segments_created << "\n";
  o << "quorumkv_wal_spares_made_total " << ws.spares_made << "\n";
  o << "quorumkv_wal_spares_used_total " << ws.spares_used << "\n";
  o << "quorumkv_wal_spare_failures_total " << ws.spare_failures << "\n";
  o << "# TYPE quorumkv_commands_total counter\n";
  for (const auto& [cmd, cs] : stats_.commandstats) {
    o << "quorumkv_commands_total{command=\"" << cmd << "\"} " << cs.first << "\n";
  }
  o << "quorumkv_connections_total " << stats_.connections_received << "\n";
  o << "quorumkv_clusterdown_total " << stats_.clusterdown << "\n";
  return o.str();
}

awaitable<void> Server::http_accept_loop(Alive alive) {
  if (!*alive) co_return;
  for (;;) {
    auto [ec, s] = co_await http_acceptor_->async_accept(kTupleL);
    if (!*alive || stopped_) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      continue;
    }
    asio::co_spawn(io_, http_session(std::move(s), alive), asio::detached);
  }
}

awaitable<void> Server::http_session(tcp::socket s, Alive alive) {
  if (!*alive) co_return;
  std::string req;
  char buf[4096];
  while (req.find("\r\n\r\n") == std::string::npos && req.size() < 16384) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), kTupleL);
    if (ec || !*alive) co_return;
    req.append(buf, n);
  }
  std::string path;
  {
    auto sp1 = req.find(' ');
    auto sp2 = req.find(' ', sp1 + 1);
    if (sp1 != std::string::npos && sp2 != std::string::npos)
      path = req.substr(sp1 + 1, sp2 - sp1 - 1);
  }
  std::string body, status = "200 OK", type = "text/plain; version=0.0.4";
  if (path == "/metrics") {
    body = metrics();
  } else if (path == "/health") {
    bool ok = node_->fatal_error().empty() && node_->leader(1) != raft::kNone;
    if (!ok) status = "503 Service Unavailable";
    body = ok ? "ok\n"
              : ("unhealthy: " +
                 (node_->fatal_error().empty() ? std::string("no leader") : node_->fatal_error()) +
                 "\n");
  } else {
    status = "404 Not Found";
    body = "not found\n";
  }
  std::string resp = "HTTP/1.1 " + status + "\r\nContent-Type: " + type +
                     "\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\nConnection: close\r\n\r\n" + body;
  co_await asio::async_write(s, asio::buffer(resp), kTupleL);
  asio::error_code ec;
  s.close(ec);
}

}  // namespace qkv::server
