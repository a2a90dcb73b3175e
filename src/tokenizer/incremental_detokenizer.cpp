#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode_text.h"

namespace radixlm::tokenizer {
namespace {

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// Ids before the window are dropped once this many pile up, so a long stream keeps bounded memory.
constexpr size_t kCompactAfter = 4096;

}  // namespace

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, DetokenizeOptions options)
    : tokenizer_(&tokenizer), options_(options) {}

std::string IncrementalDetokenizer::decode_window(size_t begin, size_t end, bool final) const {
  using Mode = TokenizerImpl::DecodeMode;
  const bool at_stream_start = begin + dropped_ == 0;
  Mode mode = at_stream_start ? (final ? Mode::kFull : Mode::kStreamFirst)
                              : (final ? Mode::kFinalContinuation : Mode::kStreamContinuation);
  return tokenizer_->impl().decode_ids(std::span<const int32_t>(ids_).subspan(begin, end - begin),
                                       options_.skip_special_tokens, mode);
}

bool IncrementalDetokenizer::stable_to_emit() const {
  // A run of byte-fallback tokens decodes as one unit: valid UTF-8, or one U+FFFD per byte if any byte is
  // bad. Until a non-byte token ends the run, its text is not final.
  const TokenizerImpl& t = tokenizer_->impl();
  const auto last = static_cast<size_t>(ids_.back());
  return !(last < t.byte_fallback.size() && t.byte_fallback[last]);
}

bool IncrementalDetokenizer::ends_inside_character() const {
  const TokenizerImpl& t = tokenizer_->impl();
  if (!t.decoder_has_byte_level) return false;  // other decoders only join whole strings
  // The last few bytes of the tokens not yet emitted (emission always ends on a character boundary).
  std::string tail;
  for (size_t i = ids_.size(); i > read_offset_ && tail.size() < 4; --i) {
    const std::string& token = t.id_to_token[static_cast<size_t>(ids_[i - 1])];
    auto raw = byte_level_to_bytes(token);
    tail.insert(0, raw ? *raw : token);
  }
  return incomplete_utf8_tail(tail) > 0;
}

std::string IncrementalDetokenizer::feed(int32_t id) {
  const TokenizerImpl& t = tokenizer_->impl();
  // Ids decode() would drop change nothing; keeping them out of the window keeps the window meaningful.
  if (id < 0 || static_cast<size_t>(id) >= t.has_token.size() || !t.has_token[static_cast<size_t>(id)]) return {};
  if (options_.skip_special_tokens && t.special[static_cast<size_t>(id)]) return {};
  ids_.push_back(id);
  if (!stable_to_emit() || ends_inside_character()) return {};
  const std::string prefix_text = decode_window(prefix_offset_, read_offset_, false);
  std::string new_text = decode_window(prefix_offset_, ids_.size(), false);
  // Emit only when the window grew, does not end in a character a final Strip could remove, and still starts
  // with what was emitted.
  const std::string& hold = t.stream_hold_suffix;
  if (new_text.size() <= prefix_text.size() ||
      (!hold.empty() && ends_with(new_text, hold)) || new_text.compare(0, prefix_text.size(), prefix_text) != 0) {
    return {};
  }
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  if (prefix_offset_ >= kCompactAfter) {
    ids_.erase(ids_.begin(), ids_.begin() + static_cast<ptrdiff_t>(prefix_offset_));
    dropped_ += prefix_offset_;
    read_offset_ -= prefix_offset_;
    prefix_offset_ = 0;
  }
  return new_text.substr(prefix_text.size());
}

std::string IncrementalDetokenizer::finish() {
  if (read_offset_ == ids_.size()) return {};
  const std::string prefix_text = decode_window(prefix_offset_, read_offset_, false);
  std::string new_text = decode_window(prefix_offset_, ids_.size(), true);
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  if (new_text.size() <= prefix_text.size()) return {};
  return new_text.substr(prefix_text.size());
}

}  // namespace radixlm::tokenizer
