#include "bench/sse_parser.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace radixlm::bench {
namespace {

std::vector<std::string> parse_in_pieces(const std::string& stream, const std::vector<size_t>& cuts) {
  SseParser parser;
  std::vector<std::string> events;
  size_t begin = 0;
  for (size_t cut : cuts) {
    for (auto& e : parser.feed(std::string_view(stream).substr(begin, cut - begin))) events.push_back(std::move(e));
    begin = cut;
  }
  for (auto& e : parser.feed(std::string_view(stream).substr(begin))) events.push_back(std::move(e));
  for (auto& e : parser.finish()) events.push_back(std::move(e));
  return events;
}

const std::string kStream =
    ": keep-alive comment\n"
    "data: {\"text\": \"h\\u00e9\", \"meta_info\": {\"completion_tokens\": 1}}\r\n\r\n"
    "event: message\nid: 7\nretry: 100\n"
    "data: first line\ndata:second line\n\n"
    "data: caf\xc3\xa9 \xf0\x9f\x8e\x89\r\r"  // a lone CR ends a line too
    "data: [DONE]\n\n";

const std::vector<std::string> kExpected{
    "{\"text\": \"h\\u00e9\", \"meta_info\": {\"completion_tokens\": 1}}",
    "first line\nsecond line",
    "caf\xc3\xa9 \xf0\x9f\x8e\x89",
    "[DONE]",
};

TEST(SseParser, WholeStream) { EXPECT_EQ(parse_in_pieces(kStream, {}), kExpected); }

TEST(SseParser, EverySplitPointGivesTheSameEvents) {
  for (size_t cut = 0; cut <= kStream.size(); ++cut) {
    EXPECT_EQ(parse_in_pieces(kStream, {cut}), kExpected) << "split at " << cut;
  }
}

TEST(SseParser, ByteByByte) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < kStream.size(); ++i) cuts.push_back(i);
  EXPECT_EQ(parse_in_pieces(kStream, cuts), kExpected);
}

TEST(SseParser, EventsCompleteOnlyAtTheBlankLine) {
  SseParser parser;
  EXPECT_TRUE(parser.feed("data: a").empty());
  EXPECT_TRUE(parser.feed("bc\n").empty());
  EXPECT_EQ(parser.feed("\n"), std::vector<std::string>{"abc"});
  EXPECT_TRUE(parser.feed("\n\n").empty());  // blank lines without data dispatch nothing
  EXPECT_TRUE(parser.feed("data: tail").empty());
  EXPECT_EQ(parser.finish(), std::vector<std::string>{"tail"});  // unterminated last event still counts
}

TEST(SseParser, EmptyDataAndFieldWithoutColon) {
  SseParser parser;
  EXPECT_EQ(parser.feed("data\n\ndata:\n\n"), (std::vector<std::string>{"", ""}));
}

}  // namespace
}  // namespace radixlm::bench
