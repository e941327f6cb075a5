#include "cli/api.h"

#include <utility>

#include "config/json_text.h"

namespace bifrost::cli {

Api::Api(std::unique_ptr<client::HttpClient> http, std::string token)
    : http_(std::move(http)), token_(std::move(token)) {}

CliResult<std::string> Api::CallText(std::string_view method, const std::string& target,
                                     std::optional<std::string_view> body_text) {
  auto response = http_->Send(method, target, body_text, token_);
  if (!response) return FromError(response.error());
  if (response->status < 200 || response->status >= 300) {
    return std::unexpected(ErrorForHttpResponse(response->status, response->body));
  }
  if (!response->body.empty() && config::json_text::Check(response->body)) {
    return CommandError("the server's answer to " + std::string(method) + " " + target +
                        " is not JSON (is BIFROST_ADDR a bifrost server?)");
  }
  return std::move(response->body);
}

CliResult<nlohmann::json> Api::Call(std::string_view method, const std::string& target,
                                    const std::optional<nlohmann::json>& body) {
  std::optional<std::string> body_text;
  if (body) {
    try {
      body_text = body->dump();  // strict: throws on invalid UTF-8 rather than alter the text
    } catch (const nlohmann::json::exception&) {
      // The message would quote a byte of the argument; which argument is the command's to say.
      return UsageError("an argument is not valid UTF-8");
    }
  }
  BIFROST_CLI_ASSIGN(std::string text, CallText(method, target, body_text));
  if (text.empty()) return nlohmann::json();
  nlohmann::json parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return CommandError("the server's answer to " + std::string(method) + " " + target +
                        " is not JSON this command can read");
  }
  return parsed;
}

}  // namespace bifrost::cli
