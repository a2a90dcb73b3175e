// Greedy choice, temperature softmax, the joint top-k/top-p/min-p cut, the seeded draw and logprobs.

#include "sampling/sampler.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

#include "core/status.h"
#include "sampling/philox.h"

namespace radixlm {
namespace {

// log_softmax(logits / temperature)[i] = (logits[i] - max) / temperature - log_sum.
struct LogSoftmaxNorm {
  double max = 0.0;
  double log_sum = 0.0;
  bool any_finite = false;
};

// One pass for the max, one for the sum of exponentials (in float, summed in double: the float exp is within
// an ulp, and the vocab-long sum is where precision is lost). With `probs`, the exponentials are kept and
// normalised, so the sampler and the logprobs share a single exp pass.
LogSoftmaxNorm log_softmax_norm(std::span<const float> logits, double temperature, std::span<float> probs = {}) {
  LogSoftmaxNorm norm;
  float max = -std::numeric_limits<float>::infinity();
  for (float logit : logits) {
    if (logit > max) max = logit;  // NaN compares false and is skipped
  }
  if (!std::isfinite(max)) return norm;  // all -inf/NaN, or a +inf logit: no proper distribution
  const float inverse_temperature = static_cast<float>(1.0 / temperature);
  double sum = 0.0;
  const bool keep = !probs.empty();
  for (size_t i = 0; i < logits.size(); ++i) {
    const float logit = logits[i];
    const float e = logit == logit ? std::exp((logit - max) * inverse_temperature) : 0.0f;
    sum += e;
    if (keep) probs[i] = e;
  }
  if (keep) {
    const float scale = static_cast<float>(1.0 / sum);
    for (float& p : probs) p *= scale;
  }
  norm.max = max;
  norm.log_sum = std::log(sum);
  norm.any_finite = true;
  return norm;
}

float clamp_logprob(double logprob) {
  constexpr double kLowest = std::numeric_limits<float>::lowest();
  if (!(logprob >= kLowest)) return std::numeric_limits<float>::lowest();  // -inf and NaN
  return static_cast<float>(logprob);
}

float logprob_with(const LogSoftmaxNorm& norm, std::span<const float> logits, int32_t token_id,
                   double temperature, int32_t fallback_token) {
  if (!norm.any_finite) return token_id == fallback_token ? 0.0f : std::numeric_limits<float>::lowest();
  return clamp_logprob((logits[token_id] - norm.max) / temperature - norm.log_sum);
}

std::vector<TokenLogprob> top_logprobs_with(const LogSoftmaxNorm& norm, std::span<const float> logits, int32_t top_n,
                                            double temperature) {
  std::vector<TokenLogprob> result;
  if (top_n <= 0 || logits.empty()) return result;
  const int32_t n = static_cast<int32_t>(std::min<size_t>(static_cast<size_t>(top_n), logits.size()));
  // Rank by logit (log_softmax is monotone in it); NaN sorts last; ties: lower id first.
  auto before = [&](int32_t a, int32_t b) {
    const float la = logits[a], lb = logits[b];
    const bool a_nan = la != la, b_nan = lb != lb;
    if (a_nan != b_nan) return b_nan;
    if (!a_nan && la != lb) return la > lb;
    return a < b;
  };
  // A bounded selection keeps this O(vocab * n) with n <= 20, without a vocab-sized buffer.
  std::vector<int32_t> best;
  best.reserve(static_cast<size_t>(n) + 1);
  for (int32_t id = 0; id < static_cast<int32_t>(logits.size()); ++id) {
    if (static_cast<int32_t>(best.size()) == n && !before(id, best.back())) continue;
    best.insert(std::upper_bound(best.begin(), best.end(), id, before), id);
    if (static_cast<int32_t>(best.size()) > n) best.pop_back();
  }
  const int32_t fallback = norm.any_finite ? -1 : argmax_token(logits);
  for (int32_t id : best) result.push_back({id, logprob_with(norm, logits, id, temperature, fallback)});
  return result;
}

}  // namespace

int32_t argmax_token(std::span<const float> logits) {
  int32_t best = -1;
  for (int32_t id = 0; id < static_cast<int32_t>(logits.size()); ++id) {
    const float logit = logits[id];
    if (logit != logit) continue;
    if (best < 0 || logit > logits[best]) best = id;
  }
  return best < 0 ? 0 : best;
}

void softmax_with_temperature(std::span<const float> logits, double temperature, std::span<float> probs) {
  RADIXLM_CHECK(probs.size() == logits.size(), "probs {} vs logits {}", probs.size(), logits.size());
  RADIXLM_CHECK(temperature > 0.0, "temperature {}", temperature);
  const LogSoftmaxNorm norm = log_softmax_norm(logits, temperature, probs);
  if (!norm.any_finite) {
    std::fill(probs.begin(), probs.end(), 0.0f);
    if (!probs.empty()) probs[argmax_token(logits)] = 1.0f;
  }
}

FilterCut compute_filter_cut(std::span<const float> probs, int32_t top_k, double top_p, double min_p,
                             SamplerScratch& scratch) {
  std::vector<int32_t>& order = scratch.order;
  const int64_t vocab = static_cast<int64_t>(probs.size());
  RADIXLM_CHECK(vocab > 0, "empty probability row");
  const bool use_top_k = top_k > 0 && top_k < vocab;
  const bool use_top_p = top_p < 1.0;
  if (!use_top_k && !use_top_p && min_p <= 0.0) {
    // Nothing filtered: a cut below every probability keeps the whole row without ranking it.
    return {-1.0f, static_cast<int32_t>(vocab - 1), vocab};
  }
  auto before = [&](int32_t a, int32_t b) { return probs[a] > probs[b] || (probs[a] == probs[b] && a < b); };

  // Ranking the whole vocabulary is the cost to avoid. A histogram of the probabilities (buckets of 1/8
  // octave, read off the float's bits, which order like the values) finds a threshold that every kept token
  // clears: the highest bucket edge above which there are already top_k tokens, or more than top_p of the
  // mass (a token below it has more than top_p before it). min-p is a threshold already. Only the tokens
  // above all three get sorted.
  float threshold = 0.0f;
  float max_prob = 0.0f;
  for (float p : probs) max_prob = std::max(max_prob, p);
  if (min_p > 0.0) threshold = static_cast<float>(min_p * max_prob);
  // Small rows sort faster than they fill a histogram.
  constexpr int64_t kHistogramMinVocab = 4096;
  if ((use_top_k || use_top_p) && vocab >= kHistogramMinVocab) {
    constexpr int kBucketShift = 20;  // sign (always 0) + 8 exponent + 3 mantissa bits
    constexpr size_t kBuckets = size_t{1} << (32 - kBucketShift);
    std::vector<double>& bucket_mass = scratch.bucket_mass;
    std::vector<int64_t>& bucket_count = scratch.bucket_count;
    bucket_mass.assign(kBuckets, 0.0);
    bucket_count.assign(kBuckets, 0);
    for (float p : probs) {
      const uint32_t bucket = std::bit_cast<uint32_t>(p) >> kBucketShift;
      bucket_mass[bucket] += p;
      ++bucket_count[bucket];
    }
    double mass = 0.0;
    int64_t count = 0;
    for (size_t bucket = kBuckets; bucket-- > 0;) {
      mass += bucket_mass[bucket];
      count += bucket_count[bucket];
      // The margin covers the difference between this sum and the sorted one below.
      if ((use_top_k && count >= top_k) || (use_top_p && mass > top_p + 1e-6)) {
        threshold = std::max(threshold, std::bit_cast<float>(static_cast<uint32_t>(bucket << kBucketShift)));
        break;
      }
    }
  }
  order.clear();
  for (int32_t id = 0; id < vocab; ++id) {
    if (probs[id] >= threshold) order.push_back(id);
  }
  RADIXLM_CHECK(!order.empty(), "no candidate above {}", threshold);
  int64_t kept = static_cast<int64_t>(order.size());
  if (use_top_k && top_k < kept) {
    std::nth_element(order.begin(), order.begin() + (top_k - 1), order.end(), before);
    kept = top_k;
  }
  std::sort(order.begin(), order.begin() + kept, before);
  if (use_top_p) {
    double mass_before = 0.0;
    int64_t count = 0;
    for (; count < kept; ++count) {
      if (mass_before > top_p) break;
      mass_before += probs[order[count]];
    }
    kept = count;
  }
  const int32_t last = order[kept - 1];
  return {probs[last], last, kept};
}

int32_t sample_kept(std::span<const float> probs, const FilterCut& cut, double uniform) {
  double total = 0.0;
  for (int32_t id = 0; id < static_cast<int32_t>(probs.size()); ++id) {
    if (is_kept(probs[id], id, cut)) total += probs[id];
  }
  if (!(total > 0.0)) return cut.token_id;
  const double target = uniform * total;
  double cumulative = 0.0;
  int32_t last_positive = cut.token_id;
  for (int32_t id = 0; id < static_cast<int32_t>(probs.size()); ++id) {
    if (!is_kept(probs[id], id, cut) || !(probs[id] > 0.0f)) continue;
    cumulative += probs[id];
    last_positive = id;
    if (target < cumulative) return id;
  }
  return last_positive;  // rounding left the target at the very top
}

float token_logprob(std::span<const float> logits, int32_t token_id, double temperature) {
  return logprob_with(log_softmax_norm(logits, temperature), logits, token_id, temperature, argmax_token(logits));
}

std::vector<TokenLogprob> top_logprobs(std::span<const float> logits, int32_t top_n, double temperature) {
  return top_logprobs_with(log_softmax_norm(logits, temperature), logits, top_n, temperature);
}

SampledToken sample_next_token(std::span<float> logits, const SamplingParams& params, const SamplingState& state,
                               std::span<const int32_t> eos_token_ids, SamplerScratch& scratch) {
  RADIXLM_CHECK(!logits.empty(), "empty logits row");
  apply_logit_processors(logits, params, state, eos_token_ids);
  const double temperature = effective_temperature(params);
  SampledToken result;
  LogSoftmaxNorm norm;
  if (is_greedy(params)) {
    result.token_id = argmax_token(logits);
    if (params.return_logprob) norm = log_softmax_norm(logits, temperature);
  } else {
    scratch.probs.resize(logits.size());
    norm = log_softmax_norm(logits, temperature, scratch.probs);
    if (!norm.any_finite) {
      result.token_id = argmax_token(logits);
    } else {
      const FilterCut cut = compute_filter_cut(scratch.probs, params.top_k, params.top_p, params.min_p, scratch);
      const double uniform = uniform_for_step(state.seed, static_cast<uint64_t>(state.num_generated));
      result.token_id = sample_kept(scratch.probs, cut, uniform);
    }
  }
  if (params.return_logprob) {
    const int32_t fallback = norm.any_finite ? -1 : argmax_token(logits);
    result.logprob = logprob_with(norm, logits, result.token_id, temperature, fallback);
    result.top_logprobs = top_logprobs_with(norm, logits, params.top_logprobs_num, temperature);
  }
  return result;
}

}  // namespace radixlm
