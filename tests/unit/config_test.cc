#include "server/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>

namespace qkv::server {
namespace {

TEST(ConfigTest, DefaultsAreASingleNode) {
  auto c = parse_config_args({});
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->listen_client.to_string(), "127.0.0.1:7379");
  EXPECT_EQ(c->data_dir, "./quorumkv-data");
  EXPECT_TRUE(c->initial_cluster.empty());
  EXPECT_EQ(c->read_mode, "lease");
}

TEST(ConfigTest, FlagsParse) {
  auto c =
      parse_config_args({"--name", "n2", "--data-dir", "/d", "--listen-client", "0.0.0.0:1",
                         "--listen-peer", "10.0.0.2:2", "--initial-cluster",
                         "n1=10.0.0.1:2,n2=10.0.0.2:2,n3=10.0.0.3:2", "--read-mode", "readindex"});
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->name, "n2");
  EXPECT_EQ(c->initial_cluster.size(), 3u);
  EXPECT_EQ(c->initial_cluster.at("n3").to_string(), "10.0.0.3:2");
  EXPECT_EQ(c->read_mode, "readindex");
  auto rc =
      parse_config_args({"--read-cache-bytes", "1048576", "--read-cache-value-bytes-max", "100"});
  ASSERT_TRUE(rc.is_ok()) << rc.status().to_string();
  EXPECT_EQ(rc->read_cache_bytes, 1048576u);
  EXPECT_EQ(rc->read_cache_value_bytes_max, 100u);
  EXPECT_FALSE(rc->read_cache_fill_on_write);
  for (const char* no : {"no", "false", "0"}) {
    auto off = parse_config_args({"--read-cache-fill-on-write", no});
    ASSERT_TRUE(off.is_ok()) << no << ": " << off.status().to_string();
    EXPECT_FALSE(off->read_cache_fill_on_write) << no;
  }
  EXPECT_TRUE(rc->wal_prefill);
  auto np = parse_config_args({"--wal-prefill", "no"});
  ASSERT_TRUE(np.is_ok()) << np.status().to_string();
  EXPECT_FALSE(np->wal_prefill);
  EXPECT_EQ(parse_config_args({"--wal-prefill", "sometimes"}).code(), Code::kInvalidArgument);
  EXPECT_EQ(rc->wal_segment_bytes, 64u << 20);
  EXPECT_EQ(rc->wal_prefill_start_bytes, 4u << 20);
  auto ws = parse_config_args({"--wal-segment-bytes", "2097152", "--wal-prefill-start-bytes", "0"});
  ASSERT_TRUE(ws.is_ok()) << ws.status().to_string();
  EXPECT_EQ(ws->wal_segment_bytes, 2097152u);
  EXPECT_EQ(ws->wal_prefill_start_bytes, 0u);
  EXPECT_EQ(parse_config_args({"--wal-segment-bytes", "65536"}).code(), Code::kInvalidArgument);
  EXPECT_EQ(
      parse_config_args({"--wal-segment-bytes", "2097152", "--wal-prefill-start-bytes", "4194304"})
          .code(),
      Code::kInvalidArgument);
  auto on = parse_config_args({"--read-cache-fill-on-write", "yes"});
  ASSERT_TRUE(on.is_ok()) << on.status().to_string();
  EXPECT_TRUE(on->read_cache_fill_on_write);
  EXPECT_EQ(parse_config_args({"--read-cache-fill-on-write", "maybe"}).code(),
            Code::kInvalidArgument);
  auto st = parse_config_args({"--state-write-buffer-bytes", "8388608", "--state-write-buffers-max",
                               "4", "--state-block-cache-bytes", "16777216"});
  ASSERT_TRUE(st.is_ok()) << st.status().to_string();
  EXPECT_EQ(st->state_write_buffer_bytes, 8u << 20);
  EXPECT_EQ(st->state_write_buffers_max, 4);
  EXPECT_EQ(st->state_block_cache_bytes, 16u << 20);
  EXPECT_EQ(parse_config_args({"--state-write-buffer-bytes", "1000"}).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(parse_config_args({"--state-write-buffers-max", "1"}).code(), Code::kInvalidArgument);
  EXPECT_EQ(parse_config_args({"--state-block-cache-bytes", "0"}).code(), Code::kInvalidArgument);
  EXPECT_EQ(st->state_memtable, "indexed");
  auto skiplist = parse_config_args({"--state-memtable", "skiplist"});
  ASSERT_TRUE(skiplist.is_ok()) << skiplist.status().to_string();
  EXPECT_EQ(skiplist->state_memtable, "skiplist");
  auto bad_memtable = parse_config_args({"--state-memtable", "hash"});
  EXPECT_EQ(bad_memtable.code(), Code::kInvalidArgument);
  EXPECT_NE(bad_memtable.status().to_string().find("state-memtable must be indexed or skiplist"),
            std::string::npos);
}

TEST(ConfigTest, BadValuesAreClearErrors) {
  EXPECT_EQ(parse_config_args({"--listen-client", "nohostport"}).code(), Code::kInvalidArgument);
  EXPECT_EQ(parse_config_args({"--listen-client", "h:99999"}).code(), Code::kInvalidArgument);
  EXPECT_EQ(parse_config_args({"--read-mode", "sloppy"}).code(), Code::kInvalidArgument);
  auto short_lease = parse_config_args({"--election-ticks", "3"});
  EXPECT_EQ(short_lease.code(), Code::kInvalidArgument);
  EXPECT_NE(short_lease.status().message().find("election-ticks of at least 4"), std::string::npos)
      << short_lease.status().message();
  EXPECT_TRUE(parse_config_args({"--election-ticks", "4"}).is_ok());
  EXPECT_TRUE(parse_config_args({"--election-ticks", "3", "--read-mode", "readindex"}).is_ok());
  EXPECT_EQ(parse_config_args({"--name", "x", "--initial-cluster", "a=h:1"}).code(),
            Code::kInvalidArgument);  // does not name this node
  EXPECT_EQ(parse_config_args({"--no-such-flag"}).code(), Code::kInvalidArgument);
  EXPECT_EQ(parse_config_args({"--help"}).code(), Code::kNotFound);
}

TEST(ConfigTest, TomlFileWithFlagsWinning) {
  std::string path = "/tmp/qkv-config-test-" + std::to_string(getpid()) + ".toml";
  {
    std::ofstream f(path);
    f << "name = \"n1\"\n"
         "data-dir = \"/from/file\"\n"
         "listen-client = \"127.0.0.1:9000\"\n"
         "initial-cluster = \"n1=127.0.0.1:9001\"\n"
         "tick-ms = 20\n"
         "maxclients = 7\n";
  }
  auto c = parse_config_args({"--config", path, "--data-dir", "/from/flag"});
  std::remove(path.c_str());
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->name, "n1");
  EXPECT_EQ(c->data_dir, "/from/flag");
  EXPECT_EQ(c->listen_client.port, 9000);
  EXPECT_EQ(c->tick_ms, 20);
  EXPECT_EQ(c->maxclients, 7u);
  auto bad = parse_config_args({"--config", "/nonexistent/x.toml"});
  EXPECT_FALSE(bad.is_ok());
}

