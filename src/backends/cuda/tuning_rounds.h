#pragma once
// How the cuBLASLt tuning (cublaslt_gemm.cpp) picks among timed choices. Host-only and free of CUDA, so its
// test runs on any machine.

#include <cstddef>
#include <vector>

namespace radixlm::cuda {

// The index of the smallest non-negative time (negative: the choice did not run), or -1 if none ran.
inline int index_of_fastest(const std::vector<double>& ms) {
  int best = -1;
  for (size_t i = 0; i < ms.size(); ++i) {
    if (ms[i] >= 0.0 && (best < 0 || ms[i] < ms[static_cast<size_t>(best)])) best = static_cast<int>(i);
  }
  return best;
}

// Times choices 0..count-1 (time_ms(i): milliseconds, negative when one will not run) over `rounds`: every
// choice in the first, then those within kContender of the best so far again, each keeping its fastest time
// (negative: never ran). A choice timed while the clocks were still rising after an idle spell, or beside a
// hiccup, is not ruled out by it (single rounds picked gate_up's matmul at 64 tokens at 3.65, 3.84 and 3.90
// TB/s in three processes of one call).
template <typename TimeMs>
std::vector<double> fastest_over_rounds(size_t count, int rounds, const TimeMs& time_ms) {
  constexpr double kContender = 1.15;
  std::vector<double> fastest(count, -1.0);
  for (int round = 0; round < rounds; ++round) {
    const int best = index_of_fastest(fastest);
    if (round > 0 && best < 0) break;  // nothing ran in the first round: nothing will
    for (size_t i = 0; i < count; ++i) {
      if (round > 0 && (fastest[i] < 0.0 || fastest[i] > kContender * fastest[static_cast<size_t>(best)])) continue;
      const double ms = time_ms(i);
      if (ms >= 0.0 && (fastest[i] < 0.0 || ms < fastest[i])) fastest[i] = ms;
    }
  }
  return fastest;
}

}  // namespace radixlm::cuda
