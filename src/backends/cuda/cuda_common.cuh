#pragma once
// Small device helpers shared by the .cu files: bf16 <-> f32 on raw bit patterns and warp reductions.

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace radixlm::cuda {

// Programmatic dependent launch (sm_90). A kernel started by launch_pdl() may be scheduled before the kernel
// ahead of it on the stream has finished: as soon as every block of that kernel has called
// pdl_launch_dependents(). Until its own pdl_wait() returns (the kernel ahead completed, its writes visible) it
// may only read what no kernel of the step writes, the weights; it must not write anything. Every decode-step
// kernel lets its successor in at its start, so a GEMV's blocks become resident while the small kernels ahead
// of it (norm, RoPE, attention) still run and stream their first weights meanwhile: DRAM keeps busy across
// kernel boundaries. Capture records the programmatic edges into CUDA graphs. Launched plainly, the device
// calls are no-ops.
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

// For kernels with nothing to prefetch: let the successor in, then wait for the predecessor.
__device__ __forceinline__ void pdl_begin() {
  pdl_launch_dependents();
  pdl_wait();
}

// RADIXLM_CUDA_PDL: unset or 1 = every decode kernel; "no-gemv" = all but the GEMV; 0 = none.
inline const char* pdl_setting() {
  static const char* setting = [] {
    const char* env = std::getenv("RADIXLM_CUDA_PDL");
    return env == nullptr ? "1" : env;
  }();
  return setting;
}
inline bool pdl_enabled() { return std::strcmp(pdl_setting(), "0") != 0; }
inline bool pdl_gemv_enabled() { return pdl_enabled() && std::strcmp(pdl_setting(), "no-gemv") != 0; }

// Launches kernel<<<grid, block, smem, stream>>>(args...), as a programmatic dependent when programmatic.
template <typename... Params, typename... Args>
void launch_kernel(bool programmatic, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                   cudaStream_t stream, Args... args) {
  if (programmatic) {
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

template <typename... Params, typename... Args>
void launch_pdl(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, Args... args) {
  launch_kernel(pdl_enabled(), kernel, grid, block, smem, stream, args...);
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

__device__ __forceinline__ float warp_sum(float value) {
  for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}
__device__ __forceinline__ float warp_max(float value) {
  for (int offset = 16; offset > 0; offset >>= 1) value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, offset));
  return value;
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
