#include "server/server.h"

#include <unistd.h>

#include <array>
#include <asio/experimental/as_tuple.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <utility>

#include "kv/kv.pb.h"
#include "kv/waiters.h"
#include "server/reply_util.h"

namespace qkv::server {

using asio::awaitable;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);
constexpr const char* kRedisVersion = "7.0.0";
constexpr const char* kQkvVersion = "0.1.0";
// Bytes a connection closing after QUIT or a protocol error still reads and
// discards (what the client sent after it), so that closing sends a FIN
// rather than a reset that could drop the last replies unread.
constexpr size_t kCloseDiscardBytesMax = 256 << 10;

Server::Server(asio::io_context& io, ServerConfig config)
    : io_(io), cfg_(std::move(config)), expire_timer_(io) {
  // The flag's event classes in their canonical form, as CONFIG SET keeps
  // them (so CONFIG GET shows the setting as it is); validate() checked them.
  (void)set_notify_keyspace_events(cfg_.notify_keyspace_events);
}

Server::~Server() {
  *alive_ = false;
  stop();
}

int64_t Server::now_ms() const {
  int64_t wall = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  return sm_ ? std::max(wall, sm_->last_stamp_ms()) : wall;
}

std::string Server::error_reply(net::Protocol, std::string_view msg) { return err(msg); }

Status Server::start() {
  {
    storage::PosixFileSystem fs;
    if (Status s = fs.create_dirs(cfg_.data_dir); !s.is_ok()) return s;
  }
  storage::StateStoreOptions store_options;
  store_options.read_cache_bytes = cfg_.read_cache_bytes;
  store_options.read_cache_value_bytes_max = cfg_.read_cache_value_bytes_max;
  store_options.read_cache_fill_on_write = cfg_.read_cache_fill_on_write;
  store_options.write_buffer_bytes = cfg_.state_write_buffer_bytes;
  store_options.write_buffers_max = cfg_.state_write_buffers_max;
  store_options.block_cache_bytes = cfg_.state_block_cache_bytes;
  store_options.key_indexed_memtable = cfg_.state_memtable == "indexed";
  auto store = storage::StateStore::open(cfg_.data_dir + "/state", store_options);
  if (!store.is_ok()) return store.status();
  store_ = std::move(store).value();

  cluster::NodeOptions o;
  o.id = node_id_for_name(cfg_.name);
  o.cluster_id = cfg_.cluster_id;
  o.data_dir = cfg_.data_dir;
  o.peer_host = cfg_.listen_peer.host;
  o.peer_port = cfg_.listen_peer.port;
  o.join = cfg_.join;
  for (const auto& [name, hp] : cfg_.initial_cluster) {
    o.initial_members[node_id_for_name(name)] = cluster::PeerAddress{hp.host, hp.port};
  }
  if (o.initial_members.empty()) {
    o.initial_members[o.id] = cluster::PeerAddress{cfg_.listen_peer.host, cfg_.listen_peer.port};
  }
  o.wal.prefill = cfg_.wal_prefill;
  o.wal.segment_bytes_max = cfg_.wal_segment_bytes;
  o.wal.prefill_start_bytes = cfg_.wal_prefill_start_bytes;
  o.tick_ms = cfg_.tick_ms;
  o.election_ticks = cfg_.election_ticks;
  o.heartbeat_ticks = cfg_.heartbeat_ticks;
  o.read_mode = cfg_.read_mode == "lease" ? raft::ReadMode::kLease : raft::ReadMode::kReadIndex;
  o.request_timeout_ms = cfg_.request_timeout_ms;
  o.snapshot_entries = cfg_.snapshot_entries;
  o.snapshot_chunk_bytes = cfg_.snapshot_chunk_bytes;
  o.snapshot_bytes_max = cfg_.snapshot_bytes_max;
  o.snapshot_fetch_timeout_ms = cfg_.snapshot_fetch_timeout_ms;
  o.snapshot_recv_bytes_per_sec = cfg_.snapshot_recv_bytes_per_sec;
  o.transport.cluster_id = cfg_.cluster_id;
  storage::StateStore* st = store_.get();
  node_ = std::make_unique<cluster::Node>(
      io_, o, [this, st](uint64_t group) -> Result<std::unique_ptr<cluster::GroupStateMachine>> {
        auto sm = kv::KvStateMachine::open(st, group, cfg_.kv);
        if (!sm.is_ok()) return sm.status();
        sm_ = sm->get();
        sm_->set_event_sink(
            [this, alive = alive_](kv::ApplyEvents& ev) {
              if (*alive) on_apply_events(ev);
            },
            keyspace_events_wanted());
        return std::unique_ptr<cluster::GroupStateMachine>(std::move(sm).value());
      });
  auto alive = alive_;
  node_->set_forward_handler([this, alive](uint64_t from, netpb::Forward&& f) {
    if (*alive) on_forward(from, std::move(f));
  });
  if (Status s = node_->start(); !s.is_ok()) return s;
  // Entries applied from here on report what serving blocked clients
  // changed (note_served_changes); earlier ones did not, to this process.
  served_known_from_ = sm_->applied_index() + 1;
  served_snapshots_seen_ = snapshots_installed();

  asio::error_code ec;
  auto addr = asio::ip::make_address(cfg_.listen_client.host, ec);
  if (ec) return Status(Code::kInvalidArgument, "bad --listen-client host: " + ec.message());
  acceptor_ = std::make_unique<tcp::acceptor>(io_);
  tcp::endpoint ep(addr, cfg_.listen_client.port);
  acceptor_->open(ep.protocol(), ec);
  if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_->bind(ep, ec);
  if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status(Code::kIoError, "cannot listen for clients on " + cfg_.listen_client.to_string() +
                                      ": " + ec.message());
  }
  asio::co_spawn(io_, accept_loop(alive_), asio::detached);
  if (cfg_.listen_http.port != 0) {
    auto haddr = asio::ip::make_address(cfg_.listen_http.host, ec);
    if (ec) return Status(Code::kInvalidArgument, "bad --listen-http host");
    http_acceptor_ = std::make_unique<tcp::acceptor>(io_);
    tcp::endpoint hep(haddr, cfg_.listen_http.port);
    http_acceptor_->open(hep.protocol(), ec);
    if (!ec) http_acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) http_acceptor_->bind(hep, ec);
    if (!ec) http_acceptor_->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status(Code::kIoError, "cannot listen for HTTP on " + cfg_.listen_http.to_string() +
                                        ": " + ec.message());
    }
    asio::co_spawn(io_, http_accept_loop(alive_), asio::detached);
  }
  expire_tick();
  return Status::ok();
}

