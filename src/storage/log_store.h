// LogStore: the durable Raft log of every group on one node. One WAL holds
// all groups (one fsync covers every group's batch); per group, an in-memory
// raft::MemoryStorage is the index the Raft core reads through LogStorage.
//
// Handling Readys (DESIGN.md "Storage", node.h):
//   for each group with a Ready:  store.stage(group, ready)
//   store.flush()                 one write + one fsync for all of them
//   ... then send messages_after_persist, apply, advance
//
// On open, every group's log is rebuilt from the WAL. Before creating a
// group's raft::Node, the caller sets the group's membership as of the
// applied index it restarts from (group(g)->set_conf_state(...), from the
// state store): the WAL only knows the membership of the log base.
//
// Thread-safety: stage/flush/compact from one thread (the node's Ready loop).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "raft/node.h"
#include "raft/storage.h"
#include "storage/file_system.h"
#include "storage/wal.h"

namespace qkv::storage {

class LogStore {
 public:
  static Result<std::unique_ptr<LogStore>> open(FileSystem* fs, const std::string& dir,
                                                const WalOptions& options,
                                                WalRecovery* recovery = nullptr);

  // The log of `group`, created empty if the group is new. Never null.
  raft::MemoryStorage* group(uint64_t group);
  bool has_group(uint64_t group) const { return groups_.count(group) > 0; }
  std::vector<uint64_t> groups() const;

  // Makes `snap` the starting point of a new group on this node (a founding
  // member; see raft::bootstrap_snapshot) and syncs it.
  Status bootstrap(uint64_t group, const raft::Snapshot& snap);

  // Stages what a Ready asks to persist. Nothing is durable before flush().
  Status stage(uint64_t group, const raft::Ready& rd);
  // Writes everything staged, syncs it if any staged Ready must_sync (new
  // entries, a snapshot, a term or vote change; a Ready that only moves the
  // commit index need not wait for the disk: the commit index is volatile
  // in Raft, and a restart may resume from a lower one), then updates the
  // groups' logs. A failure is fatal for the node (the WAL refuses
  // everything after it). *synced (if set) tells whether it synced.
  Status flush(bool* synced = nullptr);
  bool has_staged() const { return !staged_.empty(); }

  // The state machine has durably applied everything up to snap's index and
  // can rebuild from snap: entries up to it are released. The snapshot is
  // what storage->snapshot() hands the Raft core for lagging followers.
  Status compact(uint64_t group, std::shared_ptr<const raft::Snapshot> snap);

  Wal& wal() { return *wal_; }

 private:
  struct Staged {
    uint64_t group;
    std::optional<raft::Snapshot> snapshot;
    std::vector<raft::Entry> entries;
    std::optional<raft::HardState> hard_state;
  };
  LogStore(std::unique_ptr<Wal> wal) : wal_(std::move(wal)) {}

  std::unique_ptr<Wal> wal_;
  std::map<uint64_t, std::unique_ptr<raft::MemoryStorage>> groups_;
  WalBatch batch_;
  std::vector<Staged> staged_;
  bool need_sync_ = false;
};

}  // namespace qkv::storage
