#pragma once
// The previous decode kernel, kept selectable (RADIXLM_DECODE_ATTENTION=legacy) until the one in
// cuda_attention_decode.cuh is proven on the GPU; delete it then.
//
// Decode attention on tensor cores (flash-decoding): a block owns up to 16 query rows (the few new tokens of
// one sequence times the query heads of one KV head, padded to the m16 of mma.sync) and one split of the
// sequence's keys. Its four warps take interleaved 32-key tiles of that split, each staging its own K/V
// through its own shared memory (no block-wide barrier in the loop), and keep their own online-softmax state
// in registers; at the end the four states are merged through shared memory. With several splits the block
// writes an unnormalised partial (output, max, sum) for combine_kernel.

#include "backends/cuda/cuda_attention_mma.cuh"

namespace radixlm::cuda {

constexpr int kDecodeMmaRows = 16;
constexpr int kDecodeMmaWarps = 4;
constexpr int kDecodeMmaKeys = 32;  // keys per warp tile

template <int kDim>
struct DecodeMmaSmem {
  static constexpr int kLd = kDim + 8;
  alignas(16) __nv_bfloat16 q[kDecodeMmaRows * kLd];
  union {
    struct {
      alignas(16) __nv_bfloat16 k[kDecodeMmaKeys * kLd];
      alignas(16) __nv_bfloat16 v[kDecodeMmaKeys * kLd];
    } tiles[kDecodeMmaWarps];
    float o[kDecodeMmaWarps][kDecodeMmaRows][kDim];  // after the loop: each warp's output, to merge
  } u;
  float row_max[kDecodeMmaWarps][kDecodeMmaRows];
  float row_sum[kDecodeMmaWarps][kDecodeMmaRows];
};

template <int kDim>
__global__ void __launch_bounds__(kDecodeMmaWarps * 32) attention_decode_mma_kernel(AttentionParams p, StepArrays step) {
  using Smem = DecodeMmaSmem<kDim>;
  constexpr int kLd = Smem::kLd;
  constexpr int kChunks = kDim / 8;
  constexpr int kKeyTiles = kDecodeMmaKeys / 8;
  constexpr int kDimTiles = kDim / 8;
  constexpr float kLog2e = 1.4426950408889634f;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  Smem& s = *reinterpret_cast<Smem*>(smem_raw);
  const int group = p.q_heads / p.kv_heads;
  const int tokens_per_tile = kDecodeMmaRows / group;
  const int seq = static_cast<int>(blockIdx.y);
  const int kv_head = static_cast<int>(blockIdx.z) / p.num_splits;
  const int split = static_cast<int>(blockIdx.z) % p.num_splits;
  const int q_begin = step.query_start[seq] + static_cast<int>(blockIdx.x) * tokens_per_tile;
  const int q_end = min(q_begin + tokens_per_tile, step.query_start[seq + 1]);
  if (q_begin >= q_end) return;
  const int rows = (q_end - q_begin) * group;
  const int kv_len = step.kv_length[seq];
  const int32_t* pages = step.page_table + step.page_table_start[seq];
  const int64_t kv_row = static_cast<int64_t>(p.kv_heads) * kDim;
  const int64_t q_row = static_cast<int64_t>(p.q_heads) * kDim;
  const int last_visible = step.positions[q_end - 1] + 1;
  // Split boundaries in whole 32-key tiles, from the sequence length (so every block of the sequence agrees).
  const int chunk = ((kv_len + p.num_splits - 1) / p.num_splits + kDecodeMmaKeys - 1) / kDecodeMmaKeys * kDecodeMmaKeys;
  const int key_begin = split * chunk;
  const int key_end = min(last_visible, key_begin + chunk);
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int quad_row = lane / 4, quad_col = lane % 4;

  for (int e = threadIdx.x; e < kDecodeMmaRows * kChunks; e += kDecodeMmaWarps * 32) {
    const int r = e / kChunks, c = e % kChunks;
    uint4 value = make_uint4(0, 0, 0, 0);
    if (r < rows) {
      const int token = q_begin + r / group, head = kv_head * group + r % group;
      value = *reinterpret_cast<const uint4*>(p.q + token * q_row + head * kDim + c * 8);
    }
    *reinterpret_cast<uint4*>(&s.q[r * kLd + c * 8]) = value;
  }
  __syncthreads();

  const int row0 = quad_row, row1 = quad_row + 8;
  const int visible0 = row0 < rows ? step.positions[q_begin + row0 / group] + 1 : 0;
  const int visible1 = row1 < rows ? step.positions[q_begin + row1 / group] + 1 : 0;
  uint32_t q_frag[kDim / 16][4];
#pragma unroll
  for (int kk = 0; kk < kDim / 16; ++kk) {
    const int j = lane / 8, r = lane % 8;
    ldmatrix_x4(q_frag[kk], &s.q[((j % 2) * 8 + r) * kLd + kk * 16 + (j / 2) * 8]);
  }
  float o[kDimTiles][4];
#pragma unroll
  for (int t = 0; t < kDimTiles; ++t) o[t][0] = o[t][1] = o[t][2] = o[t][3] = 0.0f;
  float max0 = -INFINITY, max1 = -INFINITY, sum0 = 0.0f, sum1 = 0.0f;
  const float scale_log2 = p.scale * kLog2e;
  __nv_bfloat16* sk = s.u.tiles[warp].k;
  __nv_bfloat16* sv = s.u.tiles[warp].v;

  for (int k0 = key_begin + warp * kDecodeMmaKeys; k0 < key_end; k0 += kDecodeMmaWarps * kDecodeMmaKeys) {
    __syncwarp();  // this warp is done with its previous tile
    // Each lane looks up one key's cache slot (the tile has one key per lane); the loads below take it from
    // that lane with a shuffle, so no page-table read sits between two K/V loads.
    const int lane_key = k0 + lane;
    const long long lane_slot =
        lane_key < key_end
            ? static_cast<long long>(pages[lane_key / step.page_size]) * step.page_size + lane_key % step.page_size
            : 0;
#pragma unroll 8
    for (int e = lane; e < kDecodeMmaKeys * kChunks; e += 32) {  // the same trip count on every lane
      const int j = e / kChunks, c = e % kChunks;
      const int key = k0 + j;
      const long long slot = __shfl_sync(0xffffffffu, lane_slot, j);
      uint4 kv = make_uint4(0, 0, 0, 0), vv = make_uint4(0, 0, 0, 0);
      if (key < key_end) {
        const int64_t offset = static_cast<int64_t>(slot) * kv_row + static_cast<int64_t>(kv_head) * kDim + c * 8;
        kv = *reinterpret_cast<const uint4*>(p.k_cache + offset);
        vv = *reinterpret_cast<const uint4*>(p.v_cache + offset);
      }
      *reinterpret_cast<uint4*>(&sk[j * kLd + c * 8]) = kv;
      *reinterpret_cast<uint4*>(&sv[j * kLd + c * 8]) = vv;
    }
    __syncwarp();

    float sc[kKeyTiles][4];
#pragma unroll
    for (int t = 0; t < kKeyTiles; ++t) sc[t][0] = sc[t][1] = sc[t][2] = sc[t][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < kDim / 16; ++kk) {
#pragma unroll
      for (int t = 0; t < kKeyTiles; t += 2) {
        uint32_t b[4];
        const int j = lane / 8, r = lane % 8;
        ldmatrix_x4(b, &sk[(t * 8 + (j / 2) * 8 + r) * kLd + kk * 16 + (j % 2) * 8]);
        mma_bf16(sc[t], q_frag[kk], b[0], b[1]);
        mma_bf16(sc[t + 1], q_frag[kk], b[2], b[3]);
      }
    }
    float tile_max0 = -INFINITY, tile_max1 = -INFINITY;
#pragma unroll
    for (int t = 0; t < kKeyTiles; ++t) {
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int key = k0 + t * 8 + quad_col * 2 + i;
        const bool in_range = key < key_end;
        sc[t][i] = in_range && key < visible0 ? sc[t][i] * scale_log2 : -INFINITY;
        sc[t][2 + i] = in_range && key < visible1 ? sc[t][2 + i] * scale_log2 : -INFINITY;
        tile_max0 = fmaxf(tile_max0, sc[t][i]);
        tile_max1 = fmaxf(tile_max1, sc[t][2 + i]);
      }
    }
    tile_max0 = fmaxf(tile_max0, __shfl_xor_sync(0xffffffffu, tile_max0, 1));
    tile_max0 = fmaxf(tile_max0, __shfl_xor_sync(0xffffffffu, tile_max0, 2));
    tile_max1 = fmaxf(tile_max1, __shfl_xor_sync(0xffffffffu, tile_max1, 1));
    tile_max1 = fmaxf(tile_max1, __shfl_xor_sync(0xffffffffu, tile_max1, 2));
    const float new_max0 = fmaxf(max0, tile_max0), new_max1 = fmaxf(max1, tile_max1);
    const float base0 = new_max0 == -INFINITY ? 0.0f : new_max0;
    const float base1 = new_max1 == -INFINITY ? 0.0f : new_max1;
    const float alpha0 = exp2f(max0 - base0), alpha1 = exp2f(max1 - base1);
    max0 = new_max0;
    max1 = new_max1;
    float tile_sum0 = 0.0f, tile_sum1 = 0.0f;
#pragma unroll
    for (int t = 0; t < kKeyTiles; ++t) {
      sc[t][0] = exp2f(sc[t][0] - base0);
      sc[t][1] = exp2f(sc[t][1] - base0);
      sc[t][2] = exp2f(sc[t][2] - base1);
      sc[t][3] = exp2f(sc[t][3] - base1);
      tile_sum0 += sc[t][0] + sc[t][1];
      tile_sum1 += sc[t][2] + sc[t][3];
    }
    sum0 = sum0 * alpha0 + tile_sum0;
    sum1 = sum1 * alpha1 + tile_sum1;
#pragma unroll
    for (int t = 0; t < kDimTiles; ++t) {
      o[t][0] *= alpha0;
      o[t][1] *= alpha0;
      o[t][2] *= alpha1;
      o[t][3] *= alpha1;
    }
#pragma unroll
    for (int kk = 0; kk < kDecodeMmaKeys / 16; ++kk) {
      uint32_t a[4];
      a[0] = pack_bf16(sc[2 * kk][0], sc[2 * kk][1]);
      a[1] = pack_bf16(sc[2 * kk][2], sc[2 * kk][3]);
      a[2] = pack_bf16(sc[2 * kk + 1][0], sc[2 * kk + 1][1]);
      a[3] = pack_bf16(sc[2 * kk + 1][2], sc[2 * kk + 1][3]);
#pragma unroll
      for (int t = 0; t < kDimTiles; t += 2) {
        uint32_t b[4];
        const int j = lane / 8, r = lane % 8;
        ldmatrix_x4_trans(b, &sv[(kk * 16 + (j % 2) * 8 + r) * kLd + t * 8 + (j / 2) * 8]);
        mma_bf16(o[t], a, b[0], b[1]);
        mma_bf16(o[t + 1], a, b[2], b[3]);
      }
    }
  }

