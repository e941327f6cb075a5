// `bifrost serve` and `bifrost init` as an operator meets them: start-up refusals with one
// clear line, readiness, TLS, dev mode, and a clean SIGTERM.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "tests/e2e/e2e_support.h"

namespace bifrost::e2e {
namespace {

using testing::BifrostBinary;
using testing::ProcessResult;
using testing::RunProcess;
using testing::TempDir;

const std::string kKey = "lifecycle-test-secret-key-0123456789abcd";

// `first`, then `rest`, concatenated (a command around a storage's arguments).
std::vector<std::string> Cat(std::vector<std::string> first, const std::vector<std::string>& rest) {
  first.insert(first.end(), rest.begin(), rest.end());
  return first;
}

// Runs a bifrost command that is expected to refuse to start: exit 1, one line on stderr.
std::string Refusal(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  std::vector<std::string> argv = {BifrostBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  const ProcessResult r = RunProcess(argv, "", env);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "not one line: " << r.err;
  EXPECT_TRUE(r.err.starts_with("bifrost: ")) << r.err;
  return r.err;
}

TEST(ServerLifecycle, InitOnceThenServeAndStopCleanly) {
  TempDir dir;
  const testing::Storage storage = testing::NewStorage(dir.path());
  const ProcessResult init = RunProcess(Cat({BifrostBinary(), "init"}, storage.Args()), "",
                                        {"BIFROST_SECRET_KEY=" + kKey});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  EXPECT_NE(init.out.find("bft_"), std::string::npos);
  const std::string db_before = testing::StorageFingerprint(storage);
  ASSERT_FALSE(db_before.empty());
  // A second init refuses and touches nothing.
  const std::string again = Refusal(Cat(Cat({"init"}, storage.Args()), {"--format", "json"}),
                                    {"BIFROST_SECRET_KEY=" + kKey});
  EXPECT_NE(again.find("already"), std::string::npos) << again;
  EXPECT_TRUE(testing::StorageFingerprint(storage) == db_before) << "init changed the database";
  // The database file is the owner's alone (PostgreSQL keeps its files itself).
  if (!storage.postgresql()) {
    struct stat st {};
    ASSERT_EQ(stat((storage.data_dir + "/bifrost.db").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
  }
}

TEST(ServerLifecycle, StartupRefusalsSayWhich) {
  TempDir dir;
  const testing::Storage storage = testing::NewStorage(dir.path());
  ASSERT_EQ(
      RunProcess(Cat({BifrostBinary(), "init"}, storage.Args()), "", {"BIFROST_SECRET_KEY=" + kKey})
          .exit_code,
      0);
  const std::vector<std::string> serve =
      Cat(Cat({"serve"}, storage.Args()), {"--listen", "127.0.0.1:0"});
  EXPECT_NE(Refusal(serve, {"BIFROST_SECRET_KEY="}).find("BIFROST_SECRET_KEY is not set"),
            std::string::npos);
  EXPECT_NE(Refusal(serve, {"BIFROST_SECRET_KEY=short"}).find("too short"), std::string::npos);
  EXPECT_NE(Refusal(serve, {"BIFROST_SECRET_KEY=another-key-entirely-0123456789abcdefgh"})
                .find("does not match this database"),
            std::string::npos);
  // The key from a file works the same way.
  const std::string key_file = dir.path() + "/key";
  {
    std::ofstream out(key_file);
    out << "another-key-entirely-0123456789abcdefgh\n";
  }
  chmod(key_file.c_str(), 0600);
  EXPECT_NE(Refusal(serve, {"BIFROST_SECRET_KEY=", "BIFROST_SECRET_KEY_FILE=" + key_file})
                .find("does not match this database"),
            std::string::npos);
  // Serving a database that was never initialized (a directory without one, an empty
  // PostgreSQL database).
  const testing::Storage empty = testing::NewStorage(dir.path() + "/empty");
  EXPECT_NE(Refusal(Cat(Cat({"serve"}, empty.Args()), {"--listen", "127.0.0.1:0"}),
                    {"BIFROST_SECRET_KEY=" + kKey})
                .find("bifrost init"),
            std::string::npos);
  // Plain HTTP on a non-loopback address needs --insecure-no-tls.
  EXPECT_NE(Refusal(Cat(Cat({"serve"}, storage.Args()), {"--listen", "0.0.0.0:0"}),
                    {"BIFROST_SECRET_KEY=" + kKey})
                .find("--insecure-no-tls"),
            std::string::npos);
}

TEST(ServerLifecycle, ReadinessAndKeyFromFile) {
  TempDir keydir;
  const std::string key_file = keydir.path() + "/key";
  {
    std::ofstream out(key_file);
    out << "lifecycle-file-secret-key-0123456789abcd\n";  // the trailing newline is not part of it
  }
  chmod(key_file.c_str(), 0600);
  // `init` gets the key from the environment, `serve` from the file: both must derive the same key.
  testing::ServerProcess server({.secret_key = "lifecycle-file-secret-key-0123456789abcd",
                                 .extra_args = {},
                                 .extra_env = {"BIFROST_SECRET_KEY_FILE=" + key_file},
                                 .init = true});
  ASSERT_FALSE(server.address().empty());
  Api api(server.address());
  EXPECT_EQ(api.Call("GET", "/healthz", "").status, 200);
  const Reply ready = api.Call("GET", "/readyz", "");
  EXPECT_EQ(ready.status, 200) << ready.body;
  EXPECT_EQ(server.Stop(), 0);
  EXPECT_NE(server.Stdout().find("listening on http://127.0.0.1:"), std::string::npos);
}

TEST(ServerLifecycle, Tls) {
  TempDir dir;
  const std::string cert = dir.path() + "/cert.pem";
  const std::string key = dir.path() + "/key.pem";
  const ProcessResult gen =
      RunProcess({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                  "-out", cert, "-subj", "/CN=localhost", "-addext",
                  "subjectAltName=DNS:localhost,IP:127.0.0.1", "-days", "1"});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  testing::ServerProcess server({.secret_key = kKey,
                                 .extra_args = {"--tls-cert", cert, "--tls-key", key},
                                 .extra_env = {},
                                 .init = true});
  ASSERT_TRUE(server.address().starts_with("https://127.0.0.1:")) << server.address();
  auto client = client::HttpClient::Create(
      {.address = server.address(), .ca_file = cert, .timeout_ms = 10'000});
  ASSERT_TRUE(client);
  auto reply = (*client)->Send("GET", "/api/v1/whoami", std::nullopt, server.admin_token());
  ASSERT_TRUE(reply) << reply.error().ToString();
  EXPECT_EQ(reply->status, 200) << reply->body;
  // The CLI over HTTPS, trusting the certificate.
  const ProcessResult cli = server.Cli({"org", "create", "Secure Org", "--format", "json"},
                                       server.admin_token(), "", {"BIFROST_CACERT=" + cert});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  // Without trusting it, the client refuses.
  const ProcessResult untrusted = server.Cli({"org", "list"}, server.admin_token());
  EXPECT_EQ(untrusted.exit_code, 1) << untrusted.out;
  EXPECT_EQ(server.Stop(), 0);
}

TEST(ServerLifecycle, DevModeGeneratesAKeyOnceAndPrintsAnAdminToken) {
  TempDir dir;
  if (testing::TestBackend() == "postgresql") {
    // --dev keeps its key and its database in a data directory (SQLite): with a PostgreSQL
    // database it is a usage error (exit 2), in one line that names both flags.
    const testing::Storage storage = testing::NewStorage(dir.path());
    const ProcessResult r = RunProcess(
        Cat(Cat({BifrostBinary(), "serve", "--dev"}, storage.Args()), {"--listen", "127.0.0.1:0"}),
        "", {"BIFROST_SECRET_KEY="});
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "not one line: " << r.err;
    EXPECT_TRUE(r.err.starts_with("bifrost: ")) << r.err;
    EXPECT_NE(r.err.find("--dev"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("--database"), std::string::npos) << r.err;
    return;
  }
  const testing::ServerProcess::Options dev = {.secret_key = "",
                                               .extra_args = {"--dev"},
                                               .extra_env = {"BIFROST_SECRET_KEY="},
                                               .init = false,
                                               .data_dir = dir.path() + "/dev"};
  std::string token;
  std::string key_file;
  {
    testing::ServerProcess first(dev);
    ASSERT_FALSE(first.address().empty()) << first.Stderr();
    const std::string out = first.Stdout();
    const auto pos = out.find("admin token: bft_");
    ASSERT_NE(pos, std::string::npos) << out;
    token = out.substr(pos + 13, 47);
    EXPECT_NE(first.Stderr().find("WARNING"), std::string::npos);
    Api api(first.address());
    EXPECT_EQ(api.Call("GET", "/api/v1/whoami", token).status, 200);
    SetConfig(api, token, "/api/v1/global", "kept", "secret", "survives-a-restart");
    struct stat st {};
    ASSERT_EQ(stat((first.data_dir() + "/secret-key").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    key_file = testing::ReadFileOrEmpty(first.data_dir() + "/secret-key");
    EXPECT_EQ(first.Stop(), 0);
  }
  // The second start reuses the key (the old secret still decrypts), keeps the token valid
  // and prints no new token.
  testing::ServerProcess second(dev);
  ASSERT_FALSE(second.address().empty()) << second.Stderr();
  EXPECT_EQ(second.Stdout().find("bft_"), std::string::npos) << second.Stdout();
  EXPECT_EQ(testing::ReadFileOrEmpty(second.data_dir() + "/secret-key"), key_file);
  Api api(second.address());
  const Reply kept = api.Call("GET", "/api/v1/global/configs/kept/reveal", token);
  EXPECT_EQ(kept.status, 200) << kept.body;
  EXPECT_EQ(kept.json_body["value"], "survives-a-restart");
  EXPECT_EQ(second.Stop(), 0);
}

}  // namespace
}  // namespace bifrost::e2e
