// Row-wise kernels of the CUDA backend: embedding gather, RMSNorm (per row and per head), SiLU-and-multiply,
// RoPE fused with the KV store, logit-row gather, argmax and small conversions.
// All arithmetic is f32; values are stored as bf16, rounded to nearest even.

#include <algorithm>

#include "backends/cuda/cuda_common.cuh"
#include "backends/cuda/cuda_kernels.h"

namespace radixlm::cuda {
namespace {

constexpr int kNormThreads = 256;

__global__ void embedding_kernel(const uint16_t* table, int64_t vocab, int64_t hidden, const int32_t* token_ids,
                                 uint16_t* out) {
  const int64_t t = blockIdx.x;
  int64_t id = token_ids[t];
  if (id < 0 || id >= vocab) id = 0;  // checked on the host before launch; never read out of bounds
  const uint16_t* src = table + id * hidden;
  uint16_t* dst = out + t * hidden;
  if (hidden % 8 == 0) {
    const auto* s = reinterpret_cast<const uint4*>(src);
    auto* d = reinterpret_cast<uint4*>(dst);
    for (int64_t i = threadIdx.x; i < hidden / 8; i += blockDim.x) d[i] = s[i];
  } else {
    for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) dst[i] = src[i];
  }
}

// out = rms_norm(x) * weight, any width.
__global__ void rms_norm_kernel(RmsNormParams p) {
  pdl_wait();  // launched early (cuda_common.cuh): the kernel ahead has finished past here
  pdl_launch_dependents();  // the matmul after the norm may start streaming its weights
  __shared__ float scratch[kNormThreads / 32];
  const int64_t row = blockIdx.x;
  const uint16_t* x = p.x + row * p.width;
  uint16_t* out = p.out + row * p.width;
  float sum_squares = 0.0f;
  for (int64_t i = threadIdx.x; i < p.width; i += kNormThreads) {
    const float value = bf16_bits_to_f32(x[i]);
    sum_squares += value * value;
  }
  const float total = block_sum<kNormThreads / 32>(sum_squares, scratch);
  const float inverse_rms = rsqrtf(total / static_cast<float>(p.width) + p.eps);
  for (int64_t i = threadIdx.x; i < p.width; i += kNormThreads) {
    const float value = bf16_bits_to_f32(x[i]);
    out[i] = f32_to_bf16_bits(bf16_bits_to_f32(p.weight[i]) * (value * inverse_rms));
  }
}

// The same for rows whose width is a multiple of 8: one block per row, each thread holding up to
// kNormChunks 16-byte chunks in registers between the two passes (one read of x, one write).
constexpr int kNormChunks = 4;

__device__ __forceinline__ void unpack8(const uint4& v, float (&out)[8]) {
  const uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    out[2 * i] = bf16_lo(words[i]);
    out[2 * i + 1] = bf16_hi(words[i]);
  }
}

__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  return static_cast<uint32_t>(f32_to_bf16_bits(lo)) | (static_cast<uint32_t>(f32_to_bf16_bits(hi)) << 16);
}
// Eight floats as eight bf16 (round to nearest even), in order: unpack8's inverse.
__device__ __forceinline__ uint4 pack8(const float (&v)[8]) {
  return make_uint4(pack2(v[0], v[1]), pack2(v[2], v[3]), pack2(v[4], v[5]), pack2(v[6], v[7]));
}

// The RMSNorm kernels' shared steps. 1 / rms of a row from each thread's sum of squares, summed over the
// block's blockDim.x / 32 warps (scratch: 32 floats), in one fixed order.
__device__ __forceinline__ float row_inverse_rms(float sum_squares, float* scratch, int64_t width, float eps) {
  sum_squares = warp_sum(sum_squares);
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  if (lane == 0) scratch[warp] = sum_squares;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < static_cast<int>(blockDim.x) / 32; ++w) total += scratch[w];
  return rsqrtf(total / static_cast<float>(width) + eps);
}
// Eight outputs weight * (value * inverse_rms), packed to bf16.
__device__ __forceinline__ uint4 pack_normed8(const float (&values)[8], const float (&w)[8], float inverse_rms) {
  float normed[8];
#pragma unroll
  for (int e = 0; e < 8; ++e) normed[e] = w[e] * (values[e] * inverse_rms);
  return pack8(normed);
}

