#pragma once
// The sample-rows op (ops/sample_rows.h) on the CUDA backend: one kernel over the batch
// (cuda_sampling.cu) on the backend's stream, after the step's forward. A call uploads the request (row
// parameters and the sparse penalty/suppress/bias lists) with one async copy from pinned memory, runs the
// kernel, and copies the ids and logprobs back with one async copy: the step's only host synchronization,
// as the greedy path's read-back of ids. Nothing in it waits for the GPU before that.

#include <cstddef>
#include <vector>

#include "backends/cuda/cuda_backend.h"
#include "ops/sample_rows.h"

namespace radixlm {

class CudaRowSampler final : public RowSampler {
 public:
  explicit CudaRowSampler(CudaBackend& backend) : backend_(backend) {}
  ~CudaRowSampler() override;
  CudaRowSampler(const CudaRowSampler&) = delete;
  CudaRowSampler& operator=(const CudaRowSampler&) = delete;

  // `logits`: f32 [>= rows, vocab] on this backend, contiguous; processed in place.
  std::vector<SampledRow> sample_rows(const TensorView& logits, const SampleRowsRequest& request) override;
  // Makes the scratch for `rows` rows of `vocab` now (the engine calls it at start-up for its largest decode
  // batch), so that a step with a larger batch than any before does not allocate device memory.
  void reserve_rows(int64_t rows, int64_t vocab);

 private:
  void reserve(size_t input_bytes, size_t output_bytes);

  CudaBackend& backend_;
  void* pinned_input_ = nullptr;   // host staging, grows
  void* pinned_output_ = nullptr;
  size_t input_capacity_ = 0;
  size_t output_capacity_ = 0;
  Tensor device_input_;
  Tensor device_output_;
  Tensor exp_scratch_;  // f32 [rows * vocab], grows
};

}  // namespace radixlm
