#pragma once
// The host-side description of one model step over a batch of sequences, in the CSR layout attention
// kernels read (DESIGN §4). Built once per step by the engine; the backend copies it to where its kernels
// read it (Backend::begin_step).
//
// Example: two sequences, the first with 3 cached tokens and 2 new ones (prefill of a chunk after a prefix
// hit), the second decoding 1 token with 6 cached; page_size 4.
//   token_ids   = [a, b, c]            positions  = [3, 4, 6]
//   query_start = [0, 2, 3]            kv_length  = [5, 7]
//   page_table_start = [0, 2, 4]       page_table = [p0, p1, q0, q1]
//   kv_slots    = [p0*4+3, p1*4+0, q1*4+2]

#include <cstdint>
#include <vector>

namespace radixlm {

struct ForwardBatch {
  // Per new token, all sequences' new tokens concatenated in sequence order.
  std::vector<int32_t> token_ids;
  std::vector<int32_t> positions;
  std::vector<int64_t> kv_slots;  // where token i's K/V is stored: page_id * page_size + offset in page
  // Per sequence.
  std::vector<int32_t> query_start;       // [num_seqs + 1]: sequence s owns tokens [query_start[s], query_start[s+1])
  std::vector<int32_t> kv_length;         // [num_seqs]: cached + new tokens of s after this step
  std::vector<int32_t> page_table_start;  // [num_seqs + 1]: s's pages are page_table[page_table_start[s] ...]
  std::vector<int32_t> page_table;        // page ids in order; page k holds positions [k*page_size, (k+1)*page_size)
  int32_t page_size = 1;
  // Token indices (into token_ids) whose logits the step returns, in order: usually each sequence's last.
  std::vector<int32_t> logit_rows;

  int32_t num_tokens() const { return static_cast<int32_t>(token_ids.size()); }
  int32_t num_seqs() const { return static_cast<int32_t>(kv_length.size()); }
  int32_t max_query_len() const;
  int32_t max_kv_len() const;
};

}  // namespace radixlm
