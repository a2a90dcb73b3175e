#include "bench/runner.h"

#include <chrono>
#include <deque>
#include <memory>

#include <boost/asio/steady_timer.hpp>

#include "bench/progress_bar.h"

namespace radixlm::bench {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

class Run {
 public:
  Run(const std::vector<BenchPrompt>& prompts, const std::vector<double>& arrival_s, const RunOptions& options,
      std::vector<std::string> bodies, asio::ip::tcp::resolver::results_type endpoints)
      : prompts_(prompts), arrival_s_(arrival_s), options_(options), bodies_(std::move(bodies)),
        endpoints_(std::move(endpoints)), timer_(io_), progress_(static_cast<int64_t>(prompts.size()), options.show_progress) {
    outcome_.results.resize(prompts.size());
  }

  RunOutcome run() {
    start_ = Clock::now();
    last_done_ = start_;
    admit_due();
    io_.run();
    progress_.close();
    outcome_.duration_s = seconds_between(start_, last_done_);
    return std::move(outcome_);
  }

 private:
  void admit_due() {
    const double now_s = seconds_between(start_, Clock::now());
    while (next_ < prompts_.size() && arrival_s_[next_] <= now_s) admit(next_++);
    if (next_ < prompts_.size()) {
      timer_.expires_at(start_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(arrival_s_[next_])));
      timer_.async_wait([this](const boost::system::error_code&) { admit_due(); });
    }
  }

  void admit(size_t index) {
    if (options_.max_concurrency > 0 && in_flight_ >= options_.max_concurrency) {
      waiting_.push_back(index);
    } else {
      launch(index);
    }
  }

  void launch(size_t index) {
    ++in_flight_;
    outcome_.peak_in_flight = std::max(outcome_.peak_in_flight, in_flight_);
    auto accumulator = std::make_shared<ResponseAccumulator>(options_.api, options_.payload.stream, prompts_[index]);
    const Clock::time_point sent = Clock::now();
    HttpExchangeSpec spec;
    spec.target = options_.address.target(api_route(options_.api));
    spec.host_header = fmt::format("{}:{}", options_.address.host, options_.address.port);
    spec.headers = options_.headers;
    spec.headers.emplace_back("Content-Type", "application/json");
    spec.body = std::move(bodies_[index]);
    spec.timeout_s = options_.request_timeout_s;
    start_http_exchange(
        io_, endpoints_, std::move(spec),
        {[accumulator](int status) { accumulator->on_status(status); },
         [accumulator, sent](std::string_view bytes) { accumulator->on_body(bytes, seconds_between(sent, Clock::now())); },
         [this, accumulator, sent, index](std::string error) {
           const Clock::time_point now = Clock::now();
           RequestResult result = accumulator->finish(error, seconds_between(sent, now));
           result.start_s = seconds_between(start_, sent);
           outcome_.results[index] = std::move(result);
           last_done_ = now;
           --in_flight_;
           progress_.advance();
           if (!waiting_.empty()) {
             const size_t next = waiting_.front();
             waiting_.pop_front();
             launch(next);
           }
         }});
  }

  const std::vector<BenchPrompt>& prompts_;
  const std::vector<double>& arrival_s_;
  const RunOptions& options_;
  std::vector<std::string> bodies_;
  asio::io_context io_;
  asio::ip::tcp::resolver::results_type endpoints_;
  asio::steady_timer timer_;
  ProgressBar progress_;
  RunOutcome outcome_;
  Clock::time_point start_, last_done_;
  size_t next_ = 0;
  int64_t in_flight_ = 0;
  std::deque<size_t> waiting_;
};

}  // namespace

Expected<RunOutcome> run_requests(const std::vector<BenchPrompt>& prompts, const std::vector<double>& arrival_s,
                                  const RunOptions& options) {
  if (arrival_s.size() != prompts.size()) {
    return make_error(StatusCode::kInternal, "{} arrival times for {} prompts", arrival_s.size(), prompts.size());
  }
  std::vector<std::string> bodies;
  bodies.reserve(prompts.size());
  for (const BenchPrompt& prompt : prompts) {
    RADIXLM_ASSIGN_OR_RETURN(auto payload, build_payload(options.api, prompt, options.payload));
    bodies.push_back(payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  asio::io_context resolver_io;
  RADIXLM_ASSIGN_OR_RETURN(auto endpoints, resolve(resolver_io, options.address));
  Run run(prompts, arrival_s, options, std::move(bodies), std::move(endpoints));
  return run.run();
}

}  // namespace radixlm::bench
