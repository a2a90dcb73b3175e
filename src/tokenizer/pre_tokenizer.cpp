#include "tokenizer/pre_tokenizer.h"

#include <algorithm>
#include <functional>

#include <nlohmann/json.hpp>

#include "tokenizer/byte_level.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/unicode_text.h"

namespace radixlm::tokenizer {

const char* const kGpt2SplitPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

struct Span {
  size_t start, end;
  bool flag;  // before the behaviour step: is a match; after it: is to be removed
};

// Pattern matches -> alternating spans of matched / unmatched text covering all of `text`.
std::vector<Span> spans_from_matches(std::string_view text, const std::vector<std::pair<size_t, size_t>>& matches,
                                     bool invert) {
  std::vector<Span> spans;
  size_t prev = 0;
  for (auto [start, end] : matches) {
    if (prev != start) spans.push_back({prev, start, invert});
    spans.push_back({start, end, !invert});
    prev = end;
  }
  if (prev != text.size()) spans.push_back({prev, text.size(), invert});
  return spans;
}

// HF's SplitDelimiterBehavior applied to matched spans; the result's flag means "drop this span".
std::vector<Span> apply_behavior(std::vector<Span> spans, SplitBehavior behavior) {
  std::vector<Span> out;
  switch (behavior) {
    case SplitBehavior::kRemoved: return spans;
    case SplitBehavior::kIsolated:
      for (auto& s : spans) s.flag = false;
      return spans;
    case SplitBehavior::kContiguous: {
      bool previous_match = false;
      for (const auto& s : spans) {
        if (s.flag == previous_match && !out.empty()) {
          out.back().end = s.end;
        } else {
          out.push_back({s.start, s.end, false});
        }
        previous_match = s.flag;
      }
      return out;
    }
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const auto& s : spans) {
        if (s.flag && !previous_match && !out.empty()) {
          out.back().end = s.end;
        } else {
          out.push_back({s.start, s.end, false});
        }
        previous_match = s.flag;
      }
      return out;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->flag && !previous_match && !out.empty()) {
          out.back().start = it->start;
        } else {
          out.push_back({it->start, it->end, false});
        }
        previous_match = it->flag;
      }
      std::reverse(out.begin(), out.end());
      return out;
    }
  }
  return spans;
}

void emit_spans(const Piece& piece, const std::vector<Span>& spans, std::vector<Piece>& out) {
  for (const auto& s : spans) {
    if (s.flag || s.end == s.start) continue;
    Piece p;
    p.text = piece.text.substr(s.start, s.end - s.start);
    p.at_start = piece.at_start && s.start == 0;
    p.byte_level = piece.byte_level;
    out.push_back(std::move(p));
  }
}

template <typename Predicate>
std::vector<std::pair<size_t, size_t>> char_matches(std::string_view text, Predicate predicate) {
  std::vector<std::pair<size_t, size_t>> matches;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    if (predicate(next_code_point(text, pos))) matches.emplace_back(start, pos);
  }
  return matches;
}

void split_pieces(std::vector<Piece>& pieces, SplitBehavior behavior, bool invert,
                  const std::function<std::vector<std::pair<size_t, size_t>>(std::string_view)>& find) {
  std::vector<Piece> out;
  out.reserve(pieces.size() * 4);
  for (auto& piece : pieces) {
    if (piece.added_id >= 0) {
      out.push_back(std::move(piece));
      continue;
    }
    if (piece.byte_level) {
      // A split after ByteLevel sees the byte-level characters, as in HF.
      piece.text = bytes_to_byte_level(piece.text);
      piece.byte_level = false;
    }
    auto spans = apply_behavior(spans_from_matches(piece.text, find(piece.text), invert), behavior);
    emit_spans(piece, spans, out);
  }
  pieces = std::move(out);
}

