#pragma once
// Splits template source into tokens the way jinja2's lexer does with transformers' settings: trim_blocks
// (the first newline after a block or comment tag is dropped), lstrip_blocks (spaces and tabs before a block
// or comment tag at the start of a line are dropped), `-` / `+` whitespace control on every tag, newlines
// normalised to "\n" and one trailing newline removed (keep_trailing_newline=False).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace radixlm::chat {

enum class TokenType { kData, kVariableBegin, kVariableEnd, kBlockBegin, kBlockEnd, kName, kString, kInteger,
                       kFloat, kOperator, kEof };

struct Token {
  TokenType type;
  std::string text;  // data text, name, operator, or the decoded value of a string literal
  int64_t integer = 0;
  double floating = 0;
  int line = 1;
};

// Throws TemplateError (kInvalidArgument) on malformed input, with the line number.
std::vector<Token> tokenize(std::string_view source);

}  // namespace radixlm::chat
