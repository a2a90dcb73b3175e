// Python text semantics. Expected strings are CPython 3.11's repr() output for the same values.

#include <gtest/gtest.h>

#include "chat/python_text.h"

namespace radixlm::chat {
namespace {

TEST(PythonText, FloatReprMatchesCPython) {
  const std::pair<double, const char*> cases[] = {
      {0.0, "0.0"}, {-0.0, "-0.0"}, {1.0, "1.0"}, {0.1, "0.1"}, {0.30000000000000004, "0.30000000000000004"},
      {1e+16, "1e+16"}, {1e-05, "1e-05"}, {0.0001, "0.0001"}, {1.2345678901234568e+17, "1.2345678901234568e+17"},
      {1.5e+300, "1.5e+300"}, {2.5e-07, "2.5e-07"}, {1e+22, "1e+22"}, {5e-324, "5e-324"},
      {1.7976931348623157e+308, "1.7976931348623157e+308"}, {100.0, "100.0"}, {1234.5678, "1234.5678"},
      {9999999999999998.0, "9999999999999998.0"},
  };
  for (const auto& [value, expected] : cases) EXPECT_EQ(python_float_repr(value), expected) << expected;
}

TEST(PythonText, StringReprMatchesCPython) {
  const std::pair<const char*, const char*> cases[] = {
      {"abc", "'abc'"},
      {"it's", "\"it's\""},
      {"x\"y", "'x\"y'"},
      {"both ' and \"", "'both \\' and \"'"},
      {"\n\t\\", "'\\n\\t\\\\'"},
      {"\x7f\xc2\xa0\xe2\x80\x8b\xe2\x80\xa8\xc3\xa9\xe4\xb8\xad\xf0\x9f\x91\x8d",
       "'\\x7f\\xa0\\u200b\\u2028\xc3\xa9\xe4\xb8\xad\xf0\x9f\x91\x8d'"},
      {"\xf3\xa0\x80\x81", "'\\U000e0001'"},
  };
  for (const auto& [text, expected] : cases) EXPECT_EQ(python_string_repr(text), expected) << expected;
  EXPECT_EQ(python_string_repr(std::string("\0", 1)), "'\\x00'");
}

TEST(PythonText, StripSplitAndCase) {
  // Python: '\u3000 a b\xa0'.strip() == 'a b'; ' a  b '.split() == ['a', 'b']; 'ß'.upper() == 'SS'.
  EXPECT_EQ(python_strip("\xe3\x80\x80 a b\xc2\xa0", nullptr, true, true), "a b");
  EXPECT_EQ(python_split_whitespace(" a  b ", -1), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(python_split_whitespace(" a  b c ", 1), (std::vector<std::string>{"a", "b c"}));
  EXPECT_EQ(python_upper("stra\xc3\x9f" "e \xc3\xa9\xce\xb1\xd0\xb4"), "STRASSE \xc3\x89\xce\x91\xd0\x94");
  EXPECT_EQ(python_lower("\xc3\x89\xce\x91\xd0\x94X"), "\xc3\xa9\xce\xb1\xd0\xb4x");
  // Python: 'a\r\nb\x0bc\u2028d'.splitlines() == ['a', 'b', 'c', 'd']
  EXPECT_EQ(python_splitlines("a\r\nb\x0b" "c\xe2\x80\xa8" "d", false), (std::vector<std::string>{"a", "b", "c", "d"}));
}

TEST(PythonText, Utf8Validation) {
  EXPECT_TRUE(is_valid_utf8("h\xc3\xa9llo \xf0\x9f\x91\x8d"));
  EXPECT_FALSE(is_valid_utf8("\xc3"));
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));  // a surrogate
  EXPECT_FALSE(is_valid_utf8("\xc0\x80"));      // overlong
  EXPECT_EQ(code_point_count("h\xc3\xa9\xf0\x9f\x91\x8d"), 3u);
}

}  // namespace
}  // namespace radixlm::chat
