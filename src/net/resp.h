// The RESP codec: the Redis serialization protocol, versions 2 and 3, as a
// server reads requests and writes replies, and as a client (quorumctl, the
// tests, a follower forwarding to its leader) reads replies.
//
//   RequestParser  bytes from a client -> argument vectors (multibulk and
//                  inline requests, pipelined, split anywhere)
//   ReplyWriter    replies appended to an output string, in RESP2 or RESP3
//   ReplyParser    bytes from a server -> a tree of Values (or just framing)
//   append_command a request encoded as a multibulk, for clients
//
// Every size is bounded by a named limit (RequestLimits, ReplyLimits); a
// hostile length header never allocates up front: memory grows with the
// bytes that really arrive. Wire format, limits and their Redis equivalents:
// docs/RESP.md. None of these classes is thread-safe; one per connection.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace qkv::net {

enum class Protocol : uint8_t { kResp2 = 2, kResp3 = 3 };

// What a parser's next() found.
enum class Parsed : uint8_t {
  kNeedMore,  // no complete item in the buffer: read more bytes, then call next() again
  kItem,      // one request (or reply) is ready: args() (or value(), raw())
  kError,     // a protocol error: error() has the text; the parser takes no more input
};

// Redis's string2ll: an optional '-', then digits without a leading zero
// ("0" alone is fine), within int64_t. Nothing else: no '+', no spaces.
bool parse_int64(std::string_view s, int64_t* out);

// Doubles as Redis 7.2+ prints them (RESP3 ',' replies, and the RESP2 bulk
// string of a double reply such as ZSCORE): the shortest digits that read
// back as the same double, in plain notation for moderate exponents and as
// 1.5e+20 / 1e-7 otherwise; "inf", "-inf", "nan", "0", "-0". `buf` must hold
// kDoubleChars bytes; returns the length written (no NUL).
constexpr size_t kDoubleChars = 32;
size_t format_double(double v, char* buf);
std::string format_double(double v);

// Long doubles as Redis's ld2string prints them. kHuman is what INCRBYFLOAT
// and HINCRBYFLOAT store and reply: "%.17Lf" with trailing zeros (and a
// trailing '.') removed, never an exponent, "-0" printed as "0". kAuto is
// "%.17Lg". Both print infinities as "inf" / "-inf".
enum class LongDoubleFormat : uint8_t { kHuman, kAuto };
std::string format_long_double(long double v, LongDoubleFormat f = LongDoubleFormat::kHuman);

// ---------------------------------------------------------------------------
// Input buffer shared by the two parsers. Bytes are appended at the end
// (prepare/commit, or feed) and consumed from the front; the unconsumed tail
// is moved to the front lazily, only when room is needed and at least as many
// bytes have been consumed as remain (so each byte is moved O(1) times), and
// the buffer grows geometrically. A large buffer is given back once its
// content shrinks below a quarter of it.
class InputBuffer {
 public:
  static constexpr size_t kInitialBytes = 16 << 10;
  static constexpr size_t kKeepBytes = 64 << 10;  // never shrink below this

  // A writable region of at least `bytes_min` bytes after the data. May move
  // the data (invalidating every pointer into the buffer).
  std::span<char> prepare(size_t bytes_min);
  // The first n bytes of the last prepare()d region now hold data.
  void commit(size_t n);
  // prepare() + copy + commit().
  void append(std::string_view bytes);
  // The unconsumed bytes.
  char* data() { return buf_.get() + begin_; }
  const char* data() const { return buf_.get() + begin_; }
  size_t size() const { return end_ - begin_; }
  // Drops n bytes from the front (pointers stay valid until prepare()).
  void consume(size_t n);
  void clear() { begin_ = end_ = 0; }
  size_t capacity() const { return cap_; }

 private:
  void reallocate(size_t cap);
  std::unique_ptr<char[]> buf_;
  size_t cap_ = 0, begin_ = 0, end_ = 0;
  size_t prepared_ = 0;  // size of the last prepared region, for commit()'s check
};

// ---------------------------------------------------------------------------
// Requests.

