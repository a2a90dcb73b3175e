// Defaults and validation of SamplingParams. The ranges and their wording follow SGLang's verify(), so a
// client sees the same rule it would see there.

#include "sampling/sampling_params.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace radixlm {
namespace {

Status check_finite(double value, const char* name) {
  if (!std::isfinite(value)) {
    return make_error(StatusCode::kInvalidArgument, "{} must be a finite number, got {}", name, value);
  }
  return Status::ok_status();
}

}  // namespace

void apply_sampling_defaults(SamplingParams& params, const SamplingDefaults& defaults) {
  const ExplicitSamplingFields& set = params.explicitly_set;
  if (!set.temperature && defaults.temperature) params.temperature = *defaults.temperature;
  if (!set.top_p && defaults.top_p) params.top_p = *defaults.top_p;
  if (!set.top_k && defaults.top_k) {
    // generation_config.json writes "no top-k" as 0 (transformers' convention) or a huge number; both mean
    // the whole vocabulary here.
    const int64_t top_k = *defaults.top_k;
    params.top_k = (top_k <= 0 || top_k > std::numeric_limits<int32_t>::max()) ? -1 : static_cast<int32_t>(top_k);
  }
  if (!set.min_p && defaults.min_p) params.min_p = *defaults.min_p;
  if (!set.repetition_penalty && defaults.repetition_penalty) {
    params.repetition_penalty = *defaults.repetition_penalty;
  }
}

bool is_greedy(const SamplingParams& params) {
  return params.temperature < kGreedyTemperatureEpsilon || params.top_k == 1;
}

double effective_temperature(const SamplingParams& params) {
  return params.temperature < kGreedyTemperatureEpsilon ? 1.0 : params.temperature;
}

Status validate_sampling_params(const SamplingParams& params, int64_t vocab_size) {
  if (vocab_size <= 0) {
    return make_error(StatusCode::kInternal, "vocabulary size must be positive, got {}", vocab_size);
  }
  if (!std::isfinite(params.temperature) || params.temperature < 0.0) {
    return make_error(StatusCode::kInvalidArgument, "temperature must be a non-negative finite number, got {}",
                      params.temperature);
  }
  RADIXLM_RETURN_IF_ERROR(check_finite(params.top_p, "top_p"));
  if (!(params.top_p > 0.0 && params.top_p <= 1.0)) {
    return make_error(StatusCode::kInvalidArgument, "top_p must be in (0, 1], got {}", params.top_p);
  }
  RADIXLM_RETURN_IF_ERROR(check_finite(params.min_p, "min_p"));
  if (!(params.min_p >= 0.0 && params.min_p <= 1.0)) {
    return make_error(StatusCode::kInvalidArgument, "min_p must be in [0, 1], got {}", params.min_p);
  }
  if (params.top_k != -1 && params.top_k < 1) {
    return make_error(StatusCode::kInvalidArgument, "top_k must be -1 (disable) or at least 1, got {}",
                      params.top_k);
  }
  RADIXLM_RETURN_IF_ERROR(check_finite(params.frequency_penalty, "frequency_penalty"));
  if (!(params.frequency_penalty >= -2.0 && params.frequency_penalty <= 2.0)) {
    return make_error(StatusCode::kInvalidArgument, "frequency_penalty must be in [-2, 2], got {}",
                      params.frequency_penalty);
  }
  RADIXLM_RETURN_IF_ERROR(check_finite(params.presence_penalty, "presence_penalty"));
  if (!(params.presence_penalty >= -2.0 && params.presence_penalty <= 2.0)) {
    return make_error(StatusCode::kInvalidArgument, "presence_penalty must be in [-2, 2], got {}",
                      params.presence_penalty);
  }
  RADIXLM_RETURN_IF_ERROR(check_finite(params.repetition_penalty, "repetition_penalty"));
  if (!(params.repetition_penalty > 0.0 && params.repetition_penalty <= 2.0)) {
    return make_error(StatusCode::kInvalidArgument,
                      "repetition_penalty must be in (0, 2] (1.0 = no penalty), got {}", params.repetition_penalty);
  }
  if (params.min_new_tokens < 0) {
    return make_error(StatusCode::kInvalidArgument, "min_new_tokens must be in [0, max_new_tokens], got {}",
                      params.min_new_tokens);
  }
  if (params.max_new_tokens) {
    if (*params.max_new_tokens < 0) {
      return make_error(StatusCode::kInvalidArgument, "max_new_tokens must be at least 0, got {}",
                        *params.max_new_tokens);
    }
    if (params.min_new_tokens > *params.max_new_tokens) {
      return make_error(StatusCode::kInvalidArgument, "min_new_tokens must be in [0, max_new_tokens({})], got {}",
                        *params.max_new_tokens, params.min_new_tokens);
    }
  }
  if (params.n < 1 || params.n > kMaxSamplesPerRequest) {
    return make_error(StatusCode::kInvalidArgument, "n must be in [1, {}], got {}", kMaxSamplesPerRequest,
                      params.n);
  }
  if (params.stop.size() > kMaxStopStrings) {
    return make_error(StatusCode::kInvalidArgument, "stop may hold at most {} strings, got {}", kMaxStopStrings,
                      params.stop.size());
  }
  for (const std::string& stop : params.stop) {
    // An empty stop string would match before any text and end every request at once.
    if (stop.empty()) return make_error(StatusCode::kInvalidArgument, "stop strings must not be empty");
  }
  for (int32_t id : params.stop_token_ids) {
    if (id < 0 || id >= vocab_size) {
      return make_error(StatusCode::kInvalidArgument, "stop_token_ids must be in [0, {}], got {}", vocab_size - 1,
                        id);
    }
  }
  for (const auto& [id, bias] : params.logit_bias) {
    if (id < 0 || id >= vocab_size) {
      return make_error(StatusCode::kInvalidArgument, "logit_bias must have keys in [0, {}], got {}",
                        vocab_size - 1, id);
    }
    if (!std::isfinite(bias)) {
      return make_error(StatusCode::kInvalidArgument, "logit_bias for token {} must be a finite number, got {}", id,
                        bias);
    }
  }
  const int64_t max_top_logprobs = std::min<int64_t>(kMaxTopLogprobs, vocab_size);
  if (params.top_logprobs_num < 0 || params.top_logprobs_num > max_top_logprobs) {
    return make_error(StatusCode::kInvalidArgument, "top_logprobs_num must be in [0, {}], got {}", max_top_logprobs,
                      params.top_logprobs_num);
  }
  if (params.logprob_start_len < -1) {
    return make_error(StatusCode::kInvalidArgument, "logprob_start_len must be -1 or at least 0, got {}",
                      params.logprob_start_len);
  }
  return Status::ok_status();
}

}  // namespace radixlm
