#pragma once
// Every route of `radixlm serve` in one Router: the OpenAI routes (openai_routes.h), SGLang's native and
// admin routes (native_routes.h) and /metrics, each behind the --api-key / --admin-api-key checks.

#include "server/http_server.h"
#include "server/serving_context.h"

namespace radixlm::server {

Router make_router(ServingContext& context);

}  // namespace radixlm::server
