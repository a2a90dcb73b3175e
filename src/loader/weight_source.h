#pragma once
// Where a model's weights come from: a checkpoint on disk (single file or sharded through
// model.safetensors.index.json) or random weights from the config alone (SGLang's --load-format dummy).
// Models ask for each tensor by its HF name and the shape they expect, so both sources are checked alike.

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"

namespace radixlm {

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  virtual bool contains(const std::string& name) const = 0;
  // The tensor `name` as a host tensor. A checkpoint's tensor keeps its stored dtype; it is an error (naming
  // the file and tensor) when it is missing or its shape differs from `expected_shape`. Dummy weights are
  // made in `dummy_dtype`.
  virtual Expected<Tensor> get(const std::string& name, const Shape& expected_shape) = 0;
  // Every tensor name the source holds (empty for dummy), so a loader can report ones no model used.
  virtual std::vector<std::string> names() const = 0;
};

// Opens `model_dir`'s model.safetensors, or the shards listed by model.safetensors.index.json.
Expected<std::unique_ptr<WeightSource>> open_checkpoint(const std::filesystem::path& model_dir);

// Deterministic random weights: the same name and seed give the same values on every run and machine.
// Names ending in "norm.weight" (and "layernorm.weight") are ones, "bias" zeros, everything else is drawn
// with a small standard deviation, so activations stay finite through a full-size model. Each value depends
// only on (seed, name, position): not on thread count or the order tensors are asked for. It can make any
// tensor, so contains() is true for every name and names() is empty.
std::unique_ptr<WeightSource> make_dummy_weights(DType dtype, uint64_t seed = 0);

}  // namespace radixlm
