// Programmatic edges into kernels we do not launch ourselves: the probe must tell a kernel that waits for
// its predecessor from one that does not, and a captured cuBLASLt matmul behind a kernel that writes its
// input late must give the bits an eager run gives, whether or not its plan was found to start early.

#include "backends/cuda/cuda_programmatic_edges.h"

#include <cstdio>
#include <random>
#include <vector>

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include "backends/cuda/cublaslt_gemm.h"
#include "backends/cuda/cuda_test_kernels.h"
#include "core/dtype.h"

namespace radixlm::cuda {
namespace {

// Programmatic launch needs sm_90; elsewhere (CI has no GPU at all) the tests skip.
#define RADIXLM_HOPPER_OR_SKIP()                                                              \
  do {                                                                                         \
    int devices = 0;                                                                           \
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {                         \
      (void)cudaGetLastError();                                                                \
      GTEST_SKIP() << "no CUDA device";                                                        \
    }                                                                                          \
    cudaDeviceProp prop{};                                                                     \
    ASSERT_EQ(cudaGetDeviceProperties(&prop, 0), cudaSuccess);                                 \
    if (prop.major < 9) GTEST_SKIP() << "programmatic launch needs sm_90, not sm_" << prop.major << prop.minor; \
    if (!programmatic_launch_enabled()) GTEST_SKIP() << "RADIXLM_CUDA_PDL=0";                 \
  } while (0)

template <typename T>
T* device_alloc(size_t count) {
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, count * sizeof(T)), cudaSuccess);
  return static_cast<T*>(p);
}

std::vector<uint16_t> random_bf16(size_t count, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<uint16_t> v(count);
  for (uint16_t& x : v) x = f32_to_bf16(dist(rng));
  return v;
}

TEST(ProgrammaticEdgesTest, ProbeTellsAKernelThatWaitsFromOneThatDoesNot) {
  RADIXLM_HOPPER_OR_SKIP();
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  constexpr int64_t kCount = 1 << 16;
  uint16_t* input = device_alloc<uint16_t>(kCount);
  uint16_t* output = device_alloc<uint16_t>(kCount);
  uint16_t* constant = device_alloc<uint16_t>(kCount);
  ASSERT_EQ(cudaMemset(constant, 0x3c, kCount * 2), cudaSuccess);
  const auto copy = [&](bool wait) {
    return [&, wait](const uint16_t* in) { radixlm::cuda_test::launch_copy_u16(in, output, kCount, wait, 0, stream); };
  };
  EXPECT_TRUE(waits_for_programmatic_predecessor(copy(true), input, kCount, output, kCount * 2, stream));
  EXPECT_FALSE(waits_for_programmatic_predecessor(copy(false), input, kCount, output, kCount * 2, stream));
  // A reader whose output does not depend on its input tells nothing: not taken as waiting.
  const auto ignore_input = [&](const uint16_t*) {
    radixlm::cuda_test::launch_copy_u16(constant, output, kCount, true, 0, stream);
  };
  EXPECT_FALSE(waits_for_programmatic_predecessor(ignore_input, input, kCount, output, kCount * 2, stream));
  // Outside a capture there are no edges to change.
  EXPECT_FALSE(make_next_capture_edges_programmatic(stream));
  for (void* p : {static_cast<void*>(input), static_cast<void*>(output), static_cast<void*>(constant)}) cudaFree(p);
  cudaStreamDestroy(stream);
}

// The decode matmuls of the Llama-3.1-8B shape (q/k/v, o, gate/up, down) at batches that run on cuBLASLt.
TEST(ProgrammaticEdgesTest, CapturedCublasLtMatmulBehindALateWriterMatchesEager) {
  RADIXLM_HOPPER_OR_SKIP();
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  std::mt19937 rng(11);
  CublasLtGemm gemm;
  struct Shape {
    int64_t n, k;
  };
  for (const Shape shape : {Shape{6144, 4096}, Shape{4096, 4096}, Shape{28672, 4096}, Shape{4096, 14336}}) {
    const std::vector<uint16_t> w_host = random_bf16(static_cast<size_t>(shape.n * shape.k), rng);
    uint16_t* w = device_alloc<uint16_t>(w_host.size());
    ASSERT_EQ(cudaMemcpy(w, w_host.data(), w_host.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
    for (const int64_t tokens : {24, 64, 256}) {
      SCOPED_TRACE(testing::Message() << tokens << " x " << shape.k << " -> " << shape.n);
      const std::vector<uint16_t> x_host = random_bf16(static_cast<size_t>(tokens * shape.k), rng);
      uint16_t* source = device_alloc<uint16_t>(x_host.size());
      uint16_t* x = device_alloc<uint16_t>(x_host.size());
      uint16_t* out = device_alloc<uint16_t>(static_cast<size_t>(tokens * shape.n));
      ASSERT_EQ(cudaMemcpy(source, x_host.data(), x_host.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
      ASSERT_EQ(cudaMemcpy(x, x_host.data(), x_host.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
      // Eager: tunes the shape and probes its kernel, then the reference bits.
      ASSERT_TRUE(gemm.run(x, w, nullptr, out, false, false, tokens, shape.n, shape.k, true, stream));
      ASSERT_TRUE(gemm.run(x, w, nullptr, out, false, false, tokens, shape.n, shape.k, true, stream));
      std::vector<uint16_t> eager(static_cast<size_t>(tokens * shape.n)), graph(eager.size());
      ASSERT_EQ(cudaMemcpyAsync(eager.data(), out, eager.size() * 2, cudaMemcpyDeviceToHost, stream), cudaSuccess);
      ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
      std::printf("cuBLASLt %ld x %ld -> %ld: %s\n", static_cast<long>(tokens), static_cast<long>(shape.k),
                  static_cast<long>(shape.n),
                  gemm.starts_early(tokens, shape.n, shape.k) ? "starts early (waits for its predecessor)"
                                                              : "full edge");

      // Captured: a kernel that lets its dependents start at once and writes x 100 us later, then the matmul.
      ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
      radixlm::cuda_test::launch_copy_u16(source, x, tokens * shape.k, false, 100'000, stream);
      ASSERT_TRUE(gemm.run(x, w, nullptr, out, false, false, tokens, shape.n, shape.k, true, stream));
      cudaGraph_t captured = nullptr;
      ASSERT_EQ(cudaStreamEndCapture(stream, &captured), cudaSuccess);
      cudaGraphExec_t exec = nullptr;
      ASSERT_EQ(cudaGraphInstantiate(&exec, captured, 0), cudaSuccess);
      ASSERT_EQ(cudaMemsetAsync(x, 0, x_host.size() * 2, stream), cudaSuccess);
      ASSERT_EQ(cudaMemsetAsync(out, 0xff, graph.size() * 2, stream), cudaSuccess);
      ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
      ASSERT_EQ(cudaMemcpyAsync(graph.data(), out, graph.size() * 2, cudaMemcpyDeviceToHost, stream), cudaSuccess);
      ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
      EXPECT_EQ(graph, eager);
      cudaGraphExecDestroy(exec);
      cudaGraphDestroy(captured);
      for (void* p : {static_cast<void*>(source), static_cast<void*>(x), static_cast<void*>(out)}) cudaFree(p);
    }
    cudaFree(w);
  }
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace radixlm::cuda
