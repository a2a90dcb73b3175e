// libFuzzer: any bytes as template source must parse or fail with a Status, never crash or hang.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "chat/template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parsed = radixlm::chat::Template::parse(std::string_view(reinterpret_cast<const char*>(data), size));
  (void)parsed.ok();
  return 0;
}
