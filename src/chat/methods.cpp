// Python's methods on str, dict and list as templates call them (`message.content.startswith('x')`,
// `tool.get('name')`). The sandbox (jinja2's ImmutableSandboxedEnvironment) refuses the methods that mutate a
// list or dict; those resolve to an "unsafe" Undefined, which fails when called.

#include <set>

#include "chat/builtins.h"
#include "chat/interpreter.h"
#include "chat/python_text.h"
#include "chat/template_error.h"
#include "chat/value_ops.h"

namespace radixlm::chat {
namespace {

const std::set<std::string_view> kStrMethods = {
    "capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs", "find", "format",
    "format_map", "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier", "islower",
    "isnumeric", "isprintable", "isspace", "istitle", "isupper", "join", "ljust", "lower", "lstrip", "maketrans",
    "partition", "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit",
    "rstrip", "split", "splitlines", "startswith", "strip", "swapcase", "title", "translate", "upper", "zfill"};
const std::set<std::string_view> kDictMethods = {"clear", "copy", "fromkeys", "get", "items", "keys",
                                                 "pop", "popitem", "setdefault", "update", "values"};
const std::set<std::string_view> kDictUnsafe = {"clear", "pop", "popitem", "setdefault", "update"};
const std::set<std::string_view> kListMethods = {"append", "clear", "copy", "count", "extend", "index",
                                                 "insert", "pop", "remove", "reverse", "sort"};
const std::set<std::string_view> kListUnsafe = {"append", "clear", "extend", "insert", "pop", "remove",
                                                "reverse", "sort"};
// Markup overrides these to return Markup again.
const std::set<std::string_view> kMarkupPreserving = {"capitalize", "center", "ljust", "lower", "lstrip",
                                                      "replace", "rjust", "rstrip", "strip", "swapcase",
                                                      "title", "upper", "zfill"};

const std::string& string_arg(const CallArgs& args, size_t position, std::string_view name, const char* method) {
  const Value* v = args.find(position, name);
  if (!v) fail_runtime("{}() missing required argument", method);
  if (!v->is_string()) fail_runtime("{}() argument must be str, not {}", method, python_type_name(*v));
  return v->as_string();
}

std::optional<std::u32string> optional_chars(const CallArgs& args, const char* method) {
  const Value* v = args.find(0, "chars");
  if (!v || v->is_none()) return std::nullopt;
  if (!v->is_string()) fail_runtime("{} arg must be None or str", method);
  return utf8_to_code_points(v->as_string());
}

int64_t int_arg(const CallArgs& args, size_t position, std::string_view name, int64_t default_value) {
  const Value* v = args.find(position, name);
  if (!v || v->is_none()) return default_value;
  if (!v->is_int() && !v->is_bool()) fail_runtime("'{}' object cannot be interpreted as an integer", python_type_name(*v));
  return v->as_integer();
}

std::string python_title(std::string_view text) {
  std::string out;
  bool previous_cased = false;
  for (char32_t c : utf8_to_code_points(text)) {
    bool cased = to_upper_code_point(c) != c || to_lower_code_point(c) != c || c == 0xDF;
    if (cased) {
      append_utf8(out, previous_cased ? to_lower_code_point(c) : to_upper_code_point(c));
    } else {
      append_utf8(out, c);
    }
    previous_cased = cased;
  }
  return out;
}

std::string python_capitalize(std::string_view text) {
  std::u32string cps = utf8_to_code_points(text);
  std::string out;
  for (size_t i = 0; i < cps.size(); ++i) append_utf8(out, i == 0 ? to_upper_code_point(cps[i]) : to_lower_code_point(cps[i]));
  return out;
}

std::string python_replace(Interpreter& in, const std::string& s, const std::string& old, const std::string& repl,
                           int64_t count) {
  std::string out;
  if (old.empty()) {
    std::u32string cps = utf8_to_code_points(s);
    int64_t done = 0;
    for (size_t i = 0; i <= cps.size(); ++i) {
      if (count < 0 || done < count) {
        out += repl;
        ++done;
      }
      if (i < cps.size()) append_utf8(out, cps[i]);
      in.check_string_size(out.size());
    }
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t found = s.find(old, pos);
    if (found == std::string::npos) break;
    out.append(s, pos, found - pos);
    out += repl;
    pos = found + old.size();
    ++done;
    in.check_string_size(out.size() + (s.size() - pos));
  }
  out.append(s, pos);
  return out;
}

ValueList split_values(const std::vector<std::string>& parts) {
  ValueList out;
  for (const auto& p : parts) out.push_back(Value::string(p));
  return out;
}

std::vector<std::string> python_split(const std::string& s, const std::string& sep, int64_t max_split, bool from_right) {
  if (sep.empty()) fail_runtime("empty separator");
  std::vector<std::string> out;
  if (!from_right) {
    size_t pos = 0;
    while (max_split < 0 || static_cast<int64_t>(out.size()) < max_split) {
      size_t found = s.find(sep, pos);
      if (found == std::string::npos) break;
      out.push_back(s.substr(pos, found - pos));
      pos = found + sep.size();
    }
    out.push_back(s.substr(pos));
    return out;
  }
  size_t end = s.size();
  std::vector<std::string> reversed;
  while (max_split < 0 || static_cast<int64_t>(reversed.size()) < max_split) {
    if (end < sep.size()) break;
    size_t found = s.rfind(sep, end - sep.size());
    if (found == std::string::npos) break;
    reversed.push_back(s.substr(found + sep.size(), end - found - sep.size()));
    end = found;
  }
  reversed.push_back(s.substr(0, end));
  return std::vector<std::string>(reversed.rbegin(), reversed.rend());
}

bool affix_matches(const Value& affix, const std::string& s, bool prefix, const char* method) {
  auto one = [&](const Value& v) {
    if (!v.is_string()) fail_runtime("{} first arg must be str or a tuple of str, not {}", method, python_type_name(v));
    const std::string& a = v.as_string();
    if (a.size() > s.size()) return false;
    return prefix ? s.compare(0, a.size(), a) == 0 : s.compare(s.size() - a.size(), a.size(), a) == 0;
  };
  if (affix.is_tuple()) {
    for (const auto& v : affix.items()) {
      if (one(v)) return true;
    }
    return false;
  }
  return one(affix);
}

Value pad(Interpreter& in, const std::string& s, const CallArgs& args, int where) {
  int64_t width = int_arg(args, 0, "width", 0);
  std::string fill = " ";
  if (const Value* f = args.find(1, "fillchar")) {
    if (!f->is_string() || code_point_count(f->as_string()) != 1) fail_runtime("The fill character must be exactly one character long");
    fill = f->as_string();
  }
  int64_t len = static_cast<int64_t>(code_point_count(s));
  if (width <= len) return Value::string(s);
  in.check_string_size(static_cast<size_t>(width) * fill.size());
  int64_t total = width - len;
  int64_t left = where < 0 ? 0 : where > 0 ? total : total / 2 + (total & width & 1);
  std::string out;
  for (int64_t i = 0; i < left; ++i) out += fill;
  out += s;
  for (int64_t i = 0; i < total - left; ++i) out += fill;
  return Value::string(std::move(out));
}

// str.format with automatic or explicit field numbers and names; no format specs.
std::string python_str_format(const std::string& format, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    char c = format[i];
    if (c == '{' && i + 1 < format.size() && format[i + 1] == '{') {
      out.push_back('{');
      ++i;
    } else if (c == '}' && i + 1 < format.size() && format[i + 1] == '}') {
      out.push_back('}');
      ++i;
    } else if (c == '{') {
      size_t close = format.find('}', i);
      if (close == std::string::npos) fail_runtime("Single '{{' encountered in format string");
      std::string field = format.substr(i + 1, close - i - 1);
      if (field.find_first_of(":!.[") != std::string::npos) fail(StatusCode::kUnsupported, "format specs in str.format are not supported");
      const Value* v = nullptr;
      if (field.empty()) {
        v = auto_index < args.positional.size() ? &args.positional[auto_index] : nullptr;
        ++auto_index;
      } else if (std::isdigit(static_cast<unsigned char>(field[0]))) {
        size_t n = static_cast<size_t>(std::stoul(field));
        v = n < args.positional.size() ? &args.positional[n] : nullptr;
      } else {
        for (const auto& [k, val] : args.keyword) {
          if (k == field) v = &val;
        }
      }
      if (!v) fail_runtime("Replacement index {} out of range for positional args tuple", field);
      out += to_python_str(*v);
      i = close;
    } else if (c == '}') {
      fail_runtime("Single '}}' encountered in format string");
    } else {
      out.push_back(c);
    }
  }
  return out;
}

template <typename Pred>
bool all_chars(const std::string& s, Pred pred) {
  std::u32string cps = utf8_to_code_points(s);
  if (cps.empty()) return false;
  for (char32_t c : cps) {
    if (!pred(c)) return false;
  }
  return true;
}

bool is_ascii_alpha(char32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_cased_letter(char32_t c) { return to_upper_code_point(c) != c || to_lower_code_point(c) != c; }

Value string_method(Interpreter& in, const Value& receiver, const std::string& name, CallArgs& args) {
  const std::string& s = receiver.as_string();
  if (name == "upper") return in.make_string(python_upper(s));
  if (name == "lower") return in.make_string(python_lower(s));
  if (name == "title") return in.make_string(python_title(s));
  if (name == "capitalize") return in.make_string(python_capitalize(s));
  if (name == "swapcase") {
    std::string out;
    for (char32_t c : utf8_to_code_points(s)) {
      char32_t u = to_upper_code_point(c);
      append_utf8(out, u != c ? u : to_lower_code_point(c));
    }
    return in.make_string(std::move(out));
  }
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    auto chars = optional_chars(args, name.c_str());
    return Value::string(python_strip(s, chars ? &*chars : nullptr, name != "rstrip", name != "lstrip"));
  }
  if (name == "startswith" || name == "endswith") {
    const Value* affix = args.find(0, "prefix");
    if (!affix) fail_runtime("{}() takes at least 1 argument (0 given)", name);
    return Value::boolean(affix_matches(*affix, s, name == "startswith", name.c_str()));
  }
  if (name == "split" || name == "rsplit") {
    const Value* sep = args.find(0, "sep");
    int64_t max_split = int_arg(args, 1, "maxsplit", -1);
    if (!sep || sep->is_none()) {
      if (name == "rsplit" && max_split >= 0) fail(StatusCode::kUnsupported, "rsplit() with maxsplit and no separator is not supported");
      return Value::list(split_values(python_split_whitespace(s, max_split)));
    }
    if (!sep->is_string()) fail_runtime("must be str or None, not {}", python_type_name(*sep));
    return Value::list(split_values(python_split(s, sep->as_string(), max_split, name == "rsplit")));
  }
  if (name == "splitlines") {
    const Value* keep = args.find(0, "keepends");
    return Value::list(split_values(python_splitlines(s, keep && truthy(*keep))));
  }
  if (name == "replace") {
    const std::string& old = string_arg(args, 0, "old", "replace");
    const std::string& repl = string_arg(args, 1, "new", "replace");
    return in.make_string(python_replace(in, s, old, repl, int_arg(args, 2, "count", -1)));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    const std::string& sub = string_arg(args, 0, "sub", name.c_str());
    if (args.positional.size() > 1) fail(StatusCode::kUnsupported, "{}() with start/end is not supported", name);
    if (name == "count") {
      if (sub.empty()) return Value::integer(static_cast<int64_t>(code_point_count(s)) + 1);
      int64_t n = 0;
      for (size_t pos = s.find(sub); pos != std::string::npos; pos = s.find(sub, pos + sub.size())) ++n;
      return Value::integer(n);
    }
    size_t pos = (name == "find" || name == "index") ? s.find(sub) : s.rfind(sub);
    if (pos == std::string::npos) {
      if (name == "index" || name == "rindex") fail_runtime("substring not found");
      return Value::integer(-1);
    }
    return Value::integer(static_cast<int64_t>(code_point_count(std::string_view(s).substr(0, pos))));
  }
  if (name == "join") {
    const Value* iterable = args.find(0, "iterable");
    if (!iterable) fail_runtime("join() takes exactly one argument (0 given)");
    std::string out;
    bool first = true;
    for (const auto& item : iterate(*iterable)) {
      if (!item.is_string()) fail_runtime("sequence item: expected str instance, {} found", python_type_name(item));
      if (!first) out += s;
      first = false;
      out += item.as_string();
      in.check_string_size(out.size());
    }
    return in.make_string(std::move(out));
  }
  if (name == "removeprefix" || name == "removesuffix") {
    const std::string& a = string_arg(args, 0, "prefix", name.c_str());
    bool prefix = name == "removeprefix";
    if (a.size() <= s.size() && (prefix ? s.compare(0, a.size(), a) == 0 : s.compare(s.size() - a.size(), a.size(), a) == 0)) {
      return Value::string(prefix ? s.substr(a.size()) : s.substr(0, s.size() - a.size()));
    }
    return Value::string(s);
  }
  if (name == "partition" || name == "rpartition") {
    const std::string& sep = string_arg(args, 0, "sep", name.c_str());
    if (sep.empty()) fail_runtime("empty separator");
    size_t pos = name == "partition" ? s.find(sep) : s.rfind(sep);
    if (pos == std::string::npos) {
      return name == "partition" ? Value::list({Value::string(s), Value::string(""), Value::string("")}, true)
                                 : Value::list({Value::string(""), Value::string(""), Value::string(s)}, true);
    }
    return Value::list({Value::string(s.substr(0, pos)), Value::string(sep), Value::string(s.substr(pos + sep.size()))}, true);
  }
  if (name == "center") return pad(in, s, args, 0);
  if (name == "ljust") return pad(in, s, args, -1);
  if (name == "rjust") return pad(in, s, args, 1);
  if (name == "zfill") {
    int64_t width = int_arg(args, 0, "width", 0);
    int64_t len = static_cast<int64_t>(code_point_count(s));
    if (width <= len) return Value::string(s);
    in.check_string_size(static_cast<size_t>(width));
    size_t sign = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
    return Value::string(s.substr(0, sign) + std::string(static_cast<size_t>(width - len), '0') + s.substr(sign));
  }
  if (name == "format") return in.make_string(python_str_format(s, args));
  if (name == "isdigit" || name == "isdecimal" || name == "isnumeric") {
    return Value::boolean(all_chars(s, [](char32_t c) { return c >= '0' && c <= '9'; }));
  }
  if (name == "isalpha") return Value::boolean(all_chars(s, [](char32_t c) { return is_ascii_alpha(c) || (c >= 0x80 && is_cased_letter(c)); }));
  if (name == "isalnum") {
    return Value::boolean(all_chars(s, [](char32_t c) { return is_ascii_alpha(c) || (c >= '0' && c <= '9') || (c >= 0x80 && is_cased_letter(c)); }));
  }
  if (name == "isspace") return Value::boolean(all_chars(s, is_python_space));
  if (name == "isascii") {
    for (char c : s) {
      if (static_cast<unsigned char>(c) >= 0x80) return Value::boolean(false);
    }
    return Value::boolean(true);
  }
  if (name == "islower" || name == "isupper") {
    bool any_cased = false;
    for (char32_t c : utf8_to_code_points(s)) {
      if (!is_cased_letter(c)) continue;
      any_cased = true;
      bool lower = to_upper_code_point(c) != c;
      if (lower != (name == "islower")) return Value::boolean(false);
    }
    return Value::boolean(any_cased);
  }
  fail(StatusCode::kUnsupported, "str.{}() is not supported", name);
}

Value dict_method(const Value& receiver, const std::string& name, CallArgs& args) {
  const DictObject& dict = receiver.dict_object();
  if (name == "get") {
    const Value* key = args.find(0, "key");
    if (!key) fail_runtime("get expected at least 1 argument, got 0");
    const Value* found = (key->is_list() && !key->is_tuple()) || key->is_dict() ? nullptr : dict.find(*key);
    if (found) return *found;
    const Value* fallback = args.find(1, "default");
    return fallback ? *fallback : Value::none();
  }
  if (name == "items") {
    ValueList out;
    for (const auto& [k, v] : dict.entries) out.push_back(Value::list({k, v}, true));
    return Value::sequence(std::move(out), SequenceKind::kDictItems);
  }
  if (name == "keys" || name == "values") {
    ValueList out;
    for (const auto& [k, v] : dict.entries) out.push_back(name == "keys" ? k : v);
    return Value::sequence(std::move(out), name == "keys" ? SequenceKind::kDictKeys : SequenceKind::kDictValues);
  }
  if (name == "copy") {
    auto copy = std::make_shared<DictObject>(dict);
    return Value::dict(std::move(copy));
  }
  fail(StatusCode::kUnsupported, "dict.{}() is not supported", name);
}

Value list_method(const Value& receiver, const std::string& name, CallArgs& args) {
  const ValueList& items = receiver.items();
  if (name == "count" || name == "index") {
    const Value* x = args.find(0, "value");
    if (!x) fail_runtime("{}() takes exactly one argument (0 given)", name);
    int64_t n = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      if (values_equal(items[i], *x)) {
        if (name == "index") return Value::integer(static_cast<int64_t>(i));
        ++n;
      }
    }
    if (name == "index") fail_runtime("{} is not in list", to_python_repr(*x));
    return Value::integer(n);
  }
  if (name == "copy") return Value::list(items, receiver.is_tuple());
  fail(StatusCode::kUnsupported, "list.{}() is not supported", name);
}

}  // namespace

