// The decode GEMM for Hopper (sm_90a): out [T, N] (+)= x [T, K] w [N, K]^T (+ bias) for the 2-16 tokens of
// a small decode batch, where cuBLASLt leaves the narrow matrices at 2.3-2.9 TB/s on an H200 and the GEMV,
// which re-reads x for every weight row, loses beyond a few tokens. Against cuBLASLt on an H200 the decode
// steps of batch 4 / 8 / 16 run 5.6% / 3.5% / 2.5% faster with it (docs/performance.md). At 32 tokens it
// only matched cuBLASLt and at 64 it lost 16%: the split-K partials grow with the tokens (o_proj at 64
// tokens: 22 against 14 us), so cuBLASLt keeps those.
//
// The weights are the wgmma's A operand (64 rows per instruction) and the tokens its N side (8 or 16, the
// batch rounded up; the tensor map zero-fills the missing token rows), so a block reads each weight once
// for every token, straight from the TMA copy into shared memory, with no register staging:
//  - a block owns 128 weight rows (two m64 tiles) and a range of K: one producer warp copies, per 64-column
//    step, the weight tile (16 KB) and the x tile (128-byte rows of every token) by TMA into a ring of
//    stages (as many as let two blocks share an SM), 128-byte swizzled as the descriptors read them; one
//    consumer warpgroup issues the two m64 x kN x k64 products of a stage as one wgmma group and releases
//    the stage once the group is complete;
//  - the producer requests its first stages' weights before waiting for the kernel ahead (a programmatic
//    dependent, cuda_common.cuh), so the stream starts while that kernel drains; x follows the wait;
//  - the consumers wait for each stage's products at once (~250 cycles against ~1,000 for its bytes to
//    stream in), so every other stage stays in flight;
//  - too few row tiles for the GPU (qkv_proj has 48, o_proj and down_proj 32, against 132 SMs x 2 blocks)
//    are split along K. Each split stores its f32 partial tile in the accumulator layout (every thread its
//    own registers, coalesced), and the split that finishes last (a per-tile counter, reset by it for the
//    next launch) adds all partials in split order and writes the output: the same bits whatever the order
//    in which the splits finish, and no second kernel.

#include <algorithm>

#include "backends/cuda/cuda_hopper.cuh"
#include "backends/cuda/cuda_kernels.h"

namespace radixlm::cuda {
namespace {

constexpr int kRows = 128;         // weight rows per block: two m64 tiles
constexpr int kKStep = 64;         // K columns per stage: one 128-byte row per weight row and per token
constexpr int kConsumerThreads = 128;
constexpr int kThreads = kConsumerThreads + 32;  // one consumer warpgroup, then the producer warp
constexpr int kWeightBytes = kRows * 128;

// As many stages as let two blocks share an SM (113 KB each, with the barriers' and the alignment's 2 KB):
// 6 at 8 and at 16 tokens. (One block per SM with twice the stages ran slower: 7.43 against 7.20 ms for a
// batch-64 step, when this kernel still took 64 tokens.)
constexpr int kBlocksPerSm = 2;
template <int kN>
constexpr int kStages = (113 * 1024 - 2048) / (kWeightBytes + kN * 128);

template <int kN>
struct alignas(1024) Smem {  // every tile 1024-byte aligned (the swizzle pattern repeats every 8 rows)
  uint8_t w[kStages<kN>][kWeightBytes];
  uint8_t x[kStages<kN>][kN * 128];  // kN >= 8: whole 1024-byte swizzle atoms
  uint64_t full[kStages<kN>];   // one arrival with the stage's byte count; complete when the copies landed
  uint64_t empty[kStages<kN>];  // lane 0 of each consumer warp, once its products that read the stage are done
  int sums_splits;          // whether this block is the tile's last split
};
template <int kN>
constexpr size_t smem_bytes() {
  return sizeof(Smem<kN>) + 1024;  // dynamic shared memory is only 16-byte aligned: the kernel rounds up
}

#if RADIXLM_WGMMA
// d += A B, m64 nN k16: A (weights) and B (tokens), both K-major, from 128-byte swizzled shared memory.
// The accumulators have the mma.m16n8 layout: warp w of the group holds rows 16w..16w+15, n8 tile t in
// d[4t..4t+3] (rows lane / 4 and lane / 4 + 8, tokens 8t + 2 (lane % 4) + {0, 1}).
template <int kN>
__device__ __forceinline__ void wgmma_tile(float (&d)[kN / 2], uint64_t desc_a, uint64_t desc_b);
template <>
__device__ __forceinline__ void wgmma_tile<8>(float (&d)[4], uint64_t desc_a, uint64_t desc_b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %6, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n8k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3}, %4, %5, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "l"(desc_a), "l"(desc_b), "r"(1));
}
template <>
__device__ __forceinline__ void wgmma_tile<16>(float (&d)[8], uint64_t desc_a, uint64_t desc_b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %10, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n16k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7}, %8, %9, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
      : "l"(desc_a), "l"(desc_b), "r"(1));
}

