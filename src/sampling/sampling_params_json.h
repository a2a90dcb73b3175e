#pragma once
// SamplingParams from a request's JSON, with SGLang's field names: the `sampling_params` object of
// /generate (or the same fields at the top of an OpenAI request), and the logprob fields that sit at the top
// level of a /generate request. Unknown fields are ignored as SGLang ignores them; null means "not given";
// a field of the wrong type is an error that names it. Ranges are checked later by
// validate_sampling_params, once the vocabulary size is known.

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "sampling/sampling_params.h"

namespace radixlm {

// `object` must be a JSON object or null (all defaults).
Expected<SamplingParams> parse_sampling_params(const nlohmann::json& object);

// Reads return_logprob, top_logprobs_num and logprob_start_len from `request` into `params`.
Status parse_logprob_fields(const nlohmann::json& request, SamplingParams& params);

}  // namespace radixlm
