// The prefill/extend attention kernels (cuda_attention_mma.cuh) against the CPU backend, each kernel
// launched directly so every variant is checked on the same inputs: the automatic choice, the legacy
// 64-row kernel and both configurations of the pipelined kernel. The sweep covers ragged extend batches
// (cached prefix + new tokens, prefixes that end mid-page, a one-token sequence among long ones), page
// sizes 1/16/64, head dims 16-128, GQA 1/3/4/8 and a 4096-token prompt. Inputs are bf16-exact and outputs
// poisoned (NaN) before each launch. The 4096-token causal prompt on the Llama-3.1-8B shape is then timed
// per kernel and printed in TFLOP/s (causal FLOPs: 4 * head_dim * q_heads * visible keys, summed over
// the new tokens).

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include "backends/cpu/cpu_backend.h"
#include "backends/cuda/cuda_kernels.h"
#include "backends/cuda/cuda_test_util.h"

namespace radixlm {
namespace {

using cuda_test::expect_close;
using cuda_test::host_f32;
using cuda_test::make_batch;
using cuda_test::random_bf16_values;

constexpr double kRel = 1e-2;
constexpr double kAbs = 3e-2;

struct Kernel {
  int32_t id;
  const char* name;
};
constexpr Kernel kKernels[] = {{cuda::kPrefillKernelAuto, "auto"},
                               {cuda::kPrefillKernelWgmma, "wgmma"},
                               {cuda::kPrefillKernelWgmmaCpAsync, "wgmma-cp-async"},
                               {cuda::kPrefillKernelLegacy, "legacy"},
                               {cuda::kPrefillKernelPipelined8x1, "pipelined-8x1"},
                               {cuda::kPrefillKernelPipelined8x2, "pipelined-8x2"},
                               {cuda::kPrefillKernelPipelined4x2, "pipelined-4x2"}};

// Device memory owned by the test (the kernels are launched without the backend's step buffers).
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (data_ != nullptr) cudaFree(data_);
  }
  template <typename T>
  T* upload(const std::vector<T>& host) {
    allocate(std::max<size_t>(1, host.size()) * sizeof(T));
    if (!host.empty()) {
      EXPECT_EQ(cudaMemcpy(data_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
      // From pageable memory cudaMemcpy may return before the DMA lands; kernels run on another stream.
      EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    }
    return static_cast<T*>(data_);
  }
  void* allocate(size_t bytes) {
    EXPECT_EQ(data_, nullptr);
    EXPECT_EQ(cudaMalloc(&data_, bytes), cudaSuccess);
    return data_;
  }

 private:
  void* data_ = nullptr;
};

std::vector<uint16_t> to_bf16(const std::vector<float>& values) {
  std::vector<uint16_t> out(values.size());
  std::transform(values.begin(), values.end(), out.begin(), [](float v) { return f32_to_bf16(v); });
  return out;
}

struct Case {
  std::vector<std::pair<int32_t, int32_t>> seqs;  // (cached, new) per sequence
  int32_t page_size;
  int32_t head_dim;
  int32_t q_heads;
  int32_t kv_heads;
  float scale_factor = 1.0f;  // scale = scale_factor / sqrt(head_dim)
};

std::string describe(const Case& c, const ForwardBatch& batch) {
  std::ostringstream out;
  out << "seqs=[";
  for (size_t i = 0; i < c.seqs.size(); ++i) out << (i ? "," : "") << c.seqs[i].first << "+" << c.seqs[i].second;
  out << "] tokens=" << batch.num_tokens() << " page=" << c.page_size << " d=" << c.head_dim << " heads=" << c.q_heads
      << "/" << c.kv_heads << " scale_factor=" << c.scale_factor;
  return out.str();
}

// One case on the device: the step arrays, Q and the cache uploaded once; every kernel runs on them.
class PrefillAttentionCase {
 public:
  PrefillAttentionCase(const Case& c, std::mt19937& rng, int num_sms) : c_(c) {
    int32_t pages = 0;
    batch_ = make_batch(c.seqs, c.page_size, rng, &pages);
    tokens_ = batch_.num_tokens();
    const int64_t slots = int64_t{pages} * c.page_size;
    q_width_ = int64_t{c.q_heads} * c.head_dim;
    // The whole cache is random (cached prefix and the new tokens' slots alike), as after the K/V store.
    k_ = random_bf16_values(static_cast<size_t>(slots * c.kv_heads * c.head_dim), rng, 2.0f);
    v_ = random_bf16_values(k_.size(), rng);
    q_ = random_bf16_values(static_cast<size_t>(tokens_ * q_width_), rng, 2.0f);
    scale_ = c.scale_factor / std::sqrt(static_cast<float>(c.head_dim));

    step_.token_ids = token_ids_.upload(batch_.token_ids);
    step_.positions = positions_.upload(batch_.positions);
    step_.kv_slots = kv_slots_.upload(batch_.kv_slots);
    step_.query_start = query_start_.upload(batch_.query_start);
    step_.kv_length = kv_length_.upload(batch_.kv_length);
    step_.page_table_start = page_table_start_.upload(batch_.page_table_start);
    step_.page_table = page_table_.upload(batch_.page_table);
    step_.logit_rows = logit_rows_.upload(batch_.logit_rows);
    step_.num_tokens = tokens_;
    step_.num_seqs = batch_.num_seqs();
    step_.num_logit_rows = static_cast<int32_t>(batch_.logit_rows.size());
    step_.page_size = c.page_size;
    step_.max_query_len = batch_.max_query_len();
    step_.max_kv_len = batch_.max_kv_len();

    params_.q = q_dev_.upload(to_bf16(q_));
    params_.k_cache = k_dev_.upload(to_bf16(k_));
    params_.v_cache = v_dev_.upload(to_bf16(v_));
    params_.out = static_cast<uint16_t*>(out_dev_.allocate(static_cast<size_t>(tokens_ * q_width_) * 2));
    params_.q_heads = c.q_heads;
    params_.kv_heads = c.kv_heads;
    params_.head_dim = c.head_dim;
    params_.scale = scale_;
    params_.num_sms = num_sms;
    params_.num_slots = static_cast<int64_t>(k_.size()) / (int64_t{c.kv_heads} * c.head_dim);
    params_.num_splits = cuda::attention_num_splits(step_, c.q_heads, c.kv_heads, c.head_dim, num_sms);
    const int64_t partial = cuda::attention_partial_floats(tokens_, c.q_heads, c.head_dim, params_.num_splits);
    if (partial > 0) params_.partial = static_cast<float*>(partial_dev_.allocate(static_cast<size_t>(partial) * 4));
    EXPECT_EQ(cudaStreamCreate(&stream_), cudaSuccess);
  }
  ~PrefillAttentionCase() { cudaStreamDestroy(stream_); }
  PrefillAttentionCase(const PrefillAttentionCase&) = delete;
  PrefillAttentionCase& operator=(const PrefillAttentionCase&) = delete;

  std::vector<float> cpu_reference(CpuBackend& cpu) const {
    const Shape kv_shape{static_cast<int64_t>(k_.size()) / (int64_t{c_.kv_heads} * c_.head_dim), c_.kv_heads,
                         c_.head_dim};
    LayerKvCache cache{host_f32(k_, kv_shape), host_f32(v_, kv_shape)};
    Tensor ref = cpu.alloc(DType::kF32, {tokens_, q_width_});
    cpu.begin_step(batch_);
    cpu.attention(host_f32(q_, {tokens_, q_width_}), cache, c_.q_heads, c_.kv_heads, c_.head_dim, scale_, ref);
    return {ref.as<float>(), ref.as<float>() + ref.view.numel()};
  }

  void launch(int32_t kernel) {
    cuda::AttentionParams p = params_;
    p.prefill_kernel = kernel;
    cuda::launch_attention(p, step_, stream_);
  }

  // The kernel's output after poisoning it with NaN.
  std::vector<float> run(int32_t kernel) {
    EXPECT_EQ(cudaMemsetAsync(params_.out, 0xff, static_cast<size_t>(tokens_ * q_width_) * 2, stream_), cudaSuccess);
    launch(kernel);
    EXPECT_EQ(cudaGetLastError(), cudaSuccess);
    std::vector<uint16_t> bits(static_cast<size_t>(tokens_ * q_width_));
    EXPECT_EQ(cudaMemcpyAsync(bits.data(), params_.out, bits.size() * 2, cudaMemcpyDeviceToHost, stream_), cudaSuccess);
    EXPECT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
    std::vector<float> out(bits.size());
    std::transform(bits.begin(), bits.end(), out.begin(), [](uint16_t b) { return bf16_to_f32(b); });
    return out;
  }

  // Mean milliseconds per launch over `iterations` back-to-back launches (after a warm-up).
  double time_ms(int32_t kernel, int iterations) {
    for (int i = 0; i < 3; ++i) launch(kernel);
    cudaEvent_t start = nullptr, stop = nullptr;
    EXPECT_EQ(cudaEventCreate(&start), cudaSuccess);
    EXPECT_EQ(cudaEventCreate(&stop), cudaSuccess);
    EXPECT_EQ(cudaEventRecord(start, stream_), cudaSuccess);
    for (int i = 0; i < iterations; ++i) launch(kernel);
    EXPECT_EQ(cudaEventRecord(stop, stream_), cudaSuccess);
    EXPECT_EQ(cudaEventSynchronize(stop), cudaSuccess);
    EXPECT_EQ(cudaGetLastError(), cudaSuccess);
    float ms = 0.0f;
    EXPECT_EQ(cudaEventElapsedTime(&ms, start, stop), cudaSuccess);
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return static_cast<double>(ms) / iterations;
  }

  // Causal attention FLOPs of the step: QK^T and PV over each new token's visible keys.
  double flops() const {
    double visible = 0.0;
    for (int32_t pos : batch_.positions) visible += pos + 1.0;
    return 4.0 * c_.head_dim * c_.q_heads * visible;
  }

  const ForwardBatch& batch() const { return batch_; }

 private:
  Case c_;
  ForwardBatch batch_;
  int32_t tokens_ = 0;
  int64_t q_width_ = 0;
  float scale_ = 1.0f;
  std::vector<float> q_, k_, v_;
  DeviceBuffer token_ids_, positions_, kv_slots_, query_start_, kv_length_, page_table_start_, page_table_,
      logit_rows_, q_dev_, k_dev_, v_dev_, out_dev_, partial_dev_;
  cuda::StepArrays step_;
  cuda::AttentionParams params_;
  cudaStream_t stream_ = nullptr;
};

int cpu_threads() { return static_cast<int>(std::max(4u, std::thread::hardware_concurrency())); }

void check_every_kernel(const Case& c, CpuBackend& cpu, std::mt19937& rng, int num_sms) {
  PrefillAttentionCase gpu(c, rng, num_sms);
  const std::vector<float> ref = gpu.cpu_reference(cpu);
  for (const Kernel& kernel : kKernels) {
    expect_close(gpu.run(kernel.id), ref, kRel, kAbs, std::string(kernel.name) + " " + describe(c, gpu.batch()));
  }
}

TEST(CudaPrefillAttentionTest, EveryKernelMatchesCpuOverRaggedExtendsPagesHeadDimsAndGqa) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(backend);
  const int num_sms = backend.info().num_sms;
  CpuBackend cpu(cpu_threads());
  std::mt19937 rng(11);
  struct Heads {
    int32_t q, kv;
  };
  for (int32_t head_dim : {64, 128}) {
    for (Heads h : {Heads{8, 8}, Heads{32, 8}, Heads{16, 2}}) {  // GQA 1, 4, 8
      for (int32_t page_size : {1, 16, 64}) {
        // A fresh prompt; an extend whose prefix ends mid-page; a ragged batch of extends of every size
        // (one new token among long ones, a prefix far longer than the new part, a prompt with no prefix).
        check_every_kernel({{{0, 300}}, page_size, head_dim, h.q, h.kv}, cpu, rng, num_sms);
        check_every_kernel({{{17, 150}}, page_size, head_dim, h.q, h.kv}, cpu, rng, num_sms);
        check_every_kernel({{{130, 45}, {0, 200}, {1000, 77}, {64, 64}, {5, 1}, {3, 129}}, page_size, head_dim, h.q,
                            h.kv},
                           cpu, rng, num_sms);
      }
    }
  }
  // Every other supported head dim, a group that does not divide the 128-row tile (12 / 4 = 3), and larger
  // logits (a scale 3x the usual) where the running max moves a lot between tiles.
  for (int32_t head_dim : {16, 32, 48, 80, 96}) {
    check_every_kernel({{{40, 133}, {0, 70}}, 16, head_dim, 32, 8}, cpu, rng, num_sms);
  }
  check_every_kernel({{{33, 190}, {0, 65}}, 16, 128, 12, 4}, cpu, rng, num_sms);
  check_every_kernel({{{0, 257}, {300, 100}}, 16, 128, 32, 8, 3.0f}, cpu, rng, num_sms);
}

// The 4096-token prompt (and a 2048 + 2048 extend) on the Llama-3.1-8B attention shape: checked against
// the CPU, then timed per kernel. The pipelined kernels must beat the legacy one.
TEST(CudaPrefillAttentionTest, LongPromptMatchesCpuAndReportsTflops) {
  RADIXLM_CUDA_BACKEND_OR_SKIP(backend);
  const int num_sms = backend.info().num_sms;
  CpuBackend cpu(cpu_threads());
  std::mt19937 rng(12);
  const Case cases[] = {{{{0, 4096}}, 16, 128, 32, 8}, {{{2048, 2048}}, 64, 128, 32, 8}};
  for (const Case& c : cases) {
    PrefillAttentionCase gpu(c, rng, num_sms);
    const std::vector<float> ref = gpu.cpu_reference(cpu);
    double legacy_ms = 0.0, auto_ms = 0.0;
    for (const Kernel& kernel : kKernels) {
      expect_close(gpu.run(kernel.id), ref, kRel, kAbs, std::string(kernel.name) + " " + describe(c, gpu.batch()));
      const double ms = gpu.time_ms(kernel.id, 20);
      std::printf("prefill attention %s %-12s %8.3f ms %7.1f TFLOP/s\n", describe(c, gpu.batch()).c_str(), kernel.name,
                  ms, gpu.flops() / (ms * 1e-3) / 1e12);
      if (kernel.id == cuda::kPrefillKernelLegacy) legacy_ms = ms;
      if (kernel.id == cuda::kPrefillKernelAuto) auto_ms = ms;
    }
    std::fflush(stdout);
    EXPECT_LT(auto_ms, legacy_ms) << "the pipelined prefill kernel is slower than the legacy one: "
                                  << describe(c, gpu.batch());
  }
}

}  // namespace
}  // namespace radixlm
