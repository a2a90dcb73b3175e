#pragma once
// The prefill/extend attention kernels on tensor cores, FlashAttention-2 style with everything per row in
// registers: each warp owns 16 query rows (rows are tokens x the query heads of one KV head, token-major,
// so GQA reads each K/V tile once for the whole group). The warp's Q fragments are loaded once; per tile of
// 64 keys staged from the paged cache into padded shared memory, S = Q K^T is computed with mma.sync
// m16n8k16 (bf16 in, f32 accumulate) into registers, the online softmax runs on those registers (a row's
// values live in one quad of lanes), the S accumulators are repacked in place as the bf16 A operand of
// O += P V (the m16n8 accumulator and the m16n8k16 A fragment share their layout), and O stays in registers
// until the end. Fragment layouts are the PTX ISA's for mma.m16n8k16 and ldmatrix.
//
// prefill::attention_prefill_kernel (bottom) is the default: 8 (or 4) warps per block, cp.async two-stage
// K/V pipeline, mask only on diagonal tiles, longest tiles first. attention_mma_kernel is the previous
// 4-warp kernel with synchronous staging, kept selectable (AttentionParams::prefill_kernel or
// RADIXLM_CUDA_PREFILL_ATTENTION=legacy) until the new one has been measured and checked on the GPU.

#include <cuda_bf16.h>

#include "backends/cuda/cuda_common.cuh"
#include "backends/cuda/cuda_kernels.h"

namespace radixlm::cuda {

constexpr int kMmaThreads = 128;
constexpr int kMmaRows = 64;
constexpr int kMmaKeys = 64;

template <int kDim>
struct MmaSmem {
  static constexpr int kLd = kDim + 8;  // bf16 row stride: 16 bytes of padding keeps ldmatrix conflict-free
  alignas(16) __nv_bfloat16 q[kMmaRows * kLd];
  alignas(16) __nv_bfloat16 k[kMmaKeys * kLd];
  alignas(16) __nv_bfloat16 v[kMmaKeys * kLd];
};

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* pointer) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_address(pointer)));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* pointer) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_address(pointer)));
}

// d += a (16x16, row) * b (16x8, col); bf16 inputs, f32 accumulators.
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

