// Load driver for etcd's v3 HTTP/JSON gateway (etcd 3.4 serves /v3/...), the
// etcd side of bench/compare. N client threads, each with its own keep-alive
// TCP connection, issue one request at a time (no pipelining, like
// redis-benchmark without -P) for a warm-up period and then a measured period;
// it prints throughput and latency percentiles in redis-benchmark's --csv
// columns so bench/compare parses both the same way.
//
//   etcd_load --endpoints HOST:PORT[,HOST:PORT...] --op put|range|incr
//             [--clients N] [--value-size BYTES] [--keyspace K]
//             [--warmup-seconds S] [--seconds S] [--seed X]
//
// Operations (keys are "key:%012d" / "counter:%012d", uniform in [0, K), as
// redis-benchmark -r K writes them):
//   put    POST /v3/kv/put   {key, value}                       (SET)
//   range  POST /v3/kv/range {key, serializable:false}          (linearizable GET)
//   incr   etcd has no server-side increment, so an increment is what an etcd
//          client must do: a linearizable range to read the value and its
//          mod_revision, then a txn "if mod_revision == R then put value+1
//          else range" repeated until it succeeds (a failed txn returns the
//          fresh value, so a retry costs one round trip). Two round trips per
//          increment without contention; conflicts are counted as retries.
//
// Client i talks to endpoint i % (number of endpoints). Any non-200 answer or
// a transport error counts as an error; the connection is reopened and the
// operation is not counted as done. Output: a header line and one data line:
//   "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",
//   "p95_latency_ms","p99_latency_ms","max_latency_ms","errors","retries"
// Exit status 1 if any error happened (the figures are still printed).
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Endpoint {
  std::string host;
  std::string port;
};

struct Options {
  std::vector<Endpoint> endpoints;
  std::string op = "put";
  int clients = 1;
  size_t value_size = 100;
  uint64_t keyspace = 100000;
  double warmup_seconds = 1;
  double seconds = 5;
  uint64_t seed = 1;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "etcd_load: %s\nusage: etcd_load --endpoints HOST:PORT[,...] --op put|range|incr "
               "[--clients N] [--value-size B] [--keyspace K] [--warmup-seconds S] "
               "[--seconds S] [--seed X]\n",
               why);
  std::exit(2);
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value for " + a).c_str());
      return argv[++i];
    };
    if (a == "--endpoints") {
      std::string list = value();
      size_t start = 0;
      while (start <= list.size()) {
        size_t comma = list.find(',', start);
        std::string ep = list.substr(start, comma == std::string::npos ? std::string::npos
                                                                       : comma - start);
        size_t colon = ep.rfind(':');
        if (colon == std::string::npos) usage("an endpoint must be HOST:PORT");
        o.endpoints.push_back({ep.substr(0, colon), ep.substr(colon + 1)});
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    } else if (a == "--op") {
      o.op = value();
    } else if (a == "--clients") {
      o.clients = std::atoi(value().c_str());
    } else if (a == "--value-size") {
      o.value_size = std::strtoull(value().c_str(), nullptr, 10);
    } else if (a == "--keyspace") {
      o.keyspace = std::strtoull(value().c_str(), nullptr, 10);
    } else if (a == "--warmup-seconds") {
      o.warmup_seconds = std::atof(value().c_str());
    } else if (a == "--seconds") {
      o.seconds = std::atof(value().c_str());
    } else if (a == "--seed") {
      o.seed = std::strtoull(value().c_str(), nullptr, 10);
    } else {
      usage(("unknown argument " + a).c_str());
    }
  }
  if (o.endpoints.empty()) usage("--endpoints is required");
  if (o.op != "put" && o.op != "range" && o.op != "incr") usage("--op must be put, range or incr");
  if (o.clients < 1 || o.clients > 4096) usage("--clients must be in 1..4096");
  if (o.keyspace < 1) usage("--keyspace must be at least 1");
  if (o.seconds <= 0 || o.warmup_seconds < 0) usage("bad --seconds or --warmup-seconds");
  return o;
}

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void base64_append(std::string_view in, std::string* out) {
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out->push_back(kB64[v >> 18]);
    out->push_back(kB64[(v >> 12) & 63]);
    out->push_back(kB64[(v >> 6) & 63]);
    out->push_back(kB64[v & 63]);
  }
  size_t rest = in.size() - i;
  if (rest == 1) {
    uint32_t v = uint8_t(in[i]) << 16;
    out->push_back(kB64[v >> 18]);
    out->push_back(kB64[(v >> 12) & 63]);
    out->append("==");
  } else if (rest == 2) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out->push_back(kB64[v >> 18]);
    out->push_back(kB64[(v >> 12) & 63]);
    out->push_back(kB64[(v >> 6) & 63]);
    out->push_back('=');
  }
}

