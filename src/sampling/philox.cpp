// Philox4x32-10 and the seed helpers built on it.

#include "sampling/philox.h"

namespace radixlm {
namespace {

constexpr uint32_t kMultiplier0 = 0xD2511F53u;
constexpr uint32_t kMultiplier1 = 0xCD9E8D57u;
constexpr uint32_t kWeyl0 = 0x9E3779B9u;  // golden ratio
constexpr uint32_t kWeyl1 = 0xBB67AE85u;  // sqrt(3) - 1

// splitmix64's finaliser: spreads a counter over all 64 bits.
uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

PhiloxCounter philox4x32_10(PhiloxCounter counter, PhiloxKey key) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key[0] += kWeyl0;
      key[1] += kWeyl1;
    }
    const uint64_t product0 = static_cast<uint64_t>(kMultiplier0) * counter[0];
    const uint64_t product1 = static_cast<uint64_t>(kMultiplier1) * counter[2];
    const uint32_t hi0 = static_cast<uint32_t>(product0 >> 32);
    const uint32_t lo0 = static_cast<uint32_t>(product0);
    const uint32_t hi1 = static_cast<uint32_t>(product1 >> 32);
    const uint32_t lo1 = static_cast<uint32_t>(product1);
    counter = {hi1 ^ counter[1] ^ key[0], lo1, hi0 ^ counter[3] ^ key[1], lo0};
  }
  return counter;
}

double uniform_for_step(uint64_t seed, uint64_t step, RandomStream stream) {
  const PhiloxKey key = {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
  const PhiloxCounter counter = {static_cast<uint32_t>(step), static_cast<uint32_t>(step >> 32),
                                 static_cast<uint32_t>(stream), 0};
  const PhiloxCounter words = philox4x32_10(counter, key);
  // 27 + 26 bits, as in the Mersenne Twister reference's genrand_res53: exactly representable, never 1.0.
  const uint64_t high = words[0] >> 5;
  const uint64_t low = words[1] >> 6;
  return static_cast<double>((high << 26) | low) * (1.0 / 9007199254740992.0);
}

uint64_t RequestSeedSource::next() { return mix64(mix64(random_seed_) ^ issued_++); }

uint64_t derive_copy_seed(uint64_t seed, uint32_t index) {
  if (index == 0) return seed;
  return mix64(seed ^ mix64(0x636F7079ull + index));  // "copy"
}

}  // namespace radixlm
