#include "server/config.h"

#include <toml++/toml.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "cluster/node.h"

namespace qkv::server {

Result<HostPort> parse_host_port(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size()) {
    return Status(Code::kInvalidArgument, "expected HOST:PORT, got '" + s + "'");
  }
  HostPort hp;
  hp.host = s.substr(0, colon);
  uint64_t port = 0;
  for (char c : s.substr(colon + 1)) {
    if (c < '0' || c > '9') return Status(Code::kInvalidArgument, "bad port in '" + s + "'");
    port = port * 10 + static_cast<uint64_t>(c - '0');
    if (port > 65535) return Status(Code::kInvalidArgument, "port out of range in '" + s + "'");
  }
  hp.port = static_cast<uint16_t>(port);
  return hp;
}

uint64_t node_id_for_name(const std::string& name) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : name) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  // Keep ids readable in logs and below 2^53 for JSON consumers.
  h &= (1ULL << 53) - 1;
  return h == 0 ? 1 : h;
}

Status ServerConfig::validate() const {
  auto bad = [](const std::string& m) { return Status(Code::kInvalidArgument, m); };
  if (name.empty()) return bad("--name must not be empty");
  if (data_dir.empty()) return bad("--data-dir must not be empty");
  if (tick_ms <= 0) return bad("tick-ms must be positive");
  if (election_ticks <= heartbeat_ticks) return bad("election-ticks must exceed heartbeat-ticks");
  if (read_mode != "readindex" && read_mode != "lease") {
    return bad("read-mode must be readindex or lease");
  }
  // A lease ends the node's lease margin before a follower may vote (the
  // tick granularity on each side), and should last at least as long again.
  const int lease_ticks_min = 2 * cluster::NodeOptions{}.lease_margin_ticks;
  if (read_mode == "lease" && election_ticks < lease_ticks_min) {
    return bad("read-mode lease needs election-ticks of at least " +
               std::to_string(lease_ticks_min) + " (or use read-mode readindex)");
  }
  if (!initial_cluster.empty() && !initial_cluster.count(name) && !join) {
    return bad("--initial-cluster does not name this node ('" + name + "')");
  }
  if (maxclients == 0) return bad("maxclients must be positive");
  if (client_pipeline_max == 0) return bad("client-pipeline-max must be positive");
  if (expire_interval_ms <= 0) return bad("expire-interval-ms must be positive");
  if (block_lease_ms < 300) return bad("block-lease-ms must be at least 300");
  if (expire_keys_per_entry == 0) return bad("expire-keys-per-entry must be positive");
  if (state_write_buffer_bytes < (1u << 20)) {
    return bad("state-write-buffer-bytes must be at least 1 MiB");
  }
  if (state_write_buffers_max < 2) return bad("state-write-buffers-max must be at least 2");
  if (wal_segment_bytes < (1u << 20)) return bad("wal-segment-bytes must be at least 1 MiB");
  if (wal_prefill_start_bytes > wal_segment_bytes) {
    return bad("wal-prefill-start-bytes must be at most wal-segment-bytes");
  }
  if (state_block_cache_bytes < (1u << 20)) {
    return bad("state-block-cache-bytes must be at least 1 MiB");
  }
  if (state_memtable != "indexed" && state_memtable != "skiplist") {
    return bad("state-memtable must be indexed or skiplist");
  }
  if (notify_keyspace_events.find_first_not_of("AKEg$lshzxetmnd") != std::string::npos) {
    return bad("notify-keyspace-events: invalid event class character; use 'Ag$lshzxeKEtmdn'");
  }
  return Status::ok();
}

namespace {

Status parse_cluster(const std::string& s, std::map<std::string, HostPort>* out) {
  out->clear();
  size_t pos = 0;
  while (pos < s.size()) {
    size_t comma = s.find(',', pos);
    std::string item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? s.size() : comma + 1;
    if (item.empty()) continue;
    auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status(Code::kInvalidArgument,
                    "--initial-cluster: expected name=HOST:PEERPORT, got '" + item + "'");
    }
    auto hp = parse_host_port(item.substr(eq + 1));
    if (!hp.is_ok()) return hp.status();
    (*out)[item.substr(0, eq)] = *hp;
  }
  return Status::ok();
}

}  // namespace

