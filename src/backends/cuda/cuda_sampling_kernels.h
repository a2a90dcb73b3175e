#pragma once
// The device sampler's kernel interface: plain structs and raw pointers (no engine types), filled by
// cuda_sampling.cpp from an ops/sample_rows.h request and read by cuda_sampling.cu.

#include <cstdint>

#include <cuda_runtime.h>

namespace radixlm::cuda {

enum SampleRowFlags : int32_t {
  kSampleGreedy = 1,
  kSampleReturnLogprob = 2,
};

// One row, laid out for one upload. Sparse lists index the arrays of SampleRowsArgs.
struct SampleRowParams {
  double temperature;  // effective (1 for greedy)
  double top_p;
  double min_p;
  double frequency_penalty;
  double presence_penalty;
  double repetition_penalty;
  uint64_t seed;
  uint64_t step;
  int32_t top_k;
  int32_t top_logprobs;  // 0: none
  int32_t flags;         // SampleRowFlags
  int32_t count_begin, count_end;
  int32_t suppress_begin, suppress_end;
  int32_t bias_begin, bias_end;
  int32_t reserved;
};

struct SampleRowsArgs {
  float* logits = nullptr;  // [rows, vocab], processed in place
  float* exp_scratch = nullptr;  // [rows, vocab]: a sampled row's exponentials
  int64_t vocab = 0;
  int32_t rows = 0;
  const SampleRowParams* params = nullptr;
  const int32_t* count_ids = nullptr;
  const int32_t* count_values = nullptr;
  const int32_t* suppress_ids = nullptr;
  const int32_t* bias_ids = nullptr;
  const double* bias_values = nullptr;
  int32_t max_top = 0;  // stride of the top outputs
  int32_t* out_tokens = nullptr;       // [rows]
  float* out_logprobs = nullptr;       // [rows]
  int32_t* out_top_ids = nullptr;      // [rows, max_top]
  float* out_top_logprobs = nullptr;   // [rows, max_top]
};

void launch_sample_rows(const SampleRowsArgs& args, cudaStream_t stream);

}  // namespace radixlm::cuda
