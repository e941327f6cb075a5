// The leak test: canary secrets in two orgs and the global scope. Every response body of
// every route, everything the server logged and the raw database files are scanned; a
// canary appears only in reveal responses to callers allowed to reveal it.
#include "tests/e2e/e2e_support.h"

namespace bifrost::e2e {
namespace {

const std::string kCanaryA = "CANARY-alpha-sk_live_51Hc0ffee";
const std::string kCanaryB = "CANARY-beta-whsec_9f8e7d6c5b";
const std::string kCanaryGlobal = "CANARY-global-pw_aa11bb22cc";

TEST(LeakTest, CanariesAppearOnlyInAuthorizedReveals) {
  testing::ServerProcess server;
  ASSERT_FALSE(server.address().empty());
  Api api(server.address());
  const std::string admin = server.admin_token();
  const std::string org_a = CreateOrg(api, admin, "Alpha");
  const std::string org_b = CreateOrg(api, admin, "Beta");
  const MintedToken a_admin = MintToken(api, admin, "admin", org_a);
  const MintedToken a_member = MintToken(api, admin, "member", org_a);
  const MintedToken a_reader = MintToken(api, admin, "reader", org_a);
  const MintedToken b_member = MintToken(api, admin, "member", org_b);

  // Written by different callers; the write responses are scanned too.
  std::vector<Reply> replies;
  auto put = [&](const std::string& token, const std::string& scope, const std::string& key,
                 const std::string& value) {
    replies.push_back(
        api.Call("PUT", scope + "/configs/" + key, token,
                 json{{"type", "secret"}, {"value", value}, {"description", "canary"}}));
    EXPECT_TRUE(replies.back().status == 200 || replies.back().status == 201)
        << replies.back().body;
  };
  put(a_admin.token, "/api/v1/orgs/" + org_a, "api_key", kCanaryA);
  put(admin, "/api/v1/orgs/" + org_b, "api_key", kCanaryB);
  put(admin, "/api/v1/global", "shared_pw", kCanaryGlobal);
  put(a_admin.token, "/api/v1/orgs/" + org_a, "api_key", kCanaryA);  // an update as well

  // Every non-reveal route, by every caller.
  const std::vector<std::string> callers = {admin, a_admin.token, a_member.token, a_reader.token,
                                            b_member.token};
  const std::vector<std::string> reads = {
      "/api/v1/whoami",
      "/api/v1/orgs",
      "/api/v1/orgs/" + org_a,
      "/api/v1/orgs/" + org_b,
      "/api/v1/orgs/" + org_a + "/configs",
      "/api/v1/orgs/" + org_b + "/configs",
      "/api/v1/orgs/" + org_a + "/configs/api_key",
      "/api/v1/orgs/" + org_b + "/configs/api_key",
      "/api/v1/orgs/" + org_a + "/configs/shared_pw",
      "/api/v1/global/configs",
      "/api/v1/global/configs/shared_pw",
      "/api/v1/tokens",
      "/api/v1/openapi.json",
      "/healthz",
      "/readyz",
  };
  for (const auto& token : callers) {
    for (const auto& target : reads) replies.push_back(api.Call("GET", target, token));
  }
  // Refused reveals: a reader of A, a member of B on A, A's member on B.
  const Reply refused[] = {
      api.Call("GET", "/api/v1/orgs/" + org_a + "/configs/api_key/reveal", a_reader.token),
      api.Call("GET", "/api/v1/orgs/" + org_a + "/configs/api_key/reveal", b_member.token),
      api.Call("GET", "/api/v1/orgs/" + org_b + "/configs/api_key/reveal", a_member.token),
      api.Call("GET", "/api/v1/global/configs/shared_pw/reveal", a_member.token),
  };
  for (const auto& r : refused) {
    EXPECT_EQ(r.status, 403) << r.body;
    replies.push_back(r);
  }
  // Failed writes that carry a canary: invalid key, wrong type, another org.
  replies.push_back(api.Call("PUT", "/api/v1/orgs/" + org_a + "/configs/bad-key", a_admin.token,
                             json{{"type", "secret"}, {"value", kCanaryA}}));
  replies.push_back(api.Call("PUT", "/api/v1/orgs/" + org_a + "/configs/n", a_admin.token,
                             json{{"type", "int"}, {"value", kCanaryA}}));
  replies.push_back(api.Call("PUT", "/api/v1/orgs/" + org_b + "/configs/x", a_admin.token,
                             json{{"type", "secret"}, {"value", kCanaryA}}));
  replies.push_back(
      api.Raw("PUT", "/api/v1/orgs/" + org_a + "/configs/x", a_admin.token,
              "{\"type\": \"secret\", \"value\": \"" + kCanaryA + "\""));  // broken JSON

  ASSERT_GT(replies.size(), 80u);
  for (const auto& r : replies) {
    EXPECT_EQ(r.body.find("CANARY"), std::string::npos) << "a canary leaked: " << r.body;
  }
  // Secrets show as "[SECRET]" with their metadata.
  const Reply listed = api.Call("GET", "/api/v1/orgs/" + org_a + "/configs", a_member.token);
  ASSERT_EQ(listed.status, 200);
  bool saw_masked = false;
  for (const auto& entry : listed.json_body) {
    if (entry["key"] == "api_key") {
      EXPECT_EQ(entry["value"], "[SECRET]");
      EXPECT_EQ(entry["type"], "secret");
      EXPECT_EQ(entry["description"], "canary");
      saw_masked = true;
    }
  }
  EXPECT_TRUE(saw_masked);

  // The allowed reveals return exactly the right canary.
  struct Allowed {
    std::string token, target, canary;
  } allowed[] = {
      {a_member.token, "/api/v1/orgs/" + org_a + "/configs/api_key/reveal", kCanaryA},
      {a_admin.token, "/api/v1/orgs/" + org_a + "/configs/api_key/reveal", kCanaryA},
      {a_member.token, "/api/v1/orgs/" + org_a + "/configs/shared_pw/reveal", kCanaryGlobal},
      {b_member.token, "/api/v1/orgs/" + org_b + "/configs/api_key/reveal", kCanaryB},
      {admin, "/api/v1/global/configs/shared_pw/reveal", kCanaryGlobal},
  };
  for (const auto& a : allowed) {
    const Reply r = api.Call("GET", a.target, a.token);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json_body["value"], a.canary);
  }

