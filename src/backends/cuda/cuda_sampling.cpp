// CudaRowSampler: packs a SampleRowsRequest for the kernel, one upload, one launch, one read-back.

#include "backends/cuda/cuda_sampling.h"

#include <algorithm>
#include <cstring>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/cuda_sampling_kernels.h"
#include "core/status.h"

namespace radixlm {
namespace {

size_t align8(size_t n) { return (n + 7) / 8 * 8; }

// Byte offsets of the request's arrays in the one upload buffer.
struct InputLayout {
  size_t params = 0, count_ids = 0, count_values = 0, suppress_ids = 0, bias_ids = 0, bias_values = 0, end = 0;
};

InputLayout input_layout(const SampleRowsRequest& request) {
  InputLayout l;
  size_t at = 0;
  auto place = [&](size_t bytes) {
    const size_t here = at;
    at = align8(at + bytes);
    return here;
  };
  l.params = place(request.rows.size() * sizeof(cuda::SampleRowParams));
  l.count_ids = place(request.count_ids.size() * sizeof(int32_t));
  l.count_values = place(request.count_values.size() * sizeof(int32_t));
  l.suppress_ids = place(request.suppress_ids.size() * sizeof(int32_t));
  l.bias_ids = place(request.bias_ids.size() * sizeof(int32_t));
  l.bias_values = place(request.bias_values.size() * sizeof(double));
  l.end = at > 0 ? at : 8;
  return l;
}

void check_csr(const std::vector<int32_t>& start, size_t values, size_t rows, const char* what) {
  RADIXLM_CHECK(start.size() == rows + 1 && start.front() == 0 && static_cast<size_t>(start.back()) == values,
                "sample_rows: malformed {} lists", what);
  for (size_t r = 0; r < rows; ++r) RADIXLM_CHECK(start[r] <= start[r + 1], "sample_rows: {} list of row {}", what, r);
}

}  // namespace

CudaRowSampler::~CudaRowSampler() {
  if (unfinished_ != nullptr) backend_.synchronize();
  for (Slot& slot : slots_) {
    if (slot.pinned_input != nullptr) cudaFreeHost(slot.pinned_input);
    if (slot.pinned_output != nullptr) cudaFreeHost(slot.pinned_output);
    backend_.destroy_event(slot.done);
  }
}

void CudaRowSampler::reserve(Slot& slot, size_t input_bytes, size_t output_bytes) {
  // A slot is reused two launches later, after its finish(): no copy reads its host buffers any more. The
  // device buffers are shared by both slots; a queued launch may still read them, so growing waits.
  if (slot.done == nullptr) slot.done = backend_.create_event();
  if (input_bytes > slot.input_capacity) {
    if (slot.pinned_input != nullptr) RADIXLM_CUDA_CHECK(cudaFreeHost(slot.pinned_input));
    slot.input_capacity = input_bytes * 2;
    RADIXLM_CUDA_CHECK(cudaMallocHost(&slot.pinned_input, slot.input_capacity));
  }
  if (output_bytes > slot.output_capacity) {
    if (slot.pinned_output != nullptr) RADIXLM_CUDA_CHECK(cudaFreeHost(slot.pinned_output));
    slot.output_capacity = output_bytes * 2;
    RADIXLM_CUDA_CHECK(cudaMallocHost(&slot.pinned_output, slot.output_capacity));
  }
  if (input_bytes > device_input_bytes_ || output_bytes > device_output_bytes_) {
    backend_.synchronize();
    device_input_bytes_ = std::max(device_input_bytes_, input_bytes * 2);
    device_output_bytes_ = std::max(device_output_bytes_, output_bytes * 2);
    device_input_ = backend_.alloc(DType::kU8, {static_cast<int64_t>(device_input_bytes_)});
    device_output_ = backend_.alloc(DType::kU8, {static_cast<int64_t>(device_output_bytes_)});
  }
}

void CudaRowSampler::reserve_rows(int64_t rows, int64_t vocab) {
  const int64_t scratch_floats = rows * vocab;
  if (!exp_scratch_.defined() || exp_scratch_.view.numel() < scratch_floats) {
    backend_.synchronize();  // a queued launch may still use the old scratch
    exp_scratch_ = backend_.alloc(DType::kF32, {scratch_floats});
  }
}

std::vector<SampledRow> CudaRowSampler::sample_rows(const TensorView& logits, const SampleRowsRequest& request) {
  RADIXLM_CHECK(unfinished_ == nullptr, "sample_rows with a launch unfinished");
  launch(logits, request);
  return finish();
}

TensorView CudaRowSampler::device_tokens() const {
  RADIXLM_CHECK(last_ != nullptr, "no launch");
  return TensorView(device_output_.view.data, DType::kI32, Shape{last_rows_}, Device::kCuda);
}

void CudaRowSampler::launch(const TensorView& logits, const SampleRowsRequest& request) {
  const size_t rows = request.rows.size();
  Slot& slot = slots_[launches_ % 2];
  RADIXLM_CHECK(!slot.launched, "two CudaRowSampler launches unfinished");
  RADIXLM_CHECK(logits.device == Device::kCuda && logits.dtype == DType::kF32 && logits.ndim() == 2 &&
                    logits.is_contiguous(),
                "CudaRowSampler wants device f32 [rows, vocab] logits");
  RADIXLM_CHECK(logits.size(0) >= static_cast<int64_t>(rows), "{} logits rows for {} sampled rows", logits.size(0),
                rows);
  const int64_t vocab = logits.size(1);
  RADIXLM_CHECK(vocab > 0 && vocab < (int64_t{1} << 31), "vocab {}", vocab);
  check_csr(request.count_start, request.count_ids.size(), rows, "count");
  RADIXLM_CHECK(request.count_values.size() == request.count_ids.size(), "sample_rows: count values");
  check_csr(request.suppress_start, request.suppress_ids.size(), rows, "suppress");
  check_csr(request.bias_start, request.bias_ids.size(), rows, "bias");
  RADIXLM_CHECK(request.bias_values.size() == request.bias_ids.size(), "sample_rows: bias values");

  int32_t max_top = 1;
  slot.top_counts.assign(rows, 0);
  for (size_t r = 0; r < rows; ++r) {
    const SampleRowSpec& spec = request.rows[r];
    RADIXLM_CHECK(spec.top_logprobs_num >= 0 && spec.top_logprobs_num <= kMaxSampleTopLogprobs,
                  "top_logprobs_num {}", spec.top_logprobs_num);
    RADIXLM_CHECK(spec.greedy || spec.temperature > 0.0, "temperature {}", spec.temperature);
    if (spec.return_logprob) {
      max_top = std::max(max_top, spec.top_logprobs_num);
      slot.top_counts[r] = static_cast<int32_t>(std::min<int64_t>(spec.top_logprobs_num, vocab));
    }
  }

  const InputLayout layout = input_layout(request);
  const size_t out_tokens = 0;
  slot.max_top = max_top;
  slot.out_logprobs = align8(std::max<size_t>(rows, 1) * sizeof(int32_t));
  slot.out_top_ids = slot.out_logprobs + align8(rows * sizeof(float));
  slot.out_top_logprobs = slot.out_top_ids + align8(rows * static_cast<size_t>(max_top) * sizeof(int32_t));
  const size_t output_bytes = slot.out_top_logprobs + align8(rows * static_cast<size_t>(max_top) * sizeof(float));
  reserve(slot, layout.end, output_bytes);
  reserve_rows(static_cast<int64_t>(std::max<size_t>(rows, 1)), vocab);
  slot.launched = true;
  if (unfinished_ == nullptr) unfinished_ = &slot;
  last_ = &slot;
  last_rows_ = static_cast<int64_t>(rows);
  ++launches_;
  if (rows == 0) {
    backend_.record_event(slot.done);
    return;
  }

  // Pack.
  auto* host = static_cast<unsigned char*>(slot.pinned_input);
  auto* params = reinterpret_cast<cuda::SampleRowParams*>(host + layout.params);
  for (size_t r = 0; r < rows; ++r) {
    const SampleRowSpec& spec = request.rows[r];
    cuda::SampleRowParams p{};
    p.temperature = spec.temperature;
    p.top_p = spec.top_p;
    p.min_p = spec.min_p;
    p.frequency_penalty = spec.frequency_penalty;
    p.presence_penalty = spec.presence_penalty;
    p.repetition_penalty = spec.repetition_penalty;
    p.seed = spec.seed;
    p.step = static_cast<uint64_t>(spec.step);
    p.top_k = spec.top_k;
    p.top_logprobs = spec.return_logprob ? spec.top_logprobs_num : 0;
    p.flags = (spec.greedy ? cuda::kSampleGreedy : 0) | (spec.return_logprob ? cuda::kSampleReturnLogprob : 0);
    p.count_begin = request.count_start[r];
    p.count_end = request.count_start[r + 1];
    p.suppress_begin = request.suppress_start[r];
    p.suppress_end = request.suppress_start[r + 1];
    p.bias_begin = request.bias_start[r];
    p.bias_end = request.bias_start[r + 1];
    params[r] = p;
  }
  auto copy_array = [&](size_t offset, const auto& values) {
    if (!values.empty()) std::memcpy(host + offset, values.data(), values.size() * sizeof(values[0]));
  };
  copy_array(layout.count_ids, request.count_ids);
  copy_array(layout.count_values, request.count_values);
  copy_array(layout.suppress_ids, request.suppress_ids);
  copy_array(layout.bias_ids, request.bias_ids);
  copy_array(layout.bias_values, request.bias_values);

  auto stream = static_cast<cudaStream_t>(backend_.stream_handle());
  auto* device_in = static_cast<unsigned char*>(device_input_.view.data);
  auto* device_out = static_cast<unsigned char*>(device_output_.view.data);
  RADIXLM_CUDA_CHECK(cudaMemcpyAsync(device_in, host, layout.end, cudaMemcpyHostToDevice, stream));

  cuda::SampleRowsArgs args;
  args.logits = logits.as<float>();
  args.exp_scratch = exp_scratch_.as<float>();
  args.vocab = vocab;
  args.rows = static_cast<int32_t>(rows);
  args.params = reinterpret_cast<const cuda::SampleRowParams*>(device_in + layout.params);
  args.count_ids = reinterpret_cast<const int32_t*>(device_in + layout.count_ids);
  args.count_values = reinterpret_cast<const int32_t*>(device_in + layout.count_values);
  args.suppress_ids = reinterpret_cast<const int32_t*>(device_in + layout.suppress_ids);
  args.bias_ids = reinterpret_cast<const int32_t*>(device_in + layout.bias_ids);
  args.bias_values = reinterpret_cast<const double*>(device_in + layout.bias_values);
  args.max_top = max_top;
  args.out_tokens = reinterpret_cast<int32_t*>(device_out + out_tokens);
  args.out_logprobs = reinterpret_cast<float*>(device_out + slot.out_logprobs);
  args.out_top_ids = reinterpret_cast<int32_t*>(device_out + slot.out_top_ids);
  args.out_top_logprobs = reinterpret_cast<float*>(device_out + slot.out_top_logprobs);
  cuda::launch_sample_rows(args, stream);
  RADIXLM_CUDA_CHECK(cudaGetLastError());

  RADIXLM_CUDA_CHECK(cudaMemcpyAsync(slot.pinned_output, device_out, output_bytes, cudaMemcpyDeviceToHost, stream));
  backend_.record_event(slot.done);
}

std::vector<SampledRow> CudaRowSampler::finish() {
  RADIXLM_CHECK(unfinished_ != nullptr, "CudaRowSampler::finish with nothing launched");
  Slot& slot = *unfinished_;
  backend_.wait_event(slot.done);
  const size_t rows = slot.top_counts.size();
  std::vector<SampledRow> out(rows);
  const auto* result = static_cast<const unsigned char*>(slot.pinned_output);
  const auto* tokens = reinterpret_cast<const int32_t*>(result);
  const auto* logprobs = reinterpret_cast<const float*>(result + slot.out_logprobs);
  const auto* top_ids = reinterpret_cast<const int32_t*>(result + slot.out_top_ids);
  const auto* top_logprobs = reinterpret_cast<const float*>(result + slot.out_top_logprobs);
  const auto max_top = static_cast<size_t>(slot.max_top);
  for (size_t r = 0; r < rows; ++r) {
    SampledRow& o = out[r];
    o.token_id = tokens[r];
    o.logprob = logprobs[r];
    for (size_t a = 0; a < static_cast<size_t>(slot.top_counts[r]); ++a) {
      o.top_ids.push_back(top_ids[r * max_top + a]);
      o.top_logprobs.push_back(top_logprobs[r * max_top + a]);
    }
  }
  slot.launched = false;
  Slot& other = slots_[(&slot - slots_ + 1) % 2];
  unfinished_ = other.launched ? &other : nullptr;
  return out;
}

}  // namespace radixlm
