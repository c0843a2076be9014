#include "storage/state_store.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <memory>

#include "storage/memtable_rep.h"

namespace qkv::storage {

namespace {

constexpr char kDataTag = 'd';
constexpr char kMetaTag = 'm';
constexpr char kVersionKey[] = "v";
constexpr uint32_t kLayoutVersion = 1;
constexpr size_t kPrefixBytes = 9;  // tag + group
constexpr char kAppliedName[] = "applied";
constexpr char kConfName[] = "conf";

void put_u64_be(std::string& s, uint64_t v) {
  for (int i = 7; i >= 0; i--) s.push_back(static_cast<char>(v >> (8 * i)));
}
uint64_t get_u64_be(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
void put_u64_le(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; i++) s.push_back(static_cast<char>(v >> (8 * i)));
}
uint64_t get_u64_le(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

std::string group_prefix(char tag, uint64_t group) {
  std::string k;
  k.reserve(kPrefixBytes);
  k.push_back(tag);
  put_u64_be(k, group);
  return k;
}

// The first key after every key of (tag, group).
std::string group_end(char tag, uint64_t group) {
  if (group == UINT64_MAX) return std::string(1, static_cast<char>(tag + 1));
  return group_prefix(tag, group + 1);
}

// The smallest string greater than every string starting with p, or "" if
// there is none (p is all 0xff).
std::string prefix_successor(std::string p) {
  while (!p.empty() && static_cast<uint8_t>(p.back()) == 0xff) p.pop_back();
  if (!p.empty()) p.back() = static_cast<char>(static_cast<uint8_t>(p.back()) + 1);
  return p;
}

std::string encode_applied(uint64_t index, uint64_t term) {
  std::string v;
  put_u64_le(v, index);
  put_u64_le(v, term);
  return v;
}

Status from_rocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::ok();
  Code code = s.IsNoSpace()           ? Code::kNoSpace
              : s.IsCorruption()      ? Code::kCorruption
              : s.IsNotFound()        ? Code::kNotFound
              : s.IsInvalidArgument() ? Code::kInvalidArgument
                                      : Code::kIoError;
  return Status(code, what + ": " + s.ToString());
}

rocksdb::Slice slice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

}  // namespace

std::string state_data_key(uint64_t group, std::string_view user_key) {
  std::string k = group_prefix(kDataTag, group);
  k.append(user_key);
  return k;
}

std::string state_meta_key(uint64_t group, std::string_view name) {
  std::string k = group_prefix(kMetaTag, group);
  k.append(name);
  return k;
}

// ---------------------------------------------------------------------------
// StateBatch

StateBatch::StateBatch(uint64_t group) : group_(group), wb_(new rocksdb::WriteBatch) {}
StateBatch::~StateBatch() = default;

void StateBatch::put(std::string_view key, std::string_view value) {
  QKV_CHECK(wb_->Put(state_data_key(group_, key), slice(value)).ok());
  ops_++;
}

void StateBatch::del(std::string_view key) {
  QKV_CHECK(wb_->Delete(state_data_key(group_, key)).ok());
  ops_++;
}

void StateBatch::delete_range(std::string_view begin, std::string_view end) {
  std::string b = state_data_key(group_, begin);
  std::string e = end.empty() ? group_end(kDataTag, group_) : state_data_key(group_, end);
  QKV_CHECK(wb_->DeleteRange(b, e).ok());
  ops_++;
}

uint64_t StateBatch::bytes() const { return wb_->GetDataSize(); }

void StateBatch::clear() {
  wb_->Clear();
  ops_ = 0;
}

// ---------------------------------------------------------------------------
// GroupSnapshot

GroupSnapshot::~GroupSnapshot() {
  it_.reset();
  if (snap_ != nullptr) store_->db_->ReleaseSnapshot(snap_);
  store_->live_views_--;
}

Result<bool> GroupSnapshot::next(std::string_view* key, std::string_view* value) {
  if (done_) return false;
  if (!started_) {
    it_->Seek(state_data_key(meta_.group(), ""));
    started_ = true;
  } else {
    it_->Next();
  }
  if (!it_->Valid()) {
    if (Status s = from_rocks(it_->status(), "snapshot iterator"); !s.is_ok()) return s;
    done_ = true;
    return false;
  }
  rocksdb::Slice k = it_->key();
  QKV_CHECK(k.size() >= kPrefixBytes && k[0] == kDataTag &&
            get_u64_be(k.data() + 1) == meta_.group())
      << "iterator left the group's range";
  *key = std::string_view(k.data() + kPrefixBytes, k.size() - kPrefixBytes);
  rocksdb::Slice v = it_->value();
  *value = std::string_view(v.data(), v.size());
  return true;
}

// ---------------------------------------------------------------------------
// StateStore

StateStore::StateStore(std::string dir, StateStoreOptions options)
    : dir_(std::move(dir)), opts_(options) {}

StateStore::~StateStore() {
  QKV_CHECK_EQ(live_views_.load(), 0) << "GroupSnapshots must be destroyed before the StateStore";
  if (db_) {
    // Close errors have nowhere to go; what matters was synced by sync().
    (void)db_->Close();
  }
}

Result<std::unique_ptr<StateStore>> StateStore::open(const std::string& dir,
                                                     const StateStoreOptions& options) {
  if (options.sync_writes && options.disable_rocksdb_wal) {
    return Status(Code::kInvalidArgument, "sync_writes needs RocksDB's WAL");
  }
  rocksdb::Env* env = rocksdb::Env::Default();
  const std::string ingest_dir = dir + "/ingest";
  for (const std::string& d : {dir, ingest_dir}) {
    if (Status s = from_rocks(env->CreateDirIfMissing(d), "mkdir " + d); !s.is_ok()) return s;
  }
  // Left over from an install interrupted by a crash: never ingested.
  std::vector<std::string> children;
  if (Status s = from_rocks(env->GetChildren(ingest_dir, &children), "list " + ingest_dir);
      !s.is_ok()) {
    return s;
  }
  for (const auto& c : children) {
    if (c == "." || c == "..") continue;
    if (Status s = from_rocks(env->DeleteFile(ingest_dir + "/" + c), "remove stale ingest file");
        !s.is_ok()) {
      return s;
    }
  }

  rocksdb::Options o;
  o.create_if_missing = true;
  o.write_buffer_size = options.write_buffer_bytes;
  o.max_write_buffer_number = options.write_buffers_max;
  o.max_background_jobs = options.background_jobs;
  if (options.key_indexed_memtable) {
    o.memtable_factory = std::make_shared<KeyIndexedMemTableFactory>();
    // Its inserts come from one thread at a time (RocksDB's write group
    // leader inserts for the group), as the store's writes are serial anyway.
    o.allow_concurrent_memtable_write = false;
  }
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  // RocksDB's informational LOG files: keep a bounded number.
  o.keep_log_file_num = 5;
  o.max_log_file_size = 16ull << 20;
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));

  std::unique_ptr<StateStore> store(new StateStore(dir, options));
  rocksdb::DB* db = nullptr;
  if (Status s = from_rocks(rocksdb::DB::Open(o, dir + "/db", &db), "open state store " + dir);
      !s.is_ok()) {
    return s;
  }
  store->db_.reset(db);
  if (options.read_cache_bytes > 0) {
    store->cache_ =
        std::make_unique<ReadCache>(options.read_cache_bytes, options.read_cache_value_bytes_max,
                                    options.read_cache_fill_on_write);
  }

  // The layout version: written into a new store, checked in an old one.
  std::string version;
  rocksdb::Status rs = db->Get(rocksdb::ReadOptions(), kVersionKey, &version);
  if (rs.IsNotFound()) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    it->SeekToFirst();
    if (it->Valid()) {
      return Status(Code::kCorruption, "state store " + dir + ": data without a layout version");
    }
    std::string v;
    put_u64_le(v, kLayoutVersion);
    rocksdb::WriteOptions wo;
    wo.disableWAL = options.disable_rocksdb_wal;
    if (Status s = from_rocks(db->Put(wo, kVersionKey, v), "write layout version"); !s.is_ok()) {
      return s;
    }
    // Into an SST at once, so it never depends on RocksDB's WAL.
    if (Status s = from_rocks(db->Flush(rocksdb::FlushOptions()), "flush"); !s.is_ok()) return s;
  } else if (!rs.ok()) {
    return from_rocks(rs, "read layout version");
  } else if (version.size() != 8 || get_u64_le(version.data()) != kLayoutVersion) {
    return Status(Code::kCorruption, "state store " + dir +
                                         ": unsupported layout version (expected " +
                                         std::to_string(kLayoutVersion) + ")");
  }
  if (Status s = store->load_metadata(); !s.is_ok()) return s;
  // What recovery found may still be only in the page cache (after a process
  // crash): make it durable so durable_applied() can start from it.
  if (Status s = store->sync(); !s.is_ok()) return s;
  return store;
}

