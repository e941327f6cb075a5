// The CLI in-process against a fake Bifrost API: requests sent, output printed, exit codes.
// (tests/e2e/cli_test.cc runs the real binary against the real server.)
#include "cli/cli.h"

#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "cli/database_flags.h"
#include "client/http_client.h"
#include "client/testing/fake_http_server.h"
#include "common/clock.h"
#include "config/json_text.h"

namespace bifrost::cli {
namespace {

using client::testing::FakeHttpServer;
using client::testing::FakeRequest;
using client::testing::FakeResponse;
using nlohmann::json;

constexpr const char* kAcmeId = "3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c";
constexpr const char* kAdminToken = "bft_admin_secret_token";
constexpr const char* kMemberToken = "bft_member_secret_token";

FakeResponse Json(int status, const json& body) {
  return FakeResponse{.status = status, .body = body.dump()};
}
FakeResponse ApiError(int status, const std::string& code, const std::string& message) {
  return Json(status, {{"error", {{"code", code}, {"message", message}}}});
}

// The parameters of a query string ("a=1&b=x%20y"), percent-decoded.
std::map<std::string, std::string> ParseQuery(const std::string& query) {
  std::map<std::string, std::string> params;
  std::size_t start = 0;
  while (start < query.size()) {
    std::size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    const std::string part = query.substr(start, end - start);
    const std::size_t eq = part.find('=');
    std::string value;
    const std::string raw = eq == std::string::npos ? "" : part.substr(eq + 1);
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '%' && i + 2 < raw.size()) {
        value.push_back(static_cast<char>(std::stoi(raw.substr(i + 1, 2), nullptr, 16)));
        i += 2;
      } else {
        value.push_back(raw[i]);
      }
    }
    params[part.substr(0, eq)] = value;
    start = end + 1;
  }
  return params;
}

// Just enough of the API for the CLI: one org "acme", config by scope, tokens.
class FakeBifrost {
 public:
  FakeBifrost() : server_([this](const FakeRequest& r) { return Handle(r); }) {
    orgs_[kAcmeId] = {{"id", kAcmeId}, {"name", "acme"}, {"created_at", "2024-01-01T00:00:00Z"}};
  }

  std::string address() const { return server_.http_address(); }
  std::vector<FakeRequest> requests() const { return server_.requests(); }

  // Entries are stored as the server would return them from reveal.
  void Put(const std::string& scope, const std::string& key, const std::string& type,
           const json& value) {
    PutText(scope, key, type, value.dump());
  }
  // The value as JSON text, kept byte for byte as the real server keeps a json value.
  void PutText(const std::string& scope, const std::string& key, const std::string& type,
               const std::string& value_text) {
    std::lock_guard<std::mutex> lock(mu_);
    configs_[scope][key] = Entry{{{"key", key},
                                  {"type", type},
                                  {"value", nullptr},
                                  {"scope", scope == "global" ? "global" : "org"},
                                  {"version", 1}},
                                 value_text};
  }
  // Adds an audit record (JSON text, as the server writes it); seqs must grow.
  void AddAudit(std::int64_t seq, const std::string& text) {
    std::lock_guard<std::mutex> lock(mu_);
    audit_.emplace_back(seq, text);
  }
  // The server answers at most this many records a page, whatever ?limit= asks.
  void SetAuditPageSize(std::size_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    audit_page_size_ = n;
  }
  // Answers `method target` with `response` instead of the fake API.
  void Override(const std::string& method, const std::string& target, FakeResponse response) {
    std::lock_guard<std::mutex> lock(mu_);
    overrides_[method + " " + target] = std::move(response);
  }

 private:
  // A config entry: its fields with "value" null, and the value's JSON text.
  struct Entry {
    json fields;
    std::string value_text;
  };

  FakeResponse Handle(const FakeRequest& r) {
    std::lock_guard<std::mutex> lock(mu_);
    if (const auto it = overrides_.find(r.method + " " + r.target); it != overrides_.end()) {
      return it->second;
    }
    const auto auth = r.headers.find("authorization");
    const std::string token =
        auth == r.headers.end() ? "" : auth->second.substr(std::string("Bearer ").size());
    json principal;
    if (token == kAdminToken) {
      principal = {{"token_id", "t-admin"},
                   {"name", "root"},
                   {"role", "platform-admin"},
                   {"org_id", nullptr}};
    } else if (token == kMemberToken) {
      principal = {
          {"token_id", "t-member"}, {"name", "ci"}, {"role", "member"}, {"org_id", kAcmeId}};
    } else {
      return ApiError(401, "unauthenticated", "unknown token");
    }
    std::string path = r.target;
    std::string query;
    if (const auto q = path.find('?'); q != std::string::npos) {
      query = path.substr(q + 1);
      path = path.substr(0, q);
    }
    if (path == "/api/v1/whoami") return Json(200, principal);
    if (path == "/api/v1/orgs" && r.method == "GET") {
      json list = json::array();
      for (const auto& [id, org] : orgs_) {
        if (query.empty() || query == "name=" + client::UrlEncode(org["name"].get<std::string>())) {
          list.push_back(org);
        }
      }
      return Json(200, list);
    }
    if (path == "/api/v1/orgs" && r.method == "POST") {
      if (principal["role"] != "platform-admin") {
        return ApiError(403, "permission_denied", "only a platform admin creates organizations");
      }
      const json body = json::parse(r.body);
      for (const auto& [id, org] : orgs_) {
        if (org["name"] == body["name"]) {
          return ApiError(409, "already_exists", "organization already exists");
        }
      }
      const std::string id = "00000000-0000-4000-8000-00000000000" + std::to_string(orgs_.size());
      orgs_[id] = {{"id", id}, {"name", body["name"]}, {"created_at", "2024-02-02T00:00:00Z"}};
      return Json(201, orgs_[id]);
    }
    const std::string orgs_prefix = "/api/v1/orgs/";
    if (path.starts_with(orgs_prefix)) {
      const std::string rest = path.substr(orgs_prefix.size());
      const std::string id = rest.substr(0, rest.find('/'));
      if (!orgs_.contains(id)) return ApiError(404, "not_found", "organization not found");
      if (rest == id) {
        if (r.method == "DELETE") {
          orgs_.erase(id);
          return FakeResponse{.status = 204, .body = ""};
        }
        return Json(200, orgs_[id]);
      }
      return HandleConfig(r, principal, id, rest.substr(id.size()));
    }
    const std::string global_prefix = "/api/v1/global";
    if (path.starts_with(global_prefix)) {
      return HandleConfig(r, principal, "global", path.substr(global_prefix.size()));
    }
    if (path == "/api/v1/tokens" && r.method == "POST") {
      json body = json::parse(r.body);
      json created = body;
      created["id"] = "9d8c7b6a-0000-4000-8000-000000000001";
      created["token"] = "bft_new_token_value";
      created["expires_at"] = body.contains("ttl_seconds") ? json("2030-01-01T00:00:00Z") : json();
      created.erase("ttl_seconds");
      return Json(201, created);
    }
    if (path == "/api/v1/tokens" && r.method == "GET") {
      return Json(200, json::array({{{"id", "t-admin"},
                                     {"name", "root"},
                                     {"role", "platform-admin"},
                                     {"org_id", nullptr},
                                     {"created_at", "2024-01-01T00:00:00Z"},
                                     {"expires_at", nullptr},
                                     {"last_used_at", nullptr},
                                     {"revoked_at", nullptr}}}));
    }
    if (path == "/api/v1/audit" && r.method == "GET") {
      if (principal["role"] == "member") {
        return ApiError(403, "permission_denied", "role member cannot read the audit log");
      }
      return ListAudit(ParseQuery(query));
    }
    if (path.starts_with("/api/v1/tokens/") && r.method == "DELETE") {
      if (path.ends_with("/t-admin")) return FakeResponse{.status = 204, .body = ""};
      return ApiError(404, "not_found", "token not found");
    }
    return ApiError(404, "not_found", "no route");
  }

  // Newest first, `before` and `limit` as the real server reads them; other filters ignored.
  FakeResponse ListAudit(const std::map<std::string, std::string>& params) {
    std::size_t limit = 100;
    if (params.contains("limit")) limit = std::stoul(params.at("limit"));
    limit = std::min(limit, audit_page_size_);
    std::int64_t before = std::numeric_limits<std::int64_t>::max();
    if (params.contains("before")) before = std::stoll(params.at("before"));
    std::string records;
    std::size_t count = 0;
    std::int64_t last_seq = 0;
    bool more = false;
    for (auto it = audit_.rbegin(); it != audit_.rend(); ++it) {
      if (it->first >= before) continue;
      if (count == limit) {
        more = true;
        break;
      }
      records += (count == 0 ? "" : ",") + it->second;
      last_seq = it->first;
      ++count;
    }
    std::string body = "{\"records\":[" + records + "],\"next_before\":";
    body += more ? std::to_string(last_seq) : std::string("null");
    body += "}";
    return FakeResponse{.status = 200, .body = body};
  }

