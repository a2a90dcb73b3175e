// split_columns on the GPU against the CPU backend: the same bf16-exact inputs split by both, compared
// exactly (the op is a copy, so any difference is a bug, not rounding). Outputs are poisoned (NaN) first so a
// column the kernel skips shows up. The sweep covers the vectorized path (widths and addresses multiples of
// 8 elements / 16 bytes), the element path (odd widths, a misaligned output), 1-4 parts, empty parts,
// one row, many rows and the Llama-3-8B q|k|v shape. (The CPU op itself is checked against its definition
// in backends/cpu/cpu_split_test.cpp.)

#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backends/cpu/cpu_backend.h"
#include "backends/cuda/cuda_test_util.h"

namespace radixlm {
namespace {

using cuda_test::host_f32;
using cuda_test::poisoned;
using cuda_test::random_bf16_values;
using cuda_test::to_host;

struct SplitCase {
  int64_t rows;
  std::vector<int64_t> widths;
};

std::string describe(const SplitCase& c) {
  std::ostringstream out;  // (not string +: g++ 12 -Wrestrict misfires on it)
  out << c.rows << " rows, widths";
  for (int64_t w : c.widths) out << ' ' << w;
  return out.str();
}

TEST(CudaSplit, MatchesCpuExactly) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(gpu);
  CpuBackend cpu(2);
  std::mt19937 rng(11);
  const std::vector<SplitCase> cases = {
      {1, {4096, 1024, 1024}},     // Llama-3-8B q|k|v, one decode token
      {7, {4096, 1024, 1024}},     // and a small batch
      {300, {4096, 1024, 1024}},   // and a prefill chunk
      {5, {64, 16, 16}},           // tiny fixtures: head_dim 16
      {3, {2048, 256, 256}},       // Qwen-style GQA
      {9, {24}},                   // one part: a plain copy
      {4, {8, 16, 24, 32}},        // four parts
      {6, {3, 5, 7}},              // odd widths: the element path
      {2, {0, 16, 8}},             // an empty part
      {5, {16, 8, 0}},             // an empty last part
      {1000, {40, 8, 8, 16}},      // many rows
  };
  for (const SplitCase& c : cases) {
    int64_t width = 0;
    for (int64_t w : c.widths) width += w;
    const std::vector<float> values = random_bf16_values(static_cast<size_t>(c.rows * width), rng);
    Tensor x_cpu = host_f32(values, {c.rows, width});
    Tensor x_gpu = gpu.upload(x_cpu);
    std::vector<Tensor> cpu_outs, gpu_outs;
    std::vector<TensorView> cpu_views, gpu_views;
    for (int64_t w : c.widths) {
      cpu_outs.push_back(cpu.alloc(DType::kF32, {c.rows, w}));
      gpu_outs.push_back(poisoned(gpu, DType::kBF16, {c.rows, w}));
      cpu_views.push_back(cpu_outs.back());
      gpu_views.push_back(gpu_outs.back());
    }
    cpu.split_columns(x_cpu, cpu_views);
    gpu.split_columns(x_gpu, gpu_views);
    for (size_t i = 0; i < c.widths.size(); ++i) {
      if (c.widths[i] == 0) continue;
      const std::vector<float> got = to_host(gpu, gpu_outs[i]);
      const float* want = cpu_outs[i].as<float>();
      ASSERT_EQ(static_cast<int64_t>(got.size()), c.rows * c.widths[i]);
      for (size_t e = 0; e < got.size(); ++e) {
        ASSERT_EQ(got[e], want[e]) << describe(c) << ": part " << i << " element " << e;
      }
    }
  }
}

// A misaligned output (one element past a 16-byte boundary) must take the element path and still be exact.
TEST(CudaSplit, MisalignedOutputFallsBackToElements) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(gpu);
  CpuBackend cpu(1);
  std::mt19937 rng(12);
  const int64_t rows = 4, wa = 16, wb = 8;
  const std::vector<float> values = random_bf16_values(static_cast<size_t>(rows * (wa + wb)), rng);
  Tensor x_cpu = host_f32(values, {rows, wa + wb});
  Tensor x_gpu = gpu.upload(x_cpu);
  Tensor big = poisoned(gpu, DType::kBF16, {1, rows * wa + 1});
  const TensorView a(static_cast<uint16_t*>(big.view.data) + 1, DType::kBF16, {rows, wa}, Device::kCuda);
  Tensor b = poisoned(gpu, DType::kBF16, {rows, wb});
  const std::vector<TensorView> gpu_views = {a, b.view};
  gpu.split_columns(x_gpu, gpu_views);
  const std::vector<float> got_a = to_host(gpu, a), got_b = to_host(gpu, b);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t col = 0; col < wa; ++col) EXPECT_EQ(got_a[r * wa + col], values[r * (wa + wb) + col]);
    for (int64_t col = 0; col < wb; ++col) EXPECT_EQ(got_b[r * wb + col], values[r * (wa + wb) + wa + col]);
  }
}

}  // namespace
}  // namespace radixlm
