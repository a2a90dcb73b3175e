#include "server/http_server.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <spdlog/spdlog.h>

#include "server/api_error.h"

namespace radixlm::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Strand = asio::strand<asio::io_context::executor_type>;
using Headers = std::vector<std::pair<std::string, std::string>>;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view view(beast::string_view s) { return {s.data(), s.size()}; }

}  // namespace

std::string_view HttpRequest::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) return value;
  }
  return {};
}

void Router::add(std::string method, std::string path, Handler handler) {
  routes_.push_back({std::move(method), std::move(path), false, std::move(handler)});
}

void Router::add_prefix(std::string method, std::string prefix, Handler handler) {
  routes_.push_back({std::move(method), std::move(prefix), true, std::move(handler)});
}

const Handler* Router::find(std::string_view method, std::string_view path, bool* path_known) const {
  bool known = false;
  const Route* best_prefix = nullptr;
  for (const Route& route : routes_) {
    if (!route.prefix) {
      if (route.path != path) continue;
      known = true;
      if (route.method == method) {
        if (path_known != nullptr) *path_known = true;
        return &route.handler;  // an exact route wins over any prefix
      }
    } else if (path.substr(0, route.path.size()) == route.path) {
      known = true;
      if (route.method == method && (best_prefix == nullptr || route.path.size() > best_prefix->path.size())) {
        best_prefix = &route;  // the longest prefix is the most specific
      }
    }
  }
  if (path_known != nullptr) *path_known = known;
  return best_prefix != nullptr ? &best_prefix->handler : nullptr;
}

namespace {

class Connection;

// Everything the I/O threads share. Connections and channels hold it by shared_ptr, so a channel kept by the
// engine after the server object is gone still points at live memory (its calls are then ignored).
struct ServerCore {
  ServerCore(Router r, HttpLimits l, int threads)
      : ioc(threads), router(std::move(r)), limits(l), accept_strand(asio::make_strand(ioc)) {}

  asio::io_context ioc;  // first member: the I/O objects below must go before it
  Router router;
  HttpLimits limits;
  Strand accept_strand;
  tcp::acceptor acceptor{accept_strand};
  asio::steady_timer drain_timer{accept_strand};
  asio::steady_timer accept_retry_timer{accept_strand};
  std::atomic<uint16_t> port{0};
  std::atomic<bool> stopping{false};  // shutdown() began: no new connections, no more keep-alive
  std::atomic<bool> stopped{false};   // run() returned: nothing runs on ioc any more
  // Serialises channel work run inline once stopped; recursive because such work (a posted task) may call
  // the channel again.
  std::recursive_mutex inline_mutex;
  std::atomic<int> open{0};
  std::mutex connections_mutex;
  std::unordered_map<const Connection*, std::weak_ptr<Connection>> connections;

  std::chrono::steady_clock::duration write_timeout() const {
    // A client that takes this long to take one write (its receive window stays full) is gone.
    return std::chrono::seconds(std::max({limits.idle_timeout_s, limits.request_timeout_s, 1}));
  }

