#include "server/api.h"
#include "common/text.h"

#include <algorithm>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <utility>

#include "server/api_internal.h"
#include "server/errors.h"
#include "server/openapi_document.h"

namespace bifrost::server {
namespace api_internal {
namespace {

// The one message for every credential that does not identify a live token, so a caller
// cannot tell a missing header from a revoked token (auth::TokenService uses it too).
constexpr std::string_view kUnauthenticatedMessage = "invalid, expired or revoked token";

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// The token of "Bearer <token>" (scheme case-insensitive, RFC 7235), or nullopt.
std::optional<std::string_view> BearerToken(std::string_view header) {
  constexpr std::string_view kScheme = "bearer";
  if (header.size() <= kScheme.size() ||
      !EqualsIgnoringCase(header.substr(0, kScheme.size()), kScheme) ||
      header[kScheme.size()] != ' ') {
    return std::nullopt;
  }
  std::string_view token = header.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
  if (token.empty()) return std::nullopt;
  return token;
}

HttpResponse Unauthenticated(const Error& error, const HttpRequest& request) {
  HttpResponse response = ServiceError(error, request);
  if (response.status == 401) {
    response.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"bifrost\"");
  }
  return response;
}

}  // namespace

Handler Guarded(Handler handler) {
  return [handler = std::move(handler)](const HttpRequest& request, const PathParams& params,
                                        RequestLog& log) -> HttpResponse {
    try {
      return handler(request, params, log);
    } catch (...) {
      // The exception's text is not printed: parser and library messages can quote input.
      std::fprintf(stderr, "bifrost: unexpected exception in %s %s (request id %s)\n",
                   request.method.c_str(), request.path.c_str(), request.request_id.c_str());
      return ServiceError(Error(ErrorCode::kInternal, "unexpected exception"), request);
    }
  };
}

Handler Authenticated(const SharedContext& context, AuthedHandler handler,
                      std::vector<std::string> allowed_query) {
  return Guarded([context, handler, allowed_query](const HttpRequest& request,
                                                   const PathParams& params,
                                                   RequestLog& log) -> HttpResponse {
    const auto token = BearerToken(request.Header("authorization"));
    if (!token) {
      return Unauthenticated(
          Error(ErrorCode::kUnauthenticated, std::string(kUnauthenticatedMessage)), request);
    }
    auto principal = context->tokens->Authenticate(*token);
    if (!principal) return Unauthenticated(principal.error(), request);
    log.token_id = principal->token_id;
    for (const auto& [name, value] : request.query) {
      if (std::find(allowed_query.begin(), allowed_query.end(), name) == allowed_query.end()) {
        std::string accepted;
        for (const auto& a : allowed_query) accepted += (accepted.empty() ? "" : ", ") + a;
        return ErrorResponse(400, "bad_request",
                             "unknown query parameter " + QuoteForMessage(name) +
                                 (accepted.empty() ? "; this route takes none"
                                                   : "; this route takes " + accepted));
      }
    }
    return handler(*context, request, params, *principal);
  });
}

std::optional<HttpResponse> Deny(const auth::Principal& principal, auth::Action action,
                                 const auth::Target& target, const HttpRequest& request) {
  auto allowed = auth::Authorize(principal, action, target);
  if (allowed) return std::nullopt;
  return ServiceError(allowed.error(), request);
}

HttpResponse JsonResponse(int status, const Json& body) {
  HttpResponse response;
  response.status = status;
  response.body = json_io::Dump(body);
  return response;
}

HttpResponse NoContent() {
  HttpResponse response;
  response.status = 204;
  return response;
}

HttpResponse BadRequest(std::string_view message) {
  return ErrorResponse(400, "bad_request", message);
}

HttpResponse ServiceError(const Error& error, const HttpRequest& request) {
  return ErrorResponse(error, request.request_id);
}

}  // namespace api_internal

namespace {

using api_internal::Json;
using api_internal::JsonResponse;

HttpResponse WhoAmI(const ApiContext&, const HttpRequest&, const PathParams&,
                    const auth::Principal& principal) {
  return JsonResponse(200, {{"token_id", principal.token_id},
                            {"name", principal.token_name},
                            {"role", auth::RoleName(principal.role)},
                            {"org_id", principal.org_id ? Json(*principal.org_id) : Json()}});
}

}  // namespace

void RegisterApiRoutes(Router& router, const ApiContext& context) {
  if (context.config == nullptr || context.tokens == nullptr) {
    std::fprintf(stderr, "bifrost: RegisterApiRoutes needs a config and a token service\n");
    std::abort();
  }
  const auto shared = std::make_shared<const ApiContext>(context);

  router.Add("GET", "/healthz",
             api_internal::Guarded([](const HttpRequest&, const PathParams&, RequestLog&) {
               return JsonResponse(200, {{"status", "ok"}});
             }));

  router.Add("GET", "/readyz",
             api_internal::Guarded([shared](const HttpRequest&, const PathParams&, RequestLog&) {
               if (shared->ready && shared->ready()) {
                 return JsonResponse(200, {{"status", "ready"}});
               }
               return ErrorResponse(503, "unavailable",
                                    "not ready: the database is not open or the secret key "
                                    "has not been verified against it");
             }));

  router.Add("GET", "/api/v1/openapi.json",
             api_internal::Guarded([](const HttpRequest&, const PathParams&, RequestLog&) {
               HttpResponse response;
               response.content_type = "application/json";
               response.body = std::string(OpenApiDocument());
               return response;
             }));

  router.Add("GET", "/api/v1/whoami", api_internal::Authenticated(shared, WhoAmI));

  api_internal::RegisterOrgRoutes(router, shared);
  api_internal::RegisterConfigRoutes(router, shared);
  api_internal::RegisterTokenRoutes(router, shared);
}

}  // namespace bifrost::server
