// A batch step gives each request the token it gets alone, in any order and on any number of threads.

#include "sampling/sample_batch.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace radixlm {
namespace {

std::vector<float> row_logits(int request, int vocab) {
  std::vector<float> logits(vocab);
  for (int j = 0; j < vocab; ++j) logits[j] = 2.5f * std::cos(0.37f * j * (request + 1) + request);
  return logits;
}

TEST(SampleBatch, EveryRowGetsItsTokenAlone) {
  constexpr int kRequests = 12;
  constexpr int kVocab = 300;
  std::vector<SamplingParams> params(kRequests);
  std::vector<SamplingState> states(kRequests);
  for (int r = 0; r < kRequests; ++r) {
    params[r].temperature = r % 4 == 0 ? 0.0 : 0.5 + 0.1 * r;
    params[r].top_k = r % 3 == 0 ? 20 : -1;
    params[r].top_p = r % 2 == 0 ? 0.8 : 1.0;
    params[r].min_p = r % 5 == 0 ? 0.05 : 0.0;
    params[r].presence_penalty = 0.4;
    params[r].return_logprob = r % 2 == 1;
    params[r].top_logprobs_num = 2;
    states[r].seed = 1000 + static_cast<uint64_t>(r);
    for (int t = 0; t < r; ++t) record_output_token(states[r], t * 7 % kVocab);
  }
  const std::vector<int32_t> eos = {0};

  // Alone, one at a time, in reverse order.
  std::vector<SampledToken> alone(kRequests);
  SamplerScratch scratch;
  for (int r = kRequests - 1; r >= 0; --r) {
    std::vector<float> logits = row_logits(r, kVocab);
    alone[r] = sample_next_token(logits, params[r], states[r], eos, scratch);
  }

  for (int threads : {1, 3}) {
    ThreadPool pool(threads);
    std::vector<std::vector<float>> logits(kRequests);
    std::vector<SamplingRow> rows(kRequests);
    for (int r = 0; r < kRequests; ++r) {
      logits[r] = row_logits(r, kVocab);
      rows[r] = {logits[r], &params[r], &states[r]};
    }
    const std::vector<SampledToken> batch = sample_batch(rows, eos, &pool);
    ASSERT_EQ(batch.size(), static_cast<size_t>(kRequests));
    for (int r = 0; r < kRequests; ++r) {
      EXPECT_EQ(batch[r].token_id, alone[r].token_id) << "request " << r << " threads " << threads;
      EXPECT_EQ(batch[r].logprob, alone[r].logprob);
      ASSERT_EQ(batch[r].top_logprobs.size(), alone[r].top_logprobs.size());
    }
  }
}

}  // namespace
}  // namespace radixlm
