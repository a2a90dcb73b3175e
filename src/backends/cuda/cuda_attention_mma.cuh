#pragma once
// The prefill/extend attention kernel on tensor cores (bf16 WMMA, f32 accumulation), FlashAttention-2
// style: a block of four warps owns 64 query rows (tokens x the query heads of one KV head), each warp 16 of
// them. Per tile of 64 keys (staged through shared memory from the paged cache): S = Q K^T on tensor cores
// into shared f32, an online-softmax pass per row (two lanes per row) that writes P in bf16 and rescales the
// warp's running output, then O += P V on tensor cores with O kept in shared memory (WMMA's register layout
// is opaque, so the per-row rescale happens in shared memory before O is loaded back into fragments).

#include <mma.h>

#include "backends/cuda/cuda_common.cuh"
#include "backends/cuda/cuda_kernels.h"

namespace radixlm::cuda {

constexpr int kMmaThreads = 128;
constexpr int kMmaRows = 64;
constexpr int kMmaKeys = 64;

template <int kDim>
struct MmaSmem {
  static constexpr int kLdh = kDim + 8;    // bf16 row stride (16-byte multiple, staggers banks)
  static constexpr int kLdo = kDim + 4;    // f32 row stride of O
  static constexpr int kLds = kMmaKeys + 4;
  static constexpr int kLdp = kMmaKeys + 8;
  alignas(32) __nv_bfloat16 q[kMmaRows * kLdh];
  alignas(32) __nv_bfloat16 k[kMmaKeys * kLdh];
  alignas(32) __nv_bfloat16 v[kMmaKeys * kLdh];
  alignas(32) float s[kMmaRows * kLds];
  alignas(32) __nv_bfloat16 p[kMmaRows * kLdp];
  alignas(32) float o[kMmaRows * kLdo];
  float row_max[kMmaRows];
  float row_sum[kMmaRows];
  int32_t visible[kMmaRows];
};

template <int kDim>
__global__ void __launch_bounds__(kMmaThreads) attention_mma_kernel(AttentionParams p, StepArrays step) {
  using namespace nvcuda;
  using Smem = MmaSmem<kDim>;
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
  const int64_t q_row = static_cast<int64_t>(p.q_heads) * kDim;
  const int key_end = step.positions[q_end - 1] + 1;
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  constexpr int kChunks = kDim / 8;  // 16-byte chunks per head row

  for (int e = threadIdx.x; e < kMmaRows * kChunks; e += kMmaThreads) {
    const int r = e / kChunks, c = e % kChunks;
    uint4 value = make_uint4(0, 0, 0, 0);
    if (r < rows) {
      const int token = q_begin + r / group, head = kv_head * group + r % group;
      value = *reinterpret_cast<const uint4*>(p.q + token * q_row + head * kDim + c * 8);
    }
    *reinterpret_cast<uint4*>(&s.q[r * Smem::kLdh + c * 8]) = value;
  }
  for (int e = threadIdx.x; e < kMmaRows * kDim; e += kMmaThreads) s.o[(e / kDim) * Smem::kLdo + e % kDim] = 0.0f;
  for (int r = threadIdx.x; r < kMmaRows; r += kMmaThreads) {
    s.row_max[r] = -INFINITY;
    s.row_sum[r] = 0.0f;
    s.visible[r] = r < rows ? step.positions[q_begin + r / group] + 1 : 0;
  }

  const int warp_row = warp * 16;
  for (int k0 = 0; k0 < key_end; k0 += kMmaKeys) {
    __syncthreads();  // the previous tile's K/V are no longer read
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
      *reinterpret_cast<uint4*>(&s.k[j * Smem::kLdh + c * 8]) = kv;
      *reinterpret_cast<uint4*>(&s.v[j * Smem::kLdh + c * 8]) = vv;
    }
    __syncthreads();

    // S (16 x 64 per warp) = Q K^T.
    {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[kMmaKeys / 16];
#pragma unroll
      for (int j = 0; j < kMmaKeys / 16; ++j) wmma::fill_fragment(acc[j], 0.0f);
#pragma unroll
      for (int kk = 0; kk < kDim / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a;
        wmma::load_matrix_sync(a, &s.q[warp_row * Smem::kLdh + kk * 16], Smem::kLdh);
#pragma unroll
        for (int j = 0; j < kMmaKeys / 16; ++j) {
          wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> b;
          wmma::load_matrix_sync(b, &s.k[(j * 16) * Smem::kLdh + kk * 16], Smem::kLdh);
          wmma::mma_sync(acc[j], a, b, acc[j]);
        }
      }
#pragma unroll
      for (int j = 0; j < kMmaKeys / 16; ++j) {
        wmma::store_matrix_sync(&s.s[warp_row * Smem::kLds + j * 16], acc[j], Smem::kLds, wmma::mem_row_major);
      }
    }
    __syncwarp();

    // Online softmax: lanes 2i and 2i+1 share row warp_row + i, 32 keys each.
    {
      const int r = warp_row + lane / 2;
      const int half = lane % 2;
      const int visible = min(s.visible[r], key_end);
      float values[kMmaKeys / 2];
      float tile_max = -INFINITY;
#pragma unroll
      for (int i = 0; i < kMmaKeys / 2; ++i) {
        const int j = half * (kMmaKeys / 2) + i;
        const float v = k0 + j < visible ? s.s[r * Smem::kLds + j] * p.scale : -INFINITY;
        values[i] = v;
        tile_max = fmaxf(tile_max, v);
      }
      tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
      const float old_max = s.row_max[r];
      const float new_max = fmaxf(old_max, tile_max);
      float sum = 0.0f;
#pragma unroll
      for (int i = 0; i < kMmaKeys / 2; ++i) {
        const float e = new_max == -INFINITY || values[i] == -INFINITY ? 0.0f : __expf(values[i] - new_max);
        const __nv_bfloat16 rounded = __float2bfloat16_rn(e);
        s.p[r * Smem::kLdp + half * (kMmaKeys / 2) + i] = rounded;
        sum += __bfloat162float(rounded);  // the sum of what P V actually multiplies
      }
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      const float alpha = new_max == -INFINITY || old_max == -INFINITY ? (old_max == -INFINITY ? 0.0f : 1.0f)
                                                                       : __expf(old_max - new_max);
      __syncwarp();
      if (half == 0) {
        s.row_max[r] = new_max;
        s.row_sum[r] = s.row_sum[r] * alpha + sum;
      }
      // Rescale this row's running output (the pair splits the columns).
      for (int d = half; d < kDim; d += 2) s.o[r * Smem::kLdo + d] *= alpha;
    }
    __syncwarp();

    // O (16 x kDim per warp) += P V.
#pragma unroll
    for (int n = 0; n < kDim / 16; ++n) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> o;
      wmma::load_matrix_sync(o, &s.o[warp_row * Smem::kLdo + n * 16], Smem::kLdo, wmma::mem_row_major);
#pragma unroll
      for (int kk = 0; kk < kMmaKeys / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> b;
        wmma::load_matrix_sync(a, &s.p[warp_row * Smem::kLdp + kk * 16], Smem::kLdp);
        wmma::load_matrix_sync(b, &s.v[(kk * 16) * Smem::kLdh + n * 16], Smem::kLdh);
        wmma::mma_sync(o, a, b, o);
      }
      wmma::store_matrix_sync(&s.o[warp_row * Smem::kLdo + n * 16], o, Smem::kLdo, wmma::mem_row_major);
    }
  }
  __syncthreads();

  for (int e = threadIdx.x; e < kMmaRows * kDim; e += kMmaThreads) {
    const int r = e / kDim, d = e % kDim;
    if (r >= rows) continue;
    const int token = q_begin + r / group, head = kv_head * group + r % group;
    const float sum = s.row_sum[r];
    p.out[token * q_row + head * kDim + d] =
        f32_to_bf16_bits(sum > 0.0f ? s.o[r * Smem::kLdo + d] / sum : 0.0f);
  }
}

}  // namespace radixlm::cuda