std::optional<std::string> base64_decode(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    const char* p = std::strchr(kB64, c);
    if (p == nullptr || c == '\0') return std::nullopt;
    acc = (acc << 6) | uint32_t(p - kB64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(char((acc >> bits) & 0xff));
    }
  }
  return out;
}

// The string value of `"field":"..."` after position `from` in a JSON body,
// or nullopt. etcd's gateway writes int64 fields as strings and bytes fields
// as base64, neither of which contain escapes.
std::optional<std::string_view> json_string_field(std::string_view body, std::string_view field,
                                                  size_t from = 0) {
  std::string needle;
  needle.append("\"").append(field).append("\":\"");
  size_t at = body.find(needle, from);
  if (at == std::string_view::npos) return std::nullopt;
  at += needle.size();
  size_t end = body.find('"', at);
  if (end == std::string_view::npos) return std::nullopt;
  return body.substr(at, end - at);
}

// One keep-alive HTTP/1.1 connection. Not thread-safe; one per client thread.
class Connection {
 public:
  explicit Connection(Endpoint ep) : ep_(std::move(ep)) {}
  ~Connection() { close_fd(); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // POSTs `body` to `path`; on success returns the HTTP status and puts the
  // response body in *response. nullopt on a transport error (the connection
  // is closed and reopened by the next call).
  std::optional<int> post(std::string_view path, std::string_view body, std::string* response) {
    if (fd_ < 0 && !open_fd()) return std::nullopt;
    request_.clear();
    request_.append("POST ").append(path).append(" HTTP/1.1\r\nHost: ");
    request_.append(ep_.host).append(":").append(ep_.port);
    request_.append("\r\nContent-Type: application/json\r\nContent-Length: ");
    request_.append(std::to_string(body.size())).append("\r\n\r\n").append(body);
    if (!send_all(request_)) return fail();
    auto status = read_response(response);
    if (!status) return fail();
    return status;
  }

 private:
  std::optional<int> fail() {
    close_fd();
    return std::nullopt;
  }

  void close_fd() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    in_.clear();
  }

