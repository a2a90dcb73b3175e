// radixlm chat-template: renders a model's chat template over a conversation and prints the prompt exactly
// as transformers' apply_chat_template(..., tokenize=False) would produce it (no newline added).

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "apps/command_registry.h"
#include "chat/chat_template.h"

namespace radixlm::apps {
namespace {

struct ChatTemplateOptions {
  std::string model_path;
  std::string messages_file;
  std::string tools_file;
  bool add_generation_prompt = false;
  std::string kwargs;
  std::string chat_template;
};

// Reads a JSON file ("-" for stdin) keeping object member order.
Expected<nlohmann::ordered_json> read_json_file(const std::string& path) {
  std::ostringstream buffer;
  if (path == "-") {
    buffer << std::cin.rdbuf();
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error(StatusCode::kIoError, "{}: cannot open", path);
    buffer << in.rdbuf();
  }
  auto json = nlohmann::ordered_json::parse(buffer.str(), nullptr, false);
  if (json.is_discarded()) return make_error(StatusCode::kInvalidArgument, "{}: not valid JSON", path);
  return json;
}

int run_chat_template(const ChatTemplateOptions& options) {
  auto fail = [](const Status& status) {
    std::fprintf(stderr, "radixlm chat-template: %s\n", status.to_string().c_str());
    return 1;
  };
  auto chat = chat::ChatTemplate::load(options.model_path, options.chat_template);
  if (!chat.ok()) return fail(chat.status());
  auto messages = read_json_file(options.messages_file);
  if (!messages.ok()) return fail(messages.status());
  nlohmann::ordered_json tools = nullptr;
  if (!options.tools_file.empty()) {
    auto parsed = read_json_file(options.tools_file);
    if (!parsed.ok()) return fail(parsed.status());
    tools = std::move(*parsed);
  }
  nlohmann::ordered_json kwargs = nullptr;
  if (!options.kwargs.empty()) {
    kwargs = nlohmann::ordered_json::parse(options.kwargs, nullptr, false);
    if (kwargs.is_discarded() || !kwargs.is_object()) {
      return fail(make_error(StatusCode::kInvalidArgument, "--kwargs must be a JSON object"));
    }
  }
  auto prompt = chat->render(*messages, tools, options.add_generation_prompt, kwargs);
  if (!prompt.ok()) return fail(prompt.status());
  std::fwrite(prompt->data(), 1, prompt->size(), stdout);
  std::fflush(stdout);
  return 0;
}

const CommandRegistrar kRegistrar(Command{
    "chat-template",
    [](CLI::App& sub) -> std::function<int()> {
      auto options = std::make_shared<ChatTemplateOptions>();
      sub.add_option("--model-path", options->model_path, "model or tokenizer directory (tokenizer_config.json)")
          ->required();
      sub.add_option("--messages-file", options->messages_file, "JSON list of messages ('-' for stdin)")->required();
      sub.add_option("--tools-file", options->tools_file, "JSON list of tool definitions");
      sub.add_flag("--add-generation-prompt", options->add_generation_prompt, "end with the assistant turn's header");
      sub.add_option("--kwargs", options->kwargs, "JSON object of extra template variables (chat_template_kwargs)");
      sub.add_option("--chat-template", options->chat_template, "a named template of the model, or a template file");
      return [options] { return run_chat_template(*options); };
    },
    "render a model's chat template over a conversation (prints the prompt exactly)"});

}  // namespace
}  // namespace radixlm::apps
