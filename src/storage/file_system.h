// Every file access of the storage layer goes through FileSystem (STYLE.md
// point 4), with three implementations:
//   PosixFileSystem           the real disk
//   MemFileSystem             in memory, with a crash model: data not synced
//                             (and files whose directory was not synced) is
//                             lost by crash()
//   FaultInjectionFileSystem  MemFileSystem plus injected faults: torn last
//                             write at a crash, bit flips, failing fsync,
//                             running out of space
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace qkv::storage {

// An append-only file. Not thread-safe; the owner serializes calls, except
// that sync() may run concurrently with append() (the WAL's group commit):
// a sync covers every byte appended before it started.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual Status append(std::string_view data) = 0;
  // Makes every byte appended before the call durable (fdatasync).
  virtual Status sync() = 0;
  // Reserves space up to `bytes` so later appends need no metadata update;
  // the reserved range reads as zeros.
  virtual Status preallocate(uint64_t bytes) = 0;
  // Bytes appended so far (the logical end of the file).
  virtual uint64_t size() const = 0;
  // Cuts the file back to `size` bytes (to undo a failed append).
  virtual Status truncate(uint64_t size) = 0;
  virtual Status close() = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  // Creates (or truncates) a file for appending.
  virtual Result<std::unique_ptr<WritableFile>> create(const std::string& path) = 0;
  // Opens an existing file for appending at `offset` (bytes after it are
  // dropped).
  virtual Result<std::unique_ptr<WritableFile>> reopen(const std::string& path,
                                                       uint64_t offset) = 0;
  // Opens an existing file (the WAL's zero-filled spare segment) for writing
  // from its start without cutting it: appends overwrite its bytes in place,
  // and size() counts only what was appended through this handle.
  virtual Result<std::unique_ptr<WritableFile>> overwrite(const std::string& path) = 0;
  virtual Result<std::string> read_file(const std::string& path) = 0;
  // Up to n bytes from `offset` (fewer only at the end of the file; none
  // at or past it). For files too large to hold whole (snapshots).
  virtual Result<std::string> read_range(const std::string& path, uint64_t offset, uint64_t n) = 0;
  virtual Result<uint64_t> file_size(const std::string& path) = 0;
  virtual Result<std::vector<std::string>> list_dir(const std::string& dir) = 0;  // names, sorted
  virtual Status create_dirs(const std::string& dir) = 0;
  virtual Status remove_file(const std::string& path) = 0;
  virtual Status rename(const std::string& from, const std::string& to) = 0;
  // Makes creations, renames and removals in `dir` durable.
  virtual Status sync_dir(const std::string& dir) = 0;
  virtual bool exists(const std::string& path) = 0;
};

std::string path_join(std::string_view dir, std::string_view name);
std::string dir_name(std::string_view path);

// The real file system (POSIX). fsync errors are reported, never retried.
class PosixFileSystem final : public FileSystem {
 public:
  Result<std::unique_ptr<WritableFile>> create(const std::string& path) override;
  Result<std::unique_ptr<WritableFile>> reopen(const std::string& path, uint64_t offset) override;
  Result<std::unique_ptr<WritableFile>> overwrite(const std::string& path) override;
  Result<std::string> read_file(const std::string& path) override;
  Result<std::string> read_range(const std::string& path, uint64_t offset, uint64_t n) override;
  Result<uint64_t> file_size(const std::string& path) override;
  Result<std::vector<std::string>> list_dir(const std::string& dir) override;
  Status create_dirs(const std::string& dir) override;
  Status remove_file(const std::string& path) override;
  Status rename(const std::string& from, const std::string& to) override;
  Status sync_dir(const std::string& dir) override;
  bool exists(const std::string& path) override;
};

