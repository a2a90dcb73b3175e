#include "loader/weight_source.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/dtype.h"
#include "loader/loader_test_util.h"

namespace radixlm {
namespace {

using testing_util::fixtures_dir;
using testing_util::safetensors_image;
using testing_util::ScratchDir;
using testing_util::write_file;

// --- checkpoints on disk ---

TEST(Checkpoint, SingleFileFixture) {
  auto weights = open_checkpoint(fixtures_dir() / "models/qwen2");
  ASSERT_TRUE(weights.ok()) << weights.status().to_string();
  EXPECT_TRUE((*weights)->contains("model.layers.0.self_attn.q_proj.bias"));
  EXPECT_FALSE((*weights)->contains("lm_head.weight"));  // tied embeddings
  EXPECT_EQ((*weights)->names().size(), 26u);

  auto embed = (*weights)->get("model.embed_tokens.weight", Shape{512, 128});
  ASSERT_TRUE(embed.ok()) << embed.status().to_string();
  EXPECT_EQ(embed->dtype(), DType::kBF16);

  auto wrong_shape = (*weights)->get("model.embed_tokens.weight", Shape{128, 512});
  ASSERT_FALSE(wrong_shape.ok());
  EXPECT_NE(wrong_shape.status().message().find("model.safetensors: tensor 'model.embed_tokens.weight': shape "
                                                "[512, 128] but the model expects [128, 512]"),
            std::string::npos)
      << wrong_shape.status().message();

  auto missing = (*weights)->get("lm_head.weight", Shape{512, 128});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("tensor 'lm_head.weight' not found"), std::string::npos);
}

// Two shards of hand-built bytes: a.safetensors holds x (F32 [2]), b.safetensors holds y (U8 [3]).
void write_two_shards(const std::filesystem::path& dir) {
  write_file(dir / "a.safetensors",
             safetensors_image(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                               std::string("\x00\x00\x80\x3f\x00\x00\x40\x40", 8)));  // 1.0f, 3.0f
  write_file(dir / "b.safetensors", safetensors_image(R"({"y":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}})", "abc"));
}

TEST(Checkpoint, Sharded) {
  ScratchDir dir;
  write_two_shards(dir.path());
  write_file(dir.path() / "model.safetensors.index.json",
             R"({"metadata": {"total_size": 11}, "weight_map": {"x": "a.safetensors", "y": "b.safetensors"}})");
  auto weights = open_checkpoint(dir.path());
  ASSERT_TRUE(weights.ok()) << weights.status().to_string();
  EXPECT_EQ((*weights)->names(), (std::vector<std::string>{"x", "y"}));
  auto x = (*weights)->get("x", Shape{2});
  ASSERT_TRUE(x.ok()) << x.status().to_string();
  EXPECT_EQ(x->as<float>()[1], 3.0f);
  auto y = (*weights)->get("y", Shape{3});
  ASSERT_TRUE(y.ok());
  EXPECT_EQ(std::memcmp(y->as<char>(), "abc", 3), 0);
}

std::string checkpoint_error(const std::filesystem::path& dir) {
  auto weights = open_checkpoint(dir);
  return weights.ok() ? std::string() : weights.status().message();
}

TEST(Checkpoint, MissingShard) {
  ScratchDir dir;
  write_two_shards(dir.path());
  write_file(dir.path() / "model.safetensors.index.json",
             R"({"weight_map": {"x": "a.safetensors", "z": "model-00002-of-00002.safetensors"}})");
  const std::string message = checkpoint_error(dir.path());
  EXPECT_NE(message.find("model.safetensors.index.json: shard 'model-00002-of-00002.safetensors'"), std::string::npos)
      << message;
  EXPECT_NE(message.find("'z'"), std::string::npos) << message;
  EXPECT_NE(message.find("missing"), std::string::npos) << message;
}

TEST(Checkpoint, TensorNotInItsShard) {
  ScratchDir dir;
  write_two_shards(dir.path());
  write_file(dir.path() / "model.safetensors.index.json", R"({"weight_map": {"x": "b.safetensors"}})");
  const std::string message = checkpoint_error(dir.path());
  EXPECT_NE(message.find("tensor 'x' is mapped to shard 'b.safetensors', which does not hold it"), std::string::npos)
      << message;
}

TEST(Checkpoint, ShardPathsMayNotEscape) {
  for (const char* shard : {"../a.safetensors", "/etc/passwd", "sub/../../a.safetensors", ""}) {
    ScratchDir dir;
    write_two_shards(dir.path());
    write_file(dir.path() / "model.safetensors.index.json",
               std::string(R"({"weight_map": {"x": ")") + shard + R"("}})");
    const std::string message = checkpoint_error(dir.path());
    EXPECT_NE(message.find("is not a plain path inside the model directory"), std::string::npos)
        << shard << ": " << message;
  }
}

TEST(Checkpoint, ShardInSubdirectoryIsFine) {
  ScratchDir dir;
  write_two_shards(dir.path() / "shards");
  write_file(dir.path() / "model.safetensors.index.json", R"({"weight_map": {"y": "shards/b.safetensors"}})");
  EXPECT_EQ(checkpoint_error(dir.path()), "");
}

TEST(Checkpoint, BadIndex) {
  ScratchDir dir;
  write_two_shards(dir.path());
  write_file(dir.path() / "model.safetensors.index.json", R"({"weight_map": {"x": "a.safetensors",)");
  EXPECT_NE(checkpoint_error(dir.path()).find("model.safetensors.index.json: invalid JSON"), std::string::npos);
  write_file(dir.path() / "model.safetensors.index.json", R"({"metadata": {}})");
  EXPECT_NE(checkpoint_error(dir.path()).find("no 'weight_map' object"), std::string::npos);
  write_file(dir.path() / "model.safetensors.index.json", R"({"weight_map": {"x": 3}})");
  EXPECT_NE(checkpoint_error(dir.path()).find("weight_map['x'] must be a file name"), std::string::npos);
}

TEST(Checkpoint, CorruptShardNamesTheFile) {
  ScratchDir dir;
  write_two_shards(dir.path());
  write_file(dir.path() / "b.safetensors", safetensors_image(R"({"y":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}})", "a"));
  write_file(dir.path() / "model.safetensors.index.json", R"({"weight_map": {"x": "a.safetensors", "y": "b.safetensors"}})");
  const std::string message = checkpoint_error(dir.path());
  EXPECT_NE(message.find("b.safetensors: tensor 'y': data_offsets [0, 3] end past the data section (1 bytes)"),
            std::string::npos)
      << message;
}

TEST(Checkpoint, NoWeights) {
  ScratchDir dir;
  EXPECT_NE(checkpoint_error(dir.path()).find("no model.safetensors or model.safetensors.index.json"),
            std::string::npos);
  EXPECT_NE(checkpoint_error(dir.path() / "absent").find("not a directory"), std::string::npos);
}

TEST(Checkpoint, UnindexedFilesAreAllRead) {
  ScratchDir dir;
  write_two_shards(dir.path());
  auto weights = open_checkpoint(dir.path());
  ASSERT_TRUE(weights.ok()) << weights.status().to_string();
  EXPECT_EQ((*weights)->names(), (std::vector<std::string>{"x", "y"}));
  // The same name in two files is ambiguous.
  write_file(dir.path() / "c.safetensors", safetensors_image(R"({"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", "q"));
  EXPECT_NE(checkpoint_error(dir.path()).find("tensor 'x' is in both"), std::string::npos);
}

// --- dummy weights ---

std::vector<float> to_f32(const Tensor& t) {
  std::vector<float> out(static_cast<size_t>(t.view.numel()));
  convert_to_f32(t.dtype(), t.view.data, out.data(), out.size());
  return out;
}

TEST(DummyWeights, DeterministicAndOrderIndependent) {
  const Shape shape{1100, 1000};  // many chunks (the parallel fill), and over 2 MB (the huge-page allocation)
  auto first = make_dummy_weights(DType::kBF16, 7);
  auto a1 = first->get("model.layers.0.mlp.up_proj.weight", shape);
  auto b1 = first->get("model.layers.1.mlp.up_proj.weight", shape);
  auto second = make_dummy_weights(DType::kBF16, 7);
  auto b2 = second->get("model.layers.1.mlp.up_proj.weight", shape);  // other order
  auto a2 = second->get("model.layers.0.mlp.up_proj.weight", shape);
  ASSERT_TRUE(a1.ok() && b1.ok() && a2.ok() && b2.ok());
  const size_t bytes = a1->view.nbytes();
  EXPECT_EQ(std::memcmp(a1->view.data, a2->view.data, bytes), 0);
  EXPECT_EQ(std::memcmp(b1->view.data, b2->view.data, bytes), 0);
  EXPECT_NE(std::memcmp(a1->view.data, b1->view.data, bytes), 0);  // names differ -> values differ
  auto other_seed = make_dummy_weights(DType::kBF16, 8)->get("model.layers.0.mlp.up_proj.weight", shape);
  EXPECT_NE(std::memcmp(a1->view.data, other_seed->view.data, bytes), 0);
}

TEST(DummyWeights, DtypesAgreeUpToRounding) {
  // The f32 values, rounded to bf16 by the exact conversion, are the bf16 values: one stream, any dtype.
  auto f32 = make_dummy_weights(DType::kF32, 1)->get("w", Shape{70000});
  auto bf16 = make_dummy_weights(DType::kBF16, 1)->get("w", Shape{70000});
  ASSERT_TRUE(f32.ok() && bf16.ok());
  EXPECT_EQ(f32->dtype(), DType::kF32);
  EXPECT_EQ(bf16->dtype(), DType::kBF16);
  for (int64_t i = 0; i < 70000; i += 997) {
    EXPECT_EQ(f32_to_bf16(f32->as<float>()[i]), bf16->as<uint16_t>()[i]) << i;
  }
}

TEST(DummyWeights, SmallStdNormOnesBiasZeros) {
  auto weights = make_dummy_weights(DType::kF32, 0);
  auto w = weights->get("model.layers.3.self_attn.q_proj.weight", Shape{512, 512});
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->shape(), (Shape{512, 512}));
  const std::vector<float> values = to_f32(*w);
  double sum = 0, sum_sq = 0, max_abs = 0;
  for (float v : values) {
    sum += v;
    sum_sq += static_cast<double>(v) * v;
    max_abs = std::max(max_abs, std::fabs(static_cast<double>(v)));
  }
  const double mean = sum / values.size();
  const double std = std::sqrt(sum_sq / values.size() - mean * mean);
  EXPECT_NEAR(mean, 0.0, 1e-3);
  EXPECT_NEAR(std, 0.02, 1e-3);
  EXPECT_LE(max_abs, 0.02 * std::sqrt(3.0) + 1e-6);  // uniform on [-a, a), std a / sqrt(3)

  for (const char* name : {"model.norm.weight", "model.layers.0.input_layernorm.weight",
                           "model.layers.0.self_attn.q_norm.weight", "model.layers.0.self_attn.kv_a_layernorm.weight"}) {
    for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
      auto norm = make_dummy_weights(dtype, 0)->get(name, Shape{64});
      ASSERT_TRUE(norm.ok());
      EXPECT_EQ(norm->dtype(), dtype);
      for (float v : to_f32(*norm)) ASSERT_EQ(v, 1.0f) << name;
    }
  }
  auto bias = weights->get("model.layers.0.self_attn.q_proj.bias", Shape{128});
  ASSERT_TRUE(bias.ok());
  for (float v : to_f32(*bias)) ASSERT_EQ(v, 0.0f);
  EXPECT_TRUE(weights->names().empty());
  EXPECT_TRUE(weights->contains("anything"));
}

TEST(DummyWeights, Fp8AndBadRequests) {
  auto fp8 = make_dummy_weights(DType::kF8E4M3, 0)->get("w", Shape{4, 4});
  ASSERT_TRUE(fp8.ok());
  EXPECT_EQ(fp8->dtype(), DType::kF8E4M3);
  for (float v : to_f32(*fp8)) EXPECT_LE(std::fabs(v), 0.04f);

  auto int_dtype = make_dummy_weights(DType::kI32, 0)->get("w", Shape{4});
  ASSERT_FALSE(int_dtype.ok());
  EXPECT_NE(int_dtype.status().message().find("I32"), std::string::npos);
  auto negative = make_dummy_weights(DType::kBF16, 0)->get("w", Shape{-1, 4});
  ASSERT_FALSE(negative.ok());
  EXPECT_NE(negative.status().message().find("tensor 'w'"), std::string::npos);
}

}  // namespace
}  // namespace radixlm
