#include "backends/cuda/cuda_backend.h"

#include <algorithm>
#include <limits>
#include <cstring>

#include "backends/cuda/cublaslt_gemm.h"
#include "backends/cuda/cuda_check.h"
#include "backends/cuda/cuda_kernels.h"
#include "backends/cuda/device_allocator.h"
#include "backends/cuda/env_switch.h"

namespace radixlm {
namespace {

cudaStream_t as_stream(void* stream) { return static_cast<cudaStream_t>(stream); }

uint16_t* bf16_ptr(const TensorView& t) { return static_cast<uint16_t*>(t.data); }

void check_device_rows(const TensorView& t, DType dtype, const char* what) {
  RADIXLM_CHECK(t.device == Device::kCuda && t.dtype == dtype && t.ndim() == 2 && t.is_contiguous(),
                "{}: want a contiguous {} [rows, cols] on the GPU, got {} {}", what, dtype_name(dtype),
                dtype_name(t.dtype), t.shape.to_string());
}

// Rows of contiguous elements at any stride (the q, k and v column blocks of the fused projection), 16-byte
// aligned rows.
void check_device_strided_rows(const TensorView& t, const char* what) {
  RADIXLM_CHECK(t.device == Device::kCuda && t.dtype == DType::kBF16 && t.is_row_strided(),
                "{}: want bf16 [rows, cols] with contiguous rows on the GPU, got {} {}", what, dtype_name(t.dtype),
                t.shape.to_string());
}

void check_vector(const TensorView& t, int64_t size, const char* what) {
  RADIXLM_CHECK(t.device == Device::kCuda && t.dtype == DType::kBF16 && t.numel() == size && t.is_contiguous(),
                "{}: want bf16 [{}] on the GPU, got {} {}", what, size, dtype_name(t.dtype), t.shape.to_string());
}

// Brackets one op with CUDA events when op timing is on (RADIXLM_CUDA_OP_TIMES=1).
class OpTimerScope {
 public:
  OpTimerScope(CudaBackend& backend, void* (CudaBackend::*begin)(), void (CudaBackend::*end)(const char*, void*),
               const char* name)
      : backend_(backend), end_(end), name_(name), start_((backend.*begin)()) {}
  ~OpTimerScope() {
    if (start_) (backend_.*end_)(name_, start_);
  }
  OpTimerScope(const OpTimerScope&) = delete;
  OpTimerScope& operator=(const OpTimerScope&) = delete;

 private:
  CudaBackend& backend_;
  void (CudaBackend::*end_)(const char*, void*);
  const char* name_;
  void* start_;
};

#define RADIXLM_OP_TIMER(name) \
  OpTimerScope op_timer_scope(*this, &CudaBackend::begin_op, &CudaBackend::end_op, name)

size_t align_up(size_t value, size_t alignment) { return (value + alignment - 1) / alignment * alignment; }

}  // namespace

Expected<CudaDeviceInfo> probe_cuda_device(int device) {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) {
    (void)cudaGetLastError();
    return make_error(StatusCode::kUnsupported, "no usable CUDA device: {} ({})", cudaGetErrorString(error),
                      cudaGetErrorName(error));
  }
  if (count == 0) return make_error(StatusCode::kUnsupported, "no CUDA device found");
  if (device < 0 || device >= count) {
    return make_error(StatusCode::kInvalidArgument, "CUDA device {} does not exist ({} found)", device, count);
  }
  cudaDeviceProp prop{};
  RADIXLM_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  if (prop.major < 8) {
    return make_error(StatusCode::kUnsupported, "CUDA device {} ({}) has compute capability {}.{}; 8.0+ is needed",
                      device, prop.name, prop.major, prop.minor);
  }
  CudaDeviceInfo info;
  info.device = device;
  info.name = prop.name;
  info.num_sms = prop.multiProcessorCount;
  info.total_memory = prop.totalGlobalMem;
  return info;
}

Expected<std::unique_ptr<CudaBackend>> CudaBackend::create(int device) {
  RADIXLM_ASSIGN_OR_RETURN(CudaDeviceInfo info, probe_cuda_device(device));
  RADIXLM_CUDA_CHECK(cudaSetDevice(device));
  return std::unique_ptr<CudaBackend>(new CudaBackend(std::move(info)));
}

CudaBackend::CudaBackend(CudaDeviceInfo info)
    : info_(std::move(info)), allocator_(std::make_shared<cuda::DeviceAllocator>()),
      step_(std::make_unique<cuda::StepArrays>()) {
  cudaStream_t stream = nullptr;
  RADIXLM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  stream_ = stream;
  gemm_ = std::make_unique<cuda::CublasLtGemm>();
  cudaEvent_t event = nullptr;
  RADIXLM_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  staging_free_event_ = event;
  argmax_out_ = alloc(DType::kI32, {4096});
  argmax_slices_ = alloc(DType::kI32, {4096 * 2 * cuda::kArgmaxSlices});
  if (cuda::decode_gemm_supported()) {
    decode_gemm_partials_ =
        alloc_uninitialized(DType::kF32, {cuda::kDecodeGemmMaxSlots * 128 * cuda::kDecodeGemmMaxTokens});
    decode_gemm_counters_ = alloc(DType::kI32, {cuda::kDecodeGemmMaxSlots});  // zeroed
  }
  if (cuda::env_is("RADIXLM_CUDA_FUSE_ROPE", "0")) rope_fusion_ = RopeFusion::kNever;
  if (cuda::env_is("RADIXLM_CUDA_FUSE_ROPE", "2")) rope_fusion_ = RopeFusion::kAlways;
  split_partials_ = cuda::env_switch_on("RADIXLM_CUDA_SPLIT_PARTIALS");
  op_timing_ = cuda::env_is("RADIXLM_CUDA_OP_TIMES", "1");
}

void* CudaBackend::begin_op() {
  if (!op_timing_ || capturing_) return nullptr;
  if (event_pool_.empty()) {
    cudaEvent_t event = nullptr;
    RADIXLM_CUDA_CHECK(cudaEventCreate(&event));
    event_pool_.push_back(event);
  }
  void* event = event_pool_.back();
  event_pool_.pop_back();
  RADIXLM_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event), as_stream(stream_)));
  return event;
}

void CudaBackend::end_op(const char* name, void* start) {
  void* end = begin_op();
  pending_ops_.emplace_back(name, start, end);
}