  std::vector<std::shared_ptr<Connection>> snapshot() {
    std::vector<std::shared_ptr<Connection>> live;
    std::lock_guard lock(connections_mutex);
    for (auto& [key, weak] : connections) {
      if (auto connection = weak.lock()) live.push_back(std::move(connection));
    }
    return live;
  }
};

void run_guarded(const std::function<void()>& task, const char* what) {
  try {
    task();
  } catch (const std::exception& e) {
    spdlog::error("http: {} threw: {}", what, e.what());
  } catch (...) {
    spdlog::error("http: {} threw a non-standard exception", what);
  }
}

std::string reason_phrase(int status) {
  http::status code = http::int_to_status(static_cast<unsigned>(status));
  if (code == http::status::unknown) return "Unknown";
  return std::string(view(http::obsolete_reason(code)));
}

// Header names and values from handlers must not smuggle a line break into the response.
bool header_safe(std::string_view text) {
  return text.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

void append_header(std::string& out, std::string_view name, std::string_view value) {
  if (!header_safe(name) || !header_safe(value) || name.empty()) {
    spdlog::warn("http: dropping a response header with a line break in it");
    return;
  }
  out.append(name).append(": ").append(value).append("\r\n");
}

class SocketChannel;

// One TCP connection. All its state is touched on its strand only. The life of a request:
//   kReadingRequest (header then body, under request_timeout_s) -> kResponding (the handler's channel is
//   live; a read stays outstanding to notice the client leaving) -> kIdle (keep-alive, under
//   idle_timeout_s; the same outstanding read waits for the next request's first byte) -> kReadingRequest...
// or kClosing (our side shut, draining the client's bytes briefly so our last response is not reset away)
// and kClosed.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<ServerCore> core, Strand strand, tcp::socket socket, bool counted)
      : core_(std::move(core)),
        strand_(strand),
        stream_(std::move(socket)),
        timer_(strand_),
        counted_(counted) {
    beast::error_code ec;
    tcp::endpoint remote = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = remote.address().to_string() + ":" + std::to_string(remote.port());
  }
  ~Connection() { release_slot(); }

  const Strand& strand() const { return strand_; }

  void start() {
    state_ = State::kReadingRequest;
    arm_timer(core_->limits.request_timeout_s);
    read_request();
  }

  void reject() {
    spdlog::warn("http: {} refused: {} connections open (--max-connections)", remote_,
                 core_->limits.max_connections);
    send_error_and_close(503, "the server is at its connection limit; retry later");
  }

  void on_server_stop() {
    if (state_ == State::kClosed) return;
    keep_alive_ = false;  // responses in progress end with Connection: close
    if (state_ == State::kIdle) close();
  }

  void force_close() {
    if (state_ == State::kResponding) {
      spdlog::warn("http: drain timeout; closing {} with \"{} {}\" still in progress", remote_, method_, target_);
    }
    close();
  }

  // Channel work, on the strand.
  void send_response(HttpResponse&& response);
  void send_stream_head(int status, const std::string& content_type, const Headers& headers);
  void send_chunk(std::string&& data);
  void send_stream_end();
  void abort_response() { close(); }
  void on_channel_abandoned(bool streaming);

 private:
  enum class State { kReadingRequest, kResponding, kIdle, kClosing, kClosed };
  static constexpr size_t kReadChunk = 4096;
  static constexpr int kLingerSeconds = 1;

  void arm_timer(int seconds) {
    uint64_t generation = ++timer_generation_;
    timer_.expires_after(std::chrono::seconds(std::max(seconds, 0)));
    timer_.async_wait([self = shared_from_this(), generation](const beast::error_code& ec) {
      if (ec || generation != self->timer_generation_) return;
      self->on_timeout();
    });
  }
  void disarm_timer() {
    ++timer_generation_;
    timer_.cancel();
  }

  void on_timeout() {
    switch (state_) {
      case State::kReadingRequest:
        spdlog::warn("http: {} sent no complete request within {} s (request timeout); closing", remote_,
                     core_->limits.request_timeout_s);
        close();
        break;
      case State::kIdle:
        spdlog::debug("http: {} idle for {} s; closing", remote_, core_->limits.idle_timeout_s);
        close();
        break;
      case State::kClosing: close(); break;
      default: break;
    }
  }

  void read_request() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(
        std::min<size_t>(core_->limits.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
    parser_->body_limit(static_cast<std::uint64_t>(core_->limits.max_body_bytes));
    stream_.expires_never();  // our own timer bounds the request; tcp_stream's bounds writes only
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](const beast::error_code& ec, size_t) {
                              self->on_header(ec);
                            });
  }

  void on_header(const beast::error_code& ec) {
    if (state_ != State::kReadingRequest) return;
    if (ec) return on_read_error(ec);
    const auto& message = parser_->get();
    if (message.version() >= 11 && !parser_->is_done() && iequals(view(message[http::field::expect]), "100-continue")) {
      // curl sends large bodies only after this (or after a 1 s wait).
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      stream_.expires_after(core_->write_timeout());
      asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                        [self = shared_from_this()](const beast::error_code& write_ec, size_t) {
                          if (self->state_ != State::kReadingRequest) return;
                          if (write_ec) return self->close();
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    if (parser_->is_done()) return on_request();
    stream_.expires_never();
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](const beast::error_code& ec, size_t) {
      if (self->state_ != State::kReadingRequest) return;
      if (ec) return self->on_read_error(ec);
      self->on_request();
    });
  }

