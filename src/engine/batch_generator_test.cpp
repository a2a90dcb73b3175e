// The batch generator against the llama fixture's HF golden: one batch of three prompts gives the golden
// greedy continuations and prompt logits, pages all come back, and eos, limits and bad input behave.

#include "engine/batch_generator.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "backends/cpu/cpu_backend.h"
#include "loader/model_config.h"
#include "loader/weight_source.h"

namespace radixlm {
namespace {

const std::filesystem::path kLlama = std::filesystem::path(RADIXLM_FIXTURES_DIR) / "models" / "llama";

class BatchGeneratorTest : public testing::Test {
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

  // Golden greedy tokens up to the first near-tie.
  std::vector<int32_t> trusted_greedy(size_t prompt) const {
    std::vector<int32_t> out;
    const auto greedy = golden_[prompt].at("greedy").get<std::vector<int32_t>>();
    const auto margin = golden_[prompt].at("greedy_margin").get<std::vector<double>>();
    for (size_t k = 0; k < greedy.size() && margin[k] >= 1e-3; ++k) out.push_back(greedy[k]);
    return out;
  }

  CpuBackend backend_{2};
  std::unique_ptr<WeightSource> weights_;
  std::unique_ptr<Model> model_;
  nlohmann::json golden_;
  std::vector<std::vector<int32_t>> prompts_;
};

TEST_F(BatchGeneratorTest, OneBatchGivesTheGoldenGreedyAndPromptLogits) {
  for (int32_t page_size : {1, 3, 16}) {
    const auto pages = BatchGenerator::pages_needed(prompts_, 16, page_size);
    BatchGenerator generator(*model_, backend_, page_size, static_cast<int32_t>(pages));
    GenerateOptions options;
    options.max_new_tokens = 16;
    options.ignore_eos = true;
    options.return_prompt_logits = true;
    auto outputs = generator.generate(prompts_, options);
    ASSERT_TRUE(outputs.ok()) << outputs.status().to_string();
    ASSERT_EQ(outputs->size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
      const GenerateOutput& out = (*outputs)[i];
      EXPECT_EQ(out.output_ids.size(), 16u);
      EXPECT_EQ(out.finish_reason, "length");
      const std::vector<int32_t> want = trusted_greedy(i);
      EXPECT_EQ(std::vector<int32_t>(out.output_ids.begin(), out.output_ids.begin() + static_cast<int64_t>(want.size())),
                want)
          << "prompt " << i << " page size " << page_size;
      const auto golden_logits = golden_[i].at("logits").get<std::vector<std::vector<double>>>();
      ASSERT_EQ(out.prompt_logits.size(), golden_logits.size());
      double max_abs = 0, max_delta = 0;
      for (size_t pos = 0; pos < golden_logits.size(); ++pos) {
        for (size_t v = 0; v < golden_logits[pos].size(); ++v) {
          max_abs = std::max(max_abs, std::abs(golden_logits[pos][v]));
          max_delta = std::max(max_delta, std::abs(out.prompt_logits[pos][v] - golden_logits[pos][v]));
        }
      }
      EXPECT_LE(max_delta, 1e-3 * max_abs) << "prompt " << i;
    }
    EXPECT_EQ(generator.page_pool().num_free(), generator.page_pool().num_pages());
    EXPECT_EQ(generator.last_timing().prefill_tokens, 41);
    EXPECT_EQ(generator.last_timing().decode_steps, 15);
  }
}

TEST_F(BatchGeneratorTest, EosStopsOneSequenceWhileOthersContinue) {
  const std::vector<int32_t> want = trusted_greedy(0);
  ASSERT_GE(want.size(), 4u);
  GenerateOptions options;
  options.max_new_tokens = 16;
  options.eos_token_ids = {want[3]};
  // Prompt 0's 4th token is its eos; the same id may appear in the others, so compute where each stops.
  BatchGenerator generator(*model_, backend_, 2, static_cast<int32_t>(BatchGenerator::pages_needed(prompts_, 16, 2)));
  auto outputs = generator.generate(prompts_, options);
  ASSERT_TRUE(outputs.ok()) << outputs.status().to_string();
  const auto& first = (*outputs)[0];
  EXPECT_EQ(first.finish_reason, "stop");
  const auto stop = std::find(want.begin(), want.end(), want[3]);
  EXPECT_EQ(first.output_ids, std::vector<int32_t>(want.begin(), stop + 1));
  for (size_t i = 1; i < 3; ++i) {
    const auto& out = (*outputs)[i];
    const std::vector<int32_t> others = trusted_greedy(i);
    const auto hit = std::find(others.begin(), others.end(), want[3]);
    if (hit != others.end()) {
      EXPECT_EQ(out.finish_reason, "stop");
      EXPECT_EQ(out.output_ids, std::vector<int32_t>(others.begin(), hit + 1));
    } else if (others.size() == 16) {
      EXPECT_EQ(out.finish_reason, "length");
      EXPECT_EQ(out.output_ids, others);
    }
  }
  EXPECT_EQ(generator.page_pool().num_free(), generator.page_pool().num_pages());
}

TEST_F(BatchGeneratorTest, MaxNewTokensZeroGivesOnlyPromptLogits) {
  BatchGenerator generator(*model_, backend_, 4, 20);
  GenerateOptions options;
  options.max_new_tokens = 0;
  options.return_prompt_logits = true;
  auto outputs = generator.generate({prompts_[1]}, options);
  ASSERT_TRUE(outputs.ok()) << outputs.status().to_string();
  EXPECT_TRUE((*outputs)[0].output_ids.empty());
  EXPECT_EQ((*outputs)[0].prompt_logits.size(), prompts_[1].size());
}

TEST_F(BatchGeneratorTest, GenerationStopsAtTheContextLength) {
  ModelConfig config = model_->config();
  config.max_position_embeddings = 40;  // a short context keeps the test fast; default RoPE ignores it
  auto short_model = load_model(config, *weights_, backend_);
  ASSERT_TRUE(short_model.ok()) << short_model.status().to_string();
  const std::vector<std::vector<int32_t>> prompt = {std::vector<int32_t>(37, 7)};
  // Asking for far more tokens than fit needs only the context's worth of pages.
  EXPECT_EQ(BatchGenerator::pages_needed(prompt, 1000000, 8, 40), 5);
  BatchGenerator generator(**short_model, backend_, 8, 5);
  GenerateOptions options;
  options.max_new_tokens = 1000000;
  options.ignore_eos = true;
  auto outputs = generator.generate(prompt, options);
  ASSERT_TRUE(outputs.ok()) << outputs.status().to_string();
  // 37 prompt tokens + 3 fed-back tokens fill the 40 positions; the 4th generated token is the last.
  EXPECT_EQ((*outputs)[0].output_ids.size(), 4u);
  EXPECT_EQ((*outputs)[0].finish_reason, "length");
  // A prompt longer than the context is refused.
  EXPECT_EQ(generator.generate({std::vector<int32_t>(41, 7)}, options).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(BatchGeneratorTest, BadRequestsAreErrorsAndLeaveNoPagesTaken) {
  BatchGenerator generator(*model_, backend_, 1, 8);
  GenerateOptions options;
  options.temperature = 0.7;
  auto sampled = generator.generate({{1, 2}}, options);
  ASSERT_FALSE(sampled.ok());
  EXPECT_EQ(sampled.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(sampled.status().message().find("sampling"), std::string::npos);

  options.temperature = 0.0;
  EXPECT_EQ(generator.generate({{1, 512}}, options).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(generator.generate({{1, -1}}, options).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(generator.generate({{}}, options).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(generator.generate({}, options).status().code(), StatusCode::kInvalidArgument);

  options.max_new_tokens = 16;  // 2 prompt tokens + 15 fed back need 17 slots; the pool has 8
  auto out_of_pages = generator.generate({{1, 2}}, options);
  ASSERT_FALSE(out_of_pages.ok());
  EXPECT_EQ(out_of_pages.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(generator.page_pool().num_free(), 8);
}

}  // namespace
}  // namespace radixlm
