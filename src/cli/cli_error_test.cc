#include "cli/cli_error.h"

#include <gtest/gtest.h>

namespace bifrost::cli {
namespace {

TEST(ExitCodeForHttpStatusTest, MapsStatuses) {
  EXPECT_EQ(ExitCodeForHttpStatus(200), kExitOk);
  EXPECT_EQ(ExitCodeForHttpStatus(201), kExitOk);
  EXPECT_EQ(ExitCodeForHttpStatus(204), kExitOk);
  EXPECT_EQ(ExitCodeForHttpStatus(404), kExitNotFound);
  for (int status : {301, 400, 401, 403, 409, 413, 422, 500, 502, 503}) {
    EXPECT_EQ(ExitCodeForHttpStatus(status), kExitError) << status;
  }
  EXPECT_EQ(kExitOk, 0);
  EXPECT_EQ(kExitError, 1);
  EXPECT_EQ(kExitUsage, 2);
  EXPECT_EQ(kExitNotFound, 3);
}

TEST(ErrorForHttpResponseTest, UsesTheServersMessage) {
  const CliError e = ErrorForHttpResponse(
      409, R"({"error":{"code":"already_exists","message":"organization 'acme' already exists"}})");
  EXPECT_EQ(e.exit_code, kExitError);
  EXPECT_EQ(e.message, "organization 'acme' already exists");

  const CliError nf = ErrorForHttpResponse(
      404, R"({"error":{"code":"not_found","message":"config 'x' not found"}})");
  EXPECT_EQ(nf.exit_code, kExitNotFound);
  EXPECT_EQ(nf.message, "config 'x' not found");
}

TEST(ErrorForHttpResponseTest, AuthenticationAndPermission) {
  const CliError unauthenticated = ErrorForHttpResponse(
      401, R"({"error":{"code":"unauthenticated","message":"unknown token"}})");
  EXPECT_EQ(unauthenticated.exit_code, kExitError);
  EXPECT_EQ(unauthenticated.message,
            "authentication failed: invalid, expired or revoked token (check BIFROST_TOKEN)");

  const CliError denied = ErrorForHttpResponse(
      403, R"({"error":{"code":"permission_denied","message":"role member cannot write"}})");
  EXPECT_EQ(denied.exit_code, kExitError);
  EXPECT_EQ(denied.message, "permission denied: role member cannot write");
  EXPECT_TRUE(ErrorForHttpResponse(403, "").message.starts_with("permission denied: "));
}

TEST(ErrorForHttpResponseTest, NoUsableMessage) {
  for (const char* body : {"", "<html>Bad Gateway</html>", "{}", R"({"error":"x"})",
                           R"({"error":{"message":5}})", "[1]"}) {
    const CliError e = ErrorForHttpResponse(502, body);
    EXPECT_EQ(e.exit_code, kExitError);
    EXPECT_EQ(e.message, "the server answered HTTP 502") << body;
  }
  EXPECT_EQ(ErrorForHttpResponse(404, "").exit_code, kExitNotFound);
  // A success status passed here by mistake still fails.
  EXPECT_EQ(ErrorForHttpResponse(200, "").exit_code, kExitError);
}

TEST(ErrorForHttpResponseTest, ServerMessagesStayOnOneLine) {
  const CliError e = ErrorForHttpResponse(
      422, R"({"error":{"code":"invalid_argument","message":"a\nb\u001b[2J"}})");
  EXPECT_EQ(e.message, "a\\nb\\x1b[2J");
  const CliError long_message = ErrorForHttpResponse(
      422, R"({"error":{"code":"invalid_argument","message":")" + std::string(2000, 'x') + "\"}}");
  EXPECT_LE(long_message.message.size(), 500u);
}

TEST(FromErrorTest, NotFoundExitsThreeOthersOne) {
  EXPECT_EQ(FromError(Error(ErrorCode::kNotFound, "m")).error().exit_code, kExitNotFound);
  EXPECT_EQ(FromError(Error(ErrorCode::kUnavailable, "cannot reach")).error().exit_code,
            kExitError);
  EXPECT_EQ(FromError(Error(ErrorCode::kInvalidArgument, "m")).error().message, "m");
}

}  // namespace
}  // namespace bifrost::cli
