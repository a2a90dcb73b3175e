#pragma once
// Decoders: token strings -> text (HF tokenizers' `decoder` section). Each step rewrites the list of token
// strings, as HF's decode_chain does; the final text is their concatenation.

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/status.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/regex.h"

namespace radixlm::tokenizer {

struct Decoder {
  enum class Kind { kByteLevel, kMetaspace, kByteFallback, kFuse, kStrip, kReplace, kWordPiece, kSequence };
  Kind kind = Kind::kSequence;
  std::string content;  // kReplace: replacement; kStrip: the character; kMetaspace: replacement; kWordPiece: prefix
  std::shared_ptr<Regex> pattern;  // kReplace
  size_t strip_start = 0, strip_stop = 0;
  PrependScheme prepend_scheme = PrependScheme::kAlways;  // kMetaspace
  bool cleanup = true;  // kWordPiece
  std::vector<Decoder> children;  // kSequence
};

Expected<Decoder> parse_decoder(const nlohmann::json& spec);

// Runs the decoder over `tokens` (rewritten in place) and returns the joined text.
std::string apply_decoder(const Decoder* decoder, std::vector<std::string>& tokens);

// True when a token string is a byte-fallback token "<0xAB>".
bool is_byte_fallback_token(std::string_view token);

}  // namespace radixlm::tokenizer
