#include "engine/request_stream.h"

namespace radixlm {

void RequestStream::push(StreamChunk chunk) {
  {
    std::lock_guard lock(mutex_);
    if (final_pushed_) return;
    final_pushed_ = chunk.finished;
    chunks_.push_back(std::move(chunk));
  }
  ready_.notify_all();
}

std::optional<StreamChunk> RequestStream::next() {
  std::unique_lock lock(mutex_);
  ready_.wait(lock, [this] { return !chunks_.empty() || final_taken_; });
  if (chunks_.empty()) return std::nullopt;
  StreamChunk chunk = std::move(chunks_.front());
  chunks_.pop_front();
  final_taken_ = chunk.finished;
  return chunk;
}

std::optional<StreamChunk> RequestStream::try_next() {
  std::lock_guard lock(mutex_);
  if (chunks_.empty()) return std::nullopt;
  StreamChunk chunk = std::move(chunks_.front());
  chunks_.pop_front();
  final_taken_ = chunk.finished;
  return chunk;
}

bool RequestStream::finished() const {
  std::lock_guard lock(mutex_);
  return final_pushed_;
}

}  // namespace radixlm