  void on_read_error(const beast::error_code& ec) {
    if (ec == http::error::body_limit) {
      spdlog::warn("http: {} sent a body over {} bytes (--max-body-bytes); 413", remote_, core_->limits.max_body_bytes);
      return send_error_and_close(
          413, "request body exceeds the limit of " + std::to_string(core_->limits.max_body_bytes) + " bytes");
    }
    if (ec == http::error::header_limit) {
      spdlog::warn("http: {} sent header fields over {} bytes; 431", remote_, core_->limits.max_header_bytes);
      return send_error_and_close(431, "request header fields exceed the limit of " +
                                           std::to_string(core_->limits.max_header_bytes) + " bytes");
    }
    bool parse_error = ec.category() == http::make_error_code(http::error::bad_method).category();
    if (parse_error && ec != http::error::end_of_stream && ec != http::error::partial_message) {
      spdlog::debug("http: malformed request from {}: {}", remote_, ec.message());
      return send_error_and_close(400, "malformed HTTP request: " + ec.message());
    }
    // The client closed (between requests or mid-request) or the socket failed.
    close();
  }

  void on_request();

  void start_read_some() {
    read_some_pending_ = true;
    stream_.expires_never();
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = shared_from_this()](const beast::error_code& ec, size_t bytes) {
                              self->on_read_some(ec, bytes);
                            });
  }

  // One outstanding read serves three purposes by state: noticing a client that leaves while its response
  // is pending, waiting for the next keep-alive request, and draining before close.
  void on_read_some(const beast::error_code& ec, size_t bytes) {
    read_some_pending_ = false;
    if (state_ == State::kClosed) return;
    if (ec) {
      if (state_ == State::kResponding) {
        spdlog::debug("http: {} went away during \"{} {}\" ({})", remote_, method_, target_, ec.message());
      }
      return close();
    }
    buffer_.commit(bytes);
    switch (state_) {
      case State::kIdle:
        state_ = State::kReadingRequest;
        arm_timer(core_->limits.request_timeout_s);
        read_request();
        break;
      case State::kResponding:
        // A pipelined request: it stays in the buffer for the next parse, and detection stops here.
        break;
      case State::kClosing:
        buffer_.consume(buffer_.size());
        start_read_some();
        break;
      default: break;
    }
  }

  void send_error_and_close(int status, const std::string& message) {
    disarm_timer();
    state_ = State::kResponding;
    keep_alive_ = false;
    http10_ = false;
    head_request_ = false;
    response_finished_ = false;
    if (method_.empty()) method_ = "-";
    send_response(error_response(status, message));
  }

  std::string status_head(int status, bool keep_alive) const {
    std::string head = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\n";
    if (!keep_alive) {
      head += "Connection: close\r\n";
    } else if (http10_) {
      head += "Connection: keep-alive\r\n";
    }
    return head;
  }

  void enqueue(std::string data) {
    if (state_ == State::kClosed || data.empty()) return;
    queue_.push_back(std::move(data));
    if (!writing_) flush();
  }

  void flush() {
    writing_ = true;
    in_flight_ = std::move(queue_);
    queue_.clear();
    std::vector<asio::const_buffer> buffers;
    buffers.reserve(in_flight_.size());
    for (const std::string& piece : in_flight_) buffers.push_back(asio::buffer(piece));
    stream_.expires_after(core_->write_timeout());
    asio::async_write(stream_, buffers, [self = shared_from_this()](const beast::error_code& ec, size_t) {
      self->on_write(ec);
    });
  }

  void on_write(const beast::error_code& ec) {
    writing_ = false;
    in_flight_.clear();
    if (state_ == State::kClosed) return;
    if (ec) {
      spdlog::debug("http: write to {} failed: {}", remote_, ec.message());
      return close();
    }
    if (!queue_.empty()) return flush();
    maybe_complete();
  }

  void maybe_complete() {
    if (state_ != State::kResponding || !response_finished_ || writing_ || !queue_.empty()) return;
    on_response_complete();
  }

  void on_response_complete() {
    auto elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_);
    spdlog::debug("http: {} \"{} {}\" {} {:.1f} ms", remote_, method_, target_, status_, elapsed.count());
    channel_.reset();
    if (!keep_alive_ || core_->stopping.load()) return close_gracefully();
    if (buffer_.size() > 0) {
      state_ = State::kReadingRequest;
      arm_timer(core_->limits.request_timeout_s);
      return read_request();
    }
    state_ = State::kIdle;
    arm_timer(core_->limits.idle_timeout_s);
    if (!read_some_pending_) start_read_some();
  }

  // Shut our side and read what the client still sends for a moment: closing with unread bytes makes the
  // kernel send a reset, which can destroy the response we just wrote before the client reads it.
  void close_gracefully() {
    state_ = State::kClosing;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    buffer_.consume(buffer_.size());
    arm_timer(kLingerSeconds);
    if (!read_some_pending_) start_read_some();
  }

  void close();

  void release_slot() {
    if (!counted_ || slot_released_) return;
    slot_released_ = true;
    {
      std::lock_guard lock(core_->connections_mutex);
      core_->connections.erase(this);
    }
    int left = --core_->open;
    if (left == 0 && core_->stopping.load()) {
      // The last connection is gone: stop waiting for the drain deadline so run() can return.
      asio::post(core_->accept_strand, [core = core_] { core->drain_timer.cancel(); });
    }
  }

  std::shared_ptr<ServerCore> core_;
  Strand strand_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  asio::steady_timer timer_;
  uint64_t timer_generation_ = 0;
  State state_ = State::kReadingRequest;
  bool counted_;
  bool slot_released_ = false;
  bool read_some_pending_ = false;
  bool keep_alive_ = true;
  bool http10_ = false;
  bool head_request_ = false;
  bool chunked_ = false;
  bool response_finished_ = false;  // the whole response is queued; done once the queue has drained
  bool writing_ = false;
  std::deque<std::string> queue_;
  std::deque<std::string> in_flight_;
  std::weak_ptr<SocketChannel> channel_;
  std::string remote_;
  std::string method_;
  std::string target_;
  int status_ = 0;
  std::chrono::steady_clock::time_point started_;
};

