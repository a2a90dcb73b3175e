#include "server/launch_args.h"

#include <set>

#include <gtest/gtest.h>

namespace radixlm::server {
namespace {

Expected<LaunchArgs> parse(std::vector<std::string> args) { return parse_launch_args(args); }

TEST(LaunchArgs, SGLangDefaults) {
  auto a = parse({});
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 30000);
  EXPECT_EQ(a->max_prefill_tokens, 16384);
  EXPECT_EQ(a->schedule_policy, "fcfs");
  EXPECT_EQ(a->decode_log_interval, 40);
  EXPECT_EQ(a->load_format, "auto");
  EXPECT_EQ(a->log_level, "info");
  EXPECT_FALSE(a->mem_fraction_static.has_value());
  EXPECT_FALSE(a->page_size.has_value());
  EXPECT_FALSE(a->chunked_prefill_size.has_value());
  EXPECT_TRUE(a->warnings.empty());
  EXPECT_TRUE(a->given.empty());
}

TEST(LaunchArgs, SpaceAndEqualsFormsAgree) {
  auto spaced = parse({"--model-path", "/m", "--port", "31000", "--mem-fraction-static", "0.8", "--api-key", "k"});
  auto equals = parse({"--model-path=/m", "--port=31000", "--mem-fraction-static=0.8", "--api-key=k"});
  ASSERT_TRUE(spaced.ok()) << spaced.status().to_string();
  ASSERT_TRUE(equals.ok()) << equals.status().to_string();
  for (const LaunchArgs* a : {&*spaced, &*equals}) {
    EXPECT_EQ(a->model_path, "/m");
    EXPECT_EQ(a->port, 31000);
    ASSERT_TRUE(a->mem_fraction_static.has_value());
    EXPECT_DOUBLE_EQ(*a->mem_fraction_static, 0.8);
    EXPECT_EQ(a->api_key, "k");
  }
  // '=' lets a value start with a dash.
  auto dash = parse({"--api-key=-secret"});
  ASSERT_TRUE(dash.ok());
  EXPECT_EQ(dash->api_key, "-secret");
}

TEST(LaunchArgs, NegativeNumbersAreValuesAsInArgparse) {
  auto a = parse({"--chunked-prefill-size", "-1"});
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  EXPECT_EQ(a->chunked_prefill_size, -1);
}

TEST(LaunchArgs, SGLangLaunchLineWithTuningKnob) {
  auto a = parse({"--model-path", "X", "--tp", "1", "--port", "4000", "--mem-fraction-static", "0.8",
                  "--chunked-prefill-size", "4096", "--enable-metrics", "--attention-backend", "flashinfer"});
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  EXPECT_EQ(a->tp_size, 1);
  EXPECT_EQ(a->chunked_prefill_size, 4096);
  EXPECT_TRUE(a->enable_metrics);
  ASSERT_EQ(a->warnings.size(), 1u);
  EXPECT_NE(a->warnings[0].find("--attention-backend"), std::string::npos);
  EXPECT_TRUE(a->was_given("--tp-size"));
  EXPECT_TRUE(a->was_given("--attention-backend"));
}

TEST(LaunchArgs, TuningKnobWarnsOnceEvenWhenRepeated) {
  auto a = parse({"--enable-torch-compile", "--enable-torch-compile", "--cuda-graph-max-bs-prefill", "8"});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->warnings.size(), 2u);
}

TEST(LaunchArgs, LastOccurrenceWins) {
  auto a = parse({"--port", "1", "--port", "2"});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->port, 2);
}

