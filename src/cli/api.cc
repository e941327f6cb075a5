#include "cli/api.h"

#include <utility>

namespace bifrost::cli {

Api::Api(std::unique_ptr<client::HttpClient> http, std::string token)
    : http_(std::move(http)), token_(std::move(token)) {}

CliResult<nlohmann::json> Api::Call(std::string_view method, const std::string& target,
                                    const std::optional<nlohmann::json>& body) {
  std::optional<std::string> body_text;
  if (body) body_text = body->dump();
  auto response =
      http_->Send(method, target,
                  body_text ? std::optional<std::string_view>(*body_text) : std::nullopt, token_);
  if (!response) return FromError(response.error());
  if (response->status < 200 || response->status >= 300) {
    return std::unexpected(ErrorForHttpResponse(response->status, response->body));
  }
  if (response->body.empty()) return nlohmann::json();
  nlohmann::json parsed =
      nlohmann::json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return CommandError("the server's answer to " + std::string(method) + " " + target +
                        " is not JSON (is BIFROST_ADDR a bifrost server?)");
  }
  return parsed;
}

}  // namespace bifrost::cli
