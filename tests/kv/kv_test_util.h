// Test helpers for the key-value state machine: a KvStateMachine on a real
// StateStore in a temporary directory, fed one entry per command, and
// builders for expected RESP replies.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kv/state_machine.h"
#include "storage/state_store.h"

#define ASSERT_OK(expr)                                         \
  do {                                                          \
    const ::qkv::Status _s = (expr);                            \
    ASSERT_TRUE(_s.is_ok()) << #expr << ": " << _s.to_string(); \
  } while (0)
#define EXPECT_OK(expr)                                         \
  do {                                                          \
    const ::qkv::Status _s = (expr);                            \
    EXPECT_TRUE(_s.is_ok()) << #expr << ": " << _s.to_string(); \
  } while (0)

namespace qkv::kv::test {

// A fresh directory, removed with everything in it at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Expected replies (RESP2 unless noted).
std::string Ok();
std::string Int(int64_t n);
std::string Bulk(std::string_view s);
std::string Nil();                    // $-1 (RESP2 null bulk)
std::string Err(std::string_view s);  // "-" s CRLF
std::string Simple(std::string_view s);
std::string Arr(std::initializer_list<std::string> elements);  // already-encoded elements
// The elements of an aggregate reply, sorted (for replies without order).
std::vector<std::string> sorted(std::string_view resp);

// The default clock of a harness: a fixed, realistic time.
inline constexpr int64_t kT0 = 1'700'000'000'000;

// One group's KvStateMachine over its own StateStore. Each write is its own
// Raft entry (index 2, 3, ... after a bootstrap snapshot at index 1).
class KvHarness {
 public:
  explicit KvHarness(KvOptions options = {}, uint64_t group = 1);
  // Shares the directory of another (not open) harness: see reopen().
  KvHarness(const std::string& dir, KvOptions options, uint64_t group, bool bootstrap);

  // Runs a command: a write (by the command table) is applied as one entry
  // stamped now_ms(); anything else goes through execute_read at now_ms().
  std::string run(const std::vector<std::string>& args);
  std::string operator()(std::initializer_list<std::string_view> args);
  // Forces the write path (apply) whatever the command.
  std::string apply_one(const std::vector<std::string>& args, bool internal = false);
  // Applies entries whose data is given (term 1, next indexes); results per entry.
  std::vector<std::string> apply_payloads(const std::vector<std::string>& payloads);

  int64_t now_ms() const { return now_ms_; }
  void set_now(int64_t ms) { now_ms_ = ms; }
  void advance(int64_t ms) { now_ms_ += ms; }
  net::Protocol protocol = net::Protocol::kResp2;

  uint64_t next_index() const { return sm_->applied_index() + 1; }
  KvStateMachine& sm() { return *sm_; }
  storage::StateStore& store() { return *store_; }
  const std::string& dir() const { return dir_; }
  // Closes and reopens the store and the state machine (restart).
  void reopen();
  // Closes both (the directory stays, for another harness).
  void close();

 private:
  void open(bool bootstrap);
  std::unique_ptr<TempDir> own_dir_;
  std::string dir_;
  KvOptions options_;
  uint64_t group_;
  std::unique_ptr<storage::StateStore> store_;
  std::unique_ptr<KvStateMachine> sm_;
  int64_t now_ms_ = kT0;
};

}  // namespace qkv::kv::test
