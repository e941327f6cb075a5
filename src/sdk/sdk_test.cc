// The C++ SDK's Client against a scripted HTTP server: the requests it sends, how it reads
// every answer, and which exception each failure becomes.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <typeinfo>

#include "bifrost/client.h"
#include "client/testing/fake_http_server.h"
#include "sdk/test_env.h"

namespace bifrost::sdk {
namespace {

using client::testing::FakeHttpServer;
using client::testing::FakeRequest;
using client::testing::FakeResponse;
using nlohmann::json;
using testing::ScopedEnv;

constexpr const char* kOrgId = "3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c";
constexpr const char* kBetaId = "0b7e9c1d-2a3f-4e5d-8c6b-7a8f9e0d1c2b";
constexpr const char* kToken = "bft_sdk_test_secret_token";

std::string OrgPath(const std::string& org = kOrgId) { return "/api/v1/orgs/" + org + "/configs"; }

// A ConfigEntry as the server writes it, with `value_text` spliced in verbatim.
std::string EntryText(const std::string& key, const std::string& type,
                      const std::string& value_text, const std::string& scope = "org") {
  std::string text = R"({"key":")";
  text += key;
  text += R"(","type":")";
  text += type;
  text += R"(","value":)";
  text += value_text;
  text += R"(,"description":"","scope":")";
  text += scope;
  text += R"(","org_id":)";
  text += scope == "org" ? json(kOrgId).dump() : "null";
  text +=
      R"(,"created_at":"2024-05-01T10:00:00.000000Z","updated_at":"2024-05-01T10:00:00.000000Z",)";
  text += R"("updated_by":"ops","version":1})";
  return text;
}

FakeResponse Ok(std::string body, int status = 200) {
  return FakeResponse{.status = status, .body = std::move(body)};
}

FakeResponse ApiError(int status, const std::string& code, const std::string& message) {
  return FakeResponse{.status = status,
                      .body = json{{"error", {{"code", code}, {"message", message}}}}.dump()};
}

FakeResponse NotSet(const std::string& key) {
  return ApiError(404, "not_found",
                  "config '" + key + "' is not set in organization 'Contoso' or the global scope");
}

json Principal(const json& org_id) {
  return {{"token_id", "tok-1"}, {"name", "ops"}, {"role", "admin"}, {"org_id", org_id}};
}

// A fake Bifrost API: answers from a table of "METHOD target" -> response; GET /api/v1/whoami
// answers for an admin token of kOrgId unless the table says otherwise; anything else is a
// 404 that says the key is not set.
class FakeApi {
 public:
  FakeApi() : server_([this](const FakeRequest& request) { return Handle(request); }) {}

  void On(const std::string& method, const std::string& target, FakeResponse response) {
    std::lock_guard<std::mutex> lock(mu_);
    routes_[method + " " + target] = std::move(response);
  }

  std::string address() const { return server_.http_address(); }
  std::vector<FakeRequest> requests() const { return server_.requests(); }
  int connections() const { return server_.connections(); }

  // How many requests had this method and target.
  int Count(const std::string& method, const std::string& target) const {
    int n = 0;
    for (const auto& request : server_.requests()) {
      if (request.method == method && request.target == target) ++n;
    }
    return n;
  }
  // Requests other than whoami and organization lookups.
  std::vector<FakeRequest> ConfigRequests() const {
    std::vector<FakeRequest> out;
    for (const auto& request : server_.requests()) {
      if (request.target.find("/configs") != std::string::npos) out.push_back(request);
    }
    return out;
  }

 private:
  FakeResponse Handle(const FakeRequest& request) {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = routes_.find(request.method + " " + request.target);
    if (it != routes_.end()) return it->second;
    if (request.method == "GET" && request.target == "/api/v1/whoami") {
      return Ok(Principal(kOrgId).dump());
    }
    return NotSet("unknown");
  }

  std::mutex mu_;
  std::map<std::string, FakeResponse> routes_;
  FakeHttpServer server_;  // last: stopped before the table it reads goes away
};

class ClientTest : public ::testing::Test {
 protected:
  ClientOptions Options() const {
    ClientOptions options;
    options.address = api_.address();
    options.token = kToken;
    options.timeout_ms = 10'000;
    return options;
  }
  Client MakeClient() { return Client(Options()); }

  FakeApi api_;
};

// Runs `call`, expects exactly the exception type E (not a subclass of it), returns it.
template <typename E, typename F>
E ExpectThrowExactly(F&& call) {
  try {
    call();
  } catch (const E& e) {
    EXPECT_EQ(typeid(e), typeid(E)) << e.what();
    EXPECT_EQ(std::string(e.what()).find(kToken), std::string::npos) << e.what();
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "unexpected " << typeid(e).name() << ": " << e.what();
    return E("unexpected exception");
  }
  ADD_FAILURE() << "nothing was thrown";
  return E("nothing thrown");
}