Status StateStore::load_metadata() {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const std::string begin(1, kMetaTag);
  for (it->Seek(begin); it->Valid() && it->key()[0] == kMetaTag; it->Next()) {
    rocksdb::Slice k = it->key(), v = it->value();
    if (k.size() <= kPrefixBytes) {
      return Status(Code::kCorruption, "state store " + dir_ + ": malformed metadata key");
    }
    uint64_t group = get_u64_be(k.data() + 1);
    std::string_view name(k.data() + kPrefixBytes, k.size() - kPrefixBytes);
    Applied& a = applied_[group];
    if (name == kAppliedName) {
      if (v.size() != 16) {
        return Status(Code::kCorruption, "state store " + dir_ + ": group " +
                                             std::to_string(group) + ": applied value of " +
                                             std::to_string(v.size()) + " bytes, expected 16");
      }
      a.index = get_u64_le(v.data());
      a.term = get_u64_le(v.data() + 8);
    } else if (name == kConfName) {
      if (!a.conf.ParseFromArray(v.data(), static_cast<int>(v.size()))) {
        return Status(Code::kCorruption, "state store " + dir_ + ": group " +
                                             std::to_string(group) + ": unparsable ConfState");
      }
    }
    // Unknown names are left alone (written by a newer minor version).
  }
  if (Status s = from_rocks(it->status(), "scan metadata"); !s.is_ok()) return s;
  return Status::ok();
}

