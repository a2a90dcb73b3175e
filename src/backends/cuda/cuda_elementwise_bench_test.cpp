// GPU timing of the row-wise kernels at the Llama-3.1-8B decode shape (hidden 4096, intermediate 14336,
// 32 q / 8 kv heads of 128) for batches 1, 64 and 256: rms_norm, silu_and_mul and rope_and_store_kv (on
// q, k and v as column blocks of the fused qkv rows, as the models call it). Each op is first checked
// against the CPU backend on random bf16-exact
// inputs (bf16 tolerance; the copies exactly), and the default kernels are checked bit-exactly against the
// legacy ones (RADIXLM_CUDA_ELEMENTWISE=legacy) where the math is the same expression per element. Then 50
// calls are captured into one CUDA graph (so host launch cost does not hide the kernel time) over several
// input sets (so L2 cannot hold them) and timed with CUDA events; one line per op and batch:
//   elementwise <op> batch <B>: <us> us/call <TB/s> TB/s (legacy <us> us/call <TB/s> TB/s)
// Bytes counted are those the op must move (inputs read once, outputs written once; weights and tables not).

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backends/cpu/cpu_backend.h"
#include "backends/cuda/cuda_test_util.h"

namespace radixlm {
namespace {

using cuda_test::expect_close;
using cuda_test::host_f32;
using cuda_test::poisoned;
using cuda_test::random_bf16_values;
using cuda_test::to_host;

constexpr int64_t kHidden = 4096, kInter = 14336;
constexpr int32_t kQHeads = 32, kKvHeads = 8, kHeadDim = 128;
constexpr int64_t kQWidth = kQHeads * kHeadDim, kKvWidth = kKvHeads * kHeadDim;
constexpr int kIters = 50;
constexpr double kRel = 1e-2, kAbs = 3e-2;

const int64_t kBatches[] = {1, 64, 256};

// Enough input sets that one pass over them is well past the 50 MB L2 (at most 16).
int sets_for(double bytes_per_call) {
  return static_cast<int>(std::clamp(160e6 / bytes_per_call + 1.0, 2.0, 16.0));
}

void use_legacy(bool legacy) {
  if (legacy) {
    setenv("RADIXLM_CUDA_ELEMENTWISE", "legacy", 1);
  } else {
    unsetenv("RADIXLM_CUDA_ELEMENTWISE");
  }
}

// Microseconds per call of op(i % sets) over kIters calls captured into one graph.
double time_us(CudaBackend& gpu, int sets, const std::function<void(int)>& op) {
  auto stream = static_cast<cudaStream_t>(gpu.stream_handle());
  for (int i = 0; i < sets; ++i) op(i);  // warm-up, outside the capture
  gpu.synchronize();
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  EXPECT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  for (int i = 0; i < kIters; ++i) op(i % sets);
  EXPECT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  EXPECT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  cudaEvent_t start = nullptr, stop = nullptr;
  EXPECT_EQ(cudaEventCreate(&start), cudaSuccess);
  EXPECT_EQ(cudaEventCreate(&stop), cudaSuccess);
  EXPECT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);  // warm
  EXPECT_EQ(cudaEventRecord(start, stream), cudaSuccess);
  EXPECT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
  EXPECT_EQ(cudaEventRecord(stop, stream), cudaSuccess);
  EXPECT_EQ(cudaEventSynchronize(stop), cudaSuccess);
  float ms = 0.0f;
  EXPECT_EQ(cudaEventElapsedTime(&ms, start, stop), cudaSuccess);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  return 1000.0 * ms / kIters;
}

void report(const std::string& op, int64_t batch, double bytes, CudaBackend& gpu, int sets,
            const std::function<void(int)>& call) {
  use_legacy(false);
  const double us = time_us(gpu, sets, call);
  use_legacy(true);
  const double legacy_us = time_us(gpu, sets, call);
  use_legacy(false);
  std::printf("elementwise %-18s batch %3lld: %7.2f us/call %5.2f TB/s (legacy %7.2f us/call %5.2f TB/s)\n",
              op.c_str(), static_cast<long long>(batch), us, bytes / us * 1e-6, legacy_us, bytes / legacy_us * 1e-6);
  std::fflush(stdout);
}

std::vector<float> host_of(const Tensor& t) { return std::vector<float>(t.as<float>(), t.as<float>() + t.view.numel()); }

TEST(CudaElementwiseBench, RmsNormMatchesCpuAndTimes) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(gpu);
  CpuBackend cpu(2);
  std::mt19937 rng(21);
  for (int64_t b : kBatches) {
    const std::string what = " batch " + std::to_string(b);
    const size_t n = static_cast<size_t>(b * kHidden);
    const std::vector<float> x = random_bf16_values(n, rng, 2.0f);
    const std::vector<float> w = random_bf16_values(kHidden, rng, 1.5f);
    Tensor x_c = host_f32(x, {b, kHidden}), w_c = host_f32(w, {kHidden});
    Tensor ref = cpu.alloc(DType::kF32, {b, kHidden});
    cpu.rms_norm(x_c, w_c, 1e-5f, ref);
    Tensor x_g = gpu.upload(x_c), w_g = gpu.upload(w_c);
    std::vector<float> outs[2];  // [0] default kernels, [1] legacy
    for (int legacy : {0, 1}) {
      use_legacy(legacy != 0);
      Tensor out = gpu.alloc(DType::kBF16, {b, kHidden});
      gpu.rms_norm(x_g, w_g, 1e-5f, out);
      outs[legacy] = to_host(gpu, out);
    }
    use_legacy(false);
    expect_close(outs[0], host_of(ref), kRel, kAbs, "rms_norm" + what);
    EXPECT_EQ(outs[0], outs[1]) << "rms_norm: new and legacy kernels differ" << what;

    const double bytes = 2.0 * b * kHidden * 2;  // read x, write out
    const int sets = sets_for(bytes);
    std::vector<Tensor> xs, outs_g;
    for (int i = 0; i < sets; ++i) {
      xs.push_back(gpu.upload(x_c));
      outs_g.push_back(gpu.alloc(DType::kBF16, {b, kHidden}));
    }
    report("rms_norm", b, bytes, gpu, sets, [&](int i) { gpu.rms_norm(xs[i], w_g, 1e-5f, outs_g[i]); });
  }
}

