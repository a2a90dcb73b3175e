// Causal attention over the paged KV cache, in the FlashAttention-2 manner: a block owns a tile of query
// rows (some new tokens of one sequence times the query heads that share one KV head, so GQA reads each K/V
// tile once for the whole group), walks the sequence's keys in tiles staged through shared memory,
// and keeps a running max and sum per row (online softmax) so the scores are never materialised. Long
// contexts with few query rows (decode) are split along the keys over several blocks (flash-decoding);
// each split writes an unnormalised partial output with its max and sum, and a combine kernel merges them.
//
// Grid: x = query tile within the sequence, y = sequence, z = kv head * num_splits + split (the prefill
// kernel: x = kv head, y = query tile counted down so the longest run first, z = sequence). Everything a
// block needs about the step comes from the device arrays, so the launch shape depends only on the batch's
// size, never on its contents (the property CUDA graphs need).
//
// Two tensor-core kernels share this scheme: attention_decode_mma_kernel (cuda_attention_decode.cuh: up to
// 16 query rows per block, split-KV; decode and short extends) and prefill::attention_prefill_kernel
// (cuda_attention_mma.cuh: 128 rows per block, cp.async-pipelined; prefill and long extends). Both need
// head_dim % 16 == 0.

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "backends/cuda/cuda_attention_decode.cuh"
#include "backends/cuda/cuda_attention_mma.cuh"
#include "backends/cuda/cuda_common.cuh"
#include "backends/cuda/cuda_kernels.h"

