#include "server/router.h"

#include <memory>

#include "server/api_error.h"
#include "server/auth.h"
#include "server/native_routes.h"
#include "server/openai_routes.h"

namespace radixlm::server {

Router make_router(ServingContext& context) {
  // Every route goes into an inner router; the outer one sends each request through the auth check first,
  // as SGLang's middleware does, so an unauthenticated client learns nothing, not even which paths exist.
  auto routes = std::make_shared<Router>();
  add_openai_routes(*routes, context);
  add_native_routes(*routes, context);

  ServingContext* ctx = &context;
  Router router;
  for (const char* method : {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}) {
    router.add_prefix(method, "/", [ctx, routes](HttpRequest request, std::shared_ptr<ResponseChannel> channel) {
      if (std::optional<HttpResponse> refusal = check_auth(request, *ctx)) {
        channel->respond(std::move(*refusal));
        return;
      }
      bool path_known = false;
      const Handler* handler = routes->find(request.method, request.path, &path_known);
      if (handler == nullptr) {
        channel->respond(path_known ? error_response(405, "method " + request.method + " is not allowed for " + request.path)
                                    : error_response(404, "no route for " + request.path));
        return;
      }
      (*handler)(std::move(request), std::move(channel));
    });
  }
  return router;
}

}  // namespace radixlm::server