  bool open_fd() {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (::getaddrinfo(ep_.host.c_str(), ep_.port.c_str(), &hints, &res) != 0) return false;
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
      int fd = ::socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
      if (fd < 0) continue;
      if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        timeval tv{10, 0};  // a stuck server fails the request instead of the run
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        fd_ = fd;
        break;
      }
      ::close(fd);
    }
    ::freeaddrinfo(res);
    return fd_ >= 0;
  }

  bool send_all(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(size_t(n));
    }
    return true;
  }

  // Appends more bytes from the socket to in_; false on EOF or error.
  bool fill() {
    char buf[16384];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      in_.append(buf, size_t(n));
      return true;
    }
  }

  // Reads until in_ holds at least `n` bytes after `pos`.
  bool need(size_t pos, size_t n) {
    while (in_.size() < pos + n) {
      if (!fill()) return false;
    }
    return true;
  }

  // Reads a line ending in CRLF starting at *pos; advances *pos past it.
  std::optional<std::string> line_at(size_t* pos) {
    for (;;) {
      size_t eol = in_.find("\r\n", *pos);
      if (eol != std::string::npos) {
        std::string line = in_.substr(*pos, eol - *pos);
        *pos = eol + 2;
        return line;
      }
      if (in_.size() - *pos > (1 << 16) || !fill()) return std::nullopt;
    }
  }

  std::optional<int> read_response(std::string* body) {
    body->clear();
    size_t pos = 0;
    size_t header_end;
    for (;;) {
      header_end = in_.find("\r\n\r\n");
      if (header_end != std::string::npos) break;
      if (in_.size() > (1 << 16) || !fill()) return std::nullopt;
    }
    std::string_view head(in_.data(), header_end);
    // "HTTP/1.1 200 OK"
    size_t sp = head.find(' ');
    if (sp == std::string_view::npos) return std::nullopt;
    int status = std::atoi(std::string(head.substr(sp + 1, 3)).c_str());
    long content_length = -1;
    bool chunked = false;
    bool close_after = false;
    size_t at = head.find("\r\n");
    while (at != std::string_view::npos && at < head.size()) {
      size_t next = head.find("\r\n", at + 2);
      std::string_view h = head.substr(at + 2, (next == std::string_view::npos ? head.size()
                                                                               : next) - at - 2);
      std::string lower(h);
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return char(std::tolower(c)); });
      if (lower.starts_with("content-length:")) {
        content_length = std::atol(lower.c_str() + 15);
      } else if (lower.starts_with("transfer-encoding:") &&
                 lower.find("chunked") != std::string::npos) {
        chunked = true;
      } else if (lower.starts_with("connection:") && lower.find("close") != std::string::npos) {
        close_after = true;
      }
      at = next;
    }
    pos = header_end + 4;
    if (chunked) {
      for (;;) {
        auto size_line = line_at(&pos);
        if (!size_line) return std::nullopt;
        size_t n = std::strtoul(size_line->c_str(), nullptr, 16);
        if (n == 0) {
          // Trailers (none expected) end with an empty line.
          for (;;) {
            auto trailer = line_at(&pos);
            if (!trailer) return std::nullopt;
            if (trailer->empty()) break;
          }
          break;
        }
        if (!need(pos, n + 2)) return std::nullopt;
        body->append(in_, pos, n);
        pos += n + 2;
      }
    } else if (content_length >= 0) {
      if (!need(pos, size_t(content_length))) return std::nullopt;
      body->assign(in_, pos, size_t(content_length));
      pos += size_t(content_length);
    } else {
      return std::nullopt;  // etcd always frames its answers; anything else is a surprise
    }
    in_.erase(0, pos);
    if (close_after) close_fd();
    return status;
  }

  Endpoint ep_;
  int fd_ = -1;
  std::string in_;
  std::string request_;
};

struct ClientStats {
  std::vector<float> latencies_us;  // ops completed inside the measured window
  uint64_t errors = 0;
  uint64_t retries = 0;
};

enum Phase : int { kWarmup = 0, kMeasure = 1, kStop = 2 };

class Client {
 public:
  Client(const Options& o, int index, std::atomic<int>* phase)
      : o_(o), conn_(o.endpoints[size_t(index) % o.endpoints.size()]), phase_(phase),
        rng_(o.seed * 1000003 + uint64_t(index)) {
    value_b64_.reserve(o.value_size * 4 / 3 + 4);
    base64_append(std::string(o.value_size, 'x'), &value_b64_);
  }

  void run() {
    stats_.latencies_us.reserve(1 << 16);
    for (;;) {
      int phase = phase_->load(std::memory_order_relaxed);
      if (phase == kStop) return;
      auto t0 = Clock::now();
      bool ok = one_op();
      auto t1 = Clock::now();
      // A refused connection fails at once; do not spin on it.
      if (!ok) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      // An op counts when it completes inside the measured window.
      if (phase_->load(std::memory_order_relaxed) != kMeasure) continue;
      if (!ok) {
        stats_.errors++;
        continue;
      }
      stats_.latencies_us.push_back(
          float(std::chrono::duration<double, std::micro>(t1 - t0).count()));
    }
  }

  ClientStats& stats() { return stats_; }

