#pragma once
// GPT-2's byte-level alphabet: every byte maps to one printable code point, so that any byte string becomes a
// string of visible characters that a BPE vocabulary can hold (space -> 'Ġ' U+0120, newline -> 'Ċ' U+010A).

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace radixlm::tokenizer {

// The code point that stands for `byte`.
char32_t byte_to_char(unsigned char byte);
// The byte a code point stands for, if it is one of the 256 alphabet characters.
std::optional<unsigned char> char_to_byte(char32_t cp);

// Raw bytes -> their byte-level characters, as UTF-8.
std::string bytes_to_byte_level(std::string_view bytes);
// Byte-level characters -> the raw bytes; nullopt when some character is not in the alphabet.
std::optional<std::string> byte_level_to_bytes(std::string_view text);

}  // namespace radixlm::tokenizer
