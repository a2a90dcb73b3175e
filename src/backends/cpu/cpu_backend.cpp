#include "backends/cpu/cpu_backend.h"

#include <algorithm>
#include <cstring>

#include "backends/cpu/cpu_kernels.h"
#include "core/status.h"

namespace radixlm {

CpuBackend::CpuBackend(int num_threads) : pool_(std::max(1, num_threads)) {}

Tensor CpuBackend::alloc(DType dtype, const Shape& shape) { return alloc_host_tensor(dtype, shape); }

Tensor CpuBackend::upload(const Tensor& host) {
  RADIXLM_CHECK(host.view.device == Device::kCpu, "upload wants a host tensor");
  return host;  // the CPU reads host memory as it is: no copy
}

void CpuBackend::copy_to_host_f32(const TensorView& src, float* dst) {
  RADIXLM_CHECK(src.device == Device::kCpu && src.is_contiguous());
  convert_to_f32(src.dtype, src.data, dst, static_cast<size_t>(src.numel()));
}

void CpuBackend::begin_step(const ForwardBatch& batch) {
  // The batch is the engine's; a broken one is a bug, so it is checked once here rather than in every op.
  const int32_t num_seqs = batch.num_seqs();
  RADIXLM_CHECK(batch.page_size > 0);
  RADIXLM_CHECK(batch.positions.size() == batch.token_ids.size() && batch.kv_slots.size() == batch.token_ids.size());
  RADIXLM_CHECK(static_cast<int32_t>(batch.query_start.size()) == num_seqs + 1 && batch.query_start.front() == 0 &&
                batch.query_start.back() == batch.num_tokens());
  RADIXLM_CHECK(static_cast<int32_t>(batch.page_table_start.size()) == num_seqs + 1 &&
                batch.page_table_start.back() == static_cast<int32_t>(batch.page_table.size()));
  token_seq_.assign(batch.token_ids.size(), 0);
  for (int32_t s = 0; s < num_seqs; ++s) {
    const int32_t pages = batch.page_table_start[s + 1] - batch.page_table_start[s];
    RADIXLM_CHECK(static_cast<int64_t>(pages) * batch.page_size >= batch.kv_length[s],
                  "sequence {} has {} pages for {} kv tokens", s, pages, batch.kv_length[s]);
    for (int32_t t = batch.query_start[s]; t < batch.query_start[s + 1]; ++t) {
      RADIXLM_CHECK(batch.positions[t] >= 0 && batch.positions[t] < batch.kv_length[s]);
      token_seq_[static_cast<size_t>(t)] = s;
    }
  }
  for (int32_t row : batch.logit_rows) RADIXLM_CHECK(row >= 0 && row < batch.num_tokens());
  batch_ = batch;
}

void CpuBackend::embedding(const TensorView& table, const TensorView& out) {
  cpu::embedding(pool_, batch_.token_ids, table, out);
}

void CpuBackend::rms_norm(const TensorView& x, const TensorView& weight, float eps, const TensorView& out) {
  cpu::rms_norm(pool_, x, weight, eps, out);
}

void CpuBackend::head_rms_norm(const TensorView& x, const TensorView& weight, int32_t head_dim, float eps) {
  cpu::head_rms_norm(pool_, x, weight, head_dim, eps);
}

void CpuBackend::linear(const TensorView& x, const TensorView& weight, const TensorView& bias,
                        const TensorView& out) {
  cpu::linear(pool_, x, weight, bias, out);
}

void CpuBackend::linear_add(const TensorView& x, const TensorView& weight, const TensorView& bias,
                            const TensorView& residual) {
  cpu::linear(pool_, x, weight, bias, residual, /*accumulate=*/true);
}

void CpuBackend::silu_and_mul(const TensorView& x, const TensorView& out) { cpu::silu_and_mul(pool_, x, out); }

void CpuBackend::linear_silu_and_mul(const TensorView& x, const TensorView& weight, const TensorView& bias,
                                     const TensorView& out) {
  RADIXLM_CHECK(x.ndim() == 2 && weight.ndim() == 2, "linear_silu_and_mul: x {} weight {}", x.shape.to_string(),
                weight.shape.to_string());
  const int64_t need = x.size(0) * weight.size(0);
  if (gate_up_scratch_.view.numel() < need) gate_up_scratch_ = alloc(DType::kF32, {need});  // reused by every layer
  const TensorView gate_up(gate_up_scratch_.view.data, DType::kF32, {x.size(0), weight.size(0)});
  cpu::linear(pool_, x, weight, bias, gate_up);
  cpu::silu_and_mul(pool_, gate_up, out);
}

void CpuBackend::rope_and_store_kv(const TensorView& q, const TensorView& k, const TensorView& v,
                                   const RopeTable& rope, int32_t head_dim, const LayerKvCache& cache) {
  cpu::rope_and_store_kv(pool_, batch_, q, k, v, rope, head_dim, cache);
}

void CpuBackend::attention(const TensorView& q, const LayerKvCache& cache, int32_t num_q_heads, int32_t num_kv_heads,
                           int32_t head_dim, float scale, const TensorView& out) {
  cpu::paged_attention(pool_, batch_, token_seq_, q, cache, num_q_heads, num_kv_heads, head_dim, scale, out);
}

void CpuBackend::gather_logit_rows(const TensorView& x, const TensorView& out) {
  RADIXLM_CHECK(x.ndim() == 2 && out.ndim() == 2 && x.dtype == out.dtype && x.size(1) == out.size(1) &&
                out.size(0) == static_cast<int64_t>(batch_.logit_rows.size()) && x.is_contiguous() &&
                out.is_contiguous());
  const size_t row_bytes = static_cast<size_t>(x.size(1)) * dtype_size(x.dtype);
  for (size_t r = 0; r < batch_.logit_rows.size(); ++r) {
    const int64_t row = batch_.logit_rows[r];
    RADIXLM_CHECK(row >= 0 && row < x.size(0));
    std::memcpy(static_cast<uint8_t*>(out.data) + r * row_bytes,
                static_cast<const uint8_t*>(x.data) + static_cast<size_t>(row) * row_bytes, row_bytes);
  }
}

}  // namespace radixlm
