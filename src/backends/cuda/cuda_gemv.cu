// The decode-shaped matmul out [T, N] = x [T, K] @ w [N, K]^T for T <= 8 tokens. At these shapes the
// matmul is a pure stream of the weights, so the kernel is written for bandwidth: each output row is one
// warp's (or, for narrow matrices, a few warps' splitting K); each lane issues several independent 16-byte
// weight loads
// (bypassing L1, which the weights would only pollute) before it uses any of them; the few activation rows
// stay in L1/L2 and are re-read for every weight row.

#include <algorithm>

#include "backends/cuda/cuda_common.cuh"
#include "backends/cuda/cuda_kernels.h"

namespace radixlm::cuda {
namespace {

constexpr int kWarps = 8;   // per block
constexpr int kUnroll = 8;  // independent 16-byte weight loads in flight per lane

__device__ __forceinline__ uint4 load_streaming(const uint4* address) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(address));
  return v;
}

__device__ __forceinline__ float dot8(const uint4& w, const uint4& x) {
  float sum = bf16_lo(w.x) * bf16_lo(x.x);
  sum = fmaf(bf16_hi(w.x), bf16_hi(x.x), sum);
  sum = fmaf(bf16_lo(w.y), bf16_lo(x.y), sum);
  sum = fmaf(bf16_hi(w.y), bf16_hi(x.y), sum);
  sum = fmaf(bf16_lo(w.z), bf16_lo(x.z), sum);
  sum = fmaf(bf16_hi(w.z), bf16_hi(x.z), sum);
  sum = fmaf(bf16_lo(w.w), bf16_lo(x.w), sum);
  sum = fmaf(bf16_hi(w.w), bf16_hi(x.w), sum);
  return sum;
}

// out[at], the value an accumulating matmul adds to, as f32.
__device__ __forceinline__ float output_value(const GemvParams& p, int64_t at) {
  return p.out_f32 ? static_cast<const float*>(p.out)[at] : bf16_bits_to_f32(static_cast<const uint16_t*>(p.out)[at]);
}
// out[at] (row n of its token) = sum + bias[n] + prior (the value added to), in out's type.
__device__ __forceinline__ void store_output(const GemvParams& p, int64_t n, int64_t at, float sum, float prior) {
  if (p.bias) sum += bf16_bits_to_f32(p.bias[n]);
  sum += prior;
  if (p.out_f32) {
    static_cast<float*>(p.out)[at] = sum;
  } else {
    static_cast<uint16_t*>(p.out)[at] = f32_to_bf16_bits(sum);
  }
}

template <int kLoads>
__device__ __forceinline__ void load_chunk(uint4 (&w)[kLoads], const uint4* w_row, int64_t base, int64_t end) {
#pragma unroll
  for (int u = 0; u < kLoads; ++u) {
    const int64_t i = base + 32 * u;
    w[u] = i < end ? load_streaming(w_row + i) : make_uint4(0, 0, 0, 0);
  }
}

