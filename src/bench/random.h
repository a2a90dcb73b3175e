#pragma once
// The benchmark's seeded randomness: one Mersenne Twister (numpy's legacy generator, seeded as
// np.random.seed(int) seeds it), with integer and exponential draws written out here rather than taken from
// <random>'s distributions, whose algorithms differ between standard libraries; a seed then gives the same
// workload wherever radixlm is built.

#include <cstdint>
#include <random>

namespace radixlm::bench {

class BenchRng {
 public:
  explicit BenchRng(uint64_t seed) : engine_(static_cast<std::mt19937::result_type>(seed)) {}

  // Uniform in [0, 1) with 53 random bits, as numpy's random_sample().
  double uniform01();
  // Uniform integer in [lo, hi] (both included); lo <= hi.
  int64_t uniform_int(int64_t lo, int64_t hi);
  // Exponential with the given mean (1 / rate).
  double exponential(double mean);

 private:
  uint32_t next() { return static_cast<uint32_t>(engine_()); }
  std::mt19937 engine_;
};

}  // namespace radixlm::bench
