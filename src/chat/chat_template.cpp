#include "chat/chat_template.h"

#include <fstream>
#include <sstream>

namespace radixlm::chat {
namespace {

// Template files are small; anything far larger is not a chat template.
constexpr std::uintmax_t kMaxTemplateFileBytes = 16u << 20;

Expected<std::string> read_file(const std::filesystem::path& path) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec) return make_error(StatusCode::kIoError, "{}: {}", path.string(), ec.message());
  if (size > kMaxTemplateFileBytes) return make_error(StatusCode::kOutOfRange, "{}: file is too large ({} bytes)", path.string(), size);
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(StatusCode::kIoError, "{}: cannot open", path.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

Expected<Template> compile(const std::string& source, const std::string& where) {
  auto t = Template::parse(source);
  if (!t.ok()) return t.status().with_context(where);
  return t;
}

}  // namespace

Expected<ChatTemplate> ChatTemplate::load(const std::filesystem::path& model_dir, const std::string& override_name_or_file) {
  ChatTemplate result;
  nlohmann::ordered_json config = nlohmann::ordered_json::object();
  auto config_path = model_dir / "tokenizer_config.json";
  if (std::filesystem::exists(config_path)) {
    RADIXLM_ASSIGN_OR_RETURN(std::string text, read_file(config_path));
    config = nlohmann::ordered_json::parse(text, nullptr, false);
    if (config.is_discarded() || !config.is_object()) {
      return make_error(StatusCode::kCorruptData, "{}: not a JSON object", config_path.string());
    }
  }
  for (const char* name : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}) {
    auto it = config.find(name);
    if (it == config.end() || it->is_null()) continue;
    if (it->is_string()) {
      result.special_tokens_[name] = *it;
    } else if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
      result.special_tokens_[name] = (*it)["content"];
    }
  }

  std::map<std::string, std::string> named_sources;
  std::optional<std::string> single_source;
  auto config_template = config.find("chat_template");
  if (config_template != config.end() && !config_template->is_null()) {
    if (config_template->is_string()) {
      single_source = config_template->get<std::string>();
    } else if (config_template->is_array()) {
      for (const auto& entry : *config_template) {
        if (!entry.is_object() || !entry.contains("name") || !entry.contains("template") || !entry["name"].is_string() ||
            !entry["template"].is_string()) {
          return make_error(StatusCode::kCorruptData, "{}: chat_template list entries need string 'name' and 'template'",
                            config_path.string());
        }
        named_sources[entry["name"].get<std::string>()] = entry["template"].get<std::string>();
      }
    } else {
      return make_error(StatusCode::kCorruptData, "{}: chat_template must be a string or a list", config_path.string());
    }
  }
  auto jinja_path = model_dir / "chat_template.jinja";
  if (std::filesystem::exists(jinja_path)) {
    RADIXLM_ASSIGN_OR_RETURN(std::string text, read_file(jinja_path));
    single_source = std::move(text);
    named_sources.clear();
  }

  if (!override_name_or_file.empty()) {
    auto named = named_sources.find(override_name_or_file);
    if (named != named_sources.end()) {
      RADIXLM_ASSIGN_OR_RETURN(auto t, compile(named->second, "chat template '" + override_name_or_file + "'"));
      result.single_.emplace(std::move(t));
      return result;
    }
    if (!std::filesystem::is_regular_file(override_name_or_file)) {
      return make_error(StatusCode::kNotFound, "--chat-template {}: neither a template named in {} nor a file",
                        override_name_or_file, config_path.string());
    }
    RADIXLM_ASSIGN_OR_RETURN(std::string text, read_file(override_name_or_file));
    RADIXLM_ASSIGN_OR_RETURN(auto t, compile(text, override_name_or_file));
    result.single_.emplace(std::move(t));
    return result;
  }
  if (single_source) {
    RADIXLM_ASSIGN_OR_RETURN(auto t, compile(*single_source, "chat template of " + model_dir.string()));
    result.single_.emplace(std::move(t));
    return result;
  }
  if (named_sources.empty()) {
    return make_error(StatusCode::kNotFound, "{} has no chat template (tokenizer_config.json chat_template or chat_template.jinja)",
                      model_dir.string());
  }
  for (const auto& [name, source] : named_sources) {
    RADIXLM_ASSIGN_OR_RETURN(auto t, compile(source, "chat template '" + name + "'"));
    result.named_.emplace(name, std::move(t));
  }
  return result;
}

Expected<std::string> ChatTemplate::render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                                           bool add_generation_prompt, const nlohmann::ordered_json& kwargs,
                                           const RenderLimits& limits) const {
  if (!messages.is_array()) return make_error(StatusCode::kInvalidArgument, "messages must be a JSON array");
  if (!tools.is_null() && !tools.is_array()) return make_error(StatusCode::kInvalidArgument, "tools must be a JSON array");
  if (!kwargs.is_null() && !kwargs.is_object()) return make_error(StatusCode::kInvalidArgument, "kwargs must be a JSON object");
  const Template* chosen = single_ ? &*single_ : nullptr;
  if (!chosen) {
    auto tool_use = named_.find("tool_use");
    auto fallback = named_.find("default");
    if (!tools.is_null() && tool_use != named_.end()) {
      chosen = &tool_use->second;
    } else if (fallback != named_.end()) {
      chosen = &fallback->second;
    } else {
      return make_error(StatusCode::kNotFound, "no 'default' chat template among the named templates; choose one with --chat-template");
    }
  }
  nlohmann::ordered_json variables = nlohmann::ordered_json::object();
  variables["messages"] = messages;
  variables["tools"] = tools;
  variables["documents"] = nullptr;
  variables["add_generation_prompt"] = add_generation_prompt;
  for (auto it = special_tokens_.begin(); it != special_tokens_.end(); ++it) variables[it.key()] = it.value();
  if (kwargs.is_object()) {
    for (auto it = kwargs.begin(); it != kwargs.end(); ++it) {
      if (it.key() == "messages" || it.key() == "tools" || it.key() == "add_generation_prompt") {
        return make_error(StatusCode::kInvalidArgument, "kwargs may not set '{}'", it.key());
      }
      variables[it.key()] = it.value();
    }
  }
  return chosen->render(variables, limits);
}

}  // namespace radixlm::chat
