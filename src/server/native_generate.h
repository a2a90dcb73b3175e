#pragma once
// SGLang's POST /generate (python/sglang/srt/managers/io_struct.py's GenerateReqInput, answered as
// tokenizer_manager.py does): `text` or `input_ids`, one or a batch (a list, answered with a list);
// `sampling_params` (one object, or one per item); `rid`; the logprob fields; `stream` as SSE events
// `data: {json}\n\n` with the cumulative text and output ids, then `data: [DONE]\n\n`. A request with n > 1
// samples, or a batch, is answered with a list (item-major: item 0's samples, then item 1's, ...).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "engine/engine.h"
#include "server/http_server.h"
#include "server/serving_context.h"

namespace radixlm::server::native {

struct GenerateItem {
  std::vector<int32_t> input_ids;
  SamplingParams params;  // with the logprob fields
  std::string rid;        // the client's, else a random hex id
};

struct GenerateInput {
  std::vector<GenerateItem> items;
  bool batch = false;   // `text` / `input_ids` was a list of prompts
  bool stream = false;
  bool return_text_in_logprobs = false;
};

// Reads and checks a /generate body: field types, one of text/input_ids, per-item lists of the right length,
// distinct rids, prompts within the context length. Unknown fields are ignored.
Expected<GenerateInput> parse_generate_request(const nlohmann::json& body, const ServingContext& context);

// What one output of the response says (SGLang's out dict): "text" (when the server has a tokenizer),
// "output_ids", "meta_info" with id, finish_reason (null until finished), prompt/completion/cached tokens,
// e2e_latency once finished and the logprob lists.
struct OutputView {
  const std::string* rid = nullptr;
  const SamplingParams* params = nullptr;
  int64_t prompt_tokens = 0;
  const std::vector<int32_t>* output_ids = nullptr;
  const std::string* text = nullptr;
  const std::vector<SampledToken>* output_logprobs = nullptr;
  const std::vector<SampledToken>* input_logprobs = nullptr;
  const EngineOutput* finished = nullptr;  // the final output, once there is one
  double e2e_latency_s = 0.0;
};
nlohmann::ordered_json format_output(const OutputView& view, const ServingContext& context,
                                     bool return_text_in_logprobs);

// SGLang's finish_reason object: {"type": "stop", "matched": id or string}, {"type": "length", "length": n},
// {"type": "abort", "message": ...}.
nlohmann::ordered_json finish_reason_json(const EngineOutput& output);

void handle_generate(const HttpRequest& request, const std::shared_ptr<ResponseChannel>& channel,
                     ServingContext& context);

}  // namespace radixlm::server::native
