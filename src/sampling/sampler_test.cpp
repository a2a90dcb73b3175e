// The sampler against references computed here from the definitions: softmax in double, the allowed set of
// top-k/top-p/min-p from a full sort, frequencies against the exact distribution with a chi-square bound,
// logprobs from log_softmax in double.

#include "sampling/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <vector>

namespace radixlm {
namespace {

std::vector<double> reference_softmax(const std::vector<float>& logits, double temperature) {
  double max = -INFINITY;
  for (float l : logits) max = std::max<double>(max, l);
  std::vector<double> p(logits.size());
  double sum = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) sum += p[i] = std::exp((logits[i] - max) / temperature);
  for (double& v : p) v /= sum;
  return p;
}

// Tokens the joint filter must keep, must drop, and the few too close to a boundary to call in float.
struct AllowedSets {
  std::set<int32_t> allowed, excluded;
};

AllowedSets reference_allowed(const std::vector<double>& p, int32_t top_k, double top_p, double min_p) {
  std::vector<int32_t> order(p.size());
  for (size_t i = 0; i < p.size(); ++i) order[i] = static_cast<int32_t>(i);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
  AllowedSets sets;
  constexpr double kSlack = 1e-5;
  double before = 0.0;
  for (size_t r = 0; r < order.size(); ++r) {
    const int32_t id = order[r];
    const bool by_k = top_k < 0 || static_cast<int64_t>(r) < top_k;
    const double threshold = min_p * p[order[0]];
    const bool sure_in = by_k && (top_p >= 1.0 || before <= top_p - kSlack) && p[id] >= threshold * (1 + kSlack);
    const bool sure_out = !by_k || (top_p < 1.0 && before > top_p + kSlack) || p[id] < threshold * (1 - kSlack);
    if (sure_in) sets.allowed.insert(id);
    if (sure_out) sets.excluded.insert(id);
    before += p[id];
  }
  return sets;
}

std::vector<float> random_logits(std::mt19937& rng, int vocab, double scale) {
  std::normal_distribution<float> normal(0.0f, static_cast<float>(scale));
  std::vector<float> logits(vocab);
  for (float& l : logits) l = normal(rng);
  return logits;
}

SampledToken sample_at(const std::vector<float>& logits, const SamplingParams& params, uint64_t seed, int64_t step,
                       SamplerScratch& scratch) {
  std::vector<float> row = logits;
  SamplingState state;
  state.seed = seed;
  state.num_generated = step;
  return sample_next_token(row, params, state, {}, scratch);
}

TEST(Sampler, FiltersNeverEmitExcludedTokens) {
  std::mt19937 rng(2024);
  SamplerScratch scratch;
  struct Filter {
    int32_t top_k;
    double top_p, min_p, temperature;
  };
  const Filter filters[] = {
      {5, 1.0, 0.0, 1.0},   {-1, 0.5, 0.0, 1.0}, {-1, 1.0, 0.2, 1.0}, {10, 0.8, 0.05, 0.7},
      {3, 0.3, 0.0, 1.5},   {50, 0.95, 0.0, 0.5}, {-1, 0.9, 0.1, 2.0}, {2, 1.0, 0.9, 1.0},
  };
  int checked = 0;
  for (const Filter& f : filters) {
    for (int trial = 0; trial < 12; ++trial) {
      const int vocab = trial % 3 == 0 ? 64 : trial % 3 == 1 ? 700 : 9000;  // 9000: the histogram path
      const std::vector<float> logits = random_logits(rng, vocab, 2.0);
      SamplingParams params;
      params.top_k = f.top_k;
      params.top_p = f.top_p;
      params.min_p = f.min_p;
      params.temperature = f.temperature;
      const AllowedSets sets = reference_allowed(reference_softmax(logits, f.temperature), f.top_k, f.top_p, f.min_p);
      ASSERT_FALSE(sets.allowed.empty());
      std::set<int32_t> seen;
      for (int draw = 0; draw < (vocab > 1000 ? 100 : 300); ++draw) {
        const int32_t token = sample_at(logits, params, 1000 + trial, draw, scratch).token_id;
        ASSERT_EQ(sets.excluded.count(token), 0u) << "token " << token << " top_k " << f.top_k << " top_p " << f.top_p
                                                  << " min_p " << f.min_p;
        seen.insert(token);
        ++checked;
      }
      // Every clearly allowed token is reachable: with a handful allowed, 100+ draws see the likely ones.
      if (sets.allowed.size() <= 3) {
        const std::vector<double> p = reference_softmax(logits, f.temperature);
        double kept_mass = 0.0;
        for (int32_t id : sets.allowed) kept_mass += p[id];
        for (int32_t id : sets.allowed) {
          if (p[id] / kept_mass > 0.05) {
            EXPECT_EQ(seen.count(id), 1u) << id;
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 8 * 12 * 200);
}

TEST(Sampler, FilterCutMatchesTheDefinitionOnALargeVocabulary) {
  std::mt19937 rng(7);
  SamplerScratch scratch;
  for (double top_p : {0.05, 0.5, 0.9, 0.99}) {
    const std::vector<float> logits = random_logits(rng, 20000, 3.0);
    std::vector<float> probs(logits.size());
    softmax_with_temperature(logits, 1.0, probs);
    const FilterCut cut = compute_filter_cut(probs, -1, top_p, 0.0, scratch);
    const AllowedSets sets = reference_allowed(reference_softmax(logits, 1.0), -1, top_p, 0.0);
    int64_t kept = 0;
    for (int32_t id = 0; id < static_cast<int32_t>(probs.size()); ++id) {
      const bool in = is_kept(probs[id], id, cut);
      kept += in;
      if (sets.allowed.count(id)) {
        EXPECT_TRUE(in) << id;
      }
      if (sets.excluded.count(id)) {
        EXPECT_FALSE(in) << id;
      }
    }
    EXPECT_EQ(kept, cut.kept);
  }
}

TEST(Sampler, TiesRankByTokenId) {
  SamplerScratch scratch;
  // Four equally likely tokens then two less likely: top_k 3 keeps the three lowest ids of the tie.
  std::vector<float> probs(6);
  softmax_with_temperature(std::vector<float>{1, 1, 1, 1, 0, 0}, 1.0, probs);
  FilterCut cut = compute_filter_cut(probs, 3, 1.0, 0.0, scratch);
  EXPECT_EQ(cut.kept, 3);
  EXPECT_EQ(cut.token_id, 2);
  for (int32_t id = 0; id < 6; ++id) EXPECT_EQ(is_kept(probs[id], id, cut), id < 3) << id;
  // Four equal tokens, top_p 0.5: the third has exactly 0.5 before it, which SGLang keeps (it drops only
  // tokens with more than top_p before them).
  std::vector<float> equal(4);
  softmax_with_temperature(std::vector<float>{2, 2, 2, 2}, 1.0, equal);
  cut = compute_filter_cut(equal, -1, 0.5, 0.0, scratch);
  EXPECT_EQ(cut.kept, 3);
  EXPECT_EQ(cut.token_id, 2);
  // min_p keeps everything at or above the threshold, ties included.
  cut = compute_filter_cut(probs, -1, 1.0, 1.0, scratch);
  EXPECT_EQ(cut.kept, 4);
}

// Pearson's chi-square of observed counts against expected probabilities.
double chi_square(const std::vector<int>& counts, const std::vector<double>& expected, int draws) {
  double chi2 = 0.0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (expected[i] == 0.0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " has probability 0";
      continue;
    }
    const double e = expected[i] * draws;
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
  }
  return chi2;
}

TEST(Sampler, TemperatureSamplingMatchesTheSoftmax) {
  const std::vector<float> logits = {1.0f, 0.5f, 0.0f, -0.5f, 2.0f, -3.0f, 1.5f, 0.25f};
  SamplerScratch scratch;
  constexpr int kDraws = 100000;
  for (double temperature : {0.5, 1.0, 1.7}) {
    SamplingParams params;
    params.temperature = temperature;
    std::vector<int> counts(logits.size(), 0);
    for (int i = 0; i < kDraws; ++i) ++counts[sample_at(logits, params, 31337, i, scratch).token_id];
    const std::vector<double> p = reference_softmax(logits, temperature);
    // 7 degrees of freedom: P(chi2 > 29.9) = 1e-4.
    EXPECT_LT(chi_square(counts, p, kDraws), 29.9) << "temperature " << temperature;
    for (size_t i = 0; i < p.size(); ++i) {
      const double sd = std::sqrt(kDraws * p[i] * (1 - p[i]));
      EXPECT_NEAR(counts[i], kDraws * p[i], 5 * sd + 1) << "token " << i;
    }
  }
}

TEST(Sampler, FilteredSamplingMatchesTheRenormalisedSoftmax) {
  const std::vector<float> logits = {1.0f, 0.5f, 0.0f, -0.5f, 2.0f, -3.0f, 1.5f, 0.25f};
  SamplerScratch scratch;
  constexpr int kDraws = 100000;
  struct Case {
    int32_t top_k;
    double top_p, min_p;
  };
  for (const Case c : {Case{4, 1.0, 0.0}, Case{-1, 0.7, 0.0}, Case{-1, 1.0, 0.3}, Case{5, 0.9, 0.2}}) {
    SamplingParams params;
    params.temperature = 0.9;
    params.top_k = c.top_k;
    params.top_p = c.top_p;
    params.min_p = c.min_p;
    const std::vector<double> p = reference_softmax(logits, 0.9);
    const AllowedSets sets = reference_allowed(p, c.top_k, c.top_p, c.min_p);
    ASSERT_EQ(sets.allowed.size() + sets.excluded.size(), logits.size()) << "a boundary case; pick other numbers";
    std::vector<double> expected(p.size(), 0.0);
    double mass = 0.0;
    for (int32_t id : sets.allowed) mass += p[id];
    for (int32_t id : sets.allowed) expected[id] = p[id] / mass;
    std::vector<int> counts(logits.size(), 0);
    for (int i = 0; i < kDraws; ++i) ++counts[sample_at(logits, params, 99, i, scratch).token_id];
    const int df = static_cast<int>(sets.allowed.size()) - 1;
    // P(chi2 > x) = 1e-4 for df = 0..7.
    const double critical[] = {0.0, 15.1, 18.4, 21.1, 23.5, 25.7, 27.9, 29.9};
    EXPECT_LE(chi_square(counts, expected, kDraws), critical[df]) << "top_k " << c.top_k << " top_p " << c.top_p;
  }
}

TEST(Sampler, GreedyIsTheArgmaxOfThePenalisedLogits) {
  SamplerScratch scratch;
  SamplingParams params;
  params.temperature = 0.0;
  params.repetition_penalty = 2.0;
  SamplingState state;
  record_output_token(state, 1);
  std::vector<float> logits = {1.0f, 3.0f, 2.0f};
  // 3 / 2 = 1.5 < 2: the repeated token loses.
  EXPECT_EQ(sample_next_token(logits, params, state, {}, scratch).token_id, 2);

  // Ties go to the lower id; NaN never wins.
  EXPECT_EQ(argmax_token(std::vector<float>{1.0f, 4.0f, 4.0f}), 1);
  EXPECT_EQ(argmax_token(std::vector<float>{NAN, 0.5f, NAN}), 1);

  // Greedy ignores the seed and the step.
  params.repetition_penalty = 1.0;
  for (int step = 0; step < 10; ++step) {
    std::vector<float> row = {0.1f, 0.3f, 0.2f};
    SamplingState s;
    s.seed = static_cast<uint64_t>(step) * 977;
    s.num_generated = step;
    EXPECT_EQ(sample_next_token(row, params, s, {}, scratch).token_id, 1);
  }
}

TEST(Sampler, LogprobsAreLogSoftmaxOfTheProcessedLogitsOverTheTemperature) {
  SamplerScratch scratch;
  const std::vector<float> raw = {0.3f, -1.2f, 2.2f, 0.9f, 1.7f, -0.4f};
  for (double temperature : {0.0, 0.6, 1.3}) {
    SamplingParams params;
    params.temperature = temperature;
    params.logit_bias = {{0, 1.0}};
    params.return_logprob = true;
    params.top_logprobs_num = 3;
    std::vector<float> row = raw;
    const SampledToken token = sample_next_token(row, params, SamplingState{.seed = 5}, {}, scratch);

    std::vector<float> processed = raw;
    processed[0] += 1.0f;
    const double t = temperature == 0.0 ? 1.0 : temperature;  // greedy logprobs at temperature 1
    const std::vector<double> p = reference_softmax(processed, t);
    EXPECT_NEAR(token.logprob, std::log(p[token.token_id]), 1e-5);
    ASSERT_EQ(token.top_logprobs.size(), 3u);
    std::vector<int32_t> order = {0, 1, 2, 3, 4, 5};
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[a] > p[b]; });
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(token.top_logprobs[i].token_id, order[i]);
      EXPECT_NEAR(token.top_logprobs[i].logprob, std::log(p[order[i]]), 1e-5);
    }
  }
}

TEST(Sampler, SuppressedTokensReportTheLowestFloatLogprob) {
  const std::vector<float> logits = {0.0f, -INFINITY, 1.0f};
  EXPECT_EQ(token_logprob(logits, 1, 1.0), std::numeric_limits<float>::lowest());
  const std::vector<TokenLogprob> top = top_logprobs(logits, 3, 1.0);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].token_id, 2);
  EXPECT_EQ(top[2].token_id, 1);
  EXPECT_EQ(top[2].logprob, std::numeric_limits<float>::lowest());
}

