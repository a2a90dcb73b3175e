// Penalties, min_new_tokens suppression and logit_bias over one logits row. Each touches only the tokens it
// concerns (generated tokens, stop ids, biased ids), so a step costs O(distinct outputs), not O(vocab).

#include "sampling/logit_processors.h"

#include <limits>

namespace radixlm {
namespace {

bool in_row(int64_t id, std::span<float> logits) { return id >= 0 && id < static_cast<int64_t>(logits.size()); }

}  // namespace

void record_output_token(SamplingState& state, int32_t token_id) {
  ++state.output_token_counts[token_id];
  ++state.num_generated;
}

void apply_logit_processors(std::span<float> logits, const SamplingParams& params, const SamplingState& state,
                            std::span<const int32_t> eos_token_ids) {
  const bool additive = params.frequency_penalty != 0.0 || params.presence_penalty != 0.0;
  if (additive) {
    for (const auto& [id, count] : state.output_token_counts) {
      if (!in_row(id, logits) || count <= 0) continue;
      const double penalty = params.frequency_penalty * count + params.presence_penalty;
      logits[id] = static_cast<float>(logits[id] - penalty);
    }
  }

  if (state.num_generated < params.min_new_tokens) {
    constexpr float kMinusInfinity = -std::numeric_limits<float>::infinity();
    for (int32_t id : params.stop_token_ids) {
      if (in_row(id, logits)) logits[id] = kMinusInfinity;
    }
    for (int32_t id : eos_token_ids) {
      if (in_row(id, logits)) logits[id] = kMinusInfinity;
    }
  }

  if (params.repetition_penalty != 1.0) {
    const float penalty = static_cast<float>(params.repetition_penalty);
    for (const auto& [id, count] : state.output_token_counts) {
      if (!in_row(id, logits) || count <= 0) continue;
      float& logit = logits[id];
      logit = logit < 0.0f ? logit * penalty : logit / penalty;
    }
  }

  for (const auto& [id, bias] : params.logit_bias) {
    if (in_row(id, logits)) logits[id] = static_cast<float>(logits[id] + bias);
  }
}

}  // namespace radixlm
