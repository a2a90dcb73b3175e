#include "server/request_registry.h"

namespace radixlm::server {

Expected<std::string> RequestRegistry::add(const std::string& rid, std::vector<uint64_t> engine_ids) {
  std::lock_guard lock(mutex_);
  std::string key = rid;
  if (key.empty()) {
    // A NUL byte cannot arrive in a JSON-decoded rid through the routes' validation, so these never collide
    // with a client's rid.
    key = std::string(1, '\0') + "anonymous-" + std::to_string(next_anonymous_++);
  }
  if (live_.count(key) != 0) {
    return make_error(StatusCode::kInvalidArgument, "Duplicate request ID: a request with rid '{}' is still running",
                      rid);
  }
  live_.emplace(key, std::move(engine_ids));
  return key;
}

bool RequestRegistry::contains(const std::string& rid) const {
  std::lock_guard lock(mutex_);
  return live_.count(rid) != 0;
}

void RequestRegistry::remove(const std::string& key) {
  std::lock_guard lock(mutex_);
  live_.erase(key);
}

std::optional<std::vector<uint64_t>> RequestRegistry::find(const std::string& rid) const {
  std::lock_guard lock(mutex_);
  const auto it = live_.find(rid);
  if (it == live_.end()) return std::nullopt;
  return it->second;
}

std::vector<uint64_t> RequestRegistry::all_engine_ids() const {
  std::lock_guard lock(mutex_);
  std::vector<uint64_t> out;
  for (const auto& [key, ids] : live_) out.insert(out.end(), ids.begin(), ids.end());
  return out;
}

size_t RequestRegistry::size() const {
  std::lock_guard lock(mutex_);
  return live_.size();
}

}  // namespace radixlm::server
