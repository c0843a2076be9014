// KvStateMachine: the replicated key-value state of one Raft group, on the
// node's StateStore (DESIGN.md, "Determinism of the state machine";
// the data layout and the entry format are in docs/KV_FORMAT.md).
//
// Writes. The leader proposes a kvpb::KvBatch per normal entry (see
// encode_request()): commands plus the leader's wall-clock stamp. Every
// replica applies an entry's commands in order with
//   stamp = max(entry stamp, largest stamp applied before)
// and never its own clock, so every replica computes the same state and the
// same replies, and time never goes backwards in the log. The leader should
// stamp max(its clock, last_stamp_ms()). All the entries of one apply() run
// in one transaction (later commands see earlier ones) and are written
// together with the applied index (and membership) in ONE StateStore::apply.
//
// Replies. apply() gives, per entry, the RESP replies of its commands
// concatenated, in the protocol each request asked for (the proposer knows
// how many to read; split_replies() cuts them). Leader no-ops (empty data)
// and conf changes give an empty result.
//
// Expiry. A key whose expiry is <= the stamp is absent for every command.
// Expired keys are deleted only by entries the leader proposes:
// expired_keys_to_delete() reads the expiry index, encode_expired_deletion()
// makes the entry; it deletes a key only if it is still expired at that
// entry's stamp, so a key given a new TTL in between survives.
//
// Reads. execute_read() runs a read-only command against the local applied
// state at a time the caller chooses (the server passes max(its clock,
// last_stamp_ms()) after a read barrier).
//
// Thread-safety: none; the node calls everything on its io thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "cluster/node.h"
#include "kv/events.h"
#include "kv/keyspace.h"
#include "kv/options.h"
#include "kv/script.h"
#include "net/resp.h"
#include "storage/state_store.h"

namespace qkv::kv {

class KvStateMachine final : public cluster::GroupStateMachine {
 public:
  // `store` must outlive the state machine. Reads the group's counters and
  // last stamp; kCorruption for an unknown layout version.
  static Result<std::unique_ptr<KvStateMachine>> open(storage::StateStore* store, uint64_t group,
                                                      const KvOptions& options = {});

  // cluster::GroupStateMachine. apply() CHECKs that entries are consecutive
  // from applied_index() + 1. A malformed payload is not fatal: every
  // replica answers it with the same error reply and applies nothing of it.
  Status apply(const std::vector<raftpb::Entry>& entries,
               const std::optional<raftpb::ConfState>& conf,
               std::vector<std::string>* results) override;
  // Replaces the group's whole state, atomically, with `records` (from a
  // snapshot file written from open_snapshot() on any replica) at `meta`.
  // kInvalidArgument if it is not newer than the applied state or belongs to
  // another group; a damaged source changes nothing.
  Status restore(const raftpb::SnapshotMetadata& meta, storage::RecordSource& records) override;
  // Syncs the store; returns the applied metadata.
  Result<raftpb::SnapshotMetadata> persist_applied() override;
  // A pinned, consistent view of the group's records (StateStore::snapshot).
  Result<cluster::SnapshotSource> open_snapshot() override;

  // In-memory snapshots, for tests and tools: restore() of a snapshot whose
  // data is a whole snapshot file (or empty: an empty state), and
  // snapshot(), which syncs and copies the group's whole data into `data`,
  // at most KvOptions::snapshot_bytes_max (kInvalidArgument beyond; cached
  // until the applied index moves). The
  // server never uses them: it streams files (cluster/snapshot_transfer.cc).
  Status restore(const raftpb::Snapshot& snapshot);
  Result<std::shared_ptr<const raftpb::Snapshot>> snapshot();
  uint64_t applied_index() const override;
  raftpb::ConfState conf_state() const override;

  // Runs a read-only data command of the table (GET, HGET, SMEMBERS, LRANGE,
  // SCAN, ...) at max(now_ms, last_stamp_ms()) and appends its reply. User errors (unknown
  // command, arity, WRONGTYPE, ...) are error replies with an OK status.
  // kInvalidArgument (nothing appended) if the command is not a read-only
  // data command; a storage error is returned as is (nothing appended).
  Status execute_read(std::span<const std::string_view> args, net::Protocol protocol,
                      int64_t now_ms, std::string* reply);

