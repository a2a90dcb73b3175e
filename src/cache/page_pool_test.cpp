#include <algorithm>
#include <set>

#include <gtest/gtest.h>

#include "cache/page_pool.h"
#include "cache/sequence_pages.h"

namespace radixlm {
namespace {

TEST(PagePool, AllocatesDistinctPagesAndTakesBackFreedOnes) {
  PagePool pool(5);
  EXPECT_EQ(pool.num_free(), 5);
  auto first = pool.alloc(3);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, (std::vector<int32_t>{2, 1, 0}));  // the free list pops from its back
  auto second = pool.alloc(2);
  ASSERT_TRUE(second.ok());
  std::set<int32_t> all(first->begin(), first->end());
  all.insert(second->begin(), second->end());
  EXPECT_EQ(all.size(), 5u);
  EXPECT_EQ(pool.num_free(), 0);

  auto none = pool.alloc(1);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kResourceExhausted);

  pool.free(*first);
  EXPECT_EQ(pool.num_free(), 3);
  auto again = pool.alloc(3);
  ASSERT_TRUE(again.ok());
  std::vector<int32_t> sorted_again = *again, sorted_first = *first;
  std::sort(sorted_again.begin(), sorted_again.end());
  std::sort(sorted_first.begin(), sorted_first.end());
  EXPECT_EQ(sorted_again, sorted_first);
}

TEST(PagePool, FailedAllocTakesNothing) {
  PagePool pool(2);
  EXPECT_FALSE(pool.alloc(3).ok());
  EXPECT_EQ(pool.num_free(), 2);
  EXPECT_FALSE(pool.alloc(-1).ok());
}

TEST(PagePoolDeathTest, DoubleFreeIsABug) {
  PagePool pool(2);
  auto pages = pool.alloc(1);
  ASSERT_TRUE(pages.ok());
  pool.free(*pages);
  EXPECT_DEATH(pool.free(*pages), "not allocated");
}

TEST(SequencePages, GrowsByWholePagesAndMapsPositionsToSlots) {
  PagePool pool(10);
  SequencePages seq(4);
  ASSERT_TRUE(seq.reserve(pool, 5).ok());  // 5 positions need 2 pages of 4
  EXPECT_EQ(seq.pages().size(), 2u);
  EXPECT_EQ(seq.capacity(), 8);
  ASSERT_TRUE(seq.reserve(pool, 8).ok());  // still fits
  EXPECT_EQ(seq.pages().size(), 2u);
  ASSERT_TRUE(seq.reserve(pool, 9).ok());
  EXPECT_EQ(seq.pages().size(), 3u);
  for (int64_t p = 0; p < 9; ++p) EXPECT_EQ(seq.slot(p), seq.pages()[p / 4] * 4 + p % 4);
  EXPECT_EQ(pool.num_free(), 7);
  seq.release(pool);
  EXPECT_EQ(pool.num_free(), 10);
  EXPECT_TRUE(seq.pages().empty());
}

TEST(SequencePages, ReserveBeyondThePoolFailsCleanly) {
  PagePool pool(2);
  SequencePages seq(1);
  ASSERT_TRUE(seq.reserve(pool, 1).ok());
  const Status status = seq.reserve(pool, 4);
  EXPECT_EQ(status.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(seq.pages().size(), 1u);
  EXPECT_EQ(pool.num_free(), 1);
}

}  // namespace
}  // namespace radixlm
