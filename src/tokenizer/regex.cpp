#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/regex.h"

#include <pcre2.h>

#include "tokenizer/unicode_text.h"

namespace radixlm::tokenizer {

struct Regex::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Code() { pcre2_code_free(code); }
};

namespace {

// Per-thread match data and JIT stack: matching is on every encode's hot path, so nothing is allocated there.
struct ThreadMatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  // Patterns like \s+(?!\S) backtrack once per character of a whitespace run; a large stack lets the JIT
  // handle long runs instead of failing over to the interpreter.
  pcre2_jit_stack* jit_stack = pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  ThreadMatchState() { pcre2_jit_stack_assign(context, nullptr, jit_stack); }
  ~ThreadMatchState() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_data_free(data);
  }
};

ThreadMatchState& thread_state() {
  thread_local ThreadMatchState state;
  return state;
}

std::string escape_literal(std::string_view literal) {
  std::string out;
  for (char c : literal) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

// HF's \w is Unicode's (UTS #18): Alphabetic | Mark | Decimal_Number | Connector_Punctuation | Join_Control.
// PCRE2 10.42's \w (with UCP) is only letters, numbers and '_', which would split Devanagari words or emoji
// ZWJ sequences differently. Spell it out.
std::string translate_oniguruma(std::string_view pattern) {
  constexpr std::string_view kWordSet = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}";
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char next = pattern[++i];
      if (next == 'w') {
        out += in_class ? std::string(kWordSet) : "[" + std::string(kWordSet) + "]";
      } else if (next == 'W' && !in_class) {
        out += "[^" + std::string(kWordSet) + "]";
      } else {
        out += c;
        out += next;
      }
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal member, not the end of the class.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out += c;
  }
  return out;
}

}  // namespace

Expected<Regex> Regex::compile(std::string_view onig_pattern) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  const std::string pattern = translate_oniguruma(onig_pattern);
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof(message));
    return make_error(StatusCode::kInvalidArgument, "bad regex at offset {}: {}", error_offset,
                      reinterpret_cast<const char*>(message));
  }
  auto compiled = std::make_shared<Code>();
  compiled->code = code;
  compiled->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  Regex regex;
  regex.code_ = std::move(compiled);
  regex.pattern_ = std::string(onig_pattern);
  return regex;
}

Expected<Regex> Regex::literal(std::string_view literal) { return compile(escape_literal(literal)); }

void Regex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& matches) const {
  ThreadMatchState& state = thread_state();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t offset = 0;
  while (offset <= text.size()) {
    int rc;
    if (code_->jit) {
      rc = pcre2_jit_match(code_->code, subject, text.size(), offset, PCRE2_NO_UTF_CHECK, state.data, state.context);
    } else {
      rc = pcre2_match(code_->code, subject, text.size(), offset, PCRE2_NO_UTF_CHECK, state.data, state.context);
    }
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT) {
      // Out of matching resources on a pathological input: retry with the interpreter, whose heap grows.
      rc = pcre2_match(code_->code, subject, text.size(), offset, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, state.data,
                       nullptr);
    }
    if (rc < 0) break;  // no further match (or an unrecoverable limit: the rest stays unmatched)
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.data);
    const size_t start = ovector[0], end = ovector[1];
    if (end == start) {
      // Empty match: record it and step one character forward so the scan cannot stall.
      matches.emplace_back(start, end);
      if (start >= text.size()) break;
      offset = start + utf8_sequence_length(static_cast<unsigned char>(text[start]));
      continue;
    }
    matches.emplace_back(start, end);
    offset = end;
  }
}

}  // namespace radixlm::tokenizer
