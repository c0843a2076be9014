// raft-scenario: runs Raft scenario scripts (README.md beside this file).
//
//   raft-scenario [--rewrite] SCRIPT...
//
// Each script runs in a fresh environment. A case whose output differs from
// the expected output fails; the differing lines are printed. With --rewrite
// the scripts are written back with the actual output: read every changed line
// against the Raft paper before keeping it.
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "env.h"
#include "script.h"

namespace {

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> lines;
  std::istringstream in(s);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

void print_diff(const std::vector<std::string>& want, const std::vector<std::string>& got) {
  // A plain line-by-line diff via the longest common subsequence.
  size_t n = want.size(), m = got.size();
  std::vector<std::vector<int>> lcs(n + 1, std::vector<int>(m + 1, 0));
  for (size_t i = n; i-- > 0;) {
    for (size_t j = m; j-- > 0;) {
      lcs[i][j] =
          want[i] == got[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && want[i] == got[j]) {
      std::cout << "    " << want[i] << "\n";
      ++i, ++j;
    } else if (j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j])) {
      std::cout << "  + " << got[j++] << "\n";
    } else {
      std::cout << "  - " << want[i++] << "\n";
    }
  }
}

// Returns true if every case matched (or, rewriting, if the script had no
// script errors).
bool run_script(const std::string& path, bool rewrite) {
  std::ifstream in(path);
  if (!in) {
    std::cout << path << ": cannot open\n";
    return false;
  }
  std::stringstream buf;
  buf << in.rdbuf();
  qkv::scenario::Script script;
  std::string error;
  if (!qkv::scenario::parse_script(path, buf.str(), &script, &error)) {
    std::cout << error << "\n";
    return false;
  }
  qkv::scenario::Env env;
  std::vector<std::string> actual;
  int failed = 0, cases = 0;
  for (const auto& b : script.blocks) {
    if (!b.is_case) continue;
    ++cases;
    std::string got = env.run(b.c.command);
    actual.push_back(got);
    std::vector<std::string> got_lines = lines_of(got);
    if (got_lines != b.c.expected) {
      ++failed;
      if (!rewrite) {
        std::cout << path << ":" << b.c.line << ": " << b.c.command << "\n"
                  << "  output differs (- expected, + actual):\n";
        print_diff(b.c.expected, got_lines);
      }
    }
  }
  if (rewrite) {
    std::string text = qkv::scenario::render_script(script, actual);
    if (text != buf.str()) {
      std::ofstream o(path, std::ios::trunc);
      o << text;
      std::cout << "REWROTE " << path << " (" << failed << " of " << cases << " cases changed)\n";
    }
    if (env.script_errors() > 0) {
      std::cout << "FAIL " << path << ": " << env.script_errors() << " script errors\n";
      return false;
    }
    return true;
  }
  if (failed > 0 || env.script_errors() > 0) {
    std::cout << "FAIL " << path << ": " << failed << " of " << cases << " cases differ, "
              << env.script_errors() << " script errors\n";
    return false;
  }
  std::cout << "PASS " << path << " (" << cases << " cases)\n";
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  bool rewrite = false;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--rewrite") {
      rewrite = true;
    } else if (a == "-h" || a == "--help") {
      std::cout << "usage: raft-scenario [--rewrite] SCRIPT...\n";
      return 0;
    } else {
      paths.push_back(a);
    }
  }
  if (paths.empty()) {
    std::cerr << "usage: raft-scenario [--rewrite] SCRIPT...\n";
    return 2;
  }
  int passed = 0, failed = 0;
  for (const auto& p : paths) (run_script(p, rewrite) ? passed : failed)++;
  if (paths.size() > 1) std::cout << passed << " passed, " << failed << " failed\n";
  return failed == 0 ? 0 : 1;
}
