#pragma once
// Summary statistics with numpy's definitions, so the numbers match what sglang.bench_serving prints for the
// same samples: percentile() is numpy's default "linear" method (rank p/100 * (n - 1), interpolated between
// the two neighbours), stddev() is the population form (ddof = 0). An empty sample gives 0 for everything,
// as bench_serving's `np.mean(x or 0)` does.

#include <span>

namespace radixlm::bench {

double mean(std::span<const double> values);
double stddev(std::span<const double> values);
double percentile(std::span<const double> values, double p);  // p in [0, 100]
double median(std::span<const double> values);
double max_value(std::span<const double> values);

}  // namespace radixlm::bench
