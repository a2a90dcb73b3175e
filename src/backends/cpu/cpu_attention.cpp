// Causal attention over the paged KV cache: each (new token, query head) pair is one independent task.
// The query at position p attends to kv positions 0..p of its own sequence, found through the sequence's
// page table; the softmax subtracts the running maximum so large scores cannot overflow.

#include <algorithm>
#include <cmath>
#include <vector>

#include "backends/cpu/cpu_kernels.h"
#include "core/status.h"

namespace radixlm::cpu {

void paged_attention(ThreadPool& pool, const ForwardBatch& batch, const std::vector<int32_t>& token_seq,
                     const TensorView& q, const LayerKvCache& cache, int32_t num_q_heads, int32_t num_kv_heads,
                     int32_t head_dim, float scale, const TensorView& out) {
  const int64_t tokens = batch.num_tokens();
  RADIXLM_CHECK(num_kv_heads > 0 && num_q_heads % num_kv_heads == 0, "GQA {} / {}", num_q_heads, num_kv_heads);
  RADIXLM_CHECK(q.dtype == DType::kF32 && out.dtype == DType::kF32 && q.is_row_strided() && out.is_contiguous());
  RADIXLM_CHECK(q.size(0) == tokens && q.size(1) == int64_t{num_q_heads} * head_dim && out.shape == q.shape,
                "attention: q {} out {} for {} tokens", q.shape.to_string(), out.shape.to_string(), tokens);
  RADIXLM_CHECK(cache.k.dtype() == DType::kF32 && cache.v.dtype() == DType::kF32, "CPU KV cache is f32");
  const int64_t kv_row = static_cast<int64_t>(num_kv_heads) * head_dim;
  RADIXLM_CHECK(cache.k.view.numel() % kv_row == 0 && cache.v.view.numel() == cache.k.view.numel());
  const int64_t num_slots = cache.k.view.numel() / kv_row;
  const int32_t group = num_q_heads / num_kv_heads;
  const int64_t page_size = batch.page_size;
  const float* q_data = q.as<float>();
  const float* k_data = cache.k.as<float>();
  const float* v_data = cache.v.as<float>();
  float* out_data = out.as<float>();
  const int64_t max_kv = batch.max_kv_len();

  pool.parallel_for(
      tokens * num_q_heads,
      [&](int64_t begin, int64_t end) {
        std::vector<float> scores(static_cast<size_t>(max_kv));
        std::vector<int64_t> slots(static_cast<size_t>(max_kv));
        std::vector<float> acc(static_cast<size_t>(head_dim));
        for (int64_t item = begin; item < end; ++item) {
          const int64_t t = item / num_q_heads;
          const int32_t head = static_cast<int32_t>(item % num_q_heads);
          const int32_t kv_head = head / group;
          const int32_t seq = token_seq[static_cast<size_t>(t)];
          const int64_t visible = static_cast<int64_t>(batch.positions[static_cast<size_t>(t)]) + 1;
          RADIXLM_CHECK(visible <= batch.kv_length[static_cast<size_t>(seq)], "query position past kv length");
          const int32_t* pages = batch.page_table.data() + batch.page_table_start[static_cast<size_t>(seq)];
          const float* q_row = q_data + t * q.row_stride() + head * head_dim;

          float max_score = -INFINITY;
          for (int64_t j = 0; j < visible; ++j) {
            const int64_t slot = static_cast<int64_t>(pages[j / page_size]) * page_size + j % page_size;
            RADIXLM_CHECK(slot >= 0 && slot < num_slots, "kv slot {} outside the cache", slot);
            slots[static_cast<size_t>(j)] = slot;
            const float score = dot_f32(q_row, k_data + slot * kv_row + kv_head * head_dim, head_dim) * scale;
            scores[static_cast<size_t>(j)] = score;
            max_score = std::max(max_score, score);
          }
          double denominator = 0.0;
          for (int64_t j = 0; j < visible; ++j) {
            const float weight = std::exp(scores[static_cast<size_t>(j)] - max_score);
            scores[static_cast<size_t>(j)] = weight;
            denominator += weight;
          }
          std::fill(acc.begin(), acc.end(), 0.0f);
          for (int64_t j = 0; j < visible; ++j) {
            const float weight = scores[static_cast<size_t>(j)];
            const float* v_row = v_data + slots[static_cast<size_t>(j)] * kv_row + kv_head * head_dim;
            for (int32_t d = 0; d < head_dim; ++d) acc[static_cast<size_t>(d)] += weight * v_row[d];
          }
          const float inverse = static_cast<float>(1.0 / denominator);
          float* out_row = out_data + (t * num_q_heads + head) * head_dim;
          for (int32_t d = 0; d < head_dim; ++d) out_row[d] = acc[static_cast<size_t>(d)] * inverse;
        }
      },
      /*grain=*/4);
}

}  // namespace radixlm::cpu