Status StateStore::failed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failed_;
}

Status StateStore::fail(Status s) {
  std::lock_guard<std::mutex> lock(mu_);
  if (failed_.is_ok()) failed_ = s;
  return s;
}

Status StateStore::write(rocksdb::WriteBatch* wb) {
  rocksdb::WriteOptions wo;
  wo.sync = opts_.sync_writes;
  wo.disableWAL = opts_.disable_rocksdb_wal;
  Status s = from_rocks(db_->Write(wo, wb), "state store write");
  // A lost write leaves the state behind the Raft log: the node must stop.
  if (!s.is_ok()) return fail(s);
  if (cache_) cache_->apply_batch(*wb);
  return s;
}

Status StateStore::apply(StateBatch& batch, uint64_t applied_index, uint64_t applied_term,
                         const raftpb::ConfState* conf) {
  if (Status s = failed(); !s.is_ok()) return s;
  const uint64_t group = batch.group();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = applied_.find(group);
    if (it != applied_.end()) {
      QKV_CHECK_LT(it->second.index, applied_index)
          << "group " << group << ": applied index must increase";
      QKV_CHECK_LE(it->second.term, applied_term)
          << "group " << group << ": applied term went back";
    }
  }
  if (batch.bytes() > opts_.batch_bytes_max) {
    uint64_t bytes = batch.bytes();
    batch.clear();
    return Status(Code::kInvalidArgument, "state batch of " + std::to_string(bytes) +
                                              " bytes exceeds batch_bytes_max " +
                                              std::to_string(opts_.batch_bytes_max));
  }
  rocksdb::WriteBatch* wb = batch.wb_.get();
  QKV_CHECK(
      wb->Put(state_meta_key(group, kAppliedName), encode_applied(applied_index, applied_term))
          .ok());
  if (conf != nullptr)
    QKV_CHECK(wb->Put(state_meta_key(group, kConfName), conf->SerializeAsString()).ok());
  Status s = write(wb);
  batch.clear();
  if (!s.is_ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  Applied& a = applied_[group];
  a.index = applied_index;
  a.term = applied_term;
  if (conf != nullptr) a.conf = *conf;
  return Status::ok();
}