namespace radixlm::cuda {
namespace {

// One block per (token, head): merge the splits' partial outputs.
__global__ void combine_kernel(AttentionParams p) {
  const int64_t item = blockIdx.x;  // token * q_heads + head
  const int dim = p.head_dim;
  const float* parts = p.partial + item * p.num_splits * (dim + 2);
  float global_max = -INFINITY;
  for (int s = 0; s < p.num_splits; ++s) global_max = fmaxf(global_max, parts[s * (dim + 2) + dim]);
  float total = 0.0f;
  for (int s = 0; s < p.num_splits; ++s) {
    const float m = parts[s * (dim + 2) + dim];
    if (m != -INFINITY) total += parts[s * (dim + 2) + dim + 1] * __expf(m - global_max);
  }
  for (int d = threadIdx.x; d < dim; d += blockDim.x) {
    float value = 0.0f;
    for (int s = 0; s < p.num_splits; ++s) {
      const float m = parts[s * (dim + 2) + dim];
      if (m != -INFINITY) value += parts[s * (dim + 2) + d] * __expf(m - global_max);
    }
    p.out[item * dim + d] = f32_to_bf16_bits(total > 0.0f ? value / total : 0.0f);
  }
}

// Query rows per block: the tensor-core decode kernel up to 16 rows (decode and short extends), the
// tensor-core prefill kernel beyond.
int rows_per_tile(const StepArrays& step, int group) {
  return step.max_query_len * group <= kDecodeMmaRows ? kDecodeMmaRows : kMmaRows;
}

// RADIXLM_CUDA_PREFILL_ATTENTION picks the prefill kernel for the whole process (A/B runs on the GPU).
int32_t prefill_kernel_from_env() {
  static const int32_t kernel = [] {
    const char* env = std::getenv("RADIXLM_CUDA_PREFILL_ATTENTION");
    if (env == nullptr) return kPrefillKernelAuto;
    if (std::strcmp(env, "legacy") == 0) return kPrefillKernelLegacy;
    if (std::strcmp(env, "pipelined-1") == 0) return kPrefillKernelPipelined1;
    if (std::strcmp(env, "pipelined-2") == 0) return kPrefillKernelPipelined2;
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

// 128 rows (8 warps) per block: each staged K/V tile serves twice the rows of the legacy kernel.
template <int kDim, int kBlocksPerSm>
void launch_pipelined_prefill(const AttentionParams& p, const StepArrays& step, cudaStream_t stream) {
  constexpr int kWarps = 8;
  using Smem = prefill::Smem<kDim, kWarps>;
  const int tokens_per_tile = Smem::kRows / (p.q_heads / p.kv_heads);
  const dim3 grid(static_cast<unsigned int>(p.kv_heads), ceil_div_u(step.max_query_len, tokens_per_tile),
                  static_cast<unsigned int>(step.num_seqs));
  const size_t smem = sizeof(Smem);
  static bool configured = false;
  if (!configured) {
    cudaFuncSetAttribute(prefill::attention_prefill_kernel<kDim, kWarps, kBlocksPerSm>,
                         cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    cudaFuncSetAttribute(prefill::attention_prefill_kernel<kDim, kWarps, kBlocksPerSm>,
                         cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared);
    configured = true;
  }
  prefill::attention_prefill_kernel<kDim, kWarps, kBlocksPerSm><<<grid, kWarps * 32, smem, stream>>>(p, step);
}

template <int kDim>
void launch_dim(const AttentionParams& p, const StepArrays& step, cudaStream_t stream) {
  const int group = p.q_heads / p.kv_heads;
  if (rows_per_tile(step, group) == kDecodeMmaRows) {
    const dim3 grid(ceil_div_u(step.max_query_len, kDecodeMmaRows / group), static_cast<unsigned int>(step.num_seqs),
                    static_cast<unsigned int>(p.kv_heads * p.num_splits));
    const size_t smem = sizeof(DecodeMmaSmem<kDim>);
    static bool decode_configured = false;
    if (!decode_configured) {
      cudaFuncSetAttribute(attention_decode_mma_kernel<kDim>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           static_cast<int>(smem));
      decode_configured = true;
    }
    attention_decode_mma_kernel<kDim><<<grid, kDecodeMmaWarps * 32, smem, stream>>>(p, step);
    return;
  }
  int32_t kernel = p.prefill_kernel != kPrefillKernelAuto ? p.prefill_kernel : prefill_kernel_from_env();
  if (kernel == kPrefillKernelLegacy) {
    launch_legacy_prefill<kDim>(p, step, stream);
    return;
  }
  // d = 128 needs ~220 registers to keep Q in registers (one 8-warp block per SM); smaller heads fit two
  // blocks per SM in 128 registers without spilling.
  if (kernel == kPrefillKernelAuto) kernel = kDim == 128 ? kPrefillKernelPipelined1 : kPrefillKernelPipelined2;
  if (kernel == kPrefillKernelPipelined1) {
    launch_pipelined_prefill<kDim, 1>(p, step, stream);
  } else {
    launch_pipelined_prefill<kDim, 2>(p, step, stream);
  }
}

}  // namespace

bool attention_supports_head_dim(int32_t head_dim) {
  switch (head_dim) {
    case 16: case 32: case 48: case 64: case 80: case 96: case 128: return true;
    default: return false;
  }
}

int32_t attention_num_splits(const StepArrays& step, int32_t q_heads, int32_t kv_heads, int32_t num_sms) {
  const int group = q_heads / kv_heads;
  if (rows_per_tile(step, group) == kMmaRows || step.num_seqs == 0) return 1;
  // Enough blocks to fill the GPU four times over, but every split at least one 32-key tile long.
  const int64_t blocks = static_cast<int64_t>(step.num_seqs) * kv_heads;
  const int64_t want = (4 * static_cast<int64_t>(num_sms) + blocks - 1) / blocks;
  const int64_t most = std::max<int64_t>(1, step.max_kv_len / 32);
  return static_cast<int32_t>(std::clamp<int64_t>(std::min(want, most), 1, 64));
}

int64_t attention_partial_floats(int32_t num_tokens, int32_t q_heads, int32_t head_dim, int32_t num_splits) {
  return num_splits > 1 ? static_cast<int64_t>(num_tokens) * q_heads * num_splits * (head_dim + 2) : 0;
}

void launch_attention(const AttentionParams& p, const StepArrays& step, cudaStream_t stream) {
  if (step.num_tokens == 0) return;
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
  if (p.num_splits > 1) {
    combine_kernel<<<static_cast<unsigned int>(step.num_tokens * p.q_heads), 64, 0, stream>>>(p);
  }
}

}  // namespace radixlm::cuda
