// The HTTP transport against real sockets on 127.0.0.1: a raw POSIX client sends exact bytes and parses the
// replies itself, so framing (Content-Length, chunked) is checked independently of Beast.

#include "server/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "server/api_error.h"
#include "server/recording_channel.h"

namespace radixlm::server {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// RADIXLM_HTTP_TEST_DEBUG=1 shows the server's per-request debug log.
const bool kDebugLog = [] {
  if (std::getenv("RADIXLM_HTTP_TEST_DEBUG") != nullptr) spdlog::set_level(spdlog::level::debug);
  return true;
}();

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Polls `condition` for up to `timeout`.
template <typename F>
bool eventually(F condition, std::chrono::milliseconds timeout = 3000ms) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return condition();
}

struct Response {
  bool complete = false;
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;                            // de-chunked
  std::vector<std::string> chunks;             // when chunked
  std::string raw;                             // exactly the bytes of this response
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// A blocking-free raw client: every wait is bounded, so a broken server fails the test instead of hanging it.
class RawClient {
 public:
  explicit RawClient(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  }
  ~RawClient() { close(); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return connected_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // Close with a reset instead of a FIN (SO_LINGER 0).
  void reset() {
    linger option{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &option, sizeof(option));
    close();
  }

  bool send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Reads more bytes into buffer_; false on timeout, EOF or error (eof() tells which).
  bool read_more(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
    char chunk[65536];
    ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  // True when the server closed the connection (EOF or reset) within `timeout`; bytes read meanwhile are
  // kept.
  bool closed_within(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (!eof_) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return false;
      read_more(left);
    }
    return true;
  }

  // One response off the front of the buffer, reading as needed.
  Response read_response(std::chrono::milliseconds timeout = 5000ms) {
    auto deadline = Clock::now() + timeout;
    Response response;
    for (;;) {
      if (parse(response)) return response;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0 || !read_more(left)) {
        if (eof_ && parse(response, /*eof=*/true)) return response;
        return Response{};
      }
    }
  }

  std::string& buffer() { return buffer_; }
  bool eof() const { return eof_; }

