#pragma once
// Shared-memory addresses, mbarriers and the copy engine's (TMA's) bulk copies: what the Hopper kernels'
// producer/consumer pipelines are built from. mbarrier.try_wait.parity, expect_tx and cp.async.bulk need
// sm_90; callers compile them only where __CUDA_ARCH__ >= 900 and launch them only on such devices.

#include <cstdint>

namespace radixlm::cuda {

__device__ __forceinline__ uint32_t smem_address(const void* pointer) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(pointer));
}

__device__ __forceinline__ void mbarrier_init(uint64_t* barrier, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_address(barrier)), "r"(count) : "memory");
}
// Makes this thread's mbarrier.inits visible to the copy engine (the async proxy) before its first copy.
__device__ __forceinline__ void fence_mbarrier_init() {
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
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
// `bytes` (a multiple of 16; both addresses 16-byte aligned) of contiguous global memory into shared memory
// by the copy engine, completing `bytes` on the barrier.
__device__ __forceinline__ void bulk_copy(void* dst, const void* src, uint32_t bytes, uint64_t* barrier) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
               ::"r"(smem_address(dst)), "l"(reinterpret_cast<uint64_t>(src)), "r"(bytes), "r"(smem_address(barrier))
               : "memory");
}

}  // namespace radixlm::cuda
