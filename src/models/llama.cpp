// The dense Llama family written once against ops/Backend. The residual stream is added into by the
// output projections themselves (linear_add: the add in the matmul's epilogue, so a backend never writes a
// sublayer's output only to read it back for the add), and each norm reads the residual as it stands:
//   x = input_norm(residual); residual += o_proj(attention(x))
//   x = post_attention_norm(residual); residual += down_proj(silu_and_mul(gate_up(x)))
// The residual starts as the embeddings; the final norm reads the last layer's sum.

#include "models/llama.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "ops/rope.h"

namespace radixlm {
namespace {

// Projections that read the same input are stacked at load time so one matmul computes them all, as
// SGLang's QKVParallelLinear and MergedColumnParallelLinear do: at decode a matmul streams its weight once,
// and one [Wq + 2 Wkv, H] matrix streams faster than three (the narrow k/v ones reach well under the
// copy bandwidth alone).
struct LayerWeights {
  Tensor input_norm, post_attention_norm;
  Tensor qkv_proj, qkv_bias;          // q, k and v stacked: [Wq + 2 Wkv, H]; bias undefined when absent
  Tensor o_proj, o_bias;
  Tensor q_norm, k_norm;              // Qwen3
  Tensor gate_up_proj, gate_up_bias;  // gate and up stacked: [2I, H], as silu_and_mul wants
  Tensor down_proj, down_bias;
};

class LlamaFamilyModel final : public Model {
 public:
  LlamaFamilyModel(ModelConfig config, LlamaFamilyFlags flags, ModelOptions options, Backend& backend)
      : config_(std::move(config)), flags_(flags), options_(options), backend_(backend) {}

  Status load(WeightSource& weights);

  const ModelConfig& config() const override { return config_; }
  KvCacheShape kv_cache_shape() const override {
    return {config_.num_hidden_layers, config_.num_key_value_heads, config_.head_dim};
  }
  Tensor forward(const ForwardBatch& batch, const std::vector<LayerKvCache>& kv_cache) override;

 private:
  Expected<Tensor> fetch(WeightSource& weights, const std::string& name, const Shape& shape);
  // The tensors `parts` stacked into one and uploaded (one host copy at a time, released after upload).
  Expected<Tensor> fetch_stacked(WeightSource& weights, const std::vector<StackedPart>& parts);

