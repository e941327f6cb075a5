// `bifrost user ...` in-process against a scripted users API: what is sent (the password
// exactly, and only in the body), what is printed (never the password), and what is refused
// before anything is sent. (tests/e2e/user_session_test.cc runs it against the real server.)
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "client/testing/fake_http_server.h"

namespace bifrost::cli {
namespace {

using client::testing::FakeHttpServer;
using client::testing::FakeRequest;
using client::testing::FakeResponse;
using nlohmann::json;

constexpr const char* kAcmeId = "3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c";
constexpr const char* kGoneOrgId = "0b0b0b0b-0000-4000-8000-000000000000";
constexpr const char* kPlatformToken = "bft_platform_secret";
constexpr const char* kOrgAdminToken = "bft_org_admin_secret";
constexpr const char* kPassword = "correct horse battery staple";

FakeResponse Json(int status, const json& body) {
  return FakeResponse{.status = status, .body = body.dump()};
}
FakeResponse ApiError(int status, const std::string& code, const std::string& message) {
  return Json(status, {{"error", {{"code", code}, {"message", message}}}});
}

json User(const std::string& id, const std::string& email, const std::string& role,
          const json& org_id, bool disabled, const json& last_login) {
  return {{"id", id},
          {"email", email},
          {"role", role},
          {"org_id", org_id},
          {"disabled", disabled},
          {"created_at", "2026-12-01T10:00:00Z"},
          {"created_by", "token:root/t-1"},
          {"last_login_at", last_login}};
}

// The users API as docs/web-ui.md describes it, for a platform token and an org admin's.
class FakeUsersApi {
 public:
  FakeUsersApi() : server_([this](const FakeRequest& r) { return Handle(r); }) {}

  std::string address() const { return server_.http_address(); }
  std::vector<FakeRequest> requests() const { return server_.requests(); }

 private:
  FakeResponse Handle(const FakeRequest& r) {
    std::lock_guard<std::mutex> lock(mu_);
    const auto auth = r.headers.find("authorization");
    const std::string bearer = auth == r.headers.end() ? "" : auth->second;
    json principal;
    if (bearer == std::string("Bearer ") + kPlatformToken) {
      principal = {{"token_id", "t-1"}, {"role", "platform-admin"}, {"org_id", nullptr}};
    } else if (bearer == std::string("Bearer ") + kOrgAdminToken) {
      principal = {{"token_id", "t-2"}, {"role", "admin"}, {"org_id", kAcmeId}};
    } else {
      return ApiError(401, "unauthenticated", "unknown token");
    }
    const json acme = {{"id", kAcmeId}, {"name", "acme"}, {"created_at", "2026-01-01T00:00:00Z"}};
    if (r.method == "GET" && r.target == "/api/v1/whoami") return Json(200, principal);
    if (r.method == "GET" && r.target == "/api/v1/orgs?name=acme") {
      return Json(200, json::array({acme}));
    }
    if (r.method == "GET" && r.target.starts_with("/api/v1/orgs?name=")) {
      return Json(200, json::array());
    }
    if (r.method == "GET" && r.target == "/api/v1/orgs") return Json(200, json::array({acme}));
    if (r.method == "GET" && r.target == std::string("/api/v1/orgs/") + kAcmeId) {
      return Json(200, acme);
    }
    if (r.method == "POST" && r.target == "/api/v1/users") {
      const json body = json::parse(r.body, nullptr, false);
      if (!body.is_object()) return ApiError(400, "bad_request", "not JSON");
      if (principal["role"] != "platform-admin" && body.value("role", "") == "platform-admin") {
        return ApiError(403, "permission_denied", "only a platform admin creates platform admins");
      }
      return Json(201,
                  User("u-1", body.value("email", ""), body.value("role", ""),
                       body.contains("org_id") ? body["org_id"] : json(nullptr), false, nullptr));
    }
    if (r.method == "GET" && r.target.starts_with("/api/v1/users")) {
      return Json(
          200, json::array({User("u-0", "ops@example.com", "platform-admin", nullptr, false,
                                 "2026-12-02T08:00:00Z"),
                            User("u-1", "ana@acme.example", "admin", kAcmeId, true, nullptr),
                            User("u-2", "bo@gone.example", "reader", kGoneOrgId, false, nullptr)}));
    }
    if (r.method == "POST" && r.target == "/api/v1/users/ana%40acme.example/disable") {
      return Json(200, User("u-1", "ana@acme.example", "admin", kAcmeId, true, nullptr));
    }
    if (r.method == "PUT" && r.target == "/api/v1/users/ana%40acme.example/password") {
      if (principal["role"] != "platform-admin") {
        return ApiError(403, "permission_denied", "not your user");
      }
      return FakeResponse{.status = 204, .body = ""};
    }
    return ApiError(404, "not_found", "user not found");
  }