// The socket ResponseChannel. Every call hops onto the connection's strand; the channel's phase lives there.
// Until the response is complete or the client is gone, the channel owns its connection (a connection that
// waits on a handler may have no I/O outstanding to keep it alive); after that it lets go, and a channel
// kept longer just ignores what it is told.
class SocketChannel final : public ResponseChannel, public std::enable_shared_from_this<SocketChannel> {
 public:
  SocketChannel(std::shared_ptr<ServerCore> core, Strand strand, std::shared_ptr<Connection> connection)
      : core_(std::move(core)), strand_(strand), connection_(std::move(connection)) {}

  ~SocketChannel() override {
    // A handler that let go of its channel without answering would leave the client waiting forever.
    if (phase_ != Phase::kDone && !disconnected_.load() && !core_->stopped.load()) {
      asio::post(strand_, [connection = connection_, streaming = phase_ == Phase::kStreaming] {
        if (connection) connection->on_channel_abandoned(streaming);
      });
    }
  }

  void respond(HttpResponse response) override {
    run([self = shared_from_this(), response = std::move(response)]() mutable {
      if (self->phase_ != Phase::kPending || self->disconnected_.load()) return;
      auto c = self->finish();
      if (c) c->send_response(std::move(response));
    });
  }

  void begin_stream(int status, std::string content_type, Headers headers) override {
    run([self = shared_from_this(), status, content_type = std::move(content_type),
         headers = std::move(headers)]() mutable {
      if (self->phase_ != Phase::kPending || self->disconnected_.load()) return;
      self->phase_ = Phase::kStreaming;
      if (auto c = self->connection_) c->send_stream_head(status, content_type, headers);
    });
  }

  void write(std::string data) override {
    run([self = shared_from_this(), data = std::move(data)]() mutable {
      if (self->phase_ != Phase::kStreaming) return;
      if (auto c = self->connection_) c->send_chunk(std::move(data));
    });
  }