// Limits of one client connection's request parser. The defaults follow
// Redis 7 except where noted.
struct RequestLimits {
  // Longest argument of a multibulk request. Redis: proto-max-bulk-len, 512 MiB.
  uint64_t bulk_bytes_max = 512ull << 20;
  // Most arguments in one multibulk request (the N of *N). Redis 7: INT_MAX;
  // Redis up to 6.0: 1024*1024, which we keep: the argument vector costs 32
  // bytes per argument, and an empty argument only 6 bytes of input.
  uint64_t args_max = 1024 * 1024;
  // Longest inline request line (the bytes before its LF, a CR included) and
  // longest *N / $N header line (the bytes before its CR). Redis:
  // PROTO_INLINE_MAX_SIZE, 64 KiB.
  uint64_t inline_bytes_max = 64 << 10;
  // Most bytes one request may span: a request not complete within this many
  // bytes is refused. Redis: client-query-buffer-limit, 1 GiB (Redis closes
  // the connection silently; we send an error first).
  uint64_t query_buffer_bytes_max = 1ull << 30;
  // While the connection is not authenticated (set_authenticated(false)).
  // Redis: fixed at 10 arguments and 16384 bytes per argument.
  uint64_t unauthenticated_args_max = 10;
  uint64_t unauthenticated_bulk_bytes_max = 16384;
};

// Each protocol error, with Redis's reply text (see protocol_error_text()).
enum class ProtocolError : uint8_t {
  kNone = 0,
  kTooBigInline,                    // inline line longer than inline_bytes_max
  kTooBigMbulkCount,                // *N line longer than inline_bytes_max
  kTooBigBulkCount,                 // $N line longer than inline_bytes_max
  kUnbalancedQuotes,                // inline: open quote, or a closing quote not followed by space
  kInvalidMultibulkLength,          // *N: not an integer, or N > args_max
  kUnauthenticatedMultibulkLength,  // *N: N > unauthenticated_args_max before AUTH
  kExpectedDollar,                  // a multibulk argument not starting with '$'
  kInvalidBulkLength,               // $N: not an integer, negative, or N > bulk_bytes_max
  kUnauthenticatedBulkLength,       // $N: N > unauthenticated_bulk_bytes_max before AUTH
  kQueryBufferLimit,                // request longer than query_buffer_bytes_max (ours)
};

// "ERR Protocol error: ..." (what follows the '-' of the error reply). For
// kExpectedDollar the parser's error() also names the byte it got.
const char* protocol_error_text(ProtocolError e);

// Splits bytes from a client into requests (argument vectors).
//
//   RequestParser p;
//   auto room = p.prepare(16 << 10);          // read straight into the parser
//   p.commit(read(fd, room.data(), room.size()));
//   for (;;) {
//     Parsed r = p.next();
//     if (r == Parsed::kNeedMore) break;
//     if (r == Parsed::kError) { write "-" + p.error() + "\r\n", close; }
//     execute(p.args());
//   }
//
// A request starting with '*' is a multibulk (*N\r\n then N times
// $len\r\n<len bytes>\r\n); anything else is an inline request: one line
// ending in \n (or \r\n), split into arguments by Redis's quoting rules.
// Empty inline lines and multibulks with N <= 0 are skipped, as in Redis.
//
// Lifetime: the views of args() point into the parser's buffer and stay
// valid until the next prepare(), feed() or reset(), so several pipelined
// requests can be parsed before any is executed (copy the span's views;
// args() itself is overwritten by the next next()). Copy the bytes to keep
// them longer.
//
// After a protocol error the parser refuses all input: next() keeps
// returning kError and fed bytes are dropped. The connection writes the
// error and closes (DESIGN.md: garbage closes that one connection).
//
// Results do not depend on how the input was split into reads: feeding a
// stream byte by byte yields the same requests and the same error as feeding
// it at once. Cost: amortized O(1) per byte, no allocation per request once
// the buffers have grown to the working size.
class RequestParser {
 public:
  explicit RequestParser(RequestLimits limits = {}) : limits_(limits) {}

  std::span<char> prepare(size_t bytes_min = InputBuffer::kInitialBytes);
  void commit(size_t n);
  void feed(std::string_view bytes);  // prepare + copy + commit

