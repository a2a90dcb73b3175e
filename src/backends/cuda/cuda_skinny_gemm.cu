// The few-token matmul out [T, N] = x [T, K] @ w [N, K]^T for 2..64 tokens on Hopper's warpgroup MMA.
//
// Why a kernel of our own: at these shapes a decode step's matmul is a stream of the weights (a few FLOPs
// per weight byte), and cuBLASLt's tiles, made for large M, leave the narrow matrices (4096 output rows at
// the 8B shape) short of HBM's rate: 2.7-3.0 TB/s at 64 tokens, against the 3.9-4.2 its wide ones reach.
// Here the tokens are the MMA's N side (padded to 16, 32 or 64) and the weights its M side, so one block
// streams 128 weight rows (two m64 slabs) through a ring of shared-memory stages filled by cp.async, and
// the K range is split over the blocks of a thread-block cluster so that every SM has blocks to run; the
// cluster's blocks then add their partial sums through distributed shared memory (no workspace, no second
// kernel) and each writes its share of the outputs, with the bias and, for the MLP's gate/up matmul, SiLU
// and the multiply by up fused (slab 0 holds gate rows, slab 1 the matching up rows).
//
// Operands: both K-major in 128-byte-swizzled shared memory (cuda_wgmma.cuh), one 64-column K step per
// stage: the weight slabs as A (m64), the tokens' rows as B (nT); rows past N, tokens past T and columns
// past K are zero-filled.

#include <algorithm>

#include "backends/cuda/cuda_attention_mma.cuh"
#include "backends/cuda/cuda_common.cuh"
#include "backends/cuda/cuda_kernels.h"
#include "backends/cuda/cuda_wgmma.cuh"

namespace radixlm::cuda {
namespace {

constexpr int kThreads = 128;    // one warpgroup
constexpr int kSlabRows = 64;    // weight rows per m64 slab; a block holds two
constexpr int kKStep = 64;       // K columns per stage: one 128-byte swizzled row
// Ring depths: 4 stages with two blocks per SM (97 KB each at 64 tokens), or 8 with one block per SM
// (193 KB): three or seven stages in flight while one is multiplied.
constexpr int kShallow = 4, kDeep = 8;
constexpr int kMaxSplits = 8;    // the portable thread-block cluster size

template <int kTokens>
struct alignas(1024) Stage {
  uint8_t w[2][kSlabRows * 128];
  uint8_t x[kTokens * 128];
};
template <int kTokens, int kStages>
constexpr size_t kSmemBytes = kStages * sizeof(Stage<kTokens>) + 1024;  // + room to align the base
static_assert(sizeof(Stage<16>) * kShallow >= 16 * (2 * kSlabRows + 4) * sizeof(float),
              "the epilogue's partial sums reuse the stages");

#if RADIXLM_WGMMA
__device__ __forceinline__ void cluster_sync() {
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;" ::: "memory");
}
// The generic address of the same shared-memory location in block `rank` of the cluster. Loads through it
// are ordinary loads, so the compiler keeps them after the cluster barrier and can issue many at once.
template <typename T>
__device__ __forceinline__ const T* in_block(const T* local, int rank) {
  uint64_t remote;
  asm("mapa.u64 %0, %1, %2;" : "=l"(remote) : "l"(reinterpret_cast<uint64_t>(local)), "r"(rank));
  return reinterpret_cast<const T*>(remote);
}
#endif

// Grid: x = K split (the cluster's rank), y = the block's 128 weight rows (or 64 gate/up row pairs).
template <int kTokens, int kStages>
__global__ void __launch_bounds__(kThreads) skinny_gemm_kernel(SkinnyGemmParams p) {
#if RADIXLM_WGMMA
  extern __shared__ uint8_t smem_raw[];
  const uint32_t raw_address = smem_address(smem_raw);
  uint8_t* base = smem_raw + ((1024 - raw_address % 1024) % 1024);
  auto* stages = reinterpret_cast<Stage<kTokens>*>(base);
  const int tid = static_cast<int>(threadIdx.x);
  const int splits = static_cast<int>(gridDim.x), split = static_cast<int>(blockIdx.x);
  const bool silu = p.silu_pairs > 0;
  // First weight row and row limit of each slab.
  const int64_t first0 = silu ? blockIdx.y * int64_t{kSlabRows} : blockIdx.y * int64_t{2 * kSlabRows};
  const int64_t first1 = silu ? p.silu_pairs + first0 : first0 + kSlabRows;
  const int64_t end0 = silu ? p.silu_pairs : p.n, end1 = p.n;
  const int64_t k_steps = (p.k + kKStep - 1) / kKStep;
  const int64_t step_begin = split * k_steps / splits, step_end = (split + 1) * k_steps / splits;
  const int steps = static_cast<int>(step_end - step_begin);

  // Thread t copies 16-byte chunk t % 8 of rows t / 8 + 16 i: eight threads read one 128-byte row piece.
  auto load = [&](int stage, int64_t k_step) {
    Stage<kTokens>& st = stages[stage];
    const int64_t col = k_step * kKStep + (tid % 8) * 8;
    const bool col_ok = col < p.k;
#pragma unroll
    for (int i = 0; i < kSlabRows * 8 / kThreads; ++i) {
      const int r = tid / 8 + i * (kThreads / 8);
      const int64_t row0 = first0 + r, row1 = first1 + r;
      const bool ok0 = col_ok && row0 < end0, ok1 = col_ok && row1 < end1;
      prefill::cp_async_16(st.w[0] + wgmma::swizzle128(r, tid % 8), p.w + (ok0 ? row0 * p.k + col : 0), ok0);
      prefill::cp_async_16(st.w[1] + wgmma::swizzle128(r, tid % 8), p.w + (ok1 ? row1 * p.k + col : 0), ok1);
    }
#pragma unroll
    for (int i = 0; i < kTokens * 8 / kThreads; ++i) {
      const int r = tid / 8 + i * (kThreads / 8);
      const bool ok = col_ok && r < p.tokens;
      prefill::cp_async_16(st.x + wgmma::swizzle128(r, tid % 8), p.x + (ok ? r * p.k + col : 0), ok);
    }
  };

  float acc0[kTokens / 2], acc1[kTokens / 2];
#pragma unroll
  for (int i = 0; i < kTokens / 2; ++i) acc0[i] = acc1[i] = 0.0f;
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < steps) load(s, step_begin + s);
    prefill::cp_async_commit();  // one group per stage, empty or not, so the wait count stays exact
  }
  for (int i = 0; i < steps; ++i) {
    prefill::cp_async_wait<kStages - 2>();  // stage i has landed: this thread's copies ...
    wgmma::fence_async_shared();             // ... visible to wgmma ...
    __syncthreads();                         // ... and everyone's
    const Stage<kTokens>& st = stages[i % kStages];
    const uint32_t w0 = smem_address(st.w[0]), w1 = smem_address(st.w[1]), x = smem_address(st.x);
    wgmma::fence();
#pragma unroll
    for (int kk = 0; kk < kKStep / 16; ++kk) {
      wgmma::mma(acc0, wgmma::k_major(w0, kk), wgmma::k_major(x, kk), true);
      wgmma::mma(acc1, wgmma::k_major(w1, kk), wgmma::k_major(x, kk), true);
    }
    wgmma::commit();
    wgmma::wait<1>();  // step i - 1's MMAs are done, so its stage refills now
    if (i + kStages - 1 < steps) load((i + kStages - 1) % kStages, step_begin + i + kStages - 1);
    prefill::cp_async_commit();
  }
  wgmma::wait<0>();
  wgmma::pin(acc0);
  wgmma::pin(acc1);
  prefill::cp_async_wait<0>();
  __syncthreads();  // every copy landed and every MMA read its operands: the stages are free

