#include "chat/interpreter.h"

#include <algorithm>

#include "chat/builtins.h"
#include "chat/python_text.h"
#include "chat/template_error.h"
#include "chat/value_ops.h"

namespace radixlm::chat {
namespace {

// Python's slice.indices(length).
struct SliceBounds {
  int64_t start, stop, step;
};

SliceBounds slice_indices(const Value& start, const Value& stop, const Value& step, int64_t length) {
  auto as_index = [](const Value& v) -> std::optional<int64_t> {
    if (v.is_none() || v.is_undefined()) return std::nullopt;
    if (v.is_int() || v.is_bool()) return v.as_integer();
    fail_runtime("slice indices must be integers or None");
  };
  int64_t s = as_index(step).value_or(1);
  if (s == 0) fail_runtime("slice step cannot be zero");
  auto clamp = [&](std::optional<int64_t> v, int64_t default_value) {
    if (!v) return default_value;
    int64_t x = *v;
    if (x < 0) {
      x += length;
      if (x < 0) x = s < 0 ? -1 : 0;
    } else if (x >= length) {
      x = s < 0 ? length - 1 : length;
    }
    return x;
  };
  return {clamp(as_index(start), s < 0 ? length - 1 : 0), clamp(as_index(stop), s < 0 ? -1 : length), s};
}

template <typename T>
std::vector<T> apply_slice(const std::vector<T>& items, const SliceBounds& b) {
  std::vector<T> out;
  if (b.step > 0) {
    for (int64_t i = b.start; i < b.stop; i += b.step) out.push_back(items[static_cast<size_t>(i)]);
  } else {
    for (int64_t i = b.start; i > b.stop; i += b.step) out.push_back(items[static_cast<size_t>(i)]);
  }
  return out;
}

Value loop_attribute(Interpreter& in, const Value& loop_value, const std::string& name) {
  const LoopObject& loop = loop_value.loop_object();
  const auto& items = loop.items->items;
  int64_t n = static_cast<int64_t>(items.size());
  int64_t i = static_cast<int64_t>(loop.index0);
  if (name == "index") return Value::integer(i + 1);
  if (name == "index0") return Value::integer(i);
  if (name == "revindex") return Value::integer(n - i);
  if (name == "revindex0") return Value::integer(n - i - 1);
  if (name == "first") return Value::boolean(i == 0);
  if (name == "last") return Value::boolean(i == n - 1);
  if (name == "length") return Value::integer(n);
  if (name == "depth") return Value::integer(loop.depth0 + 1);
  if (name == "depth0") return Value::integer(loop.depth0);
  if (name == "previtem") {
    return i > 0 ? items[static_cast<size_t>(i - 1)] : Value::undefined("there is no previous item");
  }
  if (name == "nextitem") {
    return i + 1 < n ? items[static_cast<size_t>(i + 1)] : Value::undefined("there is no next item");
  }
  if (name == "cycle") {
    size_t index0 = loop.index0;
    return Value::callable("cycle", [index0](Interpreter&, CallArgs& args) {
      if (args.positional.empty()) fail_runtime("no items for cycling given");
      return args.positional[index0 % args.positional.size()];
    });
  }
  (void)in;
  return Value::undefined("'LoopContext object' has no attribute '" + name + "'");
}

std::string object_name(const Value& v) { return std::string("'") + python_type_name(v) + " object'"; }

}  // namespace

Interpreter::~Interpreter() {
  for (auto& ns : namespaces_) ns->attributes = make_dict();
}

Interpreter::DepthGuard::DepthGuard(Interpreter& in) : interpreter(in) {
  if (++interpreter.depth_ > interpreter.limits_.max_recursion_depth) {
    --interpreter.depth_;
    fail(StatusCode::kResourceExhausted, "template recursion depth exceeds the limit of {}",
         interpreter.limits_.max_recursion_depth);
  }
}

void Interpreter::count_iterations(uint64_t n) {
  iterations_ += n;
  if (iterations_ > limits_.max_loop_iterations) {
    fail(StatusCode::kResourceExhausted, "template loops exceed the limit of {} iterations",
         limits_.max_loop_iterations);
  }
}

void Interpreter::check_string_size(size_t bytes) {
  if (bytes > limits_.max_output_bytes) {
    fail(StatusCode::kResourceExhausted, "template builds a string of {} bytes, over the limit of {}", bytes,
         limits_.max_output_bytes);
  }
  work_bytes_ += bytes;
  if (work_bytes_ > limits_.max_work_bytes) {
    fail(StatusCode::kResourceExhausted, "template builds more than {} bytes of strings in one render",
         limits_.max_work_bytes);
  }
}

void Interpreter::check_collection_size(size_t items) {
  if (items > limits_.max_loop_iterations) {
    fail(StatusCode::kResourceExhausted, "template builds a list of {} items, over the limit of {}", items,
         limits_.max_loop_iterations);
  }
}

Value Interpreter::make_string(std::string text, bool safe) {
  check_string_size(text.size());
  return Value::string(std::move(text), safe);
}

const Value& Interpreter::check_depth(const Value& value) {
  if (value.depth() > kMaxValueDepth) {
    fail(StatusCode::kResourceExhausted, "template builds values nested more than {} levels deep", kMaxValueDepth);
  }
  return value;
}

Value Interpreter::make_namespace(std::shared_ptr<DictObject> attributes) {
  auto ns = std::make_shared<NamespaceObject>();
  ns->attributes = std::move(attributes);
  namespaces_.push_back(ns);
  return Value::namespace_object(std::move(ns));
}

void Interpreter::append_output(std::string& out, std::string_view text) {
  if (out.size() + text.size() > limits_.max_output_bytes) {
    fail(StatusCode::kResourceExhausted, "rendered output exceeds the limit of {} bytes", limits_.max_output_bytes);
  }
  work_bytes_ += text.size();
  if (work_bytes_ > limits_.max_work_bytes) {
    fail(StatusCode::kResourceExhausted, "template builds more than {} bytes of strings in one render",
         limits_.max_work_bytes);
  }
  out.append(text);
}

std::string Interpreter::render(const TemplateAst& ast, const DictObject& variables) {
  root_ = std::make_shared<Frame>();
  DictObject globals;
  install_globals(globals);
  for (const auto& [k, v] : globals.entries) root_->vars[k.as_string()] = v;
  for (const auto& [k, v] : variables.entries) {
    if (k.is_string()) root_->vars[k.as_string()] = v;
  }
  auto top = std::make_shared<Frame>();
  top->parent = root_;
  std::string out;
  exec_body(ast.body, top, out);
  return out;
}

Value Interpreter::lookup(const std::string& name, const FramePtr& frame) const {
  for (const Frame* f = frame.get(); f; f = f->parent.get()) {
    auto it = f->vars.find(name);
    if (it != f->vars.end()) return it->second;
  }
  return Value::undefined("'" + name + "' is undefined");
}

Interpreter::Flow Interpreter::exec_body(const StmtList& body, const FramePtr& frame, std::string& out) {
  for (const auto& stmt : body) {
    Flow flow = exec(*stmt, frame, out);
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::exec(const Stmt& stmt, const FramePtr& frame, std::string& out) {
  DepthGuard guard(*this);
  switch (stmt.kind) {
    case StmtKind::kData: append_output(out, stmt.text); return Flow::kNormal;
    case StmtKind::kOutput: {
      Value v = eval(*stmt.expr, frame);
      if (v.is_string()) {
        append_output(out, v.as_string());
      } else {
        append_output(out, to_python_str(v));
      }
      return Flow::kNormal;
    }
    case StmtKind::kIf:
      for (const auto& branch : stmt.branches) {
        if (truthy(eval(*branch.condition, frame))) return exec_body(branch.body, frame, out);
      }
      return exec_body(stmt.else_body, frame, out);
    case StmtKind::kFor: exec_for(stmt, frame, out); return Flow::kNormal;
    case StmtKind::kSet: exec_set(stmt, frame); return Flow::kNormal;
    case StmtKind::kSetBlock: {
      auto inner = std::make_shared<Frame>();
      inner->parent = frame;
      std::string captured;
      exec_body(stmt.body, inner, captured);
      Value v = apply_filter_chain(stmt.filters, Value::string(std::move(captured)), frame);
      frame->vars[stmt.targets[0]] = v;
      return Flow::kNormal;
    }
    case StmtKind::kFilterBlock: {
      auto inner = std::make_shared<Frame>();
      inner->parent = frame;
      std::string captured;
      exec_body(stmt.body, inner, captured);
      Value v = apply_filter_chain(stmt.filters, Value::string(std::move(captured)), frame);
      append_output(out, v.is_string() ? v.as_string() : to_python_str(v));
      return Flow::kNormal;
    }
    case StmtKind::kMacro: frame->vars[stmt.text] = make_macro(stmt, frame); return Flow::kNormal;
    case StmtKind::kCallBlock: {
      const Expr& call = *stmt.expr;
      Value callee = eval(*call.children[0], frame);
      CallArgs args = eval_args(call, 1, frame);
      args.keyword.emplace_back("caller", make_macro(stmt, frame));
      Value v = this->call(callee, args);
      append_output(out, v.is_string() ? v.as_string() : to_python_str(v));
      return Flow::kNormal;
    }
    case StmtKind::kWith: {
      auto inner = std::make_shared<Frame>();
      inner->parent = frame;
      for (const auto& [name, expr] : stmt.assignments) inner->vars[name] = eval(*expr, frame);
      return exec_body(stmt.body, inner, out);
    }
    case StmtKind::kScope: return exec_body(stmt.body, frame, out);
    case StmtKind::kBreak: return Flow::kBreak;
    case StmtKind::kContinue: return Flow::kContinue;
  }
  return Flow::kNormal;
}

void Interpreter::assign_targets(const Stmt& stmt, const Value& value, Frame& frame) {
  if (!stmt.unpack) {
    frame.vars[stmt.targets[0]] = value;
    return;
  }
  ValueList parts = iterate(value);
  if (parts.size() != stmt.targets.size()) {
    if (parts.size() < stmt.targets.size()) {
      fail_runtime("not enough values to unpack (expected {}, got {})", stmt.targets.size(), parts.size());
    }
    fail_runtime("too many values to unpack (expected {})", stmt.targets.size());
  }
  for (size_t i = 0; i < parts.size(); ++i) frame.vars[stmt.targets[i]] = parts[i];
}

void Interpreter::exec_for(const Stmt& stmt, const FramePtr& frame, std::string& out) {
  Value iterable = eval(*stmt.expr, frame);
  ValueList items = iterate(iterable);
  if (stmt.filter) {
    ValueList kept;
    for (const auto& item : items) {
      count_iterations(1);
      auto probe = std::make_shared<Frame>();
      probe->parent = frame;
      assign_targets(stmt, item, *probe);
      if (truthy(eval(*stmt.filter, probe))) kept.push_back(item);
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    auto inner = std::make_shared<Frame>();
    inner->parent = frame;
    exec_body(stmt.else_body, inner, out);
    return;
  }
  auto list = std::make_shared<ListObject>();
  list->items = std::move(items);
  std::shared_ptr<const ListObject> shared_list = list;
  for (size_t i = 0; i < shared_list->items.size(); ++i) {
    count_iterations(1);
    auto inner = std::make_shared<Frame>();
    inner->parent = frame;
    assign_targets(stmt, shared_list->items[i], *inner);
    auto loop = std::make_shared<LoopObject>();
    loop->items = shared_list;
    loop->index0 = i;
    inner->vars["loop"] = Value::loop(std::move(loop));
    if (exec_body(stmt.body, inner, out) == Flow::kBreak) break;
  }
}

void Interpreter::exec_set(const Stmt& stmt, const FramePtr& frame) {
  Value value = eval(*stmt.expr, frame);
  if (!stmt.attribute.empty()) {
    Value target = lookup(stmt.text, frame);
    if (!target.is_namespace()) fail_runtime("cannot assign attribute on non-namespace object");
    check_depth(value);
    target.namespace_object().attributes->set(Value::string(stmt.attribute), value);
    return;
  }
  assign_targets(stmt, value, *frame);
}

Value Interpreter::apply_filter_chain(const std::vector<ExprPtr>& chain, Value input, const FramePtr& frame) {
  for (const auto& filter : chain) {
    CallArgs args = eval_args(*filter, 1, frame);
    input = apply_filter(filter->name, input, args);
  }
  return input;
}

Value Interpreter::make_macro(const Stmt& definition, const FramePtr& frame) {
  std::weak_ptr<Frame> defining_frame = frame;
  const Stmt* def = &definition;
  std::string name = definition.kind == StmtKind::kMacro ? definition.text : "caller";
  std::string repr = definition.kind == StmtKind::kMacro ? "<Macro '" + name + "'>" : "<Macro anonymous>";
  return Value::callable(
      name, [def, defining_frame](Interpreter& in, CallArgs& args) { return in.invoke_macro(*def, defining_frame, args); },
      repr);
}

Value Interpreter::invoke_macro(const Stmt& def, const std::weak_ptr<Frame>& defining_frame, CallArgs& args) {
  DepthGuard guard(*this);
  const std::string name = def.kind == StmtKind::kMacro ? def.text : "caller";
  auto frame = std::make_shared<Frame>();
  frame->parent = defining_frame.lock();
  if (!frame->parent) frame->parent = root_;
  std::vector<std::pair<std::string, Value>> keywords = std::move(args.keyword);
  auto take_keyword = [&](const std::string& key) -> std::optional<Value> {
    for (auto it = keywords.begin(); it != keywords.end(); ++it) {
      if (it->first == key) {
        Value v = std::move(it->second);
        keywords.erase(it);
        return v;
      }
    }
    return std::nullopt;
  };
  for (size_t i = 0; i < def.params.size(); ++i) {
    const auto& param = def.params[i];
    std::optional<Value> keyword = take_keyword(param.name);
    if (i < args.positional.size()) {
      if (keyword) fail_runtime("macro '{}' got multiple values for argument '{}'", name, param.name);
      frame->vars[param.name] = args.positional[i];
    } else if (keyword) {
      frame->vars[param.name] = *keyword;
    } else if (param.default_value) {
      frame->vars[param.name] = eval(*param.default_value, frame);
    } else {
      frame->vars[param.name] = Value::undefined("parameter '" + param.name + "' was not provided");
    }
  }
  if (def.uses_caller || def.kind == StmtKind::kCallBlock) {
    std::optional<Value> caller = def.uses_caller ? take_keyword("caller") : std::nullopt;
    if (def.uses_caller) frame->vars["caller"] = caller ? *caller : Value::undefined("No caller defined");
  }
  if (args.positional.size() > def.params.size()) {
    if (!def.uses_varargs) {
      fail_runtime("macro '{}' takes not more than {} argument(s)", name, def.params.size());
    }
  }
  if (def.uses_varargs) {
    ValueList extra;
    for (size_t i = def.params.size(); i < args.positional.size(); ++i) extra.push_back(args.positional[i]);
    frame->vars["varargs"] = Value::list(std::move(extra), true);
  }
  if (def.uses_kwargs) {
    auto dict = make_dict();
    for (auto& [k, v] : keywords) dict->set(Value::string(k), v);
    frame->vars["kwargs"] = Value::dict(std::move(dict));
  } else if (!keywords.empty()) {
    fail_runtime("macro '{}' takes no keyword argument '{}'", name, keywords.front().first);
  }
  std::string out;
  exec_body(def.body, frame, out);
  return Value::string(std::move(out));
}

CallArgs Interpreter::eval_args(const Expr& expr, size_t first_child, const FramePtr& frame) {
  CallArgs args;
  for (size_t i = first_child; i < expr.children.size(); ++i) args.positional.push_back(eval(*expr.children[i], frame));
  for (const auto& [key, value] : expr.keywords) args.keyword.emplace_back(key, eval(*value, frame));
  return args;
}

Value Interpreter::call(const Value& callee, CallArgs& args) {
  if (callee.is_undefined()) fail_undefined(callee);
  if (!callee.is_callable()) fail_runtime("'{}' object is not callable", python_type_name(callee));
  return callee.callable_object().function(*this, args);
}

Value Interpreter::apply_filter(const std::string& name, const Value& input, CallArgs& args) {
  DepthGuard guard(*this);
  return run_filter(*this, name, input, args);
}

bool Interpreter::apply_test(const std::string& name, const Value& input, CallArgs& args) {
  return run_test(*this, name, input, args);
}

Value Interpreter::get_attr(const Value& object, const std::string& name) {
  switch (object.kind()) {
    case Value::Kind::kUndefined: fail_undefined(object);
    case Value::Kind::kNamespace: {
      const Value* v = object.namespace_object().attributes->find(Value::string(name));
      return v ? *v : Value::undefined("'Namespace object' has no attribute '" + name + "'");
    }
    case Value::Kind::kLoop: return loop_attribute(*this, object, name);
    default: break;
  }
  MethodAccess access = method_access(object, name);
  if (access == MethodAccess::kUnsafe) {
    return Value::undefined(
        "access to attribute '" + name + "' of '" + python_type_name(object) + "' object is unsafe.", true);
  }
  if (access == MethodAccess::kSafe) {
    Value receiver = object;
    return Value::callable(name, [receiver, name](Interpreter& in, CallArgs& args) {
      return call_method(in, receiver, name, args);
    });
  }
  if (object.is_dict()) {
    const Value* v = object.dict_object().find(Value::string(name));
    if (v) return *v;
  }
  return Value::undefined(object_name(object) + " has no attribute '" + name + "'");
}

Value Interpreter::get_item(const Value& object, const Value& key) {
  switch (object.kind()) {
    case Value::Kind::kUndefined: fail_undefined(object);
    case Value::Kind::kDict: {
      if (!key.is_list() && !key.is_dict()) {
        const Value* v = object.dict_object().find(key);
        if (v) return *v;
      }
      break;
    }
    case Value::Kind::kList:
      if (object.is_list() && (key.is_int() || key.is_bool())) {
        int64_t n = static_cast<int64_t>(object.items().size());
        int64_t i = key.as_integer();
        if (i < 0) i += n;
        if (i >= 0 && i < n) return object.items()[static_cast<size_t>(i)];
        return Value::undefined(object_name(object) + " has no element " + std::to_string(key.as_integer()));
      }
      break;
    case Value::Kind::kString:
      if (key.is_int() || key.is_bool()) {
        std::u32string cps = utf8_to_code_points(object.as_string());
        int64_t n = static_cast<int64_t>(cps.size());
        int64_t i = key.as_integer();
        if (i < 0) i += n;
        if (i >= 0 && i < n) {
          std::string s;
          append_utf8(s, cps[static_cast<size_t>(i)]);
          return Value::string(std::move(s), object.is_safe_string());
        }
        return Value::undefined(object_name(object) + " has no element " + std::to_string(key.as_integer()));
      }
      break;
    default: break;
  }
  if (key.is_string()) {
    if (object.is_namespace() || object.is_loop() || method_access(object, key.as_string()) != MethodAccess::kNone) {
      return get_attr(object, key.as_string());
    }
    return Value::undefined(object_name(object) + " has no attribute '" + key.as_string() + "'");
  }
  return Value::undefined(object_name(object) + " has no element " + to_python_repr(key));
}

Value Interpreter::eval_slice(const Expr& expr, const FramePtr& frame) {
  Value object = eval(*expr.children[0], frame);
  Value parts[3];
  bool folded = expr.negated;
  for (int i = 0; i < 3; ++i) parts[i] = expr.children[1 + i] ? eval(*expr.children[1 + i], frame) : Value::none();
  // jinja2 compiles slices to a plain Python subscript, so failures raise; but where its optimizer folds a
  // literal expression (marked by the parser) the slice went through environment.getitem: Undefined.
  bool bad_bounds = false;
  for (const auto& p : parts) bad_bounds |= !p.is_none() && !p.is_int() && !p.is_bool();
  if (object.is_undefined() || (!object.is_list() && !object.is_string()) || bad_bounds) {
    if (folded) return Value::undefined("slice of a literal failed");
    if (object.is_undefined()) fail_undefined(object);
    if (bad_bounds) fail_runtime("slice indices must be integers or None");
    fail_runtime("'{}' object is not subscriptable", python_type_name(object));
  }
  if (object.is_list()) {
    auto bounds = slice_indices(parts[0], parts[1], parts[2], static_cast<int64_t>(object.items().size()));
    return Value::list(apply_slice(object.items(), bounds), object.is_tuple());
  }
  if (object.is_string()) {
    std::u32string cps = utf8_to_code_points(object.as_string());
    std::vector<char32_t> v(cps.begin(), cps.end());
    auto bounds = slice_indices(parts[0], parts[1], parts[2], static_cast<int64_t>(v.size()));
    std::vector<char32_t> sliced = apply_slice(v, bounds);
    return Value::string(code_points_to_utf8(std::u32string(sliced.begin(), sliced.end())), object.is_safe_string());
  }
  fail_runtime("'{}' object is not subscriptable", python_type_name(object));
}

Value Interpreter::eval(const Expr& expr, const FramePtr& frame) {
  DepthGuard guard(*this);
  switch (expr.kind) {
    case ExprKind::kConst: return expr.constant;
    case ExprKind::kName: return lookup(expr.name, frame);
    case ExprKind::kList:
    case ExprKind::kTuple: {
      ValueList items;
      items.reserve(expr.children.size());
      for (const auto& child : expr.children) items.push_back(eval(*child, frame));
      Value v = Value::list(std::move(items), expr.kind == ExprKind::kTuple);
      check_depth(v);
      return v;
    }
    case ExprKind::kDict: {
      auto dict = make_dict();
      for (size_t i = 0; i + 1 < expr.children.size(); i += 2) {
        Value key = eval(*expr.children[i], frame);
        if (key.is_list() && !key.is_tuple()) fail_runtime("unhashable type: 'list'");
        if (key.is_dict()) fail_runtime("unhashable type: 'dict'");
        dict->set(std::move(key), eval(*expr.children[i + 1], frame));
      }
      Value v = Value::dict(std::move(dict));
      check_depth(v);
      return v;
    }
    case ExprKind::kGetAttr: return get_attr(eval(*expr.children[0], frame), expr.name);
    case ExprKind::kGetItem: {
      Value object = eval(*expr.children[0], frame);
      return get_item(object, eval(*expr.children[1], frame));
    }
    case ExprKind::kSlice: return eval_slice(expr, frame);
    case ExprKind::kCall: {
      Value callee = eval(*expr.children[0], frame);
      CallArgs args = eval_args(expr, 1, frame);
      return call(callee, args);
    }
    case ExprKind::kFilter: {
      Value input = eval(*expr.children[0], frame);
      CallArgs args = eval_args(expr, 1, frame);
      return apply_filter(expr.name, input, args);
    }
    case ExprKind::kTest: {
      Value input = eval(*expr.children[0], frame);
      CallArgs args = eval_args(expr, 1, frame);
      bool result = apply_test(expr.name, input, args);
      return Value::boolean(expr.negated ? !result : result);
    }
    case ExprKind::kNot: return Value::boolean(!truthy(eval(*expr.children[0], frame)));
    case ExprKind::kNegate:
    case ExprKind::kPlus: {
      Value v = eval(*expr.children[0], frame);
      if (v.is_undefined()) fail_undefined(v);
      if (v.is_float()) return Value::floating(expr.kind == ExprKind::kNegate ? -v.as_float() : v.as_float());
      if (v.is_int() || v.is_bool()) {
        int64_t i = v.as_integer();
        if (expr.kind == ExprKind::kPlus) return Value::integer(i);
        if (i == INT64_MIN) fail(StatusCode::kOutOfRange, "integer overflow");
        return Value::integer(-i);
      }
      fail_runtime("bad operand type for unary {}: '{}'", expr.kind == ExprKind::kNegate ? "-" : "+",
                   python_type_name(v));
    }
    case ExprKind::kBinary: {
      Value a = eval(*expr.children[0], frame);
      Value b = eval(*expr.children[1], frame);
      return binary_op(*this, expr.name, a, b);
    }
    case ExprKind::kAnd: {
      Value a = eval(*expr.children[0], frame);
      return truthy(a) ? eval(*expr.children[1], frame) : a;
    }
    case ExprKind::kOr: {
      Value a = eval(*expr.children[0], frame);
      return truthy(a) ? a : eval(*expr.children[1], frame);
    }
    case ExprKind::kCompare: {
      Value left = eval(*expr.children[0], frame);
      for (size_t i = 0; i < expr.compare_ops.size(); ++i) {
        Value right = eval(*expr.children[i + 1], frame);
        const std::string& op = expr.compare_ops[i];
        bool ok;
        if (op == "==") {
          ok = values_equal(left, right);
        } else if (op == "!=") {
          ok = !values_equal(left, right);
        } else if (op == "<") {
          ok = value_less(left, right);
        } else if (op == ">") {
          ok = value_less(right, left);
        } else if (op == "<=") {
          ok = !value_less(right, left);
        } else if (op == ">=") {
          ok = !value_less(left, right);
        } else if (op == "in") {
          ok = python_contains(right, left);
        } else {
          ok = !python_contains(right, left);
        }
        if (!ok) return Value::boolean(false);
        left = std::move(right);
      }
      return Value::boolean(true);
    }
    case ExprKind::kCondition: {
      if (truthy(eval(*expr.children[0], frame))) return eval(*expr.children[1], frame);
      if (expr.children[2]) return eval(*expr.children[2], frame);
      return Value::undefined("the inline if-expression evaluated to false and no else section was defined.");
    }
  }
  return Value::undefined();
}

}  // namespace radixlm::chat