  ModelConfig config_;
  LlamaFamilyFlags flags_;
  ModelOptions options_;
  Backend& backend_;
  RopeTable rope_;
  Tensor embed_tokens, final_norm, lm_head;
  std::vector<LayerWeights> layers_;
};

Expected<Tensor> LlamaFamilyModel::fetch(WeightSource& weights, const std::string& name, const Shape& shape) {
  RADIXLM_ASSIGN_OR_RETURN(Tensor host, weights.get(name, shape));
  if (!dtype_is_float(host.dtype())) {
    return make_error(StatusCode::kUnsupported, "weight '{}' has dtype {}; a float type is needed", name,
                      dtype_name(host.dtype()));
  }
  return host;
}

Expected<Tensor> LlamaFamilyModel::fetch_stacked(WeightSource& weights, const std::vector<StackedPart>& parts) {
  RADIXLM_ASSIGN_OR_RETURN(Tensor host, weights.get_stacked(parts));
  if (!dtype_is_float(host.dtype())) {
    return make_error(StatusCode::kUnsupported, "weights '{}' and the {} stacked with it have dtype {}; a float type is needed",
                      parts.front().name, parts.size() - 1, dtype_name(host.dtype()));
  }
  return backend_.upload(host);
}

Status LlamaFamilyModel::load(WeightSource& weights) {
  const int64_t hidden = config_.hidden_size, inter = config_.intermediate_size, vocab = config_.vocab_size;
  const int64_t q_width = config_.num_attention_heads * config_.head_dim;
  const int64_t kv_width = config_.num_key_value_heads * config_.head_dim;

  RADIXLM_ASSIGN_OR_RETURN(Tensor embed, fetch(weights, "model.embed_tokens.weight", {vocab, hidden}));
  embed_tokens = backend_.upload(embed);
  RADIXLM_ASSIGN_OR_RETURN(Tensor norm, fetch(weights, "model.norm.weight", {hidden}));
  final_norm = backend_.upload(norm);
  // A checkpoint without lm_head.weight ties it to the embeddings even if the config forgot to say so.
  const bool tied = config_.tie_word_embeddings || (!weights.names().empty() && !weights.contains("lm_head.weight"));
  if (tied) {
    lm_head = embed_tokens;
  } else {
    RADIXLM_ASSIGN_OR_RETURN(Tensor head, fetch(weights, "lm_head.weight", {vocab, hidden}));
    lm_head = backend_.upload(head);
  }

  layers_.resize(static_cast<size_t>(config_.num_hidden_layers));
  for (int64_t i = 0; i < config_.num_hidden_layers; ++i) {
    const std::string prefix = "model.layers." + std::to_string(i) + ".";
    LayerWeights& layer = layers_[static_cast<size_t>(i)];
    auto get = [&](const std::string& name, const Shape& shape) -> Expected<Tensor> {
      RADIXLM_ASSIGN_OR_RETURN(Tensor host, fetch(weights, prefix + name, shape));
      return backend_.upload(host);
    };
    RADIXLM_ASSIGN_OR_RETURN(layer.input_norm, get("input_layernorm.weight", {hidden}));
    RADIXLM_ASSIGN_OR_RETURN(layer.post_attention_norm, get("post_attention_layernorm.weight", {hidden}));
    const std::string attn = prefix + "self_attn.";
    RADIXLM_ASSIGN_OR_RETURN(layer.qkv_proj, fetch_stacked(weights, {{attn + "q_proj.weight", {q_width, hidden}},
                                                                     {attn + "k_proj.weight", {kv_width, hidden}},
                                                                     {attn + "v_proj.weight", {kv_width, hidden}}}));
    RADIXLM_ASSIGN_OR_RETURN(layer.o_proj, get("self_attn.o_proj.weight", {hidden, q_width}));
    if (flags_.qkv_bias) {
      RADIXLM_ASSIGN_OR_RETURN(layer.qkv_bias, fetch_stacked(weights, {{attn + "q_proj.bias", {q_width}},
                                                                       {attn + "k_proj.bias", {kv_width}},
                                                                       {attn + "v_proj.bias", {kv_width}}}));
    }
    if (flags_.o_proj_bias) {
      RADIXLM_ASSIGN_OR_RETURN(layer.o_bias, get("self_attn.o_proj.bias", {hidden}));
    }
    if (flags_.qk_norm) {
      RADIXLM_ASSIGN_OR_RETURN(layer.q_norm, get("self_attn.q_norm.weight", {config_.head_dim}));
      RADIXLM_ASSIGN_OR_RETURN(layer.k_norm, get("self_attn.k_norm.weight", {config_.head_dim}));
    }
    const std::string mlp = prefix + "mlp.";
    RADIXLM_ASSIGN_OR_RETURN(layer.gate_up_proj, fetch_stacked(weights, {{mlp + "gate_proj.weight", {inter, hidden}},
                                                                         {mlp + "up_proj.weight", {inter, hidden}}}));
    RADIXLM_ASSIGN_OR_RETURN(layer.down_proj, get("mlp.down_proj.weight", {hidden, inter}));
    if (flags_.mlp_bias) {
      RADIXLM_ASSIGN_OR_RETURN(layer.gate_up_bias, fetch_stacked(weights, {{mlp + "gate_proj.bias", {inter}},
                                                                           {mlp + "up_proj.bias", {inter}}}));
      RADIXLM_ASSIGN_OR_RETURN(layer.down_bias, get("mlp.down_proj.bias", {hidden}));
    }
  }
  rope_ = make_rope_table(config_.rope, config_.head_dim, config_.max_position_embeddings);
  if (options_.rope_inv_freq_in_checkpoint_dtype && dtype_is_float(config_.dtype)) {
    std::vector<uint8_t> stored(rope_.inv_freq.size() * dtype_size(config_.dtype));
    convert_from_f32(rope_.inv_freq.data(), config_.dtype, stored.data(), rope_.inv_freq.size());
    convert_to_f32(config_.dtype, stored.data(), rope_.inv_freq.data(), rope_.inv_freq.size());
  }
  return {};
}

Tensor LlamaFamilyModel::forward(const ForwardBatch& batch, const std::vector<LayerKvCache>& kv_cache) {
  RADIXLM_CHECK(kv_cache.size() == layers_.size(), "{} KV layers for {} model layers", kv_cache.size(),
                layers_.size());
  backend_.begin_step(batch);
  const int64_t tokens = batch.num_tokens(), rows = static_cast<int64_t>(batch.logit_rows.size());
  const int64_t hidden_size = config_.hidden_size, inter = config_.intermediate_size;
  const auto q_heads = static_cast<int32_t>(config_.num_attention_heads);
  const auto kv_heads = static_cast<int32_t>(config_.num_key_value_heads);
  const auto head_dim = static_cast<int32_t>(config_.head_dim);
  const auto eps = static_cast<float>(config_.rms_norm_eps);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));
  const DType act = backend_.activation_dtype();

