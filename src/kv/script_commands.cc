#include "kv/handlers.h"

namespace qkv::kv {}  // namespace qkv::kv
