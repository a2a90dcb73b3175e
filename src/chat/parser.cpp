#include "chat/parser.h"

#include <set>

#include "chat/builtins.h"
#include "chat/lexer.h"
#include "chat/template_error.h"

namespace radixlm::chat {
namespace {

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  TemplateAst parse() {
    TemplateAst ast;
    ast.body = parse_body({});
    if (current().type != TokenType::kEof) syntax_error("unexpected tag '{}'", current().text);
    return ast;
  }

 private:
  // ---- token helpers -------------------------------------------------------------------------------------
  const Token& current() const { return tokens_[pos_]; }
  const Token& peek(size_t ahead = 1) const {
    return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
  }
  void next() {
    if (pos_ + 1 < tokens_.size()) ++pos_;
  }
  bool is_op(std::string_view op) const { return current().type == TokenType::kOperator && current().text == op; }
  bool is_name(std::string_view name) const { return current().type == TokenType::kName && current().text == name; }
  bool skip_op(std::string_view op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(std::string_view name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }
  template <typename... Args>
  [[noreturn]] void syntax_error(fmt::format_string<Args...> format, Args&&... args) const {
    fail(StatusCode::kInvalidArgument, "template syntax error at line {}: {}", current().line,
         fmt::format(format, std::forward<Args>(args)...));
  }
  static std::string describe(const Token& t) {
    switch (t.type) {
      case TokenType::kEof: return "end of template";
      case TokenType::kBlockEnd: return "end of statement block";
      case TokenType::kVariableEnd: return "end of print statement";
      case TokenType::kData: return "template data";
      default: return "'" + t.text + "'";
    }
  }
  void expect_op(std::string_view op) {
    if (!skip_op(op)) syntax_error("expected '{}', got {}", op, describe(current()));
  }
  std::string expect_name() {
    if (current().type != TokenType::kName) syntax_error("expected a name, got {}", describe(current()));
    std::string name = current().text;
    next();
    return name;
  }
  void expect_block_end() {
    if (current().type != TokenType::kBlockEnd) syntax_error("expected end of statement block, got {}", describe(current()));
    next();
  }

  struct NestingGuard {
    explicit NestingGuard(Parser& p) : parser(p) {
      if (++parser.nesting_ > kMaxParseNesting) {
        parser.syntax_error("template nests more than {} levels deep", kMaxParseNesting);
      }
    }
    ~NestingGuard() { --parser.nesting_; }
    Parser& parser;
  };

  ExprPtr make(ExprKind kind) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = current().line;
    return e;
  }

  // ---- statements ----------------------------------------------------------------------------------------
  // Parses until a block tag whose name is in `end_names`; leaves the stream at that name.
  StmtList parse_body(const std::set<std::string>& end_names) {
    NestingGuard guard(*this);
    StmtList body;
    while (true) {
      const Token& t = current();
      if (t.type == TokenType::kEof) {
        if (!end_names.empty()) syntax_error("unexpected end of template, expected '{}'", *end_names.begin());
        return body;
      }
      if (t.type == TokenType::kData) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kData;
        s->line = t.line;
        s->text = t.text;
        body.push_back(std::move(s));
        next();
      } else if (t.type == TokenType::kVariableBegin) {
        next();
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kOutput;
        s->line = t.line;
        s->expr = parse_tuple(true, {});
        mark_folds(*s->expr, true);
        if (current().type != TokenType::kVariableEnd) {
          syntax_error("expected end of print statement, got {}", describe(current()));
        }
        next();
        body.push_back(std::move(s));
      } else if (t.type == TokenType::kBlockBegin) {
        next();
        if (current().type == TokenType::kName && end_names.count(current().text)) return body;
        body.push_back(parse_statement());
      } else {
        syntax_error("unexpected {}", describe(t));
      }
    }
  }

  // Consumes `{% name` ... already positioned at the end name; checks it and the closing `%}`.
  void end_block(std::string_view name) {
    if (!skip_name(name)) syntax_error("expected '{}'", name);
    expect_block_end();
  }

