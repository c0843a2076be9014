// The quorumkv server: Redis clients on one side, a cluster::Node on the
// other. Each client connection parses pipelined requests (RESP2/RESP3,
// inline) and runs them in order, consecutive reads after one read barrier
// and consecutive writes as one Raft entry (pump()).
//
// Dispatch, once per command (STYLE.md point 8): look the command up in the
// table, check arity and authentication, then
//   local     (PING, HELLO, CLIENT, INFO, ...): answered by this node
//   read-only: a linearizable read barrier (ReadIndex or lease) on this node,
//              then executed on the local state machine — followers serve
//              linearizable reads too
//   write:     proposed through Raft if this node leads; otherwise forwarded
//              to the leader, whose reply is relayed. No leader within the
//              request timeout: -CLUSTERDOWN.
//
// Thread-safety: everything runs on one io_context thread; the WAL sync runs
// on the cluster node's persist thread.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/hash.h"
#include "cluster/node.h"
#include "kv/commands.h"
#include "kv/state_machine.h"
#include "net/resp.h"
#include "server/config.h"
#include "storage/state_store.h"

namespace qkv::server {

struct ServerStats {
  uint64_t connections_received = 0;
  uint64_t connections_rejected = 0;
  uint64_t commands_processed = 0;
  uint64_t protocol_errors = 0;
  uint64_t forwarded = 0;
  uint64_t clusterdown = 0;
  uint64_t expired_keys_proposed = 0;
  uint64_t pubsub_published = 0;  // PUBLISH commands on this node
  uint64_t pubsub_received = 0;   // messages broadcast here by other nodes
  uint64_t pubsub_delivered = 0;  // messages written to local subscribers
  std::map<std::string, std::pair<uint64_t, uint64_t>, std::less<>> commandstats;  // calls, usec
};

class Server {
 public:
  Server(asio::io_context& io, ServerConfig config);
  ~Server();

  Status start();
  void stop();

  uint16_t client_port() const;
  uint16_t peer_port() const;
  uint16_t http_port() const;
  cluster::Node& node() { return *node_; }
  const ServerConfig& config() const { return cfg_; }

 private:
  struct Slot {
    bool done = false;
    std::string bytes;
  };
  using ReplyFn = std::function<void(std::string)>;
  // A command parsed from a connection and not started yet.
  struct Queued {
    const kv::CommandSpec* spec = nullptr;  // null: not a command of ours
    std::vector<std::string> args;
    ReplyFn reply;     // fills its slot, and ends the step if it is the last
    uint64_t seq = 0;  // its slot
  };
  struct Client {
    explicit Client(asio::io_context& io, asio::ip::tcp::socket s)
        : socket(std::move(s)), read_wake(io) {
      read_wake.expires_at(asio::steady_timer::time_point::max());
    }
    uint64_t id = 0;
    asio::ip::tcp::socket socket;
    net::RequestParser parser;
    net::Protocol proto = net::Protocol::kResp2;
    bool authed = false;
    std::string name;
    std::string addr;
    std::string_view last_cmd;  // a command table name (static)
    std::chrono::steady_clock::time_point created = std::chrono::steady_clock::now();
    std::deque<Slot> slots;
    uint64_t first_seq = 0;
    // A connection's commands run in the order they came (pump()): one step
    // at a time, a step being one command, or a run of consecutive reads
    // served after one read barrier, or a run of consecutive writes
    // proposed as one entry.
    // The reader holds the connection until it is closed and its queue has
    // run (commands received before a close still run, as in Redis).
    std::deque<Queued> queue;
    bool running = false;   // a step is in flight
    uint64_t step_end = 0;  // the slot of its last command
    bool pumping = false;   // pump() is on the stack
    // Replies ready to send, in order; `sending` holds the bytes of a write
    // in flight (at most one), started when a write could not finish at once.
    std::string out;
    std::string sending;
    bool writing = false;
    bool flush_queued = false;  // in Server::dirty_, flushed before the next poll
    // The reader waits on read_wake while its pipeline is full.
    asio::steady_timer read_wake;
    bool reader_paused = false;
    bool cleaned_up = false;   // close_client() ran
    bool stale_reads = false;  // READONLY: reads skip the read barrier
    // MULTI ... EXEC: the commands queued, their bytes, and whether one was
    // refused while queueing (EXEC then aborts).
    bool in_multi = false;
    bool multi_dirty = false;
    std::vector<std::vector<std::string>> multi_queue;
    size_t multi_bytes = 0;
    // Pub/sub subscriptions of this connection.
    std::set<std::string> channels;
    std::set<std::string> patterns;
    // WATCHed keys, each with the applied index when it was watched.
    std::vector<std::pair<std::string, uint64_t>> watched;
    // --- CLIENT TRACKING (notify.cc) ---
    struct Tracking {
      bool on = false;
      bool bcast = false;
      bool optin = false;
      bool optout = false;
      bool noloop = false;  // accepted, no effect (docs/COMMANDS.md)
      bool broken_redirect = false;
      int caching = 0;        // CLIENT CACHING for the next command: 1 YES, -1 NO, 0 none
      uint64_t redirect = 0;  // the client that receives the invalidations (0: this one)
      std::vector<std::string> prefixes;  // BCAST ("" = every key)
    } tracking;
    // --- end CLIENT TRACKING ---
    bool subscribed() const { return !channels.empty() || !patterns.empty(); }
    bool closing = false;  // close once everything queued is written
    bool quit = false;     // QUIT ran: nothing after it runs
    bool closed = false;
  };

