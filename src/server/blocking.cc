// Blocked clients: BLPOP and friends, LOCK ... WAIT.
#include "server/server.h"

namespace qkv::server {}  // namespace qkv::server
