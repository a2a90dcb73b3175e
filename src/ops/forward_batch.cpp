#include "ops/forward_batch.h"

#include <algorithm>

namespace radixlm {

int32_t ForwardBatch::max_query_len() const {
  int32_t longest = 0;
  for (size_t s = 0; s + 1 < query_start.size(); ++s) longest = std::max(longest, query_start[s + 1] - query_start[s]);
  return longest;
}

int32_t ForwardBatch::max_kv_len() const {
  int32_t longest = 0;
  for (int32_t length : kv_length) longest = std::max(longest, length);
  return longest;
}

}  // namespace radixlm
