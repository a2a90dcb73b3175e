// SamplingParams parsing and validation. The references are SGLang's documented defaults and rules
// (docs/basic_usage/sampling_params and SamplingParams.verify): each bad value must be rejected with a
// message naming its field.

#include "sampling/sampling_params.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "sampling/sampling_params_json.h"

namespace radixlm {
namespace {

using Json = nlohmann::json;
constexpr int64_t kVocab = 1000;
constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

SamplingParams parse_ok(const char* text) {
  Expected<SamplingParams> params = parse_sampling_params(Json::parse(text));
  EXPECT_TRUE(params.ok()) << params.status().to_string();
  return params.ok() ? *params : SamplingParams{};
}

std::string parse_error(const char* text) {
  Expected<SamplingParams> params = parse_sampling_params(Json::parse(text));
  EXPECT_FALSE(params.ok()) << text;
  return params.ok() ? std::string() : params.status().message();
}

std::string validation_error(const SamplingParams& params) {
  const Status status = validate_sampling_params(params, kVocab);
  EXPECT_FALSE(status.ok());
  return status.message();
}

TEST(SamplingParams, DefaultsAreSGLangs) {
  const SamplingParams p = parse_ok("{}");
  EXPECT_EQ(p.temperature, 1.0);
  EXPECT_EQ(p.top_p, 1.0);
  EXPECT_EQ(p.top_k, -1);
  EXPECT_EQ(p.min_p, 0.0);
  EXPECT_EQ(p.frequency_penalty, 0.0);
  EXPECT_EQ(p.presence_penalty, 0.0);
  EXPECT_EQ(p.repetition_penalty, 1.0);
  EXPECT_EQ(p.max_new_tokens, 128);
  EXPECT_EQ(p.min_new_tokens, 0);
  EXPECT_TRUE(p.stop.empty());
  EXPECT_TRUE(p.stop_token_ids.empty());
  EXPECT_FALSE(p.ignore_eos);
  EXPECT_TRUE(p.skip_special_tokens);
  EXPECT_TRUE(p.spaces_between_special_tokens);
  EXPECT_FALSE(p.no_stop_trim);
  EXPECT_EQ(p.n, 1);
  EXPECT_FALSE(p.seed.has_value());
  EXPECT_TRUE(p.logit_bias.empty());
  EXPECT_FALSE(p.return_logprob);
  EXPECT_EQ(p.top_logprobs_num, 0);
  EXPECT_EQ(p.logprob_start_len, -1);
  EXPECT_TRUE(validate_sampling_params(p, kVocab).ok());
  EXPECT_FALSE(is_greedy(p));
  // A null sampling_params is all defaults.
  EXPECT_TRUE(parse_sampling_params(Json()).ok());
}

TEST(SamplingParams, ParsesEveryField) {
  const SamplingParams p = parse_ok(R"({
    "temperature": 0.7, "top_p": 0.9, "top_k": 40, "min_p": 0.05, "frequency_penalty": 0.5,
    "presence_penalty": -0.5, "repetition_penalty": 1.2, "max_new_tokens": 64, "min_new_tokens": 4,
    "stop": ["</s>", "###"], "stop_token_ids": [5, 7, 5], "ignore_eos": true, "skip_special_tokens": false,
    "spaces_between_special_tokens": false, "no_stop_trim": true, "n": 3, "sampling_seed": 1234,
    "logit_bias": {"12": 2.5, "7": -100}, "json_schema": null, "stream_interval": 4})");
  EXPECT_EQ(p.temperature, 0.7);
  EXPECT_EQ(p.top_p, 0.9);
  EXPECT_EQ(p.top_k, 40);
  EXPECT_EQ(p.min_p, 0.05);
  EXPECT_EQ(p.frequency_penalty, 0.5);
  EXPECT_EQ(p.presence_penalty, -0.5);
  EXPECT_EQ(p.repetition_penalty, 1.2);
  EXPECT_EQ(p.max_new_tokens, 64);
  EXPECT_EQ(p.min_new_tokens, 4);
  EXPECT_EQ(p.stop, (std::vector<std::string>{"</s>", "###"}));
  EXPECT_EQ(p.stop_token_ids, (std::vector<int32_t>{5, 7}));
  EXPECT_TRUE(p.ignore_eos);
  EXPECT_FALSE(p.skip_special_tokens);
  EXPECT_FALSE(p.spaces_between_special_tokens);
  EXPECT_TRUE(p.no_stop_trim);
  EXPECT_EQ(p.n, 3);
  EXPECT_EQ(p.seed, 1234u);
  EXPECT_EQ(p.logit_bias, (std::map<int32_t, double>{{7, -100.0}, {12, 2.5}}));
  EXPECT_TRUE(p.explicitly_set.temperature && p.explicitly_set.top_p && p.explicitly_set.top_k &&
              p.explicitly_set.min_p && p.explicitly_set.repetition_penalty);
  EXPECT_TRUE(validate_sampling_params(p, kVocab).ok());
}

TEST(SamplingParams, NullMeansDefaultExceptForMaxNewTokens) {
  const SamplingParams p = parse_ok(R"({"temperature": null, "top_k": null, "stop": null, "n": null,
                                        "max_new_tokens": null})");
  EXPECT_EQ(p.temperature, 1.0);
  EXPECT_FALSE(p.explicitly_set.temperature);
  EXPECT_EQ(p.top_k, -1);
  EXPECT_EQ(p.n, 1);
  EXPECT_FALSE(p.max_new_tokens.has_value());  // SGLang: None means no limit but the context
}

