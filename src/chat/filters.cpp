// jinja2's built-in filters with transformers' tojson override, each following jinja2 3.1's definition
// (autoescape off). Filters that jinja2 returns as generators (map, select, ...) return lists here; printed
// directly they would differ, but templates always pass them on to list, join, length or a loop.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "chat/builtins.h"
#include "chat/interpreter.h"
#include "chat/python_text.h"
#include "chat/template_error.h"
#include "chat/value_ops.h"

namespace radixlm::chat {
namespace {

using FilterFunction = Value (*)(Interpreter&, const Value&, CallArgs&);

Value arg_or(const CallArgs& args, size_t position, std::string_view name, Value default_value) {
  const Value* v = args.find(position, name);
  return v ? *v : default_value;
}

bool bool_arg(const CallArgs& args, size_t position, std::string_view name, bool default_value) {
  const Value* v = args.find(position, name);
  return v ? truthy(*v) : default_value;
}

// soft_str: str(value), keeping Markup as Markup.
Value soft_str(const Value& v) {
  if (v.is_string()) return v;
  return Value::string(to_python_str(v));
}

ValueList walk(Interpreter& in, const Value& v) {
  ValueList items = iterate(v);
  in.count_iterations(items.size());
  return items;
}

// jinja2's make_attrgetter: "a.b.0" looks up item by item, integers for digit parts.
Value get_path(Interpreter& in, const Value& item, const std::string& path) {
  Value current = item;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    current = in.get_item(current, digits ? Value::integer(std::atoll(part.c_str())) : Value::string(part));
    if (dot == std::string::npos) return current;
    start = dot + 1;
  }
}

Value sort_key(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value::string(python_lower(v.as_string()));
  return v;
}

Value key_of(Interpreter& in, const Value& item, const Value& attribute, bool case_sensitive) {
  Value key = attribute.is_none() || attribute.is_undefined() ? item : get_path(in, item, to_python_str(attribute));
  return sort_key(key, case_sensitive);
}

Value filter_abs(Interpreter&, const Value& v, CallArgs&) {
  if (v.is_float()) return Value::floating(std::fabs(v.as_float()));
  if (v.is_int() || v.is_bool()) {
    if (v.as_integer() == INT64_MIN) fail(StatusCode::kOutOfRange, "integer overflow");
    return Value::integer(std::llabs(v.as_integer()));
  }
  fail_runtime("bad operand type for abs(): '{}'", python_type_name(v));
}

Value filter_attr(Interpreter& in, const Value& v, CallArgs& args) {
  std::string name = to_python_str(arg_or(args, 0, "name", Value::string("")));
  if (v.is_namespace() || v.is_loop() || method_access(v, name) != MethodAccess::kNone) return in.get_attr(v, name);
  if (v.is_undefined()) fail_undefined(v);
  return Value::undefined(std::string("'") + python_type_name(v) + " object' has no attribute '" + name + "'");
}

Value filter_batch(Interpreter& in, const Value& v, CallArgs& args) {
  Value count = arg_or(args, 0, "linecount", Value::integer(1));
  if (!count.is_int() || count.as_int() <= 0) fail_runtime("batch size must be a positive integer");
  Value fill = arg_or(args, 1, "fill_with", Value::none());
  size_t n = static_cast<size_t>(count.as_int());
  ValueList out, current;
  for (const auto& item : walk(in, v)) {
    current.push_back(item);
    if (current.size() == n) {
      out.push_back(Value::list(std::move(current)));
      current.clear();
    }
  }
  if (!current.empty()) {
    if (!args.find(1, "fill_with") || fill.is_none()) {
      out.push_back(Value::list(std::move(current)));
    } else {
      while (current.size() < n) current.push_back(fill);
      out.push_back(Value::list(std::move(current)));
    }
  }
  return in.check_depth(Value::sequence(std::move(out), SequenceKind::kGenerator));
}

Value filter_slice(Interpreter& in, const Value& v, CallArgs& args) {
  Value count = arg_or(args, 0, "slices", Value::integer(1));
  if (!count.is_int() || count.as_int() <= 0) fail_runtime("slice count must be a positive integer");
  const Value* fill = args.find(1, "fill_with");
  ValueList seq = walk(in, v);
  size_t slices = static_cast<size_t>(count.as_int());
  size_t per = seq.size() / slices, extra = seq.size() % slices, offset = 0;
  ValueList out;
  for (size_t i = 0; i < slices; ++i) {
    size_t start = offset + i * per;
    if (i < extra) ++offset;
    size_t end = offset + (i + 1) * per;
    ValueList part(seq.begin() + static_cast<long>(std::min(start, seq.size())), seq.begin() + static_cast<long>(std::min(end, seq.size())));
    if (fill && !fill->is_none() && i >= extra) part.push_back(*fill);
    out.push_back(Value::list(std::move(part)));
  }
  return in.check_depth(Value::sequence(std::move(out), SequenceKind::kGenerator));
}

Value filter_capitalize(Interpreter& in, const Value& v, CallArgs&) {
  CallArgs none;
  Value s = soft_str(v);
  return call_method(in, s, "capitalize", none);
}

Value filter_center(Interpreter& in, const Value& v, CallArgs& args) {
  CallArgs pass;
  pass.positional.push_back(arg_or(args, 0, "width", Value::integer(80)));
  return call_method(in, Value::string(to_python_str(v)), "center", pass);
}

Value filter_default(Interpreter&, const Value& v, CallArgs& args) {
  Value fallback = arg_or(args, 0, "default_value", Value::string(""));
  bool boolean = bool_arg(args, 1, "boolean", false);
  if (v.is_undefined() || (boolean && !truthy(v))) return fallback;
  return v;
}

Value filter_dictsort(Interpreter& in, const Value& v, CallArgs& args) {
  if (!v.is_dict()) fail_runtime("You can only sort by either a mapping");
  bool case_sensitive = bool_arg(args, 0, "case_sensitive", false);
  std::string by = to_python_str(arg_or(args, 1, "by", Value::string("key")));
  bool reverse = bool_arg(args, 2, "reverse", false);
  if (by != "key" && by != "value") fail_runtime("You can only sort by either \"key\" or \"value\"");
  ValueList pairs;
  for (const auto& [k, val] : v.dict_object().entries) pairs.push_back(Value::list({k, val}, true));
  in.count_iterations(pairs.size());
  size_t index = by == "key" ? 0 : 1;
  std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& a, const Value& b) {
    Value x = sort_key(a.items()[index], case_sensitive), y = sort_key(b.items()[index], case_sensitive);
    return reverse ? value_less(y, x) : value_less(x, y);
  });
  return Value::list(std::move(pairs));
}

