#pragma once
// The live requests by rid: each HTTP exchange that generates registers its rid with the engine ids it
// submitted, so /abort_request {"rid": ...} can abort them, {"abort_all": true} can abort everything, and a
// second request with the rid of a live one is refused (SGLang answers that with a 400). Thread-safe.

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace radixlm::server {

class RequestRegistry {
 public:
  // Registers `rid` with its engine ids. An empty rid gets a unique internal key (returned), so anonymous
  // requests still count for abort_all. kInvalidArgument when a live request already has that rid.
  Expected<std::string> add(const std::string& rid, std::vector<uint64_t> engine_ids);
  // Whether `rid` is registered now.
  bool contains(const std::string& rid) const;
  // Forgets `rid` (a no-op when absent).
  void remove(const std::string& key);
  // The engine ids of `rid`, or nullopt.
  std::optional<std::vector<uint64_t>> find(const std::string& rid) const;
  // Every live request's engine ids.
  std::vector<uint64_t> all_engine_ids() const;
  size_t size() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::vector<uint64_t>> live_;
  uint64_t next_anonymous_ = 0;
};

}  // namespace radixlm::server