MethodAccess method_access(const Value& receiver, std::string_view name) {
  if (receiver.is_string()) return kStrMethods.count(name) ? MethodAccess::kSafe : MethodAccess::kNone;
  if (receiver.is_dict()) {
    if (!kDictMethods.count(name)) return MethodAccess::kNone;
    return kDictUnsafe.count(name) ? MethodAccess::kUnsafe : MethodAccess::kSafe;
  }
  if (receiver.is_list()) {
    if (receiver.is_tuple()) return (name == "count" || name == "index") ? MethodAccess::kSafe : MethodAccess::kNone;
    if (!kListMethods.count(name)) return MethodAccess::kNone;
    return kListUnsafe.count(name) ? MethodAccess::kUnsafe : MethodAccess::kSafe;
  }
  return MethodAccess::kNone;
}

Value call_method(Interpreter& in, const Value& receiver, const std::string& name, CallArgs& args) {
  if (receiver.is_string()) {
    Value v = string_method(in, receiver, name, args);
    if (receiver.is_safe_string() && v.is_string() && kMarkupPreserving.count(name)) {
      return Value::string(v.as_string(), true);
    }
    return v;
  }
  if (receiver.is_dict()) return dict_method(receiver, name, args);
  return list_method(receiver, name, args);
}

}  // namespace radixlm::chat