TEST(CudaElementwiseBench, SiluAndMulMatchesCpuAndTimes) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(gpu);
  CpuBackend cpu(2);
  std::mt19937 rng(22);
  for (int64_t b : kBatches) {
    const std::string what = " batch " + std::to_string(b);
    const std::vector<float> x = random_bf16_values(static_cast<size_t>(b * 2 * kInter), rng, 4.0f);
    Tensor x_c = host_f32(x, {b, 2 * kInter});
    Tensor ref = cpu.alloc(DType::kF32, {b, kInter});
    cpu.silu_and_mul(x_c, ref);
    Tensor x_g = gpu.upload(x_c);
    std::vector<float> got[2];  // [0] default kernels, [1] legacy
    for (int legacy : {0, 1}) {
      use_legacy(legacy != 0);
      Tensor out = poisoned(gpu, DType::kBF16, {b, kInter});
      gpu.silu_and_mul(x_g, out);
      got[legacy] = to_host(gpu, out);
    }
    use_legacy(false);
    expect_close(got[0], host_of(ref), kRel, kAbs, "silu_and_mul" + what);
    EXPECT_EQ(got[0], got[1]) << "silu_and_mul: new and legacy kernels differ" << what;

    const double bytes = 3.0 * b * kInter * 2;  // read gate and up, write out
    const int sets = sets_for(bytes);
    std::vector<Tensor> xs, outs;
    for (int i = 0; i < sets; ++i) {
      xs.push_back(gpu.upload(x_c));
      outs.push_back(gpu.alloc(DType::kBF16, {b, kInter}));
    }
    report("silu_and_mul", b, bytes, gpu, sets, [&](int i) { gpu.silu_and_mul(xs[i], outs[i]); });
  }
}

// One decode token per sequence at scattered positions; each token's KV slot is distinct (slot s for
// sequence s, shuffled). The page table is shared: rope_and_store_kv reads only positions and slots.
ForwardBatch decode_batch(int64_t batch, std::mt19937& rng) {
  ForwardBatch b;
  b.page_size = 16;
  b.query_start = {0};
  b.page_table_start = {0};
  std::vector<int64_t> slots(static_cast<size_t>(batch));
  for (int64_t s = 0; s < batch; ++s) slots[static_cast<size_t>(s)] = s;
  std::shuffle(slots.begin(), slots.end(), rng);
  constexpr int32_t kPages = 256;  // 4096 tokens of context at most
  for (int64_t s = 0; s < batch; ++s) {
    const int32_t position = static_cast<int32_t>((100 + 997 * s) % 4000);
    b.token_ids.push_back(1);
    b.positions.push_back(position);
    b.kv_slots.push_back(slots[static_cast<size_t>(s)]);
    b.logit_rows.push_back(static_cast<int32_t>(s));
    b.query_start.push_back(static_cast<int32_t>(s + 1));
    b.kv_length.push_back(position + 1);
    for (int32_t p = 0; p < kPages; ++p) b.page_table.push_back(p);
    b.page_table_start.push_back(static_cast<int32_t>(b.page_table.size()));
  }
  return b;
}