  sum0 += __shfl_xor_sync(0xffffffffu, sum0, 1);
  sum0 += __shfl_xor_sync(0xffffffffu, sum0, 2);
  sum1 += __shfl_xor_sync(0xffffffffu, sum1, 1);
  sum1 += __shfl_xor_sync(0xffffffffu, sum1, 2);
  __syncthreads();  // every warp is out of its tiles: the union becomes the merge buffer
#pragma unroll
  for (int t = 0; t < kDimTiles; ++t) {
    const int d = t * 8 + quad_col * 2;
    s.u.o[warp][row0][d] = o[t][0];
    s.u.o[warp][row0][d + 1] = o[t][1];
    s.u.o[warp][row1][d] = o[t][2];
    s.u.o[warp][row1][d + 1] = o[t][3];
  }
  if (quad_col == 0) {
    s.row_max[warp][row0] = max0;
    s.row_max[warp][row1] = max1;
    s.row_sum[warp][row0] = sum0;
    s.row_sum[warp][row1] = sum1;
  }
  __syncthreads();
  for (int e = threadIdx.x; e < kDecodeMmaRows * kDim; e += kDecodeMmaWarps * 32) {
    const int r = e / kDim, d = e % kDim;
    if (r >= rows) continue;
    float m = -INFINITY;
#pragma unroll
    for (int w = 0; w < kDecodeMmaWarps; ++w) m = fmaxf(m, s.row_max[w][r]);
    const float base = m == -INFINITY ? 0.0f : m;
    float value = 0.0f, total = 0.0f;
#pragma unroll
    for (int w = 0; w < kDecodeMmaWarps; ++w) {
      const float weight = exp2f(s.row_max[w][r] - base);
      value += s.u.o[w][r][d] * weight;
      total += s.row_sum[w][r] * weight;
    }
    const int token = q_begin + r / group, head = kv_head * group + r % group;
    if (p.num_splits == 1) {
      p.out[token * q_row + head * kDim + d] = f32_to_bf16_bits(total > 0.0f ? value / total : 0.0f);
    } else {
      float* part = p.partial + ((static_cast<int64_t>(token) * p.q_heads + head) * p.num_splits + split) * (kDim + 2);
      part[d] = value;
      if (d == 0) {
        part[kDim] = m == -INFINITY ? -INFINITY : m / kLog2e;  // the combine kernel works in natural log
        part[kDim + 1] = total;
      }
    }
  }
}

}  // namespace radixlm::cuda
