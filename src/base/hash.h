// Keyed hashing for tables whose keys come from clients.
//
// std::hash of a string is a fixed, public function: whoever picks the keys
// can pick thousands that land in one bucket, and every lookup in that
// table then walks them all (a denial of service with ordinary commands).
// SipHash-2-4 (Aumasson and Bernstein, 2012) with a key drawn from the
// kernel when the process starts gives no such handle: without the key the
// bucket of a string cannot be predicted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace qkv {

// SipHash-2-4 of data under a 128-bit key (k0 the first 8 key bytes, k1 the
// last 8, little-endian), as the reference implementation defines it.
uint64_t siphash24(uint64_t k0, uint64_t k1, std::string_view data);

// SipHash-2-4 under this process's key (random, drawn at first use). The
// value differs between processes: never store it or send it.
uint64_t keyed_hash(std::string_view data);

// For std::unordered_map / unordered_set keyed by client data; transparent,
// so a std::string_view finds a std::string key (with std::equal_to<>).
struct KeyedHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return keyed_hash(s); }
};

}  // namespace qkv

#ifdef __GLIBCXX__
// libstdc++ keeps a node's hash code in the node only for hashes it deems
// slow; without it every bucket walk (a find's end-of-bucket check, a
// rehash, local iterators) hashes the keys again.
template <>
struct std::__is_fast_hash<qkv::KeyedHash> : std::false_type {};
#endif
