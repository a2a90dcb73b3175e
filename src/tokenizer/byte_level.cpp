#include "tokenizer/byte_level.h"

#include "tokenizer/unicode_text.h"

namespace radixlm::tokenizer {
namespace {

struct ByteTables {
  std::array<char32_t, 256> to_char{};
  std::array<std::string, 256> to_char_utf8;
  std::array<int, 0x144> to_byte{};  // the alphabet's largest code point is U+0143

  ByteTables() {
    to_byte.fill(-1);
    // Printable Latin-1 bytes stand for themselves; the others are shifted to U+0100 and up, in byte order.
    char32_t next_free = 0x100;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_char[b] = printable ? static_cast<char32_t>(b) : next_free++;
      to_byte[to_char[b]] = b;
      append_utf8(to_char_utf8[b], to_char[b]);
    }
  }
};

const ByteTables& tables() {
  static const ByteTables instance;
  return instance;
}

}  // namespace

char32_t byte_to_char(unsigned char byte) { return tables().to_char[byte]; }

std::optional<unsigned char> char_to_byte(char32_t cp) {
  if (cp >= tables().to_byte.size() || tables().to_byte[cp] < 0) return std::nullopt;
  return static_cast<unsigned char>(tables().to_byte[cp]);
}

std::string bytes_to_byte_level(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) out += tables().to_char_utf8[b];
  return out;
}

std::optional<std::string> byte_level_to_bytes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    auto byte = char_to_byte(next_code_point(text, pos));
    if (!byte) return std::nullopt;
    out += static_cast<char>(*byte);
  }
  return out;
}

}  // namespace radixlm::tokenizer
