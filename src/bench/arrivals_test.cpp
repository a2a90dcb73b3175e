#include "bench/arrivals.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "bench/random.h"

namespace radixlm::bench {
namespace {

std::vector<double> gaps(const std::vector<double>& times) {
  std::vector<double> g;
  for (size_t i = 1; i < times.size(); ++i) g.push_back(times[i] - times[i - 1]);
  return g;
}

TEST(Arrivals, InfiniteRateSendsEverythingAtOnce) {
  BenchRng rng(1);
  const auto times = arrival_times_s(50, std::numeric_limits<double>::infinity(), rng);
  ASSERT_EQ(times.size(), 50u);
  for (double t : times) EXPECT_EQ(t, 0.0);
}

TEST(Arrivals, PoissonGapsHaveTheExponentialLaw) {
  constexpr double kRate = 8.0;
  constexpr int64_t kCount = 40001;
  BenchRng rng(7);
  const auto times = arrival_times_s(kCount, kRate, rng);
  ASSERT_EQ(times.size(), static_cast<size_t>(kCount));
  EXPECT_EQ(times[0], 0.0);
  EXPECT_TRUE(std::is_sorted(times.begin(), times.end()));
  const auto g = gaps(times);
  double sum = 0, sum_sq = 0;
  for (double x : g) {
    ASSERT_GE(x, 0.0);
    sum += x;
    sum_sq += x * x;
  }
  const double n = static_cast<double>(g.size());
  const double m = sum / n, var = sum_sq / n - m * m;
  // Mean 1/rate and standard deviation equal to the mean; with 40000 gaps the sample mean's standard
  // error is 0.5% of it, so 3% is over five standard errors.
  EXPECT_NEAR(m, 1.0 / kRate, 0.03 / kRate);
  EXPECT_NEAR(std::sqrt(var) / m, 1.0, 0.03);
  // Kolmogorov-Smirnov distance to the exponential CDF; the 0.1% critical value is 1.95 / sqrt(n).
  auto sorted = g;
  std::sort(sorted.begin(), sorted.end());
  double d = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    const double cdf = 1.0 - std::exp(-kRate * sorted[i]);
    d = std::max({d, std::abs(cdf - static_cast<double>(i) / n), std::abs(cdf - static_cast<double>(i + 1) / n)});
  }
  EXPECT_LT(d, 1.95 / std::sqrt(n));
  // Counts per unit-length window are Poisson(rate): mean and variance both equal to the rate.
  const int windows = static_cast<int>(times.back());
  std::vector<int> counts(static_cast<size_t>(windows), 0);
  for (double t : times) {
    if (t < windows) ++counts[static_cast<size_t>(t)];
  }
  double cm = 0, cv = 0;
  for (int c : counts) cm += c;
  cm /= windows;
  for (int c : counts) cv += (c - cm) * (c - cm);
  cv /= windows;
  EXPECT_NEAR(cm, kRate, 0.3);
  EXPECT_NEAR(cv / cm, 1.0, 0.15);
}

TEST(Arrivals, SeedMakesTheScheduleRepeatable) {
  BenchRng a(3), b(3), c(4);
  const auto ta = arrival_times_s(100, 2.0, a), tb = arrival_times_s(100, 2.0, b), tc = arrival_times_s(100, 2.0, c);
  EXPECT_EQ(ta, tb);
  EXPECT_NE(ta, tc);
}

TEST(BenchRng, MatchesNumpysLegacyRandomSample) {
  // np.random.seed(1); np.random.random_sample(3) with numpy 2.2.1 (RandomState: MT19937 seeded by
  // init_genrand, 53-bit doubles from two draws).
  BenchRng rng(1);
  EXPECT_DOUBLE_EQ(rng.uniform01(), 4.17022004702574e-01);
  EXPECT_DOUBLE_EQ(rng.uniform01(), 7.203244934421581e-01);
  EXPECT_DOUBLE_EQ(rng.uniform01(), 1.1437481734488664e-04);
}

TEST(BenchRng, UniformIntCoversTheRangeEvenly) {
  BenchRng rng(11);
  std::vector<int> hits(7, 0);
  for (int i = 0; i < 70000; ++i) {
    const int64_t v = rng.uniform_int(3, 9);
    ASSERT_GE(v, 3);
    ASSERT_LE(v, 9);
    ++hits[static_cast<size_t>(v - 3)];
  }
  for (int h : hits) EXPECT_NEAR(h, 10000, 500);
  EXPECT_EQ(rng.uniform_int(5, 5), 5);
}

}  // namespace
}  // namespace radixlm::bench