void Server::stop() {
  if (stopped_) return;
  stopped_ = true;
  asio::error_code ec;
  expire_timer_.cancel();
  if (acceptor_) acceptor_->close(ec);
  if (http_acceptor_) http_acceptor_->close(ec);
  for (auto& [id, w] : clients_) {
    if (auto c = w.lock()) {
      c->closed = true;
      c->socket.close(ec);
      c->read_wake.cancel();
    }
  }
  for (auto& w : draining_) {
    if (auto c = w.lock()) c->read_wake.cancel();  // their readers see stopped_
  }
  draining_.clear();
  dirty_.clear();
  if (node_) node_->stop();
}

uint16_t Server::client_port() const { return acceptor_ ? acceptor_->local_endpoint().port() : 0; }
uint16_t Server::peer_port() const { return node_ ? node_->peer_port() : 0; }
uint16_t Server::http_port() const {
  return http_acceptor_ ? http_acceptor_->local_endpoint().port() : 0;
}

// ---------------------------------------------------------------------------
// Client connections

awaitable<void> Server::accept_loop(Alive alive) {
  if (!*alive) co_return;
  for (;;) {
    auto [ec, socket] = co_await acceptor_->async_accept(kTuple);
    if (!*alive || stopped_) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      continue;
    }
    stats_.connections_received++;
    // Drop expired weak entries, then enforce maxclients.
    std::erase_if(clients_, [](const auto& kv) { return kv.second.expired(); });
    if (clients_.size() >= cfg_.maxclients) {
      stats_.connections_rejected++;
      std::string e = err("ERR max number of clients reached");
      asio::error_code wec;
      asio::write(socket, asio::buffer(e), wec);
      socket.close(wec);
      continue;
    }
    auto c = std::make_shared<Client>(io_, std::move(socket));
    c->id = next_client_id_++;
    asio::error_code rec;
    auto remote = c->socket.remote_endpoint(rec);
    if (!rec) c->addr = remote.address().to_string() + ":" + std::to_string(remote.port());
    c->socket.set_option(tcp::no_delay(true), rec);
    net::RequestLimits lim;
    lim.bulk_bytes_max = cfg_.proto_max_bulk_len;
    lim.query_buffer_bytes_max = cfg_.client_query_buffer_limit;
    lim.args_max = cfg_.multibulk_args_max;
    c->parser.set_limits(lim);
    c->authed = cfg_.requirepass.empty();
    c->parser.set_authenticated(c->authed);
    clients_[c->id] = c;
    // Reads and writes are tried at once and wait for the socket only when
    // it has nothing to give or take (client_reader, flush).
    c->socket.non_blocking(true, rec);
    asio::co_spawn(io_, client_reader(c, alive), asio::detached);
  }
}

