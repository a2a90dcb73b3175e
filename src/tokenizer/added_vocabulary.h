#pragma once
// Added tokens (special or not): matched in the text before the model runs, longest match first at the
// leftmost position, with HF's lstrip / rstrip / single_word rules. Tokens marked `normalized` are matched in
// the normalized text, the others in the raw text (HF AddedVocabulary::extract_and_normalize).

#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/piece.h"

namespace radixlm::tokenizer {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;
  bool lstrip = false, rstrip = false, single_word = false, normalized = false;
};

// Finds the leftmost-longest occurrences of a set of strings.
class TokenMatcher {
 public:
  void add(const std::string& pattern, size_t token_index);
  bool empty() const { return nodes_.size() <= 1; }
  // Longest pattern starting at `pos`: its length and token index, or length 0.
  std::pair<size_t, size_t> longest_at(std::string_view text, size_t pos) const;
  bool can_start(unsigned char byte) const { return first_bytes_[byte]; }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, uint32_t>> children;
    int64_t token_index = -1;
  };
  std::vector<Node> nodes_{Node{}};
  bool first_bytes_[256] = {};
};

// Splits every ordinary piece around the matches of `matcher` (tokens from `tokens`). Matches become pieces
// with added_id set.
void split_added_tokens(const TokenMatcher& matcher, const std::vector<AddedToken>& tokens,
                        std::vector<Piece>& pieces);

}  // namespace radixlm::tokenizer
