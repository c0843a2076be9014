// Keyspace notifications and CLIENT TRACKING.
//
// Every node applies every committed entry, so every node computes the same
// ApplyEvents (kv/events.h) and acts on them for its OWN clients: a
// subscriber or a tracking client connected to node B hears about a write
// made through node C when B applies it. Nothing here is broadcast or
// replicated (docs/ARCHITECTURE.md, decision 37).
//
// Keyspace notifications (Redis 7.0): each event of a class enabled by
// notify-keyspace-events is delivered to this node's subscribers as
// __keyspace@0__:<key> <event> (K) and __keyevent@0__:<event> <key> (E),
// patterns included, through the pub/sub delivery (pubsub.cc).
//
// CLIENT TRACKING (Redis 7.0's server-assisted client-side caching):
//   default mode: after a read of a tracking client is executed, its keys
//     are remembered with the client's id; the next change of such a key
//     sends one invalidation per client and forgets the key. The table
//     holds at most tracking-table-max-keys keys: beyond, the oldest are
//     invalidated early.
//   BCAST: every changed key starting with one of the client's prefixes is
//     sent, whether it read it or not; one message per client per apply.
//   FLUSHALL / FLUSHDB, or a snapshot installed from a peer (this node was
//     far behind: no apply tells which keys changed): every tracking client
//     gets a null invalidation.
// Invalidations go to the client itself as a RESP3 push
// (>2 "invalidate" [keys]) or, with REDIRECT, to the other connection: a
// RESP3 push, or a RESP2 pub/sub message on __redis__:invalidate if it is
// subscribed. NOLOOP is accepted and has no effect: a write reaches the
// other nodes as a Raft entry, without the identity of its writer.
#include <algorithm>

#include "server/reply_util.h"
#include "server/server.h"

