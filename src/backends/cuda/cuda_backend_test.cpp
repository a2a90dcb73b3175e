// Every CUDA op against the CPU backend (the exact f32 reference) on fresh random inputs, over a sweep of
// shapes: batch sizes 1-256, ragged sequence lengths, page sizes 1/16/64, head dims 16-128, GQA 1/4/8.
// Inputs are bf16-exact so both backends see the same numbers; outputs are poisoned (NaN) first. Tolerances
// are bf16's: relative L2 error <= 1e-2 and max |error| <= 2-3% of max |reference| (values ~1).

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backends/cpu/cpu_backend.h"
#include "backends/cuda/cuda_test_util.h"

namespace radixlm {
namespace {

using cuda_test::compare;
using cuda_test::expect_close;
using cuda_test::host_f32;
using cuda_test::poisoned;
using cuda_test::random_bf16_values;
using cuda_test::make_batch;
using cuda_test::to_host;

constexpr double kRel = 1e-2;
constexpr double kAbs = 3e-2;

// RoPE over `rotary` dims with HF's default frequencies for `base`; the interleaved form also scaled
// (attention_scaling 1.1), so both sides of the scaling are exercised.
RopeTable make_rope(int32_t rotary, bool interleaved, double base) {
  RopeTable rope;
  rope.rotary_dim = rotary;
  rope.interleaved = interleaved;
  rope.attention_scaling = interleaved ? 1.1f : 1.0f;
  for (int32_t i = 0; i < rotary / 2; ++i) {
    rope.inv_freq.push_back(static_cast<float>(std::pow(base, -2.0 * i / rotary)));
  }
  return rope;
}

TEST(CudaBackendTest, NoGpuIsAClearErrorNotACrash) {
  auto made = CudaBackend::create();
  if (made.ok()) {
    EXPECT_GT((*made)->info().num_sms, 0);
    EXPECT_EQ((*made)->activation_dtype(), DType::kBF16);
  } else {
    EXPECT_NE(made.status().to_string().find("CUDA"), std::string::npos) << made.status().to_string();
  }
}

TEST(CudaBackendTest, UploadConvertsToBf16AndCopiesBack) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(gpu);
  std::mt19937 rng(1);
  std::vector<float> values = random_bf16_values(1000, rng, 3.0f);
  Tensor dev = gpu.upload(host_f32(values, {10, 100}));
  EXPECT_EQ(dev.dtype(), DType::kBF16);
  EXPECT_EQ(to_host(gpu, dev), values);  // bf16-exact values survive exactly
}

// linear, and linear_add (residual += x @ w^T: the add in the GEMV's, the decode GEMM's or cuBLASLt's
// epilogue) on a random bf16 residual.
TEST(CudaBackendTest, LinearAndLinearAddMatchCpuAcrossShapesAndPaths) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(gpu);
  CpuBackend cpu(2);
  std::mt19937 rng(2);
  struct Case {
    int64_t n, k;
  };
  // On Hopper, 2-16 tokens (past the GEMV's narrow shapes) take the decode GEMM: 3000 x 1024 splits K in 2, 700 x
  // 4200 in 8 (K not a multiple of its 64-column steps), 9 tokens fill part of a 16-token tile. K = 4200: at one
  // token (8 warps per row, picked by N) a lane's share of a row ends part-way; 9000 x 72: thousands of blocks of
  // short rows; 1101 x 4096: the one-token GEMV's exact shares (4 warps per row, every lane 4 chunks; 1101 rows
  // leave the last block half past N); 301 x 14336: 7 chunks each at 8 warps per row (down_proj's K), each warp
  // two rows, the last one's second past N. The one-token splits that take several load rounds (1 or 2 warps
  // per row forced) are checked by LinearSiluAndMulMatchesCpuAndTheOpsApart, through its "apart" linear too.
  for (Case c : {Case{96, 64}, Case{256, 128}, Case{1000, 512}, Case{3000, 1024}, Case{64, 40}, Case{700, 4200},
                 Case{9000, 72}, Case{1101, 4096}, Case{301, 14336}}) {
    for (int64_t tokens : {1, 2, 5, 8, 9, 16, 33, 256}) {
      if (c.k >= 4096 && tokens > 2) continue;  // the larger token counts are the other cases' (test time)
      for (bool with_bias : {false, true}) {
        for (DType out_dtype : {DType::kBF16, DType::kF32}) {
          for (bool add : {false, true}) {
            if (add && out_dtype == DType::kF32) continue;  // the residual stream is bf16
            for (bool force_lt : {false, true}) {
              const std::string what = std::string(add ? "linear_add" : "linear") + " n=" + std::to_string(c.n) +
                                       " k=" + std::to_string(c.k) + " T=" + std::to_string(tokens) +
                                       (with_bias ? " bias" : "") + (out_dtype == DType::kF32 ? " f32" : " bf16") +
                                       (force_lt ? " cublaslt" : "");
              const float w_scale = 1.0f / std::sqrt(static_cast<float>(c.k));
              Tensor x_h = host_f32(random_bf16_values(static_cast<size_t>(tokens * c.k), rng), {tokens, c.k});
              Tensor w_h = host_f32(random_bf16_values(static_cast<size_t>(c.n * c.k), rng, w_scale), {c.n, c.k});
              Tensor b_h = host_f32(random_bf16_values(static_cast<size_t>(c.n), rng), {c.n});
              const std::vector<float> residual = random_bf16_values(static_cast<size_t>(tokens * c.n), rng, 4.0f);
              Tensor ref = host_f32(residual, {tokens, c.n});
              if (add) {
                cpu.linear_add(x_h, w_h, with_bias ? b_h.view : TensorView(), ref);
              } else {
                cpu.linear(x_h, w_h, with_bias ? b_h.view : TensorView(), ref);
              }
              gpu.set_force_cublaslt(force_lt);
              Tensor x = gpu.upload(x_h), w = gpu.upload(w_h), b = gpu.upload(b_h);
              const auto run = [&] {
                Tensor out = add ? gpu.upload(host_f32(residual, {tokens, c.n})) : poisoned(gpu, out_dtype, {tokens, c.n});
                if (add) {
                  gpu.linear_add(x, w, with_bias ? b.view : TensorView(), out);
                } else {
                  gpu.linear(x, w, with_bias ? b.view : TensorView(), out);
                }
                return to_host(gpu, out);
              };
              const std::vector<float> got = run();
              expect_close(got, std::vector<float>(ref.as<float>(), ref.as<float>() + ref.view.numel()), kRel, kAbs,
                           what);
              // The first call of a decode shape timed cuBLASLt's candidates (on a scratch output, leaving the
              // residual alone); later calls run the one kept, and give the same bits (only deterministic
              // reductions are candidates).
              EXPECT_EQ(run(), got) << what << ": a second call differs";
            }
          }
        }
      }
    }
  }
  gpu.set_force_cublaslt(false);
}

