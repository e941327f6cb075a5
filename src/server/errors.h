// The one place where errors become HTTP statuses and JSON error bodies.
#pragma once

#include <string_view>

#include "common/status.h"
#include "server/http_types.h"

namespace bifrost::server {

// 422 invalid_argument, 404 not_found, 409 already_exists/conflict/failed_precondition,
// 401 unauthenticated, 403 permission_denied, 503 unavailable, 500 for everything else.
int HttpStatusFor(ErrorCode code);

// {"error": {"code": code, "message": message}} with `status`.
HttpResponse ErrorResponse(int status, std::string_view code, std::string_view message);

// The response for a service-layer error. A 500's message is replaced by a generic one
// naming the request id: internals (integrity failures, corrupt rows, library errors) are
// for the server log, not for the client. So is a 503's (it would name the database or
// file that could not be reached), which also carries `Retry-After: 1`.
HttpResponse ErrorResponse(const Error& error, std::string_view request_id);

}  // namespace bifrost::server
