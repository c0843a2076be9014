// Expected failures as values (STYLE.md point 5). A Status is cheap to return
// when OK; a Result<T> holds either a value or a non-OK Status. No exception
// crosses a module boundary.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "base/check.h"

namespace qkv {

// Add a code only when some caller reacts to it differently from the others.
enum class Code {
  kOk = 0,
  kInvalidArgument,
  // Raft log access.
  kCompacted,            // the requested index is below the first available one
  kUnavailable,          // the requested index is above the last available one
  kSnapshotTemporarilyUnavailable,
  // Raft proposals and reads.
  kNotLeader,            // this node is not the leader; see the message for the hint
  kNoLeader,             // no leader is known
  kTransferInProgress,   // leadership transfer under way; proposals are refused
  kUncommittedLimit,     // the cap on uncommitted log bytes is reached
  kConfChangeInProgress, // a membership change is not yet applied
  kStaleMessage,         // message for another group or otherwise not for us
  // Generic.
  kNotFound,
  kIoError,
  kCorruption,
  kNoSpace,
  kTimedOut,
};

const char* code_name(Code c);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status ok() { return Status(); }

  bool is_ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string to_string() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    QKV_CHECK(!status_.is_ok()) << "Result built from an OK status without a value";
  }

  bool is_ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  Code code() const { return status_.code(); }

  T& value() & {
    QKV_CHECK(value_.has_value()) << "value() of failed Result: " << status_.to_string();
    return *value_;
  }
  const T& value() const& {
    QKV_CHECK(value_.has_value()) << "value() of failed Result: " << status_.to_string();
    return *value_;
  }
  T&& value() && {
    QKV_CHECK(value_.has_value()) << "value() of failed Result: " << status_.to_string();
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace qkv
