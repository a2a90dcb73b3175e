// Row-wise kernels of the CUDA backend: embedding gather, RMSNorm (plain, fused with the residual add, per
// head), SiLU-and-multiply, RoPE fused with the KV store, logit-row gather, argmax and small conversions.
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

// residual (when given) += x, then out = rms_norm(residual or x) * weight. The sum of squares is taken of
// the values as stored (bf16), so the norm is that of the tensor the next layer sees.
__global__ void rms_norm_kernel(RmsNormParams p) {
  __shared__ float scratch[kNormThreads / 32];
  const int64_t row = blockIdx.x;
  const uint16_t* x = p.x + row * p.width;
  uint16_t* residual = p.residual ? p.residual + row * p.width : nullptr;
  uint16_t* out = p.out + row * p.width;
  float sum_squares = 0.0f;
  for (int64_t i = threadIdx.x; i < p.width; i += kNormThreads) {
    float value = bf16_bits_to_f32(x[i]);
    if (residual) {
      const uint16_t stored = f32_to_bf16_bits(value + bf16_bits_to_f32(residual[i]));
      residual[i] = stored;
      value = bf16_bits_to_f32(stored);
    }
    sum_squares += value * value;
  }
  const float total = block_sum<kNormThreads / 32>(sum_squares, scratch);
  const float inverse_rms = rsqrtf(total / static_cast<float>(p.width) + p.eps);
  const uint16_t* source = residual ? residual : x;
  for (int64_t i = threadIdx.x; i < p.width; i += kNormThreads) {
    const float value = bf16_bits_to_f32(source[i]);
    out[i] = f32_to_bf16_bits(bf16_bits_to_f32(p.weight[i]) * (value * inverse_rms));
  }
}

// The same for rows whose width is a multiple of 8: one block per row, each thread holding up to
// kNormChunks 16-byte chunks in registers between the two passes (one read of x and residual, one write).
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

__global__ void rms_norm_vec_kernel(RmsNormParams p) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const int64_t chunks = p.width / 8;
  const auto* x = reinterpret_cast<const uint4*>(p.x + row * p.width);
  auto* residual = p.residual ? reinterpret_cast<uint4*>(p.residual + row * p.width) : nullptr;
  auto* out = reinterpret_cast<uint4*>(p.out + row * p.width);
  const auto* weight = reinterpret_cast<const uint4*>(p.weight);
  float values[kNormChunks][8];
  float sum_squares = 0.0f;
#pragma unroll
  for (int c = 0; c < kNormChunks; ++c) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(c) * blockDim.x;
    if (i < chunks) {
      unpack8(x[i], values[c]);
      if (residual) {
        float r[8];
        unpack8(residual[i], r);
        uint4 stored;
        // The residual is kept in bf16; the norm reads the stored (rounded) sum.
#pragma unroll
        for (int e = 0; e < 8; ++e) values[c][e] = bf16_bits_to_f32(f32_to_bf16_bits(values[c][e] + r[e]));
        stored.x = pack2(values[c][0], values[c][1]);
        stored.y = pack2(values[c][2], values[c][3]);
        stored.z = pack2(values[c][4], values[c][5]);
        stored.w = pack2(values[c][6], values[c][7]);
        residual[i] = stored;
      }
#pragma unroll
      for (int e = 0; e < 8; ++e) sum_squares += values[c][e] * values[c][e];
    }
  }
  // Block sum over blockDim.x / 32 warps.
  sum_squares = warp_sum(sum_squares);
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  if (lane == 0) scratch[warp] = sum_squares;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < static_cast<int>(blockDim.x) / 32; ++w) total += scratch[w];
  const float inverse_rms = rsqrtf(total / static_cast<float>(p.width) + p.eps);
