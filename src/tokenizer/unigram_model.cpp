#include "tokenizer/unigram_model.h"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "tokenizer/byte_level.h"
#include "tokenizer/unicode_text.h"

namespace radixlm::tokenizer {
namespace {
// How far below the lowest piece score an unknown character is scored (sentencepiece's kUnkPenalty).
constexpr double kUnkPenalty = 10.0;
}  // namespace

Expected<std::unique_ptr<UnigramModel>> UnigramModel::build(UnigramConfig config) {
  auto model = std::unique_ptr<UnigramModel>(new UnigramModel());
  model->pieces_ = std::move(config.pieces);
  model->byte_fallback_ = config.byte_fallback;
  if (config.unk_id >= 0 && static_cast<size_t>(config.unk_id) >= model->pieces_.size()) {
    return make_error(StatusCode::kCorruptData, "Unigram unk_id {} is outside the vocabulary ({} pieces)",
                      config.unk_id, model->pieces_.size());
  }
  model->unk_id_ = config.unk_id;
  model->min_score_ = std::numeric_limits<double>::max();
  model->trie_.emplace_back();
  for (size_t id = 0; id < model->pieces_.size(); ++id) {
    const auto& [text, score] = model->pieces_[id];
    model->vocab_.emplace(text, static_cast<int32_t>(id));
    model->min_score_ = std::min(model->min_score_, score);
    int32_t node = 0;
    for (unsigned char b : text) {
      int32_t next = model->child(node, b);
      if (next < 0) {
        next = static_cast<int32_t>(model->trie_.size());
        model->trie_[static_cast<size_t>(node)].children.emplace_back(b, next);
        model->trie_.emplace_back();
      }
      node = next;
    }
    if (!text.empty()) model->trie_[static_cast<size_t>(node)].piece_id = static_cast<int32_t>(id);
  }
  if (model->pieces_.empty()) model->min_score_ = 0;
  return model;
}

int32_t UnigramModel::child(int32_t node, unsigned char byte) const {
  for (const auto& [b, next] : trie_[static_cast<size_t>(node)].children) {
    if (b == byte) return next;
  }
  return -1;
}

void UnigramModel::encode(const Piece& piece, std::vector<int32_t>& out) const {
  const std::string text = piece.byte_level ? bytes_to_byte_level(piece.text) : piece.text;
  const size_t size = text.size();
  if (size == 0) return;
  struct Node {
    int32_t id = -1;
    double score = 0;
    int64_t starts_at = -1;
  };
  std::vector<Node> best(size + 1);
  const double unk_score = min_score_ - kUnkPenalty;
  size_t start = 0;
  while (start < size) {
    const double base = best[start].score;
    const size_t char_len = utf8_sequence_length(static_cast<unsigned char>(text[start]));
    bool has_single_char_piece = false;
    int32_t node = 0;
    for (size_t end = start; end < size; ++end) {
      node = child(node, static_cast<unsigned char>(text[end]));
      if (node < 0) break;
      const int32_t id = trie_[static_cast<size_t>(node)].piece_id;
      if (id < 0) continue;
      // Pieces must end on a character boundary to be a valid UTF-8 token.
      if (end + 1 < size && (static_cast<unsigned char>(text[end + 1]) & 0xC0) == 0x80) continue;
      Node& target = best[end + 1];
      const double candidate = pieces_[static_cast<size_t>(id)].second + base;
      if (target.starts_at < 0 || candidate > target.score) {
        target = {id, candidate, static_cast<int64_t>(start)};
      }
      if (end + 1 - start == char_len) has_single_char_piece = true;
    }
    if (!has_single_char_piece) {
      Node& target = best[start + char_len];
      const double candidate = unk_score + base;
      if (target.starts_at < 0 || candidate > target.score) target = {unk_id_, candidate, static_cast<int64_t>(start)};
    }
    start += char_len;
  }
  // Walk back from the end; runs of unknown pieces fuse into one.
  std::vector<std::pair<size_t, size_t>> spans;  // [start, end) of each resulting piece, back to front
  bool last_was_unk = false;
  for (size_t end = size; end > 0;) {
    const Node& node = best[end];
    const auto node_start = static_cast<size_t>(node.starts_at);
    const bool is_unk = unk_id_ >= 0 && node.id == unk_id_;
    if (is_unk && last_was_unk) {
      spans.back().first = node_start;
    } else {
      spans.emplace_back(node_start, end);
    }
    last_was_unk = is_unk;
    end = node_start;
  }
  for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
    std::string_view token = std::string_view(text).substr(it->first, it->second - it->first);
    const int32_t id = find_id(vocab_, token);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    if (byte_fallback_) {
      std::vector<int32_t> bytes;
      for (unsigned char b : token) {
        const int32_t byte_id = find_id(vocab_, fmt::format("<0x{:02X}>", b));
        if (byte_id < 0) break;
        bytes.push_back(byte_id);
      }
      if (bytes.size() == token.size()) {
        out.insert(out.end(), bytes.begin(), bytes.end());
        continue;
      }
    }
    if (unk_id_ >= 0) out.push_back(unk_id_);
  }
}

}  // namespace radixlm::tokenizer
