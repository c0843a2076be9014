// The server's side of ApplyEvents (kv/events.h): every node acts on the
// events of its own applies for its own clients.
#include "server/server.h"

namespace qkv::server {

void Server::on_apply_events(kv::ApplyEvents& ev) {
  if (!ev.served_changes.empty()) note_served_changes(ev);
  if (!ev.served.empty()) serve_blocked(ev);
  if (!ev.keyspace.empty()) notify_keyspace(ev);
  if (!ev.keys_changed.empty() || ev.flushed) invalidate_tracked(ev);
}

}  // namespace qkv::server