  // `rest` is "/configs", "/configs/KEY" or "/configs/KEY/reveal". Entries are answered as
  // text, so that a json value goes back exactly as it came.
  FakeResponse HandleConfig(const FakeRequest& r, const json& principal, const std::string& scope,
                            const std::string& rest) {
    auto& entries = configs_[scope];
    if (rest == "/configs") {
      std::string list;
      for (const auto& [key, entry] : entries)
        list += (list.empty() ? "" : ",") + Text(entry, true);
      if (scope != "global") {
        for (const auto& [key, entry] : configs_["global"]) {
          if (!entries.contains(key)) list += (list.empty() ? "" : ",") + Text(entry, true);
        }
      }
      return FakeResponse{.status = 200, .body = "[" + list + "]"};
    }
    std::string key = rest.substr(std::string("/configs/").size());
    const bool reveal = key.ends_with("/reveal");
    if (reveal) key = key.substr(0, key.size() - std::string("/reveal").size());
    if (r.method == "PUT") {
      if (principal["role"] == "member") {
        return ApiError(403, "permission_denied", "role member cannot write config");
      }
      if (config::json_text::Check(r.body)) return ApiError(400, "bad_request", "not JSON");
      const auto type = config::json_text::Member(r.body, "type");
      const auto value = config::json_text::Member(r.body, "value");
      if (!type || !value) return ApiError(400, "bad_request", "type and value are required");
      const int version = entries.contains(key) ? entries[key].fields["version"].get<int>() + 1 : 1;
      entries[key] = Entry{{{"key", key},
                            {"type", *config::json_text::DecodeString(*type)},
                            {"value", nullptr},
                            {"scope", scope == "global" ? "global" : "org"},
                            {"version", version}},
                           std::string(*value)};
      return FakeResponse{.status = version == 1 ? 201 : 200, .body = Text(entries[key], true)};
    }
    const Entry* found = nullptr;
    if (entries.contains(key)) {
      found = &entries[key];
    } else if (scope != "global" && configs_["global"].contains(key)) {
      found = &configs_["global"][key];
    }
    if (r.method == "DELETE") {
      if (!entries.contains(key)) return ApiError(404, "not_found", "config not found");
      entries.erase(key);
      return FakeResponse{.status = 204, .body = ""};
    }
    if (found == nullptr) return ApiError(404, "not_found", "config '" + key + "' not found");
    return FakeResponse{.status = 200, .body = Text(*found, !reveal)};
  }

  // The entry's JSON text; a secret's value masked when `masked`.
  static std::string Text(const Entry& entry, bool masked) {
    const bool hide = masked && entry.fields["type"] == "secret";
    return *config::json_text::ReplaceNullMember(entry.fields.dump(), "value",
                                                 hide ? "\"[SECRET]\"" : entry.value_text);
  }

  std::mutex mu_;
  std::map<std::string, json> orgs_;
  std::map<std::string, std::map<std::string, Entry>> configs_;
  std::map<std::string, FakeResponse> overrides_;
  std::vector<std::pair<std::int64_t, std::string>> audit_;  // oldest first
  std::size_t audit_page_size_ = 1000;
  FakeHttpServer server_;  // last: stopped before the state it uses goes away
};

struct Outcome {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class CliTest : public ::testing::Test {
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
    io.stdout_is_terminal = stdout_is_terminal_;
    io.getenv = [this](const std::string& name) -> std::optional<std::string> {
      const auto it = env_.find(name);
      if (it == env_.end()) return std::nullopt;
      return it->second;
    };
    io.read_hidden_line = [this](std::string_view prompt) -> std::optional<std::string> {
      prompts_.emplace_back(prompt);
      return hidden_input_;
    };
    Outcome outcome;
    outcome.exit_code = RunCli(args, io);
    outcome.out = out.str();
    outcome.err = err.str();
    // Whatever happened, the token never appears in any output.
    for (const char* token : {kAdminToken, kMemberToken}) {
      EXPECT_EQ(outcome.out.find(token), std::string::npos) << outcome.out;
      EXPECT_EQ(outcome.err.find(token), std::string::npos) << outcome.err;
    }
    return outcome;
  }

  json RunJson(std::vector<std::string> args, const std::string& stdin_text = "") {
    args.push_back("--format");
    args.push_back("json");
    const Outcome outcome = Run(args, stdin_text);
    EXPECT_EQ(outcome.exit_code, 0) << outcome.err;
    return json::parse(outcome.out, nullptr, false);
  }

  // The body of the last request with this method.
  json LastBody(const std::string& method) {
    const auto requests = api_.requests();
    for (auto it = requests.rbegin(); it != requests.rend(); ++it) {
      if (it->method == method) return json::parse(it->body);
    }
    ADD_FAILURE() << "no " << method << " request";
    return {};
  }
  std::string LastTarget(const std::string& method) {
    const auto requests = api_.requests();
    for (auto it = requests.rbegin(); it != requests.rend(); ++it) {
      if (it->method == method) return it->target;
    }
    return "";
  }

  FakeBifrost api_;
  std::map<std::string, std::string> env_{{"BIFROST_ADDR", api_.address()},
                                          {"BIFROST_TOKEN", kAdminToken}};
  bool stdin_is_terminal_ = false;
  bool stdout_is_terminal_ = false;
  std::optional<std::string> hidden_input_;
  std::vector<std::string> prompts_;
};

// ---- usage ----

TEST_F(CliTest, UsageErrorsExitTwoWithOneLineAndSendNothing) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {},
           {"nope"},
           {"config"},
           {"config", "nope"},
           {"config", "set"},
           {"config", "get", "k", "--org", "acme", "--global"},
           {"config", "list", "--format", "xml"},
           {"config", "set", "k", "v", "--secret", "--type", "int", "--global"},
           {"config", "set", "k", "v", "--type", "integer", "--global"},
           {"token", "create"},
           {"token", "create", "--role", "owner"},
           {"token", "create", "--role", "member", "--org", "acme", "--ttl", "soon"},
           {"org", "create"},
           {"org", "create", "a", "b"},
           {"audit"},
           {"audit", "list", "--outcome", "maybe"},
           {"audit", "list", "--limit", "0"},
           {"audit", "list", "--limit", "1001"},
           {"audit", "list", "--since", "yesterday"},
           {"audit", "list", "--until", "2026-13-01"},
       }) {
    const Outcome outcome = Run(args);
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    EXPECT_EQ(outcome.exit_code, 2) << joined << "\n" << outcome.err;
    EXPECT_TRUE(outcome.err.starts_with("bifrost: ")) << joined << outcome.err;
    EXPECT_EQ(std::count(outcome.err.begin(), outcome.err.end(), '\n'), 1) << outcome.err;
    EXPECT_TRUE(outcome.out.empty()) << joined << outcome.out;
  }
  EXPECT_TRUE(api_.requests().empty());
}

TEST_F(CliTest, UnknownCommandIsNamed) {
  EXPECT_EQ(Run({"nope"}).err, "bifrost: unknown command 'nope' (see 'bifrost --help')\n");
  EXPECT_EQ(Run({"config", "sett", "k"}).err,
            "bifrost: unknown command 'sett' (see 'bifrost config --help')\n");
}

TEST_F(CliTest, MissingTokenExitsTwo) {
  env_.erase("BIFROST_TOKEN");
  const Outcome outcome = Run({"org", "list"});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_NE(outcome.err.find("BIFROST_TOKEN is not set"), std::string::npos) << outcome.err;
  env_["BIFROST_TOKEN"] = "";
  EXPECT_EQ(Run({"org", "list"}).exit_code, 2);
  EXPECT_TRUE(api_.requests().empty());
}

