#pragma once
// The engine's detokenizer (scheduler/request.h's TextDecoder) over the tokenizer's streaming decode, with
// the request's special-token options. Only where the tokenizer is built (RADIXLM_TEXT).

#include <cstdint>
#include <string>

#include "sampling/sampling_params.h"
#include "scheduler/request.h"
#include "tokenizer/tokenizer.h"

namespace radixlm::server {

class TokenizerTextDecoder final : public TextDecoder {
 public:
  TokenizerTextDecoder(const tokenizer::Tokenizer& tok, const SamplingParams& params)
      : detokenizer_(tok, tokenizer::DetokenizeOptions{params.skip_special_tokens, params.spaces_between_special_tokens}) {}
  std::string feed(int32_t token_id) override { return detokenizer_.feed(token_id); }
  std::string finish() override { return detokenizer_.finish(); }

 private:
  tokenizer::IncrementalDetokenizer detokenizer_;
};

}  // namespace radixlm::server