  // Every buffer is written whole by the op that fills it.
  Tensor residual = backend_.alloc_uninitialized(act, {tokens, hidden_size});
  Tensor hidden = backend_.alloc_uninitialized(act, {tokens, hidden_size});
  const int64_t q_width = int64_t{q_heads} * head_dim, kv_width = int64_t{kv_heads} * head_dim;
  Tensor qkv = backend_.alloc_uninitialized(act, {tokens, q_width + 2 * kv_width});
  // q, k and v stay where the fused matmul put them: column blocks of qkv, which the ops downstream read and
  // rotate at qkv's row stride (no copy).
  const TensorView q = qkv.view.columns(0, q_width);
  const TensorView k = qkv.view.columns(q_width, kv_width);
  const TensorView v = qkv.view.columns(q_width + kv_width, kv_width);
  Tensor attn = backend_.alloc_uninitialized(act, {tokens, int64_t{q_heads} * head_dim});
  Tensor mlp = backend_.alloc_uninitialized(act, {tokens, inter});

  backend_.embedding(embed_tokens, residual);
  if (!layers_.empty()) backend_.rms_norm(residual, layers_.front().input_norm, eps, hidden);
  for (size_t i = 0; i < layers_.size(); ++i) {
    const LayerWeights& layer = layers_[i];
    // hidden holds this layer's input norm of the residual (from before the loop, or the previous layer's
    // linear_add_rms_norm after its down projection).
    backend_.linear(hidden, layer.qkv_proj, layer.qkv_bias, qkv);
    if (flags_.qk_norm) {
      backend_.head_rms_norm(q, layer.q_norm, head_dim, eps);
      backend_.head_rms_norm(k, layer.k_norm, head_dim, eps);
    }
    backend_.rope_store_and_attention(q, k, v, rope_, head_dim, kv_cache[i], q_heads, kv_heads, scale, attn);
    backend_.linear_add_rms_norm(attn, layer.o_proj, layer.o_bias, residual, layer.post_attention_norm, eps, hidden);
    backend_.linear_silu_and_mul(hidden, layer.gate_up_proj, layer.gate_up_bias, mlp);
    if (i + 1 < layers_.size()) {
      backend_.linear_add_rms_norm(mlp, layer.down_proj, layer.down_bias, residual, layers_[i + 1].input_norm, eps,
                                   hidden);
    } else {  // the final norm runs on the logit rows alone (below)
      backend_.linear_add(mlp, layer.down_proj, layer.down_bias, residual);
    }
  }
  // The norm is per row, so the logit rows are picked first and only they are normalised (one row per
  // sequence instead of every prompt token in a prefill).
  Tensor selected = backend_.alloc_uninitialized(act, {rows, hidden_size});
  backend_.gather_logit_rows(residual, selected);
  Tensor normed = backend_.alloc_uninitialized(act, {rows, hidden_size});
  backend_.rms_norm(selected, final_norm, eps, normed);
  Tensor logits = backend_.alloc_uninitialized(DType::kF32, {rows, config_.vocab_size});
  backend_.linear(normed, lm_head, TensorView(), logits);
  return logits;
}

