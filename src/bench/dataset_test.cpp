#include "bench/dataset.h"

#include <cmath>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "bench/random.h"

namespace radixlm::bench {
namespace {

TEST(RandomDataset, LengthsStayInSglangsRange) {
  for (double ratio : {0.0, 0.25, 0.5, 0.9, 1.0}) {
    RandomDatasetOptions options;
    options.num_prompts = 2000;
    options.input_len = 100;
    options.output_len = 40;
    options.range_ratio = ratio;
    options.vocab_size = 500;
    BenchRng rng(1);
    auto prompts = random_dataset(options, nullptr, rng);
    ASSERT_TRUE(prompts.ok());
    ASSERT_EQ(prompts->size(), 2000u);
    const int64_t in_low = std::max<int64_t>(static_cast<int64_t>(std::floor(100 * ratio)), 1);
    const int64_t out_low = std::max<int64_t>(static_cast<int64_t>(std::floor(40 * ratio)), 1);
    std::set<int64_t> seen_in, seen_out;
    for (const BenchPrompt& p : *prompts) {
      EXPECT_GE(p.prompt_len, in_low);
      EXPECT_LE(p.prompt_len, 100);
      EXPECT_EQ(static_cast<int64_t>(p.input_ids.size()), p.prompt_len);
      EXPECT_TRUE(p.text.empty());
      EXPECT_GE(p.output_len, out_low);
      EXPECT_LE(p.output_len, 40);
      for (int32_t id : p.input_ids) {
        ASSERT_GE(id, 0);
        ASSERT_LT(id, 500);
      }
      seen_in.insert(p.prompt_len);
      seen_out.insert(p.output_len);
    }
    // 2000 draws cover every length of the range (each has probability >= 1/100 per draw).
    EXPECT_EQ(static_cast<int64_t>(seen_in.size()), 100 - in_low + 1) << ratio;
    EXPECT_EQ(*seen_in.begin(), in_low);
    EXPECT_EQ(*seen_in.rbegin(), 100);
    EXPECT_EQ(*seen_out.rbegin(), 40);
  }
}

TEST(RandomDataset, SameSeedSamePrompts) {
  RandomDatasetOptions options;
  options.num_prompts = 20;
  options.input_len = 30;
  options.output_len = 5;
  options.range_ratio = 0.5;
  options.vocab_size = 1000;
  BenchRng a(9), b(9);
  auto pa = random_dataset(options, nullptr, a), pb = random_dataset(options, nullptr, b);
  ASSERT_TRUE(pa.ok() && pb.ok());
  for (size_t i = 0; i < pa->size(); ++i) {
    EXPECT_EQ((*pa)[i].input_ids, (*pb)[i].input_ids);
    EXPECT_EQ((*pa)[i].output_len, (*pb)[i].output_len);
  }
}

TEST(RandomDataset, RejectsBadOptions) {
  BenchRng rng(1);
  RandomDatasetOptions options;
  options.vocab_size = 0;
  EXPECT_FALSE(random_dataset(options, nullptr, rng).ok());
  options.vocab_size = 10;
  options.range_ratio = 1.5;
  EXPECT_FALSE(random_dataset(options, nullptr, rng).ok());
  options.range_ratio = NAN;
  EXPECT_FALSE(random_dataset(options, nullptr, rng).ok());
  options.range_ratio = 0.5;
  options.num_prompts = 0;
  EXPECT_FALSE(random_dataset(options, nullptr, rng).ok());
}

// A codec whose tokens are single bytes ('a' + id): enough to check the dataset's own rules (text prompts,
// special ids skipped, lengths counted by the codec), not a tokenizer.
TextCodec letter_codec() {
  TextCodec codec;
  codec.vocab_size = 27;
  codec.is_special = [](int32_t id) { return id == 26; };
  codec.decode = [](std::span<const int32_t> ids) {
    std::string s;
    for (int32_t id : ids) s.push_back(static_cast<char>('a' + id));
    return s;
  };
  codec.encode = [](std::string_view text) {
    std::vector<int32_t> ids;
    for (char c : text) {
      if (c != ' ') ids.push_back(c - 'a');
    }
    return ids;
  };
  return codec;
}

TEST(RandomDataset, TextPromptsFromTheVocabularyWithoutSpecialTokens) {
  const TextCodec codec = letter_codec();
  RandomDatasetOptions options;
  options.num_prompts = 200;
  options.input_len = 16;
  options.output_len = 4;
  options.range_ratio = 1.0;
  BenchRng rng(2);
  auto prompts = random_dataset(options, &codec, rng);
  ASSERT_TRUE(prompts.ok());
  for (const BenchPrompt& p : *prompts) {
    EXPECT_TRUE(p.input_ids.empty());
    EXPECT_EQ(p.text.size(), 16u);
    EXPECT_EQ(p.prompt_len, 16);
    EXPECT_EQ(p.output_len, 4);
    EXPECT_EQ(p.text.find('a' + 26), std::string::npos);
  }
}

TEST(ShareGpt, FiltersShufflesAndCounts) {
  const TextCodec codec = letter_codec();
  const std::string file = R"([
    {"id": "1", "conversations": [{"from": "human", "value": "abc"}, {"from": "gpt", "value": "defg"}]},
    {"id": "2", "conversations": [{"from": "human", "value": "only one turn"}]},
    {"id": "3", "conversation": [{"from": "human", "value": "hijk"}, {"from": "gpt", "value": "lm"}]},
    {"id": "4", "conversations": [{"from": "human", "value": "x"}, {"from": "gpt", "value": "too short prompt"}]},
    {"id": "5", "conversations": [{"from": "human", "value": 7}, {"from": "gpt", "value": "bad type"}]},
    "not an object",
    {"id": "6", "conversations": [{"from": "human", "value": "nop"}, {"from": "gpt", "value": "q"}]}
  ])";
  ShareGptOptions options;
  options.num_prompts = 10;
  BenchRng rng(5);
  auto prompts = sharegpt_dataset(file, options, codec, rng);
  ASSERT_TRUE(prompts.ok()) << prompts.status().to_string();
  std::set<std::string> texts;
  for (const BenchPrompt& p : *prompts) {
    texts.insert(p.text);
    if (p.text == "abc") {
      EXPECT_EQ(p.output_len, 4);
    }
    if (p.text == "hijk") {
      EXPECT_EQ(p.output_len, 2);
    }
  }
  EXPECT_EQ(texts, (std::set<std::string>{"abc", "hijk"}));  // "nop" has a 1-token answer

