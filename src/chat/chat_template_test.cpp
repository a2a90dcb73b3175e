// Template choice and variables as transformers' apply_chat_template has them. Expected prompts for the
// fixture templates are what jinja2 renders for the same messages (tests/chat/ checks every template
// against jinja2 directly; here the point is which template is chosen and which variables it sees).

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "chat/chat_template.h"

namespace radixlm::chat {
namespace {

namespace fs = std::filesystem;

class ChatTemplateDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("radixlm_chat_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
                                        "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name, std::ios::binary) << text; }
  fs::path dir_;
};

const nlohmann::ordered_json kMessages = nlohmann::ordered_json::parse(R"([{"role": "user", "content": "Hi"}])");

TEST_F(ChatTemplateDir, StringTemplateAndAddedTokenObjects) {
  write("tokenizer_config.json", R"({"bos_token": {"__type": "AddedToken", "content": "<s>"}, "eos_token": "</s>",
    "chat_template": "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}{{ eos_token }}{{ tools is none }}{{ documents is none }}"})");
  auto chat = ChatTemplate::load(dir_);
  ASSERT_TRUE(chat.ok()) << chat.status().to_string();
  auto out = chat->render(kMessages, nullptr, true, nullptr);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(*out, "<s>[user]Hi[assistant]</s>TrueTrue");
}

TEST_F(ChatTemplateDir, NamedTemplatesPickDefaultOrToolUse) {
  write("tokenizer_config.json", R"({"chat_template": [{"name": "default", "template": "D"}, {"name": "tool_use", "template": "T{{ tools|length }}"}, {"name": "rag", "template": "R"}]})");
  auto chat = ChatTemplate::load(dir_);
  ASSERT_TRUE(chat.ok()) << chat.status().to_string();
  EXPECT_EQ(*chat->render(kMessages, nullptr, false, nullptr), "D");
  EXPECT_EQ(*chat->render(kMessages, nlohmann::ordered_json::parse("[{}]"), false, nullptr), "T1");
  auto rag = ChatTemplate::load(dir_, "rag");
  ASSERT_TRUE(rag.ok());
  EXPECT_EQ(*rag->render(kMessages, nullptr, false, nullptr), "R");
}

TEST_F(ChatTemplateDir, JinjaFileWinsAndOverrideFileIsUsed) {
  write("tokenizer_config.json", R"({"chat_template": "config"})");
  write("chat_template.jinja", "file {{ enable_thinking }}\n");
  auto chat = ChatTemplate::load(dir_);
  ASSERT_TRUE(chat.ok());
  EXPECT_EQ(*chat->render(kMessages, nullptr, false, nlohmann::ordered_json::parse(R"({"enable_thinking": false})")),
            "file False");  // jinja2 drops the single trailing newline
  write("other.jinja", "other");
  auto other = ChatTemplate::load(dir_, (dir_ / "other.jinja").string());
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(*other->render(kMessages, nullptr, false, nullptr), "other");
  EXPECT_FALSE(ChatTemplate::load(dir_, "no-such-name").ok());
}

TEST_F(ChatTemplateDir, ErrorsAreStatuses) {
  EXPECT_FALSE(ChatTemplate::load(dir_).ok());  // no template at all
  write("tokenizer_config.json", R"({"chat_template": "{% if %}"})");
  EXPECT_FALSE(ChatTemplate::load(dir_).ok());
  write("tokenizer_config.json", R"({"chat_template": "{{ messages[0].content }}"})");
  auto chat = ChatTemplate::load(dir_);
  ASSERT_TRUE(chat.ok());
  EXPECT_FALSE(chat->render(nlohmann::ordered_json::parse("{}"), nullptr, false, nullptr).ok());
  EXPECT_FALSE(chat->render(kMessages, nullptr, false, nlohmann::ordered_json::parse(R"({"messages": []})")).ok());
}

TEST(ChatTemplateFixtures, Qwen25RendersAsJinja2) {
  auto chat = ChatTemplate::load(fs::path(RADIXLM_FIXTURES_DIR) / "tokenizers" / "qwen2.5-3b-instruct");
  ASSERT_TRUE(chat.ok()) << chat.status().to_string();
  auto out = chat->render(kMessages, nullptr, true, nullptr);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  // jinja2's output for the same template and messages:
  EXPECT_EQ(*out,
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

}  // namespace
}  // namespace radixlm::chat
