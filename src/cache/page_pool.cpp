#include "cache/page_pool.h"

#include <algorithm>

namespace radixlm {

PagePool::PagePool(int32_t num_pages) : in_use_(static_cast<size_t>(std::max(num_pages, 0)), 0) {
  free_list_.reserve(in_use_.size());
  // Reversed so the first allocations get pages 0, 1, 2, ...: easier to read in logs and tests.
  for (int32_t page = num_pages - 1; page >= 0; --page) free_list_.push_back(page);
}

Expected<std::vector<int32_t>> PagePool::alloc(int32_t count) {
  if (count < 0) return make_error(StatusCode::kInvalidArgument, "cannot allocate {} pages", count);
  if (count > num_free()) {
    return make_error(StatusCode::kResourceExhausted, "KV cache out of pages: {} wanted, {} of {} free", count,
                      num_free(), num_pages());
  }
  std::vector<int32_t> pages(free_list_.end() - count, free_list_.end());
  free_list_.resize(free_list_.size() - static_cast<size_t>(count));
  for (int32_t page : pages) in_use_[static_cast<size_t>(page)] = 1;
  return pages;
}

void PagePool::free(std::span<const int32_t> pages) {
  for (int32_t page : pages) {
    RADIXLM_CHECK(page >= 0 && page < num_pages() && in_use_[static_cast<size_t>(page)] == 1,
                  "freeing page {} that is not allocated", page);
    in_use_[static_cast<size_t>(page)] = 0;
    free_list_.push_back(page);
  }
}

}  // namespace radixlm
