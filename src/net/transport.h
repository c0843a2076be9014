// PeerTransport: Raft messages and forwarded commands between nodes, as
// framed protobuf over persistent TCP connections (Asio, C++20 coroutines).
//
// Each node dials one outbound connection per peer and only writes on it;
// it reads on the connections peers dialed to it. A per-peer writer
// coroutine drains that peer's queue into one frame per write (batching),
// reconnects with exponential backoff and jitter, and reports the peer
// unreachable when a connection fails (the Raft core then probes instead of
// pipelining). Send queues are bounded in messages and bytes: when full, the
// new message is dropped and counted; Raft tolerates loss and retransmits.
//
// Frame (docs/ARCHITECTURE.md): length:u32 crc32c(payload):u32 payload
// (a netpb::PeerFrame). Integers little-endian.
//
// Thread-safety: every call on the io_context's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <asio.hpp>

#include "base/status.h"
#include "net/peer.pb.h"
#include "raft/raft.pb.h"

namespace qkv::net {

struct TransportOptions {
  uint64_t cluster_id = 0;
  size_t send_queue_msgs_max = 8192;         // per peer
  size_t send_queue_bytes_max = 256ull << 20;  // per peer
  size_t frame_bytes_max = 512ull << 20;     // larger frames are refused by the reader
  size_t frame_bytes_target = 4ull << 20;    // a writer stops batching past this
  std::chrono::milliseconds backoff_min{20};
  std::chrono::milliseconds backoff_max{1000};
  std::chrono::milliseconds connect_timeout{1000};
};

struct PeerStats {
  bool connected = false;
  uint64_t frames_sent = 0, messages_sent = 0, bytes_sent = 0;
  uint64_t accepted = 0;  // items send() and the like took (written since, or queued)
  uint64_t dropped = 0;  // queue full or connection lost
  uint64_t connects = 0, connect_failures = 0;
  size_t queued = 0;
};

class PeerTransport {
 public:
  using RaftHandler = std::function<void(raftpb::Message&&)>;
  using ForwardHandler = std::function<void(uint64_t from, netpb::Forward&&)>;
  using UnreachableHandler = std::function<void(uint64_t peer)>;
  using SnapshotFetchHandler = std::function<void(uint64_t from, netpb::SnapshotFetch&&)>;
  using SnapshotDataHandler = std::function<void(uint64_t from, netpb::SnapshotData&&)>;

  PeerTransport(asio::io_context& io, uint64_t self_id, TransportOptions options);
  ~PeerTransport();
  PeerTransport(const PeerTransport&) = delete;
  PeerTransport& operator=(const PeerTransport&) = delete;

  // Binds and starts accepting peers. Port 0 picks a free port.
  Status listen(const std::string& host, uint16_t port);
  uint16_t listen_port() const;

  void set_handlers(RaftHandler on_raft, ForwardHandler on_forward,
                    UnreachableHandler on_unreachable);
  void set_snapshot_handlers(SnapshotFetchHandler on_fetch, SnapshotDataHandler on_data);

  // Adds (or re-addresses) a peer and starts its writer.
  void add_peer(uint64_t id, const std::string& host, uint16_t port);
  void remove_peer(uint64_t id);
  bool has_peer(uint64_t id) const { return peers_.count(id) > 0; }

  // Queues for the peer m.to(). False if dropped (unknown peer, queue full).
  bool send(raftpb::Message m);
  bool forward(uint64_t to, netpb::Forward f);
  bool send_snapshot_fetch(uint64_t to, netpb::SnapshotFetch f);
  bool send_snapshot_data(uint64_t to, netpb::SnapshotData d);

  PeerStats stats(uint64_t peer) const;
  // Stops accepting and closes every connection; pending sends are dropped.
  void close();

 private:
  struct Peer;
  // Coroutines take the liveness token as a parameter: they may start after
  // the transport is gone, and must not touch `this` then.
  asio::awaitable<void> writer(std::shared_ptr<Peer> p, std::shared_ptr<bool> alive);
  asio::awaitable<void> accept_loop(std::shared_ptr<bool> alive);
  asio::awaitable<void> reader(asio::ip::tcp::socket socket, std::shared_ptr<bool> alive);
  bool enqueue(uint64_t to, netpb::PeerFrame item, size_t bytes);

  asio::io_context& io_;
  uint64_t self_;
  TransportOptions opts_;
  std::unique_ptr<asio::ip::tcp::acceptor> acceptor_;
  std::map<uint64_t, std::shared_ptr<Peer>> peers_;
  RaftHandler on_raft_;
  ForwardHandler on_forward_;
  UnreachableHandler on_unreachable_;
  SnapshotFetchHandler on_snapshot_fetch_;
  SnapshotDataHandler on_snapshot_data_;
  bool closed_ = false;
  uint64_t rng_ = 0x9E3779B97F4A7C15ULL;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Frame helpers (exposed for tests and fuzzing).
std::string encode_frame(const netpb::PeerFrame& f);
// Parses one frame from the front of buf: kUnavailable if incomplete,
// kCorruption on a bad length or checksum or undecodable payload.
Result<netpb::PeerFrame> decode_frame(std::string_view buf, size_t frame_bytes_max,
                                      size_t* consumed);

}  // namespace qkv::net
