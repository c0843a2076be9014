#include "base/status.h"

#include <cstdio>
#include <cstdlib>

namespace qkv {

const char* code_name(Code c) {
  switch (c) {
    case Code::kOk: return "OK";
    case Code::kInvalidArgument: return "INVALID_ARGUMENT";
    case Code::kCompacted: return "COMPACTED";
    case Code::kUnavailable: return "UNAVAILABLE";
    case Code::kSnapshotTemporarilyUnavailable: return "SNAPSHOT_TEMPORARILY_UNAVAILABLE";
    case Code::kNotLeader: return "NOT_LEADER";
    case Code::kNoLeader: return "NO_LEADER";
    case Code::kTransferInProgress: return "TRANSFER_IN_PROGRESS";
    case Code::kUncommittedLimit: return "UNCOMMITTED_LIMIT";
    case Code::kConfChangeInProgress: return "CONF_CHANGE_IN_PROGRESS";
    case Code::kStaleMessage: return "STALE_MESSAGE";
    case Code::kNotFound: return "NOT_FOUND";
    case Code::kIoError: return "IO_ERROR";
    case Code::kCorruption: return "CORRUPTION";
    case Code::kNoSpace: return "NO_SPACE";
    case Code::kTimedOut: return "TIMED_OUT";
  }
  return "UNKNOWN";
}

std::string Status::to_string() const {
  if (is_ok()) return "OK";
  std::string s = code_name(code_);
  if (!message_.empty()) {
    s += ": ";
    s += message_;
  }
  return s;
}

namespace internal {

CheckFailure::CheckFailure(const char* file, int line, const char* expr) {
  stream_ << file << ":" << line << ": check failed: " << expr << " ";
}

CheckFailure::~CheckFailure() {
  std::fprintf(stderr, "%s\n", stream_.str().c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace internal
}  // namespace qkv
