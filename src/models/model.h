#pragma once
// A model family, written once against ops/Backend (DESIGN §5). Dense Llama-family models are the first;
// MoE and MLA families implement the same interface.

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "loader/model_config.h"
#include "loader/weight_source.h"
#include "ops/backend.h"
#include "ops/forward_batch.h"

namespace radixlm {

// What the KV cache must hold per layer, so the engine can size and allocate the page pool.
struct KvCacheShape {
  int64_t num_layers = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
};

class Model {
 public:
  virtual ~Model() = default;
  virtual const ModelConfig& config() const = 0;
  virtual KvCacheShape kv_cache_shape() const = 0;
  // Runs one step over `batch`, reading and writing `kv_cache` (one entry per layer). Returns the logits
  // of batch.logit_rows as [rows, vocab_size] f32 on the backend's device.
  virtual Tensor forward(const ForwardBatch& batch, const std::vector<LayerKvCache>& kv_cache) = 0;
};

// Choices about how a model is built that are not in config.json.
struct ModelOptions {
  // Round the RoPE inverse frequencies to the checkpoint dtype (config.dtype). HF keeps inv_freq as a module
  // buffer, so a model cast with torch's `.to(bfloat16)` and back carries bf16-rounded frequencies; the
  // fixture goldens were made that way (tools/make_golden.py). Real checkpoints loaded by HF, SGLang or vLLM
  // compute inv_freq in fp32, which is the default here.
  bool rope_inv_freq_in_checkpoint_dtype = false;
};

// Architectures (config.json "architectures"[0]) that load_model accepts.
std::vector<std::string> supported_architectures();

// Builds the model for config.architecture, taking every weight from `weights` (uploaded to `backend`).
// An unsupported architecture is an error that lists the supported ones.
Expected<std::unique_ptr<Model>> load_model(const ModelConfig& config, WeightSource& weights, Backend& backend,
                                            const ModelOptions& options = {});

}  // namespace radixlm
