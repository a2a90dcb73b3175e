// The OpenAI routes end to end without sockets: a real CPU engine on the llama3.2-tiny-chat fixture, its
// tokenizer and chat template, the handlers from add_openai_routes, and a RecordingChannel whose posted tasks
// run on one worker thread as a connection's strand would. Outputs are checked against the offline
// Engine::generate on the same token ids, and the SSE stream against the whole response.

#include "server/openai_routes.h"

#include <chrono>
#include <filesystem>

#include <gtest/gtest.h>

#include "backends/cpu/cpu_backend.h"
#include "chat/chat_template.h"
#include "engine/engine.h"
#include "loader/model_config.h"
#include "loader/weight_source.h"
#include "server/metrics.h"
#include "server/recording_channel.h"
#include "server/request_registry.h"
#include "server/serving_context.h"
#include "server/test_strand.h"
#include "server/tokenizer_text_decoder.h"
#include "tokenizer/tokenizer.h"

namespace radixlm::server {
namespace {

using Json = nlohmann::json;

const std::filesystem::path kModel = std::filesystem::path(RADIXLM_FIXTURES_DIR) / "models" / "llama3.2-tiny-chat";

struct Reply {
  int status = 0;
  std::string body;
  std::vector<std::string> writes;
  std::vector<std::pair<std::string, std::string>> headers;
  bool streamed = false;
  Json json() const { return Json::parse(body); }
  // The SSE events' payloads, checking the framing on the way.
  std::vector<Json> events() const {
    std::vector<Json> out;
    for (const std::string& write : writes) {
      EXPECT_EQ(write.rfind("data: ", 0), 0u) << write;
      EXPECT_GE(write.size(), 8u);
      EXPECT_EQ(write.substr(write.size() - 2), "\n\n") << write;
      const std::string payload = write.substr(6, write.size() - 8);
      if (payload == "[DONE]") {
        out.push_back("[DONE]");
      } else {
        out.push_back(Json::parse(payload));
      }
    }
    return out;
  }
};

class OpenAIRoutesTest : public testing::Test {
 protected:
  void SetUp() override {
    auto config = load_model_config(kModel);
    ASSERT_TRUE(config.ok()) << config.status().to_string();
    config_ = *config;
    auto weights = open_checkpoint(kModel);
    ASSERT_TRUE(weights.ok()) << weights.status().to_string();
    weights_ = std::move(*weights);
    auto model = load_model(config_, *weights_, backend_, ModelOptions{});
    ASSERT_TRUE(model.ok()) << model.status().to_string();
    model_ = std::move(*model);
    auto tok = tokenizer::Tokenizer::load(kModel.string());
    ASSERT_TRUE(tok.ok()) << tok.status().to_string();
    tokenizer_ = std::make_unique<tokenizer::Tokenizer>(std::move(*tok));
    auto chat = chat::ChatTemplate::load(kModel);
    ASSERT_TRUE(chat.ok()) << chat.status().to_string();
    chat_template_ = std::make_unique<chat::ChatTemplate>(std::move(*chat));
    engine_ = make_engine();
    ASSERT_TRUE(engine_);
    engine_->start();

    context_.engine = engine_.get();
    context_.model_config = &config_;
    context_.tokenizer = tokenizer_.get();
    context_.chat_template = chat_template_.get();
    context_.served_model_name = "tiny-chat";
    context_.model_path = kModel.string();
    context_.context_length = 4096;
    context_.metrics = &metrics_;
    context_.registry = &registry_;
    context_.ready = true;
    add_openai_routes(router_, context_);
  }

  void TearDown() override {
    if (engine_) engine_->stop();
  }

  std::unique_ptr<Engine> make_engine(int64_t max_queued = -1) {
    EngineOptions options;
    options.scheduler.page_size = 1;
    options.scheduler.max_total_tokens = 16384;
    options.scheduler.max_queued_requests = max_queued;
    options.eos_token_ids = {128001, 128008, 128009};
    const tokenizer::Tokenizer* tok = tokenizer_.get();
    auto engine = Engine::create(*model_, backend_, options, [tok](const SamplingParams& params) {
      return std::make_unique<TokenizerTextDecoder>(*tok, params);
    });
    EXPECT_TRUE(engine.ok()) << engine.status().to_string();
    return engine.ok() ? std::move(*engine) : nullptr;
  }

