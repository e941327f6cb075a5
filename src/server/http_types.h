// HTTP requests and responses as plain C++ values, independent of Boost.Beast, so handlers
// and their tests never see the transport.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bifrost::server {

struct HttpRequest {
  std::string method;                          // "GET", "PUT", ...
  std::string path;                            // percent-decoded path, without the query
  std::map<std::string, std::string> query;    // decoded query parameters (last one wins)
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string request_id;      // assigned by the server, echoed as X-Request-Id
  std::string client_address;  // "ip:port"

  // The header's value, or "" (name in lower case).
  std::string_view Header(std::string_view lower_name) const;
};

struct HttpResponse;

// How a held response is let go: with nullopt the response is sent as it is; with a
// response, that one is sent instead and the held body is wiped unsent.
using ReleaseResponse = std::function<void(std::optional<HttpResponse> replacement)>;
// Called once by the server with the release function, which it may call later from any
// thread (exactly once).
using ResponseHold = std::function<void(ReleaseResponse release)>;

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  // When set, the response may only leave once something else has happened: the audit
  // record of a reveal made durable. The server keeps the connection's request dispatched
  // (and the pool thread free) until `hold` releases it.
  ResponseHold hold;
  // For the audit record of this request (not sent): the organization the handler found
  // the target in, when the path does not name one (an execution by its id). Set only after
  // the caller was found allowed to act in that organization.
  std::optional<std::string> audit_org_id;
};

// What a handler reports for the access log, besides what the server knows itself.
struct RequestLog {
  std::string token_id;  // the authenticated token's id, or ""
};

// Path parameters of a matched route template, e.g. {"org_id": "...", "key": "api_key"}.
using PathParams = std::map<std::string, std::string>;

using Handler = std::function<HttpResponse(const HttpRequest&, const PathParams&, RequestLog&)>;

// Routes by method and path template ("/api/v1/orgs/{org_id}/configs/{key}"). A template
// segment "{name}" matches one non-empty path segment. Literal segments win over
// parameters. Thread-safety: build it once, then Match() from any thread.
class Router {
 public:
  void Add(std::string method, std::string path_template, Handler handler);

  struct Match {
    const Handler* handler = nullptr;  // nullptr: no route (see status)
    PathParams params;
    std::string route_template;  // for the access log; "" when nothing matched
    int status = 200;            // 404 no such path, 405 path exists with other methods
  };
  Match Find(std::string_view method, std::string_view path) const;

  // Every (method, template) pair, for checking the OpenAPI document against the code.
  std::vector<std::pair<std::string, std::string>> Routes() const;

 private:
  struct Route {
    std::string method;
    std::string path_template;
    std::vector<std::string> segments;
    Handler handler;
  };
  std::vector<Route> routes_;
};

}  // namespace bifrost::server
