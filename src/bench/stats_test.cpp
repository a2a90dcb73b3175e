#include "bench/stats.h"

#include <vector>

#include <gtest/gtest.h>

namespace radixlm::bench {
namespace {

// Expected values were computed with numpy 2.2.1 (np.percentile default method, np.std, np.median).
TEST(Stats, MatchesNumpy) {
  const std::vector<double> x{3.5, 1.0, 7.25, 2.0, 10.0, 4.0, 0.5};
  EXPECT_DOUBLE_EQ(percentile(x, 0), 0.5);
  EXPECT_NEAR(percentile(x, 10), 0.8, 1e-12);
  EXPECT_DOUBLE_EQ(percentile(x, 50), 3.5);
  EXPECT_NEAR(percentile(x, 90), 8.350000000000001, 1e-12);
  EXPECT_NEAR(percentile(x, 95), 9.174999999999997, 1e-12);
  EXPECT_NEAR(percentile(x, 99), 9.834999999999999, 1e-12);
  EXPECT_DOUBLE_EQ(percentile(x, 100), 10.0);
  EXPECT_NEAR(stddev(x), 3.208327811639387, 1e-12);
  EXPECT_NEAR(mean(x), 4.035714285714286, 1e-12);
  EXPECT_DOUBLE_EQ(median(x), 3.5);
  EXPECT_DOUBLE_EQ(max_value(x), 10.0);

  const std::vector<double> two{5.0, 1.0};
  EXPECT_DOUBLE_EQ(median(two), 3.0);
  EXPECT_NEAR(percentile(two, 90), 4.6, 1e-12);
  EXPECT_NEAR(percentile(two, 99), 4.96, 1e-12);
}

TEST(Stats, EmptyAndSingle) {
  const std::vector<double> none;
  EXPECT_EQ(mean(none), 0.0);
  EXPECT_EQ(percentile(none, 99), 0.0);
  EXPECT_EQ(stddev(none), 0.0);
  EXPECT_EQ(max_value(none), 0.0);
  const std::vector<double> one{42.0};
  EXPECT_EQ(percentile(one, 0), 42.0);
  EXPECT_EQ(percentile(one, 99), 42.0);
  EXPECT_EQ(stddev(one), 0.0);
}

TEST(Stats, PercentileIsMonotoneAndBounded) {
  std::vector<double> x;
  for (int i = 0; i < 101; ++i) x.push_back(static_cast<double>((i * 37) % 101));  // 0..100 shuffled
  double previous = -1;
  for (double p = 0; p <= 100; p += 0.5) {
    const double v = percentile(x, p);
    EXPECT_GE(v, previous);
    EXPECT_NEAR(v, p, 1e-9);  // 0..100 evenly: the p-th percentile is p
    previous = v;
  }
}

}  // namespace
}  // namespace radixlm::bench
