// Pending ReadIndex requests on the leader (Raft thesis §6.4). Each request
// records the commit index when it arrived; it becomes safe once a quorum
// acknowledged a heartbeat sent after it. Requests are acknowledged in order:
// an ack for a later request also confirms every earlier one.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "raft/raft.pb.h"

namespace qkv::raft {

struct ReadIndexStatus {
  raftpb::Message req;  // from: requester (the leader itself for local reads); context
  uint64_t index = 0;
  std::map<uint64_t, bool> acks;
};

class ReadOnly {
 public:
  // Adds a request; duplicates of an outstanding ctx are ignored.
  void add_request(uint64_t index, const raftpb::Message& m);
  // Records an ack for ctx from id and returns the acks so far (nullptr if
  // ctx is unknown).
  const std::map<uint64_t, bool>* recv_ack(uint64_t id, const std::string& ctx);
  // Removes and returns every request up to and including ctx.
  std::vector<ReadIndexStatus> advance(const std::string& ctx);
  // The newest pending request's ctx (heartbeats carry it), or empty.
  std::string last_pending_request_ctx() const;
  size_t pending() const { return queue_.size(); }
  void reset() {
    pending_.clear();
    queue_.clear();
  }

 private:
  std::map<std::string, ReadIndexStatus> pending_;
  std::deque<std::string> queue_;
};

}  // namespace qkv::raft
