// The copy of `bifrost migrate` (migrate::CopyInstallation, migrate::CheckCopy) between two
// SQLite stores: the store interface is the same for PostgreSQL, which the end-to-end tests
// (tests/e2e/migrate_test.cc) use as the target. Also the command's usage errors through
// RunCli, which need no database.
#include "cli/migrate_command.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "audit/audit.h"
#include "barrier/barrier.h"
#include "cli/cli.h"
#include "config/config_service.h"
#include "crypto/key_derivation.h"
#include "crypto/mac.h"
#include "store/sqlite/sqlite_store.h"

namespace bifrost::cli {
namespace {

constexpr const char* kKey = "the master key of the installation to copy, 0123456";
constexpr const char* kOtherKey = "a master key this installation never saw, 98765432";
constexpr const char* kSecretText = "sk_live_UNIT_MIGRATE_CANARY";
// More rows than one page of the copy (500) in the paged tables.
constexpr int kExecutions = 1203;
constexpr int kAuditRecords = 1207;
constexpr std::int64_t kPrunedBelow = 101;

crypto::Keyring RingOf(const char* secret) {
  auto key = crypto::DeriveMasterKey(secret, "test");
  EXPECT_TRUE(key);
  auto ring = crypto::Keyring::Create(*key);
  EXPECT_TRUE(ring);
  return *ring;
}

std::string Uuid(int n) {
  char text[37];
  std::snprintf(text, sizeof(text), "6f1c2d3e-4b5a-4c6d-8e7f-%012d", n);
  return text;
}

std::int64_t CountOf(const std::vector<store::TableCount>& counts, std::string_view table) {
  for (const auto& count : counts) {
    if (count.table == table) return count.rows;
  }
  return -1;
}

class MigrateCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir_template = ::testing::TempDir() + "bifrost_migrate_XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template.data()), nullptr);
    dir_ = dir_template;
    auto source = store::SqliteStore::Open({.data_dir = dir_ + "/source", .clock = &clock_});
    ASSERT_TRUE(source) << source.error().ToString();
    source_ = std::move(*source);
    auto target = store::SqliteStore::Open({.data_dir = dir_ + "/target", .clock = &clock_});
    ASSERT_TRUE(target) << target.error().ToString();
    target_ = std::move(*target);
    ASSERT_NO_FATAL_FAILURE(Populate());
    auto barrier = barrier::Barrier::Open(RingOf(kKey), *source_, clock_, {.read_only = true});
    ASSERT_TRUE(barrier) << barrier.error().ToString();
    source_barrier_ = std::make_unique<barrier::Barrier>(std::move(*barrier));
  }

