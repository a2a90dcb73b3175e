#include "tokenizer/post_processor.h"

#include <nlohmann/json.hpp>

#include "tokenizer/json_fields.h"

namespace radixlm::tokenizer {
namespace {

Expected<int32_t> token_pair_id(const nlohmann::json& spec, const char* key) {
  // Bert/Roberta store "sep": ["</s>", 2].
  if (!spec.contains(key) || !spec[key].is_array() || spec[key].size() != 2 || !spec[key][1].is_number_integer()) {
    return make_error(StatusCode::kCorruptData, "post_processor field '{}' must be [token, id]", key);
  }
  const auto id = spec[key][1].get<int64_t>();
  if (id < 0 || id > INT32_MAX) return make_error(StatusCode::kCorruptData, "post_processor id {} out of range", id);
  return static_cast<int32_t>(id);
}

Expected<PostProcessor> parse_template(const nlohmann::json& spec) {
  RADIXLM_ASSIGN_OR_RETURN(const nlohmann::json* single, json_array(spec, "single"));
  const nlohmann::json& special = spec.contains("special_tokens") ? spec["special_tokens"] : nlohmann::json::object();
  PostProcessor p;
  bool seen_sequence = false;
  for (const auto& item : *single) {
    if (item.contains("Sequence")) {
      seen_sequence = true;
      continue;
    }
    if (!item.contains("SpecialToken") || !item["SpecialToken"].is_object()) {
      return make_error(StatusCode::kCorruptData, "template item must be Sequence or SpecialToken");
    }
    RADIXLM_ASSIGN_OR_RETURN(std::string name, json_string(item["SpecialToken"], "id"));
    if (!special.is_object() || !special.contains(name)) {
      return make_error(StatusCode::kCorruptData, "template special token '{}' is not in special_tokens", name);
    }
    RADIXLM_ASSIGN_OR_RETURN(const nlohmann::json* ids, json_array(special[name], "ids"));
    for (const auto& id : *ids) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
        return make_error(StatusCode::kCorruptData, "template special token '{}' has a bad id", name);
      }
      (seen_sequence ? p.suffix : p.prefix).push_back(static_cast<int32_t>(id.get<int64_t>()));
    }
  }
  return p;
}

}  // namespace

Expected<PostProcessor> parse_post_processor(const nlohmann::json& spec) {
  RADIXLM_ASSIGN_OR_RETURN(std::string type, json_string(spec, "type"));
  if (type == "TemplateProcessing") return parse_template(spec);
  if (type == "ByteLevel") return PostProcessor{};
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    RADIXLM_ASSIGN_OR_RETURN(int32_t cls, token_pair_id(spec, "cls"));
    RADIXLM_ASSIGN_OR_RETURN(int32_t sep, token_pair_id(spec, "sep"));
    return PostProcessor{{cls}, {sep}};
  }
  if (type == "Sequence") {
    RADIXLM_ASSIGN_OR_RETURN(const nlohmann::json* list, json_array(spec, "processors"));
    // Each processor wraps what the previous produced.
    PostProcessor combined;
    for (const auto& child : *list) {
      RADIXLM_ASSIGN_OR_RETURN(PostProcessor c, parse_post_processor(child));
      c.prefix.insert(c.prefix.end(), combined.prefix.begin(), combined.prefix.end());
      combined.suffix.insert(combined.suffix.end(), c.suffix.begin(), c.suffix.end());
      combined.prefix = std::move(c.prefix);
    }
    return combined;
  }
  return make_error(StatusCode::kUnsupported, "post_processor type '{}' is not supported", type);
}

}  // namespace radixlm::tokenizer
