// Causal attention over the paged KV cache, in the FlashAttention-2 manner: a block owns a tile of query
// rows (some new tokens of one sequence times the query heads that share one KV head, so GQA reads each K/V
// tile once for the whole group), walks the sequence's keys in tiles staged through shared memory,
// and keeps a running max and sum per row (online softmax) so the scores are never materialised. Long
// contexts with few query rows (decode) are split along the keys over several blocks (flash-decoding);
// each split writes an unnormalised partial output with its max and sum, and a combine kernel merges them.
//
// Grid: decode: x = kv head, y = query tile * num_splits + split, z = sequence; prefill: x = kv head, y = query tile
// counted down so the longest run first, z = sequence (the Hopper prefill kernel is persistent instead: one
// block per SM walking the same items in that order). Everything a block needs about the step comes from
// the device arrays, so the launch shape depends only on the batch's size, never on its contents (the
// property CUDA graphs need).
//
// Three tensor-core kernels share this scheme: decode::attention_decode_kernel (cuda_attention_decode.cuh:
// up to 16 query rows per one-warp block, split-KV, cp.async ring; decode and short extends),
// wgmma_prefill::attention_prefill_wgmma_kernel (cuda_attention_wgmma.cuh: Hopper's warpgroup MMA, 128
// rows per block; prefill and long extends at head_dim 128 on sm_90) and prefill::attention_prefill_kernel
// (cuda_attention_mma.cuh: mma.sync, 128 rows per block; the other head dims and GPUs). All need
// head_dim % 16 == 0.

#include <algorithm>

#include "backends/cuda/cuda_attention_decode.cuh"
#include "backends/cuda/cuda_attention_mma.cuh"
#include "backends/cuda/cuda_attention_wgmma.cuh"
#include "backends/cuda/cuda_common.cuh"
#include "backends/cuda/cuda_kernels.h"

namespace radixlm::cuda {
namespace {

// Query rows per block: the tensor-core decode kernel up to 16 rows (decode and short extends), the
// tensor-core prefill kernel beyond.
int rows_per_tile(const StepArrays& step, int group) {
  return step.max_query_len * group <= decode::kRows ? decode::kRows : kMmaRows;
}

// RADIXLM_CUDA_PREFILL_ATTENTION picks the prefill kernel for the whole process (A/B runs on the GPU).
int32_t prefill_kernel_from_env() {
  static const int32_t kernel = [] {
    const struct {
      const char* name;
      int32_t kernel;
    } choices[] = {{"wgmma", kPrefillKernelWgmma},           {"wgmma-cp-async", kPrefillKernelWgmmaCpAsync},
                   {"legacy", kPrefillKernelLegacy},         {"pipelined-8x1", kPrefillKernelPipelined8x1},
                   {"pipelined-8x2", kPrefillKernelPipelined8x2}, {"pipelined-4x2", kPrefillKernelPipelined4x2}};
    for (const auto& choice : choices) {
      if (env_is("RADIXLM_CUDA_PREFILL_ATTENTION", choice.name)) return choice.kernel;
    }
    return kPrefillKernelAuto;
  }();
  return kernel;
}

template <int kDim>
void launch_legacy_prefill(const AttentionParams& p, const StepArrays& step, cudaStream_t stream) {
  const int tokens_per_tile = kMmaRows / (p.q_heads / p.kv_heads);
  const dim3 grid(ceil_div_u(step.max_query_len, tokens_per_tile), static_cast<unsigned int>(step.num_seqs),
                  static_cast<unsigned int>(p.kv_heads));
  const size_t smem = sizeof(MmaSmem<kDim>);
  static bool configured = false;
  if (!configured) {
    cudaFuncSetAttribute(attention_mma_kernel<kDim>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                         static_cast<int>(smem));
    configured = true;
  }
  attention_mma_kernel<kDim><<<grid, kMmaThreads, smem, stream>>>(p, step);
}

// 16 rows per warp; with 8 warps each staged K/V tile serves twice the rows of the legacy kernel. A GPU
// without the shared memory this needs (up to 136 KB per block for d = 128; GPUs of compute capability
// 8.6/8.9 offer 99 KB) runs the legacy kernel instead.
template <int kDim, int kWarps, int kBlocksPerSm>
void launch_pipelined_prefill(const AttentionParams& p, const StepArrays& step, cudaStream_t stream) {
  using Smem = prefill::Smem<kDim, kWarps, prefill::kStagesFor<kBlocksPerSm>>;
  const auto kernel = prefill::attention_prefill_kernel<kDim, kWarps, kBlocksPerSm>;
  static const bool fits = [&] {
    const bool ok = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(sizeof(Smem))) == cudaSuccess;
    if (ok) {
      cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared);
    } else {
      cudaGetLastError();  // the refused attribute is not an error of the step
    }
    return ok;
  }();
  if (!fits) {
    launch_legacy_prefill<kDim>(p, step, stream);
    return;
  }
  const int tokens_per_tile = Smem::kRows / (p.q_heads / p.kv_heads);
  const dim3 grid(static_cast<unsigned int>(p.kv_heads), ceil_div_u(step.max_query_len, tokens_per_tile),
                  static_cast<unsigned int>(step.num_seqs));
  kernel<<<grid, kWarps * 32, sizeof(Smem), stream>>>(p, step);
}

// Auto and the wgmma kernels: the wgmma kernel where it runs, the default mma.sync kernel elsewhere.
bool picks_wgmma(int32_t kernel) {
  return kernel == kPrefillKernelAuto || kernel == kPrefillKernelWgmma || kernel == kPrefillKernelWgmmaCpAsync;
}

