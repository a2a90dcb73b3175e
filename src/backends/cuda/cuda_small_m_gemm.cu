// out [M, N] = x [M, K] @ w [N, K]^T for decode batches (2 <= M <= 128): a tensor-core GEMM shaped for
// weight bandwidth. At these M the matmul is a stream of the weights (15 GB per Llama-3-8B step), so the
// kernel is built around keeping that stream at the HBM ceiling:
// - It computes out^T = w x^T, so the weights are the mma's 16-row 'A' operand (m16n8k16, bf16 in, f32
//   accumulate) and the few tokens, padded to 8, are its 'B' columns: no MMA work is wasted on 16-row
//   padding of M. Each CTA owns 128 weight rows (8 warps x 16 rows), so every CTA re-reads the activations
//   [M, K-slice] from L2 for its 128 rows: at M = 64 that is half the weight traffic, which L2 absorbs.
// - A multi-stage cp.async ring streams [128 rows x 64 K] weight tiles (16 KB) and the matching
//   [M x 64] activation tile into shared memory, 3-6 stages deep (about 100 KB, two CTAs per SM), so
//   enough bytes are in flight per SM to cover HBM latency. Rows are 128 B, stored with their 16-byte chunks
//   XOR-swizzled by row so ldmatrix reads are bank-conflict-free. Rows past N, K past its end and tokens
//   past M are zero-filled by cp.async, so any N, any K % 8 == 0 and any M work.
// - Narrow matrices (N = 4096: 32 tiles) cannot fill 132 SMs, so K is split over a thread-block cluster of
//   up to 8 CTAs (sm_90); the partial [M, 128] f32 tiles are summed through distributed shared memory by
//   the cluster itself: no global workspace, no second kernel, nothing to zero, and graph capture is safe.

#include <cooperative_groups.h>

#include <cstdlib>

#include "backends/cuda/cuda_common.cuh"
#include "backends/cuda/cuda_small_m_gemm.h"

namespace radixlm::cuda {
namespace {

namespace cg = cooperative_groups;

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kTileN = kWarps * 16;  // weight rows per CTA: one 16-row mma tile per warp
constexpr int kTileK = 64;           // K per pipeline stage: 128-byte smem rows of eight 16-byte chunks
constexpr int kRowBytes = kTileK * 2;
constexpr int kMaxClusterSplits = 8;  // the portable cluster size
constexpr int kSmemBudget = 110 * 1024;  // per CTA, so two fit on one SM (228 KB)

template <int kTokenTiles>
struct Config {
  static constexpr int kTokens = kTokenTiles * 8;
  static constexpr int kStageBytes = (kTileN + kTokens) * kRowBytes;
  static constexpr int kFitStages = kSmemBudget / kStageBytes;
  static constexpr int kStages = kFitStages < 2 ? 2 : (kFitStages > 6 ? 6 : kFitStages);
  static constexpr int kReduceStride = kTileN + 4;  // floats; the padding spreads the fragment stores over banks
  static constexpr int kReduceBytes = kTokens * kReduceStride * 4;
  static constexpr int kSmemBytes = kStages * kStageBytes > kReduceBytes ? kStages * kStageBytes : kReduceBytes;
};

// Byte offset of 16-byte chunk `chunk` of smem row `row`: chunks are XOR-swizzled by the row's low 3 bits,
// so the 8 rows an ldmatrix phase reads at one logical chunk hit 8 different bank groups.
__device__ __forceinline__ uint32_t swizzled(int row, int chunk) {
  return static_cast<uint32_t>(row * kRowBytes + ((chunk ^ (row & 7)) << 4));
}

__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, bool valid) {
  // src-size 0 zero-fills the 16 bytes without reading src.
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}

__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Queues one stage: the CTA's [kTileN x 64] weight tile at K offset k0, then the [tokens x 64] activations.
template <int kTokenTiles>
__device__ __forceinline__ void load_stage(uint32_t stage, const SmallMGemmParams& p, int64_t n0, int64_t k0,
                                           int tid) {
  constexpr int kWeightChunks = kTileN * 8;
#pragma unroll
  for (int i = tid; i < kWeightChunks; i += kThreads) {
    const int row = i >> 3, chunk = i & 7;
    const int64_t n = n0 + row, k = k0 + chunk * 8;
    const bool valid = n < p.n && k < p.k;
    cp_async_16(stage + swizzled(row, chunk), valid ? p.w + n * p.k + k : p.w, valid);
  }
  const uint32_t x_stage = stage + kTileN * kRowBytes;
  constexpr int kTokenChunks = Config<kTokenTiles>::kTokens * 8;
#pragma unroll
  for (int i = tid; i < kTokenChunks; i += kThreads) {
    const int row = i >> 3, chunk = i & 7;
    const int64_t k = k0 + chunk * 8;
    const bool valid = row < p.tokens && k < p.k;
    cp_async_16(x_stage + swizzled(row, chunk), valid ? p.x + row * p.k + k : p.x, valid);
  }
}

// One stage's math for one warp: its 16 weight rows x 64 K against every token tile.
template <int kTokenTiles>
__device__ __forceinline__ void compute_stage(uint32_t stage, int warp, int lane, float (&acc)[kTokenTiles][4]) {
  const uint32_t x_stage = stage + kTileN * kRowBytes;
#pragma unroll
  for (int pair = 0; pair < 2; ++pair) {  // two k16 steps per pass, so one ldmatrix.x4 feeds B for both
    uint32_t a[2][4];
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      // Lanes 0-15 address rows 0-15 at the step's first 8 K, lanes 16-31 the same rows at its last 8:
      // the four 8x8 matrices land in the A fragment's order (a0: rows 0-7, a1: rows 8-15, a2/a3: K + 8).
      const int step = pair * 2 + half;
      ldmatrix_x4(a[half], stage + swizzled(warp * 16 + (lane & 15), step * 2 + (lane >> 4)));
    }
#pragma unroll
    for (int j = 0; j < kTokenTiles; ++j) {
      // Token rows are B's columns ("col" layout = x's rows): lanes 8q..8q+7 address tokens 0-7 at chunk q
      // of this pair's 32 K, giving b0/b1 of the first step and b0/b1 of the second.
      uint32_t b[4];
      ldmatrix_x4(b, x_stage + swizzled(j * 8 + (lane & 7), pair * 4 + (lane >> 3)));
      mma_bf16(acc[j], a[0], b[0], b[1]);
      mma_bf16(acc[j], a[1], b[2], b[3]);
    }
  }
}

