#pragma once
// Runs posted tasks in order on one thread of its own: the executor that route tests give a
// RecordingChannel (recording_channel.h), as the server gives its channels a connection's strand. The
// destructor runs what is still queued, then joins.

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace radixlm::server {

class TestStrand {
 public:
  TestStrand() : thread_([this] { run(); }) {}
  ~TestStrand() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  TestStrand(const TestStrand&) = delete;
  TestStrand& operator=(const TestStrand&) = delete;

  // Whether the caller is the strand's thread (a task running on it).
  bool runs_here() const { return std::this_thread::get_id() == thread_.get_id(); }

  void post(std::function<void()> task) {
    {
      std::lock_guard lock(mutex_);
      tasks_.push_back(std::move(task));
    }
    cv_.notify_all();
  }

 private:
  void run() {
    std::unique_lock lock(mutex_);
    while (true) {
      cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      auto task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::thread thread_;  // last: started once the members it uses exist
};

}  // namespace radixlm::server
