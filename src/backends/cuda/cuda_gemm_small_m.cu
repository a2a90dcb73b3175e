// The decode-shaped matmul out [T, N] = x [T, K] @ w [N, K]^T for 2..128 tokens on Hopper (sm_90a), written
// for bandwidth: at these token counts the weights are read once and the matmul is a stream of them, which
// cuBLASLt's tiles leave below the roofline (at 64 tokens its gate/up kernel runs 75 blocks on 132 SMs,
// ~3.5 TB/s; qkv and o_proj 2.3-3.0). The plan:
//  - a block owns 128 weight rows (two consumer warpgroups of 64) for all tokens: wgmma m64nTk16 with the
//    weights as A and the tokens as B (T = 16/32/64/128, the token count rounded up; TMA fills the padding
//    rows with zeros), both read K-major from 128-byte-swizzled shared memory;
//  - one producer warp streams 64-column steps of the weights (two 64x64 boxes) and of the tokens by TMA
//    into a ring of stages (two blocks fit an SM), each stage's "full" mbarrier completing on its byte
//    count and "empty" when the eight consumer warps are done with it. An earlier version without TMA
//    (cp.async issued by the MMA warps) lost to cuBLASLt at every shape: too few bytes in flight;
//  - K is split over the blocks of a thread-block cluster (1, 2, 4 or 8), picked so about two blocks per
//    SM stream at once; the blocks put their f32 partials in shared memory and each sums a slice of the
//    tile over the cluster's blocks (distributed shared memory), so no workspace and no second kernel;
//  - the epilogue adds the bias, adds into the output (the residual stream of linear_add) or writes
//    silu(gate) * up: for the MLP's gate/up matmul a block's first warpgroup takes 64 gate rows and the
//    second the matching 64 up rows.

#include <algorithm>
#include <cstdlib>

#include "backends/cuda/cuda_common.cuh"
#include "backends/cuda/cuda_hopper.cuh"
#include "backends/cuda/cuda_kernels.h"

namespace radixlm::cuda {
namespace {

constexpr int kGroupRows = 64;                                     // weight rows per consumer warpgroup
constexpr int kBlockRows = 2 * kGroupRows;                         // weight rows per block
constexpr int kStepColumns = 64;                                   // K columns per stage: one 128-byte row
constexpr int kConsumerThreads = 256;
constexpr int kThreads = kConsumerThreads + 32;                    // then one producer warp
constexpr int kWeightStageBytes = kBlockRows * kStepColumns * 2;   // 16 KB
constexpr int kStageBudgetBytes = 96 * 1024;                       // two blocks per SM
constexpr int kMaxStages = 8;
constexpr int kReduceStride = kBlockRows + 4;  // floats per token in the partials: +4 keeps the writes conflict-free

template <int kTokens>
constexpr int stage_bytes() {
  return kWeightStageBytes + kTokens * kStepColumns * 2;
}

struct Launch {
  SmallMGemmParams p;
  int64_t n_out;           // output columns: silu_pairs, or n
  int32_t k_steps;         // 64-column steps of K
  int32_t split;           // blocks of a cluster, each over a contiguous share of the steps
  int32_t stages;
  int32_t barrier_offset;  // bytes from the aligned shared-memory base to the mbarriers
};

#if RADIXLM_WGMMA
// d += A B on the warpgroup, m64 nN k16, bf16 in, f32 accumulators (N/2 per thread, in the mma.m16n8
// accumulator layout: warp w holds rows 16w..16w+15, n8 tile j in d[4j..4j+3]); A and B K-major in
// 128-byte-swizzled shared memory.
template <int kN>
__device__ __forceinline__ void wgmma_ss(float (&d)[kN / 2], uint64_t desc_a, uint64_t desc_b);
template <>
__device__ __forceinline__ void wgmma_ss<16>(float (&d)[8], uint64_t desc_a, uint64_t desc_b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %10, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n16k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7"
      "}, %8, %9, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
      : "l"(desc_a), "l"(desc_b), "r"(1));
}
template <>
__device__ __forceinline__ void wgmma_ss<32>(float (&d)[16], uint64_t desc_a, uint64_t desc_b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15"
      "}, %16, %17, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
      : "l"(desc_a), "l"(desc_b), "r"(1));
}
template <>
__device__ __forceinline__ void wgmma_ss<64>(float (&d)[32], uint64_t desc_a, uint64_t desc_b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21,"
      "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
      "}, %32, %33, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "l"(desc_a), "l"(desc_b), "r"(1));
}
template <>
__device__ __forceinline__ void wgmma_ss<128>(float (&d)[64], uint64_t desc_a, uint64_t desc_b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21,"
      "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41,"
      "%42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61,"
      "%62, %63"
      "}, %64, %65, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(desc_a), "l"(desc_b), "r"(1));
}

