// SHA-1 (FIPS 180-4), for the script cache: EVALSHA names a script by the
// SHA-1 of its body, as Redis does. Not for security: SHA-1 is broken as a
// cryptographic hash; here it is only the name Redis clients compute.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace qkv::kv {

// The 20-byte digest of `data`.
std::array<uint8_t, 20> sha1(std::string_view data);
// The digest as 40 lower-case hex digits (redis.sha1hex, SCRIPT LOAD's reply).
std::string sha1_hex(std::string_view data);

}  // namespace qkv::kv
