// Each CPU op against a naive loop written here from the op's definition (double accumulation), and paged
// attention against dense causal softmax attention over the same K/V kept in plain unpaged arrays.

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/cpu_kernels.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace radixlm {
namespace {

std::vector<float> random_values(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> out(n);
  for (float& v : out) v = dist(rng);
  return out;
}

// A host tensor holding `values` stored as `dtype`; returns the values as actually stored (rounded).
Tensor make_tensor(const std::vector<float>& values, DType dtype, Shape shape, std::vector<float>* stored = nullptr) {
  Tensor t = alloc_host_tensor(dtype, shape);
  convert_from_f32(values.data(), dtype, t.view.data, values.size());
  if (stored != nullptr) {
    stored->resize(values.size());
    convert_to_f32(dtype, t.view.data, stored->data(), values.size());
  }
  return t;
}

void expect_close(const float* got, const std::vector<double>& want, double tolerance) {
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tolerance * (1.0 + std::abs(want[i]))) << "element " << i;
  }
}

class CpuBackendTest : public testing::TestWithParam<int> {};

// linear, and linear_add (the residual += x @ w^T of the output projections) on top of a random residual.
TEST_P(CpuBackendTest, LinearAndLinearAddMatchNaiveLoopForEachWeightDtype) {
  CpuBackend backend(GetParam());
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (int64_t tokens : {1, 3, 17}) {
      const int64_t in = 37, out_features = 45;  // odd sizes exercise the tails
      std::vector<float> x = random_values(tokens * in, 1), w_stored, b_stored;
      Tensor weight = make_tensor(random_values(out_features * in, 2), dtype, {out_features, in}, &w_stored);
      Tensor bias = make_tensor(random_values(out_features, 3), dtype, {out_features}, &b_stored);
      const std::vector<float> residual = random_values(tokens * out_features, 4);
      Tensor xt = make_tensor(x, DType::kF32, {tokens, in});
      for (bool add : {false, true}) {
        for (bool with_bias : {false, true}) {
          const TensorView b = with_bias ? bias.view : TensorView();
          Tensor out = make_tensor(residual, DType::kF32, {tokens, out_features});
          if (add) {
            backend.linear_add(xt, weight, b, out);
          } else {
            backend.linear(xt, weight, b, out);
          }
          std::vector<double> want(static_cast<size_t>(tokens * out_features));
          for (int64_t t = 0; t < tokens; ++t) {
            for (int64_t o = 0; o < out_features; ++o) {
              double sum = (with_bias ? b_stored[o] : 0.0) + (add ? residual[t * out_features + o] : 0.0);
              for (int64_t i = 0; i < in; ++i) sum += static_cast<double>(x[t * in + i]) * w_stored[o * in + i];
              want[t * out_features + o] = sum;
            }
          }
          expect_close(out.as<float>(), want, 1e-5);
        }
      }
    }
  }
}

TEST_P(CpuBackendTest, NormsAndActivationMatchTheirDefinitions) {
  CpuBackend backend(GetParam());
  const int64_t rows = 5, width = 24, head_dim = 8;
  const float eps = 1e-5f;
  std::vector<float> x = random_values(rows * width, 4);
  std::vector<float> w_stored, hw_stored;
  Tensor weight = make_tensor(random_values(width, 6), DType::kBF16, {width}, &w_stored);
  Tensor head_weight = make_tensor(random_values(head_dim, 7), DType::kBF16, {head_dim}, &hw_stored);
  auto rms = [&](const float* row, const std::vector<float>& w, int64_t n, double* out) {
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(row[i]) * row[i];
    const double inv = 1.0 / std::sqrt(ss / n + eps);
    for (int64_t i = 0; i < n; ++i) out[i] = w[i] * row[i] * inv;
  };

  Tensor xt = make_tensor(x, DType::kF32, {rows, width});
  Tensor out = backend.alloc(DType::kF32, {rows, width});
  backend.rms_norm(xt, weight, eps, out);
  std::vector<double> want(x.size());
  for (int64_t r = 0; r < rows; ++r) rms(&x[r * width], w_stored, width, &want[r * width]);
  expect_close(out.as<float>(), want, 1e-6);

  Tensor ht = make_tensor(x, DType::kF32, {rows, width});
  backend.head_rms_norm(ht, head_weight, static_cast<int32_t>(head_dim), eps);
  for (int64_t h = 0; h < rows * width / head_dim; ++h) rms(&x[h * head_dim], hw_stored, head_dim, &want[h * head_dim]);
  expect_close(ht.as<float>(), want, 1e-6);

  Tensor gate_up = make_tensor(x, DType::kF32, {rows, width});
  Tensor act = backend.alloc(DType::kF32, {rows, width / 2});
  backend.silu_and_mul(gate_up, act);
  std::vector<double> act_want(x.size() / 2);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < width / 2; ++i) {
      const double g = x[r * width + i], u = x[r * width + width / 2 + i];
      act_want[r * width / 2 + i] = g / (1.0 + std::exp(-g)) * u;
    }
  }
  expect_close(act.as<float>(), act_want, 1e-6);
}