 private:
  // Parses one response from buffer_; on success removes it from the buffer.
  bool parse(Response& out, bool at_eof = false) {
    size_t header_end = buffer_.find("\r\n\r\n");
    if (header_end == std::string::npos) return false;
    Response response;
    std::string head = buffer_.substr(0, header_end + 2);
    size_t line_end = head.find("\r\n");
    std::string status_line = head.substr(0, line_end);
    if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12) return false;
    response.status = std::stoi(status_line.substr(9, 3));
    size_t pos = line_end + 2;
    while (pos < head.size()) {
      size_t end = head.find("\r\n", pos);
      std::string line = head.substr(pos, end - pos);
      size_t colon = line.find(':');
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      response.headers[lower(line.substr(0, colon))] = value;
      pos = end + 2;
    }
    size_t body_start = header_end + 4;
    size_t consumed = 0;
    if (response.status == 100) {
      consumed = body_start;
    } else if (lower(response.header("transfer-encoding")) == "chunked") {
      size_t at = body_start;
      for (;;) {
        size_t size_end = buffer_.find("\r\n", at);
        if (size_end == std::string::npos) return false;
        size_t size = std::stoul(buffer_.substr(at, size_end - at), nullptr, 16);
        if (buffer_.size() < size_end + 2 + size + 2) return false;
        if (buffer_.compare(size_end + 2 + size, 2, "\r\n") != 0) {
          ADD_FAILURE() << "chunk not followed by CRLF";
          return false;
        }
        if (size == 0) {
          consumed = size_end + 4;
          break;
        }
        response.chunks.push_back(buffer_.substr(size_end + 2, size));
        response.body += response.chunks.back();
        at = size_end + 2 + size + 2;
      }
    } else if (!response.header("content-length").empty()) {
      size_t length = std::stoul(response.header("content-length"));
      if (buffer_.size() < body_start + length) return false;
      response.body = buffer_.substr(body_start, length);
      consumed = body_start + length;
    } else {
      if (!at_eof) return false;  // delimited by the close
      response.body = buffer_.substr(body_start);
      consumed = buffer_.size();
    }
    response.raw = buffer_.substr(0, consumed);
    response.complete = true;
    buffer_.erase(0, consumed);
    out = std::move(response);
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  std::string buffer_;
};

std::string get(const std::string& target, const std::string& extra_headers = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: test\r\n" + extra_headers + "\r\n";
}
std::string post(const std::string& target, const std::string& body, const std::string& extra_headers = "") {
  return "POST " + target + " HTTP/1.1\r\nHost: test\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
         extra_headers + "\r\n" + body;
}

HttpResponse text(std::string body) {
  HttpResponse response;
  response.content_type = "text/plain";
  response.body = std::move(body);
  return response;
}

void expect_openai_error(const Response& response, int status) {
  ASSERT_TRUE(response.complete);
  EXPECT_EQ(response.status, status);
  EXPECT_EQ(response.header("content-type"), "application/json");
  nlohmann::json body = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(body.is_object()) << response.body;
  EXPECT_EQ(body["object"], "error");
  EXPECT_EQ(body["code"], status);
  EXPECT_TRUE(body["message"].is_string());
  EXPECT_TRUE(body["type"].is_string());
  EXPECT_TRUE(body.contains("param") && body["param"].is_null());
}

// A server on a free port, run() on its own thread; the destructor shuts it down and joins.
class TestServer {
 public:
  TestServer(Router router, HttpLimits limits = {}, int io_threads = 2)
      : server_(std::move(router), limits, io_threads) {
    Status status = server_.listen("127.0.0.1", 0);
    EXPECT_TRUE(status.ok()) << status.message();
    thread_ = std::thread([this] {
      server_.run();
      returned_ = true;
    });
  }
  ~TestServer() { stop(0); }
  // Shuts down; true when run() returned within `timeout`.
  bool stop(double drain_s, std::chrono::milliseconds timeout = 3000ms) {
    if (!thread_.joinable()) return true;
    server_.shutdown(drain_s);
    bool returned = eventually([&] { return returned_.load(); }, timeout);
    if (returned) thread_.join();
    else thread_.detach();  // the test has failed; do not hang
    return returned;
  }
  uint16_t port() { return server_.port(); }
  HttpServer& server() { return server_; }
  bool returned() const { return returned_.load(); }