// A sublayer's output projection added into the residual, then the next input norm. Past 16 tokens in a decode
// step the GPU may sum cuBLASLt's f32 partials over slices of K in the norm kernel: forced here (every shape
// takes it; its slice count is timed, so any may be met; K = 14336 is down_proj's), then as chosen by timing
// against the plain matmul; 5 tokens take the two ops. Both the residual and the norm's output are checked
// against the CPU backend.
TEST(CudaBackendTest, LinearAddRmsNormMatchesCpu) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(gpu);
  CpuBackend cpu(2);
  std::mt19937 rng(41);
  struct Case {
    int64_t n, k;
    int64_t tokens;
    bool with_bias;
    bool force;
  };
  std::vector<Case> cases;
  for (auto [n, k] : {std::pair<int64_t, int64_t>{256, 512}, {1000, 1024}, {4096, 4096}, {1024, 14336}}) {
    for (int64_t tokens : {5, 17, 24, 64, 256}) {
      if (k >= 4096 && tokens != 64) continue;  // test time
      for (bool with_bias : {false, true}) {
        for (bool force : {true, false}) cases.push_back({n, k, tokens, with_bias, force});
      }
    }
  }
  const auto host = [](const Tensor& t) { return std::vector<float>(t.as<float>(), t.as<float>() + t.view.numel()); };
  for (const Case& c : cases) {
    gpu.set_force_split_partials(c.force);
    const std::string what = "linear_add_rms_norm n=" + std::to_string(c.n) + " k=" + std::to_string(c.k) +
                             " T=" + std::to_string(c.tokens) + (c.with_bias ? " bias" : "") +
                             (c.force ? " forced" : "");
    const int64_t tokens = c.tokens;
    const float w_scale = 1.0f / std::sqrt(static_cast<float>(c.k));
    Tensor x_h = host_f32(random_bf16_values(static_cast<size_t>(tokens * c.k), rng), {tokens, c.k});
    Tensor w_h = host_f32(random_bf16_values(static_cast<size_t>(c.n * c.k), rng, w_scale), {c.n, c.k});
    Tensor b_h = host_f32(random_bf16_values(static_cast<size_t>(c.n), rng), {c.n});
    Tensor g_h = host_f32(random_bf16_values(static_cast<size_t>(c.n), rng), {c.n});
    const std::vector<float> residual = random_bf16_values(static_cast<size_t>(tokens * c.n), rng, 4.0f);
    Tensor ref_residual = host_f32(residual, {tokens, c.n});
    Tensor ref_out = cpu.alloc(DType::kF32, {tokens, c.n});
    cpu.linear_add_rms_norm(x_h, w_h, c.with_bias ? b_h.view : TensorView(), ref_residual, g_h, 1e-5f, ref_out);

    Tensor x = gpu.upload(x_h), w = gpu.upload(w_h), b = gpu.upload(b_h), g = gpu.upload(g_h);
    const auto run = [&] {
      Tensor r = gpu.upload(host_f32(residual, {tokens, c.n}));
      Tensor out = poisoned(gpu, DType::kBF16, {tokens, c.n});
      gpu.linear_add_rms_norm(x, w, c.with_bias ? b.view : TensorView(), r, g, 1e-5f, out);
      return std::pair{to_host(gpu, r), to_host(gpu, out)};
    };
    const int64_t partial_calls = gpu.split_partials_calls();
    const auto [got_residual, got_out] = run();
    // Forced, every decode shape past 16 tokens sums partials; 5 tokens never do.
    if (c.force && c.tokens > 16) {
      EXPECT_EQ(gpu.split_partials_calls(), partial_calls + 1) << what;
    }
    if (c.tokens <= 16) {
      EXPECT_EQ(gpu.split_partials_calls(), partial_calls) << what;
    }
    expect_close(got_residual, host(ref_residual), kRel, kAbs, what + " residual");
    expect_close(got_out, host(ref_out), kRel, kAbs, what + " out");
    // The first call timed the split counts; later calls run the one kept and give the same bits.
    EXPECT_EQ(run(), std::pair(got_residual, got_out)) << what << ": a second call differs";
  }
  gpu.set_force_split_partials(false);
}

