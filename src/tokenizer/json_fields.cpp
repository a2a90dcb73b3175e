#include "tokenizer/json_fields.h"

namespace radixlm::tokenizer {

Expected<std::string> json_string(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return make_error(StatusCode::kCorruptData, "expected an object holding '{}'", key);
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) {
    return make_error(StatusCode::kCorruptData, "field '{}' is missing or not a string", key);
  }
  return it->get<std::string>();
}

Expected<const nlohmann::json*> json_array(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return make_error(StatusCode::kCorruptData, "expected an object holding '{}'", key);
  auto it = object.find(key);
  if (it == object.end() || !it->is_array()) {
    return make_error(StatusCode::kCorruptData, "field '{}' is missing or not a list", key);
  }
  return &*it;
}

bool json_bool_or(const nlohmann::json& object, const char* key, bool fallback) {
  if (!object.is_object()) return fallback;
  auto it = object.find(key);
  if (it == object.end() || !it->is_boolean()) return fallback;
  return it->get<bool>();
}

std::string json_string_or(const nlohmann::json& object, const char* key, const std::string& fallback) {
  if (!object.is_object()) return fallback;
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return fallback;
  return it->get<std::string>();
}

Expected<Regex> parse_pattern(const nlohmann::json& object) {
  if (!object.is_object() || !object.contains("pattern") || !object["pattern"].is_object()) {
    return make_error(StatusCode::kCorruptData, "field 'pattern' is missing or not an object");
  }
  const auto& pattern = object["pattern"];
  if (pattern.contains("String") && pattern["String"].is_string()) {
    return Regex::literal(pattern["String"].get<std::string>());
  }
  if (pattern.contains("Regex") && pattern["Regex"].is_string()) {
    auto regex = Regex::compile(pattern["Regex"].get<std::string>());
    if (!regex.ok()) return regex.status().with_context("pattern");
    return regex;
  }
  return make_error(StatusCode::kCorruptData, "pattern must hold 'String' or 'Regex'");
}

std::string replace_all(const Regex& pattern, std::string_view text, std::string_view content) {
  std::vector<std::pair<size_t, size_t>> matches;
  pattern.find_all(text, matches);
  if (matches.empty()) return std::string(text);
  std::string out;
  size_t last = 0;
  for (auto [start, end] : matches) {
    if (start == end) continue;
    out.append(text.substr(last, start - last));
    out.append(content);
    last = end;
  }
  out.append(text.substr(last));
  return out;
}

}  // namespace radixlm::tokenizer
