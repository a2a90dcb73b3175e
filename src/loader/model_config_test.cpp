#include "loader/model_config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "loader/loader_test_util.h"

namespace radixlm {
namespace {

using testing_util::fixtures_dir;
using testing_util::ScratchDir;
using testing_util::write_file;

ModelConfig load_ok(const std::filesystem::path& dir, std::string_view overrides = {}) {
  auto config = load_model_config(dir, overrides);
  EXPECT_TRUE(config.ok()) << config.status().to_string();
  return config.ok() ? *config : ModelConfig{};
}

// --- every fixture config parses, and its plainly stated fields come through as written ---

std::vector<std::filesystem::path> all_fixture_config_dirs() {
  std::vector<std::filesystem::path> dirs;
  for (const char* group : {"models", "configs"}) {
    for (const auto& item : std::filesystem::directory_iterator(fixtures_dir() / group)) {
      if (std::filesystem::exists(item.path() / "config.json")) dirs.push_back(item.path());
    }
  }
  for (const char* name : {"deepseek-r1", "deepseek-v3-base", "llama-3.2-3b-instruct", "mistral-7b-instruct-v0.3",
                           "qwen2.5-3b-instruct"}) {
    dirs.push_back(fixtures_dir() / "tokenizers" / name);
  }
  return dirs;
}

TEST(ModelConfigFixtures, EveryConfigMatchesItsJson) {
  const auto dirs = all_fixture_config_dirs();
  EXPECT_GE(dirs.size(), 20u);
  for (const auto& dir : dirs) {
    SCOPED_TRACE(dir.string());
    const ModelConfig config = load_ok(dir);
    const auto json = nlohmann::json::parse(testing_util::read_file(dir / "config.json"));
    EXPECT_EQ(config.architecture, json["architectures"][0].get<std::string>());
    EXPECT_EQ(config.model_type, json["model_type"].get<std::string>());
    EXPECT_EQ(config.hidden_size, json["hidden_size"].get<int64_t>());
    EXPECT_EQ(config.intermediate_size, json["intermediate_size"].get<int64_t>());
    EXPECT_EQ(config.num_hidden_layers, json["num_hidden_layers"].get<int64_t>());
    EXPECT_EQ(config.num_attention_heads, json["num_attention_heads"].get<int64_t>());
    EXPECT_EQ(config.num_key_value_heads, json["num_key_value_heads"].get<int64_t>());
    EXPECT_EQ(config.vocab_size, json["vocab_size"].get<int64_t>());
    EXPECT_EQ(config.max_position_embeddings, json["max_position_embeddings"].get<int64_t>());
    EXPECT_DOUBLE_EQ(config.rms_norm_eps, json["rms_norm_eps"].get<double>());
    EXPECT_EQ(config.tie_word_embeddings, json["tie_word_embeddings"].get<bool>());
    if (json.contains("head_dim") && !json["head_dim"].is_null()) {
      EXPECT_EQ(config.head_dim, json["head_dim"].get<int64_t>());
    }
    const auto& theta = json.contains("rope_parameters") ? json["rope_parameters"]["rope_theta"] : json["rope_theta"];
    EXPECT_DOUBLE_EQ(config.rope.theta, theta.get<double>());
    EXPECT_EQ(config.dtype, DType::kBF16);
    const auto& eos = json["eos_token_id"];
    ASSERT_EQ(config.eos_token_ids.size(), eos.is_array() ? eos.size() : 1u);
    EXPECT_EQ(config.eos_token_ids[0], eos.is_array() ? eos[0].get<int64_t>() : eos.get<int64_t>());
  }
}

TEST(ModelConfigFixtures, Llama) {
  const ModelConfig c = load_ok(fixtures_dir() / "models/llama");
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_EQ(c.rope.type, RopeType::kDefault);
  EXPECT_DOUBLE_EQ(c.rope.theta, 500000.0);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{2});
  EXPECT_FALSE(c.sliding_window.has_value());
  EXPECT_EQ(c.num_experts, 0);
}

TEST(ModelConfigFixtures, Llama31RopeScalingLegacyForm) {
  const ModelConfig c = load_ok(fixtures_dir() / "models/llama31-rope-scaling");
  EXPECT_EQ(c.rope.type, RopeType::kLlama3);
  EXPECT_DOUBLE_EQ(c.rope.theta, 500000.0);
  EXPECT_DOUBLE_EQ(c.rope.factor, 8.0);
  EXPECT_DOUBLE_EQ(c.rope.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c.rope.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 256);
  EXPECT_EQ(c.dtype, DType::kBF16);  // from torch_dtype
}

TEST(ModelConfigFixtures, Qwen2HasQkvBiasAndTiedEmbeddings) {
  const ModelConfig c = load_ok(fixtures_dir() / "models/qwen2");
  EXPECT_EQ(c.architecture, "Qwen2ForCausalLM");
  EXPECT_TRUE(c.attention_bias);  // not in the file: Qwen2 always has it
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.head_dim, 32);  // 128 / 4, derived
  EXPECT_DOUBLE_EQ(c.rope.theta, 1000000.0);
  EXPECT_EQ(c.rope.type, RopeType::kDefault);  // rope_scaling: null
  EXPECT_FALSE(c.sliding_window.has_value());
}

