// The replicated state machine of the simulated cluster: a small key-value map
// of registers, plus a hash chain over every applied entry. The chain makes
// "two replicas applied the same prefix" a single integer comparison, and
// travels inside snapshots so that a state installed from a snapshot can be
// checked against what other replicas applied.
//
// Client writes are encoded as "w:<write id>:<key>:<payload>". Every other
// entry (leader no-ops, configuration changes) only extends the chain.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "raft/raft.pb.h"

namespace qkv::sim {

// The chain value of the state at the bootstrap snapshot (index 1).
inline constexpr uint64_t kGenesisChain = 0x51D0C0FFEE15600DULL;

struct Write {
  uint64_t id = 0;
  uint64_t key = 0;
  std::string payload;
};

std::string encode_write(const Write& w);
// nullopt if `data` is not a client write.
std::optional<Write> decode_write(const std::string& data);

// Identity of one log entry (what log matching and state-machine safety
// compare). Includes the index and term.
uint64_t entry_hash(const raftpb::Entry& e);

struct Register {
  uint64_t write_id = 0;
  uint64_t index = 0;  // log index of the write that set it
  std::string payload;
};

class StateMachine {
 public:
  // An empty machine at index 0 (a node that joined with empty storage).
  void reset() { *this = StateMachine(); }
  // Restores from a snapshot's data. Empty data is the bootstrap snapshot.
  // Returns an error text if the data is malformed or does not match the
  // metadata's index.
  std::optional<std::string> restore(const raftpb::Snapshot& snap);
  std::string serialize() const;

  // Applies one entry; the caller has checked it is applied() + 1.
  void apply(const raftpb::Entry& e);

  uint64_t applied() const { return applied_; }
  uint64_t chain() const { return chain_; }
  const Register* get(uint64_t key) const {
    auto it = kv_.find(key);
    return it == kv_.end() ? nullptr : &it->second;
  }

 private:
  uint64_t applied_ = 0;
  uint64_t chain_ = 0;
  std::map<uint64_t, Register> kv_;
};

}  // namespace qkv::sim
