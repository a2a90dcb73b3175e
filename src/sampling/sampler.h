#pragma once
// Choosing the next token from one processed logits row (after logit_processors.h), as SGLang's Sampler
// does: greedy is the argmax; otherwise probs = softmax(logits / temperature), then top-k, top-p and min-p
// filtering, then one draw.
//
// Filtering is SGLang's joint form (its PyTorch sampling backend, and FlashInfer's
// top_k_top_p_sampling_from_probs with filter_apply_order="joint"): in the order of descending
// probability (ties: lower token id first), the token of rank r with probability p_r is kept iff
//   r < top_k  and  (p_0 + ... + p_{r-1}) <= top_p  and  p_r >= min_p * p_0,
// all measured on the unfiltered distribution, and the draw renormalises over the kept tokens. Every rule
// keeps a prefix of that order, so the kept set is "the first m tokens" and is described by its last one
// (FilterCut). The draw walks the kept tokens in token-id order (an inverse CDF over a prefix sum), which a
// device kernel can reproduce without sorting.
//
// Logprobs follow SGLang's default (SGLANG_RETURN_ORIGINAL_LOGPROB unset): log_softmax of the processed
// logits (penalties and logit_bias applied) divided by the temperature, before top-k/top-p/min-p; greedy
// requests use temperature 1, as SGLang's greedy path does. -inf (a token suppressed to -inf) is reported as
// the lowest finite float, as SGLang clamps it, so it survives JSON.

#include <cstdint>
#include <span>
#include <vector>

#include "sampling/logit_processors.h"
#include "sampling/sampling_params.h"

namespace radixlm {

struct TokenLogprob {
  int32_t token_id = 0;
  float logprob = 0.0f;
};

struct SampledToken {
  int32_t token_id = 0;
  float logprob = 0.0f;                    // with params.return_logprob
  std::vector<TokenLogprob> top_logprobs;  // params.top_logprobs_num of them, most likely first
};

// Vocab-sized buffers reused across steps, so a warm step allocates only its small results.
struct SamplerScratch {
  std::vector<float> probs;
  std::vector<int32_t> order;
  std::vector<double> bucket_mass;
  std::vector<int64_t> bucket_count;
};

// The whole step for one request: applies the logit processors to `logits` in place, chooses the token with
// the request's seed at step state.num_generated, and computes logprobs when asked. The caller then calls
// record_output_token with the token it accepts.
SampledToken sample_next_token(std::span<float> logits, const SamplingParams& params, const SamplingState& state,
                               std::span<const int32_t> eos_token_ids, SamplerScratch& scratch);

// The pieces, for tests and for a device sampler to mirror.

// Index of the largest logit; ties go to the lower id; NaN never wins. 0 when every logit is NaN.
int32_t argmax_token(std::span<const float> logits);

// probs[i] = softmax(logits / temperature)[i], accumulated in double. NaN logits get probability 0. When no
// logit is finite, all the mass goes to argmax_token(logits).
void softmax_with_temperature(std::span<const float> logits, double temperature, std::span<float> probs);

// The last kept token of the joint top-k/top-p/min-p filter: kept tokens are those ranked at or before it.
struct FilterCut {
  float prob = 0.0f;
  int32_t token_id = 0;
  int64_t kept = 0;  // how many tokens are kept
};
FilterCut compute_filter_cut(std::span<const float> probs, int32_t top_k, double top_p, double min_p,
                             SamplerScratch& scratch);

inline bool is_kept(float prob, int32_t token_id, const FilterCut& cut) {
  return prob > cut.prob || (prob == cut.prob && token_id <= cut.token_id);
}

// The token at which the kept tokens' cumulative probability, in token-id order, first exceeds
// uniform * (their total); `uniform` is in [0, 1).
int32_t sample_kept(std::span<const float> probs, const FilterCut& cut, double uniform);

// Logprob of `token_id` and the `top_n` most likely tokens under log_softmax(logits / temperature).
float token_logprob(std::span<const float> logits, int32_t token_id, double temperature);
std::vector<TokenLogprob> top_logprobs(std::span<const float> logits, int32_t top_n, double temperature);

}  // namespace radixlm
