#include "backends/cuda/cuda_test_kernels.h"

#include "backends/cuda/cuda_common.cuh"

namespace radixlm::cuda_test {
namespace {

__global__ void copy_u16_kernel(const uint16_t* in, uint16_t* out, int64_t count, bool wait_for_predecessor,
                                uint64_t delay_ns) {
  if (wait_for_predecessor) cuda::pdl_wait();
  cuda::pdl_launch_dependents();
  if (delay_ns > 0 && threadIdx.x == 0) {
    uint64_t start = 0, now = 0;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
    do {
      __nanosleep(1000);
      asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    } while (now - start < delay_ns);
  }
  __syncthreads();
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count; i += int64_t{gridDim.x} * blockDim.x) {
    out[i] = in[i];
  }
}

}  // namespace

void launch_copy_u16(const uint16_t* in, uint16_t* out, int64_t count, bool wait_for_predecessor, uint64_t delay_ns,
                     cudaStream_t stream) {
  const auto blocks = std::min<unsigned int>(cuda::ceil_div_u(count, 256), 128);
  copy_u16_kernel<<<blocks, 256, 0, stream>>>(in, out, count, wait_for_predecessor, delay_ns);
}

}  // namespace radixlm::cuda_test