std::vector<Setting> config_settings(ServerConfig& c, SettingStrings* strings) {
  std::vector<Setting> settings = {
      {"name", &c.name, "this node's name (its id derives from it)"},
      {"data-dir", &c.data_dir, "data directory"},
      {"listen-client", strings ? &strings->listen_client : nullptr,
       "HOST:PORT for Redis clients (default 127.0.0.1:7379)"},
      {"listen-peer", strings ? &strings->listen_peer : nullptr,
       "HOST:PORT for other nodes (default 127.0.0.1:7380)"},
      {"listen-http", strings ? &strings->listen_http : nullptr,
       "HOST:PORT for /health and /metrics (default off)"},
      {"initial-cluster", strings ? &strings->initial_cluster : nullptr,
       "founding members: name=HOST:PEERPORT,... (default: this node alone)"},
      {"join", &c.join, "join an existing cluster instead of founding one"},
      {"cluster-id", &c.cluster_id, "refuse peers of another cluster"},
      {"tick-ms", &c.tick_ms, "Raft tick length"},
      {"election-ticks", &c.election_ticks, "election timeout in ticks"},
      {"heartbeat-ticks", &c.heartbeat_ticks, "heartbeat interval in ticks"},
      {"read-mode", &c.read_mode,
       "lease (default: reads on a leader lease, bounded clock drift) or readindex"},
      {"request-timeout-ms", &c.request_timeout_ms, "fail a request after this long"},
      {"snapshot-entries", &c.snapshot_entries, "snapshot every this many entries"},
      {"snapshot-chunk-bytes", &c.snapshot_chunk_bytes,
       "bytes per snapshot chunk request (at most 16 MiB)"},
      {"snapshot-bytes-max", &c.snapshot_bytes_max, "largest snapshot accepted"},
      {"multi-bytes-max", &c.multi_bytes_max,
       "bytes of commands in one MULTI or one pipelined run of writes (one Raft entry)"},
      {"watch-scan-entries-max", &c.watch_scan_entries_max,
       "log entries the leader scans at EXEC for WATCHed keys (more: aborted)"},
      {"snapshot-fetch-timeout-ms", &c.snapshot_fetch_timeout_ms,
       "repeat an unanswered snapshot chunk request after this long"},
      {"snapshot-recv-bytes-per-sec", &c.snapshot_recv_bytes_per_sec,
       "receive snapshots at most this fast (0: no limit)"},
      {"maxclients", &c.maxclients, "maximum client connections"},
      {"proto-max-bulk-len", &c.proto_max_bulk_len, "largest bulk string accepted"},
      {"client-query-buffer-limit", &c.client_query_buffer_limit,
       "bytes buffered per client without a complete command"},
      {"client-output-buffer-limit", &c.client_output_buffer_limit,
       "bytes of replies buffered per client before it is disconnected"},
      {"client-pipeline-max", &c.client_pipeline_max,
       "requests in flight per client before reading pauses"},
      {"expire-interval-ms", &c.expire_interval_ms, "how often the leader deletes expired keys"},
      {"expire-keys-per-entry", &c.expire_keys_per_entry, "expired keys deleted per log entry"},
      {"block-lease-ms", &c.block_lease_ms,
       "lease of a blocked client without timeout, renewed by its node"},
      {"requirepass", &c.requirepass, "password clients must AUTH with"},
      {"notify-keyspace-events", &c.notify_keyspace_events,
       "keyspace notification classes, as Redis's (e.g. KEA; default none)"},
      {"tracking-table-max-keys", &c.tracking_table_max_keys,
       "keys CLIENT TRACKING remembers before invalidating the oldest (0: no limit)"},
      {"read-cache-bytes", &c.read_cache_bytes,
       "memory for values read lately (and written, with --read-cache-fill-on-write), "
       "served without RocksDB (0: none)"},
      {"read-cache-value-bytes-max", &c.read_cache_value_bytes_max,
       "larger values are not kept in the read cache (at most a quarter of it)"},
      {"read-cache-fill-on-write", &c.read_cache_fill_on_write,
       "writes add keys to the read cache while it has room (yes/no; never evicting)"},
      {"state-write-buffer-bytes", &c.state_write_buffer_bytes,
       "RocksDB memtable size of the state machine"},
      {"state-write-buffers-max", &c.state_write_buffers_max,
       "RocksDB memtables at once (memory: this times state-write-buffer-bytes)"},
      {"state-block-cache-bytes", &c.state_block_cache_bytes, "RocksDB cache of table blocks"},
      {"state-memtable", &c.state_memtable,
       "RocksDB memtable of the state machine: indexed (versions found by a hash of the key) "
       "or skiplist (RocksDB's own)"},
      {"wal-prefill", &c.wal_prefill,
       "keep a zero-filled spare WAL segment ready, so each sync overwrites written "
       "blocks instead of also journaling newly used ones (yes/no)"},
      {"wal-segment-bytes", &c.wal_segment_bytes,
       "size of a WAL segment file: the log rotates to a new one when it is full (at least 1 MiB)"},
      {"wal-prefill-start-bytes", &c.wal_prefill_start_bytes,
       "with wal-prefill: bytes written to an ordinary (fallocated) segment before the first "
       "spare is made (at most wal-segment-bytes)"},
      {"log-level", &c.log_level, "debug, info, warn, error"},
      // The state machine's limits.
      {"keys-reply-max", &c.kv.keys_reply_max, "most keys one KEYS reply may hold"},
      {"scan-count-max", &c.kv.scan_count_max, "SCAN's COUNT is capped to this"},
      {"script-bytes-max", &c.kv.script_bytes_max, "largest script body (replicated)"},
      {"script-instructions-max", &c.kv.script_instructions_max,
       "Lua instructions one script run may execute (replicated)"},
      {"script-memory-bytes-max", &c.kv.script_memory_bytes_max,
       "Lua heap one script run may use (replicated)"},
      {"script-reply-bytes-max", &c.kv.script_reply_bytes_max,
       "largest reply of a script (replicated)"},
      {"script-cache-entries-max", &c.kv.script_cache_entries_max, "compiled scripts kept"},
      {"script-cache-bytes-max", &c.kv.script_cache_bytes_max, "bytes of compiled scripts kept"},
      {"stream-reply-entries-max", &c.kv.stream_reply_entries_max,
       "most stream entries one reply may hold (replicated)"},
  };
  std::erase_if(settings, [](const Setting& s) {
    return std::visit([](auto* v) { return v == nullptr; }, s.target);
  });
  return settings;
}

