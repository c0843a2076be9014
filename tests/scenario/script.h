// The scenario script format: a sequence of commands, each followed by the
// output it must produce. The grammar is documented in README.md beside this
// file; in short:
//
//   script  := { comment | blank | case }
//   comment := "#" text NL
//   case    := command NL "----" NL { output-line NL } ( blank | EOF )
//
// Output lines are never blank, so a blank line ends a case. Comments and
// blank lines between cases are kept verbatim when a script is rewritten.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace qkv::scenario {

struct Case {
  int line = 0;  // 1-based line of the command, for messages
  std::string command;
  std::vector<std::string> expected;
};

// A parsed script: verbatim text (comments, blank lines) interleaved with cases.
struct Script {
  struct Block {
    bool is_case = false;
    std::string verbatim;  // when !is_case: the line, without its newline
    Case c;                // when is_case
  };
  std::string path;
  std::vector<Block> blocks;
};

// Parses a script. On a malformed script, returns false and sets *error.
bool parse_script(const std::string& path, const std::string& text, Script* out,
                  std::string* error);

// Renders a script with each case's expected output replaced by `actual`
// (one entry per case, in order).
std::string render_script(const Script& script, const std::vector<std::string>& actual);

// Splits a command line into words. Double quotes group words and are removed;
// a backslash inside quotes escapes the next character.
std::vector<std::string> split_words(const std::string& line, std::string* error);

}  // namespace qkv::scenario