namespace qkv::server {

namespace {

// notify-keyspace-events bits: kv::NotifyClass's classes, plus ours.
constexpr uint32_t kNotifyKeyspace = 1u << 16;  // K
constexpr uint32_t kNotifyKeyevent = 1u << 17;  // E
constexpr uint32_t kNotifyModule = 1u << 18;    // d (no module ever sends one here)
constexpr uint32_t kNotifyAll = kv::kNotifyGeneric | kv::kNotifyString | kv::kNotifyList |
                                kv::kNotifySet | kv::kNotifyHash | kv::kNotifyZSet |
                                kv::kNotifyExpired | kv::kNotifyEvicted | kv::kNotifyStream |
                                kNotifyModule;  // A: every class but m and n

constexpr std::string_view kBadEventClass = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.";
constexpr std::string_view kInvalidateChannel = "__redis__:invalidate";

// The bits of a notify-keyspace-events string; false for an unknown letter.
bool parse_notify_flags(std::string_view s, uint32_t* flags) {
  uint32_t f = 0;
  for (char ch : s) {
    switch (ch) {
      case 'A':
        f |= kNotifyAll;
        break;
      case 'g':
        f |= kv::kNotifyGeneric;
        break;
      case '$':
        f |= kv::kNotifyString;
        break;
      case 'l':
        f |= kv::kNotifyList;
        break;
      case 's':
        f |= kv::kNotifySet;
        break;
      case 'h':
        f |= kv::kNotifyHash;
        break;
      case 'z':
        f |= kv::kNotifyZSet;
        break;
      case 'x':
        f |= kv::kNotifyExpired;
        break;
      case 'e':
        f |= kv::kNotifyEvicted;
        break;
      case 't':
        f |= kv::kNotifyStream;
        break;
      case 'm':
        f |= kv::kNotifyKeyMiss;
        break;
      case 'n':
        f |= kv::kNotifyNew;
        break;
      case 'd':
        f |= kNotifyModule;
        break;
      case 'K':
        f |= kNotifyKeyspace;
        break;
      case 'E':
        f |= kNotifyKeyevent;
        break;
      default:
        return false;
    }
  }
  *flags = f;
  return true;
}

// Redis's normalised spelling: "A" for every class of A, else the class
// letters in Redis's order, then K, E and m.
std::string notify_flags_string(uint32_t f) {
  std::string s;
  if ((f & kNotifyAll) == kNotifyAll) {
    s += 'A';
  } else {
    static constexpr std::pair<uint32_t, char> kLetters[] = {
        {kv::kNotifyGeneric, 'g'}, {kv::kNotifyString, '$'},  {kv::kNotifyList, 'l'},
        {kv::kNotifySet, 's'},     {kv::kNotifyHash, 'h'},    {kv::kNotifyZSet, 'z'},
        {kv::kNotifyExpired, 'x'}, {kv::kNotifyEvicted, 'e'}, {kv::kNotifyStream, 't'},
        {kNotifyModule, 'd'},      {kv::kNotifyNew, 'n'}};
    for (auto [bit, letter] : kLetters) {
      if (f & bit) s += letter;
    }
  }
  if (f & kNotifyKeyspace) s += 'K';
  if (f & kNotifyKeyevent) s += 'E';
  if (f & kv::kNotifyKeyMiss) s += 'm';
  return s;
}

uint32_t notify_flags_of(const std::string& s) {
  uint32_t f = 0;
  return parse_notify_flags(s, &f) ? f : 0;  // the config was validated
}

void bulk(std::string* out, std::string_view s) {
  *out += '$';
  *out += std::to_string(s.size());
  *out += "\r\n";
  out->append(s.data(), s.size());
  *out += "\r\n";
}

bool prefixes_overlap(std::string_view a, std::string_view b) {
  return a.starts_with(b) || b.starts_with(a);
}

}  // namespace

// ---------------------------------------------------------------------------
// Keyspace notifications

bool Server::keyspace_events_wanted() const {
  const uint32_t f = notify_flags_of(cfg_.notify_keyspace_events);
  return (f & (kNotifyKeyspace | kNotifyKeyevent)) != 0 &&
         (f & ~(kNotifyKeyspace | kNotifyKeyevent | kNotifyModule)) != 0;
}

std::string Server::set_notify_keyspace_events(std::string_view flags) {
  uint32_t f = 0;
  if (!parse_notify_flags(flags, &f)) {
    return "ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - " +
           std::string(kBadEventClass);
  }
  cfg_.notify_keyspace_events = notify_flags_string(f);
  if (sm_ != nullptr) sm_->set_keyspace_events(keyspace_events_wanted());
  return {};
}

void Server::notify_keyspace(const kv::ApplyEvents& ev) {
  const uint32_t f = notify_flags_of(cfg_.notify_keyspace_events);
  if ((f & (kNotifyKeyspace | kNotifyKeyevent)) == 0) return;
  if (channel_subs_.empty() && pattern_subs_.empty()) return;  // nobody listens here
  std::string channel;
  for (const kv::KeyspaceEvent& e : ev.keyspace) {
    if ((f & e.cls) == 0) continue;
    if (f & kNotifyKeyspace) {
      channel = "__keyspace@0__:";
      channel += e.key;
      deliver(channel, e.event);
    }
    if (f & kNotifyKeyevent) {
      channel = "__keyevent@0__:";
      channel += e.event;
      deliver(channel, e.key);
    }
  }
}

// ---------------------------------------------------------------------------
// CLIENT TRACKING: invalidations

std::shared_ptr<Server::Client> Server::live_client(uint64_t id) const {
  auto it = clients_.find(id);
  if (it == clients_.end()) return nullptr;
  auto c = it->second.lock();
  return c && !c->closed ? c : nullptr;
}

void Server::send_invalidation(const std::shared_ptr<Client>& c,
                               const std::vector<std::string_view>* keys) {
  std::shared_ptr<Client> target = c;
  const bool redirected = c->tracking.redirect != 0;
  if (redirected) {
    target = live_client(c->tracking.redirect);
    if (!target) {
      // The redirect target is gone: say so to a RESP3 client, as Redis.
      c->tracking.broken_redirect = true;
      if (c->proto == net::Protocol::kResp3) {
        std::string out = ">2\r\n";
        bulk(&out, "tracking-redir-broken");
        out += ':' + std::to_string(c->tracking.redirect) + "\r\n";
        push(c, std::move(out));
      }
      return;
    }
  }
  std::string out;
  if (target->proto == net::Protocol::kResp3) {
    out = ">2\r\n";
    bulk(&out, "invalidate");
  } else if (redirected && target->subscribed()) {
    out = "*3\r\n";
    bulk(&out, "message");
    bulk(&out, kInvalidateChannel);
  } else {
    return;  // RESP2 without a subscribed redirect target: no way to tell it
  }
  if (keys == nullptr) {
    // As Redis: the null in the tracking client's protocol.
    out += c->proto == net::Protocol::kResp3 ? "_\r\n" : "$-1\r\n";
  } else {
    out += '*' + std::to_string(keys->size()) + "\r\n";
    for (std::string_view k : *keys) bulk(&out, k);
  }
  push(target, std::move(out));
}

void Server::invalidate_tracked_key(std::string_view key) {
  auto it = tracked_keys_.find(key);
  if (it == tracked_keys_.end()) return;
  std::vector<uint64_t> ids = std::move(it->second.clients);
  const std::string k = it->first;
  tracked_order_.erase(it->second.age);
  tracked_keys_.erase(it);
  const std::vector<std::string_view> keys = {k};
  for (uint64_t id : ids) {
    auto c = live_client(id);
    // A client that turned tracking off, or on again in BCAST mode, no
    // longer wants the keys it read before (as Redis).
    if (!c || !c->tracking.on || c->tracking.bcast) continue;
    send_invalidation(c, &keys);
  }
}

void Server::invalidate_all_tracked() {
  // Everything changed: every tracking client drops its whole cache.
  for (auto it = tracking_clients_.begin(); it != tracking_clients_.end();) {
    auto c = it->second.lock();
    if (!c || c->closed || !c->tracking.on) {
      it = tracking_clients_.erase(it);
      continue;
    }
    send_invalidation(c, nullptr);
    ++it;
  }
  tracked_keys_.clear();
  tracked_order_.clear();
}

uint64_t Server::snapshots_installed() const {
  uint64_t n = 0;
  for (const auto& s : node_->snapshot_status()) n += s.received_total;
  return n;
}

void Server::tracking_tick() {
  if (stopped_ || tracking_clients_.empty()) {
    tracking_timer_.reset();
    return;
  }
  if (const uint64_t n = snapshots_installed(); n != snapshots_seen_) {
    snapshots_seen_ = n;
    invalidate_all_tracked();
  }
  tracking_timer_->expires_after(std::chrono::milliseconds(cfg_.expire_interval_ms));
  tracking_timer_->async_wait([this, alive = alive_](const asio::error_code& ec) {
    if (!ec && *alive) tracking_tick();
  });
}

void Server::invalidate_tracked(const kv::ApplyEvents& ev) {
  if (tracking_clients_.empty() && tracked_keys_.empty()) return;
  if (ev.flushed) {
    invalidate_all_tracked();
    return;
  }
  if (!tracked_keys_.empty()) {
    for (const std::string& key : ev.keys_changed) invalidate_tracked_key(key);
  }
  for (auto it = bcast_clients_.begin(); it != bcast_clients_.end();) {
    auto c = it->second.lock();
    if (!c || c->closed || !c->tracking.on || !c->tracking.bcast) {
      it = bcast_clients_.erase(it);
      continue;
    }
    std::vector<std::string_view> keys;
    for (const std::string& key : ev.keys_changed) {
      const bool match = std::any_of(c->tracking.prefixes.begin(), c->tracking.prefixes.end(),
                                     [&](const std::string& p) { return key.starts_with(p); });
      if (match && std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
    }
    if (!keys.empty()) send_invalidation(c, &keys);
    ++it;
  }
}

// ---------------------------------------------------------------------------
// CLIENT TRACKING: reads

void Server::track_reads(const std::shared_ptr<Client>& c, const kv::CommandSpec& spec,
                         const std::vector<std::string>& args, ReplyFn& reply) {
  Client::Tracking& t = c->tracking;
  if (!t.on) return;
  const int caching = t.caching;
  if (spec.name != "client") t.caching = 0;  // CLIENT CACHING covers the next command only
  if (t.bcast || !spec.is_readonly() || spec.handler == nullptr) return;
  if ((t.optin && caching != 1) || (t.optout && caching == -1)) return;
  auto v = views(args);
  std::vector<std::string> keys;
  for (size_t pos : kv::command_keys(spec, v)) keys.push_back(args[pos]);
  if (keys.empty()) return;
  // Remembered when the reply is made: right after the read ran, so a change
  // applied before it was served is already in the value the client caches,
  // and any later one is sent.
  std::weak_ptr<Client> wc = c;
  reply = [this, alive = alive_, wc, keys = std::move(keys),
           inner = std::move(reply)](std::string bytes) mutable {
    if (*alive) {
      auto cc = wc.lock();
      if (cc && !cc->closed && cc->tracking.on && !cc->tracking.bcast) {
        remember_tracked_keys(cc->id, keys);
      }
    }
    inner(std::move(bytes));
  };
}

void Server::remember_tracked_keys(uint64_t client_id, const std::vector<std::string>& keys) {
  for (const std::string& key : keys) {
    auto [it, added] = tracked_keys_.try_emplace(key);
    if (added) it->second.age = tracked_order_.insert(tracked_order_.end(), &it->first);
    auto& ids = it->second.clients;
    if (std::find(ids.begin(), ids.end(), client_id) == ids.end()) ids.push_back(client_id);
  }
  set_tracking_table_max_keys(cfg_.tracking_table_max_keys);
}

void Server::set_tracking_table_max_keys(uint64_t n) {
  cfg_.tracking_table_max_keys = n;
  // Over the limit: the oldest keys are invalidated now, so their readers
  // stop caching them (Redis evicts random keys; oldest is deterministic).
  while (n != 0 && tracked_keys_.size() > n) {
    const std::string key = *tracked_order_.front();
    invalidate_tracked_key(key);
  }
}

void Server::untrack_client(Client& c) {
  // Its keys in the default mode's table go when they are next changed or
  // evicted (a closed client is skipped), as in Redis.
  tracking_clients_.erase(c.id);
  bcast_clients_.erase(c.id);
  c.tracking = Client::Tracking{};
}

// ---------------------------------------------------------------------------
// CLIENT TRACKING | CACHING | GETREDIR | TRACKINGINFO

std::string Server::client_tracking(const std::shared_ptr<Client>& c, const std::string& sub,
                                    const std::vector<std::string>& args, net::ReplyWriter& w) {
  Client::Tracking& t = c->tracking;
  if (sub == "getredir") {
    if (args.size() != 2) return kv::arity_error("client|getredir");
    w.integer(t.on ? static_cast<int64_t>(t.redirect) : -1);
    return {};
  }
  if (sub == "trackinginfo") {
    if (args.size() != 2) return kv::arity_error("client|trackinginfo");
    std::vector<std::string_view> flags;
    if (!t.on) {
      flags.push_back("off");
    } else {
      flags.push_back("on");
      if (t.bcast) flags.push_back("bcast");
      if (t.optin) flags.push_back("optin");
      if (t.optout) flags.push_back("optout");
      if (t.optin && t.caching == 1) flags.push_back("caching-yes");
      if (t.optout && t.caching == -1) flags.push_back("caching-no");
      if (t.noloop) flags.push_back("noloop");
      if (t.broken_redirect) flags.push_back("broken_redirect");
    }
    w.map(3);
    w.bulk("flags");
    w.set(flags.size());
    for (auto f : flags) w.bulk(f);
    w.bulk("redirect");
    w.integer(t.on ? static_cast<int64_t>(t.redirect) : -1);
    w.bulk("prefixes");
    w.array(t.prefixes.size());
    for (const auto& p : t.prefixes) w.bulk(p);
    return {};
  }
  if (sub == "caching") {
    if (args.size() != 3) return kv::arity_error("client|caching");
    if (!t.on || !(t.optin || t.optout)) {
      return "ERR CLIENT CACHING can be called only when the client is in tracking mode with "
             "OPTIN or OPTOUT mode enabled";
    }
    const std::string opt = lower(args[2]);
    if (opt == "yes") {
      if (!t.optin)
        return "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.";
      t.caching = 1;
    } else if (opt == "no") {
      if (!t.optout)
        return "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.";
      t.caching = -1;
    } else {
      return std::string(kv::kErrSyntax);
    }
    w.ok();
    return {};
  }
  // CLIENT TRACKING <ON | OFF> [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]
  if (args.size() < 3) return kv::arity_error("client|tracking");
  bool bcast = false, optin = false, optout = false, noloop = false;
  uint64_t redirect = 0;
  std::vector<std::string> prefixes;
  for (size_t j = 3; j < args.size(); j++) {
    const std::string opt = lower(args[j]);
    const bool more = j + 1 < args.size();
    if (opt == "redirect" && more) {
      if (redirect != 0) return "ERR A client can only redirect to a single other client";
      int64_t id = 0;
      if (!net::parse_int64(args[++j], &id)) return std::string(kv::kErrNotInteger);
      // Checked now, although the target may go later (then the
      // invalidations are lost and the redirect reported broken).
      if (id <= 0 || !live_client(static_cast<uint64_t>(id))) {
        return "ERR The client ID you want redirect to does not exist";
      }
      redirect = static_cast<uint64_t>(id);
    } else if (opt == "bcast") {
      bcast = true;
    } else if (opt == "optin") {
      optin = true;
    } else if (opt == "optout") {
      optout = true;
    } else if (opt == "noloop") {
      noloop = true;
    } else if (opt == "prefix" && more) {
      prefixes.push_back(args[++j]);
    } else {
      return std::string(kv::kErrSyntax);
    }
  }
  const std::string mode = lower(args[2]);
  if (mode == "off") {
    untrack_client(*c);
    w.ok();
    return {};
  }
  if (mode != "on") return std::string(kv::kErrSyntax);
  if (!bcast && !prefixes.empty()) return "ERR PREFIX option requires BCAST mode to be enabled";
  if (t.on && t.bcast != bcast) {
    return "ERR You can't switch BCAST mode on/off before disabling tracking for this client, "
           "and then re-enabling it with a different mode.";
  }
  if (bcast && (optin || optout)) return "ERR OPTIN and OPTOUT are not compatible with BCAST";
  if (optin && optout) return "ERR You can't specify both OPTIN mode and OPTOUT mode";
  if (t.on && ((optin && t.optout) || (optout && t.optin))) {
    return "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, "
           "and then re-enabling it with a different mode.";
  }
  if (bcast) {
    // No two prefixes of one client may overlap: a key would be sent twice.
    for (size_t i = 0; i < prefixes.size(); i++) {
      for (const auto& old : t.prefixes) {
        if (prefixes_overlap(prefixes[i], old)) {
          return "ERR Prefix '" + prefixes[i] + "' overlaps with an existing prefix '" + old +
                 "'. Prefixes for a single client must not overlap.";
        }
      }
      for (size_t j = 0; j < prefixes.size(); j++) {
        if (i != j && prefixes_overlap(prefixes[i], prefixes[j])) {
          return "ERR Prefix '" + prefixes[i] + "' overlaps with another provided prefix '" +
                 prefixes[j] + "'. Prefixes for a single client must not overlap.";
        }
      }
    }
    if (prefixes.empty()) prefixes.emplace_back();  // every key
    for (auto& p : prefixes) {
      if (std::find(t.prefixes.begin(), t.prefixes.end(), p) == t.prefixes.end()) {
        t.prefixes.push_back(std::move(p));
      }
    }
    bcast_clients_[c->id] = c;
  }
  t.on = true;
  t.bcast = bcast;
  t.optin = optin;
  t.optout = optout;
  t.noloop = noloop;
  t.redirect = redirect;
  t.broken_redirect = false;
  tracking_clients_[c->id] = c;
  if (!tracking_timer_) {
    tracking_timer_ = std::make_unique<asio::steady_timer>(io_);
    snapshots_seen_ = snapshots_installed();
    tracking_tick();
  }
  w.ok();
  return {};
}

}  // namespace qkv::server
