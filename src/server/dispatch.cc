#include "server/dispatch.h"

#include <array>
#include <string>
#include <string_view>

#include "common/text.h"
#include "server/errors.h"

namespace bifrost::server {
namespace {

// The methods an Allow header can list.
constexpr std::array<std::string_view, 6> kMethods = {"GET", "HEAD",  "POST",
                                                      "PUT", "PATCH", "DELETE"};

std::string AllowedMethods(const Router& router, std::string_view path) {
  std::string allowed;
  for (const std::string_view method : kMethods) {
    if (router.Find(method, path).handler == nullptr) continue;
    if (!allowed.empty()) allowed += ", ";
    allowed += method;
  }
  return allowed;
}

}  // namespace

Dispatcher MakeRouterDispatcher(const Router& router) {
  return [&router](HttpRequest& request, RequestLog& log) -> HttpResponse {
    const Router::Match match = router.Find(request.method, request.path);
    if (match.handler != nullptr) return (*match.handler)(request, match.params, log);
    if (match.status == 405) {
      HttpResponse response = ErrorResponse(
          405, "method_not_allowed",
          "method " + QuoteForMessage(request.method) + " is not allowed on this path");
      response.headers.emplace_back("Allow", AllowedMethods(router, request.path));
      return response;
    }
    return ErrorResponse(404, "not_found", "no endpoint at " + QuoteForMessage(request.path));
  };
}

RouteNamer MakeRouteNamer(const Router& router) {
  return [&router](const HttpRequest& request) -> std::string {
    return router.Find(request.method, request.path).route_template;
  };
}

}  // namespace bifrost::server
