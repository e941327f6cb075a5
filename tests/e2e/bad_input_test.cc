// Bad input through the real binary: each gets its documented error and changes nothing.
#include "tests/e2e/e2e_support.h"

namespace bifrost::e2e {
namespace {

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(server_.address().empty());
    admin_ = server_.admin_token();
    org_ = CreateOrg(api_, admin_, "Acme");
    SetConfig(api_, admin_, "/api/v1/orgs/" + org_, "retries", "int", 3);
    scope_ = "/api/v1/orgs/" + org_;
  }

  // The org's whole config as JSON text, to prove a refused request changed nothing.
  std::string Snapshot() {
    const Reply r = api_.Call("GET", scope_ + "/configs", admin_);
    EXPECT_EQ(r.status, 200);
    const Reply orgs = api_.Call("GET", "/api/v1/orgs", admin_);
    return r.body + orgs.body;
  }

  void ExpectError(const Reply& r, int status, const std::string& code) {
    EXPECT_EQ(r.status, status) << r.body;
    ASSERT_TRUE(r.json_body.is_object()) << r.body;
    ASSERT_TRUE(r.json_body.contains("error")) << r.body;
    EXPECT_EQ(r.json_body["error"]["code"], code) << r.body;
    EXPECT_FALSE(r.json_body["error"]["message"].get<std::string>().empty());
  }

  testing::ServerProcess server_;
  Api api_{server_.address()};
  std::string admin_, org_, scope_;
};

