#include "core/dtype.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "core/status.h"

namespace radixlm {
namespace {

struct DTypeInfo {
  DType dtype;
  std::string_view name;
  size_t size;
  bool is_float;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::kF32, "F32", 4, true},       {DType::kF16, "F16", 2, true},
    {DType::kBF16, "BF16", 2, true},     {DType::kF8E4M3, "F8_E4M3", 1, true},
    {DType::kF8E5M2, "F8_E5M2", 1, true}, {DType::kF64, "F64", 8, true},
    {DType::kI64, "I64", 8, false},      {DType::kI32, "I32", 4, false},
    {DType::kI16, "I16", 2, false},      {DType::kI8, "I8", 1, false},
    {DType::kU64, "U64", 8, false},      {DType::kU32, "U32", 4, false},
    {DType::kU16, "U16", 2, false},      {DType::kU8, "U8", 1, false},
    {DType::kBool, "BOOL", 1, false},
};

const DTypeInfo& info(DType dtype) {
  for (const auto& entry : kDTypes) {
    if (entry.dtype == dtype) return entry;
  }
  RADIXLM_CHECK(false, "unknown dtype {}", static_cast<int>(dtype));
  return kDTypes[0];
}

float from_bits(uint32_t bits) { return std::bit_cast<float>(bits); }
uint32_t to_bits(float f) { return std::bit_cast<uint32_t>(f); }

}  // namespace

size_t dtype_size(DType dtype) { return info(dtype).size; }
std::string_view dtype_name(DType dtype) { return info(dtype).name; }
bool dtype_is_float(DType dtype) { return info(dtype).is_float; }

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& entry : kDTypes) {
    if (entry.name == name) return entry.dtype;
  }
  return std::nullopt;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) return from_bits(sign | 0x7f800000u | (mantissa << 13));  // Inf / NaN
  if (exponent == 0) {
    if (mantissa == 0) return from_bits(sign);
    // Subnormal: mantissa * 2^-24, exact in f32.
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return sign ? -magnitude : magnitude;
  }
  return from_bits(sign | ((exponent + 127 - 15) << 23) | (mantissa << 13));
}

uint16_t f32_to_f16(float f) {
  uint32_t x = to_bits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u) {  // Inf or NaN (NaN stays NaN: keep a payload bit set)
    return sign | 0x7c00u | (x > 0x7f800000u ? (0x200u | ((x >> 13) & 0x3ffu)) : 0u);
  }
  if (x >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520: overflow to Inf
  if (x < 0x38800000u) {
    // Below the smallest normal half (2^-14): adding 0.5 puts the value where the f32 ulp is 2^-24, the
    // half subnormal step, so the FPU does the round-to-nearest-even for us.
    const uint32_t rounded = to_bits(from_bits(x) + 0.5f);
    return sign | static_cast<uint16_t>(rounded - 0x3f000000u);
  }
  const uint32_t mantissa_odd = (x >> 13) & 1u;
  x += (static_cast<uint32_t>(15 - 127) << 23) + 0xfffu + mantissa_odd;
  return sign | static_cast<uint16_t>(x >> 13);
}

float f8e4m3_to_f32(uint8_t v) {
  const bool negative = v & 0x80u;
  const uint32_t exponent = (v >> 3) & 0xfu;
  const uint32_t mantissa = v & 0x7u;
  float magnitude;
  if (exponent == 0xf && mantissa == 0x7) {
    magnitude = std::numeric_limits<float>::quiet_NaN();
  } else if (exponent == 0) {
    magnitude = static_cast<float>(mantissa) * 0x1p-9f;
  } else {
    magnitude = from_bits(((exponent + 127 - 7) << 23) | (mantissa << 20));
  }
  return negative ? -magnitude : magnitude;
}

