// The web UI: GET / (web/index.html) and GET /assets/{name} (every file of web/), served
// from the copy compiled into the binary (server/web_assets.h). The security headers every
// response carries (Content-Security-Policy among them) are set by the HTTP server.
#include <string>
#include <string_view>

#include "common/text.h"
#include "server/api_internal.h"
#include "server/errors.h"
#include "server/web_assets.h"

namespace bifrost::server::api_internal {
namespace {

std::string_view ContentTypeOf(std::string_view name) {
  const auto ends = [&](std::string_view suffix) { return name.ends_with(suffix); };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js") || ends(".mjs")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  if (ends(".ico")) return "image/x-icon";
  if (ends(".json")) return "application/json";
  if (ends(".txt")) return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

const WebAsset* FindAsset(std::string_view name) {
  for (const WebAsset& asset : WebAssets()) {
    if (asset.name == name) return &asset;
  }
  return nullptr;
}

HttpResponse AssetResponse(std::string_view name, const HttpRequest& request) {
  const WebAsset* asset = FindAsset(name);
  if (asset == nullptr) {
    return ErrorResponse(404, "not_found",
                         "no file of the web UI is called " + QuoteForMessage(name) +
                             " (request id " + request.request_id + ")");
  }
  HttpResponse response;
  response.content_type = std::string(ContentTypeOf(asset->name));
  response.body = std::string(asset->data);
  return response;
}

}  // namespace

void RegisterWebRoutes(Router& router, const SharedContext& context) {
  router.Add("GET", "/",
             Guarded(context->log, [](const HttpRequest& request, const PathParams&, RequestLog&) {
               return AssetResponse("index.html", request);
             }));
  router.Add(
      "GET", "/assets/{name}",
      Guarded(context->log, [](const HttpRequest& request, const PathParams& params, RequestLog&) {
        return AssetResponse(params.at("name"), request);
      }));
}

}  // namespace bifrost::server::api_internal
