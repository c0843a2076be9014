#include "kv/glob.h"

#include <cstddef>

namespace qkv::kv {

namespace {

// Matches subject byte c against the class starting at pattern[i] == '['.
// Sets *next to the index just past the class.
bool match_class(std::string_view p, size_t i, char c, size_t* next) {
  const size_t n = p.size();
  i++;  // past '['
  bool negate = false;
  if (i < n && p[i] == '^') {
    negate = true;
    i++;
  }
  bool matched = false;
  while (true) {
    if (i + 1 < n && p[i] == '\\') {
      i++;
      if (p[i] == c) matched = true;
    } else if (i < n && p[i] == ']') {
      break;
    } else if (i >= n) {
      // Unterminated: the class ends with the pattern.
      break;
    } else if (i + 2 < n && p[i + 1] == '-') {
      unsigned char lo = static_cast<unsigned char>(p[i]);
      unsigned char hi = static_cast<unsigned char>(p[i + 2]);
      if (lo > hi) {
        unsigned char t = lo;
        lo = hi;
        hi = t;
      }
      const auto uc = static_cast<unsigned char>(c);
      if (uc >= lo && uc <= hi) matched = true;
      i += 2;
    } else if (p[i] == c) {
      matched = true;
    }
    i++;
  }
  *next = i < n ? i + 1 : n;
  return negate ? !matched : matched;
}

}  // namespace

bool glob_match(std::string_view p, std::string_view s) {
  // Every token but '*' consumes exactly one subject byte, so on a mismatch
  // it is enough to retry from the most recent '*' one byte further
  // (earlier stars can never need to absorb more).
  size_t pi = 0, si = 0;
  size_t star_p = std::string_view::npos, star_s = 0;
  while (si < s.size()) {
    if (pi < p.size()) {
      const char c = p[pi];
      if (c == '*') {
        while (pi < p.size() && p[pi] == '*') pi++;
        if (pi == p.size()) return true;
        star_p = pi;
        star_s = si;
        continue;
      }
      if (c == '?') {
        pi++;
        si++;
        continue;
      }
      if (c == '[') {
        size_t next = 0;
        if (match_class(p, pi, s[si], &next)) {
          pi = next;
          si++;
          continue;
        }
      } else if (c == '\\' && pi + 1 < p.size()) {
        if (p[pi + 1] == s[si]) {
          pi += 2;
          si++;
          continue;
        }
      } else if (c == s[si]) {
        pi++;
        si++;
        continue;
      }
    }
    if (star_p == std::string_view::npos) return false;
    si = ++star_s;
    pi = star_p;
  }
  while (pi < p.size() && p[pi] == '*') pi++;
  return pi == p.size();
}

bool glob_is_literal(std::string_view pattern) {
  for (char c : pattern) {
    if (c == '*' || c == '?' || c == '[' || c == '\\') return false;
  }
  return true;
}

}  // namespace qkv::kv
