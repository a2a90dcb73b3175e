#pragma once
// The operations a model needs, implemented once per device (backends/cpu is the exact reference,
// backends/cuda the fast one). Activations are row-major 2-D tensors [tokens, features]; weights are HF
// layout [out_features, in_features] in their stored dtype. Attention reads the paged KV cache through the
// step's ForwardBatch, which begin_step() hands to the backend before the step's first op.

#include <cstdint>
#include <memory>
#include <string>

#include "core/tensor.h"
#include "ops/forward_batch.h"
#include "ops/rope.h"

namespace radixlm {

// One layer's K and V cache: [num_pages * page_size, num_kv_heads, head_dim] each, indexed by kv slot.
struct LayerKvCache {
  Tensor k;
  Tensor v;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual Device device() const = 0;
  virtual std::string name() const = 0;
  // The dtype activations flow in between ops: f32 on the CPU, bf16 on CUDA.
  virtual DType activation_dtype() const = 0;

  // --- memory ---
  virtual Tensor alloc(DType dtype, const Shape& shape) = 0;  // zero-filled
  // For an op's output that the op overwrites whole: a GPU backend skips the fill (a memset per tensor per
  // step, ~0.5% of a 4096-token prefill). The default fills anyway.
  virtual Tensor alloc_uninitialized(DType dtype, const Shape& shape) { return alloc(dtype, shape); }
  // A host weight made usable by this backend's ops. The CPU backend may alias it (no copy).
  virtual Tensor upload(const Tensor& host) = 0;
  // Copies a tensor of any float dtype to host f32 (dst holds numel floats).
  virtual void copy_to_host_f32(const TensorView& src, float* dst) = 0;

  // --- per step ---
  virtual void begin_step(const ForwardBatch& batch) = 0;

  // out[t] = table[token_ids[t]]            table [vocab, hidden], out [T, hidden]
  virtual void embedding(const TensorView& table, const TensorView& out) = 0;
  // out = x / rms(x) * weight, per row      x, out [T, H]; weight [H]
  virtual void rms_norm(const TensorView& x, const TensorView& weight, float eps, const TensorView& out) = 0;
  // Each `head_dim` slice of each row normalised separately (Qwen3's q/k norm), in place. weight [head_dim]
  virtual void head_rms_norm(const TensorView& x, const TensorView& weight, int32_t head_dim, float eps) = 0;
  // out = x @ weight^T (+ bias)             x [T, in], weight [out, in], bias [out] or empty, out [T, out]
  virtual void linear(const TensorView& x, const TensorView& weight, const TensorView& bias,
                      const TensorView& out) = 0;
  // residual += x @ weight^T (+ bias): a sublayer's output projection added into the residual stream in one
  // op, so a backend may add in the matmul's epilogue (no [T, out] intermediate to write and read back).
  // x [T, in], weight [out, in], bias [out] or empty, residual [T, out]
  virtual void linear_add(const TensorView& x, const TensorView& weight, const TensorView& bias,
                          const TensorView& residual) = 0;
  // linear_add(x, weight, bias, residual), then rms_norm(residual, norm_weight, eps, out): a sublayer's output
  // projection added into the residual stream and the next sublayer's input norm as one op, so a backend may
  // add the matmul's split-K partial sums and normalise in one pass (the CUDA decode steps past 16 tokens do).
  virtual void linear_add_rms_norm(const TensorView& x, const TensorView& weight, const TensorView& bias,
                                   const TensorView& residual, const TensorView& norm_weight, float eps,
                                   const TensorView& out) {
    linear_add(x, weight, bias, residual);
    rms_norm(residual, norm_weight, eps, out);
  }
  // out = silu(x[:, :I]) * x[:, I:]         x [T, 2I], out [T, I]
  virtual void silu_and_mul(const TensorView& x, const TensorView& out) = 0;
  // out = silu_and_mul(x @ weight^T (+ bias)): the MLP's stacked gate/up matmul [2I, in] and its activation as
  // one op, so a backend may fuse them (no [T, 2I] intermediate, one launch less). out [T, I]
  virtual void linear_silu_and_mul(const TensorView& x, const TensorView& weight, const TensorView& bias,
                                   const TensorView& out) = 0;
  // Rotates q [T, Hq*D] and k [T, Hk*D] in place at the step's positions, then writes k and v [T, Hk*D]
  // into the cache at the step's kv_slots. q, k and v may be row-strided (column blocks of the fused qkv
  // projection's output), as may head_rms_norm's x and attention's q.
  virtual void rope_and_store_kv(const TensorView& q, const TensorView& k, const TensorView& v,
                                 const RopeTable& rope, int32_t head_dim, const LayerKvCache& cache) = 0;
  // Causal attention of each sequence's new tokens over its whole cached K/V (GQA: query head h reads kv
  // head h / (Hq / Hk)). q, out [T, Hq*D]. `scale` multiplies q.k.
  virtual void attention(const TensorView& q, const LayerKvCache& cache, int32_t num_q_heads,
                         int32_t num_kv_heads, int32_t head_dim, float scale, const TensorView& out) = 0;
  // rope_and_store_kv(q, k, v, ...), then attention(q, ...) into out: one op, so a backend may rotate and
  // store as part of the attention (the CUDA decode kernel does, saving a launch per layer). q and k are
  // left rotated or not.
  virtual void rope_store_and_attention(const TensorView& q, const TensorView& k, const TensorView& v,
                                        const RopeTable& rope, int32_t head_dim, const LayerKvCache& cache,
                                        int32_t num_q_heads, int32_t num_kv_heads, float scale,
                                        const TensorView& out) {
    rope_and_store_kv(q, k, v, rope, head_dim, cache);
    attention(q, cache, num_q_heads, num_kv_heads, head_dim, scale, out);
  }
  // out[r] = x[logit_rows[r]]               x [T, H], out [R, H]
  virtual void gather_logit_rows(const TensorView& x, const TensorView& out) = 0;
};

}  // namespace radixlm
