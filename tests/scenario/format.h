// Compact, deterministic text forms of Raft values for scenario output.
// Conventions (README.md): an entry or log position is written TERM/INDEX.
#pragma once

#include <string>
#include <vector>

#include "raft/node.h"

namespace qkv::scenario {

// Shows data as a quoted string; long data is cut and its size appended.
std::string fmt_data(const std::string& data);
std::string fmt_ids(const google::protobuf::RepeatedField<uint64_t>& ids);
std::string fmt_conf_state(const raft::ConfState& cs);
std::string fmt_conf_change(const raft::ConfChange& cc);
// "2/6 \"x\"", "2/7 (empty)", "2/8 cc(v4 r2)".
std::string fmt_entry(const raft::Entry& e);
std::string fmt_message(const raft::Message& m);
std::string fmt_hard_state(const raft::HardState& hs);

// Parses "v4" / "l5" / "r2" into a single change; false if malformed.
bool parse_conf_change_single(const std::string& word, raftpb::ConfChangeSingle* out);

}  // namespace qkv::scenario
