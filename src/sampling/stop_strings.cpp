// Incremental stop-string search with a held-back tail.

#include "sampling/stop_strings.h"

#include <algorithm>

#include "core/status.h"

namespace radixlm {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stop_strings, bool no_stop_trim)
    : stop_strings_(std::move(stop_strings)), no_stop_trim_(no_stop_trim) {
  // Empty strings are rejected by validation; drop any that slip through rather than stop at once.
  std::erase_if(stop_strings_, [](const std::string& s) { return s.empty(); });
  for (const std::string& s : stop_strings_) longest_ = std::max(longest_, s.size());
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

size_t StopStringMatcher::held_back_suffix() const {
  // The longest tail of the text that is a proper prefix of some stop string.
  size_t held = 0;
  const std::string_view text = text_;
  for (const std::string& s : stop_strings_) {
    const size_t most = std::min(s.size() - 1, text.size());
    for (size_t k = most; k > held; --k) {
      if (text.substr(text.size() - k) == std::string_view(s).substr(0, k)) {
        held = k;
        break;
      }
    }
  }
  return held;
}

std::string_view StopStringMatcher::append(std::string_view piece) {
  if (stopped()) return {};
  const size_t old_size = text_.size();
  text_.append(piece);
  for (size_t i = 0; i < stop_strings_.size(); ++i) {
    const std::string& s = stop_strings_[i];
    // Only an occurrence that ends inside the new piece is new; older ones would have stopped us already.
    const size_t from = old_size + 1 > s.size() ? old_size + 1 - s.size() : 0;
    const size_t pos = text_.find(s, from);
    if (pos == std::string::npos) continue;
    matched_index_ = i;
    output_end_ = no_stop_trim_ ? pos + s.size() : pos;
    return emit_up_to(output_end_);
  }
  return emit_up_to(text_.size() - held_back_suffix());
}

std::string_view StopStringMatcher::finish() {
  if (stopped()) return {};
  return emit_up_to(text_.size());
}

}  // namespace radixlm
