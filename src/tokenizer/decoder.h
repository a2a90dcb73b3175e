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
  // kWordPiece: decode as if an earlier token came first (streaming windows that start mid-sequence).
  bool continuation = false;
  std::vector<Decoder> children;  // kSequence
};

Expected<Decoder> parse_decoder(const nlohmann::json& spec);

// Runs the decoder over `tokens` (rewritten in place) and returns the joined text. With `continuation`, the
// tokens are decoded as the continuation of earlier ones (no decoder == tokens joined with spaces, so the
// first one also gets its space).
std::string apply_decoder(const Decoder* decoder, std::vector<std::string>& tokens, bool continuation = false);

// Decoders for streaming. A decoder is local (each token's text depends on that token only) except where it
// looks at the ends of the whole text: a Strip after the tokens were fused into one string, Metaspace and
// WordPiece on the first token. `streaming_variant` returns the decoder with the end-of-text strip turned off
// (unless keep_stop), and, for `continuation`, with the start-of-text effects turned off too, so that decoding
// ids[k:] gives exactly what those ids add to the full decode. `trailing_strip` gets the character a final
// Strip may remove from the end of the text (empty if none).
Decoder streaming_variant(const Decoder& decoder, bool continuation, bool keep_stop);
std::string trailing_strip(const Decoder& decoder);

// True when a token string is a byte-fallback token "<0xAB>".
bool is_byte_fallback_token(std::string_view token);

}  // namespace radixlm::tokenizer