// The MLP's gate/up matmul with silu_and_mul fused (the GEMV's paired-row epilogue at one token, matmul
// then activation otherwise): close to the CPU backend, and bit-identical to the two ops apart on the GPU
// (the fused epilogue rounds gate and up to bf16 before the same activation math).
TEST(CudaBackendTest, LinearSiluAndMulMatchesCpuAndTheOpsApart) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(gpu);
  CpuBackend cpu(2);
  std::mt19937 rng(31);
  struct Case {
    int64_t inter, k;
  };
  // K = 4096 at 4 warps per row (forced, or the default) and 1024 at 1: the one-token GEMV's exact shares.
  for (Case c : {Case{64, 64}, Case{1000, 512}, Case{3000, 1024}, Case{7, 40}, Case{600, 4200}, Case{300, 4096}}) {
    for (int64_t tokens : {1, 3, 20, 64}) {
      if (c.k == 4096 && tokens > 3) continue;  // test time
      for (bool with_bias : {false, true}) {
        for (int32_t warps_per_row : {0, 1, 2, 4, 8}) {
          if (tokens != 1 && warps_per_row != 0) continue;  // only the one-token GEMV has the knob
          const std::string what = "linear_silu_and_mul inter=" + std::to_string(c.inter) + " k=" +
                                   std::to_string(c.k) + " T=" + std::to_string(tokens) + (with_bias ? " bias" : "") +
                                   " warps/row " + std::to_string(warps_per_row);
          const float w_scale = 2.0f / std::sqrt(static_cast<float>(c.k));
          Tensor x_h = host_f32(random_bf16_values(static_cast<size_t>(tokens * c.k), rng), {tokens, c.k});
          Tensor w_h =
              host_f32(random_bf16_values(static_cast<size_t>(2 * c.inter * c.k), rng, w_scale), {2 * c.inter, c.k});
          Tensor b_h = host_f32(random_bf16_values(static_cast<size_t>(2 * c.inter), rng), {2 * c.inter});
          const TensorView bias_h = with_bias ? b_h.view : TensorView();
          Tensor ref = cpu.alloc(DType::kF32, {tokens, c.inter});
          cpu.linear_silu_and_mul(x_h, w_h, bias_h, ref);

          gpu.set_gemv_warps_per_row(warps_per_row);
          Tensor x = gpu.upload(x_h), w = gpu.upload(w_h), b = gpu.upload(b_h);
          const TensorView bias = with_bias ? b.view : TensorView();
          Tensor fused = poisoned(gpu, DType::kBF16, {tokens, c.inter});
          gpu.linear_silu_and_mul(x, w, bias, fused);
          Tensor gate_up = poisoned(gpu, DType::kBF16, {tokens, 2 * c.inter});
          Tensor apart = poisoned(gpu, DType::kBF16, {tokens, c.inter});
          // The fused GEMV holds a gate and an up row per block, so it runs at most 4 warps per row: the
          // matmul apart must split K the same way to give the same bits.
          gpu.set_gemv_warps_per_row(std::min(warps_per_row, 4));
          gpu.linear(x, w, bias, gate_up);
          gpu.silu_and_mul(gate_up, apart);
          const std::vector<float> got = to_host(gpu, fused);
          expect_close(got, std::vector<float>(ref.as<float>(), ref.as<float>() + ref.view.numel()), kRel, kAbs,
                       what);
          EXPECT_EQ(got, to_host(gpu, apart)) << what << ": fused and apart differ";
        }
      }
    }
  }
  gpu.set_gemv_warps_per_row(0);
}