TEST_P(CpuBackendTest, EmbeddingAndGatherCopyRows) {
  CpuBackend backend(GetParam());
  std::vector<float> stored;
  Tensor table = make_tensor(random_values(10 * 6, 8), DType::kBF16, {10, 6}, &stored);
  ForwardBatch batch;
  batch.token_ids = {7, 0, 9};
  batch.positions = {0, 1, 2};
  batch.kv_slots = {0, 1, 2};
  batch.query_start = {0, 3};
  batch.kv_length = {3};
  batch.page_table_start = {0, 3};
  batch.page_table = {0, 1, 2};
  batch.logit_rows = {2, 0};
  backend.begin_step(batch);
  Tensor out = backend.alloc(DType::kF32, {3, 6});
  backend.embedding(table, out);
  for (int t = 0; t < 3; ++t) {
    for (int i = 0; i < 6; ++i) EXPECT_EQ(out.as<float>()[t * 6 + i], stored[batch.token_ids[t] * 6 + i]);
  }
  Tensor rows = backend.alloc(DType::kF32, {2, 6});
  backend.gather_logit_rows(out, rows);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(rows.as<float>()[i], out.as<float>()[2 * 6 + i]);
    EXPECT_EQ(rows.as<float>()[6 + i], out.as<float>()[i]);
  }
}

// Two sequences over two steps: a prefill (A: 5 tokens, B: 6 tokens), then A adds 3 tokens (a chunk) while
// B decodes 1. Pages are handed out shuffled so the page table really matters. The reference keeps each
// sequence's rotated K and V in dense arrays and runs plain causal softmax attention.
struct PagedCase {
  int32_t page_size;
  int32_t threads;
};

class PagedAttentionTest : public testing::TestWithParam<PagedCase> {};

