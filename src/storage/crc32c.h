// CRC-32C (Castagnoli), the checksum of every WAL record and snapshot chunk.
// Uses the SSE4.2 crc32 instruction when the CPU has it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace qkv::storage {

// Extends crc (of earlier bytes) with data. crc32c_extend(0, all) == crc32c(all).
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t n);
inline uint32_t crc32c(const void* data, size_t n) { return crc32c_extend(0, data, n); }
inline uint32_t crc32c(std::string_view s) { return crc32c(s.data(), s.size()); }

}  // namespace qkv::storage
