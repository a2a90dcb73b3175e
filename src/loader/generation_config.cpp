// generation_config.json: the sampling defaults a checkpoint ships with.

#include "loader/json_fields.h"
#include "loader/model_config.h"

namespace radixlm {

using loader_detail::Json;

Expected<GenerationConfig> parse_generation_config(std::string_view json, std::string_view source) {
  RADIXLM_ASSIGN_OR_RETURN(Json root, loader_detail::parse_json(json, source));
  if (!root.is_object()) {
    return make_error(StatusCode::kInvalidArgument, "{}: must be a JSON object, got {}", source,
                      json_type_name(root));
  }
  GenerationConfig config;
  RADIXLM_ASSIGN_OR_RETURN(config.eos_token_ids, loader_detail::get_int_or_int_list(root, "eos_token_id", source));
  RADIXLM_ASSIGN_OR_RETURN(config.bos_token_id, loader_detail::get_int(root, "bos_token_id", source));
  RADIXLM_ASSIGN_OR_RETURN(config.temperature, loader_detail::get_double(root, "temperature", source));
  RADIXLM_ASSIGN_OR_RETURN(config.top_p, loader_detail::get_double(root, "top_p", source));
  RADIXLM_ASSIGN_OR_RETURN(config.top_k, loader_detail::get_int(root, "top_k", source));
  RADIXLM_ASSIGN_OR_RETURN(config.min_p, loader_detail::get_double(root, "min_p", source));
  RADIXLM_ASSIGN_OR_RETURN(config.repetition_penalty, loader_detail::get_double(root, "repetition_penalty", source));
  RADIXLM_ASSIGN_OR_RETURN(config.max_new_tokens, loader_detail::get_int(root, "max_new_tokens", source));
  RADIXLM_ASSIGN_OR_RETURN(config.do_sample, loader_detail::get_bool(root, "do_sample", source));

  if (config.temperature && *config.temperature < 0.0) {
    return make_error(StatusCode::kOutOfRange, "{}: temperature must be non-negative, got {}", source,
                      *config.temperature);
  }
  if (config.top_p && !(*config.top_p > 0.0 && *config.top_p <= 1.0)) {
    return make_error(StatusCode::kOutOfRange, "{}: top_p must be in (0, 1], got {}", source, *config.top_p);
  }
  if (config.min_p && !(*config.min_p >= 0.0 && *config.min_p <= 1.0)) {
    return make_error(StatusCode::kOutOfRange, "{}: min_p must be in [0, 1], got {}", source, *config.min_p);
  }
  if (config.repetition_penalty && !(*config.repetition_penalty > 0.0)) {
    return make_error(StatusCode::kOutOfRange, "{}: repetition_penalty must be positive, got {}", source,
                      *config.repetition_penalty);
  }
  if (config.max_new_tokens && *config.max_new_tokens < 0) {
    return make_error(StatusCode::kOutOfRange, "{}: max_new_tokens must be non-negative, got {}", source,
                      *config.max_new_tokens);
  }
  return config;
}

Expected<GenerationConfig> load_generation_config(const std::filesystem::path& model_dir) {
  const std::filesystem::path path = model_dir / "generation_config.json";
  Expected<std::string> text = loader_detail::read_text_file(path);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return GenerationConfig{};
    return text.status();
  }
  return parse_generation_config(*text, path.string());
}

}  // namespace radixlm
