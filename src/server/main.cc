// quorumkv: the server. With no arguments, a single-node cluster on
// 127.0.0.1:7379 with data in ./quorumkv-data (DESIGN.md).
#include <csignal>
#include <cstdio>

#include "server/server.h"

int main(int argc, char** argv) {
  auto cfg = qkv::server::parse_config(argc, argv);
  if (!cfg.is_ok()) {
    if (cfg.code() == qkv::Code::kNotFound) {
      std::printf("%s", cfg.status().message().c_str());
      return 0;
    }
    std::fprintf(stderr, "quorumkv: %s\n", cfg.status().message().c_str());
    return 2;
  }
  asio::io_context io;
  qkv::server::Server server(io, *cfg);
  if (qkv::Status s = server.start(); !s.is_ok()) {
    std::fprintf(stderr, "quorumkv: cannot start: %s\n", s.to_string().c_str());
    return 1;
  }
  std::fprintf(stderr, "quorumkv: node %s (id %llu) serving clients on %s:%u, peers on %s:%u\n",
               cfg->name.c_str(), (unsigned long long)qkv::server::node_id_for_name(cfg->name),
               cfg->listen_client.host.c_str(), server.client_port(),
               cfg->listen_peer.host.c_str(), server.peer_port());
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const asio::error_code&, int) {
    server.stop();
    io.stop();
  });
  std::signal(SIGPIPE, SIG_IGN);
  io.run();
  if (!server.node().fatal_error().empty()) return 1;
  return 0;
}
