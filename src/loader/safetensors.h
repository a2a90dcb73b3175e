#pragma once
// safetensors files over mmap, validated in full before any tensor is handed out: header length bound,
// well-formed JSON, known dtype, shape x dtype size equal to the byte range (checked arithmetic), ranges
// inside the file and not overlapping. Errors name the file, the tensor and the problem.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"

namespace radixlm {

// Largest header accepted (the format's own limit is 100 MB).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull << 20;

struct SafetensorsEntry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin = 0;  // byte range in the data section (after the 8-byte length and the header)
  uint64_t end = 0;
};

// Validates a header's JSON text against a data section of `data_size` bytes. Entries come back sorted by
// `begin`. "__metadata__" (string-to-string map) is allowed and skipped.
Expected<std::vector<SafetensorsEntry>> parse_safetensors_header(std::string_view header_json, uint64_t data_size);

// A whole file image (8-byte little-endian header length, header JSON, data section) validated in memory:
// what open() runs on the mapping, and what the fuzzer feeds arbitrary bytes to.
struct SafetensorsLayout {
  uint64_t data_offset = 0;  // where the data section starts in the image (8 + header length)
  std::vector<SafetensorsEntry> entries;
};
Expected<SafetensorsLayout> parse_safetensors_image(const uint8_t* image, uint64_t size);

// One mapped file. Tensors returned by `tensor()` keep the mapping alive.
class SafetensorsFile {
 public:
  static Expected<std::shared_ptr<SafetensorsFile>> open(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  const SafetensorsEntry* find(std::string_view name) const;
  // A host tensor aliasing the mapping (read-only in practice; views carry a non-const pointer).
  Tensor tensor(const SafetensorsEntry& entry, const std::shared_ptr<SafetensorsFile>& self) const;

 private:
  SafetensorsFile() = default;
  std::filesystem::path path_;
  void* mapping_ = nullptr;
  size_t mapping_size_ = 0;
  const uint8_t* data_ = nullptr;  // start of the data section
  uint64_t data_size_ = 0;
  std::vector<SafetensorsEntry> entries_;
  std::unordered_map<std::string, size_t> index_;  // name -> position in entries_
};

}  // namespace radixlm
