#include "core/tensor.h"

#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

namespace radixlm {

std::string Shape::to_string() const {
  std::string out = "[";
  for (int i = 0; i < ndim; ++i) out += fmt::format("{}{}", i ? ", " : "", dims[i]);
  return out + "]";
}

TensorView::TensorView(void* data_in, DType dtype_in, Shape shape_in, Device device_in)
    : data(data_in), dtype(dtype_in), device(device_in), shape(shape_in) {
  int64_t stride = 1;
  for (int i = shape.ndim - 1; i >= 0; --i) {
    strides[i] = stride;
    stride *= shape[i];
  }
}

bool TensorView::is_contiguous() const {
  int64_t stride = 1;
  for (int i = shape.ndim - 1; i >= 0; --i) {
    if (shape[i] != 1 && strides[i] != stride) return false;
    stride *= shape[i];
  }
  return true;
}

bool TensorView::is_row_strided() const {
  return shape.ndim == 2 && (shape[1] == 1 || strides[1] == 1) && (shape[0] == 1 || strides[0] >= shape[1]);
}

TensorView TensorView::columns(int64_t begin, int64_t width) const {
  RADIXLM_CHECK(is_row_strided() && 0 <= begin && 0 <= width && begin + width <= shape[1], "columns [{}, {}) of {}",
                begin, begin + width, shape.to_string());
  TensorView out = *this;
  out.shape[1] = width;
  out.strides[1] = 1;
  out.data = static_cast<char*>(data) + begin * static_cast<int64_t>(dtype_size(dtype));
  return out;
}

TensorView TensorView::slice_rows(int64_t begin, int64_t end) const {
  RADIXLM_CHECK(shape.ndim >= 1 && 0 <= begin && begin <= end && end <= shape[0]);
  TensorView out = *this;
  out.shape[0] = end - begin;
  out.data = static_cast<char*>(data) + begin * strides[0] * static_cast<int64_t>(dtype_size(dtype));
  return out;
}

TensorView TensorView::reshape(Shape new_shape) const {
  RADIXLM_CHECK(is_contiguous() && new_shape.numel() == numel(), "reshape {} -> {}", shape.to_string(),
                new_shape.to_string());
  return TensorView(data, dtype, new_shape, device);
}

Tensor alloc_host_tensor(DType dtype, Shape shape) {
  constexpr size_t kAlignment = 64;
  const size_t bytes = static_cast<size_t>(shape.numel()) * dtype_size(dtype);
  const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* data = std::aligned_alloc(kAlignment, rounded == 0 ? kAlignment : rounded);
  RADIXLM_CHECK(data != nullptr, "out of host memory allocating {} bytes", bytes);
  std::memset(data, 0, rounded == 0 ? kAlignment : rounded);
  std::shared_ptr<void> storage(data, [](void* p) { std::free(p); });
  return Tensor(TensorView(data, dtype, shape, Device::kCpu), std::move(storage));
}

}  // namespace radixlm
