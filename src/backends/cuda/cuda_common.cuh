#pragma once
// Small device helpers shared by the .cu files: programmatic launch, cp.async, bf16 <-> f32 on raw bit
// patterns and warp reductions.

#include <cstdint>
#include <functional>
#include <unordered_set>
#include <utility>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "backends/cuda/env_switch.h"

namespace radixlm::cuda {

// Programmatic dependent launch (sm_90) between a decode step's kernels, so that neither the weight stream
// of a matmul nor the start of a small kernel waits for the full drain of the kernel ahead. A kernel launched
// by launch_programmatic() may start before the kernel ahead of it on the stream finishes, once every block
// of that kernel has called pdl_launch_dependents(). Until its pdl_wait() returns (the kernel ahead
// completed, its writes visible) it only reads what nothing in the step writes (a GEMV's weights) and writes
// nothing. Every kernel calls pdl_launch_dependents() only past its own pdl_wait(), so at most one kernel
// runs ahead: a chain of early kernels would hold SM slots the running one still needs (an earlier try let
// every kernel in at its start and lost 0.12 ms per batch-1 step). Launched plainly, both are no-ops.
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
// RADIXLM_CUDA_PDL=0 launches every kernel plainly (a switch for debugging and A/B runs).
inline bool pdl_enabled() {
  static const bool enabled = env_switch_on("RADIXLM_CUDA_PDL");
  return enabled;
}
// Asks, once per kernel and device, for the most L1 in the unified cache. The decode attention asks for
// the most shared memory; left to the driver, the kernels after it (the GEMVs re-read their activation rows
// from L1 for every weight row) made a batch-1 step 1% slower (docs/performance.md, 09:04 and 09:22 calls).
// A refusal only leaves the driver's choice. Called on every launch, so the check is one lookup in a
// per-thread set, with no lock (a second thread setting the same attribute again does no harm).
inline void prefer_l1(const void* kernel) {
  struct KeyHash {
    size_t operator()(const std::pair<int, const void*>& key) const {
      return std::hash<const void*>()(key.second) ^ static_cast<size_t>(key.first);
    }
  };
  thread_local std::unordered_set<std::pair<int, const void*>, KeyHash> done;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) {
    (void)cudaGetLastError();
    return;
  }
  if (!done.emplace(device, kernel).second) return;
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxL1) !=
      cudaSuccess) {
    (void)cudaGetLastError();
  }
}

// kernel<<<grid, block, smem, stream>>>(args...) as a programmatic dependent of the kernel ahead of it on the
// stream (a plain launch where that is refused or turned off). Stream capture records the programmatic
// edge into the CUDA graph. A kernel with no dynamic shared memory prefers L1 (prefer_l1).
template <typename... Params, typename... Args>
void launch_programmatic(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                         Args... args) {
  if (smem == 0) prefer_l1(reinterpret_cast<const void*>(kernel));
  if (pdl_enabled()) {
    cudaLaunchConfig_t config = {};
    config.gridDim = grid;
    config.blockDim = block;
    config.dynamicSmemBytes = smem;
    config.stream = stream;
    cudaLaunchAttribute attribute = {};
    attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attribute.val.programmaticStreamSerializationAllowed = 1;
    config.attrs = &attribute;
    config.numAttrs = 1;
    if (cudaLaunchKernelEx(&config, kernel, args...) == cudaSuccess) return;
    (void)cudaGetLastError();  // no PDL here: an ordinary launch
  }
  kernel<<<grid, block, smem, stream>>>(args...);
}

__device__ __forceinline__ uint32_t smem_address(const void* pointer) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(pointer));
}
// 16 bytes global -> shared (sm_80's cp.async), bypassing L1; with valid == false the destination is
// zero-filled and nothing is read (an attention tile's masked keys: V must be zeros, not stale NaNs, since
// 0 * NaN would poison O).
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(smem_address(dst)), "l"(src),
               "r"(valid ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(kPending) : "memory");
}

__device__ __forceinline__ float bf16_bits_to_f32(uint16_t bits) {
  return __uint_as_float(static_cast<uint32_t>(bits) << 16);
}
__device__ __forceinline__ uint16_t f32_to_bf16_bits(float value) {
  return __bfloat16_as_ushort(__float2bfloat16_rn(value));  // round to nearest even, NaN kept
}
// The two bf16 halves of a 32-bit word, low element first (little-endian memory order).
__device__ __forceinline__ float bf16_lo(uint32_t word) { return __uint_as_float(word << 16); }
__device__ __forceinline__ float bf16_hi(uint32_t word) { return __uint_as_float(word & 0xffff0000u); }

