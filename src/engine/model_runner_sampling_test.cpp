// ModelRunner::run_sampled on the CPU backend: the logits go to the host and the CPU row sampler, so a
// step's tokens and logprobs must equal run()'s logits sampled by the engine's sample_batch, step after
// step, for greedy, seeded, penalized and logprob rows, and for a prefill chunk that does not sample.

#include <gtest/gtest.h>

#include "engine/engine_test_support.h"
#include "engine/model_runner.h"
#include "sampling/cpu_row_sampler.h"
#include "sampling/sample_batch.h"

namespace radixlm {
namespace {

using engine_testing::EngineTest;

TEST_F(EngineTest, RunSampledOnTheHostIsTheEngineSampler) {
  ModelRunner runner(*model_, backend_, 32, 16);
  const int64_t vocab = model_->config().vocab_size;
  std::vector<SamplingParams> params(4);
  params[0].temperature = 0.0;
  params[0].return_logprob = true;
  params[0].top_logprobs_num = 4;
  params[1].temperature = 0.9;
  params[1].top_p = 0.8;
  params[2].top_k = 7;
  params[2].presence_penalty = 1.0;
  params[2].logit_bias[3] = 2.0;
  params[2].return_logprob = true;
  params[3].temperature = 1.2;  // a prefill chunk this step: its row is computed and ignored
  std::vector<SamplingState> states(params.size());
  for (size_t s = 0; s < states.size(); ++s) states[s].seed = 1234 + s;
  const std::vector<int32_t> eos = {2};

  BatchPlan plan;
  for (size_t s = 0; s < params.size(); ++s) {
    PlannedSequence seq;
    seq.request_id = s + 1;
    seq.tokens = prompts_[s % prompts_.size()];
    for (int32_t p = 0; p < 4; ++p) seq.pages.push_back(static_cast<int32_t>(s * 4 + p));
    seq.samples = s != 3;
    seq.is_prefill = true;
    plan.seqs.push_back(seq);
  }
  for (int step = 0; step < 4; ++step) {
    SampleRowsRequest request;
    for (size_t s = 0; s < params.size(); ++s) add_sample_row(request, params[s], states[s], eos, vocab);
    StepLogits logits = runner.run(plan);
    std::vector<SamplingRow> rows;
    for (size_t s = 0; s < params.size(); ++s) {
      rows.push_back({std::span<float>(logits.row(static_cast<int64_t>(s)), static_cast<size_t>(vocab)), &params[s],
                      &states[s]});
    }
    const std::vector<SampledToken> want = sample_batch(rows, eos);
    const std::vector<SampledRow> got = runner.run_sampled(plan, request);
    ASSERT_EQ(got.size(), want.size());
    for (size_t s = 0; s < params.size(); ++s) {
      EXPECT_EQ(got[s].token_id, want[s].token_id) << step << " " << s;
      EXPECT_EQ(got[s].logprob, want[s].logprob) << step << " " << s;
      EXPECT_EQ(to_sampled_token(got[s]).top_logprobs.size(), want[s].top_logprobs.size());
      if (!plan.seqs[s].samples) continue;
      record_output_token(states[s], got[s].token_id);
      plan.seqs[s].start += static_cast<int64_t>(plan.seqs[s].tokens.size());
      plan.seqs[s].tokens = {got[s].token_id};
      plan.seqs[s].is_prefill = false;
    }
  }
  EXPECT_EQ(states[1].num_generated, 4);
}

TEST_F(EngineTest, RunSampledRefusesAMismatchedRequest) {
  ModelRunner runner(*model_, backend_, 8, 4);
  BatchPlan plan;
  PlannedSequence seq;
  seq.request_id = 1;
  seq.tokens = {5, 6};
  seq.pages = {0};
  seq.samples = true;
  plan.seqs.push_back(seq);
  EXPECT_DEATH((void)runner.run_sampled(plan, SampleRowsRequest{}), "sampling rows");
}

}  // namespace
}  // namespace radixlm
