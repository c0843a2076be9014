// Keyspace notifications and CLIENT TRACKING.
#include "server/server.h"

namespace qkv::server {

bool Server::keyspace_events_wanted() const { return false; }
void Server::notify_keyspace(const kv::ApplyEvents& /*ev*/) {}
void Server::invalidate_tracked(const kv::ApplyEvents& /*ev*/) {}

}  // namespace qkv::server