Value filter_escape(Interpreter& in, const Value& v, CallArgs&) {
  if (v.is_safe_string()) return v;
  return in.make_string(html_escape(to_python_str(v)), true);
}

Value filter_forceescape(Interpreter& in, const Value& v, CallArgs&) {
  return in.make_string(html_escape(to_python_str(v)), true);
}

Value filter_first(Interpreter&, const Value& v, CallArgs&) {
  ValueList items = iterate(v);
  if (items.empty()) return Value::undefined("No first item, sequence was empty.");
  return items.front();
}

Value filter_last(Interpreter&, const Value& v, CallArgs&) {
  if (v.is_generator()) fail_runtime("'generator' object is not reversible");
  ValueList items = iterate(v);
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}

// Python's float(str): surrounding whitespace, underscores between digits, inf and nan.
std::optional<double> parse_python_float(const std::string& text) {
  std::string s = python_strip(text, nullptr, true, true);
  std::string cleaned;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_') {
      if (i == 0 || i + 1 == s.size() || !std::isdigit(static_cast<unsigned char>(s[i - 1])) ||
          !std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
        return std::nullopt;
      }
      continue;
    }
    cleaned.push_back(s[i]);
  }
  if (cleaned.empty()) return std::nullopt;
  std::string lower = python_lower(cleaned);
  std::string body = (lower[0] == '+' || lower[0] == '-') ? lower.substr(1) : lower;
  if (body == "inf" || body == "infinity" || body == "nan") {
    double d = body == "nan" ? NAN : INFINITY;
    return lower[0] == '-' ? -d : d;
  }
  for (char c : body) {
    if (!std::isdigit(static_cast<unsigned char>(c)) && c != '.' && c != 'e' && c != '+' && c != '-') return std::nullopt;
  }
  char* end = nullptr;
  double d = std::strtod(cleaned.c_str(), &end);
  if (end != cleaned.c_str() + cleaned.size()) return std::nullopt;
  return d;
}