  Parsed next();
  std::span<const std::string_view> args() const { return args_; }

  ProtocolError error_kind() const { return error_; }
  // The error reply's text without '-' and CRLF, e.g.
  // "ERR Protocol error: invalid bulk length"; empty without an error.
  const std::string& error() const { return error_text_; }

  // Before authentication the stricter unauthenticated_* limits apply (Redis
  // does this when a password is required). Takes effect from the next request.
  void set_authenticated(bool yes) { authenticated_ = yes; }
  const RequestLimits& limits() const { return limits_; }
  void set_limits(const RequestLimits& l) { limits_ = l; }

  // Bytes received and not yet returned as requests.
  size_t buffered_bytes() const { return buf_.size(); }
  // Back to a fresh parser (the limits and authentication state are kept).
  void reset();

  size_t TEST_capacity() const { return buf_.capacity(); }

 private:
  enum class State : uint8_t { kStart, kInline, kMultibulkHeader, kBulkHeader, kBulkData };
  struct Span {
    size_t off, len;  // relative to the start of the request
  };
  Parsed fail(ProtocolError e, char got = 0);
  Parsed need_more();
  Parsed finish_request(size_t request_bytes);
  bool split_inline(char* line, size_t n);

  RequestLimits limits_;
  bool authenticated_ = true;
  InputBuffer buf_;
  State state_ = State::kStart;
  // Offsets from the start of the request being parsed (buf_.data()).
  size_t line_ = 0;  // start of the current line (header of the next argument)
  size_t scan_ = 0;  // where the search for the line's end resumes
  size_t data_ = 0;  // start of the current argument's bytes
  uint64_t bulk_len_ = 0;
  uint64_t args_left_ = 0;
  std::vector<Span> spans_;
  std::vector<std::string_view> args_;
  ProtocolError error_ = ProtocolError::kNone;
  std::string error_text_;
};

// Encodes a request as a multibulk: *N\r\n$len\r\narg\r\n...
void append_command(std::string* out, std::span<const std::string_view> args);
inline void append_command(std::string* out, std::initializer_list<std::string_view> args) {
  append_command(out, std::span<const std::string_view>(args.begin(), args.size()));
}

// True if `reply` is exactly one null: $-1 or *-1 (RESP2), _ (RESP3).
inline bool is_null_reply(std::string_view reply) {
  return reply == "$-1\r\n" || reply == "*-1\r\n" || reply == "_\r\n";
}

// ---------------------------------------------------------------------------
// Values: any RESP2 or RESP3 reply, as a tree.

enum class Type : uint8_t {
  kSimpleString,  // +text
  kError,         // -CODE message
  kInteger,       // :n
  kBulkString,    // $len  (also a streamed string $? ;len ... ;0)
  kArray,         // *n
  kNullBulk,      // $-1 (RESP2 null)
  kNullArray,     // *-1 (RESP2 null)
  kNull,          // _   (RESP3 null)
  kDouble,        // ,1.5
  kBoolean,       // #t / #f
  kBlobError,     // !len CODE message
  kVerbatim,      // =len fmt:text
  kBigNumber,     // (12345678901234567890
  kMap,           // %n  (n pairs)
  kSet,           // ~n
  kPush,          // >n
};
const char* type_name(Type t);

struct Value {
  Type type = Type::kNull;
  // kSimpleString, kError (without the '-'), kBulkString, kBlobError, kBigNumber
  // (the digits), kVerbatim ("txt:" then the text), kDouble (the text as received).
  std::string str;
  int64_t integer = 0;  // kInteger; kBoolean: 1 or 0
  double real = 0;      // kDouble
  // kArray, kSet, kPush: the elements; kMap: key, value, key, value, ...
  std::vector<Value> elements;
  // A RESP3 attribute that preceded this value: key, value, key, value, ...
  std::vector<Value> attributes;

