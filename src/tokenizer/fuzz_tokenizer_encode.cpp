// Fuzzes encode with arbitrary bytes (invalid UTF-8 included) on a byte-level BPE and a byte-fallback BPE.
// Checked properties: ids are in the vocabulary, and with no normalizer in the way decode(encode(x)) gives
// back x with its invalid bytes replaced (the defined meaning of invalid input).

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/status.h"
#include "tokenizer/fuzz_tokenizers.h"

using radixlm::tokenizer::Tokenizer;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Tokenizer byte_level = Tokenizer::from_json(radixlm::tokenizer::fuzz::byte_level_tokenizer_json()).value();
  static const Tokenizer byte_fallback =
      Tokenizer::from_json(radixlm::tokenizer::fuzz::byte_fallback_tokenizer_json()).value();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const Tokenizer* tok : {&byte_level, &byte_fallback}) {
    for (bool special : {false, true}) {
      const auto ids = tok->encode(text, special);
      for (int32_t id : ids) RADIXLM_CHECK(tok->id_to_token(id).has_value(), "id {} not in vocabulary", id);
    }
  }
  // The byte-fallback tokenizer has no normalizer and its decoder undoes Metaspace; without added-token text
  // and leading/trailing spaces (which Metaspace and Strip rewrite), and without U+2581 itself (which the
  // decoder turns into a space), the text must round-trip.
  const std::string valid = radixlm::tokenizer::to_valid_utf8(text);
  const bool plain = valid.find('<') == std::string::npos && valid.find("\xE2\x96\x81") == std::string::npos;
  if (plain && !valid.empty() && valid.front() != ' ' && valid.back() != ' ') {
    const auto ids = byte_fallback.encode(valid, false);
    const std::string back = byte_fallback.decode(ids, false);
    RADIXLM_CHECK(back == valid, "round trip changed the text ({} bytes -> {} bytes)", valid.size(), back.size());
  }
  return 0;
}
