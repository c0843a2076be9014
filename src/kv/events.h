// ApplyEvents: what applying a batch of entries caused that the node's
// server must act on, beyond the replies: keyspace notifications, keys
// changed (CLIENT TRACKING), and blocked clients served (BLPOP and friends,
// lock waiters). Every replica applies the same entries, so every node
// computes the same events and acts on them for its own clients: nothing
// here is broadcast or replicated.
//
// The state machine collects them only when the server asked for them
// (KvStateMachine::set_event_sink); commands add to them only through
// CommandContext::events, which is null for reads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace qkv::kv {

// Redis's keyspace notification classes (the letters of
// notify-keyspace-events).
enum NotifyClass : uint32_t {
  kNotifyGeneric = 1u << 0,  // g: DEL, EXPIRE, RENAME, ...
  kNotifyString = 1u << 1,   // $
  kNotifyList = 1u << 2,     // l
  kNotifySet = 1u << 3,      // s
  kNotifyHash = 1u << 4,     // h
  kNotifyZSet = 1u << 5,     // z
  kNotifyExpired = 1u << 6,  // x
  kNotifyEvicted = 1u << 7,  // e
  kNotifyStream = 1u << 8,   // t
  kNotifyKeyMiss = 1u << 9,  // m
  kNotifyNew = 1u << 10,     // n
};

struct KeyspaceEvent {
  NotifyClass cls;
  std::string event;  // "set", "del", "expired", "lpush", ...
  std::string key;
};

// A blocked client served by an applied entry: the waiter's id (chosen by
// the node that blocked it) and the reply it gets.
struct ServedWaiter {
  std::string waiter_id;
  std::string reply;
};

struct ApplyEvents {
  bool want_keyspace = false;          // collect `keyspace` (set by the state machine)
  std::vector<KeyspaceEvent> keyspace;  // in apply order
  std::vector<std::string> keys_changed;  // each key written or deleted, in order (may repeat)
  bool flushed = false;                   // FLUSHALL/FLUSHDB ran: every key changed
  std::vector<ServedWaiter> served;       // in the order they were served
  // Keys that serving waiters changed, with the index of the entry whose
  // push served them: a BLMOVE's destination is a key that entry never
  // names (WATCH, server/transaction.cc).
  std::vector<std::pair<uint64_t, std::string>> served_changes;

  bool empty() const {
    return keyspace.empty() && keys_changed.empty() && !flushed && served.empty() &&
           served_changes.empty();
  }
};

}  // namespace qkv::kv