  void end_stream() override {
    run([self = shared_from_this()] {
      if (self->phase_ != Phase::kStreaming || self->disconnected_.load()) return;
      auto c = self->finish();
      if (c) c->send_stream_end();
    });
  }

  void on_disconnect(std::function<void()> callback) override {
    run([self = shared_from_this(), callback = std::move(callback)]() mutable {
      if (self->phase_ == Phase::kDone) return;  // complete: it can never fire
      if (self->disconnected_.load()) return run_guarded(callback, "on_disconnect callback");
      self->callbacks_.push_back(std::move(callback));
    });
  }

  bool disconnected() const override { return disconnected_.load(); }

  void post(std::function<void()> task) override {
    run([task = std::move(task)] { run_guarded(task, "a task posted to a connection"); });
  }

  // From the connection, on the strand, when the socket closes for any reason.
  void notify_disconnected() {
    if (disconnected_.exchange(true)) return;
    connection_.reset();
    if (phase_ == Phase::kDone) return;
    auto callbacks = std::move(callbacks_);
    callbacks_.clear();
    for (const auto& callback : callbacks) run_guarded(callback, "on_disconnect callback");
  }

  // The handler threw: answer 500 if nothing was sent yet, else cut the stream.
  void fail() {
    run([self = shared_from_this()] {
      Phase phase = self->phase_;
      if (phase == Phase::kDone) return;
      auto c = self->finish();
      if (!c) return;
      if (phase == Phase::kPending) {
        c->send_response(error_response(500, "internal server error"));
      } else {
        c->abort_response();
      }
    });
  }

 private:
  enum class Phase { kPending, kStreaming, kDone };

  // The response is complete: returns the connection for the last send and lets go of it.
  std::shared_ptr<Connection> finish() {
    phase_ = Phase::kDone;
    callbacks_.clear();  // they may hold this channel; never needed again
    return std::move(connection_);
  }

  // Onto the strand, or, once run() has returned and nothing will ever run there, inline (serialised).
  template <typename Task>
  void run(Task&& task) {
    if (core_->stopped.load()) {
      std::lock_guard lock(core_->inline_mutex);
      task();
      return;
    }
    asio::post(strand_, std::forward<Task>(task));
  }

  std::shared_ptr<ServerCore> core_;
  Strand strand_;
  std::shared_ptr<Connection> connection_;  // null once complete or disconnected
  Phase phase_ = Phase::kPending;
  std::atomic<bool> disconnected_{false};
  std::vector<std::function<void()>> callbacks_;
};

void Connection::on_request() {
  disarm_timer();
  auto& message = parser_->get();
  HttpRequest request;
  request.method = std::string(view(message.method_string()));
  request.target = std::string(view(message.target()));
  size_t question = request.target.find('?');
  request.path = request.target.substr(0, question);
  if (question != std::string::npos) request.query = request.target.substr(question + 1);
  for (const auto& field : message) {
    request.headers.emplace_back(std::string(view(field.name_string())), std::string(view(field.value())));
  }
  request.body = std::move(message.body());
  request.remote_address = remote_;
  keep_alive_ = message.keep_alive() && !core_->stopping.load();
  http10_ = message.version() < 11;
  head_request_ = message.method() == http::verb::head;
  parser_.reset();

  state_ = State::kResponding;
  response_finished_ = false;
  chunked_ = false;
  status_ = 0;
  method_ = request.method;
  target_ = request.target;
  started_ = std::chrono::steady_clock::now();
  auto channel = std::make_shared<SocketChannel>(core_, strand_, shared_from_this());
  channel_ = channel;
  if (buffer_.size() == 0 && !read_some_pending_) start_read_some();

  bool path_known = false;
  const Handler* handler = core_->router.find(request.method, request.path, &path_known);
  if (handler == nullptr) {
    if (path_known) {
      channel->respond(error_response(405, "method " + request.method + " is not allowed for " + request.path));
    } else {
      channel->respond(error_response(404, "no route for " + request.path));
    }
    return;
  }
  try {
    (*handler)(std::move(request), channel);
  } catch (const std::exception& e) {
    spdlog::error("http: handler for \"{} {}\" threw: {}", method_, target_, e.what());
    channel->fail();
  } catch (...) {
    spdlog::error("http: handler for \"{} {}\" threw a non-standard exception", method_, target_);
    channel->fail();
  }
}