__global__ void rms_norm_vec_kernel(RmsNormParams p) {
  pdl_wait();  // launched early (cuda_common.cuh): the kernel ahead has finished past here
  pdl_launch_dependents();  // the matmul after the norm may start streaming its weights
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const int64_t chunks = p.width / 8;
  const auto* x = reinterpret_cast<const uint4*>(p.x + row * p.width);
  auto* out = reinterpret_cast<uint4*>(p.out + row * p.width);
  const auto* weight = reinterpret_cast<const uint4*>(p.weight);
  float values[kNormChunks][8];
  float sum_squares = 0.0f;
#pragma unroll
  for (int c = 0; c < kNormChunks; ++c) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(c) * blockDim.x;
    if (i < chunks) {
      unpack8(x[i], values[c]);
#pragma unroll
      for (int e = 0; e < 8; ++e) sum_squares += values[c][e] * values[c][e];
    }
  }
  const float inverse_rms = row_inverse_rms(sum_squares, scratch, p.width, p.eps);
#pragma unroll
  for (int c = 0; c < kNormChunks; ++c) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(c) * blockDim.x;
    if (i < chunks) {
      float w[8];
      unpack8(weight[i], w);
      out[i] = pack_normed8(values[c], w, inverse_rms);
    }
  }
}

// One warp per head slice; rows of heads_per_row slices lie row_stride elements apart.
__global__ void head_rms_norm_kernel(uint16_t* x, const uint16_t* weight, int64_t num_heads, int32_t heads_per_row,
                                     int64_t row_stride, int32_t head_dim, float eps) {
  const int64_t head = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = static_cast<int>(threadIdx.x % 32);
  if (head >= num_heads) return;
  uint16_t* row = x + head / heads_per_row * row_stride + head % heads_per_row * head_dim;
  float sum_squares = 0.0f;
  for (int i = lane; i < head_dim; i += 32) {
    const float value = bf16_bits_to_f32(row[i]);
    sum_squares += value * value;
  }
  const float inverse_rms = rsqrtf(warp_sum(sum_squares) / static_cast<float>(head_dim) + eps);
  for (int i = lane; i < head_dim; i += 32) {
    row[i] = f32_to_bf16_bits(bf16_bits_to_f32(weight[i]) * (bf16_bits_to_f32(row[i]) * inverse_rms));
  }
}

__global__ void silu_and_mul_kernel(const uint16_t* x, uint16_t* out, int64_t rows, int64_t inter) {
  const int64_t total = rows * inter;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = e / inter, i = e % inter;
    const float gate = bf16_bits_to_f32(x[r * 2 * inter + i]);
    const float up = bf16_bits_to_f32(x[r * 2 * inter + inter + i]);
    out[e] = f32_to_bf16_bits(gate / (1.0f + expf(-gate)) * up);
  }
}

__global__ void silu_and_mul_vec_kernel(const uint16_t* x, uint16_t* out, int64_t rows, int64_t inter) {
  const int64_t chunks_per_row = inter / 8;
  const int64_t total = rows * chunks_per_row;
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < total;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = c / chunks_per_row, i = c % chunks_per_row;
    const auto* row = reinterpret_cast<const uint4*>(x + r * 2 * inter);
    float gate[8], up[8];
    unpack8(row[i], gate);
    unpack8(row[chunks_per_row + i], up);
    float y[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) y[e] = gate[e] / (1.0f + expf(-gate[e])) * up[e];
    reinterpret_cast<uint4*>(out + r * inter)[i] = pack8(y);
  }
}

// Grid (token, group of kRopeHeads heads of q then k): the block computes the token's cos/sin once into
// shared memory, rotates its heads, then copies the k heads it rotated (and the matching v heads) into the
// token's cache slot.
constexpr int kRopeHeads = 8;
constexpr int kRopeMaxHalf = 256;  // rotary_dim / 2 <= 256 (head_dim <= 512)

// The token's cos/sin table for its position: the angle rounded to f32 as HF computes it; sin/cos in full
// precision.
__device__ __forceinline__ void fill_rope_table(const RopeStoreParams& p, int32_t position, float* cos_table,
                                                float* sin_table) {
  for (int i = static_cast<int>(threadIdx.x); i < p.rotary_dim / 2; i += static_cast<int>(blockDim.x)) {
    rope_cos_sin(static_cast<float>(position), p.inv_freq[i], p.attention_scaling, cos_table[i], sin_table[i]);
  }
}

