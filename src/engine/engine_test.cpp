// The engine on the CPU backend against the llama fixture's HF golden: greedy continuations and prompt logits
// match the golden, and a batch gives every request exactly the tokens it gets alone (page sizes 1 and 16,
// chunked prefill on and off, radix cache on and off, retraction under a tiny pool, seeded sampling).

#include "engine/engine.h"

#include "engine/engine_test_support.h"

namespace radixlm {
namespace {

using namespace engine_testing;

TEST_F(EngineTest, GoldenGreedyAndPromptLogits) {
  std::vector<EngineRequest> requests;
  for (const auto& p : prompts_) {
    requests.push_back(greedy(p, 16));
    requests.back().return_prompt_logits = true;
  }
  for (int32_t page_size : {1, 16}) {
    const auto outputs = run(engine_options(page_size, std::max(8, page_size), true), requests);
    ASSERT_EQ(outputs.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
      const EngineOutput& out = outputs[i];
      EXPECT_EQ(out.output_ids.size(), 16u);
      EXPECT_EQ(out.finish_reason, "length");
      const std::vector<int32_t> want = trusted_greedy(i);
      EXPECT_EQ(std::vector<int32_t>(out.output_ids.begin(), out.output_ids.begin() + static_cast<int64_t>(want.size())),
                want)
          << "prompt " << i << " page size " << page_size;
      const auto golden_logits = golden_[i].at("logits").get<std::vector<std::vector<double>>>();
      ASSERT_EQ(out.prompt_logits.size(), golden_logits.size());  // gathered across chunks
      double max_abs = 0, max_delta = 0;
      for (size_t pos = 0; pos < golden_logits.size(); ++pos) {
        for (size_t v = 0; v < golden_logits[pos].size(); ++v) {
          max_abs = std::max(max_abs, std::abs(golden_logits[pos][v]));
          max_delta = std::max(max_delta, std::abs(out.prompt_logits[pos][v] - golden_logits[pos][v]));
        }
      }
      EXPECT_LE(max_delta, 1e-3 * max_abs) << "prompt " << i;
      EXPECT_EQ(out.prompt_tokens, static_cast<int64_t>(prompts_[i].size()));
      EXPECT_EQ(out.completion_tokens, 16);
    }
  }
}

TEST_F(EngineTest, SixteenRequestsTogetherGiveWhatEachGetsAlone) {
  const std::vector<EngineRequest> requests = mixed_requests();
  const auto reference = alone(requests);
  for (size_t i = 0; i < 3; ++i) {
    const auto want = trusted_greedy(i);
    EXPECT_EQ(std::vector<int32_t>(reference[i].begin(), reference[i].begin() + std::min<int64_t>(8, static_cast<int64_t>(want.size()))),
              std::vector<int32_t>(want.begin(), want.begin() + std::min<int64_t>(8, static_cast<int64_t>(want.size()))));
  }
  for (int32_t page_size : {1, 16}) {
    for (int64_t chunk : {int64_t{-1}, int64_t{16}}) {
      for (bool radix : {true, false}) {
        EngineOptions o = engine_options(page_size, chunk, radix);
        o.scheduler.max_running_requests = 6;  // later requests find earlier ones' prefixes in the cache
        const auto outputs = run(o, requests);
        ASSERT_EQ(outputs.size(), requests.size());
        int64_t cached = 0;
        for (size_t i = 0; i < requests.size(); ++i) {
          EXPECT_EQ(outputs[i].output_ids, reference[i])
              << "request " << i << " page " << page_size << " chunk " << chunk << " radix " << radix;
          EXPECT_EQ(outputs[i].cached_tokens % page_size, 0);
          cached += outputs[i].cached_tokens;
        }
        if (radix) {
          EXPECT_GT(cached, 0) << "page " << page_size << " chunk " << chunk;
        } else {
          EXPECT_EQ(cached, 0);
        }
      }
    }
  }
}

TEST_F(EngineTest, PoliciesAndMixedChunksKeepEveryRequestExact) {
  const std::vector<EngineRequest> requests = mixed_requests();
  const auto reference = alone(requests);
  for (SchedulePolicy policy : {SchedulePolicy::kLpm, SchedulePolicy::kDfsWeight, SchedulePolicy::kRandom,
                                SchedulePolicy::kPriority}) {
    EngineOptions o = engine_options(4, 12, true);
    o.scheduler.policy = policy;
    o.scheduler.enable_mixed_chunk = true;
    o.scheduler.max_running_requests = 5;
    o.scheduler.max_prefill_tokens = 20;
    const auto outputs = run(o, requests);
    ASSERT_EQ(outputs.size(), requests.size());
    for (size_t i = 0; i < requests.size(); ++i) {
      EXPECT_EQ(outputs[i].output_ids, reference[i]) << "request " << i << " policy " << static_cast<int>(policy);
    }
  }
}

TEST_F(EngineTest, CachedTokensReportTheSharedPrefix) {
  std::vector<int32_t> shared(prompts_[2].begin(), prompts_[2].begin() + 20);
  shared.insert(shared.end(), {7, 8, 9});
  const std::vector<EngineRequest> requests = {greedy(prompts_[2], 4), greedy(shared, 4)};
  const std::vector<std::pair<int32_t, bool>> cases = {{1, true}, {16, true}, {1, false}};
  const std::vector<int64_t> want = {20, 16, 0};  // whole pages of the 20 shared tokens
  for (size_t c = 0; c < cases.size(); ++c) {
    EngineOptions o = engine_options(cases[c].first, -1, cases[c].second);
    o.scheduler.max_running_requests = 1;  // the first finishes before the second starts
    const auto outputs = run(o, requests);
    ASSERT_EQ(outputs.size(), 2u);
    EXPECT_EQ(outputs[0].cached_tokens, 0);
    EXPECT_EQ(outputs[1].cached_tokens, want[c]) << "case " << c;
  }
  // Another namespace (cache_salt / extra_key) never sees the prefix.
  std::vector<EngineRequest> salted = requests;
  salted[1].cache_namespace = "salt";
  EngineOptions o = engine_options(1, -1, true);
  o.scheduler.max_running_requests = 1;
  EXPECT_EQ(run(o, salted)[1].cached_tokens, 0);
}

TEST_F(EngineTest, RetractionUnderATinyPoolLosesNothing) {
  std::vector<EngineRequest> requests = mixed_requests();
  requests.resize(8);
  const auto reference = alone(requests);
  EngineOptions o = engine_options(1, -1, true, /*total_tokens=*/96);
  o.scheduler.schedule_conservativeness = 0.05;  // admit optimistically so decode runs out of pages
  const auto outputs = run(o, requests);
  EXPECT_GT(last_retractions_, 0);
  for (size_t i = 0; i < requests.size(); ++i) EXPECT_EQ(outputs[i].output_ids, reference[i]) << "request " << i;
}

TEST_F(EngineTest, SeededSamplingIsTheSameAloneAndInABatch) {
  std::vector<EngineRequest> requests;
  for (int32_t k = 0; k < 6; ++k) {
    EngineRequest r;
    r.input_ids = prompts_[static_cast<size_t>(k % 3)];
    r.params.temperature = 0.9;
    r.params.top_p = 0.95;
    r.params.top_k = 40;
    r.params.seed = static_cast<uint64_t>(1000 + k);
    r.params.max_new_tokens = 10;
    r.params.ignore_eos = true;
    requests.push_back(r);
  }
  std::vector<std::vector<int32_t>> reference;
  for (const auto& r : requests) reference.push_back(run(engine_options(1, -1, false), {r})[0].output_ids);
  const auto outputs = run(engine_options(16, 16, true), requests);
  for (size_t i = 0; i < requests.size(); ++i) EXPECT_EQ(outputs[i].output_ids, reference[i]) << "request " << i;
  // Requests 0 and 3 share the prompt but not the seed: different samples are (overwhelmingly) expected.
  EXPECT_NE(outputs[0].output_ids, outputs[3].output_ids);
}

TEST_F(EngineTest, LogprobOfTheFirstTokenMatchesTheGoldenLogits) {
  EngineRequest r = greedy(prompts_[1], 2);
  r.params.return_logprob = true;
  r.params.top_logprobs_num = 3;
  const auto outputs = run(engine_options(1, -1, true), {r});
  ASSERT_EQ(outputs[0].output_logprobs.size(), 2u);
  // log_softmax of HF's logits at the last prompt position.
  const auto logits = golden_[1].at("logits").back().get<std::vector<double>>();
  double max = *std::max_element(logits.begin(), logits.end()), sum = 0;
  for (double v : logits) sum += std::exp(v - max);
  const int32_t token = outputs[0].output_ids[0];
  const double want = logits[static_cast<size_t>(token)] - max - std::log(sum);
  EXPECT_NEAR(outputs[0].output_logprobs[0].logprob, want, 1e-3);
  ASSERT_EQ(outputs[0].output_logprobs[0].top_logprobs.size(), 3u);
  EXPECT_EQ(outputs[0].output_logprobs[0].top_logprobs[0].token_id, token);
}

TEST_F(EngineTest, StreamingOnTheSchedulerThreadWithAbort) {
  auto engine = Engine::create(*model_, backend_, engine_options(1, -1, true));
  ASSERT_TRUE(engine.ok());
  (*engine)->start();
  auto short_one = (*engine)->submit(greedy(prompts_[1], 3));
  auto long_one = (*engine)->submit(greedy(prompts_[2], 100000));
  ASSERT_TRUE(short_one.ok() && long_one.ok());
  std::vector<int32_t> streamed;
  std::optional<EngineOutput> final;
  while (auto chunk = (*short_one)->next()) {
    streamed.insert(streamed.end(), chunk->token_ids.begin(), chunk->token_ids.end());
    if (chunk->finished) final = chunk->output;
  }
  ASSERT_TRUE(final.has_value());
  EXPECT_EQ(final->output_ids, streamed);
  EXPECT_EQ(final->finish_reason, "length");
  EXPECT_GE(final->e2e_latency_s, final->time_to_first_token_s);
  ASSERT_TRUE((*long_one)->next().has_value());  // it is running
  (*engine)->abort((*long_one)->id());
  std::optional<EngineOutput> aborted;
  while (auto chunk = (*long_one)->next()) {
    if (chunk->finished) aborted = chunk->output;
  }
  ASSERT_TRUE(aborted.has_value());
  EXPECT_EQ(aborted->finish_reason, "abort");
  (*engine)->stop();
  Scheduler& s = (*engine)->scheduler();
  EXPECT_TRUE(s.idle());
  s.cache().flush();
  EXPECT_EQ(s.page_pool().num_free(), s.page_pool().num_pages());
}

TEST_F(EngineTest, BadRequestsAreErrors) {
  auto engine = Engine::create(*model_, backend_, engine_options(1, -1, true));
  ASSERT_TRUE(engine.ok());
  EXPECT_EQ((*engine)->generate({greedy({1, 512}, 2)}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*engine)->generate({greedy({}, 2)}).status().code(), StatusCode::kInvalidArgument);
  EngineRequest bad = greedy({1, 2}, 2);
  bad.params.top_p = 0.0;
  EXPECT_EQ((*engine)->generate({bad}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*engine)->generate({greedy(std::vector<int32_t>(3000, 1), 2)}).status().code(),
            StatusCode::kResourceExhausted);  // longer than the 2048-token pool
}

}  // namespace
}  // namespace radixlm