// A config file's mistakes are errors naming the key, never ignored.
TEST(ConfigTest, TomlKeysMustBeKnownOfTheirTypeAndInRange) {
  const std::string path = "/tmp/qkv-config-test-" + std::to_string(getpid()) + "-bad.toml";
  auto parse = [&](const std::string& body) {
    {
      std::ofstream f(path);
      f << body;
    }
    auto c = parse_config_args({"--config", path});
    std::remove(path.c_str());
    return c;
  };
  auto expect_error = [&](const std::string& body, const std::string& words) {
    auto c = parse(body);
    ASSERT_EQ(c.code(), Code::kInvalidArgument) << body;
    EXPECT_NE(c.status().message().find(words), std::string::npos)
        << body << " -> " << c.status().message();
  };
  expect_error("read-cache-byte = 100\n", "'read-cache-byte' is not a setting");
  expect_error("read-cache-bytes = \"64MB\"\n", "'read-cache-bytes' must be an integer");
  expect_error("read-cache-bytes = -1\n", "'read-cache-bytes' is out of range: -1");
  expect_error("tick-ms = 3000000000\n", "'tick-ms' is out of range");
  expect_error("tick-ms = -3000000000\n", "'tick-ms' is out of range");
  // In its type's range: the value's own check decides.
  expect_error("tick-ms = -5\n", "tick-ms must be positive");
  expect_error("name = 7\n", "'name' must be a string");
  expect_error("join = \"yes\"\n", "'join' must be true or false");
  expect_error("read-cache-fill-on-write = 1\n",
               "'read-cache-fill-on-write' must be true or false");
  expect_error("keys-reply-max = 1.5\n", "'keys-reply-max' must be an integer");
  auto good = parse(
      "read-cache-fill-on-write = true\njoin = false\nkeys-reply-max = 10\n"
      "state-write-buffers-max = 4\nread-mode = \"readindex\"\n");
  ASSERT_TRUE(good.is_ok()) << good.status().to_string();
  EXPECT_TRUE(good->read_cache_fill_on_write);
  EXPECT_EQ(good->kv.keys_reply_max, 10u);
  EXPECT_EQ(good->state_write_buffers_max, 4);
}

TEST(ConfigTest, OneTableOfSettingsForFlagsKeysAndConfigGet) {
  auto c = parse_config_args({"--wal-prefill", "no", "--keys-reply-max", "9", "--name", "x"});
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  std::map<std::string, std::string> shown;
  for (const Setting& s : config_settings(*c)) {
    EXPECT_TRUE(shown.emplace(s.name, setting_value(s)).second) << "twice: " << s.name;
  }
  EXPECT_EQ(shown["wal-prefill"], "no");
  EXPECT_EQ(shown["read-cache-fill-on-write"], "no");
  EXPECT_EQ(shown["keys-reply-max"], "9");
  EXPECT_EQ(shown["name"], "x");
  EXPECT_EQ(shown["tick-ms"], "50");
  EXPECT_EQ(shown.count("listen-client"), 0u);  // parsed into an address, not kept as text
  SettingStrings strings;
  EXPECT_EQ(config_settings(*c, &strings).size(), shown.size() + 4);
}

TEST(ConfigTest, NodeIdsAreStableAndNonZero) {
  EXPECT_EQ(node_id_for_name("n1"), node_id_for_name("n1"));
  EXPECT_NE(node_id_for_name("n1"), node_id_for_name("n2"));
  EXPECT_NE(node_id_for_name(""), 0u);
  EXPECT_LT(node_id_for_name("some-long-node-name"), 1ull << 53);
}

}  // namespace
}  // namespace qkv::server
