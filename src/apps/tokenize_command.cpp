// `radixlm tokenize --tokenizer-path DIR [--add-special-tokens] --json`: a JSON list of strings on stdin, a
// JSON list of id lists on stdout. A debugging tool, and what the tokenizer parity tests drive.

#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include <nlohmann/json.hpp>

#include "apps/command_registry.h"
#include "tokenizer/tokenizer.h"

namespace radixlm::apps {
namespace {

struct TokenizeFlags {
  std::string tokenizer_path;
  std::string source = "auto";
  bool add_special_tokens = false;
  bool json = false;
};

Expected<tokenizer::TokenizerSource> parse_source(const std::string& name) {
  if (name == "auto") return tokenizer::TokenizerSource::kAuto;
  if (name == "tokenizer.json") return tokenizer::TokenizerSource::kTokenizerJson;
  if (name == "vocab-merges") return tokenizer::TokenizerSource::kVocabMerges;
  if (name == "sentencepiece") return tokenizer::TokenizerSource::kSentencePiece;
  return make_error(StatusCode::kInvalidArgument, "--tokenizer-source: unknown '{}'", name);
}

int run_tokenize(const TokenizeFlags& flags) {
  auto source = parse_source(flags.source);
  if (!source.ok()) {
    std::fprintf(stderr, "radixlm tokenize: %s\n", source.status().to_string().c_str());
    return 2;
  }
  auto tok = tokenizer::Tokenizer::load(flags.tokenizer_path, {*source});
  if (!tok.ok()) {
    std::fprintf(stderr, "radixlm tokenize: %s\n", tok.status().to_string().c_str());
    return 1;
  }
  const std::string input{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
  auto texts = nlohmann::json::parse(input, nullptr, /*allow_exceptions=*/false);
  if (texts.is_discarded() || !texts.is_array()) {
    std::fprintf(stderr, "radixlm tokenize: stdin must be a JSON list of strings\n");
    return 2;
  }
  nlohmann::json out = nlohmann::json::array();
  for (const auto& text : texts) {
    if (!text.is_string()) {
      std::fprintf(stderr, "radixlm tokenize: stdin must be a JSON list of strings\n");
      return 2;
    }
    out.push_back(tok->encode(text.get_ref<const std::string&>(), flags.add_special_tokens));
  }
  std::cout << out.dump() << "\n";
  return 0;
}

const CommandRegistrar registrar{Command{
    "tokenize",
    [](CLI::App& sub) -> std::function<int()> {
      auto flags = std::make_shared<TokenizeFlags>();
      sub.add_option("--tokenizer-path", flags->tokenizer_path, "directory with tokenizer.json (or slow files)")
          ->required();
      sub.add_flag("--add-special-tokens", flags->add_special_tokens, "apply the post-processor (e.g. BOS)");
      sub.add_flag("--json", flags->json, "JSON list of strings in, JSON list of id lists out")->required();
      sub.add_option("--tokenizer-source", flags->source,
                     "auto, tokenizer.json, vocab-merges or sentencepiece: which files to load")
          ->capture_default_str();
      return [flags] { return run_tokenize(*flags); };
    },
    "encode texts to token ids (JSON on stdin and stdout)"}};

}  // namespace
}  // namespace radixlm::apps