// Python's int(str, base) for bases 2..36 and 0.
std::optional<int64_t> parse_python_int(const std::string& text, int64_t base) {
  std::string s = python_strip(text, nullptr, true, true);
  bool negative = false;
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
  auto has_prefix = [&](char p) {
    return i + 1 < s.size() && s[i] == '0' && (s[i + 1] == p || s[i + 1] == p - 32);
  };
  if ((base == 16 || base == 0) && has_prefix('x')) {
    base = 16;
    i += 2;
  } else if ((base == 8 || base == 0) && has_prefix('o')) {
    base = 8;
    i += 2;
  } else if ((base == 2 || base == 0) && has_prefix('b')) {
    base = 2;
    i += 2;
  } else if (base == 0) {
    base = 10;
  }
  if (base < 2 || base > 36 || i >= s.size()) return std::nullopt;
  int64_t value = 0;
  bool last_digit = false;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == '_' && last_digit) {
      last_digit = false;
      continue;
    }
    int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : std::isalpha(static_cast<unsigned char>(c)) ? (std::tolower(c) - 'a' + 10) : 99;
    if (d >= base) return std::nullopt;
    if (__builtin_mul_overflow(value, base, &value) || __builtin_add_overflow(value, d, &value)) {
      fail(StatusCode::kOutOfRange, "integer overflow (radixlm's integers are 64-bit)");
    }
    last_digit = true;
  }
  if (!last_digit) return std::nullopt;
  return negative ? -value : value;
}

Value float_to_int(double d) {
  if (std::isnan(d)) fail_runtime("cannot convert float NaN to integer");
  if (std::isinf(d)) fail_runtime("cannot convert float infinity to integer");
  if (std::fabs(d) >= 9.2e18) fail(StatusCode::kOutOfRange, "integer overflow (radixlm's integers are 64-bit)");
  return Value::integer(static_cast<int64_t>(std::trunc(d)));
}

Value filter_int(Interpreter&, const Value& v, CallArgs& args) {
  Value fallback = arg_or(args, 0, "default", Value::integer(0));
  Value base = arg_or(args, 1, "base", Value::integer(10));
  if (v.is_undefined()) fail_undefined(v);  // Undefined.__int__ raises UndefinedError, which int() does not catch
  if (v.is_int() || v.is_bool()) return Value::integer(v.as_integer());
  if (v.is_float()) return float_to_int(v.as_float());
  if (v.is_string()) {
    if (auto i = parse_python_int(v.as_string(), base.is_int() ? base.as_int() : 10)) return Value::integer(*i);
    if (auto d = parse_python_float(v.as_string())) return float_to_int(*d);
  }
  return fallback;
}

Value filter_float(Interpreter&, const Value& v, CallArgs& args) {
  Value fallback = arg_or(args, 0, "default", Value::floating(0.0));
  if (v.is_undefined()) fail_undefined(v);
  if (v.is_number()) return Value::floating(v.as_double());
  if (v.is_string()) {
    if (auto d = parse_python_float(v.as_string())) return Value::floating(*d);
  }
  return fallback;
}

Value filter_format(Interpreter& in, const Value& v, CallArgs& args) {
  if (!args.keyword.empty()) fail(StatusCode::kUnsupported, "format filter with keyword arguments is not supported");
  Value tuple = Value::list(args.positional, true);
  return in.make_string(percent_format(in, to_python_str(v), tuple), v.is_safe_string());
}

