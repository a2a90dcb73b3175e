#include "bench/dataset.h"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "bench/random.h"

namespace radixlm::bench {

Expected<std::vector<LengthPair>> random_lengths(const RandomDatasetOptions& options, BenchRng& rng) {
  if (options.num_prompts < 1) return make_error(StatusCode::kInvalidArgument, "--num-prompts must be >= 1");
  if (options.input_len < 1) return make_error(StatusCode::kInvalidArgument, "--random-input-len must be >= 1");
  if (options.output_len < 1) return make_error(StatusCode::kInvalidArgument, "--random-output-len must be >= 1");
  if (!(options.range_ratio >= 0.0 && options.range_ratio <= 1.0)) {
    return make_error(StatusCode::kInvalidArgument, "--random-range-ratio must be in [0, 1], got {}",
                      options.range_ratio);
  }
  const auto low = [&](int64_t len) {
    return static_cast<int64_t>(std::floor(static_cast<double>(len) * options.range_ratio));
  };
  std::vector<LengthPair> lengths(static_cast<size_t>(options.num_prompts));
  for (auto& pair : lengths) pair.input_len = rng.uniform_int(std::max<int64_t>(low(options.input_len), 1), options.input_len);
  for (auto& pair : lengths) {
    pair.output_len = std::max<int64_t>(rng.uniform_int(low(options.output_len), options.output_len), 1);
  }
  return lengths;
}

Expected<std::vector<BenchPrompt>> random_dataset(const RandomDatasetOptions& options, const TextCodec* codec,
                                                  BenchRng& rng) {
  const int64_t vocab = codec ? codec->vocab_size : options.vocab_size;
  if (vocab < 1) {
    return make_error(StatusCode::kInvalidArgument,
                      "the random dataset needs the vocabulary size: give --tokenizer or --vocab-size");
  }
  RADIXLM_ASSIGN_OR_RETURN(auto lengths, random_lengths(options, rng));
  std::vector<BenchPrompt> prompts;
  prompts.reserve(lengths.size());
  for (const LengthPair& pair : lengths) {
    BenchPrompt prompt;
    prompt.output_len = pair.output_len;
    std::vector<int32_t> ids;
    ids.reserve(static_cast<size_t>(pair.input_len));
    // Special tokens would turn into control text ("<|eot_id|>") in a text prompt; a tokenizer whose every
    // id is special cannot give text, so the draw gives up after a bounded number of tries.
    int64_t rejected = 0;
    while (static_cast<int64_t>(ids.size()) < pair.input_len) {
      const auto id = static_cast<int32_t>(rng.uniform_int(0, vocab - 1));
      if (codec && codec->is_special && codec->is_special(id)) {
        if (++rejected > 1000 * pair.input_len) {
          return make_error(StatusCode::kInvalidArgument, "the tokenizer's vocabulary is all special tokens");
        }
        continue;
      }
      ids.push_back(id);
    }
    if (codec) {
      prompt.text = codec->decode(ids);
      prompt.prompt_len = static_cast<int64_t>(codec->encode(prompt.text).size());
    } else {
      prompt.prompt_len = pair.input_len;
      prompt.input_ids = std::move(ids);
    }
    prompts.push_back(std::move(prompt));
  }
  return prompts;
}

namespace {

// The first two turns' texts of a ShareGPT record, or nothing when it has fewer than two.
std::optional<std::pair<std::string, std::string>> first_two_turns(const nlohmann::json& record) {
  if (!record.is_object()) return std::nullopt;
  const nlohmann::json* turns = nullptr;
  for (const char* key : {"conversations", "conversation"}) {
    if (auto it = record.find(key); it != record.end() && it->is_array()) {
      turns = &*it;
      break;
    }
  }
  if (!turns || turns->size() < 2) return std::nullopt;
  const auto value_of = [](const nlohmann::json& turn) -> std::optional<std::string> {
    if (!turn.is_object()) return std::nullopt;
    auto it = turn.find("value");
    if (it == turn.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  auto first = value_of((*turns)[0]), second = value_of((*turns)[1]);
  if (!first || !second) return std::nullopt;
  return std::make_pair(std::move(*first), std::move(*second));
}

}  // namespace

Expected<std::vector<BenchPrompt>> sharegpt_dataset(std::string_view file_contents, const ShareGptOptions& options,
                                                    const TextCodec& codec, BenchRng& rng) {
  if (options.num_prompts < 1) return make_error(StatusCode::kInvalidArgument, "--num-prompts must be >= 1");
  if (options.fixed_output_len && *options.fixed_output_len < 4) {
    return make_error(StatusCode::kInvalidArgument, "--sharegpt-output-len must be >= 4");
  }
  nlohmann::json data = nlohmann::json::parse(file_contents, nullptr, /*allow_exceptions=*/false);
  if (data.is_discarded()) return make_error(StatusCode::kInvalidArgument, "the ShareGPT file is not valid JSON");
  if (!data.is_array()) return make_error(StatusCode::kInvalidArgument, "the ShareGPT file is not a JSON list");

  std::vector<std::pair<std::string, std::string>> conversations;
  for (const auto& record : data) {
    if (auto turns = first_two_turns(record)) conversations.push_back(std::move(*turns));
  }
  for (size_t i = conversations.size(); i > 1; --i) {  // Fisher-Yates with the run's generator
    std::swap(conversations[i - 1], conversations[static_cast<size_t>(rng.uniform_int(0, static_cast<int64_t>(i) - 1))]);
  }
  std::vector<BenchPrompt> prompts;
  for (auto& [prompt_text, completion] : conversations) {
    if (static_cast<int64_t>(prompts.size()) == options.num_prompts) break;
    BenchPrompt prompt;
    prompt.prompt_len = static_cast<int64_t>(codec.encode(prompt_text).size());
    prompt.output_len = options.fixed_output_len ? *options.fixed_output_len
                                                 : static_cast<int64_t>(codec.encode(completion).size());
    if (prompt.prompt_len < 2 || prompt.output_len < 2) continue;
    if (options.context_len && prompt.prompt_len + prompt.output_len > *options.context_len) continue;
    prompt.text = std::move(prompt_text);
    prompts.push_back(std::move(prompt));
  }
  if (prompts.empty()) {
    return make_error(StatusCode::kInvalidArgument, "the ShareGPT file has no usable conversation");
  }
  return prompts;
}

}  // namespace radixlm::bench
