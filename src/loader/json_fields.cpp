#include "loader/json_fields.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <system_error>

namespace radixlm::loader_detail {

Expected<Json> parse_json(std::string_view text, std::string_view source) {
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::parse_error& error) {
    return make_error(StatusCode::kInvalidArgument, "{}: invalid JSON: {}", source, error.what());
  }
}

namespace {

const Json* find_present(const Json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

Expected<int64_t> as_int(const Json& value, std::string_view what, std::string_view source) {
  if (value.is_number_unsigned()) {
    const uint64_t v = value.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return make_error(StatusCode::kOutOfRange, "{}: {} is too large ({})", source, what, v);
    }
    return static_cast<int64_t>(v);
  }
  if (value.is_number_integer()) return value.get<int64_t>();
  return make_error(StatusCode::kInvalidArgument, "{}: {} must be an integer, got {}", source, what,
                    json_type_name(value));
}

}  // namespace

Expected<std::optional<int64_t>> get_int(const Json& object, std::string_view key, std::string_view source) {
  const Json* value = find_present(object, key);
  if (!value) return std::optional<int64_t>();
  RADIXLM_ASSIGN_OR_RETURN(int64_t v, as_int(*value, fmt::format("'{}'", key), source));
  return std::optional<int64_t>(v);
}

Expected<std::optional<double>> get_double(const Json& object, std::string_view key, std::string_view source) {
  const Json* value = find_present(object, key);
  if (!value) return std::optional<double>();
  if (!value->is_number()) {
    return make_error(StatusCode::kInvalidArgument, "{}: '{}' must be a number, got {}", source, key,
                      json_type_name(*value));
  }
  const double v = value->get<double>();
  if (!std::isfinite(v)) {
    return make_error(StatusCode::kInvalidArgument, "{}: '{}' must be finite", source, key);
  }
  return std::optional<double>(v);
}

Expected<std::optional<bool>> get_bool(const Json& object, std::string_view key, std::string_view source) {
  const Json* value = find_present(object, key);
  if (!value) return std::optional<bool>();
  if (!value->is_boolean()) {
    return make_error(StatusCode::kInvalidArgument, "{}: '{}' must be true or false, got {}", source, key,
                      json_type_name(*value));
  }
  return std::optional<bool>(value->get<bool>());
}

Expected<std::optional<std::string>> get_string(const Json& object, std::string_view key,
                                                std::string_view source) {
  const Json* value = find_present(object, key);
  if (!value) return std::optional<std::string>();
  if (!value->is_string()) {
    return make_error(StatusCode::kInvalidArgument, "{}: '{}' must be a string, got {}", source, key,
                      json_type_name(*value));
  }
  return std::optional<std::string>(value->get<std::string>());
}

Expected<std::vector<int64_t>> get_int_or_int_list(const Json& object, std::string_view key,
                                                   std::string_view source) {
  std::vector<int64_t> out;
  const Json* value = find_present(object, key);
  if (!value) return out;
  if (value->is_array()) {
    for (size_t i = 0; i < value->size(); ++i) {
      RADIXLM_ASSIGN_OR_RETURN(int64_t v, as_int((*value)[i], fmt::format("'{}'[{}]", key, i), source));
      out.push_back(v);
    }
    return out;
  }
  RADIXLM_ASSIGN_OR_RETURN(int64_t v, as_int(*value, fmt::format("'{}'", key), source));
  out.push_back(v);
  return out;
}

Expected<std::string> read_text_file(const std::filesystem::path& path, uint64_t max_bytes) {
  std::error_code ec;
  const bool exists = std::filesystem::exists(path, ec);
  if (!exists) return make_error(StatusCode::kNotFound, "{}: no such file", path.string());
  if (std::filesystem::is_directory(path, ec)) {
    return make_error(StatusCode::kInvalidArgument, "{}: is a directory, not a file", path.string());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return make_error(StatusCode::kIoError, "{}: cannot open: {}", path.string(), std::strerror(errno));
  }
  std::string text;
  char buffer[1 << 16];
  while (in.read(buffer, sizeof(buffer)) || in.gcount() > 0) {
    text.append(buffer, static_cast<size_t>(in.gcount()));
    if (text.size() > max_bytes) {
      return make_error(StatusCode::kInvalidArgument, "{}: larger than {} bytes, not a config file",
                        path.string(), max_bytes);
    }
  }
  if (in.bad()) return make_error(StatusCode::kIoError, "{}: read failed", path.string());
  return text;
}

}  // namespace radixlm::loader_detail