// ---- Get ----

TEST_F(ClientTest, GetsEveryTypeThroughReveal) {
  api_.On("GET", OrgPath() + "/greeting/reveal",
          Ok(EntryText("greeting", "string", R"("h\u00e9llo \"w\"\n")")));
  api_.On("GET", OrgPath() + "/retries/reveal", Ok(EntryText("retries", "int", "-42")));
  api_.On("GET", OrgPath() + "/biggest/reveal",
          Ok(EntryText("biggest", "int", "9223372036854775807")));
  api_.On("GET", OrgPath() + "/enabled/reveal", Ok(EntryText("enabled", "bool", "true")));
  api_.On("GET", OrgPath() + "/disabled/reveal", Ok(EntryText("disabled", "bool", "false")));
  api_.On("GET", OrgPath() + "/limits/reveal",
          Ok(EntryText("limits", "json", R"({"b": [1, 2.5, null], "a": "x"})")));
  api_.On("GET", OrgPath() + "/api_key/reveal",
          Ok(EntryText("api_key", "secret", R"("sk-live-123")", "global")));
  Client client = MakeClient();

  const ConfigValue greeting = client.Get("greeting");
  EXPECT_EQ(greeting.type(), ConfigType::kString);
  EXPECT_EQ(greeting.AsString(), "h\xc3\xa9llo \"w\"\n");

  const ConfigValue retries = client.Get("retries");
  EXPECT_EQ(retries.type(), ConfigType::kInt);
  EXPECT_EQ(retries.AsInt(), -42);
  EXPECT_EQ(client.Get("biggest").AsInt(), INT64_MAX);

  EXPECT_TRUE(client.Get("enabled").AsBool());
  EXPECT_FALSE(client.Get("disabled").AsBool());
  EXPECT_EQ(client.Get("enabled").type(), ConfigType::kBool);

  const ConfigValue limits = client.Get("limits");
  EXPECT_EQ(limits.type(), ConfigType::kJson);
  EXPECT_EQ(limits.AsJson(), json::parse(R"({"a":"x","b":[1,2.5,null]})"));
  EXPECT_EQ(limits.Text(), R"({"b": [1, 2.5, null], "a": "x"})");  // exactly as stored

  const ConfigValue api_key = client.Get("api_key");
  EXPECT_EQ(api_key.type(), ConfigType::kSecret);
  EXPECT_FALSE(api_key.masked());
  EXPECT_EQ(api_key.AsString(), "sk-live-123");

  const auto requests = api_.ConfigRequests();
  ASSERT_EQ(requests.size(), 8u);
  for (const auto& request : requests) {
    EXPECT_EQ(request.method, "GET");
    EXPECT_TRUE(request.target.ends_with("/reveal")) << request.target;
    EXPECT_EQ(request.headers.at("authorization"), std::string("Bearer ") + kToken);
  }
}

TEST_F(ClientTest, JsonValuesKeepTheirExactText) {
  const std::string stored = R"({"n": 123456789012345678901234567890, "x": 1e400, "s": "\u00e9"})";
  api_.On("GET", OrgPath() + "/exact/reveal", Ok(EntryText("exact", "json", stored)));
  api_.On("GET", OrgPath() + "/scalar/reveal", Ok(EntryText("scalar", "json", "\"text\"")));
  Client client = MakeClient();
  const ConfigValue exact = client.Get("exact");
  EXPECT_EQ(exact.Text(), stored);
  // nlohmann::json cannot hold 1e400: AsJson says so, Text() still has it.
  ExpectThrowExactly<Error>([&] { exact.AsJson(); });
  EXPECT_EQ(client.Get("scalar").AsJson(), json("text"));
}

TEST_F(ClientTest, MissingKeyIsNotFoundError) {
  api_.On("GET", OrgPath() + "/api_key/reveal", NotSet("api_key"));
  Client client = MakeClient();
  const auto error = ExpectThrowExactly<NotFoundError>([&] { client.Get("api_key"); });
  EXPECT_EQ(std::string(error.what()),
            "config 'api_key' is not set in organization 'Contoso' or the global scope");
  EXPECT_EQ(error.status(), 404);
}

TEST_F(ClientTest, FindAndFallbackTurnOnlyAMissingKeyIntoAbsence) {
  api_.On("GET", OrgPath() + "/present/reveal", Ok(EntryText("present", "int", "5")));
  api_.On("GET", OrgPath() + "/broken/reveal", ApiError(500, "internal", "request r-1 failed"));
  api_.On("GET", OrgPath() + "/denied/reveal", ApiError(403, "permission_denied", "no"));
  Client client = MakeClient();

  EXPECT_FALSE(client.Find("absent").has_value());
  EXPECT_EQ(client.Get("absent", ConfigValue::Int(7)).AsInt(), 7);
  EXPECT_EQ(client.Get("absent", ConfigValue::String("x")).AsString(), "x");
  ASSERT_TRUE(client.Find("present").has_value());
  EXPECT_EQ(client.Find("present")->AsInt(), 5);
  EXPECT_EQ(client.Get("present", ConfigValue::Int(7)).AsInt(), 5);

  // Never silently defaulted: every other failure is still thrown.
  ExpectThrowExactly<Error>([&] { client.Get("broken", ConfigValue::Int(7)); });
  ExpectThrowExactly<Error>([&] { client.Find("broken"); });
  ExpectThrowExactly<PermissionDeniedError>([&] { client.Get("denied", ConfigValue::Int(7)); });
  ExpectThrowExactly<PermissionDeniedError>([&] { client.Find("denied"); });
}

TEST_F(ClientTest, ForbiddenIsPermissionDeniedError) {
  api_.On("GET", OrgPath() + "/api_key/reveal",
          ApiError(403, "permission_denied", "a reader cannot reveal values"));
  Client client = MakeClient();
  const auto error = ExpectThrowExactly<PermissionDeniedError>([&] { client.Get("api_key"); });
  EXPECT_EQ(error.status(), 403);
  EXPECT_NE(std::string(error.what()).find("a reader cannot reveal values"), std::string::npos)
      << error.what();
  // It is an Error too, for code that catches everything the SDK throws.
  EXPECT_THROW(client.Get("api_key"), Error);
}

TEST_F(ClientTest, ServerErrorsAreErrorsWithTheirStatus) {
  const std::vector<std::pair<int, FakeResponse>> cases = {
      {500, ApiError(500, "internal", "internal error (request id r-42)")},
      {503, ApiError(503, "unavailable", "the database is unavailable")},
      {502,
       FakeResponse{
           .status = 502, .body = "<html>bad gateway</html>", .content_type = "text/html"}},
      {400, ApiError(400, "bad_request", "malformed")},
      {422, ApiError(422, "invalid_argument", "bad key")},
      {405, ApiError(405, "method_not_allowed", "no")},
  };
  for (const auto& [status, response] : cases) {
    api_.On("GET", OrgPath() + "/k/reveal", response);
    Client client = MakeClient();
    const auto error = ExpectThrowExactly<Error>([&] { client.Get("k"); });
    EXPECT_EQ(error.status(), status);
    EXPECT_NE(std::string(error.what()).find("HTTP " + std::to_string(status)), std::string::npos)
        << error.what();
    EXPECT_NE(std::string(error.what()).find("reading config 'k' failed"), std::string::npos)
        << error.what();
  }
}

TEST_F(ClientTest, UnauthenticatedIsErrorNamingTheVariable) {
  api_.On("GET", "/api/v1/whoami", ApiError(401, "unauthenticated", "unknown token"));
  Client client = MakeClient();
  const auto error = ExpectThrowExactly<Error>([&] { client.Get("k"); });
  EXPECT_EQ(error.status(), 401);
  const std::string message = error.what();
  EXPECT_NE(message.find("authentication failed"), std::string::npos) << message;
  EXPECT_NE(message.find("BIFROST_TOKEN"), std::string::npos) << message;
  EXPECT_TRUE(api_.ConfigRequests().empty());
}

TEST_F(ClientTest, NotFoundWithoutAnApiBodyIsAnError) {
  // A 404 from something that is not the Bifrost API says nothing about the key.
  api_.On("GET", OrgPath() + "/k/reveal",
          FakeResponse{.status = 404, .body = "not here", .content_type = "text/plain"});
  Client client = MakeClient();
  ExpectThrowExactly<Error>([&] { client.Get("k"); });
  ExpectThrowExactly<Error>([&] { client.Find("k"); });
}

TEST_F(ClientTest, MissingOrganizationIsAnErrorNotAMissingKey) {
  const std::string message = std::string("organization '") + kOrgId + "' does not exist";
  api_.On("GET", OrgPath() + "/k/reveal", ApiError(404, "not_found", message));
  api_.On("DELETE", OrgPath() + "/k", ApiError(404, "not_found", message));
  Client client = MakeClient();
  const auto error = ExpectThrowExactly<Error>([&] { client.Get("k"); });
  EXPECT_NE(std::string(error.what()).find(message), std::string::npos) << error.what();
  ExpectThrowExactly<Error>([&] { client.Find("k"); });
  ExpectThrowExactly<Error>([&] { client.Get("k", ConfigValue::Int(1)); });
  ExpectThrowExactly<Error>([&] { client.Delete("k"); });
}

// A loopback port nothing listens on (bound once by the kernel's choice, then closed again).
unsigned short UnusedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  socklen_t length = sizeof address;
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  ::close(fd);
  return ntohs(address.sin_port);
}

TEST(ClientUnreachableTest, UnreachableServerIsError) {
  ClientOptions options;
  options.address = "http://127.0.0.1:" + std::to_string(UnusedPort());
  options.token = kToken;
  options.org = kOrgId;
  Client client(options);
  for (int i = 0; i < 2; ++i) {
    const auto error = ExpectThrowExactly<Error>([&] {
      if (i == 0) client.Get("k", ConfigValue::Int(1));
      if (i == 1) client.List();
    });
    EXPECT_EQ(error.status(), 0);
    EXPECT_NE(std::string(error.what()).find("cannot reach bifrost at " + options.address),
              std::string::npos)
        << error.what();
  }
}

TEST(ClientTimeoutTest, ServerThatDoesNotAnswerInTimeIsError) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  FakeHttpServer server([&](const FakeRequest&) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return release; });
    return Ok(EntryText("k", "int", "1"));
  });
  ClientOptions options;
  options.address = server.http_address();
  options.org = kOrgId;
  options.timeout_ms = 200;
  Client client(options);
  const auto error = ExpectThrowExactly<Error>([&] { client.Get("k"); });
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  EXPECT_NE(std::string(error.what()).find("200 ms"), std::string::npos) << error.what();
}