  std::mutex mu_;
  FakeHttpServer server_;  // last: stopped before the state it uses goes away
};

struct Outcome {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class UserCommandTest : public ::testing::Test {
 protected:
  Outcome Run(std::vector<std::string> args, const std::string& stdin_text = "") {
    args.insert(args.begin(), "bifrost");
    std::istringstream in(stdin_text);
    std::ostringstream out;
    std::ostringstream err;
    CliIo io;
    io.in = &in;
    io.out = &out;
    io.err = &err;
    io.stdin_is_terminal = stdin_is_terminal_;
    io.getenv = [this](const std::string& name) -> std::optional<std::string> {
      if (name == "BIFROST_ADDR") return api_.address();
      if (name == "BIFROST_TOKEN") return token_;
      return std::nullopt;
    };
    io.read_hidden_line = [this](std::string_view prompt) -> std::optional<std::string> {
      prompts_.emplace_back(prompt);
      if (typed_.empty()) return std::nullopt;
      std::string line = typed_.front();
      typed_.erase(typed_.begin());
      return line;
    };
    Outcome outcome;
    outcome.exit_code = RunCli(args, io);
    outcome.out = out.str();
    outcome.err = err.str();
    // Whatever happened, no password and no token is ever printed.
    for (const std::string& secret :
         {std::string(kPassword), std::string(kPlatformToken), std::string(kOrgAdminToken)}) {
      EXPECT_EQ(outcome.out.find(secret), std::string::npos) << outcome.out;
      EXPECT_EQ(outcome.err.find(secret), std::string::npos) << outcome.err;
    }
    return outcome;
  }

  // The requests with this method, in order.
  std::vector<FakeRequest> Sent(const std::string& method) const {
    std::vector<FakeRequest> found;
    for (const auto& r : api_.requests()) {
      if (r.method == method) found.push_back(r);
    }
    return found;
  }

