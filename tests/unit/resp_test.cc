#include "net/resp.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <random>

namespace qkv::net {
namespace {

using Args = std::vector<std::string>;

// What a parser made of a whole input: the requests, then how it stopped.
struct RequestOutcome {
  std::vector<Args> requests;
  ProtocolError error = ProtocolError::kNone;
  std::string error_text;
  size_t buffered = 0;  // bytes left over (an incomplete request)
  bool operator==(const RequestOutcome&) const = default;
};

void drain(RequestParser& p, RequestOutcome* out) {
  for (;;) {
    Parsed r = p.next();
    if (r == Parsed::kNeedMore) return;
    if (r == Parsed::kError) {
      out->error = p.error_kind();
      out->error_text = p.error();
      return;
    }
    Args a;
    for (std::string_view v : p.args()) a.emplace_back(v);
    out->requests.push_back(std::move(a));
  }
}

// Feeds `input` in chunks of `chunk` bytes (0: all at once) through prepare/commit.
RequestOutcome parse_requests(std::string_view input, size_t chunk = 0, RequestLimits limits = {},
                              bool authenticated = true) {
  RequestParser p(limits);
  p.set_authenticated(authenticated);
  RequestOutcome out;
  if (chunk == 0) chunk = std::max<size_t>(input.size(), 1);
  for (size_t at = 0; at < input.size() && out.error == ProtocolError::kNone; at += chunk) {
    const size_t n = std::min(chunk, input.size() - at);
    auto room = p.prepare(n);
    std::memcpy(room.data(), input.data() + at, n);
    p.commit(n);
    drain(p, &out);
  }
  if (input.empty()) drain(p, &out);
  if (out.error == ProtocolError::kNone) out.buffered = p.buffered_bytes();
  return out;
}

// The outcome must not depend on how the input is split.
RequestOutcome parse_every_way(std::string_view input, RequestLimits limits = {},
                               bool authenticated = true) {
  RequestOutcome whole = parse_requests(input, 0, limits, authenticated);
  if (input.size() <= 300000) {
    EXPECT_EQ(parse_requests(input, 1, limits, authenticated), whole) << "byte by byte";
  }
  for (size_t chunk : {2, 3, 7, 64, 4096}) {
    EXPECT_EQ(parse_requests(input, chunk, limits, authenticated), whole) << "chunk " << chunk;
  }
  return whole;
}

std::vector<Args> requests(std::string_view input) {
  RequestOutcome o = parse_every_way(input);
  EXPECT_EQ(o.error, ProtocolError::kNone) << o.error_text;
  return o.requests;
}

std::string error_of(std::string_view input, RequestLimits limits = {}, bool authenticated = true) {
  RequestOutcome o = parse_every_way(input, limits, authenticated);
  EXPECT_NE(o.error, ProtocolError::kNone) << "no error for " << input.substr(0, 80);
  return o.error_text;
}

std::string mbulk(std::initializer_list<std::string_view> args) {
  std::string s;
  append_command(&s, args);
  return s;
}

// ---------------------------------------------------------------------------
// Multibulk requests

TEST(RequestParser, Multibulk) {
  EXPECT_EQ(requests("*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\n"),
            (std::vector<Args>{{"SET", "a", "b"}}));
  EXPECT_EQ(requests("*1\r\n$4\r\nPING\r\n"), (std::vector<Args>{{"PING"}}));
}

TEST(RequestParser, BinarySafeAndEmptyArguments) {
  std::string bin("a\r\nb\0c\n", 7);
  std::string in = mbulk({"SET", bin, ""});
  EXPECT_EQ(requests(in), (std::vector<Args>{{"SET", bin, ""}}));
  EXPECT_EQ(requests("*2\r\n$0\r\n\r\n$0\r\n\r\n"), (std::vector<Args>{{"", ""}}));
}

TEST(RequestParser, Pipelining) {
  std::string in;
  std::vector<Args> want;
  for (int i = 0; i < 1000; i++) {
    std::string k = "key:" + std::to_string(i), v(i % 50, 'v');
    in += mbulk({"SET", k, v});
    want.push_back({"SET", k, v});
    if (i % 7 == 0) {
      in += "GET " + k + "\r\n";
      want.push_back({"GET", k});
    }
  }
  EXPECT_EQ(requests(in), want);
}

TEST(RequestParser, EmptyAndNegativeMultibulkAreSkipped) {
  // Redis: *0 and *-N run nothing ("Negative multibulk length" test).
  EXPECT_EQ(requests("*0\r\n*-1\r\n*-10\r\n*1\r\n$4\r\nPING\r\n"), (std::vector<Args>{{"PING"}}));
}

TEST(RequestParser, IncompleteRequestWaits) {
  RequestOutcome o = parse_every_way("*2\r\n$3\r\nGET\r\n$3\r\nke");
  EXPECT_EQ(o.error, ProtocolError::kNone);
  EXPECT_TRUE(o.requests.empty());
  EXPECT_EQ(o.buffered, 19u);
  o = parse_every_way("*1\r\n$4\r\nPING\r\n*1\r");
  EXPECT_EQ(o.requests, (std::vector<Args>{{"PING"}}));
  EXPECT_EQ(o.buffered, 3u);
}

TEST(RequestParser, BytesAfterAnArgumentAndAfterCrAreSkippedLikeRedis) {
  // Redis takes the two bytes after an argument, and the byte after a header's
  // \r, as the line ending without looking at them.
  EXPECT_EQ(requests("*1\r\n$4\r\nPINGxx*1\rX$4\r\nPING\r\n"),
            (std::vector<Args>{{"PING"}, {"PING"}}));
}

// ---------------------------------------------------------------------------
// Inline requests

TEST(RequestParser, Inline) {
  EXPECT_EQ(requests("PING\r\n"), (std::vector<Args>{{"PING"}}));
  EXPECT_EQ(requests("SET a b\n"), (std::vector<Args>{{"SET", "a", "b"}}));
  EXPECT_EQ(requests("  SET \t a\v\fb   c  \r\n"), (std::vector<Args>{{"SET", "a\v\fb", "c"}}));
  EXPECT_EQ(requests("GET a\rb\r\n"), (std::vector<Args>{{"GET", "a", "b"}}));
}

TEST(RequestParser, InlineEmptyLinesAreSkipped) {
  EXPECT_EQ(requests("\r\n\n   \r\n\t\r\nPING\r\n"), (std::vector<Args>{{"PING"}}));
}

TEST(RequestParser, InlineDoubleQuotes) {
  EXPECT_EQ(requests("SET \"a b\" \"\"\r\n"), (std::vector<Args>{{"SET", "a b", ""}}));
  EXPECT_EQ(requests("ECHO \"\\n\\r\\t\\b\\a\\\\\\\"\\x41\\x4a\\x7e\\q\"\r\n"),
            (std::vector<Args>{{"ECHO", "\n\r\t\b\a\\\"AJ~q"}}));
  // \x without two hex digits is just 'x'.
  EXPECT_EQ(requests("ECHO \"\\xZZ\\x4\"\r\n"), (std::vector<Args>{{"ECHO", "xZZx4"}}));
  EXPECT_EQ(requests("ECHO \"\\x00\\xff\"\r\n"),
            (std::vector<Args>{{"ECHO", std::string("\0\xff", 2)}}));
}

TEST(RequestParser, InlineSingleQuotes) {
  EXPECT_EQ(requests("SET 'a b' 'it\\'s' 'x\\ny'\r\n"),
            (std::vector<Args>{{"SET", "a b", "it's", "x\\ny"}}));
}

TEST(RequestParser, InlineQuoteInsideAnArgument) {
  EXPECT_EQ(requests("SET a\"b c\" 'e'\n"), (std::vector<Args>{{"SET", "ab c", "e"}}));
  EXPECT_EQ(requests("SET x'y z'\n"), (std::vector<Args>{{"SET", "xy z"}}));
}

TEST(RequestParser, InlineNulEndsTheLineLikeRedis) {
  EXPECT_EQ(requests(std::string("SET a\0b c\r\nPING\r\n", 17)),
            (std::vector<Args>{{"SET", "a"}, {"PING"}}));
}

TEST(RequestParser, InlineUnbalancedQuotes) {
  const std::string want = "ERR Protocol error: unbalanced quotes in request";
  EXPECT_EQ(error_of("SET \"abc\r\n"), want);
  EXPECT_EQ(error_of("SET 'abc\r\n"), want);
  EXPECT_EQ(error_of("SET \"abc\"def\r\n"), want);  // a closing quote must end the argument
  EXPECT_EQ(error_of("SET 'abc'd\r\n"), want);
  EXPECT_EQ(error_of("SET \"abc\\\"\r\n"), want);
  EXPECT_EQ(error_of("set \"\"\"test-key\"\"\" test-value\r\nping\r\n"), want);  // Redis's test
  EXPECT_EQ(error_of(std::string("SET \"a\0b\"\r\n", 11)), want);  // NUL ends the line
}

// ---------------------------------------------------------------------------
// Errors, with Redis's texts

TEST(RequestParser, InvalidMultibulkLength) {
  const std::string want = "ERR Protocol error: invalid multibulk length";
  for (const char* in : {"*3000000000\r\n", "*1048577\r\n", "*abc\r\n", "*\r\n", "*01\r\n",
                         "*+1\r\n", "*-0\r\n", "* 1\r\n", "*1 \r\n", "*99999999999999999999\r\n"}) {
    EXPECT_EQ(error_of(in), want) << in;
  }
  EXPECT_EQ(parse_every_way("*1048576\r\n").error,
            ProtocolError::kNone);  // args_max itself is fine
}

TEST(RequestParser, ExpectedDollar) {
  // Redis's tests "Wrong multibulk payload header" and "Multi bulk request not
  // followed by bulk arguments".
  EXPECT_EQ(error_of("*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n"),
            "ERR Protocol error: expected '$', got 'f'");
  EXPECT_EQ(error_of("*1\r\nfoo\r\n"), "ERR Protocol error: expected '$', got 'f'");
  // CR and LF would break the error line: Redis prints them as spaces.
  EXPECT_EQ(error_of("*1\r\n\r\n"), "ERR Protocol error: expected '$', got ' '");
  EXPECT_EQ(error_of("*2\r\n$1\r\na\r\n:1\r\n"), "ERR Protocol error: expected '$', got ':'");
}

TEST(RequestParser, InvalidBulkLength) {
  const std::string want = "ERR Protocol error: invalid bulk length";
  for (const char* in :
       {"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n", "*1\r\n$2000000000\r\n", "*1\r\n$blabla\r\n",
        "*1\r\n$-1\r\n", "*1\r\n$00\r\n", "*1\r\n$\r\n", "*1\r\n$536870913\r\n"}) {
    EXPECT_EQ(error_of(in), want) << in;
  }
}

TEST(RequestParser, HugeBulkHeaderDoesNotAllocateUpFront) {
  // 512 MiB is allowed (proto-max-bulk-len), but nothing is reserved for it.
  RequestParser p;
  p.feed("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\nabc");
  EXPECT_EQ(p.next(), Parsed::kNeedMore);
  EXPECT_LE(p.TEST_capacity(), 64u << 10);
}

TEST(RequestParser, TooBigInline) {
  const std::string want = "ERR Protocol error: too big inline request";
  EXPECT_EQ(error_of(std::string(65537, 'A')), want);
  EXPECT_EQ(error_of(std::string(65536, 'A') + "\r\n"), want);  // the line counts its \r
  EXPECT_EQ(error_of(std::string(100000, 'A') + "\r\n"), want);
  EXPECT_EQ(parse_every_way(std::string(65536, 'A')).error, ProtocolError::kNone);
  RequestOutcome ok = parse_every_way("ECHO " + std::string(65530, 'B') + "\n");
  ASSERT_EQ(ok.requests.size(), 1u);
  EXPECT_EQ(ok.requests[0][1].size(), 65530u);
}

TEST(RequestParser, ProtocolDesyncRegressions) {
  // Redis's "Protocol desync regression test" inputs: garbage with no line
  // end is refused once it passes the inline limit.
  std::string tail(70000, 'A');
  EXPECT_EQ(error_of(std::string("\0", 1) + tail), "ERR Protocol error: too big inline request");
  EXPECT_EQ(error_of(std::string("*\0", 2) + tail),
            "ERR Protocol error: too big mbulk count string");
  EXPECT_EQ(error_of(std::string("$\0", 2) + tail), "ERR Protocol error: too big inline request");
  EXPECT_EQ(error_of("*1\r\n$" + tail), "ERR Protocol error: too big bulk count string");
}

TEST(RequestParser, Unauthenticated) {
  EXPECT_EQ(error_of("*11\r\n", {}, false), "ERR Protocol error: unauthenticated multibulk length");
  EXPECT_EQ(error_of("*1\r\n$16385\r\n", {}, false),
            "ERR Protocol error: unauthenticated bulk length");
  EXPECT_EQ(error_of("*1\r\n$100000000\r\n", {}, false),
            "ERR Protocol error: unauthenticated bulk length");
  std::string ten = "*10\r\n";
  for (int i = 0; i < 10; i++) ten += "$16384\r\n" + std::string(16384, 'x') + "\r\n";
  RequestOutcome o = parse_every_way(ten, {}, false);
  EXPECT_EQ(o.error, ProtocolError::kNone);
  EXPECT_EQ(o.requests.size(), 1u);
  EXPECT_EQ(parse_every_way("*-1\r\n*0\r\n", {}, false).error, ProtocolError::kNone);
  // Authenticated, the same requests are fine.
  EXPECT_EQ(parse_every_way("*11\r\n").error, ProtocolError::kNone);
  EXPECT_EQ(parse_every_way("*1\r\n$16385\r\n").error, ProtocolError::kNone);
}

TEST(RequestParser, AuthenticationTakesEffectAtTheNextRequest) {
  RequestParser p;
  p.set_authenticated(false);
  p.feed("*2\r\n$4\r\nAUTH\r\n$1\r\np\r\n*1\r\n$20000\r\n");
  ASSERT_EQ(p.next(), Parsed::kItem);
  p.set_authenticated(true);  // AUTH succeeded
  EXPECT_EQ(p.next(), Parsed::kNeedMore);
}

TEST(RequestParser, ConfiguredLimits) {
  RequestLimits l;
  l.args_max = 2;
  l.bulk_bytes_max = 3;
  l.inline_bytes_max = 10;
  EXPECT_EQ(error_of("*3\r\n", l), "ERR Protocol error: invalid multibulk length");
  EXPECT_EQ(parse_every_way("*2\r\n$3\r\nGET\r\n$3\r\nabc\r\n", l).requests.size(), 1u);
  EXPECT_EQ(error_of("*1\r\n$4\r\n", l), "ERR Protocol error: invalid bulk length");
  EXPECT_EQ(parse_every_way("0123456789\n", l).requests.size(), 1u);
  EXPECT_EQ(error_of("0123456789A\n", l), "ERR Protocol error: too big inline request");
  EXPECT_EQ(error_of("*00000000001\r\n", l), "ERR Protocol error: too big mbulk count string");
  EXPECT_EQ(error_of("*1\r\n$00000000001\r\n", l), "ERR Protocol error: too big bulk count string");
}

TEST(RequestParser, QueryBufferLimit) {
  const std::string want = "ERR Protocol error: query buffer limit reached";
  RequestLimits l;
  l.query_buffer_bytes_max = 30;
  const std::string exact = mbulk({"SET", "k", "01234"});  // 31 bytes
  ASSERT_EQ(exact.size(), 31u);
  EXPECT_EQ(error_of(exact, l), want);
  l.query_buffer_bytes_max = 31;
  EXPECT_EQ(parse_every_way(exact + exact, l).requests.size(), 2u);  // the limit is per request
  // A bulk that cannot fit is refused at its header.
  EXPECT_EQ(error_of("*1\r\n$30\r\n", l), want);
  // An inline request, or the garbage before its line end.
  EXPECT_EQ(error_of(std::string(40, 'x'), l), want);
}

TEST(RequestParser, ErrorIsFinal) {
  RequestParser p;
  p.feed("*1\r\nxx\r\n*1\r\n$4\r\nPING\r\n");
  EXPECT_EQ(p.next(), Parsed::kError);
  EXPECT_EQ(p.error_kind(), ProtocolError::kExpectedDollar);
  p.feed("PING\r\n");
  EXPECT_EQ(p.next(), Parsed::kError);
  EXPECT_EQ(p.buffered_bytes(), 0u);
  p.reset();
  p.feed("PING\r\n");
  EXPECT_EQ(p.next(), Parsed::kItem);
  EXPECT_EQ(p.error(), "");
}

TEST(RequestParser, ViewsStayValidUntilTheNextFeed) {
  RequestParser p;
  p.feed(mbulk({"SET", "a", "1"}) + "GET \"b c\"\r\n" + mbulk({"DEL", "x"}));
  std::vector<std::vector<std::string_view>> got;
  while (p.next() == Parsed::kItem) got.emplace_back(p.args().begin(), p.args().end());
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0][2], "1");
  EXPECT_EQ(got[1][1], "b c");
  EXPECT_EQ(got[2][1], "x");
}

