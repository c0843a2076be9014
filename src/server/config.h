// Server configuration: command-line flags (CLI11) and a TOML file
// (toml++), every flag having a key of the same name. Flags win over the
// file. DESIGN.md, "User-facing contracts".
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "base/status.h"
#include "kv/options.h"

namespace qkv::server {

struct HostPort {
  std::string host;
  uint16_t port = 0;
  std::string to_string() const { return host + ":" + std::to_string(port); }
};

Result<HostPort> parse_host_port(const std::string& s);

struct ServerConfig {
  // The state machine's limits (kv/options.h). Those marked "replicated"
  // there change what a command does: every node of a cluster must run
  // with the same values.
  kv::KvOptions kv;
  std::string name = "default";
  std::string data_dir = "./quorumkv-data";
  HostPort listen_client{"127.0.0.1", 7379};
  HostPort listen_peer{"127.0.0.1", 7380};
  HostPort listen_http{"127.0.0.1", 0};  // port 0: no HTTP endpoint
  // name -> peer address of every founding member ("" = this node alone).
  std::map<std::string, HostPort> initial_cluster;
  bool join = false;  // join an existing cluster (added by an operator)
  uint64_t cluster_id = 0;

  // Raft and timing.
  int tick_ms = 50;
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  std::string read_mode = "lease";  // lease | readindex (ARCHITECTURE decision 9)
  int request_timeout_ms = 3000;
  uint64_t snapshot_entries = 20000;
  // Snapshot files between nodes (docs/ARCHITECTURE.md, "Snapshot transfer").
  uint64_t snapshot_chunk_bytes = 1 << 20;    // per fetch request (at most 16 MiB)
  uint64_t snapshot_bytes_max = 64ull << 30;  // larger snapshots are refused
  uint64_t multi_bytes_max = 16ull << 20;  // one MULTI, or one pipelined run of writes (one entry)
  uint64_t watch_scan_entries_max = 200000;  // log entries EXEC scans for a WATCHed key
  int snapshot_fetch_timeout_ms = 5000;      // an unanswered chunk request is repeated
  uint64_t snapshot_recv_bytes_per_sec = 0;  // receive rate limit (0: none)

  // Client limits (Redis names in comments).
  uint64_t maxclients = 10000;                      // maxclients
  uint64_t proto_max_bulk_len = 512ull << 20;       // proto-max-bulk-len
  uint64_t client_query_buffer_limit = 1ull << 30;  // client-query-buffer-limit
  uint64_t multibulk_args_max = 1024 * 1024;
  uint64_t client_output_buffer_limit = 256ull << 20;
  // Requests one client may have in flight before the server stops reading
  // from it until replies drain.
  uint64_t client_pipeline_max = 4096;
  // Expiry: how often the leader looks for expired keys, and how many it
  // deletes per log entry.
  int expire_interval_ms = 100;
  uint64_t expire_keys_per_entry = 128;
  // Blocked clients without a timeout (BLPOP k 0) hold a lease in the
  // replicated state that their node renews every third of it; a node that
  // dies leaves waiters that end within this time.
  int block_lease_ms = 15000;
  std::string requirepass;  // AUTH password; empty: none
  // Keyspace notifications: Redis's class letters (KEg$lshzxetmndA); empty:
  // none. CLIENT TRACKING: keys remembered for the default mode before the
  // oldest are invalidated early (0: no limit).
  std::string notify_keyspace_events;          // notify-keyspace-events
  uint64_t tracking_table_max_keys = 1000000;  // tracking-table-max-keys
  // Storage: memory for values read lately (storage/read_cache.h; 0: none),
  // the largest value kept, and whether writes add keys while it has room.
  // Set at start only.
  uint64_t read_cache_bytes = 64ull << 20;            // read-cache-bytes
  uint64_t read_cache_value_bytes_max = 64ull << 10;  // read-cache-value-bytes-max
  bool read_cache_fill_on_write = false;              // read-cache-fill-on-write
  // RocksDB's memory for the state machine (storage/state_store.h): a
  // memtable's size and how many may exist at once (written ones wait for
  // their flush), and the cache of table blocks. Set at start only.
  uint64_t state_write_buffer_bytes = 64ull << 20;  // state-write-buffer-bytes
  int state_write_buffers_max = 3;                  // state-write-buffers-max
  uint64_t state_block_cache_bytes = 128ull << 20;  // state-block-cache-bytes
  // The memtable's representation: "indexed" (storage/memtable_rep.h) or
  // RocksDB's "skiplist" (ARCHITECTURE decision 43).
  std::string state_memtable = "indexed";         // state-memtable
  bool wal_prefill = true;                        // wal-prefill
  uint64_t wal_segment_bytes = 64ull << 20;       // wal-segment-bytes
  uint64_t wal_prefill_start_bytes = 4ull << 20;  // wal-prefill-start-bytes

  std::string log_level = "info";

  Status validate() const;
};

// Node ids are derived from names (stable across restarts and membership
// changes): a 64-bit FNV-1a hash, never 0.
uint64_t node_id_for_name(const std::string& name);

// One setting: its flag is --NAME, its config file key NAME, and CONFIG GET
// shows it under NAME.
struct Setting {
  const char* name;
  std::variant<std::string*, bool*, int*, uint64_t*> target;
  const char* help;
};
// The flags whose text parse_config_args parses into other fields.
struct SettingStrings {
  std::string listen_client, listen_peer, listen_http, initial_cluster;
};
// Every setting, in --help order, pointing into `c` (and into `strings`;
// without it the four settings there are left out).
std::vector<Setting> config_settings(ServerConfig& c, SettingStrings* strings = nullptr);
// A setting's value as CONFIG GET shows it: booleans as yes/no.
std::string setting_value(const Setting& s);

// Parses argv (and --config FILE). On --help, returns kNotFound with the
// help text as the message.
Result<ServerConfig> parse_config(int argc, char** argv);
Result<ServerConfig> parse_config_args(std::vector<std::string> args);

}  // namespace qkv::server