void Server::finish_slot(const std::shared_ptr<Client>& c, size_t seq, std::string bytes) {
  if (c->closed) return;
  size_t idx = seq - c->first_seq;
  if (idx >= c->slots.size()) return;
  c->slots[idx].done = true;
  c->slots[idx].bytes = std::move(bytes);
  bool moved = false;
  while (!c->slots.empty() && c->slots.front().done) {
    if (c->out.empty()) {
      c->out.swap(c->slots.front().bytes);
    } else {
      c->out += c->slots.front().bytes;
    }
    c->slots.pop_front();
    c->first_seq++;
    moved = true;
  }
  if (c->out.size() + c->sending.size() > cfg_.client_output_buffer_limit) {
    // A client that does not read its replies is disconnected (Redis:
    // client-output-buffer-limit).
    close_client(c);
    return;
  }
  if (moved) {
    queue_flush(c);
    if (c->reader_paused) c->read_wake.cancel();
  }
}

void Server::queue_flush(const std::shared_ptr<Client>& c) {
  if (c->flush_queued || c->writing) return;  // a write in flight goes on by itself
  c->flush_queued = true;
  dirty_.push_back(c);
  if (flush_posted_) return;
  flush_posted_ = true;
  asio::post(io_, [this, alive = alive_] {
    if (*alive) flush_dirty();
  });
}

void Server::flush_dirty() {
  flush_posted_ = false;
  // Taken out first: closing a client may queue replies of others.
  for (auto& c : std::exchange(dirty_, {})) {
    c->flush_queued = false;
    flush(c);
  }
}

void Server::flush(const std::shared_ptr<Client>& c) {
  if (c->closed || c->writing) return;
  if (!c->out.empty()) {
    asio::error_code ec;
    size_t n = c->socket.write_some(asio::buffer(c->out), ec);
    if (ec && ec != asio::error::would_block && ec != asio::error::try_again) {
      close_client(c);
      return;
    }
    if (n == c->out.size()) {
      c->out.clear();
    } else {
      // The socket's buffer is full: the rest goes by an async write, and
      // what is made meanwhile waits in `out` for its completion.
      c->sending.assign(c->out, n, std::string::npos);
      c->out.clear();
      c->writing = true;
      asio::async_write(c->socket, asio::buffer(c->sending),
                        [this, c, alive = alive_](const asio::error_code& wec, size_t) {
                          if (!*alive) return;
                          c->writing = false;
                          c->sending.clear();
                          if (wec) {
                            close_client(c);
                            return;
                          }
                          flush(c);
                        });
      return;
    }
  }
  if (c->closing && c->slots.empty()) close_client(c);
}

void Server::close_client(const std::shared_ptr<Client>& c) {
  if (c->cleaned_up) return;
  c->cleaned_up = true;
  c->closed = true;
  asio::error_code ec;
  if (c->closing) {
    std::array<char, 16384> sink;
    for (size_t read = 0; read < kCloseDiscardBytesMax && !ec;) {
      read += c->socket.read_some(asio::buffer(sink), ec);
    }
  }
  c->socket.shutdown(tcp::socket::shutdown_both, ec);
  c->socket.close(ec);
  c->read_wake.cancel();
  clients_.erase(c->id);
  untrack_client(*c);
  if (unblock_client(*c)) {  // blocking.cc
    // Its step was that blocked command, whose reply is dropped: what was
    // queued behind it is dropped too (Redis frees a blocked client).
    c->running = false;
    c->queue.clear();
  }
  if (c->running || !c->queue.empty()) {
    std::erase_if(draining_, [](const auto& w) { return w.expired(); });
    draining_.push_back(c);
  }
}

