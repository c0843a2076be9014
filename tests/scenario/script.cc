#include "script.h"

#include <sstream>

namespace qkv::scenario {
namespace {

std::string rstrip(const std::string& s) {
  size_t end = s.find_last_not_of(" \t\r");
  return end == std::string::npos ? std::string() : s.substr(0, end + 1);
}

}  // namespace

bool parse_script(const std::string& path, const std::string& text, Script* out,
                  std::string* error) {
  out->path = path;
  out->blocks.clear();
  std::vector<std::string> lines;
  {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) lines.push_back(rstrip(line));
  }
  size_t i = 0;
  while (i < lines.size()) {
    const std::string& line = lines[i];
    if (line.empty() || line[0] == '#') {
      Script::Block b;
      b.verbatim = line;
      out->blocks.push_back(std::move(b));
      ++i;
      continue;
    }
    Script::Block b;
    b.is_case = true;
    b.c.line = static_cast<int>(i + 1);
    b.c.command = line;
    ++i;
    if (i >= lines.size() || lines[i] != "----") {
      *error = path + ":" + std::to_string(b.c.line) + ": command not followed by ----";
      return false;
    }
    ++i;
    while (i < lines.size() && !lines[i].empty()) b.c.expected.push_back(lines[i++]);
    out->blocks.push_back(std::move(b));
    // The blank line that ends the case belongs to the case.
    if (i < lines.size()) ++i;
  }
  return true;
}

std::string render_script(const Script& script, const std::vector<std::string>& actual) {
  std::string s;
  size_t k = 0;
  for (const auto& b : script.blocks) {
    if (!b.is_case) {
      s += b.verbatim + "\n";
      continue;
    }
    s += b.c.command + "\n----\n";
    s += actual.at(k++);
    if (!s.empty() && s.back() != '\n') s += "\n";
    s += "\n";
  }
  // Keep exactly one trailing newline.
  while (s.size() >= 2 && s[s.size() - 1] == '\n' && s[s.size() - 2] == '\n') s.pop_back();
  return s;
}

std::vector<std::string> split_words(const std::string& line, std::string* error) {
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false;
  bool in_quotes = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char ch = line[i];
    if (in_quotes) {
      if (ch == '\\' && i + 1 < line.size()) {
        cur += line[++i];
      } else if (ch == '"') {
        in_quotes = false;
      } else {
        cur += ch;
      }
      continue;
    }
    if (ch == ' ' || ch == '\t') {
      if (in_word) words.push_back(cur);
      cur.clear();
      in_word = false;
      continue;
    }
    in_word = true;
    if (ch == '"') {
      in_quotes = true;
    } else {
      cur += ch;
    }
  }
  if (in_quotes) {
    *error = "unterminated quote";
    return {};
  }
  if (in_word) words.push_back(cur);
  return words;
}

}  // namespace qkv::scenario
