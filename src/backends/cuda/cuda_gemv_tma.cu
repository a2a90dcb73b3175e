// The decode-shaped matmul out [T, N] = x [T, K] @ w [N, K]^T on Hopper: a persistent weight stream fed by
// the copy engine. Each warp owns a contiguous run of output rows (N / warps, at most one row more than
// another warp) and streams those rows' weights through its own ring of kStages 4 KB pieces in shared memory
// with cp.async.bulk, so a warp keeps up to 16 KB in flight from its first row to its last: no block ends
// and restarts between rows, and no wave of short blocks leaves the DRAM idle at its tail (what holds the
// block-per-row kernel of cuda_gemv.cu at 2.9-3.3 TB/s on the 4096-wide matrices of an 8B model).
// The few activation rows are read through L1 (__ldg), as there.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "backends/cuda/cuda_common.cuh"
#include "backends/cuda/cuda_kernels.h"
#include "backends/cuda/cuda_mbarrier.cuh"

namespace radixlm::cuda {
namespace {

constexpr int kWarps = 4;         // per block
constexpr int kStages = 4;        // pieces in flight per warp
constexpr int kPiece = 2048;      // bf16 weights per piece: 4 KB of one row
constexpr int kWarpsPerSm = 8;    // warps per SM in a launch (2 blocks; a third fits beside for the next kernel)

struct Smem {
  uint4 piece[kWarps][kStages][kPiece / 8];
  uint64_t full[kWarps][kStages];
};
constexpr size_t kSmemBytes = sizeof(Smem);

// The device helpers exist only where the kernel has a body (sm_90 and up; elsewhere it is never launched).
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900
constexpr int kPerLane = kPiece / 8 / 32;  // 16-byte loads per lane and piece

// Where a warp's stream stands: the unit (an output row, or with silu_pairs a gate row and its up row), the
// row within the unit, and the piece within the row. Advanced one piece at a time, with no division.
struct Cursor {
  int64_t unit;
  int row_in_unit = 0;
  int64_t piece = 0;

  __device__ __forceinline__ void advance(int64_t pieces_per_row, int rows_per_unit) {
    if (++piece < pieces_per_row) return;
    piece = 0;
    if (++row_in_unit < rows_per_unit) return;
    row_in_unit = 0;
    ++unit;
  }
  __device__ __forceinline__ int64_t row(const GemvParams& p) const {
    return row_in_unit == 0 ? unit : p.silu_pairs + unit;
  }
};

__device__ __forceinline__ int64_t piece_elements(const GemvParams& p, int64_t piece) {
  return std::min<int64_t>(kPiece, p.k - piece * kPiece);
}

// Lane 0 only: the piece at `at` into stage `stage` of this warp's ring.
__device__ __forceinline__ void issue(Smem& s, int warp, int stage, const GemvParams& p, const Cursor& at) {
  const auto bytes = static_cast<uint32_t>(piece_elements(p, at.piece) * 2);
  mbarrier_arrive_expect_tx(&s.full[warp][stage], bytes);
  bulk_copy(&s.piece[warp][stage][0], p.w + at.row(p) * p.k + at.piece * kPiece, bytes, &s.full[warp][stage]);
}

// Every lane: its own 16-byte chunks (lane + 32u) of the piece, by cp.async (the lane reads back only what it
// copied, so its own wait_group is all the synchronisation), as one commit group.
__device__ __forceinline__ void issue_lanes(Smem& s, int warp, int stage, int lane, const GemvParams& p,
                                            const Cursor& at) {
  const int64_t length8 = piece_elements(p, at.piece) / 8;
  const auto* src = reinterpret_cast<const uint4*>(p.w + at.row(p) * p.k + at.piece * kPiece);
#pragma unroll
  for (int u = 0; u < kPerLane; ++u) {
    const int i = lane + 32 * u;
    if (i < length8) {
      asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(smem_address(&s.piece[warp][stage][i])),
                   "l"(src + i)
                   : "memory");
    }
  }
}
__device__ __forceinline__ void commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }

// Holds the compiler to having the loaded values in registers here, before the stage is handed back to the
// copy engine (the loads must not be sunk past the re-issue into the same shared memory).
__device__ __forceinline__ void pin(uint4 (&w)[kPerLane]) {
#pragma unroll
  for (int u = 0; u < kPerLane; ++u) asm volatile("" : "+r"(w[u].x), "+r"(w[u].y), "+r"(w[u].z), "+r"(w[u].w)::"memory");
}

__device__ __forceinline__ float silu_times(float gate, float up) {
  // Rounded to bf16 first, then silu_and_mul's math: the same bits as the two ops apart.
  gate = bf16_bits_to_f32(f32_to_bf16_bits(gate));
  up = bf16_bits_to_f32(f32_to_bf16_bits(up));
  return gate / (1.0f + expf(-gate)) * up;
}

#endif

