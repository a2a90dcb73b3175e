#pragma once
// Turns tokens into the AST with jinja2's grammar and operator precedence:
//   condexpr > or > and > not > compare (==, !=, <, <=, >, >=, in, not in) > + - > ~ > * / // % > ** > unary
//   > primary with postfix (.attr, [item], [a:b:c], call) and filters/tests (| f, is t), which bind tightest.
// Like jinja2's compiler it rejects unknown filters and tests and `break`/`continue` outside a loop at parse
// time, even in branches that never run.

#include <string_view>

#include "chat/ast.h"

namespace radixlm::chat {

// Bounds how deeply expressions and blocks may nest, so that parsing and evaluation cannot exhaust the stack.
inline constexpr int kMaxParseNesting = 100;

// Throws TemplateError on a syntax error.
TemplateAst parse_template(std::string_view source);

}  // namespace radixlm::chat
