#include "net/resp.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "base/check.h"

namespace qkv::net {

namespace {

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

uint64_t sat_add(uint64_t a, uint64_t b) { return a > kU64Max - b ? kU64Max : a + b; }

// C's isspace in the "C" locale: what Redis skips between inline arguments.
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

// Bytes that end or quote an unquoted inline argument.
bool is_unquoted_special(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '"' || c == '\'';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A byte as it may appear inside a one-line error text.
char printable(char c) { return c == '\r' || c == '\n' ? ' ' : c; }

}  // namespace

bool parse_int64(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  if (s.size() == 1 && s[0] == '0') {
    *out = 0;
    return true;
  }
  size_t i = 0;
  const bool negative = s[0] == '-';
  if (negative) i = 1;
  if (i == s.size() || s[i] < '1' || s[i] > '9') return false;
  uint64_t v = 0;
  for (; i < s.size(); i++) {
    const char c = s[i];
    if (c < '0' || c > '9') return false;
    if (__builtin_mul_overflow(v, uint64_t{10}, &v) ||
        __builtin_add_overflow(v, static_cast<uint64_t>(c - '0'), &v)) {
      return false;
    }
  }
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (negative) {
    if (v > kMax + 1) return false;
    *out = v == kMax + 1 ? std::numeric_limits<int64_t>::min() : -static_cast<int64_t>(v);
  } else {
    if (v > kMax) return false;
    *out = static_cast<int64_t>(v);
  }
  return true;
}

// Redis 7.2 prints doubles with the shortest round-trip digits and chooses
// the notation from the digit count n and the exponent: with the value as
// digits x 10^k and e = k + n - 1 (the scientific exponent), a whole number
// is written plainly while k < 8, a fraction while k > -7 or |e| < 4, and
// anything else as d.ddde+X with the exponent unpadded.
size_t format_double(double v, char* buf) {
  if (std::isnan(v)) {
    std::memcpy(buf, "nan", 3);
    return 3;
  }
  if (std::isinf(v)) {
    if (v > 0) {
      std::memcpy(buf, "inf", 3);
      return 3;
    }
    std::memcpy(buf, "-inf", 4);
    return 4;
  }
  if (v == 0) {
    if (std::signbit(v)) {
      std::memcpy(buf, "-0", 2);
      return 2;
    }
    buf[0] = '0';
    return 1;
  }
  // Shortest round-trip digits, from to_chars's scientific form [-]d[.ddd]e±XX.
  char sci[48];
  const auto r = std::to_chars(sci, sci + sizeof(sci), v, std::chars_format::scientific);
  QKV_CHECK(r.ec == std::errc());
  const char* q = sci;
  char* w = buf;
  if (*q == '-') *w++ = *q++;
  char digits[24];
  int n = 0;
  digits[n++] = *q++;
  if (*q == '.') {
    q++;
    while (*q != 'e') digits[n++] = *q++;
  }
  q++;  // 'e'
  const bool exp_negative = *q++ == '-';
  int e = 0;
  while (q < r.ptr) e = e * 10 + (*q++ - '0');
  if (exp_negative) e = -e;
  const int k = e - (n - 1);
  const int abs_e = e < 0 ? -e : e;
  if (k >= 0 && abs_e < n + 7) {
    std::memcpy(w, digits, n);
    w += n;
    std::memset(w, '0', k);
    w += k;
  } else if (k < 0 && (k > -7 || abs_e < 4)) {
    const int whole = n + k;  // digits before the point
    if (whole <= 0) {
      *w++ = '0';
      *w++ = '.';
      std::memset(w, '0', -whole);
      w += -whole;
      std::memcpy(w, digits, n);
      w += n;
    } else {
      std::memcpy(w, digits, whole);
      w += whole;
      *w++ = '.';
      std::memcpy(w, digits + whole, n - whole);
      w += n - whole;
    }
  } else {
    *w++ = digits[0];
    if (n > 1) {
      *w++ = '.';
      std::memcpy(w, digits + 1, n - 1);
      w += n - 1;
    }
    *w++ = 'e';
    *w++ = e < 0 ? '-' : '+';
    w = std::to_chars(w, buf + kDoubleChars, abs_e).ptr;
  }
  QKV_CHECK_LE(static_cast<size_t>(w - buf), kDoubleChars);
  return static_cast<size_t>(w - buf);
}

std::string format_double(double v) {
  char buf[kDoubleChars];
  return std::string(buf, format_double(v, buf));
}

std::string format_long_double(long double v, LongDoubleFormat f) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  const bool human = f == LongDoubleFormat::kHuman;
  const int n =
      human ? std::snprintf(nullptr, 0, "%.17Lf", v) : std::snprintf(nullptr, 0, "%.17Lg", v);
  QKV_CHECK(n > 0);
  std::string s(static_cast<size_t>(n), '\0');
  if (human) {
    std::snprintf(s.data(), s.size() + 1, "%.17Lf", v);
  } else {
    std::snprintf(s.data(), s.size() + 1, "%.17Lg", v);
  }
  if (human) {
    if (s.find('.') != std::string::npos) {
      while (s.back() == '0') s.pop_back();
      if (s.back() == '.') s.pop_back();
    }
    if (s == "-0") s = "0";
  }
  return s;
}

// ---------------------------------------------------------------------------
// InputBuffer

std::span<char> InputBuffer::prepare(size_t bytes_min) {
  const size_t pending = end_ - begin_;
  if (pending == 0) begin_ = end_ = 0;
  const size_t need = pending + bytes_min;
  if (cap_ > kKeepBytes && need <= cap_ / 4) {
    // A big request or reply is gone: give the memory back.
    reallocate(std::max(kKeepBytes, need * 2));
  } else if (cap_ - end_ < bytes_min) {
    if (begin_ >= pending && cap_ - pending >= bytes_min) {
      // Moving `pending` bytes is paid for by the `begin_` >= pending consumed ones.
      std::memmove(buf_.get(), buf_.get() + begin_, pending);
      begin_ = 0;
      end_ = pending;
    } else {
      reallocate(std::max({cap_ * 2, need, kInitialBytes}));
    }
  }
  prepared_ = cap_ - end_;
  return {buf_.get() + end_, prepared_};
}

void InputBuffer::commit(size_t n) {
  QKV_CHECK_LE(n, prepared_) << "commit() of more bytes than prepare() gave";
  end_ += n;
  prepared_ -= n;
}

void InputBuffer::append(std::string_view bytes) {
  std::span<char> room = prepare(bytes.size());
  if (!bytes.empty()) std::memcpy(room.data(), bytes.data(), bytes.size());
  commit(bytes.size());
}

void InputBuffer::consume(size_t n) {
  QKV_CHECK_LE(n, size());
  begin_ += n;
}

void InputBuffer::reallocate(size_t cap) {
  const size_t pending = end_ - begin_;
  QKV_CHECK_LE(pending, cap);
  std::unique_ptr<char[]> b(new char[cap]);
  if (pending > 0) std::memcpy(b.get(), buf_.get() + begin_, pending);
  buf_ = std::move(b);
  cap_ = cap;
  begin_ = 0;
  end_ = pending;
}

// ---------------------------------------------------------------------------
// RequestParser

const char* protocol_error_text(ProtocolError e) {
  switch (e) {
    case ProtocolError::kNone:
      return "";
    case ProtocolError::kTooBigInline:
      return "ERR Protocol error: too big inline request";
    case ProtocolError::kTooBigMbulkCount:
      return "ERR Protocol error: too big mbulk count string";
    case ProtocolError::kTooBigBulkCount:
      return "ERR Protocol error: too big bulk count string";
    case ProtocolError::kUnbalancedQuotes:
      return "ERR Protocol error: unbalanced quotes in request";
    case ProtocolError::kInvalidMultibulkLength:
      return "ERR Protocol error: invalid multibulk length";
    case ProtocolError::kUnauthenticatedMultibulkLength:
      return "ERR Protocol error: unauthenticated multibulk length";
    case ProtocolError::kExpectedDollar:
      return "ERR Protocol error: expected '$'";
    case ProtocolError::kInvalidBulkLength:
      return "ERR Protocol error: invalid bulk length";
    case ProtocolError::kUnauthenticatedBulkLength:
      return "ERR Protocol error: unauthenticated bulk length";
    case ProtocolError::kQueryBufferLimit:
      return "ERR Protocol error: query buffer limit reached";
  }
  return "ERR Protocol error";
}

std::span<char> RequestParser::prepare(size_t bytes_min) {
  if (error_ != ProtocolError::kNone) buf_.clear();  // input is dropped after an error
  return buf_.prepare(bytes_min);
}

void RequestParser::commit(size_t n) {
  if (error_ != ProtocolError::kNone) return;
  buf_.commit(n);
}

void RequestParser::feed(std::string_view bytes) {
  if (error_ != ProtocolError::kNone) {
    buf_.clear();
    return;
  }
  buf_.append(bytes);
}

void RequestParser::reset() {
  buf_.clear();
  state_ = State::kStart;
  line_ = scan_ = data_ = 0;
  bulk_len_ = args_left_ = 0;
  spans_.clear();
  args_.clear();
  error_ = ProtocolError::kNone;
  error_text_.clear();
}

Parsed RequestParser::fail(ProtocolError e, char got) {
  error_ = e;
  error_text_ = protocol_error_text(e);
  if (e == ProtocolError::kExpectedDollar) {
    error_text_ += ", got '";
    error_text_ += printable(got);
    error_text_ += '\'';
  }
  return Parsed::kError;
}

// The request in progress is incomplete. If more bytes than it may span are
// already buffered, it can never complete within the limit.
Parsed RequestParser::need_more() {
  if (buf_.size() > limits_.query_buffer_bytes_max) return fail(ProtocolError::kQueryBufferLimit);
  return Parsed::kNeedMore;
}

Parsed RequestParser::finish_request(size_t request_bytes) {
  const char* base = buf_.data();
  args_.resize(spans_.size());
  for (size_t i = 0; i < spans_.size(); i++) args_[i] = {base + spans_[i].off, spans_[i].len};
  buf_.consume(request_bytes);
  state_ = State::kStart;
  return Parsed::kItem;
}

// Redis's inline splitting (sdssplitargs): arguments are separated by
// whitespace; "double quotes" take the escapes \n \r \t \b \a \xHH and \<any>
// for that character; 'single quotes' take \' only; a closing quote must be
// followed by whitespace or the end; a quote may open in the middle of an
// argument (a"b c" is the one argument `ab c`). A NUL byte ends the line, as it ends
// Redis's C string. Unescapes in place: the output never overtakes the input.
bool RequestParser::split_inline(char* s, size_t n) {
  if (const void* nul = std::memchr(s, '\0', n)) {
    n = static_cast<size_t>(static_cast<const char*>(nul) - s);
  }
  size_t r = 0, w = 0;
  for (;;) {
    while (r < n && is_space(s[r])) r++;
    if (r == n) return true;
    const size_t start = w;
    bool in_double = false, in_single = false;
    for (;;) {
      if (in_double) {
        if (r == n) return false;
        const char c = s[r];
        if (c == '\\' && r + 3 < n && s[r + 1] == 'x' && hex_value(s[r + 2]) >= 0 &&
            hex_value(s[r + 3]) >= 0) {
          s[w++] = static_cast<char>(hex_value(s[r + 2]) * 16 + hex_value(s[r + 3]));
          r += 4;
        } else if (c == '\\' && r + 1 < n) {
          char e = s[r + 1];
          switch (e) {
            case 'n':
              e = '\n';
              break;
            case 'r':
              e = '\r';
              break;
            case 't':
              e = '\t';
              break;
            case 'b':
              e = '\b';
              break;
            case 'a':
              e = '\a';
              break;
            default:
              break;
          }
          s[w++] = e;
          r += 2;
        } else if (c == '"') {
          if (r + 1 < n && !is_space(s[r + 1])) return false;
          r++;
          break;
        } else {
          s[w++] = c;
          r++;
        }
      } else if (in_single) {
        if (r == n) return false;
        const char c = s[r];
        if (c == '\\' && r + 1 < n && s[r + 1] == '\'') {
          s[w++] = '\'';
          r += 2;
        } else if (c == '\'') {
          if (r + 1 < n && !is_space(s[r + 1])) return false;
          r++;
          break;
        } else {
          s[w++] = c;
          r++;
        }
      } else {
        // A run of ordinary bytes, moved (if at all) in one go.
        size_t run = r;
        while (run < n && !is_unquoted_special(s[run])) run++;
        if (run > r) {
          if (w != r) std::memmove(s + w, s + r, run - r);
          w += run - r;
          r = run;
        }
        if (r == n) break;
        const char c = s[r];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') break;
        if (c == '"') {
          in_double = true;
        } else if (c == '\'') {
          in_single = true;
        } else {
          s[w++] = c;
        }
        r++;
      }
    }
    spans_.push_back({start, w - start});
  }
}

namespace {

enum class LineScan { kFound, kNeedMore, kTooLong };

// Finds the '\r' ending the header line that starts at `line`: at most
// `max` bytes may precede it, and the byte after it must have arrived (Redis
// skips that byte, normally '\n', without looking at it). `scan` remembers
// how far the search got, so a line arriving byte by byte is scanned once.
LineScan scan_header(const char* p, size_t avail, size_t line, uint64_t max, size_t* scan,
                     size_t* cr) {
  const size_t limit = std::min<uint64_t>(avail, sat_add(line, sat_add(max, 1)));
  if (*scan < limit) {
    if (const void* f = std::memchr(p + *scan, '\r', limit - *scan)) {
      *cr = static_cast<size_t>(static_cast<const char*>(f) - p);
      if (*cr + 1 >= avail) {
        *scan = *cr;
        return LineScan::kNeedMore;
      }
      return LineScan::kFound;
    }
    *scan = limit;
  }
  return avail - line > max ? LineScan::kTooLong : LineScan::kNeedMore;
}

}  // namespace

Parsed RequestParser::next() {
  if (error_ != ProtocolError::kNone) return Parsed::kError;
  for (;;) {
    char* p = buf_.data();
    // A request may not span more than query_buffer_bytes_max bytes: looking
    // no further makes every outcome independent of how the input was split.
    const size_t avail = std::min<uint64_t>(buf_.size(), limits_.query_buffer_bytes_max);
    switch (state_) {
      case State::kStart:
        if (avail == 0) return need_more();
        spans_.clear();
        if (p[0] == '*') {
          state_ = State::kMultibulkHeader;
          line_ = 0;
          scan_ = 1;
        } else {
          state_ = State::kInline;
          scan_ = 0;
        }
        break;

      case State::kInline: {
        const size_t limit = std::min<uint64_t>(avail, sat_add(limits_.inline_bytes_max, 1));
        const void* nl = scan_ < limit ? std::memchr(p + scan_, '\n', limit - scan_) : nullptr;
        if (nl == nullptr) {
          if (avail > limits_.inline_bytes_max) return fail(ProtocolError::kTooBigInline);
          scan_ = limit;
          return need_more();
        }
        const size_t len = static_cast<size_t>(static_cast<const char*>(nl) - p);
        const size_t content = len > 0 && p[len - 1] == '\r' ? len - 1 : len;
        if (!split_inline(p, content)) return fail(ProtocolError::kUnbalancedQuotes);
        if (spans_.empty()) {  // an empty line: nothing to run
          buf_.consume(len + 1);
          state_ = State::kStart;
          break;
        }
        return finish_request(len + 1);
      }

      case State::kMultibulkHeader: {
        size_t cr = 0;
        switch (scan_header(p, avail, 0, limits_.inline_bytes_max, &scan_, &cr)) {
          case LineScan::kTooLong:
            return fail(ProtocolError::kTooBigMbulkCount);
          case LineScan::kNeedMore:
            return need_more();
          case LineScan::kFound:
            break;
        }
        int64_t n = 0;
        if (!parse_int64({p + 1, cr - 1}, &n) ||
            (n > 0 && static_cast<uint64_t>(n) > limits_.args_max)) {
          return fail(ProtocolError::kInvalidMultibulkLength);
        }
        if (!authenticated_ && n > 0 &&
            static_cast<uint64_t>(n) > limits_.unauthenticated_args_max) {
          return fail(ProtocolError::kUnauthenticatedMultibulkLength);
        }
        if (n <= 0) {  // *0 and *-1: nothing to run, as in Redis
          buf_.consume(cr + 2);
          state_ = State::kStart;
          break;
        }
        args_left_ = static_cast<uint64_t>(n);
        line_ = cr + 2;
        scan_ = line_ + 1;
        state_ = State::kBulkHeader;
        break;
      }

      case State::kBulkHeader: {
        if (line_ >= avail) return need_more();
        if (p[line_] != '$') return fail(ProtocolError::kExpectedDollar, p[line_]);
        size_t cr = 0;
        switch (scan_header(p, avail, line_, limits_.inline_bytes_max, &scan_, &cr)) {
          case LineScan::kTooLong:
            return fail(ProtocolError::kTooBigBulkCount);
          case LineScan::kNeedMore:
            return need_more();
          case LineScan::kFound:
            break;
        }
        int64_t n = 0;
        if (!parse_int64({p + line_ + 1, cr - line_ - 1}, &n) || n < 0 ||
            static_cast<uint64_t>(n) > limits_.bulk_bytes_max) {
          return fail(ProtocolError::kInvalidBulkLength);
        }
        if (!authenticated_ && static_cast<uint64_t>(n) > limits_.unauthenticated_bulk_bytes_max) {
          return fail(ProtocolError::kUnauthenticatedBulkLength);
        }
        data_ = cr + 2;
        bulk_len_ = static_cast<uint64_t>(n);
        // Refuse now what cannot fit, rather than after receiving it.
        if (sat_add(bulk_len_, 2) > limits_.query_buffer_bytes_max - data_) {
          return fail(ProtocolError::kQueryBufferLimit);
        }
        state_ = State::kBulkData;
        break;
      }

      case State::kBulkData: {
        // The argument and the two bytes after it (Redis skips them unchecked).
        if (avail - data_ < bulk_len_ + 2) return need_more();
        spans_.push_back({data_, static_cast<size_t>(bulk_len_)});
        line_ = data_ + static_cast<size_t>(bulk_len_) + 2;
        if (--args_left_ == 0) return finish_request(line_);
        scan_ = line_ + 1;
        state_ = State::kBulkHeader;
        break;
      }
    }
  }
}

void append_command(std::string* out, std::span<const std::string_view> args) {
  char b[24];
  b[0] = '*';
  char* e = std::to_chars(b + 1, b + sizeof(b), args.size()).ptr;
  *e++ = '\r';
  *e++ = '\n';
  out->append(b, static_cast<size_t>(e - b));
  for (std::string_view a : args) {
    b[0] = '$';
    e = std::to_chars(b + 1, b + sizeof(b), a.size()).ptr;
    *e++ = '\r';
    *e++ = '\n';
    out->append(b, static_cast<size_t>(e - b));
    out->append(a);
    out->append("\r\n", 2);
  }
}

// ---------------------------------------------------------------------------
// Value

const char* type_name(Type t) {
  switch (t) {
    case Type::kSimpleString:
      return "simple-string";
    case Type::kError:
      return "error";
    case Type::kInteger:
      return "integer";
    case Type::kBulkString:
      return "bulk-string";
    case Type::kArray:
      return "array";
    case Type::kNullBulk:
      return "null-bulk";
    case Type::kNullArray:
      return "null-array";
    case Type::kNull:
      return "null";
    case Type::kDouble:
      return "double";
    case Type::kBoolean:
      return "boolean";
    case Type::kBlobError:
      return "blob-error";
    case Type::kVerbatim:
      return "verbatim";
    case Type::kBigNumber:
      return "big-number";
    case Type::kMap:
      return "map";
    case Type::kSet:
      return "set";
    case Type::kPush:
      return "push";
  }
  return "?";
}

std::string_view Value::verbatim_format() const {
  return str.size() >= 4 ? std::string_view(str).substr(0, 3) : std::string_view();
}

std::string_view Value::verbatim_text() const {
  return str.size() >= 4 ? std::string_view(str).substr(4) : std::string_view(str);
}

bool Value::operator==(const Value& o) const {
  if (type != o.type || attributes != o.attributes) return false;
  switch (type) {
    case Type::kInteger:
    case Type::kBoolean:
      return integer == o.integer;
    case Type::kDouble:
      return real == o.real || (std::isnan(real) && std::isnan(o.real));
    case Type::kNullBulk:
    case Type::kNullArray:
    case Type::kNull:
      return true;
    case Type::kArray:
    case Type::kMap:
    case Type::kSet:
    case Type::kPush:
      return elements == o.elements;
    default:
      return str == o.str;
  }
}

namespace {

void quote_into(std::string* out, std::string_view s) {
  out->push_back('"');
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else if (c >= 0x20 && c < 0x7f) {
      out->push_back(static_cast<char>(c));
    } else {
      char b[8];
      std::snprintf(b, sizeof(b), "\\x%02x", c);
      out->append(b);
    }
  }
  out->push_back('"');
}

void to_string_into(const Value& v, std::string* out) {
  if (!v.attributes.empty()) {
    out->append("|{");
    for (size_t i = 0; i < v.attributes.size(); i++) {
      if (i > 0) out->append(i % 2 ? ": " : ", ");
      to_string_into(v.attributes[i], out);
    }
    out->append("} ");
  }
  switch (v.type) {
    case Type::kSimpleString:
      out->push_back('\'');
      out->append(v.str);
      out->push_back('\'');
      break;
    case Type::kError:
    case Type::kBlobError:
      out->append("(error) ");
      out->append(v.str);
      break;
    case Type::kInteger:
      out->append("(integer) ");
      out->append(std::to_string(v.integer));
      break;
    case Type::kBulkString:
      quote_into(out, v.str);
      break;
    case Type::kNullBulk:
    case Type::kNullArray:
    case Type::kNull:
      out->append("(nil)");
      break;
    case Type::kDouble:
      out->append("(double) ");
      out->append(v.str.empty() ? format_double(v.real) : v.str);
      break;
    case Type::kBoolean:
      out->append(v.integer ? "(true)" : "(false)");
      break;
    case Type::kVerbatim:
      out->append("(verbatim) ");
      quote_into(out, v.str);
      break;
    case Type::kBigNumber:
      out->append("(big) ");
      out->append(v.str);
      break;
    case Type::kMap:
      out->push_back('{');
      for (size_t i = 0; i < v.elements.size(); i++) {
        if (i > 0) out->append(i % 2 ? ": " : ", ");
        to_string_into(v.elements[i], out);
      }
      out->push_back('}');
      break;
    case Type::kArray:
    case Type::kSet:
    case Type::kPush:
      out->append(v.type == Type::kSet ? "~[" : v.type == Type::kPush ? ">[" : "[");
      for (size_t i = 0; i < v.elements.size(); i++) {
        if (i > 0) out->append(", ");
        to_string_into(v.elements[i], out);
      }
      out->push_back(']');
      break;
  }
}

}  // namespace

