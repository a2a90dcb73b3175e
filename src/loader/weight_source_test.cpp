#include "loader/weight_source.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
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

// --load-format: auto and safetensors open the checkpoint, dummy makes weights for any name, the rest
// (SGLang's pt, npcache, ...) are refused by name.
TEST(OpenWeights, ByLoadFormat) {
  const std::filesystem::path qwen2 = fixtures_dir() / "models/qwen2";
  for (const char* format : {"auto", "safetensors"}) {
    auto weights = open_weights(format, qwen2, DType::kBF16);
    ASSERT_TRUE(weights.ok()) << format << ": " << weights.status().to_string();
    EXPECT_EQ((*weights)->names().size(), 26u) << format;
  }
  auto dummy = open_weights("dummy", "/nonexistent", DType::kBF16);
  ASSERT_TRUE(dummy.ok()) << dummy.status().to_string();
  EXPECT_TRUE((*dummy)->contains("any.weight"));
  auto pt = open_weights("pt", qwen2, DType::kBF16);
  ASSERT_FALSE(pt.ok());
  EXPECT_EQ(pt.status().message(), "--load-format 'pt': want auto, safetensors or dummy");
  EXPECT_FALSE(open_weights("auto", "/nonexistent", DType::kBF16).ok());
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


// --- stacking (fused q|k|v and gate|up weights) ---

// Bytes of `parts` fetched one by one with get(), concatenated: what get_stacked must equal.
std::string concatenated(WeightSource& weights, const std::vector<StackedPart>& parts) {
  std::string out;
  for (const StackedPart& part : parts) {
    auto t = weights.get(part.name, part.shape);
    EXPECT_TRUE(t.ok()) << t.status().to_string();
    if (t.ok()) out.append(static_cast<const char*>(t->view.data), t->view.nbytes());
  }
  return out;
}

TEST(Stacked, DummyEqualsSeparateTensorsInOrder) {
  // Sizes over 2 MB and many fill chunks, as an 8B model's q|k|v; norm and bias parts too.
  const std::vector<StackedPart> parts = {{"model.layers.2.self_attn.q_proj.weight", {1024, 1024}},
                                          {"model.layers.2.self_attn.k_proj.weight", {256, 1024}},
                                          {"model.layers.2.self_attn.v_proj.weight", {256, 1024}}};
  for (DType dtype : {DType::kBF16, DType::kF32}) {
    auto weights = make_dummy_weights(dtype, 5);
    auto stacked = weights->get_stacked(parts);
    ASSERT_TRUE(stacked.ok()) << stacked.status().to_string();
    EXPECT_EQ(stacked->shape(), (Shape{1536, 1024}));
    EXPECT_EQ(stacked->dtype(), dtype);
    const std::string want = concatenated(*weights, parts);
    ASSERT_EQ(stacked->view.nbytes(), want.size());
    EXPECT_EQ(std::memcmp(stacked->view.data, want.data(), want.size()), 0);
  }
  auto weights = make_dummy_weights(DType::kBF16, 5);
  const std::vector<StackedPart> mixed = {{"a.q_proj.bias", {3}}, {"a.q_norm.weight", {2}}, {"a.w", {5}}};
  auto stacked = weights->get_stacked(mixed);
  ASSERT_TRUE(stacked.ok());
  const std::vector<float> values = to_f32(*stacked);
  EXPECT_EQ(values[0], 0.0f);  // bias: zeros, even though the buffer starts uninitialized
  EXPECT_EQ(values[2], 0.0f);
  EXPECT_EQ(values[3], 1.0f);  // norm: ones
  EXPECT_EQ(values[4], 1.0f);
  const std::string want = concatenated(*weights, mixed);
  EXPECT_EQ(std::memcmp(stacked->view.data, want.data(), want.size()), 0);
}

TEST(Stacked, CheckpointEqualsSeparateTensors) {
  auto weights = open_checkpoint(fixtures_dir() / "models/qwen2");
  ASSERT_TRUE(weights.ok()) << weights.status().to_string();
  const std::string attn = "model.layers.0.self_attn.";
  for (const char* kind : {"weight", "bias"}) {
    const bool bias = std::string(kind) == "bias";
    // Shapes from the fixture's config: 4 heads of 32, 2 kv heads.
    const std::vector<StackedPart> parts = {{attn + "q_proj." + kind, bias ? Shape{128} : Shape{128, 128}},
                                            {attn + "k_proj." + kind, bias ? Shape{64} : Shape{64, 128}},
                                            {attn + "v_proj." + kind, bias ? Shape{64} : Shape{64, 128}}};
    auto stacked = (*weights)->get_stacked(parts);
    ASSERT_TRUE(stacked.ok()) << stacked.status().to_string();
    EXPECT_EQ(stacked->shape()[0], 256);
    const std::string want = concatenated(**weights, parts);
    ASSERT_EQ(stacked->view.nbytes(), want.size());
    EXPECT_EQ(std::memcmp(stacked->view.data, want.data(), want.size()), 0);
  }
}

TEST(Stacked, MixedDtypesWidenToF32) {
  ScratchDir dir;
  // x: F32 [1, 2] = {1, 3}; y: BF16 [1, 2] = {2, -0.5}
  write_file(dir.path() / "model.safetensors",
             safetensors_image(R"({"x":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},)"
                               R"("y":{"dtype":"BF16","shape":[1,2],"data_offsets":[8,12]}})",
                               std::string("\x00\x00\x80\x3f\x00\x00\x40\x40\x00\x40\x00\xbf", 12)));
  auto weights = open_checkpoint(dir.path());
  ASSERT_TRUE(weights.ok()) << weights.status().to_string();
  auto stacked = (*weights)->get_stacked({{"x", {1, 2}}, {"y", {1, 2}}});
  ASSERT_TRUE(stacked.ok()) << stacked.status().to_string();
  EXPECT_EQ(stacked->dtype(), DType::kF32);
  EXPECT_EQ(stacked->shape(), (Shape{2, 2}));
  EXPECT_EQ(to_f32(*stacked), (std::vector<float>{1.0f, 3.0f, 2.0f, -0.5f}));
}

TEST(Stacked, ErrorsNameTheTensor) {
  auto weights = make_dummy_weights(DType::kBF16, 0);
  auto mismatched = weights->get_stacked({{"q", {4, 8}}, {"k", {2, 6}}});
  ASSERT_FALSE(mismatched.ok());
  EXPECT_NE(mismatched.status().message().find("cannot stack 'k' [2, 6] under 'q' [4, 8]"), std::string::npos)
      << mismatched.status().message();
  EXPECT_FALSE(weights->get_stacked({}).ok());
  auto negative = weights->get_stacked({{"q", {4, 8}}, {"k", {-1, 8}}});
  ASSERT_FALSE(negative.ok());
  EXPECT_NE(negative.status().message().find("tensor 'k'"), std::string::npos) << negative.status().message();

  auto checkpoint = open_checkpoint(fixtures_dir() / "models/qwen2");
  ASSERT_TRUE(checkpoint.ok());
  auto wrong = (*checkpoint)->get_stacked({{"model.layers.0.self_attn.q_proj.weight", {128, 128}},
                                           {"model.layers.0.self_attn.k_proj.weight", {99, 128}}});
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("tensor 'model.layers.0.self_attn.k_proj.weight': shape"), std::string::npos)
      << wrong.status().message();
}

}  // namespace
}  // namespace radixlm
