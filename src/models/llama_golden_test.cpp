// The dense fixtures against HF transformers' fp32 reference logits and greedy continuations
// (../shared/fixtures/models/*/golden.json). Each prompt runs alone and all three together as one batch,
// through the paged KV cache at several page sizes; the step descriptions are built here, independently of
// the engine, so the model and backend are checked on their own.

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backends/cpu/cpu_backend.h"
#include "loader/model_config.h"
#include "loader/weight_source.h"
#include "models/golden_test_util.h"
#include "models/model.h"

namespace radixlm {
namespace {

const std::filesystem::path kModels = std::filesystem::path(RADIXLM_FIXTURES_DIR) / "models";
constexpr int kGreedySteps = 16;
constexpr double kLogitTolerance = 1e-3;  // of max |logit|
constexpr double kMarginFloor = 1e-3;     // past a greedy step this close to a tie, tokens may differ
using namespace golden;  // models/golden_test_util.h

int32_t argmax(const std::vector<float>& row) {
  return static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());  // first of equal maxima
}

// One prefill step for every prompt together (logits at every prompt position), then greedy decode steps for
// all of them together. Pages are handed out in a shuffled order so sequences interleave in the cache.
std::vector<RunResult> run_batch(Model& model, Backend& backend, const std::vector<std::vector<int32_t>>& prompts,
                                 int32_t page_size, int steps) {
  const KvCacheShape shape = model.kv_cache_shape();
  const int64_t vocab = model.config().vocab_size;
  std::vector<std::vector<int32_t>> seq_pages(prompts.size());
  int32_t num_pages = 0;
  for (const auto& prompt : prompts) num_pages += static_cast<int32_t>((prompt.size() + steps + page_size - 1) / page_size);
  std::vector<int32_t> ids(static_cast<size_t>(num_pages));
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), std::mt19937(7));
  for (size_t s = 0, next = 0; s < prompts.size(); ++s) {
    const size_t count = (prompts[s].size() + steps + page_size - 1) / page_size;
    seq_pages[s].assign(ids.begin() + next, ids.begin() + next + count);
    next += count;
  }
  std::vector<LayerKvCache> cache;
  for (int64_t l = 0; l < shape.num_layers; ++l) {
    const Shape kv{int64_t{num_pages} * page_size, shape.num_kv_heads, shape.head_dim};
    cache.push_back({backend.alloc(DType::kF32, kv), backend.alloc(DType::kF32, kv)});
  }

  std::vector<int32_t> lengths(prompts.size(), 0);
  auto step = [&](const std::vector<std::vector<int32_t>>& new_tokens, bool all_rows) {
    ForwardBatch batch;
    batch.page_size = page_size;
    batch.query_start = {0};
    batch.page_table_start = {0};
    for (size_t s = 0; s < new_tokens.size(); ++s) {
      for (int32_t token : new_tokens[s]) {
        const int32_t position = lengths[s]++;
        if (all_rows) batch.logit_rows.push_back(batch.num_tokens());
        batch.token_ids.push_back(token);
        batch.positions.push_back(position);
        batch.kv_slots.push_back(int64_t{seq_pages[s][position / page_size]} * page_size + position % page_size);
      }
      if (!all_rows) batch.logit_rows.push_back(batch.num_tokens() - 1);
      batch.query_start.push_back(batch.num_tokens());
      batch.kv_length.push_back(lengths[s]);
      batch.page_table.insert(batch.page_table.end(), seq_pages[s].begin(), seq_pages[s].end());
      batch.page_table_start.push_back(static_cast<int32_t>(batch.page_table.size()));
    }
    Tensor logits = model.forward(batch, cache);
    std::vector<float> host(static_cast<size_t>(logits.view.numel()));
    backend.copy_to_host_f32(logits, host.data());
    std::vector<std::vector<float>> rows;
    for (size_t r = 0; r < batch.logit_rows.size(); ++r) {
      rows.emplace_back(host.begin() + static_cast<int64_t>(r) * vocab, host.begin() + static_cast<int64_t>(r + 1) * vocab);
    }
    return rows;
  };

  std::vector<RunResult> results(prompts.size());
  std::vector<std::vector<float>> rows = step(prompts, /*all_rows=*/true);
  std::vector<std::vector<int32_t>> next(prompts.size());
  for (size_t s = 0, row = 0; s < prompts.size(); ++s) {
    for (size_t i = 0; i < prompts[s].size(); ++i) results[s].prompt_logits.push_back(rows[row++]);
    results[s].greedy.push_back(argmax(results[s].prompt_logits.back()));
    next[s] = {results[s].greedy.back()};
  }
  for (int k = 1; k < steps; ++k) {
    rows = step(next, /*all_rows=*/false);
    for (size_t s = 0; s < prompts.size(); ++s) {
      results[s].greedy.push_back(argmax(rows[s]));
      next[s] = {results[s].greedy.back()};
    }
  }
  return results;
}