TEST(ModelConfigFixtures, Qwen25RealConfigSlidingWindowOnlyWhenUsed) {
  // "sliding_window": 32768 but "use_sliding_window": false.
  const ModelConfig c = load_ok(fixtures_dir() / "tokenizers/qwen2.5-3b-instruct");
  EXPECT_FALSE(c.sliding_window.has_value());
  EXPECT_TRUE(c.attention_bias);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.head_dim, 128);
}

TEST(ModelConfigFixtures, Qwen3ExplicitHeadDim) {
  const ModelConfig c = load_ok(fixtures_dir() / "models/qwen3");
  EXPECT_EQ(c.head_dim, 48);  // not 128 / 4
  EXPECT_FALSE(c.attention_bias);
  EXPECT_DOUBLE_EQ(c.rope.theta, 1000000.0);
}

TEST(ModelConfigFixtures, MistralNullSlidingWindow) {
  const ModelConfig c = load_ok(fixtures_dir() / "models/mistral");
  EXPECT_EQ(c.architecture, "MistralForCausalLM");
  EXPECT_FALSE(c.sliding_window.has_value());
  EXPECT_DOUBLE_EQ(c.rope.theta, 1000000.0);
}

TEST(ModelConfigFixtures, Mixtral) {
  const ModelConfig c = load_ok(fixtures_dir() / "models/mixtral");
  EXPECT_EQ(c.head_dim, 32);  // "head_dim": null means derived
  EXPECT_EQ(c.num_experts, 4);
  EXPECT_EQ(c.num_experts_per_tok, 2);
  EXPECT_EQ(c.moe_intermediate_size, 352);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_EQ(c.scoring_func, "softmax");
}

TEST(ModelConfigFixtures, Qwen3Moe) {
  const ModelConfig c = load_ok(fixtures_dir() / "models/qwen3-moe");
  EXPECT_EQ(c.num_experts, 8);
  EXPECT_EQ(c.num_experts_per_tok, 2);
  EXPECT_EQ(c.moe_intermediate_size, 96);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_DOUBLE_EQ(c.rope.theta, 10000.0);
}

TEST(ModelConfigFixtures, DeepseekV2LiteNoQLora) {
  const ModelConfig c = load_ok(fixtures_dir() / "models/deepseek-v2-lite");
  EXPECT_EQ(c.q_lora_rank, 0);  // null
  EXPECT_EQ(c.kv_lora_rank, 64);
  EXPECT_EQ(c.qk_nope_head_dim, 32);
  EXPECT_EQ(c.qk_rope_head_dim, 16);
  EXPECT_EQ(c.v_head_dim, 32);
  EXPECT_EQ(c.num_experts, 8);
  EXPECT_EQ(c.n_shared_experts, 2);
  EXPECT_EQ(c.first_k_dense_replace, 1);
  EXPECT_EQ(c.moe_intermediate_size, 64);
  EXPECT_FALSE(c.norm_topk_prob);
  EXPECT_EQ(c.scoring_func, "softmax");
  EXPECT_EQ(c.topk_method, "greedy");
  EXPECT_DOUBLE_EQ(c.routed_scaling_factor, 1.0);
  EXPECT_EQ(c.rope.type, RopeType::kDefault);
}

