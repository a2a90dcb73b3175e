#pragma once
// Runs one BatchPlan through the model (DESIGN §3's model runner; here on the scheduler's thread). It owns
// the KV cache memory: one K and one V buffer per layer, [(num_pages + 1) * page_size, kv_heads, head_dim]
// in the backend's activation dtype, indexed by the page ids the scheduler hands out; the extra last page
// belongs to no sequence (CUDA graph padding rows write there).
//
// On the CUDA backend, decode steps of up to --cuda-graph-max-bs sequences replay a CUDA graph of their
// batch-size bucket (backends/cuda/cuda_decode_graphs.h) unless --disable-cuda-graph; every other step runs
// eagerly. Either way a step reads back once: the logits rows the engine samples from (run); or, when every
// sequence decodes greedily, only the token ids, argmax'ed on the device (run_greedy); or the sampled ids
// and logprobs, sampled on the device by the backend's RowSampler (run_sampled, ops/sample_rows.h).

#include <cstdint>
#include <memory>
#include <vector>

#include "models/model.h"
#include "ops/backend.h"
#include "ops/forward_batch.h"
#include "ops/sample_rows.h"
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

// SGLang's CUDA graph flags (ignored on the CPU backend).
struct ModelRunnerOptions {
  bool disable_cuda_graph = false;   // --disable-cuda-graph
  int32_t cuda_graph_max_bs = 0;     // --cuda-graph-max-bs (0: 256)
  std::vector<int32_t> cuda_graph_bs;  // --cuda-graph-bs (empty: SGLang's default buckets up to the max)
};

class ModelRunner {
 public:
  ModelRunner(Model& model, Backend& backend, int32_t num_pages, int32_t page_size,
              const ModelRunnerOptions& options = {});
  ~ModelRunner();
  ModelRunner(const ModelRunner&) = delete;
  ModelRunner& operator=(const ModelRunner&) = delete;

  // The ForwardBatch of a plan: sequences in plan order, each with its last token's logits (every token's
  // with prompt_logits).
  ForwardBatch make_forward_batch(const BatchPlan& plan) const;
  StepLogits run(const BatchPlan& plan);
  // The greedy token (argmax, lowest id on ties) of each plan sequence's last row; the plan asks for no
  // prompt logits. On CUDA only the ids are read back.
  std::vector<int32_t> run_greedy(const BatchPlan& plan);
  // Samples each plan sequence's last row with request.rows[r] for plan sequence r (the plan asks for no
  // prompt logits). On CUDA the rows never leave the device: the sampler kernel runs after the forward (or
  // the graph replay) on the same stream, and only ids and logprobs come back, once. Elsewhere the logits
  // are copied to the host and sampled by the CPU sampler (the same tokens).
  std::vector<SampledRow> run_sampled(const BatchPlan& plan, const SampleRowsRequest& request);
  // Whether run_sampled samples on the device (the CUDA backend), where it saves the logits read-back.
  bool samples_on_device() const;

  // Captures the CUDA graph of every decode bucket now, and sizes the device sampler's scratch for the
  // largest (nothing without CUDA graphs); the engine does this at start-up so that no request waits for a
  // capture or an allocation.
  void capture_cuda_graphs();

  // Decode steps that replayed a CUDA graph, and graphs captured (0 without CUDA graphs).
  int64_t graph_replays() const;
  int64_t graph_captures() const;

 private:
  struct DeviceState;
  Model& model_;
  Backend& backend_;
  int32_t page_size_;
  std::vector<LayerKvCache> kv_cache_;
  std::unique_ptr<DeviceState> device_;
};

}  // namespace radixlm
