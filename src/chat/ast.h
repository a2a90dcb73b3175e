#pragma once
// The parsed template: expressions and statements as plain structs, one kind tag each.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/value.h"

namespace radixlm::chat {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtList = std::vector<std::unique_ptr<Stmt>>;

enum class ExprKind {
  kConst,      // constant
  kName,       // name
  kList,       // children = items
  kTuple,      // children = items
  kDict,       // children = key, value, key, value...
  kGetAttr,    // children[0].name
  kGetItem,    // children[0][children[1]]
  kSlice,      // children[0][children[1]:children[2]:children[3]], missing parts are null
  kCall,       // children[0](children[1..], keywords)
  kFilter,     // children[0] | name(children[1..], keywords); children[0] is null inside filter blocks
  kTest,       // children[0] is [not] name(children[1..], keywords)
  kNot,        // not children[0]
  kNegate,     // -children[0]
  kPlus,       // +children[0]
  kBinary,     // children[0] op children[1]: + - * / // % ** ~
  kAnd,
  kOr,
  kCompare,    // children[0] ops[0] children[1] ops[1] children[2]...  (== != < <= > >= in notin)
  kCondition,  // children[1] if children[0] else children[2] (children[2] may be null)
};

struct Expr {
  ExprKind kind;
  int line = 0;
  Value constant;
  std::string name;  // variable, attribute, filter, test or operator
  std::vector<ExprPtr> children;
  std::vector<std::pair<std::string, ExprPtr>> keywords;
  std::vector<std::string> compare_ops;
  bool negated = false;  // `is not`; on a slice: jinja2's optimizer folds it (see parser.cpp)
};

enum class StmtKind {
  kData,         // text
  kOutput,       // {{ expr }}
  kIf,           // branches
  kFor,          // targets in expr [if filter] body [else else_body]
  kSet,          // targets = expr, or namespace_attr assignment
  kSetBlock,     // {% set x %}body{% endset %} with optional filters
  kMacro,        // macro name(params) body
  kCallBlock,    // {% call(params) expr %}body{% endcall %}
  kFilterBlock,  // {% filter f %}body{% endfilter %}
  kWith,         // {% with a = 1 %}body{% endwith %}
  kBreak,
  kContinue,
  kScope,        // a body rendered as is (transformers' {% generation %} marker)
};

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // null when required
};

struct IfBranch {
  ExprPtr condition;
  StmtList body;
};

struct Stmt {
  StmtKind kind;
  int line = 0;
  std::string text;                   // kData; macro name; namespace name for `set ns.attr`
  std::string attribute;              // `set ns.attr`
  std::vector<std::string> targets;   // loop / set / with targets
  bool unpack = false;                // targets were written as a tuple
  ExprPtr expr;                       // output, loop iterable, set value, call expression
  ExprPtr filter;                     // for-loop `if` filter
  std::vector<ExprPtr> filters;       // filter chain of set/filter blocks (operands null)
  std::vector<IfBranch> branches;     // if/elif
  StmtList body;
  StmtList else_body;
  std::vector<MacroParam> params;     // macro / call-block parameters
  std::vector<std::pair<std::string, ExprPtr>> assignments;  // with
  bool uses_varargs = false;
  bool uses_kwargs = false;
  bool uses_caller = false;
};

struct TemplateAst {
  StmtList body;
};

}  // namespace radixlm::chat