  // After every successful apply() that caused events, calls sink(events)
  // (on the applying thread). keyspace: also collect keyspace
  // notifications (they cost an allocation per changed key). A null sink
  // collects nothing.
  using EventSink = std::function<void(ApplyEvents& events)>;
  void set_event_sink(EventSink sink, bool keyspace) {
    event_sink_ = std::move(sink);
    sink_keyspace_ = keyspace;
  }
  void set_keyspace_events(bool keyspace) { sink_keyspace_ = keyspace; }

  // The largest stamp applied so far (0 before any).
  int64_t last_stamp_ms() const { return last_stamp_ms_; }
  // Up to max_n keys whose expiry is <= now_ms, earliest expiry first (empty
  // after a read error: the store is failing and the node's next write will
  // report it).
  std::vector<std::string> expired_keys_to_delete(int64_t now_ms, size_t max_n);

  // Up to max_n timers of blocked clients and locks due at now_ms, for the
  // leader's `timers` entry (waiters.h); empty after a read error.
  std::vector<std::string> due_timers(int64_t now_ms, size_t max_n);
  // Blocked clients queued on `key` (at least 1 after a read error), and on
  // all keys.
  uint64_t waiters_on(std::string_view key);
  uint64_t waiter_total() const { return counters_.waiters; }

  // Keys stored (expired ones not yet deleted included: DBSIZE) and keys
  // with an expiry (INFO keyspace).
  uint64_t key_count() const { return counters_.keys; }
  uint64_t expires_count() const { return counters_.expires; }
  const KeyspaceCounters& TEST_counters() const { return counters_; }
  // Keys deleted by expiry entries since open (INFO stats expired_keys).
  uint64_t expired_keys_deleted() const { return expired_deleted_; }

  uint64_t group() const { return group_; }
  const KvOptions& options() const { return options_; }

  // Checks the counters and the expiry index against the records. O(n).
  Status TEST_check_invariants();
  // Writes a record as if a command had (as the entry at applied_index()+1,
  // same term), e.g. of a type no command creates yet.
  Status TEST_put_record(std::string_view key, const Record& r);

 private:
  KvStateMachine(storage::StateStore* store, uint64_t group, const KvOptions& options);
  Status load_meta();

  storage::StateStore* store_;
  uint64_t group_;
  KvOptions options_;
  KeyspaceCounters counters_;
  int64_t last_stamp_ms_ = 0;
  // The store holds the '#' counters (written by an apply, or loaded): an apply
  // then writes only those that changed.
  bool meta_written_ = false;
  uint64_t expired_deleted_ = 0;
  // No expiry index entry is earlier than this (local, not replicated):
  // expired_keys_to_delete() starts there instead of at the first entry,
  // so it does not wade through the tombstones of the entries it already
  // had deleted. Lowered by every write of an earlier expiry.
  int64_t expiry_scan_from_ms_ = 0;
  ScriptEnginePtr scripts_;
  EventSink event_sink_;
  bool sink_keyspace_ = false;
  // The last in-memory snapshot(), until the applied index moves.
  std::shared_ptr<const raftpb::Snapshot> cached_snapshot_;
};

// One request of a batch.
struct RequestView {
  net::Protocol protocol = net::Protocol::kResp2;
  std::span<const std::string_view> args;  // the command name first
  bool internal = false;
};

// The payload of a normal entry holding `requests`, stamped stamp_ms;
// pipeline: one client's pipelined commands rather than a transaction
// (kvpb.KvBatch.pipeline).
std::string encode_batch(int64_t stamp_ms, std::span<const RequestView> requests,
                         bool pipeline = false);
// The payload of an entry holding one client command.
std::string encode_request(int64_t stamp_ms, net::Protocol protocol,
                           std::span<const std::string_view> args);
// The payload of an entry deleting the given keys if they are expired at
// its stamp (internal: clients cannot send it).
std::string encode_expired_deletion(int64_t stamp_ms, std::span<const std::string> keys);

// The payload of an entry holding one internal command (waiters.h); its
// replies (and a blocked client's) in `protocol`.
std::string encode_internal(int64_t stamp_ms, net::Protocol protocol,
                            std::span<const std::string_view> args);

// Cuts the concatenated replies of an entry into `n` replies, each exactly
// as written. kCorruption if the bytes do not hold exactly n replies.
Result<std::vector<std::string>> split_replies(std::string_view replies, size_t n);

}  // namespace qkv::kv
