// Input logprobs (return_logprob with logprob_start_len, SGLang's input_token_logprobs / input_top_logprobs)
// against the HF golden: entry k > 0 is log_softmax(golden logits at position start + k - 1) at the prompt
// token start + k; the first entry has no logprob. A cached prefix longer than logprob_start_len is cut so
// those positions are computed, with any page size and chunking.

#include <cmath>
#include <limits>

#include "engine/engine.h"
#include "engine/engine_test_support.h"

namespace radixlm {
namespace {

using namespace engine_testing;

using InputLogprobsTest = EngineTest;

std::vector<double> log_softmax(const std::vector<double>& logits) {
  const double max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (double v : logits) sum += std::exp(v - max);
  std::vector<double> out;
  for (double v : logits) out.push_back(v - max - std::log(sum));
  return out;
}

EngineRequest with_input_logprobs(std::vector<int32_t> ids, int32_t start, int32_t top_n) {
  EngineRequest r = greedy(std::move(ids), 2);
  r.params.return_logprob = true;
  r.params.logprob_start_len = start;
  r.params.top_logprobs_num = top_n;
  return r;
}

class InputLogprobsGolden : public InputLogprobsTest {
 protected:
  // Checks `got` (the input_token_logprobs of golden prompt `p` from `start`) against the golden.
  void expect_golden(size_t p, int64_t start, const std::vector<SampledToken>& got, int32_t top_n) {
    const std::vector<int32_t>& prompt = prompts_[p];
    const auto logits = golden_[p].at("logits").get<std::vector<std::vector<double>>>();
    ASSERT_EQ(got.size(), prompt.size() - static_cast<size_t>(start)) << "prompt " << p << " start " << start;
    EXPECT_EQ(got[0].token_id, prompt[static_cast<size_t>(start)]);
    EXPECT_TRUE(std::isnan(got[0].logprob));
    EXPECT_TRUE(got[0].top_logprobs.empty());
    for (size_t k = 1; k < got.size(); ++k) {
      const size_t pos = static_cast<size_t>(start) + k;  // the token; its row is pos - 1
      const std::vector<double> want = log_softmax(logits[pos - 1]);
      EXPECT_EQ(got[k].token_id, prompt[pos]);
      EXPECT_NEAR(got[k].logprob, want[static_cast<size_t>(prompt[pos])], 2e-3) << "prompt " << p << " pos " << pos;
      ASSERT_EQ(got[k].top_logprobs.size(), static_cast<size_t>(top_n));
      std::vector<double> sorted = want;
      std::sort(sorted.begin(), sorted.end(), std::greater<>());
      for (int32_t j = 0; j < top_n; ++j) {
        const TokenLogprob& t = got[k].top_logprobs[static_cast<size_t>(j)];
        EXPECT_NEAR(t.logprob, sorted[static_cast<size_t>(j)], 2e-3) << "pos " << pos << " rank " << j;
        EXPECT_NEAR(want[static_cast<size_t>(t.token_id)], t.logprob, 2e-3) << "pos " << pos << " rank " << j;
      }
    }
  }
};

TEST_F(InputLogprobsGolden, WholePromptFromZero) {
  std::vector<EngineRequest> requests;
  for (const auto& p : prompts_) requests.push_back(with_input_logprobs(p, 0, 3));
  for (int32_t page_size : {1, 16}) {
    for (int64_t chunk : {int64_t{-1}, int64_t{16}}) {
      const auto outputs = run(engine_options(page_size, chunk, true), requests);
      ASSERT_EQ(outputs.size(), prompts_.size());
      for (size_t i = 0; i < prompts_.size(); ++i) expect_golden(i, 0, outputs[i].input_token_logprobs, 3);
    }
  }
}

TEST_F(InputLogprobsGolden, DefaultStartIsTheLastPromptToken) {
  const auto outputs = run(engine_options(1, -1, true), {with_input_logprobs(prompts_[1], -1, 0)});
  ASSERT_EQ(outputs[0].input_token_logprobs.size(), 1u);
  EXPECT_EQ(outputs[0].input_token_logprobs[0].token_id, prompts_[1].back());
  EXPECT_TRUE(std::isnan(outputs[0].input_token_logprobs[0].logprob));
  // Without return_logprob: none.
  const auto plain = run(engine_options(1, -1, true), {greedy(prompts_[1], 2)});
  EXPECT_TRUE(plain[0].input_token_logprobs.empty());
}

TEST_F(InputLogprobsGolden, CachedPrefixIsCutAtTheStart) {
  const size_t p = 2;
  const int32_t start = 5;
  for (int32_t page_size : {1, 4}) {
    for (int64_t chunk : {int64_t{-1}, int64_t{8}}) {
      EngineOptions o = engine_options(page_size, chunk, true);
      o.scheduler.max_running_requests = 1;  // the first finishes (and caches the prompt) before the second
      const auto outputs = run(o, {greedy(prompts_[p], 2), with_input_logprobs(prompts_[p], start, 2),
                                   with_input_logprobs(prompts_[p], 25, 1)});
      ASSERT_EQ(outputs.size(), 3u);
      // Only whole pages of the first `start` tokens may come from the cache.
      EXPECT_EQ(outputs[1].cached_tokens, start / page_size * page_size) << "page " << page_size;
      expect_golden(p, start, outputs[1].input_token_logprobs, 2);
      EXPECT_EQ(outputs[2].cached_tokens, 25 / page_size * page_size);
      expect_golden(p, 25, outputs[2].input_token_logprobs, 1);
      // The output logprobs are unaffected.
      EXPECT_EQ(outputs[1].output_ids, outputs[0].output_ids);
    }
  }
}

TEST_F(InputLogprobsTest, StreamingCarriesThemOnTheFirstChunk) {
  auto engine = Engine::create(*model_, backend_, engine_options(1, 8, true));
  ASSERT_TRUE(engine.ok());
  (*engine)->start();
  auto stream = (*engine)->submit(with_input_logprobs(prompts_[2], 3, 0));
  ASSERT_TRUE(stream.ok());
  std::vector<std::vector<SampledToken>> carried;
  std::optional<EngineOutput> final;
  while (auto chunk = (*stream)->next()) {
    if (!chunk->input_token_logprobs.empty()) carried.push_back(chunk->input_token_logprobs);
    if (chunk->finished) final = chunk->output;
  }
  ASSERT_EQ(carried.size(), 1u);  // once
  ASSERT_TRUE(final.has_value());
  ASSERT_EQ(carried[0].size(), prompts_[2].size() - 3);
  ASSERT_EQ(final->input_token_logprobs.size(), carried[0].size());
  for (size_t k = 1; k < carried[0].size(); ++k) EXPECT_EQ(carried[0][k].logprob, final->input_token_logprobs[k].logprob);
  (*engine)->stop();
}

TEST_F(InputLogprobsTest, StartAtOrPastThePromptEndIsAnError) {
  auto engine = Engine::create(*model_, backend_, engine_options(1, -1, true));
  ASSERT_TRUE(engine.ok());
  const auto len = static_cast<int32_t>(prompts_[0].size());
  auto refused = (*engine)->submit(with_input_logprobs(prompts_[0], len, 0));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("logprob_start_len"), std::string::npos);
  EXPECT_TRUE((*engine)->submit(with_input_logprobs(prompts_[0], len - 1, 0)).ok());
  // Without return_logprob the start is ignored, as in SGLang.
  EngineRequest ignored = greedy(prompts_[0], 1);
  ignored.params.logprob_start_len = len + 10;
  EXPECT_TRUE((*engine)->submit(ignored).ok());
}

}  // namespace
}  // namespace radixlm
