#include "bench/progress_bar.h"

#include <algorithm>
#include <string>

#include <fmt/format.h>

namespace radixlm::bench {
namespace {

std::string clock_text(double seconds) {
  const auto s = static_cast<int64_t>(std::max(seconds, 0.0));
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
                   : fmt::format("{:02}:{:02}", s / 60, s % 60);
}

}  // namespace

ProgressBar::ProgressBar(int64_t total, bool enabled, std::FILE* out)
    : total_(std::max<int64_t>(total, 1)), enabled_(enabled), out_(out), start_(std::chrono::steady_clock::now()) {
  last_draw_ = start_;
  draw();
}

void ProgressBar::advance() {
  ++done_;
  const auto now = std::chrono::steady_clock::now();
  if (done_ == total_ || now - last_draw_ >= std::chrono::milliseconds(100)) draw();
}

void ProgressBar::close() {
  if (closed_) return;
  draw();
  if (enabled_) std::fputc('\n', out_);
  closed_ = true;
}

void ProgressBar::draw() {
  if (!enabled_ || closed_) return;
  last_draw_ = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(last_draw_ - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  const double remaining = rate > 0 ? static_cast<double>(total_ - done_) / rate : 0.0;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(static_cast<double>(kWidth) * static_cast<double>(done_) / static_cast<double>(total_));
  std::fprintf(out_, "\r%3d%%|%s%s| %lld/%lld [%s<%s, %.2f req/s]", static_cast<int>(100 * done_ / total_),
               std::string(static_cast<size_t>(filled), '#').c_str(),
               std::string(static_cast<size_t>(kWidth - filled), ' ').c_str(), static_cast<long long>(done_),
               static_cast<long long>(total_), clock_text(elapsed).c_str(), clock_text(remaining).c_str(), rate);
  std::fflush(out_);
}

}  // namespace radixlm::bench