TEST_F(CliTest, HelpAndVersion) {
  const Outcome help = Run({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* word :
       {"serve", "init", "org", "config", "token", "Examples:", "BIFROST_TOKEN", "Exit codes"}) {
    EXPECT_NE(help.out.find(word), std::string::npos) << word;
  }
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"serve", "--help"},
                                             {"init", "--help"},
                                             {"org", "--help"},
                                             {"org", "create", "--help"},
                                             {"org", "list", "--help"},
                                             {"org", "delete", "--help"},
                                             {"config", "--help"},
                                             {"config", "set", "--help"},
                                             {"config", "get", "--help"},
                                             {"config", "list", "--help"},
                                             {"config", "delete", "--help"},
                                             {"token", "--help"},
                                             {"token", "create", "--help"},
                                             {"token", "list", "--help"},
                                             {"token", "revoke", "--help"},
                                             {"audit", "--help"},
                                             {"audit", "list", "--help"},
                                             {"audit", "verify", "--help"},
                                             {"whoami", "--help"},
                                             {"version", "--help"}}) {
    const Outcome outcome = Run(args);
    EXPECT_EQ(outcome.exit_code, 0) << args[0];
    EXPECT_NE(outcome.out.find("Usage: bifrost " + args[0]), std::string::npos) << outcome.out;
  }
  EXPECT_NE(Run({"config", "set", "--help"}).out.find("--secret"), std::string::npos);
  EXPECT_EQ(Run({"version"}).out, "bifrost " + std::string(BIFROST_TEST_VERSION) + "\n");
  EXPECT_EQ(RunJson({"version"})["version"], BIFROST_TEST_VERSION);
  EXPECT_TRUE(api_.requests().empty());
}

// ---- errors from the server ----

TEST_F(CliTest, ServerErrorsBecomeOneLine) {
  env_["BIFROST_TOKEN"] = "bft_revoked_secret";
  Outcome outcome = Run({"org", "list"});
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_EQ(outcome.err,
            "bifrost: authentication failed: invalid, expired or revoked token (check "
            "BIFROST_TOKEN)\n");
  EXPECT_EQ(outcome.err.find("bft_revoked_secret"), std::string::npos);

  env_["BIFROST_TOKEN"] = kMemberToken;
  outcome = Run({"org", "create", "other"});
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_EQ(outcome.err,
            "bifrost: permission denied: only a platform admin creates organizations\n");

  env_["BIFROST_TOKEN"] = kAdminToken;
  outcome = Run({"org", "create", "acme"});
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_EQ(outcome.err, "bifrost: organization already exists\n");
}

TEST_F(CliTest, UnreachableServerExitsOne) {
  env_["BIFROST_ADDR"] = "http://127.0.0.1:1";
  const Outcome outcome = Run({"org", "list"});
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_TRUE(outcome.err.starts_with("bifrost: cannot reach bifrost at http://127.0.0.1:1: "))
      << outcome.err;
}

TEST_F(CliTest, BadAddressOrCaFileExitsTwo) {
  env_["BIFROST_ADDR"] = "127.0.0.1:8420";
  Outcome outcome = Run({"org", "list"});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_NE(outcome.err.find("http://HOST[:PORT]"), std::string::npos) << outcome.err;
  env_["BIFROST_ADDR"] = "https://127.0.0.1:1";
  env_["BIFROST_CACERT"] = "/nonexistent/ca.pem";
  outcome = Run({"org", "list"});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_NE(outcome.err.find("/nonexistent/ca.pem"), std::string::npos) << outcome.err;
}

// ---- org ----

TEST_F(CliTest, OrgCreateListDelete) {
  const json created = RunJson({"org", "create", "Beta Corp"});
  EXPECT_EQ(created["name"], "Beta Corp");
  EXPECT_TRUE(created.contains("id"));
  EXPECT_EQ(LastBody("POST"), json({{"name", "Beta Corp"}}));

  const Outcome table = Run({"org", "list"});
  EXPECT_EQ(table.exit_code, 0);
  EXPECT_TRUE(table.out.starts_with("ID  ")) << table.out;
  EXPECT_NE(table.out.find("Beta Corp"), std::string::npos);
  EXPECT_NE(table.out.find(kAcmeId), std::string::npos);
  EXPECT_EQ(table.out.find('\x1b'), std::string::npos);  // not a terminal
  EXPECT_EQ(RunJson({"org", "list"}).size(), 2u);

  const Outcome deleted = Run({"org", "delete", "Beta Corp"});
  EXPECT_EQ(deleted.exit_code, 0) << deleted.err;
  EXPECT_EQ(deleted.out,
            "deleted organization Beta Corp (" + created["id"].get<std::string>() + ")\n");
  EXPECT_EQ(LastTarget("GET"), "/api/v1/orgs?name=Beta%20Corp");
  EXPECT_EQ(LastTarget("DELETE"), "/api/v1/orgs/" + created["id"].get<std::string>());

  const Outcome created_table = Run({"org", "create", "gamma"});
  EXPECT_TRUE(created_table.out.starts_with("created organization gamma (")) << created_table.out;
}

TEST_F(CliTest, OrgByIdInAnyCaseAndMissingOrgsExitThree) {
  std::string upper = kAcmeId;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const json deleted = RunJson({"org", "delete", upper});
  EXPECT_EQ(deleted, json({{"id", kAcmeId}, {"name", "acme"}, {"deleted", true}}));
  EXPECT_EQ(LastTarget("DELETE"), std::string("/api/v1/orgs/") + kAcmeId);

  Outcome missing = Run({"org", "delete", "no such org"});
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_EQ(missing.err, "bifrost: organization 'no such org' not found\n");
  // An id that matches nothing gets the same message as a name (docs/cli.md).
  missing = Run({"org", "delete", kAcmeId});  // deleted above
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_EQ(missing.err, std::string("bifrost: organization '") + kAcmeId + "' not found\n");
  missing = Run({"config", "list", "--org", upper});
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_EQ(missing.err, "bifrost: organization '" + upper + "' not found\n");
  EXPECT_EQ(Run({"config", "list", "--org", "nope"}).exit_code, 3);
}

// ---- config set ----

TEST_F(CliTest, ConfigSetInfersTypesAndSendsTypedJson) {
  struct Case {
    std::string text;
    json type;
    json value;
  };
  for (const Case& c : std::vector<Case>{
           {"5", "int", 5},
           {"-5", "int", -5},
           {"true", "bool", true},
           {R"({"a": [1, 2]})", "json", json::parse(R"({"a":[1,2]})")},
           {"[1]", "json", json::array({1})},
           {"007", "string", "007"},
           {"Acme Billing", "string", "Acme Billing"},
           {"9223372036854775808", "string", "9223372036854775808"},
       }) {
    const Outcome outcome = Run({"config", "set", "k", c.text, "--org", "acme"});
    ASSERT_EQ(outcome.exit_code, 0) << c.text << outcome.err;
    const json body = LastBody("PUT");
    EXPECT_EQ(body["type"], c.type) << c.text;
    EXPECT_EQ(body["value"], c.value) << c.text;
    EXPECT_FALSE(body.contains("description"));
  }
  EXPECT_EQ(LastTarget("PUT"), std::string("/api/v1/orgs/") + kAcmeId + "/configs/k");
}

TEST_F(CliTest, ConfigSetExplicitTypeAndDescription) {
  ASSERT_EQ(Run({"config", "set", "zip", "01234", "--type", "string", "--description",
                 "postal code", "--global"})
                .exit_code,
            0);
  EXPECT_EQ(LastBody("PUT"),
            json({{"type", "string"}, {"value", "01234"}, {"description", "postal code"}}));
  EXPECT_EQ(LastTarget("PUT"), "/api/v1/global/configs/zip");

  ASSERT_EQ(Run({"config", "set", "n", "42", "--type", "json", "--global"}).exit_code, 0);
  EXPECT_EQ(LastBody("PUT"), json({{"type", "json"}, {"value", 42}}));
}

TEST_F(CliTest, ConfigSetConfirmationTableAndJson) {
  Outcome outcome = Run({"config", "set", "retries", "5", "--org", "acme"});
  EXPECT_EQ(outcome.out, "set retries (int) in acme, version 1\n");
  outcome = Run({"config", "set", "retries", "6", "--org", "acme"});
  EXPECT_EQ(outcome.out, "set retries (int) in acme, version 2\n");
  outcome = Run({"config", "set", "region", "eu", "--global"});
  EXPECT_EQ(outcome.out, "set region (string) in global, version 1\n");
  const json entry = RunJson({"config", "set", "retries", "7", "--org", "acme"});
  EXPECT_EQ(entry["key"], "retries");
  EXPECT_EQ(entry["value"], 7);
  EXPECT_EQ(entry["version"], 3);
}

