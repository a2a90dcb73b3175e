#include "loader/host_buffer.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

namespace radixlm {

namespace {
constexpr size_t kHugePageBytes = size_t{2} << 20;
constexpr size_t kAlignment = 64;
}  // namespace

Tensor alloc_host_uninitialized(DType dtype, const Shape& shape) {
  const size_t bytes = static_cast<size_t>(shape.numel()) * dtype_size(dtype);
  if (bytes >= kHugePageBytes) {
    void* data = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    RADIXLM_CHECK(data != MAP_FAILED, "out of host memory mapping {} bytes for weights", bytes);
    ::madvise(data, bytes, MADV_HUGEPAGE);
    std::shared_ptr<void> storage(data, [bytes](void* p) { ::munmap(p, bytes); });
    return Tensor(TensorView(data, dtype, shape, Device::kCpu), std::move(storage));
  }
  const size_t rounded = std::max(kAlignment, (bytes + kAlignment - 1) / kAlignment * kAlignment);
  void* data = std::aligned_alloc(kAlignment, rounded);
  RADIXLM_CHECK(data != nullptr, "out of host memory allocating {} bytes for weights", bytes);
  std::shared_ptr<void> storage(data, [](void* p) { std::free(p); });
  return Tensor(TensorView(data, dtype, shape, Device::kCpu), std::move(storage));
}

}  // namespace radixlm