void split_by_regex(std::vector<Piece>& pieces, const Regex& regex, SplitBehavior behavior, bool invert) {
  std::vector<std::pair<size_t, size_t>> matches;
  split_pieces(pieces, behavior, invert, [&](std::string_view text) {
    matches.clear();
    regex.find_all(text, matches);
    return matches;
  });
}

const Regex& whitespace_regex() {
  static const Regex regex = Regex::compile(R"(\w+|[^\w\s]+)").value();  // Oniguruma meaning of \w
  return regex;
}

void metaspace(const PreTokenizer& p, std::vector<Piece>& pieces) {
  std::vector<Piece> out;
  for (auto& piece : pieces) {
    if (piece.added_id >= 0) {
      out.push_back(std::move(piece));
      continue;
    }
    std::string text;
    text.reserve(piece.text.size() + 3);
    for (char c : piece.text) {
      if (c == ' ') {
        text += p.replacement;
      } else {
        text += c;
      }
    }
    const bool starts_with_replacement = text.compare(0, p.replacement.size(), p.replacement) == 0;
    if (!starts_with_replacement && (p.prepend_scheme == PrependScheme::kAlways ||
                                     (p.prepend_scheme == PrependScheme::kFirst && piece.at_start))) {
      text = p.replacement + text;
    }
    piece.text = std::move(text);
    if (!p.split) {
      out.push_back(std::move(piece));
      continue;
    }
    std::vector<std::pair<size_t, size_t>> matches;
    for (size_t pos = piece.text.find(p.replacement); pos != std::string::npos;
         pos = piece.text.find(p.replacement, pos + p.replacement.size())) {
      matches.emplace_back(pos, pos + p.replacement.size());
    }
    emit_spans(piece, apply_behavior(spans_from_matches(piece.text, matches, false), SplitBehavior::kMergedWithNext),
               out);
  }
  pieces = std::move(out);
}

void byte_level(const PreTokenizer& p, std::vector<Piece>& pieces) {
  for (auto& piece : pieces) {
    if (piece.added_id >= 0) continue;
    if (piece.byte_level) {
      piece.text = bytes_to_byte_level(piece.text);  // a second ByteLevel maps the characters again
      piece.byte_level = false;
    }
    if (p.add_prefix_space && piece.text.compare(0, 1, " ") != 0) piece.text = " " + piece.text;
  }
  if (p.pattern) split_by_regex(pieces, *p.pattern, SplitBehavior::kIsolated, false);
  for (auto& piece : pieces) {
    if (piece.added_id < 0) piece.byte_level = true;
  }
}

Expected<SplitBehavior> parse_behavior(const nlohmann::json& spec) {
  RADIXLM_ASSIGN_OR_RETURN(std::string name, json_string(spec, "behavior"));
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  return make_error(StatusCode::kUnsupported, "split behavior '{}' is not supported", name);
}

}  // namespace

Expected<PrependScheme> parse_prepend_scheme(const nlohmann::json& spec) {
  if (spec.contains("prepend_scheme") && spec["prepend_scheme"].is_string()) {
    const auto scheme = spec["prepend_scheme"].get<std::string>();
    if (scheme == "always") return PrependScheme::kAlways;
    if (scheme == "first") return PrependScheme::kFirst;
    if (scheme == "never") return PrependScheme::kNever;
    return make_error(StatusCode::kUnsupported, "prepend_scheme '{}' is not supported", scheme);
  }
  // Files older than prepend_scheme carry add_prefix_space instead.
  return json_bool_or(spec, "add_prefix_space", true) ? PrependScheme::kAlways : PrependScheme::kNever;
}

