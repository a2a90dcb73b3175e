#pragma once
// The KV pool's bookkeeping (DESIGN §4): which page ids are free. The K/V memory itself belongs to the
// backend; a page id p names slots [p * page_size, (p + 1) * page_size) of every layer's K and V buffers.
// The radix cache will take pages from here and give them back when it evicts.

#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"

namespace radixlm {

class PagePool {
 public:
  explicit PagePool(int32_t num_pages);

  int32_t num_pages() const { return static_cast<int32_t>(in_use_.size()); }
  int32_t num_free() const { return static_cast<int32_t>(free_list_.size()); }
  // Whether `page` (in [0, num_pages())) is on the free list; for the integrity check.
  bool is_free(int32_t page) const { return in_use_[static_cast<size_t>(page)] == 0; }

  // Takes `count` pages, or none at all (kResourceExhausted) when fewer are free.
  Expected<std::vector<int32_t>> alloc(int32_t count);
  // Returns pages to the pool. Freeing a page that is not allocated is a bug and aborts.
  void free(std::span<const int32_t> pages);

 private:
  std::vector<int32_t> free_list_;  // popped from the back, so freshly freed pages are reused first
  std::vector<uint8_t> in_use_;
};

}  // namespace radixlm