__global__ void rope_store_kernel(RopeStoreParams p, const int32_t* positions, const int64_t* kv_slots) {
  __shared__ float cos_table[kRopeMaxHalf], sin_table[kRopeMaxHalf];
  const int64_t t = blockIdx.x;
  const int half = p.rotary_dim / 2;
  fill_rope_table(p, positions[t], cos_table, sin_table);
  __syncthreads();
  const int heads = p.q_heads + p.kv_heads;
  const int head_begin = static_cast<int>(blockIdx.y) * kRopeHeads;
  const int head_end = min(head_begin + kRopeHeads, heads);
  for (int item = threadIdx.x; item < (head_end - head_begin) * half; item += blockDim.x) {
    const int head = head_begin + item / half, i = item % half;
    uint16_t* base = head < p.q_heads ? p.q + t * p.q_stride + head * p.head_dim
                                      : p.k + t * p.k_stride + (head - p.q_heads) * p.head_dim;
    const int first = p.interleaved ? 2 * i : i;
    const int second = p.interleaved ? 2 * i + 1 : i + half;
    const float x1 = bf16_bits_to_f32(base[first]), x2 = bf16_bits_to_f32(base[second]);
    float y1, y2;
    rope_rotate(x1, x2, cos_table[i], sin_table[i], y1, y2);
    base[first] = f32_to_bf16_bits(y1);
    base[second] = f32_to_bf16_bits(y2);
  }
  const int k_begin = max(head_begin, p.q_heads) - p.q_heads, k_end = head_end - p.q_heads;
  if (k_end <= k_begin) return;
  __syncthreads();
  const int64_t width = static_cast<int64_t>(p.kv_heads) * p.head_dim;
  const int64_t slot = kv_slots[t];
  for (int64_t i = static_cast<int64_t>(k_begin) * p.head_dim + threadIdx.x; i < static_cast<int64_t>(k_end) * p.head_dim;
       i += blockDim.x) {
    p.k_cache[slot * width + i] = p.k[t * p.k_stride + i];
    p.v_cache[slot * width + i] = p.v[t * p.v_stride + i];
  }
}

// ---- Bandwidth-bound versions (the default; RADIXLM_CUDA_ELEMENTWISE=legacy selects the kernels above) ----
// Same per-element f32 math and bf16 rounding as the kernels above; what changes is how memory is reached:
// every load of a thread is issued before the first store (the stores may alias the next loads, so the
// compiler would otherwise serialize one DRAM round trip per chunk), 16-byte accesses throughout, and
// 2-D grids (column block, row) so no thread divides a 64-bit index.

// As rms_norm_vec_kernel, with the same threads per row and the same summation order (so bit-identical
// results), but x and weight of all kNormChunks chunks are loaded up front.
// The weight is no kernel's output, so its loads go out before the wait for the kernel ahead: by the time
// x may be read they have landed (a step streams GBs through L2, so a layer's norm weight comes from HBM),
// and only x's round trip is left between the wait and the sum.
__global__ void rms_norm_prefetch_kernel(RmsNormParams p) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const int chunks = static_cast<int>(p.width / 8);
  const auto* x = reinterpret_cast<const uint4*>(p.x + row * p.width);
  auto* out = reinterpret_cast<uint4*>(p.out + row * p.width);
  const auto* weight = reinterpret_cast<const uint4*>(p.weight);
  uint4 x_raw[kNormChunks], w_raw[kNormChunks];
#pragma unroll
  for (int c = 0; c < kNormChunks; ++c) {
    const int i = static_cast<int>(threadIdx.x) + c * static_cast<int>(blockDim.x);
    if (i < chunks) w_raw[c] = __ldg(weight + i);
  }
  pdl_wait();  // launched early (cuda_common.cuh): the kernel ahead has finished past here
  pdl_launch_dependents();  // the matmul after the norm may start streaming its weights
#pragma unroll
  for (int c = 0; c < kNormChunks; ++c) {
    const int i = static_cast<int>(threadIdx.x) + c * static_cast<int>(blockDim.x);
    if (i < chunks) x_raw[c] = x[i];
  }
  float values[kNormChunks][8];
  float sum_squares = 0.0f;
#pragma unroll
  for (int c = 0; c < kNormChunks; ++c) {
    const int i = static_cast<int>(threadIdx.x) + c * static_cast<int>(blockDim.x);
    if (i < chunks) {
      unpack8(x_raw[c], values[c]);
#pragma unroll
      for (int e = 0; e < 8; ++e) sum_squares += values[c][e] * values[c][e];
    }
  }
  const float inverse_rms = row_inverse_rms(sum_squares, scratch, p.width, p.eps);
#pragma unroll
  for (int c = 0; c < kNormChunks; ++c) {
    const int i = static_cast<int>(threadIdx.x) + c * static_cast<int>(blockDim.x);
    if (i < chunks) {
      float w[8];
      unpack8(w_raw[c], w);
      out[i] = pack_normed8(values[c], w, inverse_rms);
    }
  }
}

