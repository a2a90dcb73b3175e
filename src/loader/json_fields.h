#pragma once
// Typed reads of fields from untrusted JSON (config.json, generation_config.json, the shard index), each
// failure a Status that names the file and the key. Private to loader/: nlohmann stays out of the public
// headers.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/json_type_name.h"
#include "core/status.h"

namespace radixlm::loader_detail {

using Json = nlohmann::json;

// Parses `text`; a syntax error names `source` and where the parser stopped.
Expected<Json> parse_json(std::string_view text, std::string_view source);

// Each returns nullopt when the key is absent or null (HF treats null as "use the default"), the value
// when it has the right type, and an error naming the key otherwise.
Expected<std::optional<int64_t>> get_int(const Json& object, std::string_view key, std::string_view source);
Expected<std::optional<double>> get_double(const Json& object, std::string_view key, std::string_view source);
Expected<std::optional<bool>> get_bool(const Json& object, std::string_view key, std::string_view source);
Expected<std::optional<std::string>> get_string(const Json& object, std::string_view key,
                                                std::string_view source);
// One integer or a list of integers (eos_token_id); absent or null gives an empty list.
Expected<std::vector<int64_t>> get_int_or_int_list(const Json& object, std::string_view key,
                                                   std::string_view source);

// Reads a whole small text file (configs, indexes). A missing file is kNotFound.
Expected<std::string> read_text_file(const std::filesystem::path& path, uint64_t max_bytes = 64ull << 20);

}  // namespace radixlm::loader_detail
