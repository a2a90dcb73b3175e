#include "tokenizer/bpe_model.h"

#include <algorithm>
#include <queue>

#include <fmt/format.h>

#include "tokenizer/byte_level.h"
#include "tokenizer/unicode_text.h"

namespace radixlm::tokenizer {

Expected<std::unique_ptr<BpeModel>> BpeModel::build(BpeConfig config) {
  auto model = std::unique_ptr<BpeModel>(new BpeModel());
  model->vocab_ = std::move(config.vocab);
  model->continuing_subword_prefix_ = std::move(config.continuing_subword_prefix);
  model->end_of_word_suffix_ = std::move(config.end_of_word_suffix);
  model->fuse_unk_ = config.fuse_unk;
  model->byte_fallback_ = config.byte_fallback;
  model->ignore_merges_ = config.ignore_merges;
  if (config.unk_token) {
    model->unk_id_ = find_id(model->vocab_, *config.unk_token);
    if (model->unk_id_ < 0) {
      return make_error(StatusCode::kCorruptData, "unk_token '{}' is not in the vocabulary", *config.unk_token);
    }
  }
  model->merges_.reserve(config.merges.size());
  const size_t prefix_len = model->continuing_subword_prefix_.size();
  for (size_t rank = 0; rank < config.merges.size(); ++rank) {
    const auto& [left, right] = config.merges[rank];
    const int32_t left_id = find_id(model->vocab_, left);
    const int32_t right_id = find_id(model->vocab_, right);
    if (left_id < 0 || right_id < 0) {
      return make_error(StatusCode::kCorruptData, "merge {} ('{} {}') uses a token that is not in the vocabulary",
                        rank, left, right);
    }
    if (right.size() < prefix_len) {
      return make_error(StatusCode::kCorruptData, "merge {} ('{} {}') is shorter than the subword prefix", rank,
                        left, right);
    }
    const std::string merged = left + right.substr(prefix_len);
    const int32_t merged_id = find_id(model->vocab_, merged);
    if (merged_id < 0) {
      return make_error(StatusCode::kCorruptData, "merge {} ('{} {}') makes '{}', which is not in the vocabulary",
                        rank, left, right, merged);
    }
    model->merges_.insert(left_id, right_id, {static_cast<uint32_t>(rank), merged_id});
  }
  for (int b = 0; b < 256; ++b) {
    model->fallback_byte_ids_[b] = find_id(model->vocab_, fmt::format("<0x{:02X}>", b));
  }
  model->raw_byte_path_ = model->continuing_subword_prefix_.empty() && model->end_of_word_suffix_.empty();
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    append_utf8(ch, byte_to_char(static_cast<unsigned char>(b)));
    model->byte_ids_[b] = find_id(model->vocab_, ch);
    if (model->byte_ids_[b] < 0) model->raw_byte_path_ = false;
  }
  if (model->raw_byte_path_ && model->ignore_merges_) {
    for (const auto& [token, id] : model->vocab_) {
      if (auto bytes = byte_level_to_bytes(token)) model->raw_vocab_.emplace(std::move(*bytes), id);
    }
  }
  return model;
}

