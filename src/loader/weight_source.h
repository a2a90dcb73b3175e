#pragma once
// Where a model's weights come from: a checkpoint on disk (single file or sharded through
// model.safetensors.index.json) or random weights from the config alone (SGLang's --load-format dummy).
// Models ask for each tensor by its HF name and the shape they expect, so both sources are checked alike.

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"

namespace radixlm {

// One tensor of a row-stacked group: its HF name and the shape the model expects.
struct StackedPart {
  std::string name;
  Shape shape;
};

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
  // The tensors `parts` stacked along their first dimension, [a; b; ...], in one contiguous host tensor:
  // the weight of a fused projection (q|k|v or gate|up in one matmul, as SGLang's QKVParallelLinear and
  // MergedColumnParallelLinear). Parts must agree on every dimension but the first. The dtype is the parts'
  // when they agree, else f32 (widening, never rounding). Each part is checked as get() checks it. The
  // result is the only copy made: a checkpoint's parts are read from the mapping straight into place, and
  // dummy weights are generated in place with each part's own name, so a fused model holds exactly the
  // values of the unfused one.
  virtual Expected<Tensor> get_stacked(const std::vector<StackedPart>& parts);
};

// The shape of `parts` stacked along dim 0, or an error naming the part that does not fit.
Expected<Shape> stacked_shape(const std::vector<StackedPart>& parts);

// Opens `model_dir`'s model.safetensors, or the shards listed by model.safetensors.index.json.
Expected<std::unique_ptr<WeightSource>> open_checkpoint(const std::filesystem::path& model_dir);

// Deterministic random weights: the same name and seed give the same values on every run and machine.
// Names ending in "norm.weight" (and "layernorm.weight") are ones, "bias" zeros, everything else is drawn
// with a small standard deviation, so activations stay finite through a full-size model. Each value depends
// only on (seed, name, position): not on thread count or the order tensors are asked for. It can make any
// tensor, so contains() is true for every name and names() is empty.
std::unique_ptr<WeightSource> make_dummy_weights(DType dtype, uint64_t seed = 0);

// Whether open_weights takes this --load-format: "auto", "safetensors" or "dummy" (of SGLang's many).
bool supported_load_format(std::string_view load_format);

// The weights SGLang's --load-format names: "auto" or "safetensors" open the checkpoint in `model_dir`,
// "dummy" makes dummy weights of `dtype`; any other format is an error naming the ones supported.
Expected<std::unique_ptr<WeightSource>> open_weights(std::string_view load_format, const std::filesystem::path& model_dir,
                                                     DType dtype);

}  // namespace radixlm
