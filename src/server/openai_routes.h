#pragma once
// The OpenAI-compatible routes: POST /v1/chat/completions, POST /v1/completions, GET /v1/models,
// GET /v1/models/{id}. make_router() (router.h) adds them with auth in front.

#include "server/http_server.h"
#include "server/serving_context.h"

namespace radixlm::server {

void add_openai_routes(Router& router, ServingContext& context);

}  // namespace radixlm::server