__device__ __forceinline__ float fast_exp2(float x) {  // 2^x; ex2.approx(-inf) == +0
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// Online softmax on the S accumulators (m16n8 layout: [n-tile][row0 lo, row0 hi, row1 lo, row1 hi]): the
// base-2 scores become unnormalised probabilities exp2(s - base) in place (exp2f, or fast_exp2 with
// kFastExp2), and this lane's share of each row's sum is added to sum0 / sum1.
template <bool kFastExp2 = false, int kTiles>
__device__ __forceinline__ void exponentiate_scores(float (&sc)[kTiles][4], float base0, float base1, float& sum0,
                                                    float& sum1) {
  const auto pow2 = [](float x) { return kFastExp2 ? fast_exp2(x) : exp2f(x); };
#pragma unroll
  for (int t = 0; t < kTiles; ++t) {
    sc[t][0] = pow2(sc[t][0] - base0);
    sc[t][1] = pow2(sc[t][1] - base0);
    sc[t][2] = pow2(sc[t][2] - base1);
    sc[t][3] = pow2(sc[t][3] - base1);
    sum0 += sc[t][0] + sc[t][1];
    sum1 += sc[t][2] + sc[t][3];
  }
}

// O's accumulators (m16n8 tiles over head_dim) times each row's rescale factor.
template <int kDimTiles>
__device__ __forceinline__ void rescale_output(float (&o)[kDimTiles][4], float alpha0, float alpha1) {
#pragma unroll
  for (int t = 0; t < kDimTiles; ++t) {
    o[t][0] *= alpha0;
    o[t][1] *= alpha0;
    o[t][2] *= alpha1;
    o[t][3] *= alpha1;
  }
}

// Score n-tiles 2 * pair and 2 * pair + 1 as the m16n8k16 A operand of O += P V (the same register layout).
template <int kTiles>
__device__ __forceinline__ void probabilities_fragment(uint32_t (&a)[4], const float (&sc)[kTiles][4], int pair) {
  a[0] = pack_bf16(sc[2 * pair][0], sc[2 * pair][1]);
  a[1] = pack_bf16(sc[2 * pair][2], sc[2 * pair][3]);
  a[2] = pack_bf16(sc[2 * pair + 1][0], sc[2 * pair + 1][1]);
  a[3] = pack_bf16(sc[2 * pair + 1][2], sc[2 * pair + 1][3]);
}

// The online softmax's step for one tile, given each row's max over the lane's scores of it: the rows' new
// max (over the quad), the tile's scores exponentiated in place (exponentiate_scores), the running sums and O
// rescaled to the new max. exp2f, or fast_exp2 with kFastExp2.
template <bool kFastExp2, int kTiles, int kDimTiles>
__device__ __forceinline__ void online_softmax_step(float (&sc)[kTiles][4], float (&o)[kDimTiles][4], float tile_max0,
                                                    float tile_max1, float& max0, float& max1, float& sum0,
                                                    float& sum1) {
  tile_max0 = quad_max(tile_max0);
  tile_max1 = quad_max(tile_max1);
  const float new_max0 = fmaxf(max0, tile_max0), new_max1 = fmaxf(max1, tile_max1);
  // A row with nothing visible yet keeps max -inf: its p are 0 and its (zero) state needs no rescale.
  const float base0 = new_max0 == -INFINITY ? 0.0f : new_max0;
  const float base1 = new_max1 == -INFINITY ? 0.0f : new_max1;
  const float alpha0 = kFastExp2 ? fast_exp2(max0 - base0) : exp2f(max0 - base0);
  const float alpha1 = kFastExp2 ? fast_exp2(max1 - base1) : exp2f(max1 - base1);
  max0 = new_max0;
  max1 = new_max1;
  float tile_sum0 = 0.0f, tile_sum1 = 0.0f;
  exponentiate_scores<kFastExp2>(sc, base0, base1, tile_sum0, tile_sum1);
  sum0 = sum0 * alpha0 + tile_sum0;  // per-lane partial sums; the quad adds them up at the end
  sum1 = sum1 * alpha1 + tile_sum1;
  rescale_output(o, alpha0, alpha1);
}

// O += P V for one tile of kKeys keys: P straight from the S accumulators (two n8 tiles make one k16 A
// fragment), V from the tile's rows in shared memory (kLd elements apart).
template <int kKeys, int kLd, int kDimTiles, int kTiles>
__device__ __forceinline__ void accumulate_pv(float (&o)[kDimTiles][4], const float (&sc)[kTiles][4],
                                              const __nv_bfloat16* v, int lane) {
#pragma unroll
  for (int kk = 0; kk < kKeys / 16; ++kk) {
    uint32_t a[4];
    probabilities_fragment(a, sc, kk);
#pragma unroll
    for (int t = 0; t < kDimTiles; t += 2) {
      uint32_t b[4];
      const int j = lane / 8, r = lane % 8;
      ldmatrix_x4_trans(b, &v[(kk * 16 + (j % 2) * 8 + r) * kLd + t * 8 + (j / 2) * 8]);
      mma_bf16(o[t], a, b[0], b[1]);
      mma_bf16(o[t + 1], a, b[2], b[3]);
    }
  }
}

// The warp's two rows of O (row0 and row1 of the block's tile; the quad's lanes hold a row's sum in parts),
// divided by their sums and stored as bf16. Tile row r is token q_begin + r / group and query head
// kv_head * group + r % group; rows from `rows` on are not the block's.
template <int kDim, int kDimTiles>
__device__ __forceinline__ void store_output_rows(const AttentionParams& p, const float (&o)[kDimTiles][4], float sum0,
                                                  float sum1, int row0, int row1, int rows, int64_t q_begin, int group,
                                                  int kv_head, int quad_col) {
  sum0 = quad_sum(sum0);
  sum1 = quad_sum(sum1);
  const float inverse0 = sum0 > 0.0f ? 1.0f / sum0 : 0.0f, inverse1 = sum1 > 0.0f ? 1.0f / sum1 : 0.0f;
  const int64_t out_row = static_cast<int64_t>(p.q_heads) * kDim;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int r = half == 0 ? row0 : row1;
    if (r >= rows) continue;
    const float inverse = half == 0 ? inverse0 : inverse1;
    const int64_t token = q_begin + r / group;
    const int head = kv_head * group + r % group;
    uint16_t* out = p.out + token * out_row + head * kDim;
#pragma unroll
    for (int t = 0; t < kDimTiles; ++t) {
      const int d = t * 8 + quad_col * 2;
      *reinterpret_cast<uint32_t*>(out + d) = pack_bf16(o[t][2 * half] * inverse, o[t][2 * half + 1] * inverse);
    }
  }
}