// One entry of a token's RoPE table: the angle rounded to f32 as HF computes it, sin and cos in full
// precision, both scaled. The RoPE kernels and the decode attention's fused RoPE both take it from here,
// so either path stores the same bits.
__device__ __forceinline__ void rope_cos_sin(float position, float inv_freq, float scaling, float& cos_out,
                                             float& sin_out) {
  float sin_value, cos_value;
  sincosf(position * inv_freq, &sin_value, &cos_value);
  cos_out = cos_value * scaling;
  sin_out = sin_value * scaling;
}

// RoPE's rotation of the pair (x1, x2) by the angle whose (cos, sin) is (c, s), each product and sum rounded
// as written (no contraction into FMAs), so every kernel that rotates (rope_and_store_kv's and the decode
// attention's fused form) stores the same bits.
__device__ __forceinline__ void rope_rotate(float x1, float x2, float c, float s, float& y1, float& y2) {
  y1 = __fsub_rn(__fmul_rn(x1, c), __fmul_rn(x2, s));
  y2 = __fadd_rn(__fmul_rn(x2, c), __fmul_rn(x1, s));
}
// The same on bf16 words: (x1, x2) = (first's element e, second's element e) for e = 0, 1 (the pairs of
// neox RoPE, dims i and i + rotary_dim / 2), angles cos[e], sin[e]; rounded back to bf16.
__device__ __forceinline__ void rope_rotate_words(uint32_t& first, uint32_t& second, const float* cos,
                                                  const float* sin) {
  float a0, a1, b0, b1;
  rope_rotate(bf16_lo(first), bf16_lo(second), cos[0], sin[0], a0, b0);
  rope_rotate(bf16_hi(first), bf16_hi(second), cos[1], sin[1], a1, b1);
  first = static_cast<uint32_t>(f32_to_bf16_bits(a0)) | (static_cast<uint32_t>(f32_to_bf16_bits(a1)) << 16);
  second = static_cast<uint32_t>(f32_to_bf16_bits(b0)) | (static_cast<uint32_t>(f32_to_bf16_bits(b1)) << 16);
}
// Interleaved RoPE on one bf16 word: its two elements are one pair (dims 2i, 2i + 1), angle (c, s).
__device__ __forceinline__ void rope_rotate_word_interleaved(uint32_t& word, float c, float s) {
  float y1, y2;
  rope_rotate(bf16_lo(word), bf16_hi(word), c, s, y1, y2);
  word = static_cast<uint32_t>(f32_to_bf16_bits(y1)) | (static_cast<uint32_t>(f32_to_bf16_bits(y2)) << 16);
}
// Neox RoPE on 16-byte chunks: first holds dims f..f+7 of the first half, second the matching dims of the
// second half; cos / sin point at frequency f.
__device__ __forceinline__ void rope_rotate_chunks(uint4& first, uint4& second, const float* cos, const float* sin) {
  rope_rotate_words(first.x, second.x, cos, sin);
  rope_rotate_words(first.y, second.y, cos + 2, sin + 2);
  rope_rotate_words(first.z, second.z, cos + 4, sin + 4);
  rope_rotate_words(first.w, second.w, cos + 6, sin + 6);
}
// Interleaved RoPE on a 16-byte chunk: four pairs, frequencies f..f+3 (cos / sin point at f).
__device__ __forceinline__ void rope_rotate_chunk_interleaved(uint4& chunk, const float* cos, const float* sin) {
  rope_rotate_word_interleaved(chunk.x, cos[0], sin[0]);
  rope_rotate_word_interleaved(chunk.y, cos[1], sin[1]);
  rope_rotate_word_interleaved(chunk.z, cos[2], sin[2]);
  rope_rotate_word_interleaved(chunk.w, cos[3], sin[3]);
}

__device__ __forceinline__ float warp_sum(float value) {
  for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}
__device__ __forceinline__ float warp_max(float value) {
  for (int offset = 16; offset > 0; offset >>= 1) value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, offset));
  return value;
}

// Sum and max over the four lanes of a quad (lanes 4i..4i+3, which hold one row of an mma.m16n8
// accumulator tile between them); every lane of the quad gets the result.
__device__ __forceinline__ float quad_sum(float value) {
  value += __shfl_xor_sync(0xffffffffu, value, 1);
  return value + __shfl_xor_sync(0xffffffffu, value, 2);
}
__device__ __forceinline__ float quad_max(float value) {
  value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, 1));
  return fmaxf(value, __shfl_xor_sync(0xffffffffu, value, 2));
}

// Sum over a block of `kWarps` warps; every thread gets the total. `scratch` holds kWarps floats.
template <int kWarps>
__device__ __forceinline__ float block_sum(float value, float* scratch) {
  value = warp_sum(value);
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  if (lane == 0) scratch[warp] = value;
  __syncthreads();
  float total = 0.0f;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) total += scratch[w];
  __syncthreads();  // scratch may be reused right after
  return total;
}

inline unsigned int ceil_div_u(int64_t a, int64_t b) { return static_cast<unsigned int>((a + b - 1) / b); }

}  // namespace radixlm::cuda
