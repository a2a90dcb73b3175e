// Typed reads of sampling fields from untrusted request JSON. Every failure names the field and what it
// got, so a client can fix its request without reading our source.

#include "sampling/sampling_params_json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <string_view>

#include "core/json_type_name.h"

namespace radixlm {
namespace {

using Json = nlohmann::json;

// The field's value, or nullptr when it is absent or null.
const Json* find_field(const Json& object, std::string_view key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

Expected<double> to_double(const Json& value, std::string_view key) {
  if (!value.is_number()) {
    return make_error(StatusCode::kInvalidArgument, "{} must be a number, got {}", key, json_type_name(value));
  }
  return value.get<double>();
}

// An integer in [lo, hi]. An integral float (5.0) is accepted: JavaScript clients cannot tell them apart.
Expected<int64_t> to_int(const Json& value, std::string_view key, int64_t lo, int64_t hi) {
  int64_t result = 0;
  if (value.is_number_unsigned()) {
    const uint64_t u = value.get<uint64_t>();
    if (u > static_cast<uint64_t>(hi)) {
      return make_error(StatusCode::kInvalidArgument, "{} must be at most {}, got {}", key, hi, u);
    }
    result = static_cast<int64_t>(u);
  } else if (value.is_number_integer()) {
    result = value.get<int64_t>();
  } else if (value.is_number_float()) {
    const double d = value.get<double>();
    if (!std::isfinite(d) || d != std::floor(d) || d < -9.2e18 || d > 9.2e18) {
      return make_error(StatusCode::kInvalidArgument, "{} must be an integer, got {}", key, d);
    }
    result = static_cast<int64_t>(d);
  } else {
    return make_error(StatusCode::kInvalidArgument, "{} must be an integer, got {}", key, json_type_name(value));
  }
  if (result < lo || result > hi) {
    return make_error(StatusCode::kInvalidArgument, "{} must be in [{}, {}], got {}", key, lo, hi, result);
  }
  return result;
}

Expected<int32_t> to_int32(const Json& value, std::string_view key) {
  RADIXLM_ASSIGN_OR_RETURN(int64_t v, to_int(value, key, std::numeric_limits<int32_t>::min(),
                                             std::numeric_limits<int32_t>::max()));
  return static_cast<int32_t>(v);
}

Expected<bool> to_bool(const Json& value, std::string_view key) {
  if (!value.is_boolean()) {
    return make_error(StatusCode::kInvalidArgument, "{} must be a boolean, got {}", key, json_type_name(value));
  }
  return value.get<bool>();
}

// Reads an optional field into `out`; `was_set` (if given) records that the request gave it.
Status read_double(const Json& object, std::string_view key, double& out, bool* was_set = nullptr) {
  const Json* value = find_field(object, key);
  if (!value) return Status::ok_status();
  RADIXLM_ASSIGN_OR_RETURN(out, to_double(*value, key));
  if (was_set) *was_set = true;
  return Status::ok_status();
}

Status read_int32(const Json& object, std::string_view key, int32_t& out, bool* was_set = nullptr) {
  const Json* value = find_field(object, key);
  if (!value) return Status::ok_status();
  RADIXLM_ASSIGN_OR_RETURN(out, to_int32(*value, key));
  if (was_set) *was_set = true;
  return Status::ok_status();
}

Status read_bool(const Json& object, std::string_view key, bool& out) {
  const Json* value = find_field(object, key);
  if (!value) return Status::ok_status();
  RADIXLM_ASSIGN_OR_RETURN(out, to_bool(*value, key));
  return Status::ok_status();
}

Status read_stop(const Json& object, SamplingParams& params) {
  const Json* value = find_field(object, "stop");
  if (!value) return Status::ok_status();
  if (value->is_string()) {
    params.stop = {value->get<std::string>()};
    return Status::ok_status();
  }
  if (!value->is_array()) {
    return make_error(StatusCode::kInvalidArgument, "stop must be a string or a list of strings, got {}",
                      json_type_name(*value));
  }
  params.stop.clear();
  for (const Json& item : *value) {
    if (!item.is_string()) {
      return make_error(StatusCode::kInvalidArgument, "stop must be a string or a list of strings, got a {} in the list",
                        json_type_name(item));
    }
    params.stop.push_back(item.get<std::string>());
  }
  return Status::ok_status();
}

Status read_stop_token_ids(const Json& object, SamplingParams& params) {
  const Json* value = find_field(object, "stop_token_ids");
  if (!value) return Status::ok_status();
  if (!value->is_array()) {
    return make_error(StatusCode::kInvalidArgument, "stop_token_ids must be a list of integers, got {}",
                      json_type_name(*value));
  }
  params.stop_token_ids.clear();
  for (const Json& item : *value) {
    if (item.is_null()) continue;  // SGLang drops None entries
    RADIXLM_ASSIGN_OR_RETURN(int32_t id, to_int32(item, "stop_token_ids"));
    // SGLang keeps a set; keep the first occurrence so the order stays the client's.
    if (std::find(params.stop_token_ids.begin(), params.stop_token_ids.end(), id) == params.stop_token_ids.end()) {
      params.stop_token_ids.push_back(id);
    }
  }
  return Status::ok_status();
}

Status read_logit_bias(const Json& object, SamplingParams& params) {
  const Json* value = find_field(object, "logit_bias");
  if (!value) return Status::ok_status();
  if (!value->is_object()) {
    return make_error(StatusCode::kInvalidArgument,
                      "logit_bias must be an object mapping token ids to numbers, got {}", json_type_name(*value));
  }
  params.logit_bias.clear();
  for (const auto& [key, bias] : value->items()) {
    int64_t id = 0;
    const char* begin = key.data();
    const char* end = key.data() + key.size();
    auto [ptr, ec] = std::from_chars(begin, end, id);
    if (key.empty() || ec != std::errc() || ptr != end || id < std::numeric_limits<int32_t>::min() ||
        id > std::numeric_limits<int32_t>::max()) {
      return make_error(StatusCode::kInvalidArgument, "logit_bias keys must be token ids, got \"{}\"", key);
    }
    if (!bias.is_number()) {
      return make_error(StatusCode::kInvalidArgument, "logit_bias[\"{}\"] must be a number, got {}", key,
                        json_type_name(bias));
    }
    params.logit_bias[static_cast<int32_t>(id)] = bias.get<double>();
  }
  return Status::ok_status();
}

Expected<std::optional<uint64_t>> read_seed_field(const Json& object, std::string_view key) {
  const Json* value = find_field(object, key);
  if (!value) return std::optional<uint64_t>();
  if (value->is_number_unsigned()) return std::optional<uint64_t>(value->get<uint64_t>());
  // A negative seed is a valid Python int; keep its 64-bit two's-complement pattern.
  RADIXLM_ASSIGN_OR_RETURN(int64_t seed, to_int(*value, key, std::numeric_limits<int64_t>::min(),
                                                std::numeric_limits<int64_t>::max()));
  return std::optional<uint64_t>(static_cast<uint64_t>(seed));
}

Status read_seed(const Json& object, SamplingParams& params) {
  RADIXLM_ASSIGN_OR_RETURN(std::optional<uint64_t> sampling_seed, read_seed_field(object, "sampling_seed"));
  RADIXLM_ASSIGN_OR_RETURN(std::optional<uint64_t> seed, read_seed_field(object, "seed"));
  if (sampling_seed && seed && *sampling_seed != *seed) {
    return make_error(StatusCode::kInvalidArgument, "sampling_seed ({}) and seed ({}) disagree; give one",
                      *sampling_seed, *seed);
  }
  if (sampling_seed) params.seed = sampling_seed;
  if (seed) params.seed = seed;
  return Status::ok_status();
}

// SGLang's SamplingParams takes exactly these keywords and refuses any other; a misspelt field must not
// silently fall back to its default.
Status check_field_names(const Json& object) {
  static constexpr std::string_view kRead[] = {
      "temperature", "top_p", "top_k", "min_p", "frequency_penalty", "presence_penalty", "repetition_penalty",
      "max_new_tokens", "min_new_tokens", "stop", "stop_token_ids", "ignore_eos", "skip_special_tokens",
      "spaces_between_special_tokens", "no_stop_trim", "n", "sampling_seed", "seed", "logit_bias",
      // Accepted and without effect here: radixlm streams every token as soon as it is decoded.
      "stream_interval"};
  // SGLang's fields for features radixlm does not have yet: null is fine, a value is refused.
  static constexpr std::string_view kNotYet[] = {"json_schema", "regex", "ebnf", "structural_tag", "stop_regex",
                                                 "custom_params"};
  for (const auto& [key, value] : object.items()) {
    if (std::find(std::begin(kRead), std::end(kRead), key) != std::end(kRead)) continue;
    if (std::find(std::begin(kNotYet), std::end(kNotYet), key) != std::end(kNotYet)) {
      if (value.is_null()) continue;
      return make_error(StatusCode::kUnsupported, "sampling parameter '{}' is not supported yet", key);
    }
    return make_error(StatusCode::kInvalidArgument, "unknown sampling parameter '{}'", key);
  }
  return Status::ok_status();
}

}  // namespace

Expected<SamplingParams> parse_sampling_params(const Json& object) {
  SamplingParams params;
  if (object.is_null()) return params;
  if (!object.is_object()) {
    return make_error(StatusCode::kInvalidArgument, "sampling_params must be an object, got {}", json_type_name(object));
  }
  RADIXLM_RETURN_IF_ERROR(check_field_names(object));
  ExplicitSamplingFields& set = params.explicitly_set;
  RADIXLM_RETURN_IF_ERROR(read_double(object, "temperature", params.temperature, &set.temperature));
  RADIXLM_RETURN_IF_ERROR(read_double(object, "top_p", params.top_p, &set.top_p));
  RADIXLM_RETURN_IF_ERROR(read_int32(object, "top_k", params.top_k, &set.top_k));
  RADIXLM_RETURN_IF_ERROR(read_double(object, "min_p", params.min_p, &set.min_p));
  RADIXLM_RETURN_IF_ERROR(read_double(object, "frequency_penalty", params.frequency_penalty));
  RADIXLM_RETURN_IF_ERROR(read_double(object, "presence_penalty", params.presence_penalty));
  RADIXLM_RETURN_IF_ERROR(
      read_double(object, "repetition_penalty", params.repetition_penalty, &set.repetition_penalty));

  // max_new_tokens is the one field where null means something: no limit but the context length.
  if (auto it = object.find("max_new_tokens"); it != object.end()) {
    if (it->is_null()) {
      params.max_new_tokens.reset();
    } else {
      RADIXLM_ASSIGN_OR_RETURN(params.max_new_tokens, to_int32(*it, "max_new_tokens"));
    }
  }
  RADIXLM_RETURN_IF_ERROR(read_int32(object, "min_new_tokens", params.min_new_tokens));
  RADIXLM_RETURN_IF_ERROR(read_stop(object, params));
  RADIXLM_RETURN_IF_ERROR(read_stop_token_ids(object, params));
  RADIXLM_RETURN_IF_ERROR(read_bool(object, "ignore_eos", params.ignore_eos));
  RADIXLM_RETURN_IF_ERROR(read_bool(object, "skip_special_tokens", params.skip_special_tokens));
  RADIXLM_RETURN_IF_ERROR(read_bool(object, "spaces_between_special_tokens", params.spaces_between_special_tokens));
  RADIXLM_RETURN_IF_ERROR(read_bool(object, "no_stop_trim", params.no_stop_trim));
  RADIXLM_RETURN_IF_ERROR(read_int32(object, "n", params.n));
  RADIXLM_RETURN_IF_ERROR(read_seed(object, params));
  RADIXLM_RETURN_IF_ERROR(read_logit_bias(object, params));
  return params;
}

Status parse_logprob_fields(const Json& request, SamplingParams& params) {
  if (request.is_null()) return Status::ok_status();
  if (!request.is_object()) {
    return make_error(StatusCode::kInvalidArgument, "the request must be an object, got {}", json_type_name(request));
  }
  RADIXLM_RETURN_IF_ERROR(read_bool(request, "return_logprob", params.return_logprob));
  RADIXLM_RETURN_IF_ERROR(read_int32(request, "top_logprobs_num", params.top_logprobs_num));
  RADIXLM_RETURN_IF_ERROR(read_int32(request, "logprob_start_len", params.logprob_start_len));
  return Status::ok_status();
}

}  // namespace radixlm