  void TearDown() override {
    source_barrier_.reset();
    source_.reset();
    target_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Some of everything, made the way the services make it.
  void Populate() {
    auto barrier = barrier::Barrier::Open(RingOf(kKey), *source_, clock_);
    ASSERT_TRUE(barrier) << barrier.error().ToString();
    config::ConfigService service(*source_, *barrier, clock_);
    for (const char* name : {"acme", "globex"}) {
      auto org = service.CreateOrganization(name);
      ASSERT_TRUE(org) << org.error().ToString();
      org_ids_.push_back(org->id);
      auto view = service.ForOrg(org->id);
      ASSERT_TRUE(view);
      for (const char* key : {"api_key", "db_password"}) {
        auto set = view->Set({.key = key,
                              .type = config::ConfigType::kSecret,
                              .value = crypto::SecureBuffer::From(std::string_view(kSecretText)),
                              .description = "a secret",
                              .actor = "tester",
                              .expected_version = std::nullopt});
        ASSERT_TRUE(set) << set.error().ToString();
      }
      for (int version = 0; version < 3; ++version) {
        clock_.AdvanceMicros(1000);
        auto set = view->Set({.key = "region",
                              .type = config::ConfigType::kString,
                              .value = crypto::SecureBuffer::From(std::string_view("eu-west")),
                              .description = "",
                              .actor = "tester",
                              .expected_version = std::nullopt});
        ASSERT_TRUE(set) << set.error().ToString();
      }
    }
    auto global = service.ForGlobal();
    auto set = global.Set({.key = "shared",
                           .type = config::ConfigType::kSecret,
                           .value = crypto::SecureBuffer::From(std::string_view(kSecretText)),
                           .description = "",
                           .actor = "tester",
                           .expected_version = std::nullopt});
    ASSERT_TRUE(set) << set.error().ToString();

    auto txn = source_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    store::Txn& t = **txn;
    const UnixMicros now = clock_.NowMicros();
    ASSERT_TRUE(t.InsertToken({.id = Uuid(1),
                               .name = "admin",
                               .org_id = std::nullopt,
                               .role = "platform-admin",
                               .hash = std::string(64, 'a'),
                               .created_at = now,
                               .created_by = "init",
                               .expires_at = std::nullopt,
                               .last_used_at = now + 5,
                               .revoked_at = std::nullopt}));
    ASSERT_TRUE(t.InsertToken({.id = Uuid(2),
                               .name = "old",
                               .org_id = org_ids_[0],
                               .role = "member",
                               .hash = std::string(64, 'b'),
                               .created_at = now,
                               .created_by = "admin",
                               .expires_at = now + 100,
                               .last_used_at = std::nullopt,
                               .revoked_at = now + 7}));
    ASSERT_TRUE(t.InsertUser({.id = Uuid(3),
                              .email = "ana@acme.example",
                              .org_id = org_ids_[0],
                              .role = "admin",
                              .password_hash = "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA",
                              .created_at = now,
                              .created_by = "admin",
                              .updated_at = now,
                              .disabled_at = std::nullopt,
                              .last_login_at = now + 9}));
    ASSERT_TRUE(t.InsertSession({.id = Uuid(4),
                                 .user_id = Uuid(3),
                                 .hash = std::string(64, 'c'),
                                 .created_at = now,
                                 .last_seen_at = now + 9,
                                 .expires_at = now + 1'000'000,
                                 .client_address = "192.0.2.1"}));
    auto job = t.InsertKeyJob({.id = 0,
                               .kind = "data",
                               .target = "*",
                               .actor = "operator",
                               .started_at = now,
                               .finished_at = now + 3});
    ASSERT_TRUE(job);
    job_ids_.push_back(*job);
    job = t.InsertKeyJob({.id = 0,
                          .kind = "master",
                          .target = "",
                          .actor = "operator",
                          .started_at = now + 4,
                          .finished_at = std::nullopt});
    ASSERT_TRUE(job);
    job_ids_.push_back(*job);
    for (int i = 0; i < kExecutions; ++i) {
      store::ExecutionRow row;
      row.id = Uuid(10'000 + i);
      row.workflow = "report";
      row.org_id = org_ids_[static_cast<std::size_t>(i % 2)];
      row.caller_id = Uuid(1);
      row.caller_name = "admin";
      row.status = i == 0 ? "running" : "success";
      row.parameters = "{}";
      if (i != 0) row.result = std::to_string(i);
      row.logs = "line\n";
      row.timeout_seconds = 60;
      row.created_at = now + i % 7;  // ties: paging goes by (created_at, id)
      row.started_at = row.created_at;
      if (i != 0) row.finished_at = row.created_at + 1;
      row.node_id = i == 0 ? Uuid(5) : "";
      ASSERT_TRUE(t.InsertExecution(row)) << i;
    }
    ASSERT_TRUE(
        t.UpsertNode({.id = Uuid(5), .name = "host:8420", .started_at = now, .heartbeat_at = now}));
    ASSERT_TRUE(t.RequestExecutionCancel(Uuid(10'000), "bob"));

    // An audit chain whose first kPrunedBelow - 1 records were pruned behind a checkpoint.
    auto audit_key = crypto::DeriveAuditKey(RingOf(kKey).primary());
    ASSERT_TRUE(audit_key);
    auto last = t.GetLastAudit();
    ASSERT_TRUE(last);
    std::string prev = last->has_value() ? (*last)->mac : std::string(audit::kGenesisMac);
    std::int64_t seq = last->has_value() ? (*last)->seq + 1 : 1;
    std::string mac_before_kept;
    for (int i = 0; i < kAuditRecords; ++i, ++seq) {
      audit::Event event{.action = "config.reveal",
                         .org_id = org_ids_[0],
                         .config_key = "api_key",
                         .actor_id = Uuid(1),
                         .actor_name = "admin",
                         .client_address = "127.0.0.1:1",
                         .request_id = "r",
                         .detail = ""};
      const store::AuditRow row = audit::MakeRow(event, seq, now + i, prev, *audit_key);
      ASSERT_TRUE(t.InsertAudit(row)) << seq;
      if (seq == kPrunedBelow - 1) mac_before_kept = row.mac;
      prev = row.mac;
    }
    store::AuditCheckpoint checkpoint{.first_seq = kPrunedBelow,
                                      .prev_mac = mac_before_kept,
                                      .created_at = now,
                                      .key_id = audit_key->id(),
                                      .mac = ""};
    checkpoint.mac = audit::CheckpointMac(*audit_key, checkpoint);
    ASSERT_TRUE(t.PruneAudit(checkpoint));
    ASSERT_TRUE(t.Commit());
  }

  std::vector<store::TableCount> Counts(store::Store& store) {
    auto txn = store.Begin(store::TxnMode::kRead);
    EXPECT_TRUE(txn);
    if (!txn) return {};
    auto counts = (*txn)->CountRows();
    EXPECT_TRUE(counts);
    return counts ? *counts : std::vector<store::TableCount>{};
  }

  bool TargetIsEmpty() {
    for (const auto& count : Counts(*target_)) {
      if (count.rows != 0) return false;
    }
    return true;
  }

  std::string dir_;
  FakeClock clock_;
  std::unique_ptr<store::SqliteStore> source_;
  std::unique_ptr<store::SqliteStore> target_;
  std::unique_ptr<barrier::Barrier> source_barrier_;
  std::vector<std::string> org_ids_;
  std::vector<std::int64_t> job_ids_;
};

TEST_F(MigrateCopyTest, CopiesEveryRowButNodesAndTheCopyChecksOut) {
  std::vector<migrate::TableProgress> progress;
  auto copied = migrate::CopyInstallation(
      *source_, *source_barrier_, *target_,
      [&](const migrate::TableProgress& step) { progress.push_back(step); });
  ASSERT_TRUE(copied) << copied.error().ToString();
  EXPECT_EQ(copied->secrets, 5);
  EXPECT_EQ(CountOf(copied->source, "executions"), kExecutions);
  EXPECT_EQ(CountOf(copied->source, "audit_log"), kAuditRecords - (kPrunedBelow - 1));
  EXPECT_EQ(CountOf(copied->source, "nodes"), 1);

  // Every table reported finished once, with its count; long ones along the way too.
  std::vector<std::string> finished;
  bool executions_midway = false;
  for (const auto& step : progress) {
    if (step.finished) {
      finished.push_back(step.table);
      EXPECT_EQ(step.done, CountOf(copied->source, step.table)) << step.table;
    } else if (step.table == "executions") {
      executions_midway = true;
    }
  }
  EXPECT_EQ(finished,
            (std::vector<std::string>{"organizations", "key_checks", "data_keys", "configs",
                                      "tokens", "key_jobs", "executions", "users", "sessions",
                                      "audit_log", "audit_checkpoint"}));
  EXPECT_TRUE(executions_midway);

  auto target_barrier = barrier::Barrier::Open(RingOf(kKey), *target_, clock_, {.read_only = true});
  ASSERT_TRUE(target_barrier) << target_barrier.error().ToString();
  auto check = migrate::CheckCopy(*copied, *target_, *target_barrier);
  ASSERT_TRUE(check) << check.error().ToString();
  EXPECT_TRUE(check->mismatches.empty()) << check->mismatches.front();
  EXPECT_EQ(check->secrets_opened, 5);
  EXPECT_TRUE(check->audit.ok) << check->audit.problem;
  EXPECT_TRUE(check->audit.checkpoint);
  EXPECT_EQ(check->audit.first_seq, kPrunedBelow);
  EXPECT_EQ(CountOf(check->target, "nodes"), 0);

  // Rows as they were, field by field where a copy could go wrong.
  auto from = source_->Begin(store::TxnMode::kRead);
  auto to = target_->Begin(store::TxnMode::kRead);
  ASSERT_TRUE(from && to);
  for (const std::string& org : org_ids_) {
    auto a = (*from)->ListConfigs(store::Scope::Org(org));
    auto b = (*to)->ListConfigs(store::Scope::Org(org));
    ASSERT_TRUE(a && b);
    ASSERT_EQ(a->size(), b->size());
    for (std::size_t i = 0; i < a->size(); ++i) {
      const auto& x = (*a)[i];
      const auto& y = (*b)[i];
      EXPECT_EQ(x.key, y.key);
      EXPECT_EQ(x.value, y.value);
      EXPECT_EQ(x.key_id, y.key_id);
      EXPECT_EQ(x.version, y.version) << x.key;
      EXPECT_EQ(x.created_at, y.created_at);
      EXPECT_EQ(x.updated_at, y.updated_at);
      EXPECT_EQ(x.updated_by, y.updated_by);
    }
  }
  auto region = (*to)->GetConfig(store::Scope::Org(org_ids_[0]), "region");
  ASSERT_TRUE(region && region->has_value());
  EXPECT_EQ((*region)->version, 3);
  auto token = (*to)->GetTokenById(Uuid(2));
  ASSERT_TRUE(token && token->has_value());
  EXPECT_EQ((*token)->revoked_at, std::optional<UnixMicros>(clock_.NowMicros() + 7));
  EXPECT_EQ((*token)->hash, std::string(64, 'b'));
  auto running = (*to)->GetExecution(Uuid(10'000));
  ASSERT_TRUE(running && running->has_value());
  EXPECT_EQ((*running)->status, "running");
  EXPECT_EQ((*running)->node_id, Uuid(5));
  EXPECT_EQ((*running)->cancel_requested_by, std::optional<std::string>("bob"));
  auto sessions = (*to)->ListSessions();
  ASSERT_TRUE(sessions);
  ASSERT_EQ(sessions->size(), 1u);
  EXPECT_EQ((*sessions)[0].client_address, "192.0.2.1");
  auto jobs = (*to)->ListKeyJobs();
  ASSERT_TRUE(jobs);
  ASSERT_EQ(jobs->size(), 2u);
  EXPECT_EQ((*jobs)[0].id, job_ids_[0]);
  EXPECT_EQ((*jobs)[1].id, job_ids_[1]);
  EXPECT_FALSE((*jobs)[1].finished_at.has_value());
  auto checkpoint = (*to)->GetAuditCheckpoint();
  ASSERT_TRUE(checkpoint && checkpoint->has_value());
  EXPECT_EQ((*checkpoint)->first_seq, kPrunedBelow);
}

TEST_F(MigrateCopyTest, ANonEmptyTargetIsRefusedAndKeptAsItWas) {
  {
    auto txn = target_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    ASSERT_TRUE((*txn)->InsertOrg({Uuid(99), "already-here", clock_.NowMicros()}));
    ASSERT_TRUE(
        (*txn)->UpsertNode({.id = Uuid(98), .name = "n", .started_at = 1, .heartbeat_at = 1}));
    ASSERT_TRUE((*txn)->Commit());
  }
  auto copied = migrate::CopyInstallation(*source_, *source_barrier_, *target_);
  ASSERT_FALSE(copied);
  EXPECT_EQ(copied.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(copied.error().message().find("organizations has 1 row"), std::string::npos)
      << copied.error().message();
  EXPECT_NE(copied.error().message().find("nodes has 1 row"), std::string::npos)
      << copied.error().message();
  EXPECT_NE(copied.error().message().find("a server is running"), std::string::npos)
      << copied.error().message();
  const auto counts = Counts(*target_);
  EXPECT_EQ(CountOf(counts, "organizations"), 1);
  EXPECT_EQ(CountOf(counts, "configs"), 0);
  EXPECT_EQ(CountOf(counts, "audit_log"), 0);
}

TEST_F(MigrateCopyTest, ASecretThatDoesNotOpenStopsTheCopyBeforeAnythingIsWritten) {
  // Acme's api_key envelope moved onto db_password: bound to another row, it fails.
  {
    auto txn = source_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    const store::Scope acme = store::Scope::Org(org_ids_[0]);
    auto api_key = (*txn)->GetConfig(acme, "api_key");
    auto db_password = (*txn)->GetConfig(acme, "db_password");
    ASSERT_TRUE(api_key && api_key->has_value() && db_password && db_password->has_value());
    store::ConfigRow moved = **db_password;
    moved.value = (*api_key)->value;
    moved.key_id = (*api_key)->key_id;
    ASSERT_TRUE((*txn)->UpdateConfig(moved, moved.version));
    ASSERT_TRUE((*txn)->Commit());
  }
  auto copied = migrate::CopyInstallation(*source_, *source_barrier_, *target_);
  ASSERT_FALSE(copied);
  EXPECT_EQ(copied.error().code(), ErrorCode::kFailedPrecondition);
  const std::string& message = copied.error().message();
  EXPECT_NE(message.find("'db_password'"), std::string::npos) << message;
  EXPECT_NE(message.find(org_ids_[0]), std::string::npos) << message;
  EXPECT_EQ(message.find(kSecretText), std::string::npos) << message;
  EXPECT_TRUE(TargetIsEmpty());
}

TEST_F(MigrateCopyTest, CheckFindsWhatTheCopyLacks) {
  auto copied = migrate::CopyInstallation(*source_, *source_barrier_, *target_);
  ASSERT_TRUE(copied) << copied.error().ToString();
  {
    auto txn = target_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    ASSERT_TRUE((*txn)->DeleteConfig(store::Scope::Org(org_ids_[1]), "region", std::nullopt));
    ASSERT_TRUE((*txn)->Commit());
  }
  auto target_barrier = barrier::Barrier::Open(RingOf(kKey), *target_, clock_, {.read_only = true});
  ASSERT_TRUE(target_barrier) << target_barrier.error().ToString();
  auto check = migrate::CheckCopy(*copied, *target_, *target_barrier);
  ASSERT_TRUE(check) << check.error().ToString();
  ASSERT_EQ(check->mismatches.size(), 1u);
  EXPECT_EQ(check->mismatches[0], "configs: 7 in the source, 6 in the target");

  // And a barrier with keys that fit neither: it does not even open.
  EXPECT_FALSE(barrier::Barrier::Open(RingOf(kOtherKey), *target_, clock_, {.read_only = true}));
}

// ---- The command's flags (no database needed) ----

struct Outcome {
  int exit_code = -1;
  std::string out;
  std::string err;
};

Outcome RunMigrateCli(std::vector<std::string> args) {
  args.insert(args.begin(), "bifrost");
  std::istringstream in;
  std::ostringstream out;
  std::ostringstream err;
  CliIo io;
  io.in = &in;
  io.out = &out;
  io.err = &err;
  io.getenv = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  Outcome outcome;
  outcome.exit_code = RunCli(args, io);
  outcome.out = out.str();
  outcome.err = err.str();
  return outcome;
}

TEST(MigrateCommandTest, UsageErrorsNameTheFlagAndNeverTheUrl) {
  ::unsetenv("BIFROST_DATABASE_URL");
  Outcome r = RunMigrateCli({"migrate", "--to", "postgresql://u:hunter2-canary@db/x"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--from-data"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("hunter2-canary"), std::string::npos) << r.err;

  r = RunMigrateCli({"migrate", "--from-data", "/nonexistent"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("BIFROST_DATABASE_URL"), std::string::npos) << r.err;

  r = RunMigrateCli(
      {"migrate", "--from-data", "/nonexistent", "--to", "/var/lib/bifrost-hunter2-canary"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("PostgreSQL URL"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("hunter2-canary"), std::string::npos) << r.err;

  r = RunMigrateCli(
      {"migrate", "--from-data", "/nonexistent", "--to", "postgresql://u:hunter2-canary@db/x"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("no database in /nonexistent"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("hunter2-canary"), std::string::npos) << r.err;

  r = RunMigrateCli({"migrate", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("EMPTY PostgreSQL database"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace bifrost::cli
