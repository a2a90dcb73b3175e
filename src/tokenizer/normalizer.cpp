#include "tokenizer/normalizer.h"

#include <nlohmann/json.hpp>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/ustring.h>

#include "tokenizer/json_fields.h"
#include "tokenizer/unicode_text.h"

namespace radixlm::tokenizer {
namespace {

void unicode_normalize(Normalizer::Kind kind, std::string& text) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* normalizer = nullptr;
  switch (kind) {
    case Normalizer::Kind::kNfc: normalizer = icu::Normalizer2::getNFCInstance(status); break;
    case Normalizer::Kind::kNfd: normalizer = icu::Normalizer2::getNFDInstance(status); break;
    case Normalizer::Kind::kNfkc: normalizer = icu::Normalizer2::getNFKCInstance(status); break;
    default: normalizer = icu::Normalizer2::getNFKDInstance(status); break;
  }
  if (U_FAILURE(status)) return;
  auto source = icu::UnicodeString::fromUTF8(icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  // Most text is already normalized; checking is much cheaper than rewriting.
  if (normalizer->isNormalized(source, status) && U_SUCCESS(status)) return;
  status = U_ZERO_ERROR;
  icu::UnicodeString result = normalizer->normalize(source, status);
  if (U_FAILURE(status)) return;
  text.clear();
  result.toUTF8String(text);
}

// Rust's char::to_lowercase, one character at a time (no context rules such as final sigma).
void lowercase(std::string& text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const char32_t cp = next_code_point(text, pos);
    if (cp < 0x80) {
      out += static_cast<char>(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
      continue;
    }
    UChar source[2];
    int32_t source_len = 0;
    U16_APPEND_UNSAFE(source, source_len, static_cast<UChar32>(cp));
    UChar lowered[8];
    UErrorCode status = U_ZERO_ERROR;
    const int32_t len = u_strToLower(lowered, 8, source, source_len, "", &status);
    if (U_FAILURE(status)) {
      append_utf8(out, cp);
      continue;
    }
    for (int32_t i = 0; i < len;) {
      UChar32 c;
      U16_NEXT(lowered, i, len, c);
      append_utf8(out, static_cast<char32_t>(c));
    }
  }
  text = std::move(out);
}

void strip(std::string& text, bool left, bool right) {
  size_t begin = 0, end = text.size();
  if (left) {
    while (begin < end) {
      size_t next = begin;
      if (!is_whitespace(next_code_point(text, next))) break;
      begin = next;
    }
  }
  if (right) {
    while (end > begin) {
      size_t start = end - 1;
      while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
      size_t probe = start;
      if (!is_whitespace(next_code_point(text, probe))) break;
      end = start;
    }
  }
  text = text.substr(begin, end - begin);
}

}  // namespace

void apply_normalizer(const Normalizer& normalizer, std::string& text) {
  switch (normalizer.kind) {
    case Normalizer::Kind::kNfc:
    case Normalizer::Kind::kNfd:
    case Normalizer::Kind::kNfkc:
    case Normalizer::Kind::kNfkd: unicode_normalize(normalizer.kind, text); break;
    case Normalizer::Kind::kLowercase: lowercase(text); break;
    case Normalizer::Kind::kStrip: strip(text, normalizer.strip_left, normalizer.strip_right); break;
    case Normalizer::Kind::kReplace: text = replace_all(*normalizer.pattern, text, normalizer.content); break;
    case Normalizer::Kind::kPrepend:
      if (!text.empty()) text = normalizer.content + text;
      break;
    case Normalizer::Kind::kSequence:
      for (const auto& child : normalizer.children) apply_normalizer(child, text);
      break;
  }
}

Expected<Normalizer> parse_normalizer(const nlohmann::json& spec) {
  RADIXLM_ASSIGN_OR_RETURN(std::string type, json_string(spec, "type"));
  Normalizer n;
  if (type == "NFC") {
    n.kind = Normalizer::Kind::kNfc;
  } else if (type == "NFD") {
    n.kind = Normalizer::Kind::kNfd;
  } else if (type == "NFKC") {
    n.kind = Normalizer::Kind::kNfkc;
  } else if (type == "NFKD") {
    n.kind = Normalizer::Kind::kNfkd;
  } else if (type == "Lowercase") {
    n.kind = Normalizer::Kind::kLowercase;
  } else if (type == "Strip") {
    n.kind = Normalizer::Kind::kStrip;
    n.strip_left = json_bool_or(spec, "strip_left", true);
    n.strip_right = json_bool_or(spec, "strip_right", true);
  } else if (type == "Replace") {
    n.kind = Normalizer::Kind::kReplace;
    RADIXLM_ASSIGN_OR_RETURN(Regex pattern, parse_pattern(spec));
    n.pattern = std::make_shared<Regex>(std::move(pattern));
    RADIXLM_ASSIGN_OR_RETURN(n.content, json_string(spec, "content"));
  } else if (type == "Prepend") {
    n.kind = Normalizer::Kind::kPrepend;
    RADIXLM_ASSIGN_OR_RETURN(n.content, json_string(spec, "prepend"));
  } else if (type == "Sequence") {
    n.kind = Normalizer::Kind::kSequence;
    RADIXLM_ASSIGN_OR_RETURN(const nlohmann::json* list, json_array(spec, "normalizers"));
    for (const auto& child : *list) {
      RADIXLM_ASSIGN_OR_RETURN(Normalizer c, parse_normalizer(child));
      n.children.push_back(std::move(c));
    }
  } else {
    return make_error(StatusCode::kUnsupported, "normalizer type '{}' is not supported", type);
  }
  return n;
}

}  // namespace radixlm::tokenizer
