#pragma once
// The minimal offline generator of issue 2, until the scheduler-driven engine replaces it: a fixed set of
// prompts runs as one batch, one prefill step for all of them together, then batched greedy decode steps
// until each hits max_new_tokens or an eos id. It owns the KV cache (one K and one V buffer per layer,
// allocated through the backend) and the page pool that hands out its pages.

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "cache/page_pool.h"
#include "core/status.h"
#include "models/model.h"
#include "ops/backend.h"

namespace radixlm {

struct GenerateOptions {
  int32_t max_new_tokens = 16;
  double temperature = 0.0;  // only 0 (greedy) for now
  bool ignore_eos = false;
  bool return_prompt_logits = false;
  std::vector<int64_t> eos_token_ids;
};

struct GenerateOutput {
  std::vector<int32_t> output_ids;               // generated tokens, an eos that stopped it included
  std::vector<std::vector<float>> prompt_logits;  // after each prompt position, with return_prompt_logits
  std::string finish_reason;                      // "stop" (eos), "length" (max_new_tokens or context)
};

struct GenerateTiming {
  double prefill_ms = 0.0;
  int64_t prefill_tokens = 0;
  double decode_ms = 0.0;
  int64_t decode_steps = 0;
  int64_t decode_tokens = 0;  // tokens produced by decode steps (the first token of each prompt is prefill's)
};

class BatchGenerator {
 public:
  BatchGenerator(Model& model, Backend& backend, int32_t page_size, int32_t num_pages);

  // Pages that `prompts` need to generate `max_new_tokens` each; generation never stores K/V past
  // `context_length` positions, so no sequence needs more than that.
  static int64_t pages_needed(const std::vector<std::vector<int32_t>>& prompts, int32_t max_new_tokens,
                              int32_t page_size, int64_t context_length = std::numeric_limits<int64_t>::max());

  // Runs every prompt to completion as one batch. Bad input (empty prompt, token id outside the vocabulary,
  // a prompt longer than the context, temperature > 0) and too few pages are errors; every page is free
  // again when this returns, whatever happened.
  Expected<std::vector<GenerateOutput>> generate(const std::vector<std::vector<int32_t>>& prompts,
                                                 const GenerateOptions& options);

  const GenerateTiming& last_timing() const { return timing_; }
  const PagePool& page_pool() const { return pool_; }
  int32_t page_size() const { return page_size_; }

 private:
  Model& model_;
  Backend& backend_;
  int32_t page_size_;
  PagePool pool_;
  std::vector<LayerKvCache> kv_cache_;
  GenerateTiming timing_;
};

}  // namespace radixlm
