// Penalties, min_new_tokens and logit_bias on hand-made logits, each expected value written out from the
// formula (frequency: minus f * count; presence: minus p once; repetition: positive / r, negative * r).

#include "sampling/logit_processors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace radixlm {
namespace {

SamplingState state_after(const std::vector<int32_t>& outputs) {
  SamplingState state;
  for (int32_t id : outputs) record_output_token(state, id);
  return state;
}

TEST(LogitProcessors, RecordsCounts) {
  const SamplingState state = state_after({3, 1, 3, 3});
  EXPECT_EQ(state.num_generated, 4);
  EXPECT_EQ(state.output_token_counts.at(3), 3);
  EXPECT_EQ(state.output_token_counts.at(1), 1);
  EXPECT_EQ(state.output_token_counts.count(0), 0u);
}

TEST(LogitProcessors, FrequencyAndPresencePenalties) {
  std::vector<float> logits = {1.0f, 2.0f, -0.5f, 3.0f, 0.25f};
  SamplingParams params;
  params.frequency_penalty = 0.5;
  params.presence_penalty = 0.25;
  apply_logit_processors(logits, params, state_after({3, 1, 3, 3}), {});
  EXPECT_FLOAT_EQ(logits[0], 1.0f);
  EXPECT_FLOAT_EQ(logits[1], 2.0f - 0.5f * 1 - 0.25f);
  EXPECT_FLOAT_EQ(logits[2], -0.5f);
  EXPECT_FLOAT_EQ(logits[3], 3.0f - 0.5f * 3 - 0.25f);
  EXPECT_FLOAT_EQ(logits[4], 0.25f);
}

TEST(LogitProcessors, NegativePenaltiesEncourageRepeats) {
  std::vector<float> logits = {0.0f, 0.0f};
  SamplingParams params;
  params.frequency_penalty = -1.0;
  params.presence_penalty = -2.0;
  apply_logit_processors(logits, params, state_after({1, 1}), {});
  EXPECT_FLOAT_EQ(logits[0], 0.0f);
  EXPECT_FLOAT_EQ(logits[1], 2.0f + 2.0f);
}

TEST(LogitProcessors, RepetitionPenaltyDividesPositiveAndMultipliesNegative) {
  std::vector<float> logits = {2.0f, -2.0f, 4.0f, -1.0f, 0.0f};
  SamplingParams params;
  params.repetition_penalty = 1.25;
  apply_logit_processors(logits, params, state_after({0, 1, 1, 4}), {});
  EXPECT_FLOAT_EQ(logits[0], 2.0f / 1.25f);
  EXPECT_FLOAT_EQ(logits[1], -2.0f * 1.25f);  // applied once however often the token came
  EXPECT_FLOAT_EQ(logits[2], 4.0f);           // never generated
  EXPECT_FLOAT_EQ(logits[3], -1.0f);
  EXPECT_FLOAT_EQ(logits[4], 0.0f);
}

TEST(LogitProcessors, RepetitionBelowOneRewardsRepeats) {
  std::vector<float> logits = {2.0f, -2.0f};
  SamplingParams params;
  params.repetition_penalty = 0.5;
  apply_logit_processors(logits, params, state_after({0, 1}), {});
  EXPECT_FLOAT_EQ(logits[0], 4.0f);
  EXPECT_FLOAT_EQ(logits[1], -1.0f);
}

TEST(LogitProcessors, AdditiveBeforeRepetitionThenBias) {
  // SGLang's overlap order: additive penalties, then the scaling one, then logit_bias.
  std::vector<float> logits = {0.5f, 3.0f};
  SamplingParams params;
  params.frequency_penalty = 1.0;
  params.repetition_penalty = 2.0;
  params.logit_bias = {{0, 10.0}, {1, -1.0}};
  apply_logit_processors(logits, params, state_after({0, 1}), {});
  // token 0: 0.5 - 1 = -0.5 (now negative) -> * 2 = -1 -> + 10 = 9
  EXPECT_FLOAT_EQ(logits[0], 9.0f);
  // token 1: 3 - 1 = 2 -> / 2 = 1 -> - 1 = 0
  EXPECT_FLOAT_EQ(logits[1], 0.0f);
}

TEST(LogitProcessors, LogitBiasAloneAddsToItsTokens) {
  std::vector<float> logits = {1.0f, 1.0f, 1.0f};
  SamplingParams params;
  params.logit_bias = {{2, -100.0}, {0, 0.5}};
  apply_logit_processors(logits, params, SamplingState{}, {});
  EXPECT_FLOAT_EQ(logits[0], 1.5f);
  EXPECT_FLOAT_EQ(logits[1], 1.0f);
  EXPECT_FLOAT_EQ(logits[2], -99.0f);
}

TEST(LogitProcessors, MinNewTokensSuppressesEosAndStopIdsUntilReached) {
  SamplingParams params;
  params.min_new_tokens = 2;
  params.stop_token_ids = {4};
  params.ignore_eos = true;  // does not lift the suppression, as in SGLang
  const std::vector<int32_t> eos = {1, 7 /* outside the row: ignored */};
  for (int generated = 0; generated <= 3; ++generated) {
    std::vector<float> logits = {0.0f, 5.0f, 1.0f, 2.0f, 6.0f};
    SamplingState state;
    for (int i = 0; i < generated; ++i) record_output_token(state, 2);
    params.frequency_penalty = 0.0;
    apply_logit_processors(logits, params, state, eos);
    const bool suppressed = generated < 2;
    EXPECT_EQ(std::isinf(logits[1]) && logits[1] < 0, suppressed) << generated;
    EXPECT_EQ(std::isinf(logits[4]) && logits[4] < 0, suppressed) << generated;
    EXPECT_FLOAT_EQ(logits[3], 2.0f);
  }
}

TEST(LogitProcessors, NeutralParamsChangeNothing) {
  std::vector<float> logits = {1.0f, -2.0f, 3.5f};
  const std::vector<float> before = logits;
  apply_logit_processors(logits, SamplingParams{}, state_after({0, 1, 2}), std::vector<int32_t>{2});
  EXPECT_EQ(logits, before);
}

}  // namespace
}  // namespace radixlm
