#include "scheduler/request.h"

#include <algorithm>

namespace radixlm {

const char* request_state_name(RequestState state) {
  switch (state) {
    case RequestState::kWaiting:
      return "waiting";
    case RequestState::kPrefilling:
      return "prefilling";
    case RequestState::kRunning:
      return "running";
    case RequestState::kFinished:
      return "finished";
  }
  return "?";
}

const char* finish_reason_type(const FinishReason& reason) {
  switch (reason.kind) {
    case FinishKind::kStopToken:
    case FinishKind::kStopString:
      return "stop";
    case FinishKind::kLength:
      return "length";
    case FinishKind::kAbort:
      return "abort";
    case FinishKind::kNone:
      break;
  }
  return "";
}

int64_t input_logprob_start(const Request& r) {
  if (!r.input.params.return_logprob || r.num_output() > 0) return -1;
  const int64_t start = r.input.params.logprob_start_len;
  return start < 0 ? r.prompt_len() - 1 : std::min(start, r.prompt_len() - 1);
}

}  // namespace radixlm
