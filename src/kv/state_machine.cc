#include "kv/state_machine.h"

#include "kv/waiters.h"

#include <algorithm>
#include <random>

#include "base/check.h"
#include "kv/commands.h"
#include "kv/kv.pb.h"
#include "kv/layout.h"
#include "kv/txn.h"
#include "kv/waiters.h"
#include "storage/file_system.h"
#include "storage/snapshot_file.h"

namespace qkv::kv {

namespace {

// SplitMix64: a seed for RANDOMKEY derived from the entry, so replicas that
// apply a batch holding RANDOMKEY agree on the reply.
uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t read_random() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng();
}

net::Protocol protocol_of(uint32_t p) {
  return p == 3 ? net::Protocol::kResp3 : net::Protocol::kResp2;
}

class EmptySource final : public storage::RecordSource {
 public:
  Result<bool> next(std::string_view*, std::string_view*) override { return false; }
};

}  // namespace

KvStateMachine::KvStateMachine(storage::StateStore* store, uint64_t group, const KvOptions& options)
    : store_(store), group_(group), options_(options), scripts_(make_script_engine(options)) {
  QKV_CHECK(store_ != nullptr);
}

Result<std::unique_ptr<KvStateMachine>> KvStateMachine::open(storage::StateStore* store,
                                                             uint64_t group,
                                                             const KvOptions& options) {
  std::unique_ptr<KvStateMachine> sm(new KvStateMachine(store, group, options));
  if (Status s = sm->load_meta(); !s.is_ok()) return s;
  return sm;
}

Status KvStateMachine::load_meta() {
  auto read_u64 = [&](std::string_view name, uint64_t* out) -> Status {
    auto v = store_->get(group_, meta_key(name));
    if (!v.is_ok()) return v.status();
    *out = 0;
    if (!v->has_value()) return Status::ok();
    if (!decode_u64be(**v, out)) {
      return Status(Code::kCorruption, "group " + std::to_string(group_) + ": bad kv metadata '" +
                                           std::string(name) + "'");
    }
    return Status::ok();
  };
  uint64_t format = 0, keys = 0, expires = 0, stamp = 0;
  if (Status s = read_u64(kMetaFormat, &format); !s.is_ok()) return s;
  // The counters are written when they change; the format record with the
  // first apply: a store without it has none of them yet.
  meta_written_ = format != 0;
  if (format != 0 && format != kFormatVersion) {
    return Status(Code::kCorruption, "group " + std::to_string(group_) +
                                         ": unknown key-value layout version " +
                                         std::to_string(format));
  }
  if (Status s = read_u64(kMetaKeys, &keys); !s.is_ok()) return s;
  if (Status s = read_u64(kMetaExpires, &expires); !s.is_ok()) return s;
  if (Status s = read_u64(kMetaStamp, &stamp); !s.is_ok()) return s;
  if (Status s = read_u64(kMetaFence, &counters_.fence); !s.is_ok()) return s;
  if (Status s = read_u64(kMetaWaiterSeq, &counters_.waiter_seq); !s.is_ok()) return s;
  if (Status s = read_u64(kMetaWaiters, &counters_.waiters); !s.is_ok()) return s;
  counters_.keys = keys;
  counters_.expires = expires;
  last_stamp_ms_ = static_cast<int64_t>(stamp);
  return Status::ok();
}

