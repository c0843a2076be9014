// The Lua script engine of one state machine (EVAL, EVALSHA, SCRIPT):
// implemented in script_engine.cc (the engine) and script_commands.cc (the
// commands). The state machine owns one and hands it to every command
// through CommandContext::scripts.
//
// Determinism (docs/ARCHITECTURE.md, decision 36). A script is one command
// of one Raft entry, and every replica runs it and must compute the same
// writes and the same reply. So each run gets a FRESH Lua state (nothing a
// script leaves behind can reach the next one, and the heap, hence the
// garbage collector and the memory limit, behave identically everywhere);
// the function is always loaded from its bytecode (compiled once, cached by
// SHA-1), so a replica with a warm cache and one without do exactly the same
// allocations; time is the entry's stamp; math.random restarts from the same
// seed at every run; tostring() of a table or function prints a per-run
// sequence number instead of an address; os, io, debug, require, loadfile,
// dofile, print, newproxy, getfenv and setfenv are absent, and loadstring /
// load refuse binary chunks.
//
// Limits (KvOptions, replicated): script_instructions_max Lua VM
// instructions (a count hook; a script cannot catch the error: once over,
// every later instruction raises it again), script_memory_bytes_max bytes of
// Lua heap (a counting allocator), script_reply_bytes_max bytes of reply.
// The cache of compiled bytecode is local memory (script_cache_entries_max,
// script_cache_bytes_max) and changes nothing observable.
//
// Not thread-safe (the node's io thread runs everything). Not reentrant: a
// script can never start a script (EVAL and SCRIPT are noscript; run()
// refuses anyway).
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/hash.h"
#include "kv/options.h"

namespace qkv::kv {

struct CommandContext;

// What a script's shebang line ("#!lua flags=no-writes,...") declares.
struct ScriptFlags {
  bool shebang = false;    // the body starts with "#!lua"
  bool no_writes = false;  // flags=no-writes: runs as a read-only script
};

class ScriptEngine {
 public:
  explicit ScriptEngine(const KvOptions& options);
  ~ScriptEngine();
  ScriptEngine(const ScriptEngine&) = delete;
  ScriptEngine& operator=(const ScriptEngine&) = delete;

  // Compiles `body` (whose SHA-1 is `sha`, 40 lower-case hex digits) into
  // the cache, if not there yet. False with the error reply's text in
  // *error ("ERR Error compiling script (new function): user_script:1:
  // ...", "ERR Unexpected flag in script shebang: x") if it does not
  // compile.
  bool compile(std::string_view sha, std::string_view body, std::string* error);

  // Runs the script: replies exactly one value to ctx.out. `read_only`:
  // EVAL_RO and EVALSHA_RO (or a body with flags=no-writes) may not call
  // write commands. Compiles the body first if it is not cached (a compile
  // error is the reply). Commands the script calls run against ctx.ks with
  // ctx.options, ctx.events and randomness derived from ctx.random.
  void run(CommandContext& ctx, std::string_view sha, std::string_view body,
           std::span<const std::string_view> keys, std::span<const std::string_view> argv,
           bool read_only);

  // Forgets every compiled script (SCRIPT FLUSH).
  void clear_cache();

  size_t TEST_cached_entries() const { return cache_.size(); }
  uint64_t TEST_compilations() const { return compilations_; }

  struct Run;  // one script run (script_engine.cc)

 private:
  struct Compiled {
    std::string bytecode;  // lua_dump of the body's main function
    ScriptFlags flags;
    std::list<std::string>::iterator lru;  // position in lru_ (front: most recent)
  };
  // The compiled body, from the cache or compiled now; null (and *error)
  // if it does not compile.
  const Compiled* compiled(std::string_view sha, std::string_view body, std::string* error);
  void evict();

  const KvOptions options_;  // a copy: the caller's may not outlive the engine
  std::unordered_map<std::string, Compiled, KeyedHash, std::equal_to<>> cache_;
  std::list<std::string> lru_;
  uint64_t cache_bytes_ = 0;
  uint64_t compilations_ = 0;
  bool running_ = false;
};

struct ScriptEngineDeleter {
  void operator()(ScriptEngine* e) const;
};
using ScriptEnginePtr = std::unique_ptr<ScriptEngine, ScriptEngineDeleter>;
ScriptEnginePtr make_script_engine(const KvOptions& options);

}  // namespace qkv::kv