TEST(CudaBackendTest, NormsSiluEmbeddingAndGatherMatchCpu) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(gpu);
  CpuBackend cpu(2);
  std::mt19937 rng(3);
  for (int64_t rows : {1, 7, 64, 256}) {
    for (int64_t width : {64, 100, 128, 200, 4096}) {
      const std::string what = " rows=" + std::to_string(rows) + " width=" + std::to_string(width);
      const size_t n = static_cast<size_t>(rows * width);
      std::vector<float> x = random_bf16_values(n, rng, 2.0f);
      std::vector<float> w = random_bf16_values(static_cast<size_t>(width), rng, 1.5f);
      // rms_norm
      Tensor x_c = host_f32(x, {rows, width}), w_c = host_f32(w, {width});
      Tensor ref = cpu.alloc(DType::kF32, {rows, width});
      cpu.rms_norm(x_c, w_c, 1e-5f, ref);
      Tensor x_g = gpu.upload(x_c), w_g = gpu.upload(w_c);
      Tensor out = poisoned(gpu, DType::kBF16, {rows, width});
      gpu.rms_norm(x_g, w_g, 1e-5f, out);
      expect_close(to_host(gpu, out), std::vector<float>(ref.as<float>(), ref.as<float>() + n), kRel, kAbs,
                   "rms_norm" + what);
      // silu_and_mul over [rows, width] -> [rows, width / 2]
      Tensor s_ref = cpu.alloc(DType::kF32, {rows, width / 2});
      cpu.silu_and_mul(x_c, s_ref);
      Tensor s_out = poisoned(gpu, DType::kBF16, {rows, width / 2});
      gpu.silu_and_mul(x_g, s_out);
      expect_close(to_host(gpu, s_out), std::vector<float>(s_ref.as<float>(), s_ref.as<float>() + n / 2), kRel, kAbs,
                   "silu_and_mul" + what);
    }
    for (int32_t head_dim : {16, 32, 48, 64, 128}) {
      const int64_t width = head_dim * 6;
      const size_t n = static_cast<size_t>(rows * width);
      std::vector<float> x = random_bf16_values(n, rng, 2.0f);
      std::vector<float> w = random_bf16_values(static_cast<size_t>(head_dim), rng, 1.5f);
      Tensor x_c = host_f32(x, {rows, width});
      cpu.head_rms_norm(x_c, host_f32(w, {head_dim}), head_dim, 1e-6f);
      Tensor x_g = gpu.upload(host_f32(x, {rows, width}));
      gpu.head_rms_norm(x_g, gpu.upload(host_f32(w, {head_dim})), head_dim, 1e-6f);
      expect_close(to_host(gpu, x_g), std::vector<float>(x_c.as<float>(), x_c.as<float>() + n), kRel, kAbs,
                   "head_rms_norm d=" + std::to_string(head_dim));
    }
  }
  // embedding and logit-row gather through a step
  for (int32_t seqs : {1, 5, 256}) {
    int32_t pages = 0;
    std::vector<std::pair<int32_t, int32_t>> shape;
    for (int32_t s = 0; s < seqs; ++s) shape.push_back({s % 3, 1 + (s * 7) % 5});
    const ForwardBatch batch = make_batch(shape, 16, rng, &pages, 500);
    const int64_t hidden = 96;
    std::vector<float> table = random_bf16_values(500 * hidden, rng);
    Tensor table_c = host_f32(table, {500, hidden});
    Tensor table_g = gpu.upload(table_c);
    cpu.begin_step(batch);
    gpu.begin_step(batch);
    const int64_t tokens = batch.num_tokens(), rows = static_cast<int64_t>(batch.logit_rows.size());
    Tensor e_ref = cpu.alloc(DType::kF32, {tokens, hidden});
    cpu.embedding(table_c, e_ref);
    Tensor e_out = poisoned(gpu, DType::kBF16, {tokens, hidden});
    gpu.embedding(table_g, e_out);
    const std::vector<float> e_want(e_ref.as<float>(), e_ref.as<float>() + e_ref.view.numel());
    EXPECT_EQ(to_host(gpu, e_out), e_want) << "embedding is an exact copy";
    Tensor g_ref = cpu.alloc(DType::kF32, {rows, hidden});
    cpu.gather_logit_rows(e_ref, g_ref);
    Tensor g_out = poisoned(gpu, DType::kBF16, {rows, hidden});
    gpu.gather_logit_rows(e_out, g_out);
    EXPECT_EQ(to_host(gpu, g_out), std::vector<float>(g_ref.as<float>(), g_ref.as<float>() + g_ref.view.numel()));
  }
}

TEST(CudaBackendTest, RopeAndKvStoreMatchCpuForEveryPairingAndPartialRotary) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(gpu);
  CpuBackend cpu(2);
  std::mt19937 rng(4);
  for (int32_t head_dim : {16, 48, 64, 128}) {
    for (bool interleaved : {false, true}) {
      for (int32_t rotary : {head_dim, head_dim / 2}) {
        const int32_t q_heads = 8, kv_heads = 2;
        int32_t pages = 0;
        const ForwardBatch batch = make_batch({{0, 37}, {900, 3}, {5, 1}, {4000, 1}}, 16, rng, &pages);
        const RopeTable rope = make_rope(rotary, interleaved, 10000.0);
        const int64_t tokens = batch.num_tokens(), slots = int64_t{pages} * 16;
        const int64_t qw = q_heads * head_dim, kw = kv_heads * head_dim;
        std::vector<float> q = random_bf16_values(static_cast<size_t>(tokens * qw), rng);
        std::vector<float> k = random_bf16_values(static_cast<size_t>(tokens * kw), rng);
        std::vector<float> v = random_bf16_values(static_cast<size_t>(tokens * kw), rng);
        Tensor q_c = host_f32(q, {tokens, qw}), k_c = host_f32(k, {tokens, kw}), v_c = host_f32(v, {tokens, kw});
        LayerKvCache cache_c{cpu.alloc(DType::kF32, {slots, kv_heads, head_dim}),
                             cpu.alloc(DType::kF32, {slots, kv_heads, head_dim})};
        cpu.begin_step(batch);
        cpu.rope_and_store_kv(q_c, k_c, v_c, rope, head_dim, cache_c);
        Tensor q_g = gpu.upload(host_f32(q, {tokens, qw})), k_g = gpu.upload(host_f32(k, {tokens, kw}));
        Tensor v_g = gpu.upload(host_f32(v, {tokens, kw}));
        LayerKvCache cache_g{gpu.alloc(DType::kBF16, {slots, kv_heads, head_dim}),
                             gpu.alloc(DType::kBF16, {slots, kv_heads, head_dim})};
        gpu.begin_step(batch);
        gpu.rope_and_store_kv(q_g, k_g, v_g, rope, head_dim, cache_g);
        const std::string what = "rope d=" + std::to_string(head_dim) + " rotary=" + std::to_string(rotary) +
                                 (interleaved ? " interleaved" : " neox");
        auto host_of = [](const Tensor& t) {
          return std::vector<float>(t.as<float>(), t.as<float>() + t.view.numel());
        };
        expect_close(to_host(gpu, q_g), host_of(q_c), kRel, kAbs, what + " q");
        expect_close(to_host(gpu, k_g), host_of(k_c), kRel, kAbs, what + " k");
        expect_close(to_host(gpu, cache_g.k), host_of(cache_c.k), kRel, kAbs, what + " k cache");
        EXPECT_EQ(to_host(gpu, cache_g.v), host_of(cache_c.v)) << what << " v cache is an exact copy";
      }
    }
  }
}

