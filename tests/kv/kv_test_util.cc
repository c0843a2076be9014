#include "kv_test_util.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "kv/commands.h"
#include "raft/node.h"

namespace qkv::kv::test {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "kvtest-XXXXXX").string();
  char* p = mkdtemp(tmpl.data());
  QKV_CHECK(p != nullptr) << "mkdtemp failed";
  path_ = p;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string Ok() { return "+OK\r\n"; }
std::string Int(int64_t n) { return ":" + std::to_string(n) + "\r\n"; }
std::string Bulk(std::string_view s) {
  return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n";
}
std::vector<std::string> sorted(std::string_view resp) {
  net::ReplyParser p;
  p.feed(resp);
  EXPECT_EQ(p.next(), net::Parsed::kItem);
  std::vector<std::string> out;
  for (const auto& e : p.value().elements) out.push_back(e.str);
  std::sort(out.begin(), out.end());
  return out;
}

std::string Nil() { return "$-1\r\n"; }
std::string Err(std::string_view s) { return "-" + std::string(s) + "\r\n"; }
std::string Simple(std::string_view s) { return "+" + std::string(s) + "\r\n"; }
std::string Arr(std::initializer_list<std::string> elements) {
  std::string out = "*" + std::to_string(elements.size()) + "\r\n";
  for (const auto& e : elements) out += e;
  return out;
}

KvHarness::KvHarness(KvOptions options, uint64_t group)
    : own_dir_(std::make_unique<TempDir>()),
      dir_(own_dir_->path()),
      options_(options),
      group_(group) {
  open(true);
}

KvHarness::KvHarness(const std::string& dir, KvOptions options, uint64_t group, bool bootstrap)
    : dir_(dir), options_(options), group_(group) {
  open(bootstrap);
}

void KvHarness::open(bool bootstrap) {
  auto store = storage::StateStore::open(dir_, storage::StateStoreOptions{});
  QKV_CHECK(store.is_ok()) << store.status().to_string();
  store_ = std::move(store).value();
  auto sm = KvStateMachine::open(store_.get(), group_, options_);
  QKV_CHECK(sm.is_ok()) << sm.status().to_string();
  sm_ = std::move(sm).value();
  if (bootstrap && sm_->applied_index() == 0) {
    raftpb::ConfState cs;
    cs.add_voters(1);
    Status s = sm_->restore(raft::bootstrap_snapshot(group_, cs));
    QKV_CHECK(s.is_ok()) << s.to_string();
  }
}

void KvHarness::close() {
  sm_.reset();
  store_.reset();
}

void KvHarness::reopen() {
  close();
  open(false);
}

std::vector<std::string> KvHarness::apply_payloads(const std::vector<std::string>& payloads) {
  std::vector<raftpb::Entry> entries;
  uint64_t index = next_index();
  for (const auto& p : payloads) {
    raftpb::Entry e;
    e.set_group(group_);
    e.set_term(1);
    e.set_index(index++);
    e.set_type(raftpb::ENTRY_NORMAL);
    e.set_data(p);
    entries.push_back(std::move(e));
  }
  std::vector<std::string> results;
  Status s = sm_->apply(entries, std::nullopt, &results);
  QKV_CHECK(s.is_ok()) << s.to_string();
  QKV_CHECK_EQ(results.size(), payloads.size());
  return results;
}

std::string KvHarness::apply_one(const std::vector<std::string>& args, bool internal) {
  std::vector<std::string_view> views(args.begin(), args.end());
  RequestView r{protocol, views, internal};
  return apply_payloads({encode_batch(now_ms_, std::span<const RequestView>(&r, 1))})[0];
}

std::string KvHarness::run(const std::vector<std::string>& args) {
  const CommandSpec* spec = args.empty() ? nullptr : find_command(args[0]);
  if (spec != nullptr && spec->is_write()) return apply_one(args);
  std::vector<std::string_view> views(args.begin(), args.end());
  std::string reply;
  Status s = sm_->execute_read(views, protocol, now_ms_, &reply);
  QKV_CHECK(s.is_ok()) << s.to_string();
  return reply;
}

std::string KvHarness::operator()(std::initializer_list<std::string_view> args) {
  return run(std::vector<std::string>(args.begin(), args.end()));
}

}  // namespace qkv::kv::test
