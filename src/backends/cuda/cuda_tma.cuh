#pragma once
// Hopper's tensor memory accelerator (TMA) over the paged KV cache, shared by the prefill (wgmma) and decode
// attention kernels: mbarrier helpers, one TMA box copy, and the tensor-map descriptor of a cache.
//
// A cache [slots][kv_heads][head_dim] bf16 is described as a 3-D tensor whose boxes are {64 columns, 1 head,
// 16 slots}: 16 consecutive slots (keys of one page, where the page size is a multiple of 16) of one head,
// 64 of its columns. A box lands in shared memory as 16 rows of 128 bytes, 128-byte swizzled (16-byte chunk
// c of row r at c ^ (r % 8)), so ldmatrix and wgmma read it without bank conflicts. The destination must be
// 1024-byte aligned for the swizzle to line up with the rows.

#include <cstdint>

#include <cuda.h>  // CUtensorMap and its enums (the encoder comes through the runtime: tensor_map_encoder)
#include <cuda_runtime.h>
#include <cudaTypedefs.h>  // PFN_cuTensorMapEncodeTiled

#include "backends/cuda/cuda_attention_mma.cuh"  // smem_address

namespace radixlm::cuda {

// The instructions exist from sm_90 on; callers guard their use the same way.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
__device__ __forceinline__ void mbarrier_init(uint64_t* barrier, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_address(barrier)), "r"(count) : "memory");
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
// Writes by the generic proxy (st.shared, cp.async, mbarrier.init) become visible to the async proxy (TMA
// writes, wgmma's operand reads).
__device__ __forceinline__ void fence_async_shared() { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }
// A TMA box {64 columns, 1 head, 16 slots} of a cache into shared memory, completing its bytes on the barrier.
__device__ __forceinline__ void tma_load_box(void* dst, const CUtensorMap* map, int column, int head, int slot,
                                             uint64_t* barrier) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];"
      ::"r"(smem_address(dst)), "l"(reinterpret_cast<uint64_t>(map)), "r"(column), "r"(head), "r"(slot),
        "r"(smem_address(barrier))
      : "memory");
}
#endif

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

// The descriptor of a cache [slots][kv_heads][head_dim] bf16 (head_dim a multiple of 64) with the boxes
// above. False if the driver refuses it.
inline bool encode_cache_map(CUtensorMap& map, const uint16_t* cache, int32_t head_dim, int32_t kv_heads,
                             int64_t num_slots) {
  const PFN_cuTensorMapEncodeTiled_v12000 encode = tensor_map_encoder();
  if (encode == nullptr || head_dim % 64 != 0) return false;
  const cuuint64_t dims[3] = {static_cast<cuuint64_t>(head_dim), static_cast<cuuint64_t>(kv_heads),
                              static_cast<cuuint64_t>(num_slots)};
  const cuuint64_t strides[2] = {static_cast<cuuint64_t>(head_dim) * 2,
                                 static_cast<cuuint64_t>(kv_heads) * head_dim * 2};
  const cuuint32_t box[3] = {64, 1, 16};
  const cuuint32_t element_strides[3] = {1, 1, 1};
  return encode(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<uint16_t*>(cache), dims, strides, box,
                element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// Whether this process's GPU is compute capability 9.0 (the sm_90a code, TMA and wgmma).
inline bool device_is_sm90() {
  static const bool sm90 = [] {
    int device = 0, major = 0, minor = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
      (void)cudaGetLastError();
      return false;
    }
    return major == 9 && minor == 0;
  }();
  return sm90;
}

}  // namespace radixlm::cuda
