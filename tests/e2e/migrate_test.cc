// `bifrost migrate` through the real binary: an installation in a data directory (SQLite)
// with organizations, secrets in an organization and in the global scope, tokens, a user
// with a session, an execution, audit records, a rotated data key and a rotated master key
// is copied into an empty PostgreSQL database; `bifrost serve --database URL` then serves
// the same values to the same tokens and `bifrost audit verify` passes. A target that is
// not empty, or keys that do not fit, are refused before anything is written; no secret,
// key or database password ever appears in the command's output.
//
// These tests need PostgreSQL (the ctest fixture `postgres`): they run in the PostgreSQL
// pass of this suite (postgresql.MigrateTest.*) and fail there when no cluster is found. In
// the SQLite pass, which has no cluster, they run only if one is named
// (BIFROST_TEST_POSTGRES_URL).
#include <gtest/gtest.h>

#include <initializer_list>
#include <map>
#include <string>
#include <vector>

#include "tests/e2e/e2e_support.h"

namespace bifrost::e2e {
namespace {

using testing::BifrostBinary;
using testing::ProcessResult;
using testing::RunProcess;
using testing::ServerProcess;
using testing::Storage;
using testing::TempDir;

const std::string kKeyOld = "migrate-test-secret-key-0123456789-abcdefg";
const std::string kKeyNew = "migrate-rotated-secret-key-9876543210-zyxw";
const std::string kKeyStranger = "migrate-unrelated-secret-key-55555555-qqqq";
const std::string kCanary = "sk_live_MIGRATE_CANARY_7f3a91";
const std::string kDbPassword = "pg-password-MIGRATE-CANARY-0b2c";
const std::string kUserPassword = "correct horse battery staple 42";

#define SKIP_WITHOUT_A_CLUSTER_IN_THE_SQLITE_PASS()                                      \
  do {                                                                                   \
    if (!testing::TestBackendIsPostgres() && testing::PostgresAdminUrl().empty()) {      \
      GTEST_SKIP() << "needs PostgreSQL: runs as postgresql.MigrateTest.* (the fixture " \
                      "`postgres`), or set BIFROST_TEST_POSTGRES_URL";                   \
    }                                                                                    \
  } while (0)

std::string Env(const std::string& name, const std::string& value) { return name + "=" + value; }

// A fresh empty database on the test cluster; its URL carries a password (the cluster trusts
// local connections, so it is never checked, but every message must hide it).
std::string NewTarget(std::string_view label) {
  std::string url = testing::NewPostgresDatabase(label);
  const auto user_end = url.find('@');
  const auto scheme_end = url.find("://");
  if (url.empty() || user_end == std::string::npos || scheme_end == std::string::npos) {
    ADD_FAILURE() << "unexpected test cluster URL";
    return url;
  }
  if (url.substr(scheme_end + 3, user_end - scheme_end - 3).find(':') == std::string::npos) {
    url.insert(user_end, ":" + kDbPassword);
  }
  return url;
}

// `bifrost migrate ARGS...` with the target in BIFROST_DATABASE_URL and the keys in `env`.
ProcessResult Migrate(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  std::vector<std::string> argv = {BifrostBinary(), "migrate"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv, "", env);
}

std::string Cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (const std::string_view part : parts) out += part;
  return out;
}

// Nothing the command prints may contain a secret value, a master key or the password.
void ExpectNothingSecretIn(const ProcessResult& r) {
  for (const std::string& needle : {kCanary, kKeyOld, kKeyNew, kKeyStranger, kDbPassword}) {
    EXPECT_EQ(r.out.find(needle), std::string::npos) << "stdout shows a secret:\n" << r.out;
    EXPECT_EQ(r.err.find(needle), std::string::npos) << "stderr shows a secret:\n" << r.err;
  }
}

std::string ValueOf(const Reply& reply) {
  if (!reply.json_body.is_object()) return "";
  const auto it = reply.json_body.find("value");
  return it != reply.json_body.end() && it->is_string() ? it->get<std::string>() : "";
}

// What the source installation holds, and what the copy must serve.
struct Source {
  std::string data_dir;
  std::string admin;   // the admin token `init` printed
  MintedToken member;  // a member token of Acme
  std::string acme_id;
  std::map<std::string, std::string> expected;  // GET target -> value
};

// An installation in `dir`/data with some of everything; its server is stopped, its data
// key of Acme rotated, and its master key rotated from kKeyOld to kKeyNew.
Source MakeSource(const std::string& dir, bool rotate) {
  Source source;
  source.data_dir = dir + "/data";
  ServerProcess server({.secret_key = kKeyOld, .data_dir = source.data_dir});
  if (server.address().empty()) return source;
  source.admin = server.admin_token();
  Api api(server.address());
  source.acme_id = CreateOrg(api, source.admin, "Acme");
  const std::string globex = CreateOrg(api, source.admin, "Globex");
  for (const auto& [id, name] : {std::pair{source.acme_id, "Acme"}, std::pair{globex, "Globex"}}) {
    const std::string scope = "/api/v1/orgs/" + id;
    for (const std::string key : {"api_key", "db_password"}) {
      const std::string value = Cat({kCanary, "-", name, "-", key});
      SetConfig(api, source.admin, scope, key, "secret", value);
      source.expected[scope + "/configs/" + key + "/reveal"] = value;
    }
    SetConfig(api, source.admin, scope, "region", "string", Cat({"eu-", name}));
    source.expected[scope + "/configs/region"] = Cat({"eu-", name});
  }
  SetConfig(api, source.admin, "/api/v1/global", "shared_secret", "secret", kCanary + "-global");
  source.expected["/api/v1/global/configs/shared_secret/reveal"] = kCanary + "-global";
  SetConfig(api, source.admin, "/api/v1/global", "retries", "int", 5);
  // A second version of a value: versions are kept.
  SetConfig(api, source.admin, "/api/v1/orgs/" + source.acme_id, "region", "string", "eu-west");
  source.expected["/api/v1/orgs/" + source.acme_id + "/configs/region"] = "eu-west";
  source.member = MintToken(api, source.admin, "member", source.acme_id);
  // A user, signed in once (a session row).
  const Reply user = api.Call("POST", "/api/v1/users", source.admin,
                              json{{"email", "ana@acme.example"},
                                   {"password", kUserPassword},
                                   {"role", "admin"},
                                   {"org_id", source.acme_id}});
  EXPECT_EQ(user.status, 201) << user.body;
  const Reply login = api.Call("POST", "/api/v1/auth/login", "",
                               json{{"email", "ana@acme.example"}, {"password", kUserPassword}});
  EXPECT_EQ(login.status, 200) << login.body;
  // Reveals and a denial: audit records of every kind.
  EXPECT_EQ(api.Call("GET", "/api/v1/orgs/" + source.acme_id + "/configs/api_key/reveal",
                     source.member.token)
                .status,
            200);
  EXPECT_EQ(api.Call("GET", "/api/v1/orgs/" + globex + "/configs", source.member.token).status,
            403);
  EXPECT_EQ(server.Stop(), 0);

  // A finished workflow execution, as a server with workflows leaves it.
  SqlExec(Storage{.data_dir = source.data_dir},
          Cat({"INSERT INTO executions (id, workflow, org_id, caller_id, caller_name, status, "
               "parameters, result, error, logs, logs_truncated, timeout_seconds, created_at, "
               "started_at, finished_at) VALUES ('6f1c2d3e-4b5a-4c6d-8e7f-00000000e001', "
               "'report', '",
               source.acme_id,
               "', 'caller-1', 'ops', 'success', '{}', '42', NULL, 'done', 0, 60, "
               "1700000000000000, 1700000000000001, 1700000000000002)"}));

  if (rotate) {
    // Acme's data key, then the master key.
    ProcessResult rotated =
        RunProcess({BifrostBinary(), "keys", "rotate", "--org", "Acme", "--data", source.data_dir},
                   "", {Env("BIFROST_SECRET_KEY", kKeyOld)});
    EXPECT_EQ(rotated.exit_code, 0) << rotated.err;
    rotated = RunProcess(
        {BifrostBinary(), "keys", "rotate", "--data", source.data_dir}, "",
        {Env("BIFROST_SECRET_KEY", kKeyNew), Env("BIFROST_SECRET_KEY_PREVIOUS", kKeyOld)});
    EXPECT_EQ(rotated.exit_code, 0) << rotated.err;
  }
  return source;
}

std::int64_t Count(const json& report, const std::string& table, const std::string& side) {
  if (!report.contains("tables")) return -1;
  for (const json& row : report["tables"]) {
    if (row.value("table", "") == table) return row.value(side, std::int64_t{-1});
  }
  return -1;
}

TEST(MigrateTest, CopyServesTheSameValuesToTheSameTokensAndItsAuditLogVerifies) {
  SKIP_WITHOUT_A_CLUSTER_IN_THE_SQLITE_PASS();
  TempDir dir;
  const Source source = MakeSource(dir.path(), /*rotate=*/true);
  ASSERT_FALSE(source.admin.empty());
  const Storage source_storage{.data_dir = source.data_dir};
  const std::string source_before = testing::StorageFingerprint(source_storage);
  const std::string target = NewTarget("migrate_copy");
  ASSERT_FALSE(target.empty());

  // The URL from the environment, the key after a master rotation: only the new one (the
  // old master key's audit key is stored, so old records still verify).
  const ProcessResult migrated =
      Migrate({"--from-data", source.data_dir, "--format", "json"},
              {Env("BIFROST_DATABASE_URL", target), Env("BIFROST_SECRET_KEY", kKeyNew)});
  ASSERT_EQ(migrated.exit_code, 0) << migrated.err << migrated.out;
  ExpectNothingSecretIn(migrated);
  const json report = json::parse(migrated.out, nullptr, false);
  ASSERT_TRUE(report.is_object()) << migrated.out;
  EXPECT_EQ(report.value("migrated", false), true);
  // The target is named without its password.
  EXPECT_NE(report["target"].value("database", "").find(":***@"), std::string::npos)
      << report.dump();
  for (const std::string table : {"organizations", "configs", "key_checks", "tokens", "data_keys",
                                  "key_jobs", "executions", "users", "sessions", "audit_log"}) {
    EXPECT_GT(Count(report, table, "source"), 0) << table;
    EXPECT_EQ(Count(report, table, "source"), Count(report, table, "target")) << table;
  }
  EXPECT_EQ(Count(report, "nodes", "source"), -1) << "nodes are not copied, nor listed";
  EXPECT_EQ(report.value("secrets_opened", 0), 5);
  EXPECT_EQ(report["audit"].value("intact", false), true);
  EXPECT_GT(report["audit"].value("records", 0), 5);
  EXPECT_TRUE(report["mismatches"].empty()) << report.dump();
  // Progress, table by table, on stderr.
  EXPECT_NE(migrated.err.find("organizations: 2 rows copied"), std::string::npos) << migrated.err;
  EXPECT_NE(migrated.err.find("audit_log: "), std::string::npos) << migrated.err;

  // The source is left as it was.
  EXPECT_EQ(testing::StorageFingerprint(source_storage), source_before);

  // `bifrost audit verify` on the copy, with the new key only.
  const ProcessResult verified =
      RunProcess({BifrostBinary(), "audit", "verify", "--database", target}, "",
                 {Env("BIFROST_SECRET_KEY", kKeyNew)});
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
  EXPECT_NE(verified.out.find("audit log intact"), std::string::npos) << verified.out;

  // A server on the copy serves the same values to the same tokens and the same user.
  ServerProcess served({.secret_key = kKeyNew, .init = false, .database_url = target});
  ASSERT_FALSE(served.address().empty());
  Api api(served.address());
  for (const auto& [path, value] : source.expected) {
    const Reply r = api.Call("GET", path, source.admin);
    EXPECT_EQ(r.status, 200) << path << ": " << r.body;
    EXPECT_EQ(ValueOf(r), value) << path;
  }
  const Reply as_member = api.Call(
      "GET", "/api/v1/orgs/" + source.acme_id + "/configs/db_password/reveal", source.member.token);
  EXPECT_EQ(as_member.status, 200) << as_member.body;
  EXPECT_EQ(ValueOf(as_member), kCanary + "-Acme-db_password");
  const Reply version =
      api.Call("GET", "/api/v1/orgs/" + source.acme_id + "/configs/region", source.admin);
  EXPECT_EQ(version.json_body.value("version", 0), 2) << version.body;
  const Reply login = api.Call("POST", "/api/v1/auth/login", "",
                               json{{"email", "ana@acme.example"}, {"password", kUserPassword}});
  EXPECT_EQ(login.status, 200) << login.body;
  // New writes go on from the copied state: a new secret, a new audit record.
  SetConfig(api, source.admin, "/api/v1/orgs/" + source.acme_id, "after_migrate", "secret",
            kCanary + "-after");
  EXPECT_EQ(served.Stop(), 0);
  const ProcessResult again = RunProcess({BifrostBinary(), "audit", "verify", "--database", target},
                                         "", {Env("BIFROST_SECRET_KEY", kKeyNew)});
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;

  // The execution came along.
  const auto rows =
      SqlRows(Storage{.database_url = target}, "SELECT workflow, status, result FROM executions");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"report", "success", "42"}));
}

