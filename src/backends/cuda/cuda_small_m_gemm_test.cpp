// The small-M tensor-core GEMM (cuda_small_m_gemm.cu) against references nobody here wrote per element:
// a host double-precision dot product on sampled output columns (every token row; the first and last
// 128-row tile always included) and cuBLASLt on every element. Sweeps M in {2, 3, 8, 17, 64, 128} over the
// Llama-3.1-8B decode shapes and odd small shapes (N not a multiple of the tile, K a multiple of 8 only,
// fewer K tiles than splits), bf16 and f32 outputs, with and without bias, and every K split count. Outputs
// are poisoned (NaN) first so an element the kernel skips shows up. It also prints the kernel's weight
// bandwidth per (shape, M) as "smallm ..." lines, next to cuBLASLt's, for the GPU run's summary.

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include "backends/cuda/cuda_small_m_gemm.h"
#include "backends/cuda/cuda_test_util.h"

namespace radixlm {
namespace {

using cuda_test::poisoned;
using cuda_test::to_host;

// Deterministic bf16-exact values in [-scale, scale) from (seed, index), so the host reference recomputes any
// element without keeping a 1 GB copy of the lm_head weights.
float pattern_value(uint64_t seed, uint64_t index, float scale) {
  uint64_t h = (index + 1) * 0x9E3779B97F4A7C15ULL ^ (seed * 0xC2B2AE3D27D4EB4FULL);
  h ^= h >> 31;
  h *= 0xBF58476D1CE4E5B9ULL;
  h ^= h >> 29;
  const float unit = static_cast<float>(h >> 40) / static_cast<float>(1ULL << 24);  // [0, 1)
  return bf16_to_f32(f32_to_bf16((2.0f * unit - 1.0f) * scale));
}

// A device bf16 tensor [rows, cols] filled with pattern_value(seed, r * cols + c).
Tensor pattern_tensor(CudaBackend& gpu, int64_t rows, int64_t cols, uint64_t seed, float scale) {
  Tensor t = gpu.alloc(DType::kBF16, {rows, cols});
  const int64_t total = rows * cols, chunk = int64_t{1} << 24;
  std::vector<uint16_t> host(static_cast<size_t>(std::min(total, chunk)));
  for (int64_t begin = 0; begin < total; begin += chunk) {
    const int64_t count = std::min(chunk, total - begin);
    for (int64_t i = 0; i < count; ++i) {
      host[static_cast<size_t>(i)] = f32_to_bf16(pattern_value(seed, static_cast<uint64_t>(begin + i), scale));
    }
    EXPECT_EQ(cudaMemcpy(static_cast<uint16_t*>(t.view.data) + begin, host.data(),
                         static_cast<size_t>(count) * sizeof(uint16_t), cudaMemcpyHostToDevice),
              cudaSuccess);
  }
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);  // the backend's stream does not wait for cudaMemcpy
  return t;
}

struct Case {
  const char* name;
  int64_t n, k;
};

std::string describe(const Case& c, int64_t m, bool out_f32, bool bias, int splits) {
  std::ostringstream out;
  out << c.name << " N " << c.n << " K " << c.k << " M " << m << (out_f32 ? " f32" : " bf16")
      << (bias ? " bias" : "") << " splits " << splits;
  return out.str();
}

cuda::SmallMGemmParams params(const Tensor& x, const Tensor& w, const Tensor* bias, const Tensor& out, bool out_f32,
                              int64_t m, const Case& c, int splits) {
  cuda::SmallMGemmParams p;
  p.x = static_cast<const uint16_t*>(x.view.data);
  p.w = static_cast<const uint16_t*>(w.view.data);
  p.bias = bias ? static_cast<const uint16_t*>(bias->view.data) : nullptr;
  p.out = out.view.data;
  p.out_f32 = out_f32;
  p.tokens = static_cast<int32_t>(m);
  p.n = c.n;
  p.k = c.k;
  p.splits = splits;
  return p;
}

// One case: the kernel's output against the host reference on sampled columns and cuBLASLt everywhere.
constexpr float kWeightScale = 0.05f;
uint64_t weight_seed(const Case& c) { return static_cast<uint64_t>(c.n * 31 + c.k); }
Tensor case_weights(CudaBackend& gpu, const Case& c) {
  return pattern_tensor(gpu, c.n, c.k, weight_seed(c), kWeightScale);
}

// w is case_weights(gpu, c), made once per shape (the lm_head's take seconds to fill).
void check_case(CudaBackend& gpu, const Case& c, const Tensor& w, int64_t m, bool out_f32, bool with_bias,
                int splits) {
  const std::string what = describe(c, m, out_f32, with_bias, splits);
  const uint64_t x_seed = 1000 + static_cast<uint64_t>(m), w_seed = weight_seed(c), b_seed = 7;
  const float x_scale = 1.0f, w_scale = kWeightScale, b_scale = 0.5f;
  Tensor x = pattern_tensor(gpu, m, c.k, x_seed, x_scale);
  Tensor bias = pattern_tensor(gpu, 1, c.n, b_seed, b_scale);
  const DType out_dtype = out_f32 ? DType::kF32 : DType::kBF16;
  Tensor out = poisoned(gpu, out_dtype, {m, c.n});
  Tensor ref_out = poisoned(gpu, out_dtype, {m, c.n});

  const cuda::SmallMGemmParams p = params(x, w, with_bias ? &bias : nullptr, out, out_f32, m, c, splits);
  ASSERT_TRUE(cuda::small_m_gemm_supports(p)) << what;
  ASSERT_EQ(cuda::launch_small_m_gemm(p, static_cast<cudaStream_t>(gpu.stream_handle())), cudaSuccess) << what;
  // cuBLASLt as the full reference where its output rows are 16-byte aligned (the odd shapes, all N <= 512,
  // are checked in full against the host instead).
  const bool with_cublas = c.n % 8 == 0;
  if (with_cublas) {
    gpu.set_force_cublaslt(true);
    TensorView bias_view;
    if (with_bias) bias_view = TensorView(bias.view.data, DType::kBF16, {c.n}, Device::kCuda);
    gpu.linear(x, w, bias_view, ref_out);
    gpu.set_force_cublaslt(false);
  }
  const std::vector<float> got = to_host(gpu, out);
  const std::vector<float> cublas = to_host(gpu, ref_out);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess) << what;

