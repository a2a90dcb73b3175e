// The native routes and the auth in front of them, through make_router() without sockets: a real CPU engine
// on the llama3.2-tiny-chat fixture with its tokenizer, and a RecordingChannel whose posted tasks run on one
// worker thread as a connection's strand would. Generation is checked against the offline Engine::generate
// on the same token ids, the stream against the whole response, text against the tokenizer.

#include "server/native_routes.h"

#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "backends/cpu/cpu_backend.h"
#include "engine/engine.h"
#include "loader/model_config.h"
#include "loader/weight_source.h"
#include "server/metrics.h"
#include "server/recording_channel.h"
#include "server/request_registry.h"
#include "server/router.h"
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
  std::string content_type;
  std::string body;
  std::vector<std::string> writes;
  Json json() const { return Json::parse(body); }
};

class NativeRoutesTest : public testing::Test {
 protected:
  void SetUp() override {
    auto config = load_model_config(kModel);
    ASSERT_TRUE(config.ok()) << config.status().to_string();
    config_ = *config;
    auto weights = open_checkpoint(kModel);
    ASSERT_TRUE(weights.ok());
    weights_ = std::move(*weights);
    auto model = load_model(config_, *weights_, backend_, ModelOptions{});
    ASSERT_TRUE(model.ok());
    model_ = std::move(*model);
    auto tok = tokenizer::Tokenizer::load(kModel.string());
    ASSERT_TRUE(tok.ok());
    tokenizer_ = std::make_unique<tokenizer::Tokenizer>(std::move(*tok));
    engine_ = make_engine();
    ASSERT_TRUE(engine_);
    engine_->start();
    context_.engine = engine_.get();
    context_.model_config = &config_;
    context_.tokenizer = tokenizer_.get();
    context_.served_model_name = "tiny-chat";
    context_.model_path = kModel.string();
    context_.context_length = 4096;
    context_.metrics = &metrics_;
    context_.registry = &registry_;
    context_.server_info = {{"model_path", kModel.string()}, {"api_key", "secret"}, {"admin_api_key", "s2"}, {"port", 1}};
    context_.ready = true;
    router_ = make_router(context_);
  }

  void TearDown() override {
    if (engine_) engine_->stop();
  }

  std::unique_ptr<Engine> make_engine() {
    EngineOptions options;
    options.scheduler.page_size = 1;
    options.scheduler.max_total_tokens = 16384;
    options.eos_token_ids = {128001, 128008, 128009};
    const tokenizer::Tokenizer* tok = tokenizer_.get();
    auto engine = Engine::create(*model_, backend_, options, [tok](const SamplingParams& params) {
      return std::make_unique<TokenizerTextDecoder>(*tok, params);
    });
    EXPECT_TRUE(engine.ok());
    return engine.ok() ? std::move(*engine) : nullptr;
  }

  std::shared_ptr<RecordingChannel> start(const std::string& method, const std::string& path, const std::string& body,
                                          const std::string& authorization = "") {
    HttpRequest request;
    request.method = method;
    request.target = path;
    request.path = path;
    request.body = body;
    if (!authorization.empty()) request.headers.emplace_back("Authorization", authorization);
    auto channel = std::make_shared<RecordingChannel>([this](std::function<void()> task) { worker_.post(std::move(task)); });
    bool known = false;
    const Handler* handler = router_.find(method, path, &known);
    EXPECT_NE(handler, nullptr);
    if (handler) (*handler)(request, channel);
    return channel;
  }

  Reply call(const std::string& method, const std::string& path, const std::string& body = "",
             const std::string& authorization = "") {
    auto channel = start(method, path, body, authorization);
    EXPECT_TRUE(channel->wait_finished(std::chrono::seconds(120))) << path << " " << body;
    return Reply{channel->status(), channel->content_type(), channel->body(), channel->writes()};
  }

