// Binary operators with Python's semantics: int/float promotion, floor division and modulo that round toward
// negative infinity, str/list concatenation and repetition, and markupsafe's escaping when a Markup string
// meets a plain one.

#include <cmath>

#include "chat/builtins.h"
#include "chat/interpreter.h"
#include "chat/python_text.h"
#include "chat/template_error.h"
#include "chat/value_ops.h"

namespace radixlm::chat {
namespace {

[[noreturn]] void unsupported(const std::string& op, const Value& a, const Value& b) {
  fail_runtime("unsupported operand type(s) for {}: '{}' and '{}'", op, python_type_name(a), python_type_name(b));
}

// Python integers do not overflow; radixlm's are 64-bit, so overflow is an error rather than a wrong value.
void check_overflow(bool overflow) {
  if (overflow) fail(StatusCode::kOutOfRange, "integer overflow (radixlm's integers are 64-bit)");
}

double python_float_mod(double a, double b) {
  double mod = std::fmod(a, b);
  if (mod != 0.0) {
    if ((b < 0) != (mod < 0)) mod += b;
  } else {
    mod = std::copysign(0.0, b);
  }
  return mod;
}

double python_float_floordiv(double a, double b) {
  double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0.0 && ((b < 0) != (mod < 0))) div -= 1.0;
  if (div == 0.0) return std::copysign(0.0, a / b);
  double floored = std::floor(div);
  if (div - floored > 0.5) floored += 1.0;
  return floored;
}

Value repeat(Interpreter& in, const Value& sequence, int64_t count) {
  if (count <= 0) {
    if (sequence.is_string()) return Value::string("", sequence.is_safe_string());
    return Value::list({}, sequence.is_tuple());
  }
  if (sequence.is_string()) {
    const std::string& s = sequence.as_string();
    if (!s.empty() && static_cast<uint64_t>(count) > (SIZE_MAX / s.size())) in.check_string_size(SIZE_MAX);
    in.check_string_size(s.size() * static_cast<size_t>(count));
    std::string out;
    out.reserve(s.size() * static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) out += s;
    return Value::string(std::move(out), sequence.is_safe_string());
  }
  const auto& items = sequence.items();
  if (!items.empty() && static_cast<uint64_t>(count) > (SIZE_MAX / items.size())) in.check_collection_size(SIZE_MAX);
  in.check_collection_size(items.size() * static_cast<size_t>(count));
  ValueList out;
  for (int64_t i = 0; i < count; ++i) out.insert(out.end(), items.begin(), items.end());
  return Value::list(std::move(out), sequence.is_tuple());
}

Value add(Interpreter& in, const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return Value::floating(a.as_double() + b.as_double());
    int64_t r;
    check_overflow(__builtin_add_overflow(a.as_integer(), b.as_integer(), &r));
    return Value::integer(r);
  }
  if (a.is_string() && b.is_string()) {
    if (a.is_safe_string() || b.is_safe_string()) {
      std::string left = a.is_safe_string() ? a.as_string() : html_escape(a.as_string());
      std::string right = b.is_safe_string() ? b.as_string() : html_escape(b.as_string());
      return in.make_string(left + right, true);
    }
    in.check_string_size(a.as_string().size() + b.as_string().size());
    return Value::string(a.as_string() + b.as_string());
  }
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    in.check_collection_size(a.items().size() + b.items().size());
    ValueList out = a.items();
    out.insert(out.end(), b.items().begin(), b.items().end());
    return Value::list(std::move(out), a.is_tuple());
  }
  if (a.is_string() && !a.is_safe_string()) {
    fail_runtime("can only concatenate str (not \"{}\") to str", python_type_name(b));
  }
  if (a.is_list() && !a.is_tuple()) fail_runtime("can only concatenate list (not \"{}\") to list", python_type_name(b));
  unsupported("+", a, b);
}

}  // namespace

