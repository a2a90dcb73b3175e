#pragma once
// Runs one HTTP exchange's engine requests (one, or several for n > 1 and batch /generate) and brings their
// output back to the connection: submits them, registers their rid, turns a client disconnect into an
// abort, drains each RequestStream on the channel's strand as chunks arrive, and records the latency
// histograms and token counters. The OpenAI and native routes both start generation here and differ only
// in how they format what the callbacks receive.

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/engine.h"
#include "server/http_server.h"
#include "server/serving_context.h"

namespace radixlm::server {

struct GenerationCallbacks {
  // Each chunk of request `index` (in the order given), on the channel's strand. The final chunk carries the
  // finished EngineOutput. May be empty when the route only wants the end.
  std::function<void(size_t index, const StreamChunk& chunk)> on_chunk;
  // Once every request has finished (including by abort), on the channel's strand.
  std::function<void(std::vector<EngineOutput> outputs)> on_done;
};

// Submits every request, or none: a request the engine refuses (validation, a full queue) aborts the ones
// already submitted and comes back as the error (kInvalidArgument -> 400, kResourceExhausted -> 429, ...).
// `rid` (may be empty) names the group in the RequestRegistry, so /abort_request {"rid": ...} aborts all of
// its requests.
Status start_generation(ServingContext& context, std::shared_ptr<ResponseChannel> channel,
                        std::vector<EngineRequest> requests, const std::string& rid, GenerationCallbacks callbacks);

// The same with one rid per request (batch /generate, where each item has its own): requests that share a
// non-empty rid form one group in the registry (the n copies of one item); those with an empty rid form one
// anonymous group. A rid already live is refused (400) before anything is submitted; the route refuses a
// batch that repeats a rid across its items.
Status start_generation(ServingContext& context, std::shared_ptr<ResponseChannel> channel,
                        std::vector<EngineRequest> requests, const std::vector<std::string>& rids,
                        GenerationCallbacks callbacks);

}  // namespace radixlm::server