template <int kTokenTiles>
__global__ void __launch_bounds__(kThreads) small_m_gemm_kernel(SmallMGemmParams p) {
  using C = Config<kTokenTiles>;
  extern __shared__ __align__(128) unsigned char smem[];
  const uint32_t smem_base = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid % 32;
  const int64_t n0 = static_cast<int64_t>(blockIdx.y) * kTileN;
  // blockIdx.x is the K split; the cluster spans all of gridDim.x, so it is also the CTA's cluster rank.
  const int split = static_cast<int>(blockIdx.x), splits = static_cast<int>(gridDim.x);
  const int64_t k_tiles = (p.k + kTileK - 1) / kTileK;
  const int64_t first = k_tiles * split / splits, iters64 = k_tiles * (split + 1) / splits - first;
  const int iters = static_cast<int>(iters64);

  float acc[kTokenTiles][4];
#pragma unroll
  for (int j = 0; j < kTokenTiles; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;

#pragma unroll
  for (int s = 0; s < C::kStages - 1; ++s) {
    if (s < iters) load_stage<kTokenTiles>(smem_base + s * C::kStageBytes, p, n0, (first + s) * kTileK, tid);
    cp_async_commit();
  }
  for (int it = 0; it < iters; ++it) {
    cp_async_wait<C::kStages - 2>();
    __syncthreads();  // stage `it` is visible to all warps, and all are done with the slot refilled below
    const int next = it + C::kStages - 1;
    if (next < iters) {
      load_stage<kTokenTiles>(smem_base + (next % C::kStages) * C::kStageBytes, p, n0, (first + next) * kTileK, tid);
    }
    cp_async_commit();
    compute_stage<kTokenTiles>(smem_base + (it % C::kStages) * C::kStageBytes, warp, lane, acc);
  }
  cp_async_wait<0>();
  __syncthreads();  // the ring is drained and read: reuse its memory for the partial tile

  // The partial tile, [tokens][rows] f32. Fragment c0/c1: row g, tokens 2t/2t+1; c2/c3: row g + 8.
  float* partial = reinterpret_cast<float*>(smem);
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int j = 0; j < kTokenTiles; ++j) {
    const int row = warp * 16 + g, token = j * 8 + 2 * t;
    partial[token * C::kReduceStride + row] = acc[j][0];
    partial[(token + 1) * C::kReduceStride + row] = acc[j][1];
    partial[token * C::kReduceStride + row + 8] = acc[j][2];
    partial[(token + 1) * C::kReduceStride + row + 8] = acc[j][3];
  }

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  cg::cluster_group cluster = cg::this_cluster();
  cluster.sync();  // every split's partial tile is written (and visible across the cluster)
#else
  __syncthreads();  // before sm_90 the launcher never splits K (splits == 1)
#endif
  // Each split sums and writes its share of the tile's outputs, reading the peers' partials over DSMEM;
  // consecutive threads take consecutive output columns, so the stores coalesce.
  const int elements = p.tokens * kTileN;
  for (int e = split * kThreads + tid; e < elements; e += splits * kThreads) {
    const int token = e / kTileN, row = e % kTileN;
    const int64_t n = n0 + row;
    if (n >= p.n) continue;
    float sum = 0.0f;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    for (int q = 0; q < splits; ++q) {
      const float* peer = cluster.map_shared_rank(partial, static_cast<unsigned int>(q));
      sum += peer[token * C::kReduceStride + row];
    }
#else
    sum = partial[token * C::kReduceStride + row];
#endif
    if (p.bias) sum += bf16_bits_to_f32(p.bias[n]);
    if (p.out_f32) {
      static_cast<float*>(p.out)[token * p.n + n] = sum;
    } else {
      static_cast<uint16_t*>(p.out)[token * p.n + n] = f32_to_bf16_bits(sum);
    }
  }
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  cluster.sync();  // no CTA exits (freeing its shared memory) while a peer may still read it
#endif
}