TEST(ModelConfigFixtures, DeepseekV3) {
  const ModelConfig c = load_ok(fixtures_dir() / "models/deepseek-v3");
  EXPECT_EQ(c.architecture, "DeepseekV3ForCausalLM");
  EXPECT_EQ(c.q_lora_rank, 96);
  EXPECT_EQ(c.kv_lora_rank, 64);
  EXPECT_EQ(c.n_group, 4);
  EXPECT_EQ(c.topk_group, 2);
  EXPECT_DOUBLE_EQ(c.routed_scaling_factor, 2.5);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_EQ(c.scoring_func, "sigmoid");  // DeepSeek-V3's routing, not in the file
  EXPECT_EQ(c.topk_method, "noaux_tc");
  EXPECT_EQ(c.rope.type, RopeType::kYarn);  // legacy "type": "yarn"
  EXPECT_DOUBLE_EQ(c.rope.factor, 4.0);
  EXPECT_DOUBLE_EQ(c.rope.beta_fast, 32.0);
  EXPECT_DOUBLE_EQ(c.rope.beta_slow, 1.0);
  EXPECT_DOUBLE_EQ(c.rope.mscale, 1.0);
  EXPECT_DOUBLE_EQ(c.rope.mscale_all_dim, 1.0);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 512);
}

TEST(ModelConfigFixtures, DeepseekR1FullSize) {
  const ModelConfig c = load_ok(fixtures_dir() / "tokenizers/deepseek-r1");
  EXPECT_EQ(c.q_lora_rank, 1536);
  EXPECT_EQ(c.kv_lora_rank, 512);
  EXPECT_EQ(c.num_experts, 256);
  EXPECT_EQ(c.num_experts_per_tok, 8);
  EXPECT_EQ(c.n_group, 8);
  EXPECT_EQ(c.topk_group, 4);
  EXPECT_EQ(c.first_k_dense_replace, 3);
  EXPECT_EQ(c.scoring_func, "sigmoid");
  EXPECT_EQ(c.topk_method, "noaux_tc");
  EXPECT_EQ(c.head_dim, 64);  // the rotary part of the MLA head
  EXPECT_EQ(c.rope.type, RopeType::kYarn);
  EXPECT_DOUBLE_EQ(c.rope.factor, 40.0);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 4096);
}

TEST(ModelConfigFixtures, DeepseekV2LiteFullSizeYarn) {
  const ModelConfig c = load_ok(fixtures_dir() / "configs/deepseek-v2-lite");
  EXPECT_EQ(c.q_lora_rank, 0);
  EXPECT_EQ(c.num_experts, 64);
  EXPECT_EQ(c.num_experts_per_tok, 6);
  EXPECT_DOUBLE_EQ(c.rope.mscale, 0.707);
  EXPECT_DOUBLE_EQ(c.rope.mscale_all_dim, 0.707);
  EXPECT_DOUBLE_EQ(c.rope.factor, 40.0);
}

TEST(ModelConfigFixtures, Llama31EosList) {
  const ModelConfig c = load_ok(fixtures_dir() / "configs/llama-3.1-8b");
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
  EXPECT_EQ(c.bos_token_id, 128000);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.rope.type, RopeType::kLlama3);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 8192);
}

TEST(ModelConfigFixtures, TinyChatModels) {
  const ModelConfig qwen = load_ok(fixtures_dir() / "models/qwen2.5-tiny-chat");
  EXPECT_FALSE(qwen.bos_token_id.has_value());  // "bos_token_id": null
  EXPECT_EQ(qwen.eos_token_ids, std::vector<int64_t>{151645});
  EXPECT_EQ(qwen.vocab_size, 151936);
  EXPECT_EQ(qwen.head_dim, 16);
  const ModelConfig llama = load_ok(fixtures_dir() / "models/llama3.2-tiny-chat");
  EXPECT_TRUE(llama.tie_word_embeddings);
  EXPECT_EQ(llama.vocab_size, 128256);
}

// --- the legacy and transformers-5 forms of one config give the same struct ---