// Grid (column blocks, rows): thread x of a block owns one 16-byte chunk of gate and of up in each of its
// rows; rows beyond gridDim.y (65535) are taken in a stride.
__global__ void silu_and_mul_rows_kernel(const uint16_t* x, uint16_t* out, int64_t rows, int32_t chunks_per_row) {
  const int32_t i = static_cast<int32_t>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= chunks_per_row) return;
  const int64_t inter = static_cast<int64_t>(chunks_per_row) * 8;
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const auto* row = reinterpret_cast<const uint4*>(x + r * 2 * inter);
    const uint4 gate_raw = row[i], up_raw = row[chunks_per_row + i];
    float gate[8], up[8];
    unpack8(gate_raw, gate);
    unpack8(up_raw, up);
    float y[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) y[e] = gate[e] / (1.0f + expf(-gate[e])) * up[e];
    reinterpret_cast<uint4*>(out + r * inter)[i] = pack8(y);
  }
}

// RoPE + KV store, one block per token, for head_dim % 8 == 0 and rotary_dim % 16 (neox) or % 8
// (interleaved) == 0 with 16-byte aligned tensors. A token's work is split into 16-byte items:
//   rotate: per q or k head, one chunk of 8 rotated pairs (neox: 8 dims of the first half and the matching
//           8 of the second; interleaved: one chunk of 4 adjacent pairs); a k head's result also goes to
//           the cache;
//   k pass: per k head, one chunk of the dims past rotary_dim, copied to the cache;
//   v copy: one chunk of v copied to the cache.
// Each thread owns at most kRopeItemsPerThread items and loads all of them before it waits for the token's
// cos/sin table (computed once per token with full-precision sincosf, as the legacy kernel does), unless the
// table was filled before the PDL wait (table_before_wait).
constexpr int kRopeItemsPerThread = 2;

struct RopeItem {
  uint16_t* src = nullptr;    // q or k row chunk (rotated in place), or k / v chunk to copy
  uint16_t* cache = nullptr;  // where the chunk goes in the cache, or null (q heads)
  int32_t freq = 0;           // first frequency index of the chunk
  int32_t kind = -1;          // 0 neox rotate, 1 interleaved rotate, 2 copy, -1 none
};

__global__ void __launch_bounds__(1024) rope_store_items_kernel(RopeStoreParams p, const int32_t* positions, const int64_t* kv_slots) {
  __shared__ float cos_table[kRopeMaxHalf], sin_table[kRopeMaxHalf];
  const int64_t t = blockIdx.x;
  const int half = p.rotary_dim / 2;
  // Launched early (cuda_common.cuh): positions and inv_freq are not written by the step's kernels.
  if (p.table_before_wait) fill_rope_table(p, positions[t], cos_table, sin_table);
  pdl_wait();  // the q/k/v matmul has finished past here
  pdl_launch_dependents();  // the attention after may be scheduled
  const int hd = p.head_dim;
  const int64_t kv_width = static_cast<int64_t>(p.kv_heads) * hd;
  const int per_head = p.interleaved ? p.rotary_dim / 8 : half / 8;
  const int pass = (hd - p.rotary_dim) / 8;
  const int rotate_items = (p.q_heads + p.kv_heads) * per_head;
  const int pass_items = p.kv_heads * pass;
  const int total_items = rotate_items + pass_items + static_cast<int>(kv_width / 8);
  const int64_t slot = kv_slots[t];
  uint16_t* k_cache_row = p.k_cache + slot * kv_width;
  uint16_t* v_cache_row = p.v_cache + slot * kv_width;
  uint16_t* k_row = p.k + t * p.k_stride;

  RopeItem items[kRopeItemsPerThread];
  uint4 first[kRopeItemsPerThread], second[kRopeItemsPerThread];
#pragma unroll
  for (int j = 0; j < kRopeItemsPerThread; ++j) {
    const int item = static_cast<int>(threadIdx.x) + j * static_cast<int>(blockDim.x);
    RopeItem& it = items[j];
    if (item < rotate_items) {
      const int head = item / per_head, chunk = item - head * per_head;
      if (head < p.q_heads) {
        it.src = p.q + t * p.q_stride + head * hd;
      } else {
        it.src = k_row + static_cast<int64_t>(head - p.q_heads) * hd;
        it.cache = k_cache_row + static_cast<int64_t>(head - p.q_heads) * hd;
      }
      it.kind = p.interleaved ? 1 : 0;
      it.freq = p.interleaved ? chunk * 4 : chunk * 8;
      const int offset = chunk * 8;  // neox: offset in the first half; interleaved: offset in the head
      it.src += offset;
      if (it.cache) it.cache += offset;
      first[j] = *reinterpret_cast<const uint4*>(it.src);
      if (!p.interleaved) second[j] = *reinterpret_cast<const uint4*>(it.src + half);
    } else if (item < rotate_items + pass_items) {
      const int index = item - rotate_items;
      const int head = index / pass, chunk = index - head * pass;
      const int64_t offset = static_cast<int64_t>(head) * hd + p.rotary_dim + chunk * 8;
      it.src = k_row + offset;
      it.cache = k_cache_row + offset;
      it.kind = 2;
      first[j] = *reinterpret_cast<const uint4*>(it.src);
    } else if (item < total_items) {
      const int64_t offset = static_cast<int64_t>(item - rotate_items - pass_items) * 8;
      it.src = const_cast<uint16_t*>(p.v) + t * p.v_stride + offset;  // read only
      it.cache = v_cache_row + offset;
      it.kind = 2;
      first[j] = *reinterpret_cast<const uint4*>(it.src);
    }
  }
  if (!p.table_before_wait) fill_rope_table(p, positions[t], cos_table, sin_table);
  __syncthreads();
#pragma unroll
  for (int j = 0; j < kRopeItemsPerThread; ++j) {
    const RopeItem& it = items[j];
    if (it.kind == 2) {
      *reinterpret_cast<uint4*>(it.cache) = first[j];
    } else if (it.kind == 0) {
      uint4 a = first[j], b = second[j];
      rope_rotate_chunks(a, b, cos_table + it.freq, sin_table + it.freq);
      *reinterpret_cast<uint4*>(it.src) = a;
      *reinterpret_cast<uint4*>(it.src + half) = b;
      if (it.cache) {
        *reinterpret_cast<uint4*>(it.cache) = a;
        *reinterpret_cast<uint4*>(it.cache + half) = b;
      }
    } else if (it.kind == 1) {
      uint4 a = first[j];
      rope_rotate_chunk_interleaved(a, cos_table + it.freq, sin_table + it.freq);
      *reinterpret_cast<uint4*>(it.src) = a;
      if (it.cache) *reinterpret_cast<uint4*>(it.cache) = a;
    }
  }
}

