#pragma once
// Counter-based random numbers for sampling. Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy
// as 1, 2, 3", SC'11; the generator cuRAND's Philox uses) turns a (key, counter) pair into four random
// words with no state in between. Keyed by a request's seed and counted by its step, a request's draw at
// step s is the same whatever else is in the batch, in whatever order requests are processed, and after a
// retraction that resumes it: nothing is shared and nothing advances. A device sampler computes the same
// function per row.

#include <array>
#include <cstdint>

namespace radixlm {

using PhiloxCounter = std::array<uint32_t, 4>;
using PhiloxKey = std::array<uint32_t, 2>;

// The Philox4x32 bijection with 10 rounds.
PhiloxCounter philox4x32_10(PhiloxCounter counter, PhiloxKey key);

// What a draw is for, so two uses at the same step never share random words.
enum class RandomStream : uint32_t {
  kTokenSample = 0,
};

// A uniform double in [0, 1) with 53 random bits: the draw of request `seed` at output step `step`.
double uniform_for_step(uint64_t seed, uint64_t step, RandomStream stream = RandomStream::kTokenSample);

// Seeds for requests that bring none. The sequence is fixed by --random-seed, so a server run with the
// same seed and the same arrival order repeats itself; the scheduler thread calls next() once per request.
class RequestSeedSource {
 public:
  explicit RequestSeedSource(uint64_t random_seed) : random_seed_(random_seed) {}
  uint64_t next();

 private:
  uint64_t random_seed_;
  uint64_t issued_ = 0;
};

// The seed of copy `index` of a request with n > 1 (copy 0 keeps the request's seed).
uint64_t derive_copy_seed(uint64_t seed, uint32_t index);

}  // namespace radixlm
