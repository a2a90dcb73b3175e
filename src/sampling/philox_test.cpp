// Philox against Random123's published known-answer vectors (tests/kat_vectors, "philox4x32 10" lines),
// and the seeded uniform's range and mean.

#include "sampling/philox.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

namespace radixlm {
namespace {

TEST(Philox, Random123KnownAnswers) {
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}), (PhiloxCounter{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}),
            (PhiloxCounter{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
            (PhiloxCounter{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(Philox, UniformIsInRangeWithTheRightMeanAndVariance) {
  constexpr int kDraws = 200000;
  double sum = 0.0, sum_sq = 0.0;
  for (int i = 0; i < kDraws; ++i) {
    const double u = uniform_for_step(12345, static_cast<uint64_t>(i));
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    sum_sq += u * u;
  }
  // Uniform(0,1): mean 1/2 (sd of the mean sqrt(1/12/n) ~ 0.00065), E[u^2] = 1/3. Bounds at ~6 sd.
  EXPECT_NEAR(sum / kDraws, 0.5, 0.004);
  EXPECT_NEAR(sum_sq / kDraws, 1.0 / 3.0, 0.004);
}

TEST(Philox, DrawDependsOnlyOnSeedAndStep) {
  EXPECT_EQ(uniform_for_step(7, 3), uniform_for_step(7, 3));
  EXPECT_NE(uniform_for_step(7, 3), uniform_for_step(7, 4));
  EXPECT_NE(uniform_for_step(7, 3), uniform_for_step(8, 3));
  // Seeds that differ only in the high word must differ too.
  EXPECT_NE(uniform_for_step(7, 3), uniform_for_step(7 + (1ull << 32), 3));
}

TEST(Philox, RequestSeedSourceRepeatsForTheSameRandomSeed) {
  RequestSeedSource a(42), b(42), c(43);
  std::set<uint64_t> seen;
  for (int i = 0; i < 100; ++i) {
    const uint64_t seed = a.next();
    EXPECT_EQ(seed, b.next());
    EXPECT_NE(seed, c.next());
    seen.insert(seed);
  }
  EXPECT_EQ(seen.size(), 100u);
}

TEST(Philox, CopySeedsDiffer) {
  EXPECT_EQ(derive_copy_seed(99, 0), 99u);
  std::set<uint64_t> seen;
  for (uint32_t i = 0; i < 64; ++i) seen.insert(derive_copy_seed(99, i));
  EXPECT_EQ(seen.size(), 64u);
}

}  // namespace
}  // namespace radixlm