TEST_F(CliTest, SecretFromStdinIsNeverEchoed) {
  const Outcome outcome =
      Run({"config", "set", "api_key", "--secret", "--org", "acme"}, "sk_live_1\n\n");
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_EQ(outcome.out, "set api_key (secret) in acme, version 1\n");
  // Exactly one trailing newline is removed.
  EXPECT_EQ(LastBody("PUT"), json({{"type", "secret"}, {"value", "sk_live_1\n"}}));

  const Outcome dash =
      Run({"config", "set", "api_key", "-", "--type", "secret", "--org", "acme"}, "sk_live_2");
  ASSERT_EQ(dash.exit_code, 0) << dash.err;
  EXPECT_EQ(LastBody("PUT")["value"], "sk_live_2");

  const json shown =
      RunJson({"config", "set", "api_key", "sk_live_3", "--secret", "--org", "acme"});
  EXPECT_EQ(shown.dump().find("sk_live_3"), std::string::npos) << shown.dump();
  EXPECT_TRUE(prompts_.empty());
}

TEST_F(CliTest, TerminalStdinIsPromptedWithoutEcho) {
  stdin_is_terminal_ = true;
  hidden_input_ = "typed secret";
  const Outcome outcome = Run({"config", "set", "api_key", "--secret", "--org", "acme"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  ASSERT_EQ(prompts_.size(), 1u);
  EXPECT_EQ(prompts_[0], "Value for api_key: ");
  EXPECT_EQ(LastBody("PUT")["value"], "typed secret");
  EXPECT_EQ(outcome.out.find("typed secret"), std::string::npos);

  hidden_input_ = std::nullopt;  // end of input at the prompt
  EXPECT_EQ(Run({"config", "set", "api_key", "--secret", "--org", "acme"}).exit_code, 2);
}

TEST_F(CliTest, ValueOfTheWrongTypeIsRefusedBeforeSending) {
  const Outcome outcome =
      Run({"config", "set", "retries", "abc_value", "--type", "int", "--org", "acme"});
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_EQ(outcome.err,
            "bifrost: config 'retries' has type int but the value is not a 64-bit integer "
            "(decimal, optional '-', no leading zeros)\n");
  EXPECT_EQ(outcome.err.find("abc_value"), std::string::npos);
  EXPECT_EQ(LastTarget("PUT"), "");
}

TEST_F(CliTest, ArgumentsThatAreNotUtf8ExitTwoNamingTheArgument) {
  struct Case {
    std::vector<std::string> args;
    std::string stdin_text;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{"org", "create", "bad\xffname"}, "", "NAME is not valid UTF-8"},
           {{"org", "delete", "bad\xffname"}, "", "ORG is not valid UTF-8"},
           {{"config", "set", "k", "--secret", "--org", "acme", "--description", "caf\xe9"},
            "x\n",
            "--description is not valid UTF-8"},
           {{"config", "set", "k", "--secret", "--org", "acme"},
            "sk_live_HIDDEN\xff\n",
            "the value read from stdin is not valid UTF-8"},
           {{"config", "set", "k", "val\xc0\xafHIDDEN", "--org", "acme"},
            "",
            "VALUE is not valid UTF-8"},
           {{"config", "set", "k", "{\"a\":\"\xff\"}", "--type", "json", "--org", "acme"},
            "",
            "VALUE is not valid UTF-8"},
           {{"config", "set", "k\xff", "v", "--org", "acme"}, "", "KEY is not valid UTF-8"},
           {{"config", "set", "k", "v", "--org", "ac\xffme"}, "", "--org is not valid UTF-8"},
           {{"config", "get", "k\xff", "--global"}, "", "KEY is not valid UTF-8"},
           {{"config", "list", "--org", "\xff"}, "", "--org is not valid UTF-8"},
           {{"config", "delete", "k", "--org", "\xff"}, "", "--org is not valid UTF-8"},
           {{"token", "create", "--role", "reader", "--org", "acme", "--name", "\xff"},
            "",
            "--name is not valid UTF-8"},
           {{"token", "create", "--role", "reader", "--org", "\xff"},
            "",
            "--org is not valid UTF-8"},
           {{"token", "list", "--org", "\xff"}, "", "--org is not valid UTF-8"},
           {{"token", "revoke", "\xff"}, "", "ID is not valid UTF-8"},
       }) {
    const Outcome outcome = Run(c.args, c.stdin_text);
    EXPECT_EQ(outcome.exit_code, 2) << c.message;
    EXPECT_EQ(outcome.err, "bifrost: " + c.message + "\n");
    EXPECT_EQ(outcome.out, "");
  }
  EXPECT_TRUE(api_.requests().empty());
}

TEST_F(CliTest, JsonValuesRoundTripExactly) {
  // Parsed and re-serialised, these would come back as 1.2345678901234568e+29, be refused
  // (1e400) or have their members sorted.
  for (const std::string value :
       {R"({"n":123456789012345678901234567890})", R"({"z":1,"a":[1e400,-0.0,"\u00e9"]})"}) {
    ASSERT_EQ(Run({"config", "set", "doc", value, "--org", "acme"}).exit_code, 0) << value;
    const auto requests = api_.requests();
    ASSERT_FALSE(requests.empty());
    EXPECT_EQ(config::json_text::Member(requests.back().body, "value"), value);
    EXPECT_EQ(config::json_text::Member(requests.back().body, "type"), "\"json\"");
    const Outcome got = Run({"config", "get", "doc", "--org", "acme"});
    EXPECT_EQ(got.exit_code, 0) << got.err;
    EXPECT_EQ(got.out, value + "\n");
  }
  // Spacing is removed for `get`, nothing else; the JSON formats keep the value as stored.
  ASSERT_EQ(
      Run({"config", "set", "doc", "{ \"n\" : 123456789012345678901234567890 }", "--org", "acme"})
          .exit_code,
      0);
  EXPECT_EQ(Run({"config", "get", "doc", "--org", "acme"}).out,
            "{\"n\":123456789012345678901234567890}\n");
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"config", "get", "doc", "--org", "acme", "--format", "json"},
           {"config", "list", "--org", "acme", "--format", "json"},
           {"config", "set", "doc", "{\"n\":123456789012345678901234567890}", "--org", "acme",
            "--format", "json"}}) {
    const Outcome outcome = Run(args);
    EXPECT_EQ(outcome.exit_code, 0) << outcome.err;
    EXPECT_NE(outcome.out.find("\"n\": 123456789012345678901234567890"), std::string::npos)
        << outcome.out;
  }
  const Outcome table = Run({"config", "list", "--org", "acme"});
  EXPECT_NE(table.out.find("doc  json  {\"n\":123456789012345678901234567890}  org"),
            std::string::npos)
      << table.out;
}

TEST_F(CliTest, JsonOutputKeepsTheLayoutOfPrettyPrintedJson) {
  api_.Put(kAcmeId, "j", "json", json::parse(R"({"a":[1,{}],"b":[]})"));
  const Outcome outcome = Run({"config", "get", "j", "--org", "acme", "--format", "json"});
  EXPECT_EQ(outcome.exit_code, 0) << outcome.err;
  const json expected = json::parse(R"({"key":"j","scope":"org","type":"json",)"
                                    R"("value":{"a":[1,{}],"b":[]},"version":1})");
  EXPECT_EQ(outcome.out, expected.dump(2) + "\n");
}

TEST_F(CliTest, AnUnexpectedExceptionIsOneLineAndExitOne) {
  // A server answer the CLI does not expect must not abort it (an abort can leave a core file
  // holding the token); here an organization whose name is a number.
  api_.Override("GET", "/api/v1/orgs?name=weird",
                FakeResponse{.status = 200, .body = R"([{"id":"x","name":5}])"});
  Outcome outcome = Run({"org", "delete", "weird"});
  EXPECT_EQ(outcome.exit_code, 3) << outcome.err;
  // Output that cannot be written: the stream throws.
  class FailingBuffer final : public std::streambuf {
   protected:
    int_type overflow(int_type) override { return traits_type::eof(); }
  } failing;
  std::ostream out(&failing);
  out.exceptions(std::ios::badbit | std::ios::failbit);
  std::istringstream in;
  std::ostringstream err;
  CliIo io;
  io.in = &in;
  io.out = &out;
  io.err = &err;
  const int code = RunCli({"bifrost", "version"}, io);
  EXPECT_EQ(code, 1);
  EXPECT_EQ(err.str(),
            "bifrost: internal error: an unexpected exception (its message is withheld: it may "
            "quote a secret)\n");
}

// ---- scope selection ----

