#include "loader/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "core/checked_math.h"
#include "core/dtype.h"
#include "loader/json_fields.h"

namespace radixlm {

using loader_detail::Json;

namespace {

// Tensor names come from the file: keep messages readable when a hostile one is huge.
std::string shown_name(std::string_view name) {
  constexpr size_t kMaxShown = 160;
  if (name.size() <= kMaxShown) return std::string(name);
  return fmt::format("{}... ({} bytes)", name.substr(0, kMaxShown), name.size());
}

// Parses the header, also rejecting a key repeated within one object: nlohmann would silently keep one of
// the two, and two tensors with one name make the file ambiguous.
Expected<Json> parse_header_json(std::string_view text) {
  std::vector<std::unordered_set<std::string>> open_objects;
  std::string duplicate;
  bool duplicate_is_tensor = false;
  auto on_event = [&](int /*depth*/, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case Json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case Json::parse_event_t::key:
        if (!open_objects.empty() && duplicate.empty() && parsed.is_string()) {
          const auto& key = parsed.get_ref<const std::string&>();
          if (!open_objects.back().insert(key).second) {
            duplicate = key;
            duplicate_is_tensor = open_objects.size() == 1;
          }
        }
        break;
      default:
        break;
    }
    return true;
  };
  Json header;
  try {
    header = Json::parse(text.begin(), text.end(), on_event);
  } catch (const Json::exception& error) {
    return make_error(StatusCode::kCorruptData, "header is not valid JSON: {}", error.what());
  }
  if (!duplicate.empty()) {
    if (duplicate_is_tensor) {
      return make_error(StatusCode::kCorruptData, "tensor '{}': name appears twice in the header",
                        shown_name(duplicate));
    }
    return make_error(StatusCode::kCorruptData, "header: key '{}' repeated within one object",
                      shown_name(duplicate));
  }
  return header;
}

// A non-negative integer that fits in int64 (shapes and offsets), or nullopt.
std::optional<uint64_t> as_size(const Json& value) {
  if (value.is_number_unsigned()) {
    const uint64_t v = value.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return v;
  }
  if (value.is_number_integer()) {
    const int64_t v = value.get<int64_t>();
    if (v < 0) return std::nullopt;
    return static_cast<uint64_t>(v);
  }
  return std::nullopt;
}

Status check_metadata(const Json& metadata) {
  if (metadata.is_null()) return {};
  if (!metadata.is_object()) {
    return make_error(StatusCode::kCorruptData, "'__metadata__' must be an object of strings, got {}",
                      json_type_name(metadata));
  }
  for (const auto& [key, value] : metadata.items()) {
    if (!value.is_string()) {
      return make_error(StatusCode::kCorruptData, "'__metadata__' entry '{}' must be a string, got {}",
                        shown_name(key), json_type_name(value));
    }
  }
  return {};
}

Expected<SafetensorsEntry> parse_entry(const std::string& name, const Json& info, uint64_t data_size) {
  const std::string shown = shown_name(name);
  auto fail = [&](std::string problem) {
    return Status(StatusCode::kCorruptData, fmt::format("tensor '{}': {}", shown, problem));
  };
  if (!info.is_object()) return fail(fmt::format("entry must be an object, got {}", json_type_name(info)));

  SafetensorsEntry entry;
  entry.name = name;

  auto dtype_it = info.find("dtype");
  if (dtype_it == info.end()) return fail("no 'dtype'");
  if (!dtype_it->is_string()) return fail(fmt::format("'dtype' must be a string, got {}", json_type_name(*dtype_it)));
  const auto& dtype_name_text = dtype_it->get_ref<const std::string&>();
  const std::optional<DType> dtype = dtype_from_name(dtype_name_text);
  if (!dtype) return fail(fmt::format("unknown dtype '{}'", shown_name(dtype_name_text)));
  entry.dtype = *dtype;

  auto shape_it = info.find("shape");
  if (shape_it == info.end()) return fail("no 'shape'");
  if (!shape_it->is_array()) return fail(fmt::format("'shape' must be an array, got {}", json_type_name(*shape_it)));
  if (shape_it->size() > static_cast<size_t>(kMaxTensorDims)) {
    return fail(fmt::format("shape has {} dimensions, more than the {} supported", shape_it->size(), kMaxTensorDims));
  }
  // numel must fit in int64, and so must every stride (products of trailing non-zero dims), because tensor
  // views compute both in int64.
  uint64_t numel = 1;
  uint64_t nonzero_product = 1;
  for (size_t i = 0; i < shape_it->size(); ++i) {
    const std::optional<uint64_t> dim = as_size((*shape_it)[i]);
    if (!dim) {
      return fail(fmt::format("shape[{}] must be a non-negative integer below 2^63, got {}", i,
                              (*shape_it)[i].is_number() ? (*shape_it)[i].dump() : json_type_name((*shape_it)[i])));
    }
    entry.shape.dims[entry.shape.ndim++] = static_cast<int64_t>(*dim);
    numel *= *dim;  // cannot overflow while nonzero_product does not
    if (*dim != 0) {
      const std::optional<uint64_t> product = checked_mul(nonzero_product, *dim);
      if (!product || *product > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return fail(fmt::format("shape {} has more elements than fit in 64 bits", shape_it->dump()));
      }
      nonzero_product = *product;
    }
  }

  auto offsets_it = info.find("data_offsets");
  if (offsets_it == info.end()) return fail("no 'data_offsets'");
  if (!offsets_it->is_array() || offsets_it->size() != 2) {
    return fail(fmt::format("'data_offsets' must be an array [begin, end], got {}",
                            offsets_it->is_array() ? fmt::format("{} elements", offsets_it->size())
                                                   : json_type_name(*offsets_it)));
  }
  const std::optional<uint64_t> begin = as_size((*offsets_it)[0]);
  const std::optional<uint64_t> end = as_size((*offsets_it)[1]);
  if (!begin || !end) {
    const Json& bad = begin ? (*offsets_it)[1] : (*offsets_it)[0];
    return fail(fmt::format("data_offsets must be non-negative integers, got {}",
                            bad.is_number() ? bad.dump() : json_type_name(bad)));
  }
  if (*begin > *end) {
    return fail(fmt::format("data_offsets [{}, {}] begin after end", *begin, *end));
  }
  if (*end > data_size) {
    return fail(fmt::format("data_offsets [{}, {}] end past the data section ({} bytes)", *begin, *end, data_size));
  }
  entry.begin = *begin;
  entry.end = *end;

  const std::optional<uint64_t> nbytes = checked_mul(numel, dtype_size(entry.dtype));
  if (!nbytes || *nbytes != *end - *begin) {
    return fail(fmt::format("shape {} of {} needs {} bytes but data_offsets [{}, {}] hold {}", entry.shape.to_string(),
                            dtype_name(entry.dtype), nbytes ? fmt::format("{}", *nbytes) : std::string("more than 2^64"),
                            *begin, *end, *end - *begin));
  }
  return entry;
}

}  // namespace