TEST(SamplingParams, StopAsOneStringAndSeedAliases) {
  EXPECT_EQ(parse_ok(R"({"stop": "\n\n"})").stop, std::vector<std::string>{"\n\n"});
  EXPECT_EQ(parse_ok(R"({"seed": 5})").seed, 5u);
  EXPECT_EQ(parse_ok(R"({"seed": 5, "sampling_seed": 5})").seed, 5u);
  EXPECT_EQ(parse_ok(R"({"seed": -1})").seed, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(parse_ok(R"({"seed": 18446744073709551615})").seed, std::numeric_limits<uint64_t>::max());
  EXPECT_NE(parse_error(R"({"seed": 5, "sampling_seed": 6})").find("seed"), std::string::npos);
  // An integral float is an integer (JavaScript clients send 40.0 for 40).
  EXPECT_EQ(parse_ok(R"({"top_k": 40.0})").top_k, 40);
}

TEST(SamplingParams, WrongTypesNameTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"temperature": "hot"})", "temperature"},
      {R"({"top_p": [1]})", "top_p"},
      {R"({"top_k": 4.5})", "top_k"},
      {R"({"top_k": true})", "top_k"},
      {R"({"min_p": {}})", "min_p"},
      {R"({"max_new_tokens": "10"})", "max_new_tokens"},
      {R"({"max_new_tokens": 1e12})", "max_new_tokens"},
      {R"({"min_new_tokens": 99999999999})", "min_new_tokens"},
      {R"({"stop": 3})", "stop"},
      {R"({"stop": ["a", 3]})", "stop"},
      {R"({"stop_token_ids": 3})", "stop_token_ids"},
      {R"({"stop_token_ids": ["3"]})", "stop_token_ids"},
      {R"({"ignore_eos": 1})", "ignore_eos"},
      {R"({"no_stop_trim": "yes"})", "no_stop_trim"},
      {R"({"n": 1.5})", "n"},
      {R"({"seed": "42"})", "seed"},
      {R"({"sampling_seed": 0.5})", "sampling_seed"},
      {R"({"logit_bias": [1, 2]})", "logit_bias"},
      {R"({"logit_bias": {"abc": 1}})", "logit_bias"},
      {R"({"logit_bias": {"12x": 1}})", "logit_bias"},
      {R"({"logit_bias": {"": 1}})", "logit_bias"},
      {R"({"logit_bias": {"3": "big"}})", "logit_bias"},
      {R"({"logit_bias": {"99999999999": 1}})", "logit_bias"},
      // Unknown names (OpenAI's max_tokens belongs at the top level of /v1 requests, not here) and
      // structured output, which is not built yet.
      {R"({"max_tokens": 4})", "unknown sampling parameter 'max_tokens'"},
      {R"({"temprature": 0})", "temprature"},
      {R"({"json_schema": "{}"})", "'json_schema' is not supported"},
      {R"({"regex": "a+"})", "'regex' is not supported"},
  };
  for (const auto& [text, field] : cases) {
    const std::string message = parse_error(text);
    EXPECT_NE(message.find(field), std::string::npos) << text << " -> " << message;
  }
  EXPECT_FALSE(parse_sampling_params(Json::parse("[1]")).ok());
  EXPECT_FALSE(parse_sampling_params(Json::parse("\"x\"")).ok());
}

