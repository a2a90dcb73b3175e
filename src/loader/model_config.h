#pragma once
// HF config.json and generation_config.json, in both forms found in the wild: legacy (`rope_theta`,
// `rope_scaling` with `rope_type` or `type`, `torch_dtype`) and transformers-5 (`rope_parameters`, `dtype`).

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"

namespace radixlm {

enum class RopeType { kDefault, kLinear, kDynamic, kLlama3, kYarn };

struct RopeParams {
  RopeType type = RopeType::kDefault;
  double theta = 10000.0;
  double factor = 1.0;  // linear / dynamic / llama3 / yarn scaling factor
  // llama3
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 0;  // llama3 and yarn (0: not given)
  // yarn
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double mscale = 1.0;
  double mscale_all_dim = 0.0;
  std::optional<double> attention_factor;
  bool truncate = true;
  // Fraction of head_dim that is rotated (partial_rotary_factor), and the rotated width in elements.
  double partial_rotary_factor = 1.0;
};

struct ModelConfig {
  std::string architecture;  // architectures[0], e.g. "LlamaForCausalLM"
  std::string model_type;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // defaults to num_attention_heads
  int64_t head_dim = 0;             // defaults to hidden_size / num_attention_heads
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  std::string hidden_act = "silu";
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // bias on q/k/v projections (Qwen2 has it without saying so)
  bool mlp_bias = false;
  DType dtype = DType::kBF16;  // `dtype` or `torch_dtype`
  RopeParams rope;
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;  // eos_token_id may be one id or a list
  std::optional<int64_t> sliding_window;

  // Mixture of experts (Mixtral, Qwen2/3-MoE, DeepSeek): parsed now, used by the MoE issue.
  int64_t num_experts = 0;  // num_local_experts / num_experts / n_routed_experts
  int64_t num_experts_per_tok = 0;
  int64_t moe_intermediate_size = 0;
  int64_t shared_expert_intermediate_size = 0;
  int64_t n_shared_experts = 0;
  bool norm_topk_prob = false;
  int64_t first_k_dense_replace = 0;
  int64_t n_group = 0;
  int64_t topk_group = 0;
  double routed_scaling_factor = 1.0;
  std::string scoring_func;  // "softmax" or "sigmoid"
  std::string topk_method;   // "greedy", "group_limited_greedy", "noaux_tc"

  // Multi-head latent attention (DeepSeek-V2/V3): parsed now, used by the MLA issue.
  int64_t q_lora_rank = 0;  // 0: no q LoRA
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;

  std::string source;  // the file it came from, for error messages
};

// Parses config.json text. `override_json` (SGLang's --json-model-override-args) is a JSON object whose
// keys replace the config's before parsing; empty means none.
Expected<ModelConfig> parse_model_config(std::string_view config_json, std::string_view override_json = {},
                                         std::string_view source = "config.json");
Expected<ModelConfig> load_model_config(const std::filesystem::path& model_dir, std::string_view override_json = {});

// generation_config.json: sampling defaults a request falls back to. A missing file gives all-empty.
struct GenerationConfig {
  std::vector<int64_t> eos_token_ids;
  std::optional<int64_t> bos_token_id;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int64_t> top_k;
  std::optional<double> min_p;
  std::optional<double> repetition_penalty;
  std::optional<int64_t> max_new_tokens;
  std::optional<bool> do_sample;  // HF ignores temperature/top_p/top_k when this is false
};

Expected<GenerationConfig> parse_generation_config(std::string_view json, std::string_view source);
Expected<GenerationConfig> load_generation_config(const std::filesystem::path& model_dir);

}  // namespace radixlm
