#include "bench/arrivals.h"

#include <cmath>

#include "bench/random.h"

namespace radixlm::bench {

std::vector<double> arrival_times_s(int64_t num_requests, double request_rate, BenchRng& rng) {
  std::vector<double> times(static_cast<size_t>(num_requests > 0 ? num_requests : 0), 0.0);
  if (std::isinf(request_rate) || request_rate <= 0.0) return times;
  double t = 0.0;
  for (size_t i = 1; i < times.size(); ++i) {
    t += rng.exponential(1.0 / request_rate);
    times[i] = t;
  }
  return times;
}

}  // namespace radixlm::bench