TEST_F(ClientTest, MalformedAnswersAreErrors) {
  const std::vector<std::string> bodies = {
      "not json",
      "[]",
      R"({"key":"k","type":"int"})",                                       // no value
      R"({"key":"k","value":1})",                                          // no type
      R"({"key":"k","type":"float","value":1.5})",                         // unknown type
      R"({"key":"k","type":7,"value":1})",                                 // type not a string
      EntryText("k", "int", "\"42\""),                                     // int as a string
      EntryText("k", "int", "4.2"),                                        // int with a fraction
      EntryText("k", "int", "9223372036854775808"),                        // beyond int64
      EntryText("k", "bool", "\"true\""),                                  // bool as a string
      EntryText("k", "bool", "1"),                                         // bool as a number
      EntryText("k", "string", "42"),                                      // string as a number
      EntryText("k", "secret", "null"),                                    // secret as null
      R"({"key":"k","type":"string","value":"\ud800"})",                   // lone surrogate
      std::string(R"({"key":"k","type":"string","value":")") + "\xff\"}",  // not UTF-8
  };
  for (const auto& body : bodies) {
    api_.On("GET", OrgPath() + "/k/reveal", Ok(body));
    Client client = MakeClient();
    const auto error = ExpectThrowExactly<Error>([&] { client.Get("k"); });
    EXPECT_NE(std::string(error.what()).find("is not what the API promises"), std::string::npos)
        << body << ": " << error.what();
    EXPECT_EQ(error.status(), 200);
  }
}

