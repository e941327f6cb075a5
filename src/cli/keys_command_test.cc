// `bifrost keys status` and `bifrost keys rotate` through RunCli, on a real database in a
// temporary directory: flags and their errors, exit codes, the JSON documents, and the plain
// progress lines on a stderr that is not a terminal.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "barrier/barrier.h"
#include "cli/cli.h"
#include "config/config_service.h"
#include "crypto/key_derivation.h"
#include "store/sqlite/sqlite_store.h"

namespace bifrost::cli {
namespace {

using nlohmann::json;

constexpr const char* kKeyA = "the first master key of this installation, 0123";
constexpr const char* kKeyB = "the second master key, after a rotation, 456789";

struct Outcome {
  int exit_code = -1;
  std::string out;
  std::string err;
};

crypto::Keyring RingOf(const char* secret) {
  auto key = crypto::DeriveMasterKey(secret, "test");
  EXPECT_TRUE(key);
  auto ring = crypto::Keyring::Create(*key);
  EXPECT_TRUE(ring);
  return *ring;
}

class KeysCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir_template = ::testing::TempDir() + "bifrost_keys_cli_XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template.data()), nullptr);
    dir_ = dir_template;
    ClearKeys();
    ::unsetenv("BIFROST_DATA");
    // An installation with two organizations and a few secrets, made under key A.
    FakeClock clock;
    auto store = store::SqliteStore::Open({.data_dir = data(), .clock = &clock});
    ASSERT_TRUE(store) << store.error().ToString();
    auto barrier = barrier::Barrier::Open(RingOf(kKeyA), **store, clock);
    ASSERT_TRUE(barrier) << barrier.error().ToString();
    config::ConfigService service(**store, *barrier, clock);
    for (const char* name : {"acme", "globex"}) {
      auto org = service.CreateOrganization(name);
      ASSERT_TRUE(org) << org.error().ToString();
      auto view = service.ForOrg(org->id);
      ASSERT_TRUE(view);
      for (int i = 0; i < 3; ++i) {
        auto set = view->Set({.key = "secret_" + std::to_string(i),
                              .type = config::ConfigType::kSecret,
                              .value = crypto::SecureBuffer::From(std::string_view("s3cr3t")),
                              .description = "",
                              .actor = "tester",
                              .expected_version = std::nullopt});
        ASSERT_TRUE(set) << set.error().ToString();
      }
    }
  }
  void TearDown() override {
    ClearKeys();
    ::unsetenv("BIFROST_DATA");
    std::filesystem::remove_all(dir_);
  }

  static void ClearKeys() {
    for (const char* name :
         {"BIFROST_SECRET_KEY", "BIFROST_SECRET_KEY_FILE", "BIFROST_SECRET_KEY_PREVIOUS",
          "BIFROST_SECRET_KEY_PREVIOUS_FILE", "BIFROST_TESTING_CRASH_AT"}) {
      ::unsetenv(name);
    }
  }

  std::string data() const { return dir_ + "/data"; }

  Outcome Run(std::vector<std::string> args) {
    args.insert(args.begin(), "bifrost");
    std::istringstream in;
    std::ostringstream out;
    std::ostringstream err;
    CliIo io;
    io.in = &in;
    io.out = &out;
    io.err = &err;
    io.getenv = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
    io.read_hidden_line = [](std::string_view) -> std::optional<std::string> {
      return std::nullopt;
    };
    Outcome outcome;
    outcome.exit_code = RunCli(args, io);
    outcome.out = out.str();
    outcome.err = err.str();
    return outcome;
  }

  std::string dir_;
};