TEST(CudaElementwiseBench, RopeAndKvStoreMatchesCpuAndTimes) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(gpu);
  CpuBackend cpu(2);
  std::mt19937 rng(23);
  RopeTable rope;
  rope.rotary_dim = kHeadDim;
  for (int32_t i = 0; i < kHeadDim / 2; ++i) {
    rope.inv_freq.push_back(static_cast<float>(std::pow(500000.0, -2.0 * i / kHeadDim)));
  }
  for (int64_t b : kBatches) {
    const std::string what = " batch " + std::to_string(b);
    const ForwardBatch batch = decode_batch(b, rng);
    const int64_t slots = b;
    const std::vector<float> q = random_bf16_values(static_cast<size_t>(b * kQWidth), rng);
    const std::vector<float> k = random_bf16_values(static_cast<size_t>(b * kKvWidth), rng);
    const std::vector<float> v = random_bf16_values(static_cast<size_t>(b * kKvWidth), rng);
    Tensor q_c = host_f32(q, {b, kQWidth}), k_c = host_f32(k, {b, kKvWidth}), v_c = host_f32(v, {b, kKvWidth});
    LayerKvCache cache_c{cpu.alloc(DType::kF32, {slots, kKvHeads, kHeadDim}),
                         cpu.alloc(DType::kF32, {slots, kKvHeads, kHeadDim})};
    cpu.begin_step(batch);
    cpu.rope_and_store_kv(q_c, k_c, v_c, rope, kHeadDim, cache_c);
    gpu.begin_step(batch);
    Tensor q_g = gpu.upload(host_f32(q, {b, kQWidth})), k_g = gpu.upload(host_f32(k, {b, kKvWidth}));
    Tensor v_g = gpu.upload(host_f32(v, {b, kKvWidth}));
    LayerKvCache cache_g{poisoned(gpu, DType::kBF16, {slots, kKvHeads, kHeadDim}),
                         poisoned(gpu, DType::kBF16, {slots, kKvHeads, kHeadDim})};
    gpu.rope_and_store_kv(q_g, k_g, v_g, rope, kHeadDim, cache_g);
    expect_close(to_host(gpu, q_g), host_of(q_c), kRel, kAbs, "rope q" + what);
    expect_close(to_host(gpu, k_g), host_of(k_c), kRel, kAbs, "rope k" + what);
    expect_close(to_host(gpu, cache_g.k), host_of(cache_c.k), kRel, kAbs, "rope k cache" + what);
    EXPECT_EQ(to_host(gpu, cache_g.v), host_of(cache_c.v)) << "rope v cache is an exact copy" << what;

    // The same through column blocks of fused qkv rows (row stride kQkvWidth), as the models call it.
    constexpr int64_t kQkvWidth = kQWidth + 2 * kKvWidth;
    std::vector<float> qkv;
    for (int64_t t = 0; t < b; ++t) {
      qkv.insert(qkv.end(), q.begin() + t * kQWidth, q.begin() + (t + 1) * kQWidth);
      qkv.insert(qkv.end(), k.begin() + t * kKvWidth, k.begin() + (t + 1) * kKvWidth);
      qkv.insert(qkv.end(), v.begin() + t * kKvWidth, v.begin() + (t + 1) * kKvWidth);
    }
    auto columns = [](const Tensor& fused) {
      return std::array<TensorView, 3>{fused.view.columns(0, kQWidth), fused.view.columns(kQWidth, kKvWidth),
                                       fused.view.columns(kQWidth + kKvWidth, kKvWidth)};
    };
    Tensor qkv_g = gpu.upload(host_f32(qkv, {b, kQkvWidth}));
    LayerKvCache strided_cache{poisoned(gpu, DType::kBF16, {slots, kKvHeads, kHeadDim}),
                               poisoned(gpu, DType::kBF16, {slots, kKvHeads, kHeadDim})};
    const auto [q_view, k_view, v_view] = columns(qkv_g);
    gpu.rope_and_store_kv(q_view, k_view, v_view, rope, kHeadDim, strided_cache);
    const std::vector<float> qkv_out = to_host(gpu, qkv_g);
    std::vector<float> q_out, v_out;
    for (int64_t t = 0; t < b; ++t) {
      q_out.insert(q_out.end(), qkv_out.begin() + t * kQkvWidth, qkv_out.begin() + t * kQkvWidth + kQWidth);
      v_out.insert(v_out.end(), qkv_out.begin() + t * kQkvWidth + kQWidth + kKvWidth,
                   qkv_out.begin() + (t + 1) * kQkvWidth);
    }
    expect_close(q_out, host_of(q_c), kRel, kAbs, "rope strided q" + what);
    EXPECT_EQ(v_out, v) << "rope leaves v alone" << what;
    expect_close(to_host(gpu, strided_cache.k), host_of(cache_c.k), kRel, kAbs, "rope strided k cache" + what);
    EXPECT_EQ(to_host(gpu, strided_cache.v), host_of(cache_c.v)) << "rope strided v cache" << what;

    // read q, k, v; write q, k and both cache rows
    const double bytes = static_cast<double>(b) * 2 * (2 * kQWidth + 2 * kKvWidth + kKvWidth + 2 * kKvWidth);
    const int sets = sets_for(bytes);
    std::vector<Tensor> fused;
    for (int i = 0; i < sets; ++i) fused.push_back(gpu.upload(host_f32(qkv, {b, kQkvWidth})));
    report("rope_and_store_kv", b, bytes, gpu, sets, [&](int i) {
      const auto [qi, ki, vi] = columns(fused[static_cast<size_t>(i)]);
      gpu.rope_and_store_kv(qi, ki, vi, rope, kHeadDim, cache_g);
    });
  }
}

}  // namespace
}  // namespace radixlm
