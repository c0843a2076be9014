// The simulator's only source of randomness: one generator per run, seeded
// from the command line. Hand-written (SplitMix64) rather than <random>
// because the standard distributions differ between standard libraries, and a
// seed must replay the same run everywhere.
#pragma once

#include <cstdint>
#include <vector>

#include "base/check.h"

namespace qkv::sim {

class SimRng {
 public:
  explicit SimRng(uint64_t seed) : state_(seed ^ 0x5DEECE66DULL) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n); n > 0. The modulo bias is irrelevant for testing.
  uint64_t below(uint64_t n) {
    QKV_CHECK(n > 0);
    return next() % n;
  }
  // Uniform in [lo, hi], inclusive.
  uint64_t range(uint64_t lo, uint64_t hi) {
    QKV_CHECK_LE(lo, hi);
    return lo + below(hi - lo + 1);
  }
  // True with probability p (IEEE arithmetic: the same on every platform).
  bool chance(double p) {
    if (p <= 0) return false;
    return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0) < p;
  }
  // A uniform double in [lo, hi).
  double real(double lo, double hi) {
    return lo + (hi - lo) * (static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0));
  }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    QKV_CHECK(!v.empty());
    return v[below(v.size())];
  }
  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; i--) std::swap(v[i - 1], v[below(i)]);
  }

 private:
  uint64_t state_;
};

// 64-bit FNV-1a with a final avalanche; used for entry identities and the
// state machines' hash chains. Not cryptographic, only collision-unlikely.
inline uint64_t hash_bytes(const void* p, size_t n, uint64_t h = 0xcbf29ce484222325ULL) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
inline uint64_t hash_combine(uint64_t a, uint64_t b) {
  return mix64(a * 0x9E3779B97F4A7C15ULL ^ b);
}

}  // namespace qkv::sim