TEST(LaunchArgs, AliasesAndAbbreviations) {
  auto a = parse({"--model", "/x", "--tensor-parallel-size", "1", "--dp", "1", "--data-parallel-size", "1"});
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  EXPECT_EQ(a->model_path, "/x");
  EXPECT_TRUE(a->was_given("--model-path"));
  EXPECT_TRUE(a->was_given("--dp-size"));
  // A unique prefix resolves, as argparse's allow_abbrev does.
  auto prefix = parse({"--served-model", "name"});
  ASSERT_TRUE(prefix.ok()) << prefix.status().to_string();
  EXPECT_EQ(prefix->served_model_name, "name");
  // An ambiguous prefix is a usage error that lists the candidates.
  auto ambiguous = parse({"--enable-lora", "--max-lo", "3"});
  ASSERT_FALSE(ambiguous.ok());
  EXPECT_EQ(ambiguous.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(ambiguous.status().message().find("ambiguous option: --max-lo"), std::string::npos);
  // The speculative alias from older launch lines is a prefix and lands on the refused feature.
  auto spec = parse({"--speculative-algo", "EAGLE"});
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(spec.status().message().find("--speculative-algorithm"), std::string::npos);
}

TEST(LaunchArgs, UnknownFlagIsUsageError) {
  auto a = parse({"--model-path", "x", "--not-an-sglang-flag", "3"});
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(a.status().message().find("--not-an-sglang-flag"), std::string::npos);
  auto positional = parse({"stray"});
  ASSERT_FALSE(positional.ok());
  EXPECT_EQ(positional.status().code(), StatusCode::kInvalidArgument);
}

TEST(LaunchArgs, MalformedValuesAreUsageErrors) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--port", "abc"},
           {"--port"},
           {"--port", "--host", "x"},
           {"--mem-fraction-static", "lots"},
           {"--mem-fraction-static", "1.5"},
           {"--enable-metrics=yes"},
           {"--schedule-policy", "fastest"},
           {"--cuda-graph-bs-decode"},
           {"--cuda-graph-bs-decode", "1", "x"},
           {"--page-size", "0"},
           {"--log-level", "loud"},
           {"--served-model-name", "a:b"},
       }) {
    auto a = parse(args);
    ASSERT_FALSE(a.ok()) << args[0];
    EXPECT_EQ(a.status().code(), StatusCode::kInvalidArgument) << args[0] << ": " << a.status().to_string();
    EXPECT_NE(a.status().message().find(args[0].substr(0, args[0].find('='))), std::string::npos)
        << a.status().message();
  }
}

TEST(LaunchArgs, ResultChangingFlagsAreRefusedByName) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--enable-ep-moe"},
           {"--quantization", "fp8"},
           {"--speculative-algorithm", "EAGLE"},
           {"--disaggregation-mode", "prefill"},
           {"--tp-size", "2"},
           {"--tp", "4"},
           {"--dp-size", "2"},
           {"--grammar-backend", "xgrammar"},
           {"--kv-cache-dtype", "fp8_e4m3"},
           {"--lora-paths", "a=/b"},
           {"--ssl-certfile", "c.pem"},
           {"--load-format", "gguf"},
           {"--schedule-policy", "lof"},
           {"--device", "npu"},
       }) {
    auto a = parse(args);
    ASSERT_FALSE(a.ok()) << args[0];
    EXPECT_EQ(a.status().code(), StatusCode::kUnsupported) << args[0] << ": " << a.status().to_string();
    const std::string stem = args[0] == "--tp" ? "--tp-size" : args[0];
    EXPECT_NE(a.status().message().find(stem), std::string::npos) << a.status().message();
  }
}

TEST(LaunchArgs, DefaultEquivalentValuesOfRefusedFeaturesAreFine) {
  auto a = parse({"--disaggregation-mode", "null", "--nnodes", "1", "--node-rank", "0", "--ep-size", "1",
                  "--grammar-backend", "none", "--kv-cache-dtype", "auto", "--pp-size", "1", "--dtype", "auto"});
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  EXPECT_TRUE(a->warnings.empty());
}

TEST(LaunchArgs, RemovedFlagGetsSGLangsMessage) {
  auto a = parse({"--enable-expert-distribution-metrics"});
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(a.status().message().find("--expert-balancedness-report-mode"), std::string::npos);
}

