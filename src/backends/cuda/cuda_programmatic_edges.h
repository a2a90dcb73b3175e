#pragma once
// Programmatic edges into kernels we do not launch ourselves (cuBLASLt's). Our kernels become programmatic
// dependents of the kernel ahead through their launch attribute (launch_programmatic in cuda_common.cuh);
// a library launches plainly, so in a CUDA graph its kernel starts only once the kernel ahead has finished
// and its writes are flushed. During stream capture the edges into the next captured node can be made
// programmatic instead, so the library's kernel is launched while the one ahead drains. That is only
// correct for a kernel that itself waits for its predecessor (griddepcontrol.wait) before reading what the
// predecessor writes, which a library does not promise: waits_for_programmatic_predecessor() finds out by
// running it once behind a kernel that writes its input late.

#include <cstdint>
#include <functional>

#include <cuda_runtime.h>

namespace radixlm::cuda {

// Whether kernels are launched as programmatic dependents at all (RADIXLM_CUDA_PDL=0 turns it off).
bool programmatic_launch_enabled();

// While `stream` is capturing: makes the edges from the stream's current dependencies into the next
// captured node programmatic (the next node may start once every block of those kernels has triggered or
// exited). Returns false, changing nothing, when the stream is not capturing or a dependency is not a kernel.
bool make_next_capture_edges_programmatic(cudaStream_t stream);

// Runs read(input) three times on `stream` (outside any capture; it synchronizes): with `input` zeroed, then
// in a graph behind a kernel that triggers its dependents at once and fills `input` ~100 us later, joined
// by a programmatic edge, then plainly on the filled input. True when the graph's `output_bytes` at
// `output` equal the plain run's and differ from the zeroed run's: read waited for the fill. False when it
// read early, or when its output does not depend on its input (nothing could be told). `input` is
// overwritten; read must write `output` and nothing it reads.
bool waits_for_programmatic_predecessor(const std::function<void(const uint16_t* input)>& read, uint16_t* input,
                                        int64_t input_elems, const void* output, int64_t output_bytes,
                                        cudaStream_t stream);

}  // namespace radixlm::cuda
