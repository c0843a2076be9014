#include "net/transport.h"

#include <asio/experimental/as_tuple.hpp>

#include "storage/crc32c.h"

namespace qkv::net {

using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
constexpr auto kTuple = asio::experimental::as_tuple(use_awaitable);

namespace {

void put_u32(char* p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = static_cast<char>(v >> (8 * i));
}
uint32_t get_u32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

}  // namespace

std::string encode_frame(const netpb::PeerFrame& f) {
  std::string out(8, '\0');
  f.AppendToString(&out);
  size_t n = out.size() - 8;
  put_u32(out.data(), static_cast<uint32_t>(n));
  put_u32(out.data() + 4, storage::crc32c(out.data() + 8, n));
  return out;
}

Result<netpb::PeerFrame> decode_frame(std::string_view buf, size_t frame_bytes_max,
                                      size_t* consumed) {
  if (buf.size() < 8) return Status(Code::kUnavailable, "incomplete frame header");
  uint32_t len = get_u32(buf.data());
  if (len > frame_bytes_max) {
    return Status(Code::kCorruption, "frame of " + std::to_string(len) + " bytes exceeds " +
                                         std::to_string(frame_bytes_max));
  }
  if (buf.size() < 8 + static_cast<size_t>(len)) {
    return Status(Code::kUnavailable, "incomplete frame");
  }
  uint32_t crc = get_u32(buf.data() + 4);
  if (storage::crc32c(buf.data() + 8, len) != crc) {
    return Status(Code::kCorruption, "frame checksum mismatch");
  }
  netpb::PeerFrame f;
  if (!f.ParseFromArray(buf.data() + 8, static_cast<int>(len))) {
    return Status(Code::kCorruption, "undecodable frame");
  }
  *consumed = 8 + len;
  return f;
}

struct PeerTransport::Peer {
  explicit Peer(asio::io_context& io) : wake(io), socket(io) {
    wake.expires_at(asio::steady_timer::time_point::max());
  }
  uint64_t id = 0;
  std::string host;
  uint16_t port = 0;
  std::deque<std::pair<netpb::PeerFrame, size_t>> queue;  // items: one message or forward each
  size_t queued_bytes = 0;
  asio::steady_timer wake;
  tcp::socket socket;
  bool removed = false;
  // The writer waits on `wake` with nothing to send, connected: enqueue()
  // may then write a frame itself, at once.
  bool idle = false;
  // The unwritten rest of a frame enqueue() began (written first by the
  // writer; dropped with the connection) and the messages it holds.
  std::string pending;
  size_t pending_msgs = 0;
  PeerStats stats;
};

PeerTransport::PeerTransport(asio::io_context& io, uint64_t self_id, TransportOptions options)
    : io_(io), self_(self_id), opts_(options) {}

PeerTransport::~PeerTransport() {
  *alive_ = false;
  close();
}

void PeerTransport::set_handlers(RaftHandler on_raft, ForwardHandler on_forward,
                                 UnreachableHandler on_unreachable) {
  on_raft_ = std::move(on_raft);
  on_forward_ = std::move(on_forward);
  on_unreachable_ = std::move(on_unreachable);
}

Status PeerTransport::listen(const std::string& host, uint16_t port) {
  asio::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) return Status(Code::kInvalidArgument, "bad listen address " + host + ": " + ec.message());
  auto acc = std::make_unique<tcp::acceptor>(io_);
  tcp::endpoint ep(addr, port);
  acc->open(ep.protocol(), ec);
  if (!ec) acc->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc->bind(ep, ec);
  if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status(Code::kIoError,
                  "cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message());
  }
  acceptor_ = std::move(acc);
  asio::co_spawn(io_, accept_loop(alive_), asio::detached);
  return Status::ok();
}

uint16_t PeerTransport::listen_port() const {
  return acceptor_ ? acceptor_->local_endpoint().port() : 0;
}

void PeerTransport::add_peer(uint64_t id, const std::string& host, uint16_t port) {
  auto it = peers_.find(id);
  if (it != peers_.end()) {
    if (it->second->host == host && it->second->port == port) return;
    remove_peer(id);
  }
  auto p = std::make_shared<Peer>(io_);
  p->id = id;
  p->host = host;
  p->port = port;
  peers_[id] = p;
  asio::co_spawn(io_, writer(p, alive_), asio::detached);
}

void PeerTransport::remove_peer(uint64_t id) {
  auto it = peers_.find(id);
  if (it == peers_.end()) return;
  auto p = it->second;
  peers_.erase(it);
  p->removed = true;
  asio::error_code ec;
  p->socket.close(ec);
  p->wake.cancel();
}

