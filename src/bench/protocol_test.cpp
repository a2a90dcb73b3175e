#include "bench/protocol.h"

#include <gtest/gtest.h>

namespace radixlm::bench {
namespace {

BenchPrompt ids_prompt() {
  BenchPrompt p;
  p.input_ids = {5, 6, 7};
  p.prompt_len = 3;
  p.output_len = 6;
  return p;
}

TEST(Payload, GenerateWithIdsAndExtraBody) {
  PayloadOptions options;
  options.extra_body = {{"rid", "x"}, {"stream", false}};
  auto payload = build_payload(ApiKind::kGenerate, ids_prompt(), options);
  ASSERT_TRUE(payload.ok());
  EXPECT_EQ((*payload)["input_ids"], nlohmann::json({5, 6, 7}));
  EXPECT_FALSE(payload->contains("text"));
  EXPECT_EQ((*payload)["sampling_params"]["max_new_tokens"], 6);
  EXPECT_EQ((*payload)["sampling_params"]["temperature"], 0.0);
  EXPECT_EQ((*payload)["sampling_params"]["ignore_eos"], true);
  EXPECT_EQ((*payload)["rid"], "x");
  EXPECT_EQ((*payload)["stream"], false);  // the extra body wins, as in bench_serving
}

TEST(Payload, OpenAiRoutes) {
  BenchPrompt text;
  text.text = "hello";
  text.output_len = 3;
  PayloadOptions options;
  options.model = "m";
  auto completion = build_payload(ApiKind::kCompletions, text, options);
  ASSERT_TRUE(completion.ok());
  EXPECT_EQ((*completion)["prompt"], "hello");
  EXPECT_EQ((*completion)["max_tokens"], 3);
  EXPECT_EQ((*completion)["model"], "m");
  EXPECT_EQ((*completion)["stream_options"]["include_usage"], true);
  auto chat = build_payload(ApiKind::kChat, text, options);
  ASSERT_TRUE(chat.ok());
  EXPECT_EQ((*chat)["messages"][0]["content"], "hello");
  EXPECT_EQ((*chat)["messages"][0]["role"], "user");
  EXPECT_FALSE(build_payload(ApiKind::kChat, ids_prompt(), options).ok());
  options.stream = false;
  EXPECT_FALSE(build_payload(ApiKind::kCompletions, text, options)->contains("stream_options"));
}

TEST(BackendNames, MapToRoutes) {
  EXPECT_EQ(api_route(*backend_api("sglang")), "/generate");
  EXPECT_EQ(api_route(*backend_api("sglang-oai")), "/v1/completions");
  EXPECT_EQ(api_route(*backend_api("vllm")), "/v1/completions");
  EXPECT_EQ(api_route(*backend_api("chat")), "/v1/chat/completions");
  EXPECT_FALSE(backend_api("trt").ok());
}

std::string sse(const std::string& data) { return "data: " + data + "\n\n"; }

TEST(Accumulator, GenerateStreamDividesGapsOverNewTokens) {
  ResponseAccumulator acc(ApiKind::kGenerate, true, ids_prompt());
  acc.on_status(200);
  acc.on_body(sse(R"({"text": "a", "meta_info": {"completion_tokens": 1, "prompt_tokens": 3}})"), 0.10);
  // One event carrying three tokens 0.3 s later: three latencies of 0.1 s.
  acc.on_body(sse(R"({"text": "abcd", "meta_info": {"completion_tokens": 4, "prompt_tokens": 3}})"), 0.40);
  // No new token: no latency, and the clock of the last token stays.
  acc.on_body(sse(R"({"text": "abcd", "meta_info": {"completion_tokens": 4, "prompt_tokens": 3}})"), 0.45);
  // The event split over two reads.
  acc.on_body(R"(data: {"text": "abcde", "meta_i)", 0.5);
  acc.on_body("nfo\": {\"completion_tokens\": 6, \"prompt_tokens\": 3}}\n\ndata: [DONE]\n\n", 0.6);
  RequestResult r = acc.finish("", 0.65);
  ASSERT_TRUE(r.success) << r.error;
  EXPECT_DOUBLE_EQ(r.ttft_s, 0.10);
  EXPECT_DOUBLE_EQ(r.latency_s, 0.65);
  ASSERT_EQ(r.itl_s.size(), 5u);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(r.itl_s[static_cast<size_t>(i)], 0.1, 1e-12);
  EXPECT_NEAR(r.itl_s[3], 0.1, 1e-12);  // (0.6 - 0.4) / 2
  EXPECT_NEAR(r.itl_s[4], 0.1, 1e-12);
  EXPECT_EQ(r.output_len, 6);
  EXPECT_EQ(r.server_prompt_tokens, 3);
  EXPECT_EQ(r.generated_text, "abcde");
}

TEST(Accumulator, GenerateStreamOfIdsOnly) {
  // A server without a tokenizer streams no text: completion_tokens alone marks the output.
  ResponseAccumulator acc(ApiKind::kGenerate, true, ids_prompt());
  acc.on_status(200);
  acc.on_body(sse(R"({"output_ids": [1], "meta_info": {"completion_tokens": 1}})"), 0.2);
  acc.on_body(sse(R"({"output_ids": [1, 2], "meta_info": {"completion_tokens": 2}})"), 0.3);
  RequestResult r = acc.finish("", 0.3);
  ASSERT_TRUE(r.success);
  EXPECT_DOUBLE_EQ(r.ttft_s, 0.2);
  ASSERT_EQ(r.itl_s.size(), 1u);
  EXPECT_NEAR(r.itl_s[0], 0.1, 1e-12);
  EXPECT_EQ(r.output_len, 2);
}

TEST(Accumulator, CompletionsStreamUsesUsage) {
  BenchPrompt p;
  p.text = "q";
  p.prompt_len = 1;
  p.output_len = 10;
  ResponseAccumulator acc(ApiKind::kCompletions, true, p);
  acc.on_status(200);
  acc.on_body(sse(R"({"choices": [{"index": 0, "text": ""}]})"), 0.05);  // role-only: not output
  acc.on_body(sse(R"({"choices": [{"index": 0, "text": "x"}]})"), 0.1);
  acc.on_body(sse(R"({"choices": [{"index": 0, "text": "yz"}]})"), 0.3);
  acc.on_body(sse(R"({"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 3}})") + "data: [DONE]\n\n", 0.31);
  RequestResult r = acc.finish("", 0.32);
  ASSERT_TRUE(r.success);
  EXPECT_DOUBLE_EQ(r.ttft_s, 0.1);
  ASSERT_EQ(r.itl_s.size(), 1u);
  EXPECT_NEAR(r.itl_s[0], 0.2, 1e-12);
  EXPECT_EQ(r.output_len, 3);
  EXPECT_EQ(r.server_prompt_tokens, 4);
  EXPECT_EQ(r.generated_text, "xyz");
}

TEST(Accumulator, ChatDeltas) {
  BenchPrompt p;
  p.text = "q";
  p.output_len = 2;
  ResponseAccumulator acc(ApiKind::kChat, true, p);
  acc.on_status(200);
  acc.on_body(sse(R"({"choices": [{"delta": {"role": "assistant", "content": ""}}]})"), 0.01);
  acc.on_body(sse(R"({"choices": [{"delta": {"content": "Hi"}}]})"), 0.02);
  acc.on_body(sse(R"({"choices": [{"delta": {"content": "!"}, "finish_reason": "length"}], "usage": {"completion_tokens": 2}})"), 0.05);
  RequestResult r = acc.finish("", 0.05);
  ASSERT_TRUE(r.success);
  EXPECT_DOUBLE_EQ(r.ttft_s, 0.02);
  EXPECT_EQ(r.generated_text, "Hi!");
  EXPECT_EQ(r.output_len, 2);
}

TEST(Accumulator, NonStreamed) {
  BenchPrompt p;
  p.text = "q";
  p.output_len = 9;
  ResponseAccumulator acc(ApiKind::kCompletions, false, p);
  acc.on_status(200);
  acc.on_body(R"({"choices": [{"text": "abc"}], "usage": {"prompt_tokens": 2, )", 0.5);
  acc.on_body(R"("completion_tokens": 3}})", 0.6);
  RequestResult r = acc.finish("", 0.7);
  ASSERT_TRUE(r.success);
  EXPECT_DOUBLE_EQ(r.ttft_s, 0.7);
  EXPECT_EQ(r.output_len, 3);
  EXPECT_EQ(r.generated_text, "abc");
  EXPECT_TRUE(r.itl_s.empty());
}

TEST(Accumulator, FailuresAreResultsNotExceptions) {
  {
    ResponseAccumulator acc(ApiKind::kGenerate, true, ids_prompt());
    acc.on_status(429);
    acc.on_body(R"({"object": "error", "message": "queue full", "type": "TooManyRequests", "code": 429})", 0.1);
    RequestResult r = acc.finish("", 0.1);
    EXPECT_FALSE(r.success);
    EXPECT_EQ(r.error, "HTTP 429: queue full");
  }
  {
    ResponseAccumulator acc(ApiKind::kGenerate, true, ids_prompt());
    acc.on_status(200);
    acc.on_body(sse(R"({"text": "a", "meta_info": {"completion_tokens": 1}})"), 0.1);
    acc.on_body(sse(R"({"error": {"message": "aborted"}})"), 0.2);
    RequestResult r = acc.finish("", 0.2);
    EXPECT_FALSE(r.success);
    EXPECT_NE(r.error.find("aborted"), std::string::npos);
  }
  {
    ResponseAccumulator acc(ApiKind::kGenerate, true, ids_prompt());
    acc.on_status(200);
    acc.on_body(sse("not json {"), 0.1);
    EXPECT_FALSE(acc.finish("", 0.1).success);
  }
  {
    ResponseAccumulator acc(ApiKind::kGenerate, true, ids_prompt());
    acc.on_status(200);
    RequestResult r = acc.finish("receive: connection reset", 0.3);
    EXPECT_FALSE(r.success);
    EXPECT_EQ(r.error, "receive: connection reset");
  }
  {
    ResponseAccumulator acc(ApiKind::kChat, false, ids_prompt());
    acc.on_status(200);
    acc.on_body("[1, 2", 0.1);
    EXPECT_FALSE(acc.finish("", 0.1).success);
  }
}

TEST(ErrorMessage, OpenAiShapes) {
  EXPECT_EQ(error_message_of(R"({"message": "m"})"), "m");
  EXPECT_EQ(error_message_of(R"({"error": {"message": "n", "type": "t"}})"), "n");
  EXPECT_EQ(error_message_of(R"({"error": "plain"})"), "plain");
  EXPECT_EQ(error_message_of("Bad Gateway"), "Bad Gateway");
}

}  // namespace
}  // namespace radixlm::bench