TEST(RequestParser, LargeArgumentInChunks) {
  std::string value(10 << 20, '\0');
  for (size_t i = 0; i < value.size(); i++) value[i] = static_cast<char>(i * 7);
  const std::string in = mbulk({"SET", "big", value}) + "PING\r\n";
  RequestParser p;
  std::vector<Args> got;
  for (size_t at = 0; at < in.size(); at += 16384) {
    const size_t n = std::min<size_t>(16384, in.size() - at);
    auto room = p.prepare(16384);
    std::memcpy(room.data(), in.data() + at, n);
    p.commit(n);
    while (p.next() == Parsed::kItem) got.emplace_back(p.args().begin(), p.args().end());
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(got[0][2] == value);
  EXPECT_LE(p.TEST_capacity(), 2 * in.size());
  // The buffer shrinks back once small requests follow.
  for (int i = 0; i < 3; i++) {
    auto room = p.prepare(16384);
    std::memcpy(room.data(), "PING\r\n", 6);
    p.commit(6);
    ASSERT_EQ(p.next(), Parsed::kItem);
  }
  EXPECT_LE(p.TEST_capacity(), InputBuffer::kKeepBytes);
}

TEST(RequestParser, SteadyPipelineKeepsASmallBuffer) {
  std::string in;
  for (int i = 0; i < 20000; i++) in += mbulk({"SET", "key:" + std::to_string(i), "value"});
  RequestParser p;
  size_t n_requests = 0, max_cap = 0;
  for (size_t at = 0; at < in.size(); at += 16384) {
    const size_t n = std::min<size_t>(16384, in.size() - at);
    auto room = p.prepare(16384);
    std::memcpy(room.data(), in.data() + at, n);
    p.commit(n);
    while (p.next() == Parsed::kItem) n_requests++;
    max_cap = std::max(max_cap, p.TEST_capacity());
  }
  EXPECT_EQ(n_requests, 20000u);
  EXPECT_LE(max_cap, 32u << 10);
}

TEST(RequestParser, ProtocolErrorTexts) {
  EXPECT_STREQ(protocol_error_text(ProtocolError::kInvalidBulkLength),
               "ERR Protocol error: invalid bulk length");
  EXPECT_STREQ(protocol_error_text(ProtocolError::kNone), "");
}

TEST(ParseInt64, LikeRedisString2ll) {
  int64_t v = 0;
  EXPECT_TRUE(parse_int64("0", &v));
  EXPECT_EQ(v, 0);
  EXPECT_TRUE(parse_int64("-1", &v));
  EXPECT_EQ(v, -1);
  EXPECT_TRUE(parse_int64("9223372036854775807", &v));
  EXPECT_EQ(v, std::numeric_limits<int64_t>::max());
  EXPECT_TRUE(parse_int64("-9223372036854775808", &v));
  EXPECT_EQ(v, std::numeric_limits<int64_t>::min());
  for (const char* bad : {"", "-", "+1", "01", "-0", "00", " 1", "1 ", "9223372036854775808",
                          "-9223372036854775809", "18446744073709551616", "1a", "0x1"}) {
    EXPECT_FALSE(parse_int64(bad, &v)) << bad;
  }
}

// ---------------------------------------------------------------------------
// Reply writer

std::string write2(const std::function<void(ReplyWriter&)>& f) {
  std::string out;
  ReplyWriter w(&out, Protocol::kResp2);
  f(w);
  return out;
}

std::string write3(const std::function<void(ReplyWriter&)>& f) {
  std::string out;
  ReplyWriter w(&out, Protocol::kResp3);
  f(w);
  return out;
}

TEST(ReplyWriter, Resp2Types) {
  EXPECT_EQ(write2([](ReplyWriter& w) { w.ok(); }), "+OK\r\n");
  EXPECT_EQ(write2([](ReplyWriter& w) { w.simple_string("PONG"); }), "+PONG\r\n");
  EXPECT_EQ(write2([](ReplyWriter& w) { w.error("ERR unknown command 'foo'"); }),
            "-ERR unknown command 'foo'\r\n");
  EXPECT_EQ(write2([](ReplyWriter& w) {
              w.error("WRONGTYPE Operation against a key holding the wrong kind of value");
            }),
            "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
  EXPECT_EQ(write2([](ReplyWriter& w) { w.integer(-42); }), ":-42\r\n");
  EXPECT_EQ(write2([](ReplyWriter& w) { w.integer(std::numeric_limits<int64_t>::min()); }),
            ":-9223372036854775808\r\n");
  EXPECT_EQ(write2([](ReplyWriter& w) { w.bulk("hello"); }), "$5\r\nhello\r\n");
  EXPECT_EQ(write2([](ReplyWriter& w) { w.bulk(""); }), "$0\r\n\r\n");
  EXPECT_EQ(write2([](ReplyWriter& w) { w.bulk_integer(42); }), "$2\r\n42\r\n");
  EXPECT_EQ(write2([](ReplyWriter& w) { w.null(); }), "$-1\r\n");
  EXPECT_EQ(write2([](ReplyWriter& w) { w.null_array(); }), "*-1\r\n");
  EXPECT_EQ(write2([](ReplyWriter& w) {
              w.array(2);
              w.bulk("a");
              w.integer(1);
            }),
            "*2\r\n$1\r\na\r\n:1\r\n");
  EXPECT_EQ(write2([](ReplyWriter& w) {
              w.map(1);
              w.bulk("k");
              w.bulk("v");
            }),
            "*2\r\n$1\r\nk\r\n$1\r\nv\r\n");
  EXPECT_EQ(write2([](ReplyWriter& w) { w.set(0); }), "*0\r\n");
  EXPECT_EQ(write2([](ReplyWriter& w) {
              w.push(3);
              w.bulk("message");
              w.bulk("ch");
              w.bulk("hi");
            }),
            "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
  EXPECT_EQ(write2([](ReplyWriter& w) { w.double_value(1.5); }), "$3\r\n1.5\r\n");
  EXPECT_EQ(write2([](ReplyWriter& w) { w.boolean(true); }), ":1\r\n");
  EXPECT_EQ(write2([](ReplyWriter& w) { w.boolean(false); }), ":0\r\n");
  EXPECT_EQ(write2([](ReplyWriter& w) { w.big_number("1234567999999999999999999999999999999"); }),
            "$37\r\n1234567999999999999999999999999999999\r\n");
  EXPECT_EQ(write2([](ReplyWriter& w) { w.verbatim("This is a verbatim\nstring"); }),
            "$25\r\nThis is a verbatim\nstring\r\n");
  EXPECT_EQ(write2([](ReplyWriter& w) { w.blob_error("SYNTAX invalid\r\nsyntax"); }),
            "-SYNTAX invalid  syntax\r\n");
  EXPECT_EQ(write2([](ReplyWriter& w) { EXPECT_FALSE(w.attribute(1)); }), "");
}

TEST(ReplyWriter, Resp3Types) {
  EXPECT_EQ(write3([](ReplyWriter& w) { w.null(); }), "_\r\n");
  EXPECT_EQ(write3([](ReplyWriter& w) { w.null_array(); }), "_\r\n");
  EXPECT_EQ(write3([](ReplyWriter& w) {
              w.map(2);
              w.simple_string("first");
              w.integer(1);
              w.simple_string("second");
              w.integer(2);
            }),
            "%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n");
  EXPECT_EQ(write3([](ReplyWriter& w) {
              w.set(2);
              w.simple_string("orange");
              w.boolean(true);
            }),
            "~2\r\n+orange\r\n#t\r\n");
  EXPECT_EQ(write3([](ReplyWriter& w) {
              w.push(1);
              w.bulk("x");
            }),
            ">1\r\n$1\r\nx\r\n");
  EXPECT_EQ(write3([](ReplyWriter& w) { w.double_value(1.23); }), ",1.23\r\n");
  EXPECT_EQ(write3([](ReplyWriter& w) { w.double_value(-INFINITY); }), ",-inf\r\n");
  EXPECT_EQ(write3([](ReplyWriter& w) { w.double_value(NAN); }), ",nan\r\n");
  EXPECT_EQ(write3([](ReplyWriter& w) { w.boolean(false); }), "#f\r\n");
  EXPECT_EQ(
      write3([](ReplyWriter& w) { w.big_number("3492890328409238509324850943850943825024385"); }),
      "(3492890328409238509324850943850943825024385\r\n");
  EXPECT_EQ(write3([](ReplyWriter& w) { w.verbatim("Some string"); }),
            "=15\r\ntxt:Some string\r\n");
  EXPECT_EQ(write3([](ReplyWriter& w) { w.verbatim("# x", "mkd"); }), "=7\r\nmkd:# x\r\n");
  EXPECT_EQ(write3([](ReplyWriter& w) { w.blob_error("SYNTAX invalid syntax"); }),
            "!21\r\nSYNTAX invalid syntax\r\n");
  EXPECT_EQ(write3([](ReplyWriter& w) {
              ASSERT_TRUE(w.attribute(1));
              w.simple_string("ttl");
              w.integer(3600);
              w.integer(3);
            }),
            "|1\r\n+ttl\r\n:3600\r\n:3\r\n");
}

TEST(ReplyWriter, LinesCannotBreakTheFraming) {
  EXPECT_EQ(write2([](ReplyWriter& w) { w.simple_string("a\r\nb\nc"); }), "+a  b c\r\n");
  EXPECT_EQ(write2([](ReplyWriter& w) { w.error("ERR bad\r\n+OK"); }), "-ERR bad  +OK\r\n");
}

TEST(ReplyWriter, DeferredLength) {
  for (Protocol proto : {Protocol::kResp2, Protocol::kResp3}) {
    std::string out = "+before\r\n";
    ReplyWriter w(&out, proto);
    size_t mark = w.deferred_len();
    for (int i = 0; i < 3; i++) w.integer(i);
    w.fill_deferred_array(mark, 3);
    EXPECT_EQ(out, "+before\r\n*3\r\n:0\r\n:1\r\n:2\r\n");
    out.clear();
    mark = w.deferred_len();
    w.bulk("k");
    w.integer(1);
    w.fill_deferred_map(mark, 1);
    EXPECT_EQ(out,
              proto == Protocol::kResp3 ? "%1\r\n$1\r\nk\r\n:1\r\n" : "*2\r\n$1\r\nk\r\n:1\r\n");
    out.clear();
    mark = w.deferred_len();
    w.fill_deferred_set(mark, 0);
    EXPECT_EQ(out, proto == Protocol::kResp3 ? "~0\r\n" : "*0\r\n");
  }
}

TEST(ReplyWriter, AppendCommand) {
  std::string out;
  append_command(&out, {"SET", "k", ""});
  EXPECT_EQ(out, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
}

TEST(FormatDouble, LikeRedis) {
  const std::vector<std::pair<double, std::string>> cases = {
      {0.0, "0"},
      {-0.0, "-0"},
      {1, "1"},
      {-2.5, "-2.5"},
      {1.5, "1.5"},
      {3.14, "3.14"},
      {0.1, "0.1"},
      {100, "100"},
      {1e7, "10000000"},
      {12345678, "12345678"},
      {1e8, "1e+8"},
      {1.5e10, "1.5e+10"},
      {9007199254740992.0, "9007199254740992"},
      {1e21, "1e+21"},
      {1.23e22, "1.23e+22"},
      {123456.789, "123456.789"},
      {1.2345678, "1.2345678"},
      {0.001, "0.001"},
      {1e-6, "0.000001"},
      {1.5e-6, "1.5e-6"},
      {1e-7, "1e-7"},
      {1.5e-7, "1.5e-7"},
      {0.0001234, "1.234e-4"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {5e-324, "5e-324"},
      {std::numeric_limits<double>::infinity(), "inf"},
      {-std::numeric_limits<double>::infinity(), "-inf"},
      {std::numeric_limits<double>::quiet_NaN(), "nan"},
  };
  for (const auto& [v, want] : cases) EXPECT_EQ(format_double(v), want) << want;
}

TEST(FormatDouble, RoundTrips) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200000; i++) {
    double d;
    const uint64_t bits = rng();
    std::memcpy(&d, &bits, sizeof(d));
    if (!std::isfinite(d)) continue;
    char buf[kDoubleChars];
    const size_t n = format_double(d, buf);
    ASSERT_LE(n, kDoubleChars);
    const std::string s(buf, n);
    ASSERT_EQ(std::strtod(s.c_str(), nullptr), d) << s;
  }
}

TEST(FormatLongDouble, LikeRedisIncrbyfloat) {
  // The examples of Redis's INCRBYFLOAT documentation.
  EXPECT_EQ(format_long_double(10.50L + 0.1L), "10.6");
  EXPECT_EQ(format_long_double(5.0e3L + 2.0e2L), "5200");
  EXPECT_EQ(format_long_double(3.0L), "3");
  EXPECT_EQ(format_long_double(-0.0L), "0");
  EXPECT_EQ(format_long_double(-1.25L), "-1.25");
  EXPECT_EQ(format_long_double(0.1L), "0.1");
  EXPECT_EQ(format_long_double(1e20L), "100000000000000000000");
  EXPECT_EQ(format_long_double(std::numeric_limits<long double>::infinity()), "inf");
  EXPECT_EQ(format_long_double(-std::numeric_limits<long double>::infinity()), "-inf");
  const std::string big = format_long_double(1e200L);
  EXPECT_EQ(big.find('e'), std::string::npos);
  EXPECT_GE(big.size(), 201u);  // %.17Lf shows every digit
  EXPECT_EQ(format_long_double(1.5L, LongDoubleFormat::kAuto), "1.5");
  EXPECT_EQ(format_long_double(1e20L, LongDoubleFormat::kAuto), "1e+20");
}

// ---------------------------------------------------------------------------
// Reply parser

struct ReplyOutcome {
  std::vector<Value> values;
  std::vector<std::string> raws;
  std::string error;
  bool operator==(const ReplyOutcome&) const = default;
};

ReplyOutcome parse_replies(std::string_view input, size_t chunk = 0, ReplyLimits limits = {},
                           bool tree = true) {
  ReplyParser p(limits, tree);
  ReplyOutcome out;
  if (chunk == 0) chunk = std::max<size_t>(input.size(), 1);
  for (size_t at = 0; at < input.size() && out.error.empty(); at += chunk) {
    p.feed(input.substr(at, std::min(chunk, input.size() - at)));
    for (;;) {
      Parsed r = p.next();
      if (r == Parsed::kNeedMore) break;
      if (r == Parsed::kError) {
        out.error = p.error();
        break;
      }
      out.values.push_back(std::move(p.value()));
      out.raws.emplace_back(p.raw());
    }
  }
  return out;
}

ReplyOutcome replies_every_way(std::string_view input, ReplyLimits limits = {}) {
  ReplyOutcome whole = parse_replies(input, 0, limits);
  for (size_t chunk : {1, 2, 3, 5, 64}) {
    EXPECT_EQ(parse_replies(input, chunk, limits), whole) << "chunk " << chunk;
  }
  // Framing only: the same raw replies, no tree.
  // (values_max applies to trees only.)
  ReplyOutcome frames = parse_replies(input, 0, limits, false);
  if (whole.error.find("values_max") == std::string::npos) {
    EXPECT_EQ(frames.raws, whole.raws);
    EXPECT_EQ(frames.error.empty(), whole.error.empty());
  }
  return whole;
}

Value reply(std::string_view input) {
  ReplyOutcome o = replies_every_way(input);
  EXPECT_EQ(o.error, "");
  EXPECT_EQ(o.values.size(), 1u) << input;
  if (o.values.size() != 1) return Value();
  EXPECT_EQ(o.raws[0], input);
  return o.values[0];
}

std::string reply_error(std::string_view input, ReplyLimits limits = {}) {
  ReplyOutcome o = replies_every_way(input, limits);
  EXPECT_NE(o.error, "") << input.substr(0, 80);
  return o.error;
}

Value with_attributes(Value v, std::vector<Value> attrs) {
  v.attributes = std::move(attrs);
  return v;
}

TEST(ReplyParser, SimpleTypes) {
  EXPECT_EQ(reply("+OK\r\n"), Value::simple("OK"));
  EXPECT_EQ(reply("+\r\n"), Value::simple(""));
  EXPECT_EQ(reply("-ERR this is the error description\r\n"),
            Value::error_value("ERR this is the error description"));
  EXPECT_EQ(reply(":1234\r\n"), Value::integer_value(1234));
  EXPECT_EQ(reply(":-9223372036854775808\r\n"),
            Value::integer_value(std::numeric_limits<int64_t>::min()));
  EXPECT_EQ(reply("$11\r\nhello world\r\n"), Value::bulk("hello world"));
  EXPECT_EQ(reply("$0\r\n\r\n"), Value::bulk(""));
  EXPECT_EQ(reply(std::string("$4\r\n\r\n\0x\r\n", 10)), Value::bulk(std::string("\r\n\0x", 4)));
  EXPECT_EQ(reply("$-1\r\n"), Value::null_value(Type::kNullBulk));
  EXPECT_EQ(reply("*-1\r\n"), Value::null_value(Type::kNullArray));
  EXPECT_EQ(reply("_\r\n"), Value::null_value(Type::kNull));
  EXPECT_TRUE(reply("_\r\n").is_null());
  EXPECT_EQ(reply(",1.23\r\n"), Value::double_value(1.23));
  EXPECT_EQ(reply(",10\r\n"), Value::double_value(10));
  EXPECT_EQ(reply(",1.5e+20\r\n"), Value::double_value(1.5e20));
  EXPECT_EQ(reply(",inf\r\n"), Value::double_value(INFINITY));
  EXPECT_EQ(reply(",-inf\r\n"), Value::double_value(-INFINITY));
  EXPECT_EQ(reply(",nan\r\n"), Value::double_value(NAN));
  EXPECT_EQ(reply(",1.23\r\n").str, "1.23");
  EXPECT_EQ(reply("#t\r\n"), Value::boolean(true));
  EXPECT_EQ(reply("#f\r\n"), Value::boolean(false));
  Value big = reply("(3492890328409238509324850943850943825024385\r\n");
  EXPECT_EQ(big.type, Type::kBigNumber);
  EXPECT_EQ(big.str, "3492890328409238509324850943850943825024385");
  EXPECT_EQ(reply("(-12\r\n").str, "-12");
  Value be = reply("!21\r\nSYNTAX invalid syntax\r\n");
  EXPECT_EQ(be.type, Type::kBlobError);
  EXPECT_TRUE(be.is_error());
  EXPECT_EQ(be.str, "SYNTAX invalid syntax");
  Value vb = reply("=15\r\ntxt:Some string\r\n");
  EXPECT_EQ(vb.type, Type::kVerbatim);
  EXPECT_EQ(vb.verbatim_format(), "txt");
  EXPECT_EQ(vb.verbatim_text(), "Some string");
}

TEST(ReplyParser, Aggregates) {
  EXPECT_EQ(
      reply("*3\r\n:1\r\n:2\r\n:3\r\n"),
      Value::array({Value::integer_value(1), Value::integer_value(2), Value::integer_value(3)}));
  EXPECT_EQ(reply("*0\r\n"), Value::array({}));
  EXPECT_EQ(reply("*2\r\n*3\r\n:1\r\n$5\r\nhello\r\n:2\r\n#f\r\n"),
            Value::array({Value::array({Value::integer_value(1), Value::bulk("hello"),
                                        Value::integer_value(2)}),
                          Value::boolean(false)}));
  EXPECT_EQ(reply("%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n"),
            Value::aggregate(Type::kMap, {Value::simple("first"), Value::integer_value(1),
                                          Value::simple("second"), Value::integer_value(2)}));
  EXPECT_EQ(reply("~5\r\n+orange\r\n+apple\r\n#t\r\n:100\r\n:999\r\n").elements.size(), 5u);
  EXPECT_EQ(reply("~5\r\n+orange\r\n+apple\r\n#t\r\n:100\r\n:999\r\n").type, Type::kSet);
  EXPECT_EQ(reply(">3\r\n+message\r\n+somechannel\r\n+this is the message\r\n").type, Type::kPush);
  EXPECT_EQ(reply("*3\r\n*0\r\n%0\r\n*1\r\n*0\r\n"),
            Value::array({Value::array({}), Value::aggregate(Type::kMap, {}),
                          Value::array({Value::array({})})}));
  EXPECT_EQ(reply("*2\r\n$-1\r\n*-1\r\n"), Value::array({Value::null_value(Type::kNullBulk),
                                                         Value::null_value(Type::kNullArray)}));
}

TEST(ReplyParser, Attributes) {
  // The two examples of the RESP3 specification.
  Value v = reply(
      "|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n"
      "*2\r\n:2039123\r\n:9543892\r\n");
  Value want = with_attributes(
      Value::array({Value::integer_value(2039123), Value::integer_value(9543892)}),
      {Value::simple("key-popularity"),
       Value::aggregate(Type::kMap, {Value::bulk("a"), Value::double_value(0.1923),
                                     Value::bulk("b"), Value::double_value(0.0012)})});
  EXPECT_EQ(v, want) << v.to_string();
  v = reply("*3\r\n:1\r\n:2\r\n|1\r\n+ttl\r\n:3600\r\n:3\r\n");
  want = Value::array({Value::integer_value(1), Value::integer_value(2),
                       with_attributes(Value::integer_value(3),
                                       {Value::simple("ttl"), Value::integer_value(3600)})});
  EXPECT_EQ(v, want) << v.to_string();
  // Redis's DEBUG PROTOCOL attrib reply.
  v = reply(
      "|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n"
      "$39\r\nSome real reply following the attribute\r\n");
  EXPECT_EQ(v.str, "Some real reply following the attribute");
  EXPECT_EQ(v.attributes.size(), 2u);
  // Two attributes before one value merge; an empty one adds nothing.
  v = reply("|1\r\n+a\r\n:1\r\n|0\r\n|1\r\n+b\r\n:2\r\n+x\r\n");
  EXPECT_EQ(v, with_attributes(Value::simple("x"), {Value::simple("a"), Value::integer_value(1),
                                                    Value::simple("b"), Value::integer_value(2)}));
}

TEST(ReplyParser, Streamed) {
  EXPECT_EQ(reply("$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;1\r\nd\r\n;0\r\n"),
            Value::bulk("Hello word"));
  EXPECT_EQ(reply("$?\r\n;0\r\n"), Value::bulk(""));
  EXPECT_EQ(
      reply("*?\r\n:1\r\n:2\r\n:3\r\n.\r\n"),
      Value::array({Value::integer_value(1), Value::integer_value(2), Value::integer_value(3)}));
  EXPECT_EQ(reply("%?\r\n+a\r\n:1\r\n+b\r\n:2\r\n.\r\n"),
            Value::aggregate(Type::kMap, {Value::simple("a"), Value::integer_value(1),
                                          Value::simple("b"), Value::integer_value(2)}));
  EXPECT_EQ(reply("~?\r\n*?\r\n.\r\n$?\r\n;1\r\nx\r\n;0\r\n.\r\n"),
            Value::aggregate(Type::kSet, {Value::array({}), Value::bulk("x")}));
}

TEST(ReplyParser, PipelinedRepliesAndRaw) {
  const std::string in = "+OK\r\n:1\r\n*2\r\n$1\r\na\r\n_\r\n>2\r\n+message\r\n:1\r\n";
  ReplyOutcome o = replies_every_way(in);
  ASSERT_EQ(o.error, "");
  ASSERT_EQ(o.values.size(), 4u);
  EXPECT_EQ(o.raws, (std::vector<std::string>{"+OK\r\n", ":1\r\n", "*2\r\n$1\r\na\r\n_\r\n",
                                              ">2\r\n+message\r\n:1\r\n"}));
}

TEST(ReplyParser, Errors) {
  EXPECT_EQ(reply_error("?x\r\n"), "Protocol error: unknown reply type byte '?'");
  EXPECT_EQ(reply_error("\r\n"), "Protocol error: unknown reply type byte ' '");
  EXPECT_NE(reply_error(":12a\r\n"), "");
  EXPECT_NE(reply_error(":01\r\n"), "");
  EXPECT_NE(reply_error("+OK\rX"), "");
  EXPECT_NE(reply_error("+O\nK\r\n"), "");
  EXPECT_NE(reply_error("$3\r\nabcd\r\n"), "");
  EXPECT_NE(reply_error("$-2\r\n"), "");
  EXPECT_NE(reply_error("=3\r\ntxt\r\n"), "");
  EXPECT_NE(reply_error("=4\r\ntxtx\r\n"), "");
  EXPECT_NE(reply_error("#x\r\n"), "");
  EXPECT_NE(reply_error(",\r\n"), "");
  EXPECT_NE(reply_error(",1.5x\r\n"), "");
  EXPECT_NE(reply_error("(1.5\r\n"), "");
  EXPECT_NE(reply_error("_x\r\n"), "");
  EXPECT_NE(reply_error(".\r\n"), "");
  EXPECT_NE(reply_error("*1\r\n.\r\n"), "");
  EXPECT_NE(reply_error("%?\r\n+a\r\n.\r\n"), "");  // a streamed map needs pairs
  EXPECT_NE(reply_error(";1\r\nx\r\n"), "");
  EXPECT_NE(reply_error("$?\r\n+x\r\n"), "");
  EXPECT_NE(reply_error(">?\r\n"), "");
  EXPECT_NE(reply_error("%-1\r\n"), "");
}

TEST(ReplyParser, Limits) {
  ReplyLimits l;
  l.depth_max = 3;
  EXPECT_EQ(reply_error("*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", l),
            "Protocol error: nesting deeper than depth_max");
  EXPECT_EQ(replies_every_way("*1\r\n*1\r\n*1\r\n:1\r\n", l).error, "");
  l = {};
  l.bulk_bytes_max = 3;
  EXPECT_EQ(reply_error("$4\r\nabcd\r\n", l), "Protocol error: bad bulk length");
  EXPECT_NE(reply_error("$?\r\n;2\r\nab\r\n;2\r\ncd\r\n;0\r\n", l), "");
  l = {};
  l.line_bytes_max = 4;
  EXPECT_EQ(replies_every_way("+abcd\r\n", l).error, "");
  EXPECT_EQ(reply_error("+abcde\r\n", l), "Protocol error: line longer than line_bytes_max");
  l = {};
  l.values_max = 3;
  EXPECT_EQ(replies_every_way("*2\r\n:1\r\n:2\r\n:3\r\n", l).error, "");  // counted per reply
  EXPECT_EQ(reply_error("*3\r\n:1\r\n:2\r\n:3\r\n", l),
            "Protocol error: more values than values_max");
  l = {};
  l.aggregate_len_max = 2;
  EXPECT_NE(reply_error("*3\r\n", l), "");
  EXPECT_NE(reply_error("%3\r\n", l), "");
  l = {};
  l.reply_bytes_max = 10;
  EXPECT_EQ(replies_every_way("$4\r\nabcd\r\n", l).error, "");
  EXPECT_EQ(reply_error("$5\r\nabcde\r\n", l), "Protocol error: reply longer than reply_bytes_max");
  EXPECT_EQ(reply_error("*3\r\n:1\r\n:2\r\n", l),
            "Protocol error: reply longer than reply_bytes_max");
}

TEST(ReplyParser, HugeHeadersDoNotAllocate) {
  ReplyParser p;
  p.feed("*2147483647\r\n:1\r\n$536870912\r\nab");
  EXPECT_EQ(p.next(), Parsed::kNeedMore);
  EXPECT_EQ(p.buffered_bytes(), 31u);
}

// ---------------------------------------------------------------------------
// Round trips

Value sample_reply() {
  Value nested = Value::aggregate(
      Type::kMap, {Value::bulk("name"), Value::bulk("qkv"), Value::simple("n"),
                   Value::double_value(-1.5e-9), Value::bulk("set"),
                   Value::aggregate(Type::kSet, {Value::integer_value(1), Value::boolean(true)})});
  Value verb;
  verb.type = Type::kVerbatim;
  verb.str = "txt:line one\nline two";
  Value big;
  big.type = Type::kBigNumber;
  big.str = "-123456789012345678901234567890";
  Value berr;
  berr.type = Type::kBlobError;
  berr.str = "ERR binary\r\nerror";
  return Value::array(
      {Value::simple("OK"), Value::error_value("WRONGTYPE x"), Value::integer_value(-7),
       Value::bulk(std::string("b\0in", 4)), Value::null_value(), nested, verb, big, berr,
       with_attributes(Value::integer_value(3), {Value::simple("ttl"), Value::integer_value(1)}),
       Value::aggregate(Type::kPush, {Value::bulk("message")})});
}

TEST(RoundTrip, Resp3IsFaithful) {
  const Value v = sample_reply();
  std::string out;
  ReplyWriter w(&out, Protocol::kResp3);
  w.value(v);
  EXPECT_EQ(reply(out), v) << reply(out).to_string();
}

TEST(RoundTrip, Resp2Fallbacks) {
  std::string out;
  ReplyWriter w(&out, Protocol::kResp2);
  w.value(sample_reply());
  const Value got = reply(out);
  ASSERT_EQ(got.type, Type::kArray);
  ASSERT_EQ(got.elements.size(), 11u);
  EXPECT_EQ(got.elements[4], Value::null_value(Type::kNullBulk));
  const Value& m = got.elements[5];
  EXPECT_EQ(m.type, Type::kArray);  // the map, flattened
  ASSERT_EQ(m.elements.size(), 6u);
  EXPECT_EQ(m.elements[3], Value::bulk("-1.5e-9"));
  EXPECT_EQ(m.elements[5], Value::array({Value::integer_value(1), Value::integer_value(1)}));
  EXPECT_EQ(got.elements[6], Value::bulk("line one\nline two"));
  EXPECT_EQ(got.elements[7], Value::bulk("-123456789012345678901234567890"));
  EXPECT_EQ(got.elements[8], Value::error_value("ERR binary  error"));
  EXPECT_EQ(got.elements[9], Value::integer_value(3));  // attributes dropped
  EXPECT_EQ(got.elements[10], Value::array({Value::bulk("message")}));
}

TEST(RoundTrip, RequestsThroughAppendCommand) {
  std::mt19937_64 rng(11);
  std::string in;
  std::vector<Args> want;
  for (int i = 0; i < 500; i++) {
    Args a(1 + rng() % 5);
    for (auto& s : a) {
      s.resize(rng() % 40);
      for (auto& c : s) c = static_cast<char>(rng());
    }
    std::vector<std::string_view> views(a.begin(), a.end());
    append_command(&in, views);
    want.push_back(std::move(a));
  }
  EXPECT_EQ(requests(in), want);
}

TEST(Value, ToString) {
  EXPECT_EQ(
      sample_reply().to_string(),
      "['OK', (error) WRONGTYPE x, (integer) -7, \"b\\x00in\", (nil), {\"name\": \"qkv\", 'n': "
      "(double) -1.5e-9, \"set\": ~[(integer) 1, (true)]}, (verbatim) \"txt:line one\\x0aline "
      "two\", "
      "(big) -123456789012345678901234567890, (error) ERR binary\r\nerror, |{'ttl': (integer) 1} "
      "(integer) 3, >[\"message\"]]");
}

}  // namespace
}  // namespace qkv::net