Result<std::optional<std::string>> StateStore::get(uint64_t group, std::string_view key,
                                                   bool fill_cache) const {
  const std::string k = state_data_key(group, key);
  uint64_t generation = 0;
  std::optional<std::string> cached;
  if (cache_ && cache_->find(k, &cached, &generation)) return cached;
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), k, &value);
  if (s.IsNotFound()) {
    if (cache_ && fill_cache) cache_->fill(k, std::nullopt, generation);
    return std::optional<std::string>();
  }
  if (!s.ok()) return from_rocks(s, "state store get");
  std::optional<std::string> found(std::move(value));
  if (cache_ && fill_cache) cache_->fill(k, found, generation);
  return found;
}

ReadCache::Stats StateStore::read_cache_stats() const {
  return cache_ ? cache_->stats() : ReadCache::Stats{};
}

StateStore::MemoryUse StateStore::memory_use() const {
  auto prop = [&](const std::string& name) {
    uint64_t v = 0;
    return db_->GetIntProperty(name, &v) ? v : 0;
  };
  MemoryUse m;
  m.memtables = prop(rocksdb::DB::Properties::kCurSizeAllMemTables);
  m.block_cache = prop(rocksdb::DB::Properties::kBlockCacheUsage);
  m.table_readers = prop(rocksdb::DB::Properties::kEstimateTableReadersMem);
  return m;
}

Result<ScanResult> StateStore::scan(uint64_t group, const ScanOptions& options) const {
  const uint64_t keys_max = std::max<uint64_t>(1, std::min(options.keys_max, opts_.scan_keys_max));
  const uint64_t bytes_max = std::min(options.bytes_max, opts_.scan_bytes_max);
  std::string start = std::max(options.start, options.prefix);
  std::string upper;
  if (!options.prefix.empty()) {
    std::string succ = prefix_successor(options.prefix);
    upper = succ.empty() ? group_end(kDataTag, group) : state_data_key(group, succ);
  } else {
    upper = group_end(kDataTag, group);
  }
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  ScanResult out;
  uint64_t bytes = 0;
  for (it->Seek(state_data_key(group, start)); it->Valid(); it->Next()) {
    rocksdb::Slice k = it->key(), v = it->value();
    std::string user_key(k.data() + kPrefixBytes, k.size() - kPrefixBytes);
    if (out.items.size() >= keys_max || (!out.items.empty() && bytes >= bytes_max)) {
      out.next_start = std::move(user_key);
      break;
    }
    bytes += user_key.size() + v.size();
    out.items.emplace_back(std::move(user_key), v.ToString());
  }
  if (Status s = from_rocks(it->status(), "state store scan"); !s.is_ok()) return s;
  return out;
}

raftpb::SnapshotMetadata StateStore::applied(uint64_t group) const {
  raftpb::SnapshotMetadata m;
  m.set_group(group);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = applied_.find(group);
  if (it != applied_.end()) {
    m.set_index(it->second.index);
    m.set_term(it->second.term);
    *m.mutable_conf_state() = it->second.conf;
  }
  return m;
}

uint64_t StateStore::durable_applied(uint64_t group) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = durable_applied_.find(group);
  return it == durable_applied_.end() ? 0 : it->second;
}

std::vector<uint64_t> StateStore::groups() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<uint64_t> out;
  for (const auto& [g, a] : applied_) out.push_back(g);
  return out;
}

