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
#include <array>

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

template <>
__device__ __forceinline__ void wgmma_tile<32>(float (&d)[16], uint64_t desc_a, uint64_t desc_b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, "
      "%16, %17, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
      : "l"(desc_a), "l"(desc_b), "r"(1));
}
template <>
__device__ __forceinline__ void wgmma_tile<64>(float (&d)[32], uint64_t desc_a, uint64_t desc_b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
      "%32, %33, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
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
// Step kk (columns 16kk..16kk+15) of a tile of 128-byte rows starting at `rows`: 32 bytes further into
// each row; 8-row groups 1024 bytes apart (the leading offset is unused with swizzling).
__device__ __forceinline__ uint64_t k_step(uint32_t rows, int kk) { return descriptor(rows + kk * 32, 16, 1024); }
// The accumulator fragment of a consumer thread: acc[h][4t + j'] (j = 4t + j') holds weight row
// tile * 128 + 64h + 16 warp + lane / 4 (+ 8 for j' >= 2) and token 8t + 2 (lane % 4) + (j & 1).
__device__ __forceinline__ int fragment_row(int h, int j, int warp, int lane) {
  return 64 * h + 16 * warp + lane / 4 + (j % 4 >= 2 ? 8 : 0);
}
__device__ __forceinline__ int fragment_token(int j, int lane) { return 8 * (j / 4) + 2 * (lane % 4) + (j & 1); }

__device__ __forceinline__ uint32_t bf16_pair(float lo, float hi) {
  return static_cast<uint32_t>(f32_to_bf16_bits(lo)) | static_cast<uint32_t>(f32_to_bf16_bits(hi)) << 16;
}

__device__ __forceinline__ void consumers_sync() {
  asm volatile("bar.sync 1, %0;" ::"n"(kConsumerThreads) : "memory");
}

// Up to kDecodeGemmPartialTokens tokens: the split that finishes last adds every split's partial tile from
// global memory. False for the other splits (they have nothing left to write).
template <int kN>
__device__ bool sum_splits_in_global(const DecodeGemmParams& p, Smem<kN>& s, float (&acc)[2][kN / 2], int tile,
                                     int split) {
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
  consumers_sync();
  if (threadIdx.x == 0) {
    const int done = atomicAdd(&p.counters[tile], 1);
    s.sums_splits = done == p.splits - 1;
    if (s.sums_splits) p.counters[tile] = 0;  // ready for the next launch (which waits for this grid)
  }
  consumers_sync();
  if (!s.sums_splits) return false;
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
  return true;
}

// Past kDecodeGemmPartialTokens tokens the partial tiles are too large for global memory (32 KB each at 64
// tokens: summing them took o_proj from 14 to 22 us): the splits of a row tile are one thread block
// cluster instead. Every block stages its f32 tile in its own shared memory (over the drained ring), then
// block r of S adds, for the r-th S-th of the tile, every block's values in rank order (distributed shared
// memory: the same bits whichever block finishes first), the bias and the values added to, and stores it
// with 8- or 16-byte writes along the output rows. One block (S = 1) does the same in its own memory.
template <int kN>
__device__ void sum_splits_in_cluster(const DecodeGemmParams& p, Smem<kN>& s, const float (&acc)[2][kN / 2],
                                      int tile, int warp, int lane) {
  constexpr int kLd = kRows + 4;  // floats per staged token: +4 puts a quad's four tokens in four bank groups
  static_assert(kN * kLd * sizeof(float) <= sizeof(s.w), "the staged tile fits in the drained ring");
  float* staged = reinterpret_cast<float*>(&s.w[0][0]);
  consumers_sync();  // every consumer warp's last products (the ring's last reads) are complete
#pragma unroll
  for (int h = 0; h < 2; ++h) {
#pragma unroll
    for (int j = 0; j < kN / 2; ++j) staged[fragment_token(j, lane) * kLd + fragment_row(h, j, warp, lane)] = acc[h][j];
  }
  const int splits = p.splits;
  const int rank = splits > 1 ? static_cast<int>(cluster_rank()) : 0;
  if (splits > 1) {
    cluster_arrive();  // this block's tile is staged; the bias and the values added to load meanwhile
  }
  // This block's share: float4 indices [begin, end) of the tile's kN x (kRows / 4), token-major.
  constexpr int kVectorsPerToken = kRows / 4;
  constexpr int kVectors = kN * kVectorsPerToken;
  constexpr int kPerThread = kVectors / kConsumerThreads;
  const int begin = rank * kVectors / splits, end = (rank + 1) * kVectors / splits;
  const bool vector_io = p.n % 4 == 0;  // 4 consecutive output elements are 8 / 16 bytes aligned
  float4 extra[kPerThread];
#pragma unroll
  for (int i = 0; i < kPerThread; ++i) {
    extra[i] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    const int index = begin + i * kConsumerThreads + static_cast<int>(threadIdx.x);
    const int t = index / kVectorsPerToken;
    const int64_t n = static_cast<int64_t>(tile) * kRows + index % kVectorsPerToken * 4;
    if (index >= end || t >= p.tokens || n >= p.n) continue;
    float* e = &extra[i].x;
    if (p.accumulate) {
      const int64_t at = t * p.n + n;
      if (vector_io && p.out_f32) {
        extra[i] = *reinterpret_cast<const float4*>(static_cast<const float*>(p.out) + at);
      } else if (vector_io) {
        const uint2 packed = *reinterpret_cast<const uint2*>(static_cast<const uint16_t*>(p.out) + at);
        extra[i] = make_float4(bf16_lo(packed.x), bf16_hi(packed.x), bf16_lo(packed.y), bf16_hi(packed.y));
      } else {
        for (int c = 0; c < 4 && n + c < p.n; ++c) {
          e[c] = p.out_f32 ? static_cast<const float*>(p.out)[at + c]
                           : bf16_bits_to_f32(static_cast<const uint16_t*>(p.out)[at + c]);
        }
      }
    }
    if (p.bias != nullptr) {
      for (int c = 0; c < 4 && n + c < p.n; ++c) e[c] += bf16_bits_to_f32(p.bias[n + c]);
    }
  }
  if (splits > 1) {
    cluster_wait();  // every block's tile is staged and visible
  } else {
    consumers_sync();
  }
  const uint32_t staged_address = smem_address(staged);
#pragma unroll
  for (int i = 0; i < kPerThread; ++i) {
    const int index = begin + i * kConsumerThreads + static_cast<int>(threadIdx.x);
    const int t = index / kVectorsPerToken;
    const int64_t n = static_cast<int64_t>(tile) * kRows + index % kVectorsPerToken * 4;
    if (index >= end || t >= p.tokens || n >= p.n) continue;
    const uint32_t offset = (t * kLd + index % kVectorsPerToken * 4) * sizeof(float);
    float4 sum = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    for (int r = 0; r < splits; ++r) {  // in rank order: K order
      const float4 v = splits > 1 ? load_shared_of_rank(staged_address + offset, r)
                                  : *reinterpret_cast<const float4*>(staged + offset / sizeof(float));
      sum.x += v.x;
      sum.y += v.y;
      sum.z += v.z;
      sum.w += v.w;
    }
    const float value[4] = {sum.x + extra[i].x, sum.y + extra[i].y, sum.z + extra[i].z, sum.w + extra[i].w};
    const int64_t at = t * p.n + n;
    if (vector_io && p.out_f32) {
      *reinterpret_cast<float4*>(static_cast<float*>(p.out) + at) = make_float4(value[0], value[1], value[2], value[3]);
    } else if (vector_io) {
      *reinterpret_cast<uint2*>(static_cast<uint16_t*>(p.out) + at) =
          make_uint2(bf16_pair(value[0], value[1]), bf16_pair(value[2], value[3]));
    } else {
      for (int c = 0; c < 4 && n + c < p.n; ++c) {
        if (p.out_f32) {
          static_cast<float*>(p.out)[at + c] = value[c];
        } else {
          static_cast<uint16_t*>(p.out)[at + c] = f32_to_bf16_bits(value[c]);
        }
      }
    }
  }
  if (splits > 1) {  // no block leaves (its shared memory) while another may still read it
    cluster_arrive();
    cluster_wait();
  }
}
#endif  // RADIXLM_WGMMA

template <int kN>
__global__ void __launch_bounds__(kThreads, kBlocksPerSm)
    decode_gemm_kernel(DecodeGemmParams p, const __grid_constant__ CUtensorMap w_map,
                       const __grid_constant__ CUtensorMap x_map) {
#if RADIXLM_WGMMA
  constexpr bool kInCluster = kN > kDecodeGemmPartialTokens;
  extern __shared__ uint8_t smem_raw[];
  const uint32_t raw_address = smem_address(smem_raw);
  Smem<kN>& s = *reinterpret_cast<Smem<kN>*>(smem_raw + ((1024 - raw_address % 1024) % 1024));
  // Split-major (block = split * tiles + tile) where the partials meet in global memory; tile-major in a
  // cluster, whose blocks are consecutive.
  const int tiles = static_cast<int>((p.n + kRows - 1) / kRows);
  const int tile = kInCluster ? static_cast<int>(blockIdx.x) / p.splits : static_cast<int>(blockIdx.x) % tiles;
  const int split = kInCluster ? static_cast<int>(blockIdx.x) % p.splits : static_cast<int>(blockIdx.x) / tiles;
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
  const auto row = [&](int h, int j) { return static_cast<int64_t>(tile) * kRows + fragment_row(h, j, warp, lane); };
  const auto token = [&](int j) { return fragment_token(j, lane); };
  float acc[2][kN / 2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
#pragma unroll
    for (int j = 0; j < kN / 2; ++j) acc[h][j] = 0.0f;
  }
  // Split 0 starts from the values added to and the bias, loaded now, while the first stages stream in (in
  // the epilogue each would be a round trip at the tail of the kernel); the other splits start from zero.
  // An element outside the output reads the nearest inside one (dropped at the store): with no branch per
  // element, all loads go out before the first is used. (In a cluster the block that stores an element
  // adds them instead.)
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
  if (!kInCluster && split == 0 && p.accumulate) {
    if (p.out_f32) {
      add_loaded([&](int64_t n, int t) { return static_cast<const float*>(p.out)[t * p.n + n]; });
    } else {
      add_loaded([&](int64_t n, int t) { return bf16_bits_to_f32(static_cast<const uint16_t*>(p.out)[t * p.n + n]); });
    }
  }
  if (!kInCluster && split == 0 && p.bias != nullptr) {
    add_loaded([&](int64_t n, int) { return bf16_bits_to_f32(p.bias[n]); });
  }
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
      wgmma_tile<kN>(acc[0], k_step(w_rows, kk), k_step(x_rows, kk));
      wgmma_tile<kN>(acc[1], k_step(w_rows + 64 * 128, kk), k_step(x_rows, kk));
    }
    wgmma_commit();
    wgmma_wait<0>();  // the stage goes straight back to the producer
    pin<kN>(acc);
    release(stage);
  }

  if constexpr (kInCluster) {
    sum_splits_in_cluster<kN>(p, s, acc, tile, warp, lane);
  } else {
    if (p.splits > 1 && !sum_splits_in_global<kN>(p, s, acc, tile, split)) return;
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

// The kernel as a cluster of p.splits blocks per row tile (a programmatic dependent where allowed).
template <int kN>
bool launch_clusters(const DecodeGemmParams& p, const CUtensorMap& w_map, const CUtensorMap& x_map,
                     unsigned int blocks, cudaStream_t stream) {
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(blocks);
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = smem_bytes<kN>();
  config.stream = stream;
  cudaLaunchAttribute attributes[2] = {};
  attributes[0].id = cudaLaunchAttributeClusterDimension;
  attributes[0].val.clusterDim.x = static_cast<unsigned int>(p.splits);
  attributes[0].val.clusterDim.y = 1;
  attributes[0].val.clusterDim.z = 1;
  attributes[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attributes[1].val.programmaticStreamSerializationAllowed = 1;
  config.attrs = attributes;
  for (unsigned int attrs = pdl_enabled() ? 2 : 1; attrs >= 1; --attrs) {
    config.numAttrs = attrs;
    if (cudaLaunchKernelEx(&config, decode_gemm_kernel<kN>, p, w_map, x_map) == cudaSuccess) return true;
    (void)cudaGetLastError();
  }
  return false;
}

// Clusters of 1..kDecodeGemmMaxClusterSplits blocks of decode_gemm_kernel<kN> the GPU holds at once (0 where
// it cannot launch them).
template <int kN>
int max_active_clusters(int splits) {
  static const std::array<int, kDecodeGemmMaxClusterSplits + 1> counts = [] {
    std::array<int, kDecodeGemmMaxClusterSplits + 1> found{};
    if (!allow_shared_memory<kN>()) return found;
    for (int size = 1; size <= kDecodeGemmMaxClusterSplits; ++size) {
      cudaLaunchConfig_t config = {};
      config.gridDim = dim3(static_cast<unsigned int>(size));
      config.blockDim = dim3(kThreads);
      config.dynamicSmemBytes = smem_bytes<kN>();
      cudaLaunchAttribute attribute = {};
      attribute.id = cudaLaunchAttributeClusterDimension;
      attribute.val.clusterDim.x = static_cast<unsigned int>(size);
      attribute.val.clusterDim.y = 1;
      attribute.val.clusterDim.z = 1;
      config.attrs = &attribute;
      config.numAttrs = 1;
      if (cudaOccupancyMaxActiveClusters(&found[size], decode_gemm_kernel<kN>, &config) != cudaSuccess) {
        (void)cudaGetLastError();
        found[size] = 0;
      }
    }
    return found;
  }();
  return counts[splits];
}

template <int kN>
bool launch_tokens(DecodeGemmParams p, cudaStream_t stream) {
  if (!allow_shared_memory<kN>()) return false;
  CUtensorMap w_map{}, x_map{};
  if (!encode_rows_map(w_map, p.w, p.n, p.k, kRows) || !encode_rows_map(x_map, p.x, p.tokens, p.k, kN)) return false;
  const auto blocks = static_cast<unsigned int>((p.n + kRows - 1) / kRows * p.splits);
  if constexpr (kN > kDecodeGemmPartialTokens) {
    if (p.splits > 1) return launch_clusters<kN>(p, w_map, x_map, blocks, stream);
  }
  launch_programmatic(decode_gemm_kernel<kN>, dim3(blocks), dim3(kThreads), smem_bytes<kN>(), stream, p, w_map, x_map);
  return true;
}

}  // namespace

bool decode_gemm_supported() { return hopper_device(); }

int32_t decode_gemm_splits(int64_t n, int64_t k, int32_t tokens, int32_t num_sms) {
  const int64_t tiles = (n + kRows - 1) / kRows, k_steps = (k + kKStep - 1) / kKStep;
  const int64_t slots = kBlocksPerSm * int64_t{num_sms};
  // At least kMinStepsPerSplit steps per split: a split's partial tile costs a read at the end.
  constexpr int64_t kMinStepsPerSplit = 8;
  if (tokens > kDecodeGemmPartialTokens) {
    // A cluster per row tile: the most splits whose blocks all fit on the GPU at once.
    for (int64_t splits = std::min<int64_t>(kDecodeGemmMaxClusterSplits, k_steps / kMinStepsPerSplit); splits > 1;
         --splits) {
      const int clusters = tokens <= 32 ? max_active_clusters<32>(static_cast<int>(splits))
                                        : max_active_clusters<64>(static_cast<int>(splits));
      if (tiles * splits <= slots && tiles <= clusters) return static_cast<int32_t>(splits);
    }
    return 1;
  }
  int64_t splits = slots / tiles;
  splits = std::min({splits, k_steps / kMinStepsPerSplit, int64_t{kDecodeGemmMaxSplits},
                     kDecodeGemmMaxSlots / std::max<int64_t>(tiles, 1)});
  return static_cast<int32_t>(std::max<int64_t>(splits, 1));
}

bool launch_decode_gemm(const DecodeGemmParams& p, cudaStream_t stream) {
  if (p.tokens <= 8) return launch_tokens<8>(p, stream);
  if (p.tokens <= 16) return launch_tokens<16>(p, stream);
  if (p.tokens <= 32) return launch_tokens<32>(p, stream);
  if (p.tokens <= 64) return launch_tokens<64>(p, stream);
  return false;
}

}  // namespace radixlm::cuda