Status KvStateMachine::apply(const std::vector<raftpb::Entry>& entries,
                             const std::optional<raftpb::ConfState>& conf,
                             std::vector<std::string>* results) {
  if (entries.empty()) return Status::ok();
  uint64_t expected = applied_index() + 1;
  Txn txn(store_, group_, /*writable=*/true);
  KeyspaceCounters counters = counters_;
  int64_t stamp = last_stamp_ms_;
  uint64_t expired_deleted = 0;
  int64_t min_expiry_written = INT64_MAX;
  std::vector<std::string_view> args;
  ApplyEvents events;
  events.want_keyspace = sink_keyspace_;
  ApplyEvents* ev = event_sink_ ? &events : nullptr;
  for (const raftpb::Entry& e : entries) {
    QKV_CHECK_EQ(e.index(), expected)
        << "group " << group_ << ": entries must follow the applied index";
    expected++;
    std::string out;
    if (e.type() == raftpb::ENTRY_NORMAL && !e.data().empty()) {
      kvpb::KvBatch batch;
      if (!batch.ParseFromString(e.data())) {
        net::ReplyWriter w(&out);
        w.error("ERR malformed replicated entry (not applied)");
      } else {
        stamp = std::max<int64_t>(stamp, batch.stamp_ms());
        Keyspace ks(&txn, stamp, &counters);
        // Blocked clients of the lists pushed to, first blocked first served
        // (waiters.h); serving may push more (BLMOVE). Their writes are
        // logged as a command's are (keys changed for CLIENT TRACKING, "new"
        // notifications). A transaction serves them after its last command,
        // a pipelined run after each (kvpb.KvBatch.pipeline).
        auto serve_pushed = [&] {
          if (ks.take_cleared() && counters.waiters > 0) {
            for (const std::string& k : keys_with_waiters(ks)) ks.note_list_push(k);
          }
          const std::vector<std::string>& pushed = ks.lists_pushed();
          if (pushed.empty()) return;
          if (counters.waiters == 0) {
            ks.clear_lists_pushed();
            return;
          }
          if (ev != nullptr) ks.set_change_log(ev);
          const size_t changes_before = ev != nullptr ? ev->keys_changed.size() : 0;
          for (size_t p = 0; p < pushed.size() && counters.waiters > 0; p++) {
            const std::string key = pushed[p];
            std::string scratch;
            net::ReplyWriter w(&scratch);
            CommandContext ctx{ks, w, options_, *find_command("blpop"),
                               mix64(e.index() * 1000003 + 999983), scripts_.get(), ev};
            serve_waiters(ctx, key);
          }
          ks.clear_lists_pushed();  // all served: a later push to one counts again
          ks.set_change_log(nullptr);
          if (ev != nullptr) {
            for (size_t k = changes_before; k < ev->keys_changed.size(); k++) {
              ev->served_changes.emplace_back(e.index(), ev->keys_changed[k]);
            }
          }
        };
        for (int i = 0; i < batch.requests_size(); i++) {
          const kvpb::KvRequest& req = batch.requests(i);
          args.assign(req.args().begin(), req.args().end());
          net::ReplyWriter w(&out, protocol_of(req.protocol()));
          const uint64_t before = counters.keys;
          execute_command(ks, w, options_, args, req.internal(),
                          mix64(e.index() * 1000003 + static_cast<uint64_t>(i)), scripts_.get(),
                          ev);
          if (req.internal()) expired_deleted += before - counters.keys;
          if (batch.pipeline()) serve_pushed();
        }
        serve_pushed();
        min_expiry_written = std::min(min_expiry_written, ks.min_expiry_written());
      }
    }
    results->push_back(std::move(out));
  }
  if (!txn.status().is_ok()) return txn.status();

  storage::StateBatch batch(group_);
  txn.commit(&batch);
  // The '#' counters that changed (each put is a memtable insert, the
  // costliest part of an apply: writing all seven per batch was a third of
  // a leader's inserts at 16 clients); all of them, and the format, when
  // this batch deleted a range that reaches them or none was written yet.
  const bool all = !meta_written_ || txn.deletes_under(std::string_view(&kMetaTag, 1));
  auto put_if = [&](std::string_view name, uint64_t now, uint64_t before) {
    if (all || now != before) batch.put(meta_key(name), encode_u64be(now));
  };
  if (all) batch.put(meta_key(kMetaFormat), encode_u64be(kFormatVersion));
  put_if(kMetaKeys, counters.keys, counters_.keys);
  put_if(kMetaExpires, counters.expires, counters_.expires);
  put_if(kMetaStamp, static_cast<uint64_t>(stamp), static_cast<uint64_t>(last_stamp_ms_));
  put_if(kMetaFence, counters.fence, counters_.fence);
  put_if(kMetaWaiterSeq, counters.waiter_seq, counters_.waiter_seq);
  put_if(kMetaWaiters, counters.waiters, counters_.waiters);
  const raftpb::Entry& last = entries.back();
  if (Status s = store_->apply(batch, last.index(), last.term(), conf ? &*conf : nullptr);
      !s.is_ok()) {
    return s;
  }
  counters_ = counters;
  last_stamp_ms_ = stamp;
  meta_written_ = true;
  expired_deleted_ += expired_deleted;
  expiry_scan_from_ms_ = std::min(expiry_scan_from_ms_, min_expiry_written);
  if (ev != nullptr && !events.empty()) event_sink_(events);
  return Status::ok();
}

Status KvStateMachine::restore(const raftpb::SnapshotMetadata& meta,
                               storage::RecordSource& records) {
  if (meta.group() != group_) {
    return Status(Code::kInvalidArgument, "snapshot of group " + std::to_string(meta.group()) +
                                              " given to group " + std::to_string(group_));
  }
  if (Status s = store_->install_snapshot(meta, records); !s.is_ok()) return s;
  cached_snapshot_.reset();
  expiry_scan_from_ms_ = 0;
  return load_meta();
}

Result<raftpb::SnapshotMetadata> KvStateMachine::persist_applied() {
  if (Status s = store_->sync(); !s.is_ok()) return s;
  return store_->applied(group_);
}