  bool is_null() const {
    return type == Type::kNull || type == Type::kNullBulk || type == Type::kNullArray;
  }
  bool is_error() const { return type == Type::kError || type == Type::kBlobError; }
  bool is_string() const {
    return type == Type::kSimpleString || type == Type::kBulkString || type == Type::kVerbatim;
  }
  bool is_aggregate() const {
    return type == Type::kArray || type == Type::kMap || type == Type::kSet || type == Type::kPush;
  }
  std::string_view verbatim_format() const;  // "txt"
  std::string_view verbatim_text() const;    // without "txt:"

  // Structural equality; doubles compare by value (NaN equals NaN).
  bool operator==(const Value& o) const;

  // One line, for test failures and quorumctl: 'OK', "bulk", (integer) 5,
  // (error) ERR x, (nil), [1, 2], {k: v}, ~{a}, >[...], (double) 1.5, ...
  std::string to_string() const;

  static Value simple(std::string s);
  static Value error_value(std::string s);
  static Value integer_value(int64_t n);
  static Value bulk(std::string s);
  static Value null_value(Type t = Type::kNull);
  static Value double_value(double d);
  static Value boolean(bool b);
  static Value aggregate(Type t, std::vector<Value> elements);
  static Value array(std::vector<Value> elements) {
    return aggregate(Type::kArray, std::move(elements));
  }
};

// ---------------------------------------------------------------------------
// Replies.

// Appends replies to an output string. RESP3 types have the RESP2 fallbacks
// Redis uses, so command code writes one way for both protocols:
//
//   type        RESP3               RESP2
//   null        _                   $-1   (null_array(): *-1)
//   map(n)      %n                  *2n   (flat key, value, ...)
//   set(n)      ~n                  *n
//   push(n)     >n                  *n    (pub/sub messages are arrays)
//   double      ,1.5                $3 1.5
//   boolean     #t / #f             :1 / :0
//   big number  (123...             $n 123...
//   verbatim    =n txt:...          $n ...
//   blob error  !n ...              -...
//   attribute   |n                  nothing: attribute() returns false and
//                                   the caller skips the attribute's content
//
// Containers: write the header with the element count, then exactly that
// many values (a map's count is in pairs). When the count is known only at
// the end, use deferred_len() and then fill_deferred_*(). Simple strings and
// errors must not contain CR or LF; any that do are replaced by spaces (as
// Redis does for errors), so a reply can never break the framing.
//
// No allocation besides the output string's own growth.
class ReplyWriter {
 public:
  explicit ReplyWriter(std::string* out, Protocol p = Protocol::kResp2) : out_(out), proto_(p) {}

  Protocol protocol() const { return proto_; }
  void set_protocol(Protocol p) { proto_ = p; }
  std::string* out() { return out_; }

  void simple_string(std::string_view s);
  void ok() { out_->append("+OK\r\n", 5); }
  // `code_and_message` starts with the error code: "ERR syntax error",
  // "WRONGTYPE Operation against a key holding the wrong kind of value".
  void error(std::string_view code_and_message);
  void integer(int64_t n);
  void bulk(std::string_view s);
  void bulk_integer(int64_t n);  // an integer as a bulk string ("$2\r\n42\r\n")
  void null();                   // RESP2: the null bulk string $-1
  void null_array();             // RESP2: the null array *-1
  void array(size_t n);
  void map(size_t pairs);
  void set(size_t n);
  void push(size_t n);
  [[nodiscard]] bool attribute(size_t pairs);  // false in RESP2: write nothing of it
  void double_value(double d);
  void boolean(bool b);
  void big_number(std::string_view digits);
  void verbatim(std::string_view text, std::string_view format = "txt");  // format: 3 bytes
  void blob_error(std::string_view code_and_message);

  // A container whose length is not yet known: deferred_len() marks the spot,
  // write the elements, then fill_deferred_array(mark, n) inserts the header
  // there (moving the elements once).
  size_t deferred_len() const { return out_->size(); }
  void fill_deferred_array(size_t mark, size_t n);
  void fill_deferred_map(size_t mark, size_t pairs);
  void fill_deferred_set(size_t mark, size_t n);

  // Any Value, in this writer's protocol (RESP2 gets the fallbacks above).
  void value(const Value& v);