awaitable<void> Server::client_reader(std::shared_ptr<Client> c, Alive alive) {
  if (!*alive) co_return;
  // Whether the socket may hold bytes not read yet. A read that fills less
  // than its buffer took everything the socket had, so the reader then
  // waits for readiness instead of trying a read that would fail (Asio
  // re-arms the descriptor for a wait, so bytes that came meanwhile are
  // reported). After a pause for a full pipeline the client was still
  // sending, so the reader reads first.
  bool maybe_more = true;
  while (*alive && !c->closed && !c->closing) {
    while (c->slots.size() >= cfg_.client_pipeline_max && !c->closed) {
      c->read_wake.expires_at(asio::steady_timer::time_point::max());
      c->reader_paused = true;
      co_await c->read_wake.async_wait(kTuple);
      if (!*alive) co_return;
      c->reader_paused = false;
      maybe_more = true;
    }
    if (c->closed || c->closing) break;
    if (!maybe_more) {
      auto [wec] = co_await c->socket.async_wait(tcp::socket::wait_read, kTuple);
      if (!*alive) co_return;
      if (c->closed || c->closing) break;  // closing: QUIT ran meanwhile
      if (wec) {
        close_client(c);
        break;
      }
    }
    auto room = c->parser.prepare(16 << 10);
    asio::error_code ec;
    size_t n = c->socket.read_some(asio::buffer(room.data(), room.size()), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      maybe_more = false;
      continue;
    }
    if (ec) {
      close_client(c);
      break;
    }
    maybe_more = n == room.size();
    c->parser.commit(n);
    for (;;) {
      net::Parsed r = c->parser.next();
      if (r == net::Parsed::kNeedMore) break;
      uint64_t seq = c->first_seq + c->slots.size();
      c->slots.emplace_back();
      if (r == net::Parsed::kError) {
        // Garbage closes this one connection, after the error is written.
        stats_.protocol_errors++;
        c->closing = true;
        finish_slot(c, seq, err(c->parser.error()));
        break;
      }
      auto a = c->parser.args();
      std::vector<std::string> args(a.begin(), a.end());
      std::weak_ptr<Client> wc = c;
      submit(c, seq, std::move(args), [this, wc, seq, alive](std::string bytes) {
        if (!*alive) return;
        if (auto cc = wc.lock()) {
          finish_slot(cc, seq, std::move(bytes));
          step_done(cc, seq);
        }
      });
      if (c->closing) break;
    }
    // Starts what this read queued (runs of reads or writes gather here).
    pump(c);
    if (c->closing) queue_flush(c);  // closes once the replies before it are written
  }
  // A closing connection (QUIT, a protocol error) may still owe replies: the
  // reader holds it until they are written and close_client() wakes it, and
  // until what it had received has run (pump() wakes it).
  while (*alive && !stopped_ && !(c->closed && !c->running && c->queue.empty())) {
    c->read_wake.expires_at(asio::steady_timer::time_point::max());
    co_await c->read_wake.async_wait(kTuple);
  }
  co_return;
}

// ---------------------------------------------------------------------------
// Dispatch

Server::Flow Server::flow_of(const Client& c, const Queued& q) const {
  const kv::CommandSpec* spec = q.spec;
  if (spec == nullptr || spec->handler == nullptr || spec->is_local() ||
      (spec->flags & kv::kCmdBlocking) || !kv::arity_ok(*spec, q.args.size())) {
    return Flow::kAlone;
  }
  // Connection states whose commands take another path (transaction.cc,
  // pubsub.cc) or answer at once (READONLY).
  if (c.in_multi || !c.authed || c.subscribed() || c.stale_reads) {
    return Flow::kAlone;
  }
  if (spec->is_readonly()) return Flow::kRead;
  if (spec->is_write()) return Flow::kWrite;
  return Flow::kAlone;
}

void Server::submit(const std::shared_ptr<Client>& c, uint64_t seq, std::vector<std::string> args,
                    ReplyFn reply) {
  if (c->quit) {
    reply({});  // after QUIT: not run
    return;
  }
  const kv::CommandSpec* spec = kv::find_command(args[0]);
  c->queue.push_back(Queued{spec, std::move(args), std::move(reply), seq});
  // Nothing ahead and nothing to gather: now, so that what it changes
  // (AUTH, HELLO, QUIT, MULTI) holds for the next command parsed.
  if (!c->running && c->queue.size() == 1 && flow_of(*c, c->queue.front()) == Flow::kAlone) {
    pump(c);
  }
}

void Server::pump(const std::shared_ptr<Client>& c) {
  if (c->pumping) return;  // a step finished at once: the loop below goes on
  c->pumping = true;
  while (!c->running && !c->queue.empty() && !stopped_) {
    Queued q = std::move(c->queue.front());
    c->queue.pop_front();
    if (c->closed && q.spec != nullptr && (q.spec->flags & kv::kCmdBlocking)) {
      // Nobody is left to wait: it runs once, without blocking (as inside
      // MULTI; execute() does not block a closed client). If it would have
      // blocked (a null reply), what came after it is dropped, as Redis
      // drops what a client freed while blocked had not run.
      q.reply = [c, inner = std::move(q.reply)](std::string bytes) {
        if (net::is_null_reply(bytes)) c->queue.clear();
        inner(std::move(bytes));
      };
    }
    const Flow flow = flow_of(*c, q);
    if (flow != Flow::kAlone && !c->queue.empty() && flow_of(*c, c->queue.front()) == flow) {
      // A run: consecutive commands of one kind, up to multi-bytes-max (the
      // bound of one entry, as for a transaction).
      size_t bytes = command_bytes(q.args);
      std::vector<Queued> run;
      run.push_back(std::move(q));
      while (!c->queue.empty() && flow_of(*c, c->queue.front()) == flow) {
        const size_t more = command_bytes(c->queue.front().args);
        if (bytes + more > cfg_.multi_bytes_max) break;
        bytes += more;
        run.push_back(std::move(c->queue.front()));
        c->queue.pop_front();
      }
      if (run.size() > 1) {
        c->running = true;
        c->step_end = run.back().seq;
        run_batch(c, flow, std::move(run));
        continue;
      }
      q = std::move(run.front());
    }
    c->running = true;
    c->step_end = q.seq;
    execute(c, q.spec, std::move(q.args), std::move(q.reply));
    if (c->quit) {
      // QUIT: what came after it is not run, its slots are closed empty.
      for (auto& rest : std::exchange(c->queue, {})) rest.reply({});
    }
  }
  c->pumping = false;
  // A closed connection's reader waits for its queue to have run.
  if (c->closed && !c->running && c->queue.empty()) c->read_wake.cancel();
}

