#pragma once
// What templates can call: jinja2's filters and tests, Python's methods on str/dict/list, the operators,
// and the globals transformers provides (range, dict, namespace, raise_exception, strftime_now).

#include <string>
#include <string_view>

#include "chat/value.h"

namespace radixlm::chat {

// filters.cpp
bool has_filter(std::string_view name);
Value run_filter(Interpreter& in, const std::string& name, const Value& input, CallArgs& args);

// jinja_tests.cpp
bool has_test(std::string_view name);
bool run_test(Interpreter& in, const std::string& name, const Value& input, CallArgs& args);

// methods.cpp: the attribute `name` of a str, dict or list as Python resolves it first (before items).
enum class MethodAccess { kNone, kSafe, kUnsafe };
MethodAccess method_access(const Value& receiver, std::string_view name);
Value call_method(Interpreter& in, const Value& receiver, const std::string& name, CallArgs& args);

// operators.cpp
Value binary_op(Interpreter& in, const std::string& op, const Value& a, const Value& b);
bool python_contains(const Value& container, const Value& item);
// Python's `format % args` for the %-formats templates use (%s %r %d %i %f %%).
std::string percent_format(Interpreter& in, const std::string& format, const Value& args);

// globals.cpp
void install_globals(DictObject& globals);

}  // namespace radixlm::chat