Status StateStore::sync() {
  std::map<uint64_t, uint64_t> before;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!failed_.is_ok()) return failed_;
    for (const auto& [g, a] : applied_) before[g] = a.index;
  }
  // Every apply() that returned before this point is in the memtable and
  // (unless disabled) in RocksDB's WAL; make it durable.
  rocksdb::Status rs;
  if (opts_.disable_rocksdb_wal) {
    rocksdb::FlushOptions fo;
    fo.wait = true;
    rs = db_->Flush(fo);
  } else {
    rs = db_->SyncWAL();
  }
  if (Status s = from_rocks(rs, "state store sync"); !s.is_ok()) return fail(s);
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [g, index] : before) {
    uint64_t& d = durable_applied_[g];
    d = std::max(d, index);
  }
  return Status::ok();
}

Result<std::unique_ptr<GroupSnapshot>> StateStore::snapshot(uint64_t group) {
  std::unique_ptr<GroupSnapshot> gs(new GroupSnapshot());
  gs->store_ = this;
  live_views_++;
  gs->snap_ = db_->GetSnapshot();
  rocksdb::ReadOptions ro;
  ro.snapshot = gs->snap_;
  // Metadata read at the same snapshot as the data, so they agree.
  gs->meta_.set_group(group);
  std::string v;
  rocksdb::Status rs = db_->Get(ro, state_meta_key(group, kAppliedName), &v);
  if (rs.ok()) {
    if (v.size() != 16)
      return Status(Code::kCorruption, "group " + std::to_string(group) + ": bad applied value");
    gs->meta_.set_index(get_u64_le(v.data()));
    gs->meta_.set_term(get_u64_le(v.data() + 8));
  } else if (!rs.IsNotFound()) {
    return from_rocks(rs, "read applied index");
  }
  rs = db_->Get(ro, state_meta_key(group, kConfName), &v);
  if (rs.ok()) {
    if (!gs->meta_.mutable_conf_state()->ParseFromString(v)) {
      return Status(Code::kCorruption, "group " + std::to_string(group) + ": unparsable ConfState");
    }
  } else if (!rs.IsNotFound()) {
    return from_rocks(rs, "read conf state");
  }
  gs->approximate_bytes_ = approximate_bytes(group);
  gs->end_key_ = group_end(kDataTag, group);
  gs->upper_ = std::make_unique<rocksdb::Slice>(gs->end_key_);
  ro.iterate_upper_bound = gs->upper_.get();
  gs->it_.reset(db_->NewIterator(ro));
  return gs;
}

