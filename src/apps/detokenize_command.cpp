// `radixlm detokenize --tokenizer-path DIR [--skip-special-tokens] --json`: a JSON list of id lists on stdin,
// a JSON list of strings on stdout. `--incremental` prints, per id list, the pieces the streaming
// detokenizer emits (one per id, then the final flush), which the streaming tests check.

#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include <nlohmann/json.hpp>

#include "apps/command_registry.h"
#include "tokenizer/tokenizer.h"

namespace radixlm::apps {
namespace {

struct DetokenizeFlags {
  std::string tokenizer_path;
  bool skip_special_tokens = false;
  bool json = false;
  bool incremental = false;
};

int run_detokenize(const DetokenizeFlags& flags) {
  auto tok = tokenizer::Tokenizer::load(flags.tokenizer_path);
  if (!tok.ok()) {
    std::fprintf(stderr, "radixlm detokenize: %s\n", tok.status().to_string().c_str());
    return 1;
  }
  const std::string input{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
  auto lists = nlohmann::json::parse(input, nullptr, /*allow_exceptions=*/false);
  auto bad_input = [] {
    std::fprintf(stderr, "radixlm detokenize: stdin must be a JSON list of lists of integer ids\n");
    return 2;
  };
  if (lists.is_discarded() || !lists.is_array()) return bad_input();
  nlohmann::json out = nlohmann::json::array();
  std::vector<int32_t> ids;
  for (const auto& list : lists) {
    if (!list.is_array()) return bad_input();
    ids.clear();
    for (const auto& id : list) {
      if (!id.is_number_integer()) return bad_input();
      const auto value = id.get<int64_t>();
      // Ids outside int32 are unknown ids: decode drops them, as HF does.
      ids.push_back(value < INT32_MIN || value > INT32_MAX ? -1 : static_cast<int32_t>(value));
    }
    if (flags.incremental) {
      tokenizer::IncrementalDetokenizer stream(*tok, {flags.skip_special_tokens, true});
      nlohmann::json pieces = nlohmann::json::array();
      for (int32_t id : ids) pieces.push_back(stream.feed(id));
      pieces.push_back(stream.finish());
      out.push_back(std::move(pieces));
    } else {
      out.push_back(tok->decode(ids, flags.skip_special_tokens));
    }
  }
  // Strict dump: a piece that is not valid UTF-8 is a bug and must fail loudly, not be patched over.
  std::cout << out.dump() << "\n";
  return 0;
}

const CommandRegistrar registrar{Command{
    "detokenize",
    [](CLI::App& sub) -> std::function<int()> {
      auto flags = std::make_shared<DetokenizeFlags>();
      sub.add_option("--tokenizer-path", flags->tokenizer_path, "directory with tokenizer.json (or slow files)")
          ->required();
      sub.add_flag("--skip-special-tokens", flags->skip_special_tokens, "leave special tokens out of the text");
      sub.add_flag("--json", flags->json, "JSON list of id lists in, JSON list of strings out")->required();
      sub.add_flag("--incremental", flags->incremental,
                   "print each list's streamed pieces (one per id, then the final flush) instead");
      return [flags] { return run_detokenize(*flags); };
    },
    "decode token ids to text (JSON on stdin and stdout)"}};

}  // namespace
}  // namespace radixlm::apps