TEST_F(ClientTest, MalformedWhoamiIsError) {
  for (const std::string body : {"not json", "[]", R"({"org_id": 7})"}) {
    api_.On("GET", "/api/v1/whoami", Ok(body));
    Client client = MakeClient();
    ExpectThrowExactly<Error>([&] { client.Get("k"); });
  }
  EXPECT_TRUE(api_.ConfigRequests().empty());
}

// ---- Set ----

TEST_F(ClientTest, SetSendsTheTypedValue) {
  for (const std::string key : {"s", "i", "b", "j", "p", "d"}) {
    api_.On("PUT", OrgPath() + "/" + key, Ok(EntryText(key, "string", "\"x\""), 201));
  }
  Client client = MakeClient();
  client.Set("s", ConfigValue::String("h\xc3\xa9llo \"w\"\n\x01"));
  client.Set("i", ConfigValue::Int(-9223372036854775807 - 1));
  client.Set("b", ConfigValue::Bool(false));
  client.Set("j",
             ConfigValue::JsonText(" {\"n\": 123456789012345678901234567890, \"e\": 1e400}\n"));
  client.Set("p", ConfigValue::Secret("hunter2"));
  client.Set("d", ConfigValue::Json({{"a", 1}}), "what it is for");

  const auto requests = api_.ConfigRequests();
  ASSERT_EQ(requests.size(), 6u);
  for (const auto& request : requests) {
    EXPECT_EQ(request.method, "PUT");
    EXPECT_EQ(request.headers.at("content-type"), "application/json");
    EXPECT_EQ(request.headers.at("authorization"), std::string("Bearer ") + kToken);
  }
  EXPECT_EQ(requests[0].target, OrgPath() + "/s");
  EXPECT_EQ(json::parse(requests[0].body),
            (json{{"type", "string"}, {"value", "h\xc3\xa9llo \"w\"\n\x01"}}));
  EXPECT_EQ(requests[1].body, R"({"type":"int","value":-9223372036854775808})");
  EXPECT_EQ(requests[2].body, R"({"type":"bool","value":false})");
  // A json value goes out exactly as given (only the whitespace around it is dropped).
  EXPECT_EQ(requests[3].body,
            R"({"type":"json","value":{"n": 123456789012345678901234567890, "e": 1e400}})");
  EXPECT_EQ(requests[4].body, R"({"type":"secret","value":"hunter2"})");
  EXPECT_EQ(json::parse(requests[5].body),
            (json{{"type", "json"}, {"value", {{"a", 1}}}, {"description", "what it is for"}}));
}

