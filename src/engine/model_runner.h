#pragma once
// Runs one BatchPlan through the model (DESIGN §3's model runner; here on the scheduler's thread). It owns
// the KV cache memory: one K and one V buffer per layer, [num_pages * page_size, kv_heads, head_dim],
// allocated through the backend, indexed by the page ids the scheduler hands out.

#include <cstdint>
#include <vector>

#include "models/model.h"
#include "ops/backend.h"
#include "ops/forward_batch.h"
#include "scheduler/scheduler.h"

namespace radixlm {

// The logits a step returned, on the host.
struct StepLogits {
  int64_t vocab = 0;
  std::vector<float> values;            // [rows, vocab]
  std::vector<int64_t> first_row;       // per plan sequence: its first row in `values`
  std::vector<int64_t> num_rows;        // per plan sequence: all its tokens with prompt_logits, else 1 (the last)

  float* row(int64_t r) { return values.data() + r * vocab; }
};

class ModelRunner {
 public:
  ModelRunner(Model& model, Backend& backend, int32_t num_pages, int32_t page_size);

  // The ForwardBatch of a plan: sequences in plan order, each with its last token's logits (every token's
  // with prompt_logits).
  ForwardBatch make_forward_batch(const BatchPlan& plan) const;
  StepLogits run(const BatchPlan& plan);

 private:
  Model& model_;
  Backend& backend_;
  int32_t page_size_;
  std::vector<LayerKvCache> kv_cache_;
};

}  // namespace radixlm