Expected<std::vector<SafetensorsEntry>> parse_safetensors_header(std::string_view header_json, uint64_t data_size) {
  RADIXLM_ASSIGN_OR_RETURN(Json header, parse_header_json(header_json));
  if (!header.is_object()) {
    return make_error(StatusCode::kCorruptData, "header must be a JSON object, got {}", json_type_name(header));
  }
  std::vector<SafetensorsEntry> entries;
  entries.reserve(header.size());
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      RADIXLM_RETURN_IF_ERROR(check_metadata(info));
      continue;
    }
    RADIXLM_ASSIGN_OR_RETURN(SafetensorsEntry entry, parse_entry(name, info, data_size));
    entries.push_back(std::move(entry));
  }
  std::sort(entries.begin(), entries.end(), [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  // Empty tensors own no bytes, so they overlap nothing; every other range must start at or after the end of
  // all ranges before it.
  const SafetensorsEntry* previous = nullptr;
  for (const SafetensorsEntry& entry : entries) {
    if (entry.begin == entry.end) continue;
    if (previous && entry.begin < previous->end) {
      return make_error(StatusCode::kCorruptData,
                        "tensor '{}': data_offsets [{}, {}] overlap tensor '{}' at [{}, {}]", shown_name(entry.name),
                        entry.begin, entry.end, shown_name(previous->name), previous->begin, previous->end);
    }
    if (!previous || entry.end > previous->end) previous = &entry;
  }
  return entries;
}

Expected<SafetensorsLayout> parse_safetensors_image(const uint8_t* image, uint64_t size) {
  if (size == 0) return make_error(StatusCode::kCorruptData, "empty file (0 bytes), not a safetensors file");
  if (size < 8) {
    return make_error(StatusCode::kCorruptData, "file is {} bytes, shorter than the 8-byte header length", size);
  }
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | image[i];  // little-endian on any host
  if (header_size > kMaxSafetensorsHeaderBytes) {
    return make_error(StatusCode::kCorruptData, "header length {} exceeds the limit of {} bytes", header_size,
                      kMaxSafetensorsHeaderBytes);
  }
  if (header_size > size - 8) {
    return make_error(StatusCode::kCorruptData, "header length {} runs past the end of the file ({} bytes)",
                      header_size, size);
  }
  SafetensorsLayout layout;
  layout.data_offset = 8 + header_size;
  const std::string_view header(reinterpret_cast<const char*>(image + 8), header_size);
  RADIXLM_ASSIGN_OR_RETURN(layout.entries, parse_safetensors_header(header, size - layout.data_offset));
  return layout;
}

Expected<std::shared_ptr<SafetensorsFile>> SafetensorsFile::open(const std::filesystem::path& path) {
  const std::string where = path.string();
  // O_NONBLOCK: a FIFO in place of a weight file must fail below (not a regular file), not hang here.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    return make_error(err == ENOENT ? StatusCode::kNotFound : StatusCode::kIoError, "{}: cannot open: {}", where,
                      std::strerror(err));
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    const int err = errno;
    ::close(fd);
    return make_error(StatusCode::kIoError, "{}: cannot stat: {}", where, std::strerror(err));
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    return make_error(StatusCode::kInvalidArgument, "{}: not a regular file", where);
  }
  const uint64_t size = static_cast<uint64_t>(info.st_size);
  if (size < 8) {
    ::close(fd);
    // The same message the in-memory validation gives, without mapping an empty file (mmap refuses).
    static constexpr uint8_t kNone[1] = {0};
    return parse_safetensors_image(kNone, size).status().with_context(where);
  }
  void* mapping = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);  // the mapping keeps the file
  if (mapping == MAP_FAILED) {
    return make_error(StatusCode::kIoError, "{}: mmap of {} bytes failed: {}", where, size, std::strerror(map_errno));
  }

  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  file->mapping_ = mapping;
  file->mapping_size_ = size;
  Expected<SafetensorsLayout> layout = parse_safetensors_image(static_cast<const uint8_t*>(mapping), size);
  if (!layout.ok()) return layout.status().with_context(where);

  file->data_ = static_cast<const uint8_t*>(mapping) + layout->data_offset;
  file->data_size_ = size - layout->data_offset;
  file->entries_ = std::move(layout->entries);
  file->index_.reserve(file->entries_.size());
  for (size_t i = 0; i < file->entries_.size(); ++i) file->index_.emplace(file->entries_[i].name, i);
  // Every weight is read soon after loading (and then again each step on the CPU): start paging in now.
  ::madvise(mapping, size, MADV_WILLNEED);
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_) ::munmap(mapping_, mapping_size_);
}

const SafetensorsEntry* SafetensorsFile::find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &entries_[it->second];
}

Tensor SafetensorsFile::tensor(const SafetensorsEntry& entry, const std::shared_ptr<SafetensorsFile>& self) const {
  RADIXLM_CHECK(self.get() == this, "tensor() needs this file's own shared_ptr");
  RADIXLM_CHECK(entry.begin <= entry.end && entry.end <= data_size_, "entry '{}' is not from {}", entry.name,
                path_.string());
  const uint8_t* bytes = data_ + entry.begin;
  const size_t alignment = dtype_size(entry.dtype);
  if (reinterpret_cast<uintptr_t>(bytes) % alignment != 0) {
    // The format does not promise aligned tensors; kernels assume them, so a misaligned one is copied out.
    Tensor copy = alloc_host_tensor(entry.dtype, entry.shape);
    std::memcpy(copy.view.data, bytes, entry.end - entry.begin);
    return copy;
  }
  void* data = const_cast<uint8_t*>(bytes);
  return Tensor(TensorView(data, entry.dtype, entry.shape, Device::kCpu), std::shared_ptr<void>(self, data));
}

}  // namespace radixlm
