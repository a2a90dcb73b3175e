// Conversions are checked against references that share no code with dtype.cpp: every code of the 8- and
// 16-bit formats decoded by ldexp from the format's definition, and nearest-value search over those codes
// (ties to the even code) for encoding.

#include "core/dtype.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace radixlm {
namespace {

// Decodes a small float format from its definition: sign, `e` exponent bits, `m` mantissa bits.
double decode_reference(uint32_t code, int e_bits, int m_bits, bool e4m3fn) {
  const bool negative = (code >> (e_bits + m_bits)) & 1;
  const int exponent = static_cast<int>((code >> m_bits) & ((1u << e_bits) - 1));
  const int mantissa = static_cast<int>(code & ((1u << m_bits) - 1));
  const int bias = (1 << (e_bits - 1)) - 1;
  const int max_exponent = (1 << e_bits) - 1;
  double value;
  if (e4m3fn && exponent == max_exponent && mantissa == (1 << m_bits) - 1) {
    return std::numeric_limits<double>::quiet_NaN();
  } else if (!e4m3fn && exponent == max_exponent) {
    value = mantissa == 0 ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
  } else if (exponent == 0) {
    value = std::ldexp(mantissa, 1 - bias - m_bits);
  } else {
    value = std::ldexp((1 << m_bits) + mantissa, exponent - bias - m_bits);
  }
  return negative ? -value : value;
}

// Nearest finite code to x among all codes (ties to the even code), as IEEE round-to-nearest-even does.
uint32_t nearest_code(double x, int e_bits, int m_bits, bool e4m3fn) {
  const uint32_t count = 1u << (1 + e_bits + m_bits);
  uint32_t best = 0;
  double best_distance = std::numeric_limits<double>::infinity();
  for (uint32_t code = 0; code < count; ++code) {
    const double v = decode_reference(code, e_bits, m_bits, e4m3fn);
    if (!std::isfinite(v)) continue;
    if (std::signbit(v) != std::signbit(x)) continue;
    const double distance = std::fabs(v - x);
    if (distance < best_distance || (distance == best_distance && (code & 1) == 0)) {
      best = code;
      best_distance = distance;
    }
  }
  return best;
}

TEST(DType, NamesRoundTrip) {
  for (auto dtype : {DType::kF32, DType::kF16, DType::kBF16, DType::kF8E4M3, DType::kF8E5M2, DType::kI64,
                     DType::kBool}) {
    EXPECT_EQ(dtype_from_name(dtype_name(dtype)), dtype);
  }
  EXPECT_EQ(dtype_size(DType::kBF16), 2u);
  EXPECT_EQ(dtype_size(DType::kF8E4M3), 1u);
  EXPECT_FALSE(dtype_from_name("F12").has_value());
}

TEST(DType, F16DecodeEveryCode) {
  for (uint32_t code = 0; code < 65536; ++code) {
    const double expected = decode_reference(code, 5, 10, false);
    const float actual = f16_to_f32(static_cast<uint16_t>(code));
    if (std::isnan(expected)) {
      EXPECT_TRUE(std::isnan(actual)) << code;
    } else {
      EXPECT_EQ(actual, expected) << code;
    }
  }
}

TEST(DType, F16EncodeIsNearestEven) {
  // Positive finite halves in increasing order: code i decodes to table[i] for i <= 0x7bff.
  std::vector<double> table;
  for (uint32_t code = 0; code <= 0x7bff; ++code) table.push_back(decode_reference(code, 5, 10, false));
  auto reference = [&](float v) -> uint16_t {
    const uint16_t sign = std::signbit(v) ? 0x8000 : 0;
    const double x = std::fabs(static_cast<double>(v));
    if (x >= 65520.0) return sign | 0x7c00;  // at or past the midpoint above 65504: Inf
    const auto it = std::lower_bound(table.begin(), table.end(), x);
    uint32_t hi = static_cast<uint32_t>(it - table.begin());
    if (hi == 0) return sign;
    if (hi == table.size()) return sign | 0x7bff;  // between 65504 and the overflow midpoint
    const uint32_t lo = hi - 1;
    const double d_lo = x - table[lo], d_hi = table[hi] - x;
    const uint32_t code = d_lo < d_hi ? lo : d_hi < d_lo ? hi : (lo % 2 == 0 ? lo : hi);
    return static_cast<uint16_t>(sign | code);
  };
  std::mt19937 rng(1);
  std::vector<float> values = {0.0f, -0.0f, 65504.0f, 65519.99f, 65520.0f, 1e-8f, 2.98e-8f, 5.96e-8f,
                               6.1e-5f, std::numeric_limits<float>::infinity(),
                               -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::denorm_min()};
  for (int i = 0; i < 200000; ++i) values.push_back(std::bit_cast<float>(static_cast<uint32_t>(rng())));
  // Values exactly halfway between two halves exercise ties-to-even (exact in f32).
  for (uint32_t code = 0; code < 0x7bff; code += 7) {
    values.push_back(static_cast<float>((table[code] + table[code + 1]) / 2));
  }
  for (float v : values) {
    const uint16_t actual = f32_to_f16(v);
    if (std::isnan(v)) {
      EXPECT_TRUE(std::isnan(f16_to_f32(actual))) << v;
    } else {
      EXPECT_EQ(actual, reference(v)) << "value " << v;
    }
  }
}

TEST(DType, BF16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  // 1 + 2^-8 is exactly halfway between 1 and 1 + 2^-7: ties to the even mantissa (1.0).
  EXPECT_EQ(f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
  // 1 + 3*2^-8 is halfway between 1+2^-7 (odd) and 1+2^-6 (even): rounds up.
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(f32_to_bf16(-std::numeric_limits<float>::infinity()), 0xff80);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  // A NaN whose payload sits only in the low 16 bits must not become Inf.
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::bit_cast<float>(0x7f800001u)))));
  EXPECT_EQ(f32_to_bf16(3.4e38f), 0x7f80);  // rounds past the largest finite bf16: Inf
  std::mt19937 rng(2);
  for (int i = 0; i < 100000; ++i) {
    const float v = std::bit_cast<float>(static_cast<uint32_t>(rng()));
    if (!std::isfinite(v)) continue;
    const uint32_t truncated = std::bit_cast<uint32_t>(v) & 0xffff0000u;
    const double lo = std::bit_cast<float>(truncated);
    const double hi = std::bit_cast<float>(truncated + 0x10000u);  // next bf16 away from zero
    const double d_lo = std::fabs(v - lo), d_hi = std::fabs(hi - v);
    uint16_t expected = static_cast<uint16_t>(truncated >> 16);
    if (d_hi < d_lo || (d_hi == d_lo && (expected & 1))) ++expected;
    EXPECT_EQ(f32_to_bf16(v), expected) << v;
    EXPECT_EQ(f32_to_bf16(bf16_to_f32(expected)), expected);
  }
}