Value filter_indent(Interpreter& in, const Value& v, CallArgs& args) {
  Value width = arg_or(args, 0, "width", Value::integer(4));
  bool first = bool_arg(args, 1, "first", false);
  bool blank = bool_arg(args, 2, "blank", false);
  if (v.is_undefined()) fail_undefined(v);
  if (!v.is_string()) fail_runtime("unsupported operand type(s) for +=: '{}' and 'str'", python_type_name(v));
  std::string indention;
  if (width.is_string()) {
    indention = width.as_string();
  } else if (width.is_int() || width.is_bool()) {
    int64_t n = width.as_integer();
    in.check_string_size(n > 0 ? static_cast<size_t>(n) : 0);
    indention = std::string(n > 0 ? static_cast<size_t>(n) : 0, ' ');
  } else {
    fail_runtime("can't multiply sequence by non-int of type '{}'", python_type_name(width));
  }
  std::vector<std::string> lines = python_splitlines(v.as_string() + "\n", false);
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i > 0) rv += "\n" + indention;
      rv += lines[i];
      in.check_string_size(rv.size());
    }
  } else {
    rv = lines.empty() ? "" : lines[0];
    if (lines.size() > 1) {
      rv += "\n";
      for (size_t i = 1; i < lines.size(); ++i) {
        if (i > 1) rv += "\n";
        if (!lines[i].empty()) rv += indention;
        rv += lines[i];
        in.check_string_size(rv.size());
      }
    }
  }
  if (first) rv = indention + rv;
  return in.make_string(std::move(rv), v.is_safe_string());
}

Value filter_items(Interpreter& in, const Value& v, CallArgs&) {
  if (v.is_undefined()) return Value::list({});
  if (!v.is_dict()) fail_runtime("Can only get item pairs from a mapping.");
  ValueList out;
  for (const auto& [k, val] : v.dict_object().entries) out.push_back(Value::list({k, val}, true));
  in.count_iterations(out.size());
  return Value::sequence(std::move(out), SequenceKind::kGenerator);
}

Value filter_join(Interpreter& in, const Value& v, CallArgs& args) {
  std::string separator = to_python_str(arg_or(args, 0, "d", Value::string("")));
  Value attribute = arg_or(args, 1, "attribute", Value::none());
  std::string out;
  bool first = true;
  for (const auto& item : walk(in, v)) {
    if (!first) out += separator;
    first = false;
    out += to_python_str(attribute.is_none() ? item : get_path(in, item, to_python_str(attribute)));
    in.check_string_size(out.size());
  }
  return in.make_string(std::move(out));
}

Value filter_length(Interpreter&, const Value& v, CallArgs&) {
  return Value::integer(static_cast<int64_t>(python_len(v)));
}

Value filter_list(Interpreter& in, const Value& v, CallArgs&) { return Value::list(walk(in, v)); }

Value filter_lower(Interpreter& in, const Value& v, CallArgs&) {
  return in.make_string(python_lower(to_python_str(v)), v.is_safe_string());
}

Value filter_upper(Interpreter& in, const Value& v, CallArgs&) {
  return in.make_string(python_upper(to_python_str(v)), v.is_safe_string());
}

Value filter_title(Interpreter& in, const Value& v, CallArgs&) {
  // jinja2 splits before runs of "-", whitespace and opening brackets, and capitalises each piece.
  std::u32string cps = utf8_to_code_points(to_python_str(v));
  std::string out;
  bool at_start = true;
  for (char32_t c : cps) {
    bool separator = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || is_python_space(c);
    if (separator) {
      append_utf8(out, c);
      at_start = true;
    } else {
      append_utf8(out, at_start ? to_upper_code_point(c) : to_lower_code_point(c));
      at_start = false;
    }
  }
  return in.make_string(std::move(out));
}