// The previous (legacy) prefill kernel: 4 warps, 64 rows, K/V staged synchronously.
template <int kDim>
__global__ void __launch_bounds__(kMmaThreads) attention_mma_kernel(AttentionParams p, StepArrays step) {
  using Smem = MmaSmem<kDim>;
  constexpr int kLd = Smem::kLd;
  constexpr int kChunks = kDim / 8;        // 16-byte chunks per head row
  constexpr int kKeyTiles = kMmaKeys / 8;  // n8 tiles of S
  constexpr int kDimTiles = kDim / 8;      // n8 tiles of O
  extern __shared__ __align__(128) unsigned char smem_raw[];
  Smem& s = *reinterpret_cast<Smem*>(smem_raw);
  const int group = p.q_heads / p.kv_heads;
  const int tokens_per_tile = kMmaRows / group;
  const int seq = static_cast<int>(blockIdx.y);
  const int kv_head = static_cast<int>(blockIdx.z);
  const int q_begin = step.query_start[seq] + static_cast<int>(blockIdx.x) * tokens_per_tile;
  const int q_end = min(q_begin + tokens_per_tile, step.query_start[seq + 1]);
  if (q_begin >= q_end) return;
  const int rows = (q_end - q_begin) * group;
  const int32_t* pages = step.page_table + step.page_table_start[seq];
  const int64_t kv_row = static_cast<int64_t>(p.kv_heads) * kDim;
  const int key_end = step.positions[q_end - 1] + 1;
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int quad_row = lane / 4, quad_col = lane % 4;

  for (int e = threadIdx.x; e < kMmaRows * kChunks; e += kMmaThreads) {
    const int r = e / kChunks, c = e % kChunks;
    uint4 value = make_uint4(0, 0, 0, 0);
    if (r < rows) {
      const int token = q_begin + r / group, head = kv_head * group + r % group;
      value = *reinterpret_cast<const uint4*>(p.q + token * p.q_stride + head * kDim + c * 8);
    }
    *reinterpret_cast<uint4*>(&s.q[r * kLd + c * 8]) = value;
  }
  __syncthreads();

  // This lane's two rows (quad_row and quad_row + 8 of the warp's 16) and how many keys each may see.
  const int row0 = warp * 16 + quad_row, row1 = row0 + 8;
  const int visible0 = row0 < rows ? step.positions[q_begin + row0 / group] + 1 : 0;
  const int visible1 = row1 < rows ? step.positions[q_begin + row1 / group] + 1 : 0;
  const int warp_last_row = min(warp * 16 + 15, rows - 1);
  const int warp_key_end = warp * 16 < rows ? step.positions[q_begin + warp_last_row / group] + 1 : 0;

  uint32_t q_frag[kDim / 16][4];
#pragma unroll
  for (int kk = 0; kk < kDim / 16; ++kk) {
    const int j = lane / 8, r = lane % 8;
    ldmatrix_x4(q_frag[kk], &s.q[(warp * 16 + (j % 2) * 8 + r) * kLd + kk * 16 + (j / 2) * 8]);
  }
  float o[kDimTiles][4];
#pragma unroll
  for (int t = 0; t < kDimTiles; ++t) o[t][0] = o[t][1] = o[t][2] = o[t][3] = 0.0f;
  float max0 = -INFINITY, max1 = -INFINITY, sum0 = 0.0f, sum1 = 0.0f;
  const float scale_log2 = p.scale * 1.4426950408889634f;  // exp(x * scale) == exp2(x * scale * log2 e)

  for (int k0 = 0; k0 < key_end; k0 += kMmaKeys) {
    __syncthreads();  // every warp is done with the previous tile
    for (int e = threadIdx.x; e < kMmaKeys * kChunks; e += kMmaThreads) {
      const int j = e / kChunks, c = e % kChunks;
      const int key = k0 + j;
      uint4 kv = make_uint4(0, 0, 0, 0), vv = make_uint4(0, 0, 0, 0);
      if (key < key_end) {
        const int64_t slot = static_cast<int64_t>(pages[key / step.page_size]) * step.page_size + key % step.page_size;
        const int64_t offset = slot * kv_row + static_cast<int64_t>(kv_head) * kDim + c * 8;
        kv = *reinterpret_cast<const uint4*>(p.k_cache + offset);
        vv = *reinterpret_cast<const uint4*>(p.v_cache + offset);
      }
      *reinterpret_cast<uint4*>(&s.k[j * kLd + c * 8]) = kv;
      *reinterpret_cast<uint4*>(&s.v[j * kLd + c * 8]) = vv;
    }
    __syncthreads();
    if (k0 >= warp_key_end) continue;  // the whole tile is in this warp's causal future

    float sc[kKeyTiles][4];
#pragma unroll
    for (int t = 0; t < kKeyTiles; ++t) sc[t][0] = sc[t][1] = sc[t][2] = sc[t][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < kDim / 16; ++kk) {
#pragma unroll
      for (int t = 0; t < kKeyTiles; t += 2) {
        uint32_t b[4];
        const int j = lane / 8, r = lane % 8;
        ldmatrix_x4(b, &s.k[(t * 8 + (j / 2) * 8 + r) * kLd + kk * 16 + (j % 2) * 8]);
        mma_bf16(sc[t], q_frag[kk], b[0], b[1]);
        mma_bf16(sc[t + 1], q_frag[kk], b[2], b[3]);
      }
    }

    // Online softmax on the registers: lane holds keys k0 + t*8 + quad_col*2 + {0,1} of rows row0 and row1.
    float tile_max0 = -INFINITY, tile_max1 = -INFINITY;
#pragma unroll
    for (int t = 0; t < kKeyTiles; ++t) {
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int key = k0 + t * 8 + quad_col * 2 + i;
        sc[t][i] = key < visible0 ? sc[t][i] * scale_log2 : -INFINITY;
        sc[t][2 + i] = key < visible1 ? sc[t][2 + i] * scale_log2 : -INFINITY;
        tile_max0 = fmaxf(tile_max0, sc[t][i]);
        tile_max1 = fmaxf(tile_max1, sc[t][2 + i]);
      }
    }
    online_softmax_step<false>(sc, o, tile_max0, tile_max1, max0, max1, sum0, sum1);

    accumulate_pv<kMmaKeys, kLd>(o, sc, s.v, lane);
  }
  store_output_rows<kDim>(p, o, sum0, sum1, row0, row1, rows, q_begin, group, kv_head, quad_col);
}

