// Fuzzes the streaming detokenizer with arbitrary id sequences (two bytes per id): every piece must be whole
// UTF-8 and the pieces must concatenate to the full decode, with and without skipping special tokens.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "tokenizer/fuzz_tokenizers.h"

using radixlm::tokenizer::IncrementalDetokenizer;
using radixlm::tokenizer::Tokenizer;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Tokenizer byte_level = Tokenizer::from_json(radixlm::tokenizer::fuzz::byte_level_tokenizer_json()).value();
  static const Tokenizer byte_fallback =
      Tokenizer::from_json(radixlm::tokenizer::fuzz::byte_fallback_tokenizer_json()).value();
  std::vector<int32_t> ids;
  for (size_t i = 0; i + 1 < size; i += 2) {
    ids.push_back(static_cast<int32_t>((data[i] | (data[i + 1] << 8)) % 300) - 2);  // a few unknown ids too
  }
  for (const Tokenizer* tok : {&byte_level, &byte_fallback}) {
    for (bool skip : {false, true}) {
      IncrementalDetokenizer stream(*tok, {skip, true});
      std::string joined;
      for (int32_t id : ids) {
        const std::string piece = stream.feed(id);
        RADIXLM_CHECK(radixlm::tokenizer::is_valid_utf8(piece), "a streamed piece is not whole UTF-8");
        joined += piece;
      }
      const std::string rest = stream.finish();
      RADIXLM_CHECK(radixlm::tokenizer::is_valid_utf8(rest), "the final piece is not whole UTF-8");
      joined += rest;
      RADIXLM_CHECK(joined == tok->decode(ids, skip), "streamed text differs from the full decode");
    }
  }
  return 0;
}
