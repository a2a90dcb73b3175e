// out = x @ weight^T (+ bias), or out += the same, with weights in their stored dtype. Work is split over
// tiles of weight rows so each thread streams a disjoint part of the weight once: for a prefill the tile is
// converted to f32 once and reused by every token; for decode (few tokens) bf16 and f32 rows are read
// directly.

#include <algorithm>
#include <vector>

#include "backends/cpu/cpu_kernels.h"
#include "core/status.h"

namespace radixlm::cpu {
namespace {

constexpr int64_t kRowsPerTile = 16;
// With fewer tokens than this, converting a tile costs more than it saves.
constexpr int64_t kStreamMaxTokens = 4;
// Rough multiply-adds a thread should get before it is worth waking.
constexpr int64_t kMinWorkPerPart = 1 << 16;

}  // namespace

void linear(ThreadPool& pool, const TensorView& x, const TensorView& weight, const TensorView& bias,
            const TensorView& out, bool accumulate) {
  RADIXLM_CHECK(x.ndim() == 2 && weight.ndim() == 2 && out.ndim() == 2, "linear wants 2-D views");
  const int64_t tokens = x.size(0), in = x.size(1), out_features = weight.size(0);
  RADIXLM_CHECK(weight.size(1) == in && out.size(0) == tokens && out.size(1) == out_features,
                "linear: x {} weight {} out {}", x.shape.to_string(), weight.shape.to_string(),
                out.shape.to_string());
  RADIXLM_CHECK(x.dtype == DType::kF32 && out.dtype == DType::kF32 && dtype_is_float(weight.dtype));
  RADIXLM_CHECK(x.is_contiguous() && weight.is_contiguous() && out.is_contiguous());
  if (tokens == 0 || out_features == 0) return;

  std::vector<float> bias_f32;
  if (bias.data != nullptr) {
    RADIXLM_CHECK(bias.numel() == out_features, "linear: bias {} for {} outputs", bias.shape.to_string(),
                  out_features);
    bias_f32.resize(static_cast<size_t>(out_features));
    convert_to_f32(bias.dtype, bias.data, bias_f32.data(), bias_f32.size());
  }
  const bool stream =
      weight.dtype == DType::kF32 || (weight.dtype == DType::kBF16 && tokens < kStreamMaxTokens);
  const float* x_data = x.as<float>();
  float* out_data = out.as<float>();
  const auto* weight_bytes = static_cast<const uint8_t*>(weight.data);
  const size_t element_size = dtype_size(weight.dtype);
  const int64_t num_tiles = (out_features + kRowsPerTile - 1) / kRowsPerTile;
  const int64_t grain = std::max<int64_t>(1, kMinWorkPerPart / (kRowsPerTile * in * tokens));

  pool.parallel_for(
      num_tiles,
      [&](int64_t tile_begin, int64_t tile_end) {
        std::vector<float> tile;
        if (!stream) tile.resize(static_cast<size_t>(kRowsPerTile * in));
        float sums[kRowsPerTile];  // with accumulate, a tile row's products before they are added to out
        for (int64_t tile_index = tile_begin; tile_index < tile_end; ++tile_index) {
          const int64_t row_begin = tile_index * kRowsPerTile;
          const int64_t row_end = std::min(out_features, row_begin + kRowsPerTile);
          const uint8_t* rows = weight_bytes + static_cast<size_t>(row_begin * in) * element_size;
          if (!stream) convert_to_f32(weight.dtype, rows, tile.data(), static_cast<size_t>((row_end - row_begin) * in));
          const int64_t count = row_end - row_begin;
          for (int64_t t = 0; t < tokens; ++t) {
            const float* x_row = x_data + t * in;
            float* out_row = out_data + t * out_features + row_begin;
            float* dots = accumulate ? sums : out_row;
            if (!stream) {
              dot_rows_f32(x_row, tile.data(), count, in, dots);
            } else if (weight.dtype == DType::kF32) {
              dot_rows_f32(x_row, reinterpret_cast<const float*>(rows), count, in, dots);
            } else {
              dot_rows_bf16(x_row, reinterpret_cast<const uint16_t*>(rows), count, in, dots);
            }
            if (!bias_f32.empty()) {
              for (int64_t r = 0; r < count; ++r) dots[r] += bias_f32[static_cast<size_t>(row_begin + r)];
            }
            if (accumulate) {
              for (int64_t r = 0; r < count; ++r) out_row[r] += sums[r];
            }
          }
        }
      },
      grain);
}

}  // namespace radixlm::cpu
