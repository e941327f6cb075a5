// Connecting a Router to the HttpServer: the dispatcher that routes each request (404/405
// for paths and methods without a route), and the route namer the access log uses.
#pragma once

#include "server/http_server.h"
#include "server/http_types.h"

namespace bifrost::server {

// Routes with Router::Find and calls the handler. No route: 404 not_found; a path that
// exists with other methods: 405 method_not_allowed with an Allow header. `router` must
// outlive the dispatcher.
Dispatcher MakeRouterDispatcher(const Router& router);

// The route template of a request ("" when no route matches), for the access log.
RouteNamer MakeRouteNamer(const Router& router);

}  // namespace bifrost::server