void BpeModel::merge_all(std::vector<int32_t>& symbols) const {
  const size_t n = symbols.size();
  if (n < 2) return;
  if (n <= 48) {
    // Short words (nearly all of them): rescanning a small array beats keeping a heap.
    size_t len = n;
    while (len > 1) {
      uint32_t best_rank = UINT32_MAX;
      size_t best = 0;
      int32_t best_id = -1;
      for (size_t i = 0; i + 1 < len; ++i) {
        const PairMap::Merge* m = merges_.find(symbols[i], symbols[i + 1]);
        if (m != nullptr && m->rank < best_rank) {
          best_rank = m->rank;
          best = i;
          best_id = m->new_id;
        }
      }
      if (best_id < 0) break;
      symbols[best] = best_id;
      std::copy(symbols.begin() + static_cast<ptrdiff_t>(best) + 2, symbols.begin() + static_cast<ptrdiff_t>(len),
                symbols.begin() + static_cast<ptrdiff_t>(best) + 1);
      --len;
    }
    symbols.resize(len);
    return;
  }
  // Long words: a linked list plus a min-heap of candidate merges (rank, then position), with entries checked
  // for staleness when they come out, as HF's Word::merge_all does. O(n log n) on hostile input.
  struct Candidate {
    uint32_t rank;
    uint32_t pos;
    int32_t new_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::vector<int32_t> prev(n), next(n);
  std::vector<bool> alive(n, true);
  for (size_t i = 0; i < n; ++i) {
    prev[i] = static_cast<int32_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
  }
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  for (size_t i = 0; i + 1 < n; ++i) {
    if (const auto* m = merges_.find(symbols[i], symbols[i + 1])) {
      queue.push({m->rank, static_cast<uint32_t>(i), m->new_id});
    }
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    if (!alive[top.pos] || next[top.pos] < 0) continue;
    const auto right = static_cast<size_t>(next[top.pos]);
    const auto* current = merges_.find(symbols[top.pos], symbols[right]);
    if (current == nullptr || current->new_id != top.new_id) continue;  // stale entry
    symbols[top.pos] = top.new_id;
    alive[right] = false;
    next[top.pos] = next[right];
    if (next[right] >= 0) prev[static_cast<size_t>(next[right])] = static_cast<int32_t>(top.pos);
    if (prev[top.pos] >= 0) {
      const auto p = static_cast<size_t>(prev[top.pos]);
      if (const auto* m = merges_.find(symbols[p], symbols[top.pos])) {
        queue.push({m->rank, static_cast<uint32_t>(p), m->new_id});
      }
    }
    if (next[top.pos] >= 0) {
      if (const auto* m = merges_.find(symbols[top.pos], symbols[static_cast<size_t>(next[top.pos])])) {
        queue.push({m->rank, top.pos, m->new_id});
      }
    }
  }
  size_t out = 0;
  for (size_t i = 0; i < n; ++i) {
    if (alive[i]) symbols[out++] = symbols[i];
  }
  symbols.resize(out);
}

void BpeModel::encode_raw_bytes(std::string_view bytes, std::vector<int32_t>& out) const {
  if (ignore_merges_) {
    const int32_t whole = find_id(raw_vocab_, bytes);
    if (whole >= 0) {
      out.push_back(whole);
      return;
    }
  }
  if (raw_cache_.lookup(bytes, out)) return;
  thread_local std::vector<int32_t> symbols;
  symbols.resize(bytes.size());
  for (size_t i = 0; i < bytes.size(); ++i) symbols[i] = byte_ids_[static_cast<unsigned char>(bytes[i])];
  merge_all(symbols);
  raw_cache_.store(bytes, symbols.data(), symbols.size());
  out.insert(out.end(), symbols.begin(), symbols.end());
}

void BpeModel::encode_text(std::string_view word, std::vector<int32_t>& out) const {
  if (ignore_merges_) {
    const int32_t whole = find_id(vocab_, word);
    if (whole >= 0) {
      out.push_back(whole);
      return;
    }
  }
  if (text_cache_.lookup(word, out)) return;
  // The word's characters as ids (HF's merge_word): decorated with the subword prefix / word suffix, falling
  // back to byte tokens or to the (optionally fused) unknown token.
  std::vector<int32_t> symbols;
  symbols.reserve(word.size());
  int32_t pending_unk = -1;
  std::string decorated;
  size_t pos = 0;
  while (pos < word.size()) {
    const size_t start = pos;
    next_code_point(word, pos);
    std::string_view ch = word.substr(start, pos - start);
    const bool is_first = start == 0, is_last = pos == word.size();
    std::string_view key = ch;
    if ((!is_first && !continuing_subword_prefix_.empty()) || (is_last && !end_of_word_suffix_.empty())) {
      decorated.clear();
      if (!is_first) decorated += continuing_subword_prefix_;
      decorated += ch;
      if (is_last) decorated += end_of_word_suffix_;
      key = decorated;
    }
    const int32_t id = find_id(vocab_, key);
    if (id >= 0) {
      if (pending_unk >= 0) {
        symbols.push_back(pending_unk);
        pending_unk = -1;
      }
      symbols.push_back(id);
      continue;
    }
    if (byte_fallback_) {
      bool all_bytes = true;
      for (unsigned char b : key) all_bytes = all_bytes && fallback_byte_ids_[b] >= 0;
      if (all_bytes) {
        for (unsigned char b : key) symbols.push_back(fallback_byte_ids_[b]);
        continue;
      }
    }
    if (unk_id_ >= 0) {
      if (pending_unk >= 0 && !fuse_unk_) symbols.push_back(pending_unk);
      pending_unk = unk_id_;
    }
  }
  if (pending_unk >= 0) symbols.push_back(pending_unk);
  merge_all(symbols);
  text_cache_.store(word, symbols.data(), symbols.size());
  out.insert(out.end(), symbols.begin(), symbols.end());
}

void BpeModel::encode(const Piece& piece, std::vector<int32_t>& out) const {
  if (piece.text.empty()) return;
  if (piece.byte_level) {
    if (raw_byte_path_) {
      encode_raw_bytes(piece.text, out);
    } else {
      encode_text(bytes_to_byte_level(piece.text), out);
    }
    return;
  }
  encode_text(piece.text, out);
}

}  // namespace radixlm::tokenizer
