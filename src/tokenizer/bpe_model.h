#pragma once
// The BPE model: a word becomes its characters' ids, then the lowest-ranked adjacent pair is merged until no
// pair has a merge (ties: leftmost first), exactly as HF tokenizers' BPE::merge_word / Word::merge_all.

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "tokenizer/piece.h"
#include "tokenizer/vocab_map.h"
#include "tokenizer/word_cache.h"

namespace radixlm::tokenizer {

struct BpeConfig {
  VocabMap vocab;
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order
  std::optional<std::string> unk_token;
  std::string continuing_subword_prefix;
  std::string end_of_word_suffix;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

class BpeModel {
 public:
  static Expected<std::unique_ptr<BpeModel>> build(BpeConfig config);

  // Appends the ids of one pre-tokenized word.
  void encode(const Piece& piece, std::vector<int32_t>& out) const;

  const VocabMap& vocab() const { return vocab_; }
  bool byte_fallback() const { return byte_fallback_; }

 private:
  void encode_text(std::string_view word, std::vector<int32_t>& out) const;
  void encode_raw_bytes(std::string_view bytes, std::vector<int32_t>& out) const;
  void merge_all(std::vector<int32_t>& symbols) const;

  VocabMap vocab_;
  PairMap merges_;
  int32_t unk_id_ = -1;
  std::string continuing_subword_prefix_, end_of_word_suffix_;
  bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
  // For words already in GPT-2's byte-level alphabet: each byte's id, and the vocabulary keyed by raw bytes.
  // Valid when every byte's character is in the vocabulary and there is no prefix/suffix decoration.
  bool raw_byte_path_ = false;
  std::array<int32_t, 256> byte_ids_{};
  VocabMap raw_vocab_;
  std::array<int32_t, 256> fallback_byte_ids_{};  // "<0xAB>" tokens, for byte_fallback
  WordCache text_cache_, raw_cache_;
};

}  // namespace radixlm::tokenizer
