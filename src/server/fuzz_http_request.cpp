// libFuzzer target: arbitrary bytes sent to a live HttpServer over loopback, then the write side shut.
// The server must never crash, hang or answer with something that is not an HTTP/1.1 response; small limits
// put the 413/431/400 paths, pipelining, Expect: 100-continue and streaming within the fuzzer's reach.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include <spdlog/spdlog.h>

#include "server/http_server.h"

namespace {

using radixlm::server::HttpLimits;
using radixlm::server::HttpRequest;
using radixlm::server::HttpResponse;
using radixlm::server::HttpServer;
using radixlm::server::ResponseChannel;
using radixlm::server::Router;

HttpServer& server() {
  static HttpServer* instance = [] {
    spdlog::set_level(spdlog::level::off);
    Router router;
    router.add("POST", "/echo", [](HttpRequest request, std::shared_ptr<ResponseChannel> channel) {
      HttpResponse response;
      response.body = request.body;
      channel->respond(std::move(response));
    });
    router.add("POST", "/stream", [](HttpRequest request, std::shared_ptr<ResponseChannel> channel) {
      channel->begin_stream(200, "text/event-stream");
      for (size_t at = 0; at < request.body.size(); at += 7) channel->write(request.body.substr(at, 7));
      channel->end_stream();
    });
    router.add_prefix("GET", "/later/", [](HttpRequest request, std::shared_ptr<ResponseChannel> channel) {
      channel->post([channel, path = request.path] {
        HttpResponse response;
        response.body = path;
        channel->respond(std::move(response));
      });
    });
    HttpLimits limits;
    limits.max_body_bytes = 256;
    limits.max_header_bytes = 512;
    limits.request_timeout_s = 2;
    limits.idle_timeout_s = 2;
    auto* created = new HttpServer(std::move(router), limits, 2);
    if (!created->listen("127.0.0.1", 0).ok()) std::abort();
    std::thread([created] { created->run(); }).detach();
    return created;
  }();
  return *instance;
}

// libFuzzer's -timeout alarm (SIGALRM) interrupts system calls. An interrupted call is resumed, never taken
// for a hang or a failure: misread, it once failed CI with a "hang" the server never had.

// poll() for `events` on fd within `timeout`: whether they came.
bool wait_for(int fd, short events, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    pollfd p{fd, events, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    const int ready = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
    if (ready >= 0 || errno != EINTR) return ready > 0;
  }
}

// connect() to the server; an interrupted connect completes in the background, so wait for it.
bool connect_to(int fd, const sockaddr_in& address) {
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0) return true;
  if (errno != EINTR || !wait_for(fd, POLLOUT, std::chrono::seconds(5))) return false;
  int error = 0;
  socklen_t length = sizeof(error);
  return ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  uint16_t port = server().port();
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (!connect_to(fd, address)) std::abort();
  size_t sent = 0;
  while (sent < size) {
    ssize_t n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the server closed early (an error response): fine
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  std::string reply;
  for (;;) {
    if (!wait_for(fd, POLLIN, std::chrono::seconds(5))) std::abort();  // neither answered nor closed: a hang
    char buffer[4096];
    ssize_t n = 0;
    do {
      n = ::recv(fd, buffer, sizeof(buffer), 0);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) break;
    reply.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  if (!reply.empty() && reply.rfind("HTTP/1.1 ", 0) != 0) std::abort();
  return 0;
}