Status StateStore::install_snapshot(const raftpb::SnapshotMetadata& meta, RecordSource& records) {
  if (Status s = failed(); !s.is_ok()) return s;
  const uint64_t group = meta.group();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = applied_.find(group);
    if (it != applied_.end() && meta.index() <= it->second.index) {
      return Status(Code::kInvalidArgument, "stale snapshot for group " + std::to_string(group) +
                                                ": index " + std::to_string(meta.index()) +
                                                " is not above the applied index " +
                                                std::to_string(it->second.index));
    }
  }
  char name[96];
  std::snprintf(name, sizeof name, "/ingest/g%016" PRIx64 "-%016" PRIx64 "-%" PRIu64 ".sst", group,
                meta.index(), ingest_seq_++);
  const std::string path = dir_ + name;
  rocksdb::Env* env = rocksdb::Env::Default();
  auto remove_file = [&] { (void)env->DeleteFile(path); };

  // One SST holding range tombstones over the group's old ranges, the new
  // records and the new metadata. Ingested as one file, all of it gets one
  // sequence number, above every existing write; at equal sequence numbers a
  // point key wins over a range tombstone, so the new keys survive their own
  // file's tombstones. Ingestion is a single MANIFEST edit: all or nothing.
  const rocksdb::Options db_options = db_->GetOptions();
  const rocksdb::EnvOptions env_options;
  rocksdb::SstFileWriter w(env_options, db_options);
  if (Status s = from_rocks(w.Open(path), "create " + path); !s.is_ok()) return s;
  auto abort = [&](Status s) {
    (void)w.Finish();
    remove_file();
    return s;
  };
  if (Status s = from_rocks(
          w.DeleteRange(group_prefix(kDataTag, group), group_end(kDataTag, group)), "sst");
      !s.is_ok()) {
    return abort(s);
  }
  if (Status s = from_rocks(
          w.DeleteRange(group_prefix(kMetaTag, group), group_end(kMetaTag, group)), "sst");
      !s.is_ok()) {
    return abort(s);
  }
  std::string prev;
  bool first = true;
  std::string k = group_prefix(kDataTag, group);
  for (;;) {
    std::string_view key, value;
    Result<bool> more = records.next(&key, &value);
    if (!more.is_ok()) return abort(more.status());
    if (!*more) break;
    if (!first && key <= std::string_view(prev)) {
      return abort(Status(Code::kCorruption, "snapshot records of group " + std::to_string(group) +
                                                 " are not in strictly increasing key order"));
    }
    first = false;
    prev.assign(key);
    k.resize(kPrefixBytes);
    k.append(key);
    if (Status s = from_rocks(w.Put(k, slice(value)), "sst put"); !s.is_ok()) return abort(s);
  }
  // "applied" < "conf": SST keys must be added in order.
  if (Status s = from_rocks(
          w.Put(state_meta_key(group, kAppliedName), encode_applied(meta.index(), meta.term())),
          "sst put");
      !s.is_ok()) {
    return abort(s);
  }
  if (Status s =
          from_rocks(w.Put(state_meta_key(group, kConfName), meta.conf_state().SerializeAsString()),
                     "sst put");
      !s.is_ok()) {
    return abort(s);
  }
  if (Status s = from_rocks(w.Finish(), "finish " + path); !s.is_ok()) {
    remove_file();
    return s;
  }
  rocksdb::IngestExternalFileOptions io;
  io.move_files = true;
  io.snapshot_consistency = true;  // live GroupSnapshots keep seeing the old state
  io.allow_global_seqno = true;
  io.allow_blocking_flush = true;
  io.write_global_seqno = false;
  Status ingested = from_rocks(db_->IngestExternalFile({path}, io), "ingest snapshot");
  // Whatever the outcome (a failed ingestion changes nothing, and the
  // cache only loses entries), the group's cached reads may be stale. Only
  // the data range: get() never reads the 'm' range (applied, conf).
  if (cache_) cache_->erase_range(group_prefix(kDataTag, group), group_end(kDataTag, group));
  if (!ingested.is_ok()) {
    remove_file();
    return ingested;
  }
  remove_file();  // the DB holds a hard link; this drops the staging name
  std::lock_guard<std::mutex> lock(mu_);
  Applied& a = applied_[group];
  a.index = meta.index();
  a.term = meta.term();
  a.conf = meta.conf_state();
  // Ingestion syncs the file and the MANIFEST before it returns.
  durable_applied_[group] = meta.index();
  return Status::ok();
}

Status StateStore::delete_group(uint64_t group) {
  if (Status s = failed(); !s.is_ok()) return s;
  rocksdb::WriteBatch wb;
  QKV_CHECK(wb.DeleteRange(group_prefix(kDataTag, group), group_end(kDataTag, group)).ok());
  QKV_CHECK(wb.DeleteRange(group_prefix(kMetaTag, group), group_end(kMetaTag, group)).ok());
  if (Status s = write(&wb); !s.is_ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  applied_.erase(group);
  durable_applied_.erase(group);
  return Status::ok();
}

uint64_t StateStore::approximate_bytes(uint64_t group) const {
  std::string b = group_prefix(kDataTag, group), e = group_end(kDataTag, group);
  rocksdb::Range r(b, e);
  rocksdb::SizeApproximationOptions so;
  so.include_memtables = true;
  so.include_files = true;
  uint64_t size = 0;
  if (!db_->GetApproximateSizes(so, db_->DefaultColumnFamily(), &r, 1, &size).ok()) return 0;
  return size;
}

}  // namespace qkv::storage