 private:
  HttpServer server_;
  std::atomic<bool> returned_{false};
  std::thread thread_;
};

Router echo_router() {
  Router router;
  router.add("GET", "/hello", [](HttpRequest request, std::shared_ptr<ResponseChannel> channel) {
    channel->respond(text("hello " + request.query));
  });
  router.add("POST", "/echo", [](HttpRequest request, std::shared_ptr<ResponseChannel> channel) {
    HttpResponse response = text(request.body);
    response.headers.emplace_back("X-Header-Seen", std::string(request.header("x-test")));
    channel->respond(std::move(response));
  });
  return router;
}

TEST(Router, ExactBeatsPrefixAndLongestPrefixWins) {
  Router router;
  int hit = 0;
  router.add("GET", "/v1/models", [&](HttpRequest, std::shared_ptr<ResponseChannel>) { hit = 1; });
  router.add_prefix("GET", "/v1/", [&](HttpRequest, std::shared_ptr<ResponseChannel>) { hit = 2; });
  router.add_prefix("GET", "/v1/models/", [&](HttpRequest, std::shared_ptr<ResponseChannel>) { hit = 3; });
  bool known = false;
  auto call = [&](const Handler* handler) {
    hit = 0;
    if (handler != nullptr) (*handler)(HttpRequest{}, nullptr);
    return hit;
  };
  EXPECT_EQ(call(router.find("GET", "/v1/models", &known)), 1);
  EXPECT_EQ(call(router.find("GET", "/v1/models/llama", &known)), 3);
  EXPECT_EQ(call(router.find("GET", "/v1/other", &known)), 2);
  EXPECT_EQ(router.find("POST", "/v1/models", &known), nullptr);
  EXPECT_TRUE(known);
  EXPECT_EQ(router.find("GET", "/v2", &known), nullptr);
  EXPECT_FALSE(known);
}

TEST(HttpRequest, HeaderLookupIgnoresCase) {
  HttpRequest request;
  request.headers = {{"Content-Type", "a"}, {"content-type", "b"}};
  EXPECT_EQ(request.header("CONTENT-TYPE"), "a");
  EXPECT_EQ(request.header("missing"), "");
}

TEST(HttpServer, KeepAliveServesTwoRequestsOnOneConnection) {
  TestServer server(echo_router());
  RawClient client(server.port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.send(get("/hello?x=1")));
  Response first = client.read_response();
  ASSERT_TRUE(first.complete);
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.body, "hello x=1");
  EXPECT_EQ(first.header("content-type"), "text/plain");
  EXPECT_EQ(first.header("connection"), "");
  ASSERT_TRUE(client.send(post("/echo", "payload", "X-Test: seen\r\n")));
  Response second = client.read_response();
  ASSERT_TRUE(second.complete);
  EXPECT_EQ(second.body, "payload");
  EXPECT_EQ(second.header("x-header-seen"), "seen");
  EXPECT_EQ(server.server().open_connections(), 1);
}

TEST(HttpServer, PipelinedRequestsAreAnsweredInOrder) {
  TestServer server(echo_router());
  RawClient client(server.port());
  ASSERT_TRUE(client.send(get("/hello?a") + post("/echo", "b") + get("/hello?c")));
  EXPECT_EQ(client.read_response().body, "hello a");
  EXPECT_EQ(client.read_response().body, "b");
  EXPECT_EQ(client.read_response().body, "hello c");
}

TEST(HttpServer, ConnectionCloseIsHonoured) {
  TestServer server(echo_router());
  RawClient client(server.port());
  ASSERT_TRUE(client.send(get("/hello", "Connection: close\r\n")));
  Response response = client.read_response();
  ASSERT_TRUE(response.complete);
  EXPECT_EQ(response.header("connection"), "close");
  EXPECT_TRUE(client.closed_within(2000ms));
}