std::string Value::to_string() const {
  std::string out;
  to_string_into(*this, &out);
  return out;
}

Value Value::simple(std::string s) {
  Value v;
  v.type = Type::kSimpleString;
  v.str = std::move(s);
  return v;
}

Value Value::error_value(std::string s) {
  Value v;
  v.type = Type::kError;
  v.str = std::move(s);
  return v;
}

Value Value::integer_value(int64_t n) {
  Value v;
  v.type = Type::kInteger;
  v.integer = n;
  return v;
}

Value Value::bulk(std::string s) {
  Value v;
  v.type = Type::kBulkString;
  v.str = std::move(s);
  return v;
}

Value Value::null_value(Type t) {
  QKV_CHECK(t == Type::kNull || t == Type::kNullBulk || t == Type::kNullArray);
  Value v;
  v.type = t;
  return v;
}

Value Value::double_value(double d) {
  Value v;
  v.type = Type::kDouble;
  v.real = d;
  v.str = format_double(d);
  return v;
}

Value Value::boolean(bool b) {
  Value v;
  v.type = Type::kBoolean;
  v.integer = b ? 1 : 0;
  return v;
}

Value Value::aggregate(Type t, std::vector<Value> elements) {
  QKV_CHECK(t == Type::kArray || t == Type::kMap || t == Type::kSet || t == Type::kPush);
  QKV_CHECK(t != Type::kMap || elements.size() % 2 == 0) << "a map needs key, value pairs";
  Value v;
  v.type = t;
  v.elements = std::move(elements);
  return v;
}

