#include "engine/model_runner.h"

#include "cache/sequence_pages.h"

namespace radixlm {

ModelRunner::ModelRunner(Model& model, Backend& backend, int32_t num_pages, int32_t page_size)
    : model_(model), backend_(backend), page_size_(page_size) {
  const KvCacheShape shape = model.kv_cache_shape();
  const Shape kv_shape{int64_t{num_pages} * page_size, shape.num_kv_heads, shape.head_dim};
  for (int64_t layer = 0; layer < shape.num_layers; ++layer) {
    kv_cache_.push_back({backend.alloc(backend.activation_dtype(), kv_shape),
                         backend.alloc(backend.activation_dtype(), kv_shape)});
  }
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
  Tensor logits = model_.forward(batch, kv_cache_);
  out.values.resize(static_cast<size_t>(logits.view.numel()));
  backend_.copy_to_host_f32(logits, out.values.data());
  return out;
}

}  // namespace radixlm
