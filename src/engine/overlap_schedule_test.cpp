// Overlap scheduling end to end on the CPU backend: the same requests with and without
// --disable-overlap-schedule give the same tokens, finishes and logprobs, while the overlapped run does
// plan steps before the one in flight completes. The mix touches every path the overlap has to get right:
// greedy and seeded sampling (future tokens resolved from the previous step's rows), stop tokens that end
// a request while its next row is already planned, min_new_tokens (the pending token counts), penalties
// and input logprobs (which wait for the step in flight first), and a pool small enough to retract.

#include "engine/engine_test_support.h"

namespace radixlm {
namespace {

using engine_testing::EngineTest;
using engine_testing::engine_options;
using engine_testing::greedy;

class OverlapScheduleTest : public EngineTest {
 protected:
  std::vector<EngineRequest> requests() const {
    std::vector<EngineRequest> out;
    for (int32_t k = 0; k < 12; ++k) {
      EngineRequest r = greedy(prompts_[static_cast<size_t>(k % 3)], 6 + k % 5);
      if (k % 3 == 1) {
        r.params.temperature = 0.8;
        r.params.top_p = 0.9;
        r.params.seed = static_cast<uint64_t>(50 + k);
      }
      if (k == 4) r.params.frequency_penalty = 0.7;
      if (k == 5) {
        r.params.return_logprob = true;
        r.params.top_logprobs_num = 2;
        r.params.logprob_start_len = 0;
      }
      if (k == 7) r.params.min_new_tokens = 4;
      out.push_back(r);
    }
    return out;
  }

  std::vector<EngineOutput> run_mode(std::vector<EngineRequest> reqs, bool overlap, int64_t total_tokens,
                                     int64_t* overlapped_steps) {
    EngineOptions o = engine_options(1, 8, true, total_tokens);
    o.scheduler.schedule_conservativeness = 0.05;
    o.disable_overlap_schedule = !overlap;
    auto engine = Engine::create(*model_, backend_, o);
    EXPECT_TRUE(engine.ok());
    auto outputs = (*engine)->generate(reqs);
    EXPECT_TRUE(outputs.ok()) << outputs.status().to_string();
    *overlapped_steps = (*engine)->stats().overlapped_steps;
    Scheduler& s = (*engine)->scheduler();
    EXPECT_TRUE(s.check_integrity().ok());
    s.cache().flush();
    EXPECT_EQ(s.page_pool().num_free(), s.page_pool().num_pages());
    last_retractions_ += s.counters().retractions;
    return outputs.ok() ? *outputs : std::vector<EngineOutput>{};
  }
};

TEST_F(OverlapScheduleTest, SameOutputsWithAndWithoutOverlap) {
  std::vector<EngineRequest> reqs = requests();
  // Stop tokens taken from each request's own plain output, so some end early by a stop token.
  int64_t steps = 0;
  const auto first = run_mode(reqs, false, 4096, &steps);
  ASSERT_EQ(first.size(), reqs.size());
  for (size_t i = 0; i < reqs.size(); i += 2) {
    reqs[i].params.ignore_eos = false;
    reqs[i].params.stop_token_ids = {first[i].output_ids[2]};
  }
  for (const int64_t pool : {4096, 72}) {
    int64_t plain_overlapped = 0, overlapped = 0;
    const auto plain = run_mode(reqs, false, pool, &plain_overlapped);
    const auto overlap = run_mode(reqs, true, pool, &overlapped);
    EXPECT_EQ(plain_overlapped, 0);
    EXPECT_GT(overlapped, 10) << "pool " << pool;
    ASSERT_EQ(plain.size(), overlap.size());
    int stops = 0;
    for (size_t i = 0; i < plain.size(); ++i) {
      EXPECT_EQ(overlap[i].output_ids, plain[i].output_ids) << "pool " << pool << " request " << i;
      EXPECT_EQ(overlap[i].finish_reason, plain[i].finish_reason) << "pool " << pool << " request " << i;
      stops += plain[i].finish_reason == "stop";
      ASSERT_EQ(overlap[i].output_logprobs.size(), plain[i].output_logprobs.size());
      for (size_t t = 0; t < plain[i].output_logprobs.size(); ++t) {
        EXPECT_EQ(overlap[i].output_logprobs[t].token_id, plain[i].output_logprobs[t].token_id);
        EXPECT_NEAR(overlap[i].output_logprobs[t].logprob, plain[i].output_logprobs[t].logprob, 1e-5);
      }
      EXPECT_EQ(overlap[i].input_token_logprobs.size(), plain[i].input_token_logprobs.size());
    }
    EXPECT_GE(stops, 3) << "pool " << pool;
  }
  EXPECT_GT(last_retractions_, 0);  // the small pool retracted
}

}  // namespace
}  // namespace radixlm
