// The CLI against the real server: commands, output formats, exit codes.
#include "tests/e2e/e2e_support.h"

namespace bifrost::e2e {
namespace {

using testing::ProcessResult;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(server_.address().empty());
    admin_ = server_.admin_token();
  }
  ProcessResult Run(const std::vector<std::string>& args, const std::string& input = "") {
    return server_.Cli(args, token_.empty() ? admin_ : token_, input);
  }
  json RunJson(const std::vector<std::string>& args) {
    std::vector<std::string> with_format = args;
    with_format.push_back("--format");
    with_format.push_back("json");
    const ProcessResult r = Run(with_format);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json parsed = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << r.out;
    return parsed;
  }

  testing::ServerProcess server_;
  std::string admin_;
  std::string token_;  // when set, used instead of the admin token
};

TEST_F(CliTest, OrgLifecycleByNameAndId) {
  const json created = RunJson({"org", "create", "Acme Corp"});
  ASSERT_TRUE(created.contains("id"));
  EXPECT_EQ(created["name"], "Acme Corp");
  const ProcessResult table = Run({"org", "list"});
  EXPECT_EQ(table.exit_code, 0);
  EXPECT_NE(table.out.find("Acme Corp"), std::string::npos);
  EXPECT_NE(table.out.find(created["id"].get<std::string>()), std::string::npos);
  const ProcessResult dup = Run({"org", "create", "Acme Corp"});
  EXPECT_EQ(dup.exit_code, 1);
  EXPECT_TRUE(dup.err.starts_with("bifrost: ")) << dup.err;
  EXPECT_EQ(Run({"org", "delete", "No Such Org"}).exit_code, 3);
  EXPECT_EQ(Run({"org", "delete", "Acme Corp"}).exit_code, 0);
  EXPECT_EQ(RunJson({"org", "list"}).size(), 0u);
}