  Reply call(const std::string& method, const std::string& path, const std::string& body = "") {
    HttpRequest request;
    request.method = method;
    request.target = path;
    request.path = path;
    request.body = body;
    bool known = false;
    const Handler* handler = router_.find(method, path, &known);
    EXPECT_NE(handler, nullptr) << path;
    auto channel = std::make_shared<RecordingChannel>([this](std::function<void()> task) { strand_.post(std::move(task)); });
    if (handler) (*handler)(request, channel);
    EXPECT_TRUE(channel->wait_finished(std::chrono::seconds(120))) << body;
    Reply reply;
    reply.status = channel->status();
    reply.body = channel->body();
    reply.writes = channel->writes();
    reply.headers = channel->headers();
    reply.streamed = channel->streaming();
    return reply;
  }

  std::vector<int32_t> chat_ids(const nlohmann::ordered_json& messages) {
    auto rendered = chat_template_->render(messages, nullptr, true, nullptr);
    EXPECT_TRUE(rendered.ok());
    return tokenizer_->encode(*rendered, false);
  }

  // The reference: the offline API on a fresh engine, greedy.
  EngineOutput offline_greedy(std::vector<int32_t> ids, int32_t max_new_tokens) {
    auto engine = make_engine();
    EngineRequest request;
    request.input_ids = std::move(ids);
    request.params.temperature = 0.0;
    request.params.max_new_tokens = max_new_tokens;
    auto outputs = engine->generate({request});
    EXPECT_TRUE(outputs.ok()) << outputs.status().to_string();
    return outputs.ok() ? (*outputs)[0] : EngineOutput{};
  }

  static void expect_error(const Reply& reply, int status, const std::string& mentions) {
    EXPECT_EQ(reply.status, status) << reply.body;
    const Json body = Json::parse(reply.body, nullptr, false);
    ASSERT_TRUE(body.is_object()) << reply.body;
    EXPECT_EQ(body["object"], "error");
    EXPECT_EQ(body["code"], status);
    EXPECT_NE(body["message"].get<std::string>().find(mentions), std::string::npos) << reply.body;
  }

  CpuBackend backend_{2};
  ModelConfig config_;
  std::unique_ptr<WeightSource> weights_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  std::unique_ptr<chat::ChatTemplate> chat_template_;
  std::unique_ptr<Engine> engine_;
  ServerMetrics metrics_{"tiny-chat"};
  RequestRegistry registry_;
  ServingContext context_;
  Router router_;
  TestStrand strand_;
};

// `count` code points of UTF-8 `text` from code point `first`.
std::string utf8_slice(const std::string& text, size_t first, size_t count) {
  std::vector<size_t> starts;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) starts.push_back(i);
  }
  starts.push_back(text.size());
  if (first + count >= starts.size()) return "";
  return text.substr(starts[first], starts[first + count] - starts[first]);
}

const char* kHello = R"([{"role": "user", "content": "Hello there"}])";

TEST_F(OpenAIRoutesTest, Models) {
  const Reply list = call("GET", "/v1/models");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.json()["object"], "list");
  EXPECT_EQ(list.json()["data"][0]["id"], "tiny-chat");
  const Reply one = call("GET", "/v1/models/tiny-chat");
  ASSERT_EQ(one.status, 200);
  EXPECT_EQ(one.json()["id"], "tiny-chat");
  EXPECT_EQ(one.json()["object"], "model");
  expect_error(call("GET", "/v1/models/other"), 404, "The model `other` does not exist");
}

TEST_F(OpenAIRoutesTest, ChatMatchesOfflineGenerateWholeAndStreamed) {
  const std::vector<int32_t> ids = chat_ids(nlohmann::ordered_json::parse(kHello));
  const EngineOutput reference = offline_greedy(ids, 12);
  const std::string body =
      std::string(R"({"model": "tiny-chat", "temperature": 0, "max_tokens": 12, "messages": )") + kHello + "}";

  const Reply whole = call("POST", "/v1/chat/completions", body);
  ASSERT_EQ(whole.status, 200) << whole.body;
  const Json response = whole.json();
  EXPECT_EQ(response["object"], "chat.completion");
  EXPECT_EQ(response["model"], "tiny-chat");
  EXPECT_EQ(response["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(response["choices"][0]["message"]["content"], reference.text);
  EXPECT_EQ(response["choices"][0]["finish_reason"], reference.finish_reason);
  EXPECT_EQ(response["usage"]["prompt_tokens"], ids.size());
  EXPECT_EQ(response["usage"]["completion_tokens"], reference.completion_tokens);
  EXPECT_EQ(response["usage"]["total_tokens"], static_cast<int64_t>(ids.size()) + reference.completion_tokens);

  const std::string stream_body = std::string(R"({"model": "tiny-chat", "temperature": 0, "max_tokens": 12,
      "stream": true, "stream_options": {"include_usage": true}, "messages": )") + kHello + "}";
  const Reply streamed = call("POST", "/v1/chat/completions", stream_body);
  ASSERT_EQ(streamed.status, 200);
  ASSERT_TRUE(streamed.streamed);
  const std::vector<Json> events = streamed.events();
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events.front()["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(events.back(), "[DONE]");
  const Json& usage = events[events.size() - 2];
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], reference.completion_tokens);
  std::string text;
  int finishes = 0;
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    const Json& choice = events[i]["choices"][0];
    EXPECT_EQ(events[i]["object"], "chat.completion.chunk");
    EXPECT_EQ(choice["index"], 0);
    if (choice["delta"].contains("content")) text += choice["delta"]["content"].get<std::string>();
    if (!choice["finish_reason"].is_null()) {
      ++finishes;
      EXPECT_EQ(choice["finish_reason"], reference.finish_reason);
      EXPECT_EQ(i + 3, events.size()) << "the finish chunk comes last before usage";
    }
  }
  EXPECT_EQ(finishes, 1);
  EXPECT_EQ(text, reference.text);
}