TEST_F(ClientTest, SetRefusesWhatCannotBeSentWithoutSending) {
  Client client = MakeClient();
  const auto masked =
      ExpectThrowExactly<Error>([&] { client.Set("k", ConfigValue::MaskedSecret()); });
  EXPECT_NE(std::string(masked.what()).find("masked"), std::string::npos) << masked.what();
  ExpectThrowExactly<Error>([&] { client.Set("k", ConfigValue::String("bad \xff")); });
  ExpectThrowExactly<Error>([&] { client.Set("k", ConfigValue::Secret("\xc3")); });
  ExpectThrowExactly<Error>([&] { client.Set("k", ConfigValue::Int(1), "bad \xfe"); });
  EXPECT_TRUE(api_.ConfigRequests().empty());
}

TEST_F(ClientTest, SetErrors) {
  api_.On("PUT", OrgPath() + "/denied", ApiError(403, "permission_denied", "members cannot write"));
  api_.On("PUT", OrgPath() + "/big",
          ApiError(422, "invalid_argument", "config 'big' is longer than 65536 bytes"));
  Client client = MakeClient();
  const auto denied = ExpectThrowExactly<PermissionDeniedError>(
      [&] { client.Set("denied", ConfigValue::Secret("hunter2")); });
  EXPECT_EQ(std::string(denied.what()).find("hunter2"), std::string::npos);
  const auto invalid =
      ExpectThrowExactly<Error>([&] { client.Set("big", ConfigValue::String("x")); });
  EXPECT_EQ(invalid.status(), 422);
  EXPECT_NE(std::string(invalid.what()).find("longer than 65536 bytes"), std::string::npos)
      << invalid.what();
}

// ---- List ----

TEST_F(ClientTest, ListReturnsTypedValuesWithSecretsMasked) {
  std::string body = "[";
  body += EntryText("a_string", "string", R"("hello")") + ",";
  body += EntryText("an_int", "int", "12") + ",";
  body += EntryText("a_bool", "bool", "true", "global") + ",";
  body += EntryText("a_json", "json", R"({"z": 1e400, "a": [ ]})") + ",";
  body += EntryText("a_secret", "secret", R"("[SECRET]")");
  body += "]";
  api_.On("GET", OrgPath(), Ok(body));
  Client client = MakeClient();
  const auto listed = client.List();
  ASSERT_EQ(listed.size(), 5u);
  EXPECT_EQ(listed.at("a_string").AsString(), "hello");
  EXPECT_EQ(listed.at("an_int").AsInt(), 12);
  EXPECT_TRUE(listed.at("a_bool").AsBool());
  EXPECT_EQ(listed.at("a_json").Text(), R"({"z": 1e400, "a": [ ]})");
  const ConfigValue& secret = listed.at("a_secret");
  EXPECT_EQ(secret.type(), ConfigType::kSecret);
  EXPECT_TRUE(secret.masked());
  EXPECT_EQ(secret.AsString(), "[SECRET]");
  EXPECT_EQ(api_.Count("GET", OrgPath()), 1);
}

TEST_F(ClientTest, ListNeverRevealsASecretEvenIfSent) {
  api_.On("GET", OrgPath(), Ok("[" + EntryText("p", "secret", R"("hunter2")") + "]"));
  Client client = MakeClient();
  const auto listed = client.List();
  EXPECT_TRUE(listed.at("p").masked());
  EXPECT_EQ(listed.at("p").Text(), "[SECRET]");
}

