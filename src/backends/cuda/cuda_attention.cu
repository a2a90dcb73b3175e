// Causal attention over the paged KV cache, in the FlashAttention-2 manner: a block owns a tile of query
// rows (some new tokens of one sequence times the query heads that share one KV head, so GQA reads each K/V
// tile once for the whole group), walks the sequence's keys in tiles of kKeys staged through shared memory,
// and keeps a running max and sum per row (online softmax) so the scores are never materialised. Long
// contexts with few query rows (decode) are split along the keys over several blocks (flash-decoding);
// each split writes an unnormalised partial output with its max and sum, and a combine kernel merges them.
//
// Grid: x = query tile within the sequence, y = sequence, z = kv head * num_splits + split. Everything a
// block needs about the step comes from the device arrays, so the launch shape depends only on the batch's
// size, never on its contents (the property CUDA graphs need).
//
// Two kernels share this scheme: attention_kernel below (f32 FMAs from shared memory, up to 8 query rows per
// block: decode) and attention_mma_kernel (cuda_attention_mma.cuh: tensor cores, 64 rows: prefill/extend).

#include <algorithm>

#include "backends/cuda/cuda_attention_mma.cuh"
#include "backends/cuda/cuda_common.cuh"
#include "backends/cuda/cuda_kernels.h"

namespace radixlm::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kKeys = 32;  // keys per shared-memory tile
constexpr int kDecodeRows = 8;
constexpr int kDecodeRowsSmall = 4;  // GQA groups of up to 4 decode without idle rows

template <int kDim, int kRows>
struct AttentionSmem {
  float q[kRows][kDim];
  float k[kKeys][kDim + 1];  // padded: threads of a warp read different keys at the same d
  float v[kKeys][kDim];
  float p[kRows][kKeys];
  float row_max[kRows];
  float row_sum[kRows];
  float alpha[kRows];
  int32_t visible[kRows];  // keys [0, visible) of the sequence are visible to the row
};

template <int kDim, int kRows>
__global__ void __launch_bounds__(kThreads) attention_kernel(AttentionParams p, StepArrays step) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  auto& s = *reinterpret_cast<AttentionSmem<kDim, kRows>*>(smem_raw);
  const int group = p.q_heads / p.kv_heads;
  const int tokens_per_tile = kRows / group;
  const int seq = static_cast<int>(blockIdx.y);
  const int kv_head = static_cast<int>(blockIdx.z) / p.num_splits;
  const int split = static_cast<int>(blockIdx.z) % p.num_splits;
  const int q_begin = step.query_start[seq] + static_cast<int>(blockIdx.x) * tokens_per_tile;
  const int q_end = min(q_begin + tokens_per_tile, step.query_start[seq + 1]);
  if (q_begin >= q_end) return;
  const int rows = (q_end - q_begin) * group;
  const int kv_len = step.kv_length[seq];
  const int32_t* pages = step.page_table + step.page_table_start[seq];
  const int64_t kv_row = static_cast<int64_t>(p.kv_heads) * kDim;
  const int64_t q_row = static_cast<int64_t>(p.q_heads) * kDim;

  // Keys this block looks at: its split's share of the sequence, cut at the last visible key of the tile.
  const int last_visible = step.positions[q_end - 1] + 1;
  const int chunk = ((kv_len + p.num_splits - 1) / p.num_splits + kKeys - 1) / kKeys * kKeys;
  const int key_begin = split * chunk;
  const int key_end = min(last_visible, key_begin + chunk);

  for (int e = threadIdx.x; e < kRows * kDim; e += kThreads) {
    const int r = e / kDim, d = e % kDim;
    float value = 0.0f;
    if (r < rows) {
      const int token = q_begin + r / group, head = kv_head * group + r % group;
      value = bf16_bits_to_f32(p.q[token * q_row + head * kDim + d]) * p.scale;
    }
    s.q[r][d] = value;
  }
  for (int r = threadIdx.x; r < kRows; r += kThreads) {
    s.row_max[r] = -INFINITY;
    s.row_sum[r] = 0.0f;
    s.visible[r] = r < rows ? step.positions[q_begin + r / group] + 1 : 0;
  }
  constexpr int kOut = (kRows * kDim + kThreads - 1) / kThreads;  // output elements each thread accumulates
  float acc[kOut];
