#include "kv/handlers.h"
#include "kv/script.h"

namespace qkv::kv {

class ScriptEngine {};

void ScriptEngineDeleter::operator()(ScriptEngine* e) const { delete e; }

ScriptEnginePtr make_script_engine(const KvOptions& /*options*/) {
  return ScriptEnginePtr(new ScriptEngine());
}

}  // namespace qkv::kv
