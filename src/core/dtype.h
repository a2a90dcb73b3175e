#pragma once
// Element types and exact conversions between them. Conversions round to nearest, ties to even, and keep
// NaN and Inf (fp8 e4m3fn has no Inf: Inf and out-of-range values become NaN, as PyTorch's cast does).

#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace radixlm {

enum class DType : uint8_t {
  kF32, kF16, kBF16, kF8E4M3, kF8E5M2, kF64,
  kI64, kI32, kI16, kI8, kU64, kU32, kU16, kU8, kBool,
};

size_t dtype_size(DType dtype);
std::string_view dtype_name(DType dtype);  // safetensors spelling: "F32", "BF16", "F8_E4M3", ...
std::optional<DType> dtype_from_name(std::string_view name);
bool dtype_is_float(DType dtype);

// --- bfloat16 ---
inline float bf16_to_f32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits = std::bit_cast<uint32_t>(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);  // quiet NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

// --- IEEE half ---
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// --- fp8 (OCP formats as in PyTorch: float8_e4m3fn and float8_e5m2) ---
float f8e4m3_to_f32(uint8_t v);
uint8_t f32_to_f8e4m3(float f);
float f8e5m2_to_f32(uint8_t v);
uint8_t f32_to_f8e5m2(float f);

// Converts `count` elements of a float type (f32/f16/bf16/fp8) to f32.
void convert_to_f32(DType src_dtype, const void* src, float* dst, size_t count);
// Converts `count` f32 values to a float type (f32/f16/bf16/fp8).
void convert_from_f32(const float* src, DType dst_dtype, void* dst, size_t count);

}  // namespace radixlm
