#pragma once
// The sample-rows op (ops/sample_rows.h) on the CUDA backend: one kernel over the batch
// (cuda_sampling.cu) on the backend's stream, after the step's forward. A call uploads the request (row
// parameters and the sparse penalty/suppress/bias lists) with one async copy from pinned memory, runs the
// kernel, and copies the ids and logprobs back with one async copy: the step's only host synchronization,
// as the greedy path's read-back of ids. Nothing in it waits for the GPU before that; with overlap
// scheduling the wait comes after the next step has been queued (launch, then finish).

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

  // `logits`: f32 [>= rows, vocab] on this backend, contiguous; processed in place. launch() then finish().
  std::vector<SampledRow> sample_rows(const TensorView& logits, const SampleRowsRequest& request) override;
  // Overlap scheduling: queues the sampling and the read-back of its results without waiting; finish()
  // waits for them (for that launch only, not for work queued after it). One launch may be unfinished when
  // the next is made: the host buffers alternate between two slots.
  void launch(const TensorView& logits, const SampleRowsRequest& request);
  // The launched call's token ids, int32 [rows] on the device (valid until the next launch).
  TensorView device_tokens() const;
  std::vector<SampledRow> finish();
  // Makes the scratch for `rows` rows of `vocab` now (the engine calls it at start-up for its largest decode
  // batch), so that a step with a larger batch than any before does not allocate device memory.
  void reserve_rows(int64_t rows, int64_t vocab);

 private:
  // Host staging of one launch: the packed request going up, the results coming back.
  struct Slot {
    void* pinned_input = nullptr;
    void* pinned_output = nullptr;
    size_t input_capacity = 0;
    size_t output_capacity = 0;
    void* done = nullptr;  // cudaEvent_t: the results are in pinned_output
    // What finish() needs to unpack them.
    bool launched = false;
    std::vector<int32_t> top_counts;  // per row
    int32_t max_top = 1;
    size_t out_logprobs = 0, out_top_ids = 0, out_top_logprobs = 0;
  };
  void reserve(Slot& slot, size_t input_bytes, size_t output_bytes);

  CudaBackend& backend_;
  Slot slots_[2];
  int launches_ = 0;
  Slot* unfinished_ = nullptr;  // the oldest launch not yet finished
  Slot* last_ = nullptr;        // the newest launch
  int64_t last_rows_ = 0;
  Tensor device_input_;
  Tensor device_output_;
  size_t device_input_bytes_ = 0;
  size_t device_output_bytes_ = 0;
  Tensor exp_scratch_;  // f32 [rows * vocab], grows
};

}  // namespace radixlm