// ---------------------------------------------------------------------------
// ReplyWriter

void ReplyWriter::header(char prefix, uint64_t n) {
  char b[24];
  b[0] = prefix;
  char* e = std::to_chars(b + 1, b + sizeof(b), n).ptr;
  *e++ = '\r';
  *e++ = '\n';
  out_->append(b, static_cast<size_t>(e - b));
}

void ReplyWriter::line(char prefix, std::string_view s) {
  out_->push_back(prefix);
  const size_t at = out_->size();
  out_->append(s);
  for (size_t i = out_->find_first_of("\r\n", at); i != std::string::npos;
       i = out_->find_first_of("\r\n", i + 1)) {
    (*out_)[i] = ' ';
  }
  out_->append("\r\n", 2);
}

void ReplyWriter::blob(char prefix, std::string_view head, std::string_view s) {
  header(prefix, head.size() + s.size());
  out_->append(head);
  out_->append(s);
  out_->append("\r\n", 2);
}

void ReplyWriter::simple_string(std::string_view s) { line('+', s); }

void ReplyWriter::error(std::string_view code_and_message) { line('-', code_and_message); }

void ReplyWriter::integer(int64_t n) {
  char b[32];
  b[0] = ':';
  char* e = std::to_chars(b + 1, b + sizeof(b), n).ptr;
  *e++ = '\r';
  *e++ = '\n';
  out_->append(b, static_cast<size_t>(e - b));
}