  // Coroutines take the liveness token as a parameter: they may start after
  // the server is gone, and must not touch `this` then.
  using Alive = std::shared_ptr<bool>;
  asio::awaitable<void> accept_loop(Alive alive);
  asio::awaitable<void> client_reader(std::shared_ptr<Client> c, Alive alive);
  // Writes what a connection has ready: at once if the socket takes it,
  // else by one async write that goes on until `out` is empty (flush()).
  // Replies made while a handler runs are gathered (dirty_) and written when
  // it returns, so a pipelined batch leaves in one send.
  void queue_flush(const std::shared_ptr<Client>& c);
  void flush_dirty();
  void flush(const std::shared_ptr<Client>& c);
  // Closes a connection and forgets it (tracking, blocked commands); once.
  void close_client(const std::shared_ptr<Client>& c);
  asio::awaitable<void> http_accept_loop(Alive alive);
  asio::awaitable<void> http_session(asio::ip::tcp::socket s, Alive alive);

  // Command order on one connection (ARCHITECTURE decision 40). submit()
  // queues a parsed command (and runs it at once when nothing is ahead of it
  // and it cannot join a run); pump() starts the next step when the one in
  // flight is done.
  enum class Flow : uint8_t { kAlone, kRead, kWrite };
  Flow flow_of(const Client& c, const Queued& q) const;
  void submit(const std::shared_ptr<Client>& c, uint64_t seq, std::vector<std::string> args,
              ReplyFn reply);
  void pump(const std::shared_ptr<Client>& c);
  // A slot's reply was made: the step ends if it was the step's last.
  void step_done(const std::shared_ptr<Client>& c, uint64_t seq);
  // A run of two or more reads (one barrier) or writes (one entry); each
  // command gets its own reply.
  void run_batch(const std::shared_ptr<Client>& c, Flow flow, std::vector<Queued> run);
  // Runs one command; reply(bytes) is called exactly once, maybe later.
  void execute(const std::shared_ptr<Client>& c, const kv::CommandSpec* spec,
               std::vector<std::string> args, ReplyFn reply);
  // What every dispatched command counts (last command, CLIENT TRACKING,
  // commandstats): returns the reply to use.
  ReplyFn account(const std::shared_ptr<Client>& c, const kv::CommandSpec& spec,
                  const std::vector<std::string>& args, ReplyFn reply);
  void execute_local(const std::shared_ptr<Client>& c, const kv::CommandSpec& spec,
                     std::vector<std::string>& args, ReplyFn& reply);
  void execute_data(const kv::CommandSpec& spec, std::vector<std::string> args, net::Protocol proto,
                    bool stale_ok, ReplyFn reply);
  // A write: one command, or several proposed as one entry (a MULTI/EXEC
  // transaction, or a connection's pipelined run: kvpb.KvBatch.pipeline),
  // whose reply is the array of its commands' replies.
  using Commands = std::vector<std::vector<std::string>>;
  using Watches = std::vector<std::pair<std::string, uint64_t>>;
  enum class Unit : uint8_t { kCommand, kTransaction, kPipeline };
  void propose_or_forward(std::vector<std::string> args, net::Protocol proto, ReplyFn reply,
                          std::chrono::steady_clock::time_point deadline);
  // watches (may be null): the leader answers a null array instead of
  // proposing if an entry after a key's index changed it (transaction.cc).
  void propose_or_forward(Commands cmds, Unit unit, net::Protocol proto, ReplyFn reply,
                          std::chrono::steady_clock::time_point deadline,
                          std::shared_ptr<const Watches> watches = nullptr);
  // On the leader: did an entry of its log after a watched key's index
  // change that key? (True also when it cannot tell: log compacted.)
  bool watched_keys_changed(const Watches& watches);
  // Keys changed by serving blocked clients (a BLMOVE's destination), by
  // the index of the entry that served them, which does not name them;
  // known for entries from served_known_from_ on (not across a restart or
  // an installed snapshot). Entries below the log's first index are dropped.
  void note_served_changes(const kv::ApplyEvents& ev);
  std::unordered_map<std::string, uint64_t, KeyedHash, std::equal_to<>> served_changes_;
  uint64_t served_known_from_ = UINT64_MAX;  // set by start()
  uint64_t served_snapshots_seen_ = 0;
  static constexpr size_t kServedChangesPruneMin = 1024;  // entries before the first prune
  size_t served_prune_at_ = kServedChangesPruneMin;
  // Reads after one read barrier, run back to back (atomic: nothing is
  // applied in between); txn: the reply is the array of their replies.
  void read_with_barrier(std::shared_ptr<Commands> cmds, bool txn, net::Protocol proto,
                         ReplyFn reply, std::chrono::steady_clock::time_point deadline);
  // MULTI, EXEC, DISCARD, WATCH, UNWATCH, and queueing inside MULTI
  // (transaction.cc). True if it handled the command.
  bool handle_transaction(const std::shared_ptr<Client>& c, std::vector<std::string>& args,
                          const kv::CommandSpec* spec, ReplyFn& reply);
  // SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, PUBSUB, and
  // the RESP2 subscribed mode (pubsub.cc). True if it handled the command.
  bool handle_pubsub(const std::shared_ptr<Client>& c, std::vector<std::string>& args,
                     ReplyFn& reply);
  // Delivers a message to this node's subscribers; returns how many got it.
  size_t deliver(std::string_view channel, std::string_view message);
  // Appends out-of-band bytes (a push) to a connection, after its replies.
  void push(const std::shared_ptr<Client>& c, std::string bytes);
  std::map<std::string, std::map<uint64_t, std::weak_ptr<Client>>, std::less<>> channel_subs_;
  std::map<std::string, std::map<uint64_t, std::weak_ptr<Client>>, std::less<>> pattern_subs_;
  // What the local state machine's applies caused (events.cc): called on
  // the io thread after every apply that had events.
  void on_apply_events(kv::ApplyEvents& ev);
  // Keyspace notifications and CLIENT TRACKING (notify.cc).
  bool keyspace_events_wanted() const;
  void notify_keyspace(const kv::ApplyEvents& ev);
  void invalidate_tracked(const kv::ApplyEvents& ev);
  // notify-keyspace-events: CONFIG SET (empty, or the error), which keeps
  // the classes in their canonical form and tells the state machine whether
  // to collect notifications.
  std::string set_notify_keyspace_events(std::string_view flags);
  // tracking-table-max-keys changed: invalidates the oldest keys over it.
  void set_tracking_table_max_keys(uint64_t n);
  // CLIENT TRACKING | CACHING | GETREDIR | TRACKINGINFO (sub: lower case):
  // writes the reply to w, or returns an error (with its code).
  std::string client_tracking(const std::shared_ptr<Client>& c, const std::string& sub,
                              const std::vector<std::string>& args, net::ReplyWriter& w);
  // Called by execute() for every dispatched command: ends CLIENT CACHING's
  // effect, and for a read of a tracking client remembers its keys when the
  // reply is made (right after the read ran: nothing applied in between).
  void track_reads(const std::shared_ptr<Client>& c, const kv::CommandSpec& spec,
                   const std::vector<std::string>& args, ReplyFn& reply);
  // A connection closed: forgets its tracking state.
  void untrack_client(Client& c);
  void remember_tracked_keys(uint64_t client_id, const std::vector<std::string>& keys);
  // Sends one invalidation (keys, or null: everything) for a tracking client.
  void send_invalidation(const std::shared_ptr<Client>& c,
                         const std::vector<std::string_view>* keys);
  void invalidate_tracked_key(std::string_view key);
  std::shared_ptr<Client> live_client(uint64_t id) const;
  // The default mode's table: key -> the clients that read it, oldest first
  // (bounded by tracking-table-max-keys); every tracking client; BCAST ones.
  struct TrackedKey {
    std::vector<uint64_t> clients;
    std::list<const std::string*>::iterator age;
  };
  std::unordered_map<std::string, TrackedKey, KeyedHash, std::equal_to<>> tracked_keys_;
  std::list<const std::string*> tracked_order_;
  std::map<uint64_t, std::weak_ptr<Client>> tracking_clients_;
  std::map<uint64_t, std::weak_ptr<Client>> bcast_clients_;
  // A snapshot installed from a peer replaces the state without apply
  // events: while clients track, a timer looks for one and then tells every
  // tracking client to drop everything, as after a FLUSHALL.
  void tracking_tick();
  void invalidate_all_tracked();
  uint64_t snapshots_installed() const;
  std::unique_ptr<asio::steady_timer> tracking_timer_;
  uint64_t snapshots_seen_ = 0;
  // Blocked clients (blocking.cc; kv/waiters.h). A top-level blocking
  // command waits in the replicated state under an id of this node; the
  // node answers it from its own applies (ApplyEvents::served).
  bool execute_blocking(const std::shared_ptr<Client>& c, std::vector<std::string>& args,
                        ReplyFn reply);
  void serve_blocked(kv::ApplyEvents& ev);
  // Returns whether the client had a blocked command (its reply is dropped).
  bool unblock_client(const Client& c);
  void blocking_tick();
  struct Blocked {
    uint64_t client_id = 0;
    ReplyFn reply;
    bool queued = false;  // `block` answered: it waits in the replicated state
  };
  // INFO clients: this node's clients waiting in the replicated state.
  size_t blocked_clients() const;
  std::map<std::string, Blocked> blocked_;  // by waiter id
  uint64_t next_waiter_ = 1;
  bool timers_inflight_ = false;
  bool stale_waiters_dropped_ = false;
  std::chrono::steady_clock::time_point next_renewal_{};
  // The leader's side of a transaction a follower forwarded.
  using ForwardAnswer = std::function<void(char kind, std::string bytes)>;
  void forwarded_transaction(netpb::Forward&& f, ForwardAnswer answer);
  // How the leader answers a forwarded proposal: ok_kind + the result, 'A'
  // (ask again) when certainly not applied, or 'R' + an error.
  static cluster::Node::ProposeCallback answer_proposal(ForwardAnswer answer, char ok_kind);
  // RAFT admin commands (admin.cc).
  static bool is_admin_change(const std::vector<std::string>& args);
  void execute_admin(std::vector<std::string> args, net::Protocol proto, ReplyFn reply);
  void run_admin_change(std::vector<std::string> args, ReplyFn reply);
  void retry_later(Commands cmds, Unit unit, std::shared_ptr<const Watches> watches,
                   net::Protocol proto, ReplyFn reply,
                   std::chrono::steady_clock::time_point deadline);
  bool fatal() const;
  std::string fatal_error_reply() const;  // what a command gets once fatal()
  void on_forward(uint64_t from, netpb::Forward&& f);
  void expire_tick();
  int64_t now_ms() const;
  std::string info(const std::string& section, net::Protocol proto);
  std::string metrics();
  std::string error_reply(net::Protocol proto, std::string_view msg);
  void finish_slot(const std::shared_ptr<Client>& c, size_t seq, std::string bytes);

