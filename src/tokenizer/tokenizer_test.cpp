#include "tokenizer/tokenizer.h"

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "tokenizer/unicode_text.h"

namespace radixlm::tokenizer {
namespace {

const std::string kFixtures = std::string(RADIXLM_FIXTURES_DIR) + "/tokenizers/";

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// llama.cpp's vectors (.inp strings / .out ids, made with HF tokenizers, no special tokens).
struct Golden {
  std::vector<std::string> texts;
  std::vector<std::vector<int32_t>> ids;
};

Golden load_golden(const std::string& name) {
  Golden g;
  const std::string inp = read(kFixtures + "goldens/" + name + ".inp");
  const std::string sep = "\n__ggml_vocab_test__\n";
  for (size_t pos = 0, next; (next = inp.find(sep, pos)) != std::string::npos; pos = next + sep.size()) {
    g.texts.push_back(inp.substr(pos, next - pos));
  }
  std::istringstream out(read(kFixtures + "goldens/" + name + ".out"));
  std::string line;
  while (g.ids.size() < g.texts.size() && std::getline(out, line)) {
    std::istringstream nums(line);
    std::vector<int32_t> ids;
    for (int32_t id; nums >> id;) ids.push_back(id);
    g.ids.push_back(ids);
  }
  return g;
}

class GoldenTest : public ::testing::TestWithParam<std::pair<const char*, const char*>> {};

TEST_P(GoldenTest, EncodesLlamaCppVectors) {
  auto [golden_name, dir] = GetParam();
  auto tok = Tokenizer::load(kFixtures + dir);
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  const Golden g = load_golden(golden_name);
  ASSERT_EQ(g.texts.size(), 46u);
  for (size_t i = 0; i < g.texts.size(); ++i) {
    EXPECT_EQ(tok->encode(g.texts[i], false), g.ids[i]) << "text #" << i << ": " << g.texts[i];
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenTest,
                         ::testing::Values(std::pair{"gpt-2", "gpt2"}, std::pair{"llama-bpe", "llama-3.2-3b-instruct"},
                                           std::pair{"llama-spm", "llama-2-7b-hf"},
                                           std::pair{"qwen2", "qwen2.5-3b-instruct"}));

TEST(Tokenizer, ByteLevelDecodeRoundTripsAndStreamsWholeCharacters) {
  // Llama-3 has no normalizer, so decode(encode(s)) == s for any valid UTF-8 s.
  auto tok = Tokenizer::load(kFixtures + "llama-3.2-3b-instruct");
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  for (const std::string& text : load_golden("llama-bpe").texts) {
    const auto ids = tok->encode(text, true);
    EXPECT_EQ(tok->decode(ids, true), text);
    IncrementalDetokenizer stream(*tok);
    std::string streamed;
    for (int32_t id : ids) {
      const std::string piece = stream.feed(id);
      EXPECT_TRUE(is_valid_utf8(piece)) << text;
      streamed += piece;
    }
    streamed += stream.finish();
    EXPECT_EQ(streamed, text);
  }
}

TEST(Tokenizer, InvalidUtf8EncodesAsItsLossyReplacement) {
  auto tok = Tokenizer::load(kFixtures + "qwen2.5-3b-instruct");
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  // A truncated euro sign and a stray continuation byte: one U+FFFD each.
  EXPECT_EQ(tok->encode("a\xE2\x82" "b\x80" "c", false),
            tok->encode("a\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c", false));
  EXPECT_EQ(tok->encode("\xFF", false), tok->encode("\xEF\xBF\xBD", false));
}

TEST(Tokenizer, VocabularyAndSpecialTokens) {
  auto tok = Tokenizer::load(kFixtures + "qwen2.5-3b-instruct");
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  // Figures from SOURCES.md: 151643 vocab.json entries + 22 added tokens; <|im_end|> = 151645.
  EXPECT_EQ(tok->vocab_size(), 151665u);
  EXPECT_EQ(tok->token_to_id("<|im_end|>"), 151645);
  EXPECT_EQ(tok->id_to_token(279), "\xC4\xA0the");  // "Ġthe"
  EXPECT_TRUE(tok->is_special(151645));
  EXPECT_FALSE(tok->is_special(279));
  EXPECT_EQ(tok->eos_token(), "<|im_end|>");
  EXPECT_EQ(tok->bos_token(), "");
  EXPECT_FALSE(tok->id_to_token(-1).has_value());
  EXPECT_FALSE(tok->id_to_token(1 << 30).has_value());
}

TEST(Tokenizer, HostileFilesGiveClearErrors) {
  const std::string good = read(kFixtures + "gpt2/tokenizer.json");
  auto truncated = Tokenizer::from_json(good.substr(0, good.size() / 2));
  ASSERT_FALSE(truncated.ok());
  EXPECT_NE(truncated.status().message().find("not valid JSON"), std::string::npos);

  auto bad_merge = Tokenizer::from_json(
      R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}, "added_tokens": []})");
  ASSERT_FALSE(bad_merge.ok());
  EXPECT_NE(bad_merge.status().message().find("not in the vocabulary"), std::string::npos);

