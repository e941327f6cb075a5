// Error model shared by every Bifrost module.
//
// Functions that can fail return Result<T> (a value or an Error) or Status (nothing or an
// Error). Both are [[nodiscard]]: ignoring a failure is a compile-time warning, and warnings
// are errors. Exceptions never cross a module boundary.
//
// An Error carries a code (what kind of failure, which later maps to exactly one HTTP status
// in the server) and a message for humans. Messages name the thing and the rule that was
// broken ("config 'retries' has type int but value 'abc' is not a 64-bit integer") and must
// never contain a secret value, a key or a token: they are logged and returned to clients.
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace bifrost {

enum class ErrorCode {
  kInvalidArgument,   // the caller sent something that breaks a documented rule
  kNotFound,          // the named thing does not exist
  kAlreadyExists,     // a create collided with an existing thing
  kConflict,          // optimistic concurrency: the row changed since it was read
  kIntegrity,         // a ciphertext failed authentication or is bound to another row
  kKeyMismatch,       // the configured key does not belong to this database
  kCorrupt,           // stored data cannot be parsed; never caused by the caller
  kUnavailable,       // storage is busy or unreachable; retrying may help
  kFailedPrecondition,// the system is not in a state that allows the operation
  kUnauthenticated,   // no valid credentials (unknown, expired or revoked token)
  kPermissionDenied,  // valid credentials that do not allow this
  kInternal,          // a bug or an unexpected library failure
};

// Stable lower_snake name of a code, for logs and API error bodies.
std::string_view ErrorCodeName(ErrorCode code);

class Error {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "<code name>: <message>", for logs and test failure output.
  std::string ToString() const;

 private:
  ErrorCode code_;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result : public std::expected<T, Error> {
 public:
  using std::expected<T, Error>::expected;
};

using Status = Result<void>;

// Builds the error side of a Result: `return Fail(ErrorCode::kNotFound, "...");`
inline std::unexpected<Error> Fail(ErrorCode code, std::string message) {
  return std::unexpected<Error>(Error(code, std::move(message)));
}
inline std::unexpected<Error> Fail(Error error) {
  return std::unexpected<Error>(std::move(error));
}

inline Status Ok() { return {}; }

}  // namespace bifrost

// Propagates the error of a Status/Result expression, otherwise continues.
#define BIFROST_RETURN_IF_ERROR(expr)                          \
  do {                                                         \
    auto bifrost_status_ = (expr);                             \
    if (!bifrost_status_) return ::bifrost::Fail(std::move(bifrost_status_.error())); \
  } while (0)

#define BIFROST_CONCAT_INNER_(a, b) a##b
#define BIFROST_CONCAT_(a, b) BIFROST_CONCAT_INNER_(a, b)

// `BIFROST_ASSIGN_OR_RETURN(auto x, Compute());` binds the value or returns the error.
#define BIFROST_ASSIGN_OR_RETURN(lhs, expr) \
  BIFROST_ASSIGN_OR_RETURN_IMPL_(BIFROST_CONCAT_(bifrost_result_, __LINE__), lhs, expr)
#define BIFROST_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr)          \
  auto tmp = (expr);                                            \
  if (!tmp) return ::bifrost::Fail(std::move(tmp.error()));     \
  lhs = std::move(*tmp)