  std::unique_ptr<Stmt> parse_statement() {
    if (current().type != TokenType::kName) syntax_error("tag name expected");
    std::string keyword = current().text;
    auto s = std::make_unique<Stmt>();
    s->line = current().line;
    next();
    if (keyword == "if") return parse_if(std::move(s));
    if (keyword == "for") return parse_for(std::move(s));
    if (keyword == "set") return parse_set(std::move(s));
    if (keyword == "macro") return parse_macro(std::move(s));
    if (keyword == "call") return parse_call_block(std::move(s));
    if (keyword == "filter") {
      s->kind = StmtKind::kFilterBlock;
      s->filters = parse_filter_chain();
      expect_block_end();
      s->body = parse_body({"endfilter"});
      end_block("endfilter");
      return s;
    }
    if (keyword == "with") {
      s->kind = StmtKind::kWith;
      while (current().type != TokenType::kBlockEnd) {
        if (!s->assignments.empty()) expect_op(",");
        std::string target = expect_name();
        expect_op("=");
        s->assignments.emplace_back(target, parse_expression(true));
      }
      expect_block_end();
      s->body = parse_body({"endwith"});
      end_block("endwith");
      return s;
    }
    if (keyword == "generation") {
      s->kind = StmtKind::kScope;
      expect_block_end();
      s->body = parse_body({"endgeneration"});
      end_block("endgeneration");
      return s;
    }
    if (keyword == "break" || keyword == "continue") {
      if (loop_depth_ == 0) syntax_error("'{}' outside loop", keyword);
      s->kind = keyword == "break" ? StmtKind::kBreak : StmtKind::kContinue;
      expect_block_end();
      return s;
    }
    if (keyword == "include" || keyword == "import" || keyword == "from" || keyword == "extends" ||
        keyword == "block") {
      fail(StatusCode::kUnsupported, "line {}: '{}' needs other template files, which chat templates cannot load",
           s->line, keyword);
    }
    syntax_error("encountered unknown tag '{}'", keyword);
  }

  std::unique_ptr<Stmt> parse_if(std::unique_ptr<Stmt> s) {
    s->kind = StmtKind::kIf;
    while (true) {
      IfBranch branch;
      branch.condition = parse_tuple(false, {});
      mark_folds(*branch.condition, false);
      expect_block_end();
      branch.body = parse_body({"elif", "else", "endif"});
      s->branches.push_back(std::move(branch));
      if (skip_name("elif")) continue;
      if (skip_name("else")) {
        expect_block_end();
        s->else_body = parse_body({"endif"});
      }
      end_block("endif");
      return s;
    }
  }

  // Assignment targets: a name or a tuple of names (for `for` and `set`).
  void parse_targets(Stmt& s) {
    bool parenthesized = skip_op("(");
    while (true) {
      s.targets.push_back(expect_name());
      if (!skip_op(",")) break;
      s.unpack = true;
      if (current().type != TokenType::kName) break;
    }
    if (parenthesized) {
      expect_op(")");
      s.unpack = true;
    }
  }

  std::unique_ptr<Stmt> parse_for(std::unique_ptr<Stmt> s) {
    s->kind = StmtKind::kFor;
    parse_targets(*s);
    if (!skip_name("in")) syntax_error("expected 'in' in for loop");
    s->expr = parse_tuple(false, {"recursive"});
    mark_folds(*s->expr, false);
    if (skip_name("if")) {
      s->filter = parse_expression(true);
      mark_folds(*s->filter, false);
    }
    if (is_name("recursive")) fail(StatusCode::kUnsupported, "line {}: recursive for loops are not supported", s->line);
    expect_block_end();
    ++loop_depth_;
    s->body = parse_body({"endfor", "else"});
    --loop_depth_;
    if (skip_name("else")) {
      expect_block_end();
      s->else_body = parse_body({"endfor"});
    }
    end_block("endfor");
    return s;
  }

  std::unique_ptr<Stmt> parse_set(std::unique_ptr<Stmt> s) {
    if (current().type == TokenType::kName && peek().type == TokenType::kOperator && peek().text == "." &&
        peek(2).type == TokenType::kName) {
      s->text = expect_name();
      next();
      s->attribute = expect_name();
      s->targets.push_back(s->text);
    } else {
      parse_targets(*s);
    }
    if (skip_op("=")) {
      s->kind = StmtKind::kSet;
      s->expr = parse_tuple(true, {});
      mark_folds(*s->expr, false);
      expect_block_end();
      return s;
    }
    if (s->unpack) syntax_error("block set takes a single name");
    s->kind = StmtKind::kSetBlock;
    if (is_op("|")) s->filters = parse_filter_chain();
    expect_block_end();
    s->body = parse_body({"endset"});
    end_block("endset");
    return s;
  }

  void parse_params(Stmt& s) {
    expect_op("(");
    while (!is_op(")")) {
      if (!s.params.empty()) expect_op(",");  // jinja2 allows no trailing comma in a signature
      MacroParam param;
      param.name = expect_name();
      if (skip_op("=")) {
        param.default_value = parse_expression(true);
      } else if (!s.params.empty() && s.params.back().default_value) {
        syntax_error("non-default argument follows default argument");
      }
      s.params.push_back(std::move(param));
    }
    expect_op(")");
  }

