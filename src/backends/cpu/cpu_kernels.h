#pragma once
// The CPU backend's kernels as free functions over plain views, so each can be read and tested alone.
// All activations are contiguous row-major f32; weights may be any float dtype.

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "ops/backend.h"
#include "ops/forward_batch.h"
#include "ops/rope.h"

namespace radixlm::cpu {

// out [T, N] = x [T, K] @ weight[N, K]^T (+ bias [N]); with accumulate, out += the same.
void linear(ThreadPool& pool, const TensorView& x, const TensorView& weight, const TensorView& bias,
            const TensorView& out, bool accumulate = false);

// Paged causal attention; `token_seq[t]` is the sequence of new token t.
void paged_attention(ThreadPool& pool, const ForwardBatch& batch, const std::vector<int32_t>& token_seq,
                     const TensorView& q, const LayerKvCache& cache, int32_t num_q_heads, int32_t num_kv_heads,
                     int32_t head_dim, float scale, const TensorView& out);

void rope_and_store_kv(ThreadPool& pool, const ForwardBatch& batch, const TensorView& q, const TensorView& k,
                       const TensorView& v, const RopeTable& rope, int32_t head_dim, const LayerKvCache& cache);

void embedding(ThreadPool& pool, const std::vector<int32_t>& token_ids, const TensorView& table,
               const TensorView& out);
void rms_norm(ThreadPool& pool, const TensorView& x, const TensorView& weight, float eps, const TensorView& out);
void head_rms_norm(ThreadPool& pool, const TensorView& x, const TensorView& weight, int32_t head_dim, float eps);
void silu_and_mul(ThreadPool& pool, const TensorView& x, const TensorView& out);

// Dot products with independent partial sums, so the compiler can vectorize without reassociating a
// single running sum (no -ffast-math needed).
float dot_f32(const float* a, const float* b, int64_t n);
float dot_bf16(const float* a, const uint16_t* b, int64_t n);
// out[r] = dot(a, b + r * n) for r in [0, rows): the same values as `rows` single dots, computed faster.
void dot_rows_f32(const float* a, const float* b, int64_t rows, int64_t n, float* out);
void dot_rows_bf16(const float* a, const uint16_t* b, int64_t rows, int64_t n, float* out);
// The portable versions whatever the CPU offers, so tests can check the vector paths against them.
float dot_bf16_portable(const float* a, const uint16_t* b, int64_t n);
void dot_rows_bf16_portable(const float* a, const uint16_t* b, int64_t rows, int64_t n, float* out);

}  // namespace radixlm::cpu
