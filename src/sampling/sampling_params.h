#pragma once
// A request's sampling parameters, with SGLang's names, defaults and validation rules
// (python/sglang/srt/sampling/sampling_params.py), plus the logprob fields SGLang keeps beside them in the
// request (return_logprob, top_logprobs_num, logprob_start_len).

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace radixlm {

// SGLang treats a temperature below this as greedy (temperature 0).
inline constexpr double kGreedyTemperatureEpsilon = 1e-6;
// Upper bounds SGLang leaves open but a server must have: OpenAI's limits for n and top_logprobs.
inline constexpr int32_t kMaxSamplesPerRequest = 128;
inline constexpr int32_t kMaxTopLogprobs = 20;
// Each stop string costs a little per output byte; SGLang sets no limit, a server needs one.
inline constexpr size_t kMaxStopStrings = 256;

// Which of the fields a model's generation_config.json may default were given by the request itself.
struct ExplicitSamplingFields {
  bool temperature = false;
  bool top_p = false;
  bool top_k = false;
  bool min_p = false;
  bool repetition_penalty = false;
};

struct SamplingParams {
  double temperature = 1.0;  // 0 (or below kGreedyTemperatureEpsilon) means greedy
  double top_p = 1.0;
  int32_t top_k = -1;  // -1: the whole vocabulary
  double min_p = 0.0;
  double frequency_penalty = 0.0;
  double presence_penalty = 0.0;
  double repetition_penalty = 1.0;
  std::optional<int32_t> max_new_tokens = 128;  // nullopt (JSON null): up to the context length
  int32_t min_new_tokens = 0;
  std::vector<std::string> stop;        // stop strings, matched on the detokenized output
  std::vector<int32_t> stop_token_ids;  // distinct, in the order first given
  bool ignore_eos = false;
  bool skip_special_tokens = true;
  bool spaces_between_special_tokens = true;
  bool no_stop_trim = false;
  int32_t n = 1;
  std::optional<uint64_t> seed;        // `sampling_seed` (SGLang) or `seed` (OpenAI); any 64-bit pattern
  std::map<int32_t, double> logit_bias;  // token id -> added to its logit

  bool return_logprob = false;
  int32_t top_logprobs_num = 0;
  int32_t logprob_start_len = -1;  // -1: logprobs of output tokens only

  ExplicitSamplingFields explicitly_set;
};

// A model's sampling defaults (generation_config.json's temperature, top_p, top_k, min_p and
// repetition_penalty, as SGLang's `--sampling-defaults model` reads them); the engine fills this from the
// loader's GenerationConfig. SGLang ignores `do_sample`, and so does this.
struct SamplingDefaults {
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int64_t> top_k;
  std::optional<double> min_p;
  std::optional<double> repetition_penalty;
};

// Sets each field the request left unset to the model's default, where the model has one.
void apply_sampling_defaults(SamplingParams& params, const SamplingDefaults& defaults);

// SGLang's verify(): every field in range, logit_bias and stop_token_ids inside [0, vocab_size), NaN and
// infinities rejected. The message names the field and the value.
Status validate_sampling_params(const SamplingParams& params, int64_t vocab_size);

// Greedy as SGLang decides it: a temperature below the epsilon, or top_k == 1.
bool is_greedy(const SamplingParams& params);
// The temperature the logits are divided by: SGLang rewrites a greedy temperature to 1.0, which is also
// what greedy logprobs are computed at.
double effective_temperature(const SamplingParams& params);

}  // namespace radixlm