Value binary_op(Interpreter& in, const std::string& op, const Value& a, const Value& b) {
  if (op == "~") {
    std::string out = to_python_str(a);
    out += to_python_str(b);
    return in.make_string(std::move(out));
  }
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  if (op == "+") return add(in, a, b);
  if (op == "*") {
    if ((a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) return repeat(in, a, b.as_integer());
    if ((b.is_string() || b.is_list()) && (a.is_int() || a.is_bool())) return repeat(in, b, a.as_integer());
  }
  if (op == "%" && a.is_string()) return in.make_string(percent_format(in, a.as_string(), b), a.is_safe_string());
  if (!a.is_number() || !b.is_number()) unsupported(op, a, b);
  bool use_float = a.is_float() || b.is_float();
  if (op == "/") {
    if (b.as_double() == 0.0) fail_runtime("division by zero");
    return Value::floating(a.as_double() / b.as_double());
  }
  if (use_float) {
    double x = a.as_double(), y = b.as_double();
    if (op == "-") return Value::floating(x - y);
    if (op == "*") return Value::floating(x * y);
    if (op == "//" || op == "%") {
      if (y == 0.0) fail_runtime("float {} by zero", op == "%" ? "modulo" : "floor division");
      return Value::floating(op == "%" ? python_float_mod(x, y) : python_float_floordiv(x, y));
    }
    if (op == "**") {
      if (x == 0.0 && y < 0) fail_runtime("0.0 cannot be raised to a negative power");
      return Value::floating(std::pow(x, y));
    }
    if (op == "+") return Value::floating(x + y);
    unsupported(op, a, b);
  }
  int64_t x = a.as_integer(), y = b.as_integer(), r;
  if (op == "-" || op == "*") {
    check_overflow(op == "-" ? __builtin_sub_overflow(x, y, &r) : __builtin_mul_overflow(x, y, &r));
    return Value::integer(r);
  }
  if (op == "//" || op == "%") {
    if (y == 0) fail_runtime("integer division or modulo by zero");
    check_overflow(x == INT64_MIN && y == -1);
    int64_t q = x / y, m = x % y;
    if (m != 0 && ((m < 0) != (y < 0))) {
      q -= 1;
      m += y;
    }
    return Value::integer(op == "//" ? q : m);
  }
  if (op == "**") {
    if (y < 0) {
      if (x == 0) fail_runtime("0.0 cannot be raised to a negative power");
      return Value::floating(std::pow(static_cast<double>(x), static_cast<double>(y)));
    }
    int64_t result = 1, base = x;
    while (y > 0) {
      if (y & 1) check_overflow(__builtin_mul_overflow(result, base, &result));
      y >>= 1;
      if (y > 0) check_overflow(__builtin_mul_overflow(base, base, &base));
    }
    return Value::integer(result);
  }
  unsupported(op, a, b);
}

bool python_contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kUndefined: return false;
    case Value::Kind::kString:
      if (!item.is_string()) {
        fail_runtime("'in <string>' requires string as left operand, not {}", python_type_name(item));
      }
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::kList:
      for (const auto& v : container.items()) {
        if (values_equal(v, item)) return true;
      }
      return false;
    case Value::Kind::kDict:
      if (item.is_list() && !item.is_tuple()) fail_runtime("unhashable type: 'list'");
      return container.dict_object().find(item) != nullptr;
    case Value::Kind::kNamespace:
      return item.is_string() && container.namespace_object().attributes->find(item) != nullptr;
    default: fail_runtime("argument of type '{}' is not iterable", python_type_name(container));
  }
}

std::string percent_format(Interpreter& in, const std::string& format, const Value& args) {
  ValueList values = args.is_tuple() ? args.items() : ValueList{args};
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out.push_back(format[i]);
      continue;
    }
    if (++i >= format.size()) fail_runtime("incomplete format");
    char spec = format[i];
    if (spec == '%') {
      out.push_back('%');
      continue;
    }
    if (next >= values.size()) fail_runtime("not enough arguments for format string");
    const Value& v = values[next++];
    switch (spec) {
      case 's': out += to_python_str(v); break;
      case 'r': out += to_python_repr(v); break;
      case 'd':
      case 'i':
        if (!v.is_number()) fail_runtime("%{} format: a real number is required, not {}", spec, python_type_name(v));
        out += std::to_string(v.is_float() ? static_cast<int64_t>(std::trunc(v.as_float())) : v.as_integer());
        break;
      case 'f': {
        if (!v.is_number()) fail_runtime("must be real number, not {}", python_type_name(v));
        out += fmt::format("{:.6f}", v.as_double());
        break;
      }
      default: fail(StatusCode::kUnsupported, "format character '{}' is not supported", spec);
    }
    in.check_string_size(out.size());
  }
  // Python lets a format ignore a "mapping" argument (anything subscriptable but a tuple or str: dict, list,
  // and jinja2's Undefined).
  bool mapping_like = args.is_dict() || (args.is_list() && !args.is_tuple()) || args.is_undefined();
  if (next < values.size() && !mapping_like) fail_runtime("not all arguments converted during string formatting");
  return out;
}

}  // namespace radixlm::chat