  // Columns for the host reference: the first and last tile's, plus random ones.
  std::vector<int64_t> columns;
  std::mt19937 rng(static_cast<uint32_t>(c.n + m));
  if (c.n <= 512) {
    for (int64_t n = 0; n < c.n; ++n) columns.push_back(n);
  } else {
    for (int64_t n = 0; n < 128; ++n) columns.push_back(n);
    for (int64_t n = (c.n - 1) / 128 * 128; n < c.n; ++n) columns.push_back(n);
    std::uniform_int_distribution<int64_t> pick(0, c.n - 1);
    for (int i = 0; i < 128; ++i) columns.push_back(pick(rng));
  }
  std::vector<float> xs(static_cast<size_t>(m * c.k)), wrow(static_cast<size_t>(c.k));
  for (int64_t i = 0; i < m * c.k; ++i) xs[static_cast<size_t>(i)] = pattern_value(x_seed, static_cast<uint64_t>(i), x_scale);
  std::vector<double> ref;  // [columns][m]
  double ref2 = 0.0;
  for (int64_t n : columns) {
    for (int64_t kk = 0; kk < c.k; ++kk) {
      wrow[static_cast<size_t>(kk)] = pattern_value(w_seed, static_cast<uint64_t>(n * c.k + kk), w_scale);
    }
    const double b = with_bias ? pattern_value(b_seed, static_cast<uint64_t>(n), b_scale) : 0.0;
    for (int64_t t = 0; t < m; ++t) {
      double sum = b;
      const float* xr = xs.data() + t * c.k;
      for (int64_t kk = 0; kk < c.k; ++kk) sum += static_cast<double>(xr[kk]) * wrow[static_cast<size_t>(kk)];
      ref.push_back(sum);
      ref2 += sum * sum;
    }
  }
  const double rms = std::sqrt(ref2 / static_cast<double>(ref.size()));
  // bf16 output: one rounding (2^-9 relative) plus f32 accumulation order; f32 output: order only.
  const double rel = out_f32 ? 1e-5 : 1.0 / 128.0, abs_tol = (out_f32 ? 1e-4 : 2e-3) * rms + 1e-6;
  int failures = 0;
  for (size_t ci = 0; ci < columns.size() && failures < 5; ++ci) {
    for (int64_t t = 0; t < m && failures < 5; ++t) {
      const double want = ref[ci * static_cast<size_t>(m) + static_cast<size_t>(t)];
      const float g = got[static_cast<size_t>(t * c.n + columns[ci])];
      if (!(std::abs(g - want) <= rel * std::abs(want) + abs_tol)) {
        ADD_FAILURE() << what << ": token " << t << " column " << columns[ci] << " got " << g << " want " << want;
        ++failures;
      }
    }
  }
  // cuBLASLt on every element (its own bf16 rounding may differ by one step from ours).
  const double rel_blas = out_f32 ? 1e-5 : 1.0 / 64.0;
  for (size_t i = 0; with_cublas && i < got.size() && failures < 10; ++i) {
    if (!(std::abs(got[i] - cublas[i]) <= rel_blas * std::abs(cublas[i]) + 2.0 * abs_tol)) {
      ADD_FAILURE() << what << ": element " << i << " (token " << i / static_cast<size_t>(c.n) << ", column "
                    << i % static_cast<size_t>(c.n) << ") got " << got[i] << " cuBLASLt " << cublas[i];
      ++failures;
    }
  }
}

