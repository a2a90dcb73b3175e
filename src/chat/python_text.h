#pragma once
// Python's text semantics on UTF-8 strings: templates index, slice, strip and case-map by code point, and
// print floats and strings the way Python's repr() does, so rendered prompts match jinja2 byte for byte.

#include <string>
#include <string_view>
#include <vector>

namespace radixlm::chat {

// Whether `text` is valid UTF-8 (templates and inputs must be; Python would have refused to decode them).
bool is_valid_utf8(std::string_view text);
std::u32string utf8_to_code_points(std::string_view text);
std::string code_points_to_utf8(std::u32string_view code_points);
void append_utf8(std::string& out, char32_t code_point);
size_t code_point_count(std::string_view text);

// str.isspace() for one code point.
bool is_python_space(char32_t c);
// A line boundary for str.splitlines().
bool is_line_break(char32_t c);
char32_t to_upper_code_point(char32_t c);
char32_t to_lower_code_point(char32_t c);
// str.upper()/str.lower(): full Unicode for ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic
// (ß upper-cases to "SS" as in Python); other scripts are left as they are.
std::string python_upper(std::string_view text);
std::string python_lower(std::string_view text);

// str.strip/lstrip/rstrip with chars=None (whitespace) or a set of characters.
std::string python_strip(std::string_view text, const std::u32string* chars, bool left, bool right);
std::vector<std::string> python_split_whitespace(std::string_view text, long max_split);
std::vector<std::string> python_splitlines(std::string_view text, bool keep_ends);

// repr(float): the shortest string that round-trips, in Python's layout ("1.0", "1e-05", "1.5e+16", "inf").
std::string python_float_repr(double value);
// repr(str): quoted, with Python's choice of quote and escapes.
std::string python_string_repr(std::string_view text);
// markupsafe.escape: & < > ' " as HTML entities.
std::string html_escape(std::string_view text);

}  // namespace radixlm::chat