 private:
  std::string key(const char* prefix) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s%012llu", prefix,
                  static_cast<unsigned long long>(rng_() % o_.keyspace));
    std::string out;
    base64_append(buf, &out);
    return out;
  }

  bool one_op() {
    if (o_.op == "put") {
      body_.assign("{\"key\":\"").append(key("key:")).append("\",\"value\":\"");
      body_.append(value_b64_).append("\"}");
      return conn_.post("/v3/kv/put", body_, &response_) == 200;
    }
    if (o_.op == "range") {
      body_.assign("{\"key\":\"").append(key("key:")).append("\",\"serializable\":false}");
      return conn_.post("/v3/kv/range", body_, &response_) == 200;
    }
    return increment();
  }

  // Reads the current value and mod_revision from a range response (or a
  // txn's failure-branch range); an absent key is value 0, revision 0.
  static bool parse_kv(std::string_view body, long long* value, std::string* mod_revision) {
    size_t kvs = body.find("\"kvs\":[");
    if (kvs == std::string_view::npos) {
      *value = 0;
      mod_revision->assign(1, '0');
      return true;
    }
    auto rev = json_string_field(body, "mod_revision", kvs);
    auto v64 = json_string_field(body, "value", kvs);
    if (!rev) return false;
    *mod_revision = std::string(*rev);
    if (!v64) {  // an empty value is omitted by the gateway
      *value = 0;
      return true;
    }
    auto v = base64_decode(*v64);
    if (!v) return false;
    *value = std::atoll(v->c_str());
    return true;
  }

  bool increment() {
    std::string k = key("counter:");
    body_.assign("{\"key\":\"").append(k).append("\",\"serializable\":false}");
    if (conn_.post("/v3/kv/range", body_, &response_) != 200) return false;
    long long value;
    std::string rev;
    if (!parse_kv(response_, &value, &rev)) return false;
    for (int attempt = 0; attempt < 1000; attempt++) {
      std::string next;
      base64_append(std::to_string(value + 1), &next);
      body_.assign("{\"compare\":[{\"key\":\"").append(k);
      body_.append("\",\"target\":\"MOD\",\"result\":\"EQUAL\",\"mod_revision\":\"");
      body_.append(rev).append("\"}],\"success\":[{\"request_put\":{\"key\":\"").append(k);
      body_.append("\",\"value\":\"").append(next);
      body_.append("\"}}],\"failure\":[{\"request_range\":{\"key\":\"").append(k);
      body_.append("\"}}]}");
      if (conn_.post("/v3/kv/txn", body_, &response_) != 200) return false;
      if (response_.find("\"succeeded\":true") != std::string::npos) return true;
      stats_.retries++;
      if (!parse_kv(response_, &value, &rev)) return false;
    }
    return false;
  }

  const Options& o_;
  Connection conn_;
  std::atomic<int>* phase_;
  std::mt19937_64 rng_;
  std::string value_b64_;
  std::string body_;
  std::string response_;
  ClientStats stats_;
};

double percentile(const std::vector<float>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t i = size_t(p * double(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse_options(argc, argv);
  std::atomic<int> phase{kWarmup};
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < o.clients; i++) clients.push_back(std::make_unique<Client>(o, i, &phase));
  std::vector<std::thread> threads;
  for (auto& c : clients) threads.emplace_back([&c] { c->run(); });

  std::this_thread::sleep_for(std::chrono::duration<double>(o.warmup_seconds));
  auto start = Clock::now();
  phase.store(kMeasure);
  std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
  phase.store(kStop);
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  for (auto& t : threads) t.join();

  std::vector<float> all;
  uint64_t errors = 0, retries = 0;
  for (auto& c : clients) {
    auto& s = c->stats();
    all.insert(all.end(), s.latencies_us.begin(), s.latencies_us.end());
    errors += s.errors;
    retries += s.retries;
  }
  std::sort(all.begin(), all.end());
  double sum = 0;
  for (float v : all) sum += v;
  const char* name = o.op == "put" ? "PUT" : o.op == "range" ? "RANGE" : "INCR";
  auto ms = [](double us) { return us / 1000.0; };
  std::printf(
      "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\","
      "\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\",\"errors\",\"retries\"\n");
  std::printf("\"%s\",\"%.2f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%llu\",\"%llu\"\n",
              name, double(all.size()) / elapsed, all.empty() ? 0 : ms(sum / double(all.size())),
              ms(all.empty() ? 0 : all.front()), ms(percentile(all, 0.50)),
              ms(percentile(all, 0.95)), ms(percentile(all, 0.99)),
              ms(all.empty() ? 0 : all.back()), static_cast<unsigned long long>(errors),
              static_cast<unsigned long long>(retries));
  if (all.empty()) std::fprintf(stderr, "etcd_load: no operation completed\n");
  return errors > 0 || all.empty() ? 1 : 0;
}
