#include "tokenizer/sentencepiece_model.h"

#include <sentencepiece_processor.h>

namespace radixlm::tokenizer {

Expected<std::unique_ptr<SentencePieceModel>> SentencePieceModel::load(const std::string& path) {
  auto model = std::unique_ptr<SentencePieceModel>(new SentencePieceModel());
  model->processor_ = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = model->processor_->Load(path);
  if (!status.ok()) {
    return make_error(StatusCode::kCorruptData, "{}: not a SentencePiece model: {}", path, status.ToString());
  }
  return model;
}

SentencePieceModel::~SentencePieceModel() = default;

void SentencePieceModel::encode(const Piece& piece, std::vector<int32_t>& out) const {
  std::vector<int> ids;
  if (!processor_->Encode(piece.text, &ids).ok()) return;
  out.insert(out.end(), ids.begin(), ids.end());
}

int32_t SentencePieceModel::piece_count() const { return processor_->GetPieceSize(); }
std::string SentencePieceModel::id_to_piece(int32_t id) const { return processor_->IdToPiece(id); }
bool SentencePieceModel::is_control(int32_t id) const {
  return processor_->IsControl(id) || processor_->IsUnknown(id);
}
bool SentencePieceModel::is_byte(int32_t id) const { return processor_->IsByte(id); }

}  // namespace radixlm::tokenizer
