#pragma once
// ops/Backend on one NVIDIA GPU: bf16 activations, weights and KV cache; f32 logits. GEMMs go through
// cuBLASLt, except decode shapes (<= 8 tokens), which a bandwidth-bound GEMV kernel handles; attention is
// FlashAttention-style over the paged cache with split-KV for decode (cuda_attention.cu).
//
// Per step the backend allocates nothing from the driver once shapes repeat (DeviceAllocator caches
// blocks), never synchronizes with the host, and uploads the step's ForwardBatch with one async copy from
// pinned memory into a preallocated device buffer that every kernel reads. Only copy_to_host_f32 (and
// argmax_rows, which returns tokens) waits for the GPU.
//
// A binary built with this backend runs anywhere: CudaBackend::create() says clearly when there is no
// usable GPU and the caller falls back to the CPU backend.

#include <cstdint>
#include <map>
#include <tuple>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "ops/backend.h"

namespace radixlm {

namespace cuda {
class DeviceAllocator;
class CublasLtGemm;
struct StepArrays;
struct RopeStoreParams;
struct AttentionParams;
}  // namespace cuda

struct CudaDeviceInfo {
  int device = 0;
  std::string name;
  int num_sms = 0;
  size_t total_memory = 0;
};

// The first usable GPU, or an error that says why there is none (no driver, no device).
Expected<CudaDeviceInfo> probe_cuda_device(int device = 0);

class CudaBackend final : public Backend {
 public:
  static Expected<std::unique_ptr<CudaBackend>> create(int device = 0);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  Device device() const override { return Device::kCuda; }
  std::string name() const override { return "cuda"; }
  DType activation_dtype() const override { return DType::kBF16; }
  const CudaDeviceInfo& info() const { return info_; }

  Tensor alloc(DType dtype, const Shape& shape) override;
  Tensor alloc_uninitialized(DType dtype, const Shape& shape) override;
  // bf16 stays bf16; f32, f16 and fp8 weights become bf16 (the activation dtype the GEMMs read).
  Tensor upload(const Tensor& host) override;
  void copy_to_host_f32(const TensorView& src, float* dst) override;

  void begin_step(const ForwardBatch& batch) override;

  void embedding(const TensorView& table, const TensorView& out) override;
  void rms_norm(const TensorView& x, const TensorView& weight, float eps, const TensorView& out) override;
  void head_rms_norm(const TensorView& x, const TensorView& weight, int32_t head_dim, float eps) override;
  void linear(const TensorView& x, const TensorView& weight, const TensorView& bias, const TensorView& out) override;
  void linear_add(const TensorView& x, const TensorView& weight, const TensorView& bias,
                  const TensorView& residual) override;
  // Decode steps whose matmul runs on cuBLASLt (past 16 tokens): where it times faster than the plain matmul
  // (CublasLtGemm::run_split_partials), the matmul writes f32 partial products over slices of K and one
  // kernel adds them (with the bias) into the residual and normalises the result, in place of cuBLASLt's own
  // split-K sum and the separate norm. Elsewhere the two ops. RADIXLM_CUDA_SPLIT_PARTIALS=0 turns it off.
  void linear_add_rms_norm(const TensorView& x, const TensorView& weight, const TensorView& bias,
                           const TensorView& residual, const TensorView& norm_weight, float eps,
                           const TensorView& out) override;
  void silu_and_mul(const TensorView& x, const TensorView& out) override;
  void linear_silu_and_mul(const TensorView& x, const TensorView& weight, const TensorView& bias,
                           const TensorView& out) override;
  void rope_and_store_kv(const TensorView& q, const TensorView& k, const TensorView& v, const RopeTable& rope,
                         int32_t head_dim, const LayerKvCache& cache) override;
  void attention(const TensorView& q, const LayerKvCache& cache, int32_t num_q_heads, int32_t num_kv_heads,
                 int32_t head_dim, float scale, const TensorView& out) override;
  void rope_store_and_attention(const TensorView& q, const TensorView& k, const TensorView& v, const RopeTable& rope,
                                int32_t head_dim, const LayerKvCache& cache, int32_t num_q_heads, int32_t num_kv_heads,
                                float scale, const TensorView& out) override;
  void gather_logit_rows(const TensorView& x, const TensorView& out) override;