Value filter_map(Interpreter& in, const Value& v, CallArgs& args) {
  // jinja2 maps nothing over a false value (`if value:`), so none|map(...) is empty rather than an error.
  ValueList items = truthy(v) ? walk(in, v) : ValueList{};
  ValueList out;
  const Value* attribute = nullptr;
  const Value* fallback = nullptr;
  for (const auto& [k, val] : args.keyword) {
    if (k == "attribute") attribute = &val;
    if (k == "default") fallback = &val;
  }
  if (attribute) {
    for (const auto& item : items) {
      Value r = get_path(in, item, to_python_str(*attribute));
      out.push_back(r.is_undefined() && fallback ? *fallback : r);
    }
    return Value::sequence(std::move(out), SequenceKind::kGenerator);
  }
  if (args.positional.empty()) fail_runtime("map requires a filter argument");
  std::string name = to_python_str(args.positional[0]);
  if (!has_filter(name)) fail_runtime("No filter named '{}'", name);
  for (const auto& item : items) {
    CallArgs pass;
    pass.positional.assign(args.positional.begin() + 1, args.positional.end());
    pass.keyword = args.keyword;
    out.push_back(in.apply_filter(name, item, pass));
  }
  return Value::sequence(std::move(out), SequenceKind::kGenerator);
}

Value select_impl(Interpreter& in, const Value& v, CallArgs& args, bool by_attribute, bool keep_matching) {
  ValueList items = truthy(v) ? walk(in, v) : ValueList{};  // jinja2's `if value:` guard
  size_t next = 0;
  std::string attribute;
  if (by_attribute) {
    if (args.positional.empty()) fail_runtime("selectattr requires an attribute");
    attribute = to_python_str(args.positional[next++]);
  }
  std::string test;
  bool has_test_name = next < args.positional.size();
  if (has_test_name) test = to_python_str(args.positional[next++]);
  if (has_test_name && !has_test(test)) fail_runtime("No test named '{}'", test);
  ValueList out;
  for (const auto& item : items) {
    Value subject = by_attribute ? get_path(in, item, attribute) : item;
    bool matched;
    if (has_test_name) {
      CallArgs pass;
      pass.positional.assign(args.positional.begin() + static_cast<long>(next), args.positional.end());
      pass.keyword = args.keyword;
      matched = in.apply_test(test, subject, pass);
    } else {
      matched = truthy(subject);
    }
    if (matched == keep_matching) out.push_back(item);
  }
  return Value::sequence(std::move(out), SequenceKind::kGenerator);
}

Value filter_select(Interpreter& in, const Value& v, CallArgs& args) { return select_impl(in, v, args, false, true); }
Value filter_reject(Interpreter& in, const Value& v, CallArgs& args) { return select_impl(in, v, args, false, false); }
Value filter_selectattr(Interpreter& in, const Value& v, CallArgs& args) { return select_impl(in, v, args, true, true); }
Value filter_rejectattr(Interpreter& in, const Value& v, CallArgs& args) { return select_impl(in, v, args, true, false); }

