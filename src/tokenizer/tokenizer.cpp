#include "tokenizer/tokenizer.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode_text.h"

namespace radixlm::tokenizer {
namespace {

Expected<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(StatusCode::kIoError, "{}: cannot open", path.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return make_error(StatusCode::kIoError, "{}: read failed", path.string());
  return buffer.str();
}

Expected<nlohmann::json> parse_config(std::string_view text, const std::string& what) {
  if (text.empty()) return nlohmann::json::object();
  auto config = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded() || !config.is_object()) {
    return make_error(StatusCode::kCorruptData, "{}: not a JSON object", what);
  }
  return config;
}

}  // namespace

void TokenizerImpl::encode_piece(const Piece& piece, std::vector<int32_t>& out) const {
  if (bpe) {
    bpe->encode(piece, out);
  } else if (unigram) {
    unigram->encode(piece, out);
  } else if (sentencepiece) {
    sentencepiece->encode(piece, out);
  }
}

Tokenizer::Tokenizer(std::unique_ptr<TokenizerImpl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Expected<Tokenizer> Tokenizer::from_json(std::string_view tokenizer_json, std::string_view tokenizer_config_json) {
  RADIXLM_ASSIGN_OR_RETURN(nlohmann::json config, parse_config(tokenizer_config_json, "tokenizer_config.json"));
  RADIXLM_ASSIGN_OR_RETURN(auto impl, build_from_tokenizer_json(tokenizer_json));
  RADIXLM_RETURN_IF_ERROR(finish_tokenizer(*impl, config));
  return Tokenizer(std::move(impl));
}

Expected<Tokenizer> Tokenizer::load(const std::string& directory, const LoadOptions& options) {
  namespace fs = std::filesystem;
  const fs::path dir(directory);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return make_error(StatusCode::kNotFound, "{}: not a directory", directory);
  nlohmann::json config = nlohmann::json::object();
  if (fs::exists(dir / "tokenizer_config.json", ec)) {
    RADIXLM_ASSIGN_OR_RETURN(std::string text, read_file(dir / "tokenizer_config.json"));
    auto parsed = parse_config(text, (dir / "tokenizer_config.json").string());
    if (!parsed.ok()) return parsed.status();
    config = std::move(parsed).value();
  }
  const bool auto_pick = options.source == TokenizerSource::kAuto;
  std::unique_ptr<TokenizerImpl> impl;
  if ((auto_pick && fs::exists(dir / "tokenizer.json", ec)) || options.source == TokenizerSource::kTokenizerJson) {
    RADIXLM_ASSIGN_OR_RETURN(std::string text, read_file(dir / "tokenizer.json"));
    auto built = build_from_tokenizer_json(text);
    if (!built.ok()) return built.status().with_context((dir / "tokenizer.json").string());
    impl = std::move(built).value();
  } else if ((auto_pick && fs::exists(dir / "vocab.json", ec) && fs::exists(dir / "merges.txt", ec)) ||
             options.source == TokenizerSource::kVocabMerges) {
    RADIXLM_ASSIGN_OR_RETURN(impl, build_from_vocab_merges((dir / "vocab.json").string(),
                                                           (dir / "merges.txt").string(), config));
  } else if ((auto_pick && fs::exists(dir / "tokenizer.model", ec)) ||
             options.source == TokenizerSource::kSentencePiece) {
    RADIXLM_ASSIGN_OR_RETURN(impl, build_from_sentencepiece((dir / "tokenizer.model").string(), config));
  } else {
    return make_error(StatusCode::kNotFound,
                      "{}: no tokenizer.json, vocab.json + merges.txt or tokenizer.model (a tiktoken "
                      "original/tokenizer.model needs converting to tokenizer.json first)",
                      directory);
  }
  RADIXLM_RETURN_IF_ERROR(finish_tokenizer(*impl, config).with_context(directory));
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const TokenizerImpl& t = *impl_;
  std::vector<Piece> pieces(1);
  pieces[0].text = is_valid_utf8(text) ? std::string(text) : to_valid_utf8(text);
  pieces[0].at_start = true;
  // HF's order: added tokens matched in the raw text, normalize what is left, match the normalized added
  // tokens, pre-tokenize, then the model on each word.
  // Spans that end up empty vanish at each step, as in HF's PreTokenizedString::split.
  auto drop_empty = [&] {
    std::erase_if(pieces, [](const Piece& p) { return p.added_id < 0 && p.text.empty(); });
  };
  split_added_tokens(t.raw_matcher, t.added_tokens, pieces);
  drop_empty();
  if (t.normalizer) {
    for (auto& piece : pieces) {
      if (piece.added_id < 0) apply_normalizer(*t.normalizer, piece.text);
    }
    drop_empty();
  }
  split_added_tokens(t.normalized_matcher, t.added_tokens, pieces);
  if (t.pre_tokenizer) apply_pre_tokenizer(*t.pre_tokenizer, pieces);
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special_tokens && t.post_processor) ids = t.post_processor->prefix;
  for (const auto& piece : pieces) {
    if (piece.added_id >= 0) {
      ids.push_back(piece.added_id);
    } else {
      t.encode_piece(piece, ids);
    }
  }
  if (add_special_tokens && t.post_processor) {
    ids.insert(ids.end(), t.post_processor->suffix.begin(), t.post_processor->suffix.end());
  }
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens,
                              bool /*spaces_between_special_tokens*/) const {
  return impl_->decode_ids(ids, skip_special_tokens, TokenizerImpl::DecodeMode::kFull);
}

std::string TokenizerImpl::decode_ids(std::span<const int32_t> ids, bool skip_special_tokens,
                                      DecodeMode mode) const {
  const TokenizerImpl& t = *this;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= t.has_token.size() || !t.has_token[static_cast<size_t>(id)]) continue;
    if (skip_special_tokens && t.special[static_cast<size_t>(id)]) continue;
    tokens.push_back(t.id_to_token[static_cast<size_t>(id)]);
  }
  const std::optional<Decoder>* chosen = &t.decoder;
  if (mode == DecodeMode::kStreamFirst) chosen = &t.stream_first_decoder;
  if (mode == DecodeMode::kStreamContinuation) chosen = &t.stream_continuation_decoder;
  if (mode == DecodeMode::kFinalContinuation) chosen = &t.final_continuation_decoder;
  const bool continuation = mode == DecodeMode::kStreamContinuation || mode == DecodeMode::kFinalContinuation;
  return apply_decoder(*chosen ? &**chosen : nullptr, tokens, continuation);
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  const int32_t id = find_id(impl_->token_to_id, token);
  if (id < 0) return std::nullopt;
  return id;
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= impl_->has_token.size() || !impl_->has_token[static_cast<size_t>(id)]) {
    return std::nullopt;
  }
  return impl_->id_to_token[static_cast<size_t>(id)];
}

size_t Tokenizer::vocab_size() const { return impl_->distinct_ids; }

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < impl_->special.size() && impl_->special[static_cast<size_t>(id)];
}

const std::string& Tokenizer::bos_token() const { return impl_->bos_token; }
const std::string& Tokenizer::eos_token() const { return impl_->eos_token; }

}  // namespace radixlm::tokenizer
