#pragma once
// Errors in OpenAI's JSON shape, which SGLang also uses for its native routes:
//   {"object": "error", "message": "...", "type": "BadRequestError", "param": null, "code": 400}
// Every route answers client mistakes with one of these, never with a 500.

#include <string>

#include "core/status.h"
#include "server/http_server.h"

namespace radixlm::server {

HttpResponse error_response(int http_status, const std::string& message);
// kInvalidArgument/kOutOfRange -> 400, kNotFound -> 404, kResourceExhausted -> 429 (with Retry-After),
// kUnsupported -> 400, anything else -> 500 (a bug, never client input).
HttpResponse error_response(const Status& status);

}  // namespace radixlm::server