#pragma unroll
  for (int i = 0; i < kOut; ++i) acc[i] = 0.0f;

  for (int k0 = key_begin; k0 < key_end; k0 += kKeys) {
    __syncthreads();  // previous tile fully used (and the initial writes visible)
    // Stage K and V of keys [k0, k0 + kKeys) as f32, eight bf16 (16 bytes) per load.
    for (int e = threadIdx.x; e < kKeys * kDim / 8; e += kThreads) {
      const int j = e / (kDim / 8), d = 8 * (e % (kDim / 8));
      const int key = k0 + j;
      uint4 kw = make_uint4(0, 0, 0, 0), vw = make_uint4(0, 0, 0, 0);
      if (key < key_end) {
        const int64_t slot = static_cast<int64_t>(pages[key / step.page_size]) * step.page_size + key % step.page_size;
        const int64_t offset = slot * kv_row + static_cast<int64_t>(kv_head) * kDim + d;
        kw = *reinterpret_cast<const uint4*>(p.k_cache + offset);
        vw = *reinterpret_cast<const uint4*>(p.v_cache + offset);
      }
      const uint32_t kwords[4] = {kw.x, kw.y, kw.z, kw.w}, vwords[4] = {vw.x, vw.y, vw.z, vw.w};
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        s.k[j][d + 2 * i] = bf16_lo(kwords[i]);
        s.k[j][d + 2 * i + 1] = bf16_hi(kwords[i]);
        s.v[j][d + 2 * i] = bf16_lo(vwords[i]);
        s.v[j][d + 2 * i + 1] = bf16_hi(vwords[i]);
      }
    }
    __syncthreads();
    // Scores, masked where the key is past the row's position (or past the block's range).
    for (int e = threadIdx.x; e < kRows * kKeys; e += kThreads) {
      const int r = e / kKeys, j = e % kKeys;
      const int key = k0 + j;
      float score = -INFINITY;
      if (key < key_end && key < s.visible[r]) {
        float dot = 0.0f;
#pragma unroll 16
        for (int d = 0; d < kDim; ++d) dot = fmaf(s.q[r][d], s.k[j][d], dot);
        score = dot;
      }
      s.p[r][j] = score;
    }
    __syncthreads();
    // Online softmax, one thread per row.
    for (int r = threadIdx.x; r < kRows; r += kThreads) {
      float tile_max = -INFINITY;
      for (int j = 0; j < kKeys; ++j) tile_max = fmaxf(tile_max, s.p[r][j]);
      const float old_max = s.row_max[r];
      const float new_max = fmaxf(old_max, tile_max);
      float alpha = 1.0f, sum = 0.0f;
      if (new_max != -INFINITY) {
        alpha = old_max == -INFINITY ? 0.0f : __expf(old_max - new_max);
        for (int j = 0; j < kKeys; ++j) {
          const float e = s.p[r][j] == -INFINITY ? 0.0f : __expf(s.p[r][j] - new_max);
          s.p[r][j] = e;
          sum += e;
        }
      } else {
        for (int j = 0; j < kKeys; ++j) s.p[r][j] = 0.0f;
      }
      s.row_max[r] = new_max;
      s.row_sum[r] = s.row_sum[r] * alpha + sum;
      s.alpha[r] = alpha;
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kOut; ++i) {
      const int e = threadIdx.x + i * kThreads;
      if (e >= kRows * kDim) break;
      const int r = e / kDim, d = e % kDim;
      float value = acc[i] * s.alpha[r];
#pragma unroll 8
      for (int j = 0; j < kKeys; ++j) value = fmaf(s.p[r][j], s.v[j][d], value);
      acc[i] = value;
    }
  }
  __syncthreads();

#pragma unroll
  for (int i = 0; i < kOut; ++i) {
    const int e = threadIdx.x + i * kThreads;
    const int r = e / kDim, d = e % kDim;
    if (e >= kRows * kDim || r >= rows) continue;
    const int token = q_begin + r / group, head = kv_head * group + r % group;
    if (p.num_splits == 1) {
      const float sum = s.row_sum[r];
      p.out[token * q_row + head * kDim + d] = f32_to_bf16_bits(sum > 0.0f ? acc[i] / sum : 0.0f);
    } else {
      float* part = p.partial + ((static_cast<int64_t>(token) * p.q_heads + head) * p.num_splits + split) * (kDim + 2);
      part[d] = acc[i];
      if (d == 0) {
        part[kDim] = s.row_max[r];
        part[kDim + 1] = s.row_sum[r];
      }
    }
  }
}

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

int rows_per_tile(const StepArrays& step, int group) {
  if (step.max_query_len * group <= kDecodeRowsSmall) return kDecodeRowsSmall;
  return step.max_query_len * group <= kDecodeRows ? kDecodeRows : kMmaRows;
}

template <int kDim, int kRows>
void launch_rows(const AttentionParams& p, const StepArrays& step, cudaStream_t stream) {
  const int group = p.q_heads / p.kv_heads;
  const int tokens_per_tile = kRows / group;
  const dim3 grid(ceil_div_u(step.max_query_len, tokens_per_tile), static_cast<unsigned int>(step.num_seqs),
                  static_cast<unsigned int>(p.kv_heads * p.num_splits));
  const size_t smem = sizeof(AttentionSmem<kDim, kRows>);
  static bool configured = false;  // per template instance; set once before the first launch
  if (!configured) {
    cudaFuncSetAttribute(attention_kernel<kDim, kRows>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                         static_cast<int>(smem));
    configured = true;
  }
  attention_kernel<kDim, kRows><<<grid, kThreads, smem, stream>>>(p, step);
}

template <int kDim>
void launch_dim(const AttentionParams& p, const StepArrays& step, cudaStream_t stream) {
  const int rows = rows_per_tile(step, p.q_heads / p.kv_heads);
  if (rows == kDecodeRowsSmall) {
    launch_rows<kDim, kDecodeRowsSmall>(p, step, stream);
    return;
  }
  if (rows == kDecodeRows) {
    launch_rows<kDim, kDecodeRows>(p, step, stream);
    return;
  }
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
  // Enough blocks to fill the GPU four times over, but every split at least two key tiles long.
  const int64_t blocks = static_cast<int64_t>(step.num_seqs) * kv_heads;
  const int64_t want = (4 * static_cast<int64_t>(num_sms) + blocks - 1) / blocks;
  const int64_t most = std::max<int64_t>(1, step.max_kv_len / (2 * kKeys));
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
