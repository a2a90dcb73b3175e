// The device sampler: one thread block per logits row runs the CPU sampler's algorithm
// (sampling/logit_processors.cpp, then sampling/sampler.cpp) step for step, so it chooses the same token.
//
// How each CPU step is reproduced:
// - Logit processors touch only listed ids, in the CPU's four phases (additive penalties, min_new_tokens
//   suppression, repetition penalty, logit_bias), a block barrier between phases, with the same double and
//   float roundings spelled out as _rn intrinsics (nvcc would otherwise contract a*b+c into an FMA).
// - Max and argmax (NaN skipped, ties to the lower id) are exact in any order.
// - e = exp((logit - max) * (1/T)) is taken in double and rounded to float: the correctly rounded float
//   almost always, as glibc's expf gives (within 0.502 ulp); the two may differ by one ulp in rare
//   elements. The sum of the e's is in double, in a different order than the CPU's loop: it differs in
//   the last double bits, which survive the rounding of 1/sum to float only in rare rows. A sampled row's
//   e's are kept in a scratch row (f32 [rows, vocab], owned by CudaRowSampler), so the passes below
//   multiply by 1/sum, as the CPU does, without taking the exp again.
// - The joint top-k/top-p/min-p cut (a prefix of the order "probability descending, id ascending") is
//   found without sorting: a radix select over the probability's float bits (4 levels of 8 bits; the bits
//   of a non-negative float order like its value) walks buckets from the top while the first token after
//   a bucket would still be kept, then resolves ties by id with a block scan. Cumulative masses for top-p
//   are 64-bit fixed point (units of 2^-63): exact, so the same in any order, and equal to the CPU's
//   sorted double sum whenever that sum is itself exact (every summed probability >= 2^-30, which holds
//   for the tokens a top-p cut ever sums in practice).
// - The draw: total and cumulative kept mass in token-id order, the same fixed point, compared with
//   uniform * total as the CPU does in double. The uniform is the same Philox4x32-10 word pair
//   (sampling/philox.cpp).
// - Logprobs: log_softmax by the same formula in double; top-N by a radix select over order-preserving
//   keys of the logits (NaN lowest), then a sort of the N winners by (logit desc, id asc).
// Where the CPU and the device can still differ (the one-ulp exp cases, a double sum rounding differently)
// a token can differ only if the draw or the top-p mass falls within ~1e-7 relative of a boundary;
// cuda_sampling_test.cpp checks every mismatch is such a near tie.

#include <cfloat>
#include <climits>
#include <cstdint>

#include <cub/block/block_scan.cuh>

#include "backends/cuda/cuda_sampling_kernels.h"

namespace radixlm::cuda {
namespace {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxTop = 32;  // ops/sample_rows.h's kMaxSampleTopLogprobs (checked on the host)
constexpr double kFixedScale = 9223372036854775808.0;       // 2^63
constexpr double kFixedUnit = 1.0 / 9223372036854775808.0;  // 2^-63
using Fixed = unsigned long long;

// --- Philox4x32-10, as sampling/philox.cpp ---
__device__ double uniform_for_step(uint64_t seed, uint64_t step) {
  uint32_t key0 = static_cast<uint32_t>(seed), key1 = static_cast<uint32_t>(seed >> 32);
  uint32_t c0 = static_cast<uint32_t>(step), c1 = static_cast<uint32_t>(step >> 32);
  uint32_t c2 = 0u /* RandomStream::kTokenSample */, c3 = 0u;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key0 += 0x9E3779B9u;
      key1 += 0xBB67AE85u;
    }
    const uint32_t hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
    const uint32_t hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
    const uint32_t n0 = hi1 ^ c1 ^ key0, n1 = lo1, n2 = hi0 ^ c3 ^ key1, n3 = lo0;
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
  }
  const uint64_t high = c0 >> 5, low = c1 >> 6;
  return static_cast<double>((high << 26) | low) * (1.0 / 9007199254740992.0);
}

__device__ __forceinline__ Fixed to_fixed(float p) {  // p in [0, 1]
  return __double2ull_rz(static_cast<double>(p) * kFixedScale);
}
__device__ __forceinline__ double from_fixed(Fixed u) { return __ull2double_rn(u) * kFixedUnit; }

