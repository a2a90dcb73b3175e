#include "chat/value_ops.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "chat/python_text.h"
#include "chat/template_error.h"

namespace radixlm::chat {
namespace {

int compare_numbers(const Value& a, const Value& b) {
  if (a.is_float() || b.is_float()) {
    double x = a.as_double(), y = b.as_double();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  int64_t x = a.as_integer(), y = b.as_integer();
  return x < y ? -1 : (x > y ? 1 : 0);
}

void append_json_string(std::string& out, std::string_view text, bool ensure_ascii) {
  out.push_back('"');
  if (!ensure_ascii) {
    for (char ch : text) {
      unsigned char c = static_cast<unsigned char>(ch);
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
          if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof(buf), "\\u%04x", c);
            out += buf;
          } else {
            out.push_back(ch);
          }
      }
    }
  } else {
    for (char32_t c : utf8_to_code_points(text)) {
      char buf[16];
      switch (c) {
        case '"': out += "\\\""; continue;
        case '\\': out += "\\\\"; continue;
        case '\n': out += "\\n"; continue;
        case '\r': out += "\\r"; continue;
        case '\t': out += "\\t"; continue;
        case '\b': out += "\\b"; continue;
        case '\f': out += "\\f"; continue;
        default: break;
      }
      if (c >= 0x20 && c < 0x7F) {
        out.push_back(static_cast<char>(c));
      } else if (c < 0x10000) {
        std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
        out += buf;
      } else {
        char32_t v = c - 0x10000;
        std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 | (v >> 10)),
                      static_cast<unsigned>(0xDC00 | (v & 0x3FF)));
        out += buf;
      }
    }
  }
  out.push_back('"');
}

std::string json_float(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  return python_float_repr(d);
}

struct JsonWriter {
  const JsonDumpOptions& options;
  std::string item_separator;
  std::string key_separator;
  std::string out;

  void newline(int level) {
    out.push_back('\n');
    for (int i = 0; i < level; ++i) out += *options.indent;
  }

  std::string key_text(const Value& key) {
    switch (key.kind()) {
      case Value::Kind::kString: return key.as_string();
      case Value::Kind::kBool: return key.as_bool() ? "true" : "false";
      case Value::Kind::kNone: return "null";
      case Value::Kind::kInt: return std::to_string(key.as_int());
      case Value::Kind::kFloat: return json_float(key.as_float());
      default:
        fail_runtime("keys must be str, int, float, bool or None, not {}", python_type_name(key));
    }
  }

  void write(const Value& value, int level) {
    switch (value.kind()) {
      case Value::Kind::kNone: out += "null"; return;
      case Value::Kind::kBool: out += value.as_bool() ? "true" : "false"; return;
      case Value::Kind::kInt: out += std::to_string(value.as_int()); return;
      case Value::Kind::kFloat: out += json_float(value.as_float()); return;
      case Value::Kind::kString: append_json_string(out, value.as_string(), options.ensure_ascii); return;
      case Value::Kind::kList: {
        if (!value.is_list()) fail_runtime("Object of type {} is not JSON serializable", python_type_name(value));
        const auto& items = value.items();
        if (items.empty()) {
          out += "[]";
          return;
        }
        out.push_back('[');
        for (size_t i = 0; i < items.size(); ++i) {
          if (i > 0) out += item_separator;
          if (options.indent) newline(level + 1);
          write(items[i], level + 1);
        }
        if (options.indent) newline(level);
        out.push_back(']');
        return;
      }
      case Value::Kind::kDict: {
        std::vector<const std::pair<Value, Value>*> entries;
        for (const auto& entry : value.dict_object().entries) entries.push_back(&entry);
        if (entries.empty()) {
          out += "{}";
          return;
        }
        if (options.sort_keys) {
          std::stable_sort(entries.begin(), entries.end(),
                           [](const auto* a, const auto* b) { return value_less(a->first, b->first); });
        }
        out.push_back('{');
        for (size_t i = 0; i < entries.size(); ++i) {
          if (i > 0) out += item_separator;
          if (options.indent) newline(level + 1);
          append_json_string(out, key_text(entries[i]->first), options.ensure_ascii);
          out += key_separator;
          write(entries[i]->second, level + 1);
        }
        if (options.indent) newline(level);
        out.push_back('}');
        return;
      }
      default:
        fail_runtime("Object of type {} is not JSON serializable", python_type_name(value));
    }
  }
};

void append_repr(std::string& out, const Value& value);

void append_dict_repr(std::string& out, const DictObject& dict) {
  out.push_back('{');
  bool first = true;
  for (const auto& [k, v] : dict.entries) {
    if (!first) out += ", ";
    first = false;
    append_repr(out, k);
    out += ": ";
    append_repr(out, v);
  }
  out.push_back('}');
}

void append_repr(std::string& out, const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kString:
      out += value.is_safe_string() ? "Markup(" + python_string_repr(value.as_string()) + ")"
                                    : python_string_repr(value.as_string());
      return;
    case Value::Kind::kList: {
      if (value.is_generator()) {
        out += "<generator object>";
        return;
      }
      const auto& items = value.items();
      bool view = !value.is_list();
      if (view) out += std::string(python_type_name(value)) + "(";
      out.push_back(value.is_tuple() ? '(' : '[');
      for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += ", ";
        append_repr(out, items[i]);
      }
      if (value.is_tuple() && items.size() == 1) out.push_back(',');
      out.push_back(value.is_tuple() ? ')' : ']');
      if (view) out.push_back(')');
      return;
    }
    case Value::Kind::kDict: append_dict_repr(out, value.dict_object()); return;
    case Value::Kind::kUndefined: out += "Undefined"; return;
    default: out += to_python_str(value); return;
  }
}

}  // namespace