TEST_F(KeysCommandTest, StatusAsJson) {
  ::setenv("BIFROST_SECRET_KEY", kKeyA, 1);
  const Outcome outcome = Run({"keys", "status", "--data", data(), "--format", "json"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_EQ(outcome.err, "");  // status reports no progress
  EXPECT_EQ(std::getenv("BIFROST_SECRET_KEY"), nullptr);
  const json status = json::parse(outcome.out);
  EXPECT_EQ(status["organizations"], 2);
  EXPECT_EQ(status["data_keys"], 2);
  EXPECT_EQ(status["sealed_values"], 6);
  EXPECT_EQ(status["previous_keys_unused"], true);
  ASSERT_EQ(status["master_keys"].size(), 1u);
  EXPECT_EQ(status["master_keys"][0]["role"], "primary");
  EXPECT_EQ(status["master_keys"][0]["key_id"], status["primary_key_id"]);
  EXPECT_EQ(status["master_keys"][0]["data_keys"], 2);
  EXPECT_EQ(status["master_keys"][0]["direct_values"], 0);
  EXPECT_EQ(status["master_keys"][0]["primary"], true);
  EXPECT_EQ(status["master_keys"][0]["configured"], true);
  EXPECT_TRUE(status["unfinished"].is_array());
  EXPECT_TRUE(status["unfinished"].empty());
  EXPECT_TRUE(status["unfinished_jobs"].empty());
}

TEST_F(KeysCommandTest, MasterRotationThroughTheCli) {
  ::setenv("BIFROST_SECRET_KEY", kKeyB, 1);
  ::setenv("BIFROST_SECRET_KEY_PREVIOUS", kKeyA, 1);
  ::setenv("BIFROST_DATA", data().c_str(), 1);  // instead of --data
  const Outcome outcome = Run({"keys", "rotate", "--format", "json"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_EQ(std::getenv("BIFROST_SECRET_KEY_PREVIOUS"), nullptr);
  const json report = json::parse(outcome.out);
  EXPECT_EQ(report["rotation"], "master");
  EXPECT_EQ(report["rewrapped"], 2);
  EXPECT_EQ(report["previous_keys_unused"], true);
  EXPECT_TRUE(outcome.err.starts_with("keys rotate: re-wrapping data keys: 0/2 (0%)\n"))
      << outcome.err;
  EXPECT_NE(outcome.err.find("keys rotate: re-wrapping data keys: 2/2 (100%)"), std::string::npos)
      << outcome.err;

  // The old key can go: the new one alone opens everything.
  ::setenv("BIFROST_SECRET_KEY", kKeyB, 1);
  const Outcome status = Run({"keys", "status", "--data", data()});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("Only the current master key is in use."), std::string::npos)
      << status.out;
}

TEST_F(KeysCommandTest, DataRotationOfOneOrganization) {
  ::setenv("BIFROST_SECRET_KEY", kKeyA, 1);
  const Outcome outcome =
      Run({"keys", "rotate", "--data", data(), "--org", "acme", "--batch-size", "2"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_NE(outcome.out.find("organization acme"), std::string::npos) << outcome.out;
  EXPECT_NE(outcome.out.find("Re-encrypted 3 values in 1 scope."), std::string::npos)
      << outcome.out;
  EXPECT_EQ(outcome.out.find("globex"), std::string::npos) << outcome.out;
  EXPECT_NE(outcome.out.find(" new"), std::string::npos) << outcome.out;
  EXPECT_TRUE(
      outcome.err.starts_with("keys rotate: re-encrypting values, organization acme: 0/3 (0%)\n"))
      << outcome.err;
  EXPECT_EQ(outcome.err.find('\r'), std::string::npos);  // not a terminal: no bar

  ::setenv("BIFROST_SECRET_KEY", kKeyA, 1);
  const Outcome all = Run({"keys", "rotate", "--data", data(), "--all", "--format", "json"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  const json report = json::parse(all.out);
  EXPECT_EQ(report["rotation"], "data");
  EXPECT_EQ(report["resealed"], 6);
  ASSERT_EQ(report["scopes"].size(), 3u);  // the global scope (no values) and both orgs
  EXPECT_EQ(report["scopes"][0]["scope"], "global");
  EXPECT_TRUE(report["scopes"][0]["org_id"].is_null());
  EXPECT_EQ(report["scopes"][1]["name"], "acme");
  EXPECT_EQ(report["scopes"][1]["resealed"], 3);
  EXPECT_EQ(report["scopes"][1]["old_keys"].size(), 1u);
  EXPECT_EQ(report["scopes"][1]["resumed"], false);
}

TEST_F(KeysCommandTest, FailuresAndTheirExitCodes) {
  // --org and --all together: a usage error, before any key is needed.
  Outcome outcome = Run({"keys", "rotate", "--data", data(), "--org", "acme", "--all"});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_TRUE(outcome.err.starts_with("bifrost: --org excludes --all")) << outcome.err;

  outcome = Run({"keys", "status"});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_NE(outcome.err.find("--data"), std::string::npos) << outcome.err;

  outcome = Run({"keys", "status", "--data", data()});
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_EQ(outcome.err,
            "bifrost: BIFROST_SECRET_KEY is not set (or set BIFROST_SECRET_KEY_FILE to a file "
            "holding it)\n");

  ::setenv("BIFROST_SECRET_KEY", kKeyA, 1);
  outcome = Run({"keys", "status", "--data", dir_ + "/none"});
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_EQ(outcome.err, "bifrost: no database in " + dir_ +
                             "/none; run `bifrost init "
                             "--data " +
                             dir_ + "/none` first\n");

  ::setenv("BIFROST_SECRET_KEY", kKeyA, 1);
  outcome = Run({"keys", "rotate", "--data", data(), "--org", "initech"});
  EXPECT_EQ(outcome.exit_code, 3);
  EXPECT_EQ(outcome.err, "bifrost: organization 'initech' does not exist\n");

  ::setenv("BIFROST_SECRET_KEY", kKeyB, 1);  // not this database's key
  outcome = Run({"keys", "rotate", "--data", data()});
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_TRUE(outcome.err.starts_with("bifrost: ")) << outcome.err;
  EXPECT_EQ(std::count(outcome.err.begin(), outcome.err.end(), '\n'), 1) << outcome.err;

  ::setenv("BIFROST_SECRET_KEY", kKeyA, 1);
  ::setenv("BIFROST_SECRET_KEY_PREVIOUS", kKeyA, 1);
  outcome = Run({"keys", "status", "--data", data()});
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_EQ(outcome.err,
            "bifrost: BIFROST_SECRET_KEY_PREVIOUS line 1 is the current key "
            "(BIFROST_SECRET_KEY); list only older keys there\n");
  EXPECT_EQ(outcome.err.find(kKeyA), std::string::npos);
}

TEST_F(KeysCommandTest, HelpExplainsTheProcedure) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"keys", "--help"}, {"keys", "status", "--help"}, {"keys", "rotate", "--help"}}) {
    const Outcome outcome = Run(args);
    EXPECT_EQ(outcome.exit_code, 0);
    EXPECT_NE(outcome.out.find("Usage: bifrost keys"), std::string::npos) << outcome.out;
    EXPECT_NE(outcome.out.find("Examples:"), std::string::npos) << args.size();
  }
  const Outcome keys = Run({"keys", "--help"});
  for (const char* step : {"1. Generate", "2. Restart every server", "3. Run `bifrost keys rotate",
                           "4. Run `bifrost keys status", "BIFROST_SECRET_KEY_PREVIOUS"}) {
    EXPECT_NE(keys.out.find(step), std::string::npos) << step;
  }
  EXPECT_NE(Run({"--help"}).out.find("keys"), std::string::npos);
  EXPECT_NE(Run({"serve", "--help"}).out.find("BIFROST_SECRET_KEY_PREVIOUS"), std::string::npos);
}

}  // namespace
}  // namespace bifrost::cli