TEST(CudaBackendTest, ArgmaxRowsMatchesHostArgmaxWithFirstOfTies) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(gpu);
  std::mt19937 rng(6);
  for (int64_t vocab : {7, 1000, 128256}) {
    for (int64_t rows : {1, 3, 256}) {
      std::vector<float> logits = random_bf16_values(static_cast<size_t>(rows * vocab), rng, 10.0f);
      // A tie in every other row: the maximum appears twice and the first must win.
      for (int64_t r = 0; r < rows; r += 2) {
        float* row = logits.data() + r * vocab;
        const int64_t at = static_cast<int64_t>(std::max_element(row, row + vocab) - row);
        row[(at * 7 + 3) % vocab] = row[at];
      }
      Tensor dev = gpu.alloc(DType::kF32, {rows, vocab});
      gpu.synchronize();
      ASSERT_EQ(cudaMemcpy(dev.view.data, logits.data(), logits.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
      // From pageable memory cudaMemcpy may return before the DMA lands, and the backend's stream does not
      // wait for the legacy stream.
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      const std::vector<int32_t> got = gpu.argmax_rows(dev);
      ASSERT_EQ(got.size(), static_cast<size_t>(rows));
      for (int64_t r = 0; r < rows; ++r) {
        const float* row = logits.data() + r * vocab;
        EXPECT_EQ(got[static_cast<size_t>(r)], std::max_element(row, row + vocab) - row)
            << "vocab " << vocab << " row " << r;
      }
    }
  }
}

struct AttentionCase {
  std::vector<std::pair<int32_t, int32_t>> seqs;  // (cached, new) per sequence
  int32_t page_size;
  int32_t head_dim;
  int32_t q_heads;
  int32_t kv_heads;
  // As under CUDA graphs: the split count from the batch size alone (max_kv_len unknown), so short
  // sequences leave most splits empty.
  bool static_steps = false;
};

// begin_step, with static steps (the layout and split count CUDA graphs use) when asked; set_static_steps(false)
// after the op undoes it.
void begin_gpu_step(CudaBackend& gpu, const ForwardBatch& batch, bool static_steps) {
  if (static_steps) {
    CudaBackend::StaticStepCapacity capacity = gpu.static_step_capacity();
    capacity.tokens = std::max<int32_t>(capacity.tokens, batch.num_tokens());
    capacity.seqs = std::max<int32_t>(capacity.seqs, static_cast<int32_t>(batch.kv_length.size()));
    capacity.rows = std::max<int32_t>(capacity.rows, static_cast<int32_t>(batch.logit_rows.size()));
    capacity.pages = std::max<int64_t>(capacity.pages, static_cast<int64_t>(batch.page_table.size()));
    gpu.reserve_static_steps(capacity);
    gpu.set_static_steps(true);
  }
  gpu.begin_step(batch);
}

void run_attention_case(CudaBackend& gpu, CpuBackend& cpu, const AttentionCase& c, std::mt19937& rng) {
  int32_t pages = 0;
  const ForwardBatch batch = make_batch(c.seqs, c.page_size, rng, &pages);
  const int64_t tokens = batch.num_tokens(), slots = int64_t{pages} * c.page_size;
  const int64_t qw = int64_t{c.q_heads} * c.head_dim;
  // The whole cache is random (cached prefix and the new tokens' slots alike), as after earlier steps.
  const std::vector<float> k = random_bf16_values(static_cast<size_t>(slots * c.kv_heads * c.head_dim), rng, 2.0f);
  const std::vector<float> v = random_bf16_values(k.size(), rng);
  const std::vector<float> q = random_bf16_values(static_cast<size_t>(tokens * qw), rng, 2.0f);
  const Shape kv_shape{slots, c.kv_heads, c.head_dim};
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  LayerKvCache cache_c{host_f32(k, kv_shape), host_f32(v, kv_shape)};
  Tensor ref = cpu.alloc(DType::kF32, {tokens, qw});
  cpu.begin_step(batch);
  cpu.attention(host_f32(q, {tokens, qw}), cache_c, c.q_heads, c.kv_heads, c.head_dim, scale, ref);
  LayerKvCache cache_g{gpu.upload(cache_c.k), gpu.upload(cache_c.v)};
  Tensor q_g = gpu.upload(host_f32(q, {tokens, qw}));
  Tensor out = poisoned(gpu, DType::kBF16, {tokens, qw});
  begin_gpu_step(gpu, batch, c.static_steps);
  gpu.attention(q_g, cache_g, c.q_heads, c.kv_heads, c.head_dim, scale, out);
  gpu.set_static_steps(false);
  std::string what = "attention seqs=" + std::to_string(c.seqs.size()) + " tokens=" + std::to_string(tokens) +
                     " max_kv=" + std::to_string(batch.max_kv_len()) + " page=" + std::to_string(c.page_size) +
                     " d=" + std::to_string(c.head_dim) + " heads=" + std::to_string(c.q_heads) + "/" +
                     std::to_string(c.kv_heads) + (c.static_steps ? " static" : "");
  expect_close(to_host(gpu, out), std::vector<float>(ref.as<float>(), ref.as<float>() + ref.view.numel()), kRel, kAbs,
               what);
}

TEST(CudaBackendTest, AttentionMatchesCpuOverRaggedBatchesPagesHeadDimsAndGqa) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(gpu);
  CpuBackend cpu(4);
  std::mt19937 rng(5);
  struct Heads {
    int32_t q, kv;
  };
  for (int32_t head_dim : {16, 32, 48, 64, 128}) {
    for (Heads h : {Heads{4, 4}, Heads{8, 2}, Heads{16, 2}}) {  // GQA 1, 4, 8
      for (int32_t page_size : {1, 16, 64}) {
        // Prefill of one prompt; extend after a cached prefix; a ragged mixed batch.
        run_attention_case(gpu, cpu, {{{0, 77}}, page_size, head_dim, h.q, h.kv}, rng);
        run_attention_case(gpu, cpu, {{{130, 45}, {0, 1}, {3, 200}, {64, 64}}, page_size, head_dim, h.q, h.kv}, rng);
        // Decode: one new token per sequence, batch 1 and a ragged batch, long and short contexts.
        run_attention_case(gpu, cpu, {{{1000, 1}}, page_size, head_dim, h.q, h.kv}, rng);
        std::vector<std::pair<int32_t, int32_t>> decode;
        for (int32_t s = 0; s < 37; ++s) decode.push_back({(s * 97) % 600, 1});
        run_attention_case(gpu, cpu, {decode, page_size, head_dim, h.q, h.kv}, rng);
      }
    }
  }
  // Large decode batches (the split-KV and combine path at scale), 8B-shaped heads.
  for (int32_t batch : {64, 256}) {
    std::vector<std::pair<int32_t, int32_t>> decode;
    for (int32_t s = 0; s < batch; ++s) decode.push_back({100 + (s * 37) % 400, 1});
    run_attention_case(gpu, cpu, {decode, 16, 128, 32, 8}, rng);
  }
  // A long single-sequence decode (many splits) and a 1k prefill.
  run_attention_case(gpu, cpu, {{{4000, 1}}, 64, 128, 32, 8}, rng);
  run_attention_case(gpu, cpu, {{{0, 1024}}, 16, 128, 32, 8}, rng);
}