  EngineOutput offline_greedy(std::vector<int32_t> ids, int32_t max_new_tokens) {
    auto engine = make_engine();
    EngineRequest request;
    request.input_ids = std::move(ids);
    request.params.temperature = 0.0;
    request.params.max_new_tokens = max_new_tokens;
    request.params.ignore_eos = true;
    auto outputs = engine->generate({request});
    EXPECT_TRUE(outputs.ok());
    return outputs.ok() ? (*outputs)[0] : EngineOutput{};
  }

  static void expect_error(const Reply& reply, int status, const std::string& mentions) {
    EXPECT_EQ(reply.status, status) << reply.body;
    const Json body = Json::parse(reply.body, nullptr, false);
    ASSERT_TRUE(body.is_object()) << reply.body;
    EXPECT_EQ(body["object"], "error");
    EXPECT_NE(body["message"].get<std::string>().find(mentions), std::string::npos) << reply.body;
  }

  CpuBackend backend_{2};
  ModelConfig config_;
  std::unique_ptr<WeightSource> weights_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  std::unique_ptr<Engine> engine_;
  ServerMetrics metrics_{"tiny-chat"};
  RequestRegistry registry_;
  ServingContext context_;
  Router router_;
  TestStrand worker_;
};

const std::vector<int32_t> kPrompt = {128000, 9906, 11, 1268, 527, 499};

TEST_F(NativeRoutesTest, GenerateMatchesTheOfflineEngine) {
  const EngineOutput want = offline_greedy(kPrompt, 10);
  const Reply reply = call("POST", "/generate",
                           Json{{"input_ids", kPrompt},
                                {"rid", "r1"},
                                {"sampling_params", {{"temperature", 0}, {"max_new_tokens", 10}, {"ignore_eos", true}}}}
                               .dump());
  ASSERT_EQ(reply.status, 200) << reply.body;
  const Json out = reply.json();
  ASSERT_TRUE(out.is_object());
  EXPECT_EQ(out["output_ids"].get<std::vector<int32_t>>(), want.output_ids);
  EXPECT_EQ(out["text"], tokenizer_->decode(want.output_ids, true));
  const Json& meta = out["meta_info"];
  EXPECT_EQ(meta["id"], "r1");
  EXPECT_EQ(meta["finish_reason"], (Json{{"type", "length"}, {"length", 10}}));
  EXPECT_EQ(meta["prompt_tokens"], kPrompt.size());
  EXPECT_EQ(meta["completion_tokens"], 10);
  EXPECT_TRUE(meta["cached_tokens"].is_number_integer());
  EXPECT_GT(meta["e2e_latency"].get<double>(), 0.0);
  EXPECT_FALSE(meta.contains("output_token_logprobs"));
  EXPECT_EQ(registry_.size(), 0u);
}

TEST_F(NativeRoutesTest, TextBatchAndParallelSamplesAnswerLists) {
  const Reply batch = call("POST", "/generate",
                           Json{{"text", {"Hello", "The capital of France is"}},
                                {"rid", {"a", "b"}},
                                {"sampling_params", {{"temperature", 0}, {"max_new_tokens", 4}, {"ignore_eos", true}}}}
                               .dump());
  ASSERT_EQ(batch.status, 200) << batch.body;
  const Json outs = batch.json();
  ASSERT_TRUE(outs.is_array());
  ASSERT_EQ(outs.size(), 2u);
  EXPECT_EQ(outs[0]["meta_info"]["id"], "a");
  EXPECT_EQ(outs[1]["meta_info"]["id"], "b");
  const EngineOutput second = offline_greedy(tokenizer_->encode("The capital of France is", true), 4);
  EXPECT_EQ(outs[1]["output_ids"].get<std::vector<int32_t>>(), second.output_ids);
  EXPECT_EQ(outs[1]["meta_info"]["prompt_tokens"], tokenizer_->encode("The capital of France is", true).size());

  const Reply samples = call("POST", "/generate",
                             Json{{"input_ids", kPrompt},
                                  {"rid", "par"},
                                  {"sampling_params", {{"n", 3}, {"max_new_tokens", 3}, {"sampling_seed", 7}}}}
                                 .dump());
  ASSERT_EQ(samples.status, 200) << samples.body;
  const Json list = samples.json();
  ASSERT_TRUE(list.is_array());
  ASSERT_EQ(list.size(), 3u);
  for (int s = 0; s < 3; ++s) EXPECT_EQ(list[s]["meta_info"]["id"], "par_" + std::to_string(s));
}

