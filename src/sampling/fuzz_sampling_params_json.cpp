// libFuzzer target: arbitrary bytes as a /generate request. Parsing and validation must return a Status for
// anything, never crash; a request that validates must drive the sampler and the stop matcher safely.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "sampling/sampler.h"
#include "sampling/sampling_params_json.h"
#include "sampling/stop_strings.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  nlohmann::json request = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded() || !request.is_object()) return 0;
  const auto it = request.find("sampling_params");
  radixlm::Expected<radixlm::SamplingParams> params =
      radixlm::parse_sampling_params(it == request.end() ? nlohmann::json() : *it);
  if (!params.ok()) return 0;
  if (!radixlm::parse_logprob_fields(request, *params).ok()) return 0;
  constexpr int64_t kVocab = 50;
  if (!radixlm::validate_sampling_params(*params, kVocab).ok()) return 0;

  radixlm::SamplingState state;
  state.seed = params->seed.value_or(7);
  radixlm::SamplerScratch scratch;
  const std::vector<int32_t> eos = {0, 49};
  radixlm::StopStringMatcher matcher(params->stop, params->no_stop_trim);
  for (int step = 0; step < 4; ++step) {
    std::vector<float> logits(kVocab);
    for (int64_t i = 0; i < kVocab; ++i) logits[i] = static_cast<float>((i * 7 + step * 13) % 17) - 8.0f;
    const radixlm::SampledToken token = radixlm::sample_next_token(logits, *params, state, eos, scratch);
    if (token.token_id < 0 || token.token_id >= kVocab) __builtin_trap();
    radixlm::record_output_token(state, token.token_id);
    matcher.append(std::string(1, static_cast<char>('a' + token.token_id % 26)));
  }
  matcher.finish();
  return 0;
}