  // The CLI's reveal prints it; its other commands do not.
  const auto get = server.Cli({"config", "get", "api_key"}, a_member.token);
  EXPECT_EQ(get.exit_code, 0) << get.err;
  EXPECT_EQ(get.out, kCanaryA + "\n");
  const auto list = server.Cli({"config", "list", "--format", "json"}, a_member.token);
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(list.out.find("CANARY"), std::string::npos);
  EXPECT_EQ(list.err.find("CANARY"), std::string::npos);

  // Stop the server (clean shutdown), then scan its whole log and what the database stored.
  EXPECT_EQ(server.Stop(), 0);
  const std::string logs = server.Stdout() + server.Stderr();
  EXPECT_NE(logs.find("/api/v1/orgs/{org_id}/configs/{key}/reveal"), std::string::npos)
      << "the access log does not record reveals: " << logs.substr(0, 2000);
  EXPECT_EQ(logs.find("CANARY"), std::string::npos) << "a canary reached the server log";
  for (const auto& token : callers) {
    EXPECT_EQ(logs.find(token), std::string::npos) << "a token reached the server log";
  }
  // SQLite: the database and its WAL; PostgreSQL: the database's contents and files, and the
  // cluster's write-ahead log, which other tests write to as well: there only these canaries
  // are looked for, any "CANARY" in the database's own.
  const std::string files = testing::StoredBytes(server.storage());
  ASSERT_FALSE(files.empty());
  for (const std::string& canary : {kCanaryA, kCanaryB, kCanaryGlobal}) {
    EXPECT_EQ(files.find(canary), std::string::npos) << canary << " reached the database files";
  }
  EXPECT_EQ(testing::StoredBytes(server.storage(), testing::StoredScope::kOwn).find("CANARY"),
            std::string::npos)
      << "a canary reached the database files";
  for (const auto& token : callers) {
    EXPECT_EQ(files.find(token), std::string::npos) << "a token is stored in clear";
  }
}

}  // namespace
}  // namespace bifrost::e2e
