#include "chat/template.h"

#include <new>

#include "chat/parser.h"
#include "chat/template_error.h"
#include "chat/value_ops.h"

namespace radixlm::chat {

Expected<Template> Template::parse(std::string_view source) {
  try {
    Template t;
    t.ast_ = std::make_shared<const TemplateAst>(parse_template(source));
    return t;
  } catch (const TemplateError& e) {
    return Status(e.code(), e.what());
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kResourceExhausted, "out of memory while parsing the template");
  }
}

Expected<std::string> Template::render(const nlohmann::ordered_json& variables, const RenderLimits& limits) const {
  if (!variables.is_object()) return make_error(StatusCode::kInvalidArgument, "template variables must be a JSON object");
  try {
    Value context = value_from_json(variables, kMaxValueDepth);
    Interpreter interpreter(limits);
    return interpreter.render(*ast_, context.dict_object());
  } catch (const TemplateError& e) {
    return Status(e.code(), e.what());
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kResourceExhausted, "out of memory while rendering the template");
  } catch (const std::exception& e) {
    // A Python type error the interpreter did not anticipate (e.g. a wrongly typed filter argument).
    return Status(StatusCode::kInvalidArgument, std::string("template error: ") + e.what());
  }
}

}  // namespace radixlm::chat
