#include "server/auth.h"

#include <cctype>
#include <string>

#include "server/api_error.h"

namespace radixlm::server {
namespace {

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// The token of `Authorization: Bearer <token>` (scheme case-insensitive), or nullopt.
std::optional<std::string_view> bearer_token(std::string_view header) {
  const size_t space = header.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  const std::string_view scheme = header.substr(0, space);
  static constexpr std::string_view kBearer = "bearer";
  if (scheme.size() != kBearer.size()) return std::nullopt;
  for (size_t i = 0; i < scheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(scheme[i])) != kBearer[i]) return std::nullopt;
  }
  return header.substr(space + 1);
}

bool carries_key(const HttpRequest& request, const std::string& key) {
  const std::optional<std::string_view> token = bearer_token(request.header("Authorization"));
  return token.has_value() && constant_time_equals(*token, key);
}

}  // namespace

AuthLevel auth_level(std::string_view path) {
  if (starts_with(path, "/health") || starts_with(path, "/metrics")) return AuthLevel::kOpen;
  if (path == "/flush_cache" || path == "/abort_request") return AuthLevel::kAdminOptional;
  return AuthLevel::kNormal;
}

bool constant_time_equals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

std::optional<HttpResponse> check_auth(const HttpRequest& request, const ServingContext& context) {
  if (request.method == "OPTIONS") return std::nullopt;  // CORS preflight, as SGLang lets it through
  const std::string* key = nullptr;
  switch (auth_level(request.path)) {
    case AuthLevel::kOpen: return std::nullopt;
    case AuthLevel::kNormal:
      if (!context.api_key.empty()) key = &context.api_key;
      break;
    case AuthLevel::kAdminOptional:
      if (!context.admin_api_key.empty()) {
        key = &context.admin_api_key;
      } else if (!context.api_key.empty()) {
        key = &context.api_key;
      }
      break;
  }
  if (key == nullptr || carries_key(request, *key)) return std::nullopt;
  HttpResponse response = error_response(401, request.header("Authorization").empty()
                                                  ? "Unauthorized: send the API key as 'Authorization: Bearer <key>'"
                                                  : "Unauthorized: the API key is not valid for this route");
  response.headers.emplace_back("WWW-Authenticate", "Bearer");
  return response;
}

}  // namespace radixlm::server
