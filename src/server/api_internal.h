// Pieces shared by the API handler files (api.cc, api_orgs.cc, api_configs.cc,
// api_tokens.cc). Private to server/.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include "audit/audit.h"
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

// What the audit log records of a route (docs/audit.md). Every route records a failed
// authentication (auth.failure) and a permission denial (`action`, outcome denied).
enum class AuditMode {
  kDenials,   // a read: nothing more
  kMutation,  // the handler records its success inside the change's own transaction
              // (RecordInTxn); every other answer is recorded here as a failed attempt
  kReveal,    // every answer is recorded here; a success holds the response (the secret)
              // until its record is durable
};
struct AuditSpec {
  std::string_view action;  // audit::actions, or a read's name ("config.read")
  AuditMode mode = AuditMode::kDenials;
};

// The name of the browser session's cookie (docs/web-ui.md).
inline constexpr std::string_view kSessionCookieName = "bifrost_session";
// The value of the session cookie of `request`, or nullopt.
std::optional<std::string_view> SessionCookie(const HttpRequest& request);

// Authenticates "Authorization: Bearer <token>" or, without that header, the session cookie
// (then a method other than GET and HEAD needs X-CSRF-Token: 403 csrf_failed otherwise)
// (401 unauthenticated otherwise, with the
// one message for missing, malformed, unknown, expired and revoked tokens), records the
// token id in the request log, then runs `handler` and records what `audit` asks for.
// Guarded. Every record must be durable in every sink before the response leaves; when it
// cannot be, the client gets 503 instead (and a secret's body is wiped unsent).
// `allowed_query` names the query parameters the route reads; any other is a 400, so that a
// typo (`?expected-version=3`) cannot silently drop a condition.
Handler Authenticated(const SharedContext& context, AuditSpec audit, AuthedHandler handler,
                      std::vector<std::string> allowed_query = {});

// The audit event of this request: client address, request id, the principal as actor,
// org and config key from the path parameters.
audit::Event EventFor(const HttpRequest& request, const PathParams& params,
                      const auth::Principal* principal, std::string_view action,
                      audit::Outcome outcome);
// `response` leaves only once `event` is durable in every sink (503 otherwise): for routes
// that record outside Authenticated (sign-in).
HttpResponse HoldForRecord(const ApiContext& context, HttpResponse response, audit::Event event);
// `response` leaves only once the records committed with its change are in every sink.
HttpResponse HoldForSync(const ApiContext& context, HttpResponse response, std::string request_id);
// A hook that appends `event` (a success) inside a service's write transaction.
store::CommitHook RecordInTxn(const ApiContext& context, audit::Event event);

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
void RegisterAuditRoutes(Router& router, const SharedContext& context);
void RegisterWorkflowRoutes(Router& router, const SharedContext& context);
void RegisterSessionRoutes(Router& router, const SharedContext& context);  // auth and users
void RegisterWebRoutes(Router& router, const SharedContext& context);      // the UI's assets

}  // namespace bifrost::server::api_internal
