// Builds a tokenizer from the "slow" files when a directory has no tokenizer.json: GPT-2-style vocab.json +
// merges.txt, or a SentencePiece tokenizer.model. The pipeline around the model is the one transformers'
// converters give those tokenizer classes.

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tokenizer/json_fields.h"
#include "tokenizer/tokenizer_impl.h"

namespace radixlm::tokenizer {
namespace {

// Qwen2Tokenizer's pre-tokenizer regex (digits one at a time; transformers' Qwen2 converter).
constexpr const char* kQwen2SplitPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

Expected<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(StatusCode::kIoError, "{}: cannot open", path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

Expected<std::vector<std::pair<std::string, std::string>>> read_merges_txt(const std::string& path) {
  RADIXLM_ASSIGN_OR_RETURN(std::string text, read_text(path));
  std::vector<std::pair<std::string, std::string>> merges;
  std::istringstream lines(text);
  std::string line;
  size_t line_number = 0;
  while (std::getline(lines, line)) {
    ++line_number;
    if (line_number == 1 && line.rfind("#version", 0) == 0) continue;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const size_t space = line.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string::npos) {
      return make_error(StatusCode::kCorruptData, "{}:{}: a merge must be two tokens separated by one space", path,
                        line_number);
    }
    merges.emplace_back(line.substr(0, space), line.substr(space + 1));
  }
  return merges;
}

}  // namespace

Expected<std::unique_ptr<TokenizerImpl>> build_from_vocab_merges(const std::string& vocab_path,
                                                                   const std::string& merges_path,
                                                                   const nlohmann::json& config) {
  RADIXLM_ASSIGN_OR_RETURN(std::string vocab_text, read_text(vocab_path));
  auto vocab_json = nlohmann::json::parse(vocab_text, nullptr, false);
  if (vocab_json.is_discarded() || !vocab_json.is_object()) {
    return make_error(StatusCode::kCorruptData, "{}: not a JSON object", vocab_path);
  }
  BpeConfig bpe;
  for (auto it = vocab_json.begin(); it != vocab_json.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() > kMaxTokenId) {
      return make_error(StatusCode::kCorruptData, "{}: '{}' has no valid id", vocab_path, it.key());
    }
    bpe.vocab.emplace(it.key(), static_cast<int32_t>(it.value().get<int64_t>()));
  }
  RADIXLM_ASSIGN_OR_RETURN(bpe.merges, read_merges_txt(merges_path));
  auto impl = std::make_unique<TokenizerImpl>();
  auto model = BpeModel::build(std::move(bpe));
  if (!model.ok()) return model.status().with_context(merges_path);
  impl->bpe = std::move(model).value();

  const std::string tokenizer_class = json_string_or(config, "tokenizer_class", "GPT2Tokenizer");
  PreTokenizer byte_level;
  byte_level.kind = PreTokenizer::Kind::kByteLevel;
  byte_level.add_prefix_space = json_bool_or(config, "add_prefix_space", false);
  if (tokenizer_class.rfind("Qwen2Tokenizer", 0) == 0) {
    Normalizer nfc;
    nfc.kind = Normalizer::Kind::kNfc;
    impl->normalizer = nfc;
    PreTokenizer split;
    split.kind = PreTokenizer::Kind::kSplit;
    RADIXLM_ASSIGN_OR_RETURN(Regex regex, Regex::compile(kQwen2SplitPattern));
    split.pattern = std::make_shared<Regex>(std::move(regex));
    split.behavior = SplitBehavior::kIsolated;
    PreTokenizer sequence;
    sequence.children = {split, byte_level};
    impl->pre_tokenizer = sequence;
  } else {
    RADIXLM_ASSIGN_OR_RETURN(Regex regex, Regex::compile(kGpt2SplitPattern));
    byte_level.pattern = std::make_shared<Regex>(std::move(regex));
    impl->pre_tokenizer = byte_level;
  }
  Decoder decoder;
  decoder.kind = Decoder::Kind::kByteLevel;
  impl->decoder = decoder;
  // Without a tokenizer_config.json, transformers' GPT2Tokenizer makes <|endoftext|> its special
  // bos/eos/unk token.
  if (!config.contains("added_tokens_decoder")) {
    const int32_t id = find_id(impl->bpe->vocab(), "<|endoftext|>");
    if (id >= 0) impl->added_tokens.push_back({id, "<|endoftext|>", true, false, false, false, true});
  }
  return impl;
}

Expected<std::unique_ptr<TokenizerImpl>> build_from_sentencepiece(const std::string& model_path,
                                                                    const nlohmann::json& config) {
  auto impl = std::make_unique<TokenizerImpl>();
  RADIXLM_ASSIGN_OR_RETURN(impl->sentencepiece, SentencePieceModel::load(model_path));
  // Control pieces (<s>, </s>, <unk>) are special added tokens, as in transformers' LlamaTokenizer.
  for (int32_t id = 0; id < impl->sentencepiece->piece_count(); ++id) {
    if (impl->sentencepiece->is_control(id)) {
      impl->added_tokens.push_back({id, impl->sentencepiece->id_to_piece(id), true, false, false, false, false});
    }
  }
  // The decoder transformers' Llama converter writes: pieces' U+2581 back to spaces, byte pieces to bytes,
  // and the leading space SentencePiece adds removed.
  Decoder replace, fallback, fuse, strip, sequence;
  replace.kind = Decoder::Kind::kReplace;
  RADIXLM_ASSIGN_OR_RETURN(Regex pattern, Regex::literal("\xE2\x96\x81"));
  replace.pattern = std::make_shared<Regex>(std::move(pattern));
  replace.content = " ";
  fallback.kind = Decoder::Kind::kByteFallback;
  fuse.kind = Decoder::Kind::kFuse;
  strip.kind = Decoder::Kind::kStrip;
  strip.content = " ";
  strip.strip_start = 1;
  sequence.children = {replace, fallback, fuse, strip};
  impl->decoder = sequence;
  // add_bos_token (default on) / add_eos_token, as LlamaTokenizer applies them.
  PostProcessor post;
  auto token_id = [&](const nlohmann::json& value) -> int32_t {
    std::string content = value.is_string() ? value.get<std::string>()
                          : value.is_object() ? json_string_or(value, "content", "")
                                              : "";
    for (int32_t id = 0; id < impl->sentencepiece->piece_count(); ++id) {
      if (impl->sentencepiece->id_to_piece(id) == content) return id;
    }
    return -1;
  };
  if (json_bool_or(config, "add_bos_token", true) && config.contains("bos_token")) {
    const int32_t id = token_id(config["bos_token"]);
    if (id >= 0) post.prefix.push_back(id);
  }
  if (json_bool_or(config, "add_eos_token", false) && config.contains("eos_token")) {
    const int32_t id = token_id(config["eos_token"]);
    if (id >= 0) post.suffix.push_back(id);
  }
  impl->post_processor = post;
  return impl;
}

}  // namespace radixlm::tokenizer