TEST(Sampler, DegenerateRowsDoNotCrash) {
  SamplerScratch scratch;
  SamplingParams params;
  params.top_p = 0.5;
  params.return_logprob = true;
  params.top_logprobs_num = 2;
  std::vector<float> all_suppressed = {-INFINITY, -INFINITY, -INFINITY};
  const SampledToken token = sample_next_token(all_suppressed, params, SamplingState{}, {}, scratch);
  EXPECT_GE(token.token_id, 0);
  EXPECT_LT(token.token_id, 3);
  std::vector<float> one_nan = {NAN, 0.0f, 1.0f};
  EXPECT_NE(sample_next_token(one_nan, params, SamplingState{}, {}, scratch).token_id, 0);
  // Just above SGLang's greedy epsilon: sampling, but all the mass is on the top logit.
  SamplingParams cold;
  cold.temperature = 2e-6;
  cold.return_logprob = true;
  for (int step = 0; step < 20; ++step) {
    std::vector<float> row = {0.5f, 0.7f, 0.69f};
    const SampledToken token = sample_next_token(row, cold, SamplingState{.seed = 3, .num_generated = step}, {}, scratch);
    EXPECT_EQ(token.token_id, 1);
    EXPECT_EQ(token.logprob, 0.0f);
  }
}