bool PeerTransport::enqueue(uint64_t to, netpb::PeerFrame item, size_t bytes) {
  auto it = peers_.find(to);
  if (it == peers_.end()) return false;
  Peer& p = *it->second;
  if (p.queue.size() >= opts_.send_queue_msgs_max ||
      p.queued_bytes + bytes > opts_.send_queue_bytes_max) {
    p.stats.dropped++;
    return false;
  }
  p.stats.accepted++;
  if (p.idle && p.pending.empty() && p.queue.empty()) {
    // Nothing ahead of it: write the frame now rather than when the writer
    // runs next (after the handler that sent it, e.g. a whole Ready: an
    // append would wait for the leader's staging and apply). What the socket
    // does not take at once, the writer finishes.
    netpb::PeerFrame frame;
    frame.set_from(self_);
    frame.set_cluster_id(opts_.cluster_id);
    for (auto& m : *item.mutable_raft()) *frame.add_raft() = std::move(m);
    for (auto& f : *item.mutable_forward()) *frame.add_forward() = std::move(f);
    for (auto& f : *item.mutable_snapshot_fetch()) *frame.add_snapshot_fetch() = std::move(f);
    for (auto& d : *item.mutable_snapshot_data()) *frame.add_snapshot_data() = std::move(d);
    std::string buf = encode_frame(frame);
    asio::error_code ec;
    size_t n = p.socket.write_some(asio::buffer(buf), ec);
    if (ec && ec != asio::error::would_block && ec != asio::error::try_again) n = 0;
    if (n == buf.size()) {
      p.stats.frames_sent++;
      p.stats.messages_sent++;
      p.stats.bytes_sent += n;
      return true;
    }
    // The rest (all of it after an error: the writer's write then fails and
    // reconnects, counting it dropped).
    p.pending = buf.substr(n);
    p.pending_msgs = 1;
    p.stats.bytes_sent += n;
    p.wake.cancel();
    return true;
  }
  p.queue.emplace_back(std::move(item), bytes);
  p.queued_bytes += bytes;
  p.wake.cancel();
  return true;
}

bool PeerTransport::send(raftpb::Message m) {
  if (closed_) return false;
  uint64_t to = m.to();
  size_t bytes = m.ByteSizeLong();
  netpb::PeerFrame item;
  *item.add_raft() = std::move(m);
  return enqueue(to, std::move(item), bytes);
}

void PeerTransport::set_snapshot_handlers(SnapshotFetchHandler on_fetch,
                                          SnapshotDataHandler on_data) {
  on_snapshot_fetch_ = std::move(on_fetch);
  on_snapshot_data_ = std::move(on_data);
}

bool PeerTransport::send_snapshot_fetch(uint64_t to, netpb::SnapshotFetch f) {
  if (closed_) return false;
  size_t bytes = f.ByteSizeLong();
  netpb::PeerFrame item;
  *item.add_snapshot_fetch() = std::move(f);
  return enqueue(to, std::move(item), bytes);
}

bool PeerTransport::send_snapshot_data(uint64_t to, netpb::SnapshotData d) {
  if (closed_) return false;
  size_t bytes = d.ByteSizeLong();
  netpb::PeerFrame item;
  *item.add_snapshot_data() = std::move(d);
  return enqueue(to, std::move(item), bytes);
}

bool PeerTransport::forward(uint64_t to, netpb::Forward f) {
  if (closed_) return false;
  size_t bytes = f.ByteSizeLong();
  netpb::PeerFrame item;
  *item.add_forward() = std::move(f);
  return enqueue(to, std::move(item), bytes);
}

PeerStats PeerTransport::stats(uint64_t peer) const {
  auto it = peers_.find(peer);
  if (it == peers_.end()) return PeerStats{};
  PeerStats s = it->second->stats;
  s.queued = it->second->queue.size();
  return s;
}

void PeerTransport::close() {
  if (closed_) return;
  closed_ = true;
  asio::error_code ec;
  if (acceptor_) acceptor_->close(ec);
  auto peers = peers_;
  for (auto& [id, p] : peers) remove_peer(id);
}

