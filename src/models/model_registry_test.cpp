// Architecture dispatch: unsupported names get a clear error listing what is supported, the MoE/MLA
// fixtures parse but are refused for now, and full-size shapes build from dummy weights.

#include <cmath>
#include <filesystem>

#include <gtest/gtest.h>

#include "backends/cpu/cpu_backend.h"
#include "loader/model_config.h"
#include "loader/weight_source.h"
#include "models/llama.h"
#include "models/model.h"

namespace radixlm {
namespace {

const std::filesystem::path kModels = std::filesystem::path(RADIXLM_FIXTURES_DIR) / "models";

TEST(ModelRegistry, ListsTheDenseFamily) {
  const std::vector<std::string> names = supported_architectures();
  for (const char* arch : {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), arch), names.end()) << arch;
  }
}

TEST(ModelRegistry, UnknownArchitectureIsAClearErrorListingTheSupportedOnes) {
  auto config = load_model_config(kModels / "llama");
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  config->architecture = "GPT2LMHeadModel";
  auto weights = make_dummy_weights(DType::kBF16);
  CpuBackend backend(1);
  auto model = load_model(*config, *weights, backend);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kUnsupported);
  const std::string message = model.status().message();
  EXPECT_NE(message.find("unsupported architecture: GPT2LMHeadModel"), std::string::npos) << message;
  for (const std::string& name : supported_architectures()) EXPECT_NE(message.find(name), std::string::npos) << message;
}

TEST(ModelRegistry, MoeAndMlaFixturesParseButAreNotSupportedYet) {
  for (const char* fixture : {"mixtral", "qwen3-moe", "deepseek-v2-lite", "deepseek-v3"}) {
    auto config = load_model_config(kModels / fixture);
    ASSERT_TRUE(config.ok()) << fixture << ": " << config.status().to_string();
    auto weights = open_checkpoint(kModels / fixture);
    ASSERT_TRUE(weights.ok()) << weights.status().to_string();
    CpuBackend backend(1);
    auto model = load_model(*config, **weights, backend);
    ASSERT_FALSE(model.ok()) << fixture;
    EXPECT_EQ(model.status().code(), StatusCode::kUnsupported);
    EXPECT_NE(model.status().message().find("not supported yet"), std::string::npos) << model.status().message();
    EXPECT_NE(model.status().message().find(config->architecture), std::string::npos) << model.status().message();
  }
}

TEST(ModelRegistry, FamilyFlagsFollowTheArchitecture) {
  ModelConfig config;
  config.architecture = "Qwen2ForCausalLM";
  EXPECT_TRUE(llama_family_flags(config)->qkv_bias);
  EXPECT_FALSE(llama_family_flags(config)->o_proj_bias);
  config.architecture = "Qwen3ForCausalLM";
  EXPECT_TRUE(llama_family_flags(config)->qk_norm);
  EXPECT_FALSE(llama_family_flags(config)->qkv_bias);
  config.architecture = "MistralForCausalLM";
  config.attention_bias = true;
  EXPECT_FALSE(llama_family_flags(config)->qkv_bias);
  config.architecture = "LlamaForCausalLM";
  EXPECT_TRUE(llama_family_flags(config)->qkv_bias);
  EXPECT_TRUE(llama_family_flags(config)->o_proj_bias);
}

TEST(ModelRegistry, BadDimensionsAreErrorsNotCrashes) {
  auto config = load_model_config(kModels / "llama");
  ASSERT_TRUE(config.ok());
  config->num_key_value_heads = 3;  // 4 query heads do not split into 3 groups
  auto weights = make_dummy_weights(DType::kBF16);
  CpuBackend backend(1);
  auto model = load_model(*config, *weights, backend);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kInvalidArgument);
}

TEST(ModelRegistry, CheckpointWithWrongShapeIsAnError) {
  auto config = load_model_config(kModels / "llama");
  ASSERT_TRUE(config.ok());
  config->intermediate_size = 100;  // the checkpoint's MLP is 352 wide
  auto weights = open_checkpoint(kModels / "llama");
  ASSERT_TRUE(weights.ok());
  CpuBackend backend(1);
  auto model = load_model(*config, **weights, backend);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("mlp"), std::string::npos) << model.status().message();
}

TEST(ModelRegistry, DummyWeightsRunEveryFamily) {
  for (const char* fixture : {"llama", "mistral", "qwen2", "qwen3"}) {
    auto config = load_model_config(kModels / fixture);
    ASSERT_TRUE(config.ok());
    auto weights = make_dummy_weights(config->dtype);
    CpuBackend backend(2);
    auto model = load_model(*config, *weights, backend);
    ASSERT_TRUE(model.ok()) << fixture << ": " << model.status().to_string();
    const KvCacheShape shape = (*model)->kv_cache_shape();
    std::vector<LayerKvCache> cache;
    for (int64_t l = 0; l < shape.num_layers; ++l) {
      cache.push_back({backend.alloc(DType::kF32, {4, shape.num_kv_heads, shape.head_dim}),
                       backend.alloc(DType::kF32, {4, shape.num_kv_heads, shape.head_dim})});
    }
    ForwardBatch batch;
    batch.token_ids = {1, 2, 3};
    batch.positions = {0, 1, 2};
    batch.kv_slots = {0, 1, 2};
    batch.query_start = {0, 3};
    batch.kv_length = {3};
    batch.page_table_start = {0, 1};
    batch.page_table = {0};
    batch.page_size = 4;
    batch.logit_rows = {2};
    Tensor logits = (*model)->forward(batch, cache);
    ASSERT_EQ(logits.shape(), (Shape{1, config->vocab_size}));
    for (int64_t v = 0; v < config->vocab_size; ++v) ASSERT_TRUE(std::isfinite(logits.as<float>()[v])) << fixture;
  }
}

}  // namespace
}  // namespace radixlm
