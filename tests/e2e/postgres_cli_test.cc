// `--database URL` through the real binary: init, serve and the local commands on a
// PostgreSQL database; the flag mistakes an operator makes; a database that is not
// initialized, initialized twice, or down; /readyz and 503s that follow the database; several
// inits and nodes at once. A password in the URL (a canary: the test clusters trust every
// local connection, so it is sent and ignored) never appears in any output or log.
//
// Every case needs PostgreSQL (the `postgres` ctest fixture, or a private cluster) and fails
// without it.
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/e2e_support.h"
#include "tests/support/postgres_test.h"

namespace bifrost::e2e {
namespace {

using testing::BifrostBinary;
using testing::PostgresCluster;
using testing::ProcessResult;
using testing::RunProcess;
using testing::ServerProcess;
using testing::TempDir;

const std::string kKey = "postgres-cli-test-secret-key-0123456789ab";
constexpr const char* kCanary = "PgCanaryPassword-3e71b9";

// `url` ("postgresql://user@...") with the canary as its user's password.
std::string WithPassword(const std::string& url) {
  const auto scheme = url.find("://");
  const auto at = url.find('@', scheme == std::string::npos ? 0 : scheme + 3);
  if (scheme == std::string::npos || at == std::string::npos) {
    ADD_FAILURE() << "unexpected test database URL " << url;
    return url;
  }
  return url.substr(0, at) + ":" + kCanary + url.substr(at);
}

ProcessResult Bifrost(const std::vector<std::string>& args,
                      const std::vector<std::string>& env = {"BIFROST_SECRET_KEY=" + kKey}) {
  std::vector<std::string> argv = {BifrostBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv, "", env);
}

void ExpectNoCanary(const std::string& text, const std::string& what) {
  EXPECT_EQ(text.find(kCanary), std::string::npos) << what << " shows the password:\n" << text;
}

void ExpectNoCanary(const ProcessResult& r, const std::string& what) {
  ExpectNoCanary(r.out, what + " (stdout)");
  ExpectNoCanary(r.err, what + " (stderr)");
}

// One line "bifrost: ..." on stderr, the exit code, and no password.
void ExpectRefusal(const ProcessResult& r, int exit_code, const std::string& wanted,
                   const std::string& what) {
  EXPECT_EQ(r.exit_code, exit_code) << what << "\n" << r.out << r.err;
  EXPECT_TRUE(r.err.starts_with("bifrost: ")) << what << ": " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << what << ": " << r.err;
  EXPECT_NE(r.err.find(wanted), std::string::npos) << what << ": " << r.err;
  ExpectNoCanary(r, what);
}

// `bifrost init --database URL --format json`: the admin token.
std::string Init(const std::string& url) {
  const ProcessResult r = Bifrost({"init", "--database", url, "--format", "json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ExpectNoCanary(r, "init");
  const json out = json::parse(r.out, nullptr, false);
  if (!out.is_object() || !out.contains("token")) {
    ADD_FAILURE() << "init printed no token: " << r.out;
    return "";
  }
  return out["token"].get<std::string>();
}

std::string Header(const Reply& reply, const std::string& name) {
  const auto it = reply.headers.find(name);
  return it == reply.headers.end() ? "" : it->second;
}

// Polls `done` (a bounded wait for an event, not a timing assertion).
template <typename Fn>
bool Eventually(Fn done, std::chrono::seconds limit = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

TEST(PostgresCli, InitServeAndTheLocalCommandsOnAFreshDatabase) {
  const std::string plain = testing::NewPostgresDatabase("cli_all");
  ASSERT_FALSE(plain.empty());
  const std::string url = WithPassword(plain);

  // init: the token once, and the database named without its password.
  const ProcessResult init = Bifrost({"init", "--database", url, "--format", "json"});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  ExpectNoCanary(init, "init");
  const json created = json::parse(init.out, nullptr, false);
  ASSERT_TRUE(created.is_object()) << init.out;
  EXPECT_TRUE(created["token"].get<std::string>().starts_with("bft_"));
  EXPECT_FALSE(created.contains("data_dir")) << init.out;
  ASSERT_TRUE(created.contains("database")) << init.out;
  EXPECT_TRUE(created["database"].get<std::string>().starts_with("postgresql://")) << init.out;
  const std::string admin = created["token"].get<std::string>();

  // Initialized once: a second init is refused and changes nothing.
  const std::string kState =
      "SELECT (SELECT count(*) FROM tokens), (SELECT count(*) FROM key_checks), "
      "(SELECT count(*) FROM audit_log), (SELECT max(seq) FROM audit_log)";
  const std::string before = testing::RunSql(plain, kState);
  EXPECT_EQ(before, "1|1|1|1\n");
  ExpectRefusal(Bifrost({"init", "--database", url}), 1,
                "already holds a Bifrost installation; refusing to initialize it again",
                "init twice");
  EXPECT_EQ(testing::RunSql(plain, kState), before);

  // serve on it.
  std::string org_id;
  {
    ServerProcess::Options options;
    options.secret_key = kKey;
    options.init = false;
    options.database_url = url;
    ServerProcess server(options);
    ASSERT_FALSE(server.address().empty());
    Api api(server.address());
    EXPECT_EQ(api.Call("GET", "/readyz", "").status, 200);
    org_id = CreateOrg(api, admin, "acme");
    ASSERT_FALSE(org_id.empty());
    SetConfig(api, admin, "/api/v1/orgs/" + org_id, "api_key", "secret", "s3cr3t-value");
    SetConfig(api, admin, "/api/v1/global", "region", "string", "eu-west");

    // The local commands run beside the server on the same database.
    const ProcessResult status = Bifrost({"keys", "status", "--database", url, "--format", "json"});
    ASSERT_EQ(status.exit_code, 0) << status.err;
    ExpectNoCanary(status, "keys status");
    const json report = json::parse(status.out, nullptr, false);
    EXPECT_EQ(report["organizations"], 1) << status.out;
    EXPECT_EQ(report["sealed_values"], 1) << status.out;

    // The URL from BIFROST_DATABASE_URL instead of the flag.
    const ProcessResult rotate =
        Bifrost({"keys", "rotate", "--org", "acme", "--format", "json"},
                {"BIFROST_SECRET_KEY=" + kKey, "BIFROST_DATABASE_URL=" + url});
    ASSERT_EQ(rotate.exit_code, 0) << rotate.err;
    ExpectNoCanary(rotate, "keys rotate");
    EXPECT_EQ(json::parse(rotate.out, nullptr, false)["resealed"], 1) << rotate.out;
    const Reply revealed =
        api.Call("GET", "/api/v1/orgs/" + org_id + "/configs/api_key/reveal", admin);
    EXPECT_EQ(revealed.status, 200) << revealed.body;
    EXPECT_EQ(revealed.json_body["value"], "s3cr3t-value") << revealed.body;

    // import bifrost: a small dump of the Python Bifrost (tests/support/make_bifrost_dump.py).
    TempDir dump;
    const std::string source_key = dump.path() + "/old.key";
    std::ofstream(source_key) << "the-old-installation-key-0123456789abcdef\n";
    ::chmod(source_key.c_str(), 0600);
    const char* source_dir = std::getenv("BIFROST_SOURCE_DIR");
    const ProcessResult made =
        RunProcess({PythonBinary(),
                    std::string(source_dir != nullptr ? source_dir : BIFROST_SOURCE_DIR) +
                        "/tests/support/make_bifrost_dump.py",
                    "--out", dump.path() + "/dump", "--secret-key-file", source_key, "--orgs", "2",
                    "--configs-per-org", "3", "--global-configs", "1", "--integration-rows", "0"});
    ASSERT_EQ(made.exit_code, 0) << made.err;
    const ProcessResult imported = Bifrost(
        {"import", "bifrost", "--database", url, "--organizations",
         dump.path() + "/dump/organizations.csv", "--configs", dump.path() + "/dump/configs.csv",
         "--source-key-file", source_key, "--format", "json"});
    ASSERT_EQ(imported.exit_code, 0) << imported.err << imported.out;
    ExpectNoCanary(imported, "import bifrost");
    const json import_report = json::parse(imported.out, nullptr, false);
    EXPECT_EQ(import_report["organizations"]["created"], 2) << imported.out;
    EXPECT_EQ(import_report["configs"]["total"], 7) << imported.out;
    const Reply listed = api.Call("GET", "/api/v1/orgs", admin);
    EXPECT_EQ(listed.status, 200);
    EXPECT_NE(listed.body.find("acme"), std::string::npos);

    EXPECT_EQ(server.Stop(), 0);
    ExpectNoCanary(server.Stdout(), "serve (stdout)");
    ExpectNoCanary(server.Stderr(), "serve (log)");
  }

  // audit verify: every record, from init's to the import's, on one chain.
  const ProcessResult verify = Bifrost({"audit", "verify", "--database", url});
  EXPECT_EQ(verify.exit_code, 0) << verify.err << verify.out;
  EXPECT_NE(verify.out.find("audit log intact"), std::string::npos) << verify.out;
  ExpectNoCanary(verify, "audit verify");
}

TEST(PostgresCli, FlagMistakesAreUsageErrorsThatNeverEchoThePassword) {
  const std::string url = WithPassword("postgresql://bifrost@db.invalid/bifrost");
  const std::vector<std::vector<std::string>> commands = {
      {"serve"},
      {"init"},
      {"keys", "status"},
      {"keys", "rotate"},
      {"import", "bifrost", "--organizations", "o.csv", "--configs", "c.csv", "--source-key-file",
       "k"},
      {"audit", "verify"}};
  for (const auto& command : commands) {
    std::string name;
    for (const auto& word : command) name += word + " ";
    ExpectRefusal(Bifrost(command), 2, "or a PostgreSQL database (give --database URL", name);
    std::vector<std::string> both = command;
    both.insert(both.end(), {"--data", "/tmp/none", "--database", url});
    ExpectRefusal(Bifrost(both), 2, "not both", name + "both");
    for (const std::string& bad : {std::string("mysql://root:") + kCanary + "@db/bifrost",
                                   std::string("host=db password=") + kCanary}) {
      std::vector<std::string> wrong = command;
      wrong.insert(wrong.end(), {"--database", bad});
      ExpectRefusal(Bifrost(wrong), 2, "--database must be a PostgreSQL URL", name + bad);
      ExpectRefusal(Bifrost(command, {"BIFROST_SECRET_KEY=" + kKey, "BIFROST_DATABASE_URL=" + bad}),
                    2, "--database must be a PostgreSQL URL", name + "(env) " + bad);
    }
  }
  ExpectRefusal(Bifrost({"serve", "--dev", "--database", url}), 2, "--dev", "serve --dev");
  ExpectRefusal(Bifrost({"serve", "--database", url, "--database-pool", "0"}), 2, "--database-pool",
                "pool 0");
  ExpectRefusal(Bifrost({"serve", "--database", url},
                        {"BIFROST_SECRET_KEY=" + kKey, "BIFROST_DATABASE_POOL=1001"}),
                2, "--database-pool", "pool 1001");
}

TEST(PostgresCli, AnUninitializedDatabaseIsRefusedByEverythingButInit) {
  const std::string plain = testing::NewPostgresDatabase("cli_uninit");
  ASSERT_FALSE(plain.empty());
  const std::string url = WithPassword(plain);
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"serve", "--database", url, "--listen", "127.0.0.1:0"},
           {"keys", "status", "--database", url},
           {"keys", "rotate", "--database", url},
           {"audit", "verify", "--database", url}}) {
    ExpectRefusal(Bifrost(args), 1, "run `bifrost init --database URL` (with the same URL) first",
                  args[0] + " " + args[1]);
  }
  // Then init makes it usable.
  const std::string admin = Init(url);
  ASSERT_FALSE(admin.empty());
  const ProcessResult status = Bifrost({"keys", "status", "--database", url});
  EXPECT_EQ(status.exit_code, 0) << status.err;
}

TEST(PostgresCli, ServeWithPostgresDownExitsWithOneClearLine) {
  PostgresCluster cluster;
  ASSERT_FALSE(cluster.url().empty());
  const std::string url = WithPassword(cluster.NewDatabase("cli_down"));
  const std::string admin = Init(url);
  ASSERT_FALSE(admin.empty());
  ASSERT_TRUE(cluster.Stop());

  const ProcessResult down = Bifrost({"serve", "--database", url, "--listen", "127.0.0.1:0"});
  ExpectRefusal(down, 1, "postgresql://", "serve with PostgreSQL stopped");
  const ProcessResult keys = Bifrost({"keys", "status", "--database", url});
  ExpectRefusal(keys, 1, "postgresql://", "keys status with PostgreSQL stopped");

  // Back up: the same command serves.
  ASSERT_TRUE(cluster.Start());
  ServerProcess::Options options;
  options.secret_key = kKey;
  options.init = false;
  options.database_url = url;
  ServerProcess server(options);
  ASSERT_FALSE(server.address().empty());
  Api api(server.address());
  EXPECT_EQ(api.Call("GET", "/api/v1/whoami", admin).status, 200);
}

TEST(PostgresCli, ReadinessAndErrorsFollowTheDatabase) {
  PostgresCluster cluster;
  ASSERT_FALSE(cluster.url().empty());
  const std::string url = WithPassword(cluster.NewDatabase("cli_ready"));
  const std::string admin = Init(url);
  ASSERT_FALSE(admin.empty());
  ServerProcess::Options options;
  options.secret_key = kKey;
  options.init = false;
  options.database_url = url;
  ServerProcess server(options);
  ASSERT_FALSE(server.address().empty());
  {
    Api api(server.address());
    EXPECT_EQ(api.Call("GET", "/readyz", "").status, 200);
    EXPECT_EQ(api.Call("GET", "/api/v1/orgs", admin).status, 200);
  }

  ASSERT_TRUE(cluster.Stop());
  // Not ready once the database is gone; requests that need it answer 503 with Retry-After
  // rather than hang (the client's own timeout would fail the test).
  EXPECT_TRUE(Eventually([&] {
    Api api(server.address());
    return api.Call("GET", "/readyz", "").status == 503;
  })) << "/readyz kept saying ready with the database stopped";
  {
    Api api(server.address());
    const Reply orgs = api.Call("GET", "/api/v1/orgs", admin);
    EXPECT_EQ(orgs.status, 503) << orgs.body;
    EXPECT_EQ(orgs.json_body["error"]["code"], "unavailable") << orgs.body;
    EXPECT_EQ(Header(orgs, "retry-after"), "1");
    const Reply ready = api.Call("GET", "/readyz", "");
    EXPECT_EQ(Header(ready, "retry-after"), "1");
  }

  ASSERT_TRUE(cluster.Start());
  // Ready again, and serving, without a restart of the server.
  EXPECT_TRUE(Eventually([&] {
    Api api(server.address());
    return api.Call("GET", "/readyz", "").status == 200;
  })) << "/readyz did not recover after the database came back";
  EXPECT_TRUE(Eventually([&] {
    Api api(server.address());
    return api.Call("GET", "/api/v1/orgs", admin).status == 200;
  }));
  EXPECT_EQ(server.Stop(), 0);
  ExpectNoCanary(server.Stderr(), "serve (log)");
}

TEST(PostgresCli, SeveralInitsAtOnceMakeOneInstallation) {
  const std::string plain = testing::NewPostgresDatabase("cli_race");
  ASSERT_FALSE(plain.empty());
  const std::string url = WithPassword(plain);
  constexpr int kRacers = 3;
  std::vector<ProcessResult> results(kRacers);
  std::vector<std::thread> threads;
  for (int i = 0; i < kRacers; ++i) {
    threads.emplace_back([&, i] {
      results[i] = Bifrost({"init", "--database", url, "--format", "json"});
    });
  }
  for (auto& t : threads) t.join();
  int won = 0;
  std::string admin;
  for (const auto& r : results) {
    ExpectNoCanary(r, "init");
    if (r.exit_code == 0) {
      ++won;
      admin = json::parse(r.out, nullptr, false)["token"].get<std::string>();
    } else {
      EXPECT_EQ(r.exit_code, 1) << r.err;
      EXPECT_NE(r.err.find("initialize"), std::string::npos) << r.err;
    }
  }
  EXPECT_EQ(won, 1);
  // One platform admin token, and an intact audit log.
  EXPECT_EQ(testing::RunSql(plain, "SELECT count(*) FROM tokens"), "1\n");
  EXPECT_EQ(Bifrost({"audit", "verify", "--database", url}).exit_code, 0);
}

TEST(PostgresCli, SeveralNodesStartAtOnceAndServeOneDatabase) {
  const std::string url = WithPassword(testing::NewPostgresDatabase("cli_nodes"));
  const std::string admin = Init(url);
  ASSERT_FALSE(admin.empty());
  constexpr int kNodes = 3;
  std::vector<std::unique_ptr<ServerProcess>> nodes(kNodes);
  std::vector<std::thread> threads;
  for (int i = 0; i < kNodes; ++i) {
    threads.emplace_back([&, i] {
      ServerProcess::Options options;
      options.secret_key = kKey;
      options.init = false;
      options.database_url = url;
      nodes[i] = std::make_unique<ServerProcess>(options);
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& node : nodes) ASSERT_FALSE(node->address().empty());

  // A change through one node is seen through every other.
  Api first(nodes[0]->address());
  const std::string org_id = CreateOrg(first, admin, "shared");
  ASSERT_FALSE(org_id.empty());
  SetConfig(first, admin, "/api/v1/orgs/" + org_id, "db_password", "secret", "hunter2-node");
  for (int i = 1; i < kNodes; ++i) {
    Api other(nodes[i]->address());
    EXPECT_EQ(other.Call("GET", "/readyz", "").status, 200);
    const Reply r =
        other.Call("GET", "/api/v1/orgs/" + org_id + "/configs/db_password/reveal", admin);
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json_body["value"], "hunter2-node");
  }
  for (auto& node : nodes) {
    EXPECT_EQ(node->Stop(), 0);
    ExpectNoCanary(node->Stderr(), "serve (log)");
  }
  EXPECT_EQ(Bifrost({"audit", "verify", "--database", url}).exit_code, 0);
}

}  // namespace
}  // namespace bifrost::e2e
