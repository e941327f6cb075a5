// The REST API of docs/openapi.json: one handler per path and method, on a Router.
//
// Every /api/v1 route except /api/v1/openapi.json authenticates the bearer token and then
// asks auth::Authorize about the action and its target before any data is read, so a token
// of one organization asking about another gets 403 whether or not that organization
// exists. Organization-scoped config goes through ConfigService::ForOrg (a view that cannot
// name another organization). Service errors become responses in server/errors.h, the one
// mapping; malformed requests (bad JSON, wrong field types, unknown fields) are 400
// bad_request. A secret's value appears only in a reveal response, never in an error.
//
// Handlers do not throw: an unexpected exception becomes a 500 naming the request id.
#pragma once

#include <functional>

#include "auth/auth.h"
#include "common/clock.h"
#include "config/config_service.h"
#include "server/http_types.h"
#include "store/store.h"

namespace bifrost::server {

// What the handlers work with. The pointed-to services must outlive the Router the routes
// are registered on; `config` and `tokens` are required. `ready` answers /readyz (database
// open and key verified); an empty function counts as not ready.
struct ApiContext {
  config::ConfigService* config;
  auth::TokenService* tokens;
  store::Store* store;
  const Clock* clock;
  std::function<bool()> ready;
};

// Registers every path and method of docs/openapi.json on `router`, and nothing else.
void RegisterApiRoutes(Router& router, const ApiContext& context);

}  // namespace bifrost::server
