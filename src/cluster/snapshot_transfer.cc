// Snapshot transfer between nodes (docs/ARCHITECTURE.md, "Snapshot
// transfer").
//
// The Raft core's InstallSnapshot (MSG_SNAP) carries only metadata here:
// log compaction keeps no copy of the state, which lives in the StateStore.
// A node that receives MSG_SNAP for an index it has not applied does not
// step it: it pulls a snapshot file from the sender, one chunk request at a
// time, into a partial file that survives restarts (SnapshotReceiver), and
// only when the file is complete and verified does it step a MSG_SNAP of
// its own making into Raft, whose data names the local file. Raft persists
// the metadata, and finish_ready() installs the file into the state machine
// (restore_snapshot). The serving node writes the file on demand from a
// consistent view of its applied state, on a background thread, and keeps
// it while followers fetch it.
#include <cinttypes>
#include <cstdio>
#include <mutex>

#include "cluster/node.h"
#include "cluster/snapshot_transfer.h"

namespace qkv::cluster {

using Clock = std::chrono::steady_clock;

namespace {

constexpr std::string_view kFileRef = "qkv-snapshot-file:";
constexpr uint64_t kChunkBytesHardMax = 16ull << 20;

storage::SnapshotOffer from_pb(const netpb::SnapshotOffer& o) {
  storage::SnapshotOffer s;
  s.group = o.group();
  s.index = o.index();
  s.term = o.term();
  s.total_bytes = o.total_bytes();
  s.file_crc = o.file_crc();
  return s;
}

void to_pb(const storage::SnapshotOffer& s, netpb::SnapshotOffer* o) {
  o->set_group(s.group);
  o->set_index(s.index);
  o->set_term(s.term);
  o->set_total_bytes(s.total_bytes);
  o->set_file_crc(s.file_crc);
}

bool same_offer(const storage::SnapshotOffer& a, const storage::SnapshotOffer& b) {
  return a.group == b.group && a.index == b.index && a.term == b.term &&
         a.total_bytes == b.total_bytes && a.file_crc == b.file_crc;
}

std::string mib(uint64_t bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return b;
}

void log_line(const std::string& s) { std::fprintf(stderr, "quorumkv: %s\n", s.c_str()); }

}  // namespace

std::string Node::snapshot_dir(const char* sub) const {
  return opts_.data_dir + "/snapshots/" + sub;
}

void Node::log_transfer(const char* what, uint64_t gid, uint64_t index, uint64_t peer,
                        const storage::TransferProgress& p) {
  char b[320];
  const double pct =
      p.bytes_total > 0 ? 100.0 * static_cast<double>(p.bytes_done) / p.bytes_total : 0;
  std::snprintf(b, sizeof b,
                "group %" PRIu64 ": %s snapshot at index %" PRIu64 " (node %" PRIu64
                "): %s of %s (%.0f%%), %.1f MiB/s, %s left",
                gid, what, index, peer, mib(p.bytes_done).c_str(), mib(p.bytes_total).c_str(), pct,
                p.rate_bytes_per_s / (1 << 20),
                p.eta_s < 0 ? "unknown time" : (std::to_string(static_cast<int64_t>(p.eta_s + 0.5)) + " s").c_str());
  log_line(b);
}

// ---------------------------------------------------------------------------
// Receiving side

void Node::on_install_snapshot(Group& g, raftpb::Message&& m) {
  const uint64_t idx = m.snapshot().index();
  if (idx <= g.sm->applied_index()) {
    // Nothing to fetch: Raft answers that we hold it.
    (void)g.raft->step(m);
    return;
  }
  auto& slot = incoming_[g.id];
  if (slot && slot->ready) {
    if (slot->ready_meta.index() >= idx) {
      // Hand Raft the file we hold, under this (possibly newer) leader's term.
      slot->trigger = std::move(m);
      raftpb::Message s = slot->trigger;
      *s.mutable_snapshot() = slot->ready_meta;
      s.set_index(slot->ready_meta.index());
      const std::string ref = std::string(kFileRef) + slot->ready_path;
      s.set_snapshot_offset(0);
      s.set_snapshot_size(ref.size());
      s.set_snapshot_chunk(ref);
      s.set_to(opts_.id);
      (void)g.raft->step(s);
      return;
    }
    if (g.ready) return;  // a Ready being persisted may hold the file
    drop_incoming(g.id);  // too old for this leader
  }
  if (slot) {
    // A transfer is under way: remember who asks last, with which term.
    slot->trigger = std::move(m);
    if (slot->receiver && slot->receiver->offer().index < idx) {
      // The leader compacted past the file being fetched: start again.
      log_line("group " + std::to_string(g.id) + ": snapshot at index " +
               std::to_string(slot->receiver->offer().index) +
               " is older than the leader now needs (" + std::to_string(idx) +
               "); fetching a newer one");
      (void)slot->receiver->abandon();
      slot->receiver.reset();
      slot->min_index = idx;
      slot->source = slot->trigger.from();
      send_fetch(g, *slot);
    } else if (!slot->receiver) {
      slot->min_index = std::max(slot->min_index, idx);
    }
    return;
  }
  slot = std::make_unique<Incoming>();
  slot->source = m.from();
  slot->min_index = idx;
  slot->trigger = std::move(m);
  log_line("group " + std::to_string(g.id) + ": behind the leader's log; fetching a snapshot at "
           "index >= " + std::to_string(idx) + " from node " + std::to_string(slot->source));
  send_fetch(g, *slot);
}

void Node::send_fetch(Group& g, Incoming& in) {
  netpb::SnapshotFetch f;
  f.set_group(g.id);
  f.set_request_id(++snapshot_request_seq_);
  f.set_min_index(in.min_index);
  if (in.receiver) {
    to_pb(in.receiver->offer(), f.mutable_offer());
    f.set_offset(in.receiver->bytes_held());
  }
  f.set_max_bytes(std::min<uint64_t>(std::max<uint64_t>(opts_.snapshot_chunk_bytes, 1),
                                     kChunkBytesHardMax));
  in.request_id = f.request_id();
  in.waiting = true;
  in.sent_at = Clock::now();
  in.retry_at = Clock::time_point::max();
  // Not queued (unknown peer, full queue): the timeout asks again.
  (void)transport_->send_snapshot_fetch(in.source, std::move(f));
}

void Node::drop_incoming(uint64_t gid) {
  auto it = incoming_.find(gid);
  if (it == incoming_.end()) return;
  if (it->second) {
    Incoming& in = *it->second;
    if (in.receiver) (void)in.receiver->abandon();
    if (in.ready) {
      (void)fs_->remove_file(in.ready_path);
      (void)fs_->sync_dir(snapshot_dir("recv"));
    }
  }
  incoming_.erase(it);
}

void Node::on_snapshot_data(uint64_t from, netpb::SnapshotData&& d) {
  if (stopped_) return;
  auto git = groups_.find(d.group());
  auto it = incoming_.find(d.group());
  if (git == groups_.end() || it == incoming_.end() || !it->second) return;
  Group& g = git->second;
  Incoming& in = *it->second;
  if (in.ready || !in.waiting || d.request_id() != in.request_id || from != in.source) return;
  in.waiting = false;
  const auto now = Clock::now();
  const std::string gname = "group " + std::to_string(g.id);
  switch (d.result()) {
    case netpb::SnapshotData::BUILDING:
      in.retry_at = now + std::chrono::milliseconds(100);
      return;
    case netpb::SnapshotData::GONE:
      log_line(gname + ": node " + std::to_string(from) +
               " no longer serves the snapshot being fetched; starting again");
      if (in.receiver) (void)in.receiver->abandon();
      in.receiver.reset();
      send_fetch(g, in);
      return;
    case netpb::SnapshotData::ERROR:
      log_line(gname + ": node " + std::to_string(from) + " cannot serve a snapshot: " +
               d.error());
      in.failures++;
      in.retry_at = now + std::chrono::seconds(1);
      return;
    default:
      break;
  }
  const storage::SnapshotOffer offer = from_pb(d.offer());
  if (offer.group != g.id || offer.index < in.min_index) {
    log_line(gname + ": node " + std::to_string(from) + " offered a snapshot at index " +
             std::to_string(offer.index) + ", below the index needed " +
             std::to_string(in.min_index) + "; asking again");
    in.failures++;
    in.retry_at = now + std::chrono::seconds(1);
    return;
  }
  if (offer.index <= g.sm->applied_index()) {
    drop_incoming(g.id);  // caught up by the log meanwhile
    return;
  }
  if (!in.receiver || !same_offer(in.receiver->offer(), offer)) {
    if (in.receiver) (void)in.receiver->abandon();
    in.receiver.reset();
    storage::SnapshotReceiverOptions ro;
    ro.snapshot_bytes_max = opts_.snapshot_bytes_max;
    ro.chunk_bytes_max = kChunkBytesHardMax;
    auto r = storage::SnapshotReceiver::open(fs_.get(), snapshot_dir("recv"), nullptr, offer, ro);
    if (!r.is_ok()) {
      log_line(gname + ": cannot receive the snapshot at index " + std::to_string(offer.index) +
               ": " + r.status().to_string());
      in.failures++;
      in.retry_at = now + std::chrono::seconds(1);
      return;
    }
    in.receiver = std::move(r).value();
    in.started = now;
    in.attempt_bytes = 0;
    in.next_log = now + std::chrono::milliseconds(opts_.snapshot_progress_log_ms);
    log_line(gname + ": receiving the snapshot at index " + std::to_string(offer.index) + " (" +
             mib(offer.total_bytes) + ") from node " + std::to_string(from) +
             (in.receiver->bytes_held() > 0
                  ? ", resuming at byte " + std::to_string(in.receiver->bytes_held())
                  : std::string()));
  }
  auto held = in.receiver->write_chunk(d.offset(), d.data(), d.crc());
  if (!held.is_ok()) {
    log_line(gname + ": snapshot chunk at offset " + std::to_string(d.offset()) +
             " not kept: " + held.status().to_string());
    in.failures++;
    in.retry_at = now + std::chrono::milliseconds(held.code() == Code::kCorruption ? 10 : 1000);
    return;
  }
  snapshot_counters_[g.id].recv_bytes_total += d.data().size();
  in.attempt_bytes += d.data().size();
  in.failures = 0;
  if (!in.receiver->complete()) {
    if (now >= in.next_log) {
      in.next_log = now + std::chrono::milliseconds(opts_.snapshot_progress_log_ms);
      log_transfer("receiving", g.id, offer.index, from, in.receiver->progress());
    }
    if (opts_.snapshot_recv_bytes_per_sec > 0) {
      // Ask for the next chunk when the bytes so far fit the rate.
      const auto due = in.started + std::chrono::microseconds(static_cast<int64_t>(
                                        1e6 * static_cast<double>(in.attempt_bytes) /
                                        static_cast<double>(opts_.snapshot_recv_bytes_per_sec)));
      if (due > now) {
        in.retry_at = due;
        return;
      }
    }
    send_fetch(g, in);
    return;
  }
  if (Status v = in.receiver->verify(); !v.is_ok()) {
    log_line(gname + ": the received snapshot failed verification (" + v.to_string() +
             "); fetching it again");
    in.retry_at = now + std::chrono::milliseconds(100);
    return;
  }
  auto header = storage::SnapshotReader::open(fs_.get(), in.receiver->temp_path());
  if (!header.is_ok()) {
    log_line(gname + ": cannot reopen the received snapshot: " + header.status().to_string());
    in.failures++;
    in.retry_at = now + std::chrono::seconds(1);
    return;
  }
  const double secs =
      std::chrono::duration<double>(now - in.started).count();
  char b[200];
  std::snprintf(b, sizeof b, "%s: received the snapshot at index %" PRIu64 " (%s) in %.1f s; installing",
                gname.c_str(), offer.index, mib(offer.total_bytes).c_str(), secs);
  log_line(b);
  in.ready = true;
  in.ready_meta = (*header)->meta();
  in.ready_path = in.receiver->temp_path();
  in.receiver.reset();  // the file stays until it is installed
  raftpb::Message trigger = in.trigger;
  on_install_snapshot(g, std::move(trigger));
  kick();
}

Status Node::restore_snapshot(Group& g, const raftpb::Snapshot& snap) {
  const raftpb::SnapshotMetadata& meta = snap.metadata();
  std::string_view data = snap.data();
  if (data.substr(0, kFileRef.size()) != kFileRef) {
    // Never install an empty state for a snapshot whose data is elsewhere.
    return Status(Code::kCorruption, "group " + std::to_string(g.id) + ": snapshot at index " +
                                         std::to_string(meta.index()) +
                                         " reached the state machine without its file");
  }
  const std::string path(data.substr(kFileRef.size()));
  auto reader = storage::SnapshotReader::open(fs_.get(), path);
  if (!reader.is_ok()) return reader.status();
  const raftpb::SnapshotMetadata& fm = (*reader)->meta();
  if (fm.group() != meta.group() || fm.index() != meta.index() || fm.term() != meta.term()) {
    return Status(Code::kCorruption, path + " holds group " + std::to_string(fm.group()) +
                                         " index " + std::to_string(fm.index()) +
                                         ", not the snapshot Raft installed (index " +
                                         std::to_string(meta.index()) + ")");
  }
  auto t0 = Clock::now();
  if (Status s = g.sm->restore(meta, **reader); !s.is_ok()) return s;
  (void)fs_->remove_file(path);
  (void)fs_->sync_dir(snapshot_dir("recv"));
  auto it = incoming_.find(g.id);
  if (it != incoming_.end() && it->second && it->second->ready && it->second->ready_path == path) {
    incoming_.erase(it);
  }
  snapshot_counters_[g.id].received_total++;
  char b[160];
  std::snprintf(b, sizeof b, "group %" PRIu64 ": installed the snapshot at index %" PRIu64
                " in %.1f s",
                g.id, meta.index(), std::chrono::duration<double>(Clock::now() - t0).count());
  log_line(b);
  return Status::ok();
}

Status Node::recover_received_snapshot(Group& g, uint64_t base) {
  // Raft persisted a snapshot's metadata, and the process stopped before
  // the state machine installed it: the verified file is still in recv/.
  const std::string dir = snapshot_dir("recv");
  auto names = fs_->list_dir(dir);
  if (!names.is_ok()) return names.status();
  auto snap = log_store_->group(g.id)->snapshot();
  if (!snap.is_ok()) return snap.status();
  const raftpb::SnapshotMetadata want = (*snap)->metadata();
  for (const auto& n : *names) {
    const std::string path = storage::path_join(dir, n);
    auto r = storage::SnapshotReader::open(fs_.get(), path);
    if (!r.is_ok()) continue;
    const auto& m = (*r)->meta();
    if (m.group() != g.id || m.index() != base || m.term() != want.term()) continue;
    if (auto info = (*r)->verify(); !info.is_ok()) continue;
    auto again = storage::SnapshotReader::open(fs_.get(), path);
    if (!again.is_ok()) return again.status();
    if (Status s = g.sm->restore((*again)->meta(), **again); !s.is_ok()) return s;
    (void)fs_->remove_file(path);
    (void)fs_->sync_dir(dir);
    log_line("group " + std::to_string(g.id) + ": installed the snapshot at index " +
             std::to_string(base) + " received before the restart");
    return Status::ok();
  }
  return Status(Code::kNotFound, "no received snapshot file at index " + std::to_string(base));
}

// ---------------------------------------------------------------------------
// Serving side

void Node::on_snapshot_fetch(uint64_t from, netpb::SnapshotFetch&& f) {
  if (stopped_) return;
  netpb::SnapshotData d;
  d.set_group(f.group());
  d.set_request_id(f.request_id());
  auto reply = [&](netpb::SnapshotData::Result r, std::string error = {}) {
    d.set_result(r);
    if (!error.empty()) d.set_error(std::move(error));
    (void)transport_->send_snapshot_data(from, std::move(d));
  };
  auto git = groups_.find(f.group());
  if (git == groups_.end()) return reply(netpb::SnapshotData::ERROR, "no such group");
  Group& g = git->second;
  auto& out = outgoing_[g.id];
  if (out && out->sender) {
    const bool match = f.has_offer() ? same_offer(from_pb(f.offer()), out->sender->offer())
                                     : out->meta.index() >= f.min_index();
    if (match) {
      const uint64_t n = std::min<uint64_t>(f.max_bytes() == 0 ? 1 : f.max_bytes(),
                                            kChunkBytesHardMax);
      auto c = out->sender->read_chunk(f.offset(), n);
      if (!c.is_ok()) return reply(netpb::SnapshotData::ERROR, c.status().to_string());
      out->last_used = Clock::now();
      to_pb(out->sender->offer(), d.mutable_offer());
      d.set_offset(c->offset);
      d.set_crc(c->crc);
      snapshot_counters_[g.id].sent_bytes_total += c->data.size();
      const uint64_t end = c->offset + c->data.size();
      d.set_data(std::move(c->data));
      if (Clock::now() >= out->next_log || end == out->sender->offer().total_bytes) {
        out->next_log = Clock::now() + std::chrono::milliseconds(opts_.snapshot_progress_log_ms);
        out->sender->acknowledged(end);
        log_transfer("sending", g.id, out->meta.index(), from, out->sender->progress());
      }
      return reply(netpb::SnapshotData::OK);
    }
    if (f.has_offer()) return reply(netpb::SnapshotData::GONE);
  } else if (out && out->building) {
    return reply(f.has_offer() ? netpb::SnapshotData::GONE : netpb::SnapshotData::BUILDING);
  } else if (f.has_offer()) {
    return reply(netpb::SnapshotData::GONE);
  }
  if (g.sm->applied_index() < f.min_index()) {
    return reply(netpb::SnapshotData::ERROR,
                 "node " + std::to_string(opts_.id) + " has applied only up to index " +
                     std::to_string(g.sm->applied_index()) + ", below the " +
                     std::to_string(f.min_index()) + " asked for");
  }
  build_snapshot_file(g, f.min_index());
  auto it = outgoing_.find(g.id);
  if (it == outgoing_.end() || !it->second) {
    return reply(netpb::SnapshotData::ERROR, "cannot write a snapshot file (see its log)");
  }
  reply(netpb::SnapshotData::BUILDING);
}

void Node::build_snapshot_file(Group& g, uint64_t min_index) {
  const uint64_t gid = g.id;
  if (auto it = outgoing_.find(gid); it != outgoing_.end() && it->second) {
    Outgoing& old = *it->second;
    old.cancel->store(true);
    if (old.sender) {
      old.sender.reset();
      (void)fs_->remove_file(old.path);
    }
    outgoing_.erase(it);
  }
  auto src = g.sm->open_snapshot();
  if (!src.is_ok()) {
    log_line("group " + std::to_string(gid) + ": cannot open a snapshot view: " +
             src.status().to_string());
    return;
  }
  if (src->meta.index() < min_index) {
    log_line("group " + std::to_string(gid) + ": snapshot view at index " +
             std::to_string(src->meta.index()) + " is below " + std::to_string(min_index));
    return;
  }
  auto out = std::make_unique<Outgoing>();
  out->meta = src->meta;
  char name[96];
  std::snprintf(name, sizeof name, "snap-%016" PRIx64 "-%016" PRIx64 "-%016" PRIx64 ".qsnap", gid,
                src->meta.index(), src->meta.term());
  out->path = storage::path_join(snapshot_dir("send"), name);
  out->building = true;
  out->next_log = Clock::now() + std::chrono::milliseconds(opts_.snapshot_progress_log_ms);
  log_line("group " + std::to_string(gid) + ": writing a snapshot at index " +
           std::to_string(src->meta.index()) + " for a follower (about " +
           mib(src->approximate_bytes) + ")");
  auto source = std::make_shared<SnapshotSource>(std::move(src).value());
  auto cancel = out->cancel;
  auto build = out->build;
  const std::string path = out->path;
  storage::FileSystem* fs = fs_.get();
  asio::io_context& io = io_;
  auto alive = alive_;
  outgoing_[gid] = std::move(out);
  asio::post(snapshot_pool_, [this, alive, &io, fs, gid, path, source, cancel, build] {
    const auto t0 = Clock::now();
    storage::SnapshotWriterOptions wo;
    wo.sync = false;  // lost at a crash: it is written again on demand
    auto info = storage::write_snapshot_file(
        fs, path, source->meta, *source->records, source->approximate_bytes, wo,
        [build](const storage::TransferProgress& p) {
          std::lock_guard<std::mutex> lock(build->mu);
          build->progress = p;
        },
        cancel.get());
    source->records.reset();  // releases the state store's view
    std::shared_ptr<storage::SnapshotSender> sender;
    Status st = info.status();
    if (st.is_ok()) {
      auto s = storage::SnapshotSender::open(fs, path);
      if (s.is_ok()) {
        sender = std::move(s).value();
      } else {
        st = s.status();
      }
    }
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    const uint64_t records = info.is_ok() ? info->records : 0;
    asio::post(io, [this, alive, gid, path, sender, st, secs, records] {
      if (!*alive) return;
      auto it = outgoing_.find(gid);
      if (it == outgoing_.end() || !it->second || it->second->path != path ||
          !it->second->building) {
        if (st.is_ok()) (void)fs_->remove_file(path);  // replaced meanwhile
        return;
      }
      Outgoing& o = *it->second;
      o.building = false;
      if (!st.is_ok()) {
        log_line("group " + std::to_string(gid) + ": writing the snapshot file failed: " +
                 st.to_string());
        (void)fs_->remove_file(path);
        outgoing_.erase(it);
        return;
      }
      o.sender = sender;
      o.last_used = Clock::now();
      snapshot_counters_[gid].built_total++;
      char b[200];
      std::snprintf(b, sizeof b,
                    "group %" PRIu64 ": snapshot at index %" PRIu64 " written: %s, %" PRIu64
                    " records, in %.1f s",
                    gid, o.meta.index(), mib(o.sender->offer().total_bytes).c_str(), records, secs);
      log_line(b);
    });
  });
}

// ---------------------------------------------------------------------------
// Timers and status

void Node::snapshot_tick() {
  const auto now = Clock::now();
  for (auto it = incoming_.begin(); it != incoming_.end();) {
    auto git = groups_.find(it->first);
    if (!it->second || git == groups_.end()) {
      it = incoming_.erase(it);
      continue;
    }
    Group& g = git->second;
    Incoming& in = *it->second;
    const uint64_t applied = g.sm->applied_index();
    const uint64_t needed = in.ready ? in.ready_meta.index() : in.min_index;
    if (applied >= needed && !g.ready) {
      ++it;
      drop_incoming(g.id);  // caught up another way
      continue;
    }
    if (!in.ready) {
      if (in.waiting &&
          now - in.sent_at > std::chrono::milliseconds(opts_.snapshot_fetch_timeout_ms)) {
        in.failures++;
        log_line("group " + std::to_string(g.id) + ": no snapshot chunk from node " +
                 std::to_string(in.source) + " in " +
                 std::to_string(opts_.snapshot_fetch_timeout_ms) + " ms; asking again");
        in.waiting = false;
        in.retry_at = now;
      }
      if (!in.waiting && now >= in.retry_at) {
        if (in.failures >= 2 && in.trigger.from() != in.source) {
          // The source is gone or cannot serve: fetch from whoever asks now.
          log_line("group " + std::to_string(g.id) + ": fetching the snapshot from node " +
                   std::to_string(in.trigger.from()) + " instead of node " +
                   std::to_string(in.source));
          if (in.receiver) (void)in.receiver->abandon();
          in.receiver.reset();
          in.source = in.trigger.from();
          in.failures = 0;
        }
        send_fetch(g, in);
      }
    }
    ++it;
  }
  for (auto it = outgoing_.begin(); it != outgoing_.end();) {
    if (!it->second) {
      it = outgoing_.erase(it);
      continue;
    }
    Outgoing& o = *it->second;
    if (o.building && now >= o.next_log) {
      o.next_log = now + std::chrono::milliseconds(opts_.snapshot_progress_log_ms);
      storage::TransferProgress p;
      {
        std::lock_guard<std::mutex> lock(o.build->mu);
        p = o.build->progress;
      }
      log_transfer("writing", it->first, o.meta.index(), opts_.id, p);
    }
    if (o.sender && now - o.last_used > std::chrono::milliseconds(opts_.snapshot_idle_ms)) {
      o.sender.reset();
      (void)fs_->remove_file(o.path);
      it = outgoing_.erase(it);
      continue;
    }
    ++it;
  }
}

std::vector<SnapshotStatus> Node::snapshot_status() const {
  std::vector<SnapshotStatus> out;
  for (const auto& [gid, g] : groups_) {
    SnapshotStatus s;
    if (auto c = snapshot_counters_.find(gid); c != snapshot_counters_.end()) s = c->second;
    s.group = gid;
    if (auto it = incoming_.find(gid); it != incoming_.end() && it->second) {
      const Incoming& in = *it->second;
      s.recv_source = in.source;
      if (in.receiver) {
        s.recv_index = in.receiver->offer().index;
        s.recv = in.receiver->progress();
      } else if (in.ready) {
        s.recv_index = in.ready_meta.index();
      }
    }
    if (auto it = outgoing_.find(gid); it != outgoing_.end() && it->second) {
      const Outgoing& o = *it->second;
      s.send_index = o.meta.index();
      s.send_building = o.building;
      if (o.building) {
        std::lock_guard<std::mutex> lock(o.build->mu);
        s.send_build = o.build->progress;
      }
    }
    out.push_back(s);
  }
  return out;
}

}  // namespace qkv::cluster
