// Stop strings split across pieces, held-back text, trimming, and a randomized comparison with SGLang's
// literal rule (after each piece, the first stop string of the list found anywhere in the decoded output
// stops it, and the output is cut at its first occurrence).

#include "sampling/stop_strings.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace radixlm {
namespace {

std::string feed(StopStringMatcher& matcher, const std::vector<std::string>& pieces) {
  std::string emitted;
  for (const std::string& piece : pieces) emitted += matcher.append(piece);
  return emitted;
}

TEST(StopStrings, FindsAStopStringSplitAcrossPiecesAndTrimsIt) {
  StopStringMatcher matcher({"</end>"}, /*no_stop_trim=*/false);
  EXPECT_EQ(matcher.append("Hello <"), "Hello ");  // "<" could begin the stop string: held back
  EXPECT_EQ(matcher.append("/e"), "");
  EXPECT_FALSE(matcher.stopped());
  EXPECT_EQ(matcher.append("nd> and more"), "");
  EXPECT_TRUE(matcher.stopped());
  EXPECT_EQ(matcher.matched_string(), "</end>");
  EXPECT_EQ(matcher.output(), "Hello ");
  EXPECT_EQ(matcher.append("ignored"), "");
  EXPECT_EQ(matcher.finish(), "");
}

TEST(StopStrings, NoStopTrimKeepsTheStopStringButNothingAfterIt) {
  StopStringMatcher matcher({"STOP"}, /*no_stop_trim=*/true);
  const std::string emitted = feed(matcher, {"ab", "cS", "T", "OPxyz"});
  EXPECT_TRUE(matcher.stopped());
  EXPECT_EQ(emitted, "abcSTOP");
  EXPECT_EQ(matcher.output(), "abcSTOP");
}

TEST(StopStrings, HeldBackTextIsReleasedWhenItStopsMatching) {
  StopStringMatcher matcher({"abc"}, false);
  EXPECT_EQ(matcher.append("xa"), "x");
  EXPECT_EQ(matcher.append("b"), "");
  EXPECT_EQ(matcher.append("d"), "abd");
  EXPECT_EQ(matcher.append("ab"), "");
  EXPECT_EQ(matcher.finish(), "ab");  // the request ended for another reason
  EXPECT_FALSE(matcher.stopped());
  EXPECT_EQ(matcher.output(), "xabdab");
}

TEST(StopStrings, OverlappingPrefixesHoldTheLongestCandidate) {
  // "aab": after "aa" both "a" and "aa" could start it.
  StopStringMatcher matcher({"aab"}, false);
  EXPECT_EQ(matcher.append("caa"), "c");
  EXPECT_EQ(matcher.append("a"), "a");  // "aaa": only "aa" can still start it
  EXPECT_EQ(matcher.append("b"), "");
  EXPECT_TRUE(matcher.stopped());
  EXPECT_EQ(matcher.output(), "ca");
}

TEST(StopStrings, FirstStringOfTheListWinsWithinOnePiece) {
  StopStringMatcher matcher({"world", "lo"}, false);
  EXPECT_EQ(feed(matcher, {"hello world"}), "hello ");
  EXPECT_EQ(matcher.matched_index(), 0u);  // SGLang checks the list in order
  EXPECT_EQ(matcher.output(), "hello ");
}

TEST(StopStrings, EarlierCompletionWinsAcrossPieces) {
  StopStringMatcher matcher({"world", "lo"}, false);
  EXPECT_EQ(feed(matcher, {"hel", "lo wor", "ld"}), "hel");
  EXPECT_EQ(matcher.matched_string(), "lo");
}

TEST(StopStrings, MultiByteUtf8) {
  StopStringMatcher matcher({"。\n"}, false);
  // "。" is E3 80 82; feed it a byte at a time.
  EXPECT_EQ(feed(matcher, {"日本", "\xE3", "\x80", "\x82", "\n", "x"}), "日本");
  EXPECT_TRUE(matcher.stopped());
}

TEST(StopStrings, NoStopStringsEmitsEverything) {
  StopStringMatcher matcher({}, false);
  EXPECT_EQ(matcher.append("abc"), "abc");
  EXPECT_EQ(matcher.append(""), "");
  EXPECT_EQ(matcher.finish(), "");
  EXPECT_EQ(matcher.output(), "abc");
}

// SGLang's rule written the plain way: after each piece, search the whole output for each stop string.
struct ReferenceResult {
  bool stopped = false;
  std::string output;
};

ReferenceResult reference(const std::vector<std::string>& stops, const std::vector<std::string>& pieces,
                          bool no_stop_trim) {
  std::string text;
  for (const std::string& piece : pieces) {
    text += piece;
    for (const std::string& s : stops) {
      const size_t pos = text.find(s);
      if (pos != std::string::npos) return {true, text.substr(0, no_stop_trim ? pos + s.size() : pos)};
    }
  }
  return {false, text};
}

TEST(StopStrings, RandomStreamsMatchTheReferenceRule) {
  std::mt19937 rng(123);
  std::string alphabet;
  auto random_string = [&](size_t min_len, size_t max_len) {
    std::string s(std::uniform_int_distribution<size_t>(min_len, max_len)(rng), ' ');
    for (char& c : s) c = alphabet[std::uniform_int_distribution<size_t>(0, alphabet.size() - 1)(rng)];
    return s;
  };
  int stopped = 0;
  for (int trial = 0; trial < 4000; ++trial) {
    alphabet = trial % 4 < 2 ? "ab c" : "ab";  // two letters: stop strings that overlap themselves
    std::vector<std::string> stops;
    const int num_stops = std::uniform_int_distribution<int>(1, 3)(rng);
    for (int i = 0; i < num_stops; ++i) stops.push_back(random_string(1, 4));
    std::vector<std::string> pieces;
    const int num_pieces = std::uniform_int_distribution<int>(1, 12)(rng);
    for (int i = 0; i < num_pieces; ++i) pieces.push_back(random_string(0, 3));
    const bool no_stop_trim = trial % 2 == 1;

    StopStringMatcher matcher(stops, no_stop_trim);
    std::string emitted;
    for (const std::string& piece : pieces) {
      emitted += matcher.append(piece);
      if (matcher.stopped()) break;
    }
    emitted += matcher.finish();
    const ReferenceResult expected = reference(stops, pieces, no_stop_trim);
    ASSERT_EQ(matcher.stopped(), expected.stopped) << trial;
    ASSERT_EQ(std::string(matcher.output()), expected.output) << trial;
    ASSERT_EQ(emitted, expected.output) << trial;  // streaming never shows text that gets trimmed
    stopped += expected.stopped;
  }
  EXPECT_GT(stopped, 700);  // both outcomes are exercised
  EXPECT_LT(stopped, 3300);
}

}  // namespace
}  // namespace radixlm