void ReplyWriter::bulk(std::string_view s) { blob('$', {}, s); }

void ReplyWriter::bulk_integer(int64_t n) {
  char b[24];
  char* e = std::to_chars(b, b + sizeof(b), n).ptr;
  bulk({b, static_cast<size_t>(e - b)});
}

void ReplyWriter::null() {
  if (proto_ == Protocol::kResp3) {
    out_->append("_\r\n", 3);
  } else {
    out_->append("$-1\r\n", 5);
  }
}

void ReplyWriter::null_array() {
  if (proto_ == Protocol::kResp3) {
    out_->append("_\r\n", 3);
  } else {
    out_->append("*-1\r\n", 5);
  }
}

void ReplyWriter::array(size_t n) { header('*', n); }

void ReplyWriter::map(size_t pairs) {
  if (proto_ == Protocol::kResp3) {
    header('%', pairs);
  } else {
    header('*', uint64_t{2} * pairs);
  }
}

void ReplyWriter::set(size_t n) { header(proto_ == Protocol::kResp3 ? '~' : '*', n); }

void ReplyWriter::push(size_t n) { header(proto_ == Protocol::kResp3 ? '>' : '*', n); }

bool ReplyWriter::attribute(size_t pairs) {
  if (proto_ != Protocol::kResp3) return false;
  header('|', pairs);
  return true;
}

