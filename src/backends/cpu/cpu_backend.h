#pragma once
// The reference implementation of ops/Backend on the host: f32 activations, f32 accumulation, weights read
// in their stored dtype (f32, bf16, f16, fp8) and converted exactly on the fly. Every later backend is
// tested against this one, so each op is written for exactness first and speed second.

#include <cstdint>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "ops/backend.h"

namespace radixlm {

class CpuBackend final : public Backend {
 public:
  // num_threads counts the calling thread; values below 1 mean 1.
  explicit CpuBackend(int num_threads);

  Device device() const override { return Device::kCpu; }
  std::string name() const override { return "cpu"; }
  DType activation_dtype() const override { return DType::kF32; }
  int num_threads() const { return pool_.num_threads(); }

  Tensor alloc(DType dtype, const Shape& shape) override;
  Tensor upload(const Tensor& host) override;
  void copy_to_host_f32(const TensorView& src, float* dst) override;

  void begin_step(const ForwardBatch& batch) override;

  void embedding(const TensorView& table, const TensorView& out) override;
  void rms_norm(const TensorView& x, const TensorView& weight, float eps, const TensorView& out) override;
  void head_rms_norm(const TensorView& x, const TensorView& weight, int32_t head_dim, float eps) override;
  void linear(const TensorView& x, const TensorView& weight, const TensorView& bias, const TensorView& out) override;
  void linear_add(const TensorView& x, const TensorView& weight, const TensorView& bias,
                  const TensorView& residual) override;
  void silu_and_mul(const TensorView& x, const TensorView& out) override;
  void linear_silu_and_mul(const TensorView& x, const TensorView& weight, const TensorView& bias,
                           const TensorView& out) override;
  void rope_and_store_kv(const TensorView& q, const TensorView& k, const TensorView& v, const RopeTable& rope,
                         int32_t head_dim, const LayerKvCache& cache) override;
  void attention(const TensorView& q, const LayerKvCache& cache, int32_t num_q_heads, int32_t num_kv_heads,
                 int32_t head_dim, float scale, const TensorView& out) override;
  void gather_logit_rows(const TensorView& x, const TensorView& out) override;

 private:
  ThreadPool pool_;
  ForwardBatch batch_;
  std::vector<int32_t> token_seq_;  // sequence index of each new token of the step
  Tensor gate_up_scratch_;           // linear_silu_and_mul's intermediate, grown as needed
};

}  // namespace radixlm
