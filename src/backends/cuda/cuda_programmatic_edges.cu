#include "backends/cuda/cuda_programmatic_edges.h"

#include <vector>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/cuda_common.cuh"

namespace radixlm::cuda {
namespace {

__device__ __forceinline__ uint64_t global_timer_ns() {
  uint64_t t = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// Lets its dependents start at once, then waits delay_ns and fills x with a pattern of small nonzero values.
__global__ void late_fill_kernel(uint16_t* x, int64_t count, uint64_t delay_ns) {
  pdl_launch_dependents();
  if (threadIdx.x == 0) {
    const uint64_t start = global_timer_ns();
    while (global_timer_ns() - start < delay_ns) __nanosleep(1000);
  }
  __syncthreads();
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count; i += int64_t{gridDim.x} * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u;
    h ^= h >> 15;
    x[i] = f32_to_bf16_bits(static_cast<float>(h & 0xffffu) / 65536.0f + 0.25f);
  }
}

__global__ void count_differences_kernel(const uint16_t* a, const uint16_t* b, int64_t count, unsigned int* result) {
  unsigned int differ = 0;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count; i += int64_t{gridDim.x} * blockDim.x) {
    differ += a[i] != b[i] ? 1u : 0u;
  }
  if (differ != 0) atomicAdd(result, differ);
}

}  // namespace

bool programmatic_launch_enabled() { return pdl_enabled(); }

bool make_next_capture_edges_programmatic(cudaStream_t stream) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  const cudaGraphNode_t* dependencies = nullptr;
  const cudaGraphEdgeData* edges = nullptr;
  size_t count = 0;
  if (cudaStreamGetCaptureInfo(stream, &status, nullptr, nullptr, &dependencies, &edges, &count) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  if (status != cudaStreamCaptureStatusActive || count == 0) return false;
  std::vector<cudaGraphNode_t> nodes(dependencies, dependencies + count);
  std::vector<cudaGraphEdgeData> programmatic(count);
  for (size_t i = 0; i < count; ++i) {
    cudaGraphNodeType type = cudaGraphNodeTypeEmpty;
    if (cudaGraphNodeGetType(nodes[i], &type) != cudaSuccess || type != cudaGraphNodeTypeKernel) {
      (void)cudaGetLastError();
      return false;
    }
    programmatic[i] = cudaGraphEdgeData{};
    programmatic[i].from_port = cudaGraphKernelNodePortProgrammatic;
    programmatic[i].type = cudaGraphDependencyTypeProgrammatic;
  }
  if (cudaStreamUpdateCaptureDependencies(stream, nodes.data(), programmatic.data(), count,
                                          cudaStreamSetCaptureDependencies) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return true;
}

bool waits_for_programmatic_predecessor(const std::function<void(const uint16_t* input)>& read, uint16_t* input,
                                        int64_t input_elems, const void* output, int64_t output_bytes,
                                        cudaStream_t stream) {
  if (!programmatic_launch_enabled() || input_elems <= 0 || output_bytes <= 0 || output_bytes % 2 != 0) return false;
  constexpr uint64_t kFillDelayNs = 100'000;  // far longer than a library kernel's launch and first reads
  const auto fill_blocks = std::min<unsigned int>(ceil_div_u(input_elems, 256), 128);

  // The output with the stale (zeroed) input, and the graph's output, kept for the comparisons.
  void* scratch = nullptr;
  RADIXLM_CUDA_CHECK(cudaMallocAsync(&scratch, static_cast<size_t>(output_bytes) * 2 + 8, stream));
  auto* stale = static_cast<uint16_t*>(scratch);
  uint16_t* graph_out = stale + output_bytes / 2;
  auto* differences = reinterpret_cast<unsigned int*>(graph_out + output_bytes / 2);
  RADIXLM_CUDA_CHECK(cudaMemsetAsync(differences, 0, 8, stream));
  RADIXLM_CUDA_CHECK(cudaMemsetAsync(input, 0, static_cast<size_t>(input_elems) * 2, stream));
  read(input);
  RADIXLM_CUDA_CHECK(cudaMemcpyAsync(stale, output, static_cast<size_t>(output_bytes), cudaMemcpyDeviceToDevice, stream));

  RADIXLM_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  late_fill_kernel<<<fill_blocks, 256, 0, stream>>>(input, input_elems, kFillDelayNs);
  const bool programmatic = make_next_capture_edges_programmatic(stream);
  read(input);
  // A capture that read() broke (a node a programmatic edge may not lead to) ends in an error: not fatal.
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  bool instantiated = false;
  if (cudaStreamEndCapture(stream, &graph) == cudaSuccess && graph != nullptr) {
    instantiated = programmatic && cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess;
    RADIXLM_CUDA_CHECK(cudaGraphDestroy(graph));
  }
  if (!instantiated) (void)cudaGetLastError();

  unsigned int host[2] = {1, 0};
  if (instantiated) {
    RADIXLM_CUDA_CHECK(cudaGraphLaunch(exec, stream));
    RADIXLM_CUDA_CHECK(
        cudaMemcpyAsync(graph_out, output, static_cast<size_t>(output_bytes), cudaMemcpyDeviceToDevice, stream));
    read(input);  // plainly, on the filled input
    const int64_t count = output_bytes / 2;
    const auto blocks = std::min<unsigned int>(ceil_div_u(count, 256), 1024);
    count_differences_kernel<<<blocks, 256, 0, stream>>>(graph_out, static_cast<const uint16_t*>(output), count,
                                                        differences);
    count_differences_kernel<<<blocks, 256, 0, stream>>>(stale, static_cast<const uint16_t*>(output), count,
                                                        differences + 1);
    RADIXLM_CUDA_CHECK(cudaGetLastError());
    RADIXLM_CUDA_CHECK(cudaMemcpyAsync(host, differences, sizeof(host), cudaMemcpyDeviceToHost, stream));
  }
  RADIXLM_CUDA_CHECK(cudaFreeAsync(scratch, stream));
  RADIXLM_CUDA_CHECK(cudaStreamSynchronize(stream));
  if (exec != nullptr) RADIXLM_CUDA_CHECK(cudaGraphExecDestroy(exec));
  return host[0] == 0 && host[1] > 0;
}

}  // namespace radixlm::cuda