// Keeps the compiler from moving reads or writes of the accumulators across the asynchronous wgmma.
template <int kN>
__device__ __forceinline__ void pin(float (&d)[kN]) {
#pragma unroll
  for (int i = 0; i < kN; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// K-major operand rows of 128 bytes, 8-row groups 1024 bytes apart; step kk (columns 16kk..16kk+15)
// starts 32 bytes further into the swizzled rows.
__device__ __forceinline__ uint64_t k_major(uint32_t tile, int kk) { return descriptor(tile + kk * 32, 16, 1024); }

__device__ __forceinline__ float silu_mul(float gate, float up) {
  // Rounded to bf16 first, then silu_and_mul's math: the same bits as the two ops apart.
  gate = bf16_bits_to_f32(f32_to_bf16_bits(gate));
  up = bf16_bits_to_f32(f32_to_bf16_bits(up));
  return gate / (1.0f + expf(-gate)) * up;
}
#endif  // RADIXLM_WGMMA

template <int kTokens>
__global__ void __launch_bounds__(kThreads) small_m_gemm_kernel(const Launch a, const __grid_constant__ CUtensorMap w_map,
                                                                const __grid_constant__ CUtensorMap x_map) {
#if RADIXLM_WGMMA
  constexpr int kStageBytes = stage_bytes<kTokens>();
  extern __shared__ uint8_t smem_raw[];
  const uint32_t raw_address = smem_address(smem_raw);
  uint8_t* smem = smem_raw + ((1024 - raw_address % 1024) % 1024);
  auto* full = reinterpret_cast<uint64_t*>(smem + a.barrier_offset);
  uint64_t* empty = full + a.stages;
  const SmallMGemmParams& p = a.p;
  const bool silu = p.silu_pairs > 0;
  const int rank = static_cast<int>(cluster_rank());
  const int64_t tile = blockIdx.x / a.split;
  const int step_begin = rank * a.k_steps / a.split, steps = (rank + 1) * a.k_steps / a.split - step_begin;
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;

  if (threadIdx.x == 0) {
    for (int i = 0; i < a.stages; ++i) {
      mbarrier_init(&full[i], 1);
      mbarrier_init(&empty[i], kConsumerThreads / 32);
    }
  }
  __syncthreads();

  if (warp == kConsumerThreads / 32) {
    if (lane == 0) {  // the producer
      const int row_a = static_cast<int>(silu ? tile * kGroupRows : tile * kBlockRows);
      const int row_b = static_cast<int>(silu ? p.silu_pairs + tile * kGroupRows : row_a + kGroupRows);
      for (int i = 0; i < steps; ++i) {
        const int stage = i % a.stages;
        if (i >= a.stages) mbarrier_wait(&empty[stage], (i / a.stages - 1) & 1);
        uint8_t* s = smem + stage * kStageBytes;
        const int column = (step_begin + i) * kStepColumns;
        mbarrier_arrive_expect_tx(&full[stage], kStageBytes);
        tma_load_2d(s, &w_map, column, row_a, &full[stage]);
        tma_load_2d(s + kWeightStageBytes / 2, &w_map, column, row_b, &full[stage]);
        tma_load_2d(s + kWeightStageBytes, &x_map, column, 0, &full[stage]);
      }
    }
  } else {  // the consumers
    const int group = warp / 4;
    float acc[kTokens / 2];
#pragma unroll
    for (int i = 0; i < kTokens / 2; ++i) acc[i] = 0.0f;
    for (int i = 0; i < steps; ++i) {
      const int stage = i % a.stages;
      mbarrier_wait(&full[stage], (i / a.stages) & 1);
      const uint32_t s = smem_address(smem + stage * kStageBytes);
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < kStepColumns / 16; ++kk) {
        wgmma_ss<kTokens>(acc, k_major(s + group * (kWeightStageBytes / 2), kk), k_major(s + kWeightStageBytes, kk));
      }
      wgmma_commit();
      pin(acc);
      if (i > 0) {  // the previous step's MMAs are done: its stage goes back to the producer
        wgmma_wait_all_but_one();
        pin(acc);
        if (lane == 0) mbarrier_arrive(&empty[(i - 1) % a.stages]);
      }
    }
    wgmma_wait_all();
    pin(acc);
    // Both warpgroups are done reading the stages, which now hold this block's partials [token][row].
    asm volatile("bar.sync 1, %0;" ::"n"(kConsumerThreads) : "memory");
    auto* partial = reinterpret_cast<float*>(smem);
    const int row = group * kGroupRows + (warp % 4) * 16 + lane / 4;
#pragma unroll
    for (int j = 0; j < kTokens / 8; ++j) {
      const int token = 8 * j + 2 * (lane % 4);
      partial[token * kReduceStride + row] = acc[4 * j];
      partial[(token + 1) * kReduceStride + row] = acc[4 * j + 1];
      partial[token * kReduceStride + row + 8] = acc[4 * j + 2];
      partial[(token + 1) * kReduceStride + row + 8] = acc[4 * j + 3];
    }
  }
  cluster_sync();

  // Block `rank` finishes a slice of the tile's output columns: 4 at a time per thread, summed over the
  // cluster's blocks.
  const int tile_columns = silu ? kGroupRows : kBlockRows;
  const int slice = tile_columns / a.split, quads = slice / 4;
  const uint32_t partials = smem_address(smem);
  for (int item = static_cast<int>(threadIdx.x); item < p.tokens * quads; item += kThreads) {
    const int token = item / quads, first = rank * slice + 4 * (item % quads);
    const int64_t column = tile * tile_columns + first;
    if (column >= a.n_out) continue;  // n_out is a multiple of 4
    float4 sum = make_float4(0.0f, 0.0f, 0.0f, 0.0f), up = sum;
    const uint32_t at = partials + static_cast<uint32_t>(token * kReduceStride + first) * 4;
    for (int b = 0; b < a.split; ++b) {
      const uint32_t remote = cluster_address(at, static_cast<uint32_t>(b));
      const float4 v = load_cluster_f4(remote);
      sum.x += v.x, sum.y += v.y, sum.z += v.z, sum.w += v.w;
      if (silu) {
        const float4 u = load_cluster_f4(remote + kGroupRows * 4);
        up.x += u.x, up.y += u.y, up.z += u.z, up.w += u.w;
      }
    }
    float value[4] = {sum.x, sum.y, sum.z, sum.w};
    const float up_value[4] = {up.x, up.y, up.z, up.w};
    uint16_t* out = p.out + token * a.n_out + column;
    uint2 prior = make_uint2(0, 0);
    if (p.accumulate) prior = *reinterpret_cast<const uint2*>(out);
    const uint16_t prior_bits[4] = {static_cast<uint16_t>(prior.x), static_cast<uint16_t>(prior.x >> 16),
                                    static_cast<uint16_t>(prior.y), static_cast<uint16_t>(prior.y >> 16)};
    uint16_t bits[4];
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      if (silu) {
        float gate = value[e], u = up_value[e];
        if (p.bias) {
          gate += bf16_bits_to_f32(p.bias[column + e]);
          u += bf16_bits_to_f32(p.bias[p.silu_pairs + column + e]);
        }
        bits[e] = f32_to_bf16_bits(silu_mul(gate, u));
      } else {
        if (p.bias) value[e] += bf16_bits_to_f32(p.bias[column + e]);
        if (p.accumulate) value[e] += bf16_bits_to_f32(prior_bits[e]);
        bits[e] = f32_to_bf16_bits(value[e]);
      }
    }
    *reinterpret_cast<uint2*>(out) = make_uint2(bits[0] | static_cast<uint32_t>(bits[1]) << 16,
                                                bits[2] | static_cast<uint32_t>(bits[3]) << 16);
  }
  cluster_sync();  // a block's partials stay in place until every block of the cluster has read them
#endif  // RADIXLM_WGMMA
}

