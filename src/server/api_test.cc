// The REST handlers through a Router built by RegisterApiRoutes, against the real SQLite
// store, barrier, config service and token service in a temporary directory: exact JSON
// shapes, authentication and authorization on every route, the value conversion table,
// malformed bodies, masking of secrets, optimistic concurrency, and the route table against
// docs/openapi.json.
#include "server/api.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "barrier/barrier.h"
#include "config/json_text.h"
#include "crypto/key_derivation.h"
#include "crypto/keyring.h"
#include "crypto/mac.h"
#include "server/access_log.h"
#include "server/api_internal.h"
#include "server/errors.h"
#include "server/openapi_document.h"
#include "store/sqlite/sqlite_store.h"
#include "tests/support/subprocess.h"

namespace bifrost::server {
namespace {

using nlohmann::json;

constexpr UnixMicros kStart = 1'764'425'528'123'456;  // 2025-11-29T14:12:08.123456Z
constexpr std::string_view kStartText = "2025-11-29T14:12:08.123456Z";
constexpr std::string_view kMissingOrg = "00000000-0000-4000-8000-000000000000";
constexpr std::string_view kUnauthenticatedBody =
    R"({"error":{"code":"unauthenticated","message":"invalid, expired or revoked token"}})";

struct Reply {
  int status = 0;
  std::string body;
  std::string content_type;
  std::vector<std::pair<std::string, std::string>> headers;
  RequestLog log;
  bool held = false;  // the response waited for its audit record

  json Json() const { return json::parse(body, nullptr, false); }
  std::string Code() const {
    const json j = Json();
    if (!j.is_object() || !j.contains("error")) return "<not an error body: " + body + ">";
    return j["error"]["code"].get<std::string>();
  }
  std::string Message() const {
    const json j = Json();
    if (!j.is_object() || !j.contains("error")) return "<not an error body: " + body + ">";
    return j["error"]["message"].get<std::string>();
  }
};

struct MintedToken {
  std::string id;
  std::string text;
};

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = store::SqliteStore::Open({.data_dir = dir_.path() + "/data", .clock = &clock_});
    ASSERT_TRUE(opened) << opened.error().ToString();
    store_ = std::move(*opened);
    auto key =
        crypto::DeriveMasterKey("api-test-secret-key-0123456789abcdef", "BIFROST_SECRET_KEY");
    ASSERT_TRUE(key);
    auto ring = crypto::Keyring::Create(*key);
    ASSERT_TRUE(ring);
    auto barrier = barrier::Barrier::Open(std::move(*ring), *store_, clock_);
    ASSERT_TRUE(barrier) << barrier.error().ToString();
    barrier_ = std::make_unique<barrier::Barrier>(std::move(*barrier));
    config_ = std::make_unique<config::ConfigService>(*store_, *barrier_, clock_);
    tokens_ = std::make_unique<auth::TokenService>(*store_, clock_);
    auto audit_key = crypto::DeriveAuditKey(*key);
    ASSERT_TRUE(audit_key);
    auto audit = audit::AuditLog::Open(*store_, std::move(*audit_key), clock_, {});
    ASSERT_TRUE(audit) << audit.error().ToString();
    audit_ = std::move(*audit);
    RegisterApiRoutes(router_, {.config = config_.get(),
                                .tokens = tokens_.get(),
                                .audit = audit_.get(),
                                .store = store_.get(),
                                .clock = &clock_,
                                .ready = [this] { return ready_; }});
    admin_ = Mint(auth::Role::kPlatformAdmin, std::nullopt, "root");
  }

  MintedToken Mint(auth::Role role, std::optional<std::string> org_id, std::string name = "") {
    auto created = tokens_->Create(
        {.name = std::move(name), .role = role, .org_id = std::move(org_id), .ttl_seconds = {}},
        nullptr);
    EXPECT_TRUE(created) << created.error().ToString();
    if (!created) return {};
    return {created->row.id, std::string(created->token.view())};
  }

  std::string MakeOrg(const std::string& name) {
    const Reply r = Send("POST", "/api/v1/orgs", admin_.text, json{{"name", name}}.dump());
    EXPECT_EQ(r.status, 201) << r.body;
    return r.Json().value("id", "");
  }

  // Runs one request through the router. `token` "" sends no Authorization header; a
  // non-empty `body` is sent with `content_type`.
  Reply Send(const std::string& method, const std::string& target, const std::string& token,
             const std::string& body = "", const std::string& content_type = "application/json") {
    HttpRequest request;
    request.method = method;
    const std::size_t question = target.find('?');
    request.path = target.substr(0, question);
    if (question != std::string::npos) {
      std::string query = target.substr(question + 1);
      std::size_t start = 0;
      while (start <= query.size()) {
        const std::size_t amp = std::min(query.find('&', start), query.size());
        const std::string pair = query.substr(start, amp - start);
        const std::size_t equals = pair.find('=');
        request.query[pair.substr(0, equals)] =
            equals == std::string::npos ? "" : pair.substr(equals + 1);
        start = amp + 1;
      }
    }
    if (!token.empty()) request.headers["authorization"] = "Bearer " + token;
    if (!body.empty()) request.headers["content-type"] = content_type;
    request.body = body;
    return Dispatch(request);
  }

  Reply Dispatch(const HttpRequest& given) {
    HttpRequest request = given;
    request.request_id = "req-test-1";
    request.client_address = "127.0.0.1:1";
    Reply reply;
    const Router::Match match = router_.Find(request.method, request.path);
    if (match.handler == nullptr) {
      reply.status = match.status;
      return reply;
    }
    HttpResponse response = (*match.handler)(request, match.params, reply.log);
    if (response.hold) {
      // What the server does: wait for the release, then send the response or its stand-in.
      std::promise<std::optional<HttpResponse>> released;
      auto future = released.get_future();
      response.hold([&released](std::optional<HttpResponse> replacement) {
        released.set_value(std::move(replacement));
      });
      if (auto replacement = future.get()) response = std::move(*replacement);
      reply.held = true;
    }
    reply.status = response.status;
    reply.body = response.body;
    reply.content_type = response.content_type;
    reply.headers = response.headers;
    return reply;
  }

  Reply Get(const std::string& target, const std::string& token) {
    return Send("GET", target, token);
  }
  Reply Put(const std::string& target, const std::string& token, const json& body) {
    return Send("PUT", target, token, body.dump());
  }
  Reply Post(const std::string& target, const std::string& token, const json& body) {
    return Send("POST", target, token, body.dump());
  }
  Reply Delete(const std::string& target, const std::string& token) {
    return Send("DELETE", target, token);
  }

  testing::TempDir dir_;
  FakeClock clock_{kStart};
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<barrier::Barrier> barrier_;
  std::unique_ptr<config::ConfigService> config_;
  std::unique_ptr<auth::TokenService> tokens_;
  std::unique_ptr<audit::AuditLog> audit_;
  Router router_;  // after the services: its handlers point at them
  bool ready_ = true;
  MintedToken admin_;
};

std::string Actor(const std::string& name, const std::string& id) {
  return "token:" + name + "/" + id;
}

// ---- The route table ----------------------------------------------------------------------

TEST_F(ApiTest, RoutesAreExactlyThoseOfTheOpenApiDocument) {
  const json document = json::parse(OpenApiDocument());
  std::set<std::pair<std::string, std::string>> documented;
  for (const auto& [path, operations] : document.at("paths").items()) {
    for (const auto& [method, operation] : operations.items()) {
      if (method == "parameters" || method == "summary" || method == "description") continue;
      std::string upper = method;
      for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      documented.emplace(upper, path);
    }
  }
  std::set<std::pair<std::string, std::string>> registered;
  for (const auto& route : router_.Routes()) {
    EXPECT_TRUE(registered.insert(route).second)
        << "registered twice: " << route.first << " " << route.second;
  }
  for (const auto& route : documented) {
    EXPECT_TRUE(registered.contains(route))
        << "documented, not registered: " << route.first << " " << route.second;
  }
  for (const auto& route : registered) {
    EXPECT_TRUE(documented.contains(route))
        << "registered, not documented: " << route.first << " " << route.second;
  }
  EXPECT_EQ(registered.size(), 42u);
}

// ---- Unauthenticated routes ---------------------------------------------------------------

TEST_F(ApiTest, HealthzNeedsNoToken) {
  const Reply r = Get("/healthz", "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.Json(), json({{"status", "ok"}}));
}

TEST_F(ApiTest, ReadyzFollowsTheReadinessCheck) {
  const Reply ready = Get("/readyz", "");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.Json(), json({{"status", "ready"}}));

  ready_ = false;
  const Reply not_ready = Get("/readyz", "");
  EXPECT_EQ(not_ready.status, 503);
  EXPECT_EQ(not_ready.Code(), "unavailable");
  EXPECT_TRUE(not_ready.Message().starts_with("not ready: ")) << not_ready.body;
}

// A store in front of the real one whose Begin can be made to fail, counting the calls.
class SwitchableStore final : public store::Store {
 public:
  explicit SwitchableStore(store::Store& inner) : inner_(inner) {}
  Result<std::unique_ptr<store::Txn>> Begin(store::TxnMode mode) override {
    ++begins;
    if (failing) return Fail(ErrorCode::kUnavailable, "INJECTED-CANARY: database is locked");
    return inner_.Begin(mode);
  }
  int SchemaVersion() const override { return inner_.SchemaVersion(); }
  std::string_view BackendName() const override { return inner_.BackendName(); }
  Status ReleaseDeletedData() override { return inner_.ReleaseDeletedData(); }

