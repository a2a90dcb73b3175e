#pragma once
// Rotary position embedding, every variant reduced to one table of inverse frequencies and a scale on
// cos/sin: for position p and pair i, angle = p * inv_freq[i]; cos and sin are multiplied by
// `attention_scaling` (YaRN's mscale, 1 elsewhere). This matches HF transformers' rope init functions.

#include <cstdint>
#include <vector>

#include "loader/model_config.h"

namespace radixlm {

struct RopeTable {
  std::vector<float> inv_freq;  // rotary_dim / 2 entries
  float attention_scaling = 1.0f;
  int32_t rotary_dim = 0;       // leading elements of each head that rotate; the rest pass through
  // false: pairs (i, i + rotary_dim/2) as Llama's rotate_half; true: pairs (2i, 2i+1) (GPT-J / DeepSeek).
  bool interleaved = false;
};

// Builds the table for a head of `head_dim` elements from the config's RoPE parameters.
// `max_position_embeddings` is the model's (dynamic NTK and YaRN read it).
RopeTable make_rope_table(const RopeParams& params, int64_t head_dim, int64_t max_position_embeddings);

}  // namespace radixlm