// A row-major bf16 matrix [rows][columns] (row stride in elements) as a 2-D tensor for TMA, in boxes of
// {64 columns, box_rows rows}, 128-byte swizzled (the layout the wgmma descriptors read); reads past its
// edges come back as zeros. False if the driver refuses it.
bool encode_matrix_map(CUtensorMap& map, const uint16_t* data, int64_t rows, int64_t columns, int64_t row_stride,
                       int box_rows) {
  const PFN_cuTensorMapEncodeTiled_v12000 encode = tensor_map_encoder();
  if (encode == nullptr) return false;
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(columns), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(row_stride) * 2};
  const cuuint32_t box[2] = {kStepColumns, static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t element_strides[2] = {1, 1};
  return encode(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<uint16_t*>(data), dims, strides, box,
                element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// Blocks per cluster: the most (of 1, 2, 4, 8) that keep every block of the matmul resident at once (two
// per SM) with at least 4 steps of K each. RADIXLM_CUDA_SMALL_M_SPLIT forces one (for measuring).
int pick_split(int64_t tiles, int32_t k_steps, int32_t num_sms) {
  static const int forced = [] {
    const char* value = std::getenv("RADIXLM_CUDA_SMALL_M_SPLIT");
    return value != nullptr ? std::atoi(value) : 0;
  }();
  int split = forced == 1 || forced == 2 || forced == 4 || forced == 8 ? forced : 0;
  if (split == 0) {
    split = 1;
    while (split < 8 && tiles * split * 2 <= 2 * static_cast<int64_t>(num_sms) && k_steps >= 8 * split) split *= 2;
  }
  while (split > 1 && split > k_steps) split /= 2;
  return split;
}

template <int kTokens>
size_t smem_bytes(int stages) {
  const size_t data = std::max<size_t>(static_cast<size_t>(stages) * stage_bytes<kTokens>(),
                                       static_cast<size_t>(kTokens) * kReduceStride * sizeof(float));
  return 1024 + data + 2 * static_cast<size_t>(stages) * sizeof(uint64_t);  // 1024: the base's alignment
}

template <int kTokens>
bool launch_tokens(const SmallMGemmParams& p, cudaStream_t stream) {
  constexpr int kStages = std::min(kMaxStages, kStageBudgetBytes / stage_bytes<kTokens>());
  static const bool attribute_set = [] {
    if (cudaFuncSetAttribute(small_m_gemm_kernel<kTokens>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(smem_bytes<kTokens>(kStages))) != cudaSuccess) {
      (void)cudaGetLastError();
      return false;
    }
    return true;
  }();
  if (!attribute_set) return false;
  const bool silu = p.silu_pairs > 0;
  Launch a;
  a.p = p;
  a.n_out = silu ? p.silu_pairs : p.n;
  a.k_steps = static_cast<int32_t>((p.k + kStepColumns - 1) / kStepColumns);
  const int64_t tiles = silu ? (p.silu_pairs + kGroupRows - 1) / kGroupRows : (p.n + kBlockRows - 1) / kBlockRows;
  a.split = pick_split(tiles, a.k_steps, p.num_sms);
  a.stages = kStages;
  a.barrier_offset = static_cast<int32_t>(smem_bytes<kTokens>(kStages) - 1024 - 2 * kStages * sizeof(uint64_t));
  CUtensorMap w_map{}, x_map{};
  if (!encode_matrix_map(w_map, p.w, p.n, p.k, p.k, kGroupRows) ||
      !encode_matrix_map(x_map, p.x, p.tokens, p.k, p.x_row_stride, kTokens)) {
    return false;
  }
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned int>(tiles * a.split));
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = smem_bytes<kTokens>(kStages);
  config.stream = stream;
  cudaLaunchAttribute cluster{};
  cluster.id = cudaLaunchAttributeClusterDimension;
  cluster.val.clusterDim.x = static_cast<unsigned int>(a.split);
  cluster.val.clusterDim.y = 1;
  cluster.val.clusterDim.z = 1;
  config.attrs = &cluster;
  config.numAttrs = 1;
  return cudaLaunchKernelEx(&config, small_m_gemm_kernel<kTokens>, a, w_map, x_map) == cudaSuccess;
}

}  // namespace

bool small_m_gemm_supported() { return device_is_sm90() && tensor_map_encoder() != nullptr; }

bool launch_small_m_gemm(const SmallMGemmParams& p, cudaStream_t stream) {
  const auto aligned = [](const void* pointer, uintptr_t bytes) {
    return reinterpret_cast<uintptr_t>(pointer) % bytes == 0;
  };
  const int64_t n_out = p.silu_pairs > 0 ? p.silu_pairs : p.n;
  if (!small_m_gemm_supported() || p.tokens < 1 || p.tokens > kSmallMGemmMaxTokens || p.k % 8 != 0 ||
      p.x_row_stride % 8 != 0 || n_out % 4 != 0 || (p.silu_pairs > 0 && p.n != 2 * p.silu_pairs) ||
      !aligned(p.x, 16) || !aligned(p.w, 16) || !aligned(p.out, 8) || p.n > INT32_MAX) {
    return false;
  }
  if (p.tokens <= 16) return launch_tokens<16>(p, stream);
  if (p.tokens <= 32) return launch_tokens<32>(p, stream);
  if (p.tokens <= 64) return launch_tokens<64>(p, stream);
  return launch_tokens<128>(p, stream);
}

}  // namespace radixlm::cuda
