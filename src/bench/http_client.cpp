#include "bench/http_client.h"

#include <chrono>
#include <limits>

#include <boost/asio/connect.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace radixlm::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

class HttpExchange : public std::enable_shared_from_this<HttpExchange> {
 public:
  HttpExchange(asio::io_context& io, HttpExchangeSpec spec, HttpExchangeCallbacks callbacks)
      : stream_(io), spec_(std::move(spec)), callbacks_(std::move(callbacks)) {}

  void start(const tcp::resolver::results_type& endpoints) {
    const http::verb verb = http::string_to_verb(spec_.method);
    if (verb == http::verb::unknown) {
      request_.method_string(spec_.method);
    } else {
      request_.method(verb);
    }
    request_.target(spec_.target);
    request_.version(11);
    request_.set(http::field::host, spec_.host_header);
    request_.set(http::field::user_agent, "radixlm-bench");
    request_.keep_alive(false);
    for (const auto& [name, value] : spec_.headers) request_.set(name, value);
    request_.body() = std::move(spec_.body);
    request_.prepare_payload();
    parser_.body_limit(std::numeric_limits<std::uint64_t>::max());
    if (spec_.timeout_s > 0) {
      stream_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::duration<double>(spec_.timeout_s)));
    }
    stream_.async_connect(endpoints, [self = shared_from_this()](beast::error_code ec, const tcp::endpoint&) {
      if (ec) return self->finish("connect: " + ec.message());
      http::async_write(self->stream_, self->request_, [self](beast::error_code ec2, std::size_t) {
        if (ec2) return self->finish("send: " + ec2.message());
        self->read_more();
      });
    });
  }

 private:
  void read_more() {
    http::async_read_some(stream_, buffer_, parser_,
                          [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (!status_reported_ && parser_.is_header_done()) {
      status_reported_ = true;
      if (callbacks_.on_status) callbacks_.on_status(static_cast<int>(parser_.get().result_int()));
    }
    std::string& body = parser_.get().body();
    if (!body.empty()) {
      if (callbacks_.on_body) callbacks_.on_body(body);
      body.clear();  // the string body appends at its current end, so clearing bounds memory on long streams
    }
    if (parser_.is_done()) return finish("");
    if (ec) return finish(ec == beast::error::timeout ? "timed out" : "receive: " + ec.message());
    read_more();
  }

  void finish(std::string error) {
    if (done_) return;
    done_ = true;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    if (callbacks_.on_done) callbacks_.on_done(std::move(error));
  }

  beast::tcp_stream stream_;
  HttpExchangeSpec spec_;
  HttpExchangeCallbacks callbacks_;
  http::request<http::string_body> request_;
  http::response_parser<http::string_body> parser_;
  beast::flat_buffer buffer_;
  bool status_reported_ = false;
  bool done_ = false;
};

}  // namespace

void start_http_exchange(asio::io_context& io, const tcp::resolver::results_type& endpoints, HttpExchangeSpec spec,
                         HttpExchangeCallbacks callbacks) {
  std::make_shared<HttpExchange>(io, std::move(spec), std::move(callbacks))->start(endpoints);
}

Expected<tcp::resolver::results_type> resolve(asio::io_context& io, const ServerAddress& address) {
  tcp::resolver resolver(io);
  beast::error_code ec;
  auto endpoints = resolver.resolve(address.host, std::to_string(address.port), ec);
  if (ec) return make_error(StatusCode::kInvalidArgument, "cannot resolve '{}': {}", address.host, ec.message());
  return endpoints;
}

Expected<SimpleResponse> http_fetch(const ServerAddress& address, std::string method, std::string_view route,
                                    std::string body, HttpHeaders headers, double timeout_s) {
  asio::io_context io;
  RADIXLM_ASSIGN_OR_RETURN(auto endpoints, resolve(io, address));
  HttpExchangeSpec spec;
  spec.method = method;
  spec.target = address.target(route);
  spec.host_header = fmt::format("{}:{}", address.host, address.port);
  spec.headers = std::move(headers);
  if (!body.empty()) spec.headers.emplace_back("Content-Type", "application/json");
  spec.body = std::move(body);
  spec.timeout_s = timeout_s;
  SimpleResponse response;
  std::string error;
  start_http_exchange(io, endpoints, std::move(spec),
                      {[&](int status) { response.status = status; },
                       [&](std::string_view bytes) { response.body.append(bytes); },
                       [&](std::string e) { error = std::move(e); }});
  io.run();
  if (!error.empty()) {
    return make_error(StatusCode::kIoError, "{} {}: {}", method, address.target(route), error);
  }
  return response;
}

}  // namespace radixlm::bench
