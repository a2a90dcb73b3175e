// Row-wise ops of the CPU backend: embedding lookup, RMSNorm (plain, fused with the residual add, and per
// head), SiLU-and-multiply, and RoPE with the KV store. Reductions run in double so this backend stays the
// exact reference the device kernels are compared with.

#include <cmath>
#include <cstring>
#include <vector>

#include "backends/cpu/cpu_kernels.h"
#include "core/status.h"

namespace radixlm::cpu {
namespace {

constexpr int64_t kRowGrain = 8;

// Weight vectors are small; converting them once per call keeps the row loops on plain floats.
std::vector<float> weight_to_f32(const TensorView& weight, int64_t expected) {
  RADIXLM_CHECK(weight.numel() == expected && weight.is_contiguous(), "norm weight {} for width {}",
                weight.shape.to_string(), expected);
  std::vector<float> out(static_cast<size_t>(expected));
  convert_to_f32(weight.dtype, weight.data, out.data(), out.size());
  return out;
}

// out = x / sqrt(mean(x^2) + eps) * weight, as HF's LlamaRMSNorm in fp32.
void normalize_row(const float* x, const float* weight, int64_t width, float eps, float* out) {
  double sum_squares = 0.0;
  for (int64_t i = 0; i < width; ++i) sum_squares += static_cast<double>(x[i]) * x[i];
  const auto inverse_rms =
      static_cast<float>(1.0 / std::sqrt(sum_squares / static_cast<double>(width) + static_cast<double>(eps)));
  for (int64_t i = 0; i < width; ++i) out[i] = weight[i] * (x[i] * inverse_rms);
}

void check_rows(const TensorView& x) {
  RADIXLM_CHECK(x.ndim() == 2 && x.dtype == DType::kF32 && x.is_contiguous(), "want a contiguous f32 [rows, cols], got {}",
                x.shape.to_string());
}

// Rows of contiguous elements at any stride: the q, k and v column blocks of a fused projection.
void check_strided_rows(const TensorView& x) {
  RADIXLM_CHECK(x.dtype == DType::kF32 && x.is_row_strided(), "want f32 [rows, cols] with contiguous rows, got {}",
                x.shape.to_string());
}

}  // namespace

void embedding(ThreadPool& pool, const std::vector<int32_t>& token_ids, const TensorView& table,
               const TensorView& out) {
  check_rows(out);
  RADIXLM_CHECK(table.ndim() == 2 && table.is_contiguous() && table.size(1) == out.size(1) &&
                out.size(0) == static_cast<int64_t>(token_ids.size()));
  const int64_t vocab = table.size(0), hidden = table.size(1);
  const size_t row_bytes = static_cast<size_t>(hidden) * dtype_size(table.dtype);
  pool.parallel_for(
      out.size(0),
      [&](int64_t begin, int64_t end) {
        for (int64_t t = begin; t < end; ++t) {
          const int32_t id = token_ids[static_cast<size_t>(t)];
          RADIXLM_CHECK(id >= 0 && id < vocab, "token id {} outside the vocabulary of {}", id, vocab);
          convert_to_f32(table.dtype, static_cast<const uint8_t*>(table.data) + row_bytes * static_cast<size_t>(id),
                         out.as<float>() + t * hidden, static_cast<size_t>(hidden));
        }
      },
      kRowGrain);
}

void rms_norm(ThreadPool& pool, const TensorView& x, const TensorView& weight, float eps, const TensorView& out) {
  check_rows(x);
  check_rows(out);
  RADIXLM_CHECK(x.shape == out.shape);
  const int64_t width = x.size(1);
  const std::vector<float> w = weight_to_f32(weight, width);
  pool.parallel_for(
      x.size(0),
      [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          normalize_row(x.as<float>() + r * width, w.data(), width, eps, out.as<float>() + r * width);
        }
      },
      kRowGrain);
}

void head_rms_norm(ThreadPool& pool, const TensorView& x, const TensorView& weight, int32_t head_dim, float eps) {
  check_strided_rows(x);
  RADIXLM_CHECK(head_dim > 0 && x.size(1) % head_dim == 0, "width {} is not a multiple of head_dim {}", x.size(1),
                head_dim);
  const std::vector<float> w = weight_to_f32(weight, head_dim);
  const int64_t heads_per_row = x.size(1) / head_dim;
  const int64_t heads = x.size(0) * heads_per_row;
  pool.parallel_for(
      heads,
      [&](int64_t begin, int64_t end) {
        for (int64_t h = begin; h < end; ++h) {
          float* row = x.as<float>() + h / heads_per_row * x.row_stride() + h % heads_per_row * head_dim;
          normalize_row(row, w.data(), head_dim, eps, row);  // in place: the sum is taken before any write
        }
      },
      kRowGrain * 8);
}

