// Small helpers shared by the server's command code.
#pragma once

#include <cctype>
#include <string>
#include <string_view>
#include <vector>

#include "net/resp.h"

namespace qkv::server {

// A RESP error reply: "-" msg CRLF (msg starts with the error code).
inline std::string err(std::string_view msg) {
  std::string s = "-";
  s += msg;
  s += "\r\n";
  return s;
}

// The group every command goes to until sharding (issue: many Raft groups).
inline constexpr uint64_t kGroup = 1;

inline std::vector<std::string_view> views(const std::vector<std::string>& args) {
  return std::vector<std::string_view>(args.begin(), args.end());
}

// EXEC's reply when a WATCHed key changed: a null array.
inline std::string null_array(net::Protocol proto) {
  return proto == net::Protocol::kResp3 ? "_\r\n" : "*-1\r\n";
}

// What a command's arguments count for against multi-bytes-max (one MULTI,
// or one pipelined run of writes: one Raft entry).
inline size_t command_bytes(const std::vector<std::string>& args) {
  size_t n = 0;
  for (const auto& a : args) n += a.size() + 16;
  return n;
}

inline std::string lower(std::string_view s) {
  std::string r(s);
  for (auto& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

inline std::string upper(std::string_view s) {
  std::string r(s);
  for (auto& c : r) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return r;
}

}  // namespace qkv::server
