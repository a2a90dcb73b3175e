#pragma once
// UTF-8 walking and the Unicode character classes the tokenizer pipeline needs. Text inside the pipeline is
// always valid UTF-8: Tokenizer::encode replaces invalid input bytes first (see to_valid_utf8).

#include <cstddef>
#include <string>
#include <string_view>

namespace radixlm::tokenizer {

// Replaces every invalid UTF-8 sequence with U+FFFD, one per maximal invalid subpart, exactly as Rust's
// String::from_utf8_lossy (and so HF tokenizers' byte-level decoder) does.
std::string to_valid_utf8(std::string_view bytes);
bool is_valid_utf8(std::string_view bytes);

// Decodes the code point at `pos` of valid UTF-8 and advances `pos` past it.
inline char32_t next_code_point(std::string_view text, size_t& pos) {
  const auto b0 = static_cast<unsigned char>(text[pos]);
  if (b0 < 0x80) {
    pos += 1;
    return b0;
  }
  if (b0 < 0xE0) {
    char32_t cp = ((b0 & 0x1Fu) << 6) | (static_cast<unsigned char>(text[pos + 1]) & 0x3Fu);
    pos += 2;
    return cp;
  }
  if (b0 < 0xF0) {
    char32_t cp = ((b0 & 0x0Fu) << 12) | ((static_cast<unsigned char>(text[pos + 1]) & 0x3Fu) << 6) |
                  (static_cast<unsigned char>(text[pos + 2]) & 0x3Fu);
    pos += 3;
    return cp;
  }
  char32_t cp = ((b0 & 0x07u) << 18) | ((static_cast<unsigned char>(text[pos + 1]) & 0x3Fu) << 12) |
                ((static_cast<unsigned char>(text[pos + 2]) & 0x3Fu) << 6) |
                (static_cast<unsigned char>(text[pos + 3]) & 0x3Fu);
  pos += 4;
  return cp;
}

// Length in bytes of the UTF-8 sequence that starts with `lead` (1 for a stray byte).
inline size_t utf8_sequence_length(unsigned char lead) {
  if (lead < 0xC0) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

void append_utf8(std::string& out, char32_t cp);

// Bytes at the end of `text` that start a UTF-8 sequence which is not finished yet (0 when the text ends on
// a whole character, or with bytes that can never become one).
size_t incomplete_utf8_tail(std::string_view text);

// Character classes with the meaning Rust's `char` methods give them (HF tokenizers is written in Rust).
bool is_whitespace(char32_t cp);    // char::is_whitespace (White_Space property)
bool is_alphanumeric(char32_t cp);  // char::is_alphanumeric (Alphabetic or Numeric)
bool is_numeric(char32_t cp);       // char::is_numeric (Nd, Nl, No)
bool is_punctuation(char32_t cp);   // ASCII punctuation or a Unicode P* category
bool is_word_char(char32_t cp);     // regex \w in Rust's regex crate (Unicode)

}  // namespace radixlm::tokenizer
