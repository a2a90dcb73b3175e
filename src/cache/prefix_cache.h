#pragma once
// The prefix cache's interface (DESIGN §4), so the scheduler works the same with the radix tree
// (RadixCache) and with --disable-radix-cache (NoSharingCache).
//
// A request's page-table row is a CachedRow: its first `shared_tokens` positions live in pages the cache owns
// (found by match_prefix and locked through `node`), the rest in pages the request allocated itself. The
// cache takes the request's pages at cache_unfinished (between prefill chunks) and cache_finished (the end,
// a retraction or an abort), giving back to the pool whatever it already held a copy of.

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "cache/page_pool.h"

namespace radixlm {

// Names the tree node a match ended at; kRootNode when nothing matched.
inline constexpr int64_t kRootNode = 0;

struct PrefixMatch {
  std::vector<int32_t> pages;  // the cached prefix's pages, in position order
  int64_t num_tokens = 0;      // pages.size() * page_size
  int64_t node = kRootNode;    // lock this to keep the prefix from eviction
};

struct CachedRow {
  std::vector<int32_t> pages;  // the whole row: cache-owned pages first, then the request's own
  int64_t shared_tokens = 0;   // positions held by cache-owned pages (a multiple of the page size)
  int64_t node = kRootNode;    // the locked node that owns them

  // The pages the request owns (and must free or hand to the cache).
  std::span<const int32_t> own_pages(int32_t page_size) const {
    return std::span<const int32_t>(pages).subspan(static_cast<size_t>(shared_tokens / page_size));
  }
};

struct CacheCounters {
  int64_t lookups = 0;        // match_prefix calls that counted (admissions)
  int64_t queried_tokens = 0;  // tokens those lookups asked for
  int64_t hit_tokens = 0;      // tokens they found cached
  int64_t inserted_pages = 0;  // pages the tree adopted
  int64_t duplicate_pages = 0;  // pages handed in that the tree already had (freed)
  int64_t evicted_pages = 0;
};

class PrefixCache {
 public:
  virtual ~PrefixCache() = default;

  virtual int32_t page_size() const = 0;
  // Whether a request's KV can be found again by another request.
  virtual bool shares() const = 0;

  // The longest cached prefix of `tokens` in namespace `ns` (cache_salt / extra_key), in whole pages. Marks
  // the path as recently used; `count` adds the lookup to the hit counters (admission does, policies don't).
  virtual PrefixMatch match_prefix(const std::string& ns, std::span<const int32_t> tokens, bool count) = 0;

  // Reference counts along the path from `node` to its namespace root; locked nodes are never evicted.
  virtual void lock(int64_t node) = 0;
  virtual void unlock(int64_t node) = 0;

  // `tokens` are the tokens whose K/V the row holds. The request is done with its KV: the whole pages are
  // kept for reuse, everything else goes back to the pool, the row's lock is dropped and `row` is emptied.
  virtual void cache_finished(const std::string& ns, std::span<const int32_t> tokens, CachedRow& row) = 0;
  // The request goes on (the next prefill chunk): its whole pages become cache-owned and the row now points
  // at the cache's pages (locked), so other requests can share them at once.
  virtual void cache_unfinished(const std::string& ns, std::span<const int32_t> tokens, CachedRow& row) = 0;

  // Frees up to `num_pages` pages of unlocked leaves, least recently used first; returns how many.
  virtual int64_t evict(int64_t num_pages) = 0;
  virtual int64_t evictable_pages() const = 0;
  // Pages the cache holds (locked or not).
  virtual int64_t cached_pages() const = 0;
  virtual void for_each_cached_page(const std::function<void(int32_t)>& visit) const = 0;
  // Evicts everything; every node must be unlocked.
  virtual void flush() = 0;

  virtual const CacheCounters& counters() const = 0;
};

}  // namespace radixlm
