// The dot products under linear and attention. Each keeps 16 independent partial sums (element i goes to
// sum i % 16), so the compiler vectorizes without reassociating a running sum (no -ffast-math), and every
// instruction set computes the same sums in the same order: the AVX2 and baseline builds give bitwise equal
// results. With ISO C++ (-std=c++20) the compiler does not contract a*b+c into an FMA, which keeps that true.

#include <cstdint>

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
[[gnu::target("avx2")]] void dot_rows_f32_avx2(const float* a, const float* b, int64_t rows, int64_t n, float* out) {
  dot_rows_body(a, b, rows, n, out);
}
[[gnu::target("avx2")]] void dot_rows_bf16_avx2(const float* a, const uint16_t* b, int64_t rows, int64_t n,
                                                float* out) {
  dot_rows_body(a, b, rows, n, out);
}
[[gnu::target("avx2")]] float dot_f32_avx2(const float* a, const float* b, int64_t n) { return dot_body(a, b, n); }
[[gnu::target("avx2")]] float dot_bf16_avx2(const float* a, const uint16_t* b, int64_t n) {
  return dot_body(a, b, n);
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
float dot_bf16(const float* a, const uint16_t* b, int64_t n) { return kDotBf16(a, b, n); }

}  // namespace radixlm::cpu
