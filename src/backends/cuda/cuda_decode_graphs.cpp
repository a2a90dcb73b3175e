#include "backends/cuda/cuda_decode_graphs.h"

#include <algorithm>

namespace radixlm {

std::vector<int32_t> cuda_graph_batch_sizes(const CudaGraphOptions& options) {
  if (options.disable) return {};
  std::vector<int32_t> sizes = options.batch_sizes;
  if (sizes.empty()) {
    const int32_t max_bs = options.max_bs > 0 ? options.max_bs : kDefaultCudaGraphMaxBs;
    for (int32_t bs : {1, 2, 4, 8, 12}) sizes.push_back(bs);
    for (int32_t bs = 16; bs <= 256; bs += 8) sizes.push_back(bs);
    for (int32_t bs = 272; bs < 512; bs += 16) sizes.push_back(bs);
    for (int32_t bs = 512; bs <= max_bs; bs += 32) sizes.push_back(bs);
    std::erase_if(sizes, [&](int32_t bs) { return bs > max_bs; });
    sizes.push_back(max_bs);
  }
  for (int32_t bs : sizes) RADIXLM_CHECK(bs >= 1, "CUDA graph batch size {} must be >= 1", bs);
  std::sort(sizes.begin(), sizes.end());
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  return sizes;
}

CudaDecodeGraphs::CudaDecodeGraphs(CudaBackend& backend, std::vector<int32_t> batch_sizes, int32_t padding_page,
                                   int64_t num_slots)
    : backend_(backend), sizes_(std::move(batch_sizes)), padding_page_(padding_page), num_slots_(num_slots) {
  std::sort(sizes_.begin(), sizes_.end());
}

CudaDecodeGraphs::~CudaDecodeGraphs() { drop_graphs(); }

void CudaDecodeGraphs::drop_graphs() {
  if (graphs_.empty()) return;
  backend_.synchronize();
  for (auto& [size, graph] : graphs_) backend_.destroy_graph(graph.exec);
  graphs_.clear();
}

bool CudaDecodeGraphs::can_run(const ForwardBatch& batch) const {
  const int32_t seqs = batch.num_seqs();
  if (sizes_.empty() || seqs == 0 || seqs > sizes_.back() || batch.num_tokens() != seqs) return false;
  if (static_cast<int32_t>(batch.logit_rows.size()) != seqs) return false;
  for (int32_t s = 0; s < seqs; ++s) {
    if (batch.logit_rows[static_cast<size_t>(s)] != s) return false;
  }
  return true;
}

ForwardBatch CudaDecodeGraphs::pad(const ForwardBatch& batch, int32_t bucket) const {
  ForwardBatch padded = batch;
  const int64_t slot = int64_t{padding_page_} * batch.page_size;
  for (int32_t s = batch.num_seqs(); s < bucket; ++s) {
    padded.token_ids.push_back(0);
    padded.positions.push_back(0);
    padded.kv_slots.push_back(slot);
    padded.logit_rows.push_back(s);
    padded.query_start.push_back(s + 1);
    padded.kv_length.push_back(1);
    padded.page_table.push_back(padding_page_);
    padded.page_table_start.push_back(static_cast<int32_t>(padded.page_table.size()));
  }
  return padded;
}

CudaDecodeGraphs::Output CudaDecodeGraphs::run(const ForwardBatch& batch, const Forward& forward) {
  RADIXLM_CHECK(can_run(batch), "not a decode step a CUDA graph can run");
  const int32_t bucket = *std::lower_bound(sizes_.begin(), sizes_.end(), batch.num_seqs());
  return run_padded(pad(batch, bucket), bucket, forward);
}

void CudaDecodeGraphs::capture_all(const Forward& forward, int32_t page_size) {
  ForwardBatch empty;
  empty.page_size = page_size;
  empty.query_start = {0};
  empty.page_table_start = {0};
  // Largest first: the static step buffer is sized for the largest bucket once, not regrown.
  for (auto it = sizes_.rbegin(); it != sizes_.rend(); ++it) {
    if (!graphs_.contains(*it)) (void)run_padded(pad(empty, *it), *it, forward);
  }
}

CudaDecodeGraphs::Output CudaDecodeGraphs::run_padded(const ForwardBatch& padded, int32_t bucket,
                                                      const Forward& forward) {
  // What the ops check on the host when they run eagerly; a replay runs no op, so it is checked here.
  for (int64_t slot : padded.kv_slots) {
    RADIXLM_CHECK(slot >= 0 && slot < num_slots_, "kv slot {} outside the cache of {}", slot, num_slots_);
  }
  for (int32_t page : padded.page_table) {
    RADIXLM_CHECK(page >= 0 && (int64_t{page} + 1) * padded.page_size <= num_slots_, "page {} outside the cache",
                  page);
  }

  // The static step buffer holds the largest bucket; the page table grows with context, and when it
  // outgrows the buffer every graph (which points into it) is captured again.
  CudaBackend::StaticStepCapacity capacity = backend_.static_step_capacity();
  const auto pages = static_cast<int64_t>(padded.page_table.size());
  if (capacity.seqs < sizes_.back() || capacity.pages < pages) {
    drop_graphs();
    capacity.tokens = capacity.seqs = capacity.rows = sizes_.back();
    capacity.pages = std::max<int64_t>(pages * 2, int64_t{sizes_.back()} * 64);
    backend_.reserve_static_steps(capacity);
  }

  backend_.set_static_steps(true);
  auto it = graphs_.find(bucket);
  if (it == graphs_.end()) {
    // Warm-up: GEMM plans, the RoPE table upload and kernel attributes happen here, outside the capture.
    // It writes the same K/V the captured step will, so running it changes nothing.
    (void)forward(padded);
    backend_.begin_step(padded);  // the upload the capture's kernels read
    backend_.begin_capture();
    Graph graph;
    {
      const Tensor logits = forward(padded);
      const Tensor tokens = backend_.argmax_rows_on_device(logits);
      graph.exec = backend_.end_capture();
      graph.logits = logits.view;
      graph.tokens = tokens.view;
    }  // both blocks go back to the graph pool
    it = graphs_.emplace(bucket, graph).first;
    ++captures_;
  } else {
    const int64_t vocab = it->second.logits.size(1);
    for (int32_t id : padded.token_ids) {
      RADIXLM_CHECK(backend_.valid_step_token(id, vocab), "token id {} outside the vocabulary of {}", id, vocab);
    }
    backend_.begin_step(padded);
  }
  backend_.replay(it->second.exec);
  backend_.set_static_steps(false);
  ++replays_;
  return {it->second.logits, it->second.tokens};
}

}  // namespace radixlm