uint8_t f32_to_f8e4m3(float f) {
  uint32_t x = to_bits(f);
  const uint8_t sign = static_cast<uint8_t>((x >> 24) & 0x80u);
  x &= 0x7fffffffu;
  uint8_t result;
  if (x >= (1087u << 20)) {  // >= 480 (rounds past 448), Inf or NaN: e4m3fn has only NaN there
    result = 0x7f;
  } else if (x < (121u << 23)) {  // below 2^-6: subnormal, step 2^-9 (same trick as f16)
    const uint32_t rounded = to_bits(from_bits(x) + from_bits(141u << 23));
    result = static_cast<uint8_t>(rounded - (141u << 23));
  } else {
    const uint32_t mantissa_odd = (x >> 20) & 1u;
    x += (static_cast<uint32_t>(7 - 127) << 23) + 0x7ffffu + mantissa_odd;
    result = static_cast<uint8_t>(x >> 20);
  }
  return result | sign;
}

float f8e5m2_to_f32(uint8_t v) { return f16_to_f32(static_cast<uint16_t>(v) << 8); }

uint8_t f32_to_f8e5m2(float f) {
  uint32_t x = to_bits(f);
  const uint8_t sign = static_cast<uint8_t>((x >> 24) & 0x80u);
  x &= 0x7fffffffu;
  uint8_t result;
  if (x >= (143u << 23)) {  // >= 65536, Inf or NaN
    result = x > 0x7f800000u ? 0x7f : 0x7c;
  } else if (x < (113u << 23)) {  // below 2^-14: subnormal, step 2^-16
    const uint32_t rounded = to_bits(from_bits(x) + from_bits(134u << 23));
    result = static_cast<uint8_t>(rounded - (134u << 23));
  } else {
    const uint32_t mantissa_odd = (x >> 21) & 1u;
    x += (static_cast<uint32_t>(15 - 127) << 23) + 0xfffffu + mantissa_odd;
    result = static_cast<uint8_t>(x >> 21);
  }
  return result | sign;
}

void convert_to_f32(DType src_dtype, const void* src, float* dst, size_t count) {
  switch (src_dtype) {
    case DType::kF32:
      std::memcpy(dst, src, count * sizeof(float));
      return;
    case DType::kBF16: {
      const auto* in = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < count; ++i) dst[i] = bf16_to_f32(in[i]);
      return;
    }
    case DType::kF16: {
      const auto* in = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < count; ++i) dst[i] = f16_to_f32(in[i]);
      return;
    }
    case DType::kF8E4M3: {
      const auto* in = static_cast<const uint8_t*>(src);
      for (size_t i = 0; i < count; ++i) dst[i] = f8e4m3_to_f32(in[i]);
      return;
    }
    case DType::kF8E5M2: {
      const auto* in = static_cast<const uint8_t*>(src);
      for (size_t i = 0; i < count; ++i) dst[i] = f8e5m2_to_f32(in[i]);
      return;
    }
    default:
      RADIXLM_CHECK(false, "convert_to_f32: {} is not a float type", dtype_name(src_dtype));
  }
}

void convert_from_f32(const float* src, DType dst_dtype, void* dst, size_t count) {
  switch (dst_dtype) {
    case DType::kF32:
      std::memcpy(dst, src, count * sizeof(float));
      return;
    case DType::kBF16: {
      auto* out = static_cast<uint16_t*>(dst);
      for (size_t i = 0; i < count; ++i) out[i] = f32_to_bf16(src[i]);
      return;
    }
    case DType::kF16: {
      auto* out = static_cast<uint16_t*>(dst);
      for (size_t i = 0; i < count; ++i) out[i] = f32_to_f16(src[i]);
      return;
    }
    case DType::kF8E4M3: {
      auto* out = static_cast<uint8_t*>(dst);
      for (size_t i = 0; i < count; ++i) out[i] = f32_to_f8e4m3(src[i]);
      return;
    }
    case DType::kF8E5M2: {
      auto* out = static_cast<uint8_t*>(dst);
      for (size_t i = 0; i < count; ++i) out[i] = f32_to_f8e5m2(src[i]);
      return;
    }
    default:
      RADIXLM_CHECK(false, "convert_from_f32: {} is not a float type", dtype_name(dst_dtype));
  }
}

}  // namespace radixlm