  // This block's partial sums as [token][128 rows] floats over the stages' memory (33 KB at 64 tokens); a
  // token's row is padded to 132 floats so the accumulator stores do not collide in shared-memory banks.
  constexpr int kLd = 2 * kSlabRows + 4;
  float* partial = reinterpret_cast<float*>(base);
  const int warp = tid / 32, lane = tid % 32;
  const int r0 = warp * 16 + lane / 4, r1 = r0 + 8;
#pragma unroll
  for (int t8 = 0; t8 < kTokens / 8; ++t8) {
    const int c = t8 * 8 + (lane % 4) * 2;
    partial[c * kLd + r0] = acc0[4 * t8];
    partial[(c + 1) * kLd + r0] = acc0[4 * t8 + 1];
    partial[c * kLd + r1] = acc0[4 * t8 + 2];
    partial[(c + 1) * kLd + r1] = acc0[4 * t8 + 3];
    partial[c * kLd + kSlabRows + r0] = acc1[4 * t8];
    partial[(c + 1) * kLd + kSlabRows + r0] = acc1[4 * t8 + 1];
    partial[c * kLd + kSlabRows + r1] = acc1[4 * t8 + 2];
    partial[(c + 1) * kLd + kSlabRows + r1] = acc1[4 * t8 + 3];
  }
  cluster_sync();  // every block's partials are written (and visible across the cluster)

