#pragma once
// The "sample rows" op: one step's token choice (and logprobs) for a batch of f32 logits rows, done on the
// device that holds the logits, so a decode step reads back only ids and logprobs (DESIGN §5: "sampling on
// the device without host synchronization"). Two implementations: sampling/cpu_row_sampler.h delegates
// each row to the CPU sampler (src/sampling, the reference), backends/cuda/cuda_sampling.h runs one kernel
// over the batch and must choose the same tokens.
//
// The request is plain data (no sampling/ types: ops/ sits below sampling/). sampling/cpu_row_sampler.h
// builds it from a request's SamplingParams and SamplingState; every field mirrors one of theirs and the
// order of operations is sampling/logit_processors.h then sampling/sampler.h.
//
// Penalties need the counts of the tokens generated so far. They travel with each step as a compact list
// (token id, count) per row, taken from the host's SamplingState: the host stays the one owner of a
// request's output (retraction, n > 1 copies, slot reuse need no device bookkeeping), and the list costs
// O(distinct output tokens) bytes, uploaded asynchronously with the rest of the request.

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace radixlm {

// One row's parameters, already resolved (SGLang's greedy rule and effective temperature applied).
struct SampleRowSpec {
  bool greedy = false;            // argmax (temperature ~0, or top_k == 1)
  double temperature = 1.0;       // the effective temperature the logits (and logprobs) are divided by
  int32_t top_k = -1;             // <= 0 or >= vocab: off
  double top_p = 1.0;             // >= 1: off
  double min_p = 0.0;             // <= 0: off
  double frequency_penalty = 0.0;
  double presence_penalty = 0.0;
  double repetition_penalty = 1.0;
  uint64_t seed = 0;              // the request's seed ...
  int64_t step = 0;               // ... and its output step: the Philox key and counter of the draw
  bool return_logprob = false;
  int32_t top_logprobs_num = 0;   // <= kMaxSampleTopLogprobs
};

// The most top logprobs a row may ask for (SGLang/OpenAI allow 20).
inline constexpr int32_t kMaxSampleTopLogprobs = 32;

// A batch: rows[r] samples logits row r. The sparse per-row lists are CSR: row r's entries are
// [start[r], start[r + 1]) of the id/value arrays.
struct SampleRowsRequest {
  std::vector<SampleRowSpec> rows;
  std::vector<int32_t> count_start{0};  // output token counts (penalties): ids distinct within a row
  std::vector<int32_t> count_ids;
  std::vector<int32_t> count_values;
  std::vector<int32_t> suppress_start{0};  // ids set to -inf (stop and eos ids while min_new_tokens holds)
  std::vector<int32_t> suppress_ids;
  std::vector<int32_t> bias_start{0};  // logit_bias: ids distinct within a row
  std::vector<int32_t> bias_ids;
  std::vector<double> bias_values;

  int64_t num_rows() const { return static_cast<int64_t>(rows.size()); }
};

struct SampledRow {
  int32_t token_id = 0;
  float logprob = 0.0f;               // with return_logprob
  std::vector<int32_t> top_ids;       // top_logprobs_num of them, most likely first
  std::vector<float> top_logprobs;
};

class RowSampler {
 public:
  virtual ~RowSampler() = default;
  // Samples logits row r with request.rows[r] for every r < request.num_rows(); `logits` is f32
  // [>= rows, vocab] on the implementation's device and is processed in place (penalties, bias), as the CPU
  // sampler does. Returns when the ids are on the host.
  virtual std::vector<SampledRow> sample_rows(const TensorView& logits, const SampleRowsRequest& request) = 0;
};

}  // namespace radixlm
