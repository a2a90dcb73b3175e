#pragma once
// A tqdm-style progress line on stderr, redrawn at most ten times a second:
//    45%|#########           | 45/100 [00:03<00:04, 12.30 req/s]

#include <chrono>
#include <cstdint>
#include <cstdio>

namespace radixlm::bench {

class ProgressBar {
 public:
  ProgressBar(int64_t total, bool enabled, std::FILE* out = stderr);
  void advance();
  void close();  // draws the final state and ends the line

 private:
  void draw();

  int64_t total_;
  int64_t done_ = 0;
  bool enabled_;
  bool closed_ = false;
  std::FILE* out_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace radixlm::bench