void Connection::send_response(HttpResponse&& response) {
  if (state_ != State::kResponding || response_finished_) return;
  status_ = response.status;
  std::string out = status_head(response.status, keep_alive_);
  if (!response.content_type.empty()) append_header(out, "Content-Type", response.content_type);
  bool bodyless = response.status < 200 || response.status == 204 || response.status == 304;
  if (!bodyless) append_header(out, "Content-Length", std::to_string(response.body.size()));
  for (const auto& [name, value] : response.headers) append_header(out, name, value);
  out += "\r\n";
  if (!bodyless && !head_request_) out += response.body;
  response_finished_ = true;
  enqueue(std::move(out));
  maybe_complete();
}

void Connection::send_stream_head(int status, const std::string& content_type, const Headers& headers) {
  if (state_ != State::kResponding || response_finished_) return;
  status_ = status;
  // HTTP/1.0 has no chunked framing: the stream is the rest of the connection.
  chunked_ = !http10_;
  if (http10_) keep_alive_ = false;
  std::string out = status_head(status, keep_alive_);
  if (!content_type.empty()) append_header(out, "Content-Type", content_type);
  if (chunked_) out += "Transfer-Encoding: chunked\r\n";
  for (const auto& [name, value] : headers) append_header(out, name, value);
  out += "\r\n";
  enqueue(std::move(out));
}

void Connection::send_chunk(std::string&& data) {
  // An empty chunk would end the stream: skip it.
  if (state_ != State::kResponding || response_finished_ || data.empty() || head_request_) return;
  if (chunked_) {
    char size_line[24];
    int n = std::snprintf(size_line, sizeof(size_line), "%zx\r\n", data.size());
    data.insert(0, size_line, static_cast<size_t>(n));
    data += "\r\n";
  }
  enqueue(std::move(data));
}

void Connection::send_stream_end() {
  if (state_ != State::kResponding || response_finished_) return;
  response_finished_ = true;
  if (chunked_ && !head_request_) enqueue("0\r\n\r\n");
  maybe_complete();
}

void Connection::on_channel_abandoned(bool streaming) {
  if (state_ != State::kResponding || response_finished_) return;
  spdlog::error("http: the handler for \"{} {}\" dropped its channel without finishing the response", method_,
                target_);
  if (streaming) return close();
  send_response(error_response(500, "the server dropped this request without answering"));
}

void Connection::close() {
  if (state_ == State::kClosed) return;
  auto self = shared_from_this();  // the channel lets go of us below
  state_ = State::kClosed;
  disarm_timer();
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream_.socket().close(ec);
  queue_.clear();  // in_flight_ stays until its write handler runs: the kernel may still read it
  release_slot();
  if (auto channel = channel_.lock()) channel->notify_disconnected();
  channel_.reset();
}

void accept_next(const std::shared_ptr<ServerCore>& core) {
  if (core->stopping.load() || !core->acceptor.is_open()) return;
  Strand strand = asio::make_strand(core->ioc);
  core->acceptor.async_accept(strand, [core, strand](const beast::error_code& ec, tcp::socket socket) {
    if (core->stopping.load()) {
      beast::error_code ignored;
      socket.close(ignored);
      return;
    }
    if (ec) {
      // Out of file descriptors and the like: back off briefly rather than spin.
      spdlog::warn("http: accept failed: {}", ec.message());
      core->accept_retry_timer.expires_after(std::chrono::milliseconds(50));
      core->accept_retry_timer.async_wait([core](const beast::error_code& wait_ec) {
        if (!wait_ec) accept_next(core);
      });
      return;
    }
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);  // SSE chunks go out as they are written
    bool over_limit = core->open.load() >= core->limits.max_connections;
    auto connection = std::make_shared<Connection>(core, strand, std::move(socket), !over_limit);
    if (over_limit) {
      asio::post(strand, [connection] { connection->reject(); });
    } else {
      ++core->open;
      {
        std::lock_guard lock(core->connections_mutex);
        core->connections.emplace(connection.get(), connection);
      }
      asio::post(strand, [connection] { connection->start(); });
    }
    accept_next(core);
  });
}

}  // namespace

