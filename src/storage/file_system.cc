#include "storage/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace qkv::storage {

std::string path_join(std::string_view dir, std::string_view name) {
  std::string p(dir);
  if (!p.empty() && p.back() != '/') p += '/';
  p += name;
  return p;
}

std::string dir_name(std::string_view path) {
  auto pos = path.rfind('/');
  if (pos == std::string_view::npos) return ".";
  if (pos == 0) return "/";
  return std::string(path.substr(0, pos));
}

// ---------------------------------------------------------------------------
// POSIX

namespace {

Status errno_status(const std::string& what, const std::string& path, int err) {
  Code code = err == ENOSPC || err == EDQUOT ? Code::kNoSpace
              : err == ENOENT                ? Code::kNotFound
                                             : Code::kIoError;
  return Status(code, what + " " + path + ": " + std::strerror(err));
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd, uint64_t offset)
      : path_(std::move(path)), fd_(fd), size_(offset) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status append(std::string_view data) override {
    const char* p = data.data();
    size_t left = data.size();
    uint64_t off = size_;
    while (left > 0) {
      ssize_t n = ::pwrite(fd_, p, left, static_cast<off_t>(off));
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno_status("write", path_, errno);
      }
      p += n;
      left -= static_cast<size_t>(n);
      off += static_cast<uint64_t>(n);
    }
    size_ = off;
    return Status::ok();
  }

  Status sync() override {
    // Never retried: after a failed fsync the page cache state is unknown
    // (the kernel may have dropped the dirty pages), so the caller must stop.
    if (::fdatasync(fd_) != 0) return errno_status("fdatasync", path_, errno);
    return Status::ok();
  }

  Status preallocate(uint64_t bytes) override {
    if (bytes <= size_) return Status::ok();
    int rc = ::posix_fallocate(fd_, 0, static_cast<off_t>(bytes));
    if (rc == 0) return Status::ok();
    if (rc == EOPNOTSUPP || rc == EINVAL) return Status::ok();  // best effort
    return errno_status("fallocate", path_, rc);
  }

  uint64_t size() const override { return size_; }

  Status truncate(uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      return errno_status("truncate", path_, errno);
    }
    size_ = size;
    return Status::ok();
  }

  Status close() override {
    if (fd_ >= 0 && ::close(fd_) != 0) {
      fd_ = -1;
      return errno_status("close", path_, errno);
    }
    fd_ = -1;
    return Status::ok();
  }

 private:
  std::string path_;
  int fd_;
  uint64_t size_;
};

}  // namespace

Result<std::unique_ptr<WritableFile>> PosixFileSystem::create(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno_status("create", path, errno);
  return std::unique_ptr<WritableFile>(new PosixWritableFile(path, fd, 0));
}

Result<std::unique_ptr<WritableFile>> PosixFileSystem::reopen(const std::string& path,
                                                              uint64_t offset) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno_status("open", path, errno);
  auto f = std::unique_ptr<WritableFile>(new PosixWritableFile(path, fd, offset));
  // Keep preallocated space but drop what follows the offset: zero it by
  // truncating then re-extending lazily (preallocate).
  struct stat st;
  if (::fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_size) > offset) {
    if (Status s = f->truncate(offset); !s.is_ok()) return s;
  }
  return f;
}

Result<std::unique_ptr<WritableFile>> PosixFileSystem::overwrite(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno_status("open", path, errno);
  return std::unique_ptr<WritableFile>(new PosixWritableFile(path, fd, 0));
}

