#pragma once
// Runs one BatchPlan through the model (DESIGN §3's model runner; here on the scheduler's thread). It owns
// the KV cache memory: one K and one V buffer per layer, [(num_pages + 1) * page_size, kv_heads, head_dim]
// in the backend's activation dtype, indexed by the page ids the scheduler hands out; the extra last page
// belongs to no sequence (CUDA graph padding rows write there).
//
// On the CUDA backend, decode steps of up to --cuda-graph-max-bs sequences replay a CUDA graph of their
// batch-size bucket (backends/cuda/cuda_decode_graphs.h) unless --disable-cuda-graph; every other step runs
// eagerly. Either way a step reads back once: the logits rows the engine samples from (run); or the token
// ids and logprobs a step chose on the device (launch_step / wait_step): the greedy argmax when every
// sequence decodes greedily, else the backend's RowSampler (ops/sample_rows.h).
//
// Overlap scheduling (DESIGN §3): launch_step queues a step and returns; wait_step reads its results. The
// engine plans and launches step N+1 between the two, so the plan may feed kFutureToken (scheduler.h) for a
// request whose token step N is still choosing: the runner remembers which row of step N that is, and the
// backend reads the id from step N's device output. On CUDA the stream orders the steps and a kernel at the
// start of step N+1 reads the ids; on the CPU each launched step runs on a thread of its own that first
// waits for the step before it (the CPU's "stream") and takes the ids from its results.

#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <utility>
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
  // with prompt_logits). A kFutureToken becomes -(r + 1) for row r of the last launched step.
  ForwardBatch make_forward_batch(const BatchPlan& plan) const;
  // The step's logits on the host; waits for it. Not while a launched step is unread.
  StepLogits run(const BatchPlan& plan);

  // Queues the plan's forward and its token choice: `sampling` null takes each sequence's greedy argmax
  // (ids only come back), else request->rows[r] samples plan sequence r. The plan asks for no prompt logits.
  // At most one step may be launched and unread when the next is launched.
  void launch_step(const BatchPlan& plan, const SampleRowsRequest* sampling);
  // The oldest launched step's rows, one per plan sequence, once they are on the host.
  std::vector<SampledRow> wait_step();

  // launch_step then wait_step.
  std::vector<int32_t> run_greedy(const BatchPlan& plan);
  std::vector<SampledRow> run_sampled(const BatchPlan& plan, const SampleRowsRequest& request);

  // Captures the CUDA graph of every decode bucket now, and sizes the device sampler's scratch for the
  // largest (nothing without CUDA graphs); the engine does this at start-up so that no request waits for a
  // capture or an allocation.
  void capture_cuda_graphs();

  // Decode steps that replayed a CUDA graph, and graphs captured (0 without CUDA graphs).
  int64_t graph_replays() const;
  int64_t graph_captures() const;

 private:
  struct DeviceState;
  using CpuResult = std::shared_future<std::vector<SampledRow>>;
  struct Launched {
    int64_t rows = 0;
    bool greedy = true;
    int slot = 0;      // CUDA greedy: the pinned read-back slot
    CpuResult result;  // CPU: the step, running on its own thread after the one before it
  };
  std::vector<SampledRow> run_on_cpu(const ForwardBatch& batch, const SampleRowsRequest* sampling);
  static void resolve_on_host(ForwardBatch& batch, const std::vector<SampledRow>& previous);
  void remember_rows(const BatchPlan& plan);

  Model& model_;
  Backend& backend_;
  int32_t page_size_;
  std::vector<LayerKvCache> kv_cache_;
  std::unique_ptr<DeviceState> device_;
  std::deque<Launched> launched_;
  // (request id, its row in the last launched step), sorted by id; the vector keeps its capacity from step
  // to step (no allocation per token).
  std::vector<std::pair<uint64_t, int32_t>> previous_rows_;
  CpuResult previous_cpu_step_;                // CPU: that step
};

}  // namespace radixlm
