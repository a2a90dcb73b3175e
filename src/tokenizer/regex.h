#pragma once
// A compiled PCRE2 pattern (UTF + UCP, JIT when available) that lists its matches in a string. HF tokenizers
// uses Oniguruma; the patterns real tokenizers ship (GPT-2, Llama-3, Qwen2 pre-tokenizers) mean the same in
// PCRE2 with UCP, and the parity tests check that on every fixture.

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace radixlm::tokenizer {

class Regex {
 public:
  static Expected<Regex> compile(std::string_view pattern);
  // A pattern matching `literal` exactly.
  static Expected<Regex> literal(std::string_view literal);

  // Appends the [start, end) byte ranges of the successive non-overlapping matches in valid UTF-8 `text`.
  // An empty match advances by one character, as Oniguruma's find_iter does.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& matches) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  std::shared_ptr<const Code> code_;
  std::string pattern_;
};

}  // namespace radixlm::tokenizer