// ---------------------------------------------------------------------------------------------------------
// The pipelined prefill/extend kernel (the default). Same fragment scheme as above, with what the FA2
// kernel lacks for long prompts:
//  - kWarps warps (16 query rows each) share every staged K/V tile, so a tile read from the cache serves
//    16 * kWarps rows (tokens x the query heads of one KV head);
//  - K/V tiles are gathered from the paged cache with cp.async into a ring of kStages stages: tiles
//    i + 1 .. i + kStages - 1 are in flight while tile i is multiplied, and one barrier per tile both
//    publishes tile i and frees the stage the next prefetch overwrites (so warps drift apart within a
//    tile instead of meeting twice); the page ids are read a tile ahead of the cp.asyncs; keys past the
//    block's last visible key are zero-filled (a NaN byte pattern left in shared memory would otherwise
//    reach O through 0 * NaN);
//  - the causal mask is applied only on the tiles that cross some row's diagonal (warp-uniform branch);
//    tiles wholly in a warp's future are skipped by that warp;
//  - the query tiles of a sequence run longest first (grid y counts down), with the KV heads in grid x,
//    so the blocks the GPU starts last are the short ones and the tail of the launch stays short;
//  - exp2 via ex2.approx on scores pre-multiplied by scale * log2(e).
namespace prefill {

constexpr int kKeys = 64;

template <int kDim, int kWarps, int kStages>
struct Smem {
  static constexpr int kRows = 16 * kWarps;
  static constexpr int kLd = kDim + 8;  // 16 bytes of padding per row: ldmatrix and cp.async conflict-free
  alignas(16) __nv_bfloat16 q[kRows * kLd];
  alignas(16) __nv_bfloat16 k[kStages][kKeys * kLd];
  alignas(16) __nv_bfloat16 v[kStages][kKeys * kLd];
};

// Three stages where one block has the SM (139 KB for d = 128); two where two blocks share it.
template <int kBlocksPerSm>
inline constexpr int kStagesFor = kBlocksPerSm == 1 ? 3 : 2;

// Gathers K/V tiles of one KV head from the paged cache. Each thread copies the same (key, chunk) slots of
// every tile; the page ids of a tile are read one tile ahead (fetch_pages), so issuing the cp.asyncs
// never waits on a page-table load.
template <int kDim, int kThreads>
struct KvTileLoader {
  static constexpr int kLd = kDim + 8, kChunks = kDim / 8, kTotal = kKeys * kChunks;
  static constexpr int kIters = (kTotal + kThreads - 1) / kThreads;
  const int32_t* pages;
  int page_size;
  int key_end;
  int64_t kv_row;
  int64_t head_offset;
  int32_t page[kIters];  // page ids of the next tile to issue, per copy slot

