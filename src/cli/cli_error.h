// How a CLI command fails: the one line printed on stderr and the process exit code.
#pragma once

#include <expected>
#include <string>
#include <string_view>

#include "common/status.h"

namespace bifrost::cli {

// Exit codes, the CLI's contract with scripts (docs/cli.md).
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;     // anything else: server refused, unreachable, ...
inline constexpr int kExitUsage = 2;     // bad flags or flag combinations, missing BIFROST_TOKEN
inline constexpr int kExitNotFound = 3;  // the thing asked for does not exist (HTTP 404)

struct CliError {
  int exit_code = kExitError;
  std::string message;  // printed as "bifrost: <message>"; one line, never a secret
};

template <typename T>
class [[nodiscard]] CliResult : public std::expected<T, CliError> {
 public:
  using std::expected<T, CliError>::expected;
};
using CliStatus = CliResult<void>;

inline std::unexpected<CliError> UsageError(std::string message) {
  return std::unexpected<CliError>(CliError{kExitUsage, std::move(message)});
}
inline std::unexpected<CliError> CommandError(std::string message) {
  return std::unexpected<CliError>(CliError{kExitError, std::move(message)});
}
inline std::unexpected<CliError> NotFoundError(std::string message) {
  return std::unexpected<CliError>(CliError{kExitNotFound, std::move(message)});
}
// A library error (transport, local validation): exit 3 for kNotFound, else 1.
std::unexpected<CliError> FromError(const Error& error);

// 0 for 2xx, 3 for 404, 1 for every other status.
int ExitCodeForHttpStatus(int status);

// The failure for a non-2xx response: the server's error message when the body has one
// ({"error": {"code", "message"}}), a fixed explanation for 401, "permission denied: ..."
// for 403, and "the server answered HTTP <status>" when there is no message.
CliError ErrorForHttpResponse(int status, std::string_view body);

}  // namespace bifrost::cli

// `BIFROST_CLI_ASSIGN(auto x, Compute());` binds the value or returns the CliError.
#define BIFROST_CLI_ASSIGN(lhs, expr) \
  BIFROST_CLI_ASSIGN_IMPL_(BIFROST_CONCAT_(bifrost_cli_result_, __LINE__), lhs, expr)
#define BIFROST_CLI_ASSIGN_IMPL_(tmp, lhs, expr)            \
  auto tmp = (expr);                                        \
  if (!tmp) return std::unexpected(std::move(tmp.error())); \
  lhs = std::move(*tmp)

// Returns the CliError of a CliResult expression, otherwise continues.
#define BIFROST_CLI_RETURN_IF_ERROR(expr)                                                     \
  do {                                                                                        \
    auto bifrost_cli_status_ = (expr);                                                        \
    if (!bifrost_cli_status_) return std::unexpected(std::move(bifrost_cli_status_.error())); \
  } while (0)