awaitable<void> PeerTransport::writer(std::shared_ptr<Peer> p, std::shared_ptr<bool> alive) {
  if (!*alive) co_return;
  auto backoff = opts_.backoff_min;
  asio::steady_timer timer(io_);
  while (*alive && !p->removed) {
    // Connect, with a timeout.
    asio::error_code ec;
    tcp::resolver resolver(io_);
    auto [rec, results] = co_await resolver.async_resolve(p->host, std::to_string(p->port), kTuple);
    ec = rec;
    if (!ec && *alive && !p->removed) {
      p->socket = tcp::socket(io_);
      timer.expires_after(opts_.connect_timeout);
      timer.async_wait([s = &p->socket, peer = p](const asio::error_code& e) {
        if (!e) {
          asio::error_code ignore;
          s->close(ignore);
        }
      });
      auto [cec, ep] = co_await asio::async_connect(p->socket, results, kTuple);
      timer.cancel();
      ec = cec;
    }
    if (!*alive || p->removed) co_return;
    if (ec) {
      p->stats.connect_failures++;
      p->stats.connected = false;
      // Whatever waits for this peer is lost: tell Raft, drop the queue.
      p->stats.dropped += p->queue.size();
      p->queue.clear();
      p->queued_bytes = 0;
      if (on_unreachable_) on_unreachable_(p->id);
      // Exponential backoff with jitter.
      rng_ = rng_ * 6364136223846793005ULL + 1442695040888963407ULL;
      auto jitter = std::chrono::milliseconds((rng_ >> 33) % (backoff.count() / 2 + 1));
      timer.expires_after(backoff + jitter);
      co_await timer.async_wait(kTuple);
      backoff = std::min(backoff * 2, opts_.backoff_max);
      continue;
    }
    backoff = opts_.backoff_min;
    p->stats.connected = true;
    p->stats.connects++;
    p->socket.set_option(tcp::no_delay(true), ec);
    p->socket.non_blocking(true, ec);  // enqueue() writes without blocking
    const bool can_write_now = !ec;
    p->pending.clear();  // a frame's rest belongs to the connection that began it
    p->pending_msgs = 0;
    // Write loop: drain the queue into frames.
    for (;;) {
      while (p->queue.empty() && p->pending.empty() && *alive && !p->removed) {
        p->wake.expires_at(asio::steady_timer::time_point::max());
        p->idle = can_write_now;
        co_await p->wake.async_wait(kTuple);
        p->idle = false;
      }
      if (!*alive || p->removed) co_return;
      std::string buf;
      size_t msgs = 0;
      if (!p->pending.empty()) {
        buf = std::move(p->pending);
        p->pending.clear();
        msgs = p->pending_msgs;
        p->pending_msgs = 0;
      } else {
        netpb::PeerFrame frame;
        frame.set_from(self_);
        frame.set_cluster_id(opts_.cluster_id);
        size_t bytes = 0;
        while (!p->queue.empty() && (bytes == 0 || bytes < opts_.frame_bytes_target)) {
          auto& [item, n] = p->queue.front();
          for (auto& m : *item.mutable_raft()) *frame.add_raft() = std::move(m);
          for (auto& f : *item.mutable_forward()) *frame.add_forward() = std::move(f);
          for (auto& f : *item.mutable_snapshot_fetch()) *frame.add_snapshot_fetch() = std::move(f);
          for (auto& d : *item.mutable_snapshot_data()) *frame.add_snapshot_data() = std::move(d);
          bytes += n;
          msgs++;
          p->queued_bytes -= n;
          p->queue.pop_front();
        }
        buf = encode_frame(frame);
      }
      auto [wec, written] = co_await asio::async_write(p->socket, asio::buffer(buf), kTuple);
      if (!*alive || p->removed) co_return;
      if (wec) {
        p->stats.dropped += msgs;
        p->stats.connected = false;
        asio::error_code ignore;
        p->socket.close(ignore);
        if (on_unreachable_) on_unreachable_(p->id);
        break;  // reconnect
      }
      p->stats.frames_sent++;
      p->stats.messages_sent += msgs;
      p->stats.bytes_sent += written;
    }
  }
}

awaitable<void> PeerTransport::accept_loop(std::shared_ptr<bool> alive) {
  while (*alive && acceptor_ && acceptor_->is_open()) {
    auto [ec, socket] = co_await acceptor_->async_accept(kTuple);
    if (!*alive) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_->is_open()) co_return;
      continue;
    }
    asio::co_spawn(io_, reader(std::move(socket), alive), asio::detached);
  }
}

awaitable<void> PeerTransport::reader(tcp::socket socket, std::shared_ptr<bool> alive) {
  if (!*alive) co_return;
  std::string buf;
  std::vector<char> chunk(64 * 1024);
  asio::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  for (;;) {
    auto [rec, n] = co_await socket.async_read_some(asio::buffer(chunk), kTuple);
    if (!*alive || closed_ || rec) co_return;
    buf.append(chunk.data(), n);
    size_t off = 0;
    for (;;) {
      size_t consumed = 0;
      auto f = decode_frame(std::string_view(buf).substr(off), opts_.frame_bytes_max, &consumed);
      if (!f.is_ok()) {
        if (f.code() == Code::kUnavailable) break;
        co_return;  // corrupt stream: drop the connection; the peer reconnects
      }
      off += consumed;
      if (f->cluster_id() != opts_.cluster_id) co_return;
      uint64_t from = f->from();
      for (auto& m : *f->mutable_raft()) {
        if (on_raft_) on_raft_(std::move(m));
        if (!*alive) co_return;
      }
      for (auto& fw : *f->mutable_forward()) {
        if (on_forward_) on_forward_(from, std::move(fw));
        if (!*alive) co_return;
      }
      for (auto& sf : *f->mutable_snapshot_fetch()) {
        if (on_snapshot_fetch_) on_snapshot_fetch_(from, std::move(sf));
        if (!*alive) co_return;
      }
      for (auto& sd : *f->mutable_snapshot_data()) {
        if (on_snapshot_data_) on_snapshot_data_(from, std::move(sd));
        if (!*alive) co_return;
      }
    }
    buf.erase(0, off);
  }
}

}  // namespace qkv::net