void Server::step_done(const std::shared_ptr<Client>& c, uint64_t seq) {
  if (!c->running || seq != c->step_end) return;
  c->running = false;
  pump(c);
}

void Server::run_batch(const std::shared_ptr<Client>& c, Flow flow, std::vector<Queued> run) {
  stats_.commands_processed += run.size();
  auto replies = std::make_shared<std::vector<ReplyFn>>();
  replies->reserve(run.size());
  auto cmds = std::make_shared<Commands>();
  cmds->reserve(run.size());
  for (Queued& q : run) {
    replies->push_back(account(c, *q.spec, q.args, std::move(q.reply)));
    cmds->push_back(std::move(q.args));
  }
  // The run's reply is an array of its commands' replies (as for EXEC), or
  // one error for all of them (CLUSTERDOWN, a storage failure).
  // The last reply ends the step.
  auto done = [alive = alive_, replies](std::string bytes) {
    if (!*alive) return;
    const size_t eol = bytes.find("\r\n");
    if (!bytes.empty() && bytes[0] == '*' && eol != std::string::npos) {
      // Replies are written in slot order: the first carries them all.
      bytes.erase(0, eol + 2);
      (*replies)[0](std::move(bytes));
      for (size_t i = 1; i < replies->size(); i++) (*replies)[i]({});
    } else {
      for (auto& r : *replies) r(bytes);
    }
  };
  if (fatal()) {
    done(fatal_error_reply());
    return;
  }
  const auto deadline = Clock::now() + std::chrono::milliseconds(cfg_.request_timeout_ms);
  if (flow == Flow::kRead) {
    read_with_barrier(std::move(cmds), /*txn=*/true, c->proto, std::move(done), deadline);
  } else {
    propose_or_forward(std::move(*cmds), Unit::kPipeline, c->proto, std::move(done), deadline);
  }
}

Server::ReplyFn Server::account(const std::shared_ptr<Client>& c, const kv::CommandSpec& spec,
                                const std::vector<std::string>& args, ReplyFn reply) {
  c->last_cmd = spec.name;
  track_reads(c, spec, args, reply);  // CLIENT TRACKING (notify.cc)
  // Counted when the reply is made, looked up then: CONFIG RESETSTAT may
  // have cleared the table while the command waited.
  return [this, alive = alive_, name = spec.name, t0 = Clock::now(),
          reply = std::move(reply)](std::string bytes) mutable {
    if (*alive) {
      auto it = stats_.commandstats.find(name);
      if (it == stats_.commandstats.end()) {
        it = stats_.commandstats.emplace(std::string(name), std::pair<uint64_t, uint64_t>{}).first;
      }
      it->second.first++;
      it->second.second += static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
    }
    reply(std::move(bytes));
  };
}

void Server::execute(const std::shared_ptr<Client>& c, const kv::CommandSpec* spec,
                     std::vector<std::string> args, ReplyFn reply) {
  stats_.commands_processed++;
  // Pub/sub and transaction commands are local; a data command needs them
  // only inside MULTI or in subscribed mode.
  if (spec == nullptr || spec->is_local() || c->in_multi || c->subscribed()) {
    if (handle_pubsub(c, args, reply)) return;
    if (handle_transaction(c, args, spec, reply)) return;
  }
  if (spec == nullptr) {
    auto v = views(args);
    reply(err(kv::unknown_command_error(v)));
    return;
  }
  if (!kv::arity_ok(*spec, args.size())) {
    reply(err(kv::arity_error(spec->name)));
    return;
  }
  if (!c->authed && !(spec->flags & kv::kCmdNoAuth)) {
    reply(err("NOAUTH Authentication required."));
    return;
  }
  ReplyFn timed = account(c, *spec, args, std::move(reply));
  if (spec->is_local()) {
    execute_local(c, *spec, args, timed);
    return;
  }
  if ((spec->flags & kv::kCmdBlocking) && !c->closed && execute_blocking(c, args, timed)) return;
  execute_data(*spec, std::move(args), c->proto, c->stale_reads, std::move(timed));
}

