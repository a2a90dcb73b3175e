#include "engine/model_runner.h"

#include <algorithm>
#include <chrono>

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
#endif
  CpuRowSampler host_sampler;
};

ModelRunner::ModelRunner(Model& model, Backend& backend, int32_t num_pages, int32_t page_size,
                         const ModelRunnerOptions& options)
    : model_(model), backend_(backend), page_size_(page_size), device_(std::make_unique<DeviceState>()) {
  const KvCacheShape shape = model.kv_cache_shape();
  const int64_t slots = (int64_t{num_pages} + 1) * page_size;  // + the padding page
  const Shape kv_shape{slots, shape.num_kv_heads, shape.head_dim};
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
  }
#else
  (void)options;
#endif
}

ModelRunner::~ModelRunner() = default;

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
      batch.token_ids.push_back(seq.tokens[static_cast<size_t>(i)]);
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

StepLogits ModelRunner::run(const BatchPlan& plan) {
  const ForwardBatch batch = make_forward_batch(plan);
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
  if (device_->graphs && device_->graphs->can_run(batch)) {
    const CudaDecodeGraphs::Output graph = device_->graphs->run(
        batch, [this](const ForwardBatch& b) { return model_.forward(b, kv_cache_); });
    backend_.copy_to_host_f32(graph.logits.slice_rows(0, row), out.values.data());  // the batch's rows only
    return out;
  }
#endif
  Tensor logits = model_.forward(batch, kv_cache_);
  backend_.copy_to_host_f32(logits, out.values.data());
  return out;
}

std::vector<int32_t> ModelRunner::run_greedy(const BatchPlan& plan) {
  const ForwardBatch batch = make_forward_batch(plan);
  const auto rows = static_cast<int64_t>(plan.seqs.size());
  RADIXLM_CHECK(static_cast<int64_t>(batch.logit_rows.size()) == rows, "run_greedy: the plan asks for prompt logits");
  std::vector<int32_t> tokens(static_cast<size_t>(rows));
#if defined(RADIXLM_HAVE_CUDA)
  if (device_->cuda != nullptr) {
    if (device_->graphs && device_->graphs->can_run(batch)) {
      const CudaDecodeGraphs::Output graph = device_->graphs->run(
          batch, [this](const ForwardBatch& b) { return model_.forward(b, kv_cache_); });
      device_->cuda->copy_to_host(graph.tokens.slice_rows(0, rows), tokens.data());
      return tokens;
    }
    return device_->cuda->argmax_rows(model_.forward(batch, kv_cache_));
  }
#endif
  Tensor logits = model_.forward(batch, kv_cache_);
  const int64_t vocab = model_.config().vocab_size;
  std::vector<float> values(static_cast<size_t>(rows * vocab));
  backend_.copy_to_host_f32(logits, values.data());
  for (int64_t r = 0; r < rows; ++r) {
    tokens[static_cast<size_t>(r)] = argmax_token({values.data() + r * vocab, static_cast<size_t>(vocab)});
  }
  return tokens;
}

std::vector<SampledRow> ModelRunner::run_sampled(const BatchPlan& plan, const SampleRowsRequest& request) {
  const ForwardBatch batch = make_forward_batch(plan);
  const auto rows = static_cast<int64_t>(plan.seqs.size());
  RADIXLM_CHECK(static_cast<int64_t>(batch.logit_rows.size()) == rows, "run_sampled: the plan asks for prompt logits");
  RADIXLM_CHECK(request.num_rows() == rows, "run_sampled: {} sampling rows for {} sequences", request.num_rows(), rows);
#if defined(RADIXLM_HAVE_CUDA)
  if (device_->sampler) {
    if (device_->graphs && device_->graphs->can_run(batch)) {
      const CudaDecodeGraphs::Output graph = device_->graphs->run(
          batch, [this](const ForwardBatch& b) { return model_.forward(b, kv_cache_); });
      // The graph's logits stay valid until the next run; the sampler runs next on the same stream.
      return device_->sampler->sample_rows(graph.logits.slice_rows(0, rows), request);
    }
    const Tensor logits = model_.forward(batch, kv_cache_);
    return device_->sampler->sample_rows(logits.view, request);
  }
#endif
  const Tensor logits = model_.forward(batch, kv_cache_);
  const int64_t vocab = model_.config().vocab_size;
  std::vector<float> values(static_cast<size_t>(rows * vocab));
  backend_.copy_to_host_f32(logits, values.data());
  return device_->host_sampler.sample_rows(TensorView(values.data(), DType::kF32, Shape{rows, vocab}), request);
}

bool ModelRunner::samples_on_device() const {
#if defined(RADIXLM_HAVE_CUDA)
  return device_->sampler != nullptr;
#else
  return false;
#endif
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
