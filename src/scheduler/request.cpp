#include "scheduler/request.h"

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

}  // namespace radixlm
