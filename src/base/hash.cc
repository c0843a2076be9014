#include "base/hash.h"

#include <sys/random.h>

#include <cstring>
#include <random>

namespace qkv {
namespace {

inline uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

inline uint64_t load_le64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

struct State {
  uint64_t v0, v1, v2, v3;
  void round() {
    v0 += v1;
    v1 = rotl(v1, 13);
    v1 ^= v0;
    v0 = rotl(v0, 32);
    v2 += v3;
    v3 = rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl(v1, 17);
    v1 ^= v2;
    v2 = rotl(v2, 32);
  }
  void compress(uint64_t m) {
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
};

struct ProcessKey {
  uint64_t k0 = 0, k1 = 0;
  ProcessKey() {
    unsigned char b[16];
    size_t got = 0;
    while (got < sizeof b) {
      // Never blocks: before the kernel's pool is ready (early boot) the
      // fallback below is taken instead of waiting for it.
      ssize_t n = ::getrandom(b + got, sizeof b - got, GRND_NONBLOCK);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    if (got < sizeof b) {
      // No getrandom, or its pool is not ready yet: the C++ library's source
      // (RDRAND or /dev/urandom in libstdc++).
      std::random_device rd;
      for (auto& c : b) c = static_cast<unsigned char>(rd());
    }
    k0 = load_le64(b);
    k1 = load_le64(b + 8);
  }
};

const ProcessKey& process_key() {
  static const ProcessKey key;
  return key;
}

}  // namespace

uint64_t siphash24(uint64_t k0, uint64_t k1, std::string_view data) {
  State s{k0 ^ 0x736f6d6570736575ull, k1 ^ 0x646f72616e646f6dull, k0 ^ 0x6c7967656e657261ull,
          k1 ^ 0x7465646279746573ull};
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t n = data.size();
  const unsigned char* end = p + (n & ~size_t{7});
  for (; p != end; p += 8) s.compress(load_le64(p));
  // The last block: the remaining bytes, and the length's low byte on top.
  uint64_t last = static_cast<uint64_t>(n & 0xff) << 56;
  for (size_t i = 0; i < (n & 7); i++) last |= static_cast<uint64_t>(p[i]) << (8 * i);
  s.compress(last);
  s.v2 ^= 0xff;
  s.round();
  s.round();
  s.round();
  s.round();
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

uint64_t keyed_hash(std::string_view data) {
  const ProcessKey& k = process_key();
  return siphash24(k.k0, k.k1, data);
}

}  // namespace qkv
