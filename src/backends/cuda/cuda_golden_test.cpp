// Every dense model fixture on the CUDA backend against HF transformers' fp32 golden logits and greedy
// continuations (fixtures/models/*/golden.json). The GPU computes in bf16 (weights, activations and KV
// cache), so the bound is bf16's, not the CPU reference's 1e-3:
//   max |logit - golden| <= 5e-2 * max |golden logit| over every prompt position,
// about ten bf16 roundings (2^-9 each) compounding through the layers of these small models; and the greedy
// tokens equal the golden ones up to the first step whose golden top-2 margin is under 0.05 (past a
// near-tie, bf16 may rightly pick the other token). Each prompt runs alone and the three run as one batch,
// at page sizes 1, 16 and 64. The step descriptions are built here, independently of the engine.

#include <algorithm>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backends/cuda/cuda_test_util.h"
#include "loader/model_config.h"
#include "loader/weight_source.h"
#include "models/golden_test_util.h"
#include "models/model.h"

namespace radixlm {
namespace {

constexpr int kGreedySteps = 16;
constexpr double kLogitTolerance = 5e-2;  // of max |golden logit|
constexpr double kMarginFloor = 5e-2;
using namespace golden;  // models/golden_test_util.h

std::vector<RunResult> run_batch(Model& model, CudaBackend& backend, const std::vector<std::vector<int32_t>>& prompts,
                                 int32_t page_size, int steps, size_t* mallocs_during_late_decode) {
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
    seq_pages[s].assign(ids.begin() + static_cast<int64_t>(next), ids.begin() + static_cast<int64_t>(next + count));
    next += count;
  }
  std::vector<LayerKvCache> cache;
  for (int64_t l = 0; l < shape.num_layers; ++l) {
    const Shape kv{int64_t{num_pages} * page_size, shape.num_kv_heads, shape.head_dim};
    cache.push_back({backend.alloc(DType::kBF16, kv), backend.alloc(DType::kBF16, kv)});
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
        batch.kv_slots.push_back(int64_t{seq_pages[s][static_cast<size_t>(position / page_size)]} * page_size +
                                 position % page_size);
      }
      if (!all_rows) batch.logit_rows.push_back(batch.num_tokens() - 1);
      batch.query_start.push_back(batch.num_tokens());
      batch.kv_length.push_back(lengths[s]);
      batch.page_table.insert(batch.page_table.end(), seq_pages[s].begin(), seq_pages[s].end());
      batch.page_table_start.push_back(static_cast<int32_t>(batch.page_table.size()));
    }
    Tensor logits = model.forward(batch, cache);
    EXPECT_EQ(logits.dtype(), DType::kF32);
    std::vector<float> host(static_cast<size_t>(logits.view.numel()));
    backend.copy_to_host_f32(logits, host.data());
    std::vector<std::vector<float>> rows;
    for (size_t r = 0; r < batch.logit_rows.size(); ++r) {
      rows.emplace_back(host.begin() + static_cast<int64_t>(r) * vocab, host.begin() + static_cast<int64_t>(r + 1) * vocab);
    }
    return rows;
  };
  auto argmax = [](const std::vector<float>& row) {
    return static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
  };
  std::vector<RunResult> results(prompts.size());
  std::vector<std::vector<float>> rows = step(prompts, true);
  std::vector<std::vector<int32_t>> next(prompts.size());
  for (size_t s = 0, row = 0; s < prompts.size(); ++s) {
    for (size_t i = 0; i < prompts[s].size(); ++i) results[s].prompt_logits.push_back(rows[row++]);
    results[s].greedy.push_back(argmax(results[s].prompt_logits.back()));
    next[s] = {results[s].greedy.back()};
  }
  size_t mallocs_before = 0;
  for (int k = 1; k < steps; ++k) {
    if (k == 4) mallocs_before = backend.device_malloc_calls();
    rows = step(next, false);
    for (size_t s = 0; s < prompts.size(); ++s) {
      results[s].greedy.push_back(argmax(rows[s]));
      next[s] = {results[s].greedy.back()};
    }
  }
  *mallocs_during_late_decode = backend.device_malloc_calls() - mallocs_before;
  return results;
}

class CudaDenseGoldenTest : public testing::TestWithParam<GoldenCase> {};

TEST_P(CudaDenseGoldenTest, PromptLogitsAndGreedyMatchTransformersInBf16) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(backend);
  const auto& [fixture, page_size] = GetParam();
  const std::filesystem::path dir = cuda_test::fixtures_dir() / "models" / fixture;
  auto config = load_model_config(dir);
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  auto weights = open_checkpoint(dir);
  ASSERT_TRUE(weights.ok()) << weights.status().to_string();
  ModelOptions options;
  options.rope_inv_freq_in_checkpoint_dtype = true;  // as the goldens were made (see ModelOptions)
  auto model = load_model(*config, **weights, backend, options);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const std::vector<GoldenPrompt> golden = load_golden(dir / "golden.json");
  ASSERT_EQ(golden.size(), 3u);
  std::vector<std::vector<int32_t>> prompts;
  size_t mallocs = 0;
  for (const GoldenPrompt& g : golden) {
    prompts.push_back(g.input_ids);
    const RunResult alone = run_batch(**model, backend, {g.input_ids}, page_size, kGreedySteps, &mallocs).at(0);
    expect_matches_golden(alone, g, fixture + " prompt " + std::to_string(prompts.size() - 1) + " alone",
                          kLogitTolerance, kMarginFloor);
    EXPECT_EQ(mallocs, 0u) << "decode steps after warm-up must not call cudaMalloc";
  }
  const std::vector<RunResult> batched = run_batch(**model, backend, prompts, page_size, kGreedySteps, &mallocs);
  for (size_t i = 0; i < golden.size(); ++i) {
    expect_matches_golden(batched[i], golden[i], fixture + " prompt " + std::to_string(i) + " in a batch",
                          kLogitTolerance, kMarginFloor);
  }
  EXPECT_EQ(mallocs, 0u) << "decode steps after warm-up must not call cudaMalloc";
}

std::vector<GoldenCase> golden_cases() {
  std::vector<GoldenCase> cases;
  for (const char* fixture : {"llama", "llama31-rope-scaling", "mistral", "qwen2", "qwen3", "qwen2.5-tiny-chat",
                              "llama3.2-tiny-chat"}) {
    for (int32_t page_size : {1, 16, 64}) cases.push_back({fixture, page_size});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaDenseGoldenTest, testing::ValuesIn(golden_cases()), case_name);

}  // namespace
}  // namespace radixlm