  // Greedy tokens of f32 logits [rows, vocab], computed on the device; waits for the step (the one host
  // read a decode loop needs).
  std::vector<int32_t> argmax_rows(const TensorView& logits);
  // Host-side copy of raw bytes (any dtype); waits.
  void copy_to_host(const TensorView& src, void* dst);
  // Waits for all queued work.
  void synchronize();
  // The cudaStream_t every op runs on, for device ops that live outside this class (cuda_sampling.h).
  void* stream_handle() const { return stream_; }
  // How many times the allocator has called cudaMalloc (tests check it stops growing in steady state).
  size_t device_malloc_calls() const;
  // Linear through cuBLASLt even for decode shapes (benchmarks and tests compare both paths).
  void set_force_cublaslt(bool force) { force_cublaslt_ = force; }
  // Tests: linear_add_rms_norm sums split partials wherever it can, without timing the plain matmul against them.
  void set_force_split_partials(bool force) { force_split_partials_ = force; }
  // How many linear_add_rms_norm calls have summed split partials (tests check which path ran).
  int64_t split_partials_calls() const { return split_partials_calls_; }
  // With RADIXLM_CUDA_OP_TIMES=1 in the environment, every op is bracketed by CUDA events and its GPU time
  // summed by op name (a kernel profile without a profiler; it adds a little launch overhead). The report
  // lists total ms and calls per op since the backend was made.
  bool op_timing() const { return op_timing_; }
  std::string op_time_report();
  // When rope_store_and_attention runs RoPE and the KV store inside the decode attention
  // (cuda::launch_rope_store_attention) on a decode step of one new token per sequence: by default only
  // after a matmul that lets the attention start early (the GEMV, the decode GEMM). After cuBLASLt's it was
  // slower on an H200 (batch 64: 5.25 against 5.06 ms; docs/performance.md). Tests force both ways;
  // RADIXLM_CUDA_FUSE_ROPE=0 / 1 / 2 (never / the default / always) sets it for A/B runs.
  enum class RopeFusion { kNever, kAfterEarlyMatmul, kAlways };
  void set_rope_fusion(RopeFusion fusion) { rope_fusion_ = fusion; }
  // Warps per output row of the GEMV kernel (0: chosen by shape); benchmarks sweep it.
  void set_gemv_warps_per_row(int32_t warps) { gemv_warps_per_row_ = warps; }

  // --- CUDA graphs of decode steps (cuda_decode_graphs.h drives these) ---
  // Static steps: begin_step lays the step out at fixed device addresses in a buffer sized for the
  // capacity, and attention splits the keys by the batch size alone, so a step captured once replays for
  // any batch of the same size. While capturing, begin_step only points the kernels at that layout (the
  // data was uploaded before the capture began) and every allocation comes from the graph pool.
  struct StaticStepCapacity {
    int32_t tokens = 0;
    int32_t seqs = 0;
    int32_t rows = 0;
    int64_t pages = 0;
  };
  // Sizes the static buffer (waits for the GPU when it grows: graphs captured before must be dropped).
  void reserve_static_steps(const StaticStepCapacity& capacity);
  const StaticStepCapacity& static_step_capacity() const { return static_capacity_; }
  void set_static_steps(bool on) { static_steps_ = on; }
  void begin_capture();
  void* end_capture();  // an instantiated cudaGraphExec_t
  void replay(void* graph);
  void destroy_graph(void* graph);
  // Greedy tokens of f32 logits [rows, vocab] into a new device int32 [rows], with no read back.
  Tensor argmax_rows_on_device(const TensorView& logits);
  // Host copy into pinned memory that the caller reads after synchronize() (no pageable staging).
  void copy_to_host_async(const TensorView& src, void* dst);
  // Device-to-device copy of raw bytes, queued on the stream.
  void copy_async(const TensorView& src, const TensorView& dst);

  // --- Overlap scheduling (engine/model_runner.h) ---
  // The ids the previous step sampled (int32 [rows], on the device): a later step's token id -(r + 1)
  // stands for row r of it, resolved on the device by begin_step before anything reads the ids.
  void set_previous_step_tokens(const TensorView& ids);
  // Whether begin_step accepts `id` as a step's token: in the vocabulary, or a previous-step row.
  bool valid_step_token(int32_t id, int64_t vocab) const;
  // A CUDA event: record() marks the work queued so far, wait() blocks the host until it has run (unlike
  // synchronize(), which waits for everything queued, including a later step's).
  // Page-locked host memory, which async copies to the host need.
  void* alloc_pinned(size_t bytes);
  void free_pinned(void* pointer);
  void* create_event();
  void destroy_event(void* event);
  void record_event(void* event);
  void wait_event(void* event);

