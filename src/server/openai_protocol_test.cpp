#include "server/openai_protocol.h"

#include <gtest/gtest.h>

namespace radixlm::server::openai {
namespace {

using Json = nlohmann::json;

std::string token_text(int32_t id) {
  if (id == 7) return "\xc3\xa9t\xc3\xa9";  // "été": 3 code points, 5 bytes
  std::string text = "t";
  text += std::to_string(id);
  return text;
}

Status chat_error(const std::string& body) {
  auto parsed = parse_chat_request(body);
  return parsed.ok() ? Status::ok_status() : parsed.status();
}

Status completion_error(const std::string& body) {
  auto parsed = parse_completion_request(body);
  return parsed.ok() ? Status::ok_status() : parsed.status();
}

TEST(OpenAIChatParse, MapsOpenAIAndSGLangFieldsOntoSamplingParams) {
  auto parsed = parse_chat_request(R"({
    "model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true,
    "stream_options": {"include_usage": true}, "n": 3, "temperature": 0.5, "top_p": 0.9, "top_k": 20,
    "min_p": 0.1, "repetition_penalty": 1.1, "frequency_penalty": 0.2, "presence_penalty": 0.3,
    "max_tokens": 100, "min_tokens": 2, "stop": "END", "stop_token_ids": [5, 6], "ignore_eos": true,
    "skip_special_tokens": false, "no_stop_trim": true, "seed": 42, "logprobs": true, "top_logprobs": 4,
    "rid": "abc", "logit_bias": {"3": -1.5}, "some_unknown_field": {"ignored": true}})");
  ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
  const ChatRequest& r = *parsed;
  EXPECT_EQ(r.model, "m");
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.params.n, 3);
  EXPECT_DOUBLE_EQ(r.params.temperature, 0.5);
  EXPECT_DOUBLE_EQ(r.params.top_p, 0.9);
  EXPECT_EQ(r.params.top_k, 20);
  EXPECT_DOUBLE_EQ(r.params.min_p, 0.1);
  EXPECT_DOUBLE_EQ(r.params.repetition_penalty, 1.1);
  EXPECT_DOUBLE_EQ(r.params.frequency_penalty, 0.2);
  EXPECT_DOUBLE_EQ(r.params.presence_penalty, 0.3);
  EXPECT_EQ(r.params.max_new_tokens, 100);
  EXPECT_EQ(r.params.min_new_tokens, 2);
  EXPECT_EQ(r.params.stop, std::vector<std::string>{"END"});
  EXPECT_EQ(r.params.stop_token_ids, (std::vector<int32_t>{5, 6}));
  EXPECT_TRUE(r.params.ignore_eos);
  EXPECT_FALSE(r.params.skip_special_tokens);
  EXPECT_TRUE(r.params.no_stop_trim);
  EXPECT_EQ(r.params.seed, 42u);
  EXPECT_TRUE(r.params.return_logprob);
  EXPECT_EQ(r.params.top_logprobs_num, 4);
  EXPECT_EQ(r.rid, "abc");
  EXPECT_DOUBLE_EQ(r.params.logit_bias.at(3), -1.5);
  EXPECT_TRUE(r.params.explicitly_set.temperature);
  EXPECT_TRUE(r.add_generation_prompt);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0]["content"], "hi");
}

TEST(OpenAIChatParse, DefaultsLeaveMaxTokensToTheContextAndNothingExplicit) {
  auto parsed = parse_chat_request(R"({"messages": [{"role": "user", "content": "hi"}]})");
  ASSERT_TRUE(parsed.ok());
  EXPECT_FALSE(parsed->model.has_value());
  EXPECT_FALSE(parsed->params.max_new_tokens.has_value());
  EXPECT_FALSE(parsed->stream);
  EXPECT_EQ(parsed->params.n, 1);
  EXPECT_FALSE(parsed->params.return_logprob);
  EXPECT_FALSE(parsed->params.explicitly_set.temperature);
  EXPECT_TRUE(parsed->tools.is_null());
}

TEST(OpenAIChatParse, MaxCompletionTokensWinsOverMaxTokens) {
  auto parsed = parse_chat_request(
      R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "max_completion_tokens": 9})");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->params.max_new_tokens, 9);
}