// The logit's order as an unsigned key: larger logit, larger key; -0 == +0; NaN below everything.
__device__ __forceinline__ uint32_t logit_key(float x) {
  if (x != x) return 0u;
  if (x == 0.0f) x = 0.0f;
  const uint32_t u = __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ float clamp_logprob(double logprob) {
  if (!(logprob >= static_cast<double>(-FLT_MAX))) return -FLT_MAX;  // -inf and NaN
  return __double2float_rn(logprob);
}

struct Shared {
  union {
    cub::BlockScan<int, kThreads>::TempStorage scan_int;
    cub::BlockScan<Fixed, kThreads>::TempStorage scan_fixed;
  };
  unsigned int hist_count[256];
  Fixed hist_mass[256];
  float warp_value[kWarps];
  int warp_index[kWarps];
  double warp_double[kWarps];
  Fixed warp_fixed[kWarps];
  // broadcasts
  float max;
  int argmax;
  double sum;
  Fixed total;
  uint32_t prefix;
  long long rank_above;
  Fixed mass_above;
  long long total_candidates;
  unsigned int tie_count;
  Fixed tie_mass;
  long long tie_target;
  long long kept;
  int cut_id;
  int found;
  int last_positive;
  int top_count;
  uint32_t top_key[kMaxTop];
  int top_id[kMaxTop];
};

// --- block reductions (thread 0 combines the warps; every thread gets the result) ---
__device__ void block_argmax(Shared& sh, float value, int index) {
  // index < 0: no candidate. Better: larger value, then lower index.
  for (int offset = 16; offset > 0; offset >>= 1) {
    const float v = __shfl_down_sync(0xffffffffu, value, offset);
    const int i = __shfl_down_sync(0xffffffffu, index, offset);
    if (i >= 0 && (index < 0 || v > value || (v == value && i < index))) {
      value = v;
      index = i;
    }
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) {
    sh.warp_value[warp] = value;
    sh.warp_index[warp] = index;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kWarps; ++w) {
      const float v = sh.warp_value[w];
      const int i = sh.warp_index[w];
      if (i >= 0 && (index < 0 || v > value || (v == value && i < index))) {
        value = v;
        index = i;
      }
    }
    sh.max = index >= 0 ? value : -INFINITY;
    sh.argmax = index;
  }
  __syncthreads();
}

__device__ double block_sum_double(Shared& sh, double value) {
  for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_down_sync(0xffffffffu, value, offset);
  if (threadIdx.x % 32 == 0) sh.warp_double[threadIdx.x / 32] = value;
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0.0;
    for (int w = 0; w < kWarps; ++w) total += sh.warp_double[w];
    sh.sum = total;
  }
  __syncthreads();
  return sh.sum;
}

__device__ Fixed block_sum_fixed(Shared& sh, Fixed value) {
  for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_down_sync(0xffffffffu, value, offset);
  if (threadIdx.x % 32 == 0) sh.warp_fixed[threadIdx.x / 32] = value;
  __syncthreads();
  if (threadIdx.x == 0) {
    Fixed total = 0;
    for (int w = 0; w < kWarps; ++w) total += sh.warp_fixed[w];
    sh.total = total;
  }
  __syncthreads();
  return sh.total;
}

