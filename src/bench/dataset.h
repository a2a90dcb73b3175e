#pragma once
// The prompts of a run, as sglang.bench_serving builds them.
//
// random: per request an input length uniform in [max(floor(input_len * ratio), 1), input_len] and an
// output length uniform in [floor(output_len * ratio), output_len] (SGLang's --random-range-ratio, default
// 0: lengths anywhere from 1 to the given one; 1: exactly the given ones). Output lengths are raised to at
// least 1: a request for 0 new tokens measures nothing. The prompt is that many random token ids; with a
// tokenizer it is the text they decode to (special tokens never drawn), and prompt_len is that text's
// token count. Without one, the ids are sent as input_ids (only /generate and /v1/completions take them).
//
// sharegpt: a ShareGPT-format JSON file (a list of {"conversations": [{"from", "value"}, ...]}); the
// conversations with two or more turns are shuffled with the seed, and each gives its first turn as the
// prompt and the token count of its second as the output length (or --sharegpt-output-len); prompts or
// outputs under 2 tokens, or longer than --sharegpt-context-len together, are skipped. Needs a tokenizer.

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace radixlm::bench {

class BenchRng;

struct BenchPrompt {
  std::string text;                // the prompt as text; empty when sent as ids
  std::vector<int32_t> input_ids;  // the prompt as token ids; empty when sent as text
  int64_t prompt_len = 0;
  int64_t output_len = 0;
};

// The tokenizer's part in building prompts; the bench library does not depend on tokenizer/ so that it
// builds with RADIXLM_TEXT=OFF, where there is none.
struct TextCodec {
  std::function<std::vector<int32_t>(std::string_view text)> encode;  // without special tokens
  std::function<std::string(std::span<const int32_t> ids)> decode;
  std::function<bool(int32_t id)> is_special;
  int64_t vocab_size = 0;
};

struct RandomDatasetOptions {
  int64_t num_prompts = 1000;
  int64_t input_len = 1024;
  int64_t output_len = 1024;
  double range_ratio = 0.0;
  int64_t vocab_size = 0;  // ids are drawn from [0, vocab_size)
};

// The lengths of each request, drawn in that order (input lengths first).
struct LengthPair {
  int64_t input_len = 0;
  int64_t output_len = 0;
};
Expected<std::vector<LengthPair>> random_lengths(const RandomDatasetOptions& options, BenchRng& rng);

// `codec` null: prompts as ids.
Expected<std::vector<BenchPrompt>> random_dataset(const RandomDatasetOptions& options, const TextCodec* codec,
                                                  BenchRng& rng);

struct ShareGptOptions {
  int64_t num_prompts = 1000;
  std::optional<int64_t> fixed_output_len;
  std::optional<int64_t> context_len;
};

Expected<std::vector<BenchPrompt>> sharegpt_dataset(std::string_view file_contents, const ShareGptOptions& options,
                                                    const TextCodec& codec, BenchRng& rng);

}  // namespace radixlm::bench
