#pragma once
// out [M, N] = x [M, K] @ w [N, K]^T (+ bias) for small M (2..kSmallMGemmMaxTokens): a tensor-core GEMM
// shaped for weight bandwidth, for decode batches where cuBLASLt streams the weights well below the HBM
// ceiling. See cuda_small_m_gemm.cu for the design.

#include <cstdint>

#include <cuda_runtime.h>

namespace radixlm::cuda {

inline constexpr int kSmallMGemmMaxTokens = 128;

struct SmallMGemmParams {
  const uint16_t* x = nullptr;     // [tokens, k] bf16, 16-byte aligned
  const uint16_t* w = nullptr;     // [n, k] bf16, 16-byte aligned
  const uint16_t* bias = nullptr;  // [n] bf16, or null
  void* out = nullptr;             // [tokens, n], bf16 or f32 by out_f32
  bool out_f32 = false;
  int32_t tokens = 0;
  int64_t n = 0;
  int64_t k = 0;      // a multiple of 8
  int32_t splits = 0;  // K splits per weight tile (1, 2, 4 or 8); 0 picks by shape (RADIXLM_SMALL_M_SPLITS overrides)
};

// Whether the kernel takes this shape: 1 <= tokens <= kSmallMGemmMaxTokens, k % 8 == 0, aligned x and w.
bool small_m_gemm_supports(const SmallMGemmParams& p);
// Device facts and the kernels' shared-memory limits, once per process; call it before a CUDA graph capture
// may reach the first launch (launch_small_m_gemm calls it too).
cudaError_t prepare_small_m_gemm();
// Queues the kernel on `stream`; returns the launch's error (a bad configuration), as cudaGetLastError would.
cudaError_t launch_small_m_gemm(const SmallMGemmParams& p, cudaStream_t stream);

}  // namespace radixlm::cuda
