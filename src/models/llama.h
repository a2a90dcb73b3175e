#pragma once
// The dense Llama family: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM and Qwen3ForCausalLM are
// one decoder with a few switches (QKV bias, per-head q/k norm, tied embeddings, explicit head_dim).

#include <memory>

#include "core/status.h"
#include "models/model.h"

namespace radixlm {

// Which of the family's differences a checkpoint has; filled from the architecture name and config.
struct LlamaFamilyFlags {
  bool qkv_bias = false;     // Qwen2 (always), Llama/Qwen3 when attention_bias
  bool o_proj_bias = false;  // Llama/Qwen3 when attention_bias (Qwen2 and Mistral never)
  bool mlp_bias = false;     // Llama when mlp_bias
  bool qk_norm = false;      // Qwen3: RMSNorm over each q and k head before RoPE
};

Expected<LlamaFamilyFlags> llama_family_flags(const ModelConfig& config);

Expected<std::unique_ptr<Model>> build_llama_family(const ModelConfig& config, WeightSource& weights,
                                                    Backend& backend, const ModelOptions& options);

}  // namespace radixlm
