#pragma once
// A piece of input text on its way through the pipeline: first the spans between added tokens, then the
// words the pre-tokenizer cuts them into.

#include <cstdint>
#include <string>

namespace radixlm::tokenizer {

struct Piece {
  std::string text;
  // The piece begins where the original input began (Metaspace's prepend_scheme "first" needs this).
  bool at_start = false;
  // The ByteLevel pre-tokenizer has claimed this piece: the model sees each byte as its alphabet character.
  // The mapping itself is deferred (byte_level.h), so BPE can work on the raw bytes directly.
  bool byte_level = false;
  // An added token matched here (its id), or -1 for ordinary text.
  int32_t added_id = -1;
};

}  // namespace radixlm::tokenizer
