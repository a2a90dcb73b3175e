#include "engine/request_stream.h"

namespace radixlm {

void RequestStream::push(StreamChunk chunk) {
  std::function<void()> listener;
  {
    std::lock_guard lock(mutex_);
    if (final_pushed_) return;
    final_pushed_ = chunk.finished;
    chunks_.push_back(std::move(chunk));
    listener = listener_;
  }
  ready_.notify_all();
  if (listener) listener();
}

void RequestStream::set_listener(std::function<void()> listener) {
  bool waiting = false;
  {
    std::lock_guard lock(mutex_);
    listener_ = listener;
    waiting = !chunks_.empty();
  }
  if (waiting && listener) listener();
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