TEST_F(OpenAIRoutesTest, ChatLogprobsAndParallelSamplesInterleave) {
  const std::string body = std::string(R"({"temperature": 0.8, "seed": 7, "max_tokens": 6, "n": 3, "logprobs": true,
      "top_logprobs": 3, "ignore_eos": true, "stream": true, "messages": )") + kHello + "}";
  const Reply streamed = call("POST", "/v1/chat/completions", body);
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  std::vector<int> roles(3, 0), finishes(3, 0), tokens(3, 0);
  for (const Json& event : streamed.events()) {
    if (event == "[DONE]") continue;
    const Json& choice = event["choices"][0];
    const size_t index = choice["index"].get<size_t>();
    ASSERT_LT(index, 3u);
    if (choice["delta"].contains("role")) ++roles[index];
    if (!choice["finish_reason"].is_null()) ++finishes[index];
    if (!choice["logprobs"].is_null()) {
      for (const Json& entry : choice["logprobs"]["content"]) {
        ++tokens[index];
        EXPECT_LE(entry["logprob"].get<double>(), 0.0);
        EXPECT_EQ(entry["top_logprobs"].size(), 3u);
        EXPECT_TRUE(entry["bytes"].is_array());
      }
    }
  }
  EXPECT_EQ(roles, std::vector<int>(3, 1));
  EXPECT_EQ(finishes, std::vector<int>(3, 1));
  EXPECT_EQ(tokens, std::vector<int>(3, 6));

  // Whole, greedy: the chosen token is the first alternative, and the same seed gives the same samples.
  const std::string greedy = std::string(R"({"temperature": 0, "max_tokens": 5, "logprobs": true, "top_logprobs": 2,
      "ignore_eos": true, "messages": )") + kHello + "}";
  const Json response = call("POST", "/v1/chat/completions", greedy).json();
  const Json& content = response["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 5u);
  for (const Json& entry : content) EXPECT_EQ(entry["token"], entry["top_logprobs"][0]["token"]);

  const std::string seeded = std::string(R"({"temperature": 1.0, "seed": 11, "max_tokens": 8, "n": 2,
      "ignore_eos": true, "messages": )") + kHello + "}";
  const Json first = call("POST", "/v1/chat/completions", seeded).json();
  const Json second = call("POST", "/v1/chat/completions", seeded).json();
  ASSERT_EQ(first["choices"].size(), 2u);
  EXPECT_EQ(first["choices"][0]["index"], 0);
  EXPECT_EQ(first["choices"][1]["index"], 1);
  EXPECT_EQ(first["choices"][0]["message"], second["choices"][0]["message"]);
  EXPECT_EQ(first["choices"][1]["message"], second["choices"][1]["message"]);
  EXPECT_EQ(first["usage"]["prompt_tokens"], chat_ids(nlohmann::ordered_json::parse(kHello)).size());
  EXPECT_EQ(first["usage"]["completion_tokens"], 16);
}

