#pragma once
// Checked reads of tokenizer.json fields: a missing or mistyped field becomes a clear error, never an exception.

#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "tokenizer/regex.h"

namespace radixlm::tokenizer {

Expected<std::string> json_string(const nlohmann::json& object, const char* key);
Expected<const nlohmann::json*> json_array(const nlohmann::json& object, const char* key);
bool json_bool_or(const nlohmann::json& object, const char* key, bool fallback);
// A string field that may be absent or null.
std::string json_string_or(const nlohmann::json& object, const char* key, const std::string& fallback);
// `"pattern": {"String": "..."}` or `{"Regex": "..."}`, as Split / Replace use it.
Expected<Regex> parse_pattern(const nlohmann::json& object);
// The replace step Replace normalizers and decoders share.
std::string replace_all(const Regex& pattern, std::string_view text, std::string_view content);

}  // namespace radixlm::tokenizer