const std::vector<Case>& llama_shapes() {
  static const std::vector<Case> shapes = {{"qkv_proj", 6144, 4096},
                                           {"o_proj", 4096, 4096},
                                           {"gate_up", 28672, 4096},
                                           {"down", 4096, 14336},
                                           {"lm_head", 128256, 4096}};
  return shapes;
}

TEST(CudaSmallMGemm, MatchesReferencesOnLlamaShapes) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(gpu);
  for (const Case& c : llama_shapes()) {
    const Tensor w = case_weights(gpu, c);
    for (int64_t m : {2, 3, 8, 17, 64, 128}) {
      check_case(gpu, c, w, m, /*out_f32=*/false, /*with_bias=*/false, /*splits=*/0);
      if (HasFailure()) return;
    }
    // f32 output (the lm_head's logits) and a bias (Qwen's fused q|k|v has one).
    check_case(gpu, c, w, 8, /*out_f32=*/true, /*with_bias=*/false, 0);
    check_case(gpu, c, w, 17, /*out_f32=*/false, /*with_bias=*/true, 0);
    // Every cluster size on a shape whose default is not that.
    if (c.n == 4096) {
      for (int splits : {1, 2, 4}) check_case(gpu, c, w, 64, false, false, splits);
    }
  }
}

TEST(CudaSmallMGemm, MatchesReferencesOnOddShapes) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(gpu);
  const std::vector<Case> odd = {{"tiny", 1, 8},          {"one_tile_part", 100, 72}, {"tail_n", 200, 136},
                                 {"tail_k", 300, 1000},   {"qwen_kv", 256, 2048},     {"few_k_tiles", 129, 24},
                                 {"narrow_long", 64, 4104}};
  for (const Case& c : odd) {
    const Tensor w = case_weights(gpu, c);
    for (int64_t m : {1, 2, 3, 8, 17, 64, 128}) {
      for (int splits : {0, 1, 2, 4, 8}) {
        check_case(gpu, c, w, m, /*out_f32=*/(m % 2) == 1, /*with_bias=*/splits % 4 == 0, splits);
        if (HasFailure()) return;
      }
    }
  }
}

