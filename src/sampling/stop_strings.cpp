// Incremental stop-string search with a held-back tail.

#include "sampling/stop_strings.h"

#include <algorithm>

#include "core/status.h"

namespace radixlm {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stop_strings, bool no_stop_trim)
    : stop_strings_(std::move(stop_strings)), no_stop_trim_(no_stop_trim) {
  // Empty strings are rejected by validation; drop any that slip through rather than stop at once.
  std::erase_if(stop_strings_, [](const std::string& s) { return s.empty(); });
  automata_.resize(stop_strings_.size());
  for (size_t i = 0; i < stop_strings_.size(); ++i) {
    const std::string& s = stop_strings_[i];
    std::vector<size_t>& failure = automata_[i].failure;
    failure.assign(s.size(), 0);
    for (size_t q = 1, k = 0; q < s.size(); ++q) {
      while (k > 0 && s[q] != s[k]) k = failure[k - 1];
      if (s[q] == s[k]) ++k;
      failure[q] = k;
    }
  }
}

const std::string& StopStringMatcher::matched_string() const {
  RADIXLM_CHECK(matched_index_.has_value(), "no stop string matched");
  return stop_strings_[*matched_index_];
}

std::string_view StopStringMatcher::output() const {
  std::string_view text = text_;
  return stopped() ? text.substr(0, output_end_) : text;
}

std::string_view StopStringMatcher::emit_up_to(size_t end) {
  if (end <= emitted_) return {};
  std::string_view piece = std::string_view(text_).substr(emitted_, end - emitted_);
  emitted_ = end;
  return piece;
}

std::string_view StopStringMatcher::append(std::string_view piece) {
  if (stopped()) return {};
  const size_t old_size = text_.size();
  text_.append(piece);
  std::optional<size_t> first_match;  // list index
  size_t match_end = 0;
  size_t held_back = 0;
  for (size_t i = 0; i < stop_strings_.size(); ++i) {
    const std::string& s = stop_strings_[i];
    Automaton& automaton = automata_[i];
    size_t state = automaton.state;
    for (size_t j = 0; j < piece.size(); ++j) {
      const char c = piece[j];
      while (state > 0 && s[state] != c) state = automaton.failure[state - 1];
      if (s[state] == c) ++state;
      if (state == s.size()) {
        // The first completion of this string; when several complete in one piece, the list decides.
        if (!first_match) {
          first_match = i;
          match_end = old_size + j + 1;
        }
        break;
      }
    }
    automaton.state = state;
    if (state < s.size()) held_back = std::max(held_back, state);
  }
  if (first_match) {
    matched_index_ = first_match;
    const size_t length = stop_strings_[*first_match].size();
    output_end_ = no_stop_trim_ ? match_end : match_end - length;
    return emit_up_to(output_end_);
  }
  return emit_up_to(text_.size() - held_back);
}

std::string_view StopStringMatcher::finish() {
  if (stopped()) return {};
  return emit_up_to(text_.size());
}

}  // namespace radixlm