TEST_P(PagedAttentionTest, MatchesDenseCausalAttention) {
  const auto [page_size, threads] = GetParam();
  CpuBackend backend(threads);
  const int32_t q_heads = 4, kv_heads = 2, head_dim = 8;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  RopeParams rope_params;
  rope_params.theta = 10000.0;
  const RopeTable rope = make_rope_table(rope_params, head_dim, 4096);

  const std::vector<int32_t> step1_lengths = {5, 6}, step2_lengths = {3, 1};
  const int32_t total[2] = {8, 7};
  const int32_t pages_needed = (total[0] + page_size - 1) / page_size + (total[1] + page_size - 1) / page_size;
  const int32_t num_pages = pages_needed + 3;
  std::vector<int32_t> free_pages(static_cast<size_t>(num_pages));
  std::iota(free_pages.begin(), free_pages.end(), 0);
  std::shuffle(free_pages.begin(), free_pages.end(), std::mt19937(42));
  std::vector<int32_t> seq_pages[2];
  for (int s = 0; s < 2; ++s) {
    for (int32_t i = 0; i < (total[s] + page_size - 1) / page_size; ++i) {
      seq_pages[s].push_back(free_pages.back());
      free_pages.pop_back();
    }
  }
  LayerKvCache cache{backend.alloc(DType::kF32, {int64_t{num_pages} * page_size, kv_heads, head_dim}),
                     backend.alloc(DType::kF32, {int64_t{num_pages} * page_size, kv_heads, head_dim})};
  // Dense reference state: rotated K and raw V per sequence and position.
  std::vector<std::vector<double>> dense_k(2), dense_v(2);

  auto rotate = [&](std::vector<double>& vec, int64_t offset, int32_t position) {
    const int32_t half = head_dim / 2;
    for (int32_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(static_cast<float>(position) * rope.inv_freq[i]);
      const double x1 = vec[offset + i], x2 = vec[offset + i + half];
      vec[offset + i] = x1 * std::cos(angle) - x2 * std::sin(angle);
      vec[offset + i + half] = x2 * std::cos(angle) + x1 * std::sin(angle);
    }
  };

  int32_t cached[2] = {0, 0};
  uint32_t seed = 100;
  for (const auto& lengths : {step1_lengths, step2_lengths}) {
    ForwardBatch batch;
    batch.page_size = page_size;
    batch.query_start = {0};
    batch.page_table_start = {0};
    for (int s = 0; s < 2; ++s) {
      for (int32_t i = 0; i < lengths[s]; ++i) {
        const int32_t position = cached[s] + i;
        batch.token_ids.push_back(0);
        batch.positions.push_back(position);
        batch.kv_slots.push_back(int64_t{seq_pages[s][position / page_size]} * page_size + position % page_size);
      }
      batch.query_start.push_back(batch.query_start.back() + lengths[s]);
      batch.kv_length.push_back(cached[s] + lengths[s]);
      batch.page_table.insert(batch.page_table.end(), seq_pages[s].begin(), seq_pages[s].end());
      batch.page_table_start.push_back(static_cast<int32_t>(batch.page_table.size()));
    }
    const int64_t tokens = batch.num_tokens();
    const std::vector<float> q = random_values(tokens * q_heads * head_dim, seed++);
    const std::vector<float> k = random_values(tokens * kv_heads * head_dim, seed++);
    const std::vector<float> v = random_values(tokens * kv_heads * head_dim, seed++);
    Tensor qt = make_tensor(q, DType::kF32, {tokens, q_heads * head_dim});
    Tensor kt = make_tensor(k, DType::kF32, {tokens, kv_heads * head_dim});
    Tensor vt = make_tensor(v, DType::kF32, {tokens, kv_heads * head_dim});
    backend.begin_step(batch);
    backend.rope_and_store_kv(qt, kt, vt, rope, head_dim, cache);
    Tensor out = backend.alloc(DType::kF32, {tokens, q_heads * head_dim});
    backend.attention(qt, cache, q_heads, kv_heads, head_dim, scale, out);

    std::vector<double> want(static_cast<size_t>(tokens * q_heads * head_dim));
    for (int s = 0; s < 2; ++s) {
      for (int32_t t = batch.query_start[s]; t < batch.query_start[s + 1]; ++t) {
        std::vector<double> kt_row(k.begin() + t * kv_heads * head_dim, k.begin() + (t + 1) * kv_heads * head_dim);
        for (int32_t h = 0; h < kv_heads; ++h) rotate(kt_row, h * head_dim, batch.positions[t]);
        dense_k[s].insert(dense_k[s].end(), kt_row.begin(), kt_row.end());
        dense_v[s].insert(dense_v[s].end(), v.begin() + t * kv_heads * head_dim, v.begin() + (t + 1) * kv_heads * head_dim);
      }
      for (int32_t t = batch.query_start[s]; t < batch.query_start[s + 1]; ++t) {
        const int32_t position = batch.positions[t];
        for (int32_t h = 0; h < q_heads; ++h) {
          std::vector<double> qh(q.begin() + (t * q_heads + h) * head_dim, q.begin() + (t * q_heads + h + 1) * head_dim);
          rotate(qh, 0, position);
          const int32_t g = h / (q_heads / kv_heads);
          std::vector<double> scores;
          for (int32_t j = 0; j <= position; ++j) {
            double dot = 0;
            for (int32_t d = 0; d < head_dim; ++d) dot += qh[d] * dense_k[s][(j * kv_heads + g) * head_dim + d];
            scores.push_back(dot * scale);
          }
          const double max_score = *std::max_element(scores.begin(), scores.end());
          double denominator = 0;
          for (double& sc : scores) denominator += (sc = std::exp(sc - max_score));
          for (int32_t d = 0; d < head_dim; ++d) {
            double value = 0;
            for (int32_t j = 0; j <= position; ++j) value += scores[j] * dense_v[s][(j * kv_heads + g) * head_dim + d];
            want[(t * q_heads + h) * head_dim + d] = value / denominator;
          }
        }
      }
      cached[s] += lengths[s];
    }
    expect_close(out.as<float>(), want, 1e-5);
    // The rotated q is written back in place too.
    for (int32_t t = 0; t < tokens; ++t) {
      std::vector<double> qh(q.begin() + t * q_heads * head_dim, q.begin() + t * q_heads * head_dim + head_dim);
      rotate(qh, 0, batch.positions[t]);
      expect_close(qt.as<float>() + t * q_heads * head_dim, qh, 1e-5);
    }
  }
}