  auto malformed_merge = Tokenizer::from_json(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a"]}})");
  EXPECT_FALSE(malformed_merge.ok());

  auto huge_id = Tokenizer::from_json(R"({"model": {"type": "BPE", "vocab": {"a": 4000000000}, "merges": []}})");
  ASSERT_FALSE(huge_id.ok());
  EXPECT_EQ(huge_id.status().code(), StatusCode::kOutOfRange);

  auto sparse = Tokenizer::from_json(R"({"model": {"type": "BPE", "vocab": {"a": 16000000}, "merges": []}})");
  EXPECT_FALSE(sparse.ok());

  auto wrong_type = Tokenizer::from_json(R"({"model": {"type": "BPE", "vocab": [1, 2], "merges": []}})");
  EXPECT_FALSE(wrong_type.ok());

  auto unknown = Tokenizer::from_json(R"({"model": {"type": "WordLevel", "vocab": {}}})");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kUnsupported);

  auto bad_regex = Tokenizer::from_json(
      R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
          "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(("}, "behavior": "Isolated"}})");
  EXPECT_FALSE(bad_regex.ok());

  EXPECT_FALSE(Tokenizer::load("/nonexistent/dir").ok());
}

TEST(IncrementalDetokenizer, ByteFallbackRunsAreHeldUntilComplete) {
  auto tok = Tokenizer::load(kFixtures + "llama-2-7b-hf");
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  // U+1F600 is not in Llama-2's vocabulary: it encodes as four byte-fallback tokens.
  const auto ids = tok->encode("a \xF0\x9F\x98\x80 b", false);
  IncrementalDetokenizer stream(*tok);
  std::vector<std::string> pieces;
  for (int32_t id : ids) pieces.push_back(stream.feed(id));
  pieces.push_back(stream.finish());
  std::string joined;
  for (const auto& p : pieces) {
    EXPECT_TRUE(is_valid_utf8(p));
    joined += p;
  }
  EXPECT_EQ(joined, "a \xF0\x9F\x98\x80 b");
  // An invalid run (a lead byte followed by a non-continuation byte token) decodes to one U+FFFD per byte,
  // in the stream as in the full decode.
  const std::vector<int32_t> bad = {*tok->token_to_id("<0xF0>"), *tok->token_to_id("<0x41>"),
                                    *tok->token_to_id("\xE2\x96\x81" "b")};
  IncrementalDetokenizer bad_stream(*tok);
  std::string bad_joined;
  for (int32_t id : bad) bad_joined += bad_stream.feed(id);
  bad_joined += bad_stream.finish();
  EXPECT_EQ(bad_joined, tok->decode(bad, true));
  EXPECT_EQ(bad_joined, "\xEF\xBF\xBD\xEF\xBF\xBD b");
}

}  // namespace
}  // namespace radixlm::tokenizer
