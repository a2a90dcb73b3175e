#include "server/api_error.h"

#include <nlohmann/json.hpp>

namespace radixlm::server {
namespace {

const char* error_type(int http_status) {
  switch (http_status) {
    case 400: return "BadRequestError";
    case 401: return "AuthenticationError";
    case 403: return "PermissionDeniedError";
    case 404: return "NotFoundError";
    case 405: return "MethodNotAllowed";
    case 413: return "RequestTooLarge";
    case 429: return "RateLimitError";
    case 503: return "ServiceUnavailableError";
    default: return http_status < 500 ? "BadRequestError" : "InternalServerError";
  }
}

}  // namespace

HttpResponse error_response(int http_status, const std::string& message) {
  nlohmann::json body = {{"object", "error"},
                         {"message", message},
                         {"type", error_type(http_status)},
                         {"param", nullptr},
                         {"code", http_status}};
  HttpResponse response;
  response.status = http_status;
  // Messages may quote client bytes that are not UTF-8; replace them rather than throw.
  response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return response;
}

HttpResponse error_response(const Status& status) {
  int http_status = 500;
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
    case StatusCode::kUnsupported:
    case StatusCode::kCorruptData: http_status = 400; break;
    case StatusCode::kNotFound: http_status = 404; break;
    case StatusCode::kResourceExhausted: http_status = 429; break;
    default: break;
  }
  HttpResponse response = error_response(http_status, status.message());
  if (http_status == 429) response.headers.emplace_back("Retry-After", "1");
  return response;
}

}  // namespace radixlm::server