// kWarpsPerRow warps share one output row (each a contiguous slice of K), so a narrow matrix (few rows)
// still puts enough loads in flight; a block holds kWarps / kWarpsPerRow rows.
// kLoads: 16-byte weight loads in flight per lane: kUnroll, or 4 where a lane's whole share of a row is at most 4
// chunks (at one token; shares of exactly 4 or 7 take the kExact form below). With one token the lane requests its
// x chunks four at a time before using any: written as one load per use, the compiler issued each x load only
// after the previous one had returned (Nsight Compute put ~20% of o_proj's stall samples there), and with kLoads 4
// a thread needs ~48 registers, so 5 blocks fit per SM instead of 4. On an H200 qkv_proj went from 3.24 to 3.49
// TB/s and o_proj from 2.89 to 3.14 (gate_up, down and lm_head unchanged); the batch-1 step from 4.29 to 4.22 ms.
// kExact (one token): every lane of a row owns exactly kLoads chunks, so its x loads need no bounds check. With 4
// (K = kWarpsPerRow * 1024: qkv, o_proj, gate_up and lm_head at the 8B shape) and 4 blocks per SM (61 registers)
// the compiler issues all four before the first product. With the check, or capped at 48 registers for 5 blocks,
// it issued each x load just before its use and waited a memory round trip for each. On an H200 (`bench linear`,
// one token) qkv_proj went from 3.48-3.51 to 3.87-3.91 TB/s and o_proj from 3.13-3.15 to 3.63-3.67; the batch-1
// step from 4.190-4.195 to 4.064-4.070 ms. (The same loads under the 5-block cap spilled and ran at 3.14 / 2.98
// TB/s.) The same holds for exactly 7 chunks per lane (down_proj: K = 14336 at 8 warps per row; 3 blocks per SM,
// 80 registers): 4.09-4.10 against 3.87-3.88 TB/s, the batch-1 step 3.948-3.961 against 4.008-4.023 ms.
template <int kTokens, int kWarpsPerRow, int kLoads = kUnroll, bool kExact = false>
__global__ void __launch_bounds__(kWarps * 32,
                                  kTokens > 1 ? 0 : kExact ? (kLoads <= 4 ? 4 : 3) : kLoads <= 4 ? 5 : 4)
    gemv_kernel(GemvParams p) {
  static_assert(!kExact || kTokens == 1, "exact shares are a one-token layout");
  constexpr int kRowsPerBlock = kWarps / kWarpsPerRow;
  __shared__ float partial[kWarps][kTokens];
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  // With silu_pairs, the block's first half of rows are gate rows and the second half the matching up rows.
  constexpr int kPairsPerBlock = kRowsPerBlock / 2;
  const int block_row = warp / kWarpsPerRow;
  int64_t n = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + block_row;
  if constexpr (kPairsPerBlock > 0) {  // launch_tokens never pairs with one row per block
    if (p.silu_pairs > 0) {
      const int64_t column = static_cast<int64_t>(blockIdx.x) * kPairsPerBlock + block_row % kPairsPerBlock;
      n = column >= p.silu_pairs ? p.n : block_row < kPairsPerBlock ? column : p.silu_pairs + column;
    }
  }
  const int part = warp % kWarpsPerRow;
  const int64_t k8 = p.k / 8;
  const int64_t per_part = (k8 + kWarpsPerRow - 1) / kWarpsPerRow;
  const int64_t begin = part * per_part;
  const int64_t end = n < p.n ? (begin + per_part < k8 ? begin + per_part : k8) : begin;  // rows past N: no work
  const auto* w_row = reinterpret_cast<const uint4*>(p.w + (n < p.n ? n : 0) * p.k);
  const auto* x_rows = reinterpret_cast<const uint4*>(p.x);

  // The first chunk of weights is loaded before waiting for the kernel ahead (a programmatic dependent,
  // cuda_common.cuh): at decode shapes that is most or all of a block's weights, streamed while the
  // norm/attention/matmul ahead still finishes. Only then may x and the output be touched.
  uint4 w[kLoads];
  const int64_t first = begin + lane;
  load_chunk(w, w_row, first, end);
  pdl_wait();
  pdl_launch_dependents();  // past the wait: the next GEMV may now start streaming

  // With accumulate, the output value added to is read before the weights stream, not after: a load issued
  // in the epilogue would add a memory round trip to every matmul's tail.
  const int out_row = static_cast<int>(threadIdx.x) / kTokens, out_token = static_cast<int>(threadIdx.x) % kTokens;
  const int64_t out_n = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + out_row;
  const int64_t out_at = out_token * p.n + out_n;
  const bool writes_output = static_cast<int>(threadIdx.x) < kRowsPerBlock * kTokens && out_n < p.n;
  const float prior = p.accumulate && writes_output ? output_value(p, out_at) : 0.0f;

  float acc[kTokens];
#pragma unroll
  for (int t = 0; t < kTokens; ++t) acc[t] = 0.0f;
  for (int64_t base = first; base < end; base += 32 * kLoads) {
    if (base != first) load_chunk(w, w_row, base, end);
    if constexpr (kTokens == 1) {
#pragma unroll
      for (int group = 0; group < kLoads; group += 4) {  // x chunks requested four at a time
        uint4 x[4];
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          const int64_t i = base + 32 * (group + u);
          if constexpr (kExact) {  // every chunk below kLoads is the lane's
            x[u] = group + u < kLoads ? __ldg(x_rows + i) : make_uint4(0, 0, 0, 0);
          } else {
            x[u] = group + u < kLoads && i < end ? __ldg(x_rows + i) : make_uint4(0, 0, 0, 0);
          }
        }
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          if (group + u < kLoads) acc[0] += dot8(w[group + u], x[u]);
        }
      }
    } else {
#pragma unroll
      for (int u = 0; u < kLoads; ++u) {
        const int64_t i = base + 32 * u;
        if (i < end) {
#pragma unroll
          for (int t = 0; t < kTokens; ++t) acc[t] += dot8(w[u], __ldg(x_rows + t * k8 + i));
        }
      }
    }
  }