struct Fp8Case {
  int e_bits, m_bits;
  bool e4m3fn;
  float (*decode)(uint8_t);
  uint8_t (*encode)(float);
};

class Fp8Test : public ::testing::TestWithParam<Fp8Case> {};

TEST_P(Fp8Test, DecodeEveryCode) {
  const auto& c = GetParam();
  for (uint32_t code = 0; code < 256; ++code) {
    const double expected = decode_reference(code, c.e_bits, c.m_bits, c.e4m3fn);
    const float actual = c.decode(static_cast<uint8_t>(code));
    if (std::isnan(expected)) {
      EXPECT_TRUE(std::isnan(actual)) << code;
    } else {
      EXPECT_EQ(actual, expected) << code;
      EXPECT_EQ(c.encode(actual), code) << "round trip of code " << code;
    }
  }
}

TEST_P(Fp8Test, EncodeIsNearestEven) {
  const auto& c = GetParam();
  const double max_finite = c.e4m3fn ? 448.0 : 57344.0;
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> log_magnitude(-22, 17);
  for (int i = 0; i < 20000; ++i) {
    double x = std::exp2(log_magnitude(rng)) * ((rng() & 1) ? -1 : 1);
    if (i % 10 == 0) {  // exact midpoints between neighbouring codes
      const uint32_t last_finite = c.e4m3fn ? 0x7e : 0x7b;
      const uint32_t code = rng() % last_finite;
      x = (decode_reference(code, c.e_bits, c.m_bits, c.e4m3fn) +
           decode_reference(code + 1, c.e_bits, c.m_bits, c.e4m3fn)) / 2;
    }
    const float v = static_cast<float>(x);
    const uint8_t actual = c.encode(v);
    // Past the largest finite value plus half a step: e4m3fn gives NaN, e5m2 gives Inf.
    const double step_above_max = c.e4m3fn ? 32.0 : 8192.0;
    if (std::fabs(v) >= max_finite + step_above_max / 2) {
      const float decoded = c.decode(actual);
      EXPECT_TRUE(c.e4m3fn ? std::isnan(decoded) : std::isinf(decoded)) << v;
      continue;
    }
    EXPECT_EQ(actual, nearest_code(v, c.e_bits, c.m_bits, c.e4m3fn)) << "value " << v;
  }
  EXPECT_TRUE(std::isnan(c.decode(c.encode(std::numeric_limits<float>::quiet_NaN()))));
  const float inf = c.decode(c.encode(std::numeric_limits<float>::infinity()));
  EXPECT_TRUE(c.e4m3fn ? std::isnan(inf) : (std::isinf(inf) && inf > 0));
}

INSTANTIATE_TEST_SUITE_P(Formats, Fp8Test,
                         ::testing::Values(Fp8Case{4, 3, true, f8e4m3_to_f32, f32_to_f8e4m3},
                                           Fp8Case{5, 2, false, f8e5m2_to_f32, f32_to_f8e5m2}),
                         [](const auto& info) { return info.param.e4m3fn ? "E4M3" : "E5M2"; });

TEST(DType, BulkConversionMatchesScalar) {
  std::vector<float> in = {0.1f, -2.5f, 100.0f, -0.04f};
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16, DType::kF8E4M3, DType::kF8E5M2}) {
    std::vector<uint8_t> packed(in.size() * dtype_size(dtype));
    std::vector<float> out(in.size());
    convert_from_f32(in.data(), dtype, packed.data(), in.size());
    convert_to_f32(dtype, packed.data(), out.data(), in.size());
    for (size_t i = 0; i < in.size(); ++i) {
      // Half a step of each format's mantissa, relative.
      const double tolerance = dtype == DType::kF32 ? 0 : dtype == DType::kF8E5M2 ? 0.125 : 0.0625;
      EXPECT_NEAR(out[i], in[i], std::fabs(in[i]) * tolerance) << dtype_name(dtype);
    }
  }
}

}  // namespace
}  // namespace radixlm
