#pragma once
// What happens to one request's logits row before a token is chosen, in SGLang's order
// (SamplingBatchInfo.apply_logits_bias with the overlap scheduler, SGLang's default):
//   1. additive penalties over the tokens generated so far:
//        logit[t] -= frequency_penalty * count(t) + presence_penalty * (count(t) > 0)
//   2. min_new_tokens: while fewer tokens than that are generated, stop_token_ids and the model's eos ids
//      get -inf (ignore_eos does not change this, as in SGLang);
//   3. repetition_penalty over the tokens generated so far (HF/CTRL form): a positive logit is divided by
//      it, a negative one multiplied;
//   4. logit_bias is added.
// Temperature, top-k/top-p/min-p and the draw follow in sampler.h.
//
// Like SGLang (and unlike vLLM and HF, which also count the prompt), every penalty counts the request's
// output tokens only: SGLang's penalizers are fed by cumulate_output_tokens alone.

#include <cstdint>
#include <span>
#include <unordered_map>

#include "sampling/sampling_params.h"

namespace radixlm {

// The per-request sampling state the scheduler keeps beside the request.
struct SamplingState {
  uint64_t seed = 0;           // the request's seed, or one from RequestSeedSource
  int64_t num_generated = 0;   // output tokens so far; also the step that keys the random draw
  std::unordered_map<int32_t, int32_t> output_token_counts;  // token id -> times generated
};

// Call once per accepted output token.
void record_output_token(SamplingState& state, int32_t token_id);

// Steps 1-4 above, in place. `eos_token_ids` are the model's (config + generation_config); ids outside the
// row are ignored.
void apply_logit_processors(std::span<float> logits, const SamplingParams& params, const SamplingState& state,
                            std::span<const int32_t> eos_token_ids);

}  // namespace radixlm
