#include "chat/lexer.h"

#include <cerrno>
#include <cstdlib>

#include "chat/python_text.h"
#include "chat/template_error.h"

namespace radixlm::chat {
namespace {

bool is_ascii_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_ascii_digit(c); }

// jinja2 splits on \r\n, \r and \n, joins with \n and drops one trailing newline.
std::string normalize_newlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Python's re `\s` on str: Unicode whitespace. Returns the byte length of the whitespace run at `pos`.
size_t whitespace_run(std::string_view text, size_t pos) {
  size_t i = pos;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (!is_python_space(c)) break;
      ++i;
      continue;
    }
    std::u32string cp = utf8_to_code_points(text.substr(i, c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2));
    if (cp.empty() || !is_python_space(cp[0])) break;
    i += c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
  }
  return i - pos;
}

bool is_all_whitespace(std::string_view text) { return whitespace_run(text, 0) == text.size(); }

// Decodes a string literal body as Python's unicode-escape does (what jinja2 applies to literals).
std::string decode_string_literal(std::string_view body, int line) {
  std::string out;
  out.reserve(body.size());
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c != '\\' || i + 1 >= body.size()) {
      out.push_back(c);
      continue;
    }
    char e = body[++i];
    auto hex = [&](size_t count) {
      if (i + count >= body.size()) {
        fail(StatusCode::kInvalidArgument, "line {}: truncated \\x/\\u escape in string literal", line);
      }
      uint32_t v = 0;
      for (size_t k = 1; k <= count; ++k) {
        char h = body[i + k];
        int d = is_ascii_digit(h) ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
        if (d < 0) fail(StatusCode::kInvalidArgument, "line {}: bad escape in string literal", line);
        v = v * 16 + static_cast<uint32_t>(d);
      }
      i += count;
      if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        fail(StatusCode::kInvalidArgument, "line {}: escape \\U{:x} is not a valid code point", line, v);
      }
      append_utf8(out, v);
    };
    switch (e) {
      case '\n': break;
      case '\\': out.push_back('\\'); break;
      case '\'': out.push_back('\''); break;
      case '"': out.push_back('"'); break;
      case 'a': out.push_back('\a'); break;
      case 'b': out.push_back('\b'); break;
      case 'f': out.push_back('\f'); break;
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 't': out.push_back('\t'); break;
      case 'v': out.push_back('\v'); break;
      case 'x': hex(2); break;
      case 'u': hex(4); break;
      case 'U': hex(8); break;
      case 'N': fail(StatusCode::kUnsupported, "line {}: \\N{{...}} escapes are not supported", line);
      default:
        if (e >= '0' && e <= '7') {
          uint32_t v = static_cast<uint32_t>(e - '0');
          for (int k = 0; k < 2 && i + 1 < body.size() && body[i + 1] >= '0' && body[i + 1] <= '7'; ++k) {
            v = v * 8 + static_cast<uint32_t>(body[++i] - '0');
          }
          append_utf8(out, v);
        } else {
          out.push_back('\\');
          out.push_back(e);
        }
    }
  }
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string_view source) : src_(normalize_newlines(source)) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      size_t tag = find_tag(pos_);
      if (tag == std::string::npos) {
        emit_data(src_.substr(pos_));
        advance_to(src_.size());
        break;
      }
      char kind = src_[tag + 1];
      char sign = tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+') ? src_[tag + 2] : 0;
      std::string text = src_.substr(pos_, tag - pos_);
      if (sign == '-') {
        text = python_strip(text, nullptr, false, true);
      } else if (sign != '+' && kind != '{') {  // lstrip_blocks: block and comment tags only
        size_t line_start = text.rfind('\n');
        line_start = line_start == std::string::npos ? 0 : line_start + 1;
        if ((line_start > 0 || line_starting_) && line_start < text.size() &&
            is_all_whitespace(std::string_view(text).substr(line_start))) {
          text.resize(line_start);
        }
      }
      emit_data(text);
      advance_to(tag + 2 + (sign ? 1 : 0));
      line_starting_ = false;
      if (kind == '#') {
        lex_comment();
      } else if (kind == '%' && try_raw()) {
        continue;
      } else {
        lex_tag(kind == '%');
      }
    }
    tokens_.push_back(Token{TokenType::kEof, "", 0, 0, line_});
    return std::move(tokens_);
  }

 private:
  size_t find_tag(size_t from) const {
    size_t i = src_.find('{', from);
    while (i != std::string::npos && i + 1 < src_.size()) {
      char n = src_[i + 1];
      if (n == '{' || n == '%' || n == '#') return i;
      i = src_.find('{', i + 1);
    }
    return std::string::npos;
  }

  void advance_to(size_t pos) {
    for (size_t i = pos_; i < pos && i < src_.size(); ++i) {
      if (src_[i] == '\n') ++line_;
    }
    pos_ = pos;
  }

  void emit_data(std::string text) {
    if (!text.empty()) tokens_.push_back(Token{TokenType::kData, std::move(text), 0, 0, line_});
  }

  // After a closing tag: `-` strips all following whitespace; a block tag also drops one newline
  // (trim_blocks). Records whether the consumed text ended a line, which lstrip_blocks needs.
  void finish_tag(bool strip, bool trim_newline) {
    size_t end = pos_;
    if (strip) end += whitespace_run(src_, end);
    if (!strip && trim_newline && end < src_.size() && src_[end] == '\n') ++end;
    bool consumed_newline = end > pos_ && src_[end - 1] == '\n';
    advance_to(end);
    line_starting_ = consumed_newline;
  }

  void lex_comment() {
    // jinja2's lexer stops quietly when a comment opens at the very end of the source.
    if (pos_ >= src_.size()) return;
    size_t close = src_.find("#}", pos_);
    if (close == std::string::npos) fail(StatusCode::kInvalidArgument, "line {}: missing end of comment tag", line_);
    bool strip = close > pos_ && src_[close - 1] == '-';
    advance_to(close + 2);
    finish_tag(strip, true);
  }

  // {% raw %}...{% endraw %}: the text between is data, untouched.
  bool try_raw() {
    size_t p = pos_ + whitespace_run(src_, pos_);
    if (src_.compare(p, 3, "raw") != 0 || (p + 3 < src_.size() && is_name_char(src_[p + 3]))) return false;
    p += 3;
    p += whitespace_run(src_, p);
    bool strip = false;
    if (src_.compare(p, 3, "-%}") == 0) {
      strip = true;
      p += 3;
    } else if (src_.compare(p, 2, "%}") == 0) {
      p += 2;
    } else {
      return false;
    }
    if (strip) p += whitespace_run(src_, p);
    size_t search = p;
    while (true) {
      size_t open = src_.find("{%", search);
      if (open == std::string::npos) fail(StatusCode::kInvalidArgument, "line {}: missing endraw", line_);
      size_t q = open + 2;
      char sign = q < src_.size() && (src_[q] == '-' || src_[q] == '+') ? src_[q] : 0;
      if (sign) ++q;
      q += whitespace_run(src_, q);
      if (src_.compare(q, 6, "endraw") != 0) {
        search = open + 2;
        continue;
      }
      q += 6;
      q += whitespace_run(src_, q);
      bool end_strip = src_.compare(q, 3, "-%}") == 0;
      if (!end_strip && src_.compare(q, 2, "%}") != 0) {
        fail(StatusCode::kInvalidArgument, "line {}: malformed endraw tag", line_);
      }
      std::string body = src_.substr(p, open - p);
      if (sign == '-') body = python_strip(body, nullptr, false, true);
      emit_data(body);
      advance_to(q + (end_strip ? 3 : 2));
      finish_tag(end_strip, true);
      return true;
    }
  }

  void lex_tag(bool is_block) {
    tokens_.push_back(Token{is_block ? TokenType::kBlockBegin : TokenType::kVariableBegin, "", 0, 0, line_});
    const char* end_tag = is_block ? "%}" : "}}";
    std::string balancing;
    while (true) {
      advance_to(pos_ + whitespace_run(src_, pos_));
      if (pos_ >= src_.size()) fail(StatusCode::kInvalidArgument, "line {}: unexpected end of template in tag", line_);
      if (balancing.empty()) {
        bool strip = src_[pos_] == '-' && src_.compare(pos_ + 1, 2, end_tag) == 0;
        if (strip || src_.compare(pos_, 2, end_tag) == 0) {
          tokens_.push_back(Token{is_block ? TokenType::kBlockEnd : TokenType::kVariableEnd, "", 0, 0, line_});
          advance_to(pos_ + (strip ? 3 : 2));
          finish_tag(strip, is_block);
          return;
        }
      }
      char c = src_[pos_];
      if (is_ascii_digit(c)) {
        lex_number();
      } else if (is_name_start(c)) {
        size_t end = pos_;
        while (end < src_.size() && is_name_char(src_[end])) ++end;
        tokens_.push_back(Token{TokenType::kName, src_.substr(pos_, end - pos_), 0, 0, line_});
        advance_to(end);
      } else if (c == '\'' || c == '"') {
        lex_string(c);
      } else {
        lex_operator(balancing);
      }
    }
  }

  size_t digits_end(size_t p) const {
    // (\d+_)*\d+
    size_t end = p;
    while (true) {
      size_t d = end;
      while (d < src_.size() && is_ascii_digit(src_[d])) ++d;
      if (d == end) return end;
      end = d;
      if (end + 1 < src_.size() && src_[end] == '_' && is_ascii_digit(src_[end + 1])) {
        ++end;
        continue;
      }
      return end;
    }
  }

  void lex_number() {
    size_t end = digits_end(pos_);
    bool is_float = false;
    if (end + 1 < src_.size() && src_[end] == '.' && is_ascii_digit(src_[end + 1])) {
      end = digits_end(end + 1);
      is_float = true;
    }
    if (end < src_.size() && (src_[end] == 'e' || src_[end] == 'E')) {
      size_t e = end + 1;
      if (e < src_.size() && (src_[e] == '+' || src_[e] == '-')) ++e;
      if (e < src_.size() && is_ascii_digit(src_[e])) {
        end = digits_end(e);
        is_float = true;
      }
    }
    std::string text;
    for (size_t i = pos_; i < end; ++i) {
      if (src_[i] != '_') text.push_back(src_[i]);
    }
    Token token{is_float ? TokenType::kFloat : TokenType::kInteger, text, 0, 0, line_};
    if (is_float) {
      token.floating = std::strtod(text.c_str(), nullptr);
    } else {
      errno = 0;
      char* parse_end = nullptr;
      long long v = std::strtoll(text.c_str(), &parse_end, 10);
      if (errno == ERANGE) fail(StatusCode::kOutOfRange, "line {}: integer literal {} is too large", line_, text);
      token.integer = v;
    }
    tokens_.push_back(std::move(token));
    advance_to(end);
  }

  void lex_string(char quote) {
    size_t i = pos_ + 1;
    while (i < src_.size() && src_[i] != quote) {
      if (src_[i] == '\\') ++i;
      ++i;
    }
    if (i >= src_.size()) fail(StatusCode::kInvalidArgument, "line {}: unterminated string literal", line_);
    std::string value = decode_string_literal(std::string_view(src_).substr(pos_ + 1, i - pos_ - 1), line_);
    tokens_.push_back(Token{TokenType::kString, std::move(value), 0, 0, line_});
    advance_to(i + 1);
  }

  void lex_operator(std::string& balancing) {
    static const char* const kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
    for (const char* op : kTwo) {
      if (src_.compare(pos_, 2, op) == 0) {
        tokens_.push_back(Token{TokenType::kOperator, op, 0, 0, line_});
        advance_to(pos_ + 2);
        return;
      }
    }
    char c = src_[pos_];
    static const std::string kOne = "+-/*%~[](){}><=.:|,;";
    if (kOne.find(c) == std::string::npos) {
      fail(StatusCode::kInvalidArgument, "line {}: unexpected character '{}' in tag", line_, c);
    }
    if (c == '(' || c == '[' || c == '{') {
      balancing.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    } else if (c == ')' || c == ']' || c == '}') {
      if (balancing.empty()) fail(StatusCode::kInvalidArgument, "line {}: unexpected '{}'", line_, c);
      if (balancing.back() != c) {
        fail(StatusCode::kInvalidArgument, "line {}: unexpected '{}', expected '{}'", line_, c, balancing.back());
      }
      balancing.pop_back();
    }
    tokens_.push_back(Token{TokenType::kOperator, std::string(1, c), 0, 0, line_});
    advance_to(pos_ + 1);
  }

  std::string src_;
  size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source) {
  if (!is_valid_utf8(source)) fail(StatusCode::kInvalidArgument, "template is not valid UTF-8");
  return Lexer(source).run();
}

}  // namespace radixlm::chat