// The split-KV decode kernel (decode and extends of up to 16 query rows per KV head) over what serving
// sends it: batches 1-256 with ragged contexts from 1 token to several splits' worth, page sizes 1/16/64,
// head dims 64 and 128, GQA 1/4/8, with the split count of eager steps and of static (graph) steps.
TEST(CudaBackendTest, DecodeAttentionMatchesCpuOverBatchesContextsPagesHeadDimsAndGqa) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(gpu);
  CpuBackend cpu(4);
  std::mt19937 rng(11);
  struct Heads {
    int32_t q, kv;
  };
  for (int32_t head_dim : {64, 128}) {
    for (Heads h : {Heads{4, 4}, Heads{16, 4}, Heads{16, 2}}) {  // GQA 1, 4, 8
      for (int32_t page_size : {1, 16, 64}) {
        for (int32_t batch : {1, 2, 7, 64, 256}) {
          if (batch == 256 && page_size != 16) continue;  // batch 64 covers the other page sizes (test time)
          // Contexts: the first sequence spans many tiles (1,501 keys: several splits), the second holds
          // 1 token, the rest are ragged over 2..700 (batch 1 is the long one at d 128, 1 token at d 64).
          std::vector<std::pair<int32_t, int32_t>> decode;
          for (int32_t s = 0; s < batch; ++s) {
            const int32_t cached = s == 0 ? (batch == 1 && head_dim == 64 ? 0 : 1500) : s == 1 ? 0
                                                                                    : (s * 131 + 17) % 700;
            decode.push_back({cached, 1});
          }
          const bool static_steps = (batch + page_size + head_dim / 64) % 2 == 0;
          run_attention_case(gpu, cpu, {decode, page_size, head_dim, h.q, h.kv, static_steps}, rng);
        }
        // Short extends (several new tokens per sequence, causal among themselves) that still fit 16 query
        // rows per KV head, so they take the decode kernel.
        const int32_t fresh = 16 / (h.q / h.kv);
        run_attention_case(gpu, cpu, {{{300, fresh}, {0, fresh}, {5, 1}, {77, fresh - 1}}, page_size, head_dim,
                                      h.q, h.kv},
                           rng);
        run_attention_case(gpu, cpu, {{{40, std::min(fresh, 2)}, {900, 1}}, page_size, head_dim, h.q, h.kv, true},
                           rng);
      }
    }
  }
}

