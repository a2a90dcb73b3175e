#pragma once
// Splitting a fused projection's output: the column blocks of x [rows, width] copied into separate
// contiguous tensors (q, k, v out of one q|k|v matmul). bf16 as uint16_t bit patterns; a pure copy, so the
// result is bit-exact. Only enqueues work on `stream` (graph-capturable).

#include <cstdint>

#include <cuda_runtime.h>

namespace radixlm::cuda {

inline constexpr int kMaxSplitParts = 4;

struct SplitColumnsParams {
  const uint16_t* x = nullptr;  // [rows, width], contiguous
  int64_t rows = 0;
  int64_t width = 0;            // the sum of widths[0..parts)
  uint16_t* out[kMaxSplitParts] = {};  // out[i]: [rows, widths[i]], contiguous
  int64_t widths[kMaxSplitParts] = {};
  int32_t parts = 0;
};

void launch_split_columns(const SplitColumnsParams& p, cudaStream_t stream);

}  // namespace radixlm::cuda
