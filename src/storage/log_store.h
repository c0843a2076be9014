// LogStore: the durable Raft log of every group on one node. One WAL holds
// all groups (one fsync covers every group's batch); per group, an in-memory
// raft::MemoryStorage is the index the Raft core reads through LogStorage.
//
// Handling Readys (DESIGN.md "Storage", node.h):
//   for each group with a Ready:
//     if store.must_write(group, ready): store.stage(group, ready)
//     else:                              store.note_commit(group, ready)
//   store.flush()                 one write + one fsync for all staged Readys
//   ... then send messages_after_persist, apply, advance
// A Ready that only moves the commit index never waits for the disk.
//
// On open, every group's log is rebuilt from the WAL. Before creating a
// group's raft::Node, the caller sets the group's membership as of the
// applied index it restarts from (group(g)->set_conf_state(...), from the
// state store): the WAL only knows the membership of the log base.
//
// Thread-safety: must_write/note_commit/stage/compact from one thread (the
// node's Ready loop); flush() may run on another thread, but not at the same
// time as stage() or compact() (the caller hands the batch over).
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

  // True if the Ready has something the WAL must write and sync before its
  // messages_after_persist may go out: a snapshot, entries, or a new term or
  // vote (decided from the content, whatever rd.must_sync says). False for a
  // Ready that only moves the commit index, or asks nothing of the disk: the
  // commit index is volatile in Raft (paper Figure 2), and a restart may
  // resume from a lower one (the node raises it to its applied index).
  bool must_write(uint64_t group, const raft::Ready& rd);
  // For a Ready with !must_write: sets its hard state (the new commit index)
  // in the group's log in memory at once; the WAL gets it with the next
  // staged batch, so it costs no write of its own. Not while a Ready of the
  // same group is staged or being flushed.
  void note_commit(uint64_t group, const raft::Ready& rd);
  // Stages what a Ready asks to persist. Nothing is durable before flush().
  Status stage(uint64_t group, const raft::Ready& rd);
  // As stage(), but moves rd.entries into the batch instead of copying them
  // (rd.entries is empty afterwards): one copy fewer of every entry.
  Status stage_taking_entries(uint64_t group, raft::Ready& rd);
  // Writes everything staged (and the commit indexes noted since the last
  // batch), syncs it if any staged Ready must_write, then updates the
  // groups' logs. A failure is fatal for the node (the WAL refuses
  // everything after it). *synced (if set) tells whether it synced.
  Status flush(bool* synced = nullptr);
  bool has_staged() const { return !staged_.empty(); }

  // The state machine has durably applied everything up to snap's index and
  // can rebuild from snap: entries up to it are released. The snapshot is
  // what storage->snapshot() hands the Raft core for lagging followers.
  Status compact(uint64_t group, std::shared_ptr<const raft::Snapshot> snap);

  Wal& wal() { return *wal_; }
  const Wal& wal() const { return *wal_; }

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
  // Hard states of commit-only Readies not yet written (note_commit).
  std::map<uint64_t, raft::HardState> noted_commits_;
  bool need_sync_ = false;
};

}  // namespace qkv::storage