TEST_F(NativeRoutesTest, StreamSendsCumulativeTextEndingInTheWholeResponse) {
  const Json request = {{"input_ids", kPrompt},
                        {"sampling_params", {{"temperature", 0}, {"max_new_tokens", 12}, {"ignore_eos", true}}}};
  const Reply whole = call("POST", "/generate", request.dump());
  ASSERT_EQ(whole.status, 200);
  Json streamed = request;
  streamed["stream"] = true;
  const Reply reply = call("POST", "/generate", streamed.dump());
  ASSERT_EQ(reply.status, 200);
  EXPECT_EQ(reply.content_type, "text/event-stream");
  ASSERT_GE(reply.writes.size(), 3u);
  EXPECT_EQ(reply.writes.back(), "data: [DONE]\n\n");
  std::string previous_text;
  size_t previous_ids = 0;
  Json last;
  for (size_t i = 0; i + 1 < reply.writes.size(); ++i) {
    const std::string& w = reply.writes[i];
    ASSERT_EQ(w.rfind("data: ", 0), 0u);
    ASSERT_EQ(w.substr(w.size() - 2), "\n\n");
    last = Json::parse(w.substr(6, w.size() - 8));
    const std::string text = last["text"];
    EXPECT_EQ(text.rfind(previous_text, 0), 0u) << "not cumulative: " << previous_text << " -> " << text;
    EXPECT_GE(last["output_ids"].size(), previous_ids);
    EXPECT_FALSE(last.contains("index"));
    if (i + 2 < reply.writes.size()) {
      EXPECT_TRUE(last["meta_info"]["finish_reason"].is_null());
    }
    previous_text = text;
    previous_ids = last["output_ids"].size();
  }
  const Json full = whole.json();
  EXPECT_EQ(last["text"], full["text"]);
  EXPECT_EQ(last["output_ids"], full["output_ids"]);
  EXPECT_EQ(last["meta_info"]["finish_reason"], full["meta_info"]["finish_reason"]);
}

TEST_F(NativeRoutesTest, LogprobsAreTriplesForPromptAndOutput) {
  const Reply reply = call("POST", "/generate",
                           Json{{"input_ids", kPrompt},
                                {"return_logprob", true},
                                {"logprob_start_len", 0},
                                {"top_logprobs_num", 2},
                                {"return_text_in_logprobs", true},
                                {"sampling_params", {{"temperature", 0}, {"max_new_tokens", 5}, {"ignore_eos", true}}}}
                               .dump());
  ASSERT_EQ(reply.status, 200) << reply.body;
  const Json meta = reply.json()["meta_info"];
  const Json ids = reply.json()["output_ids"];
  const Json& input = meta["input_token_logprobs"];
  ASSERT_EQ(input.size(), kPrompt.size());
  EXPECT_TRUE(input[0][0].is_null());  // the first prompt token has no logprob
  for (size_t i = 0; i < kPrompt.size(); ++i) {
    EXPECT_EQ(input[i][1], kPrompt[i]);
    EXPECT_EQ(input[i][2], tokenizer_->decode(std::vector<int32_t>{kPrompt[i]}, false));
    if (i > 0) {
      EXPECT_LE(input[i][0].get<double>(), 0.0);
    }
  }
  const Json& output = meta["output_token_logprobs"];
  ASSERT_EQ(output.size(), 5u);
  const Json& top = meta["output_top_logprobs"];
  ASSERT_EQ(top.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(output[i][1], ids[i]);
    ASSERT_EQ(top[i].size(), 2u);
    EXPECT_EQ(top[i][0][1], ids[i]);  // greedy: the chosen token is the most likely one
    EXPECT_NEAR(top[i][0][0].get<double>(), output[i][0].get<double>(), 1e-6);
    EXPECT_GE(top[i][0][0].get<double>(), top[i][1][0].get<double>());
  }
  EXPECT_TRUE(meta["input_top_logprobs"][0].is_null());
  EXPECT_EQ(meta["input_top_logprobs"].size(), kPrompt.size());
}

