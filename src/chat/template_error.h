#pragma once
// Inside the lexer, parser and interpreter an error unwinds as a TemplateError exception: evaluation is deeply
// recursive and any step may fail, so one exception type converted to a Status at the public entry points
// (template.cpp) keeps every step readable. Nothing outside src/chat/ sees these exceptions.

#include <stdexcept>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "core/status.h"

namespace radixlm::chat {

class TemplateError : public std::runtime_error {
 public:
  TemplateError(StatusCode code, std::string message) : std::runtime_error(std::move(message)), code_(code) {}
  StatusCode code() const { return code_; }

 private:
  StatusCode code_;
};

template <typename... Args>
[[noreturn]] void fail(StatusCode code, fmt::format_string<Args...> format, Args&&... args) {
  throw TemplateError(code, fmt::format(format, std::forward<Args>(args)...));
}

// jinja2's TypeError/ValueError/UndefinedError: the template did something Python refuses.
template <typename... Args>
[[noreturn]] void fail_runtime(fmt::format_string<Args...> format, Args&&... args) {
  throw TemplateError(StatusCode::kInvalidArgument, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace radixlm::chat
