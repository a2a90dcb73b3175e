#pragma once
// The server address of `--base-url http://host:port/prefix` (or --host/--port): plain HTTP only, since
// radixlm serve speaks no TLS.

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace radixlm::bench {

struct ServerAddress {
  std::string host;
  uint16_t port = 80;
  std::string path_prefix;  // "" or "/prefix" (no trailing slash): prepended to every route

  std::string target(std::string_view route) const { return path_prefix + std::string(route); }
  std::string to_string() const;
};

Expected<ServerAddress> parse_base_url(std::string_view url);

}  // namespace radixlm::bench
