#pragma once
// Host memory for weights being assembled before upload (dummy weights, fused projections): left
// uninitialized because every byte is about to be written, and backed by transparent huge pages when large,
// because on multi-gigabyte models first-touch page faults, not the copies, dominate load time.

#include "core/tensor.h"

namespace radixlm {

// A contiguous host tensor whose contents are undefined until written. Aborts when memory runs out.
Tensor alloc_host_uninitialized(DType dtype, const Shape& shape);

}  // namespace radixlm