 private:
  void header(char prefix, uint64_t n);
  void line(char prefix, std::string_view s);  // prefix, s with CR/LF -> ' ', CRLF
  void blob(char prefix, std::string_view head, std::string_view s);
  void insert_header(size_t mark, char prefix, uint64_t n);
  std::string* out_;
  Protocol proto_;
};

// Limits of a reply parser (our clients: quorumctl, tests, the follower's
// forwarding connection). Redis clients have no such limits; ours keep a
// broken or hostile peer from exhausting memory.
struct ReplyLimits {
  uint64_t bulk_bytes_max = 512ull << 20;         // a $ ! = payload (a streamed string: in total)
  uint64_t line_bytes_max = 1 << 20;              // a + - : , ( # _ line, a length line
  uint64_t aggregate_len_max = (1ull << 31) - 1;  // n of *n ~n >n, pairs of %n |n
  uint64_t depth_max = 64;                        // nesting of aggregates and attributes
  uint64_t values_max = 1ull << 24;               // values in one reply (tree mode only)
  uint64_t reply_bytes_max = 1ull << 30;          // bytes one reply may span
};

// Parses replies. In tree mode (the default) each reply becomes a Value; with
// build_tree = false it only finds where each reply ends and checks it, for
// relaying the exact bytes (raw()). Accepts all of RESP2 and RESP3, including
// attributes (attached to the value they precede), streamed strings ($? with
// ;len chunks) and streamed aggregates (*? %? ~? closed by '.'). Stricter
// than Redis's own clients: every line must end in CRLF, simple lines may
// not contain LF, integers must be canonical.
//
// Lifetime: value() and raw() are valid until the next next(), prepare(),
// feed() or reset(). Like RequestParser, results do not depend on how the
// input was split, and the cost is amortized O(1) per byte.
class ReplyParser {
 public:
  explicit ReplyParser(ReplyLimits limits = {}, bool build_tree = true)
      : limits_(limits), build_tree_(build_tree) {}

  std::span<char> prepare(size_t bytes_min = InputBuffer::kInitialBytes);
  void commit(size_t n);
  void feed(std::string_view bytes);

  Parsed next();
  // The reply (tree mode). Movable-from.
  Value& value() { return root_; }
  // The reply's exact bytes, attributes before it included.
  std::string_view raw() const { return raw_; }
  // "Protocol error: ..." after kError.
  const std::string& error() const { return error_; }

  size_t buffered_bytes() const { return buf_.size(); }
  void reset();

 private:
  enum class State : uint8_t { kType, kLine, kBlob };
  struct Frame {
    Value* v;                      // the aggregate being filled; null without a tree
    int64_t left;                  // elements still to come; -1: streamed, until '.'
    uint64_t seen;                 // elements so far
    char kind;                     // the type byte: * % ~ > |
    std::unique_ptr<Value> owned;  // an attribute's own map
  };
  Parsed fail(std::string msg);
  Parsed need_more();
  Value* begin_value(Type t);
  bool open_aggregate(char kind, int64_t n);  // false after fail()
  bool value_done();                          // true: the reply is complete
  bool close_top();                           // true: a value (not an attribute) closed
  bool on_line(std::string_view line);        // false after fail()
  bool on_blob(std::string_view payload);     // false after fail()

  ReplyLimits limits_;
  bool build_tree_;
  InputBuffer buf_;
  State state_ = State::kType;
  char type_ = 0;           // type byte of the current line or blob
  bool in_stream_ = false;  // inside a streamed string ($?)
  bool done_ = false;       // the reply completed during the current step
  // Offsets from the start of the reply (buf_.data()).
  size_t pos_ = 0;  // start of the current line / blob payload
  size_t scan_ = 0;
  uint64_t blob_len_ = 0;
  uint64_t stream_len_ = 0;
  Value* stream_value_ = nullptr;
  uint64_t values_ = 0;
  std::vector<Frame> frames_;
  std::vector<std::vector<Value>> pending_attrs_;  // by depth: attributes awaiting their value
  Value root_;
  std::string_view raw_;
  bool failed_ = false;
  std::string error_;
};

}  // namespace qkv::net
