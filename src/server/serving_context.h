#pragma once
// Everything the route handlers share: the engine, the text front end (tokenizer and chat template, absent
// with --skip-tokenizer-init or in a build without text support), the served model's identity, the keys,
// the metrics and the rid registry. `radixlm serve` builds one and hands it to make_router().

#include <atomic>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace radixlm {
class Engine;
struct ModelConfig;
namespace tokenizer {
class Tokenizer;
}
namespace chat {
class ChatTemplate;
}
}  // namespace radixlm

namespace radixlm::server {

class ServerMetrics;
class RequestRegistry;

struct ServingContext {
  Engine* engine = nullptr;
  const ModelConfig* model_config = nullptr;
  const ::radixlm::tokenizer::Tokenizer* tokenizer = nullptr;  // null: token ids only (input_ids in, output_ids out)
  const chat::ChatTemplate* chat_template = nullptr;  // null: chat completions are refused with a 400
  std::string served_model_name;  // --served-model-name, else --model-path
  std::string model_path;
  int64_t context_length = 0;     // prompt + output tokens a request may reach
  std::string api_key;            // empty: no auth
  std::string admin_api_key;      // empty: admin routes fall back to api_key
  bool log_requests = false;
  ServerMetrics* metrics = nullptr;
  RequestRegistry* registry = nullptr;
  nlohmann::json server_info = nlohmann::json::object();  // effective launch arguments, secrets removed
  std::atomic<bool> ready{false};     // /health answers 200 once set
  std::atomic<bool> draining{false};  // after SIGTERM: new generation requests get 503
};

}  // namespace radixlm::server
