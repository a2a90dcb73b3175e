#pragma once
// A compiled Jinja2 template, rendered as transformers renders chat templates: jinja2's
// ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks, loop controls, transformers' tojson and its
// raise_exception/strftime_now globals. No file, environment or network access; every render is bounded by
// RenderLimits. A Template is immutable after parse() and may be rendered from several threads at once.

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "chat/interpreter.h"
#include "core/status.h"

namespace radixlm::chat {

struct TemplateAst;

class Template {
 public:
  // Syntax errors (and unknown filters or tests) come back as kInvalidArgument with the line.
  static Expected<Template> parse(std::string_view source);

  // `variables` is a JSON object whose members become the template's variables. ordered_json keeps member
  // order, which tojson and dict iteration must reproduce.
  Expected<std::string> render(const nlohmann::ordered_json& variables, const RenderLimits& limits = {}) const;

 private:
  std::shared_ptr<const TemplateAst> ast_;
};

}  // namespace radixlm::chat