void expect_same(const ModelConfig& a, const ModelConfig& b) {
  EXPECT_EQ(a.architecture, b.architecture);
  EXPECT_EQ(a.model_type, b.model_type);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.intermediate_size, b.intermediate_size);
  EXPECT_EQ(a.num_hidden_layers, b.num_hidden_layers);
  EXPECT_EQ(a.num_attention_heads, b.num_attention_heads);
  EXPECT_EQ(a.num_key_value_heads, b.num_key_value_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.max_position_embeddings, b.max_position_embeddings);
  EXPECT_EQ(a.rms_norm_eps, b.rms_norm_eps);
  EXPECT_EQ(a.tie_word_embeddings, b.tie_word_embeddings);
  EXPECT_EQ(a.attention_bias, b.attention_bias);
  EXPECT_EQ(a.dtype, b.dtype);
  EXPECT_EQ(a.rope.type, b.rope.type);
  EXPECT_EQ(a.rope.theta, b.rope.theta);
  EXPECT_EQ(a.rope.factor, b.rope.factor);
  EXPECT_EQ(a.rope.low_freq_factor, b.rope.low_freq_factor);
  EXPECT_EQ(a.rope.high_freq_factor, b.rope.high_freq_factor);
  EXPECT_EQ(a.rope.original_max_position_embeddings, b.rope.original_max_position_embeddings);
  EXPECT_EQ(a.rope.beta_fast, b.rope.beta_fast);
  EXPECT_EQ(a.rope.beta_slow, b.rope.beta_slow);
  EXPECT_EQ(a.rope.mscale, b.rope.mscale);
  EXPECT_EQ(a.rope.mscale_all_dim, b.rope.mscale_all_dim);
  EXPECT_EQ(a.rope.partial_rotary_factor, b.rope.partial_rotary_factor);
  EXPECT_EQ(a.bos_token_id, b.bos_token_id);
  EXPECT_EQ(a.eos_token_ids, b.eos_token_ids);
}

constexpr std::string_view kCommon = R"("architectures": ["LlamaForCausalLM"], "model_type": "llama",
  "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 8,
  "num_key_value_heads": 2, "vocab_size": 1000, "max_position_embeddings": 8192, "rms_norm_eps": 1e-5,
  "bos_token_id": 1, "eos_token_id": [2, 3],)";

ModelConfig parse_ok(const std::string& json) {
  auto config = parse_model_config(json);
  EXPECT_TRUE(config.ok()) << config.status().to_string() << "\n" << json;
  return config.ok() ? *config : ModelConfig{};
}

TEST(ModelConfigForms, LegacyAndNewAgree) {
  struct Case {
    const char* legacy;
    const char* modern;
  };
  const Case cases[] = {
      {R"("rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
          "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}, "torch_dtype": "bfloat16")",
       R"("rope_parameters": {"rope_theta": 500000.0, "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
          "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}, "dtype": "bfloat16")"},
      // legacy "type" spelling
      {R"("rope_theta": 10000, "rope_scaling": {"type": "yarn", "factor": 40, "beta_fast": 32, "beta_slow": 1,
          "mscale": 0.707, "mscale_all_dim": 0.707, "original_max_position_embeddings": 4096}, "torch_dtype": "float16")",
       R"("rope_parameters": {"rope_theta": 10000, "rope_type": "yarn", "factor": 40, "beta_fast": 32, "beta_slow": 1,
          "mscale": 0.707, "mscale_all_dim": 0.707, "original_max_position_embeddings": 4096}, "dtype": "float16")"},
      {R"("rope_theta": 1e6, "rope_scaling": {"type": "linear", "factor": 2.0}, "torch_dtype": "float32")",
       R"("rope_parameters": {"rope_theta": 1e6, "rope_type": "linear", "factor": 2.0}, "dtype": "float32")"},
      {R"("rope_theta": 1e6, "rope_scaling": {"rope_type": "dynamic", "factor": 3.0}, "partial_rotary_factor": 0.5)",
       R"("rope_parameters": {"rope_theta": 1e6, "rope_type": "dynamic", "factor": 3.0, "partial_rotary_factor": 0.5})"},
      {R"("rope_theta": 250000.0, "rope_scaling": null, "torch_dtype": "bfloat16")",
       R"("rope_parameters": {"rope_theta": 250000.0, "rope_type": "default"}, "dtype": "bfloat16")"},
  };
  for (const Case& c : cases) {
    const ModelConfig legacy = parse_ok("{" + std::string(kCommon) + c.legacy + "}");
    const ModelConfig modern = parse_ok("{" + std::string(kCommon) + c.modern + "}");
    SCOPED_TRACE(c.legacy);
    expect_same(legacy, modern);
    EXPECT_EQ(legacy.eos_token_ids, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(legacy.head_dim, 32);
  }
  const ModelConfig yarn = parse_ok("{" + std::string(kCommon) + cases[1].legacy + "}");
  EXPECT_EQ(yarn.rope.type, RopeType::kYarn);
  EXPECT_EQ(yarn.dtype, DType::kF16);
  const ModelConfig dynamic = parse_ok("{" + std::string(kCommon) + cases[3].modern + "}");
  EXPECT_EQ(dynamic.rope.type, RopeType::kDynamic);
  EXPECT_DOUBLE_EQ(dynamic.rope.partial_rotary_factor, 0.5);
}

