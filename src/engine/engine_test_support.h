#pragma once
// The engine tests' shared fixture: the llama fixture model on the CPU backend, its HF golden, and small
// helpers to build requests and run them.

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "backends/cpu/cpu_backend.h"
#include "engine/engine.h"
#include "loader/model_config.h"
#include "loader/weight_source.h"

namespace radixlm::engine_testing {

inline const std::filesystem::path kLlama = std::filesystem::path(RADIXLM_FIXTURES_DIR) / "models" / "llama";

inline EngineOptions engine_options(int32_t page_size, int64_t chunk, bool radix, int64_t total_tokens = 2048) {
  EngineOptions o;
  o.scheduler.page_size = page_size;
  o.scheduler.max_total_tokens = total_tokens;
  o.scheduler.chunked_prefill_size = chunk;
  o.scheduler.disable_radix_cache = !radix;
  o.scheduler.check_integrity_every_step = true;
  return o;
}

inline EngineRequest greedy(std::vector<int32_t> ids, int32_t max_new_tokens) {
  EngineRequest r;
  r.input_ids = std::move(ids);
  r.params.temperature = 0.0;
  r.params.max_new_tokens = max_new_tokens;
  r.params.ignore_eos = true;
  return r;
}

// Takes every chunk of a stream (waiting for them) and returns the final output; nullopt if it never came.
inline std::optional<EngineOutput> drain(RequestStream& stream) {
  std::optional<EngineOutput> final;
  while (auto chunk = stream.next()) {
    if (chunk->finished) final = std::move(chunk->output);
  }
  return final;
}

class EngineTest : public testing::Test {
 protected:
  void SetUp() override {
    auto config = load_model_config(kLlama);
    ASSERT_TRUE(config.ok()) << config.status().to_string();
    auto weights = open_checkpoint(kLlama);
    ASSERT_TRUE(weights.ok()) << weights.status().to_string();
    weights_ = std::move(*weights);
    ModelOptions options;
    options.rope_inv_freq_in_checkpoint_dtype = true;  // as the golden was made (see ModelOptions)
    auto model = load_model(*config, *weights_, backend_, options);
    ASSERT_TRUE(model.ok()) << model.status().to_string();
    model_ = std::move(*model);
    std::ifstream in(kLlama / "golden.json");
    golden_ = nlohmann::json::parse(in).at("prompts");
    for (const auto& p : golden_) prompts_.push_back(p.at("input_ids").get<std::vector<int32_t>>());
  }

  std::vector<int32_t> trusted_greedy(size_t prompt) const {
    std::vector<int32_t> out;
    const auto greedy_ids = golden_[prompt].at("greedy").get<std::vector<int32_t>>();
    const auto margin = golden_[prompt].at("greedy_margin").get<std::vector<double>>();
    for (size_t k = 0; k < greedy_ids.size() && margin[k] >= 1e-3; ++k) out.push_back(greedy_ids[k]);
    return out;
  }

  std::vector<EngineOutput> run(const EngineOptions& options, const std::vector<EngineRequest>& requests) {
    auto engine = Engine::create(*model_, backend_, options);
    EXPECT_TRUE(engine.ok()) << engine.status().to_string();
    auto outputs = (*engine)->generate(requests);
    EXPECT_TRUE(outputs.ok()) << outputs.status().to_string();
    Scheduler& s = (*engine)->scheduler();
    EXPECT_TRUE(s.check_integrity().ok());
    s.cache().flush();
    EXPECT_EQ(s.page_pool().num_free(), s.page_pool().num_pages());  // nothing leaked
    last_retractions_ = s.counters().retractions;
    return outputs.ok() ? *outputs : std::vector<EngineOutput>{};
  }

  // Each request alone, in its own engine without any sharing.
  std::vector<std::vector<int32_t>> alone(const std::vector<EngineRequest>& requests) {
    std::vector<std::vector<int32_t>> out;
    for (const EngineRequest& r : requests) {
      const auto outputs = run(engine_options(1, -1, false), {r});
      out.push_back(outputs.empty() ? std::vector<int32_t>{} : outputs[0].output_ids);
    }
    return out;
  }

  // 16 requests of mixed lengths: the three golden prompts, then cuts of the longest one with two tokens of
  // their own, so many share prefixes of different lengths.
  std::vector<EngineRequest> mixed_requests() const {
    std::vector<EngineRequest> requests;
    for (size_t i = 0; i < prompts_.size(); ++i) requests.push_back(greedy(prompts_[i], 8));
    for (int32_t k = 3; k < 16; ++k) {
      const int32_t cut = 5 + (k * 7) % 28;
      std::vector<int32_t> ids(prompts_[2].begin(), prompts_[2].begin() + cut);
      ids.push_back((k * 37) % 500 + 1);
      ids.push_back(k + 3);
      requests.push_back(greedy(ids, 4 + k % 5));
    }
    return requests;
  }

  CpuBackend backend_{2};
  std::unique_ptr<WeightSource> weights_;
  std::unique_ptr<Model> model_;
  nlohmann::json golden_;
  std::vector<std::vector<int32_t>> prompts_;
  int64_t last_retractions_ = 0;
};

}  // namespace radixlm::engine_testing
