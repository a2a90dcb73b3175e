// Maps config.json's architecture name to the code that builds it.

#include <algorithm>
#include <functional>
#include <string_view>

#include <fmt/format.h>

#include "models/llama.h"
#include "models/model.h"

namespace radixlm {
namespace {

using Builder = std::function<Expected<std::unique_ptr<Model>>(const ModelConfig&, WeightSource&, Backend&,
                                                               const ModelOptions&)>;

struct Architecture {
  std::string_view name;
  Builder build;
};

const std::vector<Architecture>& architectures() {
  static const std::vector<Architecture> table = {
      {"LlamaForCausalLM", build_llama_family},
      {"MistralForCausalLM", build_llama_family},
      {"Qwen2ForCausalLM", build_llama_family},
      {"Qwen3ForCausalLM", build_llama_family},
  };
  return table;
}

// Parsed by the loader already; their MoE and MLA math arrives with later issues.
constexpr std::string_view kPlanned[] = {"MixtralForCausalLM", "Qwen2MoeForCausalLM", "Qwen3MoeForCausalLM",
                                         "DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM"};

}  // namespace

std::vector<std::string> supported_architectures() {
  std::vector<std::string> names;
  for (const auto& arch : architectures()) names.emplace_back(arch.name);
  return names;
}

Expected<std::unique_ptr<Model>> load_model(const ModelConfig& config, WeightSource& weights, Backend& backend,
                                            const ModelOptions& options) {
  for (const auto& arch : architectures()) {
    if (arch.name == config.architecture) return arch.build(config, weights, backend, options);
  }
  const std::string supported = fmt::format("{}", fmt::join(supported_architectures(), ", "));
  if (std::find(std::begin(kPlanned), std::end(kPlanned), config.architecture) != std::end(kPlanned)) {
    return make_error(StatusCode::kUnsupported,
                      "architecture {} is not supported yet (its MoE/MLA layers arrive in a later release); "
                      "supported: {}",
                      config.architecture, supported);
  }
  return make_error(StatusCode::kUnsupported, "unsupported architecture: {}; supported: {}",
                    config.architecture.empty() ? "(none given)" : config.architecture, supported);
}

}  // namespace radixlm
