#pragma once
// A SentencePiece tokenizer.model, run through Debian's libsentencepiece: the fallback when a model directory
// has no tokenizer.json. Each span between added tokens is encoded on its own (transformers' legacy slow
// LlamaTokenizer behaviour).

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "tokenizer/piece.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace radixlm::tokenizer {

class SentencePieceModel {
 public:
  static Expected<std::unique_ptr<SentencePieceModel>> load(const std::string& path);
  ~SentencePieceModel();

  void encode(const Piece& piece, std::vector<int32_t>& out) const;
  int32_t piece_count() const;
  std::string id_to_piece(int32_t id) const;
  bool is_control(int32_t id) const;
  bool is_byte(int32_t id) const;

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

}  // namespace radixlm::tokenizer