Value min_max(Interpreter& in, const Value& v, CallArgs& args, bool want_max) {
  bool case_sensitive = bool_arg(args, 0, "case_sensitive", false);
  Value attribute = arg_or(args, 1, "attribute", Value::none());
  ValueList items = walk(in, v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  Value best_key = key_of(in, items[0], attribute, case_sensitive);
  for (size_t i = 1; i < items.size(); ++i) {
    Value key = key_of(in, items[i], attribute, case_sensitive);
    if (want_max ? value_less(best_key, key) : value_less(key, best_key)) {
      best = i;
      best_key = key;
    }
  }
  return items[best];
}

Value filter_max(Interpreter& in, const Value& v, CallArgs& args) { return min_max(in, v, args, true); }
Value filter_min(Interpreter& in, const Value& v, CallArgs& args) { return min_max(in, v, args, false); }

Value filter_replace(Interpreter& in, const Value& v, CallArgs& args) {
  CallArgs pass;
  pass.positional.push_back(Value::string(to_python_str(arg_or(args, 0, "old", Value::string("")))));
  pass.positional.push_back(Value::string(to_python_str(arg_or(args, 1, "new", Value::string("")))));
  Value count = arg_or(args, 2, "count", Value::none());
  if (!count.is_none()) pass.positional.push_back(count);
  return call_method(in, Value::string(to_python_str(v)), "replace", pass);
}

Value filter_reverse(Interpreter& in, const Value& v, CallArgs&) {
  if (v.is_string()) {
    std::u32string cps = utf8_to_code_points(v.as_string());
    std::reverse(cps.begin(), cps.end());
    return Value::string(code_points_to_utf8(cps), v.is_safe_string());
  }
  ValueList items = walk(in, v);
  std::reverse(items.begin(), items.end());
  // reversed(list) is an iterator, like a generator; other iterables come back as a list.
  return v.is_list() ? Value::sequence(std::move(items), SequenceKind::kGenerator) : Value::list(std::move(items));
}

Value filter_round(Interpreter&, const Value& v, CallArgs& args) {
  Value precision_value = arg_or(args, 0, "precision", Value::integer(0));
  std::string method = to_python_str(arg_or(args, 1, "method", Value::string("common")));
  if (method != "common" && method != "ceil" && method != "floor") {
    fail_runtime("method must be common, ceil or floor");
  }
  if (!v.is_number()) fail_runtime("type {} doesn't define __round__ method", python_type_name(v));
  if (!precision_value.is_int() && !precision_value.is_bool()) fail_runtime("precision must be an integer");
  int64_t precision = precision_value.as_integer();
  if (method == "common") {
    if (!v.is_float()) {
      if (precision >= 0) return Value::integer(v.as_integer());
      fail(StatusCode::kUnsupported, "round() of an integer to negative precision is not supported");
    }
    double d = v.as_float();
    if (!std::isfinite(d) || precision > 300) return Value::floating(d);
    if (precision < 0) {
      double scale = std::pow(10.0, static_cast<double>(-precision));
      return Value::floating(std::nearbyint(d / scale) * scale);
    }
    // printf rounds the exact binary value half-to-even, as Python's round() does.
    char buf[512];
    std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(precision), d);
    return Value::floating(std::strtod(buf, nullptr));
  }
  double scale = std::pow(10.0, static_cast<double>(precision));
  double scaled = v.as_double() * scale;
  return Value::floating((method == "ceil" ? std::ceil(scaled) : std::floor(scaled)) / scale);
}

Value filter_safe(Interpreter&, const Value& v, CallArgs&) {
  return Value::string(to_python_str(v), true);
}

Value filter_sort(Interpreter& in, const Value& v, CallArgs& args) {
  bool reverse = bool_arg(args, 0, "reverse", false);
  bool case_sensitive = bool_arg(args, 1, "case_sensitive", false);
  Value attribute = arg_or(args, 2, "attribute", Value::none());
  ValueList items = walk(in, v);
  std::vector<std::pair<Value, Value>> keyed;
  for (auto& item : items) keyed.emplace_back(key_of(in, item, attribute, case_sensitive), item);
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    return reverse ? value_less(b.first, a.first) : value_less(a.first, b.first);
  });
  ValueList out;
  for (auto& [k, item] : keyed) out.push_back(std::move(item));
  return Value::list(std::move(out));
}

Value filter_string(Interpreter&, const Value& v, CallArgs&) { return soft_str(v); }

Value filter_sum(Interpreter& in, const Value& v, CallArgs& args) {
  Value attribute = arg_or(args, 0, "attribute", Value::none());
  Value total = arg_or(args, 1, "start", Value::integer(0));
  for (const auto& item : walk(in, v)) {
    total = binary_op(in, "+", total, attribute.is_none() ? item : get_path(in, item, to_python_str(attribute)));
  }
  return total;
}

Value filter_tojson(Interpreter& in, const Value& v, CallArgs& args) {
  JsonDumpOptions options;
  options.ensure_ascii = bool_arg(args, 0, "ensure_ascii", false);
  Value indent = arg_or(args, 1, "indent", Value::none());
  if (indent.is_int() || indent.is_bool()) {
    int64_t n = indent.as_integer();
    options.indent = std::string(n > 0 ? static_cast<size_t>(std::min<int64_t>(n, 1024)) : 0, ' ');
  } else if (indent.is_string()) {
    options.indent = indent.as_string();
  } else if (!indent.is_none()) {
    fail_runtime("indent must be an int or a string");
  }
  Value separators = arg_or(args, 2, "separators", Value::none());
  if (!separators.is_none()) {
    if (!separators.is_list() || separators.items().size() != 2 || !separators.items()[0].is_string() ||
        !separators.items()[1].is_string()) {
      fail_runtime("separators must be a pair of strings");
    }
    options.separators = std::make_pair(separators.items()[0].as_string(), separators.items()[1].as_string());
  }
  options.sort_keys = bool_arg(args, 3, "sort_keys", false);
  return in.make_string(to_json(v, options));
}

