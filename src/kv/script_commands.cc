// EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT (the engine: script_engine.cc).
//
// The script cache is replicated data: SCRIPT LOAD and EVAL store the body
// under meta_key("script:" + sha1) (docs/KV_FORMAT.md), so EVALSHA finds it
// on every replica, after a failover and after a restart. The engine only
// caches compiled bytecode, content-addressed by the SHA-1, so a cache that
// differs between replicas changes nothing.
#include <string>

#include "kv/handlers.h"
#include "kv/script.h"
#include "kv/sha1.h"

namespace qkv::kv {

namespace {

constexpr std::string_view kErrNoScript = "NOSCRIPT No matching script. Please use EVAL.";

std::string script_key(std::string_view sha) {
  std::string name(kMetaScriptPrefix);
  name.append(sha);
  return meta_key(name);
}

// numkeys (args[2]) checked against the arguments, with Redis's errors.
bool parse_numkeys(CommandContext& ctx, Args args, size_t* numkeys) {
  int64_t n = 0;
  if (!parse_int_arg(ctx, args[2], &n)) return false;
  if (n > static_cast<int64_t>(args.size()) - 3) {
    ctx.out.error("ERR Number of keys can't be greater than number of args");
    return false;
  }
  if (n < 0) {
    ctx.out.error("ERR Number of keys can't be negative");
    return false;
  }
  *numkeys = static_cast<size_t>(n);
  return true;
}

bool check_body_size(CommandContext& ctx, std::string_view body) {
  if (body.size() <= ctx.options.script_bytes_max) return true;
  ctx.out.error("ERR script is longer than script-bytes-max (" +
                std::to_string(ctx.options.script_bytes_max) + " bytes)");
  return false;
}

bool engine_ready(CommandContext& ctx) {
  if (ctx.scripts != nullptr) return true;
  ctx.out.error("ERR scripting is not available here");
  return false;
}

// Stores the body (if not stored yet) when the command runs in the log.
void store_body(CommandContext& ctx, std::string_view sha, std::string_view body) {
  if (!ctx.ks.txn().writable()) return;
  const std::string key = script_key(sha);
  if (!ctx.ks.txn().get(key).has_value()) ctx.ks.txn().put(key, std::string(body));
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// EVAL script numkeys [key ...] [arg ...]; EVALSHA sha1 numkeys ...; and
// their _RO forms.
void eval_generic(CommandContext& ctx, Args args, bool by_sha, bool read_only) {
  size_t numkeys = 0;
  if (!parse_numkeys(ctx, args, &numkeys) || !engine_ready(ctx)) return;
  const Args keys = args.subspan(3, numkeys);
  const Args argv = args.subspan(3 + numkeys);
  if (!by_sha) {
    const std::string_view body = args[1];
    if (!check_body_size(ctx, body)) return;
    const std::string sha = sha1_hex(body);
    std::string error;
    if (!ctx.scripts->compile(sha, body, &error)) {
      ctx.out.error(error);
      return;
    }
    // EVAL registers the script, as in Redis; EVAL_RO (served by the read
    // path, which writes nothing) does not.
    if (!read_only) store_body(ctx, sha, body);
    ctx.scripts->run(ctx, sha, body, keys, argv, read_only);
    return;
  }
  const std::string sha = lower(args[1]);
  std::optional<std::string> body;
  if (sha.size() == 40) body = ctx.ks.txn().get(script_key(sha));
  if (!body.has_value()) {
    ctx.out.error(kErrNoScript);
    return;
  }
  ctx.scripts->run(ctx, sha, *body, keys, argv, read_only);
}

void script_help(CommandContext& ctx) {
  static constexpr std::string_view kLines[] = {
      "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "EXISTS <sha1> [<sha1> ...]",
      "    Return information about the existence of the scripts in the script cache.",
      "FLUSH [ASYNC|SYNC]",
      "    Flush the Lua scripts cache (replicated: every replica forgets them).",
      "KILL",
      "    Kill the currently executing Lua script (never needed here: a script",
      "    stops at script-instructions-max, so none is ever running).",
      "LOAD <script>",
      "    Load a script into the scripts cache without executing it.",
      "HELP",
      "    Prints this help.",
  };
  ctx.out.array(std::size(kLines));
  for (std::string_view line : kLines) ctx.out.simple_string(line);
}

}  // namespace

void cmd_eval(CommandContext& ctx, Args args) { eval_generic(ctx, args, false, false); }
void cmd_evalsha(CommandContext& ctx, Args args) { eval_generic(ctx, args, true, false); }
void cmd_eval_ro(CommandContext& ctx, Args args) { eval_generic(ctx, args, false, true); }
void cmd_evalsha_ro(CommandContext& ctx, Args args) { eval_generic(ctx, args, true, true); }

void eval_keys(Args args, std::vector<size_t>* out) {
  int64_t n = 0;
  if (args.size() < 3 || !net::parse_int64(args[2], &n) || n < 0 ||
      n > static_cast<int64_t>(args.size()) - 3) {
    return;
  }
  for (int64_t i = 0; i < n; i++) out->push_back(static_cast<size_t>(3 + i));
}

// SCRIPT LOAD script | EXISTS sha1 [sha1 ...] | FLUSH [ASYNC|SYNC] | KILL | HELP
void cmd_script(CommandContext& ctx, Args args) {
  const std::string_view sub = args[1];
  if (ieq(sub, "load")) {
    if (args.size() != 3) {
      ctx.out.error(arity_error("script|load"));
      return;
    }
    if (!engine_ready(ctx) || !check_body_size(ctx, args[2])) return;
    const std::string sha = sha1_hex(args[2]);
    std::string error;
    if (!ctx.scripts->compile(sha, args[2], &error)) {
      ctx.out.error(error);
      return;
    }
    store_body(ctx, sha, args[2]);
    ctx.out.bulk(sha);
  } else if (ieq(sub, "exists")) {
    if (args.size() < 3) {
      ctx.out.error(arity_error("script|exists"));
      return;
    }
    ctx.out.array(args.size() - 2);
    for (size_t i = 2; i < args.size(); i++) {
      const std::string sha = lower(args[i]);
      ctx.out.integer(sha.size() == 40 && ctx.ks.txn().get(script_key(sha)).has_value() ? 1 : 0);
    }
  } else if (ieq(sub, "flush")) {
    if (args.size() > 3 || (args.size() == 3 && !ieq(args[2], "sync") && !ieq(args[2], "async"))) {
      ctx.out.error("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
      return;
    }
    if (!ctx.ks.txn().writable()) {
      ctx.out.error("ERR SCRIPT FLUSH is a write");
      return;
    }
    const std::string first = meta_key(kMetaScriptPrefix);
    ctx.ks.txn().delete_range(first, prefix_end(first));
    if (ctx.scripts != nullptr) ctx.scripts->clear_cache();
    ctx.out.ok();
  } else if (ieq(sub, "kill")) {
    if (args.size() != 2) {
      ctx.out.error(arity_error("script|kill"));
      return;
    }
    ctx.out.error("NOTBUSY No scripts in execution right now.");
  } else if (ieq(sub, "help")) {
    if (args.size() != 2) {
      ctx.out.error(arity_error("script|help"));
      return;
    }
    script_help(ctx);
  } else {
    ctx.out.error(unknown_subcommand_error("script", sub));
  }
}

}  // namespace qkv::kv
