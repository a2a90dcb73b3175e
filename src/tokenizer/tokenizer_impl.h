#pragma once
// The parts a loaded tokenizer is made of. Internal to src/tokenizer: other modules use tokenizer.h.

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/sentencepiece_model.h"
#include "tokenizer/unigram_model.h"

namespace radixlm::tokenizer {

// Ids are dense enough in every real vocabulary; this bounds what a hostile file can make us allocate.
inline constexpr int64_t kMaxTokenId = (int64_t{1} << 24) - 1;

struct TokenizerImpl {
  std::optional<Normalizer> normalizer;
  std::optional<PreTokenizer> pre_tokenizer;
  std::unique_ptr<BpeModel> bpe;
  std::unique_ptr<UnigramModel> unigram;
  std::unique_ptr<SentencePieceModel> sentencepiece;
  std::optional<Decoder> decoder;
  std::optional<PostProcessor> post_processor;

  std::vector<AddedToken> added_tokens;
  TokenMatcher raw_matcher;         // added tokens with normalized=false, matched in the input
  TokenMatcher normalized_matcher;  // normalized=true, matched (by their normalized content) after normalizing

  // id -> token string (added tokens take precedence over the model's, as in HF); has_token marks real ids.
  std::vector<std::string> id_to_token;
  std::vector<uint8_t> has_token;
  std::vector<uint8_t> special;       // by id: the token's content is a special added token
  std::vector<uint8_t> byte_fallback;  // by id: the token is "<0xAB>" and the decoder folds such runs
  VocabMap token_to_id;               // added tokens first, then the model's vocabulary
  size_t distinct_ids = 0;
  bool decoder_has_byte_fallback = false;
  bool decoder_has_byte_level = false;  // bytes of adjacent tokens combine into characters

  std::string bos_token, eos_token;

  // Streaming decode (see IncrementalDetokenizer and decoder.h's streaming_variant).
  enum class DecodeMode { kFull, kStreamFirst, kStreamContinuation, kFinalContinuation };
  std::optional<Decoder> stream_first_decoder, stream_continuation_decoder, final_continuation_decoder;
  std::string stream_hold_suffix;  // text ending in this may still lose it to a final Strip

  void encode_piece(const Piece& piece, std::vector<int32_t>& out) const;
  std::string decode_ids(std::span<const int32_t> ids, bool skip_special_tokens, DecodeMode mode) const;
};

// Builders used by Tokenizer::load (tokenizer_json_loader.cpp, slow_files_loader.cpp).
Expected<std::unique_ptr<TokenizerImpl>> build_from_tokenizer_json(std::string_view json_text);
Expected<std::unique_ptr<TokenizerImpl>> build_from_vocab_merges(const std::string& vocab_path,
                                                                   const std::string& merges_path,
                                                                   const nlohmann::json& config);
Expected<std::unique_ptr<TokenizerImpl>> build_from_sentencepiece(const std::string& model_path,
                                                                    const nlohmann::json& config);
// Adds tokenizer_config.json's added_tokens_decoder entries that are missing, reads bos/eos, then builds the
// lookup tables. Every builder ends with this.
Status finish_tokenizer(TokenizerImpl& impl, const nlohmann::json& config);

}  // namespace radixlm::tokenizer
