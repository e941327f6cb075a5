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
#include "keys/keys.h"
#include "store/sqlite/sqlite_store.h"

namespace bifrost::cli {

// The table output of a data rotation (keys_command.cc).
std::string RenderDataRotation(const keys::DataRotationReport& report, bool ansi);

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

  // An unfinished job, as a run killed outright leaves it, started when the fixture's
  // organizations were made.
  std::int64_t InsertJob(const std::string& kind, const std::string& target) {
    FakeClock clock;
    auto store = store::SqliteStore::Open({.data_dir = data(), .clock = &clock});
    EXPECT_TRUE(store) << store.error().ToString();
    auto txn = (*store)->Begin(store::TxnMode::kWrite);
    EXPECT_TRUE(txn);
    auto id = (*txn)->InsertKeyJob({.id = 0,
                                    .kind = kind,
                                    .target = target,
                                    .actor = "operator earlier (uid 2)",
                                    .started_at = clock.NowMicros(),
                                    .finished_at = std::nullopt});
    EXPECT_TRUE(id) << id.error().ToString();
    EXPECT_TRUE((*txn)->Commit());
    return id ? *id : 0;
  }

  std::vector<store::KeyJobRow> UnfinishedJobs() {
    FakeClock clock;
    auto store = store::SqliteStore::Open({.data_dir = data(), .clock = &clock});
    EXPECT_TRUE(store) << store.error().ToString();
    auto txn = (*store)->Begin(store::TxnMode::kRead);
    EXPECT_TRUE(txn);
    auto jobs = (*txn)->ListUnfinishedKeyJobs();
    EXPECT_TRUE(jobs);
    return jobs ? *jobs : std::vector<store::KeyJobRow>{};
  }

  std::string OrgId(const std::string& name) {
    FakeClock clock;
    auto store = store::SqliteStore::Open({.data_dir = data(), .clock = &clock});
    EXPECT_TRUE(store) << store.error().ToString();
    auto txn = (*store)->Begin(store::TxnMode::kRead);
    EXPECT_TRUE(txn);
    auto org = (*txn)->GetOrgByName(name);
    EXPECT_TRUE(org && *org);
    return org && *org ? (*org)->id : "";
  }

