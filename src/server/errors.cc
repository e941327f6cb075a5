#include "server/errors.h"

#include <nlohmann/json.hpp>
#include <string>

namespace bifrost::server {

int HttpStatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return 422;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kConflict:
    case ErrorCode::kFailedPrecondition: return 409;
    case ErrorCode::kUnauthenticated: return 401;
    case ErrorCode::kPermissionDenied: return 403;
    case ErrorCode::kUnavailable: return 503;
    case ErrorCode::kIntegrity:
    case ErrorCode::kKeyMismatch:
    case ErrorCode::kCorrupt:
    case ErrorCode::kInternal: return 500;
  }
  return 500;
}

HttpResponse ErrorResponse(int status, std::string_view code, std::string_view message) {
  nlohmann::json body = {{"error", {{"code", code}, {"message", message}}}};
  HttpResponse response;
  response.status = status;
  // Messages may quote user input; replace invalid UTF-8 instead of failing to serialise.
  response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return response;
}

HttpResponse ErrorResponse(const Error& error, std::string_view request_id) {
  const int status = HttpStatusFor(error.code());
  if (status == 500) {
    return ErrorResponse(500, "internal",
                         "internal error; the server log has the details under request id " +
                             std::string(request_id));
  }
  if (status == 503) {
    // What was unavailable is the server's business: a store's message names the database
    // (its host, its name, a socket path) or a file, and any client may be answered with it.
    std::string message =
        "temporarily unavailable; retry later (the server log has the details under request "
        "id ";
    message += request_id;
    message += ")";
    // A passing state (the database unreachable or busy): the client may try again, here
    // or on another node.
    HttpResponse response = ErrorResponse(503, ErrorCodeName(error.code()), message);
    response.headers.emplace_back("Retry-After", "1");
    return response;
  }
  return ErrorResponse(status, ErrorCodeName(error.code()), error.message());
}

}  // namespace bifrost::server