template <int kN>
__device__ __forceinline__ void pin(float (&d)[2][kN / 2]) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
#pragma unroll
    for (int i = 0; i < kN / 2; ++i) asm volatile("" : "+f"(d[h][i])::"memory");
  }
}
#endif  // RADIXLM_WGMMA

template <int kN>
__global__ void __launch_bounds__(kThreads, kBlocksPerSm)
    decode_gemm_kernel(DecodeGemmParams p, const __grid_constant__ CUtensorMap w_map,
                       const __grid_constant__ CUtensorMap x_map) {
#if RADIXLM_WGMMA
  extern __shared__ uint8_t smem_raw[];
  const uint32_t raw_address = smem_address(smem_raw);
  Smem<kN>& s = *reinterpret_cast<Smem<kN>*>(smem_raw + ((1024 - raw_address % 1024) % 1024));
  const int tiles = static_cast<int>((p.n + kRows - 1) / kRows);
  const int tile = static_cast<int>(blockIdx.x) % tiles, split = static_cast<int>(blockIdx.x) / tiles;
  const int k_steps = static_cast<int>((p.k + kKStep - 1) / kKStep);
  const int step_begin = static_cast<int>(int64_t{split} * k_steps / p.splits);
  const int steps = static_cast<int>(int64_t{split + 1} * k_steps / p.splits) - step_begin;
  constexpr uint32_t kStageBytes = kWeightBytes + kN * 128;

  if (threadIdx.x == 0) {
#pragma unroll
    for (int i = 0; i < kStages<kN>; ++i) {
      mbarrier_init(&s.full[i], 1);
      mbarrier_init(&s.empty[i], kConsumerThreads / 32);
    }
    fence_async_shared();  // the initialised barriers, visible to the TMA unit
  }
  __syncthreads();

  if (threadIdx.x >= kConsumerThreads) {  // the producer warp; one lane issues every copy
    if (threadIdx.x == kConsumerThreads) {
      const int first = min(steps, kStages<kN>);
      for (int g = 0; g < first; ++g) {
        mbarrier_arrive_expect_tx(&s.full[g], kStageBytes);
        tma_load_2d(s.w[g], &w_map, (step_begin + g) * kKStep, tile * kRows, &s.full[g]);
      }
      pdl_wait();  // x is the kernel ahead's output
      for (int g = 0; g < first; ++g) tma_load_2d(s.x[g], &x_map, (step_begin + g) * kKStep, 0, &s.full[g]);
      for (int g = first; g < steps; ++g) {
        const int stage = g % kStages<kN>;
        mbarrier_wait(&s.empty[stage], (g / kStages<kN> - 1) & 1);
        mbarrier_arrive_expect_tx(&s.full[stage], kStageBytes);
        tma_load_2d(s.w[stage], &w_map, (step_begin + g) * kKStep, tile * kRows, &s.full[stage]);
        tma_load_2d(s.x[stage], &x_map, (step_begin + g) * kKStep, 0, &s.full[stage]);
      }
    }
    return;
  }

  pdl_wait();  // before the epilogue touches the output, the partials or the counters
  pdl_launch_dependents();
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  // acc[h][4t + j]: weight row tile * 128 + 64h + 16 warp + lane / 4 (+ 8 for j % 4 >= 2), token
  // 8t + 2 (lane % 4) + (j & 1).
  const auto row = [&](int h, int j) {
    return static_cast<int64_t>(tile) * kRows + 64 * h + 16 * warp + lane / 4 + (j % 4 >= 2 ? 8 : 0);
  };
  const auto token = [&](int j) { return 8 * (j / 4) + 2 * (lane % 4) + (j & 1); };
  // Split 0 starts from the values added to and the bias, loaded now, while the first stages stream in (in
  // the epilogue each would be a round trip at the tail of the kernel); the other splits start from zero.
  // An element outside the output reads the nearest inside one (dropped at the store): with no branch per
  // element, all loads go out before the first is used.
  float acc[2][kN / 2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
#pragma unroll
    for (int j = 0; j < kN / 2; ++j) acc[h][j] = 0.0f;
  }
  const auto add_loaded = [&](auto load) {
    float loaded[2][kN / 2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
#pragma unroll
      for (int j = 0; j < kN / 2; ++j) {
        loaded[h][j] = load(min(row(h, j), p.n - 1), min(token(j), p.tokens - 1));
      }
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
#pragma unroll
      for (int j = 0; j < kN / 2; ++j) acc[h][j] += loaded[h][j];
    }
  };
  if (split == 0 && p.accumulate) {
    if (p.out_f32) {
      add_loaded([&](int64_t n, int t) { return static_cast<const float*>(p.out)[t * p.n + n]; });
    } else {
      add_loaded([&](int64_t n, int t) { return bf16_bits_to_f32(static_cast<const uint16_t*>(p.out)[t * p.n + n]); });
    }
  }
  if (split == 0 && p.bias != nullptr) add_loaded([&](int64_t n, int) { return bf16_bits_to_f32(p.bias[n]); });
  const auto release = [&](int stage) {
    __syncwarp();
    if (lane == 0) mbarrier_arrive(&s.empty[stage]);
  };
  for (int g = 0; g < steps; ++g) {
    const int stage = g % kStages<kN>;
    mbarrier_wait(&s.full[stage], (g / kStages<kN>) & 1);
    const uint32_t w_rows = smem_address(s.w[stage]), x_rows = smem_address(s.x[stage]);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kKStep / 16; ++kk) {
      wgmma_tile<kN>(acc[0], k_step_descriptor(w_rows, kk), k_step_descriptor(x_rows, kk));
      wgmma_tile<kN>(acc[1], k_step_descriptor(w_rows + 64 * 128, kk), k_step_descriptor(x_rows, kk));
    }
    wgmma_commit();
    wgmma_wait<0>();  // the stage goes straight back to the producer
    pin<kN>(acc);
    release(stage);
  }

  if (p.splits > 1) {
    // This split's partial tile, float4 i of thread t at [i][t] (each thread writes its own registers).
    constexpr int kVectors = kN / 4;
    auto* slots = reinterpret_cast<float4*>(p.partials);
    float4* mine = slots + static_cast<int64_t>(tile * p.splits + split) * kVectors * kConsumerThreads;
#pragma unroll
    for (int i = 0; i < kVectors; ++i) {
      const float* v = &acc[i / (kN / 8)][(i % (kN / 8)) * 4];
      mine[i * kConsumerThreads + threadIdx.x] = make_float4(v[0], v[1], v[2], v[3]);
    }
    __threadfence();  // the partial is visible before the counter says so
    asm volatile("bar.sync 1, %0;" ::"n"(kConsumerThreads) : "memory");
    if (threadIdx.x == 0) {
      const int done = atomicAdd(&p.counters[tile], 1);
      s.sums_splits = done == p.splits - 1;
      if (s.sums_splits) p.counters[tile] = 0;  // ready for the next launch (which waits for this grid)
    }
    asm volatile("bar.sync 1, %0;" ::"n"(kConsumerThreads) : "memory");
    if (!s.sums_splits) return;
    __threadfence();
    const float4* first = slots + static_cast<int64_t>(tile * p.splits) * kVectors * kConsumerThreads;
    float4 sum[kVectors];
#pragma unroll
    for (int i = 0; i < kVectors; ++i) sum[i] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    // In split order (the same sum whichever split is last); a split's loads all go out together.
    for (int sp = 0; sp < p.splits; ++sp) {
      float4 part[kVectors];
#pragma unroll
      for (int i = 0; i < kVectors; ++i) {
        part[i] = __ldcg(first + (static_cast<int64_t>(sp) * kVectors + i) * kConsumerThreads + threadIdx.x);
      }
#pragma unroll
      for (int i = 0; i < kVectors; ++i) {
        sum[i].x += part[i].x;
        sum[i].y += part[i].y;
        sum[i].z += part[i].z;
        sum[i].w += part[i].w;
      }
    }
#pragma unroll
    for (int i = 0; i < kVectors; ++i) {
      float* v = &acc[i / (kN / 8)][(i % (kN / 8)) * 4];
      v[0] = sum[i].x;
      v[1] = sum[i].y;
      v[2] = sum[i].z;
      v[3] = sum[i].w;
    }
  }

