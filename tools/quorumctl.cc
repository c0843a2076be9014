// quorumctl: the admin CLI. Talks RESP to any node (RAFT commands).
//
//   quorumctl [-H host] [-p port] status
//   quorumctl [-H host] [-p port] members
//   quorumctl [-H host] [-p port] add-learner NAME PEERHOST:PEERPORT
//   quorumctl [-H host] [-p port] add-voter NAME [PEERHOST:PEERPORT]   (promotes a learner)
//   quorumctl [-H host] [-p port] remove NAME
//   quorumctl [-H host] [-p port] transfer NAME
//   quorumctl [-H host] [-p port] snapshot
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "net/resp.h"

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: quorumctl [-H host] [-p port] status | members | add-learner NAME ADDR |\n"
               "       add-voter NAME [ADDR] | remove NAME | transfer NAME | snapshot\n");
  return 2;
}

void print(const qkv::net::Value& v, int indent) {
  using T = qkv::net::Type;
  std::string pad(static_cast<size_t>(indent), ' ');
  switch (v.type) {
    case T::kArray:
    case T::kSet:
    case T::kPush:
      for (const auto& e : v.elements) print(e, indent);
      break;
    case T::kMap:
      for (size_t i = 0; i + 1 < v.elements.size(); i += 2) {
        std::printf("%s%s: ", pad.c_str(), v.elements[i].to_string().c_str());
        print(v.elements[i + 1], 0);
      }
      break;
    case T::kError:
      std::printf("%s(error) %s\n", pad.c_str(), v.str.c_str());
      break;
    case T::kInteger:
      std::printf("%s%lld\n", pad.c_str(), static_cast<long long>(v.integer));
      break;
    default:
      std::printf("%s%s\n", pad.c_str(), v.str.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1", port = "7379";
  int i = 1;
  for (; i < argc; i++) {
    std::string a = argv[i];
    if (a == "-H" && i + 1 < argc) {
      host = argv[++i];
    } else if (a == "-p" && i + 1 < argc) {
      port = argv[++i];
    } else {
      break;
    }
  }
  if (i >= argc) return usage();
  std::vector<std::string> cmd = {"RAFT"};
  std::string verb = argv[i++];
  for (auto& ch : verb) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  cmd.push_back(verb);
  for (; i < argc; i++) cmd.emplace_back(argv[i]);

  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
    std::fprintf(stderr, "quorumctl: cannot resolve %s:%s\n", host.c_str(), port.c_str());
    return 1;
  }
  int fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
  if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
    std::fprintf(stderr, "quorumctl: cannot connect to %s:%s: %s\n", host.c_str(), port.c_str(),
                 std::strerror(errno));
    return 1;
  }
  freeaddrinfo(res);
  std::string req;
  std::vector<std::string_view> views(cmd.begin(), cmd.end());
  qkv::net::append_command(&req, std::span<const std::string_view>(views.data(), views.size()));
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    std::fprintf(stderr, "quorumctl: write failed\n");
    return 1;
  }
  qkv::net::ReplyParser parser;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) {
      std::fprintf(stderr, "quorumctl: connection closed\n");
      return 1;
    }
    parser.feed(std::string_view(buf, static_cast<size_t>(n)));
    auto r = parser.next();
    if (r == qkv::net::Parsed::kNeedMore) continue;
    if (r == qkv::net::Parsed::kError) {
      std::fprintf(stderr, "quorumctl: bad reply: %s\n", parser.error().c_str());
      return 1;
    }
    const auto& v = parser.value();
    print(v, 0);
    close(fd);
    return v.type == qkv::net::Type::kError ? 1 : 0;
  }
}
