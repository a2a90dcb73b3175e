#include "cache/sequence_pages.h"

namespace radixlm {

int64_t pages_for_tokens(int64_t num_tokens, int32_t page_size) { return (num_tokens + page_size - 1) / page_size; }

SequencePages::SequencePages(int32_t page_size) : page_size_(page_size) {
  RADIXLM_CHECK(page_size > 0, "page size {}", page_size);
}

Status SequencePages::reserve(PagePool& pool, int64_t num_tokens) {
  const int64_t missing = pages_for_tokens(num_tokens, page_size_) - static_cast<int64_t>(pages_.size());
  if (missing <= 0) return {};
  if (missing > pool.num_free()) {
    return make_error(StatusCode::kResourceExhausted, "KV cache out of pages: {} more wanted, {} of {} free", missing,
                      pool.num_free(), pool.num_pages());
  }
  RADIXLM_ASSIGN_OR_RETURN(std::vector<int32_t> fresh, pool.alloc(static_cast<int32_t>(missing)));
  pages_.insert(pages_.end(), fresh.begin(), fresh.end());
  return {};
}

int64_t SequencePages::slot(int64_t position) const {
  RADIXLM_CHECK(position >= 0 && position < capacity(), "position {} past capacity {}", position, capacity());
  return static_cast<int64_t>(pages_[static_cast<size_t>(position / page_size_)]) * page_size_ + position % page_size_;
}

void SequencePages::release(PagePool& pool) {
  pool.free(pages_);
  pages_.clear();
}

}  // namespace radixlm
