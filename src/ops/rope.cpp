#include "ops/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/status.h"

namespace radixlm {
namespace {

// 1 / base^(2i / dim) for i in [0, dim/2): the unscaled RoPE frequencies (HF _compute_default_rope_parameters).
std::vector<double> default_inv_freq(double base, int64_t dim) {
  std::vector<double> inv_freq(static_cast<size_t>(dim / 2));
  for (size_t i = 0; i < inv_freq.size(); ++i) {
    inv_freq[i] = 1.0 / std::pow(base, static_cast<double>(2 * i) / static_cast<double>(dim));
  }
  return inv_freq;
}

// Llama 3.1: wavelengths longer than the original context are interpolated by `factor`, shorter than
// original/high_freq_factor kept, and the band between blended smoothly (HF _compute_llama3_parameters).
void apply_llama3(const RopeParams& params, int64_t max_position_embeddings, std::vector<double>& inv_freq) {
  const double old_context = static_cast<double>(
      params.original_max_position_embeddings > 0 ? params.original_max_position_embeddings : max_position_embeddings);
  const double low_freq_wavelen = old_context / params.low_freq_factor;
  const double high_freq_wavelen = old_context / params.high_freq_factor;
  for (double& f : inv_freq) {
    const double wavelen = 2.0 * std::numbers::pi / f;
    if (wavelen > low_freq_wavelen) {
      f = f / params.factor;
    } else if (wavelen >= high_freq_wavelen) {
      const double smooth =
          (old_context / wavelen - params.low_freq_factor) / (params.high_freq_factor - params.low_freq_factor);
      f = (1.0 - smooth) * f / params.factor + smooth * f;
    }
  }
}

double yarn_get_mscale(double scale, double mscale) {
  if (scale <= 1.0) return 1.0;
  return 0.1 * mscale * std::log(scale) + 1.0;
}

// The (fractional) pair index whose wavelength makes `num_rotations` turns over the original context.
double yarn_correction_dim(double num_rotations, double dim, double base, double max_positions) {
  return dim * std::log(max_positions / (num_rotations * 2.0 * std::numbers::pi)) / (2.0 * std::log(base));
}

// YaRN (NTK-by-parts): pairs below `low` keep their frequency (extrapolate), above `high` are divided by
// `factor` (interpolate), with a linear ramp in between (HF _compute_yarn_parameters).
void apply_yarn(const RopeParams& params, int64_t dim, int64_t max_position_embeddings, std::vector<double>& inv_freq,
                float& attention_scaling) {
  const double original = static_cast<double>(
      params.original_max_position_embeddings > 0 ? params.original_max_position_embeddings : max_position_embeddings);
  const double factor = params.factor;
  if (params.attention_factor) {
    attention_scaling = static_cast<float>(*params.attention_factor);
  } else if (params.mscale != 0.0 && params.mscale_all_dim != 0.0) {
    attention_scaling =
        static_cast<float>(yarn_get_mscale(factor, params.mscale) / yarn_get_mscale(factor, params.mscale_all_dim));
  } else {
    attention_scaling = static_cast<float>(yarn_get_mscale(factor, 1.0));
  }
  const double d = static_cast<double>(dim);
  double low = yarn_correction_dim(params.beta_fast, d, params.theta, original);
  double high = yarn_correction_dim(params.beta_slow, d, params.theta, original);
  if (params.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, d - 1.0);
  if (low == high) high += 0.001;  // avoids a zero-width ramp
  for (size_t i = 0; i < inv_freq.size(); ++i) {
    const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
    const double extrapolation_weight = 1.0 - ramp;
    const double interpolated = inv_freq[i] / factor;
    inv_freq[i] = interpolated * (1.0 - extrapolation_weight) + inv_freq[i] * extrapolation_weight;
  }
}

}  // namespace

RopeTable make_rope_table(const RopeParams& params, int64_t head_dim, int64_t max_position_embeddings) {
  RopeTable table;
  const auto rotary_dim = static_cast<int64_t>(static_cast<double>(head_dim) * params.partial_rotary_factor);
  RADIXLM_CHECK(rotary_dim > 0 && rotary_dim % 2 == 0 && rotary_dim <= head_dim, "rotary dim {} of head {}",
                rotary_dim, head_dim);
  table.rotary_dim = static_cast<int32_t>(rotary_dim);
  std::vector<double> inv_freq;
  switch (params.type) {
    case RopeType::kDefault:
      inv_freq = default_inv_freq(params.theta, rotary_dim);
      break;
    case RopeType::kLinear:
      // Dividing the positions by `factor` is the same as dividing every frequency by it.
      inv_freq = default_inv_freq(params.theta, rotary_dim);
      for (double& f : inv_freq) f /= params.factor;
      break;
    case RopeType::kDynamic: {
      // HF recomputes the base whenever a sequence outgrows max_position_embeddings, so its frequencies
      // depend on the batch. Serving engines (SGLang, vLLM) fix them once, for a context of
      // max_position_embeddings * factor, which keeps every step's RoPE the same; we do the same:
      //   base' = base * (factor * (max_pos * factor) / max_pos - (factor - 1)) ^ (dim / (dim - 2)).
      const double d = static_cast<double>(rotary_dim);
      const double scaled_base =
          params.theta * std::pow(params.factor * params.factor - (params.factor - 1.0), d / (d - 2.0));
      inv_freq = default_inv_freq(scaled_base, rotary_dim);
      break;
    }
    case RopeType::kLlama3:
      inv_freq = default_inv_freq(params.theta, rotary_dim);
      apply_llama3(params, max_position_embeddings, inv_freq);
      break;
    case RopeType::kYarn:
      inv_freq = default_inv_freq(params.theta, rotary_dim);
      apply_yarn(params, rotary_dim, max_position_embeddings, inv_freq, table.attention_scaling);
      break;
  }
  table.inv_freq.assign(inv_freq.begin(), inv_freq.end());
  return table;
}

}  // namespace radixlm