  void note_special_names(Stmt& s, const std::set<std::string>& names) {
    s.uses_varargs = names.count("varargs") > 0;
    s.uses_kwargs = names.count("kwargs") > 0;
    s.uses_caller = names.count("caller") > 0;
  }

  std::unique_ptr<Stmt> parse_macro(std::unique_ptr<Stmt> s) {
    s->kind = StmtKind::kMacro;
    s->text = expect_name();
    parse_params(*s);
    expect_block_end();
    std::set<std::string> names;
    name_collectors_.push_back(&names);
    int saved_loop_depth = loop_depth_;
    loop_depth_ = 0;
    s->body = parse_body({"endmacro"});
    loop_depth_ = saved_loop_depth;
    name_collectors_.pop_back();
    for (const auto& p : s->params) names.erase(p.name);
    note_special_names(*s, names);
    end_block("endmacro");
    return s;
  }

  std::unique_ptr<Stmt> parse_call_block(std::unique_ptr<Stmt> s) {
    s->kind = StmtKind::kCallBlock;
    if (is_op("(")) parse_params(*s);
    s->expr = parse_expression(true);
    if (s->expr->kind != ExprKind::kCall) syntax_error("expected a call expression");
    mark_folds(*s->expr, false);
    expect_block_end();
    std::set<std::string> names;
    name_collectors_.push_back(&names);
    int saved_loop_depth = loop_depth_;
    loop_depth_ = 0;
    s->body = parse_body({"endcall"});
    loop_depth_ = saved_loop_depth;
    name_collectors_.pop_back();
    for (const auto& p : s->params) names.erase(p.name);
    note_special_names(*s, names);
    end_block("endcall");
    return s;
  }

  // `f1(args) | f2 | ...` with no operand, for filter blocks and `set x | f`.
  std::vector<ExprPtr> parse_filter_chain() {
    std::vector<ExprPtr> chain;
    skip_op("|");
    while (true) {
      chain.push_back(parse_filter_call(nullptr));
      if (!skip_op("|")) break;
    }
    return chain;
  }

  // ---- expressions ---------------------------------------------------------------------------------------
  bool at_tuple_end(const std::set<std::string>& extra_end_names) const {
    const Token& t = current();
    if (t.type == TokenType::kVariableEnd || t.type == TokenType::kBlockEnd || t.type == TokenType::kEof) return true;
    if (t.type == TokenType::kOperator && t.text == ")") return true;
    return t.type == TokenType::kName && extra_end_names.count(t.text) > 0;
  }