TEST_F(ClientTest, ListOfNothingAndListErrors) {
  api_.On("GET", OrgPath(), Ok("[]"));
  Client client = MakeClient();
  EXPECT_TRUE(client.List().empty());
  api_.On("GET", OrgPath(), Ok(R"({"not":"an array"})"));
  ExpectThrowExactly<Error>([&] { client.List(); });
  api_.On("GET", OrgPath(), Ok(R"([{"type":"int","value":1}])"));  // no key
  ExpectThrowExactly<Error>([&] { client.List(); });
  api_.On("GET", OrgPath(), ApiError(403, "permission_denied", "another organization"));
  ExpectThrowExactly<PermissionDeniedError>([&] { client.List(); });
}

// ---- Delete ----

TEST_F(ClientTest, DeleteTellsWhetherAnEntryWasDeleted) {
  api_.On("DELETE", OrgPath() + "/old", FakeResponse{.status = 204, .content_type = ""});
  api_.On("DELETE", OrgPath() + "/never", NotSet("never"));
  api_.On("DELETE", OrgPath() + "/denied", ApiError(403, "permission_denied", "no"));
  api_.On("DELETE", OrgPath() + "/broken", ApiError(500, "internal", "r-1"));
  Client client = MakeClient();
  EXPECT_TRUE(client.Delete("old"));
  EXPECT_FALSE(client.Delete("never"));
  ExpectThrowExactly<PermissionDeniedError>([&] { client.Delete("denied"); });
  ExpectThrowExactly<Error>([&] { client.Delete("broken"); });
  EXPECT_EQ(api_.Count("DELETE", OrgPath() + "/old"), 1);
}

// ---- keys and options ----

TEST_F(ClientTest, InvalidKeysAreRefusedBeforeAnyRequest) {
  Client client = MakeClient();
  for (const std::string& key :
       {std::string(), std::string("a-b"), std::string("a/b"), std::string("a b"),
        std::string("caf\xc3\xa9"), std::string(256, 'k')}) {
    ExpectThrowExactly<Error>([&] { client.Get(key); });
    ExpectThrowExactly<Error>([&] { client.Find(key); });
    ExpectThrowExactly<Error>([&] { client.Set(key, ConfigValue::Int(1)); });
    ExpectThrowExactly<Error>([&] { client.Delete(key); });
  }
  EXPECT_TRUE(api_.requests().empty());
  api_.On("GET", OrgPath() + "/" + std::string(255, 'K') + "/reveal",
          Ok(EntryText("K", "int", "1")));
  EXPECT_EQ(client.Get(std::string(255, 'K')).AsInt(), 1);
}

TEST(ClientOptionsTest, InvalidOptionsAreErrors) {
  ClientOptions both;
  both.org = kOrgId;
  both.global = true;
  ExpectThrowExactly<Error>([&] { Client client(both); });
  ClientOptions empty_org;
  empty_org.org = "";
  ExpectThrowExactly<Error>([&] { Client client(empty_org); });
  ClientOptions bad_address;
  bad_address.address = "127.0.0.1:8420";
  ExpectThrowExactly<Error>([&] { Client client(bad_address); });
  ClientOptions user_info;
  user_info.address = "https://admin:hunter2@example.com";
  const auto error = ExpectThrowExactly<Error>([&] { Client client(user_info); });
  EXPECT_EQ(std::string(error.what()).find("hunter2"), std::string::npos);
  ClientOptions bad_ca;
  bad_ca.address = "https://localhost:1";
  bad_ca.ca_file = "/nonexistent/ca.pem";
  ExpectThrowExactly<Error>([&] { Client client(bad_ca); });
  ClientOptions no_time;
  no_time.timeout_ms = 0;
  ExpectThrowExactly<Error>([&] { Client client(no_time); });
}

TEST_F(ClientTest, WithoutATokenNoAuthorizationIsSent) {
  api_.On("GET", OrgPath() + "/k/reveal", ApiError(401, "unauthenticated", "missing token"));
  ClientOptions options = Options();
  options.token.clear();
  options.org = kOrgId;
  Client client(options);
  const auto error = ExpectThrowExactly<Error>([&] { client.Get("k"); });
  EXPECT_EQ(error.status(), 401);
  ASSERT_EQ(api_.requests().size(), 1u);
  EXPECT_EQ(api_.requests()[0].headers.count("authorization"), 0u);
}

TEST_F(ClientTest, ClientIsMovable) {
  api_.On("GET", OrgPath() + "/k/reveal", Ok(EntryText("k", "int", "3")));
  Client first = MakeClient();
  Client second = std::move(first);
  EXPECT_EQ(second.Get("k").AsInt(), 3);
  Client third = MakeClient();
  third = std::move(second);
  EXPECT_EQ(third.Get("k").AsInt(), 3);
}