Value filter_trim(Interpreter& in, const Value& v, CallArgs& args) {
  Value s = soft_str(v);
  CallArgs pass;
  if (const Value* chars = args.find(0, "chars")) pass.positional.push_back(*chars);
  return call_method(in, s, "strip", pass);
}

Value filter_truncate(Interpreter& in, const Value& v, CallArgs& args) {
  Value length_value = arg_or(args, 0, "length", Value::integer(255));
  if (!length_value.is_int() && !length_value.is_bool()) fail_runtime("truncate length must be an integer");
  int64_t length = length_value.as_integer();
  if (!v.is_string()) {
    // jinja2 measures len() of whatever it is given and returns it unchanged when short enough.
    Value leeway = arg_or(args, 3, "leeway", Value::integer(5));
    if (static_cast<int64_t>(python_len(v)) <= length + (leeway.is_int() ? leeway.as_int() : 5)) return v;
    fail_runtime("'{}' object cannot be truncated", python_type_name(v));
  }
  std::u32string s = utf8_to_code_points(v.as_string());
  bool killwords = bool_arg(args, 1, "killwords", false);
  std::string end = to_python_str(arg_or(args, 2, "end", Value::string("...")));
  Value leeway_value = arg_or(args, 3, "leeway", Value::none());
  if (!leeway_value.is_none() && !leeway_value.is_int() && !leeway_value.is_bool()) fail_runtime("leeway must be an integer");
  int64_t leeway = leeway_value.is_none() ? 5 : leeway_value.as_integer();
  int64_t end_len = static_cast<int64_t>(code_point_count(end));
  if (length < end_len) fail_runtime("expected length >= {}, got {}", end_len, length);
  if (static_cast<int64_t>(s.size()) <= length + leeway) return Value::string(code_points_to_utf8(s));
  std::u32string head = s.substr(0, static_cast<size_t>(length - end_len));
  if (!killwords) {
    size_t space = head.rfind(U' ');
    if (space != std::u32string::npos) head.resize(space);
  }
  return in.make_string(code_points_to_utf8(head) + end);
}

Value filter_unique(Interpreter& in, const Value& v, CallArgs& args) {
  bool case_sensitive = bool_arg(args, 0, "case_sensitive", false);
  Value attribute = arg_or(args, 1, "attribute", Value::none());
  ValueList seen, out;
  for (const auto& item : walk(in, v)) {
    Value key = key_of(in, item, attribute, case_sensitive);
    bool found = false;
    for (const auto& s : seen) {
      if (values_equal(s, key)) {
        found = true;
        break;
      }
    }
    in.count_iterations(seen.size() / 64);
    if (!found) {
      seen.push_back(key);
      out.push_back(item);
    }
  }
  return Value::sequence(std::move(out), SequenceKind::kGenerator);
}

Value filter_wordcount(Interpreter&, const Value& v, CallArgs&) {
  int64_t words = 0;
  bool in_word = false;
  for (char32_t c : utf8_to_code_points(to_python_str(v))) {
    bool word_char = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                     (c >= 0x80 && !is_python_space(c) && c != 0x3000);
    if (word_char && !in_word) ++words;
    in_word = word_char;
  }
  return Value::integer(words);
}

// A filter and its Python signature after the value: calls with unknown keywords or too many arguments fail
// as they do in Python. Variadic filters (map, select, format, ...) check their own arguments.
struct FilterSpec {
  FilterFunction function;
  bool variadic;
  std::vector<const char*> params;
};