#pragma unroll
  for (int t = 0; t < kTokens; ++t) {
    const float sum = warp_sum(acc[t]);
    if (lane == 0) partial[warp][t] = sum;
  }
  __syncthreads();
  if constexpr (kPairsPerBlock > 0) {
    if (p.silu_pairs > 0) {
      if (static_cast<int>(threadIdx.x) < kPairsPerBlock * kTokens) {
        const int row = static_cast<int>(threadIdx.x) / kTokens, t = static_cast<int>(threadIdx.x) % kTokens;
        const int64_t column = static_cast<int64_t>(blockIdx.x) * kPairsPerBlock + row;
        if (column < p.silu_pairs) {
          float gate = 0.0f, up = 0.0f;
#pragma unroll
          for (int part_w = 0; part_w < kWarpsPerRow; ++part_w) {
            gate += partial[row * kWarpsPerRow + part_w][t];
            up += partial[(row + kPairsPerBlock) * kWarpsPerRow + part_w][t];
          }
          if (p.bias) {
            gate += bf16_bits_to_f32(p.bias[column]);
            up += bf16_bits_to_f32(p.bias[p.silu_pairs + column]);
          }
          // Rounded to bf16 first, then silu_and_mul's math: the same bits as the two ops apart.
          gate = bf16_bits_to_f32(f32_to_bf16_bits(gate));
          up = bf16_bits_to_f32(f32_to_bf16_bits(up));
          static_cast<uint16_t*>(p.out)[t * p.silu_pairs + column] =
              f32_to_bf16_bits(gate / (1.0f + expf(-gate)) * up);
        }
      }
      return;
    }
  }
  if (writes_output) {
    float sum = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarpsPerRow; ++w) sum += partial[out_row * kWarpsPerRow + w][out_token];
    store_output(p, out_n, out_at, sum, prior);
  }
}

// One token with exact shares (as gemv_kernel's kExact), each warp computing two rows that share its x
// registers: row group g of a block owns rows g and g + kGroups, so a block streams twice the weights per
// x load, barrier and launch. Same sums in the same order as gemv_kernel (the same bits). At 7 chunks per
// lane (down_proj; 120 registers, 2 blocks per SM) on an H200: 4.28 against 4.10 TB/s, the batch-1 step
// 3.881-3.884 against 3.904-3.905 ms. At 4 chunks (qkv_proj, o_proj, lm_head; 3 blocks per SM) it gained
// nothing (3.94 / 3.68 / 4.63 against 3.92 / 3.67 / 4.63 TB/s, the step unchanged), so those keep gemv_kernel.
template <int kWarpsPerRow, int kLoads>
__global__ void __launch_bounds__(kWarps * 32, 2) gemv_two_rows_kernel(GemvParams p) {
  constexpr int kGroups = kWarps / kWarpsPerRow;
  constexpr int kRowsPerBlock = 2 * kGroups;
  __shared__ float partial[kWarps][2];
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int group = warp / kWarpsPerRow, part = warp % kWarpsPerRow;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + group, n1 = n0 + kGroups;
  const int64_t first = part * (p.k / 8 / kWarpsPerRow) + lane;
  // A row past N streams the last row instead (its sums are never stored): no branch before the loads.
  const auto* w0 = reinterpret_cast<const uint4*>(p.w + (n0 < p.n ? n0 : p.n - 1) * p.k);
  const auto* w1 = reinterpret_cast<const uint4*>(p.w + (n1 < p.n ? n1 : p.n - 1) * p.k);
  uint4 a[kLoads], b[kLoads];
#pragma unroll
  for (int u = 0; u < kLoads; ++u) {
    a[u] = load_streaming(w0 + first + 32 * u);
    b[u] = load_streaming(w1 + first + 32 * u);
  }
  pdl_wait();
  pdl_launch_dependents();  // past the wait: the next GEMV may now start streaming

  const int out_row = static_cast<int>(threadIdx.x);
  const int64_t out_n = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + out_row;
  const bool writes_output = out_row < kRowsPerBlock && out_n < p.n;
  const float prior = p.accumulate && writes_output ? output_value(p, out_n) : 0.0f;
  const auto* x_row = reinterpret_cast<const uint4*>(p.x);
  float acc0 = 0.0f, acc1 = 0.0f;
#pragma unroll
  for (int g = 0; g < kLoads; g += 4) {  // x chunks requested four at a time
    uint4 x[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) x[u] = g + u < kLoads ? __ldg(x_row + first + 32 * (g + u)) : make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      if (g + u < kLoads) {
        acc0 += dot8(a[g + u], x[u]);
        acc1 += dot8(b[g + u], x[u]);
      }
    }
  }
  const float sum0 = warp_sum(acc0), sum1 = warp_sum(acc1);
  if (lane == 0) {
    partial[warp][0] = sum0;
    partial[warp][1] = sum1;
  }
  __syncthreads();
  if (writes_output) {
    const int r = out_row / kGroups, g = out_row % kGroups;
    float sum = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarpsPerRow; ++w) sum += partial[g * kWarpsPerRow + w][r];
    store_output(p, out_n, out_n, sum, prior);
  }
}

