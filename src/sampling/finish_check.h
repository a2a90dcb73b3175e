#pragma once
// Whether the token just generated ends a request, in SGLang's order (Req.check_finished): the length
// limit first, then stop tokens. Stop strings come last, from StopStringMatcher, so a token that both
// reaches max_new_tokens and completes a stop string finishes with "length", as in SGLang.

#include <cstdint>
#include <span>

#include "sampling/sampling_params.h"

namespace radixlm {

enum class TokenFinishKind {
  kNone,       // go on (then ask the stop-string matcher)
  kLength,     // max_new_tokens reached
  kStopToken,  // an eos id or one of stop_token_ids
};

struct TokenFinish {
  TokenFinishKind kind = TokenFinishKind::kNone;
  int32_t matched_token = -1;  // with kStopToken
};

// `num_generated` counts the output tokens including `last_token`. With ignore_eos neither eos ids nor
// stop_token_ids end the request: SGLang skips its whole token check then.
TokenFinish check_token_finish(const SamplingParams& params, int64_t num_generated, int32_t last_token,
                               std::span<const int32_t> eos_token_ids);

}  // namespace radixlm
