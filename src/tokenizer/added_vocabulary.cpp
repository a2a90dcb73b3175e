#include "tokenizer/added_vocabulary.h"

#include "tokenizer/unicode_text.h"

namespace radixlm::tokenizer {

void TokenMatcher::add(const std::string& pattern, size_t token_index) {
  if (pattern.empty()) return;
  uint32_t node = 0;
  for (unsigned char b : pattern) {
    uint32_t next = 0;
    for (const auto& [byte, child] : nodes_[node].children) {
      if (byte == b) next = child;
    }
    if (next == 0) {
      next = static_cast<uint32_t>(nodes_.size());
      nodes_[node].children.emplace_back(b, next);
      nodes_.emplace_back();
    }
    node = next;
  }
  // The first token with a given content wins, as in HF's trie built from the token list in order.
  if (nodes_[node].token_index < 0) nodes_[node].token_index = static_cast<int64_t>(token_index);
  first_bytes_[static_cast<unsigned char>(pattern[0])] = true;
}

std::pair<size_t, size_t> TokenMatcher::longest_at(std::string_view text, size_t pos) const {
  uint32_t node = 0;
  std::pair<size_t, size_t> best{0, 0};
  for (size_t i = pos; i < text.size(); ++i) {
    uint32_t next = 0;
    const auto b = static_cast<unsigned char>(text[i]);
    for (const auto& [byte, child] : nodes_[node].children) {
      if (byte == b) {
        next = child;
        break;
      }
    }
    if (next == 0) break;
    node = next;
    if (nodes_[node].token_index >= 0) best = {i + 1 - pos, static_cast<size_t>(nodes_[node].token_index)};
  }
  return best;
}

namespace {

bool ends_with_word_char(std::string_view text) {
  if (text.empty()) return false;
  size_t start = text.size() - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  size_t pos = start;
  return is_word_char(next_code_point(text, pos));
}

bool starts_with_word_char(std::string_view text) {
  if (text.empty()) return false;
  size_t pos = 0;
  return is_word_char(next_code_point(text, pos));
}

// Start of the whitespace run that ends `text`.
size_t whitespace_run_start(std::string_view text) {
  size_t end = text.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    size_t pos = start;
    if (!is_whitespace(next_code_point(text, pos))) break;
    end = start;
  }
  return end;
}

// Length of the whitespace run that starts `text`.
size_t whitespace_run_length(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t next = pos;
    if (!is_whitespace(next_code_point(text, next))) break;
    pos = next;
  }
  return pos;
}

}  // namespace

void split_added_tokens(const TokenMatcher& matcher, const std::vector<AddedToken>& tokens,
                        std::vector<Piece>& pieces) {
  if (matcher.empty()) return;
  std::vector<Piece> out;
  out.reserve(pieces.size() + 8);
  for (auto& piece : pieces) {
    if (piece.added_id >= 0) {
      out.push_back(std::move(piece));
      continue;
    }
    const std::string_view text = piece.text;
    size_t consumed = 0;  // text before this offset has been emitted
    size_t search = 0;    // where the scan for the next match resumes
    while (search < text.size()) {
      if (!matcher.can_start(static_cast<unsigned char>(text[search]))) {
        ++search;
        continue;
      }
      auto [length, index] = matcher.longest_at(text, search);
      if (length == 0) {
        ++search;
        continue;
      }
      size_t start = search, stop = search + length;
      search = stop;
      const AddedToken& token = tokens[index];
      if (token.single_word) {
        const bool space_before = start == 0 || !ends_with_word_char(text.substr(0, start));
        const bool space_after = stop == text.size() || !starts_with_word_char(text.substr(stop));
        if (!space_before || !space_after) continue;
      }
      if (token.lstrip) start = std::max(whitespace_run_start(text.substr(0, start)), consumed);
      if (token.rstrip) stop += whitespace_run_length(text.substr(stop));
      if (consumed < start) {
        Piece before;
        before.text = std::string(text.substr(consumed, start - consumed));
        before.at_start = piece.at_start && consumed == 0;
        out.push_back(std::move(before));
      }
      Piece match;
      match.text = std::string(text.substr(start, stop - start));
      match.added_id = token.id;
      out.push_back(std::move(match));
      // HF resumes the search at the match's own end, so a token right after an rstrip'ed one can overlap
      // the stripped spaces and is still emitted; this keeps that behaviour.
      consumed = stop;
    }
    if (consumed < text.size()) {
      Piece rest;
      rest.text = std::string(text.substr(consumed));
      rest.at_start = piece.at_start && consumed == 0;
      out.push_back(std::move(rest));
    }
  }
  pieces = std::move(out);
}

}  // namespace radixlm::tokenizer
