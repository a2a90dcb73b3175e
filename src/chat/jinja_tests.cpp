// jinja2's tests (`x is defined`, `x is string`, ...), with Python's type model underneath: bool counts as a
// number, and an Undefined is iterable and a sequence (it has __iter__, __len__ and __getitem__).

#include <cmath>
#include <map>

#include "chat/builtins.h"
#include "chat/interpreter.h"
#include "chat/python_text.h"
#include "chat/template_error.h"
#include "chat/value_ops.h"

namespace radixlm::chat {
namespace {

using TestFunction = bool (*)(Interpreter&, const Value&, CallArgs&);

const Value& argument(const CallArgs& args, size_t position, const char* name, const char* test) {
  const Value* v = args.find(position, name);
  if (!v) fail_runtime("test '{}' is missing its argument", test);
  return *v;
}

bool is_integer_value(const Value& v) { return v.is_int(); }

// str.islower()/str.isupper(): at least one cased character, and every cased one in that case.
bool cased_all(const std::string& s, bool lower) {
  bool any = false;
  for (char32_t c : utf8_to_code_points(s)) {
    bool is_lower = to_upper_code_point(c) != c;
    bool is_upper = to_lower_code_point(c) != c;
    if (!is_lower && !is_upper) continue;
    any = true;
    if (lower ? is_upper : is_lower) return false;
  }
  return any;
}

const std::map<std::string, TestFunction, std::less<>>& tests() {
  static const std::map<std::string, TestFunction, std::less<>> table = {
      {"defined", [](Interpreter&, const Value& v, CallArgs&) { return !v.is_undefined(); }},
      {"undefined", [](Interpreter&, const Value& v, CallArgs&) { return v.is_undefined(); }},
      {"none", [](Interpreter&, const Value& v, CallArgs&) { return v.is_none(); }},
      {"boolean", [](Interpreter&, const Value& v, CallArgs&) { return v.is_bool(); }},
      {"true", [](Interpreter&, const Value& v, CallArgs&) { return v.is_bool() && v.as_bool(); }},
      {"false", [](Interpreter&, const Value& v, CallArgs&) { return v.is_bool() && !v.as_bool(); }},
      {"integer", [](Interpreter&, const Value& v, CallArgs&) { return is_integer_value(v); }},
      {"float", [](Interpreter&, const Value& v, CallArgs&) { return v.is_float(); }},
      {"number", [](Interpreter&, const Value& v, CallArgs&) { return v.is_number(); }},
      {"string", [](Interpreter&, const Value& v, CallArgs&) { return v.is_string(); }},
      {"mapping", [](Interpreter&, const Value& v, CallArgs&) { return v.is_dict(); }},
      {"iterable",
       [](Interpreter&, const Value& v, CallArgs&) {
         return v.is_undefined() || v.is_string() || v.is_sequence_object() || v.is_dict();
       }},
      {"sequence",
       [](Interpreter&, const Value& v, CallArgs&) {
         return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
       }},
      // Undefined defines __call__ (to raise), so Python's callable() says True.
      {"callable", [](Interpreter&, const Value& v, CallArgs&) { return v.is_callable() || v.is_undefined(); }},
      {"escaped", [](Interpreter&, const Value& v, CallArgs&) { return v.is_safe_string(); }},
      {"lower", [](Interpreter&, const Value& v, CallArgs&) { return cased_all(to_python_str(v), true); }},
      {"upper", [](Interpreter&, const Value& v, CallArgs&) { return cased_all(to_python_str(v), false); }},
      // jinja2: value % 2 == 1 / value % 2 == 0, with Python's % (floats allowed).
      {"odd",
       [](Interpreter& in, const Value& v, CallArgs&) {
         return values_equal(binary_op(in, "%", v, Value::integer(2)), Value::integer(1));
       }},
      {"even",
       [](Interpreter& in, const Value& v, CallArgs&) {
         return values_equal(binary_op(in, "%", v, Value::integer(2)), Value::integer(0));
       }},
      {"divisibleby",
       [](Interpreter&, const Value& v, CallArgs& args) {
         const Value& n = argument(args, 0, "num", "divisibleby");
         if (!v.is_number() || !n.is_number()) fail_runtime("test 'divisibleby' needs numbers");
         if (v.is_float() || n.is_float()) {
           if (n.as_double() == 0.0) fail_runtime("float modulo by zero");
           return std::fmod(v.as_double(), n.as_double()) == 0.0;
         }
         if (n.as_integer() == 0) fail_runtime("integer division or modulo by zero");
         if (n.as_integer() == -1) return true;
         return v.as_integer() % n.as_integer() == 0;
       }},
      {"sameas",
       [](Interpreter&, const Value& v, CallArgs& args) {
         const Value& other = argument(args, 0, "other", "sameas");
         if (v.kind() != other.kind()) return false;
         if (v.is_none() || v.is_undefined()) return true;
         if (v.is_bool()) return v.as_bool() == other.as_bool();
         if (v.is_int()) return v.as_int() == other.as_int() && v.as_int() >= -5 && v.as_int() <= 256;
         return v.identity() != nullptr && v.identity() == other.identity();
       }},
      {"in",
       [](Interpreter&, const Value& v, CallArgs& args) {
         return python_contains(argument(args, 0, "seq", "in"), v);
       }},
      {"filter",
       [](Interpreter&, const Value& v, CallArgs&) { return v.is_string() && has_filter(v.as_string()); }},
      {"test", [](Interpreter&, const Value& v, CallArgs&) { return v.is_string() && has_test(v.as_string()); }},
  };
  return table;
}

bool compare_test(const std::string& name, const Value& v, CallArgs& args) {
  const Value& other = argument(args, 0, "other", name.c_str());
  if (name == "eq" || name == "equalto" || name == "==") return values_equal(v, other);
  if (name == "ne" || name == "!=") return !values_equal(v, other);
  if (name == "lt" || name == "lessthan" || name == "<") return value_less(v, other);
  if (name == "le" || name == "<=") return !value_less(other, v);
  if (name == "gt" || name == "greaterthan" || name == ">") return value_less(other, v);
  return !value_less(v, other);  // ge, >=
}

bool is_compare_test(std::string_view name) {
  return name == "eq" || name == "equalto" || name == "==" || name == "ne" || name == "!=" || name == "lt" ||
         name == "lessthan" || name == "<" || name == "le" || name == "<=" || name == "gt" ||
         name == "greaterthan" || name == ">" || name == "ge" || name == ">=";
}

}  // namespace

bool has_test(std::string_view name) { return tests().count(name) > 0 || is_compare_test(name); }

// Python's signature check: the one-argument tests take exactly their argument, the others none.
void check_test_arguments(const std::string& name, const CallArgs& args) {
  bool takes_argument = is_compare_test(name) || name == "divisibleby" || name == "sameas" || name == "in";
  size_t given = args.positional.size() + args.keyword.size();
  if (given > (takes_argument ? 1u : 0u)) fail_runtime("test '{}' got {} argument(s), too many", name, given);
}

bool run_test(Interpreter& in, const std::string& name, const Value& input, CallArgs& args) {
  check_test_arguments(name, args);
  if (is_compare_test(name)) return compare_test(name, input, args);
  auto it = tests().find(name);
  if (it == tests().end()) fail_runtime("no test named '{}'", name);
  return it->second(in, input, args);
}

}  // namespace radixlm::chat
