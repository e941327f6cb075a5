// Pieces shared by the API handler files (api.cc, api_orgs.cc, api_configs.cc,
// api_tokens.cc). Private to server/.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include "auth/auth.h"
#include "common/status.h"
#include "server/api.h"
#include "server/http_types.h"
#include "server/json_io.h"

namespace bifrost::server::api_internal {

using json_io::Json;

// The context every handler captures; one copy shared by all routes of a Router.
using SharedContext = std::shared_ptr<const ApiContext>;

// A handler that runs after the bearer token was authenticated.
using AuthedHandler = HttpResponse (*)(const ApiContext& context, const HttpRequest& request,
                                       const PathParams& params, const auth::Principal& principal);

// `handler` behind the exception guard: anything thrown becomes a 500 internal response
// naming the request id (the exception's text is not used: it may quote input). While
// `handler` runs, ServiceError reports 500s to `log` (nullptr: a log on stderr).
Handler Guarded(AccessLog* log, Handler handler);

// Authenticates "Authorization: Bearer <token>" (401 unauthenticated otherwise, with the
// one message for missing, malformed, unknown, expired and revoked tokens), records the
// token id in the request log, then runs `handler`. Guarded.
// `allowed_query` names the query parameters the route reads; any other is a 400, so that a
// typo (`?expected-version=3`) cannot silently drop a condition.
Handler Authenticated(const SharedContext& context, AuthedHandler handler,
                      std::vector<std::string> allowed_query = {});

// nullopt if `principal` may do `action` on `target`, else the 403 to send.
std::optional<HttpResponse> Deny(const auth::Principal& principal, auth::Action action,
                                 const auth::Target& target, const HttpRequest& request);

HttpResponse JsonResponse(int status, const Json& body);
HttpResponse NoContent();                           // 204, empty body
HttpResponse BadRequest(std::string_view message);  // 400 bad_request
// A service-layer error through the one mapping (server/errors.h). A 500 (whose body names
// only the request id) also writes one event line, "internal error", with the request id,
// the error's code and its message, to the log of the Guarded handler running on this
// thread.
HttpResponse ServiceError(const Error& error, const HttpRequest& request);

// Route groups, registered by RegisterApiRoutes.
void RegisterOrgRoutes(Router& router, const SharedContext& context);
void RegisterConfigRoutes(Router& router, const SharedContext& context);
void RegisterTokenRoutes(Router& router, const SharedContext& context);

}  // namespace bifrost::server::api_internal