std::string setting_value(const Setting& s) {
  return std::visit(
      [](auto* v) -> std::string {
        using T = std::remove_pointer_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return *v;
        } else if constexpr (std::is_same_v<T, bool>) {
          return *v ? "yes" : "no";
        } else {
          return std::to_string(*v);
        }
      },
      s.target);
}

Result<ServerConfig> parse_config_args(std::vector<std::string> args) {
  ServerConfig c;
  std::string config_file;
  SettingStrings strings;
  const std::vector<Setting> settings = config_settings(c, &strings);

  CLI::App app{
      "quorumkv: a strongly consistent, Raft-replicated server speaking the Redis protocol"};
  app.add_option("--config", config_file, "TOML file; every flag has a key of the same name");
  for (const Setting& s : settings) {
    const std::string flag = std::string("--") + s.name;
    if (std::string_view(s.name) == "join") {
      app.add_flag(flag, *std::get<bool*>(s.target), s.help);  // --join alone, no value
    } else {
      std::visit([&](auto* v) { app.add_option(flag, *v, s.help); }, s.target);
    }
  }
  std::vector<const char*> argv;
  argv.push_back("quorumkv");
  for (auto& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::CallForHelp&) {
    return Status(Code::kNotFound, app.help());
  } catch (const CLI::ParseError& e) {
    return Status(Code::kInvalidArgument, e.what());
  }
  if (!config_file.empty()) {
    // Flags given on the command line win over the file. Every key must be
    // a setting, of its type and in its range: a misspelt key or a value of
    // the wrong type is an error, never ignored.
    try {
      toml::table t = toml::parse_file(config_file);
      auto bad = [&](std::string_view k, const std::string& what) {
        return Status(Code::kInvalidArgument,
                      "config " + config_file + ": '" + std::string(k) + "' " + what);
      };
      for (const auto& [key, node] : t) {
        const std::string_view k = key.str();
        auto s = std::find_if(settings.begin(), settings.end(),
                              [&](const Setting& x) { return k == x.name; });
        if (s == settings.end()) return bad(k, "is not a setting (flags without their --)");
        const bool from_flag = app.count(std::string("--") + s->name) > 0;
        Status st = std::visit(
            [&](auto* v) -> Status {
              using T = std::remove_pointer_t<decltype(v)>;
              if constexpr (std::is_same_v<T, std::string>) {
                auto x = node.value_exact<std::string>();
                if (!x) return bad(k, "must be a string");
                if (!from_flag) *v = *x;
              } else if constexpr (std::is_same_v<T, bool>) {
                auto x = node.value_exact<bool>();
                if (!x) return bad(k, "must be true or false");
                if (!from_flag) *v = *x;
              } else {
                auto x = node.value_exact<int64_t>();
                if (!x) return bad(k, "must be an integer");
                if (*x < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
                    (*x > 0 && static_cast<uint64_t>(*x) >
                                   static_cast<uint64_t>(std::numeric_limits<T>::max()))) {
                  return bad(k, "is out of range: " + std::to_string(*x));
                }
                if (!from_flag) *v = static_cast<T>(*x);
              }
              return Status::ok();
            },
            s->target);
        if (!st.is_ok()) return st;
      }
    } catch (const toml::parse_error& e) {
      return Status(Code::kInvalidArgument,
                    "config " + config_file + ": " + std::string(e.description()));
    }
  }
  if (!strings.listen_client.empty()) {
    auto hp = parse_host_port(strings.listen_client);
    if (!hp.is_ok()) return hp.status();
    c.listen_client = *hp;
  }
  if (!strings.listen_peer.empty()) {
    auto hp = parse_host_port(strings.listen_peer);
    if (!hp.is_ok()) return hp.status();
    c.listen_peer = *hp;
  }
  if (!strings.listen_http.empty()) {
    auto hp = parse_host_port(strings.listen_http);
    if (!hp.is_ok()) return hp.status();
    c.listen_http = *hp;
  }
  if (!strings.initial_cluster.empty()) {
    if (Status s = parse_cluster(strings.initial_cluster, &c.initial_cluster); !s.is_ok()) return s;
  }
  if (Status s = c.validate(); !s.is_ok()) return s;
  return c;
}

Result<ServerConfig> parse_config(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; i++) args.emplace_back(argv[i]);
  return parse_config_args(std::move(args));
}

}  // namespace qkv::server
