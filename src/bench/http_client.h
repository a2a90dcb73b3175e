#pragma once
// The benchmark's HTTP/1.1 client over Boost.Beast: one exchange per connection (as bench_serving's
// per-request aiohttp sessions do), body bytes handed over as they arrive so a streamed answer can be timed
// event by event, whether the server frames it with chunked transfer or Content-Length. A failure (refused
// connection, reset, malformed response, timeout) ends the exchange with an error string, never an
// exception.

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "bench/url.h"
#include "core/status.h"

namespace radixlm::bench {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpExchangeCallbacks {
  std::function<void(int status)> on_status;           // once, when the header is in
  std::function<void(std::string_view bytes)> on_body;  // body bytes, in order, as they arrive
  std::function<void(std::string error)> on_done;      // once, last; empty when the response was complete
};

struct HttpExchangeSpec {
  std::string method = "POST";
  std::string target;  // path (and query)
  std::string host_header;
  HttpHeaders headers;
  std::string body;
  double timeout_s = 0.0;  // for the whole exchange; 0: none
};

// Starts one exchange on `io` (the callbacks run on the thread running it).
void start_http_exchange(boost::asio::io_context& io, const boost::asio::ip::tcp::resolver::results_type& endpoints,
                         HttpExchangeSpec spec, HttpExchangeCallbacks callbacks);

Expected<boost::asio::ip::tcp::resolver::results_type> resolve(boost::asio::io_context& io,
                                                                const ServerAddress& address);

struct SimpleResponse {
  int status = 0;
  std::string body;
};

// A blocking exchange with a complete answer: model discovery, /flush_cache, /get_server_info.
Expected<SimpleResponse> http_fetch(const ServerAddress& address, std::string method, std::string_view route,
                                    std::string body, HttpHeaders headers, double timeout_s);

}  // namespace radixlm::bench
