#pragma once
// Device memory for the CUDA backend. Freed blocks go back to a free list keyed by their rounded size and
// are handed out again, so once a workload's shapes have been seen (the first prefill and decode steps) no
// step calls cudaMalloc. Everything runs on one stream, so a block freed on the host and reused by a later
// launch is ordered after the kernels that still read it.

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

namespace radixlm::cuda {

class DeviceAllocator {
 public:
  DeviceAllocator() = default;
  ~DeviceAllocator();
  DeviceAllocator(const DeviceAllocator&) = delete;
  DeviceAllocator& operator=(const DeviceAllocator&) = delete;

  // A block of at least `bytes` (256-byte aligned). Aborts with a clear message when the device is full
  // even after the cache is released.
  void* allocate(size_t bytes, size_t* rounded_bytes);
  void release(void* block, size_t rounded_bytes);
  // Returns every cached (free) block to the driver (never a graph-pool block).
  void empty_cache();

  // While on, blocks come from (and go back to) a pool of their own that ordinary allocations never see,
  // and whose blocks are never returned to the driver: what a captured CUDA graph writes into stays its
  // own, whatever the eager steps between two replays allocate. Graphs share the pool, as they never run
  // at the same time.
  void set_graph_pool(bool on);

  size_t bytes_in_use() const;
  size_t bytes_cached() const;
  size_t malloc_calls() const;

 private:
  mutable std::mutex mutex_;
  std::multimap<size_t, void*> free_blocks_;
  std::multimap<size_t, void*> graph_free_;
  std::set<void*> graph_blocks_;
  bool graph_pool_ = false;
  size_t in_use_ = 0;
  size_t cached_ = 0;
  size_t malloc_calls_ = 0;
};

}  // namespace radixlm::cuda
