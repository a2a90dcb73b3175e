// Row-wise kernels of the CUDA backend: embedding gather, RMSNorm (plain, fused with the residual add, per
// head), SiLU-and-multiply, RoPE fused with the KV store, logit-row gather, argmax and small conversions.
// All arithmetic is f32; values are stored as bf16, rounded to nearest even.

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

// One block per token: rotate every q and k head at the token's position, then copy the token's k and v
// rows into its cache slot.
__global__ void rope_store_kernel(RopeStoreParams p, const int32_t* positions, const int64_t* kv_slots) {
  const int64_t t = blockIdx.x;
  const int half = p.rotary_dim / 2;
  const float position = static_cast<float>(positions[t]);
  const int heads = p.q_heads + p.kv_heads;
  for (int item = threadIdx.x; item < heads * half; item += blockDim.x) {
    const int head = item / half, i = item % half;
    uint16_t* base = head < p.q_heads ? p.q + (t * p.q_heads + head) * p.head_dim
                                      : p.k + (t * p.kv_heads + (head - p.q_heads)) * p.head_dim;
    // The angle is rounded to f32 as HF computes it; sin/cos themselves are full precision.
    const float angle = position * p.inv_freq[i];
    float sin_value, cos_value;
    sincosf(angle, &sin_value, &cos_value);
    cos_value *= p.attention_scaling;
    sin_value *= p.attention_scaling;
    const int first = p.interleaved ? 2 * i : i;
    const int second = p.interleaved ? 2 * i + 1 : i + half;
    const float x1 = bf16_bits_to_f32(base[first]), x2 = bf16_bits_to_f32(base[second]);
    base[first] = f32_to_bf16_bits(x1 * cos_value - x2 * sin_value);
    base[second] = f32_to_bf16_bits(x2 * cos_value + x1 * sin_value);
  }
  __syncthreads();
  const int64_t width = static_cast<int64_t>(p.kv_heads) * p.head_dim;
  const int64_t slot = kv_slots[t];
  for (int64_t i = threadIdx.x; i < width; i += blockDim.x) {
    p.k_cache[slot * width + i] = p.k[t * width + i];
    p.v_cache[slot * width + i] = p.v[t * width + i];
  }
}

__global__ void gather_rows_kernel(const uint16_t* x, uint16_t* out, int64_t row_elems, const int32_t* rows) {
  const int64_t r = blockIdx.x;
  const uint16_t* src = x + static_cast<int64_t>(rows[r]) * row_elems;
  for (int64_t i = threadIdx.x; i < row_elems; i += blockDim.x) out[r * row_elems + i] = src[i];
}

__global__ void argmax_kernel(const float* logits, int64_t vocab, int32_t* out) {
  constexpr int kThreads = 1024;
  __shared__ float best_value[kThreads];
  __shared__ int32_t best_index[kThreads];
  const float* row = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  float value = -INFINITY;
  int32_t index = INT32_MAX;
  for (int64_t i = threadIdx.x; i < vocab; i += kThreads) {
    const float v = row[i];
    if (v > value) {  // strictly greater: each thread keeps its first maximum
      value = v;
      index = static_cast<int32_t>(i);
    }
  }
  best_value[threadIdx.x] = value;
  best_index[threadIdx.x] = index;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride) {
      const float other = best_value[threadIdx.x + stride];
      const int32_t other_index = best_index[threadIdx.x + stride];
      if (other > best_value[threadIdx.x] ||
          (other == best_value[threadIdx.x] && other_index < best_index[threadIdx.x])) {
        best_value[threadIdx.x] = other;
        best_index[threadIdx.x] = other_index;
      }
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = best_index[0] == INT32_MAX ? 0 : best_index[0];
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
  silu_and_mul_kernel<<<grid_for(rows * inter, 256), 256, 0, stream>>>(x, out, rows, inter);
}

void launch_rope_and_store_kv(const RopeStoreParams& p, const StepArrays& step, cudaStream_t stream) {
  if (step.num_tokens == 0) return;
  rope_store_kernel<<<step.num_tokens, 128, 0, stream>>>(p, step.positions, step.kv_slots);
}

void launch_gather_rows(const void* x, void* out, int64_t row_bytes, const StepArrays& step, cudaStream_t stream) {
  if (step.num_logit_rows == 0) return;
  gather_rows_kernel<<<step.num_logit_rows, 256, 0, stream>>>(static_cast<const uint16_t*>(x),
                                                               static_cast<uint16_t*>(out), row_bytes / 2,
                                                               step.logit_rows);
}

void launch_argmax_rows(const float* logits, int64_t rows, int64_t vocab, int32_t* out, cudaStream_t stream) {
  if (rows == 0) return;
  argmax_kernel<<<static_cast<unsigned int>(rows), 1024, 0, stream>>>(logits, vocab, out);
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