TEST(ModelConfigForms, DefaultsPerModelType) {
  // Fields left out fall back to what HF's config class for that model type uses.
  const ModelConfig llama = parse_ok(R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
      "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4,
      "vocab_size": 10})");
  EXPECT_EQ(llama.num_key_value_heads, 4);
  EXPECT_EQ(llama.head_dim, 16);
  EXPECT_DOUBLE_EQ(llama.rope.theta, 10000.0);
  EXPECT_DOUBLE_EQ(llama.rms_norm_eps, 1e-6);
  EXPECT_EQ(llama.dtype, DType::kBF16);
  EXPECT_TRUE(llama.eos_token_ids.empty());
  EXPECT_EQ(llama.hidden_act, "silu");

  const ModelConfig mistral = parse_ok(R"({"architectures": ["MistralForCausalLM"], "model_type": "mistral",
      "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4,
      "vocab_size": 10})");
  EXPECT_EQ(mistral.sliding_window, 4096);

  const ModelConfig qwen3 = parse_ok(R"({"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3",
      "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4,
      "vocab_size": 10})");
  EXPECT_EQ(qwen3.head_dim, 128);

  const ModelConfig qwen2 = parse_ok(R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
      "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4,
      "vocab_size": 10, "sliding_window": 1024, "use_sliding_window": true, "torch_dtype": "auto"})");
  EXPECT_EQ(qwen2.sliding_window, 1024);
  EXPECT_TRUE(qwen2.attention_bias);
}

TEST(ModelConfigForms, NestedPerLayerTypeRopeParameters) {
  const ModelConfig c = parse_ok("{" + std::string(kCommon) + R"("rope_parameters": {
      "full_attention": {"rope_theta": 1e6, "rope_type": "linear", "factor": 4.0},
      "sliding_attention": {"rope_theta": 1e4, "rope_type": "default"}}})");
  EXPECT_EQ(c.rope.type, RopeType::kLinear);
  EXPECT_DOUBLE_EQ(c.rope.theta, 1e6);
  EXPECT_DOUBLE_EQ(c.rope.factor, 4.0);
}

// --- --json-model-override-args ---

TEST(ModelConfigOverrides, ReplaceTopLevelKeys) {
  const ModelConfig c = load_ok(fixtures_dir() / "tokenizers/deepseek-r1",
                                R"({"num_hidden_layers": 4, "rope_scaling": null, "first_k_dense_replace": 1})");
  EXPECT_EQ(c.num_hidden_layers, 4);
  EXPECT_EQ(c.first_k_dense_replace, 1);
  EXPECT_EQ(c.rope.type, RopeType::kDefault);
  EXPECT_EQ(c.hidden_size, 7168);  // untouched
}

TEST(ModelConfigOverrides, BadOverridesAreErrors) {
  const auto dir = fixtures_dir() / "models/llama";
  auto invalid = load_model_config(dir, "{num_hidden_layers: 4}");
  ASSERT_FALSE(invalid.ok());
  EXPECT_NE(invalid.status().message().find("--json-model-override-args: invalid JSON"), std::string::npos)
      << invalid.status().message();
  auto not_object = load_model_config(dir, "[1, 2]");
  ASSERT_FALSE(not_object.ok());
  EXPECT_NE(not_object.status().message().find("must be a JSON object, got array"), std::string::npos);
  auto bad_value = load_model_config(dir, R"({"num_attention_heads": 3})");
  ASSERT_FALSE(bad_value.ok());
  EXPECT_NE(bad_value.status().message().find("not a multiple of num_key_value_heads"), std::string::npos)
      << bad_value.status().message();
}

