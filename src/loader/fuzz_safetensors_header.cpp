// libFuzzer target: arbitrary bytes as a whole safetensors file image, through the same validation that
// SafetensorsFile::open runs on a mapped file. Any input must give entries or an error, never a crash.

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"
#include "loader/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto layout = radixlm::parse_safetensors_image(data, size);
  if (!layout.ok()) return 0;
  // What validation promises, checked: every range inside the image and the size its shape says.
  for (const auto& entry : layout->entries) {
    RADIXLM_CHECK(entry.begin <= entry.end && entry.end <= size - layout->data_offset);
    RADIXLM_CHECK(static_cast<uint64_t>(entry.shape.numel()) * radixlm::dtype_size(entry.dtype) ==
                  entry.end - entry.begin);
  }
  return 0;
}
