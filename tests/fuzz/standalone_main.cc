// A driver for the fuzz targets when libFuzzer is not available (GCC builds,
// CI): runs the target on a seed corpus built by the target's seed function
// and on random mutations of it, for a number of iterations.
//
//   <target> [--iterations N] [--seed S] [file...]   (files: inputs to replay)
//   <target> --write-corpus DIR                       (seed inputs for libFuzzer)
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
// Valid inputs to start mutating from.
std::vector<std::string> fuzz_seed_corpus();

namespace {

struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return n ? static_cast<size_t>(next() % n) : 0; }
};

std::string mutate(std::string s, Rng& rng) {
  int n = 1 + static_cast<int>(rng.below(4));
  for (int k = 0; k < n; k++) {
    switch (rng.below(6)) {
      case 0:  // flip a bit
        if (!s.empty()) s[rng.below(s.size())] ^= static_cast<char>(1 << rng.below(8));
        break;
      case 1:  // truncate
        s.resize(rng.below(s.size() + 1));
        break;
      case 2:  // random byte
        if (!s.empty()) s[rng.below(s.size())] = static_cast<char>(rng.next());
        break;
      case 3: {  // insert random bytes
        std::string ins(rng.below(16), '\0');
        for (auto& c : ins) c = static_cast<char>(rng.next());
        s.insert(rng.below(s.size() + 1), ins);
        break;
      }
      case 4: {  // duplicate a slice
        if (s.empty()) break;
        size_t a = rng.below(s.size()), len = rng.below(s.size() - a + 1);
        s.insert(rng.below(s.size() + 1), s.substr(a, len));
        break;
      }
      default:  // zero a range
        if (!s.empty()) {
          size_t a = rng.below(s.size()), len = rng.below(s.size() - a + 1);
          for (size_t i = a; i < a + len; i++) s[i] = 0;
        }
    }
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t iterations = 10000, seed = 1;
  std::vector<std::string> files;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--iterations" && i + 1 < argc) {
      iterations = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--seed" && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--write-corpus" && i + 1 < argc) {
      std::string dir = argv[++i];
      int n = 0;
      for (const auto& s : fuzz_seed_corpus()) {
        std::ofstream out(dir + "/seed-" + std::to_string(n++), std::ios::binary);
        out << s;
      }
      return 0;
    } else {
      files.push_back(a);
    }
  }
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  }
  if (!files.empty()) return 0;
  std::vector<std::string> corpus = fuzz_seed_corpus();
  Rng rng{seed};
  for (uint64_t i = 0; i < iterations; i++) {
    std::string input = corpus[rng.below(corpus.size())];
    if (i % 10 != 0) input = mutate(std::move(input), rng);
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  }
  std::printf("%s: %llu inputs, no crash\n", argv[0], (unsigned long long)iterations);
  return 0;
}
