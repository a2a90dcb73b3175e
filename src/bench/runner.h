#pragma once
// Sends a run's requests at their arrival times (arrivals.h) with at most --max-concurrency in flight (a
// request whose turn comes while the limit is reached waits, first come first served, as behind
// bench_serving's semaphore), on one I/O thread, and collects each request's RequestResult. Failed requests
// are results with an error; the run itself fails only when the server cannot even be resolved.

#include <cstdint>
#include <string>
#include <vector>

#include "bench/dataset.h"
#include "bench/http_client.h"
#include "bench/protocol.h"
#include "bench/url.h"
#include "core/status.h"

namespace radixlm::bench {

struct RunOptions {
  ServerAddress address;
  ApiKind api = ApiKind::kGenerate;
  PayloadOptions payload;
  HttpHeaders headers;           // e.g. Authorization
  int64_t max_concurrency = 0;   // 0: unlimited
  double request_timeout_s = 0;  // 0: none
  bool show_progress = true;
};

struct RunOutcome {
  std::vector<RequestResult> results;  // in prompt order
  double duration_s = 0.0;             // first send to last completion
  int64_t peak_in_flight = 0;
};

Expected<RunOutcome> run_requests(const std::vector<BenchPrompt>& prompts, const std::vector<double>& arrival_s,
                                  const RunOptions& options);

}  // namespace radixlm::bench