// --- errors ---

void expect_config_error(const std::string& json, std::initializer_list<std::string_view> parts) {
  auto config = parse_model_config(json, {}, "dir/config.json");
  ASSERT_FALSE(config.ok()) << json;
  const std::string& message = config.status().message();
  EXPECT_NE(message.find("dir/config.json"), std::string::npos) << message;
  for (std::string_view part : parts) EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' in: " << message;
}

std::string with_common(std::string_view extra) { return "{" + std::string(kCommon) + std::string(extra) + "}"; }

TEST(ModelConfigErrors, Architectures) {
  expect_config_error(R"({"model_type": "llama", "hidden_size": 64})", {"no 'architectures'"});
  expect_config_error(R"({"architectures": [], "hidden_size": 64})", {"'architectures' must be a non-empty list", "[]"});
  expect_config_error(R"({"architectures": "LlamaForCausalLM"})", {"'architectures' must be a non-empty list", "string"});
  expect_config_error(R"({"architectures": [""]})", {"'architectures' must be a non-empty list"});
}

TEST(ModelConfigErrors, AnyArchitectureNameIsAcceptedHere) {
  std::string json = with_common(R"("rope_theta": 1e4)");
  json.replace(json.find("LlamaForCausalLM"), 16, "SomethingNewForCausalLM");
  EXPECT_EQ(parse_ok(json).architecture, "SomethingNewForCausalLM");
}

TEST(ModelConfigErrors, InvalidJson) {
  expect_config_error(R"({"architectures": ["LlamaForCausalLM"],)", {"invalid JSON"});
  expect_config_error("[]", {"must be a JSON object"});
}

TEST(ModelConfigErrors, Sizes) {
  expect_config_error(R"({"architectures": ["X"], "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 8})",
                      {"missing 'hidden_size'"});
  expect_config_error(R"({"architectures": ["X"], "hidden_size": 64, "num_hidden_layers": 1,
      "num_attention_heads": 4, "vocab_size": 8})",
                      {"missing 'intermediate_size'"});
  std::string json = with_common(R"("rope_theta": 1e4)");
  auto replaced = [&](std::string_view from, std::string_view to) {
    std::string out = json;
    out.replace(out.find(from), from.size(), to);
    return out;
  };
  expect_config_error(replaced(R"("hidden_size": 256)", R"("hidden_size": 0)"), {"'hidden_size' must be positive"});
  expect_config_error(replaced(R"("hidden_size": 256)", R"("hidden_size": 4294967296)"),
                      {"'hidden_size'", "below 2^31", "4294967296"});
  expect_config_error(replaced(R"("num_hidden_layers": 2)", R"("num_hidden_layers": -2)"), {"'num_hidden_layers'"});
  expect_config_error(replaced(R"("num_key_value_heads": 2)", R"("num_key_value_heads": 3)"),
                      {"num_attention_heads 8 is not a multiple of num_key_value_heads 3"});
  expect_config_error(replaced(R"("hidden_size": 256)", R"("hidden_size": "256")"),
                      {"'hidden_size' must be an integer, got string"});
  expect_config_error(replaced(R"("hidden_size": 256)", R"("hidden_size": 256.5)"),
                      {"'hidden_size' must be an integer, got number"});
  expect_config_error(replaced(R"("hidden_size": 256)", R"("hidden_size": 99999999999999999999999)"),
                      {"'hidden_size' must be an integer"});
  expect_config_error(replaced(R"("hidden_size": 256)", R"("hidden_size": 250)"),
                      {"hidden_size 250 is not a multiple of num_attention_heads 8"});
  expect_config_error(replaced(R"("rms_norm_eps": 1e-5)", R"("rms_norm_eps": -1)"), {"rms_norm_eps"});
  expect_config_error(replaced(R"("eos_token_id": [2, 3])", R"("eos_token_id": [2, "x"])"),
                      {"'eos_token_id'[1] must be an integer"});
}

