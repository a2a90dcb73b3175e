#pragma once
// What the golden tests of every backend share (src/models/llama_golden_test.cpp on the CPU,
// src/backends/cuda/cuda_golden_test.cpp on the GPU): a fixture's golden.json (HF transformers' fp32 prompt
// logits, whole or top-k, and greedy continuation with each step's top-2 margin), the check of a run
// against it at a tolerance of the backend's precision, and the fixture / page-size test parameters.

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace radixlm::golden {

struct GoldenPrompt {
  std::vector<int32_t> input_ids;
  std::vector<std::vector<float>> logits;      // full rows, or empty when only the top-k is kept
  std::vector<std::vector<int32_t>> topk_ids;  // per position (large-vocabulary fixtures)
  std::vector<std::vector<float>> topk_logits;
  std::vector<int32_t> greedy;
  std::vector<double> greedy_margin;
};

inline std::vector<GoldenPrompt> load_golden(const std::filesystem::path& path) {
  std::ifstream in(path);
  const nlohmann::json json = nlohmann::json::parse(in);
  std::vector<GoldenPrompt> prompts;
  for (const auto& p : json.at("prompts")) {
    GoldenPrompt g;
    g.input_ids = p.at("input_ids").get<std::vector<int32_t>>();
    if (p.contains("logits")) g.logits = p.at("logits").get<std::vector<std::vector<float>>>();
    if (p.contains("logits_topk")) {
      for (const auto& row : p.at("logits_topk")) {
        g.topk_ids.push_back(row.at("ids").get<std::vector<int32_t>>());
        g.topk_logits.push_back(row.at("logits").get<std::vector<float>>());
      }
    }
    g.greedy = p.at("greedy").get<std::vector<int32_t>>();
    g.greedy_margin = p.at("greedy_margin").get<std::vector<double>>();
    prompts.push_back(std::move(g));
  }
  return prompts;
}

// One prompt's run: the logits of every prompt position, then the greedy tokens.
struct RunResult {
  std::vector<std::vector<float>> prompt_logits;
  std::vector<int32_t> greedy;
};

// max |logit - golden| <= logit_tolerance * max |golden logit| over every prompt position (the top-k ones
// where only those are kept), and the greedy tokens equal up to the first step whose golden top-2 margin is
// under margin_floor (past a near-tie the backend may rightly pick the other token). Prints the deviation.
inline void expect_matches_golden(const RunResult& got, const GoldenPrompt& want, const std::string& what,
                                  double logit_tolerance, double margin_floor) {
  ASSERT_EQ(got.prompt_logits.size(), want.input_ids.size()) << what;
  double max_abs = 0.0, max_delta = 0.0;
  for (size_t pos = 0; pos < want.input_ids.size(); ++pos) {
    const std::vector<float>& row = got.prompt_logits[pos];
    if (!want.logits.empty()) {
      ASSERT_EQ(row.size(), want.logits[pos].size()) << what;
      for (size_t v = 0; v < row.size(); ++v) {
        max_abs = std::max(max_abs, std::abs(static_cast<double>(want.logits[pos][v])));
        max_delta = std::max(max_delta, std::abs(static_cast<double>(row[v]) - want.logits[pos][v]));
      }
    } else {
      for (size_t j = 0; j < want.topk_ids[pos].size(); ++j) {
        const double golden = want.topk_logits[pos][j];
        max_abs = std::max(max_abs, std::abs(golden));
        max_delta = std::max(max_delta, std::abs(row.at(static_cast<size_t>(want.topk_ids[pos][j])) - golden));
      }
    }
  }
  EXPECT_LE(max_delta, logit_tolerance * max_abs)
      << what << ": prompt logits off by " << max_delta << " (max |logit| " << max_abs << ")";
  std::printf("%s: max|delta| %.4g = %.4g of max|logit|\n", what.c_str(), max_delta, max_delta / std::max(max_abs, 1e-12));
  for (size_t k = 0; k < want.greedy.size() && want.greedy_margin[k] >= margin_floor; ++k) {
    ASSERT_LT(k, got.greedy.size());
    EXPECT_EQ(got.greedy[k], want.greedy[k]) << what << ": greedy step " << k;
  }
}

struct GoldenCase {
  std::string fixture;
  int32_t page_size;
};
// Readable test parameters in gtest and ctest output (the default prints the struct's bytes).
inline void PrintTo(const GoldenCase& c, std::ostream* os) { *os << c.fixture << ", page size " << c.page_size; }

inline std::string case_name(const testing::TestParamInfo<GoldenCase>& info) {
  std::string name = info.param.fixture + "_page" + std::to_string(info.param.page_size);
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

}  // namespace radixlm::golden