  __device__ __forceinline__ static int element(int i) { return i * kThreads + static_cast<int>(threadIdx.x); }

  __device__ __forceinline__ void fetch_pages(int k0) {
#pragma unroll
    for (int i = 0; i < kIters; ++i) {
      const int key = k0 + element(i) / kChunks;
      page[i] = element(i) < kTotal && key < key_end ? pages[key / page_size] : 0;
    }
  }

  // cp.asyncs for keys [k0, k0 + kKeys) into sk / sv; needs fetch_pages(k0) first. Keys past key_end are
  // zero-filled.
  __device__ __forceinline__ void issue(__nv_bfloat16* sk, __nv_bfloat16* sv, const AttentionParams& p, int k0) const {
#pragma unroll
    for (int i = 0; i < kIters; ++i) {
      const int e = element(i);
      if (kTotal % kThreads != 0 && e >= kTotal) break;
      const int j = e / kChunks, c = e % kChunks;
      const int key = k0 + j;
      const bool valid = key < key_end;
      const int64_t slot = static_cast<int64_t>(page[i]) * page_size + key % page_size;
      const int64_t offset = valid ? slot * kv_row + head_offset + c * 8 : 0;
      cp_async_16(&sk[j * kLd + c * 8], p.k_cache + offset, valid);
      cp_async_16(&sv[j * kLd + c * 8], p.v_cache + offset, valid);
    }
  }
};

// With up to 8 warps per SM (8 x 1, 4 x 2) a thread may use 255 registers and Q fragments live in
// registers (~230 for d = 128). With 8 x 2 (16 warps per SM) registers are capped at 128 and the Q
// fragments are re-read from shared memory per key tile (8 more ldmatrix per 64 per tile for d = 128).
template <int kDim, int kWarps, int kBlocksPerSm>
__global__ void __launch_bounds__(kWarps * 32, kBlocksPerSm)
    attention_prefill_kernel(AttentionParams p, StepArrays step) {
  constexpr bool kQInRegisters = kWarps * kBlocksPerSm <= 8;
  constexpr int kStages = kStagesFor<kBlocksPerSm>;
  using S = Smem<kDim, kWarps, kStages>;
  constexpr int kThreads = kWarps * 32;
  constexpr int kRows = S::kRows;
  constexpr int kLd = S::kLd;
  constexpr int kChunks = kDim / 8;
  constexpr int kKeyTiles = kKeys / 8;  // n8 tiles of S
  constexpr int kDimTiles = kDim / 8;   // n8 tiles of O
  extern __shared__ __align__(128) unsigned char smem_raw[];
  S& s = *reinterpret_cast<S*>(smem_raw);

  const int group = p.q_heads / p.kv_heads;
  const int tokens_per_tile = kRows / group;
  const int kv_head = static_cast<int>(blockIdx.x);
  const int tile = static_cast<int>(gridDim.y - 1 - blockIdx.y);  // longest query tiles first
  const int seq = static_cast<int>(blockIdx.z);
  const int q_begin = step.query_start[seq] + tile * tokens_per_tile;
  const int q_end = min(q_begin + tokens_per_tile, step.query_start[seq + 1]);
  if (q_begin >= q_end) return;
  const int rows = (q_end - q_begin) * group;
  const int32_t* pages = step.page_table + step.page_table_start[seq];
  const int page_size = step.page_size;
  const int64_t head_offset = static_cast<int64_t>(kv_head) * kDim;
  const int key_end = step.positions[q_end - 1] + 1;
  const int num_key_tiles = (key_end + kKeys - 1) / kKeys;
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int quad_row = lane / 4, quad_col = lane % 4;

  // Q (rows past the tile's last token zero-filled), then the first kStages - 1 K/V tiles: one commit group
  // each (empty past the last tile, so the group count is the same for every block).
  for (int e = static_cast<int>(threadIdx.x); e < kRows * kChunks; e += kThreads) {
    const int r = e / kChunks, c = e % kChunks;
    const bool valid = r < rows;
    const int64_t token = valid ? q_begin + r / group : 0;
    const int head = valid ? kv_head * group + r % group : 0;
    cp_async_16(&s.q[r * kLd + c * 8], p.q + token * p.q_stride + head * kDim + c * 8, valid);
  }
  cp_async_commit();
  KvTileLoader<kDim, kThreads> loader{pages, page_size, key_end, static_cast<int64_t>(p.kv_heads) * kDim,
                                      head_offset, {}};
  loader.fetch_pages(0);
#pragma unroll
  for (int st = 0; st < kStages - 1; ++st) {
    if (st < num_key_tiles) loader.issue(s.k[st], s.v[st], p, st * kKeys);
    cp_async_commit();
    if (st + 1 < num_key_tiles) loader.fetch_pages((st + 1) * kKeys);
  }

  // This lane's two rows (quad_row and quad_row + 8 of the warp's 16) and how many keys each may see;
  // rows are token-major, so the warp's first row sees the fewest keys and its last row the most.
  const int row0 = warp * 16 + quad_row, row1 = row0 + 8;
  const int visible0 = row0 < rows ? step.positions[q_begin + row0 / group] + 1 : 0;
  const int visible1 = row1 < rows ? step.positions[q_begin + row1 / group] + 1 : 0;
  const bool warp_has_rows = warp * 16 < rows;
  const int warp_key_end =
      warp_has_rows ? step.positions[q_begin + min(warp * 16 + 15, rows - 1) / group] + 1 : 0;
  // Keys below this are visible to every valid row of the warp (rows past `rows` are never written).
  const int warp_key_unmasked = warp_has_rows ? step.positions[q_begin + (warp * 16) / group] + 1 : 0;

  cp_async_wait<kStages - 1>();  // Q has landed (the K/V tiles may still be in flight)
  __syncthreads();
  // The lane's ldmatrix address of its warp's Q rows, 16-column slice kk at + kk * 16.
  const __nv_bfloat16* q_lane = &s.q[(warp * 16 + ((lane / 8) % 2) * 8 + lane % 8) * kLd + (lane / 16) * 8];
  uint32_t q_frag[kQInRegisters ? kDim / 16 : 1][4];
  if constexpr (kQInRegisters) {
#pragma unroll
    for (int kk = 0; kk < kDim / 16; ++kk) ldmatrix_x4(q_frag[kk], q_lane + kk * 16);
  }
  float o[kDimTiles][4];
#pragma unroll
  for (int t = 0; t < kDimTiles; ++t) o[t][0] = o[t][1] = o[t][2] = o[t][3] = 0.0f;
  float max0 = -INFINITY, max1 = -INFINITY, sum0 = 0.0f, sum1 = 0.0f;
  const float scale_log2 = p.scale * 1.4426950408889634f;  // exp(x * scale) == exp2(x * scale * log2 e)

  for (int kt = 0; kt < num_key_tiles; ++kt) {
    const int k0 = kt * kKeys;
    const int stage = kt % kStages;
    cp_async_wait<kStages - 2>();  // tile kt has landed (this thread's copies) ...
    __syncthreads();  // ... everyone's; and every warp is done with tile kt - 1, whose stage is refilled now
    const int ahead = kt + kStages - 1;
    if (ahead < num_key_tiles) loader.issue(s.k[ahead % kStages], s.v[ahead % kStages], p, ahead * kKeys);
    cp_async_commit();  // empty past the last tile: the wait count above stays exact
    if (ahead + 1 < num_key_tiles) loader.fetch_pages((ahead + 1) * kKeys);  // used next iteration

    if (k0 < warp_key_end) {
      const __nv_bfloat16* sk = s.k[stage];
      const __nv_bfloat16* sv = s.v[stage];
      float sc[kKeyTiles][4];
#pragma unroll
      for (int t = 0; t < kKeyTiles; ++t) sc[t][0] = sc[t][1] = sc[t][2] = sc[t][3] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < kDim / 16; ++kk) {
        uint32_t(&qa)[4] = q_frag[kQInRegisters ? kk : 0];
        if constexpr (!kQInRegisters) ldmatrix_x4(qa, q_lane + kk * 16);
#pragma unroll
        for (int t = 0; t < kKeyTiles; t += 2) {
          uint32_t b[4];
          const int j = lane / 8, r = lane % 8;
          ldmatrix_x4(b, &sk[(t * 8 + (j / 2) * 8 + r) * kLd + kk * 16 + (j % 2) * 8]);
          mma_bf16(sc[t], qa, b[0], b[1]);
          mma_bf16(sc[t + 1], qa, b[2], b[3]);
        }
      }

      // Online softmax on the registers: the lane holds keys k0 + t*8 + quad_col*2 + {0,1} of rows row0
      // and row1. Only a tile that reaches past some row's last visible key needs the mask.
      float tile_max0 = -INFINITY, tile_max1 = -INFINITY;
      if (k0 + kKeys > warp_key_unmasked) {
#pragma unroll
        for (int t = 0; t < kKeyTiles; ++t) {
#pragma unroll
          for (int i = 0; i < 2; ++i) {
            const int key = k0 + t * 8 + quad_col * 2 + i;
            sc[t][i] = key < visible0 ? sc[t][i] * scale_log2 : -INFINITY;
            sc[t][2 + i] = key < visible1 ? sc[t][2 + i] * scale_log2 : -INFINITY;
          }
        }
      } else {
#pragma unroll
        for (int t = 0; t < kKeyTiles; ++t) {
#pragma unroll
          for (int i = 0; i < 4; ++i) sc[t][i] *= scale_log2;
        }
      }
#pragma unroll
      for (int t = 0; t < kKeyTiles; ++t) {
        tile_max0 = fmaxf(tile_max0, fmaxf(sc[t][0], sc[t][1]));
        tile_max1 = fmaxf(tile_max1, fmaxf(sc[t][2], sc[t][3]));
      }
      online_softmax_step<true>(sc, o, tile_max0, tile_max1, max0, max1, sum0, sum1);

      accumulate_pv<kKeys, kLd>(o, sc, sv, lane);
    }
  }
  store_output_rows<kDim>(p, o, sum0, sum1, row0, row1, rows, q_begin, group, kv_head, quad_col);
}

}  // namespace prefill

}  // namespace radixlm::cuda