TEST(OpenAIChatParse, TextPartsAreJoinedAndMemberOrderKept) {
  auto parsed = parse_chat_request(R"({"messages": [{"role": "user", "name": "x",
      "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
      "chat_template_kwargs": {"enable_thinking": false}, "tools": [{"type": "function", "function": {"name": "f"}}]})");
  ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
  EXPECT_EQ(parsed->messages[0]["content"], "a\nb");
  EXPECT_EQ(parsed->messages[0].begin().key(), "role");
  EXPECT_EQ(parsed->chat_template_kwargs["enable_thinking"], false);
  EXPECT_EQ(parsed->tools.size(), 1u);

  auto none = parse_chat_request(
      R"({"messages": [{"role": "user", "content": "a"}], "tools": [{"type": "function", "function": {"name": "f"}}],
          "tool_choice": "none"})");
  ASSERT_TRUE(none.ok()) << none.status().to_string();
  EXPECT_TRUE(none->tools.is_null());
}

TEST(OpenAIChatParse, ContinueFinalMessageTurnsOffTheGenerationPrompt) {
  auto parsed = parse_chat_request(R"({"messages": [{"role": "user", "content": "a"},
      {"role": "assistant", "content": "The answer is"}], "continue_final_message": true})");
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->continue_final_message);
  EXPECT_FALSE(parsed->add_generation_prompt);
  EXPECT_FALSE(chat_error(R"({"messages": [{"role": "user", "content": "a"}], "continue_final_message": true})").ok());
  EXPECT_FALSE(chat_error(R"({"messages": [{"role": "assistant", "content": "a"}], "continue_final_message": true,
      "add_generation_prompt": true})").ok());
}

TEST(OpenAIChatParse, EveryBadFieldIsAClearInvalidArgument) {
  const std::string messages = R"("messages": [{"role": "user", "content": "hi"}])";
  struct Case {
    std::string body;
    std::string mentions;
  };
  const std::vector<Case> cases = {
      {"not json", "not valid JSON"},
      {"[1, 2]", "must be a JSON object"},
      {"{}", "messages is required"},
      {R"({"messages": []})", "must not be empty"},
      {R"({"messages": "hi"})", "messages must be a list"},
      {R"({"messages": [1]})", "messages[0] must be an object"},
      {R"({"messages": [{"content": "x"}]})", "messages[0].role"},
      {R"({"messages": [{"role": "user", "content": 5}]})", "messages[0].content"},
      {R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]})", "image_url"},
      {"{" + messages + R"(, "n": 0})", "n must be in [1, 128]"},
      {"{" + messages + R"(, "n": 129})", "n must be in [1, 128]"},
      {"{" + messages + R"(, "n": "2"})", "n must be an integer"},
      {"{" + messages + R"(, "n": 1.5})", "n must be an integer"},
      {"{" + messages + R"(, "max_tokens": 0})", "max_tokens must be in [1,"},
      {"{" + messages + R"(, "max_tokens": -3})", "max_tokens"},
      {"{" + messages + R"(, "max_completion_tokens": 1e30})", "max_completion_tokens"},
      {"{" + messages + R"(, "top_logprobs": 21, "logprobs": true})", "top_logprobs must be in [0, 20]"},
      {"{" + messages + R"(, "top_logprobs": 2})", "top_logprobs needs logprobs"},
      {"{" + messages + R"(, "logprobs": 1})", "logprobs must be a boolean"},
      {"{" + messages + R"(, "temperature": -0.5})", "temperature must be at least 0"},
      {"{" + messages + R"(, "temperature": "hot"})", "temperature must be a number"},
      {"{" + messages + R"(, "stream": "yes"})", "stream must be a boolean"},
      {"{" + messages + R"(, "stream_options": {"include_usage": true}})", "stream_options"},
      {"{" + messages + R"(, "stream": true, "stream_options": 3})", "stream_options must be an object"},
      {"{" + messages + R"(, "stop": 5})", "stop must be a string or a list"},
      {"{" + messages + R"(, "stop": ["a", 1]})", "stop must be a string or a list"},
      {"{" + messages + R"(, "seed": "x"})", "seed"},
      {"{" + messages + R"(, "model": 3})", "model must be a string"},
      {"{" + messages + R"(, "rid": ""})", "rid"},
      {"{" + messages + R"(, "min_tokens": 10, "max_tokens": 5})", "min_tokens (10) must not exceed max_tokens (5)"},
      {"{" + messages + R"(, "logit_bias": {"x": 1}})", "logit_bias"},
      {"{" + messages + R"(, "regex": "a+"})", "not supported yet"},
      {"{" + messages + R"(, "json_schema": "{}"})", "not supported yet"},
      {"{" + messages + R"(, "response_format": {"type": "json_object"}})", "not supported yet"},
      {"{" + messages + R"(, "tool_choice": "required"})", "not supported yet"},
      {"{" + messages + R"(, "tools": {}})", "tools must be a list"},
      {"{" + messages + R"(, "tools": [{"type": "function"}]})", "tools[0].function must be an object"},
      {"{" + messages + R"(, "tools": [{"type": "web", "function": {"name": "f"}}]})", "tools[0].type"},
      {"{" + messages + R"(, "tools": [{"function": {"name": ""}}]})", "tools[0].function.name"},
      {"{" + messages + R"(, "tools": [{"function": {"name": "f", "parameters": 3}}]})", "parameters"},
      {R"({"messages": [{"role": "robot", "content": "x"}]})", "messages[0].role must be one of"},
      {"{" + messages + R"(, "chat_template_kwargs": []})", "chat_template_kwargs must be an object"},
  };
  for (const Case& c : cases) {
    const Status status = chat_error(c.body);
    ASSERT_FALSE(status.ok()) << c.body;
    EXPECT_TRUE(status.code() == StatusCode::kInvalidArgument || status.code() == StatusCode::kUnsupported) << c.body;
    EXPECT_NE(status.message().find(c.mentions), std::string::npos) << c.body << " -> " << status.message();
  }
  // Nulls mean "not given", as OpenAI's clients send them.
  EXPECT_TRUE(chat_error("{" + messages + R"(, "n": null, "stop": null, "response_format": {"type": "text"},
      "stream_options": null, "max_tokens": null, "seed": null})").ok());
}

