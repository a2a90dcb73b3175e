// The token half of SGLang's finish check.

#include "sampling/finish_check.h"

#include <algorithm>

namespace radixlm {

TokenFinish check_token_finish(const SamplingParams& params, int64_t num_generated, int32_t last_token,
                               std::span<const int32_t> eos_token_ids) {
  if (params.max_new_tokens && num_generated >= *params.max_new_tokens) return {TokenFinishKind::kLength, -1};
  if (params.ignore_eos) return {};
  const auto contains = [last_token](auto&& ids) {
    return std::find(ids.begin(), ids.end(), last_token) != ids.end();
  };
  if (contains(params.stop_token_ids) || contains(eos_token_ids)) return {TokenFinishKind::kStopToken, last_token};
  return {};
}

}  // namespace radixlm