void ReplyWriter::double_value(double d) {
  char b[kDoubleChars];
  const std::string_view s(b, format_double(d, b));
  if (proto_ == Protocol::kResp3) {
    out_->push_back(',');
    out_->append(s);
    out_->append("\r\n", 2);
  } else {
    bulk(s);
  }
}

void ReplyWriter::boolean(bool b) {
  if (proto_ == Protocol::kResp3) {
    out_->append(b ? "#t\r\n" : "#f\r\n", 4);
  } else {
    out_->append(b ? ":1\r\n" : ":0\r\n", 4);
  }
}

void ReplyWriter::big_number(std::string_view digits) {
  if (proto_ == Protocol::kResp3) {
    line('(', digits);
  } else {
    bulk(digits);
  }
}

void ReplyWriter::verbatim(std::string_view text, std::string_view format) {
  if (proto_ != Protocol::kResp3) {
    bulk(text);
    return;
  }
  QKV_CHECK_EQ(format.size(), 3u) << "a verbatim string's format has 3 bytes";
  header('=', text.size() + 4);
  out_->append(format);
  out_->push_back(':');
  out_->append(text);
  out_->append("\r\n", 2);
}

void ReplyWriter::blob_error(std::string_view code_and_message) {
  if (proto_ == Protocol::kResp3) {
    blob('!', {}, code_and_message);
  } else {
    error(code_and_message);
  }
}

