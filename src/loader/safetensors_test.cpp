#include "loader/safetensors.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "loader/loader_test_util.h"

namespace radixlm {
namespace {

using testing_util::le64;
using testing_util::safetensors_image;
using testing_util::ScratchDir;
using testing_util::write_file;

// --- every fixture checkpoint, against an independent reading of the file ---

class FixtureSafetensors : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureSafetensors, MatchesIndependentReading) {
  const auto path = testing_util::fixtures_dir() / "models" / GetParam() / "model.safetensors";
  const std::string bytes = testing_util::read_file(path);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t header_size = 0;
  for (int i = 0; i < 8; ++i) header_size |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  const auto header = nlohmann::json::parse(bytes.substr(8, header_size));
  const size_t data_start = 8 + header_size;

  auto file = SafetensorsFile::open(path);
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  const auto& entries = (*file)->entries();
  ASSERT_EQ(entries.size(), header.size() - (header.contains("__metadata__") ? 1 : 0));
  for (size_t i = 1; i < entries.size(); ++i) EXPECT_LE(entries[i - 1].begin, entries[i].begin);

  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    const SafetensorsEntry* entry = (*file)->find(name);
    ASSERT_NE(entry, nullptr) << name;
    EXPECT_EQ(dtype_name(entry->dtype), info["dtype"].get<std::string>()) << name;
    ASSERT_EQ(entry->shape.ndim, static_cast<int>(info["shape"].size())) << name;
    for (int d = 0; d < entry->shape.ndim; ++d) EXPECT_EQ(entry->shape[d], info["shape"][d].get<int64_t>());
    EXPECT_EQ(entry->begin, info["data_offsets"][0].get<uint64_t>());
    EXPECT_EQ(entry->end, info["data_offsets"][1].get<uint64_t>());

    const Tensor tensor = (*file)->tensor(*entry, *file);
    ASSERT_EQ(tensor.view.nbytes(), entry->end - entry->begin);
    EXPECT_EQ(std::memcmp(tensor.view.data, bytes.data() + data_start + entry->begin, tensor.view.nbytes()), 0)
        << name;
    if (entry->dtype == DType::kBF16 && tensor.view.numel() > 0) {
      // The first value decoded by hand: bf16 is the top half of an f32.
      const auto lo = static_cast<uint8_t>(bytes[data_start + entry->begin]);
      const auto hi = static_cast<uint8_t>(bytes[data_start + entry->begin + 1]);
      const uint32_t f32_bits = (static_cast<uint32_t>(hi) << 24) | (static_cast<uint32_t>(lo) << 16);
      float expected;
      std::memcpy(&expected, &f32_bits, 4);
      EXPECT_EQ(bf16_to_f32(tensor.as<uint16_t>()[0]), expected) << name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, FixtureSafetensors,
                         ::testing::Values("llama", "llama31-rope-scaling", "mistral", "qwen2", "qwen3", "qwen3-moe",
                                           "mixtral", "deepseek-v2-lite", "deepseek-v3", "qwen2.5-tiny-chat",
                                           "llama3.2-tiny-chat"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

TEST(Safetensors, TensorKeepsTheMappingAlive) {
  const auto path = testing_util::fixtures_dir() / "models" / "qwen2" / "model.safetensors";
  Tensor norm;
  {
    auto file = SafetensorsFile::open(path);
    ASSERT_TRUE(file.ok()) << file.status().to_string();
    const SafetensorsEntry* entry = (*file)->find("model.norm.weight");
    ASSERT_NE(entry, nullptr);
    norm = (*file)->tensor(*entry, *file);
  }
  EXPECT_EQ(norm.shape(), (Shape{128}));
  volatile uint16_t first = norm.as<uint16_t>()[0];  // still mapped after the file object went away
  (void)first;
}

// --- hand-built files ---

// Opens `bytes` written as `name` in a scratch dir; returns the error message (empty on success).
std::string open_error(std::string_view bytes, const std::string& name = "model.safetensors") {
  ScratchDir dir;
  write_file(dir.path() / name, bytes);
  auto file = SafetensorsFile::open(dir.path() / name);
  return file.ok() ? std::string() : file.status().message();
}

void expect_error(std::string_view bytes, std::initializer_list<std::string_view> parts) {
  const std::string message = open_error(bytes, "bad.safetensors");
  ASSERT_FALSE(message.empty()) << "expected an error";
  EXPECT_NE(message.find("bad.safetensors"), std::string::npos) << message;
  for (std::string_view part : parts) EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' in: " << message;
}

TEST(Safetensors, ValidHandBuiltFile) {
  // Two F32 tensors and one empty one; data bytes written out by hand.
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
      R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"e":{"dtype":"BF16","shape":[0,3],"data_offsets":[8,8]}})";
  const std::string data("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8);  // 1.0f, -2.0f
  ScratchDir dir;
  write_file(dir.path() / "m.safetensors", safetensors_image(header, data));
  auto file = SafetensorsFile::open(dir.path() / "m.safetensors");
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  ASSERT_EQ((*file)->entries().size(), 3u);
  EXPECT_EQ((*file)->entries()[0].name, "a");  // sorted by offset
  EXPECT_EQ((*file)->tensor(*(*file)->find("a"), *file).as<float>()[0], 1.0f);
  EXPECT_EQ((*file)->tensor(*(*file)->find("b"), *file).as<float>()[0], -2.0f);
  EXPECT_EQ((*file)->find("e")->shape, (Shape{0, 3}));
  EXPECT_EQ((*file)->find("missing"), nullptr);
}

TEST(Safetensors, HeaderPaddedWithSpaces) {
  const std::string header = R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})" + std::string(5, ' ');
  EXPECT_EQ(open_error(safetensors_image(header, "xy")), "");
}

TEST(Safetensors, MisalignedTensorIsCopied) {
  // An odd-sized U8 tensor pushes the F32 after it off its 4-byte alignment.
  const std::string header =
      R"({"u":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"f":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}})";
  std::string padded = header;
  while ((8 + padded.size()) % 8 != 0) padded += ' ';
  ScratchDir dir;
  write_file(dir.path() / "m.safetensors", safetensors_image(padded, std::string("\x07\x00\x00\x80\x3f", 5)));
  auto file = SafetensorsFile::open(dir.path() / "m.safetensors");
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  const Tensor f = (*file)->tensor(*(*file)->find("f"), *file);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(f.view.data) % 4, 0u);
  EXPECT_EQ(f.as<float>()[0], 1.0f);
}