  options.fixed_output_len = 8;
  options.context_len = 11;
  BenchRng rng2(5);
  prompts = sharegpt_dataset(file, options, codec, rng2);
  ASSERT_TRUE(prompts.ok());
  EXPECT_EQ(prompts->size(), 2u);  // "abc" and "nop" (3 + 8 tokens) kept, "hijk" (4 + 8 > 11) dropped
  for (const BenchPrompt& p : *prompts) {
    EXPECT_EQ(p.output_len, 8);
    EXPECT_NE(p.text, "hijk");
  }

  options.num_prompts = 1;
  BenchRng rng3(5);
  prompts = sharegpt_dataset(file, options, codec, rng3);
  ASSERT_TRUE(prompts.ok());
  EXPECT_EQ(prompts->size(), 1u);
}

TEST(ShareGpt, RejectsBadFiles) {
  const TextCodec codec = letter_codec();
  ShareGptOptions options;
  BenchRng rng(1);
  EXPECT_FALSE(sharegpt_dataset("{not json", options, codec, rng).ok());
  EXPECT_FALSE(sharegpt_dataset("{}", options, codec, rng).ok());
  EXPECT_FALSE(sharegpt_dataset("[]", options, codec, rng).ok());
  options.fixed_output_len = 2;
  EXPECT_FALSE(sharegpt_dataset(R"([{"conversations": [{"value": "abc"}, {"value": "def"}]}])", options, codec, rng).ok());
}

}  // namespace
}  // namespace radixlm::bench