  bool failing = false;
  int begins = 0;

 private:
  store::Store& inner_;
};

TEST_F(ApiTest, ReadyzReadsTheDatabaseAtMostOncePerSecond) {
  SwitchableStore store(*store_);
  std::ostringstream out;
  AccessLog access_log(out);
  Router router;
  RegisterApiRoutes(router, {.config = config_.get(),
                             .tokens = tokens_.get(),
                             .audit = audit_.get(),
                             .store = &store,
                             .clock = &clock_,
                             .ready = [] { return true; },
                             .log = &access_log});
  const auto readyz = [&] {
    HttpRequest request;
    request.method = "GET";
    request.path = "/readyz";
    request.request_id = "req-ready";
    const Router::Match match = router.Find(request.method, request.path);
    RequestLog log;
    return (*match.handler)(request, match.params, log);
  };
  EXPECT_EQ(readyz().status, 200);
  EXPECT_EQ(store.begins, 1);

  store.failing = true;
  for (int i = 0; i < 5; ++i) EXPECT_EQ(readyz().status, 200);  // the answer is cached
  EXPECT_EQ(store.begins, 1);

  clock_.AdvanceMicros(1'000'001);
  const HttpResponse failed = readyz();
  EXPECT_EQ(failed.status, 503);
  EXPECT_EQ(store.begins, 2);
  const json body = json::parse(failed.body);
  EXPECT_EQ(body["error"]["code"], "unavailable");
  const std::string message = body["error"]["message"];
  EXPECT_TRUE(message.starts_with("not ready: ")) << message;
  EXPECT_NE(message.find("database"), std::string::npos) << message;
  EXPECT_EQ(message.find("CANARY"), std::string::npos) << message;  // details stay in the log

  store.failing = false;
  EXPECT_EQ(readyz().status, 503);  // a failure is cached too
  EXPECT_EQ(store.begins, 2);
  clock_.AdvanceMicros(1'000'001);
  EXPECT_EQ(readyz().status, 200);
  EXPECT_EQ(store.begins, 3);

  // The log has the details, once per change.
  std::vector<json> lines;
  std::istringstream in(out.str());
  for (std::string text; std::getline(in, text);) lines.push_back(json::parse(text));
  ASSERT_EQ(lines.size(), 2u) << out.str();
  EXPECT_EQ(lines[0]["level"], "error");
  EXPECT_EQ(lines[0]["msg"], "readiness check failed");
  EXPECT_EQ(lines[0]["code"], "unavailable");
  EXPECT_NE(lines[0]["message"].get<std::string>().find("INJECTED-CANARY"), std::string::npos);
  EXPECT_EQ(lines[1]["msg"], "readiness check passed again");
}

TEST_F(ApiTest, OpenApiDocumentsEveryErrorCodeAndTheCommonResponses) {
  const json document = json::parse(OpenApiDocument());
  const json& codes = document.at(
      json::json_pointer("/components/schemas/Error/properties/error/properties/code/enum"));
  // Every code an error body can carry: the service errors through the one mapping (a 500
  // always says "internal"), and those the transport and router answer with themselves.
  std::set<std::string> emitted = {"bad_request",
                                   "payload_too_large",
                                   "request_header_fields_too_large",
                                   "method_not_allowed",
                                   "not_found",
                                   "unavailable",
                                   "internal"};
  for (const ErrorCode code :
       {ErrorCode::kInvalidArgument, ErrorCode::kNotFound, ErrorCode::kAlreadyExists,
        ErrorCode::kConflict, ErrorCode::kIntegrity, ErrorCode::kKeyMismatch, ErrorCode::kCorrupt,
        ErrorCode::kUnavailable, ErrorCode::kFailedPrecondition, ErrorCode::kUnauthenticated,
        ErrorCode::kPermissionDenied, ErrorCode::kInternal}) {
    const HttpResponse response = ErrorResponse(Error(code, "m"), "req");
    emitted.insert(json::parse(response.body)["error"]["code"].get<std::string>());
  }
  for (const std::string& code : emitted) {
    EXPECT_NE(std::find(codes.begin(), codes.end(), code), codes.end())
        << "Error.code does not list " << code;
  }
  const json& shared = document.at(json::json_pointer("/components/responses"));
  for (const auto& [path, operations] : document.at("paths").items()) {
    for (const auto& [method, operation] : operations.items()) {
      const std::string where = method + " " + path;
      const json& responses = operation.at("responses");
      for (const auto& [status, response] : responses.items()) {
        if (!response.contains("$ref")) continue;
        const std::string ref = response["$ref"];
        ASSERT_TRUE(ref.starts_with("#/components/responses/")) << where << ": " << ref;
        EXPECT_TRUE(shared.contains(ref.substr(ref.rfind('/') + 1))) << where << ": " << ref;
      }
      // Anything can fail inside, and a busy server refuses before routing.
      EXPECT_TRUE(responses.contains("500")) << where;
      EXPECT_TRUE(responses.contains("503")) << where;
      // Authenticated routes refuse query parameters they do not take.
      const bool open = operation.contains("security") && operation["security"].empty();
      if (!open) {
        EXPECT_TRUE(responses.contains("400")) << where;
      }
    }
  }
}