  FakeUsersApi api_;
  std::string token_ = kPlatformToken;
  bool stdin_is_terminal_ = false;
  std::vector<std::string> typed_;  // lines typed at the hidden prompts
  std::vector<std::string> prompts_;
};

TEST_F(UserCommandTest, CreateSendsThePasswordFromStdinInTheBodyOnly) {
  const Outcome outcome =
      Run({"user", "create", "--email", "ana@acme.example", "--org", "acme", "--role", "admin"},
          std::string(kPassword) + "\nsecond line is not read\n");
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_EQ(outcome.out, "created user ana@acme.example (u-1): admin of acme\n");
  EXPECT_EQ(outcome.err, "");
  const auto posts = Sent("POST");
  ASSERT_EQ(posts.size(), 1u);
  EXPECT_EQ(posts[0].target, "/api/v1/users");
  EXPECT_EQ(json::parse(posts[0].body), json({{"email", "ana@acme.example"},
                                              {"password", kPassword},
                                              {"role", "admin"},
                                              {"org_id", kAcmeId}}));
  for (const auto& r : api_.requests()) {
    EXPECT_EQ(r.target.find("horse"), std::string::npos) << r.target;
    for (const auto& [name, value] : r.headers) {
      EXPECT_EQ(value.find("horse"), std::string::npos) << name;
    }
  }
  EXPECT_TRUE(prompts_.empty());
}

TEST_F(UserCommandTest, PasswordsWithQuotesBackslashesControlsAndUnicodeArriveExactly) {
  const std::string password = "a\"b\\c\td\x01 \xc3\xa9t\xc3\xa9 \xf0\x9f\x94\x91 end";
  // A CRLF line ending is removed like a newline; no line ending at all is fine too.
  for (const std::string& input : {password + "\r\n", password}) {
    const Outcome outcome =
        Run({"user", "create", "--email", "ops@example.com", "--role", "platform-admin"}, input);
    ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
    EXPECT_EQ(json::parse(Sent("POST").back().body)["password"], password);
  }
  // Platform admins get no org_id, and no organization was looked up.
  EXPECT_FALSE(json::parse(Sent("POST").back().body).contains("org_id"));
  EXPECT_EQ(Sent("GET").size(), 0u);
}

TEST_F(UserCommandTest, TerminalAsksTwiceWithoutEchoAndRefusesAMismatch) {
  stdin_is_terminal_ = true;
  typed_ = {kPassword, kPassword};
  Outcome outcome = Run({"user", "passwd", "ana@acme.example"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_EQ(prompts_, (std::vector<std::string>{"Password: ", "Repeat password: "}));
  EXPECT_EQ(outcome.out,
            "changed the password of user ana@acme.example; its sessions have ended\n");
  ASSERT_EQ(Sent("PUT").size(), 1u);
  EXPECT_EQ(Sent("PUT")[0].target, "/api/v1/users/ana%40acme.example/password");
  EXPECT_EQ(json::parse(Sent("PUT")[0].body), json({{"password", kPassword}}));

  typed_ = {kPassword, "correct horse battery stapler"};
  outcome = Run({"user", "passwd", "ana@acme.example"});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_EQ(outcome.err, "bifrost: the two passwords differ; nothing was changed\n");

  // A short first entry is refused at once, without asking to repeat it.
  prompts_.clear();
  typed_ = {"short", "short"};
  outcome = Run({"user", "passwd", "ana@acme.example"});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_EQ(prompts_.size(), 1u);

  typed_.clear();  // end of input at the prompt
  EXPECT_EQ(Run({"user", "passwd", "ana@acme.example"}).exit_code, 2);
  EXPECT_EQ(Sent("PUT").size(), 1u);
}

TEST_F(UserCommandTest, BadPasswordsAreRefusedBeforeAnythingIsSent) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"",
       "bifrost: no password given: type it at the prompt, or pipe it as the first line of "
       "stdin\n"},
      {"\nsecond line\n",
       "bifrost: no password given: type it at the prompt, or pipe it as the "
       "first line of stdin\n"},
      {"elevenbytes\n", "bifrost: the password is too short: a password is 12 to 1024 bytes\n"},
      {std::string(1025, 'x'),
       "bifrost: the password is too long: a password is 12 to 1024 bytes\n"},
      {std::string("twelve bytes\0 and more", 22),
       "bifrost: the password must not contain a NUL byte\n"},
      {"not utf-8 \xff\xfe password\n", "bifrost: the password is not valid UTF-8\n"},
  };
  for (const auto& [input, message] : cases) {
    const Outcome outcome =
        Run({"user", "create", "--email", "ana@acme.example", "--org", "acme", "--role", "member"},
            input);
    EXPECT_EQ(outcome.exit_code, 2) << message;
    EXPECT_EQ(outcome.err, message);
    EXPECT_EQ(outcome.out, "");
  }
  // Exactly 12 and 1024 bytes are fine.
  EXPECT_EQ(Run({"user", "passwd", "ana@acme.example"}, "twelve bytes").exit_code, 0);
  EXPECT_EQ(Run({"user", "passwd", "ana@acme.example"}, std::string(1024, 'y') + "\n").exit_code,
            0);
  EXPECT_EQ(api_.requests().size(), 2u);
}

TEST_F(UserCommandTest, UsageErrors) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"user"},
           {"user", "create", "--email", "a@b.example"},
           {"user", "create", "--role", "admin"},
           {"user", "create", "--email", "a@b.example", "--role", "owner"},
           {"user", "create", "--email", "a@b.example", "--role", "admin", "--password", "x"},
           {"user", "create", "--email", "", "--role", "platform-admin"},
           {"user", "create", "--email", "a@b.example", "--role", "platform-admin", "--org",
            "acme"},
           {"user", "disable"},
           {"user", "passwd"},
           {"user", "passwd", "a@b.example", "password-as-argument"},
           {"user", "list", "--format", "xml"},
       }) {
    const Outcome outcome = Run(args, std::string(kPassword) + "\n");
    EXPECT_EQ(outcome.exit_code, 2) << args.back() << ": " << outcome.err;
    EXPECT_TRUE(outcome.err.starts_with("bifrost: ")) << outcome.err;
  }
  EXPECT_TRUE(api_.requests().empty());

  // An org role from a platform token needs --org (the token has no organization).
  const Outcome no_org =
      Run({"user", "create", "--email", "a@b.example", "--role", "member"}, kPassword);
  EXPECT_EQ(no_org.exit_code, 2);
  EXPECT_EQ(no_org.err, "bifrost: say --org ORG (this token is a platform admin)\n");
  EXPECT_TRUE(Sent("POST").empty());
  // An unknown organization: exit 3.
  EXPECT_EQ(Run({"user", "create", "--email", "a@b.example", "--org", "nope", "--role", "member"},
                kPassword)
                .exit_code,
            3);
}