TEST(LaunchArgs, ListsOptionalAndBooleanOptionalFlags) {
  auto a = parse({"--cuda-graph-bs", "1", "2", "4", "--cuda-graph-max-bs", "4", "--disable-cuda-graph",
                  "--no-dllm-fdfo", "--lora-target-modules", "--uvicorn-access-log-exclude-prefixes", "--port", "5"});
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  EXPECT_EQ(a->cuda_graph_bs, (std::vector<int32_t>{1, 2, 4}));
  EXPECT_EQ(a->cuda_graph_max_bs, 4);
  EXPECT_TRUE(a->disable_cuda_graph);
  EXPECT_EQ(a->port, 5);
  // --model-checksum takes its value only when one follows.
  auto bare = parse({"--model-checksum", "--port", "6"});
  ASSERT_FALSE(bare.ok());
  EXPECT_NE(bare.status().message().find("--model-checksum"), std::string::npos);
}

TEST(LaunchArgs, TableIsConsistent) {
  std::set<std::string_view> names;
  for (const LaunchFlag& flag : launch_flag_table()) {
    EXPECT_TRUE(flag.name.size() > 2 && flag.name.substr(0, 2) == "--") << flag.name;
    EXPECT_TRUE(names.insert(flag.name).second) << "duplicate row " << flag.name;
    if (!flag.alias_of.empty()) {
      const LaunchFlag* target = find_launch_flag(flag.alias_of);
      ASSERT_NE(target, nullptr) << flag.name << " aliases a missing " << flag.alias_of;
      EXPECT_TRUE(target->alias_of.empty()) << flag.name << " aliases an alias";
      EXPECT_EQ(target->arity, flag.arity) << flag.name;
    }
    if (!flag.accepted_values.empty()) {
      EXPECT_EQ(flag.cls, FlagClass::kChangesResults) << flag.name;
      EXPECT_NE(flag.arity, FlagArity::kNone) << flag.name;
    }
  }
  // The flags the brief and SGLang's docs use most must all be implemented.
  for (std::string_view name :
       {"--model-path", "--tokenizer-path", "--host", "--port", "--served-model-name", "--api-key",
        "--admin-api-key", "--context-length", "--mem-fraction-static", "--max-running-requests",
        "--max-queued-requests", "--max-total-tokens", "--chunked-prefill-size", "--max-prefill-tokens",
        "--schedule-policy", "--schedule-conservativeness", "--disable-radix-cache", "--page-size", "--random-seed",
        "--log-level", "--log-requests", "--enable-metrics", "--decode-log-interval", "--chat-template",
        "--skip-tokenizer-init", "--load-format", "--json-model-override-args", "--trust-remote-code", "--device",
        "--tp-size", "--dp-size", "--enable-mixed-chunk", "--cuda-graph-max-bs", "--cuda-graph-bs",
        "--disable-cuda-graph", "--disable-overlap-schedule"}) {
    const LaunchFlag* flag = find_launch_flag(name);
    ASSERT_NE(flag, nullptr) << name;
    EXPECT_EQ(flag->cls, FlagClass::kImplemented) << name;
  }
  EXPECT_GT(names.size(), 500u);
}

TEST(LaunchArgs, ServerInfoLeavesSecretsOut) {
  auto a = parse({"--model-path", "/m", "--api-key", "sk-secret", "--admin-api-key", "admin-secret",
                  "--enable-torch-compile"});
  ASSERT_TRUE(a.ok());
  const std::string dumped = a->to_json().dump();
  EXPECT_EQ(dumped.find("sk-secret"), std::string::npos);
  EXPECT_EQ(dumped.find("admin-secret"), std::string::npos);
  const nlohmann::json j = a->to_json();
  EXPECT_EQ(j.at("served_model_name"), "/m");
  EXPECT_EQ(j.at("tokenizer_path"), "/m");
  EXPECT_EQ(j.at("port"), 30000);
  EXPECT_EQ(j.at("ignored_flags"), nlohmann::json::array({"--enable-torch-compile"}));
}

}  // namespace
}  // namespace radixlm::server