TEST(OpenAICompletionParse, PromptShapes) {
  auto text = parse_completion_request(R"({"prompt": "hello"})");
  ASSERT_TRUE(text.ok());
  ASSERT_EQ(text->prompts.size(), 1u);
  EXPECT_EQ(text->prompts[0].text, "hello");
  EXPECT_EQ(text->params.max_new_tokens, 16);  // OpenAI's and SGLang's default for completions

  auto texts = parse_completion_request(R"({"prompt": ["a", "b", "c"], "n": 2})");
  ASSERT_TRUE(texts.ok());
  ASSERT_EQ(texts->prompts.size(), 3u);
  EXPECT_EQ(texts->prompts[2].text, "c");

  auto ids = parse_completion_request(R"({"prompt": [1, 2, 3]})");
  ASSERT_TRUE(ids.ok());
  ASSERT_EQ(ids->prompts.size(), 1u);
  EXPECT_FALSE(ids->prompts[0].text.has_value());
  EXPECT_EQ(ids->prompts[0].token_ids, (std::vector<int32_t>{1, 2, 3}));

  auto id_lists = parse_completion_request(R"({"prompt": [[1, 2], [3]]})");
  ASSERT_TRUE(id_lists.ok());
  ASSERT_EQ(id_lists->prompts.size(), 2u);
  EXPECT_EQ(id_lists->prompts[1].token_ids, (std::vector<int32_t>{3}));
}