void Server::execute_data(const kv::CommandSpec& spec, std::vector<std::string> args,
                          net::Protocol proto, bool stale_ok, ReplyFn reply) {
  if (fatal()) {
    reply(fatal_error_reply());
    return;
  }
  if (spec.is_readonly() && stale_ok) {
    // READONLY connection: the local state as it is, possibly behind the
    // leader (DESIGN.md: stale reads only when the client asks for them).
    std::string out;
    auto v = views(args);
    Status rs = sm_->execute_read(v, proto, now_ms(), &out);
    reply(rs.is_ok() ? std::move(out) : err("ERR " + rs.to_string()));
    return;
  }
  if (spec.is_readonly()) {
    auto cmds = std::make_shared<Commands>();
    cmds->push_back(std::move(args));
    read_with_barrier(std::move(cmds), /*txn=*/false, proto, std::move(reply),
                      Clock::now() + std::chrono::milliseconds(cfg_.request_timeout_ms));
    return;
  }
  propose_or_forward(std::move(args), proto, std::move(reply),
                     Clock::now() + std::chrono::milliseconds(cfg_.request_timeout_ms));
}

void Server::read_with_barrier(std::shared_ptr<Commands> cmds, bool txn, net::Protocol proto,
                               ReplyFn reply, Clock::time_point deadline) {
  auto alive = alive_;
  node_->read_barrier(kGroup, [this, alive, cmds, txn, proto, deadline,
                               reply = std::move(reply)](Status s) mutable {
    if (!*alive) return;
    if (!s.is_ok() && (s.code() == Code::kNoLeader || s.code() == Code::kNotLeader) &&
        Clock::now() < deadline && !stopped_) {
      // No leader known yet (an election, a node just started): ask again
      // a tick later, until the request's deadline.
      auto t = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(cfg_.tick_ms));
      t->async_wait([this, alive, t, cmds, txn, proto, deadline,
                     reply = std::move(reply)](const asio::error_code&) mutable {
        if (!*alive || stopped_) return;
        read_with_barrier(cmds, txn, proto, std::move(reply), deadline);
      });
      return;
    }
    if (!s.is_ok()) {
      stats_.clusterdown++;
      reply(err("CLUSTERDOWN The cluster is down: " + s.to_string()));
      return;
    }
    // Back to back on this thread: nothing is applied in between.
    std::string out;
    if (txn) out = "*" + std::to_string(cmds->size()) + "\r\n";
    for (const auto& args : *cmds) {
      auto v = views(args);
      Status rs = sm_->execute_read(v, proto, now_ms(), &out);
      if (!rs.is_ok()) {
        reply(err("ERR " + rs.to_string()));
        return;
      }
    }
    reply(std::move(out));
  });
}

bool Server::fatal() const { return node_ && !node_->fatal_error().empty(); }

std::string Server::fatal_error_reply() const {
  return err("ERR node stopped after a storage failure: " + node_->fatal_error());
}

void Server::propose_or_forward(std::vector<std::string> args, net::Protocol proto, ReplyFn reply,
                                Clock::time_point deadline) {
  Commands cmds;
  cmds.push_back(std::move(args));
  propose_or_forward(std::move(cmds), Unit::kCommand, proto, std::move(reply), deadline);
}

namespace {

// The server's own internal requests (blocked clients: waiters.h) travel
// the write path like client commands; clients can never name them (the
// dispatch looks commands up in the client table first).
bool is_internal(const std::vector<std::string>& args) {
  return !args.empty() && kv::find_command(args[0]) == nullptr &&
         kv::find_internal_command(args[0]) != nullptr;
}

std::string encode_commands(int64_t stamp_ms, net::Protocol proto,
                            const std::vector<std::vector<std::string>>& cmds, bool pipeline) {
  std::vector<std::vector<std::string_view>> v;
  v.reserve(cmds.size());
  std::vector<kv::RequestView> reqs;
  reqs.reserve(cmds.size());
  for (const auto& c : cmds) {
    v.emplace_back(c.begin(), c.end());
    reqs.push_back(kv::RequestView{proto, v.back(), is_internal(c)});
  }
  return kv::encode_batch(stamp_ms, reqs, pipeline);
}

}  // namespace

