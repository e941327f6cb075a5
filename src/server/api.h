// The REST API of docs/openapi.json: one handler per path and method, on a Router.
//
// Every /api/v1 route except /api/v1/openapi.json and the sign-in route authenticates the
// bearer token (or a browser session's cookie, docs/web-ui.md) and then
// asks auth::Authorize about the action and its target before any data is read, so a token
// of one organization asking about another gets 403 whether or not that organization
// exists. Organization-scoped config goes through ConfigService::ForOrg (a view that cannot
// name another organization). Service errors become responses in server/errors.h, the one
// mapping; malformed requests (bad JSON, wrong field types, unknown fields) are 400
// bad_request. A secret's value appears only in a reveal response, never in an error.
//
// Handlers do not throw: an unexpected exception becomes a 500 naming the request id. Every
// 500 writes one JSON event line to `log` with that request id, the error code and the
// service's message (which never holds a value or a secret); the client sees neither.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "audit/audit.h"
#include "auth/auth.h"
#include "auth/users.h"
#include "common/clock.h"
#include "config/config_service.h"
#include "server/http_types.h"
#include "store/store.h"
#include "workflow/runtime.h"

namespace bifrost::server {

class AccessLog;

// What the handlers work with. The pointed-to services must outlive the Router the routes
// are registered on; `config`, `tokens` and `audit` are required. /readyz answers 200 when `ready`
// says the server is serving (an empty function counts as not ready) and a read
// transaction on `store` (when set) lists its key checks; that database check runs at most
// once a second by `clock` (the system clock when null). `log` receives the details of
// 500s and of failed readiness checks (nullptr: a log on stderr).
struct ApiContext {
  config::ConfigService* config;
  auth::TokenService* tokens;
  audit::AuditLog* audit;  // required: every reveal, change and denial is recorded
  store::Store* store;
  const Clock* clock;
  std::function<bool()> ready;
  AccessLog* log = nullptr;
  // The workflow runtime; nullptr: the workflow and execution routes answer that this
  // server runs no workflows.
  workflow::Runtime* workflows = nullptr;
  // Users and their browser sessions (docs/web-ui.md); nullptr: only bearer tokens are
  // accepted and the user and sign-in routes answer 503.
  auth::UserService* users = nullptr;
  auth::SessionService* sessions = nullptr;
  // The session cookie is marked Secure (the server runs TLS).
  bool secure_cookies = false;
  // Addresses of reverse proxies whose X-Forwarded-For names the client that the sign-in
  // limit per address counts (--trusted-proxy); empty: the connection's address counts.
  std::vector<std::string> trusted_proxies;
  // Walks the audit chain with every key the server has (GET /api/v1/audit/verify); empty:
  // the route answers 503.
  std::function<Result<audit::VerifyReport>()> verify_audit;
};

// Registers every path and method of docs/openapi.json on `router`, and nothing else.
void RegisterApiRoutes(Router& router, const ApiContext& context);

}  // namespace bifrost::server
