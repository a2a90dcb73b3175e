#pragma once
// The dynamic values a template computes with, modelled on the Python objects jinja2 works on: Undefined,
// None, bool, int, float, str (with markupsafe's Markup as a flag), list/tuple, dict (insertion order kept),
// jinja2's namespace, the for-loop's `loop` object and callables (builtins, bound methods, macros).
// Lists and dicts are immutable once built (transformers renders in jinja2's ImmutableSandboxedEnvironment,
// where list.append and dict.update are refused); only namespaces change, and they are shared by reference.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace radixlm::chat {

class Value;
class Interpreter;
struct CallArgs;

using ValueList = std::vector<Value>;

// jinja2's Undefined: `message` is what an error about it says ("'x' is undefined"), `unsafe` marks the
// sandbox's refusal of an attribute (calling it is a SecurityError, printing it is still empty).
struct UndefinedValue {
  std::shared_ptr<const std::string> message;
  bool unsafe = false;
};

struct NoneValue {};

struct StringValue {
  std::shared_ptr<const std::string> text;
  bool safe = false;  // markupsafe.Markup: `+` with a plain str HTML-escapes the plain side
};

// Python's sequence types a template meets: list and tuple, plus the lazy results of jinja2's map/select
// filters (generators) and dict.keys()/values()/items() views, which iterate like lists but cannot be
// indexed or serialised to JSON, and (generators) have no len() and are always true.
enum class SequenceKind : uint8_t { kList, kTuple, kGenerator, kDictKeys, kDictValues, kDictItems };

struct ListObject {
  ValueList items;
  SequenceKind sequence = SequenceKind::kList;
  int depth = 1;  // nesting depth, bounded so destruction and printing cannot exhaust the stack
};

struct DictObject {
  std::vector<std::pair<Value, Value>> entries;
  std::unordered_map<std::string, size_t> string_index;  // position of each string key in `entries`
  int depth = 1;

  const Value* find(const Value& key) const;
  // Inserts or replaces, keeping the first insertion's position as Python dicts do.
  void set(Value key, Value value);
};

struct NamespaceObject {
  std::shared_ptr<DictObject> attributes;
};

// The `loop` variable of a for loop; its attributes are computed from the position on demand.
struct LoopObject {
  std::shared_ptr<const ListObject> items;
  size_t index0 = 0;
  int depth0 = 0;
};

using NativeFunction = std::function<Value(Interpreter&, CallArgs&)>;

struct CallableObject {
  std::string name;
  NativeFunction function;
  std::string repr;  // how str() prints it; jinja2 prints macros as <Macro 'name'>
};

class Value {
 public:
  enum class Kind : uint8_t { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace, kLoop,
                              kCallable };

  Value() : data_(UndefinedValue{}) {}
  static Value undefined(std::string message = "", bool unsafe = false);
  static Value none() { return Value(NoneValue{}); }
  static Value boolean(bool b) { return Value(b); }
  static Value integer(int64_t i) { return Value(i); }
  static Value floating(double f) { return Value(f); }
  static Value string(std::string s, bool safe = false);
  static Value list(ValueList items, bool is_tuple = false);
  static Value sequence(ValueList items, SequenceKind kind);
  static Value dict(std::shared_ptr<DictObject> dict);
  static Value namespace_object(std::shared_ptr<NamespaceObject> ns) { return Value(std::move(ns)); }
  static Value loop(std::shared_ptr<const LoopObject> loop) { return Value(std::move(loop)); }
  static Value callable(std::string name, NativeFunction function, std::string repr = "");

  Kind kind() const { return static_cast<Kind>(data_.index()); }
  bool is_undefined() const { return kind() == Kind::kUndefined; }
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_float() const { return kind() == Kind::kFloat; }
  bool is_number() const { return is_bool() || is_int() || is_float(); }  // Python: bool is an int
  bool is_string() const { return kind() == Kind::kString; }
  // Any sequence object: list, tuple, generator or dict view.
  bool is_sequence_object() const { return kind() == Kind::kList; }
  SequenceKind sequence_kind() const { return list_object().sequence; }
  // A real list or tuple (indexable, JSON-serialisable).
  bool is_list() const {
    return kind() == Kind::kList && (list_object().sequence == SequenceKind::kList || list_object().sequence == SequenceKind::kTuple);
  }
  bool is_tuple() const { return kind() == Kind::kList && list_object().sequence == SequenceKind::kTuple; }
  bool is_generator() const { return kind() == Kind::kList && list_object().sequence == SequenceKind::kGenerator; }
  bool is_dict() const { return kind() == Kind::kDict; }
  bool is_namespace() const { return kind() == Kind::kNamespace; }
  bool is_loop() const { return kind() == Kind::kLoop; }
  bool is_callable() const { return kind() == Kind::kCallable; }

  bool as_bool() const { return std::get<bool>(data_); }
  int64_t as_int() const { return std::get<int64_t>(data_); }
  double as_float() const { return std::get<double>(data_); }
  // int value of a bool or int (Python's int(True) == 1).
  int64_t as_integer() const { return is_bool() ? (as_bool() ? 1 : 0) : as_int(); }
  double as_double() const { return is_float() ? as_float() : static_cast<double>(as_integer()); }
  const std::string& as_string() const { return *std::get<StringValue>(data_).text; }
  bool is_safe_string() const { return is_string() && std::get<StringValue>(data_).safe; }
  const ListObject& list_object() const { return *std::get<std::shared_ptr<const ListObject>>(data_); }
  const std::shared_ptr<const ListObject>& list_ptr() const {
    return std::get<std::shared_ptr<const ListObject>>(data_);
  }
  const ValueList& items() const { return list_object().items; }
  const DictObject& dict_object() const { return *std::get<std::shared_ptr<DictObject>>(data_); }
  const std::shared_ptr<DictObject>& dict_ptr() const { return std::get<std::shared_ptr<DictObject>>(data_); }
  NamespaceObject& namespace_object() const { return *std::get<std::shared_ptr<NamespaceObject>>(data_); }
  const LoopObject& loop_object() const { return *std::get<std::shared_ptr<const LoopObject>>(data_); }
  const CallableObject& callable_object() const { return *std::get<std::shared_ptr<CallableObject>>(data_); }
  const UndefinedValue& undefined_value() const { return std::get<UndefinedValue>(data_); }
  // The message an UndefinedError about this value carries.
  std::string undefined_message() const;

  // Nesting depth of containers (1 for a flat list, 0 for scalars).
  int depth() const;
  // Identity of the shared object behind a namespace, callable or container (Python's `is`).
  const void* identity() const;

 private:
  using Data = std::variant<UndefinedValue, NoneValue, bool, int64_t, double, StringValue,
                            std::shared_ptr<const ListObject>, std::shared_ptr<DictObject>,
                            std::shared_ptr<NamespaceObject>, std::shared_ptr<const LoopObject>,
                            std::shared_ptr<CallableObject>>;
  template <typename T>
  explicit Value(T data) : data_(std::move(data)) {}
  Data data_;
};

// Arguments of a call: positional then keyword, as Python passes them.
struct CallArgs {
  ValueList positional;
  std::vector<std::pair<std::string, Value>> keyword;

  // The argument at `position` or named `name`; nullptr when absent.
  const Value* find(size_t position, std::string_view name) const;
};

// Python's type name of a value, as error messages print it ("str", "int", "NoneType", "dict", ...).
const char* python_type_name(const Value& value);

// Builds a dict from string keys (namespace(), dict(), JSON objects).
std::shared_ptr<DictObject> make_dict();

}  // namespace radixlm::chat
