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

}  // namespace
}  // namespace radixlm
