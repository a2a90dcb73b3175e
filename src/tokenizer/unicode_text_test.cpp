#include "tokenizer/unicode_text.h"

#include <gtest/gtest.h>

#include "tokenizer/byte_level.h"

namespace radixlm::tokenizer {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

TEST(Utf8, LossyReplacementFollowsUnicodeMaximalSubparts) {
  // The example of Unicode 15 §3.9, Table 3-8: one U+FFFD per maximal subpart of an ill-formed sequence.
  const std::string input = "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64";
  EXPECT_EQ(to_valid_utf8(input), "a" + kFffd + kFffd + kFffd + "b" + kFffd + "c" + kFffd + kFffd + "d");
  EXPECT_FALSE(is_valid_utf8(input));
}

TEST(Utf8, SurrogatesOverlongsAndTruncationAreInvalid) {
  EXPECT_EQ(to_valid_utf8("\xED\xA0\x80"), kFffd + kFffd + kFffd);  // CESU-8 lone surrogate U+D800
  EXPECT_EQ(to_valid_utf8("\xC0\xAF"), kFffd + kFffd);              // overlong '/'
  EXPECT_EQ(to_valid_utf8("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);  // above U+10FFFF
  EXPECT_EQ(to_valid_utf8("ok\xE2\x82"), "ok" + kFffd);              // truncated euro sign
  EXPECT_EQ(to_valid_utf8("\xFF"), kFffd);
  EXPECT_EQ(to_valid_utf8("h\xC3\xA9llo \xF0\x9F\x98\x80"), "h\xC3\xA9llo \xF0\x9F\x98\x80");
  EXPECT_TRUE(is_valid_utf8("h\xC3\xA9llo \xF0\x9F\x98\x80"));
}

TEST(Utf8, IncompleteTailIsOnlyAPrefixThatCanStillComplete) {
  EXPECT_EQ(incomplete_utf8_tail("abc"), 0u);
  EXPECT_EQ(incomplete_utf8_tail("ab\xE2"), 1u);
  EXPECT_EQ(incomplete_utf8_tail("ab\xE2\x82"), 2u);
  EXPECT_EQ(incomplete_utf8_tail("ab\xE2\x82\xAC"), 0u);
  EXPECT_EQ(incomplete_utf8_tail("\xF0\x9F\x98"), 3u);
  EXPECT_EQ(incomplete_utf8_tail("\xED\xA0"), 0u);  // would be a surrogate: can never complete
  EXPECT_EQ(incomplete_utf8_tail("\x80"), 0u);
}

TEST(ByteLevel, Gpt2AlphabetIsABijection) {
  EXPECT_EQ(byte_to_char(' '), U'\u0120');   // 'Ġ'
  EXPECT_EQ(byte_to_char('\n'), U'\u010A');  // 'Ċ'
  EXPECT_EQ(byte_to_char('A'), U'A');
  EXPECT_EQ(byte_to_char(0xAD), U'\u0143');  // the last shifted byte
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  EXPECT_EQ(byte_level_to_bytes(bytes_to_byte_level(all)), all);
  EXPECT_FALSE(byte_level_to_bytes(" ").has_value());  // a plain space is not in the alphabet
}

TEST(CharClasses, MatchRustCharMethods) {
  EXPECT_TRUE(is_whitespace(U'\u3000'));
  EXPECT_TRUE(is_whitespace(U'\u0085'));
  EXPECT_FALSE(is_whitespace(U'\u200B'));  // zero width space is not White_Space
  EXPECT_TRUE(is_numeric(U'\u00BD'));      // ½ is No
  EXPECT_TRUE(is_alphanumeric(U'\u0905'));
  EXPECT_TRUE(is_punctuation(U'\u3002'));
  EXPECT_TRUE(is_punctuation(U'$'));      // ASCII punctuation includes symbols
  EXPECT_TRUE(is_word_char(U'\u094D'));   // a Devanagari virama (Mn) is a word character
}

}  // namespace
}  // namespace radixlm::tokenizer
