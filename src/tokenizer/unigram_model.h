#pragma once
// The Unigram model: the segmentation of a word that maximizes the sum of piece scores (Viterbi), with
// unknown characters scored below every piece and fused, as HF tokenizers' Unigram::encode_optimized does.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "tokenizer/piece.h"
#include "tokenizer/vocab_map.h"

namespace radixlm::tokenizer {

struct UnigramConfig {
  std::vector<std::pair<std::string, double>> pieces;  // id = index
  int32_t unk_id = -1;
  bool byte_fallback = false;
};

class UnigramModel {
 public:
  static Expected<std::unique_ptr<UnigramModel>> build(UnigramConfig config);
  void encode(const Piece& piece, std::vector<int32_t>& out) const;
  const VocabMap& vocab() const { return vocab_; }
  const std::vector<std::pair<std::string, double>>& pieces() const { return pieces_; }

 private:
  // A byte trie over the pieces: node -> children by byte, and the piece id ending at a node.
  struct TrieNode {
    std::vector<std::pair<unsigned char, int32_t>> children;
    int32_t piece_id = -1;
  };
  int32_t child(int32_t node, unsigned char byte) const;

  std::vector<std::pair<std::string, double>> pieces_;
  VocabMap vocab_;
  std::vector<TrieNode> trie_;
  int32_t unk_id_ = -1;
  bool byte_fallback_ = false;
  double min_score_ = 0;
};

}  // namespace radixlm::tokenizer
