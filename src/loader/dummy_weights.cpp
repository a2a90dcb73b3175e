// --load-format dummy: weights drawn from a seed and the tensor's name alone, so any shape from config.json
// runs without weight files and every run (any thread count, any load order) sees the same values.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <thread>

#include "core/checked_math.h"
#include "core/dtype.h"
#include "loader/host_buffer.h"
#include "loader/weight_source.h"

namespace radixlm {

namespace {

// Elements per independently seeded chunk: the unit of parallel work. Part of the output's definition (a
// chunk's values depend on its index), so changing it changes every dummy model.
constexpr int64_t kChunkElements = int64_t{1} << 16;
// Uniform on [-a, a) has standard deviation a / sqrt(3); 0.02 is the initializer_range HF configs use.
constexpr float kStd = 0.02f;

uint64_t splitmix64_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t hash_name(std::string_view name) {  // FNV-1a, 64-bit
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : name) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

enum class Fill { kOnes, kZeros, kRandom };

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

Fill fill_for(std::string_view name) {
  // Covers input_layernorm.weight, q_norm.weight, kv_a_layernorm.weight, model.norm.weight.
  if (ends_with(name, "norm.weight")) return Fill::kOnes;
  if (ends_with(name, "bias")) return Fill::kZeros;
  return Fill::kRandom;
}

// Fills elements [begin, end) of chunk `chunk` with uniform values of std kStd, converted to `dtype`.
void fill_chunk(uint64_t chunk_seed, DType dtype, void* out, int64_t begin, int64_t end) {
  constexpr int64_t kBlock = 1024;
  float values[kBlock];
  const float half_width = kStd * std::sqrt(3.0f);
  uint64_t state = chunk_seed;
  const size_t element_size = dtype_size(dtype);
  for (int64_t block = begin; block < end; block += kBlock) {
    const int64_t n = std::min(kBlock, end - block);
    for (int64_t i = 0; i < n; ++i) {
      state += 0x9e3779b97f4a7c15ull;
      const uint64_t bits = splitmix64_mix(state);
      const float unit = static_cast<float>(bits >> 40) * 0x1p-24f;  // [0, 1)
      values[i] = (2.0f * unit - 1.0f) * half_width;
    }
    convert_from_f32(values, dtype, static_cast<char*>(out) + block * static_cast<int64_t>(element_size),
                     static_cast<size_t>(n));
  }
}

class DummyWeights final : public WeightSource {
 public:
  DummyWeights(DType dtype, uint64_t seed) : dtype_(dtype), seed_(seed) {}

  // It can make any tensor, so it holds every name.
  bool contains(const std::string&) const override { return true; }

  Expected<Tensor> get(const std::string& name, const Shape& shape) override {
    RADIXLM_RETURN_IF_ERROR(check_request(name, shape));
    if (fill_for(name) == Fill::kZeros) return alloc_host_tensor(dtype_, shape);
    // Random and ones overwrite every byte, so skip the zero-fill pass alloc_host_tensor would make: on a
    // 16 GB model that pass costs as much as the generation. The fill threads fault the pages in.
    Tensor tensor = alloc_host_uninitialized(dtype_, shape);
    make_into(name, tensor.view.data, shape.numel());
    return tensor;
  }

  // Each part generated straight into its rows of the stacked tensor, with the values get() gives it.
  Expected<Tensor> get_stacked(const std::vector<StackedPart>& parts) override {
    RADIXLM_ASSIGN_OR_RETURN(Shape shape, stacked_shape(parts));
    for (const StackedPart& part : parts) RADIXLM_RETURN_IF_ERROR(check_request(part.name, part.shape));
    RADIXLM_RETURN_IF_ERROR(check_request(parts.front().name + " (stacked)", shape));
    Tensor tensor = alloc_host_uninitialized(dtype_, shape);
    auto* dst = static_cast<uint8_t*>(tensor.view.data);
    for (const StackedPart& part : parts) {
      const int64_t count = part.shape.numel();
      make_into(part.name, dst, count);
      dst += static_cast<size_t>(count) * dtype_size(dtype_);
    }
    return tensor;
  }

  std::vector<std::string> names() const override { return {}; }

 private:
  Status check_request(const std::string& name, const Shape& shape) const {
    if (!dtype_is_float(dtype_) || dtype_ == DType::kF64) {
      return make_error(StatusCode::kUnsupported, "dummy weights: dtype {} is not bf16, f16, f32 or fp8",
                        dtype_name(dtype_));
    }
    uint64_t numel = 1;
    for (int i = 0; i < shape.ndim; ++i) {
      std::optional<uint64_t> product = shape[i] < 0 ? std::nullopt : checked_mul(numel, static_cast<uint64_t>(shape[i]));
      if (!product || *product > (uint64_t{1} << 48)) {
        return make_error(StatusCode::kInvalidArgument, "dummy weights: tensor '{}' has an impossible shape {}", name,
                          shape.to_string());
      }
      numel = *product;
    }
    return {};
  }

  // Writes every one of the `count` values of tensor `name` to `out`.
  void make_into(const std::string& name, void* out, int64_t count) const {
    switch (fill_for(name)) {
      case Fill::kZeros:
        std::memset(out, 0, static_cast<size_t>(count) * dtype_size(dtype_));
        break;
      case Fill::kOnes:
        fill_ones(out, count);
        break;
      case Fill::kRandom:
        fill_random(name, out, count);
        break;
    }
  }

  void fill_ones(void* out, int64_t count) const {
    const float one = 1.0f;
    uint8_t pattern[8];
    convert_from_f32(&one, dtype_, pattern, 1);
    const size_t element_size = dtype_size(dtype_);
    auto* bytes = static_cast<uint8_t*>(out);
    for (int64_t i = 0; i < count; ++i) std::memcpy(bytes + i * static_cast<int64_t>(element_size), pattern, element_size);
  }

  void fill_random(const std::string& name, void* out, int64_t count) const {
    const uint64_t name_seed = splitmix64_mix(hash_name(name) ^ splitmix64_mix(seed_));
    const int64_t chunks = (count + kChunkElements - 1) / kChunkElements;
    auto run_chunk = [&](int64_t chunk) {
      const int64_t begin = chunk * kChunkElements;
      const int64_t end = std::min(count, begin + kChunkElements);
      fill_chunk(splitmix64_mix(name_seed + static_cast<uint64_t>(chunk)), dtype_, out, begin, end);
    };
    const int64_t threads =
        std::min<int64_t>(chunks, std::max(1u, std::min(std::thread::hardware_concurrency(), 64u)));
    if (threads <= 1) {
      for (int64_t chunk = 0; chunk < chunks; ++chunk) run_chunk(chunk);
      return;
    }
    std::atomic<int64_t> next{0};
    auto worker = [&] {
      for (int64_t chunk = next++; chunk < chunks; chunk = next++) run_chunk(chunk);
    };
    std::vector<std::thread> pool;
    pool.reserve(static_cast<size_t>(threads - 1));
    for (int64_t t = 1; t < threads; ++t) pool.emplace_back(worker);
    worker();
    for (auto& thread : pool) thread.join();
  }

  DType dtype_;
  uint64_t seed_;
};

}  // namespace

std::unique_ptr<WeightSource> make_dummy_weights(DType dtype, uint64_t seed) {
  return std::make_unique<DummyWeights>(dtype, seed);
}

}  // namespace radixlm