void Server::propose_or_forward(Commands cmds, Unit unit, net::Protocol proto, ReplyFn reply,
                                Clock::time_point deadline,
                                std::shared_ptr<const Watches> watches) {
  auto alive = alive_;
  if (Clock::now() >= deadline) {
    stats_.clusterdown++;
    reply(err("CLUSTERDOWN The cluster is down: no leader within " +
              std::to_string(cfg_.request_timeout_ms) + " ms"));
    return;
  }
  uint64_t leader = node_->leader(kGroup);
  const bool many = unit != Unit::kCommand;
  if (!many && node_->is_leader(kGroup) && is_admin_change(cmds[0])) {
    run_admin_change(std::move(cmds[0]), std::move(reply));
    return;
  }
  if (node_->is_leader(kGroup)) {
    if (watches && watched_keys_changed(*watches)) {
      reply(null_array(proto));  // EXEC of a transaction whose WATCHed key changed
      return;
    }
    std::string payload = encode_commands(now_ms(), proto, cmds, unit == Unit::kPipeline);
    auto shared = std::make_shared<Commands>(std::move(cmds));
    node_->propose(kGroup, std::move(payload),
                   [this, alive, shared, unit, many, watches, proto, deadline,
                    reply = std::move(reply)](Status s, std::string result) mutable {
                     if (!*alive) return;
                     if (s.is_ok()) {
                       if (many) result.insert(0, "*" + std::to_string(shared->size()) + "\r\n");
                       reply(std::move(result));
                     } else if (s.code() == Code::kNotLeader || s.code() == Code::kNoLeader ||
                                s.code() == Code::kTransferInProgress) {
                       // Not applied (or never appended): safe to try again.
                       retry_later(std::move(*shared), unit, watches, proto, std::move(reply),
                                   deadline);
                     } else if (s.code() == Code::kTimedOut) {
                       stats_.clusterdown++;
                       reply(
                           err("CLUSTERDOWN The cluster is down: the write was not committed "
                               "in time; it may or may not be applied"));
                     } else {
                       reply(err("ERR " + s.to_string()));
                     }
                   });
    return;
  }
  if (leader == raft::kNone || leader == node_->id()) {
    retry_later(std::move(cmds), unit, watches, proto, std::move(reply), deadline);
    return;
  }
  // Forward to the leader and relay its reply.
  netpb::Forward f;
  uint64_t id = next_forward_id_++;
  f.set_id(id);
  if (many) {
    f.set_batch(true);
    f.set_payload(encode_commands(0, proto, cmds, unit == Unit::kPipeline));
    if (watches) {
      for (const auto& [key, index] : *watches) {
        auto* w = f.add_watched();
        w->set_key(key);
        w->set_index(index);
      }
    }
  } else {
    kvpb::KvRequest req;
    for (auto& a : cmds[0]) req.add_args(a);
    req.set_protocol(static_cast<uint32_t>(proto));
    req.set_internal(is_internal(cmds[0]));
    f.set_payload(req.SerializeAsString());
  }
  stats_.forwarded++;
  forwarded_[id] = Forwarded{std::move(cmds), unit, watches, proto, std::move(reply), deadline};
  if (!node_->transport().forward(leader, std::move(f))) {
    auto fw = std::move(forwarded_[id]);
    forwarded_.erase(id);
    retry_later(std::move(fw.cmds), fw.unit, fw.watches, fw.proto, std::move(fw.reply), deadline);
  }
}

void Server::retry_later(Commands cmds, Unit unit, std::shared_ptr<const Watches> watches,
                         net::Protocol proto, ReplyFn reply, Clock::time_point deadline) {
  auto t = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(cfg_.tick_ms));
  auto alive = alive_;
  auto shared = std::make_shared<Commands>(std::move(cmds));
  t->async_wait([this, alive, t, shared, unit, watches, proto, deadline,
                 reply = std::move(reply)](const asio::error_code&) mutable {
    if (!*alive || stopped_) return;
    propose_or_forward(std::move(*shared), unit, proto, std::move(reply), deadline, watches);
  });
}

cluster::Node::ProposeCallback Server::answer_proposal(ForwardAnswer answer, char ok_kind) {
  return [answer = std::move(answer), ok_kind](Status s, std::string result) {
    if (s.is_ok()) {
      answer(ok_kind, std::move(result));
    } else if (s.code() == Code::kNotLeader || s.code() == Code::kNoLeader ||
               s.code() == Code::kTransferInProgress) {
      answer('A', {});  // not applied: the follower asks again
    } else if (s.code() == Code::kTimedOut) {
      answer('R', err("CLUSTERDOWN The cluster is down: the write was not committed in time; "
                      "it may or may not be applied"));
    } else {
      answer('R', err("ERR " + s.to_string()));
    }
  };
}

