#include "format.h"

#include <cstdio>

namespace qkv::scenario {

using raftpb::ConfChangeSingle;

std::string fmt_data(const std::string& data) {
  constexpr size_t kShownBytesMax = 16;
  std::string s = "\"";
  size_t n = std::min(data.size(), kShownBytesMax);
  for (size_t i = 0; i < n; ++i) {
    unsigned char ch = static_cast<unsigned char>(data[i]);
    if (ch == '"' || ch == '\\') {
      s += '\\';
      s += static_cast<char>(ch);
    } else if (ch < 0x20 || ch >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", ch);
      s += buf;
    } else {
      s += static_cast<char>(ch);
    }
  }
  if (data.size() > n) s += "...";
  s += "\"";
  if (data.size() > n) s += "(" + std::to_string(data.size()) + "B)";
  return s;
}

std::string fmt_ids(const google::protobuf::RepeatedField<uint64_t>& ids) {
  std::string s = "(";
  for (int i = 0; i < ids.size(); ++i) {
    if (i > 0) s += ",";
    s += std::to_string(ids[i]);
  }
  return s + ")";
}

std::string fmt_conf_state(const raft::ConfState& cs) {
  std::string s = "voters=" + fmt_ids(cs.voters());
  if (cs.voters_outgoing_size() > 0) s += "&&" + fmt_ids(cs.voters_outgoing());
  if (cs.learners_size() > 0) s += " learners=" + fmt_ids(cs.learners());
  if (cs.learners_next_size() > 0) s += " learners_next=" + fmt_ids(cs.learners_next());
  if (cs.auto_leave()) s += " autoleave";
  return s;
}

std::string fmt_conf_change(const raft::ConfChange& cc) {
  std::string s = "cc(";
  if (cc.changes_size() == 0) s += "leave-joint";
  for (int i = 0; i < cc.changes_size(); ++i) {
    const ConfChangeSingle& c = cc.changes(i);
    if (i > 0) s += " ";
    switch (c.type()) {
      case raftpb::CONF_ADD_VOTER:
        s += "v";
        break;
      case raftpb::CONF_ADD_LEARNER:
        s += "l";
        break;
      case raftpb::CONF_REMOVE_NODE:
        s += "r";
        break;
      default:
        s += "?";
        break;
    }
    s += std::to_string(c.node_id());
  }
  switch (cc.transition()) {
    case raftpb::TRANSITION_JOINT_IMPLICIT:
      s += " implicit";
      break;
    case raftpb::TRANSITION_JOINT_EXPLICIT:
      s += " explicit";
      break;
    default:
      break;
  }
  if (!cc.context().empty()) s += " ctx=" + fmt_data(cc.context());
  return s + ")";
}

std::string fmt_entry(const raft::Entry& e) {
  std::string s = std::to_string(e.term()) + "/" + std::to_string(e.index()) + " ";
  if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
    raft::ConfChange cc;
    if (!cc.ParseFromString(e.data())) return s + "cc(UNPARSABLE)";
    s += fmt_conf_change(cc);
  } else if (e.data().empty()) {
    s += "(empty)";
  } else {
    s += fmt_data(e.data());
  }
  if (e.group() != 1) s += " group=" + std::to_string(e.group());
  return s;
}

std::string fmt_message(const raft::Message& m) {
  std::string s = std::to_string(m.from()) + "->" + std::to_string(m.to()) + " " +
                  raftpb::MessageType_Name(m.type()) + " term=" + std::to_string(m.term());
  if (m.reject()) {
    // A rejection names the index it refuses and, as a hint, the position
    // (term at reject_hint / reject_hint) where the logs may match.
    if (m.index() != 0) s += " index=" + std::to_string(m.index());
    s += " rejected";
    if (m.reject_hint() != 0 || m.log_term() != 0) {
      s += " hint=" + std::to_string(m.log_term()) + "/" + std::to_string(m.reject_hint());
    }
  } else if (m.log_term() != 0) {
    s += " log=" + std::to_string(m.log_term()) + "/" + std::to_string(m.index());
  } else if (m.index() != 0) {
    s += " index=" + std::to_string(m.index());
  }
  if (m.commit() != 0) s += " commit=" + std::to_string(m.commit());
  if (m.commit_only()) s += " commit-only";
  if (m.entries_size() > 0) {
    s += " entries=[";
    for (int i = 0; i < m.entries_size(); ++i) {
      if (i > 0) s += ", ";
      s += fmt_entry(m.entries(i));
    }
    s += "]";
  }
  if (!m.context().empty()) s += " ctx=" + fmt_data(m.context());
  if (m.has_snapshot() && (m.snapshot().index() != 0 || m.type() == raftpb::MSG_SNAP)) {
    s +=
        " snap=" + std::to_string(m.snapshot().term()) + "/" + std::to_string(m.snapshot().index());
    if (m.type() == raftpb::MSG_SNAP) s += " " + fmt_conf_state(m.snapshot().conf_state());
  }
  if (m.type() == raftpb::MSG_SNAP) {
    s += " chunk=" + std::to_string(m.snapshot_offset()) + "+" +
         std::to_string(m.snapshot_chunk().size()) + "/" + std::to_string(m.snapshot_size());
  } else {
    if (m.snapshot_offset() != 0) s += " offset=" + std::to_string(m.snapshot_offset());
    if (m.snapshot_size() != 0) s += " size=" + std::to_string(m.snapshot_size());
  }
  if (m.sent_tick() != 0) s += " tick=" + std::to_string(m.sent_tick());
  if (m.group() != 1) s += " group=" + std::to_string(m.group());
  return s;
}

std::string fmt_hard_state(const raft::HardState& hs) {
  std::string s = "term=" + std::to_string(hs.term()) + " vote=" + std::to_string(hs.vote()) +
                  " commit=" + std::to_string(hs.commit());
  if (hs.group() != 1) s += " group=" + std::to_string(hs.group());
  return s;
}

bool parse_conf_change_single(const std::string& word, ConfChangeSingle* out) {
  if (word.size() < 2) return false;
  switch (word[0]) {
    case 'v':
      out->set_type(raftpb::CONF_ADD_VOTER);
      break;
    case 'l':
      out->set_type(raftpb::CONF_ADD_LEARNER);
      break;
    case 'r':
      out->set_type(raftpb::CONF_REMOVE_NODE);
      break;
    default:
      return false;
  }
  uint64_t id = 0;
  for (size_t i = 1; i < word.size(); ++i) {
    if (word[i] < '0' || word[i] > '9') return false;
    id = id * 10 + static_cast<uint64_t>(word[i] - '0');
  }
  out->set_node_id(id);
  return id != 0;
}

}  // namespace qkv::scenario
