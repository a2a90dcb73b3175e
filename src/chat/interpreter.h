#pragma once
// Renders a parsed template: scopes as jinja2 has them (each loop iteration and macro call gets a fresh
// scope; `if` does not make one), Undefined as jinja2's default Undefined, and the sandbox's limits.

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "chat/ast.h"
#include "chat/value.h"

namespace radixlm::chat {

// Bounds a render so that a hostile template gets an error instead of exhausting memory, time or stack.
struct RenderLimits {
  size_t max_output_bytes = 16u << 20;      // also the largest string any expression may build
  uint64_t max_loop_iterations = 1000000;   // summed over all loops and list-walking filters of a render
  int max_recursion_depth = 1000;           // nested statements, expressions and macro calls together
  size_t max_work_bytes = size_t{1} << 30;  // bytes of strings built over the whole render
};

// Nesting depth allowed for values (JSON inputs and lists/dicts a template builds).
inline constexpr int kMaxValueDepth = 200;

class Interpreter {
 public:
  explicit Interpreter(const RenderLimits& limits) : limits_(limits) {}
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  // `variables` become the template's context (messages, tools, ...), above the globals.
  std::string render(const TemplateAst& ast, const DictObject& variables);

  // Services for filters, tests, methods and globals.
  Value call(const Value& callee, CallArgs& args);
  Value get_attr(const Value& object, const std::string& name);
  Value get_item(const Value& object, const Value& key);
  Value apply_filter(const std::string& name, const Value& input, CallArgs& args);
  bool apply_test(const std::string& name, const Value& input, CallArgs& args);
  // Counts `n` steps of iteration against the loop limit.
  void count_iterations(uint64_t n);
  // A new string value, checked against the size and work limits.
  Value make_string(std::string text, bool safe = false);
  void check_string_size(size_t bytes);
  void check_collection_size(size_t items);
  // A value a template built, checked against the nesting limit.
  const Value& check_depth(const Value& value);
  Value make_namespace(std::shared_ptr<DictObject> attributes);

 private:
  struct Frame {
    std::unordered_map<std::string, Value> vars;
    std::shared_ptr<Frame> parent;
  };
  using FramePtr = std::shared_ptr<Frame>;
  enum class Flow { kNormal, kBreak, kContinue };

  struct DepthGuard {
    explicit DepthGuard(Interpreter& in);
    ~DepthGuard() { --interpreter.depth_; }
    Interpreter& interpreter;
  };

  Flow exec_body(const StmtList& body, const FramePtr& frame, std::string& out);
  Flow exec(const Stmt& stmt, const FramePtr& frame, std::string& out);
  void exec_for(const Stmt& stmt, const FramePtr& frame, std::string& out);
  void exec_set(const Stmt& stmt, const FramePtr& frame);
  Value eval(const Expr& expr, const FramePtr& frame);
  Value eval_slice(const Expr& expr, const FramePtr& frame);
  CallArgs eval_args(const Expr& expr, size_t first_child, const FramePtr& frame);
  Value lookup(const std::string& name, const FramePtr& frame) const;
  void assign_targets(const Stmt& stmt, const Value& value, Frame& frame);
  Value apply_filter_chain(const std::vector<ExprPtr>& chain, Value input, const FramePtr& frame);
  Value make_macro(const Stmt& definition, const FramePtr& frame);
  Value invoke_macro(const Stmt& definition, const std::weak_ptr<Frame>& defining_frame, CallArgs& args);
  void append_output(std::string& out, std::string_view text);

  RenderLimits limits_;
  int depth_ = 0;
  uint64_t iterations_ = 0;
  size_t work_bytes_ = 0;
  FramePtr root_;
  // Namespaces can reference each other in cycles; emptying them all when the render ends frees them.
  std::vector<std::shared_ptr<NamespaceObject>> namespaces_;
};

}  // namespace radixlm::chat
