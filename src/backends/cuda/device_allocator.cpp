#include "backends/cuda/device_allocator.h"

#include "backends/cuda/cuda_check.h"

namespace radixlm::cuda {
namespace {

// Small blocks round to 512 bytes, large ones to 2 MiB, so repeated shapes find their block again and a
// slightly larger request can reuse a cached one.
size_t round_size(size_t bytes) {
  constexpr size_t kSmall = 512, kLarge = size_t{2} << 20;
  if (bytes == 0) bytes = 1;
  return bytes < kLarge ? (bytes + kSmall - 1) / kSmall * kSmall : (bytes + kLarge - 1) / kLarge * kLarge;
}

}  // namespace

DeviceAllocator::~DeviceAllocator() {
  empty_cache();
  for (auto& [size, block] : graph_free_) cudaFree(block);  // blocks still held by tensors are leaked with them
}

void* DeviceAllocator::allocate(size_t bytes, size_t* rounded_bytes) {
  const size_t rounded = round_size(bytes);
  *rounded_bytes = rounded;
  bool graph = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    graph = graph_pool_;
    auto& pool = graph ? graph_free_ : free_blocks_;
    // Exact size first; a cached block up to 25% larger is also fine.
    auto it = pool.lower_bound(rounded);
    if (it != pool.end() && it->first <= rounded + rounded / 4) {
      void* block = it->second;
      *rounded_bytes = it->first;
      if (!graph) cached_ -= it->first;
      in_use_ += it->first;
      pool.erase(it);
      return block;
    }
  }
  void* block = nullptr;
  cudaError_t error = cudaMalloc(&block, rounded);
  if (error == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // clear the sticky-free error before retrying
    empty_cache();
    error = cudaMalloc(&block, rounded);
  }
  if (error != cudaSuccess) {
    std::fprintf(stderr, "radixlm: cudaMalloc of %zu bytes failed (%s); %zu bytes in use\n", rounded,
                 cudaGetErrorString(error), bytes_in_use());
    std::abort();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  ++malloc_calls_;
  in_use_ += rounded;
  if (graph) graph_blocks_.insert(block);
  return block;
}

void DeviceAllocator::release(void* block, size_t rounded_bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  in_use_ -= rounded_bytes;
  if (graph_blocks_.count(block) > 0) {
    graph_free_.emplace(rounded_bytes, block);
    return;
  }
  free_blocks_.emplace(rounded_bytes, block);
  cached_ += rounded_bytes;
}

void DeviceAllocator::set_graph_pool(bool on) {
  std::lock_guard<std::mutex> lock(mutex_);
  graph_pool_ = on;
}

void DeviceAllocator::empty_cache() {
  std::multimap<size_t, void*> blocks;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    blocks.swap(free_blocks_);
    cached_ = 0;
  }
  if (blocks.empty()) return;
  RADIXLM_CUDA_CHECK(cudaDeviceSynchronize());  // a cached block may still be read by queued work
  for (auto& [size, block] : blocks) RADIXLM_CUDA_CHECK(cudaFree(block));
}

size_t DeviceAllocator::bytes_in_use() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return in_use_;
}
size_t DeviceAllocator::bytes_cached() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cached_;
}
size_t DeviceAllocator::malloc_calls() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return malloc_calls_;
}

}  // namespace radixlm::cuda