TEST(SafetensorsErrors, ZeroLengthFile) { expect_error("", {"empty file", "0 bytes"}); }

TEST(SafetensorsErrors, ShorterThanLengthPrefix) { expect_error(std::string("\x10\x00\x00", 3), {"3 bytes", "8-byte header length"}); }

TEST(SafetensorsErrors, HeaderLengthPastTheEnd) {
  expect_error(le64(1000) + R"({"a":1})", {"header length 1000", "past the end of the file (15 bytes)"});
}

TEST(SafetensorsErrors, HeaderLengthOverTheLimit) {
  expect_error(le64(uint64_t{1} << 62) + "{}", {"header length 4611686018427387904", "exceeds the limit"});
}

TEST(SafetensorsErrors, TruncatedData) {
  // The header promises 16 bytes of data; the file was cut after 6.
  const std::string header = R"({"model.norm.weight":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  expect_error(safetensors_image(header, "abcdef"),
               {"tensor 'model.norm.weight'", "data_offsets [0, 16] end past the data section (6 bytes)"});
}

TEST(SafetensorsErrors, InvalidJson) {
  expect_error(safetensors_image(R"({"a": {"dtype": "F32", )", ""), {"header is not valid JSON"});
}

TEST(SafetensorsErrors, HeaderNotAnObject) {
  expect_error(safetensors_image("[1, 2]", ""), {"header must be a JSON object", "array"});
}

TEST(SafetensorsErrors, OverlappingTensors) {
  const std::string header =
      R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  expect_error(safetensors_image(header, std::string(12, '\0')), {"tensor 'y'", "[4, 12]", "overlap tensor 'x'"});
}

TEST(SafetensorsErrors, TensorInsideAnother) {
  const std::string header =
      R"({"big":{"dtype":"U8","shape":[10],"data_offsets":[0,10]},"small":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}})";
  expect_error(safetensors_image(header, std::string(10, '\0')), {"tensor 'small'", "overlap tensor 'big'"});
}

TEST(SafetensorsErrors, DtypeShapeMismatch) {
  // BF16 [3] needs 6 bytes; the range holds 8.
  const std::string header = R"({"w":{"dtype":"BF16","shape":[3],"data_offsets":[0,8]}})";
  expect_error(safetensors_image(header, std::string(8, '\0')),
               {"tensor 'w'", "shape [3] of BF16 needs 6 bytes", "hold 8"});
}

TEST(SafetensorsErrors, UnknownDtype) {
  const std::string header = R"({"w":{"dtype":"F13","shape":[1],"data_offsets":[0,2]}})";
  expect_error(safetensors_image(header, "ab"), {"tensor 'w'", "unknown dtype 'F13'"});
}

TEST(SafetensorsErrors, OverflowingShape) {
  // 2^62 * 2^62 elements: a wrapping multiply would make this look small.
  const std::string header =
      R"({"w":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,0]}})";
  expect_error(safetensors_image(header, ""), {"tensor 'w'", "more elements than fit in 64 bits"});
}

