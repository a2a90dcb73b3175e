// split_columns against its definition: each output is one block of x's columns, in order. Values are the
// element's own index, so a block taken from the wrong offset or row cannot match by accident.

#include <numeric>
#include <vector>

#include <gtest/gtest.h>

#include "backends/cpu/cpu_backend.h"

namespace radixlm {
namespace {

TEST(CpuSplit, OutputsAreTheColumnBlocksInOrder) {
  for (int threads : {1, 3}) {
    CpuBackend cpu(threads);
    for (int64_t rows : {1, 2, 37}) {
      for (const std::vector<int64_t>& widths :
           std::vector<std::vector<int64_t>>{{4, 2, 3}, {9}, {0, 5, 1}, {8, 8, 8, 8}, {64, 16, 16}}) {
        const int64_t width = std::accumulate(widths.begin(), widths.end(), int64_t{0});
        Tensor x = cpu.alloc(DType::kF32, {rows, width});
        std::iota(x.as<float>(), x.as<float>() + rows * width, 0.0f);
        std::vector<Tensor> outs;
        std::vector<TensorView> views;
        for (int64_t w : widths) {
          outs.push_back(cpu.alloc(DType::kF32, {rows, w}));
          std::fill(outs.back().as<float>(), outs.back().as<float>() + rows * w, -1.0f);
          views.push_back(outs.back());
        }
        cpu.split_columns(x, views);
        for (int64_t r = 0; r < rows; ++r) {
          int64_t begin = 0;
          for (size_t p = 0; p < widths.size(); ++p) {
            for (int64_t col = 0; col < widths[p]; ++col) {
              ASSERT_EQ(outs[p].as<float>()[r * widths[p] + col], static_cast<float>(r * width + begin + col))
                  << "row " << r << " part " << p << " column " << col;
            }
            begin += widths[p];
          }
        }
      }
    }
  }
}

TEST(CpuSplit, Bf16IsCopiedBitForBit) {
  CpuBackend cpu(2);
  Tensor x = alloc_host_tensor(DType::kBF16, {3, 6});
  for (int i = 0; i < 18; ++i) x.as<uint16_t>()[i] = static_cast<uint16_t>(0x3f80 + 17 * i);  // arbitrary patterns
  Tensor a = alloc_host_tensor(DType::kBF16, {3, 4}), b = alloc_host_tensor(DType::kBF16, {3, 2});
  const std::vector<TensorView> views = {a.view, b.view};
  cpu.split_columns(x, views);
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 4; ++c) EXPECT_EQ(a.as<uint16_t>()[r * 4 + c], x.as<uint16_t>()[r * 6 + c]);
    for (int c = 0; c < 2; ++c) EXPECT_EQ(b.as<uint16_t>()[r * 2 + c], x.as<uint16_t>()[r * 6 + 4 + c]);
  }
}

TEST(CpuSplitDeathTest, WidthsMustAddUp) {
  CpuBackend cpu(1);
  Tensor x = cpu.alloc(DType::kF32, {2, 6});
  Tensor a = cpu.alloc(DType::kF32, {2, 4}), b = cpu.alloc(DType::kF32, {2, 1});
  const std::vector<TensorView> views = {a.view, b.view};
  EXPECT_DEATH(cpu.split_columns(x, views), "add up to 5, x is 6 wide");
}

}  // namespace
}  // namespace radixlm
