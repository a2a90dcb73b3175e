// What every WeightSource shares: stacking tensors into one fused weight, and the choice of a source by
// --load-format.

#include <cstring>

#include "core/dtype.h"
#include "loader/host_buffer.h"
#include "loader/weight_source.h"

namespace radixlm {
bool supported_load_format(std::string_view load_format) {
  return load_format == "auto" || load_format == "safetensors" || load_format == "dummy";
}

Expected<std::unique_ptr<WeightSource>> open_weights(std::string_view load_format, const std::filesystem::path& model_dir,
                                                     DType dtype) {
  if (!supported_load_format(load_format)) {
    return make_error(StatusCode::kInvalidArgument, "--load-format '{}': want auto, safetensors or dummy", load_format);
  }
  if (load_format == "dummy") return make_dummy_weights(dtype);
  return open_checkpoint(model_dir);
}


Expected<Shape> stacked_shape(const std::vector<StackedPart>& parts) {
  if (parts.empty()) return make_error(StatusCode::kInvalidArgument, "no tensors to stack");
  Shape total = parts.front().shape;
  if (total.ndim < 1) {
    return make_error(StatusCode::kInvalidArgument, "cannot stack '{}': it has no dimensions", parts.front().name);
  }
  for (size_t i = 1; i < parts.size(); ++i) {
    const Shape& shape = parts[i].shape;
    bool fits = shape.ndim == total.ndim;
    for (int d = 1; fits && d < shape.ndim; ++d) fits = shape[d] == total[d];
    if (!fits) {
      return make_error(StatusCode::kInvalidArgument, "cannot stack '{}' {} under '{}' {}: only the first dimension may differ",
                        parts[i].name, shape.to_string(), parts.front().name, parts.front().shape.to_string());
    }
    total[0] += shape[0];
  }
  return total;
}

Expected<Tensor> WeightSource::get_stacked(const std::vector<StackedPart>& parts) {
  RADIXLM_ASSIGN_OR_RETURN(Shape shape, stacked_shape(parts));
  // A checkpoint's get() is a view of the mapping, so holding every part costs no memory.
  std::vector<Tensor> tensors;
  tensors.reserve(parts.size());
  bool same_dtype = true;
  for (const StackedPart& part : parts) {
    RADIXLM_ASSIGN_OR_RETURN(Tensor tensor, get(part.name, part.shape));
    if (!tensor.view.is_contiguous()) {
      return make_error(StatusCode::kInvalidArgument, "tensor '{}' is not contiguous", part.name);
    }
    if (!tensors.empty() && tensor.dtype() != tensors.front().dtype()) same_dtype = false;
    tensors.push_back(std::move(tensor));
  }
  if (!same_dtype) {
    for (size_t i = 0; i < parts.size(); ++i) {
      if (!dtype_is_float(tensors[i].dtype())) {
        return make_error(StatusCode::kUnsupported, "cannot stack '{}' ({}) with tensors of other dtypes", parts[i].name,
                          dtype_name(tensors[i].dtype()));
      }
    }
  }
  const DType dtype = same_dtype ? tensors.front().dtype() : DType::kF32;
  Tensor out = alloc_host_uninitialized(dtype, shape);
  auto* dst = static_cast<uint8_t*>(out.view.data);
  for (const Tensor& tensor : tensors) {
    const auto count = static_cast<size_t>(tensor.view.numel());
    if (same_dtype) {
      std::memcpy(dst, tensor.view.data, tensor.view.nbytes());
    } else {
      convert_to_f32(tensor.dtype(), tensor.view.data, reinterpret_cast<float*>(dst), count);
    }
    dst += count * dtype_size(dtype);
  }
  return out;
}

}  // namespace radixlm
