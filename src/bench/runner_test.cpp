// The client against a scripted HTTP peer on a local socket: chunked SSE split at awkward places and sent
// with pauses, errors, a connection cut mid-stream, and the concurrency limit as the peer observes it.

#include "bench/runner.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <gtest/gtest.h>

#include "bench/http_client.h"

namespace radixlm::bench {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

enum class Script { kStream, kTooMany, kCutMidStream };

class ScriptedServer {
 public:
  explicit ScriptedServer(Script script) : script_(script), acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { accept_loop(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    boost::system::error_code ec;
    tcp::socket poke(io_);
    poke.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
    thread_.join();
    for (auto& t : workers_) t.join();
  }
  uint16_t port() const { return port_; }
  int peak_connections() const { return peak_.load(); }
  int requests() const { return requests_.load(); }

 private:
  void accept_loop() {
    while (true) {
      tcp::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (stop_ || ec) return;
      workers_.emplace_back([this, s = std::move(socket)]() mutable { serve(std::move(s)); });
    }
  }

  void serve(tcp::socket socket) {
    const int now = ++open_;
    int peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
    }
    boost::system::error_code ec;
    std::string request;
    char buffer[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      const size_t n = socket.read_some(asio::buffer(buffer), ec);
      if (ec) break;
      request.append(buffer, n);
    }
    ++requests_;
    const auto send = [&](const std::string& bytes) { asio::write(socket, asio::buffer(bytes), ec); };
    const auto chunk = [](const std::string& data) {
      char size[32];
      std::snprintf(size, sizeof size, "%zx\r\n", data.size());
      return std::string(size) + data + "\r\n";
    };
    const auto pause = [] { std::this_thread::sleep_for(std::chrono::milliseconds(60)); };
    // A request stops counting as open just before its last bytes go out: once the client has them it may
    // open the next connection before this thread runs again (the count must not race the client).
    bool closed = false;
    const auto close_count = [&] {
      if (!closed) --open_;
      closed = true;
    };
    switch (script_) {
      case Script::kStream: {
        send("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n");
        pause();
        send(chunk("data: {\"text\": \"a\", \"meta_info\": {\"completion_tokens\": 1, \"prompt_tokens\": 3}}\n\nda"));
        pause();
        send(chunk("ta: {\"text\": \"ab\", \"meta_info\": {\"completion_tokens\": 2, \"prompt_tokens\": 3}}\r"));
        send(chunk("\n\r\n"));
        pause();
        send(chunk("data: {\"text\": \"abcd\", \"meta_info\": {\"completion_tokens\": 4, \"prompt_tokens\": 3}}\n\n"));
        close_count();
        send(chunk("data: [DONE]\n\n") + "0\r\n\r\n");
        break;
      }
      case Script::kTooMany: {
        const std::string body = R"({"object": "error", "message": "too many", "type": "TooManyRequests", "code": 429})";
        send("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Type: application/json\r\nContent-Length: " +
             std::to_string(body.size()) + "\r\n\r\n" + body);
        break;
      }
      case Script::kCutMidStream: {
        send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        send(chunk("data: {\"text\": \"a\", \"meta_info\": {\"completion_tokens\": 1}}\n\n"));
        break;  // closes without the last chunk
      }
    }
    close_count();
    socket.shutdown(tcp::socket::shutdown_both, ec);
  }

  Script script_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::vector<std::thread> workers_;
  std::atomic<bool> stop_{false};
  std::atomic<int> open_{0}, peak_{0}, requests_{0};
};

std::vector<BenchPrompt> prompts(size_t n) {
  BenchPrompt p;
  p.input_ids = {1, 2, 3};
  p.prompt_len = 3;
  p.output_len = 4;
  return std::vector<BenchPrompt>(n, p);
}

RunOptions options_for(uint16_t port) {
  RunOptions options;
  options.address.host = "127.0.0.1";
  options.address.port = port;
  options.show_progress = false;
  options.request_timeout_s = 30;
  return options;
}

TEST(Runner, StreamsAreTimedEventByEvent) {
  ScriptedServer server(Script::kStream);
  RunOptions options = options_for(server.port());
  options.max_concurrency = 2;
  const auto work = prompts(6);
  const std::vector<double> arrivals(work.size(), 0.0);
  auto outcome = run_requests(work, arrivals, options);
  ASSERT_TRUE(outcome.ok()) << outcome.status().to_string();
  ASSERT_EQ(outcome->results.size(), 6u);
  for (const RequestResult& r : outcome->results) {
    ASSERT_TRUE(r.success) << r.error;
    EXPECT_EQ(r.output_len, 4);
    EXPECT_EQ(r.server_prompt_tokens, 3);
    EXPECT_EQ(r.generated_text, "abcd");
    EXPECT_GE(r.ttft_s, 0.055);
    ASSERT_EQ(r.itl_s.size(), 3u);
    EXPECT_GE(r.itl_s[0], 0.055);                 // the second token, one pause later
    EXPECT_NEAR(r.itl_s[1], r.itl_s[2], 1e-12);   // the last event brought two tokens: its gap split evenly
    EXPECT_GE(r.itl_s[1] * 2, 0.055);
    EXPECT_GE(r.latency_s, r.ttft_s + 0.11);
  }
  EXPECT_EQ(outcome->peak_in_flight, 2);
  EXPECT_LE(server.peak_connections(), 2);
  EXPECT_EQ(server.requests(), 6);
  // Six requests, two at a time, each ~180 ms: three waves.
  EXPECT_GE(outcome->duration_s, 3 * 0.17);
}

TEST(Runner, ArrivalTimesAreKept) {
  ScriptedServer server(Script::kTooMany);
  const auto work = prompts(3);
  const std::vector<double> arrivals{0.0, 0.1, 0.25};
  auto outcome = run_requests(work, arrivals, options_for(server.port()));
  ASSERT_TRUE(outcome.ok());
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_GE(outcome->results[i].start_s, arrivals[i]);
    EXPECT_LT(outcome->results[i].start_s, arrivals[i] + 0.1);
    EXPECT_FALSE(outcome->results[i].success);
    EXPECT_EQ(outcome->results[i].error, "HTTP 429: too many");
  }
}

TEST(Runner, CutStreamIsAFailure) {
  ScriptedServer server(Script::kCutMidStream);
  auto outcome = run_requests(prompts(2), {0.0, 0.0}, options_for(server.port()));
  ASSERT_TRUE(outcome.ok());
  for (const RequestResult& r : outcome->results) {
    EXPECT_FALSE(r.success);
    EXPECT_NE(r.error.find("receive"), std::string::npos) << r.error;
  }
}

TEST(Runner, RefusedConnectionsAreFailuresNotCrashes) {
  uint16_t port = 0;
  {
    asio::io_context io;
    tcp::acceptor probe(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = probe.local_endpoint().port();
  }  // closed: nothing listens there now
  auto outcome = run_requests(prompts(5), std::vector<double>(5, 0.0), options_for(port));
  ASSERT_TRUE(outcome.ok());
  for (const RequestResult& r : outcome->results) {
    EXPECT_FALSE(r.success);
    EXPECT_NE(r.error.find("connect"), std::string::npos) << r.error;
  }
  EXPECT_FALSE(http_fetch(options_for(port).address, "GET", "/health", "", {}, 5).ok());
}

}  // namespace
}  // namespace radixlm::bench
