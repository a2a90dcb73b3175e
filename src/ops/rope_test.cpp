// Each RoPE variant against values worked out by hand from the published formulas (HF transformers'
// rope init functions, the Llama 3.1 and YaRN papers), on small heads where the numbers are easy to follow.

#include "ops/rope.h"

#include <cmath>
#include <numbers>

#include <gtest/gtest.h>

namespace radixlm {
namespace {

constexpr double kPi = std::numbers::pi;

void expect_inv_freq(const RopeTable& table, const std::vector<double>& expected) {
  ASSERT_EQ(table.inv_freq.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(table.inv_freq[i], expected[i], 1e-6 * std::abs(expected[i])) << "pair " << i;
  }
}

TEST(Rope, DefaultIsPowersOfTheBase) {
  RopeParams params;
  params.theta = 10000.0;
  // head_dim 8: inv_freq[i] = 10000^(-2i/8) = 1, 0.1, 0.01, 0.001.
  const RopeTable table = make_rope_table(params, 8, 4096);
  expect_inv_freq(table, {1.0, 0.1, 0.01, 0.001});
  EXPECT_EQ(table.rotary_dim, 8);
  EXPECT_FLOAT_EQ(table.attention_scaling, 1.0f);
  EXPECT_FALSE(table.interleaved);
}

TEST(Rope, PartialRotaryFactorRotatesTheLeadingPart) {
  RopeParams params;
  params.theta = 10000.0;
  params.partial_rotary_factor = 0.5;
  // rotary_dim 4 of head 8: inv_freq[i] = 10000^(-2i/4) = 1, 0.01.
  const RopeTable table = make_rope_table(params, 8, 4096);
  EXPECT_EQ(table.rotary_dim, 4);
  expect_inv_freq(table, {1.0, 0.01});
}

TEST(Rope, LinearDividesEveryFrequencyByTheFactor) {
  RopeParams params;
  params.type = RopeType::kLinear;
  params.theta = 10000.0;
  params.factor = 4.0;
  expect_inv_freq(make_rope_table(params, 8, 4096), {0.25, 0.025, 0.0025, 0.00025});
}

TEST(Rope, DynamicNtkUsesTheStaticServingEngineBase) {
  RopeParams params;
  params.type = RopeType::kDynamic;
  params.theta = 10000.0;
  params.factor = 2.0;
  // base' = 10000 * (2 * 2 - 1)^(4 / (4 - 2)) = 10000 * 9 = 90000 for head 4: inv_freq = 1, 1/300.
  expect_inv_freq(make_rope_table(params, 4, 1024), {1.0, 1.0 / 300.0});
}

TEST(Rope, Llama3KeepsHighFrequenciesScalesLowOnesAndBlendsBetween) {
  RopeParams params;
  params.type = RopeType::kLlama3;
  params.theta = 10000.0;
  params.factor = 8.0;
  params.low_freq_factor = 1.0;
  params.high_freq_factor = 4.0;
  params.original_max_position_embeddings = 1000;
  // Wavelengths 2*pi/f of f = 1, 0.1, 0.01, 0.001 are 6.3, 62.8, 628.3, 6283. Low-frequency cutoff
  // 1000 / 1 = 1000, high-frequency cutoff 1000 / 4 = 250: the first two stay, the last is divided by 8, and
  // the third is blended with smooth = (1000 / 628.3 - 1) / (4 - 1).
  const double smooth = (1000.0 / (2 * kPi / 0.01) - 1.0) / 3.0;
  const double blended = (1.0 - smooth) * 0.01 / 8.0 + smooth * 0.01;
  expect_inv_freq(make_rope_table(params, 8, 8192), {1.0, 0.1, blended, 0.001 / 8.0});
}

TEST(Rope, YarnRampsBetweenTheCorrectionDimensions) {
  RopeParams params;
  params.type = RopeType::kYarn;
  params.theta = 10000.0;
  params.factor = 4.0;
  params.original_max_position_embeddings = 64;
  params.beta_fast = 32.0;
  params.beta_slow = 1.0;
  // Correction dims for head 8 over 64 original positions: dim * ln(64 / (2 pi r)) / (2 ln 10000):
  // r = 32 gives 8 ln(1/pi) / (2 ln 1e4) = -0.497 -> floor -1 -> clamped to 0; r = 1 gives
  // 8 ln(32/pi) / (2 ln 1e4) = 1.008 -> ceil 2. Ramp (i - 0) / 2 clamped: 0, 0.5, 1, 1, so pair 0 keeps its
  // frequency, pair 1 is half-interpolated and pairs 2 and 3 are divided by 4.
  const double low = 8 * std::log(64 / (2 * kPi * 32)) / (2 * std::log(10000.0));
  const double high = 8 * std::log(64 / (2 * kPi * 1)) / (2 * std::log(10000.0));
  ASSERT_NEAR(low, -0.497, 1e-3);
  ASSERT_NEAR(high, 1.008, 1e-3);
  const RopeTable table = make_rope_table(params, 8, 256);
  expect_inv_freq(table, {1.0, 0.5 * 0.1 + 0.5 * 0.1 / 4.0, 0.01 / 4.0, 0.001 / 4.0});
  // mscale = 0.1 ln(4) + 1 when the config sets neither mscale nor mscale_all_dim.
  EXPECT_NEAR(table.attention_scaling, 0.1 * std::log(4.0) + 1.0, 1e-6);
}

TEST(Rope, YarnWithoutTruncationUsesTheFractionalRange) {
  RopeParams params;
  params.type = RopeType::kYarn;
  params.theta = 10000.0;
  params.factor = 4.0;
  params.original_max_position_embeddings = 64;
  params.truncate = false;
  // Same correction dims as above, unrounded: low = max(-0.497, 0) = 0, high = 1.008.
  const double high = 8 * std::log(64 / (2 * kPi)) / (2 * std::log(10000.0));
  const double ramp1 = 1.0 / high;  // pair 1: (1 - 0) / (high - 0), below 1
  const double keep1 = 1.0 - ramp1;
  expect_inv_freq(make_rope_table(params, 8, 256),
                  {1.0, keep1 * 0.1 + (1.0 - keep1) * 0.1 / 4.0, 0.01 / 4.0, 0.001 / 4.0});
}

TEST(Rope, YarnMscaleRatioAndExplicitAttentionFactor) {
  RopeParams params;
  params.type = RopeType::kYarn;
  params.theta = 10000.0;
  params.factor = 40.0;
  params.original_max_position_embeddings = 64;
  params.mscale = 2.0;
  params.mscale_all_dim = 1.0;
  // (0.1 * 2 * ln 40 + 1) / (0.1 * 1 * ln 40 + 1)
  EXPECT_NEAR(make_rope_table(params, 8, 2560).attention_scaling,
              (0.2 * std::log(40.0) + 1.0) / (0.1 * std::log(40.0) + 1.0), 1e-6);
  params.mscale = 1.0;
  params.mscale_all_dim = 1.0;  // DeepSeek-V3's setting: the ratio is exactly 1
  EXPECT_FLOAT_EQ(make_rope_table(params, 8, 2560).attention_scaling, 1.0f);
  params.attention_factor = 0.75;
  EXPECT_FLOAT_EQ(make_rope_table(params, 8, 2560).attention_scaling, 0.75f);
}

TEST(Rope, YarnFallsBackToMaxPositionsWhenNoOriginalIsGiven) {
  RopeParams params;
  params.type = RopeType::kYarn;
  params.theta = 10000.0;
  params.factor = 4.0;
  // original_max_position_embeddings 0: max_position_embeddings (64) is the original context, so the
  // result equals the explicit case above.
  expect_inv_freq(make_rope_table(params, 8, 64), {1.0, 0.5 * 0.1 + 0.5 * 0.1 / 4.0, 0.01 / 4.0, 0.001 / 4.0});
}

}  // namespace
}  // namespace radixlm
