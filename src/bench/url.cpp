#include "bench/url.h"

#include <charconv>

namespace radixlm::bench {

std::string ServerAddress::to_string() const {
  const bool ipv6 = host.find(':') != std::string::npos;
  return fmt::format("http://{}{}{}:{}{}", ipv6 ? "[" : "", host, ipv6 ? "]" : "", port, path_prefix);
}

Expected<ServerAddress> parse_base_url(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return make_error(StatusCode::kInvalidArgument, "base URL '{}': only http:// URLs are supported", url);
  }
  std::string_view rest = url.substr(kScheme.size());
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);

  ServerAddress address;
  address.path_prefix = std::string(path);
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {  // [IPv6]:port
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return make_error(StatusCode::kInvalidArgument, "base URL '{}': unclosed '[' in the host", url);
    }
    address.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return make_error(StatusCode::kInvalidArgument, "base URL '{}': bad host", url);
      port_text = after.substr(1);
    }
  } else {
    const size_t colon = authority.rfind(':');
    address.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (address.host.empty()) return make_error(StatusCode::kInvalidArgument, "base URL '{}': no host", url);
  if (!port_text.empty()) {
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 || port > 65535) {
      return make_error(StatusCode::kInvalidArgument, "base URL '{}': bad port '{}'", url, port_text);
    }
    address.port = static_cast<uint16_t>(port);
  }
  return address;
}

}  // namespace radixlm::bench
