// The batch loop over sample_next_token.

#include "sampling/sample_batch.h"

namespace radixlm {

std::vector<SampledToken> sample_batch(std::span<const SamplingRow> rows, std::span<const int32_t> eos_token_ids,
                                       ThreadPool* pool) {
  std::vector<SampledToken> tokens(rows.size());
  auto run = [&](int64_t begin, int64_t end) {
    SamplerScratch scratch;  // one per range: threads never share buffers
    for (int64_t i = begin; i < end; ++i) {
      const SamplingRow& row = rows[i];
      RADIXLM_CHECK(row.params != nullptr && row.state != nullptr, "row {} lacks params or state", i);
      tokens[i] = sample_next_token(row.logits, *row.params, *row.state, eos_token_ids, scratch);
    }
  };
  if (pool != nullptr && rows.size() > 1) {
    pool->parallel_for(static_cast<int64_t>(rows.size()), run);
  } else {
    run(0, static_cast<int64_t>(rows.size()));
  }
  return tokens;
}

}  // namespace radixlm