TEST_F(BadInputTest, MalformedBodiesAre400) {
  const std::string before = Snapshot();
  const std::string target = scope_ + "/configs/retries";
  const std::vector<std::string> bodies = {
      "",
      "{",
      "not json",
      "[1,2]",
      "\"just a string\"",
      "{\"type\": \"int\", \"value\": 5",
      "{\"type\": 7, \"value\": 5}",
      "{\"type\": \"int\"}",
      "{\"value\": 5}",
      "{\"type\": \"int\", \"value\": 5, \"unexpected\": true}",
      "{\"type\": \"string\", \"value\": \"\xff\xfe\"}",
      std::string(100, '[') + std::string(100, ']')};
  for (const std::string& body : bodies) {
    const Reply r = api_.Raw("PUT", target, admin_, body);
    ExpectError(r, 400, "bad_request");
  }
  ExpectError(api_.Raw("POST", "/api/v1/orgs", admin_, "{\"name\": 42}"), 400, "bad_request");
  ExpectError(api_.Raw("POST", "/api/v1/tokens", admin_, "{\"role\": [\"admin\"]}"), 400,
              "bad_request");
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(BadInputTest, ValidationFailuresAre422AndNameTheRule) {
  const std::string before = Snapshot();
  const Reply wrong_type = api_.Call("PUT", scope_ + "/configs/retries", admin_,
                                     json{{"type", "int"}, {"value", "abc"}});
  ExpectError(wrong_type, 422, "invalid_argument");
  EXPECT_EQ(wrong_type.json_body["error"]["message"],
            "config 'retries' has type int but value 'abc' is not a 64-bit integer (decimal, "
            "optional '-', no leading zeros)");
  ExpectError(api_.Call("PUT", scope_ + "/configs/bad-key", admin_,
                        json{{"type", "string"}, {"value", "v"}}),
              422, "invalid_argument");
  ExpectError(api_.Call("GET", scope_ + "/configs/bad-key", admin_), 422, "invalid_argument");
  ExpectError(
      api_.Call("PUT", scope_ + "/configs/flag", admin_, json{{"type", "bool"}, {"value", "yes"}}),
      422, "invalid_argument");
  ExpectError(api_.Call("PUT", scope_ + "/configs/big", admin_,
                        json{{"type", "int"}, {"value", "99999999999999999999"}}),
              422, "invalid_argument");
  ExpectError(
      api_.Call("PUT", scope_ + "/configs/t", admin_, json{{"type", "float"}, {"value", "1.5"}}),
      422, "invalid_argument");
  ExpectError(
      api_.Call("PUT", scope_ + "/configs/s", admin_, json{{"type", "secret"}, {"value", ""}}), 422,
      "invalid_argument");
  ExpectError(api_.Call("PUT", scope_ + "/configs/huge", admin_,
                        json{{"type", "string"}, {"value", std::string(64 * 1024 + 1, 'x')}}),
              422, "invalid_argument");
  ExpectError(api_.Call("POST", "/api/v1/orgs", admin_, json{{"name", ""}}), 422,
              "invalid_argument");
  ExpectError(api_.Call("POST", "/api/v1/tokens", admin_, json{{"role", "superuser"}}), 422,
              "invalid_argument");
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(BadInputTest, ConflictsAre409) {
  ExpectError(api_.Call("POST", "/api/v1/orgs", admin_, json{{"name", "Acme"}}), 409,
              "already_exists");
  ExpectError(api_.Call("PUT", scope_ + "/configs/retries", admin_,
                        json{{"type", "int"}, {"value", 4}, {"expected_version", 7}}),
              409, "conflict");
  ExpectError(api_.Call("PUT", scope_ + "/configs/retries", admin_,
                        json{{"type", "int"}, {"value", 4}, {"expected_version", 0}}),
              409, "already_exists");
  ExpectError(api_.Call("DELETE", scope_ + "/configs/retries?expected_version=9", admin_), 409,
              "conflict");
  const Reply ok = api_.Call("PUT", scope_ + "/configs/retries", admin_,
                             json{{"type", "int"}, {"value", 4}, {"expected_version", 1}});
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.json_body["version"], 2);
  EXPECT_EQ(ok.json_body["value"], 4);
}

// A misspelt query parameter must not silently drop a condition.
TEST_F(BadInputTest, UnknownQueryParametersAre400) {
  const std::string before = Snapshot();
  const Reply typo = api_.Call("DELETE", scope_ + "/configs/retries?expected-version=9", admin_);
  ExpectError(typo, 400, "bad_request");
  EXPECT_NE(typo.json_body["error"]["message"].get<std::string>().find("expected_version"),
            std::string::npos);
  ExpectError(api_.Call("GET", scope_ + "/configs?verbose=1", admin_), 400, "bad_request");
  ExpectError(api_.Call("DELETE", scope_ + "/configs/retries?expected_version=x", admin_), 400,
              "bad_request");
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(BadInputTest, OversizedBodiesAre413) {
  const std::string before = Snapshot();
  const std::string body =
      "{\"type\": \"string\", \"value\": \"" + std::string(2 << 20, 'x') + "\"}";
  const Reply r = api_.Raw("PUT", scope_ + "/configs/retries", admin_, body);
  ExpectError(r, 413, "payload_too_large");
  Api fresh(server_.address());  // the server may close the connection after a 413
  const Reply after = fresh.Call("GET", scope_ + "/configs", admin_);
  EXPECT_EQ(after.status, 200);
  const Reply orgs = fresh.Call("GET", "/api/v1/orgs", admin_);
  EXPECT_EQ(after.body + orgs.body, before);
}

TEST_F(BadInputTest, UnknownRoutesAndMethods) {
  ExpectError(api_.Call("GET", "/api/v1/nothing", admin_), 404, "not_found");
  ExpectError(api_.Call("GET", "/api/v2/orgs", admin_), 404, "not_found");
  ExpectError(api_.Call("GET", "/index.html", admin_), 404, "not_found");
  ExpectError(api_.Call("GET", "/assets/../bifrost.db", admin_), 404, "not_found");
  ExpectError(api_.Call("GET", "/assets/no-such-file.js", admin_), 404, "not_found");
  ExpectError(api_.Call("POST", "/", admin_, json::object()), 405, "method_not_allowed");
  const Reply wrong_method = api_.Call("PATCH", "/api/v1/orgs", admin_, json::object());
  EXPECT_EQ(wrong_method.status, 405) << wrong_method.body;
  ExpectError(api_.Call("GET", scope_ + "/configs/retries", admin_ + "x"), 401, "unauthenticated");
  ExpectError(api_.Call("GET", "/api/v1/orgs/00000000-0000-4000-8000-000000000000", admin_), 404,
              "not_found");
}

}  // namespace
}  // namespace bifrost::e2e