// ---- scope ----

TEST_F(ClientTest, TheTokensOrganizationIsAskedForOnce) {
  api_.On("GET", OrgPath() + "/k/reveal", Ok(EntryText("k", "int", "1")));
  api_.On("PUT", OrgPath() + "/k", Ok(EntryText("k", "int", "2")));
  api_.On("GET", OrgPath(), Ok("[]"));
  api_.On("DELETE", OrgPath() + "/k", FakeResponse{.status = 204});
  Client client = MakeClient();
  EXPECT_EQ(client.OrgId(), std::optional<std::string>(kOrgId));
  client.Get("k");
  client.Set("k", ConfigValue::Int(2));
  client.List();
  client.Delete("k");
  client.Find("k");
  EXPECT_EQ(api_.Count("GET", "/api/v1/whoami"), 1);
  EXPECT_EQ(api_.requests().size(), 6u);
  EXPECT_EQ(api_.connections(), 1);  // one kept-alive connection for all of them
}

TEST_F(ClientTest, PlatformAdminTokenMustNameAScope) {
  api_.On("GET", "/api/v1/whoami", Ok(Principal(nullptr).dump()));
  Client client = MakeClient();
  const auto error = ExpectThrowExactly<Error>([&] { client.Get("k"); });
  EXPECT_NE(std::string(error.what()).find("ClientOptions::org"), std::string::npos)
      << error.what();
  EXPECT_NE(std::string(error.what()).find("ClientOptions::global"), std::string::npos)
      << error.what();
  EXPECT_TRUE(api_.ConfigRequests().empty());
}

TEST_F(ClientTest, OrganizationByNameIsLookedUpOnce) {
  api_.On("GET", "/api/v1/orgs?name=Beta%20Corp",
          Ok(json::array({{{"id", kBetaId},
                           {"name", "Beta Corp"},
                           {"created_at", "2024-05-01T10:00:00.000000Z"}}})
                 .dump()));
  api_.On("GET", OrgPath(kBetaId) + "/k/reveal", Ok(EntryText("k", "string", "\"beta\"")));
  api_.On("GET", OrgPath(kBetaId), Ok("[]"));
  ClientOptions options = Options();
  options.org = "Beta Corp";
  Client client(options);
  EXPECT_EQ(client.Get("k").AsString(), "beta");
  EXPECT_EQ(client.Get("k").AsString(), "beta");
  EXPECT_TRUE(client.List().empty());
  EXPECT_EQ(client.OrgId(), std::optional<std::string>(kBetaId));
  EXPECT_EQ(api_.Count("GET", "/api/v1/orgs?name=Beta%20Corp"), 1);
  EXPECT_EQ(api_.Count("GET", "/api/v1/whoami"), 0);
}

TEST_F(ClientTest, OrganizationNameMustMatchExactly) {
  api_.On("GET", "/api/v1/orgs?name=Nobody", Ok("[]"));
  api_.On("GET", "/api/v1/orgs?name=beta",
          Ok(json::array({{{"id", kBetaId}, {"name", "Beta"}}}).dump()));
  api_.On("GET", "/api/v1/orgs?name=odd", Ok(R"({"id":"x"})"));
  for (const std::string name : {"Nobody", "beta", "odd"}) {
    ClientOptions options = Options();
    options.org = name;
    Client client(options);
    const auto error = ExpectThrowExactly<Error>([&] { client.Get("k"); });
    EXPECT_NE(std::string(error.what()).find("looking up organization '" + name + "'"),
              std::string::npos)
        << error.what();
  }
  EXPECT_TRUE(api_.ConfigRequests().empty());
}

TEST_F(ClientTest, OrganizationIdIsUsedAsIs) {
  api_.On("GET", OrgPath() + "/k/reveal", Ok(EntryText("k", "bool", "true")));
  ClientOptions options = Options();
  options.org = "3F1C2A4E-8B7D-4C1E-9A2B-5D6E7F8A9B0C";  // any letter case
  Client client(options);
  EXPECT_TRUE(client.Get("k").AsBool());
  ASSERT_EQ(api_.requests().size(), 1u);
  EXPECT_EQ(api_.requests()[0].target, OrgPath() + "/k/reveal");
}