template <int kDim>
void launch_dim(const AttentionParams& p, const StepArrays& step, cudaStream_t stream) {
  const int group = p.q_heads / p.kv_heads;
  if (rows_per_tile(step, group) == decode::kRows) {
    decode::launch<kDim>(p, step, stream);  // and the combine when split
    return;
  }
  int32_t kernel = p.prefill_kernel != kPrefillKernelAuto ? p.prefill_kernel : prefill_kernel_from_env();
  if (kernel == kPrefillKernelLegacy) {
    launch_legacy_prefill<kDim>(p, step, stream);
    return;
  }
  // The wgmma kernel wherever it runs (head_dim 128 on an H100/H200), the mma.sync ones elsewhere.
  if constexpr (kDim == wgmma_prefill::kDim) {
    if (picks_wgmma(kernel) && wgmma_prefill::supported()) {
      wgmma_prefill::launch(p, step, stream, /*allow_tma=*/kernel != kPrefillKernelWgmmaCpAsync);
      return;
    }
  }
  // Two 8-warp blocks per SM (Q re-read from shared memory, 128 registers) fit small heads without spilling;
  // at d = 128 they spill 128 bytes and are still faster than one block with Q in registers (measured on
  // an H200: 225 vs 210 TFLOP/s for the 4096-token prompt, docs/performance.md). d = 80 and 96 are not
  // measured yet and keep the non-spilling one-block kernel.
  if (picks_wgmma(kernel)) {
    kernel = (kDim == 80 || kDim == 96) ? kPrefillKernelPipelined8x1 : kPrefillKernelPipelined8x2;
  }
  switch (kernel) {
    case kPrefillKernelPipelined8x2: launch_pipelined_prefill<kDim, 8, 2>(p, step, stream); break;
    case kPrefillKernelPipelined4x2: launch_pipelined_prefill<kDim, 4, 2>(p, step, stream); break;
    default: launch_pipelined_prefill<kDim, 8, 1>(p, step, stream); break;
  }
}

}  // namespace

bool attention_supports_head_dim(int32_t head_dim) {
  switch (head_dim) {
    case 16: case 32: case 48: case 64: case 80: case 96: case 128: return true;
    default: return false;
  }
}

int32_t attention_num_splits(const StepArrays& step, int32_t q_heads, int32_t kv_heads, int32_t head_dim,
                             int32_t num_sms) {
  const int group = q_heads / kv_heads;
  if (rows_per_tile(step, group) == kMmaRows || step.num_seqs == 0) return 1;
  return decode::num_splits(step, q_heads, kv_heads, head_dim, num_sms);
}

int64_t attention_partial_floats(int32_t num_tokens, int32_t q_heads, int32_t head_dim, int32_t num_splits) {
  return num_splits > 1 ? static_cast<int64_t>(num_tokens) * q_heads * num_splits * (head_dim + 2) : 0;
}

bool attention_fuses_rope(const StepArrays& step, int32_t q_heads, int32_t kv_heads) {
  return step.max_query_len == 1 && step.num_seqs == step.num_tokens &&
         rows_per_tile(step, q_heads / kv_heads) == decode::kRows;
}

void launch_rope_store_attention(const AttentionParams& params, const RopeStoreParams& r, const StepArrays& step,
                                 cudaStream_t stream) {
  if (step.num_tokens == 0) return;
  AttentionRope rope;
  rope.k = r.k;
  rope.v = r.v;
  rope.k_stride = r.k_stride;
  rope.v_stride = r.v_stride;
  rope.k_cache = r.k_cache;
  rope.v_cache = r.v_cache;
  rope.inv_freq = r.inv_freq;
  rope.attention_scaling = r.attention_scaling;
  rope.interleaved = r.interleaved;
  AttentionParams p = params;
  if (p.q_stride == 0) p.q_stride = static_cast<int64_t>(p.q_heads) * p.head_dim;  // contiguous q
  switch (p.head_dim) {
    case 16: decode::launch<16>(p, step, stream, &rope); break;
    case 32: decode::launch<32>(p, step, stream, &rope); break;
    case 48: decode::launch<48>(p, step, stream, &rope); break;
    case 64: decode::launch<64>(p, step, stream, &rope); break;
    case 80: decode::launch<80>(p, step, stream, &rope); break;
    case 96: decode::launch<96>(p, step, stream, &rope); break;
    case 128: decode::launch<128>(p, step, stream, &rope); break;
    default: return;  // attention_supports_head_dim() is checked by the caller
  }
}

void launch_attention(const AttentionParams& params, const StepArrays& step, cudaStream_t stream) {
  if (step.num_tokens == 0) return;
  AttentionParams p = params;
  if (p.q_stride == 0) p.q_stride = static_cast<int64_t>(p.q_heads) * p.head_dim;  // contiguous q
  switch (p.head_dim) {
    case 16: launch_dim<16>(p, step, stream); break;
    case 32: launch_dim<32>(p, step, stream); break;
    case 48: launch_dim<48>(p, step, stream); break;
    case 64: launch_dim<64>(p, step, stream); break;
    case 80: launch_dim<80>(p, step, stream); break;
    case 96: launch_dim<96>(p, step, stream); break;
    case 128: launch_dim<128>(p, step, stream); break;
    default: return;  // attention_supports_head_dim() is checked by the caller
  }
}

}  // namespace radixlm::cuda
