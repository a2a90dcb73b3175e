#pragma once
// Hopper (sm_90a) building blocks shared by the warp-specialised kernels (the prefill attention of
// cuda_attention_wgmma.cuh and the decode GEMM of cuda_decode_gemm.cu): wgmma's shared-memory matrix
// descriptors and group fences, mbarriers, TMA copies and the driver's tensor-map encoder. Layouts are the
// PTX ISA's ("Matrix Descriptor Format", "Shared Memory Matrix Layout", 128-byte swizzling).

#include <cuda.h>  // CUtensorMap and its enums (the encoder comes through the runtime: tensor_map_encoder)
#include <cuda_runtime.h>
#include <cudaTypedefs.h>  // PFN_cuTensorMapEncodeTiled

#include "backends/cuda/cuda_common.cuh"

// Built only where the instructions exist (the sm_90a code; the compute_80 PTX gets an empty kernel that
// the launcher never picks: supported() checks the device).
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ == 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define RADIXLM_WGMMA 1
#else
#define RADIXLM_WGMMA 0
#endif

namespace radixlm::cuda {

// Matrix descriptor for 128-byte swizzled shared memory: start address, leading and stride byte offsets
// (encoded >> 4), swizzle mode 1 (128 B) in bits 62-63.
__device__ __forceinline__ uint64_t descriptor(uint32_t address, uint32_t leading, uint32_t stride) {
  return static_cast<uint64_t>((address & 0x3FFFF) >> 4) | static_cast<uint64_t>((leading & 0x3FFFF) >> 4) << 16 |
         static_cast<uint64_t>((stride & 0x3FFFF) >> 4) << 32 | uint64_t{1} << 62;
}
// Step kk (columns 16kk..16kk+15) of a K-major tile of 128-byte swizzled rows starting at `rows`: 32 bytes
// further into each row, 8-row groups 1024 bytes apart (the leading offset is unused with swizzling).
__device__ __forceinline__ uint64_t k_step_descriptor(uint32_t rows, int kk) {
  return descriptor(rows + kk * 32, 16, 1024);
}

#if RADIXLM_WGMMA
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_wait_all() { asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory"); }
// Waits until at most kPending of this warpgroup's committed wgmma groups are still running.
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(kPending) : "memory");
}
// Writes by the generic proxy (cp.async, st.shared) become visible to wgmma's operand reads.
__device__ __forceinline__ void fence_async_shared() { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }

__device__ __forceinline__ void mbarrier_init(uint64_t* barrier, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_address(barrier)), "r"(count) : "memory");
}
__device__ __forceinline__ void mbarrier_arrive(uint64_t* barrier) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_address(barrier)) : "memory");
}
// Arrives once all of this thread's earlier cp.asyncs have landed (counts as one of the expected arrivals).
__device__ __forceinline__ void cp_async_arrive(uint64_t* barrier) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];" ::"r"(smem_address(barrier)) : "memory");
}
// Arrives and sets the bytes the phase still waits for (TMA copies complete them).
__device__ __forceinline__ void mbarrier_arrive_expect_tx(uint64_t* barrier, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_address(barrier)), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void mbarrier_wait(uint64_t* barrier, uint32_t parity) {
  const uint32_t address = smem_address(barrier);
  uint32_t done = 0;
  while (!done) {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(address), "r"(parity)
        : "memory");
  }
}

// A 2-D TMA box (column, row: the tensor map's inner dimension first) into shared memory, laid out as the
// map's swizzle says, completing its bytes on the barrier.
__device__ __forceinline__ void tma_load_2d(void* dst, const CUtensorMap* map, int column, int row,
                                            uint64_t* barrier) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];"
      ::"r"(smem_address(dst)), "l"(reinterpret_cast<uint64_t>(map)), "r"(column), "r"(row),
        "r"(smem_address(barrier))
      : "memory");
}
#endif  // RADIXLM_WGMMA

// Whether this process's GPU runs sm_90a code (compute capability 9.0 exactly).
inline bool hopper_device() {
  static const bool ok = [] {
    int device = 0, major = 0, minor = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
      (void)cudaGetLastError();
      return false;
    }
    return major == 9 && minor == 0;
  }();
  return ok;
}

// The driver's cuTensorMapEncodeTiled, through the runtime (no link against libcuda); null where missing.
inline PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static const auto encode = [] {
    void* function = nullptr;
    cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &function, 12000, cudaEnableDefault, &found) !=
            cudaSuccess ||
        found != cudaDriverEntryPointSuccess) {
      (void)cudaGetLastError();
      function = nullptr;
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(function);
  }();
  return encode;
}

}  // namespace radixlm::cuda
