#pragma once
// Post-processors: add the special tokens a model expects around an encoded text when add_special_tokens is
// on (HF tokenizers' `post_processor`: TemplateProcessing, Bert, Roberta, ByteLevel, Sequence).

#include <cstdint>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/status.h"

namespace radixlm::tokenizer {

// What a post-processor does to a single sequence's ids: some ids before it, some after. (ByteLevel only
// trims offsets, which radixlm does not keep, so it adds nothing.)
struct PostProcessor {
  std::vector<int32_t> prefix, suffix;
};

Expected<PostProcessor> parse_post_processor(const nlohmann::json& spec);

}  // namespace radixlm::tokenizer