Result<cluster::SnapshotSource> KvStateMachine::open_snapshot() {
  auto view = store_->snapshot(group_);
  if (!view.is_ok()) return view.status();
  cluster::SnapshotSource src;
  src.meta = (*view)->meta();
  src.approximate_bytes = (*view)->approximate_bytes();
  src.records = std::move(view).value();
  return src;
}

Status KvStateMachine::restore(const raftpb::Snapshot& snapshot) {
  const raftpb::SnapshotMetadata& meta = snapshot.metadata();
  if (snapshot.data().empty()) {
    EmptySource none;
    return restore(meta, none);
  }
  auto reader = storage::SnapshotReader::open_bytes(
      snapshot.data(), "snapshot of group " + std::to_string(group_) + " at index " +
                           std::to_string(meta.index()));
  if (!reader.is_ok()) return reader.status();
  const raftpb::SnapshotMetadata& file_meta = (*reader)->meta();
  if (file_meta.group() != meta.group() || file_meta.index() != meta.index() ||
      file_meta.term() != meta.term()) {
    return Status(Code::kCorruption,
                  "snapshot data is for group " + std::to_string(file_meta.group()) + " index " +
                      std::to_string(file_meta.index()) + " term " +
                      std::to_string(file_meta.term()) + ", not for its metadata's");
  }
  return restore(meta, **reader);
}

Result<std::shared_ptr<const raftpb::Snapshot>> KvStateMachine::snapshot() {
  if (Status s = store_->sync(); !s.is_ok()) return s;
  if (cached_snapshot_ && cached_snapshot_->metadata().index() == applied_index()) {
    return cached_snapshot_;
  }
  auto view = store_->snapshot(group_);
  if (!view.is_ok()) return view.status();
  auto too_big = [&] {
    return Status(Code::kInvalidArgument, "group " + std::to_string(group_) +
                                              ": state exceeds snapshot_bytes_max " +
                                              std::to_string(options_.snapshot_bytes_max) +
                                              " (this snapshot is held in memory)");
  };
  storage::MemFileSystem fs;
  const std::string dir = "/snapshot";
  const std::string path = dir + "/data";
  if (Status s = fs.create_dirs(dir); !s.is_ok()) return s;
  storage::SnapshotWriterOptions wo;
  wo.sync = false;
  auto writer = storage::SnapshotWriter::create(&fs, path, (*view)->meta(), wo);
  if (!writer.is_ok()) return writer.status();
  for (;;) {
    std::string_view key, value;
    Result<bool> more = (*view)->next(&key, &value);
    if (!more.is_ok()) return more.status();
    if (!*more) break;
    if (Status s = (*writer)->add(key, value); !s.is_ok()) return s;
    if ((*writer)->bytes_written() > options_.snapshot_bytes_max) return too_big();
  }
  auto info = (*writer)->finish();
  if (!info.is_ok()) return info.status();
  if (info->bytes > options_.snapshot_bytes_max) return too_big();
  auto bytes = fs.read_file(path);
  if (!bytes.is_ok()) return bytes.status();
  auto snap = std::make_shared<raftpb::Snapshot>();
  *snap->mutable_metadata() = (*view)->meta();
  snap->set_data(std::move(bytes).value());
  cached_snapshot_ = snap;
  return std::shared_ptr<const raftpb::Snapshot>(snap);
}

uint64_t KvStateMachine::applied_index() const { return store_->applied(group_).index(); }

raftpb::ConfState KvStateMachine::conf_state() const {
  return store_->applied(group_).conf_state();
}

Status KvStateMachine::execute_read(std::span<const std::string_view> args, net::Protocol protocol,
                                    int64_t now_ms, std::string* reply) {
  const size_t mark = reply->size();
  net::ReplyWriter w(reply, protocol);
  if (args.empty()) {
    w.error("ERR empty command");
    return Status::ok();
  }
  const CommandSpec* spec = find_command(args[0]);
  if (spec != nullptr && (!spec->is_readonly() || spec->handler == nullptr)) {
    return Status(Code::kInvalidArgument,
                  "'" + std::string(spec->name) + "' is not a read-only data command");
  }
  Txn txn(store_, group_, /*writable=*/false);
  KeyspaceCounters counters = counters_;
  Keyspace ks(&txn, std::max(now_ms, last_stamp_ms_), &counters);
  execute_command(ks, w, options_, args, /*internal=*/false, read_random(), scripts_.get());
  if (!txn.status().is_ok()) {
    reply->resize(mark);
    return txn.status();
  }
  return Status::ok();
}

std::vector<std::string> KvStateMachine::expired_keys_to_delete(int64_t now_ms, size_t max_n) {
  Txn txn(store_, group_, /*writable=*/false);
  KeyspaceCounters counters = counters_;
  Keyspace ks(&txn, now_ms, &counters);
  int64_t first_ms = INT64_MAX;
  auto keys = ks.expired_keys(max_n, expiry_scan_from_ms_, &first_ms);
  if (!txn.status().is_ok()) return {};
  expiry_scan_from_ms_ = first_ms;
  return keys;
}

