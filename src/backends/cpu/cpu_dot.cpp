// The dot products under linear and attention. Each keeps 16 independent partial sums (element i goes to
// sum i % 16), so the compiler vectorizes without reassociating a running sum (no -ffast-math), and every
// instruction set computes the same sums in the same order: the AVX2 and baseline builds give bitwise equal
// results. With ISO C++ (-std=c++20) the compiler does not contract a*b+c into an FMA, which keeps that true.

#include <cstdint>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "backends/cpu/cpu_kernels.h"
#include "core/dtype.h"

namespace radixlm::cpu {
namespace {

template <typename Weight>
[[gnu::always_inline]] inline float widen(Weight w) {
  if constexpr (sizeof(Weight) == 2) {
    return bf16_to_f32(w);
  } else {
    return w;
  }
}

template <typename Weight>
[[gnu::always_inline]] inline float dot_body(const float* a, const Weight* b, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int k = 0; k < 16; ++k) acc[k] += a[i + k] * widen(b[i + k]);
  }
  for (int k = 0; k < 8; ++k) acc[k] += acc[k + 8];
  for (int k = 0; k < 4; ++k) acc[k] += acc[k + 4];
  float sum = (acc[0] + acc[2]) + (acc[1] + acc[3]);
  for (; i < n; ++i) sum += a[i] * widen(b[i]);
  return sum;
}

// Four rows of `b` (row stride `stride`) against one `a`: `a` is loaded once per block, and each row's
// arithmetic is exactly dot_body's, so the result is bitwise the same as four single dots.
template <typename Weight>
[[gnu::always_inline]] inline void dot4_body(const float* a, const Weight* b, int64_t stride, int64_t n, float* out) {
  float acc[4][16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int r = 0; r < 4; ++r) {
      for (int k = 0; k < 16; ++k) acc[r][k] += a[i + k] * widen(b[r * stride + i + k]);
    }
  }
  for (int r = 0; r < 4; ++r) {
    for (int k = 0; k < 8; ++k) acc[r][k] += acc[r][k + 8];
    for (int k = 0; k < 4; ++k) acc[r][k] += acc[r][k + 4];
    float sum = (acc[r][0] + acc[r][2]) + (acc[r][1] + acc[r][3]);
    for (int64_t j = i; j < n; ++j) sum += a[j] * widen(b[r * stride + j]);
    out[r] = sum;
  }
}

template <typename Weight>
[[gnu::always_inline]] inline void dot_rows_body(const float* a, const Weight* b, int64_t rows, int64_t n, float* out) {
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) dot4_body(a, b + r * n, n, n, out + r);
  for (; r < rows; ++r) out[r] = dot_body(a, b + r * n, n);
}

float dot_f32_baseline(const float* a, const float* b, int64_t n) { return dot_body(a, b, n); }
float dot_bf16_baseline(const float* a, const uint16_t* b, int64_t n) { return dot_body(a, b, n); }

void dot_rows_f32_baseline(const float* a, const float* b, int64_t rows, int64_t n, float* out) {
  dot_rows_body(a, b, rows, n, out);
}
void dot_rows_bf16_baseline(const float* a, const uint16_t* b, int64_t rows, int64_t n, float* out) {
  dot_rows_body(a, b, rows, n, out);
}

#if defined(__x86_64__)
#define RADIXLM_HAVE_AVX2_DOT 1
// The same sums by hand in AVX2: partial sums 0-7 live in one register and 8-15 in another, products and
// sums are separate instructions (no FMA), and the final reduction adds in dot_body's order.

[[gnu::target("avx2")]] inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
[[gnu::target("avx2")]] inline __m256 load8(const uint16_t* p) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

// (acc[k] + acc[k+8]), then (.. + acc[k+4]), then (s0 + s2) + (s1 + s3): dot_body's reduction.
[[gnu::target("avx2")]] inline float reduce16(__m256 low, __m256 high) {
  const __m256 eight = _mm256_add_ps(low, high);
  const __m128 four = _mm_add_ps(_mm256_castps256_ps128(eight), _mm256_extractf128_ps(eight, 1));
  const __m128 two = _mm_add_ps(four, _mm_movehl_ps(four, four));
  return _mm_cvtss_f32(_mm_add_ss(two, _mm_shuffle_ps(two, two, 1)));
}

template <typename Weight>
[[gnu::target("avx2")]] float dot_avx2(const float* a, const Weight* b, int64_t n) {
  __m256 low = _mm256_setzero_ps(), high = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    low = _mm256_add_ps(low, _mm256_mul_ps(load8(a + i), load8(b + i)));
    high = _mm256_add_ps(high, _mm256_mul_ps(load8(a + i + 8), load8(b + i + 8)));
  }
  float sum = reduce16(low, high);
  for (; i < n; ++i) sum += a[i] * widen(b[i]);
  return sum;
}

