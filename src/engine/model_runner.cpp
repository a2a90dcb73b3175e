#include "engine/model_runner.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include <spdlog/spdlog.h>

#include "cache/sequence_pages.h"
#include "sampling/cpu_row_sampler.h"
#include "sampling/sampler.h"
#if defined(RADIXLM_HAVE_CUDA)
#include "backends/cuda/cuda_decode_graphs.h"
#include "backends/cuda/cuda_sampling.h"
#endif

namespace radixlm {

struct ModelRunner::DeviceState {
#if defined(RADIXLM_HAVE_CUDA)
  CudaBackend* cuda = nullptr;
  std::unique_ptr<CudaDecodeGraphs> graphs;
  std::unique_ptr<CudaRowSampler> sampler;
  // The last launched step's ids, kept for the next step's future tokens (int32, grows); and the greedy
  // read-back's two pinned slots (a step may be read while the next one's copy is queued).
  Tensor previous_tokens;
  int32_t* pinned_ids[2] = {nullptr, nullptr};
  int64_t pinned_rows = 0;
  void* ids_ready[2] = {nullptr, nullptr};
  int next_slot = 0;
  Tensor eager_ids;  // the eager greedy step's ids, alive until the next step
#endif
  CpuRowSampler host_sampler;
};

ModelRunner::ModelRunner(Model& model, Backend& backend, int32_t num_pages, int32_t page_size,
                         const ModelRunnerOptions& options)
    : model_(model), backend_(backend), page_size_(page_size), device_(std::make_unique<DeviceState>()) {
  const KvCacheShape shape = model.kv_cache_shape();
  const int64_t slots = (int64_t{num_pages} + 1) * page_size;  // + the padding page
  const Shape kv_shape{slots, shape.num_kv_heads, shape.head_dim};
  // Zero-filled (alloc), so a slot never written holds finite values: the CUDA prefill attention's TMA copies
  // read whole 16-slot groups, past a sequence's last key too, whose masked P = 0 cancels only finite V.
  for (int64_t layer = 0; layer < shape.num_layers; ++layer) {
    kv_cache_.push_back({backend.alloc(backend.activation_dtype(), kv_shape),
                         backend.alloc(backend.activation_dtype(), kv_shape)});
  }
#if defined(RADIXLM_HAVE_CUDA)
  device_->cuda = dynamic_cast<CudaBackend*>(&backend);
  if (device_->cuda != nullptr) {
    device_->sampler = std::make_unique<CudaRowSampler>(*device_->cuda);
    const CudaGraphOptions graph_options{options.disable_cuda_graph, options.cuda_graph_max_bs, options.cuda_graph_bs};
    std::vector<int32_t> sizes = cuda_graph_batch_sizes(graph_options);
    if (!sizes.empty()) {
      device_->graphs = std::make_unique<CudaDecodeGraphs>(*device_->cuda, std::move(sizes), num_pages, slots);
    }
    for (void*& event : device_->ids_ready) event = device_->cuda->create_event();
  }
#else
  (void)options;
#endif
}

ModelRunner::~ModelRunner() {
#if defined(RADIXLM_HAVE_CUDA)
  if (device_->cuda != nullptr) {
    device_->cuda->synchronize();
    for (int32_t* ids : device_->pinned_ids) device_->cuda->free_pinned(ids);
    for (void* event : device_->ids_ready) device_->cuda->destroy_event(event);
  }
#endif
}

ForwardBatch ModelRunner::make_forward_batch(const BatchPlan& plan) const {
  ForwardBatch batch;
  batch.page_size = page_size_;
  batch.query_start = {0};
  batch.page_table_start = {0};
  for (const PlannedSequence& seq : plan.seqs) {
    const auto count = static_cast<int64_t>(seq.tokens.size());
    for (int64_t i = 0; i < count; ++i) {
      const int64_t position = seq.start + i;
      if (seq.prompt_logits) batch.logit_rows.push_back(batch.num_tokens());
      int32_t token = seq.tokens[static_cast<size_t>(i)];
      if (token == kFutureToken) {
        const auto it = std::lower_bound(previous_rows_.begin(), previous_rows_.end(),
                                         std::pair<uint64_t, int32_t>{seq.request_id, 0});
        RADIXLM_CHECK(it != previous_rows_.end() && it->first == seq.request_id,
                      "request {}: a future token, but no launched step sampled it", seq.request_id);
        token = -(it->second + 1);
      }
      batch.token_ids.push_back(token);
      batch.positions.push_back(static_cast<int32_t>(position));
      batch.kv_slots.push_back(int64_t{seq.pages[static_cast<size_t>(position / page_size_)]} * page_size_ +
                               position % page_size_);
    }
    if (!seq.prompt_logits) batch.logit_rows.push_back(batch.num_tokens() - 1);
    batch.query_start.push_back(batch.num_tokens());
    batch.kv_length.push_back(static_cast<int32_t>(seq.start + count));
    const int64_t pages = pages_for_tokens(seq.start + count, page_size_);
    batch.page_table.insert(batch.page_table.end(), seq.pages.begin(), seq.pages.begin() + pages);
    batch.page_table_start.push_back(static_cast<int32_t>(batch.page_table.size()));
  }
  return batch;
}

void ModelRunner::resolve_on_host(ForwardBatch& batch, const std::vector<SampledRow>& previous) {
  for (int32_t& token : batch.token_ids) {
    if (token >= 0) continue;
    const auto row = static_cast<size_t>(-int64_t{token} - 1);
    RADIXLM_CHECK(row < previous.size(), "future token row {} of {}", row, previous.size());
    token = previous[row].token_id;
  }
}

void ModelRunner::remember_rows(const BatchPlan& plan) {
  previous_rows_.clear();
  for (size_t s = 0; s < plan.seqs.size(); ++s) {
    if (plan.seqs[s].samples) previous_rows_.emplace_back(plan.seqs[s].request_id, static_cast<int32_t>(s));
  }
  std::sort(previous_rows_.begin(), previous_rows_.end());
}

StepLogits ModelRunner::run(const BatchPlan& plan) {
  RADIXLM_CHECK(launched_.empty(), "run() with a launched step unread");
  ForwardBatch batch = make_forward_batch(plan);
  previous_rows_.clear();  // the caller samples this step on the host and completes it before planning on
  StepLogits out;
  out.vocab = model_.config().vocab_size;
  int64_t row = 0;
  for (const PlannedSequence& seq : plan.seqs) {
    out.first_row.push_back(row);
    const int64_t rows = seq.prompt_logits ? static_cast<int64_t>(seq.tokens.size()) : 1;
    out.num_rows.push_back(rows);
    row += rows;
  }
  out.values.resize(static_cast<size_t>(row * out.vocab));
#if defined(RADIXLM_HAVE_CUDA)
  if (device_->cuda != nullptr) {
    if (device_->previous_tokens.defined()) device_->cuda->set_previous_step_tokens(device_->previous_tokens.view);
    if (device_->graphs && device_->graphs->can_run(batch)) {
      const CudaDecodeGraphs::Output graph = device_->graphs->run(
          batch, [this](const ForwardBatch& b) { return model_.forward(b, kv_cache_); });
      backend_.copy_to_host_f32(graph.logits.slice_rows(0, row), out.values.data());  // the batch's rows only
      return out;
    }
  } else if (previous_cpu_step_.valid()) {
    resolve_on_host(batch, previous_cpu_step_.get());
  }
#else
  if (previous_cpu_step_.valid()) resolve_on_host(batch, previous_cpu_step_.get());
#endif
  Tensor logits = model_.forward(batch, kv_cache_);
  backend_.copy_to_host_f32(logits, out.values.data());
  return out;
}

std::vector<SampledRow> ModelRunner::run_on_cpu(const ForwardBatch& batch, const SampleRowsRequest* sampling) {
  const auto rows = static_cast<int64_t>(batch.logit_rows.size());
  const Tensor logits = model_.forward(batch, kv_cache_);
  const int64_t vocab = model_.config().vocab_size;
  std::vector<float> values(static_cast<size_t>(rows * vocab));
  backend_.copy_to_host_f32(logits, values.data());
  if (sampling != nullptr) {
    return device_->host_sampler.sample_rows(TensorView(values.data(), DType::kF32, Shape{rows, vocab}), *sampling);
  }
  std::vector<SampledRow> out(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    out[static_cast<size_t>(r)].token_id = argmax_token({values.data() + r * vocab, static_cast<size_t>(vocab)});
  }
  return out;
}

void ModelRunner::launch_step(const BatchPlan& plan, const SampleRowsRequest* sampling) {
  RADIXLM_CHECK(launched_.size() < 2, "launch_step with two steps unread");
  ForwardBatch batch = make_forward_batch(plan);
  const auto rows = static_cast<int64_t>(plan.seqs.size());
  RADIXLM_CHECK(static_cast<int64_t>(batch.logit_rows.size()) == rows, "launch_step: the plan asks for prompt logits");
  RADIXLM_CHECK(sampling == nullptr || sampling->num_rows() == rows, "launch_step: {} sampling rows for {} sequences",
                sampling == nullptr ? 0 : sampling->num_rows(), rows);
  remember_rows(plan);
#if defined(RADIXLM_HAVE_CUDA)
  if (device_->cuda != nullptr) {
    CudaBackend& cuda = *device_->cuda;
    if (device_->previous_tokens.defined()) cuda.set_previous_step_tokens(device_->previous_tokens.view);
    const CudaDecodeGraphs::Forward forward = [this](const ForwardBatch& b) { return model_.forward(b, kv_cache_); };
    TensorView logits;
    TensorView ids;
    Tensor eager_logits;
    if (device_->graphs && device_->graphs->can_run(batch)) {
      const CudaDecodeGraphs::Output graph = device_->graphs->run(batch, forward);
      // The graph's outputs stay valid until the next run; everything below is queued before that.
      logits = graph.logits.slice_rows(0, rows);
      ids = graph.tokens.slice_rows(0, rows);
    } else {
      eager_logits = model_.forward(batch, kv_cache_);
      logits = eager_logits.view;
      if (sampling == nullptr) {
        device_->eager_ids = cuda.argmax_rows_on_device(logits);
        ids = device_->eager_ids.view;
      }
    }
    Launched step;
    step.rows = rows;
    step.greedy = sampling == nullptr;
    if (sampling != nullptr) {
      device_->sampler->launch(logits, *sampling);
      ids = device_->sampler->device_tokens();
    }
    // This step's ids for the next step's future tokens. The copy is queued after this step's own
    // resolution of future tokens (in begin_step), which read the old ones.
    if (!device_->previous_tokens.defined() || device_->previous_tokens.view.numel() < std::max<int64_t>(rows, 1)) {
      cuda.synchronize();  // queued steps may still read the old buffer
      device_->previous_tokens = cuda.alloc(DType::kI32, {std::max<int64_t>(rows, 256) * 2});
    }
    if (rows > 0) cuda.copy_async(ids, device_->previous_tokens.view);
    if (step.greedy) {
      if (rows > device_->pinned_rows) {
        cuda.synchronize();  // a queued read-back may still target the old slots
        for (int32_t*& pinned : device_->pinned_ids) {
          cuda.free_pinned(pinned);
          pinned = static_cast<int32_t*>(cuda.alloc_pinned(static_cast<size_t>(rows) * 2 * sizeof(int32_t)));
        }
        device_->pinned_rows = rows * 2;
      }
      step.slot = device_->next_slot;
      device_->next_slot ^= 1;
      if (rows > 0) cuda.copy_to_host_async(ids, device_->pinned_ids[step.slot]);
      cuda.record_event(device_->ids_ready[step.slot]);
    }
    launched_.push_back(std::move(step));
    return;
  }
#endif
  Launched step;
  step.rows = rows;
  step.greedy = sampling == nullptr;
  std::optional<SampleRowsRequest> request;
  if (sampling != nullptr) request = *sampling;
  step.result = std::async(std::launch::async, [this, batch = std::move(batch), previous = previous_cpu_step_,
                                                request = std::move(request)]() mutable {
                  if (previous.valid()) resolve_on_host(batch, previous.get());  // and the model is free again
                  return run_on_cpu(batch, request ? &*request : nullptr);
                }).share();
  previous_cpu_step_ = step.result;
  launched_.push_back(std::move(step));
}

std::vector<SampledRow> ModelRunner::wait_step() {
  RADIXLM_CHECK(!launched_.empty(), "wait_step with no step launched");
  Launched step = std::move(launched_.front());
  launched_.pop_front();
#if defined(RADIXLM_HAVE_CUDA)
  if (device_->cuda != nullptr) {
    if (!step.greedy) return device_->sampler->finish();
    device_->cuda->wait_event(device_->ids_ready[step.slot]);
    std::vector<SampledRow> rows(static_cast<size_t>(step.rows));
    for (int64_t r = 0; r < step.rows; ++r) rows[static_cast<size_t>(r)].token_id = device_->pinned_ids[step.slot][r];
    return rows;
  }
#endif
  return step.result.get();
}

std::vector<int32_t> ModelRunner::run_greedy(const BatchPlan& plan) {
  RADIXLM_CHECK(launched_.empty(), "run_greedy with a launched step unread");
  launch_step(plan, nullptr);
  std::vector<int32_t> tokens;
  for (const SampledRow& row : wait_step()) tokens.push_back(row.token_id);
  return tokens;
}

std::vector<SampledRow> ModelRunner::run_sampled(const BatchPlan& plan, const SampleRowsRequest& request) {
  RADIXLM_CHECK(launched_.empty(), "run_sampled with a launched step unread");
  launch_step(plan, &request);
  return wait_step();
}

void ModelRunner::capture_cuda_graphs() {
#if defined(RADIXLM_HAVE_CUDA)
  if (device_->graphs) {
    const auto start = std::chrono::steady_clock::now();
    device_->graphs->capture_all([this](const ForwardBatch& b) { return model_.forward(b, kv_cache_); }, page_size_);
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    spdlog::info("Captured CUDA graphs for {} decode batch sizes (1..{}) in {:.2f} s",
                 device_->graphs->batch_sizes().size(), device_->graphs->batch_sizes().back(), took.count());
    device_->sampler->reserve_rows(device_->graphs->batch_sizes().back(), model_.config().vocab_size);
  }
#endif
}

int64_t ModelRunner::graph_replays() const {
#if defined(RADIXLM_HAVE_CUDA)
  if (device_->graphs) return device_->graphs->replays();
#endif
  return 0;
}

int64_t ModelRunner::graph_captures() const {
#if defined(RADIXLM_HAVE_CUDA)
  if (device_->graphs) return device_->graphs->captures();
#endif
  return 0;
}

}  // namespace radixlm