// RoPE and the KV store fused into the decode attention (rope_store_and_attention on decode steps of one
// new token per sequence) against the CPU backend (rope_and_store_kv, then attention), and bit for bit
// against the two CUDA ops apart (RopeFusion::kNever): a sequence's decode steps take one path or the
// other depending on what they are batched with (a step with a prefill in it does not fuse), so both must
// store the same keys and give the same output. q, k and v are column blocks of one qkv buffer, as the
// model passes them; the cache, the new tokens' slots included, starts random.
TEST(CudaBackendTest, RopeStoreAndAttentionMatchesCpuAndTheOpsApart) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(gpu);
  CpuBackend cpu(4);
  std::mt19937 rng(12);
  struct Heads {
    int32_t q, kv;
  };
  int cases = 0;
  for (int32_t head_dim : {64, 128}) {
    for (bool interleaved : {false, true}) {
      for (Heads h : {Heads{4, 4}, Heads{32, 8}, Heads{16, 2}}) {  // GQA 1, 4, 8
        for (int32_t page_size : {1, 16}) {
          for (int32_t batch_size : {1, 5, 64, 256}) {
            // Batch 256 (the shallow ring's launches) at the 8B shape's GQA and page size only (test time).
            if (batch_size == 256 && (h.q != 32 || page_size != 16)) continue;
            std::vector<std::pair<int32_t, int32_t>> seqs;
            for (int32_t s = 0; s < batch_size; ++s) {
              seqs.push_back({s == 0 ? 1500 : s == 1 ? 0 : (s * 131 + 17) % 700, 1});
            }
            const bool static_steps = ++cases % 2 == 0;
            int32_t pages = 0;
            const ForwardBatch batch = make_batch(seqs, page_size, rng, &pages);
            const int64_t tokens = batch.num_tokens(), slots = int64_t{pages} * page_size;
            const int64_t qw = int64_t{h.q} * head_dim, kw = int64_t{h.kv} * head_dim, width = qw + 2 * kw;
            const RopeTable rope = make_rope(head_dim, interleaved, 500000.0);
            const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
            const std::vector<float> qkv = random_bf16_values(static_cast<size_t>(tokens * width), rng, 2.0f);
            const std::vector<float> k = random_bf16_values(static_cast<size_t>(slots * kw), rng, 2.0f);
            const std::vector<float> v = random_bf16_values(k.size(), rng);
            const Shape kv_shape{slots, h.kv, head_dim};

            Tensor qkv_c = host_f32(qkv, {tokens, width});
            LayerKvCache cache_c{host_f32(k, kv_shape), host_f32(v, kv_shape)};
            Tensor ref = cpu.alloc(DType::kF32, {tokens, qw});
            cpu.begin_step(batch);
            cpu.rope_store_and_attention(qkv_c.view.columns(0, qw), qkv_c.view.columns(qw, kw),
                                         qkv_c.view.columns(qw + kw, kw), rope, head_dim, cache_c, h.q, h.kv, scale,
                                         ref);

            struct Result {
              std::vector<float> out, k_cache, v_cache;
            };
            const auto run = [&](CudaBackend::RopeFusion fusion) {
              Tensor qkv_g = gpu.upload(host_f32(qkv, {tokens, width}));
              LayerKvCache cache_g{gpu.upload(host_f32(k, kv_shape)), gpu.upload(host_f32(v, kv_shape))};
              Tensor out = poisoned(gpu, DType::kBF16, {tokens, qw});
              gpu.set_rope_fusion(fusion);
              begin_gpu_step(gpu, batch, static_steps);
              gpu.rope_store_and_attention(qkv_g.view.columns(0, qw), qkv_g.view.columns(qw, kw),
                                           qkv_g.view.columns(qw + kw, kw), rope, head_dim, cache_g, h.q, h.kv,
                                           scale, out);
              gpu.set_static_steps(false);
              gpu.set_rope_fusion(CudaBackend::RopeFusion::kAfterEarlyMatmul);
              return Result{to_host(gpu, out), to_host(gpu, cache_g.k), to_host(gpu, cache_g.v)};
            };
            const Result fused = run(CudaBackend::RopeFusion::kAlways), apart = run(CudaBackend::RopeFusion::kNever);
            const std::string what = "rope+attention d=" + std::to_string(head_dim) +
                                     (interleaved ? " interleaved" : " neox") + " heads=" + std::to_string(h.q) +
                                     "/" + std::to_string(h.kv) + " page=" + std::to_string(page_size) +
                                     " batch=" + std::to_string(batch_size) + (static_steps ? " static" : "");
            const auto host_of = [](const Tensor& t) {
              return std::vector<float>(t.as<float>(), t.as<float>() + t.view.numel());
            };
            expect_close(fused.out, host_of(ref), kRel, kAbs, what + " out");
            expect_close(fused.k_cache, host_of(cache_c.k), kRel, kAbs, what + " k cache");
            EXPECT_EQ(fused.v_cache, host_of(cache_c.v)) << what << ": v cache is an exact copy";
            EXPECT_EQ(fused.out, apart.out) << what << ": fused and apart differ";
            EXPECT_EQ(fused.k_cache, apart.k_cache) << what << ": fused and apart store different keys";
            EXPECT_EQ(fused.v_cache, apart.v_cache) << what;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace radixlm

namespace radixlm {
namespace {

// Decode attention at the Llama-3.1-8B shape (32/8 heads, d 128, page 16) as the benchmarks run it: checked
// against the CPU, then timed with CUDA events on the backend's stream, eager and with the static-step
// (graph) split count. Three copies of the cache are rotated so that L2 (50 MB) cannot hold the K/V between
// calls. Prints microseconds per call (attention + combine) and TB/s of K/V bytes.
TEST(CudaBackendTest, DecodeAttentionMatchesCpuAndReportsKvBandwidth) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(gpu);
  CpuBackend cpu(8);
  std::mt19937 rng(23);
  constexpr int32_t kQHeads = 32, kKvHeads = 8, kDim = 128, kPage = 16, kCopies = 3, kIters = 50;
  struct Shape8b {
    int32_t batch, min_context, max_context;
  };
  for (Shape8b shape : {Shape8b{1, 700, 700}, Shape8b{1, 128, 128}, Shape8b{64, 128, 256}, Shape8b{256, 128, 640}}) {
    std::vector<std::pair<int32_t, int32_t>> seqs;
    std::uniform_int_distribution<int32_t> context(shape.min_context, shape.max_context);
    int64_t kv_tokens = 0;
    for (int32_t s = 0; s < shape.batch; ++s) {
      const int32_t total = context(rng);
      seqs.push_back({total - 1, 1});
      kv_tokens += total;
    }
    int32_t pages = 0;
    const ForwardBatch batch = make_batch(seqs, kPage, rng, &pages);
    const int64_t tokens = batch.num_tokens(), slots = int64_t{pages} * kPage, qw = int64_t{kQHeads} * kDim;
    const std::vector<float> k = random_bf16_values(static_cast<size_t>(slots * kKvHeads * kDim), rng, 2.0f);
    const std::vector<float> v = random_bf16_values(k.size(), rng);
    const std::vector<float> q = random_bf16_values(static_cast<size_t>(tokens * qw), rng, 2.0f);
    const Shape kv_shape{slots, kKvHeads, kDim};
    const float scale = 1.0f / std::sqrt(static_cast<float>(kDim));
    LayerKvCache cache_c{host_f32(k, kv_shape), host_f32(v, kv_shape)};
    Tensor ref = cpu.alloc(DType::kF32, {tokens, qw});
    cpu.begin_step(batch);
    cpu.attention(host_f32(q, {tokens, qw}), cache_c, kQHeads, kKvHeads, kDim, scale, ref);
    const std::vector<float> ref_values(ref.as<float>(), ref.as<float>() + ref.view.numel());
    std::vector<LayerKvCache> caches;
    for (int32_t c = 0; c < kCopies; ++c) caches.push_back({gpu.upload(cache_c.k), gpu.upload(cache_c.v)});
    Tensor q_g = gpu.upload(host_f32(q, {tokens, qw}));
    const double kv_bytes = static_cast<double>(kv_tokens) * kKvHeads * kDim * 2 * 2;
    for (bool static_steps : {false, true}) {
      if (static_steps) {
        CudaBackend::StaticStepCapacity capacity = gpu.static_step_capacity();
        capacity.tokens = std::max<int32_t>(capacity.tokens, static_cast<int32_t>(tokens));
        capacity.seqs = std::max<int32_t>(capacity.seqs, shape.batch);
        capacity.rows = std::max<int32_t>(capacity.rows, static_cast<int32_t>(batch.logit_rows.size()));
        capacity.pages = std::max<int64_t>(capacity.pages, static_cast<int64_t>(batch.page_table.size()));
        gpu.reserve_static_steps(capacity);
        gpu.set_static_steps(true);
      }
      gpu.begin_step(batch);
      const std::string what = "decode attention batch " + std::to_string(shape.batch) + " context " +
                               std::to_string(shape.min_context) + "-" + std::to_string(shape.max_context) +
                               (static_steps ? " static" : " eager");
      for (int32_t c = 0; c < kCopies; ++c) {  // every copy gives the CPU's answer (and warms up)
        Tensor out = poisoned(gpu, DType::kBF16, {tokens, qw});
        gpu.attention(q_g, caches[static_cast<size_t>(c)], kQHeads, kKvHeads, kDim, scale, out);
        expect_close(to_host(gpu, out), ref_values, kRel, kAbs, what + " copy " + std::to_string(c));
      }
      Tensor out = gpu.alloc(DType::kBF16, {tokens, qw});
      auto stream = static_cast<cudaStream_t>(gpu.stream_handle());
      cudaEvent_t start = nullptr, stop = nullptr;
      ASSERT_EQ(cudaEventCreate(&start), cudaSuccess);
      ASSERT_EQ(cudaEventCreate(&stop), cudaSuccess);
      ASSERT_EQ(cudaEventRecord(start, stream), cudaSuccess);
      for (int32_t i = 0; i < kIters; ++i) {
        gpu.attention(q_g, caches[static_cast<size_t>(i % kCopies)], kQHeads, kKvHeads, kDim, scale, out);
      }
      ASSERT_EQ(cudaEventRecord(stop, stream), cudaSuccess);
      ASSERT_EQ(cudaEventSynchronize(stop), cudaSuccess);
      float ms = 0.0f;
      ASSERT_EQ(cudaEventElapsedTime(&ms, start, stop), cudaSuccess);
      cudaEventDestroy(start);
      cudaEventDestroy(stop);
      gpu.set_static_steps(false);
      const double us = 1000.0 * ms / kIters;
      std::printf("%s: %.1f us per call, %.1f MB of K/V, %.2f TB/s\n", what.c_str(), us, kv_bytes / 1e6,
                  kv_bytes / (us * 1e-6) / 1e12);
    }
  }
}

}  // namespace
}  // namespace radixlm
