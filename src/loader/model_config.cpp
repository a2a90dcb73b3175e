// config.json -> ModelConfig. HF configs come in two forms (legacy rope_theta/rope_scaling/torch_dtype and
// transformers-5 rope_parameters/dtype), and leave many fields to per-model-type defaults in the Python
// config classes; both are resolved here so models see one plain struct.

#include "loader/model_config.h"

#include <cmath>
#include <limits>

#include "loader/json_fields.h"

namespace radixlm {

using loader_detail::get_bool;
using loader_detail::get_double;
using loader_detail::get_int;
using loader_detail::get_string;
using loader_detail::Json;

namespace {

// Defaults that HF's config classes supply when a field is absent, for the model types radixlm knows.
struct TypeDefaults {
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-6;
  int64_t max_position_embeddings = 2048;
  std::optional<int64_t> sliding_window;  // only when the key is absent
};

TypeDefaults defaults_for(std::string_view model_type) {
  TypeDefaults d;
  if (model_type == "mixtral") {
    d.rope_theta = 1e6;
    d.rms_norm_eps = 1e-5;
    d.max_position_embeddings = 4096 * 32;
  } else if (model_type == "mistral") {
    d.max_position_embeddings = 4096 * 32;
    d.sliding_window = 4096;
  } else if (model_type == "qwen2" || model_type == "qwen2_moe" || model_type == "qwen3" ||
             model_type == "qwen3_moe") {
    d.max_position_embeddings = 32768;
  } else if (model_type == "deepseek_v3") {
    d.max_position_embeddings = 4096;
  }
  return d;
}

bool is_deepseek(std::string_view model_type) {
  return model_type == "deepseek_v2" || model_type == "deepseek_v3";
}

Expected<DType> parse_dtype_name(std::string name, std::string_view source) {
  if (name.rfind("torch.", 0) == 0) name = name.substr(6);
  if (name == "bfloat16" || name == "bf16") return DType::kBF16;
  if (name == "float16" || name == "half" || name == "fp16") return DType::kF16;
  if (name == "float32" || name == "float" || name == "fp32") return DType::kF32;
  // "auto" asks for the checkpoint's own dtype, which the config does not say: bf16 is what nearly all are.
  if (name == "auto") return DType::kBF16;
  return make_error(StatusCode::kUnsupported, "{}: dtype '{}' is not one of bfloat16, float16, float32, auto", source,
                    name);
}

Expected<RopeType> parse_rope_type(const std::string& name, std::string_view source) {
  if (name == "default") return RopeType::kDefault;
  if (name == "linear") return RopeType::kLinear;
  if (name == "dynamic") return RopeType::kDynamic;
  if (name == "llama3") return RopeType::kLlama3;
  if (name == "yarn") return RopeType::kYarn;
  return make_error(StatusCode::kUnsupported,
                    "{}: RoPE type '{}' is not supported (supported: default, linear, dynamic, llama3, yarn)", source,
                    name);
}

// Reads the scaling parameters shared by both forms from `params` (rope_scaling or rope_parameters).
Status read_rope_scaling(const Json& params, std::string_view where, RopeParams& rope) {
  std::optional<std::string> type_name;
  RADIXLM_ASSIGN_OR_RETURN(type_name, get_string(params, "rope_type", where));
  if (!type_name) {
    RADIXLM_ASSIGN_OR_RETURN(type_name, get_string(params, "type", where));
  }
  if (!type_name) {
    return make_error(StatusCode::kInvalidArgument, "{}: has neither 'rope_type' nor 'type'", where);
  }
  RADIXLM_ASSIGN_OR_RETURN(rope.type, parse_rope_type(*type_name, where));
  if (rope.type == RopeType::kDefault) return {};

  RADIXLM_ASSIGN_OR_RETURN(std::optional<double> factor, get_double(params, "factor", where));
  if (!factor) {
    return make_error(StatusCode::kInvalidArgument, "{}: RoPE type '{}' needs 'factor'", where, *type_name);
  }
  if (!(*factor > 0.0)) {
    return make_error(StatusCode::kOutOfRange, "{}: RoPE 'factor' must be positive, got {}", where, *factor);
  }
  rope.factor = *factor;

  RADIXLM_ASSIGN_OR_RETURN(std::optional<int64_t> original, get_int(params, "original_max_position_embeddings", where));
  if (original) {
    if (*original <= 0 || *original >= (int64_t{1} << 31)) {
      return make_error(StatusCode::kOutOfRange, "{}: 'original_max_position_embeddings' must be in [1, 2^31), got {}",
                        where, *original);
    }
    rope.original_max_position_embeddings = *original;
  }
  auto read_double = [&](const char* key, double& out) -> Status {
    RADIXLM_ASSIGN_OR_RETURN(std::optional<double> v, get_double(params, key, where));
    if (v) out = *v;
    return {};
  };
  if (rope.type == RopeType::kLlama3) {
    if (!original) {
      return make_error(StatusCode::kInvalidArgument, "{}: RoPE type 'llama3' needs 'original_max_position_embeddings'",
                        where);
    }
    RADIXLM_RETURN_IF_ERROR(read_double("low_freq_factor", rope.low_freq_factor));
    RADIXLM_RETURN_IF_ERROR(read_double("high_freq_factor", rope.high_freq_factor));
    if (!(rope.low_freq_factor > 0.0) || !(rope.high_freq_factor > rope.low_freq_factor)) {
      return make_error(StatusCode::kOutOfRange,
                        "{}: llama3 RoPE needs 0 < low_freq_factor < high_freq_factor, got {} and {}", where,
                        rope.low_freq_factor, rope.high_freq_factor);
    }
  }
  if (rope.type == RopeType::kYarn) {
    RADIXLM_RETURN_IF_ERROR(read_double("beta_fast", rope.beta_fast));
    RADIXLM_RETURN_IF_ERROR(read_double("beta_slow", rope.beta_slow));
    RADIXLM_RETURN_IF_ERROR(read_double("mscale", rope.mscale));
    RADIXLM_RETURN_IF_ERROR(read_double("mscale_all_dim", rope.mscale_all_dim));
    RADIXLM_ASSIGN_OR_RETURN(rope.attention_factor, get_double(params, "attention_factor", where));
    RADIXLM_ASSIGN_OR_RETURN(std::optional<bool> truncate, get_bool(params, "truncate", where));
    if (truncate) rope.truncate = *truncate;
  }
  return {};
}

Expected<RopeParams> parse_rope(const Json& root, const TypeDefaults& defaults, std::string_view source) {
  RopeParams rope;
  rope.theta = defaults.rope_theta;
  RADIXLM_ASSIGN_OR_RETURN(std::optional<double> top_theta, get_double(root, "rope_theta", source));
  if (top_theta) rope.theta = *top_theta;
  RADIXLM_ASSIGN_OR_RETURN(std::optional<double> partial, get_double(root, "partial_rotary_factor", source));

  auto parameters_it = root.find("rope_parameters");
  if (parameters_it != root.end() && !parameters_it->is_null()) {
    // transformers-5: everything inside rope_parameters. Models with several attention kinds nest one set per
    // layer type; the full-attention set is the one that describes the model's RoPE.
    const Json* params = &*parameters_it;
    std::string where = fmt::format("{}: rope_parameters", source);
    if (params->is_object() && !params->contains("rope_type") && params->contains("full_attention")) {
      params = &(*params)["full_attention"];
      where += ".full_attention";
    }
    if (!params->is_object()) {
      return make_error(StatusCode::kInvalidArgument, "{} must be an object, got {}", where,
                        json_type_name(*params));
    }
    RADIXLM_ASSIGN_OR_RETURN(std::optional<double> theta, get_double(*params, "rope_theta", where));
    if (theta) rope.theta = *theta;
    RADIXLM_ASSIGN_OR_RETURN(std::optional<double> inner_partial, get_double(*params, "partial_rotary_factor", where));
    if (inner_partial) partial = inner_partial;
    if (params->contains("rope_type") || params->contains("type")) {
      RADIXLM_RETURN_IF_ERROR(read_rope_scaling(*params, where, rope));
    }
  } else {
    auto scaling_it = root.find("rope_scaling");
    if (scaling_it != root.end() && !scaling_it->is_null()) {
      const std::string where = fmt::format("{}: rope_scaling", source);
      if (!scaling_it->is_object()) {
        return make_error(StatusCode::kInvalidArgument, "{} must be an object or null, got {}", where,
                          json_type_name(*scaling_it));
      }
      RADIXLM_RETURN_IF_ERROR(read_rope_scaling(*scaling_it, where, rope));
    }
  }
  if (!(rope.theta > 0.0)) {
    return make_error(StatusCode::kOutOfRange, "{}: rope_theta must be positive, got {}", source, rope.theta);
  }
  if (partial) {
    if (!(*partial > 0.0 && *partial <= 1.0)) {
      return make_error(StatusCode::kOutOfRange, "{}: partial_rotary_factor must be in (0, 1], got {}", source,
                        *partial);
    }
    rope.partial_rotary_factor = *partial;
  }
  return rope;
}

// Reads an integer field into `out` when present; `required` makes absence an error.
Status read_int(const Json& root, const char* key, std::string_view source, int64_t& out, bool required = false) {
  RADIXLM_ASSIGN_OR_RETURN(std::optional<int64_t> v, get_int(root, key, source));
  if (v) {
    out = *v;
  } else if (required) {
    return make_error(StatusCode::kInvalidArgument, "{}: missing '{}'", source, key);
  }
  return {};
}

// Sizes must be positive (or, with allow_zero, non-negative) and below 2^31: larger ones are typos or hostile,
// and kernels index with 32-bit ints.
Status check_size(std::string_view source, const char* name, int64_t value, bool allow_zero = false) {
  constexpr int64_t kLimit = int64_t{1} << 31;
  if (value < 0 || (value == 0 && !allow_zero) || value >= kLimit) {
    return make_error(StatusCode::kOutOfRange, "{}: '{}' must be {} and below 2^31, got {}", source, name,
                      allow_zero ? "non-negative" : "positive", value);
  }
  return {};
}

Status read_moe_fields(const Json& root, std::string_view source, ModelConfig& config) {
  const std::string& type = config.model_type;
  for (const char* key : {"num_local_experts", "num_experts", "n_routed_experts"}) {
    RADIXLM_ASSIGN_OR_RETURN(std::optional<int64_t> v, get_int(root, key, source));
    if (v) {
      config.num_experts = *v;
      break;
    }
  }
  if (type == "mixtral") {
    // Mixtral's config class defaults (8 experts, top 2), and its router always renormalizes the top-k weights.
    if (!root.contains("num_local_experts")) config.num_experts = 8;
    config.num_experts_per_tok = 2;
    config.norm_topk_prob = true;
  }
  RADIXLM_RETURN_IF_ERROR(read_int(root, "num_experts_per_tok", source, config.num_experts_per_tok));
  RADIXLM_RETURN_IF_ERROR(read_int(root, "moe_intermediate_size", source, config.moe_intermediate_size));
  // Mixtral's experts are intermediate_size wide; say so where MoE code looks.
  if (type == "mixtral" && config.moe_intermediate_size == 0) config.moe_intermediate_size = config.intermediate_size;
  RADIXLM_RETURN_IF_ERROR(
      read_int(root, "shared_expert_intermediate_size", source, config.shared_expert_intermediate_size));
  RADIXLM_RETURN_IF_ERROR(read_int(root, "n_shared_experts", source, config.n_shared_experts));
  RADIXLM_ASSIGN_OR_RETURN(std::optional<bool> norm_topk, get_bool(root, "norm_topk_prob", source));
  if (norm_topk) {
    config.norm_topk_prob = *norm_topk;
  } else if (type == "deepseek_v3") {
    config.norm_topk_prob = true;
  }
  RADIXLM_RETURN_IF_ERROR(read_int(root, "first_k_dense_replace", source, config.first_k_dense_replace));
  RADIXLM_RETURN_IF_ERROR(read_int(root, "n_group", source, config.n_group));
  RADIXLM_RETURN_IF_ERROR(read_int(root, "topk_group", source, config.topk_group));
  if (type == "deepseek_v3") config.routed_scaling_factor = 2.5;
  RADIXLM_ASSIGN_OR_RETURN(std::optional<double> scaling, get_double(root, "routed_scaling_factor", source));
  if (scaling) config.routed_scaling_factor = *scaling;
  // DeepSeek-V3's config class has no scoring_func/topk_method: its routing is always sigmoid + noaux_tc.
  const bool v3 = type == "deepseek_v3";
  RADIXLM_ASSIGN_OR_RETURN(std::optional<std::string> scoring, get_string(root, "scoring_func", source));
  RADIXLM_ASSIGN_OR_RETURN(std::optional<std::string> topk_method, get_string(root, "topk_method", source));
  if (config.num_experts > 0) {
    config.scoring_func = scoring.value_or(v3 ? "sigmoid" : "softmax");
    config.topk_method = topk_method.value_or(v3 ? "noaux_tc" : "greedy");
    if (config.scoring_func != "softmax" && config.scoring_func != "sigmoid") {
      return make_error(StatusCode::kUnsupported, "{}: scoring_func '{}' is not softmax or sigmoid", source,
                        config.scoring_func);
    }
  }

  RADIXLM_RETURN_IF_ERROR(check_size(source, "num_experts", config.num_experts, true));
  if (config.num_experts > 0) {
    RADIXLM_RETURN_IF_ERROR(check_size(source, "num_experts_per_tok", config.num_experts_per_tok));
    if (config.num_experts_per_tok > config.num_experts) {
      return make_error(StatusCode::kOutOfRange, "{}: num_experts_per_tok {} exceeds the {} experts", source,
                        config.num_experts_per_tok, config.num_experts);
    }
    RADIXLM_RETURN_IF_ERROR(check_size(source, "moe_intermediate_size", config.moe_intermediate_size, true));
  }
  RADIXLM_RETURN_IF_ERROR(
      check_size(source, "shared_expert_intermediate_size", config.shared_expert_intermediate_size, true));
  RADIXLM_RETURN_IF_ERROR(check_size(source, "n_shared_experts", config.n_shared_experts, true));
  RADIXLM_RETURN_IF_ERROR(check_size(source, "first_k_dense_replace", config.first_k_dense_replace, true));
  RADIXLM_RETURN_IF_ERROR(check_size(source, "n_group", config.n_group, true));
  RADIXLM_RETURN_IF_ERROR(check_size(source, "topk_group", config.topk_group, true));
  if (config.n_group > 0 && config.num_experts > 0) {
    if (config.num_experts % config.n_group != 0 || config.topk_group > config.n_group) {
      return make_error(StatusCode::kOutOfRange,
                        "{}: {} experts in n_group {} with topk_group {}: groups must divide the experts and "
                        "topk_group must not exceed n_group",
                        source, config.num_experts, config.n_group, config.topk_group);
    }
  }
  return {};
}

Status read_mla_fields(const Json& root, std::string_view source, ModelConfig& config) {
  // q_lora_rank null means "no q LoRA" (DeepSeek-V2-Lite).
  RADIXLM_RETURN_IF_ERROR(read_int(root, "q_lora_rank", source, config.q_lora_rank));
  RADIXLM_RETURN_IF_ERROR(read_int(root, "kv_lora_rank", source, config.kv_lora_rank));
  RADIXLM_RETURN_IF_ERROR(read_int(root, "qk_nope_head_dim", source, config.qk_nope_head_dim));
  RADIXLM_RETURN_IF_ERROR(read_int(root, "qk_rope_head_dim", source, config.qk_rope_head_dim));
  RADIXLM_RETURN_IF_ERROR(read_int(root, "v_head_dim", source, config.v_head_dim));
  RADIXLM_RETURN_IF_ERROR(check_size(source, "q_lora_rank", config.q_lora_rank, true));
  RADIXLM_RETURN_IF_ERROR(check_size(source, "kv_lora_rank", config.kv_lora_rank, true));
  if (config.kv_lora_rank > 0) {
    RADIXLM_RETURN_IF_ERROR(check_size(source, "qk_nope_head_dim", config.qk_nope_head_dim));
    RADIXLM_RETURN_IF_ERROR(check_size(source, "qk_rope_head_dim", config.qk_rope_head_dim));
    RADIXLM_RETURN_IF_ERROR(check_size(source, "v_head_dim", config.v_head_dim));
  }
  return {};
}

Expected<ModelConfig> parse_root(const Json& root, std::string_view source) {
  ModelConfig config;
  config.source = std::string(source);

  auto arch_it = root.find("architectures");
  if (arch_it == root.end() || arch_it->is_null()) {
    return make_error(StatusCode::kInvalidArgument,
                      "{}: no 'architectures': cannot tell which model this is (expected e.g. "
                      "\"architectures\": [\"LlamaForCausalLM\"])",
                      source);
  }
  if (!arch_it->is_array() || arch_it->empty() || !(*arch_it)[0].is_string() ||
      (*arch_it)[0].get_ref<const std::string&>().empty()) {
    return make_error(StatusCode::kInvalidArgument,
                      "{}: 'architectures' must be a non-empty list of names (e.g. [\"LlamaForCausalLM\"]), got {}",
                      source, arch_it->is_array() && arch_it->empty() ? "[]" : json_type_name(*arch_it));
  }
  config.architecture = (*arch_it)[0].get<std::string>();
  RADIXLM_ASSIGN_OR_RETURN(std::optional<std::string> model_type, get_string(root, "model_type", source));
  config.model_type = model_type.value_or("");
  const TypeDefaults defaults = defaults_for(config.model_type);

  RADIXLM_RETURN_IF_ERROR(read_int(root, "hidden_size", source, config.hidden_size, true));
  RADIXLM_RETURN_IF_ERROR(read_int(root, "num_hidden_layers", source, config.num_hidden_layers, true));
  RADIXLM_RETURN_IF_ERROR(read_int(root, "num_attention_heads", source, config.num_attention_heads, true));
  RADIXLM_RETURN_IF_ERROR(read_int(root, "vocab_size", source, config.vocab_size, true));
  RADIXLM_RETURN_IF_ERROR(read_int(root, "intermediate_size", source, config.intermediate_size));
  config.max_position_embeddings = defaults.max_position_embeddings;
  RADIXLM_RETURN_IF_ERROR(read_int(root, "max_position_embeddings", source, config.max_position_embeddings));
  RADIXLM_RETURN_IF_ERROR(check_size(source, "hidden_size", config.hidden_size));
  RADIXLM_RETURN_IF_ERROR(check_size(source, "num_hidden_layers", config.num_hidden_layers));
  RADIXLM_RETURN_IF_ERROR(check_size(source, "num_attention_heads", config.num_attention_heads));
  RADIXLM_RETURN_IF_ERROR(check_size(source, "vocab_size", config.vocab_size));
  RADIXLM_RETURN_IF_ERROR(check_size(source, "max_position_embeddings", config.max_position_embeddings));

  config.num_key_value_heads = config.num_attention_heads;
  RADIXLM_RETURN_IF_ERROR(read_int(root, "num_key_value_heads", source, config.num_key_value_heads));
  RADIXLM_RETURN_IF_ERROR(check_size(source, "num_key_value_heads", config.num_key_value_heads));
  if (config.num_attention_heads % config.num_key_value_heads != 0) {
    return make_error(StatusCode::kInvalidArgument,
                      "{}: num_attention_heads {} is not a multiple of num_key_value_heads {}", source,
                      config.num_attention_heads, config.num_key_value_heads);
  }

  RADIXLM_RETURN_IF_ERROR(read_mla_fields(root, source, config));
  // head_dim: given, else the model type's default (Qwen3: 128; DeepSeek: the rotary part of the MLA head),
  // else hidden_size / num_attention_heads. null counts as not given.
  RADIXLM_ASSIGN_OR_RETURN(std::optional<int64_t> head_dim, get_int(root, "head_dim", source));
  if (head_dim) {
    config.head_dim = *head_dim;
  } else if ((config.model_type == "qwen3" || config.model_type == "qwen3_moe") && !root.contains("head_dim")) {
    config.head_dim = 128;
  } else if (is_deepseek(config.model_type) && config.qk_rope_head_dim > 0) {
    config.head_dim = config.qk_rope_head_dim;
  } else {
    if (config.hidden_size % config.num_attention_heads != 0) {
      return make_error(StatusCode::kInvalidArgument,
                        "{}: no head_dim, and hidden_size {} is not a multiple of num_attention_heads {}", source,
                        config.hidden_size, config.num_attention_heads);
    }
    config.head_dim = config.hidden_size / config.num_attention_heads;
  }
  RADIXLM_RETURN_IF_ERROR(check_size(source, "head_dim", config.head_dim));

  config.rms_norm_eps = defaults.rms_norm_eps;
  RADIXLM_ASSIGN_OR_RETURN(std::optional<double> eps, get_double(root, "rms_norm_eps", source));
  if (eps) config.rms_norm_eps = *eps;
  if (!(config.rms_norm_eps > 0.0 && config.rms_norm_eps < 1.0)) {
    return make_error(StatusCode::kOutOfRange, "{}: rms_norm_eps must be in (0, 1), got {}", source, config.rms_norm_eps);
  }
  RADIXLM_ASSIGN_OR_RETURN(std::optional<std::string> act, get_string(root, "hidden_act", source));
  if (act) config.hidden_act = *act;
  RADIXLM_ASSIGN_OR_RETURN(std::optional<bool> tie, get_bool(root, "tie_word_embeddings", source));
  if (tie) config.tie_word_embeddings = *tie;
  RADIXLM_ASSIGN_OR_RETURN(std::optional<bool> attention_bias, get_bool(root, "attention_bias", source));
  if (attention_bias) config.attention_bias = *attention_bias;
  // Qwen2's q/k/v projections always have a bias; its config class has no field for it.
  if (config.model_type == "qwen2" || config.model_type == "qwen2_moe") config.attention_bias = true;
  RADIXLM_ASSIGN_OR_RETURN(std::optional<bool> mlp_bias, get_bool(root, "mlp_bias", source));
  if (mlp_bias) config.mlp_bias = *mlp_bias;

  RADIXLM_ASSIGN_OR_RETURN(std::optional<std::string> dtype_name, get_string(root, "dtype", source));
  if (!dtype_name) {
    RADIXLM_ASSIGN_OR_RETURN(dtype_name, get_string(root, "torch_dtype", source));
  }
  if (dtype_name) {
    RADIXLM_ASSIGN_OR_RETURN(config.dtype, parse_dtype_name(*dtype_name, source));
  }

  RADIXLM_ASSIGN_OR_RETURN(config.rope, parse_rope(root, defaults, source));
  RADIXLM_ASSIGN_OR_RETURN(config.bos_token_id, get_int(root, "bos_token_id", source));
  RADIXLM_ASSIGN_OR_RETURN(config.eos_token_ids, loader_detail::get_int_or_int_list(root, "eos_token_id", source));

  // sliding_window: Qwen configs carry a value that applies only with use_sliding_window; Mistral's class
  // defaults to 4096 when the key is absent (null means none).
  RADIXLM_ASSIGN_OR_RETURN(config.sliding_window, get_int(root, "sliding_window", source));
  if (!root.contains("sliding_window")) config.sliding_window = defaults.sliding_window;
  RADIXLM_ASSIGN_OR_RETURN(std::optional<bool> use_sliding, get_bool(root, "use_sliding_window", source));
  if (use_sliding && !*use_sliding) config.sliding_window.reset();
  if (config.sliding_window) RADIXLM_RETURN_IF_ERROR(check_size(source, "sliding_window", *config.sliding_window));

  RADIXLM_RETURN_IF_ERROR(read_moe_fields(root, source, config));
  // Dense models need an MLP width; an MoE model may have none of its own.
  if (config.num_experts == 0 && config.intermediate_size == 0 && !root.contains("intermediate_size")) {
    return make_error(StatusCode::kInvalidArgument, "{}: missing 'intermediate_size'", source);
  }
  RADIXLM_RETURN_IF_ERROR(check_size(source, "intermediate_size", config.intermediate_size, config.num_experts > 0));
  return config;
}

}  // namespace

Expected<ModelConfig> parse_model_config(std::string_view config_json, std::string_view override_json,
                                         std::string_view source) {
  RADIXLM_ASSIGN_OR_RETURN(Json root, loader_detail::parse_json(config_json, source));
  if (!root.is_object()) {
    return make_error(StatusCode::kInvalidArgument, "{}: must be a JSON object, got {}", source,
                      json_type_name(root));
  }
  if (!override_json.empty()) {
    RADIXLM_ASSIGN_OR_RETURN(Json overrides, loader_detail::parse_json(override_json, "--json-model-override-args"));
    if (!overrides.is_object()) {
      return make_error(StatusCode::kInvalidArgument, "--json-model-override-args must be a JSON object, got {}",
                        json_type_name(overrides));
    }
    // Top-level keys replace the config's, as SGLang's dict update does (a nested object is replaced whole).
    for (const auto& [key, value] : overrides.items()) root[key] = value;
  }
  return parse_root(root, source);
}

Expected<ModelConfig> load_model_config(const std::filesystem::path& model_dir, std::string_view override_json) {
  const std::filesystem::path path = model_dir / "config.json";
  Expected<std::string> text = loader_detail::read_text_file(path);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) {
      return make_error(StatusCode::kNotFound, "{}: no config.json (is this a HuggingFace model directory?)",
                        model_dir.string());
    }
    return text.status();
  }
  return parse_model_config(*text, override_json, path.string());
}

}  // namespace radixlm