Result<std::string> PosixFileSystem::read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_status("open", path, errno);
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return errno_status("read", path, err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Result<std::string> PosixFileSystem::read_range(const std::string& path, uint64_t offset,
                                                uint64_t n) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_status("open", path, errno);
  std::string out;
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return errno_status("fstat", path, err);
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (offset < size) out.resize(std::min<uint64_t>(n, size - offset));
  size_t got = 0;
  while (got < out.size()) {
    ssize_t r = ::pread(fd, out.data() + got, out.size() - got, static_cast<off_t>(offset + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return errno_status("pread", path, err);
    }
    if (r == 0) break;  // the file shrank
    got += static_cast<size_t>(r);
  }
  out.resize(got);
  ::close(fd);
  return out;
}

Result<uint64_t> PosixFileSystem::file_size(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return errno_status("stat", path, errno);
  return static_cast<uint64_t>(st.st_size);
}

Result<std::vector<std::string>> PosixFileSystem::list_dir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return errno_status("opendir", dir, errno);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

Status PosixFileSystem::create_dirs(const std::string& dir) {
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    cur = dir.substr(0, pos);
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) {
      return errno_status("mkdir", cur, errno);
    }
  }
  return Status::ok();
}

Status PosixFileSystem::remove_file(const std::string& path) {
  if (::unlink(path.c_str()) != 0) return errno_status("unlink", path, errno);
  return Status::ok();
}

Status PosixFileSystem::rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) return errno_status("rename", from, errno);
  return Status::ok();
}

Status PosixFileSystem::sync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_status("open dir", dir, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return errno_status("fsync dir", dir, err);
  return Status::ok();
}

bool PosixFileSystem::exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// ---------------------------------------------------------------------------
// In memory

class MemWritableFile final : public WritableFile {
 public:
  // overwrite: write from offset 0 over the file's bytes (see
  // FileSystem::overwrite) instead of after them.
  MemWritableFile(MemFileSystem* fs, std::string path, std::shared_ptr<MemFileSystem::File> f,
                  bool overwrite = false)
      : fs_(fs),
        path_(std::move(path)),
        file_(std::move(f)),
        generation_(file_->generation),
        overwrite_(overwrite) {}

  Status append(std::string_view data) override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    if (Status s = alive(); !s.is_ok()) return s;
    std::string& d = file_->data;
    uint64_t at = overwrite_ ? pos_ : d.size();
    uint64_t end = at + data.size();
    if (Status s = fs_->on_append(path_, *file_, end > d.size() ? end - d.size() : 0); !s.is_ok()) {
      return s;
    }
    if (end > d.size()) d.resize(end);
    d.replace(at, data.size(), data);
    pos_ = end;
    return Status::ok();
  }
  Status sync() override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    if (Status s = alive(); !s.is_ok()) return s;
    if (Status s = fs_->on_sync(path_, *file_); !s.is_ok()) return s;
    file_->durable = file_->data;
    return Status::ok();
  }
  Status preallocate(uint64_t) override { return Status::ok(); }
  uint64_t size() const override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    return overwrite_ ? pos_ : file_->data.size();
  }
  Status truncate(uint64_t size) override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    if (Status s = alive(); !s.is_ok()) return s;
    if (size < file_->data.size()) file_->data.resize(size);
    pos_ = std::min<uint64_t>(pos_, size);
    return Status::ok();
  }
  Status close() override { return Status::ok(); }

 private:
  Status alive() const {
    if (file_->generation != generation_) {
      return Status(Code::kIoError, "file handle of " + path_ + " died in a crash");
    }
    return Status::ok();
  }
  MemFileSystem* fs_;
  std::string path_;
  std::shared_ptr<MemFileSystem::File> file_;
  uint64_t generation_;
  bool overwrite_;
  uint64_t pos_ = 0;  // where the next append writes, when overwrite_
};

Result<std::unique_ptr<WritableFile>> MemFileSystem::create(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!dirs_.count(dir_name(path))) {
    return Status(Code::kNotFound, "create " + path + ": no such directory");
  }
  auto f = std::make_shared<File>();
  f->generation = generation_;
  files_[path] = f;
  return std::unique_ptr<WritableFile>(new MemWritableFile(this, path, f));
}