void silu_and_mul(ThreadPool& pool, const TensorView& x, const TensorView& out) {
  check_rows(x);
  check_rows(out);
  const int64_t width = out.size(1);
  RADIXLM_CHECK(x.size(0) == out.size(0) && x.size(1) == 2 * width, "silu_and_mul: x {} out {}",
                x.shape.to_string(), out.shape.to_string());
  pool.parallel_for(
      x.size(0),
      [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const float* gate = x.as<float>() + r * 2 * width;
          const float* up = gate + width;
          float* out_row = out.as<float>() + r * width;
          for (int64_t i = 0; i < width; ++i) out_row[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
        }
      },
      kRowGrain);
}

void rope_and_store_kv(ThreadPool& pool, const ForwardBatch& batch, const TensorView& q, const TensorView& k,
                       const TensorView& v, const RopeTable& rope, int32_t head_dim, const LayerKvCache& cache) {
  check_strided_rows(q);
  check_strided_rows(k);
  check_strided_rows(v);
  const int64_t tokens = batch.num_tokens();
  RADIXLM_CHECK(q.size(0) == tokens && k.shape == v.shape && k.size(0) == tokens);
  RADIXLM_CHECK(q.size(1) % head_dim == 0 && k.size(1) % head_dim == 0);
  RADIXLM_CHECK(rope.rotary_dim > 0 && rope.rotary_dim <= head_dim && rope.rotary_dim % 2 == 0 &&
                static_cast<int32_t>(rope.inv_freq.size()) == rope.rotary_dim / 2);
  RADIXLM_CHECK(cache.k.dtype() == DType::kF32 && cache.v.dtype() == DType::kF32, "CPU KV cache is f32");
  const int64_t kv_width = k.size(1);
  const int64_t num_slots = cache.k.view.numel() / kv_width;
  const int64_t q_heads = q.size(1) / head_dim, k_heads = k.size(1) / head_dim;
  const int32_t half = rope.rotary_dim / 2;

  pool.parallel_for(
      tokens,
      [&](int64_t begin, int64_t end) {
        std::vector<float> cos_values(static_cast<size_t>(half)), sin_values(static_cast<size_t>(half));
        auto rotate = [&](float* head) {
          for (int32_t i = 0; i < half; ++i) {
            // (first, second) is Llama's (i, i + half) pair, or GPT-J's (2i, 2i + 1).
            const int32_t first = rope.interleaved ? 2 * i : i;
            const int32_t second = rope.interleaved ? 2 * i + 1 : i + half;
            const float x1 = head[first], x2 = head[second];
            head[first] = x1 * cos_values[static_cast<size_t>(i)] - x2 * sin_values[static_cast<size_t>(i)];
            head[second] = x2 * cos_values[static_cast<size_t>(i)] + x1 * sin_values[static_cast<size_t>(i)];
          }
        };
        for (int64_t t = begin; t < end; ++t) {
          const auto position = static_cast<float>(batch.positions[static_cast<size_t>(t)]);
          for (int32_t i = 0; i < half; ++i) {
            // The angle is rounded to f32 as HF computes it (inv_freq @ positions in fp32).
            const float angle = position * rope.inv_freq[static_cast<size_t>(i)];
            cos_values[static_cast<size_t>(i)] = static_cast<float>(std::cos(static_cast<double>(angle))) * rope.attention_scaling;
            sin_values[static_cast<size_t>(i)] = static_cast<float>(std::sin(static_cast<double>(angle))) * rope.attention_scaling;
          }
          for (int64_t h = 0; h < q_heads; ++h) rotate(q.as<float>() + t * q.row_stride() + h * head_dim);
          for (int64_t h = 0; h < k_heads; ++h) rotate(k.as<float>() + t * k.row_stride() + h * head_dim);
          const int64_t slot = batch.kv_slots[static_cast<size_t>(t)];
          RADIXLM_CHECK(slot >= 0 && slot < num_slots, "kv slot {} outside the cache of {}", slot, num_slots);
          std::memcpy(cache.k.as<float>() + slot * kv_width, k.as<float>() + t * k.row_stride(),
                      static_cast<size_t>(kv_width) * sizeof(float));
          std::memcpy(cache.v.as<float>() + slot * kv_width, v.as<float>() + t * v.row_stride(),
                      static_cast<size_t>(kv_width) * sizeof(float));
        }
      },
      kRowGrain);
}

}  // namespace radixlm::cpu