__global__ void gather_rows_kernel(const uint16_t* x, uint16_t* out, int64_t row_elems, const int32_t* rows) {
  pdl_wait();  // launched early (cuda_common.cuh): the last layer's down_proj has finished past here
  pdl_launch_dependents();  // the final norm may be scheduled
  const int64_t r = blockIdx.x;
  const uint16_t* src = x + static_cast<int64_t>(rows[r]) * row_elems;
  for (int64_t i = threadIdx.x; i < row_elems; i += blockDim.x) out[r * row_elems + i] = src[i];
}

// Argmax in two passes so a row of 100k+ logits is read by many blocks: each of kArgmaxSlices blocks per
// row reduces a slice to (value, index), then one warp per row reduces the slices. Ties go to the lowest
// index, as torch.argmax.
__device__ __forceinline__ void better(float& value, int32_t& index, float other, int32_t other_index) {
  if (other > value || (other == value && other_index < index)) {
    value = other;
    index = other_index;
  }
}

// Launched plainly: a programmatic launch after the lm_head GEMV would hold SM slots (64 blocks a row) through
// the GEMV's whole stream. It lets the merge in at once: one warp a row, waiting.
__global__ void argmax_slices_kernel(const float* logits, int64_t vocab, float* slice_value, int32_t* slice_index) {
  pdl_launch_dependents();
  constexpr int kThreads = 256;
  __shared__ float values[kThreads / 32];
  __shared__ int32_t indices[kThreads / 32];
  const int64_t row = blockIdx.x;
  const int64_t per_slice = (vocab + kArgmaxSlices - 1) / kArgmaxSlices;
  const int64_t begin = static_cast<int64_t>(blockIdx.y) * per_slice;
  const int64_t end = begin + per_slice < vocab ? begin + per_slice : vocab;
  const float* data = logits + row * vocab;
  float value = -INFINITY;
  int32_t index = INT32_MAX;
  for (int64_t i = begin + threadIdx.x; i < end; i += kThreads) better(value, index, data[i], static_cast<int32_t>(i));
  for (int offset = 16; offset > 0; offset >>= 1) {
    better(value, index, __shfl_xor_sync(0xffffffffu, value, offset), __shfl_xor_sync(0xffffffffu, index, offset));
  }
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  if (lane == 0) {
    values[warp] = value;
    indices[warp] = index;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kThreads / 32; ++w) better(value, index, values[w], indices[w]);
    slice_value[row * kArgmaxSlices + blockIdx.y] = value;
    slice_index[row * kArgmaxSlices + blockIdx.y] = index;
  }
}

