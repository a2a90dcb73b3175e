// SampleRowsRequest <-> SamplingParams/SamplingState, and the CPU RowSampler.

#include "sampling/cpu_row_sampler.h"

#include "core/status.h"

namespace radixlm {
namespace {

bool in_vocab(int64_t id, int64_t vocab) { return id >= 0 && id < vocab; }

}  // namespace

bool row_sampler_supports(const SamplingParams& params) {
  return !params.return_logprob || params.top_logprobs_num <= kMaxSampleTopLogprobs;
}

bool sampling_reads_output_ids(const SamplingParams& params) {
  return params.frequency_penalty != 0.0 || params.presence_penalty != 0.0 || params.repetition_penalty != 1.0;
}

void add_sample_row(SampleRowsRequest& request, const SamplingParams& params, const SamplingState& state,
                    std::span<const int32_t> eos_token_ids, int64_t vocab, int64_t pending) {
  RADIXLM_CHECK(pending == 0 || !sampling_reads_output_ids(params), "penalties with {} output tokens pending", pending);
  const int64_t num_generated = state.num_generated + pending;
  RADIXLM_CHECK(row_sampler_supports(params), "top_logprobs_num {} over {}", params.top_logprobs_num,
                kMaxSampleTopLogprobs);
  SampleRowSpec spec;
  spec.greedy = is_greedy(params);
  spec.temperature = effective_temperature(params);
  spec.top_k = params.top_k;
  spec.top_p = params.top_p;
  spec.min_p = params.min_p;
  spec.frequency_penalty = params.frequency_penalty;
  spec.presence_penalty = params.presence_penalty;
  spec.repetition_penalty = params.repetition_penalty;
  spec.seed = state.seed;
  spec.step = num_generated;
  spec.return_logprob = params.return_logprob;
  spec.top_logprobs_num = params.return_logprob ? params.top_logprobs_num : 0;
  request.rows.push_back(spec);

  // Counts only when a penalty reads them: the list is the step's largest upload.
  if (sampling_reads_output_ids(params)) {
    for (const auto& [id, count] : state.output_token_counts) {
      if (!in_vocab(id, vocab) || count <= 0) continue;
      request.count_ids.push_back(id);
      request.count_values.push_back(count);
    }
  }
  request.count_start.push_back(static_cast<int32_t>(request.count_ids.size()));

  if (num_generated < params.min_new_tokens) {
    for (int32_t id : params.stop_token_ids) {
      if (in_vocab(id, vocab)) request.suppress_ids.push_back(id);
    }
    for (int32_t id : eos_token_ids) {
      if (in_vocab(id, vocab)) request.suppress_ids.push_back(id);  // a repeat sets -inf twice: harmless
    }
  }
  request.suppress_start.push_back(static_cast<int32_t>(request.suppress_ids.size()));

  for (const auto& [id, bias] : params.logit_bias) {
    if (!in_vocab(id, vocab)) continue;
    request.bias_ids.push_back(id);
    request.bias_values.push_back(bias);
  }
  request.bias_start.push_back(static_cast<int32_t>(request.bias_ids.size()));
}

RowSamplingInputs row_sampling_inputs(const SampleRowsRequest& request, int64_t row) {
  RADIXLM_CHECK(row >= 0 && row < request.num_rows(), "row {} of {}", row, request.num_rows());
  const SampleRowSpec& spec = request.rows[static_cast<size_t>(row)];
  RowSamplingInputs in;
  SamplingParams& p = in.params;
  // spec.temperature is the effective one. A greedy row by top_k == 1 keeps it (its logprobs use it); a
  // greedy row by temperature gets 0 back, whose effective temperature is 1 again; a sampled row keeps its
  // temperature (>= the greedy epsilon) and top_k (!= 1). So is_greedy and effective_temperature of the
  // result give back spec.greedy and spec.temperature.
  p.temperature = spec.greedy && spec.top_k != 1 ? 0.0 : spec.temperature;
  p.top_k = spec.top_k;
  p.top_p = spec.top_p;
  p.min_p = spec.min_p;
  p.frequency_penalty = spec.frequency_penalty;
  p.presence_penalty = spec.presence_penalty;
  p.repetition_penalty = spec.repetition_penalty;
  p.return_logprob = spec.return_logprob;
  p.top_logprobs_num = spec.top_logprobs_num;
  in.state.seed = spec.seed;
  in.state.num_generated = spec.step;
  const auto r = static_cast<size_t>(row);
  for (int32_t i = request.count_start[r]; i < request.count_start[r + 1]; ++i) {
    in.state.output_token_counts[request.count_ids[static_cast<size_t>(i)]] =
        request.count_values[static_cast<size_t>(i)];
  }
  // Suppressed ids become stop ids with min_new_tokens one past the step, so the processors apply them.
  if (request.suppress_start[r] < request.suppress_start[r + 1]) {
    p.min_new_tokens = static_cast<int32_t>(spec.step + 1);
    for (int32_t i = request.suppress_start[r]; i < request.suppress_start[r + 1]; ++i) {
      p.stop_token_ids.push_back(request.suppress_ids[static_cast<size_t>(i)]);
    }
  }
  for (int32_t i = request.bias_start[r]; i < request.bias_start[r + 1]; ++i) {
    p.logit_bias[request.bias_ids[static_cast<size_t>(i)]] = request.bias_values[static_cast<size_t>(i)];
  }
  return in;
}

SampledToken to_sampled_token(const SampledRow& row) {
  SampledToken token;
  token.token_id = row.token_id;
  token.logprob = row.logprob;
  for (size_t i = 0; i < row.top_ids.size(); ++i) token.top_logprobs.push_back({row.top_ids[i], row.top_logprobs[i]});
  return token;
}

std::vector<SampledRow> CpuRowSampler::sample_rows(const TensorView& logits, const SampleRowsRequest& request) {
  RADIXLM_CHECK(logits.device == Device::kCpu && logits.dtype == DType::kF32 && logits.ndim() == 2 &&
                    logits.is_contiguous(),
                "CpuRowSampler wants host f32 [rows, vocab] logits");
  RADIXLM_CHECK(logits.size(0) >= request.num_rows(), "{} logits rows for {} sampled rows", logits.size(0),
                request.num_rows());
  const int64_t vocab = logits.size(1);
  std::vector<SampledRow> out(static_cast<size_t>(request.num_rows()));
  for (int64_t r = 0; r < request.num_rows(); ++r) {
    const RowSamplingInputs in = row_sampling_inputs(request, r);
    std::span<float> row(logits.as<float>() + r * vocab, static_cast<size_t>(vocab));
    const SampledToken token = sample_next_token(row, in.params, in.state, {}, scratch_);
    SampledRow& o = out[static_cast<size_t>(r)];
    o.token_id = token.token_id;
    o.logprob = token.logprob;
    for (const TokenLogprob& t : token.top_logprobs) {
      o.top_ids.push_back(t.token_id);
      o.top_logprobs.push_back(t.logprob);
    }
  }
  return out;
}

}  // namespace radixlm