  ExprPtr parse_tuple(bool with_condition, const std::set<std::string>& extra_end_names,
                      bool explicit_parentheses = false) {
    auto tuple = make(ExprKind::kTuple);
    bool is_tuple = false;
    while (true) {
      if (!tuple->children.empty()) expect_op(",");
      if (at_tuple_end(extra_end_names)) break;
      tuple->children.push_back(parse_expression(with_condition));
      if (is_op(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!tuple->children.empty()) return std::move(tuple->children[0]);
      if (!explicit_parentheses) syntax_error("expected an expression, got {}", describe(current()));
    }
    return tuple;
  }

  ExprPtr parse_expression(bool with_condition) {
    NestingGuard guard(*this);
    return with_condition ? parse_condition() : parse_or();
  }

  ExprPtr parse_condition() {
    ExprPtr expr = parse_or();
    while (skip_name("if")) {
      auto cond = make(ExprKind::kCondition);
      cond->children.push_back(parse_or());
      cond->children.push_back(std::move(expr));
      cond->children.push_back(skip_name("else") ? parse_condition() : nullptr);
      expr = std::move(cond);
    }
    return expr;
  }

  ExprPtr binary(ExprKind kind, std::string op, ExprPtr left, ExprPtr right) {
    auto e = make(kind);
    e->name = std::move(op);
    e->children.push_back(std::move(left));
    e->children.push_back(std::move(right));
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (skip_name("or")) left = binary(ExprKind::kOr, "or", std::move(left), parse_and());
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (skip_name("and")) left = binary(ExprKind::kAnd, "and", std::move(left), parse_not());
    return left;
  }

  // What jinja2's optimizer can evaluate at compile time: expressions over literals, without names, calls or
  // the filters that need the render context.
  static bool is_foldable(const Expr& e) {
    switch (e.kind) {
      case ExprKind::kName:
      case ExprKind::kCall: return false;
      case ExprKind::kFilter:
        if (!e.children[0] || e.name == "map" || e.name == "select" || e.name == "reject" ||
            e.name == "selectattr" || e.name == "rejectattr") {
          return false;
        }
        break;
      default: break;
    }
    for (const auto& c : e.children) {
      if (c && !is_foldable(*c)) return false;
    }
    for (const auto& [k, v] : e.keywords) {
      if (!is_foldable(*v)) return false;
    }
    return true;
  }

  // jinja2 evaluates a foldable expression at compile time, where a failing slice goes through
  // environment.getitem and becomes Undefined instead of raising. The fold is kept when the expression is
  // printed directly or yields something other than that Undefined (a slice or item lookup on its own
  // yields it, and an Undefined constant is discarded, so the slice runs, and raises, at render time).
  static void mark_folds(Expr& e, bool printed) {
    if (is_foldable(e)) {
      if (printed || (e.kind != ExprKind::kSlice && e.kind != ExprKind::kGetItem)) mark_folded_slices(e);
      return;
    }
    for (auto& c : e.children) {
      if (c) mark_folds(*c, false);
    }
    for (auto& [k, v] : e.keywords) mark_folds(*v, false);
  }

  static void mark_folded_slices(Expr& e) {
    if (e.kind == ExprKind::kSlice) e.negated = true;
    for (auto& c : e.children) {
      if (c) mark_folded_slices(*c);
    }
  }

  ExprPtr parse_not() {
    if (skip_name("not")) {
      NestingGuard guard(*this);
      auto e = make(ExprKind::kNot);
      e->children.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    ExprPtr first = parse_math1();
    ExprPtr compare;
    while (true) {
      std::string op;
      if (current().type == TokenType::kOperator &&
          (current().text == "==" || current().text == "!=" || current().text == "<" || current().text == ">" ||
           current().text == "<=" || current().text == ">=")) {
        op = current().text;
        next();
      } else if (skip_name("in")) {
        op = "in";
      } else if (is_name("not") && peek().type == TokenType::kName && peek().text == "in") {
        next();
        next();
        op = "notin";
      } else {
        break;
      }
      if (!compare) {
        compare = make(ExprKind::kCompare);
        compare->children.push_back(std::move(first));
      }
      compare->compare_ops.push_back(op);
      compare->children.push_back(parse_math1());
    }
    return compare ? std::move(compare) : std::move(first);
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = current().text;
      next();
      left = binary(ExprKind::kBinary, op, std::move(left), parse_concat());
    }
    return left;
  }

  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (skip_op("~")) left = binary(ExprKind::kBinary, "~", std::move(left), parse_math2());
    return left;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = current().text;
      next();
      left = binary(ExprKind::kBinary, op, std::move(left), parse_pow());
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (skip_op("**")) left = binary(ExprKind::kBinary, "**", std::move(left), parse_unary(true));
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    NestingGuard guard(*this);
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      auto e = make(is_op("-") ? ExprKind::kNegate : ExprKind::kPlus);
      next();
      e->children.push_back(parse_unary(false));
      node = std::move(e);
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    const Token& t = current();
    if (t.type == TokenType::kName) {
      auto e = make(ExprKind::kConst);
      if (t.text == "true" || t.text == "True") {
        e->constant = Value::boolean(true);
      } else if (t.text == "false" || t.text == "False") {
        e->constant = Value::boolean(false);
      } else if (t.text == "none" || t.text == "None") {
        e->constant = Value::none();
      } else {
        e->kind = ExprKind::kName;
        e->name = t.text;
        for (auto* names : name_collectors_) names->insert(t.text);
      }
      next();
      return e;
    }
    if (t.type == TokenType::kString) {
      std::string text;
      while (current().type == TokenType::kString) {
        text += current().text;
        next();
      }
      auto e = make(ExprKind::kConst);
      e->constant = Value::string(std::move(text));
      return e;
    }
    if (t.type == TokenType::kInteger || t.type == TokenType::kFloat) {
      auto e = make(ExprKind::kConst);
      e->constant = t.type == TokenType::kInteger ? Value::integer(t.integer) : Value::floating(t.floating);
      next();
      return e;
    }
    if (skip_op("(")) {
      ExprPtr e = parse_tuple(true, {}, true);
      expect_op(")");
      return e;
    }
    if (skip_op("[")) {
      auto e = make(ExprKind::kList);
      while (!is_op("]")) {
        if (!e->children.empty()) expect_op(",");
        if (is_op("]")) break;
        e->children.push_back(parse_expression(true));
      }
      expect_op("]");
      return e;
    }
    if (skip_op("{")) {
      auto e = make(ExprKind::kDict);
      while (!is_op("}")) {
        if (!e->children.empty()) expect_op(",");
        if (is_op("}")) break;
        e->children.push_back(parse_expression(true));
        expect_op(":");
        e->children.push_back(parse_expression(true));
      }
      expect_op("}");
      return e;
    }
    syntax_error("unexpected {}", describe(t));
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".")) {
        next();
        if (current().type == TokenType::kName) {
          auto e = make(ExprKind::kGetAttr);
          e->name = current().text;
          next();
          e->children.push_back(std::move(node));
          node = std::move(e);
        } else if (current().type == TokenType::kInteger) {
          auto e = make(ExprKind::kGetItem);
          auto index = make(ExprKind::kConst);
          index->constant = Value::integer(current().integer);
          next();
          e->children.push_back(std::move(node));
          e->children.push_back(std::move(index));
          node = std::move(e);
        } else {
          syntax_error("expected name or number after '.'");
        }
      } else if (is_op("[")) {
        next();
        node = parse_subscript(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    NestingGuard guard(*this);
    ExprPtr parts[3];
    bool is_slice = false;
    if (!is_op(":")) parts[0] = parse_expression(true);
    if (skip_op(":")) {
      is_slice = true;
      if (!is_op("]") && !is_op(":")) parts[1] = parse_expression(true);
      if (skip_op(":") && !is_op("]")) parts[2] = parse_expression(true);
    }
    if (is_op(",")) fail(StatusCode::kUnsupported, "line {}: multi-dimensional subscripts are not supported", current().line);
    expect_op("]");
    auto e = make(is_slice ? ExprKind::kSlice : ExprKind::kGetItem);
    e->children.push_back(std::move(node));
    if (is_slice) {
      for (auto& p : parts) e->children.push_back(std::move(p));
    } else {
      e->children.push_back(std::move(parts[0]));
    }
    return e;
  }

  void parse_call_args(Expr& call) {
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) expect_op(",");
      first = false;
      if (is_op(")")) break;
      if (is_op("*") || is_op("**")) fail(StatusCode::kUnsupported, "line {}: *args in calls are not supported", current().line);
      if (current().type == TokenType::kName && peek().type == TokenType::kOperator && peek().text == "=") {
        std::string key = current().text;
        next();
        next();
        call.keywords.emplace_back(key, parse_expression(true));
      } else {
        if (!call.keywords.empty()) syntax_error("invalid syntax for function call expression");
        call.children.push_back(parse_expression(true));
      }
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr node) {
    NestingGuard guard(*this);
    auto e = make(ExprKind::kCall);
    e->children.push_back(std::move(node));
    parse_call_args(*e);
    return e;
  }

  std::string parse_dotted_name() {
    std::string name = expect_name();
    while (is_op(".") && peek().type == TokenType::kName) {
      next();
      name.push_back('.');
      name.append(expect_name());
    }
    return name;
  }

  ExprPtr parse_filter_call(ExprPtr operand) {
    auto e = make(ExprKind::kFilter);
    e->name = parse_dotted_name();
    if (!has_filter(e->name)) syntax_error("no filter named '{}'", e->name);
    e->children.push_back(std::move(operand));
    if (is_op("(")) parse_call_args(*e);
    return e;
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (skip_op("|")) {
        node = parse_filter_call(std::move(node));
      } else if (is_name("is")) {
        next();
        auto e = make(ExprKind::kTest);
        e->negated = skip_name("not");
        e->name = parse_dotted_name();
        if (!has_test(e->name)) syntax_error("no test named '{}'", e->name);
        e->children.push_back(std::move(node));
        const Token& t = current();
        if (is_op("(")) {
          parse_call_args(*e);
        } else if ((t.type == TokenType::kName || t.type == TokenType::kString || t.type == TokenType::kInteger ||
                    t.type == TokenType::kFloat || is_op("[") || is_op("{")) &&
                   !(t.type == TokenType::kName && (t.text == "else" || t.text == "or" || t.text == "and"))) {
          if (is_name("is")) syntax_error("you cannot chain multiple tests with is");
          e->children.push_back(parse_postfix(parse_primary()));
        }
        node = std::move(e);
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int nesting_ = 0;
  int loop_depth_ = 0;
  std::vector<std::set<std::string>*> name_collectors_;
};

}  // namespace

TemplateAst parse_template(std::string_view source) { return Parser(tokenize(source)).parse(); }

}  // namespace radixlm::chat