__global__ void argmax_merge_kernel(const float* slice_value, const int32_t* slice_index, int32_t* out) {
  pdl_wait();  // launched early: the slices are complete past here
  const int64_t row = blockIdx.x;
  const int lane = static_cast<int>(threadIdx.x);
  float value = -INFINITY;
  int32_t index = INT32_MAX;
  for (int s = lane; s < kArgmaxSlices; s += 32) {
    better(value, index, slice_value[row * kArgmaxSlices + s], slice_index[row * kArgmaxSlices + s]);
  }
  for (int offset = 16; offset > 0; offset >>= 1) {
    better(value, index, __shfl_xor_sync(0xffffffffu, value, offset), __shfl_xor_sync(0xffffffffu, index, offset));
  }
  if (lane == 0) out[row] = index == INT32_MAX ? 0 : index;  // all-NaN rows give 0
}

__global__ void bf16_to_f32_kernel(const uint16_t* in, float* out, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = bf16_bits_to_f32(in[i]);
  }
}

__global__ void add_bias_kernel(void* out, bool out_f32, const uint16_t* bias, int64_t rows, int64_t cols) {
  const int64_t total = rows * cols;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float b = bf16_bits_to_f32(bias[i % cols]);
    if (out_f32) {
      static_cast<float*>(out)[i] += b;
    } else {
      auto* o = static_cast<uint16_t*>(out);
      o[i] = f32_to_bf16_bits(bf16_bits_to_f32(o[i]) + b);
    }
  }
}

// RADIXLM_CUDA_ELEMENTWISE=legacy: the kernels before the bandwidth rework (for A/B timing and as a fallback
// until the new ones are proven on every GPU). Read per launch so a test can switch it.
bool legacy_elementwise() { return env_is("RADIXLM_CUDA_ELEMENTWISE", "legacy"); }

bool aligned16(const void* a) { return reinterpret_cast<uintptr_t>(a) % 16 == 0; }

unsigned int grid_for(int64_t total, int threads) {
  const int64_t blocks = (total + threads - 1) / threads;
  return static_cast<unsigned int>(blocks < 65536 ? (blocks > 0 ? blocks : 1) : 65536);
}

}  // namespace

__global__ void resolve_future_tokens_kernel(int32_t* token_ids, int32_t num_tokens, const int32_t* previous) {
  const int32_t t = static_cast<int32_t>(blockIdx.x * blockDim.x + threadIdx.x);
  if (t < num_tokens && token_ids[t] < 0) token_ids[t] = previous[-token_ids[t] - 1];
}

void launch_resolve_future_tokens(int32_t* token_ids, int32_t num_tokens, const int32_t* previous, cudaStream_t stream) {
  if (num_tokens == 0) return;
  resolve_future_tokens_kernel<<<(num_tokens + 255) / 256, 256, 0, stream>>>(token_ids, num_tokens, previous);
}

void launch_embedding(const uint16_t* table, int64_t vocab, int64_t hidden, const StepArrays& step, uint16_t* out,
                      cudaStream_t stream) {
  if (step.num_tokens == 0) return;
  embedding_kernel<<<step.num_tokens, 128, 0, stream>>>(table, vocab, hidden, step.token_ids, out);
}

