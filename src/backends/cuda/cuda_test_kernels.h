#pragma once
// Kernels only the CUDA tests launch (built into the tests, not the backend).

#include <cstdint>

#include <cuda_runtime.h>

namespace radixlm::cuda_test {

// out[i] = in[i]. The kernel lets its programmatic dependents start at once; with wait_for_predecessor it
// first waits for its own predecessor (griddepcontrol.wait), without it reads `in` at once. delay_ns: how
// long it then sleeps before copying (a predecessor that writes late).
void launch_copy_u16(const uint16_t* in, uint16_t* out, int64_t count, bool wait_for_predecessor, uint64_t delay_ns,
                     cudaStream_t stream);

}  // namespace radixlm::cuda_test