template <int kTokens, int kWarpsPerRow>
void launch_split(const GemvParams& p, cudaStream_t stream) {
  constexpr int kRowsPerBlock = kWarps / kWarpsPerRow;
  const unsigned int blocks = p.silu_pairs > 0 ? ceil_div_u(p.silu_pairs, kRowsPerBlock / 2) : ceil_div_u(p.n, kRowsPerBlock);
  if constexpr (kTokens == 1) {
    const int64_t chunks_per_lane = ((p.k / 8 + kWarpsPerRow - 1) / kWarpsPerRow + 31) / 32;
    if (p.k / 8 == kWarpsPerRow * 32 * 7 && p.silu_pairs == 0) {  // down_proj at the 8B shape
      const unsigned int pair_blocks = ceil_div_u(p.n, 2 * (kWarps / kWarpsPerRow));
      launch_programmatic(gemv_two_rows_kernel<kWarpsPerRow, 7>, dim3(pair_blocks), dim3(kWarps * 32), 0, stream, p);
      return;
    }
    if (p.k / 8 == kWarpsPerRow * 32 * 4) {
      launch_programmatic(gemv_kernel<1, kWarpsPerRow, 4, true>, dim3(blocks), dim3(kWarps * 32), 0, stream, p);
      return;
    }
    if (p.k / 8 == kWarpsPerRow * 32 * 7) {  // the same shares with silu pairs
      launch_programmatic(gemv_kernel<1, kWarpsPerRow, 7, true>, dim3(blocks), dim3(kWarps * 32), 0, stream, p);
      return;
    }
    if (chunks_per_lane <= 4) {
      launch_programmatic(gemv_kernel<1, kWarpsPerRow, 4>, dim3(blocks), dim3(kWarps * 32), 0, stream, p);
      return;
    }
  }
  launch_programmatic(gemv_kernel<kTokens, kWarpsPerRow>, dim3(blocks), dim3(kWarps * 32), 0, stream, p);
}

template <int kTokens>
void launch_tokens(const GemvParams& p, cudaStream_t stream) {
  int warps_per_row = p.warps_per_row;
  if (warps_per_row == 0) {
    // Measured on an H200 (bench linear, docs/performance.md): 8 warps per row when rows are long (K >= 8192)
    // or few, else 4. Wide matrices once ran best with 2; since x is loaded in groups of four, 4 streams
    // gate_up at one token at 4.34-4.36 TB/s against 4.22-4.25 with 2 (lm_head 4.55 either way, 8 tokens
    // the same for every split).
    if (p.k >= 8192 || p.n < 1024) {
      warps_per_row = 8;
    } else {
      warps_per_row = 4;
    }
  }
  if (p.silu_pairs > 0) warps_per_row = std::min(warps_per_row, 4);  // a block must hold a gate and an up row
  switch (warps_per_row) {
    case 1: launch_split<kTokens, 1>(p, stream); break;
    case 2: launch_split<kTokens, 2>(p, stream); break;
    case 4: launch_split<kTokens, 4>(p, stream); break;
    default: launch_split<kTokens, 8>(p, stream); break;
  }
}

}  // namespace

void launch_gemv(const GemvParams& p, cudaStream_t stream) {
  if (p.n == 0) return;
  switch (p.tokens) {
    case 1: launch_tokens<1>(p, stream); break;
    case 2: launch_tokens<2>(p, stream); break;
    case 3: launch_tokens<3>(p, stream); break;
    case 4: launch_tokens<4>(p, stream); break;
    case 5: launch_tokens<5>(p, stream); break;
    case 6: launch_tokens<6>(p, stream); break;
    case 7: launch_tokens<7>(p, stream); break;
    case 8: launch_tokens<8>(p, stream); break;
    default: break;  // the caller routes other token counts to cuBLASLt
  }
}

}  // namespace radixlm::cuda
