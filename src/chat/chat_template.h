#pragma once
// The chat template of a model directory, chosen and rendered as transformers' apply_chat_template does.
//
// Choice: `override` names one of the named templates in tokenizer_config.json or is a path to a template
// file; otherwise `chat_template.jinja` beside the config wins over tokenizer_config.json's `chat_template`,
// which is a string or a list of {name, template} (then "tool_use" is used when tools are given and it exists,
// else "default").
// Variables: messages, tools (None when absent), documents (None unless kwargs gives it),
// add_generation_prompt, the special tokens of tokenizer_config.json (bos_token, eos_token, unk_token,
// pad_token, sep_token, cls_token, mask_token; strings or {"content": ...} objects) and every member of
// kwargs (chat_template_kwargs such as enable_thinking), which may override the special tokens.

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "chat/template.h"
#include "core/status.h"

namespace radixlm::chat {

class ChatTemplate {
 public:
  static Expected<ChatTemplate> load(const std::filesystem::path& model_dir, const std::string& override_name_or_file = "");

  // messages: JSON array of message objects; tools: JSON array or null; kwargs: JSON object or null.
  // Use nlohmann::ordered_json when parsing inputs: member order shows in tojson output.
  Expected<std::string> render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                               bool add_generation_prompt, const nlohmann::ordered_json& kwargs,
                               const RenderLimits& limits = {}) const;

  // The special-token variables read from tokenizer_config.json.
  const nlohmann::ordered_json& special_tokens() const { return special_tokens_; }

 private:
  std::optional<Template> single_;
  std::map<std::string, Template> named_;
  nlohmann::ordered_json special_tokens_ = nlohmann::ordered_json::object();
};

}  // namespace radixlm::chat