class DenseGoldenTest : public testing::TestWithParam<GoldenCase> {};

TEST_P(DenseGoldenTest, PromptLogitsAndGreedyMatchTransformersAloneAndBatched) {
  const auto& [fixture, page_size] = GetParam();
  const std::filesystem::path dir = kModels / fixture;
  auto config = load_model_config(dir);
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  auto weights = open_checkpoint(dir);
  ASSERT_TRUE(weights.ok()) << weights.status().to_string();
  CpuBackend backend(2);
  // The goldens' RoPE frequencies went through the checkpoint dtype (see ModelOptions); reproduce that so
  // the comparison is of the same math.
  ModelOptions options;
  options.rope_inv_freq_in_checkpoint_dtype = true;
  auto model = load_model(*config, **weights, backend, options);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const std::vector<GoldenPrompt> golden = load_golden(dir / "golden.json");
  ASSERT_EQ(golden.size(), 3u);

  std::vector<std::vector<int32_t>> prompts;
  std::vector<RunResult> alone;
  for (const GoldenPrompt& g : golden) {
    prompts.push_back(g.input_ids);
    alone.push_back(run_batch(**model, backend, {g.input_ids}, page_size, kGreedySteps).at(0));
    expect_matches_golden(alone.back(), g, fixture + " prompt " + std::to_string(prompts.size() - 1) + " alone",
                          kLogitTolerance, kMarginFloor);
  }
  const std::vector<RunResult> batched = run_batch(**model, backend, prompts, page_size, kGreedySteps);
  for (size_t i = 0; i < golden.size(); ++i) {
    const std::string what = fixture + " prompt " + std::to_string(i) + " in a batch";
    expect_matches_golden(batched[i], golden[i], what, kLogitTolerance, kMarginFloor);
    // Batching must not change the numbers beyond rounding: compare with the same prompt run alone.
    for (size_t pos = 0; pos < golden[i].input_ids.size(); ++pos) {
      for (size_t v = 0; v < batched[i].prompt_logits[pos].size(); ++v) {
        ASSERT_NEAR(batched[i].prompt_logits[pos][v], alone[i].prompt_logits[pos][v], 1e-5) << what;
      }
    }
    for (size_t k = 0; k < golden[i].greedy.size() && golden[i].greedy_margin[k] >= kMarginFloor; ++k) {
      EXPECT_EQ(batched[i].greedy[k], alone[i].greedy[k]) << what << ": step " << k;
    }
  }
}

std::vector<GoldenCase> golden_cases() {
  std::vector<GoldenCase> cases;
  for (const char* fixture : {"llama", "llama31-rope-scaling", "mistral", "qwen2", "qwen3", "qwen2.5-tiny-chat",
                              "llama3.2-tiny-chat"}) {
    for (int32_t page_size : {1, 3, 16}) cases.push_back({fixture, page_size});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, DenseGoldenTest, testing::ValuesIn(golden_cases()), case_name);

}  // namespace
}  // namespace radixlm
