// The Lua script engine of one state machine (EVAL, EVALSHA, SCRIPT):
// implemented in script_commands.cc. The state machine owns one and hands it
// to every command through CommandContext::scripts.
#pragma once

#include <memory>

#include "kv/options.h"

namespace qkv::kv {

class ScriptEngine;
struct ScriptEngineDeleter {
  void operator()(ScriptEngine* e) const;
};
using ScriptEnginePtr = std::unique_ptr<ScriptEngine, ScriptEngineDeleter>;
ScriptEnginePtr make_script_engine(const KvOptions& options);

}  // namespace qkv::kv
