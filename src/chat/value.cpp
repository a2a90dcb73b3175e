#include "chat/value.h"

#include <algorithm>

#include "chat/value_ops.h"

namespace radixlm::chat {

Value Value::undefined(std::string message, bool unsafe) {
  UndefinedValue u;
  if (!message.empty()) u.message = std::make_shared<const std::string>(std::move(message));
  u.unsafe = unsafe;
  return Value(std::move(u));
}

Value Value::string(std::string s, bool safe) {
  return Value(StringValue{std::make_shared<const std::string>(std::move(s)), safe});
}

Value Value::list(ValueList items, bool is_tuple) {
  return sequence(std::move(items), is_tuple ? SequenceKind::kTuple : SequenceKind::kList);
}

Value Value::sequence(ValueList items, SequenceKind kind) {
  auto object = std::make_shared<ListObject>();
  int depth = 0;
  for (const auto& item : items) depth = std::max(depth, item.depth());
  object->items = std::move(items);
  object->sequence = kind;
  object->depth = depth + 1;
  return Value(std::shared_ptr<const ListObject>(std::move(object)));
}

Value Value::dict(std::shared_ptr<DictObject> dict) {
  int depth = 0;
  for (const auto& [key, value] : dict->entries) depth = std::max({depth, key.depth(), value.depth()});
  dict->depth = depth + 1;
  return Value(std::move(dict));
}

Value Value::callable(std::string name, NativeFunction function, std::string repr) {
  if (repr.empty()) repr = "<function " + name + ">";
  return Value(std::make_shared<CallableObject>(CallableObject{std::move(name), std::move(function), std::move(repr)}));
}

std::string Value::undefined_message() const {
  const auto& u = undefined_value();
  if (u.message) return *u.message;
  return "value is undefined";
}

int Value::depth() const {
  switch (kind()) {
    case Kind::kList: return list_object().depth;
    case Kind::kDict: return dict_object().depth;
    default: return 0;  // namespaces break the chain: they are emptied when a render ends
  }
}

const void* Value::identity() const {
  switch (kind()) {
    case Kind::kList: return list_ptr().get();
    case Kind::kDict: return dict_ptr().get();
    case Kind::kNamespace: return std::get<std::shared_ptr<NamespaceObject>>(data_).get();
    case Kind::kLoop: return std::get<std::shared_ptr<const LoopObject>>(data_).get();
    case Kind::kCallable: return std::get<std::shared_ptr<CallableObject>>(data_).get();
    case Kind::kString: return std::get<StringValue>(data_).text.get();
    default: return nullptr;
  }
}

const Value* DictObject::find(const Value& key) const {
  if (key.is_string()) {
    auto it = string_index.find(key.as_string());
    return it == string_index.end() ? nullptr : &entries[it->second].second;
  }
  for (const auto& [k, v] : entries) {
    if (!k.is_string() && values_equal(k, key)) return &v;
  }
  return nullptr;
}

void DictObject::set(Value key, Value value) {
  if (key.is_string()) {
    auto [it, inserted] = string_index.emplace(key.as_string(), entries.size());
    if (!inserted) {
      entries[it->second].second = std::move(value);
      return;
    }
    entries.emplace_back(std::move(key), std::move(value));
    return;
  }
  for (auto& [k, v] : entries) {
    if (!k.is_string() && values_equal(k, key)) {
      v = std::move(value);
      return;
    }
  }
  entries.emplace_back(std::move(key), std::move(value));
}

const Value* CallArgs::find(size_t position, std::string_view name) const {
  if (position < positional.size()) return &positional[position];
  for (const auto& [k, v] : keyword) {
    if (k == name) return &v;
  }
  return nullptr;
}

const char* python_type_name(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kUndefined: return "Undefined";
    case Value::Kind::kNone: return "NoneType";
    case Value::Kind::kBool: return "bool";
    case Value::Kind::kInt: return "int";
    case Value::Kind::kFloat: return "float";
    case Value::Kind::kString: return value.is_safe_string() ? "Markup" : "str";
    case Value::Kind::kList:
      switch (value.sequence_kind()) {
        case SequenceKind::kList: return "list";
        case SequenceKind::kTuple: return "tuple";
        case SequenceKind::kGenerator: return "generator";
        case SequenceKind::kDictKeys: return "dict_keys";
        case SequenceKind::kDictValues: return "dict_values";
        case SequenceKind::kDictItems: return "dict_items";
      }
      return "list";
    case Value::Kind::kDict: return "dict";
    case Value::Kind::kNamespace: return "Namespace";
    case Value::Kind::kLoop: return "LoopContext";
    case Value::Kind::kCallable: return "function";
  }
  return "object";
}

std::shared_ptr<DictObject> make_dict() { return std::make_shared<DictObject>(); }

}  // namespace radixlm::chat