Result<std::unique_ptr<WritableFile>> MemFileSystem::reopen(const std::string& path,
                                                            uint64_t offset) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return Status(Code::kNotFound, "open " + path + ": no such file");
  auto f = it->second;
  if (offset < f->data.size()) f->data.resize(offset);
  f->generation = generation_;
  return std::unique_ptr<WritableFile>(new MemWritableFile(this, path, f));
}

Result<std::unique_ptr<WritableFile>> MemFileSystem::overwrite(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return Status(Code::kNotFound, "open " + path + ": no such file");
  it->second->generation = generation_;
  return std::unique_ptr<WritableFile>(new MemWritableFile(this, path, it->second, true));
}

Result<std::string> MemFileSystem::read_file(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return Status(Code::kNotFound, "open " + path + ": no such file");
  return it->second->data;
}

Result<std::string> MemFileSystem::read_range(const std::string& path, uint64_t offset,
                                              uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return Status(Code::kNotFound, "open " + path + ": no such file");
  const std::string& d = it->second->data;
  if (offset >= d.size()) return std::string();
  return d.substr(offset, std::min<uint64_t>(n, d.size() - offset));
}

Result<uint64_t> MemFileSystem::file_size(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return Status(Code::kNotFound, "stat " + path + ": no such file");
  return static_cast<uint64_t>(it->second->data.size());
}

Result<std::vector<std::string>> MemFileSystem::list_dir(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!dirs_.count(dir)) return Status(Code::kNotFound, "opendir " + dir + ": no such directory");
  std::vector<std::string> names;
  for (const auto& [path, f] : files_) {
    if (dir_name(path) == dir) names.push_back(path.substr(dir.size() + (dir == "/" ? 0 : 1)));
  }
  for (const auto& d : dirs_) {
    if (d != dir && dir_name(d) == dir) names.push_back(d.substr(dir.size() + 1));
  }
  std::sort(names.begin(), names.end());
  return names;
}

Status MemFileSystem::create_dirs(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  // Directories are durable at once in this model; file entries are not.
  std::string cur = dir;
  while (!cur.empty() && cur != "." && cur != "/") {
    dirs_.insert(cur);
    cur = dir_name(cur);
  }
  return Status::ok();
}

Status MemFileSystem::remove_file(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!files_.erase(path)) return Status(Code::kNotFound, "unlink " + path + ": no such file");
  return Status::ok();
}

Status MemFileSystem::rename(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(from);
  if (it == files_.end()) return Status(Code::kNotFound, "rename " + from + ": no such file");
  auto f = it->second;
  files_.erase(it);
  files_[to] = f;
  return Status::ok();
}

Status MemFileSystem::sync_dir(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = durable_files_.begin(); it != durable_files_.end();) {
    it = dir_name(it->first) == dir ? durable_files_.erase(it) : std::next(it);
  }
  for (const auto& [path, f] : files_) {
    if (dir_name(path) == dir) durable_files_[path] = f;
  }
  return Status::ok();
}

bool MemFileSystem::exists(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  return files_.count(path) > 0 || dirs_.count(path) > 0;
}

void MemFileSystem::crash() {
  std::lock_guard<std::mutex> lock(mu_);
  generation_++;
  // Every file object: content back to durable (with the hook's say).
  std::set<File*> seen;
  auto reset = [&](const std::string& path, const std::shared_ptr<File>& f) {
    if (!seen.insert(f.get()).second) return;
    on_crash_file(path, *f);
    f->data = f->durable;
    f->generation = 0;  // every open handle is dead
  };
  for (const auto& [path, f] : files_) reset(path, f);
  for (const auto& [path, f] : durable_files_) reset(path, f);
  files_ = durable_files_;
}

uint64_t MemFileSystem::TEST_durable_size(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(path);
  return it == files_.end() ? 0 : it->second->durable.size();
}