namespace {

// sum[e] = the sum over `splits` (in split order) of the f32 partials first[s * split_stride] (8 floats from
// there, 16-byte aligned). Every split's loads are issued before the first add.
__device__ __forceinline__ void sum_split_chunk(const float4* first, int64_t split_stride, int32_t splits,
                                                float (&sum)[8]) {
  float4 parts[kMaxPartialSplits][2];
#pragma unroll
  for (int s = 0; s < kMaxPartialSplits; ++s) {
    if (s < splits) {
      parts[s][0] = first[s * split_stride];
      parts[s][1] = first[s * split_stride + 1];
    }
  }
#pragma unroll
  for (int e = 0; e < 8; ++e) sum[e] = 0.0f;
#pragma unroll
  for (int s = 0; s < kMaxPartialSplits; ++s) {
    if (s < splits) {
      sum[0] += parts[s][0].x, sum[1] += parts[s][0].y, sum[2] += parts[s][0].z, sum[3] += parts[s][0].w;
      sum[4] += parts[s][1].x, sum[5] += parts[s][1].y, sum[6] += parts[s][1].z, sum[7] += parts[s][1].w;
    }
  }
}

__device__ __forceinline__ float round_bf16(float value) { return bf16_bits_to_f32(f32_to_bf16_bits(value)); }

// launch_add_partials_rms_norm's kernel. The norm weight and bias are no kernel's output, so they are
// loaded before the wait; every split's partials and the residual are requested together after it.
__global__ void add_partials_rms_norm_kernel(AddPartialsRmsNormParams p) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const int chunk = static_cast<int>(threadIdx.x);
  const bool active = chunk < static_cast<int>(p.width / 8);
  uint4 w_raw{}, b_raw{};
  if (active) {
    w_raw = __ldg(reinterpret_cast<const uint4*>(p.weight) + chunk);
    if (p.bias != nullptr) b_raw = __ldg(reinterpret_cast<const uint4*>(p.bias) + chunk);
  }
  pdl_wait();
  pdl_launch_dependents();
  auto* residual = reinterpret_cast<uint4*>(p.residual + row * p.width) + chunk;
  float values[8] = {};
  float sum_squares = 0.0f;
  if (active) {
    const uint4 r_raw = *residual;
    float sums[8], r[8], b[8];
    sum_split_chunk(reinterpret_cast<const float4*>(p.partials + row * p.width) + 2 * chunk,
                    p.rows * p.width / 4, p.splits, sums);
    unpack8(r_raw, r);
    unpack8(b_raw, b);  // zeros without a bias
#pragma unroll
    for (int e = 0; e < 8; ++e) values[e] = round_bf16(r[e] + (sums[e] + b[e]));
    *residual = pack8(values);
#pragma unroll
    for (int e = 0; e < 8; ++e) sum_squares += values[e] * values[e];
  }
  const float inverse_rms = row_inverse_rms(sum_squares, scratch, p.width, p.eps);
  if (active) {
    float w[8];
    unpack8(w_raw, w);
    reinterpret_cast<uint4*>(p.out + row * p.width)[chunk] = pack_normed8(values, w, inverse_rms);
  }
}

}  // namespace

bool add_partials_rms_norm_supported(int64_t width) { return width > 0 && width % 8 == 0 && width <= 8 * 1024; }

void launch_add_partials_rms_norm(const AddPartialsRmsNormParams& p, cudaStream_t stream) {
  if (p.rows == 0) return;
  const auto threads = static_cast<unsigned int>((p.width / 8 + 31) / 32 * 32);
  launch_programmatic(add_partials_rms_norm_kernel, dim3(static_cast<unsigned int>(p.rows)), dim3(threads), 0, stream,
                      p);
}

void launch_rms_norm(const RmsNormParams& p, cudaStream_t stream) {
  if (p.rows == 0) return;
  const int64_t chunks = p.width / 8;
  const uintptr_t addresses =
      reinterpret_cast<uintptr_t>(p.x) | reinterpret_cast<uintptr_t>(p.out) | reinterpret_cast<uintptr_t>(p.weight);
  const bool aligned = addresses % 16 == 0;
  if (p.width % 8 == 0 && aligned && chunks <= 1024 * kNormChunks) {
    // Enough threads that each holds at most kNormChunks chunks, in whole warps.
    int threads = static_cast<int>((chunks + kNormChunks - 1) / kNormChunks);
    threads = std::max(32, std::min(1024, (threads + 31) / 32 * 32));
    if (chunks > 128) threads = std::max(threads, 128);
    // 68 registers a thread: up to 512 threads (widths up to 16384) fit an SM; wider rows keep the old kernel.
    if (!legacy_elementwise() && threads <= 512) {
      launch_programmatic(rms_norm_prefetch_kernel, dim3(static_cast<unsigned int>(p.rows)), dim3(threads), 0, stream,
                          p);
      return;
    }
    launch_programmatic(rms_norm_vec_kernel, dim3(static_cast<unsigned int>(p.rows)), dim3(threads), 0, stream, p);
    return;
  }
  launch_programmatic(rms_norm_kernel, dim3(static_cast<unsigned int>(p.rows)), dim3(kNormThreads), 0, stream, p);
}

void launch_head_rms_norm(uint16_t* x, const uint16_t* weight, int64_t rows, int64_t width, int64_t row_stride,
                          int32_t head_dim, float eps, cudaStream_t stream) {
  const auto heads_per_row = static_cast<int32_t>(width / head_dim);
  const int64_t heads = rows * heads_per_row;
  if (heads == 0) return;
  head_rms_norm_kernel<<<ceil_div_u(heads, 4), 128, 0, stream>>>(x, weight, heads, heads_per_row, row_stride,
                                                                  head_dim, eps);
}