Expected<PreTokenizer> parse_pre_tokenizer(const nlohmann::json& spec) {
  RADIXLM_ASSIGN_OR_RETURN(std::string type, json_string(spec, "type"));
  PreTokenizer p;
  if (type == "Split") {
    p.kind = PreTokenizer::Kind::kSplit;
    RADIXLM_ASSIGN_OR_RETURN(Regex regex, parse_pattern(spec));
    p.pattern = std::make_shared<Regex>(std::move(regex));
    RADIXLM_ASSIGN_OR_RETURN(p.behavior, parse_behavior(spec));
    p.invert = json_bool_or(spec, "invert", false);
  } else if (type == "ByteLevel") {
    p.kind = PreTokenizer::Kind::kByteLevel;
    p.add_prefix_space = json_bool_or(spec, "add_prefix_space", true);
    if (json_bool_or(spec, "use_regex", true)) {
      RADIXLM_ASSIGN_OR_RETURN(Regex regex, Regex::compile(kGpt2SplitPattern));
      p.pattern = std::make_shared<Regex>(std::move(regex));
    }
  } else if (type == "Metaspace") {
    p.kind = PreTokenizer::Kind::kMetaspace;
    p.replacement = json_string_or(spec, "replacement", "\xE2\x96\x81");
    if (p.replacement.empty()) return make_error(StatusCode::kCorruptData, "Metaspace replacement is empty");
    RADIXLM_ASSIGN_OR_RETURN(p.prepend_scheme, parse_prepend_scheme(spec));
    p.split = json_bool_or(spec, "split", true);
  } else if (type == "Whitespace") {
    p.kind = PreTokenizer::Kind::kWhitespace;
  } else if (type == "WhitespaceSplit") {
    p.kind = PreTokenizer::Kind::kWhitespaceSplit;
  } else if (type == "Digits") {
    p.kind = PreTokenizer::Kind::kDigits;
    p.individual_digits = json_bool_or(spec, "individual_digits", false);
  } else if (type == "Punctuation") {
    p.kind = PreTokenizer::Kind::kPunctuation;
    if (spec.contains("behavior")) {
      RADIXLM_ASSIGN_OR_RETURN(p.behavior, parse_behavior(spec));
    }
  } else if (type == "Sequence") {
    p.kind = PreTokenizer::Kind::kSequence;
    RADIXLM_ASSIGN_OR_RETURN(const nlohmann::json* list, json_array(spec, "pretokenizers"));
    for (const auto& child : *list) {
      RADIXLM_ASSIGN_OR_RETURN(PreTokenizer c, parse_pre_tokenizer(child));
      p.children.push_back(std::move(c));
    }
  } else {
    return make_error(StatusCode::kUnsupported, "pre_tokenizer type '{}' is not supported", type);
  }
  return p;
}

void apply_pre_tokenizer(const PreTokenizer& p, std::vector<Piece>& pieces) {
  switch (p.kind) {
    case PreTokenizer::Kind::kSplit: split_by_regex(pieces, *p.pattern, p.behavior, p.invert); break;
    case PreTokenizer::Kind::kByteLevel: byte_level(p, pieces); break;
    case PreTokenizer::Kind::kMetaspace: metaspace(p, pieces); break;
    case PreTokenizer::Kind::kWhitespace:
      split_by_regex(pieces, whitespace_regex(), SplitBehavior::kRemoved, true);
      break;
    case PreTokenizer::Kind::kWhitespaceSplit:
      split_pieces(pieces, SplitBehavior::kRemoved, false,
                   [](std::string_view text) { return char_matches(text, is_whitespace); });
      break;
    case PreTokenizer::Kind::kDigits:
      split_pieces(pieces, p.individual_digits ? SplitBehavior::kIsolated : SplitBehavior::kContiguous, false,
                   [](std::string_view text) { return char_matches(text, is_numeric); });
      break;
    case PreTokenizer::Kind::kPunctuation:
      split_pieces(pieces, p.behavior, false,
                   [](std::string_view text) { return char_matches(text, is_punctuation); });
      break;
    case PreTokenizer::Kind::kSequence:
      for (const auto& child : p.children) apply_pre_tokenizer(child, pieces);
      break;
  }
}

}  // namespace radixlm::tokenizer
