#pragma once
// The HTTP/1.1 transport (Boost.Beast over Asio): keep-alive, chunked transfer for SSE, limits on body size,
// header size, connection count and idle or slow clients. It knows nothing about LLMs: routes map a method
// and a path to a Handler, and the handler answers through a ResponseChannel, now or later, from any thread.
// Beast and Asio types stay inside http_server.cpp so the route code compiles without them.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace radixlm::server {

struct HttpLimits {
  size_t max_body_bytes = 32u << 20;    // 413 past this
  size_t max_header_bytes = 64u << 10;  // 431 past this
  int max_connections = 2048;           // further connections are closed at once (503 written when possible)
  int idle_timeout_s = 65;              // a keep-alive connection with no request in flight
  int request_timeout_s = 30;           // a request whose header and body take longer to arrive (slow client)
  // A single socket write that the client does not take within max(idle, request timeout) closes the
  // connection (a client that stopped reading its stream).
};

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: path and query
  std::string path;    // target without the query
  std::string query;   // after '?', undecoded; empty when none
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string remote_address;

  // The first header of that name (case-insensitive), or empty.
  std::string_view header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra ones, e.g. Retry-After
};

// One request's way back to its client. Thread-safe: any thread may call any method, any number of times;
// calls after the response is complete, or after the client went away, are ignored. A channel may be kept
// after its connection (or the server) is gone; it then does nothing. A handler that drops its channel
// without completing the response gets a 500 (or a cut stream) sent for it, and an error logged.
// The interface has two implementations: the socket one in http_server.cpp and the recording one the route
// tests use.
class ResponseChannel {
 public:
  virtual ~ResponseChannel() = default;

  // A complete response (Content-Length framing).
  virtual void respond(HttpResponse response) = 0;
  // A streamed response: the header now (chunked transfer encoding), then each write() as one chunk, then
  // end_stream(). For SSE, content_type is "text/event-stream" and each write is one or more whole events.
  virtual void begin_stream(int status, std::string content_type,
                            std::vector<std::pair<std::string, std::string>> headers = {}) = 0;
  virtual void write(std::string data) = 0;
  virtual void end_stream() = 0;

  // `callback` runs once, on an I/O thread, if the client goes away (closes, resets, times out) before the
  // response is complete; at once if it already has. A handler that waits on the engine turns this into an
  // abort.
  virtual void on_disconnect(std::function<void()> callback) = 0;
  virtual bool disconnected() const = 0;

  // Runs `task` on this connection's I/O strand (serialised with the channel's own work). The engine's
  // stream listener posts its draining here, so formatting never runs on the scheduler thread. Tasks run
  // even after the client left; once HttpServer::run() has returned they run inline, one at a time.
  virtual void post(std::function<void()> task) = 0;
};

// Runs on the connection's I/O strand: it must not block (hand slow work to another thread and answer from
// there). An exception escaping it is logged and answered with a 500.
using Handler = std::function<void(HttpRequest request, std::shared_ptr<ResponseChannel> channel)>;

// Exact paths, plus prefix routes ("/v1/models/" matches "/v1/models/anything").
class Router {
 public:
  void add(std::string method, std::string path, Handler handler);
  void add_prefix(std::string method, std::string prefix, Handler handler);
  // The handler for a request, or null; `path_known` tells a 405 (path exists, method does not) from a 404.
  const Handler* find(std::string_view method, std::string_view path, bool* path_known) const;

 private:
  struct Route {
    std::string method;
    std::string path;
    bool prefix = false;
    Handler handler;
  };
  std::vector<Route> routes_;
};

class HttpServer {
 public:
  HttpServer(Router router, HttpLimits limits, int io_threads);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens; port 0 picks a free port (see port()).
  Status listen(const std::string& host, uint16_t port);
  uint16_t port() const;
  // Serves on `io_threads` threads until shutdown(); returns when they have all finished.
  void run();
  // Stops accepting; connections with a response in progress may finish for up to `drain_timeout_s`, then
  // every connection is closed and run() returns. Safe from any thread and from a signal-watching thread.
  void shutdown(double drain_timeout_s);
  int open_connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace radixlm::server