  // Block `split` finishes its share of the 128 rows (64 pairs), four neighbouring rows of one token per
  // thread: the sum over the cluster in rank order (the same bits whichever block finishes which rows),
  // every block's four floats loaded before any is added.
  const int quads = (silu ? kSlabRows : 2 * kSlabRows) / 4;
  const int quad_begin = split * quads / splits, share = (split + 1) * quads / splits - quad_begin;
  for (int e = tid; e < p.tokens * share; e += kThreads) {
    const int t = e / share, j = (quad_begin + e % share) * 4;
    float4 lo[kMaxSplits], hi[kMaxSplits];
#pragma unroll
    for (int q = 0; q < kMaxSplits; ++q) {
      if (q < splits) {
        lo[q] = *in_block(reinterpret_cast<const float4*>(&partial[t * kLd + j]), q);
        if (silu) hi[q] = *in_block(reinterpret_cast<const float4*>(&partial[t * kLd + kSlabRows + j]), q);
      }
    }
    float a[4] = {0.0f, 0.0f, 0.0f, 0.0f}, b[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int q = 0; q < kMaxSplits; ++q) {
      if (q < splits) {
        a[0] += lo[q].x, a[1] += lo[q].y, a[2] += lo[q].z, a[3] += lo[q].w;
        if (silu) b[0] += hi[q].x, b[1] += hi[q].y, b[2] += hi[q].z, b[3] += hi[q].w;
      }
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int64_t column = first0 + j + i;
      if (silu) {
        if (column >= p.silu_pairs) continue;
        float gate = a[i], up = b[i];
        if (p.bias) {
          gate += bf16_bits_to_f32(p.bias[column]);
          up += bf16_bits_to_f32(p.bias[p.silu_pairs + column]);
        }
        // Rounded to bf16 first, then silu_and_mul's math: the same bits as the matmul and the op apart.
        gate = bf16_bits_to_f32(f32_to_bf16_bits(gate));
        up = bf16_bits_to_f32(f32_to_bf16_bits(up));
        static_cast<uint16_t*>(p.out)[t * p.silu_pairs + column] = f32_to_bf16_bits(gate / (1.0f + expf(-gate)) * up);
      } else {
        if (column >= p.n) continue;
        const float sum = p.bias ? a[i] + bf16_bits_to_f32(p.bias[column]) : a[i];
        if (p.out_f32) {
          static_cast<float*>(p.out)[t * p.n + column] = sum;
        } else {
          static_cast<uint16_t*>(p.out)[t * p.n + column] = f32_to_bf16_bits(sum);
        }
      }
    }
  }
  cluster_sync();  // no block leaves while another still reads its shared memory
#else
  (void)p;
#endif
}

template <int kTokens>
bool configure() {
  return cudaFuncSetAttribute(skinny_gemm_kernel<kTokens, kShallow>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                              static_cast<int>(kSmemBytes<kTokens, kShallow>)) == cudaSuccess &&
         cudaFuncSetAttribute(skinny_gemm_kernel<kTokens, kDeep>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                              static_cast<int>(kSmemBytes<kTokens, kDeep>)) == cudaSuccess;
}

template <int kTokens, int kStages>
void launch_tokens(const SkinnyGemmParams& p, int64_t row_blocks, int splits, cudaStream_t stream) {
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned int>(splits), static_cast<unsigned int>(row_blocks));
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = kSmemBytes<kTokens, kStages>;
  config.stream = stream;
  cudaLaunchAttribute attribute = {};
  attribute.id = cudaLaunchAttributeClusterDimension;
  attribute.val.clusterDim.x = static_cast<unsigned int>(splits);
  attribute.val.clusterDim.y = 1;
  attribute.val.clusterDim.z = 1;
  config.attrs = &attribute;
  config.numAttrs = 1;
  (void)cudaLaunchKernelEx(&config, skinny_gemm_kernel<kTokens, kStages>, p);  // errors surface at cudaGetLastError
}

}  // namespace

bool skinny_gemm_supported() {
  static const bool ok = [] {
    int device = 0, major = 0, minor = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess || major != 9 ||
        minor != 0 || !configure<16>() || !configure<32>() || !configure<64>()) {
      (void)cudaGetLastError();  // a refused attribute is not an error of the step
      return false;
    }
    return true;
  }();
  return ok;
}

namespace {

int32_t skinny_gemm_splits(int64_t row_blocks, int64_t k, int32_t num_sms, bool deep) {
  // About one wave of blocks: the K range split over up to kMaxSplits blocks when the matrix has few row
  // blocks (4096 rows: 32 blocks x 8 splits on 132 SMs), never below one 64-column step per split.
  const int64_t slots = int64_t{deep ? 1 : 2} * num_sms;
  const int64_t k_steps = (k + kKStep - 1) / kKStep;
  return static_cast<int32_t>(std::clamp<int64_t>(std::min(slots / std::max<int64_t>(row_blocks, 1), k_steps), 1,
                                                  kMaxSplits));
}

template <int kStages>
void launch_depth(const SkinnyGemmParams& p, int64_t row_blocks, cudaStream_t stream) {
  const int splits = p.splits > 0 ? std::min(p.splits, kMaxSplits)
                                  : skinny_gemm_splits(row_blocks, p.k, p.num_sms, kStages == kDeep);
  if (p.tokens <= 16) {
    launch_tokens<16, kStages>(p, row_blocks, splits, stream);
  } else if (p.tokens <= 32) {
    launch_tokens<32, kStages>(p, row_blocks, splits, stream);
  } else {
    launch_tokens<64, kStages>(p, row_blocks, splits, stream);
  }
}

}  // namespace

void launch_skinny_gemm(const SkinnyGemmParams& p, cudaStream_t stream) {
  if (p.n == 0 || p.tokens == 0) return;
  const int64_t row_blocks =
      p.silu_pairs > 0 ? (p.silu_pairs + kSlabRows - 1) / kSlabRows : (p.n + 2 * kSlabRows - 1) / (2 * kSlabRows);
  if (p.deep) {
    launch_depth<kDeep>(p, row_blocks, stream);
  } else {
    launch_depth<kShallow>(p, row_blocks, stream);
  }
}

}  // namespace radixlm::cuda
