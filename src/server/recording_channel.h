#pragma once
// A ResponseChannel that records what a handler sends, for route unit tests (no sockets). It follows the
// socket channel's rules: the first of respond()/begin_stream() wins, write() only counts while streaming,
// everything after end_stream() or after disconnect() is ignored; each on_disconnect callback fires at most
// once: at disconnect() if the response was not complete, or at once when registered after it.
//
//   auto channel = std::make_shared<RecordingChannel>();
//   handler(request, channel);
//   ASSERT_TRUE(channel->wait_finished(std::chrono::seconds(5)));   // handlers may answer from other threads
//   EXPECT_EQ(channel->status(), 200);  channel->body();  channel->writes();
//   channel->disconnect();   // the client goes away: callbacks run (on this thread)
//
// post() runs the task inline by default (on the caller's thread, under no lock), or hands it to the runner
// given to the constructor (e.g. one that enqueues onto a test's single "I/O" thread).

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "server/http_server.h"

namespace radixlm::server {

class RecordingChannel final : public ResponseChannel {
 public:
  using Runner = std::function<void(std::function<void()>)>;
  explicit RecordingChannel(Runner runner = nullptr) : runner_(std::move(runner)) {}

  void respond(HttpResponse response) override {
    std::lock_guard lock(mutex_);
    if (started_ || disconnected_) return;
    started_ = finished_ = true;
    status_ = response.status;
    content_type_ = std::move(response.content_type);
    headers_ = std::move(response.headers);
    body_ = std::move(response.body);
    changed_.notify_all();
  }
  void begin_stream(int status, std::string content_type,
                    std::vector<std::pair<std::string, std::string>> headers = {}) override {
    std::lock_guard lock(mutex_);
    if (started_ || disconnected_) return;
    started_ = streaming_ = true;
    status_ = status;
    content_type_ = std::move(content_type);
    headers_ = std::move(headers);
    changed_.notify_all();
  }
  void write(std::string data) override {
    std::lock_guard lock(mutex_);
    if (!streaming_ || finished_ || disconnected_) return;
    body_ += data;
    writes_.push_back(std::move(data));
    changed_.notify_all();
  }
  void end_stream() override {
    std::lock_guard lock(mutex_);
    if (!streaming_ || finished_ || disconnected_) return;
    finished_ = true;
    changed_.notify_all();
  }
  void on_disconnect(std::function<void()> callback) override {
    std::unique_lock lock(mutex_);
    if (finished_) return;
    if (!disconnected_) {
      callbacks_.push_back(std::move(callback));
      return;
    }
    lock.unlock();
    callback();
  }
  bool disconnected() const override {
    std::lock_guard lock(mutex_);
    return disconnected_;
  }
  void post(std::function<void()> task) override {
    if (runner_) {
      runner_(std::move(task));
    } else {
      task();
    }
  }

  // The test's side.
  void disconnect() {
    std::vector<std::function<void()>> callbacks;
    {
      std::lock_guard lock(mutex_);
      if (disconnected_) return;
      disconnected_ = true;
      if (!finished_) callbacks = std::move(callbacks_);
      changed_.notify_all();
    }
    for (auto& callback : callbacks) callback();
  }
  // True once the response is complete (respond() or end_stream()); false on timeout.
  template <typename Duration>
  bool wait_finished(Duration timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return finished_; });
  }
  bool finished() const {
    std::lock_guard lock(mutex_);
    return finished_;
  }
  bool streaming() const {
    std::lock_guard lock(mutex_);
    return streaming_;
  }
  int status() const {
    std::lock_guard lock(mutex_);
    return status_;
  }
  std::string content_type() const {
    std::lock_guard lock(mutex_);
    return content_type_;
  }
  std::vector<std::pair<std::string, std::string>> headers() const {
    std::lock_guard lock(mutex_);
    return headers_;
  }
  // The respond() body, or every write() joined.
  std::string body() const {
    std::lock_guard lock(mutex_);
    return body_;
  }
  std::vector<std::string> writes() const {
    std::lock_guard lock(mutex_);
    return writes_;
  }

 private:
  Runner runner_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool started_ = false;
  bool streaming_ = false;
  bool finished_ = false;
  bool disconnected_ = false;
  int status_ = 0;
  std::string content_type_;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::string body_;
  std::vector<std::string> writes_;
  std::vector<std::function<void()>> callbacks_;
};

}  // namespace radixlm::server