TEST_F(CliTest, PlatformAdminMustSayWhere) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"config", "list"},
                                             {"config", "get", "k"},
                                             {"config", "set", "k", "v"},
                                             {"config", "delete", "k"}}) {
    const Outcome outcome = Run(args);
    EXPECT_EQ(outcome.exit_code, 2) << args[1];
    EXPECT_EQ(outcome.err, "bifrost: say --org ORG or --global (this token is a platform admin)\n");
  }
  EXPECT_EQ(LastTarget("PUT"), "");
}

TEST_F(CliTest, OrgTokenDefaultsToItsOwnOrg) {
  api_.Put(kAcmeId, "api_key", "secret", "sk_org");
  env_["BIFROST_TOKEN"] = kMemberToken;
  const Outcome outcome = Run({"config", "get", "api_key"});
  EXPECT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_EQ(outcome.out, "sk_org\n");
  EXPECT_EQ(LastTarget("GET"), std::string("/api/v1/orgs/") + kAcmeId + "/configs/api_key/reveal");

  const Outcome denied = Run({"config", "set", "x", "1"});
  EXPECT_EQ(denied.exit_code, 1);
  EXPECT_EQ(denied.err, "bifrost: permission denied: role member cannot write config\n");
}

// ---- config get / list / delete ----

TEST_F(CliTest, ConfigGetPrintsValuesRaw) {
  api_.Put(kAcmeId, "s", "string", "multi\nline text");
  api_.Put(kAcmeId, "n", "int", 5);
  api_.Put(kAcmeId, "b", "bool", false);
  api_.Put(kAcmeId, "j", "json", json::parse(R"({"a": [1, 2], "b": "c"})"));
  api_.Put(kAcmeId, "p", "secret", "pa ss\tword");
  api_.Put("global", "region", "string", "eu-west");
  EXPECT_EQ(Run({"config", "get", "s", "--org", "acme"}).out, "multi\nline text\n");
  EXPECT_EQ(Run({"config", "get", "n", "--org", "acme"}).out, "5\n");
  EXPECT_EQ(Run({"config", "get", "b", "--org", "acme"}).out, "false\n");
  EXPECT_EQ(Run({"config", "get", "j", "--org", "acme"}).out, "{\"a\":[1,2],\"b\":\"c\"}\n");
  EXPECT_EQ(Run({"config", "get", "p", "--org", "acme"}).out, "pa ss\tword\n");
  EXPECT_EQ(Run({"config", "get", "region", "--org", "acme"}).out, "eu-west\n");
  EXPECT_EQ(Run({"config", "get", "region", "--global"}).out, "eu-west\n");
  const json revealed = RunJson({"config", "get", "p", "--org", "acme"});
  EXPECT_EQ(revealed["value"], "pa ss\tword");
  EXPECT_EQ(revealed["type"], "secret");
}

TEST_F(CliTest, ConfigGetMissingKeyAndDefault) {
  Outcome outcome = Run({"config", "get", "nope", "--org", "acme"});
  EXPECT_EQ(outcome.exit_code, 3);
  EXPECT_EQ(outcome.err, "bifrost: config 'nope' not found\n");
  outcome = Run({"config", "get", "nope", "--org", "acme", "--default", "fallback"});
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_EQ(outcome.out, "fallback\n");
  outcome = Run({"config", "get", "nope", "--global", "--default", ""});
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_EQ(outcome.out, "\n");
  // A missing organization is not papered over by --default.
  outcome = Run({"config", "get", "nope", "--org", "missing", "--default", "d"});
  EXPECT_EQ(outcome.exit_code, 3);
  EXPECT_EQ(outcome.out, "");
}

TEST_F(CliTest, ConfigListTableMasksSecretsWhateverTheServerSends) {
  api_.Put(kAcmeId, "retries", "int", 5);
  api_.Put(kAcmeId, "api_key", "secret", "sk_live_hidden");
  api_.Put("global", "region", "string", "eu-west");
  const Outcome outcome = Run({"config", "list", "--org", "acme"});
  EXPECT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_EQ(outcome.out,
            "KEY      TYPE    VALUE     SCOPE\n"
            "api_key  secret  [SECRET]  org\n"
            "retries  int     5         org\n"
            "region   string  eu-west   global\n");
  const json listed = RunJson({"config", "list", "--org", "acme"});
  ASSERT_TRUE(listed.is_array());
  EXPECT_EQ(listed.size(), 3u);
  EXPECT_EQ(listed[0]["value"], "[SECRET]");
  EXPECT_EQ(listed[1]["value"], 5);
}

TEST_F(CliTest, TablesUseAnsiOnlyOnATerminal) {
  stdout_is_terminal_ = true;
  EXPECT_TRUE(Run({"org", "list"}).out.starts_with("\x1b[1mID"));
  env_["NO_COLOR"] = "1";
  EXPECT_EQ(Run({"org", "list"}).out.find('\x1b'), std::string::npos);
}

TEST_F(CliTest, ConfigDelete) {
  api_.Put(kAcmeId, "retries", "int", 5);
  Outcome outcome = Run({"config", "delete", "retries", "--org", "acme"});
  EXPECT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_EQ(outcome.out, "deleted retries from acme\n");
  EXPECT_EQ(LastTarget("DELETE"), std::string("/api/v1/orgs/") + kAcmeId + "/configs/retries");
  outcome = Run({"config", "delete", "retries", "--org", "acme"});
  EXPECT_EQ(outcome.exit_code, 3);
  api_.Put("global", "region", "string", "eu");
  const json deleted = RunJson({"config", "delete", "region", "--global"});
  EXPECT_EQ(deleted,
            json({{"key", "region"}, {"scope", "global"}, {"org_id", nullptr}, {"deleted", true}}));
}

TEST_F(CliTest, KeysArePercentEncoded) {
  EXPECT_EQ(Run({"config", "get", "a/b c", "--global"}).exit_code, 3);
  EXPECT_EQ(LastTarget("GET"), "/api/v1/global/configs/a%2Fb%20c/reveal");
}

// ---- tokens ----

