// L2 prefetch of a weight that a matmul reads soon. A decode step at small batches alternates
// bandwidth-bound matmuls with latency-bound ops (norms, RoPE, attention) during which HBM is mostly idle;
// starting the next matmul's weights toward L2 there (Hopper's bulk prefetch: one instruction per chunk,
// handled by the SM's copy engine, nothing to wait for) lets that matmul start on L2 hits instead of paying
// its ramp from HBM. A hint only: results never depend on it.

#include <algorithm>

#include "backends/cuda/cuda_common.cuh"
#include "backends/cuda/cuda_kernels.h"

namespace radixlm::cuda {
namespace {

constexpr int kThreads = 128;
constexpr uint32_t kChunkBytes = 32 * 1024;  // per bulk prefetch instruction
constexpr unsigned int kMaxBlocks = 16;

__global__ void __launch_bounds__(kThreads) prefetch_l2_kernel(const uint8_t* data, uint64_t bytes) {
#if __CUDA_ARCH__ >= 900
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * kThreads * kChunkBytes;
  for (uint64_t at = (static_cast<uint64_t>(blockIdx.x) * kThreads + threadIdx.x) * kChunkBytes; at < bytes;
       at += stride) {
    const auto size = static_cast<uint32_t>(bytes - at < kChunkBytes ? bytes - at : kChunkBytes);
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(data + at), "r"(size) : "memory");
  }
#endif
}

}  // namespace

void launch_prefetch_l2(const void* data, uint64_t bytes, cudaStream_t stream) {
  bytes &= ~uint64_t{15};  // the instruction takes whole 16-byte units
  if (bytes == 0 || reinterpret_cast<uintptr_t>(data) % 16 != 0) return;
  const uint64_t chunks = (bytes + kChunkBytes - 1) / kChunkBytes;
  const auto blocks = static_cast<unsigned int>(std::min<uint64_t>(kMaxBlocks, (chunks + kThreads - 1) / kThreads));
  prefetch_l2_kernel<<<blocks, kThreads, 0, stream>>>(static_cast<const uint8_t*>(data), bytes);
}

}  // namespace radixlm::cuda