// A toy model whose logits depend on the request's last token and step, so a wrong token changes all later
// rows.
std::vector<float> toy_logits(int32_t last_token, int64_t step, int vocab) {
  std::vector<float> logits(vocab);
  for (int j = 0; j < vocab; ++j) logits[j] = 3.0f * std::sin(1.3f * j + 0.7f * last_token + 0.1f * step);
  return logits;
}

struct ToyRequest {
  SamplingParams params;
  SamplingState state;
  int32_t last = 0;
  std::vector<int32_t> tokens;
};

void step_request(ToyRequest& r, SamplerScratch& scratch) {
  constexpr int kVocab = 40;
  std::vector<float> logits = toy_logits(r.last, r.state.num_generated, kVocab);
  const int32_t token = sample_next_token(logits, r.params, r.state, {}, scratch).token_id;
  record_output_token(r.state, token);
  r.last = token;
  r.tokens.push_back(token);
}

TEST(Sampler, SeededRequestGetsTheSameTokensAloneAndInABatch) {
  auto make = [](uint64_t seed, double temperature, double top_p) {
    ToyRequest r;
    r.params.temperature = temperature;
    r.params.top_p = top_p;
    r.params.frequency_penalty = 0.3;
    r.params.seed = seed;
    r.state.seed = seed;
    return r;
  };
  constexpr int kSteps = 40;
  SamplerScratch scratch;
  ToyRequest alone = make(42, 0.9, 0.95);
  for (int i = 0; i < kSteps; ++i) step_request(alone, scratch);

  // The same request among others, visited in a changing order, and sitting out (retracted) for a while.
  std::vector<ToyRequest> batch = {make(7, 1.2, 1.0), make(42, 0.9, 0.95), make(9, 0.5, 0.8)};
  std::mt19937 rng(1);
  int iteration = 0;
  while (batch[1].tokens.size() < kSteps) {
    std::vector<size_t> order = {0, 1, 2};
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t index : order) {
      const bool retracted = index == 1 && iteration >= 10 && iteration < 15;
      if (!retracted) step_request(batch[index], scratch);
    }
    ++iteration;
  }
  EXPECT_EQ(batch[1].tokens, alone.tokens);
  // And the seed matters: another seed gives another sequence.
  EXPECT_NE(batch[0].tokens, std::vector<int32_t>(alone.tokens.begin(), alone.tokens.begin() + batch[0].tokens.size()));
}

}  // namespace
}  // namespace radixlm