// An in-memory file system that models durability. Thread-safe.
class MemFileSystem : public FileSystem {
 public:
  Result<std::unique_ptr<WritableFile>> create(const std::string& path) override;
  Result<std::unique_ptr<WritableFile>> reopen(const std::string& path, uint64_t offset) override;
  Result<std::unique_ptr<WritableFile>> overwrite(const std::string& path) override;
  Result<std::string> read_file(const std::string& path) override;
  Result<std::string> read_range(const std::string& path, uint64_t offset, uint64_t n) override;
  Result<uint64_t> file_size(const std::string& path) override;
  Result<std::vector<std::string>> list_dir(const std::string& dir) override;
  Status create_dirs(const std::string& dir) override;
  Status remove_file(const std::string& path) override;
  Status rename(const std::string& from, const std::string& to) override;
  Status sync_dir(const std::string& dir) override;
  bool exists(const std::string& path) override;

  // Simulates a power loss: every file returns to its last synced content;
  // files created, renamed or removed since their directory's last sync
  // return to their state at that sync. Open WritableFiles become dead.
  void crash();

  // Test helpers.
  uint64_t TEST_durable_size(const std::string& path);
  void TEST_write_raw(const std::string& path, std::string content);  // durable at once

 protected:
  struct File {
    std::string data;         // what reads see now
    std::string durable;      // what survives a crash
    uint64_t generation = 0;  // open handles of older generations are dead
  };
  friend class MemWritableFile;

  // Hooks for fault injection (called with mu_ held).
  // grow_bytes: how much the write lengthens the file.
  virtual Status on_append(const std::string& path, File& f, uint64_t grow_bytes) {
    return Status::ok();
  }
  virtual Status on_sync(const std::string& path, File& f) { return Status::ok(); }
  virtual void on_crash_file(const std::string& path, File& f) {}

  std::mutex mu_;
  std::map<std::string, std::shared_ptr<File>> files_;          // visible now
  std::map<std::string, std::shared_ptr<File>> durable_files_;  // as of each dir's last sync
  std::set<std::string> dirs_;
  uint64_t generation_ = 1;
};

// Faults on top of MemFileSystem. All knobs are thread-safe.
class FaultInjectionFileSystem final : public MemFileSystem {
 public:
  explicit FaultInjectionFileSystem(uint64_t seed) : rng_state_(seed) {}
  // Every sync fails with kIoError from now on.
  void set_fail_sync(bool fail);
  // Every rename() fails with kIoError from now on.
  void set_fail_rename(bool fail);
  // Every overwrite() fails with kIoError from now on.
  void set_fail_overwrite(bool fail);
  // Every create() fails with kNoSpace from now on (no inode or directory
  // entry left, as ENOSPC from open(O_CREAT)).
  void set_fail_create(bool fail);
  // Appends fail with kNoSpace once the total file bytes would exceed this.
  void set_space_limit_bytes(uint64_t bytes);
  // At the next crash(), each file keeps a random prefix of its unsynced
  // bytes (a torn last write) instead of none: of the bytes appended since
  // the last sync, or of the overwritten range for a file opened with
  // overwrite().
  void set_torn_writes(bool torn);
  // Flips one bit of a file's current and durable content.
  Status flip_bit(const std::string& path, uint64_t byte_offset, int bit);

  Result<std::unique_ptr<WritableFile>> create(const std::string& path) override;
  Result<std::unique_ptr<WritableFile>> overwrite(const std::string& path) override;
  Status rename(const std::string& from, const std::string& to) override;

 protected:
  Status on_append(const std::string& path, File& f, uint64_t grow_bytes) override;
  Status on_sync(const std::string& path, File& f) override;
  void on_crash_file(const std::string& path, File& f) override;

 private:
  uint64_t next_random();
  bool fail_sync_ = false;
  std::atomic<bool> fail_rename_{false}, fail_overwrite_{false}, fail_create_{false};
  bool torn_writes_ = false;
  uint64_t space_limit_bytes_ = UINT64_MAX;
  uint64_t rng_state_;
};

}  // namespace qkv::storage