// A forwarded request arrives at the leader (or the leader's reply comes
// back). Reply payloads start with 'R' (the reply follows), 'B' (the
// concatenated replies of a transaction's commands follow) or 'A' (not
// leader: ask again, nothing was applied).
void Server::on_forward(uint64_t from, netpb::Forward&& f) {
  if (f.is_publish()) {
    stats_.pubsub_received++;
    deliver(f.channel(), f.payload());
    return;
  }
  if (f.is_reply()) {
    auto it = forwarded_.find(f.id());
    if (it == forwarded_.end()) return;  // timed out already
    Forwarded fw = std::move(it->second);
    forwarded_.erase(it);
    const std::string& p = f.payload();
    if (!p.empty() && p[0] == 'R') {
      fw.reply(p.substr(1));
    } else if (!p.empty() && p[0] == 'B' && fw.unit != Unit::kCommand) {
      fw.reply("*" + std::to_string(fw.cmds.size()) + "\r\n" + p.substr(1));
    } else if (!p.empty() && p[0] == 'N' && fw.unit == Unit::kTransaction) {
      fw.reply(null_array(fw.proto));  // a WATCHed key changed
    } else {
      retry_later(std::move(fw.cmds), fw.unit, fw.watches, fw.proto, std::move(fw.reply),
                  fw.deadline);
    }
    return;
  }
  kvpb::KvRequest req;
  uint64_t id = f.id();
  auto alive = alive_;
  auto answer = [this, alive, from, id](char kind, std::string bytes) {
    if (!*alive) return;
    netpb::Forward r;
    r.set_id(id);
    r.set_is_reply(true);
    r.set_payload(std::string(1, kind) + bytes);
    (void)node_->transport().forward(from, std::move(r));
  };
  if (f.batch()) {
    forwarded_transaction(std::move(f), std::move(answer));
    return;
  }
  if (!req.ParseFromString(f.payload()) || req.args_size() == 0) {
    answer('R', err("ERR malformed forwarded request"));
    return;
  }
  if (!node_->is_leader(kGroup)) {
    answer('A', {});
    return;
  }
  std::vector<std::string> args(req.args().begin(), req.args().end());
  if (is_admin_change(args)) {
    run_admin_change(std::move(args),
                     [answer](std::string bytes) { answer('R', std::move(bytes)); });
    return;
  }
  // Internal requests a follower may forward: its blocked clients'.
  const kv::CommandSpec* spec =
      req.internal() ? kv::find_internal_command(args[0]) : kv::find_command(args[0]);
  if (req.internal() && spec != nullptr && spec->name != kv::kBlockCommand &&
      spec->name != kv::kUnblockCommand && spec->name != kv::kRenewBlockCommand &&
      spec->name != kv::kUnblockStaleCommand) {
    spec = nullptr;
  }
  if (spec == nullptr || !spec->is_write() || !kv::arity_ok(*spec, args.size())) {
    answer('R', err("ERR forwarded request is not a valid write command"));
    return;
  }
  auto proto = req.protocol() == 3 ? net::Protocol::kResp3 : net::Protocol::kResp2;
  auto v = views(args);
  std::string payload = req.internal() ? kv::encode_internal(now_ms(), proto, v)
                                       : kv::encode_request(now_ms(), proto, v);
  node_->propose(kGroup, std::move(payload), answer_proposal(std::move(answer), 'R'));
}

void Server::expire_tick() {
  if (stopped_) return;
  auto alive = alive_;
  expire_timer_.expires_after(std::chrono::milliseconds(cfg_.expire_interval_ms));
  expire_timer_.async_wait([this, alive](const asio::error_code& ec) {
    if (ec || !*alive || stopped_) return;
    // Forwarded requests whose leader never answered.
    auto now = Clock::now();
    for (auto it = forwarded_.begin(); it != forwarded_.end();) {
      if (it->second.deadline <= now) {
        auto fw = std::move(it->second);
        it = forwarded_.erase(it);
        stats_.clusterdown++;
        fw.reply(
            err("CLUSTERDOWN The cluster is down: the leader did not answer in time; the "
                "write may or may not be applied"));
      } else {
        ++it;
      }
    }
    // The leader proposes the deletion of expired keys (DESIGN.md).
    if (node_->is_leader(kGroup) && sm_) {
      int64_t t = now_ms();
      auto keys = sm_->expired_keys_to_delete(t, cfg_.expire_keys_per_entry);
      if (!keys.empty()) {
        stats_.expired_keys_proposed += keys.size();
        node_->propose(kGroup, kv::encode_expired_deletion(t, keys), [](Status, std::string) {});
      }
    }
    blocking_tick();
    expire_tick();
  });
}

}  // namespace qkv::server
