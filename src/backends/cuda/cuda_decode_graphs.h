#pragma once
// CUDA graphs of decode steps, as SGLang's CudaGraphRunner: one graph per batch-size bucket, captured at
// start-up by capture_all() (or else the first time a decode batch of that bucket runs), each after one
// eager warm-up of the same shape, which plans the GEMMs and uploads what the ops cache; then replayed
// with the batch padded up to the bucket. A
// replay costs one upload of the step's arrays (token ids, positions, kv slots, the CSR page table) into
// the backend's static step buffer and one graph launch: no per-kernel launches, no device allocation.
//
// Padding rows are sequences of one token at position 0 whose K/V go to `padding_page`, a KV page no real
// sequence owns; their logits and tokens are computed and ignored. Every graph also ends in the greedy
// argmax of its logits, so a greedy step reads back only the token ids.

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "backends/cuda/cuda_backend.h"
#include "ops/forward_batch.h"

namespace radixlm {

// SGLang's flags: --disable-cuda-graph, --cuda-graph-max-bs, --cuda-graph-bs.
struct CudaGraphOptions {
  bool disable = false;
  int32_t max_bs = 0;                // 0: kDefaultCudaGraphMaxBs
  std::vector<int32_t> batch_sizes;  // empty: SGLang's default buckets up to max_bs
};
inline constexpr int32_t kDefaultCudaGraphMaxBs = 256;

// The buckets, ascending and distinct: the given --cuda-graph-bs, else SGLang's default list
// 1, 2, 4, 8, 12, 16..256 by 8, 272..496 by 16, 512.. by 32, cut at max_bs, with max_bs itself included.
// Empty when disabled. Errors: a size below 1.
std::vector<int32_t> cuda_graph_batch_sizes(const CudaGraphOptions& options);

class CudaDecodeGraphs {
 public:
  using Forward = std::function<Tensor(const ForwardBatch&)>;  // the model's forward: logits f32 [rows, vocab]

  // `num_slots`: the KV cache's slots (page ids and slots are checked against it before each replay).
  CudaDecodeGraphs(CudaBackend& backend, std::vector<int32_t> batch_sizes, int32_t padding_page, int64_t num_slots);
  ~CudaDecodeGraphs();
  CudaDecodeGraphs(const CudaDecodeGraphs&) = delete;
  CudaDecodeGraphs& operator=(const CudaDecodeGraphs&) = delete;

  // A decode step a graph can run: every sequence one new token whose logits the step returns, and no
  // more sequences than the largest bucket.
  bool can_run(const ForwardBatch& batch) const;

  struct Output {
    TensorView logits;  // f32 [bucket, vocab] on the device; rows past the batch's are padding
    TensorView tokens;  // int32 [bucket]: each row's argmax
  };
  // Runs the batch through its bucket's graph (capturing it first if needed). The views are valid until
  // the next run or the next capture (read them before anything else runs).
  Output run(const ForwardBatch& batch, const Forward& forward);
  // Captures every bucket's graph now, each on a batch of padding rows only (they write K/V to the
  // padding page), so no request pays for a capture: SGLang captures at start-up too.
  void capture_all(const Forward& forward, int32_t page_size);

  int64_t captures() const { return captures_; }
  int64_t replays() const { return replays_; }
  const std::vector<int32_t>& batch_sizes() const { return sizes_; }

 private:
  // A graph's output views point into the graph pool, but the graph holds no block: every graph runs alone
  // and its outputs are read before the next run, so one graph's outputs may be another's scratch, and the
  // pool stays the size of the largest graph (not the sum of every bucket's logits).
  struct Graph {
    void* exec = nullptr;
    TensorView logits;
    TensorView tokens;
  };
  ForwardBatch pad(const ForwardBatch& batch, int32_t bucket) const;
  Output run_padded(const ForwardBatch& padded, int32_t bucket, const Forward& forward);
  void drop_graphs();

  CudaBackend& backend_;
  std::vector<int32_t> sizes_;
  int32_t padding_page_ = 0;
  int64_t num_slots_ = 0;
  std::map<int32_t, Graph> graphs_;
  int64_t captures_ = 0;
  int64_t replays_ = 0;
};

}  // namespace radixlm
