#pragma once
// Stop strings over a request's detokenized output, fed piece by piece as tokens are decoded. A stop string
// may arrive split over any number of pieces. While the output ends with something that could still become
// a stop string, that tail is held back, so a streaming client never sees text that is later trimmed.
//
// SGLang's rules: the output is searched, never the prompt; when several stop strings complete in the same
// piece the first in the request's list wins (Req.check_finished); the output is cut at the first occurrence
// of the matched string, which is removed unless no_stop_trim, and nothing after it is ever emitted
// (DetokenizerManager.trim_matched_stop). Matching is on UTF-8 bytes, which for valid UTF-8 is the same as
// matching characters.
//
// Each stop string runs a Knuth-Morris-Pratt automaton over the bytes as they arrive, so a piece costs
// O(piece length x number of stop strings) however long the output or the stop strings are, and the
// automaton's state (how much of the stop string the output currently ends with) is exactly the text to
// hold back.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace radixlm {

class StopStringMatcher {
 public:
  StopStringMatcher(std::vector<std::string> stop_strings, bool no_stop_trim);

  // Appends newly decoded text and returns the text that became safe to emit (possibly empty). After a
  // match, the returned text ends where the output ends and nothing more is accepted.
  std::string_view append(std::string_view piece);

  // At the end of a request that stopped for another reason (eos, length, abort): releases the held-back
  // tail, which can no longer become a stop string.
  std::string_view finish();

  bool stopped() const { return matched_index_.has_value(); }
  // Index into the stop list of the matched string, and the string itself.
  std::optional<size_t> matched_index() const { return matched_index_; }
  const std::string& matched_string() const;

  // The output so far as the client gets it: trimmed after a match; without one, everything appended
  // (held-back text included).
  std::string_view output() const;
  // How much of output() has been returned by append/finish.
  size_t emitted() const { return emitted_; }

 private:
  // One stop string's automaton: failure[q] is the length of the longest proper prefix of the string that
  // is also a suffix of its first q + 1 bytes; state is how many of its bytes the text ends with.
  struct Automaton {
    std::vector<size_t> failure;
    size_t state = 0;
  };

  std::string_view emit_up_to(size_t end);

  std::vector<std::string> stop_strings_;
  std::vector<Automaton> automata_;
  bool no_stop_trim_;
  std::string text_;
  size_t emitted_ = 0;
  std::optional<size_t> matched_index_;
  size_t output_end_ = 0;  // valid once stopped
};

}  // namespace radixlm