struct HttpServer::Impl {
  std::shared_ptr<ServerCore> core;
  int io_threads = 1;
};

HttpServer::HttpServer(Router router, HttpLimits limits, int io_threads) : impl_(std::make_unique<Impl>()) {
  impl_->io_threads = std::max(1, io_threads);
  impl_->core = std::make_shared<ServerCore>(std::move(router), limits, impl_->io_threads);
}

HttpServer::~HttpServer() {
  // run() has returned (or never ran): close the listener; whatever was posted since runs now, once.
  ServerCore& core = *impl_->core;
  std::lock_guard lock(core.inline_mutex);
  core.stopped = true;
  beast::error_code ec;
  core.acceptor.close(ec);
  try {
    core.ioc.restart();
    core.ioc.poll();
  } catch (...) {
  }
}

Status HttpServer::listen(const std::string& host, uint16_t port) {
  ServerCore& core = *impl_->core;
  beast::error_code ec;
  tcp::endpoint endpoint;
  asio::ip::address address = asio::ip::make_address(host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, port);
  } else {
    tcp::resolver resolver(core.ioc);
    auto results = resolver.resolve(host, std::to_string(port), tcp::resolver::passive, ec);
    if (ec || results.empty()) {
      return make_error(StatusCode::kInvalidArgument, "cannot resolve host '{}': {}", host,
                        ec ? ec.message() : "no address");
    }
    endpoint = results.begin()->endpoint();
  }
  auto fail = [&](const char* step) {
    beast::error_code ignored;
    core.acceptor.close(ignored);
    return make_error(StatusCode::kIoError, "cannot listen on {}:{} ({}): {}", host, port, step, ec.message());
  };
  if (core.acceptor.open(endpoint.protocol(), ec)) return fail("open");
  if (core.acceptor.set_option(asio::socket_base::reuse_address(true), ec)) return fail("reuse_address");
  if (core.acceptor.bind(endpoint, ec)) return fail("bind");
  if (core.acceptor.listen(asio::socket_base::max_listen_connections, ec)) return fail("listen");
  core.port = core.acceptor.local_endpoint(ec).port();
  spdlog::info("http: listening on {}:{}", host, core.port.load());
  return Status::ok_status();
}

uint16_t HttpServer::port() const { return impl_->core->port.load(); }

void HttpServer::run() {
  std::shared_ptr<ServerCore> core = impl_->core;
  asio::post(core->accept_strand, [core] { accept_next(core); });
  auto serve = [core] {
    for (;;) {
      try {
        core->ioc.run();
        return;
      } catch (const std::exception& e) {
        spdlog::error("http: an I/O thread caught: {}", e.what());
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 1; i < impl_->io_threads; ++i) threads.emplace_back(serve);
  serve();
  for (std::thread& thread : threads) thread.join();
  std::lock_guard lock(core->inline_mutex);
  core->stopped = true;
  try {
    core->ioc.restart();
    core->ioc.poll();  // tasks posted while the last threads were leaving
  } catch (...) {
  }
}

void HttpServer::shutdown(double drain_timeout_s) {
  std::shared_ptr<ServerCore> core = impl_->core;
  if (core->stopped.load()) return;
  asio::post(core->accept_strand, [core, drain_timeout_s] {
    if (core->stopping.exchange(true)) return;
    beast::error_code ec;
    core->acceptor.close(ec);
    core->accept_retry_timer.cancel();
    spdlog::info("http: shutting down; draining {} connection(s) for up to {} s", core->open.load(), drain_timeout_s);
    for (auto& connection : core->snapshot()) {
      asio::post(connection->strand(), [connection] { connection->on_server_stop(); });
    }
    if (core->open.load() == 0) return;
    auto drain = std::chrono::duration<double>(std::max(0.0, drain_timeout_s));
    core->drain_timer.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(drain));
    core->drain_timer.async_wait([core](const beast::error_code& wait_ec) {
      if (wait_ec) return;
      for (auto& connection : core->snapshot()) {
        asio::post(connection->strand(), [connection] { connection->force_close(); });
      }
    });
  });
}

int HttpServer::open_connections() const { return impl_->core->open.load(); }

}  // namespace radixlm::server
