// Fuzz target for the RESP codec. The first byte picks the limits (bit 0:
// small ones, so every limit is reached), the authentication state (bit 1)
// and the read sizes (bit 2: tiny); the rest is the input, given to both
// parsers. Checks:
//   - nothing crashes, and memory stays proportional to the input;
//   - the outcome (requests or replies, then the error or the leftover) is the
//     same whether the input arrives at once, in random reads, or byte by byte;
//   - every returned request respects the limits;
//   - requests re-encoded as multibulks parse back to the same requests;
//   - replies re-encoded in RESP3 parse back to the same trees, their RESP2
//     encoding parses too, and framing-only mode finds the same replies;
//   - format_double reads back as the same double.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "net/resp.h"

namespace {

using namespace qkv::net;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "resp_fuzz: %s\n", what);
    std::abort();
  }
}

struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
};

uint64_t hash(std::string_view s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

RequestLimits request_limits(bool small) {
  RequestLimits l;
  if (small) {
    l.bulk_bytes_max = 64;
    l.args_max = 8;
    l.inline_bytes_max = 128;
    l.query_buffer_bytes_max = 512;
    l.unauthenticated_args_max = 3;
    l.unauthenticated_bulk_bytes_max = 16;
  }
  return l;
}

ReplyLimits reply_limits(bool small) {
  ReplyLimits l;
  if (small) {
    l.bulk_bytes_max = 64;
    l.line_bytes_max = 64;
    l.aggregate_len_max = 16;
    l.depth_max = 4;
    l.values_max = 32;
    l.reply_bytes_max = 1024;
  }
  return l;
}

// Read sizes: 0 = everything at once, 1 = byte by byte, else random up to `max`.
struct Splitter {
  size_t mode;
  size_t max;
  Rng rng;
  size_t next(size_t left) {
    if (mode == 0) return left;
    if (mode == 1) return 1;
    return std::min<size_t>(left, 1 + rng.next() % max);
  }
};

// ---------------------------------------------------------------------------

struct RequestOutcome {
  std::vector<std::vector<std::string>> requests;
  ProtocolError error = ProtocolError::kNone;
  std::string error_text;
  size_t buffered = 0;
  bool operator==(const RequestOutcome&) const = default;
};

RequestOutcome run_requests(std::string_view in, const RequestLimits& limits, bool authenticated,
                            Splitter split) {
  RequestParser p(limits);
  p.set_authenticated(authenticated);
  RequestOutcome out;
  size_t at = 0;
  bool more = true;
  while (more) {
    const size_t n = at < in.size() ? split.next(in.size() - at) : 0;
    auto room = p.prepare(n);
    check(room.size() >= n, "prepare gave less room than asked");
    if (n > 0) std::memcpy(room.data(), in.data() + at, n);
    p.commit(n);
    at += n;
    check(p.TEST_capacity() <= 4 * (in.size() + 64) + InputBuffer::kInitialBytes,
          "request buffer out of proportion to the input");
    for (;;) {
      const Parsed r = p.next();
      if (r == Parsed::kNeedMore) break;
      if (r == Parsed::kError) {
        out.error = p.error_kind();
        out.error_text = p.error();
        check(out.error != ProtocolError::kNone &&
                  out.error_text.rfind("ERR Protocol error: ", 0) == 0,
              "bad error text");
        check(p.next() == Parsed::kError, "an error must be final");
        return out;
      }
      const auto args = p.args();
      check(!args.empty(), "empty request returned");
      const uint64_t arg_max = std::max(limits.bulk_bytes_max, limits.inline_bytes_max);
      check(args.size() <= std::max<uint64_t>(limits.args_max, limits.inline_bytes_max / 2 + 1),
            "too many arguments");
      std::vector<std::string> copy;
      for (std::string_view a : args) {
        check(a.size() <= arg_max, "argument longer than the limits allow");
        copy.emplace_back(a);
      }
      out.requests.push_back(std::move(copy));
    }
    more = at < in.size();
  }
  out.buffered = p.buffered_bytes();
  check(out.buffered <= limits.query_buffer_bytes_max, "incomplete request beyond the query limit");
  return out;
}

void fuzz_requests(std::string_view in, bool small, bool authenticated, bool tiny_reads,
                   uint64_t seed) {
  const RequestLimits limits = request_limits(small);
  const RequestOutcome whole = run_requests(in, limits, authenticated, {0, 0, {seed}});
  const RequestOutcome split =
      run_requests(in, limits, authenticated, {2, tiny_reads ? 7u : 4096u, {seed + 1}});
  check(split == whole, "request outcome depends on the read sizes");
  if (in.size() <= 4096) {
    check(run_requests(in, limits, authenticated, {1, 1, {seed}}) == whole,
          "request outcome differs byte by byte");
  }
  // Differential: the requests, re-encoded as multibulks, parse back the same.
  std::string again;
  for (const auto& r : whole.requests) {
    std::vector<std::string_view> v(r.begin(), r.end());
    append_command(&again, v);
  }
  const RequestOutcome back = run_requests(again, RequestLimits{}, true, {2, 4096, {seed + 2}});
  check(back.error == ProtocolError::kNone && back.buffered == 0,
        "re-encoded requests do not parse");
  check(back.requests == whole.requests, "re-encoded requests parse differently");
}

// ---------------------------------------------------------------------------

struct ReplyOutcome {
  std::vector<Value> values;
  std::vector<std::string> raws;
  std::string error;
  size_t buffered = 0;
  bool operator==(const ReplyOutcome&) const = default;
};

// Nesting as the parser counts it: an aggregate's elements, and the
// attribute before a value, are one level down.
size_t depth_of(const Value& v) {
  size_t d = 0;
  if (v.is_aggregate()) {
    size_t c = 0;
    for (const Value& e : v.elements) c = std::max(c, depth_of(e));
    d = 1 + c;
  }
  if (!v.attributes.empty()) {
    size_t c = 0;
    for (const Value& e : v.attributes) c = std::max(c, depth_of(e));
    d = std::max(d, 1 + c);
  }
  return d;
}

ReplyOutcome run_replies(std::string_view in, const ReplyLimits& limits, bool tree,
                         Splitter split) {
  ReplyParser p(limits, tree);
  ReplyOutcome out;
  size_t at = 0;
  bool more = true;
  while (more) {
    const size_t n = at < in.size() ? split.next(in.size() - at) : 0;
    auto room = p.prepare(n);
    if (n > 0) std::memcpy(room.data(), in.data() + at, n);
    p.commit(n);
    at += n;
    for (;;) {
      const Parsed r = p.next();
      if (r == Parsed::kNeedMore) break;
      if (r == Parsed::kError) {
        out.error = p.error();
        check(!out.error.empty(), "reply error without text");
        return out;
      }
      check(p.raw().size() <= limits.reply_bytes_max, "reply longer than reply_bytes_max");
      out.raws.emplace_back(p.raw());
      if (tree) {
        check(depth_of(p.value()) <= limits.depth_max, "reply nested deeper than depth_max");
        out.values.push_back(std::move(p.value()));
      }
    }
    more = at < in.size();
  }
  out.buffered = p.buffered_bytes();
  return out;
}

// RESP3 has one null: re-encoding turns $-1 and *-1 into _.
void normalize_nulls(Value* v) {
  if (v->is_null()) v->type = Type::kNull;
  for (Value& e : v->elements) normalize_nulls(&e);
  for (Value& e : v->attributes) normalize_nulls(&e);
}

void fuzz_replies(std::string_view in, bool small, bool tiny_reads, uint64_t seed) {
  const ReplyLimits limits = reply_limits(small);
  const ReplyOutcome whole = run_replies(in, limits, true, {0, 0, {seed}});
  check(run_replies(in, limits, true, {2, tiny_reads ? 7u : 4096u, {seed + 3}}) == whole,
        "reply outcome depends on the read sizes");
  if (in.size() <= 4096) {
    check(run_replies(in, limits, true, {1, 1, {seed}}) == whole,
          "reply outcome differs byte by byte");
  }
  // The replies are the input's prefix, back to back.
  std::string joined;
  for (const auto& r : whole.raws) joined += r;
  check(in.substr(0, joined.size()) == joined, "raw replies are not the input");
  // Framing only finds the same replies (values_max applies to trees only).
  if (whole.error.find("values_max") == std::string::npos) {
    const ReplyOutcome frames = run_replies(in, limits, false, {2, 64, {seed + 4}});
    check(frames.raws == whole.raws && frames.error == whole.error, "framing mode differs");
  }
  for (const Value& v : whole.values) {
    for (Protocol proto : {Protocol::kResp3, Protocol::kResp2}) {
      std::string out;
      ReplyWriter w(&out, proto);
      w.value(v);
      const ReplyOutcome back = run_replies(out, ReplyLimits{}, true, {2, 64, {seed + 5}});
      check(back.error.empty() && back.values.size() == 1 && back.buffered == 0,
            "a re-encoded reply does not parse");
      if (proto == Protocol::kResp3) {
        Value a = v, b = back.values[0];
        normalize_nulls(&a);
        normalize_nulls(&b);
        check(a == b, "a reply re-encoded in RESP3 parses differently");
      }
    }
  }
}

void fuzz_numbers(std::string_view in) {
  if (in.size() < 8) return;
  double d;
  std::memcpy(&d, in.data(), sizeof(d));
  char buf[kDoubleChars + 1];
  const size_t n = format_double(d, buf);
  check(n <= kDoubleChars, "format_double too long");
  buf[n] = '\0';
  if (std::isfinite(d)) check(std::strtod(buf, nullptr) == d, "format_double does not round-trip");
  (void)format_long_double(static_cast<long double>(d), LongDoubleFormat::kHuman);
  (void)format_long_double(static_cast<long double>(d), LongDoubleFormat::kAuto);
  int64_t v = 0;
  if (parse_int64(in.substr(0, 20), &v)) {
    check(std::to_string(v) == in.substr(0, 20), "parse_int64 accepted a non-canonical integer");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  const uint64_t seed = hash(in) ^ mode;
  const bool small = mode & 1, unauthenticated = mode & 2, tiny_reads = mode & 4;
  fuzz_requests(in, small, !unauthenticated, tiny_reads, seed);
  fuzz_replies(in, small, tiny_reads, seed);
  fuzz_numbers(in);
  return 0;
}