template <int kTokens, bool kBulk>
__global__ void __launch_bounds__(kWarps * 32) gemv_tma_kernel(GemvParams p, int64_t total_warps) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  extern __shared__ __align__(128) unsigned char smem_raw[];
  Smem& s = *reinterpret_cast<Smem*>(smem_raw);
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int64_t global_warp = static_cast<int64_t>(blockIdx.x) * kWarps + warp;
  const bool silu = p.silu_pairs > 0;
  const int rows_per_unit = silu ? 2 : 1;
  const int64_t units = silu ? p.silu_pairs : p.n;
  const int64_t first_unit = global_warp < total_warps ? global_warp * units / total_warps : units;
  const int64_t end_unit = global_warp < total_warps ? (global_warp + 1) * units / total_warps : units;
  const int64_t pieces_per_row = (p.k + kPiece - 1) / kPiece;
  const int64_t pieces = (end_unit - first_unit) * rows_per_unit * pieces_per_row;

  // The weights stream before waiting for the kernel ahead (a programmatic dependent, cuda_common.cuh):
  // nothing in the step writes them. Only then may x and the output be touched.
  Cursor issued{first_unit};
  if constexpr (kBulk) {
    if (lane == 0) {
      for (int i = 0; i < kStages; ++i) mbarrier_init(&s.full[warp][i], 1);
      fence_mbarrier_init();
      for (int64_t g = 0; g < std::min<int64_t>(kStages, pieces); ++g) {
        issue(s, warp, static_cast<int>(g), p, issued);
        issued.advance(pieces_per_row, rows_per_unit);
      }
    }
    __syncwarp();
  } else {
    for (int64_t g = 0; g < kStages; ++g) {  // a group per stage, empty past the last piece
      if (g < pieces) {
        issue_lanes(s, warp, static_cast<int>(g), lane, p, issued);
        issued.advance(pieces_per_row, rows_per_unit);
      }
      commit();
    }
  }
  pdl_wait();
  pdl_launch_dependents();  // past the wait: the next kernel may now start

  const int64_t k8 = p.k / 8;
  const auto* x_rows = reinterpret_cast<const uint4*>(p.x);
  float acc[kTokens], gate[kTokens];
#pragma unroll
  for (int t = 0; t < kTokens; ++t) acc[t] = gate[t] = 0.0f;
  float prior = 0.0f;
  Cursor at{first_unit};
  for (int64_t g = 0; g < pieces; ++g) {
    const int stage = static_cast<int>(g % kStages);
    const int64_t row = at.row(p);
    // With accumulate, lane t reads the output it adds to at the row's start: the load's latency hides
    // behind the row's pieces instead of stalling the stream at its end.
    if (p.accumulate && at.piece == 0 && lane < kTokens) {
      const int64_t o = static_cast<int64_t>(lane) * p.n + row;
      prior = p.out_f32 ? static_cast<const float*>(p.out)[o] : bf16_bits_to_f32(static_cast<const uint16_t*>(p.out)[o]);
    }
    const int64_t length8 = piece_elements(p, at.piece) / 8;
    if constexpr (kBulk) {
      mbarrier_wait(&s.full[warp][stage], static_cast<uint32_t>(g / kStages) & 1u);
    } else {
      asm volatile("cp.async.wait_group %0;" ::"n"(kStages - 1) : "memory");
    }
    uint4 w[kPerLane];
#pragma unroll
    for (int u = 0; u < kPerLane; ++u) {
      const int i = lane + 32 * u;
      w[u] = i < length8 ? s.piece[warp][stage][i] : make_uint4(0, 0, 0, 0);
    }
    pin(w);
    if constexpr (kBulk) {
      __syncwarp();
      if (lane == 0 && g + kStages < pieces) {  // the stage is read: refill it with the piece kStages ahead
        issue(s, warp, stage, p, issued);
        issued.advance(pieces_per_row, rows_per_unit);
      }
    } else {
      if (g + kStages < pieces) {
        issue_lanes(s, warp, stage, lane, p, issued);
        issued.advance(pieces_per_row, rows_per_unit);
      }
      commit();
    }
    // kPerLane independent dot products per token, summed as a tree: with two warps per scheduler, one
    // chain of 64 dependent FMAs per piece would leave the warp slower than its share of the stream.
    const uint4* x_piece = x_rows + at.piece * (kPiece / 8);
#pragma unroll
    for (int t = 0; t < kTokens; ++t) {
      float d[kPerLane];
#pragma unroll
      for (int u = 0; u < kPerLane; ++u) {
        const int i = lane + 32 * u;
        d[u] = i < length8 ? dot8(w[u], __ldg(x_piece + t * k8 + i)) : 0.0f;
      }
#pragma unroll
      for (int width = kPerLane / 2; width > 0; width /= 2) {
#pragma unroll
        for (int u = 0; u < width; ++u) d[u] += d[u + width];
      }
      acc[t] += d[0];
    }
    if (at.piece == pieces_per_row - 1) {  // the row is done: lane t writes token t's output
      float sum[kTokens];
#pragma unroll
      for (int t = 0; t < kTokens; ++t) {
        sum[t] = warp_sum(acc[t]);
        acc[t] = 0.0f;
      }
#pragma unroll
      for (int t = 0; t < kTokens; ++t) {
        if (lane != t) continue;
        float value = sum[t];
        if (p.bias) value += bf16_bits_to_f32(p.bias[row]);
        if (silu && at.row_in_unit == 0) {
          gate[t] = value;
        } else if (silu) {
          static_cast<uint16_t*>(p.out)[t * p.silu_pairs + at.unit] = f32_to_bf16_bits(silu_times(gate[t], value));
        } else if (p.out_f32) {
          static_cast<float*>(p.out)[t * p.n + row] = value + prior;
        } else {
          static_cast<uint16_t*>(p.out)[t * p.n + row] = f32_to_bf16_bits(value + prior);
        }
      }
    }
    at.advance(pieces_per_row, rows_per_unit);
  }
