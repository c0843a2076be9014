#include "net/transport.h"

#include <gtest/gtest.h>

namespace qkv::net {
namespace {

raftpb::Message Msg(uint64_t from, uint64_t to, uint64_t index) {
  raftpb::Message m;
  m.set_from(from);
  m.set_to(to);
  m.set_type(raftpb::MSG_APP);
  m.set_index(index);
  return m;
}

// Runs the io_context until pred() or the deadline.
template <typename F>
bool run_until(asio::io_context& io, F pred, int ms = 5000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (!pred() && std::chrono::steady_clock::now() < deadline) {
    io.run_for(std::chrono::milliseconds(5));
    if (io.stopped()) io.restart();
  }
  return pred();
}

TEST(FrameTest, RoundTripAndCorruption) {
  netpb::PeerFrame f;
  f.set_from(3);
  *f.add_raft() = Msg(3, 1, 7);
  std::string enc = encode_frame(f);
  size_t used = 0;
  auto d = decode_frame(enc, 1 << 20, &used);
  ASSERT_TRUE(d.is_ok());
  EXPECT_EQ(used, enc.size());
  EXPECT_EQ(d->raft(0).index(), 7u);
  EXPECT_EQ(decode_frame(enc.substr(0, 5), 1 << 20, &used).code(), Code::kUnavailable);
  EXPECT_EQ(decode_frame(enc.substr(0, enc.size() - 1), 1 << 20, &used).code(),
            Code::kUnavailable);
  std::string bad = enc;
  bad[10] ^= 1;
  EXPECT_EQ(decode_frame(bad, 1 << 20, &used).code(), Code::kCorruption);
  EXPECT_EQ(decode_frame(enc, 4, &used).code(), Code::kCorruption);  // over the limit
}

TEST(PeerTransportTest, ExchangesMessagesAndForwardsBothWays) {
  asio::io_context io;
  PeerTransport a(io, 1, {}), b(io, 2, {});
  ASSERT_TRUE(a.listen("127.0.0.1", 0).is_ok());
  ASSERT_TRUE(b.listen("127.0.0.1", 0).is_ok());
  std::vector<raftpb::Message> at_a, at_b;
  std::vector<std::pair<uint64_t, netpb::Forward>> fw_b;
  a.set_handlers([&](raftpb::Message&& m) { at_a.push_back(std::move(m)); }, nullptr, nullptr);
  b.set_handlers([&](raftpb::Message&& m) { at_b.push_back(std::move(m)); },
                 [&](uint64_t from, netpb::Forward&& f) { fw_b.emplace_back(from, std::move(f)); },
                 nullptr);
  a.add_peer(2, "127.0.0.1", b.listen_port());
  b.add_peer(1, "127.0.0.1", a.listen_port());
  for (uint64_t i = 1; i <= 100; i++) ASSERT_TRUE(a.send(Msg(1, 2, i)));
  ASSERT_TRUE(b.send(Msg(2, 1, 42)));
  netpb::Forward f;
  f.set_id(9);
  f.set_payload("GET k");
  ASSERT_TRUE(a.forward(2, f));
  ASSERT_TRUE(run_until(io, [&] { return at_b.size() == 100 && at_a.size() == 1 && fw_b.size() == 1; }));
  for (uint64_t i = 0; i < 100; i++) EXPECT_EQ(at_b[i].index(), i + 1);  // in order
  EXPECT_EQ(fw_b[0].first, 1u);
  EXPECT_EQ(fw_b[0].second.payload(), "GET k");
  EXPECT_GE(a.stats(2).messages_sent, 101u);
  EXPECT_LE(a.stats(2).frames_sent, 101u);
  a.close();
  b.close();
  io.run_for(std::chrono::milliseconds(20));
}

// A message sent while the writer is idle is written at once by send();
// what the socket does not take (large entries: the receiver runs on the
// same thread, so nothing is read meanwhile) is finished by the writer
// before anything queued after it. Everything arrives whole and in order.
TEST(PeerTransportTest, ImmediateWritesFinishPartialFramesInOrder) {
  asio::io_context io;
  PeerTransport a(io, 1, {}), b(io, 2, {});
  ASSERT_TRUE(a.listen("127.0.0.1", 0).is_ok());
  ASSERT_TRUE(b.listen("127.0.0.1", 0).is_ok());
  std::vector<raftpb::Message> at_b;
  b.set_handlers([&](raftpb::Message&& m) { at_b.push_back(std::move(m)); }, nullptr, nullptr);
  a.set_handlers([](raftpb::Message&&) {}, nullptr, nullptr);
  a.add_peer(2, "127.0.0.1", b.listen_port());
  b.add_peer(1, "127.0.0.1", a.listen_port());
  ASSERT_TRUE(a.send(Msg(1, 2, 1)));
  ASSERT_TRUE(run_until(io, [&] { return at_b.size() == 1; }));
  io.run_for(std::chrono::milliseconds(20));  // the writer waits again, idle
  const uint64_t frames_before = a.stats(2).frames_sent;
  uint64_t index = 2;
  for (int round = 0; round < 3; round++) {
    // A burst from one handler: the first goes out at once (partly), the
    // rest queue behind it.
    for (int i = 0; i < 4; i++) {
      raftpb::Message m = Msg(1, 2, index++);
      if (i % 2 == 0) m.add_entries()->set_data(std::string(3 << 20, static_cast<char>('a' + i)));
      ASSERT_TRUE(a.send(std::move(m)));
    }
    ASSERT_TRUE(run_until(io, [&] { return at_b.size() == index - 1; }, 20000));
    io.run_for(std::chrono::milliseconds(20));
  }
  for (uint64_t i = 0; i < at_b.size(); i++) {
    EXPECT_EQ(at_b[i].index(), i + 1);
    if (i > 0 && (i - 1) % 4 % 2 == 0) {
      ASSERT_EQ(at_b[i].entries_size(), 1);
      EXPECT_EQ(at_b[i].entries(0).data().size(), size_t{3} << 20);
    }
  }
  EXPECT_EQ(a.stats(2).messages_sent, index - 1);
  EXPECT_EQ(a.stats(2).dropped, 0u);
  EXPECT_GT(a.stats(2).frames_sent, frames_before);
  a.close();
  b.close();
  io.run_for(std::chrono::milliseconds(20));
}

TEST(PeerTransportTest, ReconnectsAfterPeerRestartAndReportsUnreachable) {
  asio::io_context io;
  TransportOptions o;
  o.backoff_min = std::chrono::milliseconds(5);
  o.backoff_max = std::chrono::milliseconds(20);
  PeerTransport a(io, 1, o);
  std::vector<uint64_t> unreachable;
  a.set_handlers(nullptr, nullptr, [&](uint64_t id) { unreachable.push_back(id); });
  // Reserve a port, then free it: nobody listens there yet.
  uint16_t port;
  {
    PeerTransport probe(io, 9, o);
    ASSERT_TRUE(probe.listen("127.0.0.1", 0).is_ok());
    port = probe.listen_port();
    probe.close();
  }
  a.add_peer(2, "127.0.0.1", port);
  a.send(Msg(1, 2, 1));
  ASSERT_TRUE(run_until(io, [&] { return !unreachable.empty(); }));
  EXPECT_EQ(unreachable[0], 2u);
  // The peer comes up on that port: the writer connects and delivers.
  auto b = std::make_unique<PeerTransport>(io, 2, o);
  std::vector<raftpb::Message> at_b;
  b->set_handlers([&](raftpb::Message&& m) { at_b.push_back(std::move(m)); }, nullptr, nullptr);
  ASSERT_TRUE(b->listen("127.0.0.1", port).is_ok());
  ASSERT_TRUE(run_until(io, [&] {
    a.send(Msg(1, 2, 2));
    return !at_b.empty();
  }));
  a.close();
  b->close();
  io.run_for(std::chrono::milliseconds(20));
}

TEST(PeerTransportTest, BoundedQueueDropsAndOtherClusterIsRefused) {
  asio::io_context io;
  TransportOptions o;
  o.send_queue_msgs_max = 3;
  PeerTransport a(io, 1, o);
  a.add_peer(2, "127.0.0.1", 1);  // nothing listens on port 1
  int ok = 0;
  for (int i = 0; i < 10; i++) ok += a.send(Msg(1, 2, i));
  EXPECT_EQ(ok, 3);
  EXPECT_EQ(a.stats(2).dropped, 7u);
  EXPECT_FALSE(a.send(Msg(1, 5, 1)));  // unknown peer

  TransportOptions other;
  other.cluster_id = 77;
  PeerTransport x(io, 3, other), y(io, 4, {});
  std::vector<raftpb::Message> at_y;
  y.set_handlers([&](raftpb::Message&& m) { at_y.push_back(std::move(m)); }, nullptr, nullptr);
  ASSERT_TRUE(y.listen("127.0.0.1", 0).is_ok());
  x.add_peer(4, "127.0.0.1", y.listen_port());
  x.send(Msg(3, 4, 1));
  run_until(io, [&] { return false; }, 200);
  EXPECT_TRUE(at_y.empty());
  a.close();
  x.close();
  y.close();
  io.run_for(std::chrono::milliseconds(20));
}

}  // namespace
}  // namespace qkv::net