TEST_F(CliTest, TokenCreateSendsRoleOrgNameAndTtl) {
  const json created = RunJson(
      {"token", "create", "--role", "member", "--org", "acme", "--name", "ci", "--ttl", "24h"});
  EXPECT_EQ(
      LastBody("POST"),
      json({{"role", "member"}, {"org_id", kAcmeId}, {"name", "ci"}, {"ttl_seconds", 86400}}));
  EXPECT_EQ(created["token"], "bft_new_token_value");

  const Outcome table = Run({"token", "create", "--role", "platform-admin", "--name", "ops"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(LastBody("POST"), json({{"role", "platform-admin"}, {"name", "ops"}}));
  EXPECT_TRUE(table.out.starts_with("Token:    bft_new_token_value\n")) << table.out;
  EXPECT_NE(table.out.find("shown only once"), std::string::npos);
}

TEST_F(CliTest, TokenCreateOrgRoleNeedsAnOrg) {
  const Outcome outcome = Run({"token", "create", "--role", "reader"});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_NE(outcome.err.find("say --org ORG"), std::string::npos) << outcome.err;
  EXPECT_EQ(LastTarget("POST"), "");
  // An org token's own org is the default.
  env_["BIFROST_TOKEN"] = kMemberToken;
  EXPECT_EQ(Run({"token", "create", "--role", "reader"}).exit_code, 0);
  EXPECT_EQ(LastBody("POST"), json({{"role", "reader"}, {"org_id", kAcmeId}}));
}

TEST_F(CliTest, TokenListAndRevoke) {
  const Outcome listed = Run({"token", "list"});
  EXPECT_EQ(listed.exit_code, 0);
  EXPECT_EQ(listed.out,
            "ID       NAME  ROLE            ORG  CREATED               EXPIRES  LAST_USED  "
            "REVOKED\n"
            "t-admin  root  platform-admin  -    2024-01-01T00:00:00Z  -        -          -\n");
  EXPECT_EQ(RunJson({"token", "list", "--org", "acme"}).size(), 1u);
  EXPECT_EQ(LastTarget("GET"), std::string("/api/v1/tokens?org_id=") + kAcmeId);

  Outcome revoked = Run({"token", "revoke", "t-admin"});
  EXPECT_EQ(revoked.exit_code, 0);
  EXPECT_EQ(revoked.out, "revoked token t-admin\n");
  revoked = Run({"token", "revoke", "t-unknown"});
  EXPECT_EQ(revoked.exit_code, 3);
  EXPECT_EQ(revoked.err, "bifrost: token not found\n");
}

TEST_F(CliTest, Whoami) {
  EXPECT_EQ(Run({"whoami"}).out,
            "Token ID:  t-admin\n"
            "Name:      root\n"
            "Role:      platform-admin\n"
            "Org:       -\n");
  EXPECT_EQ(RunJson({"whoami"})["role"], "platform-admin");
}

// ---- audit ----

constexpr std::int64_t kAuditTime = 1'796'184'077'123'456;  // 2026-12-02T04:01:17.123456Z

// A record as the server writes it (its member order, not nlohmann's sorted one), one minute
// after the one before.
std::string AuditRecordText(std::int64_t seq, const std::string& action, const std::string& outcome,
                            const json& org_id, const json& key, const json& actor_name,
                            const std::string& detail) {
  const std::int64_t time_us = kAuditTime + (seq - 1) * 60'000'000;
  nlohmann::ordered_json record;
  record["seq"] = seq;
  record["time"] = FormatRfc3339(time_us);
  record["time_us"] = time_us;
  record["action"] = action;
  record["outcome"] = outcome;
  record["org_id"] = org_id;
  record["config_key"] = key;
  record["actor_id"] = "t-" + std::to_string(seq);
  record["actor_name"] = actor_name;
  record["client_address"] = "127.0.0.1:" + std::to_string(5000 + seq);
  record["request_id"] = "req-" + std::to_string(seq);
  record["execution_id"] = nullptr;
  record["detail"] = detail;
  record["key_id"] = "k1";
  record["prev_mac"] = std::string(64, '0');
  record["mac"] = std::string(64, 'a');
  return record.dump();
}

// The query parameters of the GET requests to /api/v1/audit, in order.
std::vector<std::map<std::string, std::string>> AuditQueries(
    const std::vector<FakeRequest>& requests) {
  std::vector<std::map<std::string, std::string>> queries;
  for (const auto& r : requests) {
    if (r.method != "GET" || !r.target.starts_with("/api/v1/audit")) continue;
    const std::size_t q = r.target.find('?');
    queries.push_back(ParseQuery(q == std::string::npos ? "" : r.target.substr(q + 1)));
  }
  return queries;
}

TEST_F(CliTest, AuditListTableAndJson) {
  Outcome empty = Run({"audit", "list"});
  EXPECT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_EQ(empty.out, "SEQ  TIME  ACTION  OUTCOME  ORG  KEY  ACTOR  CLIENT  DETAIL\n");
  EXPECT_EQ(RunJson({"audit", "list"}), json::array());

  const std::vector<std::string> records = {
      AuditRecordText(1, "token.create", "success", nullptr, nullptr, "bootstrap",
                      "token t-admin (platform-admin)"),
      AuditRecordText(2, "config.reveal", "success", kAcmeId, "api_key", nullptr, ""),
      AuditRecordText(3, "config.reveal", "denied", kAcmeId, "api_key", "ci",
                      "permission_denied\n\x1b[31m"),
  };
  for (std::size_t i = 0; i < records.size(); ++i) {
    api_.AddAudit(static_cast<std::int64_t>(i + 1), records[i]);
  }

  const Outcome table = Run({"audit", "list"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  // Newest first; seconds, UTC; a record without an actor name shows the actor id; the
  // detail is made printable (no escape code reaches the terminal).
  const std::string acme(kAcmeId);
  EXPECT_EQ(table.out, "SEQ  TIME                  ACTION         OUTCOME  ORG" +
                           std::string(35, ' ') +
                           "KEY      ACTOR      CLIENT          DETAIL\n"
                           "3    2026-12-02T04:03:17Z  config.reveal  denied   " +
                           acme +
                           "  api_key  ci         127.0.0.1:5003  permission_denied\\n\\x1b[31m\n"
                           "2    2026-12-02T04:02:17Z  config.reveal  success  " +
                           acme +
                           "  api_key  t-2        127.0.0.1:5002  -\n"
                           "1    2026-12-02T04:01:17Z  token.create   success  -" +
                           std::string(37, ' ') +
                           "-        bootstrap  127.0.0.1:5001  token t-admin (platform-admin)\n")
      << table.out;
  EXPECT_EQ(LastTarget("GET"), "/api/v1/audit?limit=50");

  // JSON: the records exactly as the server sent them (member order, every field).
  const Outcome json_out = Run({"audit", "list", "--format", "json"});
  EXPECT_EQ(json_out.exit_code, 0) << json_out.err;
  EXPECT_EQ(json_out.out, config::json_text::Indent(
                              "[" + records[2] + "," + records[1] + "," + records[0] + "]", 2) +
                              "\n");
  const json parsed = json::parse(json_out.out);
  ASSERT_EQ(parsed.size(), 3u);
  EXPECT_EQ(parsed[0]["mac"], std::string(64, 'a'));
  EXPECT_EQ(parsed[2]["time_us"], kAuditTime);

  EXPECT_EQ(RunJson({"audit", "list", "--limit", "2"}).size(), 2u);
  EXPECT_EQ(LastTarget("GET"), "/api/v1/audit?limit=2");
}

TEST_F(CliTest, AuditListFollowsNextBeforeUntilLimitOrTheEnd) {
  for (std::int64_t seq = 1; seq <= 5; ++seq) {
    api_.AddAudit(seq, AuditRecordText(seq, "config.reveal", "success", kAcmeId, "k", "ci", ""));
  }
  api_.SetAuditPageSize(2);

  // Four records from pages of two: the second page asks for what is missing, before seq 4.
  json listed = RunJson({"audit", "list", "--limit", "4"});
  ASSERT_EQ(listed.size(), 4u);
  for (std::size_t i = 0; i < listed.size(); ++i) {
    EXPECT_EQ(listed[i]["seq"], 5 - static_cast<int>(i));
  }
  auto queries = AuditQueries(api_.requests());
  ASSERT_EQ(queries.size(), 2u);
  EXPECT_EQ(queries[0], (std::map<std::string, std::string>{{"limit", "4"}}));
  EXPECT_EQ(queries[1], (std::map<std::string, std::string>{{"limit", "2"}, {"before", "4"}}));

  // More asked for than there are: stops when next_before is null.
  const Outcome table = Run({"audit", "list", "--limit", "10", "--action", "config.reveal"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(std::count(table.out.begin(), table.out.end(), '\n'), 6) << table.out;
  queries = AuditQueries(api_.requests());
  ASSERT_EQ(queries.size(), 5u);
  EXPECT_EQ(queries[2].at("limit"), "10");
  EXPECT_FALSE(queries[2].contains("before"));
  EXPECT_EQ(queries[3].at("before"), "4");
  EXPECT_EQ(queries[3].at("limit"), "8");
  EXPECT_EQ(queries[4].at("before"), "2");
  EXPECT_EQ(queries[4].at("limit"), "6");
  for (std::size_t i = 2; i < queries.size(); ++i) {
    EXPECT_EQ(queries[i].at("action"), "config.reveal");  // every page keeps the filters
  }
}

TEST_F(CliTest, AuditListRefusesANextBeforeThatDoesNotMoveBack) {
  api_.Override("GET", "/api/v1/audit?limit=50",
                FakeResponse{.status = 200, .body = R"({"records":[{"seq":7}],"next_before":7})"});
  api_.Override("GET", "/api/v1/audit?limit=49&before=7",
                FakeResponse{.status = 200, .body = R"({"records":[{"seq":8}],"next_before":8})"});
  const Outcome outcome = Run({"audit", "list"});
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_NE(outcome.err.find("bad next_before"), std::string::npos) << outcome.err;
  EXPECT_TRUE(outcome.out.empty());
}

TEST_F(CliTest, AuditListSendsFiltersAndMakesRelativeTimesAbsolute) {
  const std::int64_t before_run = SystemClock::Instance().NowMicros();
  const Outcome outcome = Run({"audit", "list", "--org", "acme", "--key", "api key", "--action",
                               "config.reveal", "--actor", "ci", "--outcome", "denied", "--since",
                               "24h", "--until", "2026-12-01T09:30:00+01:00"});
  const std::int64_t after_run = SystemClock::Instance().NowMicros();
  EXPECT_EQ(outcome.exit_code, 0) << outcome.err;
  const auto queries = AuditQueries(api_.requests());
  ASSERT_EQ(queries.size(), 1u);
  const auto& query = queries[0];
  EXPECT_EQ(query.at("org_id"), kAcmeId);  // the name resolved to the id
  EXPECT_EQ(query.at("key"), "api key");
  EXPECT_EQ(query.at("action"), "config.reveal");
  EXPECT_EQ(query.at("actor"), "ci");
  EXPECT_EQ(query.at("outcome"), "denied");
  EXPECT_EQ(query.at("until"), "2026-12-01T09:30:00+01:00");  // absolute: sent as typed
  EXPECT_EQ(query.at("limit"), "50");
  // 24h: an absolute UTC time 24 hours before the command ran.
  const std::string& since = query.at("since");
  EXPECT_TRUE(since.ends_with("Z")) << since;
  const auto since_micros = ParseRfc3339(since);
  ASSERT_TRUE(since_micros.has_value()) << since;
  constexpr std::int64_t kDay = std::int64_t{86'400} * 1'000'000;
  EXPECT_GE(*since_micros, before_run - kDay);
  EXPECT_LE(*since_micros, after_run - kDay);
  EXPECT_NE(LastTarget("GET").find("until=2026-12-01T09%3A30%3A00%2B01%3A00"), std::string::npos)
      << LastTarget("GET");

  // An org that does not exist: exit 3 before the audit log is asked.
  const Outcome missing = Run({"audit", "list", "--org", "nope"});
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_EQ(missing.err, "bifrost: organization 'nope' not found\n");
  EXPECT_EQ(AuditQueries(api_.requests()).size(), 1u);
}

TEST_F(CliTest, AuditTimesAreRfc3339DatesOrHowLongAgo) {
  const std::int64_t now = kAuditTime;
  EXPECT_EQ(AuditTimeQueryValue("--since", "7d", now).value(),
            FormatRfc3339(now - std::int64_t{7} * 86'400 * 1'000'000));
  EXPECT_EQ(AuditTimeQueryValue("--since", "1h30m", now).value(), "2026-12-02T02:31:17.123456Z");
  EXPECT_EQ(AuditTimeQueryValue("--until", "2026-12-01", now).value(), "2026-12-01");
  EXPECT_EQ(AuditTimeQueryValue("--until", "2026-12-01T09:30:00Z", now).value(),
            "2026-12-01T09:30:00Z");
  for (const char* bad :
       {"yesterday", "0s", "30", "1.5h", "2026-02-30", "2026-12-01 09:30", "", "99999999999w"}) {
    const auto result = AuditTimeQueryValue("--since", bad, now);
    ASSERT_FALSE(result.has_value()) << bad;
    EXPECT_EQ(result.error().exit_code, 2) << bad;
    EXPECT_TRUE(result.error().message.starts_with("--since ")) << result.error().message;
  }
}

TEST_F(CliTest, AuditListBadFlagsExitTwoNamingTheFlag) {
  Outcome outcome = Run({"audit", "list", "--since", "yesterday"});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_EQ(outcome.err,
            "bifrost: --since 'yesterday' is not a time: give RFC 3339 (2026-12-01T09:30:00Z), a "
            "date (2026-12-01) or how long ago (30m, 24h, 7d)\n");
  outcome = Run({"audit", "list", "--until", "soon"});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_TRUE(outcome.err.starts_with("bifrost: --until 'soon' is not a time")) << outcome.err;
  outcome = Run({"audit", "list", "--outcome", "maybe"});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_NE(outcome.err.find("--outcome"), std::string::npos) << outcome.err;
  EXPECT_NE(outcome.err.find("(see 'bifrost audit list --help')"), std::string::npos)
      << outcome.err;
  outcome = Run({"audit", "list", "--key", "\xff"});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_EQ(outcome.err, "bifrost: --key is not valid UTF-8\n");
  EXPECT_TRUE(api_.requests().empty());
}

TEST_F(CliTest, AuditListForbiddenIsPermissionDenied) {
  env_["BIFROST_TOKEN"] = kMemberToken;
  const Outcome outcome = Run({"audit", "list"});
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_EQ(outcome.err, "bifrost: permission denied: role member cannot read the audit log\n");
  EXPECT_TRUE(outcome.out.empty());
}

// `audit verify` is local, like `init`: server::RunAuditVerify prints its own output on the
// process's stdout and stderr, and its exit code is the CLI's.
TEST_F(CliTest, AuditVerifyReturnsTheExitCodeOfTheCheck) {
  std::string dir_template = ::testing::TempDir() + "bifrost_cli_audit_XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template.data()), nullptr);
  const std::string dir = dir_template;
  const std::string data = dir + "/data";
  constexpr const char* kKey = "correct horse battery staple, 32+ characters long";
  ::unsetenv("BIFROST_DATA");
  ::unsetenv("BIFROST_SECRET_KEY_FILE");

  Outcome outcome = Run({"audit", "verify"});  // --data is required
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_NE(outcome.err.find("--data"), std::string::npos) << outcome.err;

  // Cannot check: 1, reported by the check itself (so nothing more from the CLI).
  ::setenv("BIFROST_SECRET_KEY", kKey, 1);
  ::testing::internal::CaptureStderr();
  outcome = Run({"audit", "verify", "--data", dir + "/none"});
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_EQ(outcome.err, "");
  EXPECT_EQ(err, "bifrost: no database in " + dir + "/none; run `bifrost init --data " + dir +
                     "/none` first\n");

  ::setenv("BIFROST_SECRET_KEY", kKey, 1);
  ::testing::internal::CaptureStdout();
  outcome = Run({"init", "--data", data});
  (void)::testing::internal::GetCapturedStdout();  // the admin token
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;

  // Intact: 0; --data may come from BIFROST_DATA.
  ::setenv("BIFROST_SECRET_KEY", kKey, 1);
  ::setenv("BIFROST_DATA", data.c_str(), 1);
  ::testing::internal::CaptureStdout();
  outcome = Run({"audit", "verify", "--format", "json"});
  const std::string report_text = ::testing::internal::GetCapturedStdout();
  ::unsetenv("BIFROST_DATA");
  EXPECT_EQ(outcome.exit_code, 0) << outcome.err;
  const json report = json::parse(report_text, nullptr, false);
  EXPECT_EQ(report["ok"], true) << report_text;
  EXPECT_GE(report["records"].get<int>(), 1) << report_text;  // init's token.create

  // Not intact: 4. A file sink whose line is not a record does not match the database.
  const std::string file = dir + "/audit.jsonl";
  std::ofstream(file) << "not a record\n";
  ::setenv("BIFROST_SECRET_KEY", kKey, 1);
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  outcome = Run({"audit", "verify", "--data", data, "--file", file});
  const std::string out = ::testing::internal::GetCapturedStdout();
  err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(outcome.exit_code, 4);
  EXPECT_EQ(outcome.err, "");
  EXPECT_NE(out.find("audit log NOT intact"), std::string::npos) << out;
  EXPECT_TRUE(err.starts_with("bifrost: the audit log is not intact: ")) << err;

  ::unsetenv("BIFROST_SECRET_KEY");
  std::filesystem::remove_all(dir);
}

// ---- where local commands find the database: --data DIR or --database URL ----

// A password that must never be printed.
constexpr const char* kDbCanary = "DbCanaryPw-51c2e8";

TEST_F(CliTest, DatabaseFlagsNeedExactlyOneAndAPostgresUrl) {
  ::unsetenv("BIFROST_DATA");
  ::unsetenv("BIFROST_DATABASE_URL");
  const std::string url = std::string("postgresql://app:") + kDbCanary + "@db.invalid/bifrost";
  const std::vector<std::vector<std::string>> commands = {
      {"serve"},
      {"init"},
      {"keys", "status"},
      {"keys", "rotate"},
      {"import", "bifrost", "--organizations", "o.csv", "--configs", "c.csv", "--source-key-file",
       "k"},
      {"audit", "verify"}};
  const auto expect_usage = [&](std::vector<std::string> args, const std::string& wanted) {
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    const Outcome outcome = Run(args);
    EXPECT_EQ(outcome.exit_code, 2) << joined << "\n" << outcome.err;
    EXPECT_TRUE(outcome.err.starts_with("bifrost: ")) << joined << outcome.err;
    EXPECT_NE(outcome.err.find(wanted), std::string::npos) << joined << outcome.err;
    EXPECT_EQ(std::count(outcome.err.begin(), outcome.err.end(), '\n'), 1) << outcome.err;
    EXPECT_EQ(outcome.err.find(kDbCanary), std::string::npos) << joined << outcome.err;
    EXPECT_EQ(outcome.out.find(kDbCanary), std::string::npos) << joined << outcome.out;
  };
  for (const auto& command : commands) {
    const std::vector<std::string>& args = command;
    // Neither: the message names both flags and both variables.
    expect_usage(args,
                 "needs a data directory (give --data DIR or set BIFROST_DATA) or a "
                 "PostgreSQL database (give --database URL or set BIFROST_DATABASE_URL)");
    // Both, on the command line.
    std::vector<std::string> both = args;
    both.insert(both.end(), {"--data", "/tmp/none", "--database", url});
    expect_usage(both, "not both");
    // Both, one from the environment.
    ::setenv("BIFROST_DATA", "/tmp/none", 1);
    std::vector<std::string> mixed = args;
    mixed.insert(mixed.end(), {"--database", url});
    expect_usage(mixed, "not both");
    ::unsetenv("BIFROST_DATA");
    // A URL of another kind, given either way: refused, its password not echoed.
    for (const std::string& bad : {std::string("mysql://root:") + kDbCanary + "@db/bifrost",
                                   std::string("db.internal:5432:") + kDbCanary}) {
      std::vector<std::string> flagged = args;
      flagged.insert(flagged.end(), {"--database", bad});
      expect_usage(flagged, "--database must be a PostgreSQL URL");
      expect_usage(flagged, "postgresql://");
      ::setenv("BIFROST_DATABASE_URL", bad.c_str(), 1);
      expect_usage(args, "--database must be a PostgreSQL URL");
      // Read once, then taken out of the environment: no child process inherits it.
      EXPECT_EQ(std::getenv("BIFROST_DATABASE_URL"), nullptr);
      ::unsetenv("BIFROST_DATABASE_URL");
    }
  }
  // serve --dev is the embedded store only.
  expect_usage({"serve", "--dev", "--database", url}, "--dev");
  // The pool is 1..1000 connections.
  for (const char* pool : {"0", "1001", "many"}) {
    expect_usage({"serve", "--database", url, "--database-pool", pool}, "--database-pool");
  }
  EXPECT_TRUE(api_.requests().empty());
}

TEST(DatabaseFlagsTest, HideUrlPasswordInPlaceMasksEveryPassword) {
  const auto hidden = [](std::string text) {
    HideUrlPasswordInPlace(text.data());
    return text;
  };
  EXPECT_EQ(hidden("postgresql://app:s3cret@db:5432/bifrost?sslmode=require"),
            "postgresql://app:******@db:5432/bifrost?sslmode=require");
  EXPECT_EQ(hidden("postgres://app:p@ss@db/bifrost"), "postgres://app:****@db/bifrost");
  EXPECT_EQ(hidden("postgresql://db/bifrost?user=app&password=s3cret&sslmode=require"),
            "postgresql://db/bifrost?user=app&password=******&sslmode=require");
  EXPECT_EQ(hidden("postgresql://app@db/bifrost"), "postgresql://app@db/bifrost");
  EXPECT_EQ(hidden("postgresql:///bifrost?host=/run/postgresql"),
            "postgresql:///bifrost?host=/run/postgresql");
  EXPECT_EQ(hidden("not a url"), "not a url");
  // Unencoded reserved characters in the password: more may be hidden, never less.
  for (const std::string url :
       {"postgresql://app:Qx?Zy#w/Vw@db/bifrost",
        "postgresql://app:Qx/Zy@db:5432/bifrost?sslmode=require", "postgresql://app:Qx?Zy@db"}) {
    const std::string masked = hidden(url);
    EXPECT_EQ(masked.find("Qx"), std::string::npos) << masked;
    EXPECT_EQ(masked.find("Zy"), std::string::npos) << masked;
  }
  EXPECT_EQ(hidden("postgresql://db/bifrost?sslpassword=s3cret"),
            "postgresql://db/bifrost?sslpassword=******");
  HideUrlPasswordInPlace(nullptr);  // nothing happens
}

TEST(CliProcessTest, MainDisablesCoreDumps) {
  // In a child, so that the test process stays as it was.
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::string program = "bifrost";
    std::string command = "version";
    std::string flag = "--help";
    char* argv[] = {program.data(), command.data(), flag.data(), nullptr};
    std::FILE* sink = std::freopen("/dev/null", "w", stdout);
    (void)sink;
    Main(3, argv);
    rlimit core{};
    const bool no_core =
        getrlimit(RLIMIT_CORE, &core) == 0 && core.rlim_cur == 0 && core.rlim_max == 0;
    _exit(prctl(PR_GET_DUMPABLE) == 0 && no_core ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the process is still dumpable or may write a core file";
}

// ---- workflows and executions ----

constexpr const char* kExecutionId = "5a2b3c4d-1111-4222-8333-944455556666";

json ExecutionJson(const std::string& status, const json& result, const json& error) {
  return {{"id", kExecutionId},
          {"workflow", "call_api"},
          {"org_id", kAcmeId},
          {"caller", {{"id", "t"}, {"name", "ops"}}},
          {"status", status},
          {"parameters", json::object()},
          {"result", result},
          {"error", error},
          {"logs_truncated", false},
          {"timeout_seconds", 60},
          {"created_at", "2026-12-02T10:00:00Z"},
          {"started_at", nullptr},
          {"finished_at", nullptr},
          {"duration_ms", 12}};
}

TEST_F(CliTest, WorkflowRunSendsParametersWaitsAndPrintsTheResult) {
  const std::string run_target =
      std::string("/api/v1/orgs/") + kAcmeId + "/workflows/call_api/executions";
  api_.Override("POST", run_target, Json(202, ExecutionJson("pending", nullptr, nullptr)));
  api_.Override("GET", std::string("/api/v1/executions/") + kExecutionId + "?wait=10",
                Json(200, ExecutionJson("success", {{"verified", true}}, nullptr)));
  const Outcome outcome = Run({"workflow", "run", "call_api", "--org", "acme", "--params",
                               R"({"a": 0, "b": [2]})", "--param", "a=1", "--param", "c=x=y"});
  EXPECT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_EQ(json::parse(outcome.out), json({{"verified", true}}));
  EXPECT_EQ(LastTarget("POST"), run_target);
  // --param values are strings and win over --params.
  EXPECT_EQ(LastBody("POST"), json({{"parameters", {{"a", "1"}, {"b", {2}}, {"c", "x=y"}}}}));
}

TEST_F(CliTest, WorkflowRunExitsOneWithTheErrorOfAFailedExecution) {
  api_.Override("POST", std::string("/api/v1/orgs/") + kAcmeId + "/workflows/call_api/executions",
                Json(202, ExecutionJson("pending", nullptr, nullptr)));
  api_.Override(
      "GET", std::string("/api/v1/executions/") + kExecutionId + "?wait=10",
      Json(200, ExecutionJson("failed", nullptr, "ValueError: Invalid webhook signature")));
  Outcome outcome = Run({"workflow", "run", "call_api", "--org", "acme"});
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_EQ(outcome.out, "");
  EXPECT_EQ(outcome.err, std::string("bifrost: execution ") + kExecutionId +
                             " failed: ValueError: Invalid webhook signature\n");

  // --no-wait prints the id alone and asks nothing more.
  const std::size_t before = api_.requests().size();
  outcome = Run({"workflow", "run", "call_api", "--org", "acme", "--no-wait"});
  EXPECT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_EQ(outcome.out, std::string(kExecutionId) + "\n");
  EXPECT_EQ(api_.requests().size(), before + 2);  // the org lookup and the run
}

TEST_F(CliTest, WorkflowRunRefusesMalformedParametersBeforeSending) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"workflow", "run", "w", "--org", "acme", "--param", "novalue"},
           {"workflow", "run", "w", "--org", "acme", "--param", "=x"},
           {"workflow", "run", "w", "--org", "acme", "--params", "[1, 2]"},
           {"workflow", "run", "w", "--org", "acme", "--params", "{not json"},
           {"execution", "get", kExecutionId, "--wait", "11"},
           {"execution", "list", "--status", "done"}}) {
    const Outcome outcome = Run(args);
    EXPECT_EQ(outcome.exit_code, 2) << args.back() << ": " << outcome.err;
  }
  EXPECT_TRUE(api_.requests().empty());
}

TEST_F(CliTest, ExecutionLogsEscapeControlCharactersButKeepLinesAndTabs) {
  api_.Override("GET", std::string("/api/v1/executions/") + kExecutionId + "/logs",
                Json(200, {{"id", kExecutionId},
                           {"status", "success"},
                           {"logs", "one\ttab\n\x1b[31mred\x1b[0m\n"},
                           {"truncated", true}}));
  const Outcome outcome = Run({"execution", "logs", kExecutionId});
  EXPECT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_EQ(outcome.out, "one\ttab\n\\x1b[31mred\\x1b[0m\n");
  EXPECT_NE(outcome.err.find("cut"), std::string::npos) << outcome.err;
}

}  // namespace
}  // namespace bifrost::cli
