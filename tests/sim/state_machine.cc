#include "sim/state_machine.h"

#include <charconv>
#include <cstring>
#include <vector>

#include "sim/rng.h"

namespace qkv::sim {

namespace {

// Parses an unsigned decimal at s[pos..] up to `stop`; advances pos past it.
bool parse_u64(const std::string& s, size_t& pos, char stop, uint64_t& out) {
  size_t end = s.find(stop, pos);
  if (end == std::string::npos || end == pos) return false;
  auto [p, ec] = std::from_chars(s.data() + pos, s.data() + end, out);
  if (ec != std::errc() || p != s.data() + end) return false;
  pos = end + 1;
  return true;
}

}  // namespace

std::string encode_write(const Write& w) {
  return "w:" + std::to_string(w.id) + ":" + std::to_string(w.key) + ":" + w.payload;
}

std::optional<Write> decode_write(const std::string& data) {
  if (data.size() < 2 || data[0] != 'w' || data[1] != ':') return std::nullopt;
  Write w;
  size_t pos = 2;
  if (!parse_u64(data, pos, ':', w.id)) return std::nullopt;
  if (!parse_u64(data, pos, ':', w.key)) return std::nullopt;
  w.payload = data.substr(pos);
  return w;
}

uint64_t entry_hash(const raftpb::Entry& e) {
  uint64_t h = hash_bytes(e.data().data(), e.data().size());
  h = hash_combine(h, e.index());
  h = hash_combine(h, e.term());
  return hash_combine(h, static_cast<uint64_t>(e.type()));
}

void StateMachine::apply(const raftpb::Entry& e) {
  applied_ = e.index();
  chain_ = hash_combine(chain_, entry_hash(e));
  if (e.type() != raftpb::ENTRY_NORMAL) return;
  if (auto w = decode_write(e.data())) {
    kv_[w->key] = Register{w->id, e.index(), std::move(w->payload)};
  }
}

// Format: "qkvsim1 <applied> <chain> <count>\n" then one line per register:
// "<key> <write id> <index> <payload>\n". Payloads are lowercase letters.
std::string StateMachine::serialize() const {
  std::string out = "qkvsim1 " + std::to_string(applied_) + " " + std::to_string(chain_) + " " +
                    std::to_string(kv_.size()) + "\n";
  for (const auto& [k, r] : kv_) {
    out += std::to_string(k) + " " + std::to_string(r.write_id) + " " + std::to_string(r.index) +
           " " + r.payload + "\n";
  }
  return out;
}

std::optional<std::string> StateMachine::restore(const raftpb::Snapshot& snap) {
  StateMachine fresh;
  const std::string& d = snap.data();
  uint64_t index = snap.metadata().index();
  if (d.empty()) {
    // Only the bootstrap snapshot (or the empty snapshot of a fresh storage)
    // carries no data.
    if (index == 0) {
      *this = fresh;
      return std::nullopt;
    }
    if (index != 1) return "snapshot at index " + std::to_string(index) + " has no data";
    fresh.applied_ = 1;
    fresh.chain_ = kGenesisChain;
    *this = std::move(fresh);
    return std::nullopt;
  }
  size_t pos = 0;
  if (d.compare(0, 8, "qkvsim1 ") != 0) return "snapshot data has a bad header";
  pos = 8;
  uint64_t count = 0;
  if (!parse_u64(d, pos, ' ', fresh.applied_) || !parse_u64(d, pos, ' ', fresh.chain_) ||
      !parse_u64(d, pos, '\n', count)) {
    return "snapshot data has a malformed header";
  }
  for (uint64_t i = 0; i < count; i++) {
    uint64_t key = 0;
    Register r;
    if (!parse_u64(d, pos, ' ', key) || !parse_u64(d, pos, ' ', r.write_id) ||
        !parse_u64(d, pos, ' ', r.index)) {
      return "snapshot data has a malformed record";
    }
    size_t end = d.find('\n', pos);
    if (end == std::string::npos) return "snapshot data is truncated";
    r.payload = d.substr(pos, end - pos);
    pos = end + 1;
    fresh.kv_[key] = std::move(r);
  }
  if (pos != d.size()) return "snapshot data has trailing bytes";
  if (fresh.applied_ != index) {
    return "snapshot data is of index " + std::to_string(fresh.applied_) + " but metadata says " +
           std::to_string(index);
  }
  *this = std::move(fresh);
  return std::nullopt;
}

}  // namespace qkv::sim