std::vector<std::string> KvStateMachine::due_timers(int64_t now_ms, size_t max_n) {
  Txn txn(store_, group_, /*writable=*/false);
  KeyspaceCounters counters = counters_;
  Keyspace ks(&txn, now_ms, &counters);
  auto timers = kv::due_timers(ks, max_n);
  if (!txn.status().is_ok()) return {};
  return timers;
}

uint64_t KvStateMachine::waiters_on(std::string_view key) {
  if (counters_.waiters == 0) return 0;
  Txn txn(store_, group_, /*writable=*/false);
  KeyspaceCounters counters = counters_;
  Keyspace ks(&txn, last_stamp_ms_, &counters);
  const uint64_t n = kv::waiter_count(ks, key);
  return txn.status().is_ok() ? n : 1;  // a read error: assume some
}

Status KvStateMachine::TEST_check_invariants() {
  Txn txn(store_, group_, /*writable=*/false);
  KeyspaceCounters counters = counters_;
  Keyspace ks(&txn, last_stamp_ms_, &counters);
  if (Status s = TEST_check_waiters(ks); !s.is_ok()) return s;
  return ks.TEST_check_invariants();
}

Status KvStateMachine::TEST_put_record(std::string_view key, const Record& r) {
  Txn txn(store_, group_, /*writable=*/true);
  KeyspaceCounters counters = counters_;
  Keyspace ks(&txn, last_stamp_ms_, &counters);
  ks.put(key, r);
  if (!txn.status().is_ok()) return txn.status();
  expiry_scan_from_ms_ = std::min(expiry_scan_from_ms_, ks.min_expiry_written());
  storage::StateBatch batch(group_);
  txn.commit(&batch);
  batch.put(meta_key(kMetaKeys), encode_u64be(counters.keys));
  batch.put(meta_key(kMetaExpires), encode_u64be(counters.expires));
  const raftpb::SnapshotMetadata applied = store_->applied(group_);
  if (Status s = store_->apply(batch, applied.index() + 1, applied.term(), nullptr); !s.is_ok()) {
    return s;
  }
  counters_ = counters;
  return Status::ok();
}

std::string encode_batch(int64_t stamp_ms, std::span<const RequestView> requests,
                         bool pipeline) {
  kvpb::KvBatch batch;
  batch.set_stamp_ms(stamp_ms);
  if (pipeline) batch.set_pipeline(true);
  for (const RequestView& r : requests) {
    kvpb::KvRequest* req = batch.add_requests();
    req->set_protocol(static_cast<uint32_t>(r.protocol));
    req->set_internal(r.internal);
    for (std::string_view a : r.args) req->add_args(a.data(), a.size());
  }
  return batch.SerializeAsString();
}

std::string encode_request(int64_t stamp_ms, net::Protocol protocol,
                           std::span<const std::string_view> args) {
  RequestView r{protocol, args, false};
  return encode_batch(stamp_ms, std::span<const RequestView>(&r, 1));
}

std::string encode_expired_deletion(int64_t stamp_ms, std::span<const std::string> keys) {
  std::vector<std::string_view> args;
  args.reserve(keys.size() + 1);
  args.push_back(kDelExpiredCommand);
  for (const auto& k : keys) args.push_back(k);
  RequestView r{net::Protocol::kResp2, args, true};
  return encode_batch(stamp_ms, std::span<const RequestView>(&r, 1));
}

std::string encode_internal(int64_t stamp_ms, net::Protocol protocol,
                            std::span<const std::string_view> args) {
  RequestView r{protocol, args, true};
  return encode_batch(stamp_ms, std::span<const RequestView>(&r, 1));
}

Result<std::vector<std::string>> split_replies(std::string_view replies, size_t n) {
  net::ReplyParser parser(net::ReplyLimits{}, /*build_tree=*/false);
  parser.feed(replies);
  std::vector<std::string> out;
  out.reserve(n);
  size_t used = 0;
  while (out.size() < n) {
    net::Parsed p = parser.next();
    if (p != net::Parsed::kItem) {
      return Status(Code::kCorruption, "expected " + std::to_string(n) + " replies, found " +
                                           std::to_string(out.size()) +
                                           (p == net::Parsed::kError ? ": " + parser.error() : ""));
    }
    out.emplace_back(parser.raw());
    used += out.back().size();
  }
  if (used != replies.size()) {
    return Status(Code::kCorruption, "bytes left after " + std::to_string(n) + " replies");
  }
  return out;
}

}  // namespace qkv::kv