#pragma unroll
  for (int c = 0; c < kNormChunks; ++c) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(c) * blockDim.x;
    if (i < chunks) {
      float w[8];
      unpack8(weight[i], w);
      uint4 result;
      result.x = pack2(w[0] * (values[c][0] * inverse_rms), w[1] * (values[c][1] * inverse_rms));
      result.y = pack2(w[2] * (values[c][2] * inverse_rms), w[3] * (values[c][3] * inverse_rms));
      result.z = pack2(w[4] * (values[c][4] * inverse_rms), w[5] * (values[c][5] * inverse_rms));
      result.w = pack2(w[6] * (values[c][6] * inverse_rms), w[7] * (values[c][7] * inverse_rms));
      out[i] = result;
    }
  }
}

// One warp per head slice.
__global__ void head_rms_norm_kernel(uint16_t* x, const uint16_t* weight, int64_t num_heads, int32_t head_dim,
                                     float eps) {
  const int64_t head = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = static_cast<int>(threadIdx.x % 32);
  if (head >= num_heads) return;
  uint16_t* row = x + head * head_dim;
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
    uint4 result;
    result.x = pack2(y[0], y[1]);
    result.y = pack2(y[2], y[3]);
    result.z = pack2(y[4], y[5]);
    result.w = pack2(y[6], y[7]);
    reinterpret_cast<uint4*>(out + r * inter)[i] = result;
  }
}

// Grid (token, group of kRopeHeads heads of q then k): the block computes the token's cos/sin once into
// shared memory, rotates its heads, then copies the k heads it rotated (and the matching v heads) into the
// token's cache slot.
constexpr int kRopeHeads = 8;
constexpr int kRopeMaxHalf = 256;  // rotary_dim / 2 <= 256 (head_dim <= 512)

__global__ void rope_store_kernel(RopeStoreParams p, const int32_t* positions, const int64_t* kv_slots) {
  __shared__ float cos_table[kRopeMaxHalf], sin_table[kRopeMaxHalf];
  const int64_t t = blockIdx.x;
  const int half = p.rotary_dim / 2;
  const float position = static_cast<float>(positions[t]);
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    // The angle is rounded to f32 as HF computes it; sin/cos themselves are full precision.
    float sin_value, cos_value;
    sincosf(position * p.inv_freq[i], &sin_value, &cos_value);
    cos_table[i] = cos_value * p.attention_scaling;
    sin_table[i] = sin_value * p.attention_scaling;
  }
  __syncthreads();
  const int heads = p.q_heads + p.kv_heads;
  const int head_begin = static_cast<int>(blockIdx.y) * kRopeHeads;
  const int head_end = min(head_begin + kRopeHeads, heads);
  for (int item = threadIdx.x; item < (head_end - head_begin) * half; item += blockDim.x) {
    const int head = head_begin + item / half, i = item % half;
    uint16_t* base = head < p.q_heads ? p.q + (t * p.q_heads + head) * p.head_dim
                                      : p.k + (t * p.kv_heads + (head - p.q_heads)) * p.head_dim;
    const int first = p.interleaved ? 2 * i : i;
    const int second = p.interleaved ? 2 * i + 1 : i + half;
    const float x1 = bf16_bits_to_f32(base[first]), x2 = bf16_bits_to_f32(base[second]);
    base[first] = f32_to_bf16_bits(x1 * cos_table[i] - x2 * sin_table[i]);
    base[second] = f32_to_bf16_bits(x2 * cos_table[i] + x1 * sin_table[i]);
  }
  const int k_begin = max(head_begin, p.q_heads) - p.q_heads, k_end = head_end - p.q_heads;
  if (k_end <= k_begin) return;
  __syncthreads();
  const int64_t width = static_cast<int64_t>(p.kv_heads) * p.head_dim;
  const int64_t slot = kv_slots[t];
  for (int64_t i = static_cast<int64_t>(k_begin) * p.head_dim + threadIdx.x; i < static_cast<int64_t>(k_end) * p.head_dim;
       i += blockDim.x) {
    p.k_cache[slot * width + i] = p.k[t * width + i];
    p.v_cache[slot * width + i] = p.v[t * width + i];
  }
}

