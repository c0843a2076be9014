// The state of snapshot transfers kept by cluster::Node (private to the
// cluster layer; see snapshot_transfer.cc).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "cluster/node.h"

namespace qkv::cluster {

using SteadyClock = std::chrono::steady_clock;

struct Node::Outgoing {
  struct Build {
    std::mutex mu;
    storage::TransferProgress progress;
  };
  raftpb::SnapshotMetadata meta;
  std::string path;
  std::shared_ptr<storage::SnapshotSender> sender;  // once written
  bool building = false;
  std::shared_ptr<std::atomic<bool>> cancel = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<Build> build = std::make_shared<Build>();
  SteadyClock::time_point last_used = SteadyClock::now();
  SteadyClock::time_point next_log = SteadyClock::now();
};

struct Node::Incoming {
  uint64_t source = 0;       // the node serving the file
  raftpb::Message trigger;   // the latest InstallSnapshot that asked for one
  uint64_t min_index = 0;    // the file must cover at least this index
  std::unique_ptr<storage::SnapshotReceiver> receiver;  // once the offer is known
  uint64_t request_id = 0;
  bool waiting = false;      // a request is outstanding
  SteadyClock::time_point sent_at;
  SteadyClock::time_point retry_at = SteadyClock::time_point::max();
  int failures = 0;          // requests in a row without a useful answer
  SteadyClock::time_point started = SteadyClock::now();
  uint64_t attempt_bytes = 0;  // received since `started` (rate limit)
  SteadyClock::time_point next_log = SteadyClock::now();
  // Complete and verified; waiting for Raft to take it.
  bool ready = false;
  raftpb::SnapshotMetadata ready_meta;
  std::string ready_path;
};

}  // namespace qkv::cluster