void launch_silu_and_mul(const uint16_t* x, uint16_t* out, int64_t rows, int64_t inter, cudaStream_t stream) {
  if (rows * inter == 0) return;
  if (inter % 8 == 0 && (reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(out)) % 16 == 0) {
    if (!legacy_elementwise() && inter / 8 <= INT32_MAX) {
      const int32_t chunks_per_row = static_cast<int32_t>(inter / 8);
      constexpr int kThreads = 128;  // 14 blocks per row at 14336: enough SMs busy even for one row
      const dim3 grid(ceil_div_u(chunks_per_row, kThreads), static_cast<unsigned int>(std::min<int64_t>(rows, 65535)));
      silu_and_mul_rows_kernel<<<grid, kThreads, 0, stream>>>(x, out, rows, chunks_per_row);
      return;
    }
    silu_and_mul_vec_kernel<<<grid_for(rows * inter / 8, 256), 256, 0, stream>>>(x, out, rows, inter);
    return;
  }
  silu_and_mul_kernel<<<grid_for(rows * inter, 256), 256, 0, stream>>>(x, out, rows, inter);
}

void launch_rope_and_store_kv(const RopeStoreParams& params, const StepArrays& step, cudaStream_t stream) {
  if (step.num_tokens == 0) return;
  RopeStoreParams p = params;  // strides 0: contiguous rows
  if (p.q_stride == 0) p.q_stride = static_cast<int64_t>(p.q_heads) * p.head_dim;
  if (p.k_stride == 0) p.k_stride = static_cast<int64_t>(p.kv_heads) * p.head_dim;
  if (p.v_stride == 0) p.v_stride = static_cast<int64_t>(p.kv_heads) * p.head_dim;
  const int half = p.rotary_dim / 2;
  const bool shapes_ok = p.head_dim % 8 == 0 && p.rotary_dim % (p.interleaved ? 8 : 16) == 0 && half <= kRopeMaxHalf;
  const bool pointers_ok = aligned16(p.q) && aligned16(p.k) && aligned16(p.v) && aligned16(p.k_cache) &&
                           aligned16(p.v_cache) && p.q_stride % 8 == 0 && p.k_stride % 8 == 0 && p.v_stride % 8 == 0;
  if (!legacy_elementwise() && shapes_ok && pointers_ok) {
    const int64_t per_head = p.interleaved ? p.rotary_dim / 8 : half / 8;
    const int64_t items = (p.q_heads + p.kv_heads) * per_head +
                          static_cast<int64_t>(p.kv_heads) * ((p.head_dim - p.rotary_dim) / 8) +
                          static_cast<int64_t>(p.kv_heads) * p.head_dim / 8;
    const int64_t per_thread = (items + kRopeItemsPerThread - 1) / kRopeItemsPerThread;
    if (per_thread <= 1024) {
      const int threads = static_cast<int>(std::max<int64_t>(64, (per_thread + 31) / 32 * 32));
      launch_programmatic(rope_store_items_kernel, dim3(static_cast<unsigned int>(step.num_tokens)), dim3(threads), 0,
                          stream, p, step.positions, step.kv_slots);
      return;
    }
  }
  const dim3 grid(static_cast<unsigned int>(step.num_tokens), ceil_div_u(p.q_heads + p.kv_heads, kRopeHeads));
  rope_store_kernel<<<grid, 128, 0, stream>>>(p, step.positions, step.kv_slots);
}

void launch_gather_rows(const void* x, void* out, int64_t row_bytes, const StepArrays& step, cudaStream_t stream) {
  if (step.num_logit_rows == 0) return;
  launch_programmatic(gather_rows_kernel, dim3(static_cast<unsigned int>(step.num_logit_rows)), dim3(256), 0, stream,
                      static_cast<const uint16_t*>(x), static_cast<uint16_t*>(out), row_bytes / 2, step.logit_rows);
}

void launch_argmax_rows(const float* logits, int64_t rows, int64_t vocab, int32_t* out, float* slice_value,
                        int32_t* slice_index, cudaStream_t stream) {
  if (rows == 0) return;
  argmax_slices_kernel<<<dim3(static_cast<unsigned int>(rows), kArgmaxSlices), 256, 0, stream>>>(logits, vocab,
                                                                                                   slice_value, slice_index);
  launch_programmatic(argmax_merge_kernel, dim3(static_cast<unsigned int>(rows)), dim3(32), 0, stream,
                      static_cast<const float*>(slice_value), static_cast<const int32_t*>(slice_index), out);
}

void launch_bf16_to_f32(const uint16_t* in, float* out, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  bf16_to_f32_kernel<<<grid_for(n, 256), 256, 0, stream>>>(in, out, n);
}

void launch_add_bias(void* out, bool out_f32, const uint16_t* bias, int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows * cols == 0) return;
  add_bias_kernel<<<grid_for(rows * cols, 256), 256, 0, stream>>>(out, out_f32, bias, rows, cols);
}

}  // namespace radixlm::cuda
