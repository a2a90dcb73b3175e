#pragma once
// Helpers shared by the CUDA tests: get a backend or skip, random bf16-exact data, ragged batches over shuffled
// pages, poisoned outputs, and the error measures every comparison uses (relative L2 error and max abs error
// against the CPU reference).

#include <cmath>
#include <cstdlib>
#include <algorithm>
#include <filesystem>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include "backends/cuda/cuda_backend.h"
#include "ops/forward_batch.h"

namespace radixlm::cuda_test {

// The CUDA backend, or a skip (not a failure) on machines without a GPU, such as CI.
#define RADIXLM_CUDA_BACKEND_OR_SKIP(var)                                                  \
  auto var##_made = ::radixlm::CudaBackend::create();                                       \
  if (!var##_made.ok()) GTEST_SKIP() << var##_made.status().to_string();                    \
  ::radixlm::CudaBackend& var = **var##_made

inline std::filesystem::path fixtures_dir() {
  if (const char* env = std::getenv("RADIXLM_FIXTURES_DIR"); env && *env) return env;
  return RADIXLM_FIXTURES_DIR;
}

// Values drawn uniformly from [-scale, scale] and rounded to bf16, so the GPU and the CPU see the same inputs.
inline std::vector<float> random_bf16_values(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = bf16_to_f32(f32_to_bf16(dist(rng)));
  return v;
}

// A batch of sequences, each with `cached` tokens already in the cache and `fresh` new ones, over pages
// handed out in shuffled order (so a sequence's pages are not contiguous in the cache); token ids drawn from
// [0, vocab).
inline ForwardBatch make_batch(const std::vector<std::pair<int32_t, int32_t>>& seqs, int32_t page_size,
                               std::mt19937& rng, int32_t* num_pages_out, int32_t vocab = 1000) {
  ForwardBatch b;
  b.page_size = page_size;
  b.query_start = {0};
  b.page_table_start = {0};
  int32_t num_pages = 0;
  for (auto [cached, fresh] : seqs) num_pages += (cached + fresh + page_size - 1) / page_size;
  std::vector<int32_t> ids(static_cast<size_t>(num_pages));
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  std::uniform_int_distribution<int32_t> token(0, vocab - 1);
  size_t next = 0;
  for (auto [cached, fresh] : seqs) {
    const int32_t total = cached + fresh;
    const int32_t pages = (total + page_size - 1) / page_size;
    std::vector<int32_t> mine(ids.begin() + static_cast<int64_t>(next), ids.begin() + static_cast<int64_t>(next + pages));
    next += static_cast<size_t>(pages);
    for (int32_t pos = cached; pos < total; ++pos) {
      b.token_ids.push_back(token(rng));
      b.positions.push_back(pos);
      b.kv_slots.push_back(int64_t{mine[static_cast<size_t>(pos / page_size)]} * page_size + pos % page_size);
    }
    b.logit_rows.push_back(b.num_tokens() - 1);
    b.query_start.push_back(b.num_tokens());
    b.kv_length.push_back(total);
    b.page_table.insert(b.page_table.end(), mine.begin(), mine.end());
    b.page_table_start.push_back(static_cast<int32_t>(b.page_table.size()));
  }
  *num_pages_out = num_pages;
  return b;
}

inline Tensor host_f32(const std::vector<float>& values, const Shape& shape) {
  Tensor t = alloc_host_tensor(DType::kF32, shape);
  std::copy(values.begin(), values.end(), t.as<float>());
  return t;
}

// A device tensor of `dtype` whose every byte is 0xff: NaN in bf16 and f32, so an element a kernel forgets
// to write shows up.
inline Tensor poisoned(CudaBackend& backend, DType dtype, const Shape& shape) {
  Tensor t = backend.alloc(dtype, shape);
  backend.synchronize();
  EXPECT_EQ(cudaMemset(t.view.data, 0xff, t.view.nbytes()), cudaSuccess);
  // cudaMemset runs on the legacy stream and may return early; the backend's stream does not wait for it.
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  return t;
}

inline std::vector<float> to_host(CudaBackend& backend, const TensorView& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  backend.copy_to_host_f32(t, out.data());
  return out;
}

struct ErrorStats {
  double relative = 0.0;  // ||got - ref|| / ||ref||
  double max_abs = 0.0;
  double max_ref = 0.0;
  bool finite = true;
};

inline ErrorStats compare(const std::vector<float>& got, const std::vector<float>& ref) {
  ErrorStats s;
  double diff2 = 0.0, ref2 = 0.0;
  for (size_t i = 0; i < ref.size() && i < got.size(); ++i) {
    if (!std::isfinite(got[i])) s.finite = false;
    const double d = static_cast<double>(got[i]) - ref[i];
    diff2 += d * d;
    ref2 += static_cast<double>(ref[i]) * ref[i];
    s.max_abs = std::max(s.max_abs, std::abs(d));
    s.max_ref = std::max(s.max_ref, std::abs(static_cast<double>(ref[i])));
  }
  s.relative = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
  return s;
}

// bf16 keeps 8 significant bits: one rounding of the output is a relative error up to 2^-9 per element,
// about 2^-10 on average in L2; a few roundings inside a fused op stay well under 1e-2.
inline void expect_close(const std::vector<float>& got, const std::vector<float>& ref, double rel_tol,
                         double abs_tol_of_max, const std::string& what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  const ErrorStats s = compare(got, ref);
  EXPECT_TRUE(s.finite) << what << ": non-finite output (an element was not written?)";
  EXPECT_LE(s.relative, rel_tol) << what;
  EXPECT_LE(s.max_abs, abs_tol_of_max * std::max(s.max_ref, 1e-6)) << what << " (max |ref| " << s.max_ref << ")";
}

}  // namespace radixlm::cuda_test