void ReplyWriter::insert_header(size_t mark, char prefix, uint64_t n) {
  QKV_CHECK_LE(mark, out_->size());
  char b[24];
  b[0] = prefix;
  char* e = std::to_chars(b + 1, b + sizeof(b), n).ptr;
  *e++ = '\r';
  *e++ = '\n';
  out_->insert(mark, b, static_cast<size_t>(e - b));
}

void ReplyWriter::fill_deferred_array(size_t mark, size_t n) { insert_header(mark, '*', n); }

void ReplyWriter::fill_deferred_map(size_t mark, size_t pairs) {
  if (proto_ == Protocol::kResp3) {
    insert_header(mark, '%', pairs);
  } else {
    insert_header(mark, '*', uint64_t{2} * pairs);
  }
}

void ReplyWriter::fill_deferred_set(size_t mark, size_t n) {
  insert_header(mark, proto_ == Protocol::kResp3 ? '~' : '*', n);
}

void ReplyWriter::value(const Value& v) {
  if (!v.attributes.empty() && attribute(v.attributes.size() / 2)) {
    for (const Value& a : v.attributes) value(a);
  }
  switch (v.type) {
    case Type::kSimpleString:
      simple_string(v.str);
      break;
    case Type::kError:
      error(v.str);
      break;
    case Type::kInteger:
      integer(v.integer);
      break;
    case Type::kBulkString:
      bulk(v.str);
      break;
    case Type::kNullBulk:
    case Type::kNull:
      null();
      break;
    case Type::kNullArray:
      null_array();
      break;
    case Type::kDouble:
      if (v.str.empty()) {
        double_value(v.real);
      } else if (proto_ == Protocol::kResp3) {
        line(',', v.str);
      } else {
        bulk(v.str);
      }
      break;
    case Type::kBoolean:
      boolean(v.integer != 0);
      break;
    case Type::kBlobError:
      blob_error(v.str);
      break;
    case Type::kVerbatim:
      if (proto_ == Protocol::kResp3 && v.str.size() >= 4) {
        blob('=', {}, v.str);
      } else {
        bulk(v.verbatim_text());
      }
      break;
    case Type::kBigNumber:
      big_number(v.str);
      break;
    case Type::kArray:
      array(v.elements.size());
      for (const Value& e : v.elements) value(e);
      break;
    case Type::kMap:
      map(v.elements.size() / 2);
      for (const Value& e : v.elements) value(e);
      break;
    case Type::kSet:
      set(v.elements.size());
      for (const Value& e : v.elements) value(e);
      break;
    case Type::kPush:
      push(v.elements.size());
      for (const Value& e : v.elements) value(e);
      break;
  }
}

// ---------------------------------------------------------------------------
// ReplyParser

std::span<char> ReplyParser::prepare(size_t bytes_min) {
  if (failed_) buf_.clear();
  return buf_.prepare(bytes_min);
}

void ReplyParser::commit(size_t n) {
  if (failed_) return;
  buf_.commit(n);
}

void ReplyParser::feed(std::string_view bytes) {
  if (failed_) {
    buf_.clear();
    return;
  }
  buf_.append(bytes);
}

void ReplyParser::reset() {
  buf_.clear();
  state_ = State::kType;
  type_ = 0;
  in_stream_ = false;
  done_ = false;
  pos_ = scan_ = 0;
  blob_len_ = stream_len_ = 0;
  stream_value_ = nullptr;
  values_ = 0;
  frames_.clear();
  pending_attrs_.clear();
  root_ = Value();
  raw_ = {};
  failed_ = false;
  error_.clear();
}

Parsed ReplyParser::fail(std::string msg) {
  failed_ = true;
  error_ = std::move(msg);
  return Parsed::kError;
}