TEST(OpenAICompletionParse, LogprobsEchoAndErrors) {
  auto parsed = parse_completion_request(R"({"prompt": "x", "logprobs": 3, "echo": true, "max_tokens": 4})");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->logprobs, 3);
  EXPECT_TRUE(parsed->echo);
  EXPECT_TRUE(parsed->params.return_logprob);
  EXPECT_EQ(parsed->params.top_logprobs_num, 3);
  auto zero = parse_completion_request(R"({"prompt": "x", "logprobs": 0})");
  ASSERT_TRUE(zero.ok());
  EXPECT_TRUE(zero->params.return_logprob);
  EXPECT_EQ(zero->params.top_logprobs_num, 0);

  for (const char* body : {R"({})", R"({"prompt": 5})", R"({"prompt": []})", R"({"prompt": [[]]})",
                           R"({"prompt": [1, "a"]})", R"({"prompt": ["a", 1]})", R"({"prompt": [[1], "a"]})",
                           R"({"prompt": [-1]})", R"({"prompt": [1.5]})", R"({"prompt": [4294967296]})",
                           R"({"prompt": "x", "logprobs": 21})", R"({"prompt": "x", "logprobs": true})",
                           R"({"prompt": "x", "echo": 1})", R"({"prompt": "x", "suffix": "y"})",
                           R"({"prompt": "x", "best_of": 3})", R"({"prompt": "x", "max_tokens": 0})"}) {
    EXPECT_FALSE(completion_error(body).ok()) << body;
  }
}

TEST(OpenAIProtocol, CutAfterFinalMessageKeepsWhatTheTemplateKept) {
  const std::string rendered = "<u>hi</u><a>The answer is </a><a>";
  auto cut = cut_after_final_message(rendered, "The answer is ");
  ASSERT_TRUE(cut.ok());
  EXPECT_EQ(*cut, "<u>hi</u><a>The answer is ");
  auto stripped = cut_after_final_message("<a>The answer is</a>", "The answer is  ");
  ASSERT_TRUE(stripped.ok());
  EXPECT_EQ(*stripped, "<a>The answer is");
  EXPECT_FALSE(cut_after_final_message("<a>x</a>", "missing").ok());
  EXPECT_FALSE(cut_after_final_message("<a>x</a>", "  ").ok());
}

TEST(OpenAIProtocol, ContextLengthErrorsInOpenAIsWords) {
  EXPECT_TRUE(check_context_length(10, 5, 16).ok());
  EXPECT_TRUE(check_context_length(10, std::nullopt, 16).ok());
  const Status prompt = check_context_length(16, std::nullopt, 16);
  ASSERT_FALSE(prompt.ok());
  EXPECT_EQ(prompt.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(prompt.message().find("This model's maximum context length is 16 tokens"), std::string::npos);
  const Status total = check_context_length(10, 7, 16);
  ASSERT_FALSE(total.ok());
  EXPECT_NE(total.message().find("you requested 17 tokens (10 in the messages, 7 in the completion)"), std::string::npos);
}

TEST(OpenAIProtocol, ChatLogprobsShape) {
  SampledToken token{7, -0.25f, {{7, -0.25f}, {3, -1.5f}}};
  const Json logprobs = chat_logprobs_json(std::vector<SampledToken>{token}, token_text);
  const Json expected = Json::parse(R"({"content": [{"token": "été", "logprob": -0.25,
      "bytes": [195, 169, 116, 195, 169], "top_logprobs": [
        {"token": "été", "logprob": -0.25, "bytes": [195, 169, 116, 195, 169]},
        {"token": "t3", "logprob": -1.5, "bytes": [116, 51]}]}]})");
  EXPECT_EQ(logprobs, expected);
}