TEST_F(NativeRoutesTest, StopStringAndStopTokenFinishReasons) {
  const EngineOutput free_run = offline_greedy(kPrompt, 12);
  const std::string text = tokenizer_->decode(free_run.output_ids, true);
  ASSERT_GE(text.size(), 4u);
  const std::string stop = text.substr(text.size() / 2, 2);
  const Reply by_string = call("POST", "/generate",
                               Json{{"input_ids", kPrompt},
                                    {"sampling_params", {{"temperature", 0}, {"max_new_tokens", 12}, {"stop", stop}, {"ignore_eos", true}}}}
                                   .dump());
  ASSERT_EQ(by_string.status, 200) << by_string.body;
  EXPECT_EQ(by_string.json()["meta_info"]["finish_reason"], (Json{{"type", "stop"}, {"matched", stop}}));
  EXPECT_EQ(by_string.json()["text"].get<std::string>().find(stop), std::string::npos);

  // As in SGLang, ignore_eos also turns off stop_token_ids, so this one runs without it.
  for (int k = 0; k < 3; ++k) ASSERT_LT(free_run.output_ids[k], 128001) << "the fixture's greedy run hits an eos early";
  const int32_t third = free_run.output_ids[2];
  const Reply by_token = call("POST", "/generate",
                              Json{{"input_ids", kPrompt},
                                   {"sampling_params", {{"temperature", 0}, {"max_new_tokens", 12}, {"stop_token_ids", {third}}}}}
                                  .dump());
  ASSERT_EQ(by_token.status, 200) << by_token.body;
  const Json reason = by_token.json()["meta_info"]["finish_reason"];
  EXPECT_EQ(reason["type"], "stop");
  EXPECT_EQ(reason["matched"], third);
}

TEST_F(NativeRoutesTest, BadRequestsGetClearFourHundreds) {
  expect_error(call("POST", "/generate", "{not json"), 400, "not valid JSON");
  expect_error(call("POST", "/generate", "[1,2]"), 400, "JSON object");
  expect_error(call("POST", "/generate", R"({"sampling_params": {}})"), 400, "text or input_ids");
  expect_error(call("POST", "/generate", R"({"text": "a", "input_ids": [1]})"), 400, "text or input_ids");
  expect_error(call("POST", "/generate", R"({"input_ids": ["a"]})"), 400, "input_ids[0]");
  expect_error(call("POST", "/generate", R"({"input_ids": []})"), 400, "input_ids");
  expect_error(call("POST", "/generate", R"({"input_ids": [-1]})"), 400, "input_ids[0]");
  expect_error(call("POST", "/generate", R"({"input_ids": [999999]})"), 400, "999999");
  expect_error(call("POST", "/generate", R"({"text": 5})"), 400, "text");
  expect_error(call("POST", "/generate", R"({"text": "a", "stream": "yes"})"), 400, "stream");
  expect_error(call("POST", "/generate", R"({"text": "a", "sampling_params": [1]})"), 400, "sampling_params");
  expect_error(call("POST", "/generate", R"({"text": "a", "sampling_params": {"temperature": "hot"}})"), 400, "temperature");
  expect_error(call("POST", "/generate", R"({"text": "a", "sampling_params": {"top_p": 2}})"), 400, "top_p");
  expect_error(call("POST", "/generate", R"({"text": "a", "sampling_params": {"max_new_tokens": 5000}})"), 400, "context length");
  expect_error(call("POST", "/generate", R"({"text": "a", "rid": ["x"]})"), 400, "rid");
  expect_error(call("POST", "/generate", R"({"text": ["a", "b"], "rid": ["x", "x"]})"), 400, "Duplicate");
  expect_error(call("POST", "/generate", R"({"text": ["a", "b"], "rid": ["x"]})"), 400, "rid");
  expect_error(call("POST", "/generate", R"({"text": "a", "return_logprob": 1})"), 400, "return_logprob");
  expect_error(call("POST", "/generate", R"({"input_ids": [1, 2], "return_logprob": true, "logprob_start_len": 2})"), 400,
               "logprob_start_len");
  const std::string long_prompt = Json{{"input_ids", std::vector<int32_t>(5000, 100)}}.dump();
  expect_error(call("POST", "/generate", long_prompt), 400, "context length");
  // Unknown fields are ignored.
  EXPECT_EQ(call("POST", "/generate", R"({"input_ids": [1, 2], "sampling_params": {"max_new_tokens": 1}, "whatever": 1})").status, 200);
}

