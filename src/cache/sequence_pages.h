#pragma once
// One sequence's row of the page table: the pages holding its tokens' K/V in position order, so position
// p lives in slot pages[p / page_size] * page_size + p % page_size.

#include <cstdint>
#include <vector>

#include "cache/page_pool.h"
#include "core/status.h"

namespace radixlm {

class SequencePages {
 public:
  explicit SequencePages(int32_t page_size);

  int32_t page_size() const { return page_size_; }
  const std::vector<int32_t>& pages() const { return pages_; }
  // Positions the current pages can hold.
  int64_t capacity() const { return static_cast<int64_t>(pages_.size()) * page_size_; }

  // Takes pages from `pool` until `num_tokens` positions fit; on failure nothing is taken.
  Status reserve(PagePool& pool, int64_t num_tokens);
  // The KV slot of `position`, which must be below capacity().
  int64_t slot(int64_t position) const;
  // Gives every page back to `pool`.
  void release(PagePool& pool);

 private:
  int32_t page_size_;
  std::vector<int32_t> pages_;
};

// Pages needed for `num_tokens` positions.
int64_t pages_for_tokens(int64_t num_tokens, int32_t page_size);

}  // namespace radixlm