TEST(MigrateTest, ANonEmptyTargetIsRefusedAndLeftUnchanged) {
  SKIP_WITHOUT_A_CLUSTER_IN_THE_SQLITE_PASS();
  TempDir dir;
  const Source source = MakeSource(dir.path(), /*rotate=*/false);
  ASSERT_FALSE(source.admin.empty());
  const std::vector<std::string> keys = {Env("BIFROST_SECRET_KEY", kKeyOld)};

  // A database `bifrost init` prepared.
  const std::string initialized = NewTarget("migrate_initialized");
  ASSERT_FALSE(initialized.empty());
  const ProcessResult init =
      RunProcess({BifrostBinary(), "init", "--database", initialized}, "", keys);
  ASSERT_EQ(init.exit_code, 0) << init.err;
  const Storage initialized_storage{.database_url = initialized};
  const std::string before = testing::StorageFingerprint(initialized_storage);
  const ProcessResult refused =
      Migrate({"--from-data", source.data_dir, "--to", initialized}, keys);
  EXPECT_EQ(refused.exit_code, 1) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("not empty"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("tokens has 1 row"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("key_checks has 1 row"), std::string::npos) << refused.err;
  EXPECT_EQ(refused.out, "");
  ExpectNothingSecretIn(refused);
  EXPECT_EQ(testing::StorageFingerprint(initialized_storage), before);

  // A database that already received a copy: migrating twice is refused too.
  const std::string copied = NewTarget("migrate_twice");
  ASSERT_FALSE(copied.empty());
  const ProcessResult first = Migrate({"--from-data", source.data_dir, "--to", copied}, keys);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  ExpectNothingSecretIn(first);
  EXPECT_NE(first.out.find("migrated"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("organizations"), std::string::npos) << first.out;
  const Storage copied_storage{.database_url = copied};
  const std::string copied_before = testing::StorageFingerprint(copied_storage);
  const ProcessResult second = Migrate({"--from-data", source.data_dir, "--to", copied}, keys);
  EXPECT_EQ(second.exit_code, 1) << second.err;
  EXPECT_NE(second.err.find("organizations has 2 rows"), std::string::npos) << second.err;
  ExpectNothingSecretIn(second);
  EXPECT_EQ(testing::StorageFingerprint(copied_storage), copied_before);
}

TEST(MigrateTest, KeysThatDoNotFitAreRefusedBeforeAnythingIsWritten) {
  SKIP_WITHOUT_A_CLUSTER_IN_THE_SQLITE_PASS();
  TempDir dir;
  const Source source = MakeSource(dir.path(), /*rotate=*/false);
  ASSERT_FALSE(source.admin.empty());
  const std::string target = NewTarget("migrate_wrong_key");
  ASSERT_FALSE(target.empty());
  const std::string tables_sql =
      "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'";
  ASSERT_EQ(testing::RunSql(target, tables_sql), "0\n");

  const ProcessResult wrong = Migrate({"--from-data", source.data_dir, "--to", target},
                                      {Env("BIFROST_SECRET_KEY", kKeyStranger)});
  EXPECT_EQ(wrong.exit_code, 1) << wrong.out << wrong.err;
  EXPECT_NE(wrong.err.find("keys do not fit"), std::string::npos) << wrong.err;
  EXPECT_EQ(wrong.out, "");
  ExpectNothingSecretIn(wrong);
  // Not even the schema was created.
  EXPECT_EQ(testing::RunSql(target, tables_sql), "0\n");

  const ProcessResult missing = Migrate({"--from-data", source.data_dir, "--to", target},
                                        {"BIFROST_SECRET_KEY=", "BIFROST_SECRET_KEY_FILE="});
  EXPECT_EQ(missing.exit_code, 1) << missing.err;
  EXPECT_NE(missing.err.find("BIFROST_SECRET_KEY"), std::string::npos) << missing.err;
  EXPECT_EQ(testing::RunSql(target, tables_sql), "0\n");

  // Usage mistakes: exit 2, and the URL is never echoed.
  const std::vector<std::string> keys = {Env("BIFROST_SECRET_KEY", kKeyOld)};
  const ProcessResult no_source = Migrate({"--to", target}, keys);
  EXPECT_EQ(no_source.exit_code, 2) << no_source.err;
  EXPECT_NE(no_source.err.find("--from-data"), std::string::npos) << no_source.err;
  const ProcessResult no_target =
      Migrate({"--from-data", source.data_dir},
              {Env("BIFROST_SECRET_KEY", kKeyOld), "BIFROST_DATABASE_URL="});
  EXPECT_EQ(no_target.exit_code, 2) << no_target.err;
  const ProcessResult not_postgres = Migrate(
      {"--from-data", source.data_dir, "--to", "mysql://root:" + kDbPassword + "@db/x"}, keys);
  EXPECT_EQ(not_postgres.exit_code, 2) << not_postgres.err;
  ExpectNothingSecretIn(not_postgres);
  const ProcessResult no_database =
      Migrate({"--from-data", dir.path() + "/nothing-here", "--to", target}, keys);
  EXPECT_EQ(no_database.exit_code, 1) << no_database.err;
  EXPECT_NE(no_database.err.find("no database"), std::string::npos) << no_database.err;
  EXPECT_EQ(testing::RunSql(target, tables_sql), "0\n");

  // With the right key it goes through.
  const ProcessResult right = Migrate({"--from-data", source.data_dir, "--to", target}, keys);
  EXPECT_EQ(right.exit_code, 0) << right.err;
  ExpectNothingSecretIn(right);
}

TEST(MigrateTest, HelpExplainsIt) {
  const ProcessResult help = RunProcess({BifrostBinary(), "migrate", "--help"});
  EXPECT_EQ(help.exit_code, 0) << help.err;
  for (const std::string part : {"--from-data", "--to", "stop every server", "EMPTY",
                                 "never changed", "BIFROST_SECRET_KEY", "Exit codes"}) {
    EXPECT_NE(help.out.find(part), std::string::npos) << part << "\n" << help.out;
  }
}

}  // namespace
}  // namespace bifrost::e2e
