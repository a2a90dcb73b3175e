#include "core/tensor.h"

#include <gtest/gtest.h>

namespace radixlm {
namespace {

TEST(Tensor, ContiguousStridesAndSlices) {
  Tensor t = alloc_host_tensor(DType::kF32, {4, 3, 2});
  EXPECT_EQ(t.view.strides[0], 6);
  EXPECT_EQ(t.view.strides[1], 2);
  EXPECT_EQ(t.view.strides[2], 1);
  EXPECT_EQ(t.view.nbytes(), 96u);
  EXPECT_TRUE(t.view.is_contiguous());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.view.data) % 64, 0u);
  for (int i = 0; i < 24; ++i) t.as<float>()[i] = static_cast<float>(i);
  TensorView rows = t.view.slice_rows(1, 3);
  EXPECT_EQ(rows.shape, (Shape{2, 3, 2}));
  EXPECT_EQ(rows.as<float>()[0], 6.0f);
  TensorView flat = rows.reshape({12});
  EXPECT_EQ(flat.as<float>()[11], 17.0f);
  EXPECT_EQ(Shape({2, 5}).to_string(), "[2, 5]");
}

TEST(Tensor, ColumnBlocksAreRowStridedViews) {
  Tensor t = alloc_host_tensor(DType::kF32, {3, 10});
  for (int i = 0; i < 30; ++i) t.as<float>()[i] = static_cast<float>(i);
  EXPECT_TRUE(t.view.is_row_strided());
  TensorView middle = t.view.columns(4, 3);  // columns 4, 5, 6 of each row
  EXPECT_EQ(middle.shape, (Shape{3, 3}));
  EXPECT_FALSE(middle.is_contiguous());
  EXPECT_TRUE(middle.is_row_strided());
  EXPECT_EQ(middle.row_stride(), 10);
  EXPECT_EQ(middle.as<float>()[0], 4.0f);
  EXPECT_EQ(middle.as<float>()[2 * middle.row_stride() + 2], 26.0f);
  EXPECT_TRUE(t.view.slice_rows(0, 1).columns(7, 3).is_row_strided());
  EXPECT_FALSE(alloc_host_tensor(DType::kF32, {2, 3, 4}).view.is_row_strided());  // 2-D only
  EXPECT_DEATH(t.view.columns(8, 3), "columns");
}

}  // namespace
}  // namespace radixlm
