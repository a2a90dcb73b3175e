// split_columns: each thread moves units (16 bytes = 8 bf16 when every width and pointer allows it, else one
// element) to the output whose column block holds them. The block of a unit is found by comparing against at
// most three boundaries, unrolled, so the parameter arrays are only read at constant indices (no local-memory
// copy of the kernel arguments).
// Default: a 2-D grid (column blocks, rows) where a thread owns one column, so the output block is chosen
// once and no index is divided. RADIXLM_CUDA_ELEMENTWISE=legacy selects the earlier grid-stride kernel over
// rows * columns (a 64-bit division and modulo per unit), kept for A/B timing until the new one is proven.

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "backends/cuda/cuda_split.h"

namespace radixlm::cuda {
namespace {

constexpr int kSplitThreads = 256;

template <typename Unit>
struct SplitUnits {
  const Unit* x = nullptr;
  Unit* out[kMaxSplitParts] = {};
  int64_t start[kMaxSplitParts] = {};  // first column (in units) of each block; past the end when unused
  int64_t width[kMaxSplitParts] = {};  // columns (in units) of each block
  int64_t rows = 0;
  int64_t row_units = 0;
};

template <typename Unit>
__global__ void split_columns_kernel(SplitUnits<Unit> s) {
  const int64_t total = s.rows * s.row_units;
  for (int64_t u = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; u < total;
       u += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = u / s.row_units, c = u % s.row_units;
    Unit* dst = s.out[0];
    int64_t start = 0, width = s.width[0];
#pragma unroll
    for (int i = 1; i < kMaxSplitParts; ++i) {
      if (c >= s.start[i]) {
        dst = s.out[i];
        start = s.start[i];
        width = s.width[i];
      }
    }
    dst[r * width + (c - start)] = s.x[u];
  }
}

template <typename Unit>
__global__ void split_columns_rows_kernel(SplitUnits<Unit> s) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= s.row_units) return;
  Unit* dst = s.out[0];
  int64_t start = 0, width = s.width[0];
#pragma unroll
  for (int i = 1; i < kMaxSplitParts; ++i) {
    if (c >= s.start[i]) {
      dst = s.out[i];
      start = s.start[i];
      width = s.width[i];
    }
  }
  dst += c - start;
  for (int64_t r = blockIdx.y; r < s.rows; r += gridDim.y) dst[r * width] = s.x[r * s.row_units + c];
}

bool legacy_split() {
  const char* env = std::getenv("RADIXLM_CUDA_ELEMENTWISE");
  return env != nullptr && std::strcmp(env, "legacy") == 0;
}

template <typename Unit>
void launch_units(const SplitColumnsParams& p, int64_t elements_per_unit, cudaStream_t stream) {
  SplitUnits<Unit> s;
  s.x = reinterpret_cast<const Unit*>(p.x);
  s.rows = p.rows;
  s.row_units = p.width / elements_per_unit;
  int64_t start = 0;
  for (int i = 0; i < kMaxSplitParts; ++i) {
    if (i < p.parts) {
      s.out[i] = reinterpret_cast<Unit*>(p.out[i]);
      s.start[i] = start;
      s.width[i] = p.widths[i] / elements_per_unit;
      start += s.width[i];
    } else {
      s.out[i] = s.out[0];  // never chosen: its start is past every column
      s.start[i] = std::numeric_limits<int64_t>::max();
      s.width[i] = 1;
    }
  }
  if (!legacy_split()) {
    // Whole warps, no wider than a row needs, so narrow rows do not leave most threads idle.
    const int threads = static_cast<int>(std::min<int64_t>(kSplitThreads, (s.row_units + 31) / 32 * 32));
    const dim3 grid(static_cast<unsigned int>((s.row_units + threads - 1) / threads),
                    static_cast<unsigned int>(std::min<int64_t>(s.rows, 65535)));
    split_columns_rows_kernel<Unit><<<grid, threads, 0, stream>>>(s);
    return;
  }
  const int64_t total = s.rows * s.row_units;
  const int64_t blocks = std::min<int64_t>((total + kSplitThreads - 1) / kSplitThreads, 65536);
  split_columns_kernel<Unit><<<static_cast<unsigned int>(blocks), kSplitThreads, 0, stream>>>(s);
}

}  // namespace

void launch_split_columns(const SplitColumnsParams& p, cudaStream_t stream) {
  if (p.rows == 0 || p.width == 0 || p.parts <= 0 || p.parts > kMaxSplitParts) return;  // checked by the caller
  bool vector = p.width % 8 == 0 && reinterpret_cast<uintptr_t>(p.x) % 16 == 0;
  for (int i = 0; i < p.parts; ++i) {
    vector = vector && p.widths[i] % 8 == 0 && reinterpret_cast<uintptr_t>(p.out[i]) % 16 == 0;
  }
  if (vector) {
    launch_units<uint4>(p, 8, stream);
  } else {
    launch_units<uint16_t>(p, 1, stream);
  }
}

}  // namespace radixlm::cuda