void CudaBackend::collect_op_times() {
  if (pending_ops_.empty()) return;
  RADIXLM_CUDA_CHECK(cudaStreamSynchronize(as_stream(stream_)));
  for (auto& [name, start, end] : pending_ops_) {
    float ms = 0.0f;
    RADIXLM_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start), static_cast<cudaEvent_t>(end)));
    auto& [total, calls] = op_times_[name];
    total += ms;
    ++calls;
    event_pool_.push_back(start);
    event_pool_.push_back(end);
  }
  pending_ops_.clear();
}

std::string CudaBackend::op_time_report() {
  collect_op_times();
  std::vector<std::pair<std::string, std::pair<double, int64_t>>> rows(op_times_.begin(), op_times_.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  double total = 0.0;
  for (const auto& row : rows) total += row.second.first;
  std::string out = "op GPU time (RADIXLM_CUDA_OP_TIMES):\n";
  for (const auto& [name, value] : rows) {
    out += "  " + name + std::string(name.size() < 18 ? 18 - name.size() : 1, ' ') + std::to_string(value.first) +
           " ms  " + std::to_string(value.second) + " calls  " + std::to_string(1000.0 * value.first / value.second) +
           " us/call  " + std::to_string(100.0 * value.first / total) + "%\n";
  }
  return out;
}

CudaBackend::~CudaBackend() {
  cudaStreamSynchronize(as_stream(stream_));
  rope_tables_.clear();
  attention_partial_ = Tensor();
  split_partials_workspace_ = Tensor();
  argmax_out_ = Tensor();
  argmax_slices_ = Tensor();
  decode_gemm_partials_ = Tensor();
  decode_gemm_counters_ = Tensor();
  gemm_.reset();
  retired_workspaces_.clear();
  if (staging_) cudaFreeHost(staging_);
  if (step_device_) cudaFree(step_device_);
  if (static_staging_) cudaFreeHost(static_staging_);
  if (static_device_) cudaFree(static_device_);
  if (staging_free_event_) cudaEventDestroy(static_cast<cudaEvent_t>(staging_free_event_));
  if (stream_) cudaStreamDestroy(as_stream(stream_));
}

Tensor CudaBackend::alloc_uninitialized(DType dtype, const Shape& shape) {
  const size_t bytes = static_cast<size_t>(shape.numel()) * dtype_size(dtype);
  size_t rounded = 0;
  void* data = allocator_->allocate(bytes, &rounded);
  std::shared_ptr<cuda::DeviceAllocator> allocator = allocator_;
  std::shared_ptr<void> storage(data, [allocator, rounded](void* p) { allocator->release(p, rounded); });
  return Tensor(TensorView(data, dtype, shape, Device::kCuda), std::move(storage));
}

Tensor CudaBackend::alloc(DType dtype, const Shape& shape) {
  Tensor tensor = alloc_uninitialized(dtype, shape);
  if (tensor.view.nbytes() > 0) {
    RADIXLM_OP_TIMER("alloc_memset");
    RADIXLM_CUDA_CHECK(cudaMemsetAsync(tensor.view.data, 0, tensor.view.nbytes(), as_stream(stream_)));
  }
  return tensor;
}

Tensor CudaBackend::upload(const Tensor& host) {
  RADIXLM_CHECK(host.view.device == Device::kCpu && host.view.is_contiguous(), "upload wants a contiguous host tensor");
  RADIXLM_CHECK(dtype_is_float(host.dtype()), "upload: {} is not a float dtype", dtype_name(host.dtype()));
  Tensor device = alloc_uninitialized(DType::kBF16, host.shape());
  const size_t count = static_cast<size_t>(host.view.numel());
  if (count == 0) return device;
  if (host.dtype() == DType::kBF16) {
    RADIXLM_CUDA_CHECK(cudaMemcpyAsync(device.view.data, host.view.data, count * 2, cudaMemcpyHostToDevice,
                                       as_stream(stream_)));
  } else {
    // Converted on the host in chunks: exact rounding to nearest even, as torch's .to(bfloat16).
    constexpr size_t kChunk = size_t{1} << 22;
    std::vector<float> f32(std::min(count, kChunk));
    std::vector<uint16_t> bf16(f32.size());
    for (size_t begin = 0; begin < count; begin += kChunk) {
      const size_t n = std::min(kChunk, count - begin);
      convert_to_f32(host.dtype(), static_cast<const uint8_t*>(host.view.data) + begin * dtype_size(host.dtype()),
                     f32.data(), n);
      for (size_t i = 0; i < n; ++i) bf16[i] = f32_to_bf16(f32[i]);
      RADIXLM_CUDA_CHECK(cudaMemcpyAsync(static_cast<uint16_t*>(device.view.data) + begin, bf16.data(), n * 2,
                                         cudaMemcpyHostToDevice, as_stream(stream_)));
      RADIXLM_CUDA_CHECK(cudaStreamSynchronize(as_stream(stream_)));  // the host buffers are reused
    }
  }
  RADIXLM_CUDA_CHECK(cudaStreamSynchronize(as_stream(stream_)));  // the host tensor may be freed after this
  return device;
}

void CudaBackend::copy_to_host(const TensorView& src, void* dst) {
  RADIXLM_CHECK(src.device == Device::kCuda && src.is_contiguous());
  RADIXLM_CUDA_CHECK(cudaMemcpyAsync(dst, src.data, src.nbytes(), cudaMemcpyDeviceToHost, as_stream(stream_)));
  RADIXLM_CUDA_CHECK(cudaStreamSynchronize(as_stream(stream_)));
  collect_op_times();
}

void CudaBackend::copy_to_host_f32(const TensorView& src, float* dst) {
  RADIXLM_CHECK(src.device == Device::kCuda && src.is_contiguous() && dtype_is_float(src.dtype));
  if (src.dtype == DType::kF32) {
    copy_to_host(src, dst);
    return;
  }
  std::vector<uint8_t> raw(src.nbytes());
  copy_to_host(src, raw.data());
  convert_to_f32(src.dtype, raw.data(), dst, static_cast<size_t>(src.numel()));
}

void CudaBackend::synchronize() { RADIXLM_CUDA_CHECK(cudaStreamSynchronize(as_stream(stream_))); }

size_t CudaBackend::device_malloc_calls() const { return allocator_->malloc_calls(); }

void CudaBackend::begin_step(const ForwardBatch& batch) {
  // The batch is the engine's; a broken one is a bug, so it is checked once here (as the CPU backend does).
  const int32_t num_seqs = batch.num_seqs();
  const int32_t tokens = batch.num_tokens();
  RADIXLM_CHECK(batch.page_size > 0);
  RADIXLM_CHECK(batch.positions.size() == batch.token_ids.size() && batch.kv_slots.size() == batch.token_ids.size());
  RADIXLM_CHECK(static_cast<int32_t>(batch.query_start.size()) == num_seqs + 1 && batch.query_start.front() == 0 &&
                batch.query_start.back() == tokens);
  RADIXLM_CHECK(static_cast<int32_t>(batch.page_table_start.size()) == num_seqs + 1 &&
                batch.page_table_start.back() == static_cast<int32_t>(batch.page_table.size()));
  for (int32_t s = 0; s < num_seqs; ++s) {
    const int32_t pages = batch.page_table_start[s + 1] - batch.page_table_start[s];
    RADIXLM_CHECK(static_cast<int64_t>(pages) * batch.page_size >= batch.kv_length[s],
                  "sequence {} has {} pages for {} kv tokens", s, pages, batch.kv_length[s]);
    RADIXLM_CHECK(batch.query_start[s + 1] >= batch.query_start[s]);
    for (int32_t t = batch.query_start[s]; t < batch.query_start[s + 1]; ++t) {
      RADIXLM_CHECK(batch.positions[t] >= 0 && batch.positions[t] < batch.kv_length[s]);
    }
  }
  for (int32_t row : batch.logit_rows) RADIXLM_CHECK(row >= 0 && row < tokens);

  // One packed buffer: int64 slots first (8-byte aligned), then the int32 arrays. Static steps lay it out
  // for the capacity, so every array sits at the same address whatever the batch.
  size_t n_tok = batch.token_ids.size(), n_seq = batch.kv_length.size();
  size_t n_pages = batch.page_table.size(), n_rows = batch.logit_rows.size();
  if (static_steps_) {
    RADIXLM_CHECK(n_tok <= static_cast<size_t>(static_capacity_.tokens) &&
                  n_seq <= static_cast<size_t>(static_capacity_.seqs) &&
                  n_rows <= static_cast<size_t>(static_capacity_.rows) &&
                  n_pages <= static_cast<size_t>(static_capacity_.pages),
                  "static step of {} tokens, {} sequences, {} pages exceeds the reserved capacity", n_tok, n_seq,
                  n_pages);
    n_tok = static_cast<size_t>(static_capacity_.tokens);
    n_seq = static_cast<size_t>(static_capacity_.seqs);
    n_pages = static_cast<size_t>(static_capacity_.pages);
    n_rows = static_cast<size_t>(static_capacity_.rows);
  }
  size_t offset = 0;
  const size_t off_slots = offset;
  offset += n_tok * 8;
  const size_t off_ids = offset;
  offset += n_tok * 4;
  const size_t off_pos = offset;
  offset += n_tok * 4;
  const size_t off_qs = offset;
  offset += (n_seq + 1) * 4;
  const size_t off_kvl = offset;
  offset += n_seq * 4;
  const size_t off_pts = offset;
  offset += (n_seq + 1) * 4;
  const size_t off_pt = offset;
  offset += n_pages * 4;
  const size_t off_rows = offset;
  offset += n_rows * 4;
  const size_t bytes = align_up(offset + 8, 256);

  cudaEvent_t staging_free = static_cast<cudaEvent_t>(staging_free_event_);
  void* staging = staging_;
  void* step_device = step_device_;
  if (static_steps_) {
    RADIXLM_CHECK(bytes <= static_bytes_, "reserve_static_steps() before static steps");
    staging = static_staging_;
    step_device = static_device_;
  } else {
    RADIXLM_CUDA_CHECK(cudaEventSynchronize(staging_free));  // the previous upload has left the staging buffer
    if (bytes > step_capacity_) {
      // Grows rarely (only for a bigger batch than any before); the old buffers may still be read by queued
      // kernels, so wait for them first.
      RADIXLM_CUDA_CHECK(cudaStreamSynchronize(as_stream(stream_)));
      if (staging_) RADIXLM_CUDA_CHECK(cudaFreeHost(staging_));
      if (step_device_) RADIXLM_CUDA_CHECK(cudaFree(step_device_));
      step_capacity_ = std::max(bytes * 2, size_t{1} << 20);
      RADIXLM_CUDA_CHECK(cudaMallocHost(&staging_, step_capacity_));
      RADIXLM_CUDA_CHECK(cudaMalloc(&step_device_, step_capacity_));
    }
    staging = staging_;
    step_device = step_device_;
  }
  if (!capturing_) {  // a capture reads the step the caller uploaded just before it began
    if (static_steps_) RADIXLM_CUDA_CHECK(cudaEventSynchronize(staging_free));
    auto* host = static_cast<uint8_t*>(staging);
    auto put = [&](size_t at, const auto& vec) {
      if (!vec.empty()) std::memcpy(host + at, vec.data(), vec.size() * sizeof(vec[0]));
    };
    put(off_slots, batch.kv_slots);
    put(off_ids, batch.token_ids);
    put(off_pos, batch.positions);
    put(off_qs, batch.query_start);
    put(off_kvl, batch.kv_length);
    put(off_pts, batch.page_table_start);
    put(off_pt, batch.page_table);
    put(off_rows, batch.logit_rows);
    {
      RADIXLM_OP_TIMER("begin_step_upload");
      RADIXLM_CUDA_CHECK(cudaMemcpyAsync(step_device, staging, offset, cudaMemcpyHostToDevice, as_stream(stream_)));
    }
    RADIXLM_CUDA_CHECK(cudaEventRecord(staging_free, as_stream(stream_)));
    if (std::any_of(batch.token_ids.begin(), batch.token_ids.end(), [](int32_t id) { return id < 0; })) {
      RADIXLM_CHECK(previous_step_tokens_ != nullptr, "a future token id with no previous step");
      cuda::launch_resolve_future_tokens(reinterpret_cast<int32_t*>(static_cast<uint8_t*>(step_device) + off_ids),
                                         static_cast<int32_t>(n_tok), previous_step_tokens_, as_stream(stream_));
      RADIXLM_CUDA_CHECK(cudaGetLastError());
    }
  }

  auto* dev = static_cast<uint8_t*>(step_device);
  cuda::StepArrays& step = *step_;
  step.kv_slots = reinterpret_cast<const int64_t*>(dev + off_slots);
  step.token_ids = reinterpret_cast<const int32_t*>(dev + off_ids);
  step.positions = reinterpret_cast<const int32_t*>(dev + off_pos);
  step.query_start = reinterpret_cast<const int32_t*>(dev + off_qs);
  step.kv_length = reinterpret_cast<const int32_t*>(dev + off_kvl);
  step.page_table_start = reinterpret_cast<const int32_t*>(dev + off_pts);
  step.page_table = reinterpret_cast<const int32_t*>(dev + off_pt);
  step.logit_rows = reinterpret_cast<const int32_t*>(dev + off_rows);
  step.num_tokens = tokens;
  step.num_seqs = num_seqs;
  step.num_logit_rows = static_cast<int32_t>(batch.logit_rows.size());
  step.page_size = batch.page_size;
  step.max_query_len = batch.max_query_len();
  // Static steps split the keys as for the longest context, so the split count depends on the batch size
  // alone (splits past a short sequence's end find no keys and cost one empty block each).
  step.max_kv_len = static_steps_ ? (int32_t{1} << 30) : batch.max_kv_len();
  host_batch_ = batch;
  checked_slots_ = checked_pages_ = -1;
}

void CudaBackend::embedding(const TensorView& table, const TensorView& out) {
  RADIXLM_OP_TIMER("embedding");
  check_device_rows(table, DType::kBF16, "embedding table");
  check_device_rows(out, DType::kBF16, "embedding out");
  RADIXLM_CHECK(table.size(1) == out.size(1) && out.size(0) == step_->num_tokens);
  for (int32_t id : host_batch_.token_ids) {
    RADIXLM_CHECK(valid_step_token(id, table.size(0)), "token id {} outside the vocabulary of {}", id, table.size(0));
  }
  cuda::launch_embedding(bf16_ptr(table), table.size(0), table.size(1), *step_, bf16_ptr(out), as_stream(stream_));
  RADIXLM_CUDA_CHECK(cudaGetLastError());
}

void CudaBackend::rms_norm(const TensorView& x, const TensorView& weight, float eps, const TensorView& out) {
  RADIXLM_OP_TIMER("rms_norm");
  check_device_rows(x, DType::kBF16, "rms_norm x");
  check_device_rows(out, DType::kBF16, "rms_norm out");
  RADIXLM_CHECK(x.shape == out.shape);
  check_vector(weight, x.size(1), "rms_norm weight");
  cuda::RmsNormParams p;
  p.x = bf16_ptr(x);
  p.weight = bf16_ptr(weight);
  p.out = bf16_ptr(out);
  p.rows = x.size(0);
  p.width = x.size(1);
  p.eps = eps;
  cuda::launch_rms_norm(p, as_stream(stream_));
  RADIXLM_CUDA_CHECK(cudaGetLastError());
}

void CudaBackend::head_rms_norm(const TensorView& x, const TensorView& weight, int32_t head_dim, float eps) {
  RADIXLM_OP_TIMER("head_rms_norm");
  check_device_strided_rows(x, "head_rms_norm x");
  RADIXLM_CHECK(head_dim > 0 && x.size(1) % head_dim == 0, "width {} is not a multiple of head_dim {}", x.size(1),
                head_dim);
  check_vector(weight, head_dim, "head_rms_norm weight");
  cuda::launch_head_rms_norm(bf16_ptr(x), bf16_ptr(weight), x.size(0), x.size(1), x.row_stride(), head_dim, eps,
                             as_stream(stream_));
  RADIXLM_CUDA_CHECK(cudaGetLastError());
  dependents_start_early_ = false;  // launched plainly
}

void CudaBackend::linear(const TensorView& x, const TensorView& weight, const TensorView& bias,
                         const TensorView& out) {
  matmul(x, weight, bias, out, /*accumulate=*/false);
}

void CudaBackend::linear_add(const TensorView& x, const TensorView& weight, const TensorView& bias,
                             const TensorView& residual) {
  RADIXLM_CHECK(residual.dtype == DType::kBF16, "linear_add residual {}: the residual stream is bf16",
                dtype_name(residual.dtype));
  matmul(x, weight, bias, residual, /*accumulate=*/true);
}

void CudaBackend::linear_add_rms_norm(const TensorView& x, const TensorView& weight, const TensorView& bias,
                                      const TensorView& residual, const TensorView& norm_weight, float eps,
                                      const TensorView& out) {
  const auto aligned = [](const TensorView& t) { return reinterpret_cast<uintptr_t>(t.data) % 16 == 0; };
  const int64_t tokens = x.ndim() == 2 ? x.size(0) : 0, k = x.ndim() == 2 ? x.size(1) : 0;
  const int64_t n = weight.ndim() == 2 ? weight.size(0) : 0;
  // A decode step's matmul that would run on cuBLASLt (past the decode GEMM's 16 tokens), with operands
  // cuBLASLt's strided batches can slice and rows the summing kernel takes.
  const bool candidate = split_partials_ && !force_cublaslt_ && step_->max_query_len <= 1 &&
                         tokens > cuda::kDecodeGemmMaxTokens && x.device == Device::kCuda &&
                         x.dtype == DType::kBF16 && x.is_contiguous() && weight.dtype == DType::kBF16 &&
                         weight.is_contiguous() && weight.size(1) == k && k % 8 == 0 &&
                         cuda::add_partials_rms_norm_supported(n) && residual.dtype == DType::kBF16 &&
                         residual.is_contiguous() && residual.shape == Shape{tokens, n} &&
                         out.shape == residual.shape && out.dtype == DType::kBF16 && out.is_contiguous() &&
                         aligned(x) && aligned(weight) && aligned(residual) && aligned(out);
  int splits = 0;
  float* partials = nullptr;
  if (candidate) {
    check_vector(norm_weight, n, "linear_add_rms_norm norm weight");
    if (bias.data != nullptr) check_vector(bias, n, "linear_add_rms_norm bias");
    // The partials of every count fit a 32 MB workspace beside the KV pool (8 slices up to 256 tokens at a
    // hidden size of 4096).
    constexpr int64_t kPartialsBudget = int64_t{8} << 20;  // floats
    int max_splits = 1;
    while (max_splits < cuda::kMaxPartialSplits && 2 * max_splits * tokens * n <= kPartialsBudget) max_splits *= 2;
    partials = grown_workspace(split_partials_workspace_, max_splits * tokens * n);
    splits = gemm_->run_split_partials(bf16_ptr(x), bf16_ptr(weight), partials, tokens, n, k, max_splits,
                                       /*against_plain=*/!force_split_partials_, as_stream(stream_));
  }
  if (splits == 0) {  // not a candidate, or the plain matmul (and its own split-K sum, if any) is faster
    linear_add(x, weight, bias, residual);
    rms_norm(residual, norm_weight, eps, out);
    return;
  }
  RADIXLM_OP_TIMER("linear_add_rms_norm");
  ++split_partials_calls_;
  cuda::AddPartialsRmsNormParams p;
  p.partials = partials;
  p.splits = splits;
  p.bias = bias.data != nullptr ? bf16_ptr(bias) : nullptr;
  p.residual = bf16_ptr(residual);
  p.weight = bf16_ptr(norm_weight);
  p.out = bf16_ptr(out);
  p.rows = tokens;
  p.width = n;
  p.eps = eps;
  cuda::launch_add_partials_rms_norm(p, as_stream(stream_));
  RADIXLM_CUDA_CHECK(cudaGetLastError());
}

void CudaBackend::matmul(const TensorView& x, const TensorView& weight, const TensorView& bias, const TensorView& out,
                         bool accumulate) {
  check_device_rows(x, DType::kBF16, "linear x");
  check_device_rows(weight, DType::kBF16, "linear weight");
  RADIXLM_CHECK(out.device == Device::kCuda && out.ndim() == 2 && out.is_contiguous() &&
                (out.dtype == DType::kBF16 || out.dtype == DType::kF32), "linear out {} {}", dtype_name(out.dtype),
                out.shape.to_string());
  const int64_t tokens = x.size(0), k = x.size(1), n = weight.size(0);
  RADIXLM_CHECK(weight.size(1) == k && out.size(0) == tokens && out.size(1) == n, "linear: x {} weight {} out {}",
                x.shape.to_string(), weight.shape.to_string(), out.shape.to_string());
  const bool has_bias = bias.data != nullptr;
  if (has_bias) check_vector(bias, n, "linear bias");
  if (tokens == 0 || n == 0) return;
  const bool out_f32 = out.dtype == DType::kF32;
  const auto* bias_ptr = has_bias ? static_cast<const uint16_t*>(bias.data) : nullptr;
  const bool aligned = reinterpret_cast<uintptr_t>(x.data) % 16 == 0 && reinterpret_cast<uintptr_t>(weight.data) % 16 == 0;
  // The GEMV kernel streams the weights once for all tokens, but re-reads the activations per weight row:
  // it beats cuBLASLt for one token, and for up to 8 tokens only on narrow matrices (bench linear). Other
  // shapes of up to 16 tokens run the decode GEMM on Hopper (TMA + wgmma), the rest cuBLASLt.
  const bool gemv_shape = tokens == 1 || (tokens <= cuda::kGemvMaxTokens && n < 2048);
  // The operands both decode matmul kernels take (GemvParams and DecodeGemmParams name them alike).
  const auto with_operands = [&](auto p) {
    p.x = bf16_ptr(x);
    p.w = bf16_ptr(weight);
    p.bias = bias_ptr;
    p.out = out.data;
    p.out_f32 = out_f32;
    p.accumulate = accumulate;
    p.tokens = static_cast<int32_t>(tokens);
    p.n = n;
    p.k = k;
    return p;
  };
  if (!force_cublaslt_ && gemv_shape && k % 8 == 0 && aligned) {
    RADIXLM_OP_TIMER(n >= 16384 ? "linear_gemv_wide" : "linear_gemv");
    cuda::GemvParams p = with_operands(cuda::GemvParams{});
    p.warps_per_row = gemv_warps_per_row_;
    cuda::launch_gemv(p, as_stream(stream_));
    RADIXLM_CUDA_CHECK(cudaGetLastError());
    dependents_start_early_ = true;
    return;
  }
  if (!force_cublaslt_ && decode_gemm_counters_.view.data != nullptr && tokens <= cuda::kDecodeGemmMaxTokens &&
      k % 8 == 0 && aligned) {
    RADIXLM_OP_TIMER("linear_decode_gemm");
    cuda::DecodeGemmParams p = with_operands(cuda::DecodeGemmParams{});
    p.splits = cuda::decode_gemm_splits(n, k, info_.num_sms);
    p.partials = decode_gemm_partials_.as<float>();
    p.counters = decode_gemm_counters_.as<int32_t>();
    if (cuda::launch_decode_gemm(p, as_stream(stream_))) {
      RADIXLM_CUDA_CHECK(cudaGetLastError());
      dependents_start_early_ = true;
      return;
    }
  }
  const bool decode = step_->max_query_len <= 1;
  RADIXLM_OP_TIMER(decode ? "linear_cublaslt" : "linear_cublaslt_prefill");
  const bool fuse_bias = has_bias && !out_f32;
  // Decode shapes are few (the graph buckets) and run every step: worth timing cuBLASLt's candidates once.
  const bool ran = gemm_->run(bf16_ptr(x), bf16_ptr(weight), fuse_bias ? bias_ptr : nullptr, out.data, out_f32,
                              accumulate, tokens, n, k, /*tune=*/decode, as_stream(stream_));
  RADIXLM_CHECK(ran, "cuBLASLt has no algorithm for linear [{}, {}] x [{}, {}]^T", tokens, k, n, k);
  if (has_bias && !fuse_bias) cuda::launch_add_bias(out.data, out_f32, bias_ptr, tokens, n, as_stream(stream_));
  RADIXLM_CUDA_CHECK(cudaGetLastError());
  dependents_start_early_ = false;  // cuBLASLt's kernels do not trigger programmatic dependents
}

void CudaBackend::linear_silu_and_mul(const TensorView& x, const TensorView& weight, const TensorView& bias,
                                      const TensorView& out) {
  check_device_rows(x, DType::kBF16, "linear_silu_and_mul x");
  check_device_rows(weight, DType::kBF16, "linear_silu_and_mul weight");
  check_device_rows(out, DType::kBF16, "linear_silu_and_mul out");
  const int64_t tokens = x.size(0), k = x.size(1), inter = out.size(1);
  RADIXLM_CHECK(weight.size(0) == 2 * inter && weight.size(1) == k && out.size(0) == tokens,
                "linear_silu_and_mul: x {} weight {} out {}", x.shape.to_string(), weight.shape.to_string(),
                out.shape.to_string());
  const bool aligned = reinterpret_cast<uintptr_t>(x.data) % 16 == 0 && reinterpret_cast<uintptr_t>(weight.data) % 16 == 0;
  if (tokens == 1 && !force_cublaslt_ && k % 8 == 0 && aligned) {
    // One token: the GEMV computes a gate row and its up row in the same block and writes silu(gate) * up.
    RADIXLM_OP_TIMER("linear_silu_and_mul_gemv");
    if (bias.data != nullptr) check_vector(bias, 2 * inter, "linear_silu_and_mul bias");
    cuda::GemvParams p;
    p.x = bf16_ptr(x);
    p.w = bf16_ptr(weight);
    p.bias = bias.data != nullptr ? bf16_ptr(bias) : nullptr;
    p.out = out.data;
    p.tokens = 1;
    p.n = 2 * inter;
    p.k = k;
    p.warps_per_row = gemv_warps_per_row_;
    p.silu_pairs = inter;
    cuda::launch_gemv(p, as_stream(stream_));
    RADIXLM_CUDA_CHECK(cudaGetLastError());
    return;
  }
  Tensor gate_up = alloc_uninitialized(DType::kBF16, {tokens, 2 * inter});
  linear(x, weight, bias, gate_up);
  silu_and_mul(gate_up, out);
}

void CudaBackend::silu_and_mul(const TensorView& x, const TensorView& out) {
  RADIXLM_OP_TIMER("silu_and_mul");
  check_device_rows(x, DType::kBF16, "silu_and_mul x");
  check_device_rows(out, DType::kBF16, "silu_and_mul out");
  RADIXLM_CHECK(x.size(0) == out.size(0) && x.size(1) == 2 * out.size(1), "silu_and_mul: x {} out {}",
                x.shape.to_string(), out.shape.to_string());
  cuda::launch_silu_and_mul(bf16_ptr(x), bf16_ptr(out), out.size(0), out.size(1), as_stream(stream_));
  RADIXLM_CUDA_CHECK(cudaGetLastError());
}

const float* CudaBackend::rope_inv_freq(const RopeTable& rope) {
  for (auto& [values, tensor] : rope_tables_) {
    if (values == rope.inv_freq) return tensor.as<float>();
  }
  // First sight of this table (once per model): upload it and keep it.
  Tensor table = alloc_uninitialized(DType::kF32, {static_cast<int64_t>(rope.inv_freq.size())});
  RADIXLM_CUDA_CHECK(cudaMemcpyAsync(table.view.data, rope.inv_freq.data(), rope.inv_freq.size() * sizeof(float),
                                     cudaMemcpyHostToDevice, as_stream(stream_)));
  RADIXLM_CUDA_CHECK(cudaStreamSynchronize(as_stream(stream_)));
  rope_tables_.emplace_back(rope.inv_freq, table);
  return rope_tables_.back().second.as<float>();
}

cuda::RopeStoreParams CudaBackend::rope_store_params(const TensorView& q, const TensorView& k, const TensorView& v,
                                                     const RopeTable& rope, int32_t head_dim,
                                                     const LayerKvCache& cache) {
  check_device_strided_rows(q, "rope q");
  check_device_strided_rows(k, "rope k");
  check_device_strided_rows(v, "rope v");
  const int64_t tokens = step_->num_tokens;
  RADIXLM_CHECK(q.size(0) == tokens && k.shape == v.shape && k.size(0) == tokens);
  RADIXLM_CHECK(head_dim > 0 && q.size(1) % head_dim == 0 && k.size(1) % head_dim == 0);
  RADIXLM_CHECK(rope.rotary_dim > 0 && rope.rotary_dim <= head_dim && rope.rotary_dim % 2 == 0 &&
                static_cast<int32_t>(rope.inv_freq.size()) == rope.rotary_dim / 2);
  RADIXLM_CHECK(cache.k.dtype() == DType::kBF16 && cache.v.dtype() == DType::kBF16 &&
                cache.k.view.device == Device::kCuda, "CUDA KV cache is bf16 on the GPU");
  const int64_t kv_width = k.size(1);
  RADIXLM_CHECK(cache.k.view.numel() % kv_width == 0 && cache.v.view.numel() == cache.k.view.numel());
  const int64_t num_slots = cache.k.view.numel() / kv_width;
  if (checked_slots_ != num_slots) {  // once per step and cache size, not once per layer
    for (int64_t slot : host_batch_.kv_slots) {
      RADIXLM_CHECK(slot >= 0 && slot < num_slots, "kv slot {} outside the cache of {}", slot, num_slots);
    }
    checked_slots_ = num_slots;
  }
  cuda::RopeStoreParams p;
  p.q = bf16_ptr(q);
  p.k = bf16_ptr(k);
  p.v = bf16_ptr(v);
  p.q_stride = q.row_stride();
  p.k_stride = k.row_stride();
  p.v_stride = v.row_stride();
  p.k_cache = bf16_ptr(cache.k);
  p.v_cache = bf16_ptr(cache.v);
  p.inv_freq = rope_inv_freq(rope);
  p.q_heads = static_cast<int32_t>(q.size(1) / head_dim);
  p.kv_heads = static_cast<int32_t>(kv_width / head_dim);
  p.head_dim = head_dim;
  p.rotary_dim = rope.rotary_dim;
  p.interleaved = rope.interleaved;
  p.attention_scaling = rope.attention_scaling;
  p.table_before_wait = dependents_start_early_;
  return p;
}

void CudaBackend::rope_and_store_kv(const TensorView& q, const TensorView& k, const TensorView& v,
                                    const RopeTable& rope, int32_t head_dim, const LayerKvCache& cache) {
  RADIXLM_OP_TIMER("rope_and_store_kv");
  cuda::launch_rope_and_store_kv(rope_store_params(q, k, v, rope, head_dim, cache), *step_, as_stream(stream_));
  RADIXLM_CUDA_CHECK(cudaGetLastError());
}

float* CudaBackend::grown_workspace(Tensor& workspace, int64_t floats) {
  if (workspace.view.data == nullptr || floats > workspace.view.numel()) {
    if (workspace.view.data) retired_workspaces_.push_back(workspace);
    workspace = alloc_uninitialized(DType::kF32, {std::max<int64_t>(floats * 2, int64_t{1} << 20)});
  }
  return workspace.as<float>();
}

cuda::AttentionParams CudaBackend::attention_params(const TensorView& q, const LayerKvCache& cache, int32_t num_q_heads,
                                                    int32_t num_kv_heads, int32_t head_dim, float scale,
                                                    const TensorView& out) {
  check_device_strided_rows(q, "attention q");
  check_device_rows(out, DType::kBF16, "attention out");
  const int64_t tokens = step_->num_tokens;
  RADIXLM_CHECK(num_kv_heads > 0 && num_q_heads % num_kv_heads == 0, "GQA {} / {}", num_q_heads, num_kv_heads);
  RADIXLM_CHECK(num_q_heads / num_kv_heads <= 64, "GQA group {} > 64 is not supported", num_q_heads / num_kv_heads);
  RADIXLM_CHECK(cuda::attention_supports_head_dim(head_dim), "attention: head_dim {} is not supported", head_dim);
  RADIXLM_CHECK(q.size(0) == tokens && q.size(1) == int64_t{num_q_heads} * head_dim && out.shape == q.shape,
                "attention: q {} out {}", q.shape.to_string(), out.shape.to_string());
  RADIXLM_CHECK(q.row_stride() % 8 == 0 && reinterpret_cast<uintptr_t>(q.data) % 16 == 0,
                "attention: q rows must be 16-byte aligned");
  RADIXLM_CHECK(cache.k.dtype() == DType::kBF16 && cache.v.dtype() == DType::kBF16, "CUDA KV cache is bf16");
  const int64_t kv_row = int64_t{num_kv_heads} * head_dim;
  RADIXLM_CHECK(cache.k.view.numel() % kv_row == 0 && cache.v.view.numel() == cache.k.view.numel());
  const int64_t num_slots = cache.k.view.numel() / kv_row;
  if (checked_pages_ != num_slots) {  // once per step and cache size, not once per layer
    for (int32_t page : host_batch_.page_table) {
      RADIXLM_CHECK(page >= 0 && (int64_t{page} + 1) * host_batch_.page_size <= num_slots,
                    "page {} outside the cache", page);
    }
    checked_pages_ = num_slots;
  }
  cuda::AttentionParams p;
  p.q = bf16_ptr(q);
  p.q_stride = q.row_stride();
  p.k_cache = bf16_ptr(cache.k);
  p.v_cache = bf16_ptr(cache.v);
  p.out = bf16_ptr(out);
  p.q_heads = num_q_heads;
  p.kv_heads = num_kv_heads;
  p.head_dim = head_dim;
  p.scale = scale;
  p.num_sms = info_.num_sms;
  p.num_slots = num_slots;
  p.num_splits = cuda::attention_num_splits(*step_, num_q_heads, num_kv_heads, head_dim, info_.num_sms);
  const int64_t partial = cuda::attention_partial_floats(step_->num_tokens, num_q_heads, head_dim, p.num_splits);
  // The split count grows with the context (from 1 on short ones) up to the batch shape's cap; the
  // workspace is sized for that cap on the shape's first step, so a sequence growing step by step never
  // makes a later decode step allocate.
  cuda::StepArrays longest = *step_;
  longest.max_kv_len = std::numeric_limits<int32_t>::max();
  const int32_t most_splits = cuda::attention_num_splits(longest, num_q_heads, num_kv_heads, head_dim, info_.num_sms);
  const int64_t most = cuda::attention_partial_floats(step_->num_tokens, num_q_heads, head_dim, most_splits);
  if (std::max(partial, most) > 0) {
    float* workspace = grown_workspace(attention_partial_, std::max(partial, most));
    if (partial > 0) p.partial = workspace;
  }
  return p;
}

void CudaBackend::attention(const TensorView& q, const LayerKvCache& cache, int32_t num_q_heads, int32_t num_kv_heads,
                            int32_t head_dim, float scale, const TensorView& out) {
  RADIXLM_OP_TIMER(step_->max_query_len > 1 ? "attention_prefill" : "attention");
  cuda::launch_attention(attention_params(q, cache, num_q_heads, num_kv_heads, head_dim, scale, out), *step_,
                         as_stream(stream_));
  RADIXLM_CUDA_CHECK(cudaGetLastError());
}

// Decode steps of one new token per sequence with full-width rotation take the decode attention's fused
// form (cuda::launch_rope_store_attention) where rope_fusion_ says: no RoPE kernel between the q/k/v matmul
// and the attention.
void CudaBackend::rope_store_and_attention(const TensorView& q, const TensorView& k, const TensorView& v,
                                           const RopeTable& rope, int32_t head_dim, const LayerKvCache& cache,
                                           int32_t num_q_heads, int32_t num_kv_heads, float scale,
                                           const TensorView& out) {
  const bool aligned = k.row_stride() % 8 == 0 && v.row_stride() % 8 == 0 &&
                       (reinterpret_cast<uintptr_t>(k.data) | reinterpret_cast<uintptr_t>(v.data)) % 16 == 0;
  const bool fuse = rope_fusion_ == RopeFusion::kAlways ||
                    (rope_fusion_ == RopeFusion::kAfterEarlyMatmul && dependents_start_early_);
  if (!fuse || rope.rotary_dim != head_dim || !aligned || num_kv_heads <= 0 || num_q_heads % num_kv_heads != 0 ||
      !cuda::attention_fuses_rope(*step_, num_q_heads, num_kv_heads)) {
    Backend::rope_store_and_attention(q, k, v, rope, head_dim, cache, num_q_heads, num_kv_heads, scale, out);
    return;
  }
  RADIXLM_OP_TIMER("rope_store_and_attention");
  const cuda::RopeStoreParams r = rope_store_params(q, k, v, rope, head_dim, cache);
  RADIXLM_CHECK(r.q_heads == num_q_heads && r.kv_heads == num_kv_heads, "rope_store_and_attention: q {} k {}",
                q.shape.to_string(), k.shape.to_string());
  const cuda::AttentionParams p = attention_params(q, cache, num_q_heads, num_kv_heads, head_dim, scale, out);
  cuda::launch_rope_store_attention(p, r, *step_, as_stream(stream_));
  RADIXLM_CUDA_CHECK(cudaGetLastError());
}

void CudaBackend::gather_logit_rows(const TensorView& x, const TensorView& out) {
  RADIXLM_OP_TIMER("gather_logit_rows");
  RADIXLM_CHECK(x.ndim() == 2 && out.ndim() == 2 && x.dtype == out.dtype && x.size(1) == out.size(1) &&
                out.size(0) == step_->num_logit_rows && x.is_contiguous() && out.is_contiguous() &&
                x.device == Device::kCuda && out.device == Device::kCuda && dtype_size(x.dtype) == 2);
  RADIXLM_CHECK(x.size(0) == step_->num_tokens);
  cuda::launch_gather_rows(x.data, out.data, x.size(1) * 2, *step_, as_stream(stream_));
  RADIXLM_CUDA_CHECK(cudaGetLastError());
}

void CudaBackend::ensure_argmax_workspace(int64_t rows) {
  if (rows <= argmax_out_.view.numel()) return;
  retired_workspaces_.push_back(argmax_out_);
  retired_workspaces_.push_back(argmax_slices_);
  argmax_out_ = alloc(DType::kI32, {rows});
  argmax_slices_ = alloc(DType::kI32, {rows * 2 * cuda::kArgmaxSlices});
}

std::vector<int32_t> CudaBackend::argmax_rows(const TensorView& logits) {
  RADIXLM_OP_TIMER("argmax");
  check_device_rows(logits, DType::kF32, "argmax logits");
  const int64_t rows = logits.size(0);
  ensure_argmax_workspace(rows);
  cuda::launch_argmax_rows(logits.as<float>(), rows, logits.size(1), argmax_out_.as<int32_t>(), argmax_slices_.as<float>(),
                           argmax_slices_.as<int32_t>() + rows * cuda::kArgmaxSlices, as_stream(stream_));
  RADIXLM_CUDA_CHECK(cudaGetLastError());
  std::vector<int32_t> tokens(static_cast<size_t>(rows));
  if (rows > 0) copy_to_host(argmax_out_.view.slice_rows(0, rows), tokens.data());
  return tokens;
}

Tensor CudaBackend::argmax_rows_on_device(const TensorView& logits) {
  RADIXLM_OP_TIMER("argmax");
  check_device_rows(logits, DType::kF32, "argmax logits");
  const int64_t rows = logits.size(0);
  ensure_argmax_workspace(rows);
  Tensor out = alloc_uninitialized(DType::kI32, {rows});
  if (rows == 0) return out;
  cuda::launch_argmax_rows(logits.as<float>(), rows, logits.size(1), out.as<int32_t>(), argmax_slices_.as<float>(),
                           argmax_slices_.as<int32_t>() + rows * cuda::kArgmaxSlices, as_stream(stream_));
  RADIXLM_CUDA_CHECK(cudaGetLastError());
  return out;
}

void CudaBackend::copy_to_host_async(const TensorView& src, void* dst) {
  RADIXLM_CHECK(src.device == Device::kCuda && src.is_contiguous());
  RADIXLM_CUDA_CHECK(cudaMemcpyAsync(dst, src.data, src.nbytes(), cudaMemcpyDeviceToHost, as_stream(stream_)));
}

void CudaBackend::copy_async(const TensorView& src, const TensorView& dst) {
  RADIXLM_CHECK(src.device == Device::kCuda && dst.device == Device::kCuda && src.is_contiguous() &&
                dst.is_contiguous() && src.nbytes() <= dst.nbytes());
  RADIXLM_CUDA_CHECK(cudaMemcpyAsync(dst.data, src.data, src.nbytes(), cudaMemcpyDeviceToDevice, as_stream(stream_)));
}

void CudaBackend::set_previous_step_tokens(const TensorView& ids) {
  RADIXLM_CHECK(ids.device == Device::kCuda && ids.dtype == DType::kI32 && ids.is_contiguous());
  previous_step_tokens_ = ids.as<int32_t>();
  previous_step_rows_ = ids.numel();
}

bool CudaBackend::valid_step_token(int32_t id, int64_t vocab) const {
  return id >= 0 ? id < vocab : -int64_t{id} - 1 < previous_step_rows_;
}

void* CudaBackend::alloc_pinned(size_t bytes) {
  void* pointer = nullptr;
  RADIXLM_CUDA_CHECK(cudaMallocHost(&pointer, bytes));
  return pointer;
}

void CudaBackend::free_pinned(void* pointer) {
  if (pointer != nullptr) cudaFreeHost(pointer);
}

void* CudaBackend::create_event() {
  cudaEvent_t event = nullptr;
  RADIXLM_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  return event;
}

void CudaBackend::destroy_event(void* event) {
  if (event != nullptr) cudaEventDestroy(static_cast<cudaEvent_t>(event));
}

void CudaBackend::record_event(void* event) {
  RADIXLM_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event), as_stream(stream_)));
}