template <typename Weight>
[[gnu::target("avx2")]] void dot_rows_avx2(const float* a, const Weight* b, int64_t rows, int64_t n, float* out) {
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const Weight* b0 = b + r * n;
    const Weight* b1 = b0 + n;
    const Weight* b2 = b1 + n;
    const Weight* b3 = b2 + n;
    __m256 low0 = _mm256_setzero_ps(), high0 = _mm256_setzero_ps(), low1 = low0, high1 = low0, low2 = low0,
           high2 = low0, low3 = low0, high3 = low0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      const __m256 a_low = load8(a + i), a_high = load8(a + i + 8);
      low0 = _mm256_add_ps(low0, _mm256_mul_ps(a_low, load8(b0 + i)));
      high0 = _mm256_add_ps(high0, _mm256_mul_ps(a_high, load8(b0 + i + 8)));
      low1 = _mm256_add_ps(low1, _mm256_mul_ps(a_low, load8(b1 + i)));
      high1 = _mm256_add_ps(high1, _mm256_mul_ps(a_high, load8(b1 + i + 8)));
      low2 = _mm256_add_ps(low2, _mm256_mul_ps(a_low, load8(b2 + i)));
      high2 = _mm256_add_ps(high2, _mm256_mul_ps(a_high, load8(b2 + i + 8)));
      low3 = _mm256_add_ps(low3, _mm256_mul_ps(a_low, load8(b3 + i)));
      high3 = _mm256_add_ps(high3, _mm256_mul_ps(a_high, load8(b3 + i + 8)));
    }
    float sums[4] = {reduce16(low0, high0), reduce16(low1, high1), reduce16(low2, high2), reduce16(low3, high3)};
    const Weight* row_ptrs[4] = {b0, b1, b2, b3};
    for (int k = 0; k < 4; ++k) {
      for (int64_t j = i; j < n; ++j) sums[k] += a[j] * widen(row_ptrs[k][j]);
      out[r + k] = sums[k];
    }
  }
  for (; r < rows; ++r) out[r] = dot_avx2(a, b + r * n, n);
}

float dot_f32_avx2(const float* a, const float* b, int64_t n) { return dot_avx2(a, b, n); }
float dot_bf16_avx2(const float* a, const uint16_t* b, int64_t n) { return dot_avx2(a, b, n); }
void dot_rows_f32_avx2(const float* a, const float* b, int64_t rows, int64_t n, float* out) {
  dot_rows_avx2(a, b, rows, n, out);
}
void dot_rows_bf16_avx2(const float* a, const uint16_t* b, int64_t rows, int64_t n, float* out) {
  dot_rows_avx2(a, b, rows, n, out);
}
#endif

using DotF32 = float (*)(const float*, const float*, int64_t);
using DotBf16 = float (*)(const float*, const uint16_t*, int64_t);
using DotRowsF32 = void (*)(const float*, const float*, int64_t, int64_t, float*);
using DotRowsBf16 = void (*)(const float*, const uint16_t*, int64_t, int64_t, float*);

bool use_avx2() {
#if defined(RADIXLM_HAVE_AVX2_DOT)
  // Called from static initialisers, which may run before libgcc has probed the CPU: probe explicitly.
  static const bool supported = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return supported;
#else
  return false;
#endif
}

const DotF32 kDotF32 =
#if defined(RADIXLM_HAVE_AVX2_DOT)
    use_avx2() ? dot_f32_avx2 :
#endif
               dot_f32_baseline;
const DotBf16 kDotBf16 =
#if defined(RADIXLM_HAVE_AVX2_DOT)
    use_avx2() ? dot_bf16_avx2 :
#endif
               dot_bf16_baseline;

const DotRowsF32 kDotRowsF32 =
#if defined(RADIXLM_HAVE_AVX2_DOT)
    use_avx2() ? dot_rows_f32_avx2 :
#endif
               dot_rows_f32_baseline;
const DotRowsBf16 kDotRowsBf16 =
#if defined(RADIXLM_HAVE_AVX2_DOT)
    use_avx2() ? dot_rows_bf16_avx2 :
#endif
               dot_rows_bf16_baseline;

}  // namespace

void dot_rows_f32(const float* a, const float* b, int64_t rows, int64_t n, float* out) {
  kDotRowsF32(a, b, rows, n, out);
}
void dot_rows_bf16(const float* a, const uint16_t* b, int64_t rows, int64_t n, float* out) {
  kDotRowsBf16(a, b, rows, n, out);
}

float dot_f32(const float* a, const float* b, int64_t n) { return kDotF32(a, b, n); }
float dot_bf16_portable(const float* a, const uint16_t* b, int64_t n) { return dot_bf16_baseline(a, b, n); }
void dot_rows_bf16_portable(const float* a, const uint16_t* b, int64_t rows, int64_t n, float* out) {
  dot_rows_bf16_baseline(a, b, rows, n, out);
}
float dot_bf16(const float* a, const uint16_t* b, int64_t n) { return kDotBf16(a, b, n); }

}  // namespace radixlm::cpu