void MemFileSystem::TEST_write_raw(const std::string& path, std::string content) {
  std::lock_guard<std::mutex> lock(mu_);
  auto f = std::make_shared<File>();
  f->data = content;
  f->durable = std::move(content);
  files_[path] = f;
  durable_files_[path] = f;
}

// ---------------------------------------------------------------------------
// Fault injection

uint64_t FaultInjectionFileSystem::next_random() {
  uint64_t z = (rng_state_ += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

void FaultInjectionFileSystem::set_fail_sync(bool fail) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_sync_ = fail;
}

void FaultInjectionFileSystem::set_fail_rename(bool fail) { fail_rename_ = fail; }
void FaultInjectionFileSystem::set_fail_overwrite(bool fail) { fail_overwrite_ = fail; }
void FaultInjectionFileSystem::set_fail_create(bool fail) { fail_create_ = fail; }

Result<std::unique_ptr<WritableFile>> FaultInjectionFileSystem::create(const std::string& path) {
  if (fail_create_) return Status(Code::kNoSpace, "open " + path + ": No space left on device");
  return MemFileSystem::create(path);
}

Result<std::unique_ptr<WritableFile>> FaultInjectionFileSystem::overwrite(const std::string& path) {
  if (fail_overwrite_) return Status(Code::kIoError, "open " + path + ": Input/output error");
  return MemFileSystem::overwrite(path);
}

Status FaultInjectionFileSystem::rename(const std::string& from, const std::string& to) {
  if (fail_rename_) {
    return Status(Code::kIoError, "rename " + from + " to " + to + ": Input/output error");
  }
  return MemFileSystem::rename(from, to);
}

void FaultInjectionFileSystem::set_space_limit_bytes(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  space_limit_bytes_ = bytes;
}

void FaultInjectionFileSystem::set_torn_writes(bool torn) {
  std::lock_guard<std::mutex> lock(mu_);
  torn_writes_ = torn;
}

Status FaultInjectionFileSystem::flip_bit(const std::string& path, uint64_t byte_offset, int bit) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return Status(Code::kNotFound, path);
  File& f = *it->second;
  if (byte_offset < f.data.size()) f.data[byte_offset] ^= static_cast<char>(1 << bit);
  if (byte_offset < f.durable.size()) f.durable[byte_offset] ^= static_cast<char>(1 << bit);
  return Status::ok();
}

Status FaultInjectionFileSystem::on_append(const std::string& path, File& f, uint64_t grow_bytes) {
  if (grow_bytes == 0) return Status::ok();  // overwriting allocated space
  uint64_t total = 0;
  for (const auto& [p, file] : files_) total += file->data.size();
  if (total + grow_bytes > space_limit_bytes_) {
    return Status(Code::kNoSpace, "write " + path + ": No space left on device");
  }
  return Status::ok();
}

Status FaultInjectionFileSystem::on_sync(const std::string& path, File& f) {
  if (fail_sync_) return Status(Code::kIoError, "fdatasync " + path + ": Input/output error");
  return Status::ok();
}

void FaultInjectionFileSystem::on_crash_file(const std::string& path, File& f) {
  if (!torn_writes_) return;
  // Keep a random prefix of the bytes written since the last sync: a torn
  // write. They are the range from the first to the last byte where the
  // file differs from its durable content (appended after it, or written
  // over it in place); a file cut shorter since its sync is left alone.
  if (f.data.size() < f.durable.size()) return;
  size_t common = f.durable.size();
  size_t first = 0;
  while (first < common && f.data[first] == f.durable[first]) first++;
  size_t last = f.data.size();
  if (last == common) {
    while (last > first && f.data[last - 1] == f.durable[last - 1]) last--;
  }
  if (first == last) return;
  uint64_t keep = next_random() % (last - first + 1);
  std::string torn = f.data.substr(0, first + keep);
  if (torn.size() < common) torn.append(f.durable, torn.size(), std::string::npos);
  f.durable = std::move(torn);
}

}  // namespace qkv::storage