TEST_F(UserCommandTest, AnOrgAdminCreatesInItsOwnOrgByDefault) {
  token_ = kOrgAdminToken;
  const Outcome outcome =
      Run({"user", "create", "--email", "bo@acme.example", "--role", "reader"}, kPassword);
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_EQ(json::parse(Sent("POST").back().body)["org_id"], kAcmeId);
  // The server refuses what the caller may not do; the CLI says so.
  const Outcome refused =
      Run({"user", "create", "--email", "x@acme.example", "--role", "platform-admin"}, kPassword);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(refused.err,
            "bifrost: permission denied: only a platform admin creates platform admins\n");
  const Outcome passwd = Run({"user", "passwd", "ana@acme.example"}, kPassword);
  EXPECT_EQ(passwd.exit_code, 1);
  EXPECT_EQ(passwd.err, "bifrost: permission denied: not your user\n");
}

TEST_F(UserCommandTest, ListTableNamesOrgsAndStatesAndJsonIsTheServers) {
  Outcome outcome = Run({"user", "list"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_EQ(outcome.out,
            "EMAIL             ROLE            ORG                                   STATE     "
            "LAST LOGIN            CREATED\n"
            "ops@example.com   platform-admin  -                                     active    "
            "2026-12-02T08:00:00Z  2026-12-01T10:00:00Z\n"
            "ana@acme.example  admin           acme                                  disabled  "
            "-                     2026-12-01T10:00:00Z\n"
            "bo@gone.example   reader          0b0b0b0b-0000-4000-8000-000000000000  active    "
            "-                     2026-12-01T10:00:00Z\n");

  outcome = Run({"user", "list", "--org", "acme", "--format", "json"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  const json listed = json::parse(outcome.out);
  ASSERT_EQ(listed.size(), 3u);
  EXPECT_EQ(listed[1]["disabled"], true);
  EXPECT_EQ(Sent("GET").back().target, std::string("/api/v1/users?org_id=") + kAcmeId);
}

TEST_F(UserCommandTest, DisableByEmail) {
  Outcome outcome = Run({"user", "disable", "ana@acme.example"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_EQ(outcome.out,
            "disabled user ana@acme.example (u-1): it can no longer sign in, and its sessions "
            "have ended\n");
  EXPECT_EQ(Sent("POST").back().target, "/api/v1/users/ana%40acme.example/disable");
  outcome = Run({"user", "disable", "nobody@acme.example"});
  EXPECT_EQ(outcome.exit_code, 3);
  EXPECT_EQ(outcome.err, "bifrost: user not found\n");
}

TEST_F(UserCommandTest, HelpShowsExamplesAndSaysThePasswordIsNeverAnArgument) {
  const Outcome create = Run({"user", "create", "--help"});
  EXPECT_EQ(create.exit_code, 0);
  EXPECT_NE(create.out.find("never an argument"), std::string::npos) << create.out;
  EXPECT_NE(create.out.find("bifrost user create --email ana@acme.example --org acme"),
            std::string::npos);
  const Outcome passwd = Run({"user", "passwd", "--help"});
  EXPECT_NE(passwd.out.find("Repeat password"), std::string::npos) << passwd.out;
  const Outcome top = Run({"--help"});
  EXPECT_NE(top.out.find("user"), std::string::npos);
}

}  // namespace
}  // namespace bifrost::cli