__global__ void gather_rows_kernel(const uint16_t* x, uint16_t* out, int64_t row_elems, const int32_t* rows) {
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

__global__ void argmax_slices_kernel(const float* logits, int64_t vocab, float* slice_value, int32_t* slice_index) {
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

unsigned int grid_for(int64_t total, int threads) {
  const int64_t blocks = (total + threads - 1) / threads;
  return static_cast<unsigned int>(blocks < 65536 ? (blocks > 0 ? blocks : 1) : 65536);
}

}  // namespace

void launch_embedding(const uint16_t* table, int64_t vocab, int64_t hidden, const StepArrays& step, uint16_t* out,
                      cudaStream_t stream) {
  if (step.num_tokens == 0) return;
  embedding_kernel<<<step.num_tokens, 128, 0, stream>>>(table, vocab, hidden, step.token_ids, out);
}

void launch_rms_norm(const RmsNormParams& p, cudaStream_t stream) {
  if (p.rows == 0) return;
  const int64_t chunks = p.width / 8;
  const bool aligned = (reinterpret_cast<uintptr_t>(p.x) | reinterpret_cast<uintptr_t>(p.out) |
                        reinterpret_cast<uintptr_t>(p.weight) | reinterpret_cast<uintptr_t>(p.residual)) % 16 == 0;
  if (p.width % 8 == 0 && aligned && chunks <= 1024 * kNormChunks) {
    // Enough threads that each holds at most kNormChunks chunks, in whole warps.
    int threads = static_cast<int>((chunks + kNormChunks - 1) / kNormChunks);
    threads = std::max(32, std::min(1024, (threads + 31) / 32 * 32));
    if (chunks > 128) threads = std::max(threads, 128);
    rms_norm_vec_kernel<<<static_cast<unsigned int>(p.rows), threads, 0, stream>>>(p);
    return;
  }
  rms_norm_kernel<<<static_cast<unsigned int>(p.rows), kNormThreads, 0, stream>>>(p);
}

void launch_head_rms_norm(uint16_t* x, const uint16_t* weight, int64_t rows, int64_t width, int32_t head_dim,
                          float eps, cudaStream_t stream) {
  const int64_t heads = rows * (width / head_dim);
  if (heads == 0) return;
  head_rms_norm_kernel<<<ceil_div_u(heads, 4), 128, 0, stream>>>(x, weight, heads, head_dim, eps);
}

void launch_silu_and_mul(const uint16_t* x, uint16_t* out, int64_t rows, int64_t inter, cudaStream_t stream) {
  if (rows * inter == 0) return;
  if (inter % 8 == 0 && (reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(out)) % 16 == 0) {
    silu_and_mul_vec_kernel<<<grid_for(rows * inter / 8, 256), 256, 0, stream>>>(x, out, rows, inter);
    return;
  }
  silu_and_mul_kernel<<<grid_for(rows * inter, 256), 256, 0, stream>>>(x, out, rows, inter);
}

void launch_rope_and_store_kv(const RopeStoreParams& p, const StepArrays& step, cudaStream_t stream) {
  if (step.num_tokens == 0) return;
  const dim3 grid(static_cast<unsigned int>(step.num_tokens), ceil_div_u(p.q_heads + p.kv_heads, kRopeHeads));
  rope_store_kernel<<<grid, 128, 0, stream>>>(p, step.positions, step.kv_slots);
}

void launch_gather_rows(const void* x, void* out, int64_t row_bytes, const StepArrays& step, cudaStream_t stream) {
  if (step.num_logit_rows == 0) return;
  gather_rows_kernel<<<step.num_logit_rows, 256, 0, stream>>>(static_cast<const uint16_t*>(x),
                                                               static_cast<uint16_t*>(out), row_bytes / 2,
                                                               step.logit_rows);
}

void launch_argmax_rows(const float* logits, int64_t rows, int64_t vocab, int32_t* out, float* slice_value,
                        int32_t* slice_index, cudaStream_t stream) {
  if (rows == 0) return;
  argmax_slices_kernel<<<dim3(static_cast<unsigned int>(rows), kArgmaxSlices), 256, 0, stream>>>(logits, vocab,
                                                                                                   slice_value, slice_index);
  argmax_merge_kernel<<<static_cast<unsigned int>(rows), 32, 0, stream>>>(slice_value, slice_index, out);
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