struct DeviceFacts {
  int sms = 132;
  // Clusters (the K split) only where the sm_90a code runs: any other GPU JITs the compute_80 PTX, whose
  // kernel cannot sum over a cluster, so it gets one split.
  bool clusters = true;
};

const DeviceFacts& device_facts() {
  static const DeviceFacts facts = [] {
    DeviceFacts f;
    int device = 0, sms = 0, major = 0;
    if (cudaGetDevice(&device) == cudaSuccess &&
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) == cudaSuccess &&
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) == cudaSuccess) {
      f.sms = sms;
      f.clusters = major == 9;
    }
    return f;
  }();
  return facts;
}

// K splits for a shape: the most (a power of two up to the cluster limit) that keeps the grid within two
// CTAs per SM, since more would only queue a second wave; each split keeps at least 4 K tiles.
int pick_splits(const SmallMGemmParams& p, int64_t row_tiles) {
  const DeviceFacts& facts = device_facts();
  if (!facts.clusters) return 1;
  int splits = p.splits;
  if (splits == 0) {
    static const int env_splits = [] {
      const char* env = std::getenv("RADIXLM_SMALL_M_SPLITS");
      return env ? std::atoi(env) : 0;
    }();
    splits = env_splits;
  }
  const int64_t k_tiles = (p.k + kTileK - 1) / kTileK;
  if (splits <= 0) {
    splits = 1;
    while (splits < kMaxClusterSplits && row_tiles * splits * 2 <= 2LL * facts.sms && k_tiles >= splits * 2 * 4) {
      splits *= 2;
    }
  }
  int pow2 = 1;  // a cluster of 1, 2, 4 or 8 CTAs
  while (pow2 * 2 <= splits && pow2 * 2 <= kMaxClusterSplits) pow2 *= 2;
  while (pow2 > 1 && pow2 > k_tiles) pow2 /= 2;
  return pow2;
}

template <int kTokenTiles>
cudaError_t allow_shared_memory() {
  return cudaFuncSetAttribute(small_m_gemm_kernel<kTokenTiles>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                              Config<kTokenTiles>::kSmemBytes);
}

template <int kTokenTiles>
cudaError_t launch_tiles(const SmallMGemmParams& p, cudaStream_t stream) {
  using C = Config<kTokenTiles>;
  const int64_t row_tiles = (p.n + kTileN - 1) / kTileN;
  const int splits = pick_splits(p, row_tiles);
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned int>(splits), static_cast<unsigned int>(row_tiles), 1);
  config.blockDim = dim3(kThreads, 1, 1);
  config.dynamicSmemBytes = C::kSmemBytes;
  config.stream = stream;
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeClusterDimension;
  attribute[0].val.clusterDim.x = static_cast<unsigned int>(splits);
  attribute[0].val.clusterDim.y = 1;
  attribute[0].val.clusterDim.z = 1;
  config.attrs = attribute;
  config.numAttrs = device_facts().clusters ? 1 : 0;
  return cudaLaunchKernelEx(&config, small_m_gemm_kernel<kTokenTiles>, p);
}

}  // namespace

bool small_m_gemm_supports(const SmallMGemmParams& p) {
  return p.tokens >= 1 && p.tokens <= kSmallMGemmMaxTokens && p.k > 0 && p.k % 8 == 0 && p.n > 0 &&
         (p.n + kTileN - 1) / kTileN <= 65535 && reinterpret_cast<uintptr_t>(p.x) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(p.w) % 16 == 0;
}

cudaError_t prepare_small_m_gemm() {
  static const cudaError_t prepared = [] {
    (void)device_facts();
    for (cudaError_t e : {allow_shared_memory<1>(), allow_shared_memory<2>(), allow_shared_memory<4>(),
                          allow_shared_memory<8>(), allow_shared_memory<16>()}) {
      if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
  }();
  return prepared;
}

cudaError_t launch_small_m_gemm(const SmallMGemmParams& p, cudaStream_t stream) {
  if (p.n == 0 || p.tokens == 0) return cudaSuccess;
  if (const cudaError_t prepared = prepare_small_m_gemm(); prepared != cudaSuccess) return prepared;
  const int token_tiles = (p.tokens + 7) / 8;
  if (token_tiles <= 1) return launch_tiles<1>(p, stream);
  if (token_tiles <= 2) return launch_tiles<2>(p, stream);
  if (token_tiles <= 4) return launch_tiles<4>(p, stream);
  if (token_tiles <= 8) return launch_tiles<8>(p, stream);
  return launch_tiles<16>(p, stream);
}

}  // namespace radixlm::cuda