  asio::io_context& io_;
  ServerConfig cfg_;
  std::unique_ptr<storage::StateStore> store_;
  kv::KvStateMachine* sm_ = nullptr;  // owned by the node's group
  std::unique_ptr<cluster::Node> node_;
  std::unique_ptr<asio::ip::tcp::acceptor> acceptor_;
  std::unique_ptr<asio::ip::tcp::acceptor> http_acceptor_;
  asio::steady_timer expire_timer_;
  std::map<uint64_t, std::weak_ptr<Client>> clients_;
  // Closed clients whose queue still runs (their readers wait for it):
  // stop() wakes them.
  std::vector<std::weak_ptr<Client>> draining_;
  std::vector<std::shared_ptr<Client>> dirty_;
  bool flush_posted_ = false;
  uint64_t next_client_id_ = 1;
  uint64_t next_forward_id_ = 1;
  struct Forwarded {
    Commands cmds;
    Unit unit = Unit::kCommand;
    std::shared_ptr<const Watches> watches;
    net::Protocol proto = net::Protocol::kResp2;
    ReplyFn reply;
    std::chrono::steady_clock::time_point deadline;
  };
  std::map<uint64_t, Forwarded> forwarded_;
  ServerStats stats_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  // INFO: a random id of this process (Redis's run_id) and the peak RSS seen.
  std::string run_id_ = make_run_id();
  uint64_t peak_rss_ = 0;
  static std::string make_run_id();
  bool stopped_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace qkv::server
