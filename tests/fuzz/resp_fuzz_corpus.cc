// Seed inputs for resp_fuzz: request streams and reply streams of every kind,
// each behind the mode byte the target expects (limits, authentication,
// read sizes).
#include <string>
#include <vector>

#include "net/resp.h"

std::vector<std::string> fuzz_seed_corpus() {
  using namespace qkv::net;
  std::vector<std::string> payloads;

  // Requests.
  std::string pipeline;
  for (int i = 0; i < 20; i++) {
    append_command(&pipeline, {"SET", "key:" + std::to_string(i), std::string(i, 'v')});
  }
  payloads.push_back(pipeline);
  payloads.push_back("*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\n*1\r\n$4\r\nPING\r\n");
  payloads.push_back("PING\r\nSET a b\nGET a\r\n\r\n   \r\nECHO \"x y\"\r\n");
  payloads.push_back("SET \"a\\x41\\n\\\"b\" 'it\\'s' c\"d e\" \"\"\r\n");
  payloads.push_back("SET \"unbalanced\r\nPING\r\n");
  payloads.push_back("*0\r\n*-1\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n");
  payloads.push_back("*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n");
  payloads.push_back("*1\r\n$2000000000\r\n");
  payloads.push_back("*1\r\n$20\r\n0123456789");
  payloads.push_back("*11\r\n$3\r\nDEL\r\n");
  payloads.push_back(std::string("SET a\0b c\r\n", 11));
  payloads.push_back(std::string(200, 'A') + "\r\n");
  payloads.push_back("*" + std::string(150, '1') + "\r\n");
  {
    std::string s;
    append_command(&s, {"MSET", "k1", "v1", "k2", std::string(100, 'x'), "k3", "v3", "k4", "v4"});
    payloads.push_back(s);
  }

  // Replies.
  payloads.push_back("+OK\r\n-ERR unknown command 'foo'\r\n:42\r\n$5\r\nhello\r\n$-1\r\n*-1\r\n");
  payloads.push_back("*3\r\n:1\r\n$3\r\nabc\r\n*2\r\n+x\r\n_\r\n");
  payloads.push_back("%2\r\n+first\r\n:1\r\n+second\r\n,2.5\r\n~2\r\n#t\r\n#f\r\n");
  payloads.push_back(">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
  payloads.push_back(
      "(3492890328409238509324850943850943825024385\r\n,inf\r\n,-1.5e-7\r\n,nan\r\n");
  payloads.push_back("!21\r\nSYNTAX invalid syntax\r\n=15\r\ntxt:Some string\r\n");
  payloads.push_back(
      "|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n"
      "*2\r\n:2039123\r\n:9543892\r\n");
  payloads.push_back("*3\r\n:1\r\n:2\r\n|1\r\n+ttl\r\n:3600\r\n:3\r\n");
  payloads.push_back("$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;1\r\nd\r\n;0\r\n");
  payloads.push_back("*?\r\n:1\r\n%?\r\n+a\r\n:1\r\n.\r\n~?\r\n.\r\n.\r\n");
  payloads.push_back("*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n");
  {
    std::string s;
    ReplyWriter w(&s, Protocol::kResp3);
    w.map(2);
    w.bulk("server");
    w.bulk("quorumkv");
    w.bulk("modules");
    w.array(0);
    w.set(1);
    w.double_value(0.1);
    w.push(2);
    w.bulk("invalidate");
    w.null();
    payloads.push_back(s);
  }

  std::vector<std::string> out;
  for (const std::string& p : payloads) {
    for (char mode : {'\0', '\1', '\2', '\4', '\5'}) out.push_back(std::string(1, mode) + p);
  }
  return out;
}
