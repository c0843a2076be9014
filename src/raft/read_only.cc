#include "raft/read_only.h"

#include "base/check.h"

namespace qkv::raft {

void ReadOnly::add_request(uint64_t index, const raftpb::Message& m) {
  const std::string& ctx = m.context();
  if (pending_.count(ctx)) return;
  pending_[ctx] = ReadIndexStatus{m, index, {}};
  queue_.push_back(ctx);
}

const std::map<uint64_t, bool>* ReadOnly::recv_ack(uint64_t id, const std::string& ctx) {
  auto it = pending_.find(ctx);
  if (it == pending_.end()) return nullptr;
  it->second.acks[id] = true;
  return &it->second.acks;
}

std::vector<ReadIndexStatus> ReadOnly::advance(const std::string& ctx) {
  std::vector<ReadIndexStatus> out;
  if (!pending_.count(ctx)) return out;
  while (!queue_.empty()) {
    std::string c = std::move(queue_.front());
    queue_.pop_front();
    auto it = pending_.find(c);
    QKV_CHECK(it != pending_.end()) << "read-only queue and map out of sync";
    out.push_back(std::move(it->second));
    pending_.erase(it);
    if (c == ctx) break;
  }
  return out;
}

std::string ReadOnly::last_pending_request_ctx() const {
  return queue_.empty() ? std::string() : queue_.back();
}

}  // namespace qkv::raft