  void DeleteOrg(const std::string& id) {
    FakeClock clock;
    auto store = store::SqliteStore::Open({.data_dir = data(), .clock = &clock});
    ASSERT_TRUE(store) << store.error().ToString();
    auto barrier = barrier::Barrier::Open(RingOf(kKeyA), **store, clock);
    ASSERT_TRUE(barrier) << barrier.error().ToString();
    config::ConfigService service(**store, *barrier, clock);
    ASSERT_TRUE(service.DeleteOrganization(id));
  }

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
  EXPECT_TRUE(report["resumed_job"].is_null());
  EXPECT_TRUE(report["closed_jobs"].empty());
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

TEST_F(KeysCommandTest, AResumedRunSaysSoAndNamesWhatItSkipped) {
  // A run of every scope that rotated both organizations and was killed before it closed
  // its job (their keys were made when it started).
  const std::int64_t job = InsertJob("data", "*");
  ::setenv("BIFROST_SECRET_KEY", kKeyA, 1);
  const Outcome outcome = Run({"keys", "rotate", "--data", data(), "--all"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_NE(outcome.out.find("Resumed the unfinished run started at 2023-11-14T22:13:20.000000Z "
                             "by operator earlier (uid 2) (job " +
                             std::to_string(job) + "); add --restart for a fresh run instead.\n"),
            std::string::npos)
      << outcome.out;
  EXPECT_NE(outcome.out.find(" the resumed run had already rotated: "), std::string::npos)
      << outcome.out;
  EXPECT_NE(outcome.out.find("acme, globex.\n"), std::string::npos) << outcome.out;
  EXPECT_TRUE(UnfinishedJobs().empty());

  // Again: now the global scope too has a key made after the (inserted) run started.
  const std::int64_t second = InsertJob("data", "*");
  ::setenv("BIFROST_SECRET_KEY", kKeyA, 1);
  const Outcome as_json = Run({"keys", "rotate", "--data", data(), "--all", "--format", "json"});
  ASSERT_EQ(as_json.exit_code, 0) << as_json.err;
  const json report = json::parse(as_json.out);
  EXPECT_EQ(report["resumed_job"], (json{{"id", second},
                                         {"started_at", "2023-11-14T22:13:20.000000Z"},
                                         {"actor", "operator earlier (uid 2)"}}));
  std::vector<std::string> skipped;
  for (const auto& scope : report["skipped"]) {
    EXPECT_EQ(scope["reason"], "rotated_by_resumed_run");
    EXPECT_EQ(scope["scope"], skipped.empty() ? "global" : "organization");
    EXPECT_EQ(scope["org_id"].is_null(), skipped.empty());
    skipped.push_back(scope["name"].get<std::string>());
  }
  EXPECT_EQ(skipped, (std::vector<std::string>{"global", "acme", "globex"}));
  EXPECT_TRUE(report["scopes"].empty());
  EXPECT_EQ(report["resealed"], 0);
  EXPECT_TRUE(report["closed_jobs"].empty());
  EXPECT_TRUE(UnfinishedJobs().empty());
}

TEST_F(KeysCommandTest, RestartClosesTheUnfinishedRunAndRotatesEveryScope) {
  const std::int64_t job = InsertJob("data", "*");
  ::setenv("BIFROST_SECRET_KEY", kKeyA, 1);
  const Outcome outcome =
      Run({"keys", "rotate", "--data", data(), "--all", "--restart", "--format", "json"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  const json report = json::parse(outcome.out);
  EXPECT_TRUE(report["resumed_job"].is_null());
  EXPECT_TRUE(report["skipped"].empty());
  ASSERT_EQ(report["scopes"].size(), 3u);
  EXPECT_EQ(report["resealed"], 6);
  ASSERT_EQ(report["closed_jobs"].size(), 1u);
  EXPECT_EQ(report["closed_jobs"][0], (json{{"id", job},
                                            {"kind", "data"},
                                            {"target", "*"},
                                            {"actor", "operator earlier (uid 2)"},
                                            {"started_at", "2023-11-14T22:13:20.000000Z"},
                                            {"reason", "restart"}}));
  EXPECT_TRUE(UnfinishedJobs().empty());

  InsertJob("data", OrgId("acme"));
  ::setenv("BIFROST_SECRET_KEY", kKeyA, 1);
  const Outcome table = Run({"keys", "rotate", "--data", data(), "--org", "acme", "--restart"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_TRUE(
      table.out.starts_with("Closed the unfinished run started at "
                            "2023-11-14T22:13:20.000000Z by operator earlier (uid 2) "
                            "(job "))
      << table.out;
  EXPECT_NE(table.out.find("(--restart): this is a fresh run.\n"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("Re-encrypted 3 values in 1 scope."), std::string::npos) << table.out;
  EXPECT_EQ(table.out.find("Resumed"), std::string::npos) << table.out;
}

TEST_F(KeysCommandTest, ARunOfADeletedOrganizationIsLeftOutThenClosed) {
  const std::string acme = OrgId("acme");
  const std::int64_t job = InsertJob("data", acme);
  DeleteOrg(acme);

  // Status only reads: it leaves the run out, and it stays in the database.
  ::setenv("BIFROST_SECRET_KEY", kKeyA, 1);
  const Outcome status = Run({"keys", "status", "--data", data(), "--format", "json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_TRUE(json::parse(status.out)["unfinished_jobs"].empty()) << status.out;
  ::setenv("BIFROST_SECRET_KEY", kKeyA, 1);
  const Outcome table = Run({"keys", "status", "--data", data()});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table.out.find("Runs not finished"), std::string::npos) << table.out;
  EXPECT_EQ(UnfinishedJobs().size(), 1u);

  // The next rotation, of any kind, closes it.
  ::setenv("BIFROST_SECRET_KEY", kKeyA, 1);
  const Outcome rotated = Run({"keys", "rotate", "--data", data(), "--format", "json"});
  ASSERT_EQ(rotated.exit_code, 0) << rotated.err;
  const json report = json::parse(rotated.out);
  EXPECT_TRUE(report["resumed_job"].is_null());
  ASSERT_EQ(report["closed_jobs"].size(), 1u);
  EXPECT_EQ(report["closed_jobs"][0]["id"], job);
  EXPECT_EQ(report["closed_jobs"][0]["target"], acme);
  EXPECT_EQ(report["closed_jobs"][0]["reason"], "organization_deleted");
  EXPECT_TRUE(UnfinishedJobs().empty());
}

TEST_F(KeysCommandTest, AMasterRunTowardsAnotherKeyIsNotResumed) {
  // A master rotation to key A was killed; now the rotation is to key B.
  const std::string key_a = RingOf(kKeyA).primary().id();
  const std::int64_t job = InsertJob("master", key_a);
  ::setenv("BIFROST_SECRET_KEY", kKeyB, 1);
  ::setenv("BIFROST_SECRET_KEY_PREVIOUS", kKeyA, 1);
  const Outcome outcome = Run({"keys", "rotate", "--data", data()});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_EQ(outcome.out.find("Resumed"), std::string::npos) << outcome.out;
  EXPECT_TRUE(outcome.out.starts_with("Closed the unfinished master rotation to key " + key_a +
                                      " started at 2023-11-14T22:13:20.000000Z by operator "
                                      "earlier (uid 2) (job " +
                                      std::to_string(job) +
                                      "): superseded by this rotation to key " +
                                      RingOf(kKeyB).primary().id() + ".\n"))
      << outcome.out;
  EXPECT_TRUE(UnfinishedJobs().empty());
}

TEST_F(KeysCommandTest, TheTableSaysWhenTheOrganizationWasDeletedDuringTheRotation) {
  keys::DataRotationReport report;
  report.skipped.push_back({.scope = store::Scope::Org("0b7f6f4e-0000-4000-8000-000000000001"),
                            .label = "acme",
                            .reason = keys::SkipReason::kOrganizationDeleted});
  EXPECT_EQ(RenderDataRotation(report, false),
            "Organization acme was deleted during the rotation: its keys and values are gone "
            "with it, so there is nothing left to rotate.\n");

  // In a run of several scopes, it is one line after the table.
  keys::ScopeRotation rotated;
  rotated.label = "global";
  rotated.new_key = "00112233445566ff";
  report.scopes.push_back(rotated);
  const std::string text = RenderDataRotation(report, false);
  EXPECT_NE(text.find("Re-encrypted 0 values in 1 scope.\nSkipped 1 organization deleted during "
                      "the rotation (their keys and values are gone with them): acme.\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("Nothing was left"), std::string::npos) << text;

  // Many skipped scopes: the first names, then a count.
  keys::DataRotationReport many;
  many.resumed_job = store::KeyJobRow{.id = 4,
                                      .kind = "data",
                                      .target = "*",
                                      .actor = "",
                                      .started_at = 0,
                                      .finished_at = std::nullopt};
  for (int i = 0; i < 12; ++i) {
    many.skipped.push_back({.scope = store::Scope::Org("id-" + std::to_string(i)),
                            .label = "org" + std::to_string(i),
                            .reason = keys::SkipReason::kRotatedByResumedRun});
  }
  const std::string capped = RenderDataRotation(many, false);
  EXPECT_EQ(capped,
            "Resumed the unfinished run started at 1970-01-01T00:00:00.000000Z (job 4); add "
            "--restart for a fresh run instead.\n"
            "Nothing was left to rotate.\n"
            "Skipped 12 scopes the resumed run had already rotated: org0, org1, org2, org3, "
            "org4, org5, org6, org7, org8, org9 and 2 more (--format json lists them all).\n");
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
  const Outcome rotate = Run({"keys", "rotate", "--help"});
  EXPECT_NE(rotate.out.find("--restart"), std::string::npos) << rotate.out;
  EXPECT_NE(rotate.out.find("resumed_job"), std::string::npos) << rotate.out;
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
