#pragma once
// SGLang's native routes (python/sglang/srt/entrypoints/http_server.py): POST /generate (native_generate.h),
// GET /health, GET /health_generate, GET /get_model_info (/model_info), GET /get_server_info (/server_info),
// POST /flush_cache, POST /abort_request, POST /v1/tokenize (/tokenize), POST /v1/detokenize (/detokenize)
// and GET /metrics. make_router() (router.h) puts the auth checks in front of them.

#include "server/http_server.h"
#include "server/metrics.h"
#include "server/serving_context.h"

namespace radixlm::server {

void add_native_routes(Router& router, ServingContext& context);

// The scheduler gauges /metrics reports, from Engine::snapshot() (zeros without an engine).
SchedulerGauges scheduler_gauges(const ServingContext& context);

}  // namespace radixlm::server
