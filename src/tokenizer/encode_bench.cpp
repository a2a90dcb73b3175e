// Single-thread encode throughput: `tokenizer_encode_bench DIR TEXTS.json [REPEATS]` encodes every string of
// a JSON list (without special tokens, as the HF side of tests/tokenizer/bench_encode.py does) REPEATS times
// and prints one JSON line: {"mb_per_s": best pass, "median_mb_per_s", "bytes", "tokens"}.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s TOKENIZER_DIR TEXTS.json [REPEATS]\n", argv[0]);
    return 2;
  }
  auto tok = radixlm::tokenizer::Tokenizer::load(argv[1]);
  if (!tok.ok()) {
    std::fprintf(stderr, "%s\n", tok.status().to_string().c_str());
    return 1;
  }
  std::ifstream in(argv[2], std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  auto list = nlohmann::json::parse(buffer.str(), nullptr, false);
  if (list.is_discarded() || !list.is_array()) {
    std::fprintf(stderr, "%s: not a JSON list of strings\n", argv[2]);
    return 1;
  }
  std::vector<std::string> texts;
  size_t bytes = 0;
  for (const auto& t : list) {
    texts.push_back(t.get<std::string>());
    bytes += texts.back().size();
  }
  const int repeats = argc > 3 ? std::max(1, std::atoi(argv[3])) : 5;
  std::vector<double> rates;
  size_t tokens = 0;
  for (int r = 0; r < repeats; ++r) {
    tokens = 0;
    const auto start = std::chrono::steady_clock::now();
    for (const auto& text : texts) tokens += tok->encode(text, false).size();
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    rates.push_back(static_cast<double>(bytes) / 1e6 / elapsed.count());
  }
  std::vector<double> sorted = rates;
  std::sort(sorted.begin(), sorted.end());
  std::printf("{\"mb_per_s\": %.3f, \"median_mb_per_s\": %.3f, \"first_pass_mb_per_s\": %.3f, \"bytes\": %zu, "
              "\"tokens\": %zu}\n",
              sorted.back(), sorted[sorted.size() / 2], rates.front(), bytes, tokens);
  return 0;
}
