#pragma once
// The CUDA backend's A/B switches (environment variables read once by their users, for tuning runs on the
// GPU and for turning a path off while debugging). Host-only, so both the .cu and the .cpp files use it.

#include <cstdlib>
#include <cstring>

namespace radixlm::cuda {

// On unless the environment sets `name` to 0.
inline bool env_switch_on(const char* name) {
  const char* env = std::getenv(name);
  return env == nullptr || std::strcmp(env, "0") != 0;
}

// Whether the environment sets `name` to exactly `value`.
inline bool env_is(const char* name, const char* value) {
  const char* env = std::getenv(name);
  return env != nullptr && std::strcmp(env, value) == 0;
}

// The integer the environment sets `name` to when it is within [low, high], else `fallback`.
inline int env_int(const char* name, int low, int high, int fallback) {
  const char* env = std::getenv(name);
  const int value = env != nullptr ? std::atoi(env) : low - 1;
  return value >= low && value <= high ? value : fallback;
}

}  // namespace radixlm::cuda