Parsed ReplyParser::need_more() {
  if (buf_.size() > limits_.reply_bytes_max) {
    return fail("Protocol error: reply longer than reply_bytes_max");
  }
  return Parsed::kNeedMore;
}

// The node for a new value at the current depth, with any attribute that
// preceded it. Null without a tree.
Value* ReplyParser::begin_value(Type t) {
  if (!build_tree_) return nullptr;
  const size_t depth = frames_.size();
  Value* v;
  if (depth == 0) {
    root_ = Value();
    v = &root_;
  } else {
    v = &frames_.back().v->elements.emplace_back();
  }
  v->type = t;
  if (depth < pending_attrs_.size() && !pending_attrs_[depth].empty()) {
    v->attributes = std::move(pending_attrs_[depth]);
    pending_attrs_[depth].clear();
  }
  return v;
}

bool ReplyParser::open_aggregate(char kind, int64_t n) {
  if (frames_.size() >= limits_.depth_max) {
    fail("Protocol error: nesting deeper than depth_max");
    return false;
  }
  Frame f;
  f.kind = kind;
  f.seen = 0;
  f.left = n < 0 ? -1 : (kind == '%' || kind == '|') ? 2 * n : n;
  if (kind == '|') {
    if (build_tree_) {
      f.owned = std::make_unique<Value>();
      f.owned->type = Type::kMap;
    }
    f.v = f.owned.get();
  } else {
    const Type t = kind == '*'   ? Type::kArray
                   : kind == '%' ? Type::kMap
                   : kind == '~' ? Type::kSet
                                 : Type::kPush;
    f.v = begin_value(t);
  }
  frames_.push_back(std::move(f));
  if (frames_.back().left == 0 && close_top()) done_ = value_done();
  return true;
}

// Pops the innermost aggregate. An attribute is kept for the value that
// follows it at the same depth and is not itself a value of its parent.
bool ReplyParser::close_top() {
  Frame f = std::move(frames_.back());
  frames_.pop_back();
  if (f.kind != '|') return true;
  if (build_tree_) {
    const size_t depth = frames_.size();
    if (pending_attrs_.size() <= depth) pending_attrs_.resize(depth + 1);
    auto& dst = pending_attrs_[depth];
    for (Value& a : f.owned->elements) dst.push_back(std::move(a));
  }
  return false;
}

// A value just completed at the current depth: count it in its parent,
// closing every aggregate it completes.
bool ReplyParser::value_done() {
  for (;;) {
    if (frames_.empty()) return true;
    Frame& f = frames_.back();
    f.seen++;
    if (f.left < 0) return false;  // streamed: closed by '.'
    if (--f.left > 0) return false;
    if (!close_top()) return false;
  }
}

namespace {

bool parse_length(std::string_view line, uint64_t max, int64_t* n) {
  return parse_int64(line, n) && *n >= 0 && static_cast<uint64_t>(*n) <= max;
}

bool is_big_number(std::string_view s) {
  size_t i = !s.empty() && s[0] == '-' ? 1 : 0;
  if (i == s.size()) return false;
  for (; i < s.size(); i++) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  return true;
}

}  // namespace

bool ReplyParser::on_line(std::string_view line) {
  if (in_stream_) {  // inside $?: only ;len chunks
    int64_t n = 0;
    if (type_ != ';' || !parse_length(line, limits_.bulk_bytes_max, &n)) {
      fail("Protocol error: bad streamed string chunk");
      return false;
    }
    if (n == 0) {
      in_stream_ = false;
      stream_value_ = nullptr;
      done_ = value_done();
      return true;
    }
    if (stream_len_ + static_cast<uint64_t>(n) > limits_.bulk_bytes_max) {
      fail("Protocol error: streamed string longer than bulk_bytes_max");
      return false;
    }
    blob_len_ = static_cast<uint64_t>(n);
    state_ = State::kBlob;
    return true;
  }
  if (type_ != '|' && type_ != '.' && build_tree_ && ++values_ > limits_.values_max) {
    fail("Protocol error: more values than values_max");
    return false;
  }
  switch (type_) {
    case '+':
    case '-':
      if (Value* v = begin_value(type_ == '+' ? Type::kSimpleString : Type::kError)) {
        v->str.assign(line);
      }
      done_ = value_done();
      return true;
    case ':': {
      int64_t n = 0;
      if (!parse_int64(line, &n)) {
        fail("Protocol error: bad integer");
        return false;
      }
      if (Value* v = begin_value(Type::kInteger)) v->integer = n;
      done_ = value_done();
      return true;
    }
    case '_':
      if (!line.empty()) {
        fail("Protocol error: bad null");
        return false;
      }
      begin_value(Type::kNull);
      done_ = value_done();
      return true;
    case ',': {
      double d = 0;
      const auto r = std::from_chars(line.data(), line.data() + line.size(), d);
      if (line.empty() || r.ec != std::errc() || r.ptr != line.data() + line.size()) {
        fail("Protocol error: bad double");
        return false;
      }
      if (Value* v = begin_value(Type::kDouble)) {
        v->real = d;
        v->str.assign(line);
      }
      done_ = value_done();
      return true;
    }
    case '#':
      if (line != "t" && line != "f") {
        fail("Protocol error: bad boolean");
        return false;
      }
      if (Value* v = begin_value(Type::kBoolean)) v->integer = line == "t";
      done_ = value_done();
      return true;
    case '(':
      if (!is_big_number(line)) {
        fail("Protocol error: bad big number");
        return false;
      }
      if (Value* v = begin_value(Type::kBigNumber)) v->str.assign(line);
      done_ = value_done();
      return true;
    case '$':
    case '!':
    case '=': {
      if (type_ == '$' && line == "?") {
        stream_value_ = begin_value(Type::kBulkString);
        in_stream_ = true;
        stream_len_ = 0;
        return true;
      }
      if (type_ == '$' && line == "-1") {
        begin_value(Type::kNullBulk);
        done_ = value_done();
        return true;
      }
      int64_t n = 0;
      if (!parse_length(line, limits_.bulk_bytes_max, &n) || (type_ == '=' && n < 4)) {
        fail("Protocol error: bad bulk length");
        return false;
      }
      blob_len_ = static_cast<uint64_t>(n);
      state_ = State::kBlob;
      return true;
    }
    case '*':
    case '%':
    case '~':
    case '>':
    case '|': {
      if (line == "?" && (type_ == '*' || type_ == '%' || type_ == '~')) {
        return open_aggregate(type_, -1);
      }
      if (type_ == '*' && line == "-1") {
        begin_value(Type::kNullArray);
        done_ = value_done();
        return true;
      }
      int64_t n = 0;
      if (!parse_length(line, limits_.aggregate_len_max, &n)) {
        fail("Protocol error: bad aggregate length");
        return false;
      }
      return open_aggregate(type_, n);
    }
    case '.': {
      if (!line.empty() || frames_.empty() || frames_.back().left >= 0 ||
          (frames_.back().kind == '%' && frames_.back().seen % 2 != 0)) {
        fail("Protocol error: unexpected end of aggregate");
        return false;
      }
      if (frames_.size() < pending_attrs_.size()) pending_attrs_[frames_.size()].clear();
      if (close_top()) done_ = value_done();
      return true;
    }
    default: {
      std::string msg = "Protocol error: unknown reply type byte '";
      msg += printable(type_);
      msg += '\'';
      fail(std::move(msg));
      return false;
    }
  }
}