TEST(SamplingParams, ValidationRejectsEachBadFieldByName) {
  struct Case {
    const char* field;
    void (*mutate)(SamplingParams&);
  };
  const Case cases[] = {
      {"temperature", [](SamplingParams& p) { p.temperature = -0.1; }},
      {"temperature", [](SamplingParams& p) { p.temperature = kNan; }},
      {"temperature", [](SamplingParams& p) { p.temperature = kInf; }},
      {"top_p", [](SamplingParams& p) { p.top_p = 0.0; }},
      {"top_p", [](SamplingParams& p) { p.top_p = 1.01; }},
      {"top_p", [](SamplingParams& p) { p.top_p = kNan; }},
      {"top_k", [](SamplingParams& p) { p.top_k = 0; }},
      {"top_k", [](SamplingParams& p) { p.top_k = -2; }},
      {"min_p", [](SamplingParams& p) { p.min_p = -0.01; }},
      {"min_p", [](SamplingParams& p) { p.min_p = 1.5; }},
      {"min_p", [](SamplingParams& p) { p.min_p = kNan; }},
      {"frequency_penalty", [](SamplingParams& p) { p.frequency_penalty = 2.5; }},
      {"frequency_penalty", [](SamplingParams& p) { p.frequency_penalty = -kInf; }},
      {"presence_penalty", [](SamplingParams& p) { p.presence_penalty = -2.01; }},
      {"presence_penalty", [](SamplingParams& p) { p.presence_penalty = kNan; }},
      {"repetition_penalty", [](SamplingParams& p) { p.repetition_penalty = 0.0; }},
      {"repetition_penalty", [](SamplingParams& p) { p.repetition_penalty = 2.1; }},
      {"repetition_penalty", [](SamplingParams& p) { p.repetition_penalty = kNan; }},
      {"max_new_tokens", [](SamplingParams& p) { p.max_new_tokens = -1; }},
      {"min_new_tokens", [](SamplingParams& p) { p.min_new_tokens = -1; }},
      {"min_new_tokens", [](SamplingParams& p) { p.min_new_tokens = 200; }},  // > max_new_tokens (128)
      {"n", [](SamplingParams& p) { p.n = 0; }},
      {"n", [](SamplingParams& p) { p.n = kMaxSamplesPerRequest + 1; }},
      {"stop", [](SamplingParams& p) { p.stop = {"ok", ""}; }},
      {"stop", [](SamplingParams& p) { p.stop.assign(kMaxStopStrings + 1, "x"); }},
      {"stop_token_ids", [](SamplingParams& p) { p.stop_token_ids = {-1}; }},
      {"stop_token_ids", [](SamplingParams& p) { p.stop_token_ids = {static_cast<int32_t>(kVocab)}; }},
      {"logit_bias", [](SamplingParams& p) { p.logit_bias = {{static_cast<int32_t>(kVocab), 1.0}}; }},
      {"logit_bias", [](SamplingParams& p) { p.logit_bias = {{-1, 1.0}}; }},
      {"logit_bias", [](SamplingParams& p) { p.logit_bias = {{3, kNan}}; }},
      {"top_logprobs_num", [](SamplingParams& p) { p.top_logprobs_num = 21; }},
      {"top_logprobs_num", [](SamplingParams& p) { p.top_logprobs_num = -1; }},
      {"logprob_start_len", [](SamplingParams& p) { p.logprob_start_len = -2; }},
  };
  for (const Case& c : cases) {
    SamplingParams params;
    c.mutate(params);
    const std::string message = validation_error(params);
    EXPECT_NE(message.find(c.field), std::string::npos) << c.field << " -> " << message;
  }
  // Boundaries that are allowed.
  SamplingParams edge;
  edge.temperature = 0.0;
  edge.top_p = 1.0;
  edge.top_k = 1;
  edge.min_p = 1.0;
  edge.frequency_penalty = -2.0;
  edge.presence_penalty = 2.0;
  edge.repetition_penalty = 2.0;
  edge.max_new_tokens.reset();
  edge.min_new_tokens = 1000;  // no max_new_tokens: no upper bound from it
  edge.n = kMaxSamplesPerRequest;
  edge.logit_bias = {{0, -100.0}, {static_cast<int32_t>(kVocab - 1), 100.0}};
  edge.top_logprobs_num = 20;
  edge.logprob_start_len = 0;
  EXPECT_TRUE(validate_sampling_params(edge, kVocab).ok()) << validate_sampling_params(edge, kVocab).to_string();
  // top_logprobs_num is also bounded by a small vocabulary.
  SamplingParams small;
  small.top_logprobs_num = 6;
  EXPECT_FALSE(validate_sampling_params(small, 5).ok());
}

