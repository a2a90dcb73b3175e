#pragma once
// RadixAttention's prefix cache (DESIGN §4): a radix tree over token ids whose nodes own the pages holding
// those tokens' K/V. Keys are whole pages: with page_size P a node's key is a multiple of P tokens, a child
// is found by its first page of tokens, and nodes split only at page boundaries, so a page is never shared
// by two nodes. Each namespace (cache_salt / extra_key) has its own root.
//
// Unlocked leaves sit in an ordered set keyed by (last access, node id): eviction takes them from its front,
// never by scanning the tree. Access times come from a counter bumped per operation, so tests are exact.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cache/prefix_cache.h"
#include "core/status.h"

namespace radixlm {

struct RadixInsertResult {
  int64_t already_cached_tokens = 0;  // the prefix of the inserted key the tree already had
  std::vector<int32_t> duplicate_pages;  // caller's pages the tree did not adopt: the caller frees them
};

class RadixCache final : public PrefixCache {
 public:
  RadixCache(PagePool& pool, int32_t page_size);
  ~RadixCache() override;

  int32_t page_size() const override { return page_size_; }
  bool shares() const override { return true; }
  PrefixMatch match_prefix(const std::string& ns, std::span<const int32_t> tokens, bool count) override;
  void lock(int64_t node) override;
  void unlock(int64_t node) override;
  void cache_finished(const std::string& ns, std::span<const int32_t> tokens, CachedRow& row) override;
  void cache_unfinished(const std::string& ns, std::span<const int32_t> tokens, CachedRow& row) override;
  int64_t evict(int64_t num_pages) override;
  int64_t evictable_pages() const override { return evictable_pages_; }
  int64_t cached_pages() const override { return cached_pages_; }
  void for_each_cached_page(const std::function<void(int32_t)>& visit) const override;
  void flush() override;
  const CacheCounters& counters() const override { return counters_; }

  // Adds `tokens` (whole pages; pages.size() * page_size == tokens.size()) with their pages.
  RadixInsertResult insert(const std::string& ns, std::span<const int32_t> tokens, std::span<const int32_t> pages);

  // For the dfs-weight policy: the parent of a node (kRootNode for a namespace's top nodes).
  int64_t parent_of(int64_t node) const;
  // Tree invariants (keys whole pages, children keyed by their first page, lock counts, the LRU set holds
  // exactly the unlocked leaves); the message names the first broken one.
  Status check_structure() const;
  int64_t lock_count(int64_t node) const;

 private:
  struct Node {
    int64_t id = 0;
    Node* parent = nullptr;
    std::vector<int32_t> key;
    std::vector<int32_t> pages;
    std::map<std::vector<int32_t>, std::unique_ptr<Node>> children;  // by the first page of the child's key
    int64_t lock_ref = 0;
    uint64_t last_access = 0;
    std::optional<std::pair<uint64_t, int64_t>> lru_entry;  // its entry in lru_ while it is in the set
  };

  Node* root_for(const std::string& ns);
  Node* node_by_id(int64_t id) const;
  std::vector<int32_t> first_page(std::span<const int32_t> tokens) const;
  // Matched whole pages of `tokens` against `node`'s key.
  int64_t matched_pages(const Node& node, std::span<const int32_t> tokens) const;
  // Cuts `node` after `pages` pages; returns the new upper part.
  Node* split(Node* node, int64_t pages);
  void touch(Node* node);
  void refresh_lru(Node* node);
  void erase_lru(Node* node);
  Status check_node(const Node& node, int64_t& locks_seen) const;

  PagePool& pool_;
  int32_t page_size_;
  std::map<std::string, std::unique_ptr<Node>> roots_;
  std::unordered_map<int64_t, Node*> nodes_;  // every non-root node by id
  std::set<std::pair<uint64_t, int64_t>> lru_;  // unlocked leaves by (last access, id)
  int64_t next_id_ = 1;
  uint64_t clock_ = 0;
  int64_t cached_pages_ = 0;
  int64_t evictable_pages_ = 0;  // pages of nodes with lock_ref == 0
  CacheCounters counters_;
};

// For --disable-radix-cache: nothing is ever shared; a request keeps its own pages until it finishes and
// then they all go back to the pool.
class NoSharingCache final : public PrefixCache {
 public:
  NoSharingCache(PagePool& pool, int32_t page_size) : pool_(pool), page_size_(page_size) {}

  int32_t page_size() const override { return page_size_; }
  bool shares() const override { return false; }
  PrefixMatch match_prefix(const std::string&, std::span<const int32_t> tokens, bool count) override;
  void lock(int64_t) override {}
  void unlock(int64_t) override {}
  void cache_finished(const std::string& ns, std::span<const int32_t> tokens, CachedRow& row) override;
  void cache_unfinished(const std::string&, std::span<const int32_t>, CachedRow&) override {}
  int64_t evict(int64_t) override { return 0; }
  int64_t evictable_pages() const override { return 0; }
  int64_t cached_pages() const override { return 0; }
  void for_each_cached_page(const std::function<void(int32_t)>&) const override {}
  void flush() override {}
  const CacheCounters& counters() const override { return counters_; }

 private:
  PagePool& pool_;
  int32_t page_size_;
  CacheCounters counters_;
};

std::unique_ptr<PrefixCache> make_prefix_cache(PagePool& pool, int32_t page_size, bool disable_radix_cache);

// Every page of `pool` is exactly one of: free, held by `cache`, or owned by one live request (`owned`, the
// own_pages of each request's row). The message names the first page that breaks this.
Status check_page_integrity(const PagePool& pool, const PrefixCache& cache,
                            std::span<const std::span<const int32_t>> owned);

}  // namespace radixlm
