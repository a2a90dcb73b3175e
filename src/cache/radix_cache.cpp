#include "cache/radix_cache.h"

#include <algorithm>

namespace radixlm {

RadixCache::RadixCache(PagePool& pool, int32_t page_size) : pool_(pool), page_size_(page_size) {
  RADIXLM_CHECK(page_size > 0, "page size {}", page_size);
}

RadixCache::~RadixCache() = default;

RadixCache::Node* RadixCache::root_for(const std::string& ns) {
  std::unique_ptr<Node>& root = roots_[ns];
  if (!root) root = std::make_unique<Node>();  // roots have id 0 (kRootNode) and no parent
  return root.get();
}

RadixCache::Node* RadixCache::node_by_id(int64_t id) const {
  const auto it = nodes_.find(id);
  RADIXLM_CHECK(it != nodes_.end(), "radix cache: no node {}", id);
  return it->second;
}

std::vector<int32_t> RadixCache::first_page(std::span<const int32_t> tokens) const {
  return std::vector<int32_t>(tokens.begin(), tokens.begin() + page_size_);
}

int64_t RadixCache::matched_pages(const Node& node, std::span<const int32_t> tokens) const {
  const int64_t limit = std::min<int64_t>(static_cast<int64_t>(node.pages.size()),
                                          static_cast<int64_t>(tokens.size()) / page_size_);
  int64_t pages = 0;
  for (; pages < limit; ++pages) {
    const auto begin = static_cast<size_t>(pages * page_size_);
    if (!std::equal(node.key.begin() + static_cast<int64_t>(begin),
                    node.key.begin() + static_cast<int64_t>(begin) + page_size_, tokens.begin() + static_cast<int64_t>(begin))) {
      break;
    }
  }
  return pages;
}

void RadixCache::erase_lru(Node* node) {
  if (node->lru_entry) {
    lru_.erase(*node->lru_entry);
    node->lru_entry.reset();
  }
}

void RadixCache::refresh_lru(Node* node) {
  erase_lru(node);
  if (node->parent != nullptr && node->children.empty() && node->lock_ref == 0) {
    node->lru_entry = std::make_pair(node->last_access, node->id);
    lru_.insert(*node->lru_entry);
  }
}

void RadixCache::touch(Node* node) {
  node->last_access = ++clock_;
  refresh_lru(node);
}

RadixCache::Node* RadixCache::split(Node* node, int64_t pages) {
  RADIXLM_CHECK(pages > 0 && pages < static_cast<int64_t>(node->pages.size()), "bad split at {} pages", pages);
  const int64_t tokens = pages * page_size_;
  auto upper = std::make_unique<Node>();
  upper->id = next_id_++;
  upper->parent = node->parent;
  upper->key.assign(node->key.begin(), node->key.begin() + tokens);
  upper->pages.assign(node->pages.begin(), node->pages.begin() + pages);
  upper->lock_ref = node->lock_ref;  // every lock through the lower part passes through the upper one
  upper->last_access = node->last_access;
  node->key.erase(node->key.begin(), node->key.begin() + tokens);
  node->pages.erase(node->pages.begin(), node->pages.begin() + pages);

  std::unique_ptr<Node>& slot = node->parent->children.at(first_page(upper->key));
  std::unique_ptr<Node> lower = std::move(slot);
  lower->parent = upper.get();
  Node* up = upper.get();
  up->children.emplace(first_page(lower->key), std::move(lower));
  nodes_[up->id] = up;
  slot = std::move(upper);
  refresh_lru(up);
  refresh_lru(node);  // its LRU key is unchanged, but keep the rule in one place
  return up;
}

PrefixMatch RadixCache::match_prefix(const std::string& ns, std::span<const int32_t> tokens, bool count) {
  PrefixMatch match;
  if (count) {
    ++counters_.lookups;
    counters_.queried_tokens += static_cast<int64_t>(tokens.size());
  }
  const auto root_it = roots_.find(ns);
  if (root_it == roots_.end()) return match;
  Node* node = root_it->second.get();
  const size_t aligned = tokens.size() / static_cast<size_t>(page_size_) * static_cast<size_t>(page_size_);
  size_t pos = 0;
  while (pos < aligned) {
    const auto it = node->children.find(first_page(tokens.subspan(pos)));
    if (it == node->children.end()) break;
    Node* child = it->second.get();
    const int64_t pages = matched_pages(*child, tokens.subspan(pos, aligned - pos));
    const bool partial = pages < static_cast<int64_t>(child->pages.size());
    if (partial) child = split(child, pages);
    match.pages.insert(match.pages.end(), child->pages.begin(), child->pages.end());
    pos += child->key.size();
    touch(child);
    node = child;
    if (partial) break;
  }
  match.num_tokens = static_cast<int64_t>(pos);
  match.node = node->parent == nullptr ? kRootNode : node->id;
  if (count) counters_.hit_tokens += match.num_tokens;
  return match;
}

RadixInsertResult RadixCache::insert(const std::string& ns, std::span<const int32_t> tokens,
                                     std::span<const int32_t> pages) {
  RADIXLM_CHECK(tokens.size() == pages.size() * static_cast<size_t>(page_size_), "insert of {} tokens with {} pages",
                tokens.size(), pages.size());
  RadixInsertResult result;
  Node* node = root_for(ns);
  size_t pos = 0, page = 0;
  while (pos < tokens.size()) {
    const auto it = node->children.find(first_page(tokens.subspan(pos)));
    if (it == node->children.end()) {
      auto leaf = std::make_unique<Node>();
      leaf->id = next_id_++;
      leaf->parent = node;
      leaf->key.assign(tokens.begin() + static_cast<int64_t>(pos), tokens.end());
      leaf->pages.assign(pages.begin() + static_cast<int64_t>(page), pages.end());
      const auto adopted = static_cast<int64_t>(leaf->pages.size());
      cached_pages_ += adopted;
      evictable_pages_ += adopted;
      counters_.inserted_pages += adopted;
      Node* raw = leaf.get();
      nodes_[raw->id] = raw;
      node->children.emplace(first_page(raw->key), std::move(leaf));
      refresh_lru(node);
      touch(raw);
      break;
    }
    Node* child = it->second.get();
    const int64_t matched = matched_pages(*child, tokens.subspan(pos));
    for (int64_t i = 0; i < matched; ++i) {
      const int32_t mine = pages[page + static_cast<size_t>(i)];
      if (mine != child->pages[static_cast<size_t>(i)]) result.duplicate_pages.push_back(mine);
    }
    if (matched < static_cast<int64_t>(child->pages.size())) child = split(child, matched);
    touch(child);
    pos += static_cast<size_t>(matched * page_size_);
    page += static_cast<size_t>(matched);
    result.already_cached_tokens += matched * page_size_;
    node = child;
  }
  counters_.duplicate_pages += static_cast<int64_t>(result.duplicate_pages.size());
  return result;
}

void RadixCache::lock(int64_t node_id) {
  if (node_id == kRootNode) return;
  for (Node* node = node_by_id(node_id); node->parent != nullptr; node = node->parent) {
    if (node->lock_ref == 0) evictable_pages_ -= static_cast<int64_t>(node->pages.size());
    ++node->lock_ref;
    refresh_lru(node);
  }
}

void RadixCache::unlock(int64_t node_id) {
  if (node_id == kRootNode) return;
  for (Node* node = node_by_id(node_id); node->parent != nullptr; node = node->parent) {
    RADIXLM_CHECK(node->lock_ref > 0, "radix cache: unlocking node {} that is not locked", node->id);
    --node->lock_ref;
    if (node->lock_ref == 0) evictable_pages_ += static_cast<int64_t>(node->pages.size());
    refresh_lru(node);
  }
}

void RadixCache::cache_finished(const std::string& ns, std::span<const int32_t> tokens, CachedRow& row) {
  const size_t whole = std::min(tokens.size() / static_cast<size_t>(page_size_), row.pages.size());
  const std::span<const int32_t> pages(row.pages);
  const RadixInsertResult inserted =
      insert(ns, tokens.first(whole * static_cast<size_t>(page_size_)), pages.first(whole));
  pool_.free(inserted.duplicate_pages);
  pool_.free(pages.subspan(whole));  // a partly filled last page, or pages reserved but never written
  unlock(row.node);
  row = CachedRow{};
}

void RadixCache::cache_unfinished(const std::string& ns, std::span<const int32_t> tokens, CachedRow& row) {
  const size_t whole = std::min(tokens.size() / static_cast<size_t>(page_size_), row.pages.size());
  const std::span<const int32_t> key = tokens.first(whole * static_cast<size_t>(page_size_));
  const RadixInsertResult inserted = insert(ns, key, std::span<const int32_t>(row.pages).first(whole));
  pool_.free(inserted.duplicate_pages);
  // Point the row at the tree's pages (some of which replaced the duplicates just freed) and move the lock.
  PrefixMatch match = match_prefix(ns, key, /*count=*/false);
  RADIXLM_CHECK(match.num_tokens == static_cast<int64_t>(key.size()), "radix cache: inserted key not found");
  std::copy(match.pages.begin(), match.pages.end(), row.pages.begin());
  lock(match.node);
  unlock(row.node);
  row.node = match.node;
  row.shared_tokens = match.num_tokens;
}

int64_t RadixCache::evict(int64_t num_pages) {
  int64_t freed = 0;
  while (freed < num_pages && !lru_.empty()) {
    Node* node = node_by_id(lru_.begin()->second);
    erase_lru(node);
    const auto pages = static_cast<int64_t>(node->pages.size());
    pool_.free(node->pages);
    freed += pages;
    cached_pages_ -= pages;
    evictable_pages_ -= pages;
    counters_.evicted_pages += pages;
    Node* parent = node->parent;
    nodes_.erase(node->id);
    parent->children.erase(first_page(node->key));  // destroys node
    refresh_lru(parent);
  }
  return freed;
}

void RadixCache::for_each_cached_page(const std::function<void(int32_t)>& visit) const {
  for (const auto& [id, node] : nodes_) {
    for (int32_t page : node->pages) visit(page);
  }
}

void RadixCache::flush() {
  RADIXLM_CHECK(evictable_pages_ == cached_pages_, "radix cache: flush with {} locked pages",
                cached_pages_ - evictable_pages_);
  evict(cached_pages_);
  RADIXLM_CHECK(nodes_.empty() && cached_pages_ == 0, "radix cache: flush left nodes behind");
}

int64_t RadixCache::parent_of(int64_t node_id) const {
  if (node_id == kRootNode) return kRootNode;
  const Node* parent = node_by_id(node_id)->parent;
  return parent->parent == nullptr ? kRootNode : parent->id;
}

int64_t RadixCache::lock_count(int64_t node_id) const { return node_by_id(node_id)->lock_ref; }

Status RadixCache::check_node(const Node& node, int64_t& unlocked_pages) const {
  int64_t child_locks = 0;
  for (const auto& [first, child] : node.children) {
    if (child->parent != &node) return make_error(StatusCode::kInternal, "node {}: wrong parent", child->id);
    if (child->key.empty() || child->key.size() != child->pages.size() * static_cast<size_t>(page_size_)) {
      return make_error(StatusCode::kInternal, "node {}: {} tokens with {} pages", child->id, child->key.size(),
                        child->pages.size());
    }
    if (first != first_page(child->key)) return make_error(StatusCode::kInternal, "node {}: wrong child key", child->id);
    const bool should_be_in_lru = child->children.empty() && child->lock_ref == 0;
    const bool in_lru = child->lru_entry.has_value() && lru_.count(*child->lru_entry) == 1 &&
                        *child->lru_entry == std::make_pair(child->last_access, child->id);
    if (should_be_in_lru != in_lru) {
      return make_error(StatusCode::kInternal, "node {}: LRU membership {} but should be {}", child->id, in_lru,
                        should_be_in_lru);
    }
    if (child->lock_ref == 0) unlocked_pages += static_cast<int64_t>(child->pages.size());
    child_locks += child->lock_ref;
    RADIXLM_RETURN_IF_ERROR(check_node(*child, unlocked_pages));
  }
  if (node.parent != nullptr && node.lock_ref < child_locks) {
    return make_error(StatusCode::kInternal, "node {}: {} locks but its children hold {}", node.id, node.lock_ref,
                      child_locks);
  }
  return {};
}

Status RadixCache::check_structure() const {
  int64_t unlocked_pages = 0;
  for (const auto& [ns, root] : roots_) RADIXLM_RETURN_IF_ERROR(check_node(*root, unlocked_pages));
  int64_t pages = 0;
  for (const auto& [id, node] : nodes_) pages += static_cast<int64_t>(node->pages.size());
  if (pages != cached_pages_ || unlocked_pages != evictable_pages_) {
    return make_error(StatusCode::kInternal, "page counts: {} cached (counted {}), {} evictable (counted {})",
                      cached_pages_, pages, evictable_pages_, unlocked_pages);
  }
  size_t leaves_in_lru = 0;
  for (const auto& [id, node] : nodes_) leaves_in_lru += node->lru_entry.has_value() ? 1 : 0;
  if (leaves_in_lru != lru_.size()) return make_error(StatusCode::kInternal, "LRU set has stale entries");
  return {};
}

PrefixMatch NoSharingCache::match_prefix(const std::string&, std::span<const int32_t> tokens, bool count) {
  if (count) {
    ++counters_.lookups;
    counters_.queried_tokens += static_cast<int64_t>(tokens.size());
  }
  return {};
}

void NoSharingCache::cache_finished(const std::string&, std::span<const int32_t>, CachedRow& row) {
  pool_.free(row.pages);
  row = CachedRow{};
}

std::unique_ptr<PrefixCache> make_prefix_cache(PagePool& pool, int32_t page_size, bool disable_radix_cache) {
  if (disable_radix_cache) return std::make_unique<NoSharingCache>(pool, page_size);
  return std::make_unique<RadixCache>(pool, page_size);
}

Status check_page_integrity(const PagePool& pool, const PrefixCache& cache,
                            std::span<const std::span<const int32_t>> owned) {
  enum : uint8_t { kUnseen, kFree, kCached, kOwned };
  static constexpr const char* kNames[] = {"unseen", "free", "cached", "owned by a request"};
  std::vector<uint8_t> state(static_cast<size_t>(pool.num_pages()), kUnseen);
  Status status;
  auto mark = [&](int32_t page, uint8_t as) {
    if (!status.ok()) return;
    if (page < 0 || page >= pool.num_pages()) {
      status = make_error(StatusCode::kInternal, "page {} is outside the pool of {}", page, pool.num_pages());
    } else if (state[static_cast<size_t>(page)] != kUnseen) {
      status = make_error(StatusCode::kInternal, "page {} is both {} and {}", page,
                          kNames[state[static_cast<size_t>(page)]], kNames[as]);
    } else {
      state[static_cast<size_t>(page)] = as;
    }
  };
  for (int32_t page = 0; page < pool.num_pages(); ++page) {
    if (pool.is_free(page)) mark(page, kFree);
  }
  cache.for_each_cached_page([&](int32_t page) { mark(page, kCached); });
  for (std::span<const int32_t> row : owned) {
    for (int32_t page : row) mark(page, kOwned);
  }
  RADIXLM_RETURN_IF_ERROR(status);
  for (int32_t page = 0; page < pool.num_pages(); ++page) {
    if (state[static_cast<size_t>(page)] == kUnseen) {
      return make_error(StatusCode::kInternal, "page {} is allocated but neither cached nor owned: leaked", page);
    }
  }
  return {};
}

}  // namespace radixlm