TEST(ModelConfigErrors, Rope) {
  expect_config_error(with_common(R"("rope_scaling": {"rope_type": "longrope", "factor": 2})"),
                      {"RoPE type 'longrope' is not supported", "llama3"});
  expect_config_error(with_common(R"("rope_scaling": {"factor": 2})"), {"rope_scaling", "neither 'rope_type' nor 'type'"});
  expect_config_error(with_common(R"("rope_scaling": {"rope_type": "linear"})"), {"'linear' needs 'factor'"});
  expect_config_error(with_common(R"("rope_scaling": {"rope_type": "linear", "factor": 0})"), {"'factor' must be positive"});
  expect_config_error(with_common(R"("rope_scaling": {"rope_type": "llama3", "factor": 8})"),
                      {"'llama3' needs 'original_max_position_embeddings'"});
  expect_config_error(with_common(R"("rope_scaling": "yarn")"), {"rope_scaling must be an object or null"});
  expect_config_error(with_common(R"("rope_parameters": {"rope_theta": -5, "rope_type": "default"})"),
                      {"rope_theta must be positive"});
  expect_config_error(with_common(R"("partial_rotary_factor": 1.5)"), {"partial_rotary_factor"});
}

TEST(ModelConfigErrors, Dtype) {
  expect_config_error(with_common(R"("torch_dtype": "int4")"), {"dtype 'int4'"});
}

TEST(ModelConfigErrors, Moe) {
  expect_config_error(with_common(R"("num_local_experts": 4, "num_experts_per_tok": 8)"),
                      {"num_experts_per_tok 8 exceeds the 4 experts"});
}

TEST(ModelConfigFiles, MissingConfig) {
  ScratchDir dir;
  auto config = load_model_config(dir.path());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), StatusCode::kNotFound);
  EXPECT_NE(config.status().message().find("no config.json"), std::string::npos);
}

// --- generation_config.json ---

TEST(GenerationConfig, Fixtures) {
  auto tiny = load_generation_config(fixtures_dir() / "models/llama");
  ASSERT_TRUE(tiny.ok()) << tiny.status().to_string();
  EXPECT_EQ(tiny->eos_token_ids, std::vector<int64_t>{2});
  EXPECT_EQ(tiny->bos_token_id, 1);
  EXPECT_FALSE(tiny->temperature.has_value());

  auto llama = load_generation_config(fixtures_dir() / "tokenizers/llama-3.2-3b-instruct");
  ASSERT_TRUE(llama.ok()) << llama.status().to_string();
  EXPECT_EQ(llama->eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
  EXPECT_DOUBLE_EQ(*llama->temperature, 0.6);
  EXPECT_DOUBLE_EQ(*llama->top_p, 0.9);
  EXPECT_EQ(llama->do_sample, true);

  auto qwen = load_generation_config(fixtures_dir() / "models/qwen2.5-tiny-chat");
  ASSERT_TRUE(qwen.ok());
  EXPECT_FALSE(qwen->bos_token_id.has_value());
  EXPECT_EQ(qwen->eos_token_ids, std::vector<int64_t>{151645});
}

TEST(GenerationConfig, AllSamplingFields) {
  auto c = parse_generation_config(R"({"eos_token_id": 7, "temperature": 0.7, "top_p": 0.8, "top_k": 20,
      "min_p": 0.05, "repetition_penalty": 1.05, "max_new_tokens": 100})",
                                   "g.json");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->eos_token_ids, std::vector<int64_t>{7});
  EXPECT_EQ(c->top_k, 20);
  EXPECT_DOUBLE_EQ(*c->min_p, 0.05);
  EXPECT_DOUBLE_EQ(*c->repetition_penalty, 1.05);
  EXPECT_EQ(c->max_new_tokens, 100);
}

TEST(GenerationConfig, MissingFileIsEmptyMalformedIsError) {
  ScratchDir dir;
  auto empty = load_generation_config(dir.path());
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->eos_token_ids.empty());
  EXPECT_FALSE(empty->temperature.has_value());

  write_file(dir.path() / "generation_config.json", R"({"eos_token_id": )");
  auto bad = load_generation_config(dir.path());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("generation_config.json: invalid JSON"), std::string::npos)
      << bad.status().message();

  auto wrong_type = parse_generation_config(R"({"top_k": "many"})", "g.json");
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_NE(wrong_type.status().message().find("'top_k' must be an integer"), std::string::npos);
  auto out_of_range = parse_generation_config(R"({"top_p": 2.0})", "g.json");
  ASSERT_FALSE(out_of_range.ok());
}

}  // namespace
}  // namespace radixlm
