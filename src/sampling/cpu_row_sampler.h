#pragma once
// The sample-rows op (ops/sample_rows.h) in terms of the CPU sampler: building a SampleRowsRequest from
// requests' SamplingParams and SamplingState, reading its results back as SampledTokens, and the CPU
// implementation, which turns each row back into params and state and calls sample_next_token. Because
// the CPU implementation goes through the very sampler the engine uses, a device sampler compared against
// it (backends/cuda/cuda_sampling_test.cpp) is compared against the engine's reference.

#include <cstdint>
#include <span>
#include <vector>

#include "ops/sample_rows.h"
#include "sampling/logit_processors.h"
#include "sampling/sampler.h"
#include "sampling/sampling_params.h"

namespace radixlm {

// Appends one row for a request about to sample its next token. `eos_token_ids` are the model's; ids
// outside [0, vocab) are dropped (the CPU processors ignore them too). `pending`: output tokens a step still
// in flight is sampling (overlap scheduling); they count toward the draw's step and min_new_tokens, but
// their ids are unknown, so a penalized row must not have any (checked).
void add_sample_row(SampleRowsRequest& request, const SamplingParams& params, const SamplingState& state,
                    std::span<const int32_t> eos_token_ids, int64_t vocab, int64_t pending = 0);

// Whether a row's sampling reads the ids of the tokens generated so far (penalties), so that it cannot be
// formed while one of them is pending.
bool sampling_reads_output_ids(const SamplingParams& params);

// Whether a row can go to a RowSampler: top logprobs within kMaxSampleTopLogprobs.
bool row_sampler_supports(const SamplingParams& params);

// The request's row r as the CPU sampler's inputs (the inverse of add_sample_row, up to dropped ids).
struct RowSamplingInputs {
  SamplingParams params;
  SamplingState state;
};
RowSamplingInputs row_sampling_inputs(const SampleRowsRequest& request, int64_t row);

SampledToken to_sampled_token(const SampledRow& row);

// The reference implementation on host f32 logits.
class CpuRowSampler final : public RowSampler {
 public:
  std::vector<SampledRow> sample_rows(const TensorView& logits, const SampleRowsRequest& request) override;

 private:
  SamplerScratch scratch_;
};

}  // namespace radixlm