void fail_undefined(const Value& undefined) {
  if (undefined.undefined_value().unsafe) fail(StatusCode::kInvalidArgument, "{}", undefined.undefined_message());
  fail_runtime("{}", undefined.undefined_message());
}

bool truthy(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone: return false;
    case Value::Kind::kBool: return value.as_bool();
    case Value::Kind::kInt: return value.as_int() != 0;
    case Value::Kind::kFloat: return value.as_float() != 0.0;
    case Value::Kind::kString: return !value.as_string().empty();
    case Value::Kind::kList: return value.is_generator() || !value.items().empty();
    case Value::Kind::kDict: return !value.dict_object().entries.empty();
    default: return true;
  }
}

bool values_equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) return compare_numbers(a, b) == 0;
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone: return true;
    case Value::Kind::kString: return a.as_string() == b.as_string();
    case Value::Kind::kList: {
      if (!a.is_list() || !b.is_list()) return a.identity() == b.identity();
      if (a.is_tuple() != b.is_tuple()) return false;
      const auto& x = a.items();
      const auto& y = b.items();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!values_equal(x[i], y[i])) return false;
      }
      return true;
    }
    case Value::Kind::kDict: {
      const auto& x = a.dict_object();
      const auto& y = b.dict_object();
      if (x.entries.size() != y.entries.size()) return false;
      for (const auto& [k, v] : x.entries) {
        const Value* other = y.find(k);
        if (!other || !values_equal(v, *other)) return false;
      }
      return true;
    }
    default: return a.identity() == b.identity();
  }
}

bool value_less(const Value& a, const Value& b) {
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  if (a.is_number() && b.is_number()) return compare_numbers(a, b) < 0;
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();  // UTF-8 order = code point order
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    const auto& x = a.items();
    const auto& y = b.items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!values_equal(x[i], y[i])) return value_less(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  fail_runtime("'<' not supported between instances of '{}' and '{}'", python_type_name(a), python_type_name(b));
}

size_t python_len(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kUndefined: return 0;
    case Value::Kind::kString: return code_point_count(value.as_string());
    case Value::Kind::kList:
      if (value.is_generator()) fail_runtime("object of type 'generator' has no len()");
      return value.items().size();
    case Value::Kind::kDict: return value.dict_object().entries.size();
    default: fail_runtime("object of type '{}' has no len()", python_type_name(value));
  }
}

ValueList iterate(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kUndefined: return {};
    case Value::Kind::kList: return value.items();
    case Value::Kind::kDict: {
      ValueList keys;
      for (const auto& [k, v] : value.dict_object().entries) keys.push_back(k);
      return keys;
    }
    case Value::Kind::kString: {
      ValueList chars;
      std::string piece;
      for (char32_t c : utf8_to_code_points(value.as_string())) {
        piece.clear();
        append_utf8(piece, c);
        chars.push_back(Value::string(piece, value.is_safe_string()));
      }
      return chars;
    }
    default: fail_runtime("'{}' object is not iterable", python_type_name(value));
  }
}

std::string to_python_str(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kUndefined: return "";
    case Value::Kind::kNone: return "None";
    case Value::Kind::kBool: return value.as_bool() ? "True" : "False";
    case Value::Kind::kInt: return std::to_string(value.as_int());
    case Value::Kind::kFloat: return python_float_repr(value.as_float());
    case Value::Kind::kString: return value.as_string();
    case Value::Kind::kList:
    case Value::Kind::kDict: {
      std::string out;
      append_repr(out, value);
      return out;
    }
    case Value::Kind::kNamespace: {
      std::string out = "<Namespace ";
      append_dict_repr(out, *value.namespace_object().attributes);
      return out + ">";
    }
    case Value::Kind::kLoop: {
      const auto& loop = value.loop_object();
      return "<LoopContext " + std::to_string(loop.index0 + 1) + "/" + std::to_string(loop.items->items.size()) +
             ">";
    }
    case Value::Kind::kCallable: return value.callable_object().repr;
  }
  return "";
}

std::string to_python_repr(const Value& value) {
  std::string out;
  append_repr(out, value);
  return out;
}

std::string to_json(const Value& value, const JsonDumpOptions& options) {
  JsonWriter writer{options, "", "", ""};
  if (options.separators) {
    writer.item_separator = options.separators->first;
    writer.key_separator = options.separators->second;
  } else {
    writer.item_separator = options.indent ? "," : ", ";
    writer.key_separator = ": ";
  }
  writer.write(value, 0);
  return std::move(writer.out);
}

Value value_from_json(const nlohmann::ordered_json& json, int max_depth) {
  if (max_depth <= 0) fail(StatusCode::kOutOfRange, "JSON input is nested too deeply");
  switch (json.type()) {
    case nlohmann::ordered_json::value_t::null: return Value::none();
    case nlohmann::ordered_json::value_t::boolean: return Value::boolean(json.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value::integer(json.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      uint64_t u = json.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) fail(StatusCode::kOutOfRange, "integer {} is out of range", u);
      return Value::integer(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float: return Value::floating(json.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value::string(json.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      ValueList items;
      items.reserve(json.size());
      for (const auto& item : json) items.push_back(value_from_json(item, max_depth - 1));
      return Value::list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      auto dict = make_dict();
      for (auto it = json.begin(); it != json.end(); ++it) {
        dict->set(Value::string(it.key()), value_from_json(it.value(), max_depth - 1));
      }
      return Value::dict(std::move(dict));
    }
    default: fail(StatusCode::kInvalidArgument, "unsupported JSON value");
  }
}

}  // namespace radixlm::chat