#else
  (void)p;
  (void)total_warps;
#endif
}

template <int kTokens>
void launch_tokens(const GemvParams& p, int num_sms, cudaStream_t stream) {
  const int64_t units = p.silu_pairs > 0 ? p.silu_pairs : p.n;
  static const int warps_per_sm = std::getenv("RADIXLM_GEMV_TMA_WARPS") ? std::atoi(std::getenv("RADIXLM_GEMV_TMA_WARPS")) : kWarpsPerSm;
  const int64_t total_warps = std::min<int64_t>(units, static_cast<int64_t>(num_sms) * warps_per_sm);
  static const bool bulk = std::getenv("RADIXLM_GEMV_COPY") && std::strcmp(std::getenv("RADIXLM_GEMV_COPY"), "bulk") == 0;
  if (bulk) {
    launch_programmatic(gemv_tma_kernel<kTokens, true>, dim3(ceil_div_u(total_warps, kWarps)), dim3(kWarps * 32),
                        kSmemBytes, stream, p, total_warps);
  } else {
    launch_programmatic(gemv_tma_kernel<kTokens, false>, dim3(ceil_div_u(total_warps, kWarps)), dim3(kWarps * 32),
                        kSmemBytes, stream, p, total_warps);
  }
}

// The device's SM count when it is a Hopper whose shared memory takes the kernel's ring, else 0.
int tma_gemv_sms() {
  static const int sms = [] {
    int device = 0, major = 0, count = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || major < 9) {
      (void)cudaGetLastError();
      return 0;
    }
    // The largest shared-memory carveout: the driver would otherwise size it for one 65 KB block per SM,
    // and a launch's blocks would run in two waves instead of all at once (and none of the next's beside).
    const auto allow = [](auto kernel) {
      return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kSmemBytes)) ==
                 cudaSuccess &&
             cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                  static_cast<int>(cudaSharedmemCarveoutMaxShared)) == cudaSuccess;
    };
    const bool ok = allow(gemv_tma_kernel<1, true>) && allow(gemv_tma_kernel<2, true>) && allow(gemv_tma_kernel<3, true>) &&
                    allow(gemv_tma_kernel<4, true>) && allow(gemv_tma_kernel<5, true>) && allow(gemv_tma_kernel<6, true>) &&
                    allow(gemv_tma_kernel<7, true>) && allow(gemv_tma_kernel<8, true>) &&
                    allow(gemv_tma_kernel<1, false>) && allow(gemv_tma_kernel<2, false>) && allow(gemv_tma_kernel<3, false>) &&
                    allow(gemv_tma_kernel<4, false>) && allow(gemv_tma_kernel<5, false>) && allow(gemv_tma_kernel<6, false>) &&
                    allow(gemv_tma_kernel<7, false>) && allow(gemv_tma_kernel<8, false>);
    if (!ok) (void)cudaGetLastError();
    int blocks = 0;  // TEMP probe
    cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, gemv_tma_kernel<1, false>, kWarps * 32, kSmemBytes);
    std::fprintf(stderr, "gemv_tma: %d blocks per SM, smem %zu\n", blocks, kSmemBytes);
    return ok ? count : 0;
  }();
  return sms;
}

}  // namespace

bool launch_gemv_tma(const GemvParams& p, cudaStream_t stream) {
  const int sms = tma_gemv_sms();
  if (sms == 0) return false;
  switch (p.tokens) {
    case 1: launch_tokens<1>(p, sms, stream); break;
    case 2: launch_tokens<2>(p, sms, stream); break;
    case 3: launch_tokens<3>(p, sms, stream); break;
    case 4: launch_tokens<4>(p, sms, stream); break;
    case 5: launch_tokens<5>(p, sms, stream); break;
    case 6: launch_tokens<6>(p, sms, stream); break;
    case 7: launch_tokens<7>(p, sms, stream); break;
    case 8: launch_tokens<8>(p, sms, stream); break;
    default: return false;
  }
  return true;
}

}  // namespace radixlm::cuda
