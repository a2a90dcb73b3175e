#include "tokenizer/unicode_text.h"

#include <unicode/uchar.h>

namespace radixlm::tokenizer {
namespace {

// Length of the valid UTF-8 sequence at `pos`, or 0 when the bytes there are not one. `invalid_len` gets the
// length of the maximal invalid subpart (how many bytes one U+FFFD replaces), per Unicode §3.9 / Rust.
size_t valid_sequence_at(std::string_view s, size_t pos, size_t& invalid_len) {
  const auto b0 = static_cast<unsigned char>(s[pos]);
  invalid_len = 1;
  if (b0 < 0x80) return 1;
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;  // surrogates are not valid UTF-8
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  for (size_t i = 1; i < need; ++i) {
    if (pos + i >= s.size()) return 0;
    const auto b = static_cast<unsigned char>(s[pos + i]);
    const unsigned char want_lo = i == 1 ? lo : 0x80, want_hi = i == 1 ? hi : 0xBF;
    if (b < want_lo || b > want_hi) return 0;
    invalid_len = i + 1;
  }
  return need;
}

}  // namespace

std::string to_valid_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t invalid_len;
    const size_t len = valid_sequence_at(bytes, pos, invalid_len);
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      // invalid_len counts the lead byte plus the continuation bytes that were still acceptable.
      pos += invalid_len;
    } else {
      out.append(bytes.substr(pos, len));
      pos += len;
    }
  }
  return out;
}

bool is_valid_utf8(std::string_view bytes) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    const auto b = static_cast<unsigned char>(bytes[pos]);
    if (b < 0x80) {
      ++pos;
      continue;
    }
    size_t invalid_len;
    const size_t len = valid_sequence_at(bytes, pos, invalid_len);
    if (len == 0) return false;
    pos += len;
  }
  return true;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

size_t incomplete_utf8_tail(std::string_view text) {
  // Look back at most 3 bytes for a lead byte whose sequence runs past the end.
  const size_t n = text.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto b = static_cast<unsigned char>(text[n - back]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    if (b < 0xC2 || b > 0xF4) return 0;
    const size_t need = utf8_sequence_length(b);
    if (need <= back) return 0;
    // Only a prefix that can still become valid counts as incomplete.
    size_t invalid_len;
    std::string_view tail = text.substr(n - back);
    if (valid_sequence_at(tail, 0, invalid_len) == 0 && invalid_len == back) return back;
    return 0;
  }
  return 0;
}

bool is_whitespace(char32_t cp) { return u_hasBinaryProperty(static_cast<UChar32>(cp), UCHAR_WHITE_SPACE); }

bool is_numeric(char32_t cp) {
  const int8_t type = u_charType(static_cast<UChar32>(cp));
  return type == U_DECIMAL_DIGIT_NUMBER || type == U_LETTER_NUMBER || type == U_OTHER_NUMBER;
}

bool is_alphanumeric(char32_t cp) {
  return u_hasBinaryProperty(static_cast<UChar32>(cp), UCHAR_ALPHABETIC) || is_numeric(cp);
}

bool is_punctuation(char32_t cp) {
  if (cp < 0x80) return (cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x40) || (cp >= 0x5B && cp <= 0x60) ||
                        (cp >= 0x7B && cp <= 0x7E);
  return u_ispunct(static_cast<UChar32>(cp));
}

bool is_word_char(char32_t cp) {
  // UTS #18 \w: Alphabetic, Mark, Decimal_Number, Connector_Punctuation, Join_Control.
  const auto c = static_cast<UChar32>(cp);
  if (u_hasBinaryProperty(c, UCHAR_ALPHABETIC) || u_hasBinaryProperty(c, UCHAR_JOIN_CONTROL)) return true;
  const int8_t type = u_charType(c);
  return type == U_NON_SPACING_MARK || type == U_ENCLOSING_MARK || type == U_COMBINING_SPACING_MARK ||
         type == U_DECIMAL_DIGIT_NUMBER || type == U_CONNECTOR_PUNCTUATION;
}

}  // namespace radixlm::tokenizer
