// The global functions a chat template sees: jinja2's range (capped as the sandbox caps it), dict and
// namespace, plus transformers' raise_exception and strftime_now.

#include <ctime>

#include "chat/builtins.h"
#include "chat/interpreter.h"
#include "chat/template_error.h"
#include "chat/value_ops.h"

namespace radixlm::chat {
namespace {

// jinja2.sandbox.MAX_RANGE
constexpr int64_t kMaxRange = 100000;

Value global_range(Interpreter& in, CallArgs& args) {
  if (!args.keyword.empty()) fail_runtime("range() takes no keyword arguments");
  if (args.positional.empty() || args.positional.size() > 3) {
    fail_runtime("range expected 1 to 3 arguments, got {}", args.positional.size());
  }
  for (const auto& a : args.positional) {
    if (!a.is_int() && !a.is_bool()) fail_runtime("'{}' object cannot be interpreted as an integer", python_type_name(a));
  }
  int64_t start = 0, stop, step = 1;
  if (args.positional.size() == 1) {
    stop = args.positional[0].as_integer();
  } else {
    start = args.positional[0].as_integer();
    stop = args.positional[1].as_integer();
    if (args.positional.size() == 3) step = args.positional[2].as_integer();
  }
  if (step == 0) fail_runtime("range() arg 3 must not be zero");
  long double span = step > 0 ? static_cast<long double>(stop) - start : static_cast<long double>(start) - stop;
  long double count = span <= 0 ? 0 : (span + (step > 0 ? step : -step) - 1) / (step > 0 ? step : -step);
  if (count > kMaxRange) {
    fail_runtime("Range too big. The sandbox blocks ranges larger than MAX_RANGE ({}).", kMaxRange);
  }
  in.count_iterations(static_cast<uint64_t>(count));
  ValueList items;
  for (int64_t i = 0, v = start; i < static_cast<int64_t>(count); ++i, v += step) items.push_back(Value::integer(v));
  return Value::list(std::move(items));
}

Value global_dict(Interpreter& in, CallArgs& args) {
  auto dict = make_dict();
  if (args.positional.size() > 1) fail_runtime("dict expected at most 1 argument, got {}", args.positional.size());
  if (!args.positional.empty()) {
    const Value& source = args.positional[0];
    if (source.is_dict()) {
      for (const auto& [k, v] : source.dict_object().entries) dict->set(k, v);
    } else {
      for (const auto& pair : iterate(source)) {
        ValueList kv = iterate(pair);
        if (kv.size() != 2) fail_runtime("dictionary update sequence element has length {}; 2 is required", kv.size());
        dict->set(kv[0], kv[1]);
      }
    }
  }
  for (const auto& [k, v] : args.keyword) dict->set(Value::string(k), v);
  return in.check_depth(Value::dict(std::move(dict)));
}

Value global_namespace(Interpreter& in, CallArgs& args) {
  Value initial = global_dict(in, args);
  auto attributes = std::make_shared<DictObject>(initial.dict_object());
  return in.make_namespace(std::move(attributes));
}

Value global_raise_exception(Interpreter&, CallArgs& args) {
  std::string message = args.positional.empty() ? "" : to_python_str(args.positional[0]);
  fail(StatusCode::kInvalidArgument, "chat template raised an exception: {}", message);
}

Value global_strftime_now(Interpreter& in, CallArgs& args) {
  if (args.positional.empty() || !args.positional[0].is_string()) fail_runtime("strftime_now() needs a format string");
  const std::string& format = args.positional[0].as_string();
  if (format.size() > 256) fail(StatusCode::kOutOfRange, "strftime_now() format is too long");
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char buf[4096];
  size_t n = format.empty() ? 0 : std::strftime(buf, sizeof(buf), format.c_str(), &local);
  if (n == 0 && !format.empty()) return in.make_string("");
  return in.make_string(std::string(buf, n));
}

}  // namespace

void install_globals(DictObject& globals) {
  globals.set(Value::string("range"), Value::callable("range", global_range));
  globals.set(Value::string("dict"), Value::callable("dict", global_dict));
  globals.set(Value::string("namespace"), Value::callable("namespace", global_namespace));
  globals.set(Value::string("raise_exception"), Value::callable("raise_exception", global_raise_exception));
  globals.set(Value::string("strftime_now"), Value::callable("strftime_now", global_strftime_now));
}

}  // namespace radixlm::chat
