// Redis's glob-style patterns (KEYS, SCAN MATCH):
//   *      any sequence of bytes, also empty
//   ?      any one byte
//   [abc]  one of the bytes; [^abc] none of them; [a-z] a range (ends in
//          either order); \x inside a class is x; an unterminated class
//          takes the rest of the pattern as its members
//   \x     the byte x
//   x      itself
// Matching is byte-wise and case-sensitive. Runs in O(|pattern| * |subject|)
// time whatever the pattern (no exponential backtracking).
#pragma once

#include <string_view>

namespace qkv::kv {

bool glob_match(std::string_view pattern, std::string_view subject);

// True if the pattern has no special bytes, so it matches exactly one key
// (KEYS can then look that key up instead of scanning).
bool glob_is_literal(std::string_view pattern);

}  // namespace qkv::kv
