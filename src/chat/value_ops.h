#pragma once
// Python semantics of values: truth, ==, ordering, len(), iteration, str(), repr() and json.dumps.
// Operations Python refuses throw TemplateError with Python's wording.

#include <optional>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "chat/value.h"

namespace radixlm::chat {

[[noreturn]] void fail_undefined(const Value& undefined);

bool truthy(const Value& value);
bool values_equal(const Value& a, const Value& b);
// a < b as Python orders numbers, strings and same-typed sequences; TypeError otherwise.
bool value_less(const Value& a, const Value& b);
size_t python_len(const Value& value);
// The elements `for x in value` visits: list items, dict keys, string characters; Undefined gives none.
ValueList iterate(const Value& value);

// str(value) and repr(value) as Python prints them.
std::string to_python_str(const Value& value);
std::string to_python_repr(const Value& value);

struct JsonDumpOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;  // json.dumps(indent=...): a number becomes that many spaces
  std::optional<std::pair<std::string, std::string>> separators;
  bool sort_keys = false;
};
// json.dumps(value, ...) with Python's float repr and escapes.
std::string to_json(const Value& value, const JsonDumpOptions& options);

// JSON input (messages, tools, kwargs) as template values; `max_depth` bounds nesting.
Value value_from_json(const nlohmann::ordered_json& json, int max_depth);

}  // namespace radixlm::chat
