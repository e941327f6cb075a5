// Shared helpers of the end-to-end tests: a JSON-speaking client of a running server.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "client/http_client.h"
#include "tests/support/postgres_test.h"
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
// compiled in): for generated dumps and the tests' own scripts.
inline std::string PythonBinary() {
  const char* python = std::getenv("BIFROST_PYTHON");
  return python != nullptr ? python : BIFROST_PYTHON;
}

// The rows `sql` returns on `storage` (a second client of the database, on either backend:
// testing::RunSqlOn), every value as text, NULL as "". Fails the test on an error.
inline std::vector<std::vector<std::string>> SqlRows(const testing::Storage& storage,
                                                     const std::string& sql) {
  const testing::ProcessResult r = testing::RunSqlOn(storage, sql);
  EXPECT_EQ(r.exit_code, 0) << sql << ": " << r.out << r.err;
  std::vector<std::vector<std::string>> rows;
  std::size_t start = 0;
  while (start < r.out.size()) {
    std::size_t end = r.out.find('\n', start);
    if (end == std::string::npos) end = r.out.size();
    const std::string line = r.out.substr(start, end - start);
    std::vector<std::string> row;
    std::size_t field = 0;
    for (;;) {
      const std::size_t next = line.find('\x1f', field);
      row.push_back(
          line.substr(field, next == std::string::npos ? std::string::npos : next - field));
      if (next == std::string::npos) break;
      field = next + 1;
    }
    rows.push_back(std::move(row));
    start = end + 1;
  }
  return rows;
}

// Runs `sql` (one or more statements) on `storage`; fails the test on an error.
inline void SqlExec(const testing::Storage& storage, const std::string& sql) {
  const testing::ProcessResult r = testing::RunSqlOn(storage, sql);
  EXPECT_EQ(r.exit_code, 0) << sql << ": " << r.out << r.err;
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