TEST_F(OpenAIRoutesTest, CompletionsBatchEchoLogprobsAndStop) {
  const std::vector<int32_t> ids = tokenizer_->encode("The capital of France", true);
  const EngineOutput reference = offline_greedy(ids, 10);
  ASSERT_GE(reference.text.size(), 4u);

  const Reply batch = call("POST", "/v1/completions", R"({"prompt": ["The capital of France", "Once upon"],
      "n": 2, "temperature": 0, "max_tokens": 10, "logprobs": 2, "echo": true})");
  ASSERT_EQ(batch.status, 200) << batch.body;
  const Json response = batch.json();
  EXPECT_EQ(response["object"], "text_completion");
  ASSERT_EQ(response["choices"].size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(response["choices"][i]["index"], i);
  const Json& first = response["choices"][0];
  EXPECT_EQ(first["text"], "The capital of France" + reference.text);
  EXPECT_EQ(response["choices"][1]["text"], first["text"]);  // greedy: both samples agree
  const Json& logprobs = first["logprobs"];
  const size_t total = ids.size() + static_cast<size_t>(reference.completion_tokens);
  ASSERT_EQ(logprobs["tokens"].size(), total);
  ASSERT_EQ(logprobs["token_logprobs"].size(), total);
  ASSERT_EQ(logprobs["text_offset"].size(), total);
  EXPECT_TRUE(logprobs["token_logprobs"][0].is_null());
  for (size_t i = 1; i < total; ++i) EXPECT_LE(logprobs["token_logprobs"][i].get<double>(), 0.0) << i;  // prompt too
  for (size_t i = 1; i < total; ++i) {
    EXPECT_GE(logprobs["text_offset"][i].get<int64_t>(), logprobs["text_offset"][i - 1].get<int64_t>());
  }
  EXPECT_EQ(logprobs["top_logprobs"][total - 1].size(), 2u);
  EXPECT_EQ(response["usage"]["prompt_tokens"], ids.size() + tokenizer_->encode("Once upon", true).size());

  // A stop string cut from the greedy output (whole characters) ends it there, trimmed, with SGLang's
  // matched_stop.
  const std::string stop = utf8_slice(reference.text, 2, 2);
  ASSERT_FALSE(stop.empty());
  const Json stopped = call("POST", "/v1/completions", Json{{"prompt", "The capital of France"}, {"temperature", 0},
                                                             {"max_tokens", 10}, {"stop", stop}}.dump()).json();
  EXPECT_EQ(stopped["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(stopped["choices"][0]["matched_stop"], stop);
  EXPECT_EQ(stopped["choices"][0]["text"], reference.text.substr(0, reference.text.find(stop)));

  // Token ids in, streamed, with the prompt echoed first.
  Json ids_body = {{"prompt", ids}, {"temperature", 0}, {"max_tokens", 10}, {"stream", true}, {"echo", true}};
  const Reply streamed = call("POST", "/v1/completions", ids_body.dump());
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  std::string text;
  for (const Json& event : streamed.events()) {
    if (event != "[DONE]") text += event["choices"][0]["text"].get<std::string>();
  }
  EXPECT_EQ(text, tokenizer_->decode(ids, false) + reference.text);
}

TEST_F(OpenAIRoutesTest, ClientErrorsAreOpenAIErrorsNever500) {
  expect_error(call("POST", "/v1/chat/completions", "{"), 400, "not valid JSON");
  expect_error(call("POST", "/v1/chat/completions", R"({"messages": [{"role": "user", "content": "x"}], "n": 500})"), 400,
               "n must be in [1, 128]");
  expect_error(call("POST", "/v1/completions", R"({"prompt": "x", "regex": "a"})"), 400, "not supported yet");
  expect_error(call("POST", "/v1/completions", R"({"prompt": [999999999]})"), 400, "vocabulary");
  expect_error(call("POST", "/v1/completions", R"({"prompt": "x", "max_tokens": 5000})"), 400,
               "This model's maximum context length is 4096 tokens");
  expect_error(call("POST", "/v1/completions", R"({"prompt": "x", "top_p": 7})"), 400, "top_p");

  context_.tokenizer = nullptr;
  expect_error(call("POST", "/v1/completions", R"({"prompt": "x"})"), 400, "without a tokenizer");
  expect_error(call("POST", "/v1/chat/completions", std::string(R"({"messages": )") + kHello + "}"), 400,
               "without a tokenizer");
  context_.tokenizer = tokenizer_.get();

  context_.ready = false;
  expect_error(call("POST", "/v1/completions", R"({"prompt": "x"})"), 503, "not ready");
  context_.ready = true;
  context_.draining = true;
  expect_error(call("POST", "/v1/chat/completions", std::string(R"({"messages": )") + kHello + "}"), 503, "shutting down");
  context_.draining = false;
}

TEST_F(OpenAIRoutesTest, FullQueueIs429WithRetryAfter) {
  // An engine that is not running keeps what is posted waiting: the second of n = 2 finds the queue full.
  engine_->stop();
  engine_ = make_engine(/*max_queued=*/1);
  context_.engine = engine_.get();
  const Reply reply = call("POST", "/v1/chat/completions",
                           std::string(R"({"n": 2, "max_tokens": 2, "messages": )") + kHello + "}");
  expect_error(reply, 429, "queue");
  bool retry_after = false;
  for (const auto& [name, value] : reply.headers) retry_after |= name == "Retry-After";
  EXPECT_TRUE(retry_after);
}

}  // namespace
}  // namespace radixlm::server