// The last kept element of a descending order "key desc, id asc" over the elements `key_of` accepts, where
// the element of rank r (mass before it: S_r) is kept iff (!use_k || r < k) and (!use_p || S_r <= top_p).
// Both rules keep a prefix, and rank 0 is always kept. Leaves the key in sh.prefix, the id in sh.cut_id
// and the number kept in sh.kept. `key_of(i, key, mass)` returns false for an element that does not take
// part; masses are only read with use_p.
template <class KeyOf>
__device__ void radix_cut(Shared& sh, int64_t vocab, const KeyOf& key_of, bool use_k, long long k, bool use_p,
                          double top_p) {
  uint32_t prefix = 0, mask = 0;
  if (threadIdx.x == 0) {
    sh.rank_above = 0;
    sh.mass_above = 0;
  }
  for (int level = 0; level < 4; ++level) {
    const int shift = 24 - 8 * level;
    for (int b = threadIdx.x; b < 256; b += kThreads) {
      sh.hist_count[b] = 0;
      sh.hist_mass[b] = 0;
    }
    __syncthreads();
    for (int64_t i = threadIdx.x; i < vocab; i += kThreads) {
      uint32_t key;
      Fixed mass;
      if (!key_of(i, key, mass) || (key & mask) != prefix) continue;
      const uint32_t digit = (key >> shift) & 255u;
      atomicAdd(&sh.hist_count[digit], 1u);
      if (use_p) atomicAdd(&sh.hist_mass[digit], mass);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      if (level == 0) {
        long long total = 0;
        for (int b = 0; b < 256; ++b) total += sh.hist_count[b];
        sh.total_candidates = total;
      }
      long long rank = sh.rank_above;
      Fixed mass = sh.mass_above;
      int chosen = -1;
      for (int b = 255; b >= 0; --b) {
        const unsigned int count = sh.hist_count[b];
        if (count == 0) continue;
        const long long next_rank = rank + count;
        const Fixed next_mass = mass + sh.hist_mass[b];
        const bool next_kept = next_rank < sh.total_candidates && (!use_k || next_rank < k) &&
                               (!use_p || from_fixed(next_mass) <= top_p);
        if (!next_kept) {
          chosen = b;
          break;
        }
        rank = next_rank;
        mass = next_mass;
      }
      // A bucket is always chosen: the last non-empty one ends at the parent's end, which was not kept.
      if (chosen < 0) chosen = 0;
      sh.prefix = prefix | (static_cast<uint32_t>(chosen) << shift);
      sh.rank_above = rank;
      sh.mass_above = mass;
      sh.tie_count = sh.hist_count[chosen];
      sh.tie_mass = sh.hist_mass[chosen];
    }
    __syncthreads();
    prefix = sh.prefix;
    mask |= 255u << shift;
  }
  // `prefix` is now one key held by tie_count elements at ranks rank_above + j, in id order. The last kept
  // j, by bisection (both rules are monotone in j; j = 0 is kept).
  if (threadIdx.x == 0) {
    const long long rank = sh.rank_above;
    const long long count = sh.tie_count;
    const Fixed each = count > 0 ? sh.tie_mass / static_cast<Fixed>(count) : 0;
    auto kept_at = [&](long long j) {
      return (!use_k || rank + j < k) && (!use_p || from_fixed(sh.mass_above + static_cast<Fixed>(j) * each) <= top_p);
    };
    long long lo = 0, hi = count > 0 ? count - 1 : 0;  // kept_at(lo) holds
    while (lo < hi) {
      const long long mid = lo + (hi - lo + 1) / 2;
      if (kept_at(mid)) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    sh.tie_target = lo + 1;
    sh.kept = rank + lo + 1;
    sh.cut_id = -1;
  }
  __syncthreads();
  // The id: the tie_target-th smallest id holding the key.
  const long long target = sh.tie_target;
  long long seen = 0;
  for (int64_t base = 0; base < vocab && seen < target; base += kThreads) {
    const int64_t i = base + threadIdx.x;
    int flag = 0;
    if (i < vocab) {
      uint32_t key;
      Fixed mass;
      flag = key_of(i, key, mass) && key == prefix ? 1 : 0;
    }
    int inclusive = 0, chunk = 0;
    cub::BlockScan<int, kThreads>(sh.scan_int).InclusiveSum(flag, inclusive, chunk);
    if (flag && seen + inclusive == target) sh.cut_id = static_cast<int>(i);
    seen += chunk;
    __syncthreads();  // the scan's storage is reused next chunk
  }
  __syncthreads();
}

__global__ void __launch_bounds__(kThreads) sample_rows_kernel(SampleRowsArgs args) {
  __shared__ Shared sh;
  const int row = blockIdx.x;
  const SampleRowParams p = args.params[row];
  const int64_t vocab = args.vocab;
  float* logits = args.logits + row * vocab;
  const bool greedy = (p.flags & kSampleGreedy) != 0;
  const bool want_logprob = (p.flags & kSampleReturnLogprob) != 0;

  // --- logit processors (sampling/logit_processors.cpp), phase by phase ---
  if (p.frequency_penalty != 0.0 || p.presence_penalty != 0.0) {
    for (int j = p.count_begin + threadIdx.x; j < p.count_end; j += kThreads) {
      const int32_t id = args.count_ids[j];
      const int32_t count = args.count_values[j];
      if (id < 0 || id >= vocab || count <= 0) continue;
      const double penalty = __dadd_rn(__dmul_rn(p.frequency_penalty, static_cast<double>(count)), p.presence_penalty);
      logits[id] = __double2float_rn(__dsub_rn(static_cast<double>(logits[id]), penalty));
    }
  }
  __syncthreads();
  for (int j = p.suppress_begin + threadIdx.x; j < p.suppress_end; j += kThreads) {
    const int32_t id = args.suppress_ids[j];
    if (id >= 0 && id < vocab) logits[id] = -INFINITY;
  }
  __syncthreads();
  if (p.repetition_penalty != 1.0) {
    const float penalty = __double2float_rn(p.repetition_penalty);
    for (int j = p.count_begin + threadIdx.x; j < p.count_end; j += kThreads) {
      const int32_t id = args.count_ids[j];
      if (id < 0 || id >= vocab || args.count_values[j] <= 0) continue;
      const float logit = logits[id];
      logits[id] = logit < 0.0f ? __fmul_rn(logit, penalty) : __fdiv_rn(logit, penalty);
    }
  }
  __syncthreads();
  for (int j = p.bias_begin + threadIdx.x; j < p.bias_end; j += kThreads) {
    const int32_t id = args.bias_ids[j];
    if (id >= 0 && id < vocab) logits[id] = __double2float_rn(__dadd_rn(static_cast<double>(logits[id]), args.bias_values[j]));
  }
  __syncthreads();

  // --- max and argmax ---
  {
    float best = 0.0f;
    int best_index = -1;
    for (int64_t i = threadIdx.x; i < vocab; i += kThreads) {
      const float x = logits[i];
      if (x == x && (best_index < 0 || x > best)) {
        best = x;
        best_index = static_cast<int>(i);
      }
    }
    block_argmax(sh, best, best_index);
  }
  const float max = sh.max;
  const int argmax = sh.argmax < 0 ? 0 : sh.argmax;
  const bool any_finite = isfinite(max);
  const double temperature = p.temperature;
  const float inverse_temperature = __double2float_rn(__ddiv_rn(1.0, temperature));

  // --- softmax normaliser: one pass of exponentials summed in double. A sampled row keeps its
  // exponentials in the scratch row (the exp in double is the costly part; the passes below only scale) ---
  double sum = 0.0;
  float scale = 0.0f;
  float* exps = args.exp_scratch + row * vocab;
  if (any_finite && (!greedy || want_logprob)) {
    double local = 0.0;
    for (int64_t i = threadIdx.x; i < vocab; i += kThreads) {
      const float x = logits[i];
      const float e =
          x == x ? __double2float_rn(exp(static_cast<double>(__fmul_rn(__fsub_rn(x, max), inverse_temperature))))
                 : 0.0f;
      local += static_cast<double>(e);
      if (!greedy) exps[i] = e;
    }
    sum = block_sum_double(sh, local);  // its barrier also publishes the exponentials to the block
    scale = __double2float_rn(__ddiv_rn(1.0, sum));
  }
  auto prob_at = [&](int64_t i) -> float { return __fmul_rn(exps[i], scale); };

  int token = argmax;
  if (!greedy && any_finite) {
    // --- the joint top-k/top-p/min-p cut (sampler.cpp's compute_filter_cut) ---
    const bool use_top_k = p.top_k > 0 && p.top_k < vocab;
    const bool use_top_p = p.top_p < 1.0;
    float cut_prob = -1.0f;
    int cut_id = static_cast<int>(vocab - 1);
    if (use_top_k || use_top_p || p.min_p > 0.0) {
      // max_prob is the argmax's probability: exp(0) * scale.
      const float threshold = p.min_p > 0.0 ? __double2float_rn(__dmul_rn(p.min_p, static_cast<double>(scale))) : 0.0f;
      auto prob_key = [&](int64_t i, uint32_t& key, Fixed& mass) {
        const float prob = prob_at(i);
        if (!(prob >= threshold)) return false;
        key = __float_as_uint(prob);
        mass = to_fixed(prob);
        return true;
      };
      radix_cut(sh, vocab, prob_key, use_top_k, p.top_k, use_top_p, p.top_p);
      cut_prob = __uint_as_float(sh.prefix);
      cut_id = sh.cut_id;
    }
    auto is_kept = [&](float prob, int64_t id) { return prob > cut_prob || (prob == cut_prob && id <= cut_id); };

    // --- the draw (sampler.cpp's sample_kept): inverse CDF over the kept tokens in id order ---
    Fixed local_total = 0;
    for (int64_t i = threadIdx.x; i < vocab; i += kThreads) {
      const float prob = prob_at(i);
      if (is_kept(prob, i)) local_total += to_fixed(prob);
    }
    const Fixed total = block_sum_fixed(sh, local_total);
    if (total == 0) {
      token = cut_id;
    } else {
      const double target = __dmul_rn(uniform_for_step(p.seed, p.step), from_fixed(total));
      if (threadIdx.x == 0) {
        sh.found = INT_MAX;
        sh.last_positive = cut_id;
      }
      __syncthreads();
      Fixed running = 0;
      for (int64_t base = 0; base < vocab; base += kThreads) {
        const int64_t i = base + threadIdx.x;
        Fixed value = 0;
        if (i < vocab) {
          const float prob = prob_at(i);
          if (is_kept(prob, i) && prob > 0.0f) value = to_fixed(prob);
        }
        Fixed inclusive = 0, chunk = 0;
        cub::BlockScan<Fixed, kThreads>(sh.scan_fixed).InclusiveSum(value, inclusive, chunk);
        if (value > 0 && target < from_fixed(running + inclusive)) atomicMin(&sh.found, static_cast<int>(i));
        if (value > 0) atomicMax(&sh.last_positive, static_cast<int>(i));
        running += chunk;
        __syncthreads();
        const bool done = sh.found != INT_MAX;
        __syncthreads();  // nobody writes sh.found for the next chunk before everyone has read it
        if (done) break;
      }
      token = sh.found != INT_MAX ? sh.found : sh.last_positive;
    }
  }

  // --- logprobs (sampler.cpp's logprob_with and top_logprobs_with) ---
  const double log_sum = any_finite && want_logprob ? log(sum) : 0.0;
  auto logprob_of = [&](int64_t id) -> float {
    if (!any_finite) return id == argmax ? 0.0f : -FLT_MAX;
    return clamp_logprob(__dsub_rn(__ddiv_rn(__dsub_rn(static_cast<double>(logits[id]), static_cast<double>(max)), temperature), log_sum));
  };
  const int top_n = want_logprob ? static_cast<int>(p.top_logprobs < vocab ? p.top_logprobs : vocab) : 0;
  if (top_n > 0) {
    auto key_of = [&](int64_t i, uint32_t& key, Fixed& mass) {
      key = logit_key(logits[i]);
      mass = 0;
      return true;
    };
    radix_cut(sh, vocab, key_of, true, top_n, false, 1.0);
    const uint32_t cut_key = sh.prefix;
    const int cut_id = sh.cut_id;
    if (threadIdx.x == 0) sh.top_count = 0;
    __syncthreads();
    for (int64_t i = threadIdx.x; i < vocab; i += kThreads) {
      const uint32_t key = logit_key(logits[i]);
      if (key > cut_key || (key == cut_key && i <= cut_id)) {
        const int slot = atomicAdd(&sh.top_count, 1);
        if (slot < kMaxTop) {
          sh.top_key[slot] = key;
          sh.top_id[slot] = static_cast<int>(i);
        }
      }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      const int n = min(sh.top_count, top_n);
      for (int a = 1; a < n; ++a) {  // insertion sort: key desc, id asc
        const uint32_t key = sh.top_key[a];
        const int id = sh.top_id[a];
        int b = a - 1;
        while (b >= 0 && (sh.top_key[b] < key || (sh.top_key[b] == key && sh.top_id[b] > id))) {
          sh.top_key[b + 1] = sh.top_key[b];
          sh.top_id[b + 1] = sh.top_id[b];
          --b;
        }
        sh.top_key[b + 1] = key;
        sh.top_id[b + 1] = id;
      }
      for (int a = 0; a < args.max_top; ++a) {
        const bool real = a < n;
        args.out_top_ids[row * args.max_top + a] = real ? sh.top_id[a] : -1;
        args.out_top_logprobs[row * args.max_top + a] = real ? logprob_of(sh.top_id[a]) : 0.0f;
      }
    }
  } else if (threadIdx.x == 0) {
    for (int a = 0; a < args.max_top; ++a) {
      args.out_top_ids[row * args.max_top + a] = -1;
      args.out_top_logprobs[row * args.max_top + a] = 0.0f;
    }
  }
  if (threadIdx.x == 0) {
    args.out_tokens[row] = token;
    args.out_logprobs[row] = want_logprob ? logprob_of(token) : 0.0f;
  }
}

}  // namespace

void launch_sample_rows(const SampleRowsArgs& args, cudaStream_t stream) {
  if (args.rows <= 0) return;
  sample_rows_kernel<<<static_cast<unsigned int>(args.rows), kThreads, 0, stream>>>(args);
}

}  // namespace radixlm::cuda