// The backend routes 2..128 tokens to the kernel when asked (RADIXLM_CUDA_SMALL_M_GEMM=1 in serving).
TEST(CudaSmallMGemm, BackendRoutesSmallBatchesWhenEnabled) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(gpu);
  const Case c{"routed", 1000, 512};
  const int64_t m = 5;
  Tensor x = pattern_tensor(gpu, m, c.k, 1, 1.0f);
  Tensor w = pattern_tensor(gpu, c.n, c.k, 2, 0.05f);
  Tensor out = poisoned(gpu, DType::kBF16, {m, c.n});
  Tensor direct = poisoned(gpu, DType::kBF16, {m, c.n});
  gpu.set_small_m_gemm(true);
  gpu.linear(x, w, TensorView(), out);
  gpu.set_small_m_gemm(false);
  const cuda::SmallMGemmParams p = params(x, w, nullptr, direct, false, m, c, 0);
  ASSERT_EQ(cuda::launch_small_m_gemm(p, static_cast<cudaStream_t>(gpu.stream_handle())), cudaSuccess);
  const std::vector<float> routed = to_host(gpu, out), want = to_host(gpu, direct);
  for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(routed[i], want[i]) << "element " << i;  // same kernel, same bits
}

// Weight bandwidth per (shape, M), the kernel against cuBLASLt. Enough weight copies rotate that the L2
// (50 MB) cannot hold them. Prints lines only; the bench is `radixlm bench linear`.
TEST(CudaSmallMGemm, PrintsBandwidth) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(gpu);
  cudaStream_t stream = static_cast<cudaStream_t>(gpu.stream_handle());
  for (const Case& c : llama_shapes()) {
    const int64_t bytes = c.n * c.k * 2;
    const int copies = static_cast<int>(std::max<int64_t>(2, (int64_t{400} << 20) / bytes));
    std::vector<Tensor> weights;
    for (int i = 0; i < copies; ++i) weights.push_back(gpu.alloc(DType::kBF16, {c.n, c.k}));
    for (int64_t m : {2, 8, 16, 32, 64, 128}) {
      Tensor x = pattern_tensor(gpu, m, c.k, 3, 1.0f);
      Tensor out = gpu.alloc(DType::kBF16, {m, c.n});
      double tb_s[2] = {0.0, 0.0};
      for (int variant = 0; variant < 2; ++variant) {
        auto run_all = [&] {
          for (const Tensor& w : weights) {
            if (variant == 0) {
              ASSERT_EQ(cuda::launch_small_m_gemm(params(x, w, nullptr, out, false, m, c, 0), stream), cudaSuccess);
            } else {
              gpu.set_force_cublaslt(true);
              gpu.linear(x, w, TensorView(), out);
              gpu.set_force_cublaslt(false);
            }
          }
        };
        run_all();
        gpu.synchronize();
        const int rounds = std::max(3, static_cast<int>((int64_t{4} << 30) / (bytes * copies)));
        const auto start = std::chrono::steady_clock::now();
        for (int r = 0; r < rounds; ++r) run_all();
        gpu.synchronize();
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        tb_s[variant] = static_cast<double>(rounds) * copies * static_cast<double>(bytes) / seconds / 1e12;
      }
      std::printf("smallm %-8s N %6lld K %5lld M %3lld: %5.2f TB/s (cublaslt %5.2f)\n", c.name,
                  static_cast<long long>(c.n), static_cast<long long>(c.k), static_cast<long long>(m), tb_s[0],
                  tb_s[1]);
    }
  }
  std::fflush(stdout);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
}

}  // namespace
}  // namespace radixlm
