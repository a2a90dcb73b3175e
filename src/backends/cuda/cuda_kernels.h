#pragma once
// Launchers of the CUDA backend's kernels. Each takes raw device pointers and a plain parameter struct, so
// the .cu files know nothing of engine or tensor types and each kernel can be read (and tested) alone.
// Activations and the KV cache are bf16 (passed as uint16_t bit patterns); reductions run in f32.
// Every launcher only enqueues work on `stream`: none allocates or synchronizes, so a step can be
// captured into a CUDA graph.

#include <cstdint>

#include <cuda_runtime.h>

namespace radixlm::cuda {

// The step's metadata as device arrays (ForwardBatch, uploaded by begin_step).
struct StepArrays {
  const int32_t* token_ids = nullptr;    // [T]
  const int32_t* positions = nullptr;    // [T]
  const int64_t* kv_slots = nullptr;     // [T]
  const int32_t* query_start = nullptr;  // [S + 1]
  const int32_t* kv_length = nullptr;    // [S]
  const int32_t* page_table_start = nullptr;  // [S + 1]
  const int32_t* page_table = nullptr;
  const int32_t* logit_rows = nullptr;   // [R]
  int32_t num_tokens = 0;
  int32_t num_seqs = 0;
  int32_t num_logit_rows = 0;
  int32_t page_size = 1;
  int32_t max_query_len = 0;
  int32_t max_kv_len = 0;
};

// Overlap scheduling: token_ids[t] < 0 is the id the previous step sampled in its row -token_ids[t] - 1.
void launch_resolve_future_tokens(int32_t* token_ids, int32_t num_tokens, const int32_t* previous, cudaStream_t stream);

// out[t] = table[token_ids[t]]; table bf16 [vocab, hidden].
void launch_embedding(const uint16_t* table, int64_t vocab, int64_t hidden, const StepArrays& step, uint16_t* out,
                      cudaStream_t stream);

// Row-wise RMSNorm: out = norm(x) * weight.
struct RmsNormParams {
  const uint16_t* x = nullptr;
  const uint16_t* weight = nullptr;
  uint16_t* out = nullptr;
  int64_t rows = 0;
  int64_t width = 0;
  float eps = 1e-6f;
};
void launch_rms_norm(const RmsNormParams& p, cudaStream_t stream);

// residual += the sum of `splits` f32 partial products [splits][rows][width] (added in split order) + bias,
// rounded to bf16; then out = rms_norm(residual) * weight from the rounded values, as launch_rms_norm. One
// block per row, one 8-wide chunk per thread: width % 8 == 0, width <= 8192, 16-byte aligned rows.
constexpr int kMaxPartialSplits = 8;
struct AddPartialsRmsNormParams {
  const float* partials = nullptr;
  int32_t splits = 0;  // 1..kMaxPartialSplits
  const uint16_t* bias = nullptr;  // [width] or null
  uint16_t* residual = nullptr;
  const uint16_t* weight = nullptr;
  uint16_t* out = nullptr;
  int64_t rows = 0;
  int64_t width = 0;
  float eps = 1e-6f;
};
bool add_partials_rms_norm_supported(int64_t width);
void launch_add_partials_rms_norm(const AddPartialsRmsNormParams& p, cudaStream_t stream);

// In place: each `head_dim` slice of x [rows, width] normalized with weight [head_dim].
void launch_head_rms_norm(uint16_t* x, const uint16_t* weight, int64_t rows, int64_t width, int64_t row_stride,
                          int32_t head_dim, float eps, cudaStream_t stream);

// out[r, i] = silu(x[r, i]) * x[r, I + i]
void launch_silu_and_mul(const uint16_t* x, uint16_t* out, int64_t rows, int64_t inter, cudaStream_t stream);

struct RopeStoreParams {
  uint16_t* q = nullptr;  // [T, q_heads * head_dim], rotated in place
  uint16_t* k = nullptr;  // [T, kv_heads * head_dim], rotated in place
  const uint16_t* v = nullptr;
  int64_t q_stride = 0, k_stride = 0, v_stride = 0;  // elements from one token's row to the next; 0: contiguous
  uint16_t* k_cache = nullptr;  // [slots, kv_heads * head_dim]
  uint16_t* v_cache = nullptr;
  const float* inv_freq = nullptr;  // [rotary_dim / 2], device
  int32_t q_heads = 0;
  int32_t kv_heads = 0;
  int32_t head_dim = 0;
  int32_t rotary_dim = 0;
  bool interleaved = false;
  float attention_scaling = 1.0f;
  // Whether the kernel ahead (the q/k/v matmul) lets this one start early (pdl_launch_dependents): then the
  // cos/sin table is computed before the wait, off the critical path; otherwise after the q/k/v loads are
  // issued, in their shadow.
  bool table_before_wait = false;
};
void launch_rope_and_store_kv(const RopeStoreParams& p, const StepArrays& step, cudaStream_t stream);

// out[r] = x[logit_rows[r]], rows of `row_bytes` bytes (a multiple of 2).
void launch_gather_rows(const void* x, void* out, int64_t row_bytes, const StepArrays& step, cudaStream_t stream);

// out[r] = argmax(logits[r, :vocab]) (first of equal maxima), logits f32. slice_value / slice_index are
// workspace of rows * kArgmaxSlices entries.
inline constexpr int kArgmaxSlices = 64;
void launch_argmax_rows(const float* logits, int64_t rows, int64_t vocab, int32_t* out, float* slice_value,
                        int32_t* slice_index, cudaStream_t stream);

// Converts n floats to bf16 / bf16 to f32 on the device.
void launch_bf16_to_f32(const uint16_t* in, float* out, int64_t n, cudaStream_t stream);
// out[r, c] += bias[c] (out bf16 or f32 by `out_f32`), bias bf16.
void launch_add_bias(void* out, bool out_f32, const uint16_t* bias, int64_t rows, int64_t cols, cudaStream_t stream);

// out [T, N] = x [T, K] @ w [N, K]^T (+ bias): the small-T path that streams each weight row once for every
// token (decode). Needs K % 8 == 0, 16-byte aligned x and w, and 1 <= T <= kGemvMaxTokens.
inline constexpr int kGemvMaxTokens = 8;
struct GemvParams {
  const uint16_t* x = nullptr;
  const uint16_t* w = nullptr;
  const uint16_t* bias = nullptr;  // or null
  void* out = nullptr;
  bool out_f32 = false;
  bool accumulate = false;  // out += x @ w^T (+ bias) instead of out =
  int32_t tokens = 0;
  int64_t n = 0;
  int64_t k = 0;
  int32_t warps_per_row = 0;  // 1, 2, 4 or 8; 0 picks by N (benchmarks set it to compare)
  // When > 0: the MLP's gate/up matmul with silu_and_mul fused. Weight rows [0, silu_pairs) are gate rows,
  // [silu_pairs, n) the up rows (n == 2 * silu_pairs); out is bf16 [T, silu_pairs] = silu(gate) * up.
  int64_t silu_pairs = 0;
};
void launch_gemv(const GemvParams& p, cudaStream_t stream);

// out [T, N] (+)= x [T, K] @ w [N, K]^T (+ bias) for 2..kDecodeGemmMaxTokens tokens on Hopper (TMA + wgmma,
// cuda_decode_gemm.cu). Needs decode_gemm_supported(), K % 8 == 0, 16-byte aligned x and w (contiguous rows).
// With splits > 1 the blocks of each 128-row tile split K and meet in `partials` (f32, kDecodeGemmMaxSlots x
// 128 x kDecodeGemmMaxTokens floats) and `counters` (int32 per tile, zero before the first launch; each launch
// leaves them zero).
inline constexpr int kDecodeGemmMaxTokens = 16;
inline constexpr int kDecodeGemmMaxSplits = 16;
inline constexpr int64_t kDecodeGemmMaxSlots = 512;  // tiles x splits of one launch, when split
struct DecodeGemmParams {
  const uint16_t* x = nullptr;
  const uint16_t* w = nullptr;
  const uint16_t* bias = nullptr;  // or null
  void* out = nullptr;
  bool out_f32 = false;
  bool accumulate = false;
  int32_t tokens = 0;
  int64_t n = 0;
  int64_t k = 0;
  int32_t splits = 1;  // decode_gemm_splits()
  float* partials = nullptr;
  int32_t* counters = nullptr;
};
bool decode_gemm_supported();
// K splits for an N x K matrix: enough 128-row tiles x splits for two blocks per SM, at least 8 steps of
// 64 columns per split.
int32_t decode_gemm_splits(int64_t n, int64_t k, int32_t num_sms);
// False (nothing launched) if the shape is not one it takes or the driver refused the tensor maps.
bool launch_decode_gemm(const DecodeGemmParams& p, cudaStream_t stream);

// Causal attention over the paged cache for every new token of the step (see cuda_attention.cu).
struct AttentionParams {
  const uint16_t* q = nullptr;  // [T, q_heads * head_dim], rows q_stride elements apart
  int64_t q_stride = 0;         // 0: contiguous (q_heads * head_dim)
  const uint16_t* k_cache = nullptr;
  const uint16_t* v_cache = nullptr;
  uint16_t* out = nullptr;       // [T, q_heads * head_dim]
  float* partial = nullptr;      // split-KV workspace: [T * q_heads * num_splits * (head_dim + 2)] floats
  int32_t q_heads = 0;
  int32_t kv_heads = 0;
  int32_t head_dim = 0;
  float scale = 1.0f;
  int32_t num_splits = 1;
  int32_t prefill_kernel = 0;  // kPrefillKernel*: which prefill kernel (tests and A/B runs compare them)
  int32_t num_sms = 0;         // the GPU's: the persistent prefill kernel's grid (0: one block per tile)
  int64_t num_slots = 0;       // slots in k_cache / v_cache: the Hopper prefill kernel's TMA descriptors (0: none)
};
// AttentionParams::prefill_kernel: the Hopper wgmma kernel (head_dim 128 on sm_90; elsewhere it falls back
// to the mma.sync pick) with K/V copied by TMA where it can (page sizes that are multiples of 16) or always
// by cp.async, the pipelined mma.sync kernel as warps per block x blocks per SM, or the legacy one.
// RADIXLM_CUDA_PREFILL_ATTENTION=wgmma|wgmma-cp-async|legacy|pipelined-8x1|pipelined-8x2|pipelined-4x2
// overrides auto.
inline constexpr int32_t kPrefillKernelAuto = 0, kPrefillKernelLegacy = 1, kPrefillKernelPipelined8x1 = 2,
                         kPrefillKernelPipelined8x2 = 3, kPrefillKernelPipelined4x2 = 4, kPrefillKernelWgmma = 5,
                         kPrefillKernelWgmmaCpAsync = 6;
// RoPE and the KV store done by the decode attention itself, for decode steps of one new token per sequence
// (attention_fuses_rope) with rope.rotary_dim == head_dim: each block rotates its query rows as it loads
// them, and the block whose split holds the new key rotates it, stores it and its value in the token's cache
// slot, and writes both into the tile it reads them from; so no RoPE kernel runs. The same bits as
// launch_rope_and_store_kv(rope), then launch_attention(p) (the rotation is cuda_common.cuh's). Of `rope` it
// uses k, v, their strides, the cache, inv_freq, interleaved and attention_scaling; p.q is the unrotated q,
// and is left so.
bool attention_fuses_rope(const StepArrays& step, int32_t q_heads, int32_t kv_heads);
void launch_rope_store_attention(const AttentionParams& p, const RopeStoreParams& rope, const StepArrays& step,
                                 cudaStream_t stream);
// Splits and workspace the launch wants for this step (so the backend can size its workspace up front).
int32_t attention_num_splits(const StepArrays& step, int32_t q_heads, int32_t kv_heads, int32_t head_dim,
                             int32_t num_sms);
int64_t attention_partial_floats(int32_t num_tokens, int32_t q_heads, int32_t head_dim, int32_t num_splits);
bool attention_supports_head_dim(int32_t head_dim);
void launch_attention(const AttentionParams& p, const StepArrays& step, cudaStream_t stream);

}  // namespace radixlm::cuda