TEST(CpuBackend, RopeAttentionScalingMultipliesCosAndSin) {
  CpuBackend backend(1);
  RopeTable rope;
  rope.rotary_dim = 2;
  rope.inv_freq = {0.5f};
  rope.attention_scaling = 2.0f;
  ForwardBatch batch;
  batch.token_ids = {0};
  batch.positions = {3};
  batch.kv_slots = {3};
  batch.query_start = {0, 1};
  batch.kv_length = {4};
  batch.page_table_start = {0, 1};
  batch.page_table = {0};
  batch.page_size = 4;
  backend.begin_step(batch);
  Tensor q = make_tensor({1.0f, 0.0f, 7.0f}, DType::kF32, {1, 3});  // head_dim 3: element 2 passes through
  Tensor k = make_tensor({0.0f, 1.0f, 5.0f}, DType::kF32, {1, 3});
  Tensor v = make_tensor({1.0f, 2.0f, 3.0f}, DType::kF32, {1, 3});
  LayerKvCache cache{backend.alloc(DType::kF32, {4, 1, 3}), backend.alloc(DType::kF32, {4, 1, 3})};
  backend.rope_and_store_kv(q, k, v, rope, 3, cache);
  // angle 1.5: q = 2 * (cos, sin, -), k = 2 * (-sin, cos, -)
  EXPECT_NEAR(q.as<float>()[0], 2 * std::cos(1.5), 1e-6);
  EXPECT_NEAR(q.as<float>()[1], 2 * std::sin(1.5), 1e-6);
  EXPECT_EQ(q.as<float>()[2], 7.0f);
  EXPECT_NEAR(cache.k.as<float>()[9], -2 * std::sin(1.5), 1e-6);
  EXPECT_NEAR(cache.k.as<float>()[10], 2 * std::cos(1.5), 1e-6);
  EXPECT_EQ(cache.k.as<float>()[11], 5.0f);
  EXPECT_EQ(cache.v.as<float>()[9], 1.0f);
}

// Decode streams bf16 rows four at a time while prefill converts tiles to f32 first; batching a prompt must
// not change its numbers, so every path has to give bitwise the same dot products.
TEST(CpuDot, RowBlocksAndSingleDotsAgreeBitwise) {
  for (int64_t n : {1, 15, 16, 17, 33, 64, 100, 4096}) {
    const int64_t rows = 7;
    const std::vector<float> a = random_values(n, 11);
    std::vector<float> b_f32;
    Tensor b = make_tensor(random_values(rows * n, 12), DType::kBF16, {rows, n}, &b_f32);
    std::vector<float> from_bf16(rows), from_f32(rows), portable(rows);
    cpu::dot_rows_bf16(a.data(), b.as<uint16_t>(), rows, n, from_bf16.data());
    cpu::dot_rows_bf16_portable(a.data(), b.as<uint16_t>(), rows, n, portable.data());
    cpu::dot_rows_f32(a.data(), b_f32.data(), rows, n, from_f32.data());
    for (int64_t r = 0; r < rows; ++r) {
      const float single = cpu::dot_bf16(a.data(), b.as<uint16_t>() + r * n, n);
      EXPECT_EQ(from_bf16[r], single) << n << " row " << r;
      EXPECT_EQ(from_f32[r], single) << n << " row " << r;
      EXPECT_EQ(cpu::dot_f32(a.data(), b_f32.data() + r * n, n), single);
      EXPECT_EQ(portable[r], single) << "vector and portable paths differ at n " << n;
      EXPECT_EQ(cpu::dot_bf16_portable(a.data(), b.as<uint16_t>() + r * n, n), single);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, CpuBackendTest, testing::Values(1, 3));
INSTANTIATE_TEST_SUITE_P(PagesAndThreads, PagedAttentionTest,
                         testing::Values(PagedCase{1, 1}, PagedCase{3, 2}, PagedCase{4, 3}, PagedCase{16, 1}));

}  // namespace
}  // namespace radixlm