 private:
  explicit CudaBackend(CudaDeviceInfo info);
  const float* rope_inv_freq(const RopeTable& rope);
  // A float workspace of at least `floats`: grown (generously, so it settles after a few steps) by a new
  // allocation, the old one retired (a captured graph may still point at it).
  float* grown_workspace(Tensor& workspace, int64_t floats);
  // The checks and launch parameters rope_and_store_kv / attention and their fused form share.
  cuda::RopeStoreParams rope_store_params(const TensorView& q, const TensorView& k, const TensorView& v,
                                          const RopeTable& rope, int32_t head_dim, const LayerKvCache& cache);
  cuda::AttentionParams attention_params(const TensorView& q, const LayerKvCache& cache, int32_t num_q_heads,
                                         int32_t num_kv_heads, int32_t head_dim, float scale, const TensorView& out);
  // linear (out =) and linear_add (out +=): the GEMV for decode shapes it wins, cuBLASLt otherwise.
  void matmul(const TensorView& x, const TensorView& weight, const TensorView& bias, const TensorView& out,
              bool accumulate);

  CudaDeviceInfo info_;
  void* stream_ = nullptr;  // cudaStream_t
  std::shared_ptr<cuda::DeviceAllocator> allocator_;
  std::unique_ptr<cuda::CublasLtGemm> gemm_;
  std::unique_ptr<cuda::StepArrays> step_;
  ForwardBatch host_batch_;  // the step's batch as given (host checks read it)
  int64_t checked_slots_ = -1;  // cache size the step's kv_slots / page ids were last checked against
  int64_t checked_pages_ = -1;
  // Step metadata: pinned staging on the host, one device buffer; both grow only when a bigger batch comes.
  void* staging_ = nullptr;
  void* step_device_ = nullptr;
  size_t step_capacity_ = 0;
  void* staging_free_event_ = nullptr;  // cudaEvent_t: the last upload from staging has finished
  const int32_t* previous_step_tokens_ = nullptr;  // set_previous_step_tokens
  int64_t previous_step_rows_ = 0;
  std::vector<std::pair<std::vector<float>, Tensor>> rope_tables_;  // device copies of inv_freq, by content
  Tensor attention_partial_;
  Tensor split_partials_workspace_;  // linear_add_rms_norm's f32 partial products
  bool split_partials_ = true;
  bool force_split_partials_ = false;
  int64_t split_partials_calls_ = 0;
  Tensor argmax_out_;
  Tensor argmax_slices_;  // argmax workspace: per-slice best values, then indices
  void ensure_argmax_workspace(int64_t rows);
  // Workspaces replaced by bigger ones stay allocated: a captured graph may still point at them.
  std::vector<Tensor> retired_workspaces_;
  bool static_steps_ = false;
  bool capturing_ = false;
  StaticStepCapacity static_capacity_;
  void* static_staging_ = nullptr;
  void* static_device_ = nullptr;
  size_t static_bytes_ = 0;
  void* begin_op();  // cudaEvent_t or null
  void end_op(const char* name, void* start);
  void collect_op_times();
  bool op_timing_ = false;
  std::vector<void*> event_pool_;
  std::vector<std::tuple<const char*, void*, void*>> pending_ops_;
  std::map<std::string, std::pair<double, int64_t>> op_times_;  // name -> (ms, calls)
  bool force_cublaslt_ = false;
  // Whether the last kernel launched (by matmul or head_rms_norm) lets a programmatic dependent start before
  // it finishes: rope_and_store_kv then computes its cos/sin table before its wait (RopeStoreParams), and
  // rope_store_and_attention fuses RoPE into the decode attention (rope_fusion_).
  bool dependents_start_early_ = false;
  int32_t gemv_warps_per_row_ = 0;
  RopeFusion rope_fusion_ = RopeFusion::kAfterEarlyMatmul;
  // The Hopper decode GEMM's split-K workspace (cuda_kernels.h); empty where the kernel does not run.
  Tensor decode_gemm_partials_;
  Tensor decode_gemm_counters_;
};

}  // namespace radixlm