TEST_F(ClientTest, GlobalScope) {
  api_.On("GET", "/api/v1/global/configs/k/reveal", Ok(EntryText("k", "int", "9", "global")));
  api_.On("GET", "/api/v1/global/configs", Ok("[" + EntryText("k", "int", "9", "global") + "]"));
  api_.On("PUT", "/api/v1/global/configs/k", Ok(EntryText("k", "int", "9", "global")));
  api_.On("DELETE", "/api/v1/global/configs/k", FakeResponse{.status = 204});
  ClientOptions options = Options();
  options.global = true;
  Client client(options);
  EXPECT_EQ(client.OrgId(), std::nullopt);
  EXPECT_EQ(client.Get("k").AsInt(), 9);
  EXPECT_EQ(client.List().at("k").AsInt(), 9);
  client.Set("k", ConfigValue::Int(9));
  EXPECT_TRUE(client.Delete("k"));
  EXPECT_EQ(api_.Count("GET", "/api/v1/whoami"), 0);
  EXPECT_EQ(api_.requests().size(), 4u);
}

// ---- environment ----

TEST(ClientOptionsTest, FromEnvironmentDefaults) {
  const ScopedEnv addr("BIFROST_ADDR", std::nullopt);
  const ScopedEnv token("BIFROST_TOKEN", std::nullopt);
  const ScopedEnv ca("BIFROST_CACERT", std::nullopt);
  const ScopedEnv org("BIFROST_ORG_ID", std::nullopt);
  const ClientOptions options = ClientOptions::FromEnvironment();
  EXPECT_EQ(options.address, "http://127.0.0.1:8420");
  EXPECT_EQ(options.token, "");
  EXPECT_EQ(options.ca_file, "");
  EXPECT_EQ(options.org, std::nullopt);
  EXPECT_FALSE(options.global);
  EXPECT_EQ(options.timeout_ms, 30000);
}

TEST(ClientOptionsTest, FromEnvironmentReadsTheVariables) {
  const ScopedEnv addr("BIFROST_ADDR", "https://bifrost.example:8443");
  const ScopedEnv token("BIFROST_TOKEN", "bfx_execution_token");
  const ScopedEnv ca("BIFROST_CACERT", "/etc/bifrost/ca.pem");
  const ScopedEnv org("BIFROST_ORG_ID", kOrgId);
  const ClientOptions options = ClientOptions::FromEnvironment();
  EXPECT_EQ(options.address, "https://bifrost.example:8443");
  EXPECT_EQ(options.token, "bfx_execution_token");
  EXPECT_EQ(options.ca_file, "/etc/bifrost/ca.pem");
  EXPECT_EQ(options.org, std::optional<std::string>(kOrgId));
}

TEST(ClientOptionsTest, EmptyVariablesCountAsUnset) {
  const ScopedEnv addr("BIFROST_ADDR", "");
  const ScopedEnv token("BIFROST_TOKEN", "");
  const ScopedEnv ca("BIFROST_CACERT", "");
  const ScopedEnv org("BIFROST_ORG_ID", "");
  const ClientOptions options = ClientOptions::FromEnvironment();
  EXPECT_EQ(options.address, "http://127.0.0.1:8420");
  EXPECT_EQ(options.org, std::nullopt);
}

TEST_F(ClientTest, ClientFromEnvironmentUsesTheWorkflowsOrganization) {
  api_.On("GET", OrgPath() + "/api_key/reveal", Ok(EntryText("api_key", "secret", "\"s3\"")));
  const ScopedEnv addr("BIFROST_ADDR", api_.address());
  const ScopedEnv token("BIFROST_TOKEN", "bfx_execution_token");
  const ScopedEnv ca("BIFROST_CACERT", std::nullopt);
  const ScopedEnv org("BIFROST_ORG_ID", kOrgId);
  Client client(ClientOptions::FromEnvironment());
  EXPECT_EQ(client.Get("api_key").AsString(), "s3");
  ASSERT_EQ(api_.requests().size(), 1u);  // no whoami: the organization came from the env
  EXPECT_EQ(api_.requests()[0].headers.at("authorization"), "Bearer bfx_execution_token");
}

// ---- the public headers ----

TEST(PublicHeadersTest, IncludeNothingFromSrc) {
  for (const std::string name : {"client.h", "workflow.h"}) {
    std::ifstream file(std::string(BIFROST_SOURCE_DIR) + "/include/bifrost/" + name);
    ASSERT_TRUE(file) << name;
    std::string line;
    int includes = 0;
    while (std::getline(file, line)) {
      if (!line.starts_with("#include")) continue;
      ++includes;
      const bool system = line.find('<') != std::string::npos;
      const bool ours = line.find("\"bifrost/") != std::string::npos;
      EXPECT_TRUE(system || ours) << name << ": " << line;
    }
    EXPECT_GT(includes, 0) << name;
  }
}

}  // namespace
}  // namespace bifrost::sdk
