#pragma once
// One decode step's sampling for a batch: each request's logits row with its own params and state. Rows are
// independent (nothing is shared, the random draw is keyed by each request's seed and step), so they may
// run in any order or in parallel and give the same tokens.

#include <cstdint>
#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "sampling/sampler.h"

namespace radixlm {

struct SamplingRow {
  std::span<float> logits;  // the request's row; processed in place
  const SamplingParams* params = nullptr;
  const SamplingState* state = nullptr;
};

// Samples every row; spreads rows over `pool` when one is given.
std::vector<SampledToken> sample_batch(std::span<const SamplingRow> rows, std::span<const int32_t> eos_token_ids,
                                       ThreadPool* pool = nullptr);

}  // namespace radixlm