TEST(OpenAIProtocol, CompletionLogprobsShapeAndOffsetsInCodePoints) {
  CompletionLogprobs logprobs;
  logprobs.add(1, std::nullopt, {}, token_text);  // a prompt's first token has no logprob
  std::vector<SampledToken> sampled = {{7, -0.5f, {{7, -0.5f}, {2, -2.0f}}}, {2, -1.0f, {{2, -1.0f}, {7, -3.0f}}}};
  logprobs.add(sampled, token_text);
  const Json expected = Json::parse(R"({"tokens": ["t1", "été", "t2"], "token_logprobs": [null, -0.5, -1.0],
      "top_logprobs": [null, {"été": -0.5, "t2": -2.0}, {"t2": -1.0, "été": -3.0}], "text_offset": [0, 2, 5]})");
  EXPECT_EQ(logprobs.json(), expected);
  CompletionLogprobs next = logprobs.continuation();
  next.add(1, -0.1f, {}, token_text);
  EXPECT_EQ(next.json()["text_offset"], Json::array({7}));
  EXPECT_EQ(utf8_length("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), 4u);
}

TEST(OpenAIProtocol, FinishReasonMatchedStopAndUsage) {
  EngineOutput eos;
  eos.finish_reason = "stop";
  eos.matched_token = 2;
  eos.prompt_tokens = 10;
  eos.completion_tokens = 4;
  eos.cached_tokens = 3;
  EngineOutput string_stop = eos;
  string_stop.matched_token.reset();
  string_stop.matched_string = "END";
  EngineOutput length;
  length.finish_reason = "length";
  length.prompt_tokens = 10;
  length.completion_tokens = 8;
  EXPECT_EQ(finish_reason_json(eos), "stop");
  EXPECT_EQ(matched_stop_json(eos), 2);
  EXPECT_EQ(matched_stop_json(string_stop), "END");
  EXPECT_EQ(finish_reason_json(length), "length");
  EXPECT_TRUE(matched_stop_json(length).is_null());
  EXPECT_TRUE(finish_reason_json(EngineOutput{}).is_null());

  // n = 2 over two prompts: each prompt counted once, completions and cache hits summed.
  std::vector<EngineOutput> outputs = {eos, length, eos, string_stop};
  const Usage usage = sum_usage(outputs, 2);
  EXPECT_EQ(usage.prompt_tokens, 20);
  EXPECT_EQ(usage.completion_tokens, 20);
  EXPECT_EQ(usage.cached_tokens, 9);
  EXPECT_EQ(usage_json(usage), Json::parse(R"({"prompt_tokens": 20, "completion_tokens": 20, "total_tokens": 40,
      "prompt_tokens_details": {"cached_tokens": 9}})"));
}

TEST(OpenAIProtocol, ResponseAndChunkShapes) {
  const ResponseMeta meta{"chatcmpl-1", 1700000000, "tiny"};
  EngineOutput output;
  output.finish_reason = "stop";
  output.matched_token = 2;
  const Json response = chat_response_json(meta, Json::array({chat_choice_json(0, "hello", output, nullptr)}),
                                           Usage{3, 1, 0});
  EXPECT_EQ(response["object"], "chat.completion");
  EXPECT_EQ(response["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(response["choices"][0]["message"]["content"], "hello");
  EXPECT_EQ(response["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(response["choices"][0]["matched_stop"], 2);
  EXPECT_EQ(response["usage"]["total_tokens"], 4);

  const Json chunk = chat_chunk_json(meta, 1, {{"content", "x"}}, nullptr, nullptr, nullptr);
  EXPECT_EQ(chunk["object"], "chat.completion.chunk");
  EXPECT_EQ(chunk["choices"][0]["index"], 1);
  EXPECT_EQ(chunk["choices"][0]["delta"]["content"], "x");
  EXPECT_TRUE(chunk["choices"][0]["finish_reason"].is_null());
  EXPECT_FALSE(chunk["choices"][0].contains("matched_stop"));

  const Json usage = usage_chunk_json(meta, "chat.completion.chunk", Usage{3, 1, 2});
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["prompt_tokens_details"]["cached_tokens"], 2);

  const Json completion = completion_chunk_json({"cmpl-1", 1, "tiny"}, 0, "", nullptr, "length", nullptr);
  EXPECT_EQ(completion["object"], "text_completion");
  EXPECT_EQ(completion["choices"][0]["finish_reason"], "length");

  const Json models = model_list_json("tiny", "/models/tiny", 5, 2048);
  EXPECT_EQ(models["object"], "list");
  EXPECT_EQ(models["data"][0]["id"], "tiny");
  EXPECT_EQ(models["data"][0]["object"], "model");
}

TEST(OpenAIProtocol, SseFramingAndInvalidUtf8) {
  EXPECT_EQ(sse_event(Json{{"a", 1}}), "data: {\"a\":1}\n\n");
  EXPECT_EQ(kSseDone, "data: [DONE]\n\n");
  // A partial character from the model must not throw while dumping.
  EXPECT_EQ(dump_json(Json("a\xc3")), "\"a\xef\xbf\xbd\"");
}

}  // namespace
}  // namespace radixlm::server::openai
