// SipHash-2-4 against the reference vectors, and the keyed hash the
// client-keyed tables use (src/base/hash.h).
#include "base/hash.h"

#include <gtest/gtest.h>

#include <string>
#include <unordered_map>

namespace qkv {
namespace {

// The reference vectors (SipHash paper, appendix A, and the reference
// implementation's table): key bytes 00..0f, message i = bytes 00..i-1.
TEST(SipHash, MatchesTheReferenceVectors) {
  const uint64_t k0 = 0x0706050403020100ull, k1 = 0x0f0e0d0c0b0a0908ull;
  auto message = [](size_t n) {
    std::string m;
    for (size_t i = 0; i < n; i++) m.push_back(static_cast<char>(i));
    return m;
  };
  const std::pair<size_t, uint64_t> vectors[] = {
      {0, 0x726fdb47dd0e0e31ull}, {1, 0x74f839c593dc67fdull}, {2, 0x0d6c8009d9a94f5aull},
      {3, 0x85676696d7fb7e2dull}, {7, 0xab0200f58b01d137ull}, {8, 0x93f5f5799a932462ull},
      {9, 0x9e0082df0ba9e4b0ull}, {15, 0xa129ca6149be45e5ull},
  };
  for (const auto& [n, want] : vectors) {
    EXPECT_EQ(siphash24(k0, k1, message(n)), want) << "message of " << n << " bytes";
  }
}

TEST(SipHash, KeyedHashIsStableInAProcessAndKeyed) {
  EXPECT_EQ(keyed_hash("user:1000"), keyed_hash(std::string("user:1000")));
  EXPECT_NE(keyed_hash("user:1000"), keyed_hash("user:1001"));
  // Drawn at random: not the all-zero key (a 2^-128 chance of a false failure).
  EXPECT_NE(keyed_hash("user:1000"), siphash24(0, 0, "user:1000"));
  // Transparent lookups find a std::string key by std::string_view.
  std::unordered_map<std::string, int, KeyedHash, std::equal_to<>> m;
  m.emplace("alpha", 1);
  m.emplace(std::string(3, '\0'), 2);
  EXPECT_EQ(m.find(std::string_view("alpha"))->second, 1);
  EXPECT_EQ(m.find(std::string_view("\0\0\0", 3))->second, 2);
  EXPECT_EQ(m.find(std::string_view("beta")), m.end());
}

}  // namespace
}  // namespace qkv
