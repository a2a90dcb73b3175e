// RadixCache and NoSharingCache against hand-worked trees: what matches, what splits, which pages come back
// as duplicates, which leaf is evicted first, and that every page stays free, cached or owned exactly once.

#include "cache/radix_cache.h"

#include <algorithm>
#include <numeric>

#include <gtest/gtest.h>

namespace radixlm {
namespace {

using Ids = std::vector<int32_t>;

Ids iota(int32_t from, int32_t count) {
  Ids out(static_cast<size_t>(count));
  std::iota(out.begin(), out.end(), from);
  return out;
}

// A request's row of pages for `tokens` positions, all its own.
CachedRow own_row(PagePool& pool, int64_t tokens, int32_t page_size) {
  auto pages = pool.alloc(static_cast<int32_t>((tokens + page_size - 1) / page_size));
  EXPECT_TRUE(pages.ok());
  return CachedRow{*pages, 0, kRootNode};
}

void expect_intact(const PagePool& pool, const RadixCache& cache, const std::vector<const CachedRow*>& rows) {
  std::vector<std::span<const int32_t>> owned;
  for (const CachedRow* row : rows) owned.push_back(row->own_pages(cache.page_size()));
  const Status pages = check_page_integrity(pool, cache, owned);
  EXPECT_TRUE(pages.ok()) << pages.to_string();
  const Status tree = cache.check_structure();
  EXPECT_TRUE(tree.ok()) << tree.to_string();
}

TEST(RadixCache, SharedPrefixIsFoundAndDuplicatePagesComeBack) {
  PagePool pool(32);
  RadixCache cache(pool, 1);
  const Ids a = {1, 2, 3, 4, 5};
  CachedRow row_a = own_row(pool, 5, 1);
  cache.cache_finished("", a, row_a);
  EXPECT_EQ(cache.cached_pages(), 5);
  EXPECT_EQ(pool.num_free(), 27);
  expect_intact(pool, cache, {});

  // b shares 3 tokens: the match splits a's node after 3 pages.
  const Ids b = {1, 2, 3, 9, 9, 9};
  PrefixMatch hit = cache.match_prefix("", b, true);
  EXPECT_EQ(hit.num_tokens, 3);
  ASSERT_EQ(hit.pages.size(), 3u);
  cache.lock(hit.node);
  EXPECT_EQ(cache.evictable_pages(), 2);  // a's unshared tail only
  CachedRow row_b{hit.pages, 3, hit.node};
  auto fresh = pool.alloc(3);
  ASSERT_TRUE(fresh.ok());
  row_b.pages.insert(row_b.pages.end(), fresh->begin(), fresh->end());
  expect_intact(pool, cache, {&row_b});

  // A third request computed the same 5 tokens as a without the cache: all 5 of its pages are duplicates.
  CachedRow row_c = own_row(pool, 5, 1);
  const Ids c_pages = row_c.pages;
  const RadixInsertResult again = cache.insert("", a, c_pages);
  EXPECT_EQ(again.already_cached_tokens, 5);
  EXPECT_EQ(again.duplicate_pages, c_pages);
  pool.free(again.duplicate_pages);
  row_c = {};

  cache.cache_finished("", b, row_b);
  EXPECT_EQ(cache.cached_pages(), 8);  // 1 2 3 | 4 5 | 9 9 9
  EXPECT_EQ(cache.evictable_pages(), 8);
  EXPECT_EQ(pool.num_free(), 24);
  EXPECT_EQ(cache.counters().hit_tokens, 3);
  EXPECT_EQ(cache.counters().duplicate_pages, 5);
  expect_intact(pool, cache, {});
  cache.flush();
  EXPECT_EQ(pool.num_free(), 32);
}

TEST(RadixCache, PageSizeAboveOneMatchesAndSplitsOnlyWholePages) {
  PagePool pool(16);
  RadixCache cache(pool, 4);
  const Ids a = iota(100, 11);  // 2 whole pages + 3 tokens
  CachedRow row_a = own_row(pool, 11, 4);
  EXPECT_EQ(row_a.pages.size(), 3u);
  cache.cache_finished("", a, row_a);
  EXPECT_EQ(cache.cached_pages(), 2);  // the partial page went back to the pool
  EXPECT_EQ(pool.num_free(), 14);

  // Shares 6 tokens with a: only the first whole page (4 tokens) can be reused.
  Ids b = iota(100, 6);
  b.push_back(7);
  b.push_back(7);
  const PrefixMatch hit = cache.match_prefix("", b, true);
  EXPECT_EQ(hit.num_tokens, 4);
  EXPECT_EQ(hit.pages.size(), 1u);
  // A query shorter than a page matches nothing.
  EXPECT_EQ(cache.match_prefix("", iota(100, 3), false).num_tokens, 0);
  // The split put a page boundary between the two nodes.
  EXPECT_EQ(cache.parent_of(cache.match_prefix("", a, false).node), hit.node);
  expect_intact(pool, cache, {});
}

TEST(RadixCache, NamespacesNeverShare) {
  PagePool pool(8);
  RadixCache cache(pool, 1);
  const Ids a = {1, 2, 3};
  CachedRow row = own_row(pool, 3, 1);
  cache.cache_finished("salt-1", a, row);
  EXPECT_EQ(cache.match_prefix("salt-1", a, false).num_tokens, 3);
  EXPECT_EQ(cache.match_prefix("salt-2", a, false).num_tokens, 0);
  EXPECT_EQ(cache.match_prefix("", a, false).num_tokens, 0);
  expect_intact(pool, cache, {});
}

TEST(RadixCache, EvictionTakesLeastRecentlyUsedUnlockedLeavesFirst) {
  PagePool pool(32);
  RadixCache cache(pool, 1);
  // Three branches under a shared stem [1, 2]: x, y, z inserted in that order.
  for (int32_t branch : {10, 20, 30}) {
    const Ids key = {1, 2, branch, branch + 1};
    CachedRow row = own_row(pool, 4, 1);
    cache.cache_finished("", key, row);
  }
  EXPECT_EQ(cache.cached_pages(), 8);
  // Using x makes it the most recent; locking z protects it.
  cache.match_prefix("", Ids{1, 2, 10, 11}, false);
  const PrefixMatch z = cache.match_prefix("", Ids{1, 2, 30, 31}, false);
  cache.lock(z.node);

  struct Step {
    int64_t ask;
    int64_t freed;
    std::vector<int32_t> remaining_branches;  // which of 10/20/30 still match in full
  };
  const std::vector<Step> table = {
      {1, 2, {10, 30}},  // y (least recent, unlocked) goes; a whole node's pages come back
      {1, 2, {30}},      // then x
      {5, 0, {30}},      // the stem and z are locked: nothing else can go
  };
  for (const Step& step : table) {
    EXPECT_EQ(cache.evict(step.ask), step.freed);
    for (int32_t branch : {10, 20, 30}) {
      const bool present = cache.match_prefix("", Ids{1, 2, branch, branch + 1}, false).num_tokens == 4;
      const bool want = std::count(step.remaining_branches.begin(), step.remaining_branches.end(), branch) == 1;
      EXPECT_EQ(present, want) << "branch " << branch;
    }
    expect_intact(pool, cache, {});
  }
  EXPECT_EQ(cache.counters().evicted_pages, 4);
  cache.unlock(z.node);
  EXPECT_EQ(cache.evict(100), 4);  // z's leaf, then the stem that became a leaf
  EXPECT_EQ(pool.num_free(), 32);
  expect_intact(pool, cache, {});
}

TEST(RadixCache, UnfinishedRowMovesOntoTheTreesPagesAndStaysLocked) {
  PagePool pool(16);
  RadixCache cache(pool, 2);
  // The first chunk of a prompt (4 tokens, 2 pages) is cached while the request goes on.
  const Ids prompt = iota(1, 8);
  CachedRow row = own_row(pool, 4, 2);
  cache.cache_unfinished("", std::span<const int32_t>(prompt).first(4), row);
  EXPECT_EQ(row.shared_tokens, 4);
  EXPECT_NE(row.node, kRootNode);
  EXPECT_EQ(cache.evictable_pages(), 0);  // locked by the request
  EXPECT_EQ(cache.evict(10), 0);
  expect_intact(pool, cache, {&row});

  // A second request with the same first chunk shares it.
  const PrefixMatch hit = cache.match_prefix("", prompt, true);
  EXPECT_EQ(hit.num_tokens, 4);
  EXPECT_EQ(hit.pages, row.pages);

  // The next chunk: two more pages of its own, then it finishes.
  auto more = pool.alloc(2);
  ASSERT_TRUE(more.ok());
  row.pages.insert(row.pages.end(), more->begin(), more->end());
  expect_intact(pool, cache, {&row});
  cache.cache_finished("", prompt, row);
  EXPECT_EQ(cache.cached_pages(), 4);
  EXPECT_EQ(cache.evictable_pages(), 4);
  expect_intact(pool, cache, {});
  cache.flush();
  EXPECT_EQ(pool.num_free(), 16);
}

TEST(NoSharingCache, NothingIsSharedAndEveryPageComesBack) {
  PagePool pool(8);
  NoSharingCache cache(pool, 2);
  const Ids a = {1, 2, 3, 4, 5};
  CachedRow row = own_row(pool, 5, 2);
  cache.cache_unfinished("", a, row);  // keeps its pages
  EXPECT_EQ(row.pages.size(), 3u);
  EXPECT_EQ(cache.match_prefix("", a, true).num_tokens, 0);
  const std::span<const int32_t> owned[] = {row.own_pages(2)};
  EXPECT_TRUE(check_page_integrity(pool, cache, owned).ok());
  cache.cache_finished("", a, row);
  EXPECT_EQ(pool.num_free(), 8);
}

TEST(PageIntegrity, NamesLeakedAndDoublyHeldPages) {
  PagePool pool(4);
  RadixCache cache(pool, 1);
  auto pages = pool.alloc(2);
  ASSERT_TRUE(pages.ok());
  const Status leaked = check_page_integrity(pool, cache, {});
  EXPECT_FALSE(leaked.ok());
  EXPECT_NE(leaked.message().find("leaked"), std::string::npos);
  const std::span<const int32_t> twice[] = {*pages, *pages};
  const Status doubled = check_page_integrity(pool, cache, twice);
  EXPECT_FALSE(doubled.ok());
  EXPECT_NE(doubled.message().find("both"), std::string::npos);
  const std::span<const int32_t> once[] = {*pages};
  EXPECT_TRUE(check_page_integrity(pool, cache, once).ok());
}

}  // namespace
}  // namespace radixlm
