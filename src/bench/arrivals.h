#pragma once
// When each request of a run is sent, relative to the start, as sglang.bench_serving's get_request() paces
// them: with an infinite rate every request goes at time 0; otherwise the first goes at 0 and each later one
// after an exponential gap of mean 1 / rate (a Poisson process).

#include <cstdint>
#include <vector>

namespace radixlm::bench {

class BenchRng;

std::vector<double> arrival_times_s(int64_t num_requests, double request_rate, BenchRng& rng);

}  // namespace radixlm::bench