TEST_F(CliTest, ConfigSetGetListDeleteWithTypesAndFallback) {
  RunJson({"org", "create", "Acme"});
  // Inferred types, as the Python SDK infers them.
  EXPECT_EQ(Run({"config", "set", "retries", "5", "--org", "Acme"}).exit_code, 0);
  EXPECT_EQ(Run({"config", "set", "enabled", "true", "--org", "Acme"}).exit_code, 0);
  EXPECT_EQ(Run({"config", "set", "settings", "{\"a\": [1, 2]}", "--org", "Acme"}).exit_code, 0);
  EXPECT_EQ(Run({"config", "set", "name", "Acme Billing", "--org", "Acme"}).exit_code, 0);
  // A secret from stdin: it never passes through argv or shell history.
  const ProcessResult secret =
      Run({"config", "set", "api_key", "--secret", "--org", "Acme"}, "sk_live_from_stdin\n");
  EXPECT_EQ(secret.exit_code, 0) << secret.err;
  EXPECT_EQ(secret.out.find("sk_live_from_stdin"), std::string::npos);
  EXPECT_EQ(Run({"config", "set", "region", "eu-west", "--global"}).exit_code, 0);

  const json listed = RunJson({"config", "list", "--org", "Acme"});
  ASSERT_TRUE(listed.is_array());
  std::map<std::string, json> by_key;
  for (const auto& e : listed) by_key[e["key"].get<std::string>()] = e;
  ASSERT_EQ(by_key.size(), 6u) << listed.dump();
  EXPECT_EQ(by_key["retries"]["type"], "int");
  EXPECT_EQ(by_key["retries"]["value"], 5);
  EXPECT_EQ(by_key["enabled"]["type"], "bool");
  EXPECT_EQ(by_key["settings"]["type"], "json");
  EXPECT_EQ(by_key["name"]["type"], "string");
  EXPECT_EQ(by_key["api_key"]["type"], "secret");
  EXPECT_EQ(by_key["api_key"]["value"], "[SECRET]");
  EXPECT_EQ(by_key["region"]["scope"], "global");
  EXPECT_EQ(by_key["retries"]["scope"], "org");

  EXPECT_EQ(Run({"config", "get", "api_key", "--org", "Acme"}).out, "sk_live_from_stdin\n");
  EXPECT_EQ(Run({"config", "get", "retries", "--org", "Acme"}).out, "5\n");
  EXPECT_EQ(Run({"config", "get", "region", "--org", "Acme"}).out, "eu-west\n");  // fallback
  const ProcessResult missing = Run({"config", "get", "nope", "--org", "Acme"});
  EXPECT_EQ(missing.exit_code, 3);
  const ProcessResult defaulted = Run({"config", "get", "nope", "--org", "Acme", "--default", "d"});
  EXPECT_EQ(defaulted.exit_code, 0);
  EXPECT_EQ(defaulted.out, "d\n");
  const ProcessResult table = Run({"config", "list", "--org", "Acme"});
  EXPECT_EQ(table.out.find("sk_live_from_stdin"), std::string::npos);
  EXPECT_NE(table.out.find("[SECRET]"), std::string::npos);

  EXPECT_EQ(Run({"config", "delete", "retries", "--org", "Acme"}).exit_code, 0);
  EXPECT_EQ(Run({"config", "get", "retries", "--org", "Acme"}).exit_code, 3);
  EXPECT_EQ(Run({"config", "delete", "retries", "--org", "Acme"}).exit_code, 3);
  const ProcessResult bad = Run({"config", "set", "retries", "abc", "--type", "int", "--org", "Acme"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("is not a 64-bit integer"), std::string::npos) << bad.err;
}

TEST_F(CliTest, TokensAndOrgTokenDefaults) {
  const json org = RunJson({"org", "create", "Acme"});
  const json minted = RunJson({"token", "create", "--role", "member", "--org", "Acme", "--name", "ci", "--ttl", "24h"});
  ASSERT_TRUE(minted.contains("token")) << minted.dump();
  const std::string member = minted["token"].get<std::string>();
  EXPECT_TRUE(member.starts_with("bft_"));
  EXPECT_EQ(minted["org_id"], org["id"]);
  EXPECT_FALSE(minted["expires_at"].is_null());

  EXPECT_EQ(Run({"config", "set", "api_key", "sk_org", "--secret", "--org", "Acme"}).exit_code, 0);
  // An org token needs no --org: it defaults to its own org.
  token_ = member;
  EXPECT_EQ(Run({"config", "get", "api_key"}).out, "sk_org\n");
  EXPECT_EQ(Run({"config", "set", "x", "1"}).exit_code, 1);  // member cannot write: 403
  const ProcessResult denied = Run({"org", "create", "Other"});
  EXPECT_EQ(denied.exit_code, 1);
  EXPECT_NE(denied.err.find("permission denied"), std::string::npos) << denied.err;
  token_.clear();

  // A platform admin must say where.
  const ProcessResult where = Run({"config", "list"});
  EXPECT_EQ(where.exit_code, 2);
  EXPECT_NE(where.err.find("--org"), std::string::npos) << where.err;

  const json tokens = RunJson({"token", "list"});
  ASSERT_TRUE(tokens.is_array());
  EXPECT_GE(tokens.size(), 2u);
  for (const auto& t : tokens) EXPECT_FALSE(t.contains("token")) << t.dump();
  EXPECT_EQ(Run({"token", "revoke", minted["id"].get<std::string>()}).exit_code, 0);
  token_ = member;
  const ProcessResult revoked = Run({"config", "get", "api_key"});
  EXPECT_EQ(revoked.exit_code, 1);
  EXPECT_NE(revoked.err.find("authentication failed"), std::string::npos) << revoked.err;
}

TEST_F(CliTest, UsageErrorsExitTwo) {
  EXPECT_EQ(Run({"config", "set"}).exit_code, 2);
  EXPECT_EQ(Run({"config", "get", "k", "--org", "A", "--global"}).exit_code, 2);
  EXPECT_EQ(Run({"token", "create", "--role", "member", "--ttl", "soon"}).exit_code, 2);
  EXPECT_EQ(Run({"no-such-command"}).exit_code, 2);
  EXPECT_EQ(Run({"config", "set", "k", "v", "--secret", "--type", "int", "--global"}).exit_code, 2);
  const ProcessResult no_token = server_.Cli({"org", "list"}, "");
  EXPECT_EQ(no_token.exit_code, 2);
  EXPECT_NE(no_token.err.find("BIFROST_TOKEN"), std::string::npos) << no_token.err;
  const ProcessResult help = Run({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("config"), std::string::npos);
  const ProcessResult unreachable =
      testing::RunProcess({testing::BifrostBinary(), "org", "list"}, "",
                          {"BIFROST_ADDR=http://127.0.0.1:1", "BIFROST_TOKEN=" + admin_});
  EXPECT_EQ(unreachable.exit_code, 1);
  EXPECT_NE(unreachable.err.find("cannot reach"), std::string::npos) << unreachable.err;
  EXPECT_EQ(unreachable.err.find(admin_), std::string::npos);
}

}  // namespace
}  // namespace bifrost::e2e
