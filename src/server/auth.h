#pragma once
// --api-key and --admin-api-key as SGLang checks them (python/sglang/srt/utils/auth.py): a request carries
// `Authorization: Bearer <key>`, compared in constant time. Paths starting with /health or /metrics are always
// open (liveness probes and Prometheus scrapes carry no secrets). Admin routes (/flush_cache, /abort_request:
// SGLang's ADMIN_OPTIONAL level) need the admin key when one is set, else the API key; every other route
// needs the API key when one is set. A refusal is a 401 in OpenAI's error shape.

#include <optional>
#include <string_view>

#include "server/http_server.h"
#include "server/serving_context.h"

namespace radixlm::server {

enum class AuthLevel {
  kOpen,           // /health*, /metrics*
  kNormal,         // the API key, when set
  kAdminOptional,  // the admin key when set, else the API key when set
};

AuthLevel auth_level(std::string_view path);

// Equal length and bytes, in time that depends only on the lengths.
bool constant_time_equals(std::string_view a, std::string_view b);

// The 401 to send, or nullopt when the request may go on.
std::optional<HttpResponse> check_auth(const HttpRequest& request, const ServingContext& context);

}  // namespace radixlm::server
