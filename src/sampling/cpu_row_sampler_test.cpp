// The sample-rows request carries everything the CPU sampler reads: a row built from params and state,
// sampled by CpuRowSampler, gives exactly the token and logprobs sample_next_token gives the original
// request (the device sampler is tested against CpuRowSampler, so this ties it to the engine's sampler).

#include "sampling/cpu_row_sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/tensor.h"

namespace radixlm {
namespace {

struct Case {
  SamplingParams params;
  SamplingState state;
};

std::vector<Case> varied_cases(int vocab, std::mt19937& rng) {
  std::vector<Case> cases;
  std::uniform_int_distribution<int> token(0, vocab - 1);
  for (int r = 0; r < 48; ++r) {
    Case c;
    SamplingParams& p = c.params;
    p.temperature = r % 6 == 0 ? 0.0 : 0.3 + 0.15 * (r % 7);
    p.top_k = r % 4 == 1 ? 1 + r % 9 : -1;
    p.top_p = r % 3 == 2 ? 0.5 + 0.05 * (r % 5) : 1.0;
    p.min_p = r % 5 == 3 ? 0.02 * (r % 4 + 1) : 0.0;
    p.frequency_penalty = r % 7 == 1 ? 0.3 : 0.0;
    p.presence_penalty = r % 7 == 2 ? -0.5 : 0.0;
    p.repetition_penalty = r % 7 == 3 ? 1.3 : 1.0;
    if (r % 8 == 4) {
      p.logit_bias[token(rng)] = 3.5;
      p.logit_bias[token(rng)] = -100.0;
      p.logit_bias[vocab + 5] = 1.0;  // outside the row: ignored by both
    }
    if (r % 9 == 5) {
      p.min_new_tokens = 100;
      p.stop_token_ids = {token(rng), vocab + 2};
    }
    p.return_logprob = r % 2 == 1;
    p.top_logprobs_num = r % 4;
    c.state.seed = 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(r + 1);
    for (int t = 0; t < r % 11; ++t) record_output_token(c.state, token(rng));
    cases.push_back(std::move(c));
  }
  return cases;
}

TEST(CpuRowSampler, SameTokensAndLogprobsAsTheEngineSampler) {
  constexpr int kVocab = 500;
  std::mt19937 rng(7);
  const std::vector<Case> cases = varied_cases(kVocab, rng);
  const std::vector<int32_t> eos = {3, kVocab + 1};
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> logits(cases.size() * kVocab);
  for (float& x : logits) x = normal(rng);

  SampleRowsRequest request;
  for (const Case& c : cases) add_sample_row(request, c.params, c.state, eos, kVocab);
  ASSERT_EQ(request.num_rows(), static_cast<int64_t>(cases.size()));

  std::vector<float> device_copy = logits;
  CpuRowSampler sampler;
  const std::vector<SampledRow> rows = sampler.sample_rows(
      TensorView(device_copy.data(), DType::kF32, Shape{static_cast<int64_t>(cases.size()), kVocab}), request);

  SamplerScratch scratch;
  int sampled_rows = 0;
  for (size_t r = 0; r < cases.size(); ++r) {
    std::vector<float> row(logits.begin() + static_cast<int64_t>(r * kVocab),
                           logits.begin() + static_cast<int64_t>((r + 1) * kVocab));
    const SampledToken want = sample_next_token(row, cases[r].params, cases[r].state, eos, scratch);
    EXPECT_EQ(rows[r].token_id, want.token_id) << "row " << r;
    if (cases[r].params.return_logprob) {
      EXPECT_EQ(rows[r].logprob, want.logprob) << "row " << r;
      ASSERT_EQ(rows[r].top_ids.size(), want.top_logprobs.size()) << "row " << r;
      for (size_t i = 0; i < want.top_logprobs.size(); ++i) {
        EXPECT_EQ(rows[r].top_ids[i], want.top_logprobs[i].token_id);
        EXPECT_EQ(rows[r].top_logprobs[i], want.top_logprobs[i].logprob);
      }
    } else {
      EXPECT_TRUE(rows[r].top_ids.empty());
    }
    // The processed row is left in the logits, as the CPU sampler leaves it.
    for (int j = 0; j < kVocab; ++j) ASSERT_EQ(device_copy[r * kVocab + j], row[static_cast<size_t>(j)]) << r;
    if (!is_greedy(cases[r].params)) ++sampled_rows;
    const SampledToken back = to_sampled_token(rows[r]);
    EXPECT_EQ(back.token_id, want.token_id);
    EXPECT_EQ(back.top_logprobs.size(), want.top_logprobs.size());
  }
  EXPECT_GT(sampled_rows, 20);  // the sweep samples, not just argmaxes
}

TEST(CpuRowSampler, RequestListsOnlyWhatTheProcessorsRead) {
  constexpr int kVocab = 100;
  SamplingParams plain;
  plain.temperature = 0.7;
  SamplingState state;
  state.seed = 42;
  record_output_token(state, 5);
  record_output_token(state, 5);
  record_output_token(state, 7);
  SamplingParams penalized = plain;
  penalized.repetition_penalty = 1.2;
  penalized.min_new_tokens = 3;  // state has 3 outputs: no suppression
  penalized.stop_token_ids = {9};
  penalized.logit_bias = {{1, 0.5}, {kVocab, 2.0}, {-1, 1.0}};
  const std::vector<int32_t> eos = {2};

  SampleRowsRequest request;
  add_sample_row(request, plain, state, eos, kVocab);
  add_sample_row(request, penalized, state, eos, kVocab);
  SamplingState early = state;
  early.num_generated = 1;
  add_sample_row(request, penalized, early, eos, kVocab);

  EXPECT_EQ(request.count_start, (std::vector<int32_t>{0, 0, 2, 4}));  // no penalty, no counts
  EXPECT_EQ(request.suppress_start, (std::vector<int32_t>{0, 0, 0, 2}));
  EXPECT_EQ(request.suppress_ids, (std::vector<int32_t>{9, 2}));
  EXPECT_EQ(request.bias_start, (std::vector<int32_t>{0, 0, 1, 2}));
  EXPECT_EQ(request.bias_ids, (std::vector<int32_t>{1, 1}));
  EXPECT_EQ(request.rows[1].seed, 42u);
  EXPECT_EQ(request.rows[1].step, 3);
  EXPECT_FALSE(request.rows[1].greedy);
  EXPECT_DOUBLE_EQ(request.rows[1].temperature, 0.7);

  const RowSamplingInputs in = row_sampling_inputs(request, 2);
  EXPECT_EQ(in.state.num_generated, 1);
  EXPECT_EQ(in.state.output_token_counts.at(5), 2);
  EXPECT_EQ(in.params.min_new_tokens, 2);
  EXPECT_EQ(in.params.stop_token_ids, (std::vector<int32_t>{9, 2}));
}

TEST(CpuRowSampler, GreedyRowsKeepTheirLogprobTemperature) {
  SamplingParams top_k_one;
  top_k_one.temperature = 0.8;
  top_k_one.top_k = 1;  // SGLang's other greedy: logprobs still at temperature 0.8
  SamplingParams cold;
  cold.temperature = 0.0;
  cold.top_k = 1;
  SamplingParams zero;
  zero.temperature = 1e-9;
  zero.top_k = 40;
  SampleRowsRequest request;
  for (const SamplingParams& p : {top_k_one, cold, zero}) add_sample_row(request, p, SamplingState{}, {}, 10);
  const double want[] = {0.8, 1.0, 1.0};
  for (int r = 0; r < 3; ++r) {
    EXPECT_TRUE(request.rows[static_cast<size_t>(r)].greedy) << r;
    EXPECT_DOUBLE_EQ(request.rows[static_cast<size_t>(r)].temperature, want[r]) << r;
    const RowSamplingInputs in = row_sampling_inputs(request, r);
    EXPECT_TRUE(is_greedy(in.params)) << r;
    EXPECT_DOUBLE_EQ(effective_temperature(in.params), want[r]) << r;
  }
}

TEST(CpuRowSampler, TooManyTopLogprobsIsNotForTheRowSampler) {
  SamplingParams p;
  p.return_logprob = true;
  p.top_logprobs_num = kMaxSampleTopLogprobs + 1;
  EXPECT_FALSE(row_sampler_supports(p));
  p.top_logprobs_num = kMaxTopLogprobs;
  EXPECT_TRUE(row_sampler_supports(p));
}

}  // namespace
}  // namespace radixlm
