// n > 1 (parallel sampling): expand_parallel_samples gives n single-sample copies with seeds seed + i, the
// offline generate() returns each request's n outputs consecutively, and the streaming submit() refuses n != 1.

#include "engine/engine.h"
#include "engine/engine_test_support.h"

namespace radixlm {
namespace {

using namespace engine_testing;

EngineRequest sampled(std::vector<int32_t> ids, std::optional<uint64_t> seed, int32_t n) {
  EngineRequest r;
  r.input_ids = std::move(ids);
  r.params.temperature = 1.0;
  r.params.max_new_tokens = 12;
  r.params.ignore_eos = true;
  r.params.seed = seed;
  r.params.n = n;
  return r;
}

TEST(ExpandParallelSamplesTest, CopiesWithConsecutiveSeeds) {
  EngineRequest r = sampled({1, 2, 3}, 41, 3);
  r.cache_namespace = "salt";
  const auto copies = expand_parallel_samples(r);
  ASSERT_EQ(copies.size(), 3u);
  for (size_t i = 0; i < copies.size(); ++i) {
    EXPECT_EQ(copies[i].params.n, 1);
    EXPECT_EQ(copies[i].params.seed, std::optional<uint64_t>(41 + i));
    EXPECT_EQ(copies[i].input_ids, r.input_ids);
    EXPECT_EQ(copies[i].cache_namespace, "salt");
    EXPECT_EQ(copies[i].params.max_new_tokens, r.params.max_new_tokens);
  }
  // The seed wraps around like any 64-bit pattern.
  const auto wrapped = expand_parallel_samples(sampled({1}, UINT64_MAX, 2));
  EXPECT_EQ(wrapped[1].params.seed, std::optional<uint64_t>(0));
  // Unseeded copies stay unseeded: the engine gives each its own seed.
  for (const auto& c : expand_parallel_samples(sampled({1}, std::nullopt, 4))) EXPECT_FALSE(c.params.seed.has_value());
  EXPECT_EQ(expand_parallel_samples(sampled({1}, 5, 1)).size(), 1u);
  // Out of range: one unchanged request, which validation then refuses.
  const auto bad = expand_parallel_samples(sampled({1}, 5, 0));
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_EQ(bad[0].params.n, 0);
  EXPECT_EQ(expand_parallel_samples(sampled({1}, 5, kMaxSamplesPerRequest + 1))[0].params.n, kMaxSamplesPerRequest + 1);
}

using ParallelSamplesTest = EngineTest;

TEST_F(ParallelSamplesTest, GreedySamplesAreIdentical) {
  EngineRequest r = greedy(prompts_[1], 10);
  r.params.n = 2;
  const auto outputs = run(engine_options(1, -1, true), {r, greedy(prompts_[0], 3)});
  ASSERT_EQ(outputs.size(), 3u);  // two samples of the first request, then the second request
  EXPECT_EQ(outputs[0].output_ids.size(), 10u);
  EXPECT_EQ(outputs[0].output_ids, outputs[1].output_ids);
  const auto want = trusted_greedy(1);
  const size_t k = std::min<size_t>(want.size(), 10);
  EXPECT_EQ(std::vector<int32_t>(outputs[0].output_ids.begin(), outputs[0].output_ids.begin() + static_cast<int64_t>(k)),
            std::vector<int32_t>(want.begin(), want.begin() + static_cast<int64_t>(k)));
  EXPECT_EQ(outputs[2].output_ids.size(), 3u);
  EXPECT_EQ(outputs[0].id + 1, outputs[1].id);
}

TEST_F(ParallelSamplesTest, SeededSamplesDifferAndAreReproducible) {
  const auto first = run(engine_options(1, -1, true), {sampled(prompts_[2], 7, 2)});
  ASSERT_EQ(first.size(), 2u);
  EXPECT_NE(first[0].output_ids, first[1].output_ids);
  // Again, in another engine and another batch shape: the same two samples.
  const auto again = run(engine_options(16, 16, false), {greedy(prompts_[0], 4), sampled(prompts_[2], 7, 2)});
  ASSERT_EQ(again.size(), 3u);
  EXPECT_EQ(again[1].output_ids, first[0].output_ids);
  EXPECT_EQ(again[2].output_ids, first[1].output_ids);
  // Sample i is the request seeded with seed + i.
  const auto alone = run(engine_options(1, -1, false), {sampled(prompts_[2], 8, 1)});
  EXPECT_EQ(alone[0].output_ids, first[1].output_ids);
  // Unseeded samples differ too (each gets its own seed from the engine).
  const auto unseeded = run(engine_options(1, -1, true), {sampled(prompts_[2], std::nullopt, 2)});
  ASSERT_EQ(unseeded.size(), 2u);
  EXPECT_NE(unseeded[0].output_ids, unseeded[1].output_ids);
}

TEST_F(ParallelSamplesTest, SubmitRefusesNAboveOneAndPointsAtTheExpansion) {
  auto engine = Engine::create(*model_, backend_, engine_options(1, -1, true));
  ASSERT_TRUE(engine.ok());
  auto refused = (*engine)->submit(sampled(prompts_[0], 1, 2));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("expand_parallel_samples"), std::string::npos);
  // n = 0 is a validation error, in generate() as in submit().
  EXPECT_EQ((*engine)->generate({sampled(prompts_[0], 1, 0)}).status().code(), StatusCode::kInvalidArgument);
  for (EngineRequest& r : expand_parallel_samples(sampled(prompts_[0], 1, 3))) EXPECT_TRUE((*engine)->submit(r).ok());
}

}  // namespace
}  // namespace radixlm