TEST(HttpServer, Http10ClosesUnlessKeepAliveAsked) {
  TestServer server(echo_router());
  {
    RawClient client(server.port());
    ASSERT_TRUE(client.send("GET /hello HTTP/1.0\r\n\r\n"));
    Response response = client.read_response();
    EXPECT_EQ(response.body, "hello ");
    EXPECT_TRUE(client.closed_within(2000ms));
  }
  RawClient client(server.port());
  ASSERT_TRUE(client.send("GET /hello?1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  Response first = client.read_response();
  EXPECT_EQ(first.header("connection"), "keep-alive");
  ASSERT_TRUE(client.send("GET /hello?2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  EXPECT_EQ(client.read_response().body, "hello 2");
}

TEST(HttpServer, UnknownPathIs404AndWrongMethodIs405InOpenAIShape) {
  TestServer server(echo_router());
  RawClient client(server.port());
  ASSERT_TRUE(client.send(get("/nowhere")));
  expect_openai_error(client.read_response(), 404);
  ASSERT_TRUE(client.send(get("/echo")));
  expect_openai_error(client.read_response(), 405);
  ASSERT_TRUE(client.send(get("/hello")));  // still usable
  EXPECT_EQ(client.read_response().status, 200);
}

TEST(HttpServer, BodyOverLimitIs413) {
  HttpLimits limits;
  limits.max_body_bytes = 1024;
  TestServer server(echo_router(), limits);
  {
    RawClient client(server.port());
    ASSERT_TRUE(client.send(post("/echo", std::string(1024, 'a'))));
    EXPECT_EQ(client.read_response().body.size(), 1024u);  // at the limit is fine
  }
  {
    RawClient client(server.port());
    ASSERT_TRUE(client.send(post("/echo", std::string(4000, 'a'))));
    expect_openai_error(client.read_response(), 413);
    EXPECT_TRUE(client.closed_within(2000ms));
  }
  RawClient client(server.port());  // chunked: no length up front
  ASSERT_TRUE(client.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" +
                          std::string(2048, 'b') + "\r\n0\r\n\r\n"));
  expect_openai_error(client.read_response(), 413);
}

TEST(HttpServer, HugeHeaderIs431) {
  HttpLimits limits;
  limits.max_header_bytes = 2048;
  TestServer server(echo_router(), limits);
  RawClient client(server.port());
  ASSERT_TRUE(client.send(get("/hello", "X-Big: " + std::string(8000, 'h') + "\r\n")));
  expect_openai_error(client.read_response(), 431);
  EXPECT_TRUE(client.closed_within(2000ms));
}

TEST(HttpServer, GarbageRequestIs400) {
  TestServer server(echo_router());
  for (std::string garbage : {"\x01\x02garbage\r\n\r\n", "GET /x HTTP/9\r\n\r\n", "GET /x HTTP/1.1\r\nBad Header\r\n\r\n",
                              "POST /echo HTTP/1.1\r\nContent-Length: nope\r\n\r\n"}) {
    RawClient client(server.port());
    ASSERT_TRUE(client.send(garbage));
    expect_openai_error(client.read_response(), 400);
    EXPECT_TRUE(client.closed_within(2000ms));
  }
}

TEST(HttpServer, ExpectContinueGetsInterimResponse) {
  TestServer server(echo_router());
  RawClient client(server.port());
  ASSERT_TRUE(client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  Response interim = client.read_response();
  EXPECT_EQ(interim.status, 100);
  ASSERT_TRUE(client.send("hello"));
  EXPECT_EQ(client.read_response().body, "hello");
}

// Handlers that answer from threads of their own; joined at the end of each test.
class Workers {
 public:
  ~Workers() { join(); }
  template <typename F>
  void spawn(F f) {
    std::lock_guard lock(mutex_);
    threads_.emplace_back(std::move(f));
  }
  void join() {
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mutex_);
      threads.swap(threads_);
    }
    for (auto& thread : threads) thread.join();
  }

 private:
  std::mutex mutex_;
  std::vector<std::thread> threads_;
};

TEST(HttpServer, HandlerAnswersLaterFromAnotherThread) {
  Workers workers;
  Router router;
  router.add("GET", "/later", [&](HttpRequest, std::shared_ptr<ResponseChannel> channel) {
    workers.spawn([channel] {
      std::this_thread::sleep_for(50ms);
      channel->respond(text("late"));
      channel->respond(text("ignored"));  // a second answer is ignored
    });
  });
  TestServer server(std::move(router));
  RawClient client(server.port());
  ASSERT_TRUE(client.send(get("/later") + get("/later")));
  EXPECT_EQ(client.read_response().body, "late");
  EXPECT_EQ(client.read_response().body, "late");
  workers.join();
  EXPECT_FALSE(client.read_more(100ms));  // nothing more was sent
}

TEST(HttpServer, HandlerExceptionIs500AndServerSurvives) {
  Router router = echo_router();
  router.add("GET", "/throw", [](HttpRequest, std::shared_ptr<ResponseChannel>) -> void {
    throw std::runtime_error("boom");
  });
  router.add("GET", "/drop", [](HttpRequest, std::shared_ptr<ResponseChannel>) {});  // never answers
  TestServer server(std::move(router));
  RawClient client(server.port());
  ASSERT_TRUE(client.send(get("/throw")));
  expect_openai_error(client.read_response(), 500);
  ASSERT_TRUE(client.send(get("/drop")));
  expect_openai_error(client.read_response(), 500);
  ASSERT_TRUE(client.send(get("/hello")));
  EXPECT_EQ(client.read_response().status, 200);
}

// Streams `count` SSE events from a worker thread, `gap` apart.
Router streaming_router(Workers& workers, int count, std::chrono::milliseconds gap,
                        std::shared_ptr<ResponseChannel>* saved = nullptr, std::atomic<int>* disconnects = nullptr) {
  Router router = echo_router();
  router.add("POST", "/stream", [&workers, count, gap, saved, disconnects](HttpRequest,
                                                                          std::shared_ptr<ResponseChannel> channel) {
    if (saved != nullptr) *saved = channel;
    if (disconnects != nullptr) channel->on_disconnect([disconnects] { ++*disconnects; });
    channel->begin_stream(200, "text/event-stream", {{"Cache-Control", "no-cache"}});
    workers.spawn([channel, count, gap] {
      for (int i = 0; i < count && !channel->disconnected(); ++i) {
        channel->write("data: {\"i\": " + std::to_string(i) + "}\n\n");
        std::this_thread::sleep_for(gap);
      }
      channel->end_stream();
      channel->write("late");  // after the end: ignored
    });
  });
  return router;
}

TEST(HttpServer, SseStreamArrivesInOrderWithChunkedFraming) {
  Workers workers;
  TestServer server(streaming_router(workers, 5, 5ms));
  RawClient client(server.port());
  ASSERT_TRUE(client.send(post("/stream", "{}")));
  Response response = client.read_response();
  ASSERT_TRUE(response.complete);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.header("content-type"), "text/event-stream");
  EXPECT_EQ(response.header("cache-control"), "no-cache");
  EXPECT_EQ(response.header("content-length"), "");
  std::string expected_body;
  std::string expected_framing;
  for (int i = 0; i < 5; ++i) {
    std::string event = "data: {\"i\": " + std::to_string(i) + "}\n\n";
    expected_body += event;
    char size[16];
    std::snprintf(size, sizeof(size), "%zx", event.size());
    expected_framing += std::string(size) + "\r\n" + event + "\r\n";
  }
  expected_framing += "0\r\n\r\n";
  EXPECT_EQ(response.body, expected_body);
  EXPECT_EQ(response.chunks.size(), 5u);  // one chunk per write
  ASSERT_GE(response.raw.size(), expected_framing.size());
  EXPECT_EQ(response.raw.substr(response.raw.size() - expected_framing.size()), expected_framing);
  // The connection is reusable after the stream.
  ASSERT_TRUE(client.send(get("/hello")));
  EXPECT_EQ(client.read_response().status, 200);
  workers.join();
  EXPECT_FALSE(client.read_more(50ms));
}

TEST(HttpServer, Http10StreamIsUnframedAndEndsWithTheConnection) {
  Workers workers;
  TestServer server(streaming_router(workers, 3, 1ms));
  RawClient client(server.port());
  ASSERT_TRUE(client.send("POST /stream HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}"));
  EXPECT_TRUE(client.closed_within(3000ms));
  Response response = client.read_response();
  ASSERT_TRUE(response.complete);
  EXPECT_EQ(response.header("transfer-encoding"), "");
  EXPECT_EQ(response.header("connection"), "close");
  EXPECT_EQ(response.body, "data: {\"i\": 0}\n\ndata: {\"i\": 1}\n\ndata: {\"i\": 2}\n\n");
}

TEST(HttpServer, PostedTasksRunInOrderThenInlineAfterStop) {
  std::promise<std::shared_ptr<ResponseChannel>> got;
  Router router;
  router.add("GET", "/posted", [&](HttpRequest, std::shared_ptr<ResponseChannel> channel) {
    got.set_value(channel);
  });
  auto server = std::make_unique<TestServer>(std::move(router));
  RawClient client(server->port());
  ASSERT_TRUE(client.send(get("/posted")));
  auto future = got.get_future();
  ASSERT_EQ(future.wait_for(3s), std::future_status::ready);
  std::shared_ptr<ResponseChannel> channel = future.get();
  channel->post([channel] { channel->begin_stream(200, "text/plain"); });
  std::atomic<int> off_caller_thread{0};
  auto caller = std::this_thread::get_id();
  for (int i = 0; i < 50; ++i) {
    channel->post([channel, i, caller, &off_caller_thread] {
      if (std::this_thread::get_id() != caller) ++off_caller_thread;
      channel->write(std::to_string(i) + ",");
    });
  }
  channel->post([channel] { channel->end_stream(); });
  Response response = client.read_response();
  std::string expected;
  for (int i = 0; i < 50; ++i) expected += std::to_string(i) + ",";
  EXPECT_EQ(response.body, expected);
  EXPECT_EQ(off_caller_thread.load(), 50);  // they ran on an I/O thread
  ASSERT_TRUE(server->stop(0));
  server.reset();
  // The server is gone: tasks still run (inline), and the channel ignores what it is told.
  bool ran = false;
  channel->post([&] {
    channel->write("ignored");
    ran = true;
  });
  EXPECT_TRUE(ran);
}

TEST(HttpServer, EachSseWriteIsFlushedPromptly) {
  Workers workers;
  TestServer server(streaming_router(workers, 3, 300ms));
  RawClient client(server.port());
  auto start = Clock::now();
  ASSERT_TRUE(client.send(post("/stream", "{}")));
  // The first event arrives long before the stream ends.
  ASSERT_TRUE(eventually([&] {
    client.read_more(10ms);
    return client.buffer().find("data: {\"i\": 0}") != std::string::npos;
  }));
  EXPECT_LT(seconds_since(start), 0.25);
  EXPECT_EQ(client.read_response().chunks.size(), 3u);
}

TEST(HttpServer, ClientDisconnectMidStreamFiresOnDisconnectOnce) {
  Workers workers;
  std::shared_ptr<ResponseChannel> channel;
  std::atomic<int> disconnects{0};
  TestServer server(streaming_router(workers, 1000, 10ms, &channel, &disconnects));
  RawClient client(server.port());
  ASSERT_TRUE(client.send(post("/stream", "{}")));
  ASSERT_TRUE(eventually([&] {
    client.read_more(10ms);
    return client.buffer().find("data: {\"i\": 1}") != std::string::npos;
  }));
  client.close();
  ASSERT_TRUE(eventually([&] { return disconnects.load() == 1; }));
  EXPECT_TRUE(channel->disconnected());
  workers.join();  // the worker saw disconnected() and stopped
  channel->write("after");  // ignored, no crash
  channel->end_stream();
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(disconnects.load(), 1);
  EXPECT_TRUE(eventually([&] { return server.server().open_connections() == 0; }));
}

TEST(HttpServer, DisconnectWhileNonStreamingResponsePendingFires) {
  std::mutex mutex;
  std::shared_ptr<ResponseChannel> pending;
  std::atomic<int> disconnects{0};
  Router router;
  router.add("POST", "/slow", [&](HttpRequest, std::shared_ptr<ResponseChannel> channel) {
    channel->on_disconnect([&] { ++disconnects; });
    std::lock_guard lock(mutex);
    pending = channel;
  });
  TestServer server(std::move(router));
  {
    RawClient client(server.port());
    ASSERT_TRUE(client.send(post("/slow", "{}")));
    ASSERT_TRUE(eventually([&] {
      std::lock_guard lock(mutex);
      return pending != nullptr;
    }));
    client.reset();
  }
  ASSERT_TRUE(eventually([&] { return disconnects.load() == 1; }));
  std::lock_guard lock(mutex);
  EXPECT_TRUE(pending->disconnected());
  pending->respond(text("too late"));  // ignored
  // A callback registered after the disconnect runs at once (on an I/O thread).
  std::atomic<int> late{0};
  pending->on_disconnect([&] { ++late; });
  EXPECT_TRUE(eventually([&] { return late.load() == 1; }));
  EXPECT_EQ(disconnects.load(), 1);
}

TEST(HttpServer, PipelinedBytesDuringPendingResponseAreKept) {
  Workers workers;
  Router router = echo_router();
  router.add("GET", "/later", [&](HttpRequest, std::shared_ptr<ResponseChannel> channel) {
    workers.spawn([channel] {
      std::this_thread::sleep_for(100ms);
      channel->respond(text("late"));
    });
  });
  TestServer server(std::move(router));
  RawClient client(server.port());
  ASSERT_TRUE(client.send(get("/later")));
  std::this_thread::sleep_for(30ms);  // the server is now waiting on the handler, watching the socket
  ASSERT_TRUE(client.send(get("/hello?next")));
  EXPECT_EQ(client.read_response().body, "late");
  EXPECT_EQ(client.read_response().body, "hello next");
}

TEST(HttpServer, SlowClientClosedAfterRequestTimeout) {
  HttpLimits limits;
  limits.request_timeout_s = 1;
  TestServer server(echo_router(), limits);
  RawClient client(server.port());
  auto start = Clock::now();
  ASSERT_TRUE(client.send("GET /hello HTTP/1.1\r\nHo"));  // and nothing more
  EXPECT_TRUE(client.closed_within(3000ms));
  double elapsed = seconds_since(start);
  EXPECT_GE(elapsed, 0.9);
  EXPECT_LT(elapsed, 2.0);
  EXPECT_TRUE(eventually([&] { return server.server().open_connections() == 0; }));
}

TEST(HttpServer, IdleKeepAliveConnectionClosedAfterIdleTimeout) {
  HttpLimits limits;
  limits.idle_timeout_s = 1;
  limits.request_timeout_s = 10;
  TestServer server(echo_router(), limits);
  RawClient client(server.port());
  ASSERT_TRUE(client.send(get("/hello")));
  EXPECT_EQ(client.read_response().status, 200);
  auto start = Clock::now();
  EXPECT_TRUE(client.closed_within(3000ms));
  EXPECT_GE(seconds_since(start), 0.9);
}

TEST(HttpServer, ConnectionsOverTheLimitGet503) {
  HttpLimits limits;
  limits.max_connections = 2;
  TestServer server(echo_router(), limits);
  RawClient a(server.port()), b(server.port());
  ASSERT_TRUE(a.send(get("/hello")));
  ASSERT_TRUE(b.send(get("/hello")));
  EXPECT_EQ(a.read_response().status, 200);
  EXPECT_EQ(b.read_response().status, 200);
  EXPECT_EQ(server.server().open_connections(), 2);
  RawClient c(server.port());
  ASSERT_TRUE(c.send(get("/hello")));
  expect_openai_error(c.read_response(), 503);
  EXPECT_TRUE(c.closed_within(2000ms));
  a.close();
  ASSERT_TRUE(eventually([&] { return server.server().open_connections() == 1; }));
  RawClient d(server.port());  // a slot is free again
  ASSERT_TRUE(d.send(get("/hello")));
  EXPECT_EQ(d.read_response().status, 200);
}

TEST(HttpServer, ShutdownDrainsStreamInProgressThenRunReturns) {
  Workers workers;
  TestServer server(streaming_router(workers, 8, 40ms));
  RawClient idle(server.port());
  ASSERT_TRUE(idle.send(get("/hello")));
  EXPECT_EQ(idle.read_response().status, 200);
  RawClient client(server.port());
  ASSERT_TRUE(client.send(post("/stream", "{}")));
  ASSERT_TRUE(eventually([&] {
    client.read_more(10ms);
    return client.buffer().find("data: {\"i\": 0}") != std::string::npos;
  }));
  auto start = Clock::now();
  EXPECT_TRUE(server.stop(/*drain_s=*/5.0, 4000ms));
  EXPECT_LT(seconds_since(start), 2.5);
  Response response = client.read_response();
  ASSERT_TRUE(response.complete);  // every event and the terminating chunk
  EXPECT_EQ(response.chunks.size(), 8u);
  EXPECT_TRUE(idle.closed_within(1000ms));  // the idle keep-alive connection was closed
  RawClient late(server.port());
  EXPECT_FALSE(late.connected() && late.send(get("/hello")) && late.read_response(300ms).complete);
}

TEST(HttpServer, ShutdownDrainTimeoutCutsStreamsAndFiresDisconnect) {
  Workers workers;
  std::shared_ptr<ResponseChannel> channel;
  std::atomic<int> disconnects{0};
  TestServer server(streaming_router(workers, 1000000, 10ms, &channel, &disconnects));
  RawClient client(server.port());
  ASSERT_TRUE(client.send(post("/stream", "{}")));
  ASSERT_TRUE(eventually([&] {
    client.read_more(10ms);
    return client.buffer().find("data: {\"i\": 0}") != std::string::npos;
  }));
  auto start = Clock::now();
  EXPECT_TRUE(server.stop(/*drain_s=*/0.2, 3000ms));
  EXPECT_LT(seconds_since(start), 1.5);
  EXPECT_EQ(disconnects.load(), 1);
  workers.join();
  channel->write("after the server stopped");  // ignored
}

TEST(HttpServer, TwoHundredConcurrentClients) {
  Workers workers;
  Router router = echo_router();
  router.add("GET", "/later", [&](HttpRequest request, std::shared_ptr<ResponseChannel> channel) {
    workers.spawn([channel, query = request.query] {
      std::this_thread::sleep_for(20ms);
      channel->respond(text(query));
    });
  });
  TestServer server(std::move(router), HttpLimits{}, 4);
  constexpr int kClients = 200;
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<RawClient>(server.port()));
    ASSERT_TRUE(clients.back()->connected());
  }
  for (int i = 0; i < kClients; ++i) {
    ASSERT_TRUE(clients[i]->send(get((i % 2 ? "/hello?" : "/later?") + std::to_string(i))));
  }
  EXPECT_TRUE(eventually([&] { return server.server().open_connections() == kClients; }));
  for (int i = 0; i < kClients; ++i) {
    Response response = clients[i]->read_response();
    ASSERT_TRUE(response.complete) << i;
    EXPECT_EQ(response.body, (i % 2 ? "hello " : "") + std::to_string(i));
  }
}

TEST(RecordingChannel, RecordsAndFollowsTheChannelRules) {
  auto channel = std::make_shared<RecordingChannel>();
  int fired = 0;
  channel->on_disconnect([&] { ++fired; });
  channel->begin_stream(200, "text/event-stream");
  channel->write("a");
  channel->respond(text("ignored"));
  channel->write("b");
  channel->end_stream();
  channel->write("ignored");
  EXPECT_TRUE(channel->wait_finished(0ms));
  EXPECT_EQ(channel->body(), "ab");
  EXPECT_EQ(channel->writes().size(), 2u);
  channel->disconnect();
  EXPECT_EQ(fired, 0);  // complete before the disconnect

  auto pending = std::make_shared<RecordingChannel>();
  pending->on_disconnect([&] { ++fired; });
  pending->disconnect();
  pending->disconnect();
  EXPECT_EQ(fired, 1);
  pending->on_disconnect([&] { ++fired; });  // after the disconnect: at once
  EXPECT_EQ(fired, 2);
  pending->respond(text("late"));
  EXPECT_FALSE(pending->finished());
}

}  // namespace
}  // namespace radixlm::server