TEST_F(ApiTest, OpenApiDocumentIsServedWithoutAToken) {
  const Reply r = Get("/api/v1/openapi.json", "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, OpenApiDocument());
  EXPECT_EQ(r.Json().value("openapi", ""), "3.0.3");
  EXPECT_EQ(r.log.token_id, "");
}

// ---- Authentication -----------------------------------------------------------------------

// Every route path with its parameters filled in.
std::string Fill(std::string path, const std::string& org_id) {
  const std::map<std::string, std::string> values = {{"{org_id}", org_id},
                                                     {"{key}", "some_key"},
                                                     {"{token_id}", std::string(kMissingOrg)},
                                                     {"{execution_id}", std::string(kMissingOrg)},
                                                     {"{name}", "some_workflow"},
                                                     {"{user}", "someone@example.com"}};
  for (const auto& [param, value] : values) {
    for (std::size_t at = path.find(param); at != std::string::npos; at = path.find(param)) {
      path.replace(at, param.size(), value);
    }
  }
  return path;
}

TEST_F(ApiTest, EveryApiRouteRefusesMissingMalformedUnknownRevokedAndExpiredTokens) {
  const std::string org = MakeOrg("Acme");
  const MintedToken revoked = Mint(auth::Role::kAdmin, org);
  ASSERT_TRUE(tokens_->Revoke(*tokens_->Authenticate(admin_.text), revoked.id));
  auto expiring = tokens_->Create(
      {.name = "", .role = auth::Role::kAdmin, .org_id = org, .ttl_seconds = 60}, nullptr);
  ASSERT_TRUE(expiring);
  const std::string expired(expiring->token.view());
  clock_.AdvanceMicros(61'000'000);

  const std::vector<std::optional<std::string>> authorizations = {
      std::nullopt,                          // no header
      "",                                    // empty
      "Bearer",                              // no token
      "Bearer ",                             // no token
      "Basic " + admin_.text,                // another scheme
      "Bearer" + admin_.text,                // no space
      "Token " + admin_.text,                //
      "Bearer " + admin_.text + " extra",    // trailing junk
      "Bearer bft_" + std::string(43, 'A'),  // well-formed, unknown
      "Bearer not-a-token",                  //
      "Bearer " + admin_.text + "x",         // one character too many
      "Bearer " + revoked.text,              //
      "Bearer " + expired,                   //
  };
  int checked = 0;
  for (const auto& [method, path] : router_.Routes()) {
    if (!path.starts_with("/api/v1/") || path == "/api/v1/openapi.json" ||
        path == "/api/v1/auth/login") {
      continue;
    }
    for (const auto& authorization : authorizations) {
      HttpRequest request;
      request.method = method;
      request.path = Fill(path, org);
      if (authorization) request.headers["authorization"] = *authorization;
      request.headers["content-type"] = "application/json";
      request.body = R"({"name":"Sneaky","role":"admin","type":"string","value":"v"})";
      const Reply r = Dispatch(request);
      EXPECT_EQ(r.status, 401) << method << " " << path << " with '"
                               << authorization.value_or("<none>") << "'";
      EXPECT_EQ(r.body, kUnauthenticatedBody) << method << " " << path;
      EXPECT_EQ(r.log.token_id, "");
      bool challenge = false;
      for (const auto& [name, value] : r.headers) {
        challenge = challenge || (name == "WWW-Authenticate" && value.starts_with("Bearer"));
      }
      EXPECT_TRUE(challenge) << method << " " << path;
      EXPECT_TRUE(r.held) << "a 401 leaves only after its audit record: " << method << " " << path;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 36 * static_cast<int>(authorizations.size()));
  // Each refusal left exactly one auth.failure record, without an actor.
  {
    auto txn = store_->Begin(store::TxnMode::kRead);
    ASSERT_TRUE(txn);
    auto failures = (*txn)->ListAudit({.action = "auth.failure", .limit = 10'000});
    ASSERT_TRUE(failures);
    EXPECT_EQ(failures->size(), static_cast<std::size_t>(checked));
    for (const auto& row : *failures) {
      EXPECT_EQ(row.outcome, "denied");
      EXPECT_EQ(row.actor_id, std::nullopt);
      EXPECT_EQ(row.client_address, "127.0.0.1:1");
    }
  }
  // None of the refused writes did anything.
  EXPECT_EQ(Get("/api/v1/orgs", admin_.text).Json().size(), 1u);
  EXPECT_EQ(Get("/api/v1/orgs/" + org + "/configs", admin_.text).Json(), json::array());
  EXPECT_EQ(Get("/api/v1/global/configs", admin_.text).Json(), json::array());
}

TEST_F(ApiTest, BearerSchemeIsCaseInsensitiveAndTheTokenIdIsLogged) {
  for (const std::string& scheme :
       std::vector<std::string>{"Bearer ", "bearer ", "BEARER ", "Bearer   "}) {
    HttpRequest request;
    request.method = "GET";
    request.path = "/api/v1/whoami";
    request.headers["authorization"] = scheme + admin_.text;
    const Reply r = Dispatch(request);
    EXPECT_EQ(r.status, 200) << "'" << scheme << "': " << r.body;
    EXPECT_EQ(r.log.token_id, admin_.id);
  }
}

// ---- Exceptions ---------------------------------------------------------------------------

TEST(GuardedTest, AnExceptionBecomesA500WithoutItsTextAndOneJsonLogLine) {
  std::ostringstream out;
  AccessLog access_log(out);
  const Handler handler = api_internal::Guarded(
      &access_log, [](const HttpRequest&, const PathParams&, RequestLog&) -> HttpResponse {
        throw std::runtime_error("CANARY-from-what");
      });
  HttpRequest request;
  request.method = "GET";
  request.path = "/x/raw-path-CANARY";
  request.request_id = "req-42";
  RequestLog log;
  const HttpResponse response = handler(request, {}, log);
  EXPECT_EQ(response.status, 500);
  const json body = json::parse(response.body);
  EXPECT_EQ(body["error"]["code"], "internal");
  EXPECT_NE(body["error"]["message"].get<std::string>().find("req-42"), std::string::npos);
  EXPECT_EQ(response.body.find("CANARY"), std::string::npos);

  const std::string text = out.str();
  ASSERT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
  const json line = json::parse(text);
  EXPECT_EQ(line["level"], "error");
  EXPECT_EQ(line["msg"], "internal error");
  EXPECT_EQ(line["request_id"], "req-42");
  EXPECT_EQ(line["code"], "internal");
  EXPECT_EQ(text.find("CANARY"), std::string::npos) << text;  // neither what() nor the path
}

TEST_F(ApiTest, A500LogsItsRequestIdCodeAndMessage) {
  std::ostringstream out;
  AccessLog access_log(out);
  Router router;
  RegisterApiRoutes(router, {.config = config_.get(),
                             .tokens = tokens_.get(),
                             .audit = audit_.get(),
                             .store = store_.get(),
                             .clock = &clock_,
                             .ready = [] { return true; },
                             .log = &access_log});
  // A sealed value that is not an envelope: only someone writing to the database can do
  // this, and opening it is an internal error.
  {
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    store::ConfigRow row;
    row.key = "broken";
    row.type = "secret";
    row.value = "not-an-envelope";
    row.key_id = "some-key-id";
    row.created_at = row.updated_at = kStart;
    row.updated_by = "test";
    ASSERT_TRUE((*txn)->InsertConfig(row));
    ASSERT_TRUE((*txn)->Commit());
  }
  HttpRequest request;
  request.method = "GET";
  request.path = "/api/v1/global/configs/broken/reveal";
  request.headers["authorization"] = "Bearer " + admin_.text;
  request.request_id = "req-500";
  const Router::Match match = router.Find(request.method, request.path);
  ASSERT_NE(match.handler, nullptr);
  RequestLog log;
  const HttpResponse response = (*match.handler)(request, match.params, log);
  ASSERT_EQ(response.status, 500) << response.body;
  const std::string public_message = json::parse(response.body)["error"]["message"];
  EXPECT_NE(public_message.find("req-500"), std::string::npos);

  std::vector<json> errors;
  std::istringstream in(out.str());
  for (std::string text; std::getline(in, text);) {
    const json line = json::parse(text);
    if (line["level"] == "error") errors.push_back(line);
  }
  ASSERT_EQ(errors.size(), 1u) << out.str();
  EXPECT_EQ(errors[0]["msg"], "internal error");
  EXPECT_EQ(errors[0]["request_id"], "req-500");
  EXPECT_NE(errors[0]["code"], "internal");  // the real code, e.g. "corrupt"
  EXPECT_FALSE(errors[0]["message"].get<std::string>().empty());
  EXPECT_EQ(out.str().find(admin_.text), std::string::npos);
}

// ---- whoami -------------------------------------------------------------------------------

TEST_F(ApiTest, WhoAmIDescribesTheCaller) {
  const Reply platform = Get("/api/v1/whoami", admin_.text);
  EXPECT_EQ(platform.status, 200);
  EXPECT_EQ(platform.Json(), json({{"token_id", admin_.id},
                                   {"name", "root"},
                                   {"role", "platform-admin"},
                                   {"org_id", nullptr}}));

  const std::string org = MakeOrg("Acme");
  const MintedToken reader = Mint(auth::Role::kReader, org, "dashboard");
  const Reply r = Get("/api/v1/whoami", reader.text);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(
      r.Json(),
      json({{"token_id", reader.id}, {"name", "dashboard"}, {"role", "reader"}, {"org_id", org}}));
  EXPECT_EQ(r.log.token_id, reader.id);
}

// ---- Organizations ------------------------------------------------------------------------

TEST_F(ApiTest, OrganizationLifecycle) {
  const Reply created = Post("/api/v1/orgs", admin_.text, {{"name", "Acme Corp"}});
  ASSERT_EQ(created.status, 201) << created.body;
  const json org = created.Json();
  ASSERT_TRUE(org.is_object());
  const std::string id = org.value("id", "");
  EXPECT_TRUE(std::regex_match(
      id, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")))
      << id;
  EXPECT_EQ(org, json({{"id", id}, {"name", "Acme Corp"}, {"created_at", kStartText}}));

  clock_.AdvanceMicros(1);
  ASSERT_EQ(Post("/api/v1/orgs", admin_.text, {{"name", "Beta"}}).status, 201);
  const Reply listed = Get("/api/v1/orgs", admin_.text);
  ASSERT_EQ(listed.status, 200);
  ASSERT_EQ(listed.Json().size(), 2u);
  EXPECT_EQ(listed.Json()[0], org);  // by name
  EXPECT_EQ(listed.Json()[1]["name"], "Beta");
  EXPECT_EQ(listed.Json()[1]["created_at"], "2025-11-29T14:12:08.123457Z");

  EXPECT_EQ(Get("/api/v1/orgs?name=Acme", admin_.text).Json(), json::array());  // exact only
  EXPECT_EQ(Get("/api/v1/orgs?name=Beta", admin_.text).Json().size(), 1u);
  EXPECT_EQ(Get("/api/v1/orgs?name=Nobody", admin_.text).Json(), json::array());
  EXPECT_EQ(Get("/api/v1/orgs/" + id, admin_.text).Json(), org);

  const Reply duplicate = Post("/api/v1/orgs", admin_.text, {{"name", "Acme Corp"}});
  EXPECT_EQ(duplicate.status, 409);
  EXPECT_EQ(duplicate.Code(), "already_exists");

  const Reply deleted = Delete("/api/v1/orgs/" + id, admin_.text);
  EXPECT_EQ(deleted.status, 204);
  EXPECT_EQ(deleted.body, "");
  const Reply gone = Get("/api/v1/orgs/" + id, admin_.text);
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(gone.Code(), "not_found");
  EXPECT_EQ(Delete("/api/v1/orgs/" + id, admin_.text).status, 404);
  EXPECT_EQ(Get("/api/v1/orgs/not-a-uuid", admin_.text).status, 404);
}

TEST_F(ApiTest, InvalidOrganizationNamesAre422) {
  for (const std::string& name :
       std::vector<std::string>{"", " padded", "padded ", "tab\there", std::string(129, 'x')}) {
    const Reply r = Post("/api/v1/orgs", admin_.text, {{"name", name}});
    EXPECT_EQ(r.status, 422) << name;
    EXPECT_EQ(r.Code(), "invalid_argument");
  }
  // A name that looks like an org id, such as another organization's, in any letter case.
  const std::string other = MakeOrg("Other");
  std::string upper = other;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const std::string& name : {other, upper, std::string(kMissingOrg)}) {
    const Reply r = Post("/api/v1/orgs", admin_.text, {{"name", name}});
    EXPECT_EQ(r.status, 422) << name;
    EXPECT_EQ(r.Code(), "invalid_argument");
    EXPECT_NE(r.Message().find("has the form of an organization id"), std::string::npos)
        << r.Message();
  }
  EXPECT_EQ(Get("/api/v1/orgs", admin_.text).Json().size(), 1u);
}

TEST_F(ApiTest, DeletingAnOrganizationRevokesItsTokens) {
  const std::string org = MakeOrg("Acme");
  const MintedToken member = Mint(auth::Role::kMember, org);
  ASSERT_EQ(Get("/api/v1/whoami", member.text).status, 200);
  ASSERT_EQ(Delete("/api/v1/orgs/" + org, admin_.text).status, 204);
  EXPECT_EQ(Get("/api/v1/whoami", member.text).status, 401);
}

TEST_F(ApiTest, OrgTokensListOnlyTheirOwnOrganization) {
  const std::string a = MakeOrg("Alpha");
  const std::string b = MakeOrg("Beta");
  for (auto role : {auth::Role::kAdmin, auth::Role::kMember, auth::Role::kReader}) {
    const MintedToken token = Mint(role, a);
    const Reply all = Get("/api/v1/orgs", token.text);
    ASSERT_EQ(all.status, 200);
    ASSERT_EQ(all.Json().size(), 1u);
    EXPECT_EQ(all.Json()[0]["id"], a);
    EXPECT_EQ(Get("/api/v1/orgs?name=Alpha", token.text).Json().size(), 1u);
    // Another org's name is not confirmed, not even by an empty list's absence of an error.
    EXPECT_EQ(Get("/api/v1/orgs?name=Beta", token.text).Json(), json::array());
    EXPECT_EQ(Get("/api/v1/orgs?name=Beta", token.text).status, 200);
    EXPECT_EQ(all.body.find(b), std::string::npos);
  }
}

// ---- Config: shapes -----------------------------------------------------------------------

TEST_F(ApiTest, ConfigEntryLifecycleWithExactShapes) {
  const std::string org = MakeOrg("Acme");
  const std::string base = "/api/v1/orgs/" + org + "/configs/";
  const std::string actor = Actor("root", admin_.id);

  const Reply created = Put(base + "retries", admin_.text,
                            {{"type", "int"}, {"value", 3}, {"description", "how often"}});
  ASSERT_EQ(created.status, 201) << created.body;
  const json expected = {{"key", "retries"},
                         {"type", "int"},
                         {"value", 3},
                         {"description", "how often"},
                         {"scope", "org"},
                         {"org_id", org},
                         {"created_at", kStartText},
                         {"updated_at", kStartText},
                         {"updated_by", actor},
                         {"version", 1},
                         {"overrides_global", false}};
  EXPECT_EQ(created.Json(), expected);
  EXPECT_EQ(created.log.token_id, admin_.id);

  EXPECT_EQ(Get(base + "retries", admin_.text).Json(), expected);
  EXPECT_EQ(Get(base + "retries/reveal", admin_.text).Json(), expected);
  EXPECT_EQ(Get("/api/v1/orgs/" + org + "/configs", admin_.text).Json(), json::array({expected}));

  clock_.AdvanceMicros(2'000'000);
  const Reply replaced = Put(base + "retries", admin_.text, {{"type", "int"}, {"value", 5}});
  ASSERT_EQ(replaced.status, 200) << replaced.body;
  json expected_v2 = expected;
  expected_v2["value"] = 5;
  expected_v2["description"] = "";
  expected_v2["updated_at"] = "2025-11-29T14:12:10.123456Z";
  expected_v2["version"] = 2;
  EXPECT_EQ(replaced.Json(), expected_v2);

  const Reply deleted = Delete(base + "retries", admin_.text);
  EXPECT_EQ(deleted.status, 204);
  EXPECT_EQ(deleted.body, "");
  EXPECT_EQ(Get(base + "retries", admin_.text).status, 404);
  EXPECT_EQ(Delete(base + "retries", admin_.text).status, 404);
  // Created again: version 1 and 201 again.
  EXPECT_EQ(Put(base + "retries", admin_.text, {{"type", "int"}, {"value", 1}}).status, 201);
}

TEST_F(ApiTest, GlobalEntriesAndOrgFallback) {
  const std::string org = MakeOrg("Acme");
  const std::string actor = Actor("root", admin_.id);
  const Reply global =
      Put("/api/v1/global/configs/region", admin_.text, {{"type", "string"}, {"value", "eu-west"}});
  ASSERT_EQ(global.status, 201) << global.body;
  const json global_entry = {{"key", "region"},          {"type", "string"},
                             {"value", "eu-west"},       {"description", ""},
                             {"scope", "global"},        {"org_id", nullptr},
                             {"created_at", kStartText}, {"updated_at", kStartText},
                             {"updated_by", actor},      {"version", 1},
                             {"overrides_global", false}};
  EXPECT_EQ(global.Json(), global_entry);
  EXPECT_EQ(Get("/api/v1/global/configs", admin_.text).Json(), json::array({global_entry}));
  EXPECT_EQ(Get("/api/v1/global/configs/region", admin_.text).Json(), global_entry);
  EXPECT_EQ(Get("/api/v1/global/configs/region/reveal", admin_.text).Json(), global_entry);

  // The org sees the global entry until it overrides it; deleting the override uncovers it.
  const std::string scope = "/api/v1/orgs/" + org + "/configs";
  EXPECT_EQ(Get(scope + "/region", admin_.text).Json(), global_entry);
  ASSERT_EQ(Put(scope + "/region", admin_.text, {{"type", "string"}, {"value", "us-east"}}).status,
            201);
  ASSERT_EQ(Put(scope + "/zeta", admin_.text, {{"type", "bool"}, {"value", true}}).status, 201);
  const json listed = Get(scope, admin_.text).Json();
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0]["key"], "region");
  EXPECT_EQ(listed[0]["value"], "us-east");
  EXPECT_EQ(listed[0]["scope"], "org");
  EXPECT_EQ(listed[0]["org_id"], org);
  EXPECT_EQ(listed[0]["overrides_global"], true);  // the UI shows it as an override
  EXPECT_EQ(listed[1]["key"], "zeta");
  EXPECT_EQ(listed[1]["overrides_global"], false);
  EXPECT_EQ(Delete(scope + "/region", admin_.text).status, 204);
  EXPECT_EQ(Get(scope + "/region", admin_.text).Json(), global_entry);
  // Deleting in the org never touches the global entry behind it.
  EXPECT_EQ(Delete(scope + "/region", admin_.text).status, 404);
  EXPECT_EQ(Get("/api/v1/global/configs/region", admin_.text).status, 200);
  EXPECT_EQ(Delete("/api/v1/global/configs/region", admin_.text).status, 204);
  EXPECT_EQ(Get("/api/v1/global/configs", admin_.text).Json(), json::array());
}

TEST_F(ApiTest, MissingOrganizationIs404ForThePlatformAdmin) {
  const std::string scope = "/api/v1/orgs/" + std::string(kMissingOrg) + "/configs";
  for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
           {"GET", scope},
           {"GET", scope + "/k"},
           {"GET", scope + "/k/reveal"},
           {"DELETE", scope + "/k"},
           {"GET", "/api/v1/orgs/" + std::string(kMissingOrg)},
           {"DELETE", "/api/v1/orgs/" + std::string(kMissingOrg)}}) {
    const Reply r = Send(method, target, admin_.text);
    EXPECT_EQ(r.status, 404) << method << " " << target << ": " << r.body;
    EXPECT_EQ(r.Code(), "not_found");
  }
  const Reply put = Put(scope + "/k", admin_.text, {{"type", "string"}, {"value", "v"}});
  EXPECT_EQ(put.status, 404) << put.body;
}

// ---- Config: the value conversion table ---------------------------------------------------

struct Conversion {
  std::string type;
  json sent;
  int status;     // of the PUT
  json returned;  // the value in get/reveal responses when accepted
};

TEST_F(ApiTest, ValueConversionForEveryType) {
  const std::string org = MakeOrg("Acme");
  const std::string base = "/api/v1/orgs/" + org + "/configs/";
  const json document = {{"b", json::array({1, 2.5, json::object({{"c", nullptr}})})},
                         {"a", "x"},
                         {"unicode", "\xc3\xa9\xe2\x82\xac"}};
  const std::vector<Conversion> table = {
      // string: a JSON string only
      {"string", "hello", 201, "hello"},
      {"string", "", 201, ""},
      {"string", "\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80", 201, "\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80"},
      {"string", 5, 422, nullptr},
      {"string", true, 422, nullptr},
      {"string", nullptr, 422, nullptr},
      {"string", json::object(), 422, nullptr},
      {"string", json::array({"a"}), 422, nullptr},
      // int: a JSON integer in int64 range, or its canonical decimal text
      {"int", 42, 201, 42},
      {"int", -7, 201, -7},
      {"int", 0, 201, 0},
      {"int", "42", 201, 42},
      {"int", "-9223372036854775808", 201, INT64_MIN},
      {"int", INT64_MAX, 201, INT64_MAX},
      {"int", INT64_MIN, 201, INT64_MIN},
      {"int", static_cast<std::uint64_t>(INT64_MAX) + 1, 422, nullptr},
      {"int", "9223372036854775808", 422, nullptr},
      {"int", "007", 422, nullptr},
      {"int", "+7", 422, nullptr},
      {"int", " 7", 422, nullptr},
      {"int", "abc", 422, nullptr},
      {"int", "1e3", 422, nullptr},
      {"int", 1.5, 422, nullptr},
      {"int", 1.0, 422, nullptr},
      {"int", true, 422, nullptr},
      {"int", nullptr, 422, nullptr},
      {"int", json::array({1}), 422, nullptr},
      // bool: true/false, or their text
      {"bool", true, 201, true},
      {"bool", false, 201, false},
      {"bool", "true", 201, true},
      {"bool", "false", 201, false},
      {"bool", "TRUE", 422, nullptr},
      {"bool", "yes", 422, nullptr},
      {"bool", 1, 422, nullptr},
      {"bool", 0, 422, nullptr},
      {"bool", nullptr, 422, nullptr},
      // json: any JSON value, the document itself
      {"json", document, 201, document},
      {"json", json::array({1, "two", false}), 201, json::array({1, "two", false})},
      {"json", "just text", 201, "just text"},
      {"json", 3.25, 201, 3.25},
      {"json", -12, 201, -12},
      {"json", true, 201, true},
      {"json", nullptr, 201, nullptr},
      {"json", json::object(), 201, json::object()},
      // secret: a non-empty JSON string
      {"secret", "s3cr3t-value", 201, "s3cr3t-value"},
      {"secret", "", 422, nullptr},
      {"secret", 12345, 422, nullptr},
      {"secret", json::object({{"k", "v"}}), 422, nullptr},
      {"secret", nullptr, 422, nullptr},
  };
  int row = 0;
  for (const auto& c : table) {
    std::string key = "k";  // appended, not `"k" + ...`: GCC 12 -O3 misreports that (-Wrestrict)
    key += std::to_string(row++);
    const std::string what = c.type + " <- " + c.sent.dump() + " (" + key + ")";
    const Reply put = Put(base + key, admin_.text, {{"type", c.type}, {"value", c.sent}});
    ASSERT_EQ(put.status, c.status) << what << ": " << put.body;
    if (c.status != 201) {
      EXPECT_EQ(put.Code(), "invalid_argument") << what;
      EXPECT_NE(put.Message().find("'" + key + "'"), std::string::npos)
          << what << ": the message does not name the key: " << put.Message();
      EXPECT_EQ(Get(base + key, admin_.text).status, 404) << what;
      continue;
    }
    const json shown = c.type == "secret" ? json("[SECRET]") : c.returned;
    EXPECT_EQ(put.Json()["type"], c.type) << what;
    EXPECT_EQ(put.Json()["value"], shown) << what;
    EXPECT_EQ(Get(base + key, admin_.text).Json()["value"], shown) << what;
    const json revealed = Get(base + key + "/reveal", admin_.text).Json();
    EXPECT_EQ(revealed["value"], c.returned) << what;
    // Same JSON kind too: an int must not come back as 42.0 or "42".
    EXPECT_EQ(revealed["value"].dump(), c.returned.dump()) << what;
  }
}

TEST_F(ApiTest, JsonValuesNestUpToTheLimit) {
  const std::string target = "/api/v1/global/configs/deep";
  // A value may nest 64 levels, as the config model allows; the body object around it is one
  // more. A deeper value is refused by the body parser, whatever its depth: 400.
  auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  const Reply ok =
      Send("PUT", target, admin_.text, R"({"type":"json","value":)" + nested(64) + "}");
  EXPECT_EQ(ok.status, 201) << ok.body;
  EXPECT_EQ(Get(target + "/reveal", admin_.text).Json()["value"], json::parse(nested(64)));
  for (const int depth : {65, 100'000}) {
    const Reply too_deep =
        Send("PUT", target, admin_.text, R"({"type":"json","value":)" + nested(depth) + "}");
    EXPECT_EQ(too_deep.status, 400) << depth << ": " << too_deep.body;
    EXPECT_EQ(too_deep.Code(), "bad_request");
    EXPECT_EQ(too_deep.Message(),
              "the request body nests deeper than 65 levels (the object and a value of at most "
              "64)");
  }
  EXPECT_EQ(Get(target, admin_.text).Json()["version"], 1);
}

// The exact text of the top-level member `name` of the JSON object `text`.
std::string MemberText(const std::string& text, const std::string& name) {
  const auto member = config::json_text::Member(text, name);
  return member ? std::string(*member) : "<no member '" + name + "' in " + text + ">";
}

TEST_F(ApiTest, JsonValuesAreStoredAndShownExactlyAsSent) {
  const std::string org = MakeOrg("Acme");
  const std::string target = "/api/v1/orgs/" + org + "/configs/doc";
  // What a parse and re-serialisation would change: a 30-digit integer (a double), 1e400
  // (out of a double's range), member order (sorted), escapes, a trailing zero, spacing.
  const std::string value =
      R"({"z": 123456789012345678901234567890, "a": [1e400, -0.0, 2.50], "é": "é\/"})";
  const Reply put = Send("PUT", target, admin_.text,
                         R"({ "type" : "json", "value" : )" + value + R"( , "description":"d"})");
  ASSERT_EQ(put.status, 201) << put.body;
  EXPECT_EQ(MemberText(put.body, "value"), value);
  EXPECT_EQ(MemberText(put.body, "description"), "\"d\"");
  EXPECT_EQ(MemberText(Get(target, admin_.text).body, "value"), value);
  EXPECT_EQ(MemberText(Get(target + "/reveal", admin_.text).body, "value"), value);
  const Reply listed = Get("/api/v1/orgs/" + org + "/configs", admin_.text);
  ASSERT_EQ(listed.status, 200);
  const auto entries = config::json_text::Elements(listed.body);
  ASSERT_EQ(entries.size(), 1u) << listed.body;
  EXPECT_EQ(MemberText(std::string(entries[0]), "value"), value);
  // Every response is still valid JSON (which 1e400 is, though no double holds it), with the
  // other fields as before.
  for (const Reply& r : {put, listed}) {
    EXPECT_FALSE(config::json_text::Check(r.body).has_value()) << r.body;
  }
  EXPECT_EQ(MemberText(put.body, "key"), "\"doc\"");
  EXPECT_EQ(MemberText(put.body, "type"), "\"json\"");
  EXPECT_EQ(MemberText(put.body, "version"), "1");
  EXPECT_EQ(MemberText(std::string(entries[0]), "key"), "\"doc\"");

  // Scalars too, and a number out of a double's range for a type that needs a number.
  const Reply big = Send("PUT", "/api/v1/global/configs/big", admin_.text,
                         R"({"type":"json","value":-123456789012345678901234567890.5e-3})");
  ASSERT_EQ(big.status, 201) << big.body;
  EXPECT_EQ(MemberText(big.body, "value"), "-123456789012345678901234567890.5e-3");
  for (const std::string type : {"int", "string", "bool", "secret"}) {
    const Reply refused = Send("PUT", "/api/v1/global/configs/huge", admin_.text,
                               R"({"type":")" + type + R"(","value":1e400})");
    EXPECT_EQ(refused.status, 422) << type << ": " << refused.body;
    EXPECT_EQ(refused.Code(), "invalid_argument");
    EXPECT_NE(refused.Message().find("config 'huge' has type " + type +
                                     " but its value is a number out of range"),
              std::string::npos)
        << refused.Message();
  }
  const Reply long_int = Send("PUT", "/api/v1/global/configs/huge", admin_.text,
                              R"({"type":"int","value":123456789012345678901234567890})");
  EXPECT_EQ(long_int.status, 422) << long_int.body;
  EXPECT_EQ(long_int.Message(),
            "config 'huge' has type int but its value is outside the signed 64-bit range");
  // The other members of the body are still parsed strictly.
  const Reply bad_version =
      Send("PUT", target, admin_.text, R"({"type":"json","value":1,"expected_version":1e400})");
  EXPECT_EQ(bad_version.status, 400) << bad_version.body;
  EXPECT_EQ(bad_version.Message(),
            "field 'expected_version' of the request body holds a number out of range");
  const Reply dup_inside =
      Send("PUT", target, admin_.text, R"({"type":"json","value":{"n":1e400,"n":2}})");
  EXPECT_EQ(dup_inside.status, 400) << dup_inside.body;
  EXPECT_EQ(dup_inside.Message(), "the request body has the key 'n' twice in one object");
  const Reply dup_value =
      Send("PUT", target, admin_.text, R"({"type":"json","value":1,"\u0076alue":2})");
  EXPECT_EQ(dup_value.status, 400) << dup_value.body;
  EXPECT_EQ(MemberText(Get(target, admin_.text).body, "version"), "1");
}

TEST_F(ApiTest, ValueAndDescriptionLimitsAre422) {
  const std::string target = "/api/v1/global/configs/big";
  EXPECT_EQ(
      Put(target, admin_.text, {{"type", "string"}, {"value", std::string(64 * 1024, 'x')}}).status,
      201);
  const Reply too_big =
      Put(target, admin_.text, {{"type", "string"}, {"value", std::string(64 * 1024 + 1, 'x')}});
  EXPECT_EQ(too_big.status, 422);
  const Reply long_description =
      Put(target, admin_.text,
          {{"type", "string"}, {"value", "v"}, {"description", std::string(1025, 'd')}});
  EXPECT_EQ(long_description.status, 422);
  EXPECT_EQ(Get(target, admin_.text).Json()["version"], 1);
}

TEST_F(ApiTest, InvalidKeysAndTypesAre422) {
  const std::string org = MakeOrg("Acme");
  const std::string base = "/api/v1/orgs/" + org + "/configs/";
  for (const std::string& key :
       std::vector<std::string>{"bad-key", "dot.key", std::string(256, 'k')}) {
    const Reply put = Put(base + key, admin_.text, {{"type", "string"}, {"value", "v"}});
    EXPECT_EQ(put.status, 422) << key;
    EXPECT_EQ(put.Code(), "invalid_argument");
    EXPECT_EQ(Get(base + key, admin_.text).status, 422) << key;
    EXPECT_EQ(Get(base + key + "/reveal", admin_.text).status, 422) << key;
    EXPECT_EQ(Delete(base + key, admin_.text).status, 422) << key;
  }
  for (const std::string& type : std::vector<std::string>{"float", "String", "", "secrets"}) {
    const Reply put = Put(base + "k", admin_.text, {{"type", type}, {"value", "1.5"}});
    EXPECT_EQ(put.status, 422) << type;
    EXPECT_EQ(put.Code(), "invalid_argument");
  }
  EXPECT_EQ(Get("/api/v1/orgs/" + org + "/configs", admin_.text).Json(), json::array());
}

// ---- Config: malformed bodies -------------------------------------------------------------

TEST_F(ApiTest, MalformedConfigBodiesAre400AndNameTheProblem) {
  const std::string org = MakeOrg("Acme");
  const std::string target = "/api/v1/orgs/" + org + "/configs/k";
  ASSERT_EQ(Put(target, admin_.text, {{"type", "int"}, {"value", 1}}).status, 201);
  const std::vector<std::pair<std::string, std::string>> bodies = {
      {"", "empty"},
      {"{", "not valid JSON"},
      {"not json", "not valid JSON"},
      {"{} {}", "not valid JSON"},
      {"[1,2]", "an array"},
      {"\"text\"", "a string"},
      {"null", "null"},
      {R"({"type":"int","value":5)", "not valid JSON"},
      {R"({"type":"int","value":5,})", "not valid JSON"},
      {R"({"type":"int","value":05})", "not valid JSON"},
      {R"({"type":"int","value":NaN})", "not valid JSON"},
      {R"({"type":"int","value":1e999,"expected_version":1e999})", "out of range"},
      {R"({"type":"int","value":5} // comment)", "not valid JSON"},
      {R"({"type":7,"value":5})", "'type'"},
      {R"({"type":null,"value":5})", "'type'"},
      {R"({"type":"int"})", "'value'"},
      {R"({"value":5})", "'type'"},
      {R"({"type":"int","value":5,"unexpected":true})", "'unexpected'"},
      {R"({"type":"int","value":5,"key":"k"})", "'key'"},
      {R"({"type":"int","value":5,"description":7})", "'description'"},
      {R"({"type":"int","value":5,"description":null})", "'description'"},
      {R"({"type":"int","value":5,"expected_version":"1"})", "'expected_version'"},
      {R"({"type":"int","value":5,"expected_version":1.5})", "'expected_version'"},
      {R"({"type":"int","value":5,"expected_version":1.0})", "'expected_version'"},
      {R"({"type":"int","value":5,"expected_version":18446744073709551615})", "'expected_version'"},
      {R"({"type":"int","value":5,"type":"string"})", "twice"},
      {R"({"type":"json","value":{"a":1,"a":2}})", "twice"},
      {"{\"type\":\"string\",\"value\":\"\xff\xfe\"}", "UTF-8"},
      {"{\"type\":\"string\",\"value\":\"\xc0\xaf\"}", "UTF-8"},
      {"{\"type\":\"string\",\"value\":\"a\x01\"}", "not valid JSON"},
      {R"({"type":"string","value":"\ud800"})", "not valid JSON"},
  };
  for (const auto& [body, needle] : bodies) {
    const Reply r = Send("PUT", target, admin_.text, body);
    EXPECT_EQ(r.status, 400) << body << ": " << r.body;
    EXPECT_EQ(r.Code(), "bad_request") << body;
    EXPECT_NE(r.Message().find(needle), std::string::npos)
        << body << ": '" << r.Message() << "' does not mention " << needle;
  }
  EXPECT_EQ(Get(target, admin_.text).Json()["version"], 1);
  EXPECT_EQ(Get(target, admin_.text).Json()["value"], 1);
}

TEST_F(ApiTest, ContentTypeMustBeJson) {
  const std::string target = "/api/v1/global/configs/k";
  const std::string body = R"({"type":"int","value":5})";
  for (const std::string& accepted : std::vector<std::string>{
           "application/json", "application/json; charset=utf-8", "Application/JSON",
           "application/json;charset=UTF-8", "application/json; charset=\"utf-8\""}) {
    const Reply r = Send("PUT", target, admin_.text, body, accepted);
    EXPECT_TRUE(r.status == 200 || r.status == 201) << accepted << ": " << r.body;
  }
  for (const std::string& refused : std::vector<std::string>{
           "", "text/plain", "application/x-www-form-urlencoded", "application/jsonx",
           "application/json; charset=latin1", "multipart/form-data"}) {
    const Reply r = Send("PUT", target, admin_.text, body, refused);
    EXPECT_EQ(r.status, 400) << "'" << refused << "': " << r.body;
    EXPECT_EQ(r.Code(), "bad_request");
    EXPECT_NE(r.Message().find("application/json"), std::string::npos) << r.Message();
  }
  EXPECT_EQ(Get(target, admin_.text).Json()["version"], 5);
}

TEST_F(ApiTest, MalformedOrgAndTokenBodiesAre400) {
  const std::vector<std::string> org_bodies = {"",
                                               "[]",
                                               R"({"name":42})",
                                               R"({"name":null})",
                                               R"({})",
                                               R"({"name":"A","id":"x"})",
                                               R"({"name":"A","name":"B"})"};
  for (const auto& body : org_bodies) {
    const Reply r = Send("POST", "/api/v1/orgs", admin_.text, body);
    EXPECT_EQ(r.status, 400) << body << ": " << r.body;
    EXPECT_EQ(r.Code(), "bad_request");
  }
  EXPECT_EQ(Get("/api/v1/orgs", admin_.text).Json(), json::array());

  const std::string org = MakeOrg("Acme");
  const std::vector<std::string> token_bodies = {
      "",
      "{}",
      R"({"role":["admin"]})",
      R"({"role":"admin","org_id":7})",
      R"({"role":"admin","name":false})",
      R"({"role":"admin","ttl_seconds":"60"})",
      R"({"role":"admin","ttl_seconds":1.5})",
      R"({"role":"admin","scopes":[]})",
  };
  for (const auto& body : token_bodies) {
    const Reply r = Send("POST", "/api/v1/tokens", admin_.text, body);
    EXPECT_EQ(r.status, 400) << body << ": " << r.body;
    EXPECT_EQ(r.Code(), "bad_request");
  }
  EXPECT_EQ(Get("/api/v1/tokens", admin_.text).Json().size(), 1u);
}

// ---- Config: optimistic concurrency -------------------------------------------------------

TEST_F(ApiTest, ExpectedVersionOnWritesAndDeletes) {
  const std::string org = MakeOrg("Acme");
  const std::string target = "/api/v1/orgs/" + org + "/configs/k";
  // Absent with expected_version n > 0: nothing to replace.
  EXPECT_EQ(
      Put(target, admin_.text, {{"type", "int"}, {"value", 1}, {"expected_version", 3}}).status,
      404);
  // 0: create only.
  EXPECT_EQ(
      Put(target, admin_.text, {{"type", "int"}, {"value", 1}, {"expected_version", 0}}).status,
      201);
  const Reply exists =
      Put(target, admin_.text, {{"type", "int"}, {"value", 2}, {"expected_version", 0}});
  EXPECT_EQ(exists.status, 409);
  EXPECT_EQ(exists.Code(), "already_exists");
  const Reply stale =
      Put(target, admin_.text, {{"type", "int"}, {"value", 2}, {"expected_version", 7}});
  EXPECT_EQ(stale.status, 409);
  EXPECT_EQ(stale.Code(), "conflict");
  const Reply negative =
      Put(target, admin_.text, {{"type", "int"}, {"value", 2}, {"expected_version", -1}});
  EXPECT_EQ(negative.status, 422);
  EXPECT_EQ(Get(target, admin_.text).Json()["value"], 1);

  const Reply current =
      Put(target, admin_.text, {{"type", "int"}, {"value", 2}, {"expected_version", 1}});
  EXPECT_EQ(current.status, 200);
  EXPECT_EQ(current.Json()["version"], 2);

  for (const std::string& bad :
       std::vector<std::string>{"0", "-1", "abc", "", "1.0", "01", "+2", "99999999999999999999"}) {
    const Reply r = Delete(target + "?expected_version=" + bad, admin_.text);
    EXPECT_EQ(r.status, 400) << "'" << bad << "'";
    EXPECT_EQ(r.Code(), "bad_request");
    EXPECT_NE(r.Message().find("expected_version"), std::string::npos);
  }
  const Reply conflict = Delete(target + "?expected_version=1", admin_.text);
  EXPECT_EQ(conflict.status, 409);
  EXPECT_EQ(conflict.Code(), "conflict");
  EXPECT_EQ(Get(target, admin_.text).Json()["version"], 2);
  EXPECT_EQ(Delete(target + "?expected_version=2", admin_.text).status, 204);
  EXPECT_EQ(Get(target, admin_.text).status, 404);
  EXPECT_EQ(Delete(target + "?expected_version=2", admin_.text).status, 404);
}

// ---- Secrets ------------------------------------------------------------------------------

TEST_F(ApiTest, SecretsAreMaskedEverywhereButReveal) {
  const std::string canary = "CANARY-sk_live_0123456789";
  const std::string org = MakeOrg("Acme");
  const std::string scope = "/api/v1/orgs/" + org + "/configs";
  const MintedToken admin = Mint(auth::Role::kAdmin, org);
  const MintedToken member = Mint(auth::Role::kMember, org);
  const MintedToken reader = Mint(auth::Role::kReader, org);
  std::vector<Reply> replies;

  replies.push_back(Put(scope + "/api_key", admin.text,
                        {{"type", "secret"}, {"value", canary}, {"description", "stripe"}}));
  ASSERT_EQ(replies.back().status, 201) << replies.back().body;
  const json masked = replies.back().Json();
  EXPECT_EQ(masked["value"], "[SECRET]");
  EXPECT_EQ(masked["type"], "secret");
  EXPECT_EQ(masked["description"], "stripe");
  replies.push_back(Put(scope + "/api_key", admin.text, {{"type", "secret"}, {"value", canary}}));
  EXPECT_EQ(replies.back().status, 200);
  EXPECT_EQ(replies.back().Json()["value"], "[SECRET]");
  replies.push_back(Put("/api/v1/global/configs/shared", admin_.text,
                        {{"type", "secret"}, {"value", canary + "-global"}}));
  EXPECT_EQ(replies.back().Json()["value"], "[SECRET]");

  for (const auto& token : {admin_.text, admin.text, member.text, reader.text}) {
    replies.push_back(Get(scope, token));
    replies.push_back(Get(scope + "/api_key", token));
    replies.push_back(Get(scope + "/shared", token));
    replies.push_back(Get("/api/v1/global/configs", token));
    replies.push_back(Get("/api/v1/global/configs/shared", token));
    replies.push_back(Get("/api/v1/orgs", token));
    replies.push_back(Get("/api/v1/tokens", token));
  }
  const json listed = Get(scope, reader.text).Json();
  ASSERT_EQ(listed.size(), 2u);
  for (const auto& entry : listed) EXPECT_EQ(entry["value"], "[SECRET]") << entry.dump();

  // Refused reveals and failed writes that carry the secret.
  replies.push_back(Get(scope + "/api_key/reveal", reader.text));
  EXPECT_EQ(replies.back().status, 403);
  replies.push_back(Get("/api/v1/global/configs/shared/reveal", member.text));
  EXPECT_EQ(replies.back().status, 403);
  replies.push_back(Put(scope + "/bad-key", admin.text, {{"type", "secret"}, {"value", canary}}));
  EXPECT_EQ(replies.back().status, 422);
  replies.push_back(Put(scope + "/n", admin.text, {{"type", "int"}, {"value", {{"k", canary}}}}));
  EXPECT_EQ(replies.back().status, 422);
  replies.push_back(Put(scope + "/b", admin.text, {{"type", "bool"}, {"value", {canary}}}));
  EXPECT_EQ(replies.back().status, 422);
  // A secret sent under the wrong type is not echoed either.
  replies.push_back(Put(scope + "/n", admin.text, {{"type", "int"}, {"value", canary}}));
  EXPECT_EQ(replies.back().status, 422);
  replies.push_back(Put(scope + "/b", admin.text, {{"type", "bool"}, {"value", canary}}));
  EXPECT_EQ(replies.back().status, 422);
  replies.push_back(Put(scope + "/s", admin.text,
                        {{"type", "secret"}, {"value", canary + std::string(70'000, 'x')}}));
  EXPECT_EQ(replies.back().status, 422);
  replies.push_back(Put(scope + "/s", reader.text, {{"type", "secret"}, {"value", canary}}));
  EXPECT_EQ(replies.back().status, 403);
  replies.push_back(
      Send("PUT", scope + "/s", admin.text, R"({"type":"secret","value":")" + canary + R"(")"));
  EXPECT_EQ(replies.back().status, 400);
  replies.push_back(Send("PUT", scope + "/s", admin.text,
                         R"({"type":"secret","value":")" + canary + R"(","value":"x"})"));
  EXPECT_EQ(replies.back().status, 400);
  replies.push_back(Send("PUT", scope + "/s", admin.text,
                         R"({"type":"secret","value":")" + canary + R"(","x":1})"));
  EXPECT_EQ(replies.back().status, 400);
  for (const auto& r : replies) {
    EXPECT_EQ(r.body.find("CANARY"), std::string::npos) << "the secret leaked: " << r.body;
  }

  // Reveal: platform admin, org admin and member; the org falls back to a global secret.
  for (const auto& token : {admin_.text, admin.text, member.text}) {
    const Reply r = Get(scope + "/api_key/reveal", token);
    ASSERT_EQ(r.status, 200) << r.body;
    json expected = masked;
    expected["value"] = canary;
    expected["description"] = "";
    expected["version"] = 2;
    EXPECT_EQ(r.Json(), expected);
    const Reply global = Get(scope + "/shared/reveal", token);
    EXPECT_EQ(global.Json()["value"], canary + "-global");
    EXPECT_EQ(global.Json()["scope"], "global");
  }
  EXPECT_EQ(Get("/api/v1/global/configs/shared/reveal", admin_.text).Json()["value"],
            canary + "-global");
}

// ---- Authorization ------------------------------------------------------------------------

TEST_F(ApiTest, OrgTokensGet403OnEveryRouteOfAnotherOrMissingOrganization) {
  const std::string own = MakeOrg("Alpha");
  const std::string other = MakeOrg("Beta");
  ASSERT_EQ(Put("/api/v1/orgs/" + other + "/configs/k", admin_.text,
                {{"type", "secret"}, {"value", "beta-secret"}})
                .status,
            201);
  const std::vector<std::pair<std::string, std::string>> routes = {
      {"GET", ""},
      {"DELETE", ""},
      {"GET", "/configs"},
      {"GET", "/configs/k"},
      {"PUT", "/configs/k"},
      {"DELETE", "/configs/k"},
      {"GET", "/configs/k/reveal"},
      {"GET", "/configs/missing"},
      {"PUT", "/configs/bad-key"},
  };
  const std::string body = R"({"type":"string","value":"overwritten"})";
  int checked = 0;
  for (auto role : {auth::Role::kAdmin, auth::Role::kMember, auth::Role::kReader}) {
    const MintedToken token = Mint(role, own);
    for (const auto& [method, suffix] : routes) {
      std::set<std::string> bodies;
      for (const std::string& org :
           std::vector<std::string>{other, std::string(kMissingOrg), std::string("not-a-uuid")}) {
        const std::string target = "/api/v1/orgs/" + org + suffix;
        const Reply r = Send(method, target, token.text, method == "PUT" ? body : "");
        EXPECT_EQ(r.status, 403) << auth::RoleName(role) << " " << method << " " << target << ": "
                                 << r.body;
        EXPECT_EQ(r.Code(), "permission_denied");
        EXPECT_EQ(r.body.find(other), std::string::npos) << r.body;
        EXPECT_EQ(r.body.find("beta-secret"), std::string::npos) << r.body;
        EXPECT_EQ(r.log.token_id, token.id);
        bodies.insert(r.body);
        ++checked;
      }
      // Whether the org exists makes no difference to the answer.
      EXPECT_EQ(bodies.size(), 1u) << method << " " << suffix;
    }
    // Nor may an org token address the global scope or create organizations.
    for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
             {"GET", "/api/v1/global/configs"},
             {"GET", "/api/v1/global/configs/k"},
             {"GET", "/api/v1/global/configs/k/reveal"},
             {"PUT", "/api/v1/global/configs/k"},
             {"DELETE", "/api/v1/global/configs/k"},
             {"POST", "/api/v1/orgs"},
             {"GET", "/api/v1/tokens?org_id=" + other},
             {"POST", "/api/v1/tokens"}}) {
      const std::string request_body =
          method == "POST" && target == "/api/v1/tokens"
              ? json{{"role", "reader"}, {"org_id", other}}.dump()
              : (method == "POST" ? json{{"name", "Gamma"}}.dump() : (method == "PUT" ? body : ""));
      const Reply r = Send(method, target, token.text, request_body);
      EXPECT_EQ(r.status, 403) << auth::RoleName(role) << " " << method << " " << target << ": "
                               << r.body;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 3 * (9 * 3 + 8));
  // Nothing of the other org changed.
  const Reply still = Get("/api/v1/orgs/" + other + "/configs/k/reveal", admin_.text);
  EXPECT_EQ(still.Json()["value"], "beta-secret");
  EXPECT_EQ(still.Json()["version"], 1);
  EXPECT_EQ(Get("/api/v1/orgs", admin_.text).Json().size(), 2u);
  EXPECT_EQ(Get("/api/v1/tokens?org_id=" + other, admin_.text).Json(), json::array());
}

TEST_F(ApiTest, RolesWithinTheirOwnOrganization) {
  const std::string org = MakeOrg("Acme");
  const std::string scope = "/api/v1/orgs/" + org + "/configs";
  ASSERT_EQ(Put(scope + "/k", admin_.text, {{"type", "secret"}, {"value", "v1"}}).status, 201);
  const json write = {{"type", "string"}, {"value", "w"}};
  struct Expectation {
    auth::Role role;
    int get_org, list, get, reveal, put, del, delete_org;
  };
  for (const auto& e : {Expectation{auth::Role::kAdmin, 200, 200, 200, 200, 201, 204, 403},
                        Expectation{auth::Role::kMember, 200, 200, 200, 200, 403, 403, 403},
                        Expectation{auth::Role::kReader, 200, 200, 200, 403, 403, 403, 403}}) {
    const MintedToken t = Mint(e.role, org);
    const std::string name(auth::RoleName(e.role));
    EXPECT_EQ(Get("/api/v1/orgs/" + org, t.text).status, e.get_org) << name;
    EXPECT_EQ(Get(scope, t.text).status, e.list) << name;
    EXPECT_EQ(Get(scope + "/k", t.text).status, e.get) << name;
    EXPECT_EQ(Get(scope + "/k/reveal", t.text).status, e.reveal) << name;
    EXPECT_EQ(Put(scope + "/w", t.text, write).status, e.put) << name;
    EXPECT_EQ(Delete(scope + "/w", t.text).status, e.del) << name;
    EXPECT_EQ(Delete("/api/v1/orgs/" + org, t.text).status, e.delete_org) << name;
  }
  // The org admin's writes are recorded as its own.
  const MintedToken admin = Mint(auth::Role::kAdmin, org, "deployer");
  const Reply r = Put(scope + "/w", admin.text, write);
  EXPECT_EQ(r.Json()["updated_by"], Actor("deployer", admin.id));
}

// ---- Tokens -------------------------------------------------------------------------------

TEST_F(ApiTest, TokenLifecycleWithExactShapes) {
  const std::string org = MakeOrg("Acme");
  clock_.AdvanceMicros(1'000'000);  // newer than the bootstrap token, for the list order
  const std::string created_at = "2025-11-29T14:12:09.123456Z";
  const Reply created =
      Post("/api/v1/tokens", admin_.text,
           {{"role", "member"}, {"org_id", org}, {"name", "ci"}, {"ttl_seconds", 3600}});
  ASSERT_EQ(created.status, 201) << created.body;
  json token = created.Json();
  const std::string id = token.value("id", "");
  const std::string text = token.value("token", "");
  EXPECT_TRUE(std::regex_match(text, std::regex("bft_[A-Za-z0-9_-]{43}"))) << text;
  EXPECT_EQ(token, json({{"id", id},
                         {"name", "ci"},
                         {"role", "member"},
                         {"org_id", org},
                         {"created_at", created_at},
                         {"created_by", Actor("root", admin_.id)},
                         {"expires_at", "2025-11-29T15:12:09.123456Z"},
                         {"last_used_at", nullptr},
                         {"revoked_at", nullptr},
                         {"token", text}}));

  const Reply whoami = Get("/api/v1/whoami", text);
  ASSERT_EQ(whoami.status, 200);
  EXPECT_EQ(whoami.Json()["token_id"], id);

  // Listed newest first, without the token or its hash.
  clock_.AdvanceMicros(1'000'000);
  const Reply listed = Get("/api/v1/tokens", admin_.text);
  ASSERT_EQ(listed.status, 200);
  ASSERT_EQ(listed.Json().size(), 2u);
  json expected = token;
  expected.erase("token");
  expected["last_used_at"] = created_at;
  EXPECT_EQ(listed.Json()[0]["id"], id);
  EXPECT_EQ(listed.Json()[0], expected);
  EXPECT_EQ(listed.Json()[1]["id"], admin_.id);
  EXPECT_EQ(listed.Json()[1]["org_id"], nullptr);
  EXPECT_EQ(listed.Json()[1]["expires_at"], nullptr);
  EXPECT_EQ(listed.Json()[1]["created_by"], "bootstrap");
  EXPECT_EQ(listed.body.find(text), std::string::npos);
  EXPECT_EQ(listed.body.find("hash"), std::string::npos);
  EXPECT_EQ(listed.body.find(admin_.text), std::string::npos);
  EXPECT_EQ(Get("/api/v1/tokens?org_id=" + org, admin_.text).Json(), json::array({expected}));

  const Reply revoked = Delete("/api/v1/tokens/" + id, admin_.text);
  EXPECT_EQ(revoked.status, 204);
  EXPECT_EQ(revoked.body, "");
  EXPECT_EQ(Get("/api/v1/whoami", text).status, 401);
  EXPECT_EQ(Get("/api/v1/tokens?org_id=" + org, admin_.text).Json()[0]["revoked_at"],
            "2025-11-29T14:12:10.123456Z");
  EXPECT_EQ(Delete("/api/v1/tokens/" + std::string(kMissingOrg), admin_.text).status, 404);

  // A platform-admin token has no org; its name is made up when none is given.
  const Reply platform = Post("/api/v1/tokens", admin_.text, {{"role", "platform-admin"}});
  ASSERT_EQ(platform.status, 201) << platform.body;
  EXPECT_EQ(platform.Json()["org_id"], nullptr);
  EXPECT_TRUE(platform.Json()["name"].get<std::string>().starts_with("token-"));
}

TEST_F(ApiTest, TokenRequestsThatBreakTheRulesAre422Or404) {
  const std::string org = MakeOrg("Acme");
  const std::vector<std::pair<json, int>> cases = {
      {{{"role", "superuser"}}, 422},
      {{{"role", "Admin"}, {"org_id", org}}, 422},
      {{{"role", "platform-admin"}, {"org_id", org}}, 422},
      {{{"role", "reader"}}, 422},  // an org role needs an org
      {{{"role", "reader"}, {"org_id", org}, {"ttl_seconds", 0}}, 422},
      {{{"role", "reader"}, {"org_id", org}, {"ttl_seconds", -5}}, 422},
      {{{"role", "reader"}, {"org_id", org}, {"name", std::string(101, 'n')}}, 422},
      {{{"role", "reader"}, {"org_id", std::string(kMissingOrg)}}, 404},
  };
  for (const auto& [body, status] : cases) {
    const Reply r = Post("/api/v1/tokens", admin_.text, body);
    EXPECT_EQ(r.status, status) << body.dump() << ": " << r.body;
  }
  EXPECT_EQ(Get("/api/v1/tokens", admin_.text).Json().size(), 1u);
}

TEST_F(ApiTest, OrgAdminsManageTheirOwnOrganizationsTokensOnly) {
  const std::string own = MakeOrg("Alpha");
  const std::string other = MakeOrg("Beta");
  const MintedToken admin = Mint(auth::Role::kAdmin, own, "alpha-admin");
  const MintedToken foreign = Mint(auth::Role::kReader, other);

  // Without an org_id, an org admin's token belongs to its own org.
  const Reply implicit = Post("/api/v1/tokens", admin.text, {{"role", "reader"}});
  ASSERT_EQ(implicit.status, 201) << implicit.body;
  EXPECT_EQ(implicit.Json()["org_id"], own);
  EXPECT_EQ(implicit.Json()["created_by"], Actor("alpha-admin", admin.id));
  const Reply explicit_org =
      Post("/api/v1/tokens", admin.text, {{"role", "admin"}, {"org_id", own}});
  EXPECT_EQ(explicit_org.status, 201) << explicit_org.body;

  EXPECT_EQ(Post("/api/v1/tokens", admin.text, {{"role", "reader"}, {"org_id", other}}).status,
            403);
  EXPECT_EQ(
      Post("/api/v1/tokens", admin.text, {{"role", "reader"}, {"org_id", std::string(kMissingOrg)}})
          .status,
      403);
  EXPECT_EQ(Post("/api/v1/tokens", admin.text, {{"role", "platform-admin"}}).status, 403);

  const Reply listed = Get("/api/v1/tokens", admin.text);
  ASSERT_EQ(listed.status, 200);
  EXPECT_EQ(listed.Json().size(), 3u);
  for (const auto& t : listed.Json()) EXPECT_EQ(t["org_id"], own) << t.dump();
  EXPECT_EQ(Get("/api/v1/tokens?org_id=" + own, admin.text).Json().size(), 3u);
  EXPECT_EQ(Get("/api/v1/tokens?org_id=" + other, admin.text).status, 403);
  EXPECT_EQ(Get("/api/v1/tokens?org_id=" + std::string(kMissingOrg), admin.text).status, 403);

  EXPECT_EQ(Delete("/api/v1/tokens/" + foreign.id, admin.text).status, 403);
  EXPECT_EQ(Delete("/api/v1/tokens/" + std::string(kMissingOrg), admin.text).status, 403);
  EXPECT_EQ(Get("/api/v1/whoami", foreign.text).status, 200);
  EXPECT_EQ(Delete("/api/v1/tokens/" + implicit.Json()["id"].get<std::string>(), admin.text).status,
            204);

  for (auto role : {auth::Role::kMember, auth::Role::kReader}) {
    const MintedToken t = Mint(role, own);
    EXPECT_EQ(Get("/api/v1/tokens", t.text).status, 403);
    EXPECT_EQ(Post("/api/v1/tokens", t.text, {{"role", "reader"}}).status, 403);
    // Refused before the body is looked at.
    EXPECT_EQ(Send("POST", "/api/v1/tokens", t.text, "{").status, 403);
    EXPECT_EQ(Delete("/api/v1/tokens/" + t.id, t.text).status, 403);
  }
}

TEST_F(ApiTest, AnExpiringTokenCannotCreateATokenThatOutlivesIt) {
  const std::string org = MakeOrg("Acme");
  auto created = tokens_->Create(
      {.name = "temp-admin", .role = auth::Role::kAdmin, .org_id = org, .ttl_seconds = 3600},
      nullptr);
  ASSERT_TRUE(created) << created.error().ToString();
  const std::string admin(created->token.view());
  for (const json& body :
       {json{{"role", "reader"}}, json{{"role", "reader"}, {"ttl_seconds", 3601}}}) {
    const Reply r = Post("/api/v1/tokens", admin, body);
    EXPECT_EQ(r.status, 422) << body.dump() << ": " << r.body;
    EXPECT_EQ(r.Code(), "invalid_argument");
    EXPECT_EQ(r.Message(),
              "a token cannot outlive the token that creates it (expires at "
              "2025-11-29T15:12:08Z); ask for ttl_seconds of at most 3600");
  }
  const Reply ok = Post("/api/v1/tokens", admin, {{"role", "reader"}, {"ttl_seconds", 3600}});
  ASSERT_EQ(ok.status, 201) << ok.body;
  EXPECT_EQ(ok.Json()["expires_at"], "2025-11-29T15:12:08.123456Z");
}

}  // namespace
}  // namespace bifrost::server
