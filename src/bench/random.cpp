#include "bench/random.h"

#include <cmath>

namespace radixlm::bench {

double BenchRng::uniform01() {
  const uint64_t a = next() >> 5, b = next() >> 6;
  return (static_cast<double>(a) * 67108864.0 + static_cast<double>(b)) / 9007199254740992.0;
}

int64_t BenchRng::uniform_int(int64_t lo, int64_t hi) {
  const uint64_t span = static_cast<uint64_t>(hi - lo) + 1;  // 0 means the full 64-bit range
  const uint64_t draw64 = (static_cast<uint64_t>(next()) << 32) | next();
  if (span == 0) return lo + static_cast<int64_t>(draw64);
  // Rejection keeps every value equally likely (a plain modulo would favour the small ones).
  const uint64_t limit = UINT64_MAX - (UINT64_MAX % span + 1) % span;
  uint64_t draw = draw64;
  while (draw > limit) draw = (static_cast<uint64_t>(next()) << 32) | next();
  return lo + static_cast<int64_t>(draw % span);
}

double BenchRng::exponential(double mean) { return -std::log(1.0 - uniform01()) * mean; }

}  // namespace radixlm::bench