TEST(SamplingParams, TinyTemperatureIsGreedyAsInSGLang) {
  SamplingParams p;
  p.temperature = 5e-7;  // below SGLang's _SAMPLING_EPS of 1e-6
  EXPECT_TRUE(is_greedy(p));
  EXPECT_EQ(effective_temperature(p), 1.0);
  p.temperature = 2e-6;
  EXPECT_FALSE(is_greedy(p));
  EXPECT_EQ(effective_temperature(p), 2e-6);
  p.top_k = 1;
  EXPECT_TRUE(is_greedy(p));
}

TEST(SamplingParams, GenerationConfigFillsOnlyUnsetFields) {
  SamplingParams p = parse_ok(R"({"temperature": 0.2, "top_k": null})");
  SamplingDefaults defaults;
  defaults.temperature = 0.6;
  defaults.top_p = 0.95;
  defaults.top_k = 20;
  defaults.min_p = 0.1;
  defaults.repetition_penalty = 1.05;
  apply_sampling_defaults(p, defaults);
  EXPECT_EQ(p.temperature, 0.2);  // the request's own
  EXPECT_EQ(p.top_p, 0.95);
  EXPECT_EQ(p.top_k, 20);
  EXPECT_EQ(p.min_p, 0.1);
  EXPECT_EQ(p.repetition_penalty, 1.05);

  // An explicit value equal to SGLang's default still wins over the model's default.
  SamplingParams q = parse_ok(R"({"temperature": 1.0, "top_p": 1.0})");
  apply_sampling_defaults(q, defaults);
  EXPECT_EQ(q.temperature, 1.0);
  EXPECT_EQ(q.top_p, 1.0);

  // transformers writes "no top-k" as 0.
  SamplingParams r;
  SamplingDefaults zero_k;
  zero_k.top_k = 0;
  apply_sampling_defaults(r, zero_k);
  EXPECT_EQ(r.top_k, -1);
}

TEST(SamplingParams, LogprobFieldsComeFromTheRequestTopLevel) {
  SamplingParams p;
  ASSERT_TRUE(parse_logprob_fields(Json::parse(R"({"return_logprob": true, "top_logprobs_num": 5,
      "logprob_start_len": 3, "text": "hi"})"), p).ok());
  EXPECT_TRUE(p.return_logprob);
  EXPECT_EQ(p.top_logprobs_num, 5);
  EXPECT_EQ(p.logprob_start_len, 3);
  const Status bad = parse_logprob_fields(Json::parse(R"({"top_logprobs_num": "5"})"), p);
  EXPECT_NE(bad.message().find("top_logprobs_num"), std::string::npos);
  EXPECT_NE(parse_logprob_fields(Json::parse(R"({"return_logprob": 1})"), p).message().find("return_logprob"),
            std::string::npos);
}

}  // namespace
}  // namespace radixlm
