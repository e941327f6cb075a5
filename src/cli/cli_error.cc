#include "cli/cli_error.h"

#include <nlohmann/json.hpp>

#include "cli/table.h"

namespace bifrost::cli {
namespace {

constexpr std::size_t kMaxServerMessage = 500;

std::string ServerMessage(std::string_view body) {
  const nlohmann::json parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) return {};
  const auto error = parsed.find("error");
  if (error == parsed.end() || !error->is_object()) return {};
  const auto message = error->find("message");
  if (message == error->end() || !message->is_string()) return {};
  // One line, bounded: a message is printed as-is only when it is printable.
  return PrintableCell(message->get<std::string>(), kMaxServerMessage);
}

}  // namespace

std::unexpected<CliError> FromError(const Error& error) {
  return std::unexpected<CliError>(
      CliError{error.code() == ErrorCode::kNotFound ? kExitNotFound : kExitError, error.message()});
}

int ExitCodeForHttpStatus(int status) {
  if (status >= 200 && status < 300) return kExitOk;
  if (status == 404) return kExitNotFound;
  return kExitError;
}

CliError ErrorForHttpResponse(int status, std::string_view body) {
  const std::string message = ServerMessage(body);
  CliError error;
  error.exit_code = ExitCodeForHttpStatus(status);
  if (error.exit_code == kExitOk) error.exit_code = kExitError;  // not an error response
  if (status == 401) {
    error.message =
        "authentication failed: invalid, expired or revoked token (check BIFROST_TOKEN)";
  } else if (status == 403) {
    error.message = "permission denied: " +
                    (message.empty() ? std::string("the token's role or organization does not "
                                                   "allow this")
                                     : message);
  } else if (!message.empty()) {
    error.message = message;
  } else {
    error.message = "the server answered HTTP " + std::to_string(status);
  }
  return error;
}

}  // namespace bifrost::cli