#pragma unroll
  for (int h = 0; h < 2; ++h) {
#pragma unroll
    for (int j = 0; j < kN / 2; ++j) {
      const int64_t n = row(h, j);
      if (n >= p.n || token(j) >= p.tokens) continue;
      const int64_t at = token(j) * p.n + n;
      if (p.out_f32) {
        static_cast<float*>(p.out)[at] = acc[h][j];
      } else {
        static_cast<uint16_t*>(p.out)[at] = f32_to_bf16_bits(acc[h][j]);
      }
    }
  }
#endif  // RADIXLM_WGMMA
}

// A row-major bf16 [rows][cols] matrix as a 2-D TMA tensor with boxes of {64 columns, box_rows rows},
// 128-byte swizzled; rows past the end read as zeros. False if the driver refuses it.
bool encode_rows_map(CUtensorMap& map, const uint16_t* data, int64_t rows, int64_t cols, int box_rows) {
  const PFN_cuTensorMapEncodeTiled_v12000 encode = tensor_map_encoder();
  if (encode == nullptr) return false;
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(cols), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(cols) * 2};
  const cuuint32_t box[2] = {kKStep, static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t element_strides[2] = {1, 1};
  return encode(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<uint16_t*>(data), dims, strides, box,
                element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

template <int kN>
bool allow_shared_memory() {
  static const bool ok = [] {
    if (cudaFuncSetAttribute(decode_gemm_kernel<kN>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(smem_bytes<kN>())) != cudaSuccess) {
      (void)cudaGetLastError();
      return false;
    }
    return true;
  }();
  return ok;
}

template <int kN>
bool launch_tokens(DecodeGemmParams p, cudaStream_t stream) {
  static_assert(kN <= kDecodeGemmMaxTokens, "the partials are sized for kDecodeGemmMaxTokens");
  if (!allow_shared_memory<kN>()) return false;
  CUtensorMap w_map{}, x_map{};
  if (!encode_rows_map(w_map, p.w, p.n, p.k, kRows) || !encode_rows_map(x_map, p.x, p.tokens, p.k, kN)) return false;
  const int64_t tiles = (p.n + kRows - 1) / kRows;
  launch_programmatic(decode_gemm_kernel<kN>, dim3(static_cast<unsigned int>(tiles * p.splits)),
                      dim3(kThreads), smem_bytes<kN>(), stream, p, w_map, x_map);
  return true;
}

}  // namespace

bool decode_gemm_supported() { return hopper_device(); }

int32_t decode_gemm_splits(int64_t n, int64_t k, int32_t num_sms) {
  const int64_t tiles = (n + kRows - 1) / kRows, k_steps = (k + kKStep - 1) / kKStep;
  int64_t splits = (kBlocksPerSm * int64_t{num_sms}) / tiles;
  // At least kMinStepsPerSplit steps per split: each split's partial tile costs its last block a read.
  constexpr int64_t kMinStepsPerSplit = 8;
  splits = std::min({splits, k_steps / kMinStepsPerSplit, int64_t{kDecodeGemmMaxSplits},
                     kDecodeGemmMaxSlots / std::max<int64_t>(tiles, 1)});
  return static_cast<int32_t>(std::max<int64_t>(splits, 1));
}

bool launch_decode_gemm(const DecodeGemmParams& p, cudaStream_t stream) {
  if (p.tokens <= 8) return launch_tokens<8>(p, stream);
  if (p.tokens <= 16) return launch_tokens<16>(p, stream);
  return false;
}

}  // namespace radixlm::cuda