void CudaBackend::wait_event(void* event) {
  RADIXLM_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(event)));
  collect_op_times();
}

void CudaBackend::reserve_static_steps(const StaticStepCapacity& capacity) {
  const size_t tokens = static_cast<size_t>(capacity.tokens), seqs = static_cast<size_t>(capacity.seqs);
  const size_t bytes = align_up(tokens * 16 + (3 * seqs + 2) * 4 + static_cast<size_t>(capacity.pages) * 4 +
                                    static_cast<size_t>(capacity.rows) * 4 + 8, 256);
  static_capacity_ = capacity;
  if (bytes <= static_bytes_) return;
  RADIXLM_CUDA_CHECK(cudaStreamSynchronize(as_stream(stream_)));
  if (static_staging_) RADIXLM_CUDA_CHECK(cudaFreeHost(static_staging_));
  if (static_device_) RADIXLM_CUDA_CHECK(cudaFree(static_device_));
  RADIXLM_CUDA_CHECK(cudaMallocHost(&static_staging_, bytes));
  RADIXLM_CUDA_CHECK(cudaMalloc(&static_device_, bytes));
  static_bytes_ = bytes;
}

void CudaBackend::begin_capture() {
  RADIXLM_CHECK(!capturing_, "a capture is already under way");
  collect_op_times();
  // Relaxed: the allocator may still call cudaMalloc for a block the graph pool does not have yet.
  RADIXLM_CUDA_CHECK(cudaStreamBeginCapture(as_stream(stream_), cudaStreamCaptureModeRelaxed));
  allocator_->set_graph_pool(true);
  capturing_ = true;
}

void* CudaBackend::end_capture() {
  RADIXLM_CHECK(capturing_, "end_capture() without begin_capture()");
  capturing_ = false;
  allocator_->set_graph_pool(false);
  cudaGraph_t graph = nullptr;
  RADIXLM_CUDA_CHECK(cudaStreamEndCapture(as_stream(stream_), &graph));
  cudaGraphExec_t exec = nullptr;
  RADIXLM_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  RADIXLM_CUDA_CHECK(cudaGraphDestroy(graph));
  RADIXLM_CUDA_CHECK(cudaGraphUpload(exec, as_stream(stream_)));
  return exec;
}

void CudaBackend::replay(void* graph) {
  RADIXLM_OP_TIMER("graph_replay");
  RADIXLM_CUDA_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(graph), as_stream(stream_)));
}

void CudaBackend::destroy_graph(void* graph) {
  if (graph) RADIXLM_CUDA_CHECK(cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(graph)));
}

}  // namespace radixlm