TEST_F(NativeRoutesTest, AbortRequestFinishesTheGenerationWithAbort) {
  auto running = start("POST", "/generate",
                       Json{{"input_ids", kPrompt}, {"rid", "long"}, {"sampling_params", {{"max_new_tokens", 3000}, {"ignore_eos", true}}}}
                           .dump());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!registry_.contains("long") && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const Reply busy = call("POST", "/flush_cache");
  EXPECT_EQ(busy.status, 400) << busy.body;  // plain text, as SGLang answers it
  EXPECT_NE(busy.body.find("running"), std::string::npos) << busy.body;
  EXPECT_EQ(call("POST", "/abort_request", R"({"rid": "long"})").status, 200);
  ASSERT_TRUE(running->wait_finished(std::chrono::seconds(60)));
  const Json out = Json::parse(running->body());
  EXPECT_EQ(out["meta_info"]["finish_reason"]["type"], "abort");
  EXPECT_LT(out["meta_info"]["completion_tokens"].get<int>(), 3000);
  EXPECT_EQ(call("POST", "/abort_request", R"({"rid": "gone"})").status, 200);
  expect_error(call("POST", "/abort_request", R"({"rid": 5})"), 400, "rid");
  expect_error(call("POST", "/abort_request", "{}"), 400, "abort_all");
  // Idle now: the cache flushes.
  const auto idle_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  Reply flushed;
  do {
    flushed = call("POST", "/flush_cache");
  } while (flushed.status != 200 && std::chrono::steady_clock::now() < idle_deadline);
  EXPECT_EQ(flushed.status, 200) << flushed.body;
}