const std::map<std::string, FilterSpec, std::less<>>& filters() {
  static const std::map<std::string, FilterSpec, std::less<>> table = {
      {"abs", {filter_abs, false, {}}},
      {"attr", {filter_attr, false, {"name"}}},
      {"batch", {filter_batch, false, {"linecount", "fill_with"}}},
      {"capitalize", {filter_capitalize, false, {}}},
      {"center", {filter_center, false, {"width"}}},
      {"count", {filter_length, false, {}}},
      {"d", {filter_default, false, {"default_value", "boolean"}}},
      {"default", {filter_default, false, {"default_value", "boolean"}}},
      {"dictsort", {filter_dictsort, false, {"case_sensitive", "by", "reverse"}}},
      {"e", {filter_escape, false, {}}},
      {"escape", {filter_escape, false, {}}},
      {"first", {filter_first, false, {}}},
      {"float", {filter_float, false, {"default"}}},
      {"forceescape", {filter_forceescape, false, {}}},
      {"format", {filter_format, true, {}}},
      {"indent", {filter_indent, false, {"width", "first", "blank"}}},
      {"int", {filter_int, false, {"default", "base"}}},
      {"items", {filter_items, false, {}}},
      {"join", {filter_join, false, {"d", "attribute"}}},
      {"last", {filter_last, false, {}}},
      {"length", {filter_length, false, {}}},
      {"list", {filter_list, false, {}}},
      {"lower", {filter_lower, false, {}}},
      {"map", {filter_map, true, {}}},
      {"max", {filter_max, false, {"case_sensitive", "attribute"}}},
      {"min", {filter_min, false, {"case_sensitive", "attribute"}}},
      {"reject", {filter_reject, true, {}}},
      {"rejectattr", {filter_rejectattr, true, {}}},
      {"replace", {filter_replace, false, {"old", "new", "count"}}},
      {"reverse", {filter_reverse, false, {}}},
      {"round", {filter_round, false, {"precision", "method"}}},
      {"safe", {filter_safe, false, {}}},
      {"select", {filter_select, true, {}}},
      {"selectattr", {filter_selectattr, true, {}}},
      {"slice", {filter_slice, false, {"slices", "fill_with"}}},
      {"sort", {filter_sort, false, {"reverse", "case_sensitive", "attribute"}}},
      {"string", {filter_string, false, {}}},
      {"sum", {filter_sum, false, {"attribute", "start"}}},
      {"title", {filter_title, false, {}}},
      {"tojson", {filter_tojson, false, {"ensure_ascii", "indent", "separators", "sort_keys"}}},
      {"trim", {filter_trim, false, {"chars"}}},
      {"truncate", {filter_truncate, false, {"length", "killwords", "end", "leeway"}}},
      {"unique", {filter_unique, false, {"case_sensitive", "attribute"}}},
      {"upper", {filter_upper, false, {}}},
      {"wordcount", {filter_wordcount, false, {}}},
  };
  return table;
}

void check_signature(const std::string& name, const FilterSpec& spec, const CallArgs& args) {
  if (spec.variadic) return;
  if (args.positional.size() > spec.params.size()) {
    fail_runtime("filter '{}' takes at most {} argument(s), got {}", name, spec.params.size(), args.positional.size());
  }
  for (const auto& keyword : args.keyword) {
    const std::string& key = keyword.first;
    auto it = std::find_if(spec.params.begin(), spec.params.end(), [&key](const char* p) { return key == p; });
    if (it == spec.params.end()) fail_runtime("filter '{}' got an unexpected keyword argument '{}'", name, key);
    if (static_cast<size_t>(it - spec.params.begin()) < args.positional.size()) {
      fail_runtime("filter '{}' got multiple values for argument '{}'", name, key);
    }
  }
}

}  // namespace

bool has_filter(std::string_view name) { return filters().count(name) > 0; }

Value run_filter(Interpreter& in, const std::string& name, const Value& input, CallArgs& args) {
  auto it = filters().find(name);
  if (it == filters().end()) fail_runtime("no filter named '{}'", name);
  check_signature(name, it->second, args);
  return it->second.function(in, input, args);
}

}  // namespace radixlm::chat
