// Shared helpers of the end-to-end tests: a JSON-speaking client of a running server.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "client/http_client.h"
#include "tests/support/server_process.h"

namespace bifrost::e2e {

using nlohmann::json;

struct Reply {
  int status = 0;
  std::string body;
  json json_body;  // discarded (is_discarded()) when the body is not JSON
  std::map<std::string, std::string> headers;  // names lower-cased
};

// One keep-alive connection to the server under test.
class Api {
 public:
  explicit Api(const std::string& address) {
    auto client =
        client::HttpClient::Create({.address = address, .ca_file = "", .timeout_ms = 30'000});
    EXPECT_TRUE(client) << client.error().ToString();
    if (client) client_ = std::move(*client);
  }

  Reply Call(const std::string& method, const std::string& target, const std::string& token,
             std::optional<json> body = std::nullopt) {
    return Raw(method, target, token,
               body ? std::optional<std::string>(body->dump()) : std::nullopt);
  }

  Reply Raw(const std::string& method, const std::string& target, const std::string& token,
            std::optional<std::string> body) {
    Reply reply;
    if (!client_) return reply;
    std::optional<std::string_view> bearer;
    if (!token.empty()) bearer = token;
    std::optional<std::string_view> payload;
    if (body) payload = *body;
    auto result = client_->Send(method, target, payload, bearer);
    EXPECT_TRUE(result) << method << " " << target << ": " << result.error().ToString();
    if (!result) return reply;
    reply.status = result->status;
    reply.body = result->body;
    reply.headers = result->headers;
    reply.json_body = json::parse(reply.body, nullptr, false);
    return reply;
  }

 private:
  std::unique_ptr<client::HttpClient> client_;
};

// Debian's Python with the `cryptography` package (BIFROST_PYTHON overrides the path
// compiled in): for the tests' own sqlite3 access and generated dumps.
inline std::string PythonBinary() {
  const char* python = std::getenv("BIFROST_PYTHON");
  return python != nullptr ? python : BIFROST_PYTHON;
}

// Creates an org as platform admin and returns its id.
inline std::string CreateOrg(Api& api, const std::string& admin, const std::string& name) {
  const Reply r = api.Call("POST", "/api/v1/orgs", admin, json{{"name", name}});
  EXPECT_EQ(r.status, 201) << r.body;
  return r.status == 201 ? r.json_body["id"].get<std::string>() : "";
}

struct MintedToken {
  std::string id;
  std::string token;
};

// Creates a token as `creator`.
inline MintedToken MintToken(Api& api, const std::string& creator, const std::string& role,
                             const std::optional<std::string>& org_id) {
  json body = {{"role", role}, {"name", role + "-token"}};
  if (org_id) body["org_id"] = *org_id;
  const Reply r = api.Call("POST", "/api/v1/tokens", creator, body);
  EXPECT_EQ(r.status, 201) << r.body;
  if (r.status != 201) return {};
  return {r.json_body["id"].get<std::string>(), r.json_body["token"].get<std::string>()};
}

inline void SetConfig(Api& api, const std::string& token, const std::string& scope_path,
                      const std::string& key, const std::string& type, const json& value) {
  const Reply r = api.Call("PUT", scope_path + "/configs/" + key, token,
                           json{{"type", type}, {"value", value}});
  EXPECT_TRUE(r.status == 200 || r.status == 201) << scope_path << "/" << key << ": " << r.body;
}

}  // namespace bifrost::e2e