TEST_F(NativeRoutesTest, InfoHealthTokenizeAndMetricsRoutes) {
  EXPECT_EQ(call("GET", "/health").status, 200);
  EXPECT_EQ(call("GET", "/health_generate").status, 200);
  const Json model = call("GET", "/get_model_info").json();
  EXPECT_EQ(model["model_path"], kModel.string());
  EXPECT_EQ(model["is_generation"], true);
  const Reply server = call("GET", "/get_server_info");
  EXPECT_EQ(server.body.find("secret"), std::string::npos);
  EXPECT_EQ(server.body.find("s2"), std::string::npos);
  EXPECT_EQ(server.json()["port"], 1);
  EXPECT_TRUE(server.json()["internal_states"][0].contains("num_running_reqs"));

  const Json tokens = call("POST", "/v1/tokenize", R"({"prompt": "Hello world"})").json();
  EXPECT_EQ(tokens["tokens"].get<std::vector<int32_t>>(), tokenizer_->encode("Hello world", true));
  EXPECT_EQ(tokens["count"], tokens["tokens"].size());
  EXPECT_EQ(tokens["max_model_len"], 4096);
  const Json many = call("POST", "/tokenize", R"({"prompt": ["a", "b c"], "add_special_tokens": false})").json();
  EXPECT_EQ(many["tokens"][1].get<std::vector<int32_t>>(), tokenizer_->encode("b c", false));
  EXPECT_EQ(many["count"][1], tokenizer_->encode("b c", false).size());
  const Json text = call("POST", "/v1/detokenize", Json{{"tokens", tokenizer_->encode("Hello world", true)}}.dump()).json();
  EXPECT_EQ(text["text"], "Hello world");
  expect_error(call("POST", "/v1/tokenize", R"({"prompt": 3})"), 400, "prompt");
  expect_error(call("POST", "/v1/detokenize", R"({"tokens": ["x"]})"), 400, "tokens[0]");

  ASSERT_EQ(call("POST", "/generate", Json{{"input_ids", kPrompt}, {"sampling_params", {{"max_new_tokens", 3}, {"ignore_eos", true}}}}.dump()).status, 200);
  const Reply metrics = call("GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.content_type.rfind("text/plain; version=0.0.4", 0), 0u);
  EXPECT_NE(metrics.body.find("sglang:num_requests_total{model_name=\"tiny-chat\"} 1.0\n"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("sglang:generation_tokens_total{model_name=\"tiny-chat\"} 3.0\n"), std::string::npos);
  EXPECT_NE(metrics.body.find("sglang:prompt_tokens_total{model_name=\"tiny-chat\"} 6.0\n"), std::string::npos);

  context_.ready = false;
  EXPECT_EQ(call("GET", "/health").status, 503);
  EXPECT_EQ(call("GET", "/health_generate").status, 503);
  expect_error(call("POST", "/generate", R"({"input_ids": [1]})"), 503, "not ready");
}

TEST_F(NativeRoutesTest, ApiKeysGuardEveryRouteButHealthAndMetrics) {
  context_.api_key = "user-key";
  const std::string body = R"({"input_ids": [1, 2], "sampling_params": {"max_new_tokens": 1}})";
  expect_error(call("POST", "/generate", body), 401, "Unauthorized");
  expect_error(call("POST", "/generate", body, "Bearer wrong-key"), 401, "Unauthorized");
  expect_error(call("POST", "/generate", body, "Basic user-key"), 401, "Unauthorized");
  expect_error(call("POST", "/generate", body, "Bearer user-key2"), 401, "Unauthorized");
  EXPECT_EQ(call("POST", "/generate", body, "Bearer user-key").status, 200);
  EXPECT_EQ(call("POST", "/generate", body, "bearer user-key").status, 200);
  expect_error(call("GET", "/v1/models"), 401, "Unauthorized");
  expect_error(call("GET", "/no/such/route"), 401, "Unauthorized");  // nothing is revealed without the key
  expect_error(call("GET", "/no/such/route", "", "Bearer user-key"), 404, "no route");
  EXPECT_EQ(call("GET", "/health").status, 200);
  EXPECT_EQ(call("GET", "/health_generate").status, 200);
  EXPECT_EQ(call("GET", "/metrics").status, 200);
  // Admin routes take the API key while no admin key is set...
  EXPECT_EQ(call("POST", "/abort_request", R"({"abort_all": true})", "Bearer user-key").status, 200);
  // ...and only the admin key once one is.
  context_.admin_api_key = "admin-key";
  expect_error(call("POST", "/abort_request", R"({"abort_all": true})", "Bearer user-key"), 401, "Unauthorized");
  EXPECT_EQ(call("POST", "/abort_request", R"({"abort_all": true})", "Bearer admin-key").status, 200);
  expect_error(call("POST", "/generate", body, "Bearer admin-key"), 401, "Unauthorized");
}

}  // namespace
}  // namespace radixlm::server