TEST(SafetensorsErrors, ShapeTimesDtypeSizeOverflows) {
  // 2^62 elements fit, but 2^62 * 4 bytes does not.
  const std::string header = R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})";
  expect_error(safetensors_image(header, ""), {"tensor 'w'", "more than 2^64"});
}

TEST(SafetensorsErrors, ShapeBeyondInt64) {
  const std::string header = R"({"w":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,0]}})";
  expect_error(safetensors_image(header, ""), {"tensor 'w'", "shape[0] must be a non-negative integer"});
}

TEST(SafetensorsErrors, NegativeDim) {
  const std::string header = R"({"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}})";
  expect_error(safetensors_image(header, ""), {"tensor 'w'", "shape[0]", "-1"});
}

TEST(SafetensorsErrors, TooManyDims) {
  const std::string header = R"({"w":{"dtype":"U8","shape":[1,1,1,1,1,1,1],"data_offsets":[0,1]}})";
  expect_error(safetensors_image(header, "a"), {"tensor 'w'", "7 dimensions"});
}

TEST(SafetensorsErrors, DuplicateTensorNames) {
  const std::string header =
      R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})";
  expect_error(safetensors_image(header, "ab"), {"tensor 'w'", "appears twice"});
}

TEST(SafetensorsErrors, NonIntegerOffsets) {
  const std::string header = R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0.5,1]}})";
  expect_error(safetensors_image(header, "a"), {"tensor 'w'", "data_offsets must be non-negative integers", "0.5"});
  const std::string text_offsets = R"({"w":{"dtype":"U8","shape":[1],"data_offsets":["0","1"]}})";
  expect_error(safetensors_image(text_offsets, "a"), {"tensor 'w'", "string"});
}

TEST(SafetensorsErrors, OffsetsWrongArity) {
  const std::string header = R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0]}})";
  expect_error(safetensors_image(header, "a"), {"tensor 'w'", "[begin, end]", "1 elements"});
}

TEST(SafetensorsErrors, BeginAfterEnd) {
  const std::string header = R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[2,1]}})";
  expect_error(safetensors_image(header, "ab"), {"tensor 'w'", "begin after end"});
}

TEST(SafetensorsErrors, MissingFields) {
  expect_error(safetensors_image(R"({"w":{"shape":[1],"data_offsets":[0,1]}})", "a"), {"tensor 'w'", "no 'dtype'"});
  expect_error(safetensors_image(R"({"w":{"dtype":"U8","data_offsets":[0,1]}})", "a"), {"tensor 'w'", "no 'shape'"});
  expect_error(safetensors_image(R"({"w":{"dtype":"U8","shape":[1]}})", "a"), {"tensor 'w'", "no 'data_offsets'"});
  expect_error(safetensors_image(R"({"w":7})", ""), {"tensor 'w'", "must be an object"});
}

TEST(SafetensorsErrors, BadMetadata) {
  expect_error(safetensors_image(R"({"__metadata__":{"format":1}})", ""), {"__metadata__", "'format'", "string"});
}

TEST(SafetensorsErrors, MissingFile) {
  ScratchDir dir;
  auto file = SafetensorsFile::open(dir.path() / "nope.safetensors");
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), StatusCode::kNotFound);
  EXPECT_NE(file.status().message().find("nope.safetensors"), std::string::npos);
}

TEST(SafetensorsErrors, NotARegularFile) {
  ScratchDir dir;
  ASSERT_EQ(::mkfifo((dir.path() / "pipe.safetensors").c_str(), 0600), 0);
  auto fifo = SafetensorsFile::open(dir.path() / "pipe.safetensors");  // must not block waiting for a writer
  ASSERT_FALSE(fifo.ok());
  EXPECT_NE(fifo.status().message().find("pipe.safetensors: not a regular file"), std::string::npos);
  auto directory = SafetensorsFile::open(dir.path());
  ASSERT_FALSE(directory.ok());
  EXPECT_NE(directory.status().message().find("not a regular file"), std::string::npos);
}

TEST(SafetensorsImage, SameValidationInMemory) {
  const std::string image = safetensors_image(R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", "ab");
  auto layout = parse_safetensors_image(reinterpret_cast<const uint8_t*>(image.data()), image.size());
  ASSERT_TRUE(layout.ok()) << layout.status().to_string();
  EXPECT_EQ(layout->data_offset, image.size() - 2);
  ASSERT_EQ(layout->entries.size(), 1u);
  EXPECT_EQ(layout->entries[0].end, 2u);
  auto bad = parse_safetensors_image(reinterpret_cast<const uint8_t*>(image.data()), image.size() - 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("end past the data section (1 bytes)"), std::string::npos);
}

}  // namespace
}  // namespace radixlm
