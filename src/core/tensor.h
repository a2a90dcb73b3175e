#pragma once
// Tensor views: a pointer plus shape, strides (in elements) and dtype, on some device. A view owns nothing;
// `Tensor` adds shared ownership of the storage so a view can outlive the code that allocated it.

#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>

#include "core/dtype.h"
#include "core/status.h"

namespace radixlm {

enum class Device : uint8_t { kCpu, kCuda };

inline constexpr int kMaxTensorDims = 6;

struct Shape {
  std::array<int64_t, kMaxTensorDims> dims{};
  int ndim = 0;

  Shape() = default;
  Shape(std::initializer_list<int64_t> list) {
    RADIXLM_CHECK(list.size() <= kMaxTensorDims);
    for (int64_t d : list) dims[ndim++] = d;
  }
  int64_t operator[](int i) const { return dims[i]; }
  int64_t& operator[](int i) { return dims[i]; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= dims[i];
    return n;
  }
  bool operator==(const Shape& other) const {
    if (ndim != other.ndim) return false;
    for (int i = 0; i < ndim; ++i) {
      if (dims[i] != other.dims[i]) return false;
    }
    return true;
  }
  std::string to_string() const;  // "[4, 128]"
};

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::kF32;
  Device device = Device::kCpu;
  Shape shape;
  std::array<int64_t, kMaxTensorDims> strides{};  // in elements

  TensorView() = default;
  // A contiguous (row-major) view.
  TensorView(void* data, DType dtype, Shape shape, Device device = Device::kCpu);

  int ndim() const { return shape.ndim; }
  int64_t size(int dim) const { return shape[dim < 0 ? dim + shape.ndim : dim]; }
  int64_t numel() const { return shape.numel(); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  bool is_contiguous() const;
  // 2-D with each row's elements contiguous, rows any distance >= the width apart (a column block of a
  // wider matrix, or contiguous). row_stride() is that distance in elements.
  bool is_row_strided() const;
  int64_t row_stride() const { return strides[0]; }

  template <typename T>
  T* as() const { return static_cast<T*>(data); }

  // Rows [begin, end) of the first dimension; stays contiguous if this is.
  TensorView slice_rows(int64_t begin, int64_t end) const;
  // Columns [begin, begin + width) of a 2-D view with contiguous rows: row-strided, not a copy.
  TensorView columns(int64_t begin, int64_t width) const;
  // Same data, another contiguous shape with the same element count.
  TensorView reshape(Shape new_shape) const;
};

// A view plus shared ownership of whatever backs it (host buffer, device allocation, mmap).
struct Tensor {
  TensorView view;
  std::shared_ptr<void> storage;

  Tensor() = default;
  Tensor(TensorView v, std::shared_ptr<void> s) : view(v), storage(std::move(s)) {}
  bool defined() const { return storage != nullptr || view.data != nullptr; }
  operator const TensorView&() const { return view; }  // NOLINT: a Tensor is usable wherever a view is
  const Shape& shape() const { return view.shape; }
  DType dtype() const { return view.dtype; }
  template <typename T>
  T* as() const { return view.as<T>(); }
};

// Contiguous host memory aligned for vector loads, zero-filled.
Tensor alloc_host_tensor(DType dtype, Shape shape);

}  // namespace radixlm