Status check_dims(const ModelConfig& config) {
  const auto positive = [&](int64_t value, const char* name) -> Status {
    if (value <= 0) return make_error(StatusCode::kInvalidArgument, "{}: {} must be positive, got {}", config.source, name, value);
    return {};
  };
  RADIXLM_RETURN_IF_ERROR(positive(config.hidden_size, "hidden_size"));
  RADIXLM_RETURN_IF_ERROR(positive(config.intermediate_size, "intermediate_size"));
  RADIXLM_RETURN_IF_ERROR(positive(config.num_hidden_layers, "num_hidden_layers"));
  RADIXLM_RETURN_IF_ERROR(positive(config.num_attention_heads, "num_attention_heads"));
  RADIXLM_RETURN_IF_ERROR(positive(config.num_key_value_heads, "num_key_value_heads"));
  RADIXLM_RETURN_IF_ERROR(positive(config.head_dim, "head_dim"));
  RADIXLM_RETURN_IF_ERROR(positive(config.vocab_size, "vocab_size"));
  RADIXLM_RETURN_IF_ERROR(positive(config.max_position_embeddings, "max_position_embeddings"));
  if (config.num_attention_heads % config.num_key_value_heads != 0) {
    return make_error(StatusCode::kInvalidArgument, "{}: num_attention_heads {} is not a multiple of num_key_value_heads {}",
                      config.source, config.num_attention_heads, config.num_key_value_heads);
  }
  const auto rotary = static_cast<int64_t>(static_cast<double>(config.head_dim) * config.rope.partial_rotary_factor);
  if (rotary <= 0 || rotary % 2 != 0 || rotary > config.head_dim) {
    return make_error(StatusCode::kInvalidArgument, "{}: rotary width {} (head_dim {} x partial_rotary_factor {}) must be even and within the head",
                      config.source, rotary, config.head_dim, config.rope.partial_rotary_factor);
  }
  if (config.hidden_act != "silu") {
    return make_error(StatusCode::kUnsupported, "{}: hidden_act '{}' is not supported (only silu)", config.source,
                      config.hidden_act);
  }
  if (!(config.rms_norm_eps > 0)) {
    return make_error(StatusCode::kInvalidArgument, "{}: rms_norm_eps must be positive", config.source);
  }
  return {};
}

}  // namespace

Expected<LlamaFamilyFlags> llama_family_flags(const ModelConfig& config) {
  LlamaFamilyFlags flags;
  const std::string& arch = config.architecture;
  if (arch == "LlamaForCausalLM") {
    flags.qkv_bias = flags.o_proj_bias = config.attention_bias;
    flags.mlp_bias = config.mlp_bias;
  } else if (arch == "MistralForCausalLM") {
    // Mistral has no biases anywhere.
  } else if (arch == "Qwen2ForCausalLM") {
    flags.qkv_bias = true;  // always, whatever attention_bias says
  } else if (arch == "Qwen3ForCausalLM") {
    flags.qkv_bias = flags.o_proj_bias = config.attention_bias;
    flags.qk_norm = true;
  } else {
    return make_error(StatusCode::kUnsupported, "{} is not a Llama-family architecture", arch);
  }
  return flags;
}

Expected<std::unique_ptr<Model>> build_llama_family(const ModelConfig& config, WeightSource& weights,
                                                    Backend& backend, const ModelOptions& options) {
  RADIXLM_ASSIGN_OR_RETURN(LlamaFamilyFlags flags, llama_family_flags(config));
  RADIXLM_RETURN_IF_ERROR(check_dims(config));
  if (config.sliding_window && *config.sliding_window < config.max_position_embeddings) {
    spdlog::warn("{}: sliding_window {} is not applied: attention is full, exact up to {} tokens", config.source,
                 *config.sliding_window, *config.sliding_window);
  }
  auto model = std::make_unique<LlamaFamilyModel>(config, flags, options, backend);
  RADIXLM_RETURN_IF_ERROR(model->load(weights));
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace radixlm
