// Fuzzes tokenizer.json loading: any bytes must give a tokenizer or a clear error, and a tokenizer that loads
// must encode and decode without crashing.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto tok = radixlm::tokenizer::Tokenizer::from_json(text);
  if (!tok.ok()) return 0;
  for (const char* sample : {"Hello world, it's 2024!", "  \n\t x\xC3\xA9", "<s>[INST] \xF0\x9F\x98\x80"}) {
    auto ids = tok->encode(sample, true);
    (void)tok->decode(ids, false);
  }
  std::vector<int32_t> ids;
  for (int32_t id = -1; id < 64; ++id) ids.push_back(id);
  (void)tok->decode(ids, true);
  radixlm::tokenizer::IncrementalDetokenizer stream(*tok);
  for (int32_t id : ids) (void)stream.feed(id);
  (void)stream.finish();
  return 0;
}