bool ReplyParser::on_blob(std::string_view payload) {
  switch (type_) {
    case ';':
      if (stream_value_ != nullptr) stream_value_->str.append(payload);
      stream_len_ += payload.size();
      return true;
    case '$':
    case '!':
      if (Value* v = begin_value(type_ == '$' ? Type::kBulkString : Type::kBlobError)) {
        v->str.assign(payload);
      }
      done_ = value_done();
      return true;
    case '=':
      if (payload[3] != ':') {
        fail("Protocol error: bad verbatim string");
        return false;
      }
      if (Value* v = begin_value(Type::kVerbatim)) v->str.assign(payload);
      done_ = value_done();
      return true;
  }
  QKV_FATAL() << "blob of type " << type_;
  return false;
}

Parsed ReplyParser::next() {
  if (failed_) return Parsed::kError;
  for (;;) {
    const char* p = buf_.data();
    const size_t avail = std::min<uint64_t>(buf_.size(), limits_.reply_bytes_max);
    switch (state_) {
      case State::kType:
        if (pos_ >= avail) return need_more();
        type_ = p[pos_];
        if (std::strchr("+-:$*_,#!=(%~>|.;", type_) == nullptr || type_ == '\0') {
          std::string msg = "Protocol error: unknown reply type byte '";
          msg += printable(type_);
          msg += '\'';
          return fail(std::move(msg));
        }
        scan_ = pos_ + 1;
        state_ = State::kLine;
        break;

      case State::kLine: {
        const size_t start = pos_ + 1;
        const size_t limit =
            std::min<uint64_t>(avail, sat_add(start, sat_add(limits_.line_bytes_max, 1)));
        const void* f = scan_ < limit ? std::memchr(p + scan_, '\r', limit - scan_) : nullptr;
        if (f == nullptr) {
          if (avail - start > limits_.line_bytes_max) {
            return fail("Protocol error: line longer than line_bytes_max");
          }
          scan_ = std::max(scan_, limit);
          return need_more();
        }
        const size_t cr = static_cast<size_t>(static_cast<const char*>(f) - p);
        if (cr + 1 >= avail) {
          scan_ = cr;
          return need_more();
        }
        if (p[cr + 1] != '\n') return fail("Protocol error: CR not followed by LF");
        const std::string_view line(p + start, cr - start);
        if (line.find('\n') != std::string_view::npos)
          return fail("Protocol error: LF inside a line");
        pos_ = cr + 2;
        state_ = State::kType;
        if (!on_line(line)) return Parsed::kError;
        if (state_ == State::kBlob && sat_add(blob_len_, 2) > limits_.reply_bytes_max - pos_) {
          return fail("Protocol error: reply longer than reply_bytes_max");
        }
        break;
      }

      case State::kBlob: {
        if (avail - pos_ < blob_len_ + 2) return need_more();
        const size_t end = pos_ + static_cast<size_t>(blob_len_);
        if (p[end] != '\r' || p[end + 1] != '\n')
          return fail("Protocol error: blob not followed by CRLF");
        const std::string_view payload(p + pos_, static_cast<size_t>(blob_len_));
        pos_ = end + 2;
        state_ = State::kType;
        if (!on_blob(payload)) return Parsed::kError;
        break;
      }
    }
    if (done_) {
      done_ = false;
      raw_ = std::string_view(buf_.data(), pos_);
      buf_.consume(pos_);
      pos_ = scan_ = 0;
      values_ = 0;
      return Parsed::kItem;
    }
  }
}

}  // namespace qkv::net
