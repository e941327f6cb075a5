// Key management on a real SQLite store: where master keys come from, master-key rotation,
// data-key rotation (with resume after an interruption and writers running meanwhile), the
// status report, and the local installation.
#include "keys/keys.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "audit/audit.h"
#include "barrier/barrier.h"
#include "config/config_service.h"
#include "crypto/key_derivation.h"
#include "crypto/mac.h"
#include "keys/installation.h"
#include "keys/key_source.h"
#include "store/sqlite/sqlite_store.h"
#include "tests/support/status_matchers.h"
#include "tests/support/subprocess.h"

namespace bifrost::keys {
namespace {

using config::ConfigType;
using config::ConfigWrite;
using store::Scope;

constexpr std::string_view kKeyA = "the first master key of this installation, 0123";
constexpr std::string_view kKeyB = "the second master key, after a rotation, 456789";
constexpr std::string_view kKeyC = "a third master key that the database never saw";

crypto::FernetKey Master(std::string_view secret) {
  auto key = crypto::DeriveMasterKey(secret, "test key");
  EXPECT_TRUE(key) << key.error().ToString();
  return *key;
}

crypto::Keyring Ring(std::string_view primary, std::vector<std::string_view> previous = {}) {
  std::vector<crypto::FernetKey> others;
  for (auto secret : previous) others.push_back(Master(secret));
  auto ring = crypto::Keyring::Create(Master(primary), std::move(others));
  EXPECT_TRUE(ring) << ring.error().ToString();
  return *ring;
}

ConfigWrite SecretWrite(const std::string& key, std::string_view value) {
  return {.key = key,
          .type = ConfigType::kSecret,
          .value = crypto::SecureBuffer::From(value),
          .description = "",
          .actor = "tester",
          .expected_version = std::nullopt};
}

ConfigWrite PlainWrite(const std::string& key, std::string_view value) {
  ConfigWrite write = SecretWrite(key, value);
  write.type = ConfigType::kString;
  return write;
}

// Clears every key variable, so that no test sees another's.
void ClearKeyEnvironment() {
  for (const char* name :
       {kSecretKeyEnv, kSecretKeyFileEnv, kPreviousKeyEnv, kPreviousKeyFileEnv}) {
    ::unsetenv(name);
  }
}

// One installation: store, barrier, audit log and config service over one data directory,
// reopened with another keyring as a restarted server would be.
class KeysTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(Ring(kKeyA)); }
  void TearDown() override { Close(); }

  void Close() {
    config_.reset();
    audit_.reset();
    barrier_.reset();
    store_.reset();
  }

  void Open(crypto::Keyring ring) {
    Close();
    auto store = store::SqliteStore::Open({.data_dir = dir_.path(), .clock = &clock_});
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
    auto audit_key = crypto::DeriveAuditKey(ring.primary());
    ASSERT_TRUE(audit_key);
    auto barrier = barrier::Barrier::Open(std::move(ring), *store_, clock_);
    ASSERT_TRUE(barrier) << barrier.error().ToString();
    barrier_ = std::make_unique<barrier::Barrier>(std::move(*barrier));
    auto audit = audit::AuditLog::Open(*store_, std::move(*audit_key), clock_, {});
    ASSERT_TRUE(audit) << audit.error().ToString();
    audit_ = std::move(*audit);
    config_ = std::make_unique<config::ConfigService>(*store_, *barrier_, clock_);
  }

  RotateOptions Options(std::size_t batch_size = 500) {
    RotateOptions options;
    options.batch_size = batch_size;
    options.actor = "operator tester (uid 1)";
    options.progress = [this](const Progress& progress) { progress_.push_back(progress); };
    return options;
  }

  std::string NewOrg(const std::string& name) {
    auto org = config_->CreateOrganization(name);
    EXPECT_TRUE(org) << org.error().ToString();
    return org ? org->id : "";
  }

  config::ScopeConfig View(const Scope& scope) {
    if (scope.is_global()) return config_->ForGlobal();
    auto view = config_->ForOrg(scope.org_id());
    EXPECT_TRUE(view) << view.error().ToString();
    return *view;
  }

  void Set(const Scope& scope, const std::string& key, const std::string& value) {
    auto written = View(scope).Set(SecretWrite(key, value));
    ASSERT_TRUE(written) << written.error().ToString();
    expected_[{std::string(scope.name()), key}] = value;
  }

  // Every value written through Set reads back as written.
  void ExpectEveryValue() {
    for (const auto& [where, value] : expected_) {
      const Scope scope = where.first == "global" ? Scope::Global() : Scope::Org(where.first);
      auto revealed = View(scope).Reveal(where.second);
      ASSERT_TRUE(revealed) << where.first << "/" << where.second << ": "
                            << revealed.error().ToString();
      EXPECT_EQ(revealed->value.view(), value) << where.first << "/" << where.second;
    }
  }

  std::vector<store::DataKeyRow> DataKeys() {
    auto txn = store_->Begin(store::TxnMode::kRead);
    EXPECT_TRUE(txn);
    auto rows = (*txn)->ListDataKeys("", 10'000);
    EXPECT_TRUE(rows) << rows.error().ToString();
    return rows ? *rows : std::vector<store::DataKeyRow>{};
  }

  std::vector<store::DataKeyRow> ScopeKeys(const Scope& scope) {
    auto txn = store_->Begin(store::TxnMode::kRead);
    EXPECT_TRUE(txn);
    auto rows = (*txn)->ListScopeDataKeys(scope);
    EXPECT_TRUE(rows) << rows.error().ToString();
    return rows ? *rows : std::vector<store::DataKeyRow>{};
  }

  std::vector<store::ConfigRow> NotSealedBy(const Scope& scope, const std::string& key_id) {
    auto txn = store_->Begin(store::TxnMode::kRead);
    EXPECT_TRUE(txn);
    auto rows = (*txn)->ListScopeConfigsNotSealedBy(scope, key_id, 10'000);
    EXPECT_TRUE(rows) << rows.error().ToString();
    return rows ? *rows : std::vector<store::ConfigRow>{};
  }

  std::vector<store::AuditRow> AuditRecords(std::string_view action) {
    auto txn = store_->Begin(store::TxnMode::kRead);
    EXPECT_TRUE(txn);
    store::AuditFilter filter;
    filter.action = std::string(action);
    filter.limit = 1000;
    auto rows = (*txn)->ListAudit(filter);
    EXPECT_TRUE(rows) << rows.error().ToString();
    return rows ? *rows : std::vector<store::AuditRow>{};
  }

  std::vector<store::KeyJobRow> UnfinishedJobs() {
    auto txn = store_->Begin(store::TxnMode::kRead);
    EXPECT_TRUE(txn);
    auto jobs = (*txn)->ListUnfinishedKeyJobs();
    EXPECT_TRUE(jobs) << jobs.error().ToString();
    return jobs ? *jobs : std::vector<store::KeyJobRow>{};
  }

  // An unfinished job, as a run killed outright leaves it.
  std::int64_t InsertJob(const std::string& kind, const std::string& target,
                         const std::string& actor) {
    auto txn = store_->Begin(store::TxnMode::kWrite);
    EXPECT_TRUE(txn);
    auto id = (*txn)->InsertKeyJob({.id = 0,
                                    .kind = kind,
                                    .target = target,
                                    .actor = actor,
                                    .started_at = clock_.NowMicros(),
                                    .finished_at = std::nullopt});
    EXPECT_TRUE(id) << id.error().ToString();
    EXPECT_TRUE((*txn)->Commit());
    return id ? *id : 0;
  }

  // Three organizations and the global scope, each with a few secrets and a plain value.
  std::vector<Scope> Populate(int secrets_per_scope = 4) {
    std::vector<Scope> scopes = {Scope::Global()};
    for (const char* name : {"acme", "globex", "initech"}) {
      scopes.push_back(Scope::Org(NewOrg(name)));
    }
    for (const auto& scope : scopes) {
      for (int i = 0; i < secrets_per_scope; ++i) {
        Set(scope, "secret_" + std::to_string(i),
            "value " + std::to_string(i) + " of " + std::string(scope.name()));
      }
      auto plain = View(scope).Set(PlainWrite("region", "eu-west"));
      EXPECT_TRUE(plain) << plain.error().ToString();
    }
    return scopes;
  }

  // The first half of a data rotation, as a run killed after step (1) and a few batches
  // leaves it: the old active key retired, a new active one, `reseal` values re-sealed.
  std::string InterruptedRotation(const Scope& scope, std::size_t reseal) {
    std::optional<barrier::DataKey> fresh;
    {
      auto txn = store_->Begin(store::TxnMode::kWrite);
      EXPECT_TRUE(txn);
      auto keys = (*txn)->ListScopeDataKeys(scope);
      EXPECT_TRUE(keys && !keys->empty());
      EXPECT_TRUE((*txn)->SetDataKeyState(keys->front().id, "retired"));
      auto created = barrier_->CreateDataKey(**txn, scope, "active");
      EXPECT_TRUE(created) << created.error().ToString();
      fresh = std::move(*created);
      EXPECT_TRUE((*txn)->Commit());
    }
    auto txn = store_->Begin(store::TxnMode::kWrite);
    EXPECT_TRUE(txn);
    auto rows = (*txn)->ListScopeConfigsNotSealedBy(scope, fresh->id, reseal);
    EXPECT_TRUE(rows);
    for (const auto& row : *rows) {
      auto plaintext = barrier_->Open(**txn, scope, row.key, row.value);
      EXPECT_TRUE(plaintext) << plaintext.error().ToString();
      auto sealed = barrier_->SealWith(*fresh, scope, row.key, plaintext->view());
      EXPECT_TRUE(sealed);
      EXPECT_TRUE(
          (*txn)->ResealConfig(scope, row.key, row.value, sealed->envelope, sealed->key_id));
    }
    EXPECT_TRUE((*txn)->Commit());
    return fresh->id;
  }

  testing::TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<barrier::Barrier> barrier_;
  std::unique_ptr<audit::AuditLog> audit_;
  std::unique_ptr<config::ConfigService> config_;
  std::vector<Progress> progress_;
  std::map<std::pair<std::string, std::string>, std::string> expected_;
};

// ---- master rotation ----

TEST_F(KeysTest, MasterRotationRewrapsEveryDataKeyAndIsIdempotent) {
  Populate();
  const auto records_before = AuditRecords(audit::actions::kKeysRotateMasterStart).size();
  ASSERT_EQ(records_before, 0u);
  const std::string old_id = Master(kKeyA).id();
  const std::string new_id = Master(kKeyB).id();
  Open(Ring(kKeyB, {kKeyA}));  // step 2: restarted with the new key and the old one

  ASSERT_OK_AND_ASSIGN(auto before, GetKeyStatus(*store_, *barrier_));
  EXPECT_FALSE(before.previous_keys_unused);
  ASSERT_GE(before.master_keys.size(), 2u);
  EXPECT_EQ(before.master_keys[1].key_id, old_id);
  EXPECT_EQ(before.master_keys[1].data_keys, 4);  // global and three organizations

  const auto data_keys_in_all = static_cast<std::int64_t>(DataKeys().size());
  ASSERT_OK_AND_ASSIGN(
      auto report, RotateMasterKey(*store_, *barrier_, *audit_, clock_, Options(/*batch_size=*/3)));
  EXPECT_EQ(report.primary_key_id, new_id);
  EXPECT_EQ(report.rewrapped, 4);
  EXPECT_EQ(report.total, static_cast<std::int64_t>(DataKeys().size()));
  for (const auto& row : DataKeys()) EXPECT_EQ(row.master_key_id, new_id) << row.id;
  ASSERT_FALSE(progress_.empty());
  EXPECT_EQ(progress_.back().phase, "re-wrapping data keys");
  EXPECT_EQ(progress_.back().done, 4);
  EXPECT_EQ(progress_.back().total, 4);
  EXPECT_TRUE(UnfinishedJobs().empty());

  ASSERT_OK_AND_ASSIGN(auto after, GetKeyStatus(*store_, *barrier_));
  EXPECT_TRUE(after.previous_keys_unused);
  EXPECT_EQ(after.master_keys[1].data_keys, 0);
  EXPECT_EQ(after.master_keys[0].data_keys, static_cast<std::int64_t>(DataKeys().size()));

  // Again: nothing left to do, and still a clean finish.
  ASSERT_OK_AND_ASSIGN(auto again, RotateMasterKey(*store_, *barrier_, *audit_, clock_, Options()));
  EXPECT_EQ(again.rewrapped, 0);
  EXPECT_TRUE(UnfinishedJobs().empty());
  ExpectEveryValue();

  const auto starts = AuditRecords(audit::actions::kKeysRotateMasterStart);
  const auto done = AuditRecords(audit::actions::kKeysRotateMaster);
  ASSERT_EQ(starts.size(), 2u);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(starts.back().detail, "to master key " + new_id + "; " +
                                      std::to_string(data_keys_in_all) +
                                      " data keys, 4 wrapped by other keys")
      << "the oldest start record";
  EXPECT_EQ(done.back().detail,
            "re-wrapped 4 data keys under master key " + new_id + "; 0 remain under other keys");
  EXPECT_EQ(done.back().actor_name, "operator tester (uid 1)");
  EXPECT_EQ(done.back().outcome, "success");
}

TEST_F(KeysTest, AfterMasterRotationTheOldKeyIsNoLongerNeeded) {
  Populate();
  audit::Event event;
  event.action = std::string(audit::actions::kOrgCreate);
  event.actor_name = "a record chained under the old master key's audit key";
  ASSERT_OK(audit_->Record(std::move(event)));
  Open(Ring(kKeyB, {kKeyA}));
  ASSERT_OK(RotateMasterKey(*store_, *barrier_, *audit_, clock_, Options()));

  Open(Ring(kKeyB));  // step 4: the old key removed
  ExpectEveryValue();
  ASSERT_OK_AND_ASSIGN(auto status, GetKeyStatus(*store_, *barrier_));
  EXPECT_TRUE(status.previous_keys_unused);
  ASSERT_EQ(status.master_keys.size(), 1u);

  // The audit chain still verifies, records made under the old key included.
  auto txn = store_->Begin(store::TxnMode::kRead);
  ASSERT_TRUE(txn);
  ASSERT_OK_AND_ASSIGN(auto audit_keys, barrier_->AuditKeys(**txn));
  txn->reset();
  ASSERT_OK_AND_ASSIGN(auto verified, audit::Verify(*store_, audit_keys, {}));
  EXPECT_TRUE(verified.ok) << verified.problem;
  EXPECT_GT(verified.records, 0);
}

TEST_F(KeysTest, WithoutRotationTheOldKeyIsStillNeeded) {
  Populate();
  Open(Ring(kKeyB, {kKeyA}));
  Close();
  auto store = store::SqliteStore::Open({.data_dir = dir_.path(), .clock = &clock_});
  ASSERT_TRUE(store);
  auto refused = barrier::Barrier::Open(Ring(kKeyB), **store, clock_);
  EXPECT_ERROR_CODE(refused, ErrorCode::kKeyMismatch);
  auto unknown = barrier::Barrier::Open(Ring(kKeyC), **store, clock_);
  EXPECT_ERROR_CODE(unknown, ErrorCode::kKeyMismatch);
}

// ---- data rotation ----

TEST_F(KeysTest, DataRotationOfOneOrganizationReSealsEveryValue) {
  const auto scopes = Populate(/*secrets_per_scope=*/7);
  const Scope acme = scopes[1];
  const std::string old_key = ScopeKeys(acme).front().id;
  const std::string global_key = ScopeKeys(Scope::Global()).front().id;
  std::map<std::string, std::int64_t> versions;
  {
    auto txn = store_->Begin(store::TxnMode::kRead);
    ASSERT_TRUE(txn);
    ASSERT_OK_AND_ASSIGN(auto rows, (*txn)->ListConfigs(acme));
    for (const auto& row : rows) versions[row.key] = row.version;
  }

  ASSERT_OK_AND_ASSIGN(auto report, RotateDataKeys(*store_, *barrier_, *audit_, clock_, acme,
                                                   Options(/*batch_size=*/3)));
  ASSERT_EQ(report.scopes.size(), 1u);
  const ScopeRotation& rotation = report.scopes.front();
  EXPECT_EQ(rotation.label, "acme");
  EXPECT_FALSE(rotation.resumed);
  EXPECT_NE(rotation.new_key, old_key);
  EXPECT_EQ(rotation.old_keys, std::vector<std::string>{old_key});
  EXPECT_EQ(rotation.resealed, 7);
  EXPECT_EQ(report.resealed, 7);

  // The old key is destroyed, every value is under the new one and reads as before, and a
  // re-encryption is not a change (versions kept).
  const auto keys = ScopeKeys(acme);
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys.front().id, rotation.new_key);
  EXPECT_EQ(keys.front().state, "active");
  EXPECT_TRUE(NotSealedBy(acme, rotation.new_key).empty());
  ExpectEveryValue();
  {
    auto txn = store_->Begin(store::TxnMode::kRead);
    ASSERT_TRUE(txn);
    ASSERT_OK_AND_ASSIGN(auto gone, (*txn)->GetDataKey(old_key));
    EXPECT_FALSE(gone.has_value());
    ASSERT_OK_AND_ASSIGN(auto rows, (*txn)->ListConfigs(acme));
    for (const auto& row : rows) EXPECT_EQ(row.version, versions[row.key]) << row.key;
  }
  // Other scopes are untouched.
  EXPECT_EQ(ScopeKeys(Scope::Global()).front().id, global_key);

  // Progress: per batch of 3, ending at 7 of 7.
  ASSERT_GE(progress_.size(), 4u);
  EXPECT_EQ(progress_.front().done, 0);
  EXPECT_EQ(progress_.back().phase, "re-encrypting values");
  EXPECT_EQ(progress_.back().scope, "organization acme");
  EXPECT_EQ(progress_.back().done, 7);
  EXPECT_EQ(progress_.back().total, 7);

  const auto records = AuditRecords(audit::actions::kKeysRotateData);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records.front().org_id, acme.org_id());
  EXPECT_EQ(records.front().detail, "new data key " + rotation.new_key +
                                        "; 7 values re-encrypted; retired key " + old_key +
                                        " destroyed");
  ASSERT_EQ(AuditRecords(audit::actions::kKeysRotateDataStart).size(), 1u);
  EXPECT_TRUE(UnfinishedJobs().empty());
}

TEST_F(KeysTest, DataRotationOfEveryScope) {
  const auto scopes = Populate();
  std::set<std::string> old_keys;
  for (const auto& scope : scopes) old_keys.insert(ScopeKeys(scope).front().id);

  ASSERT_OK_AND_ASSIGN(auto report, RotateDataKeys(*store_, *barrier_, *audit_, clock_,
                                                   std::nullopt, Options(/*batch_size=*/2)));
  ASSERT_EQ(report.scopes.size(), 4u);
  EXPECT_TRUE(report.scopes.front().scope.is_global());
  EXPECT_EQ(report.resealed, 16);
  for (const auto& scope : scopes) {
    const auto keys = ScopeKeys(scope);
    ASSERT_EQ(keys.size(), 1u) << scope.name();
    EXPECT_FALSE(old_keys.contains(keys.front().id)) << scope.name();
    EXPECT_TRUE(NotSealedBy(scope, keys.front().id).empty()) << scope.name();
  }
  ExpectEveryValue();
  EXPECT_EQ(AuditRecords(audit::actions::kKeysRotateData).size(), 4u);
  EXPECT_TRUE(UnfinishedJobs().empty());
}

TEST_F(KeysTest, DataRotationResumesAnInterruptedRotation) {
  const auto scopes = Populate(/*secrets_per_scope=*/6);
  const Scope acme = scopes[1];
  const std::string old_key = ScopeKeys(acme).front().id;
  const std::string fresh = InterruptedRotation(acme, /*reseal=*/2);
  ASSERT_EQ(NotSealedBy(acme, fresh).size(), 4u);
  ExpectEveryValue();  // half-way, every value is readable

  ASSERT_OK_AND_ASSIGN(auto status, GetKeyStatus(*store_, *barrier_));
  ASSERT_EQ(status.unfinished.size(), 1u);
  EXPECT_EQ(status.unfinished.front().scope, acme);
  EXPECT_EQ(status.unfinished.front().label, "acme");
  EXPECT_EQ(status.unfinished.front().active_key, fresh);
  EXPECT_EQ(status.unfinished.front().values_left, 4);

  ASSERT_OK_AND_ASSIGN(auto report, RotateDataKeys(*store_, *barrier_, *audit_, clock_, acme,
                                                   Options(/*batch_size=*/3)));
  ASSERT_EQ(report.scopes.size(), 1u);
  EXPECT_TRUE(report.scopes.front().resumed);
  EXPECT_EQ(report.scopes.front().new_key, fresh);  // no second new key
  EXPECT_EQ(report.scopes.front().old_keys, std::vector<std::string>{old_key});
  EXPECT_EQ(report.scopes.front().resealed, 4);
  EXPECT_EQ(progress_.front().total, 4);
  ASSERT_EQ(ScopeKeys(acme).size(), 1u);
  EXPECT_TRUE(NotSealedBy(acme, fresh).empty());
  ExpectEveryValue();
  ASSERT_OK_AND_ASSIGN(auto after, GetKeyStatus(*store_, *barrier_));
  EXPECT_TRUE(after.unfinished.empty());
}

TEST_F(KeysTest, ResumedRunOfEveryScopeSkipsTheScopesItFinished) {
  const auto scopes = Populate();
  // A run of every scope started, finished the global scope, was killed in acme and never
  // reached globex and initech.
  clock_.AdvanceMicros(1'000'000);  // after the keys Populate made
  {
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    ASSERT_OK((*txn)->InsertKeyJob({.id = 0,
                                    .kind = "data",
                                    .target = "*",
                                    .actor = "operator earlier (uid 2)",
                                    .started_at = clock_.NowMicros(),
                                    .finished_at = std::nullopt}));
    ASSERT_OK((*txn)->Commit());
  }
  clock_.AdvanceMicros(1'000'000);
  ASSERT_OK(RotateDataKeys(*store_, *barrier_, *audit_, clock_, Scope::Global(), Options()));
  const std::string global_key = ScopeKeys(Scope::Global()).front().id;
  const std::string acme_fresh = InterruptedRotation(scopes[1], 1);
  const std::string globex_old = ScopeKeys(scopes[2]).front().id;

  ASSERT_OK_AND_ASSIGN(
      auto report, RotateDataKeys(*store_, *barrier_, *audit_, clock_, std::nullopt, Options()));
  // The report says which run it resumed and what it skipped.
  ASSERT_TRUE(report.resumed_job.has_value());
  EXPECT_EQ(report.resumed_job->actor, "operator earlier (uid 2)");
  EXPECT_EQ(report.resumed_job->started_at, 1'700'000'000'000'000 + 1'000'000);
  EXPECT_EQ(report.resumed_job->target, "*");
  ASSERT_EQ(report.skipped.size(), 1u);
  EXPECT_TRUE(report.skipped.front().scope.is_global());
  EXPECT_EQ(report.skipped.front().label, "global");
  EXPECT_EQ(report.skipped.front().reason, SkipReason::kRotatedByResumedRun);
  EXPECT_EQ(SkipReasonName(report.skipped.front().reason), "rotated_by_resumed_run");
  EXPECT_TRUE(report.closed_jobs.empty());
  ASSERT_EQ(report.scopes.size(), 3u);  // not the global scope again
  EXPECT_EQ(report.scopes[0].scope, scopes[1]);
  EXPECT_TRUE(report.scopes[0].resumed);
  EXPECT_EQ(report.scopes[0].new_key, acme_fresh);
  EXPECT_EQ(report.scopes[1].scope, scopes[2]);
  EXPECT_FALSE(report.scopes[1].resumed);
  EXPECT_EQ(report.scopes[1].old_keys, std::vector<std::string>{globex_old});
  EXPECT_EQ(ScopeKeys(Scope::Global()).front().id, global_key);
  EXPECT_TRUE(UnfinishedJobs().empty());
  ExpectEveryValue();
  const auto starts = AuditRecords(audit::actions::kKeysRotateDataStart);
  ASSERT_FALSE(starts.empty());
  EXPECT_NE(starts.front().detail.find("resuming the run started by operator earlier (uid 2)"),
            std::string::npos)
      << starts.front().detail;
}

TEST_F(KeysTest, RestartClosesTheUnfinishedJobAndRotatesEveryScopeAgain) {
  const auto scopes = Populate();
  clock_.AdvanceMicros(1'000'000);
  const std::int64_t stale = InsertJob("data", "*", "operator earlier (uid 2)");
  clock_.AdvanceMicros(1'000'000);
  ASSERT_OK(RotateDataKeys(*store_, *barrier_, *audit_, clock_, Scope::Global(), Options()));
  const std::string global_key = ScopeKeys(Scope::Global()).front().id;
  const std::string acme_old = ScopeKeys(scopes[1]).front().id;
  const std::string acme_fresh = InterruptedRotation(scopes[1], 1);
  clock_.AdvanceMicros(1'000'000);

  RotateOptions options = Options();
  options.restart = true;
  ASSERT_OK_AND_ASSIGN(auto report,
                       RotateDataKeys(*store_, *barrier_, *audit_, clock_, std::nullopt, options));
  EXPECT_FALSE(report.resumed_job.has_value());
  EXPECT_TRUE(report.skipped.empty());
  ASSERT_EQ(report.closed_jobs.size(), 1u);
  EXPECT_EQ(report.closed_jobs.front().job.id, stale);
  EXPECT_EQ(report.closed_jobs.front().reason, JobCloseReason::kRestart);
  EXPECT_EQ(JobCloseReasonName(JobCloseReason::kRestart), "restart");
  ASSERT_EQ(report.scopes.size(), 4u);  // the global scope again too
  EXPECT_NE(ScopeKeys(Scope::Global()).front().id, global_key);
  // acme's half rotation belonged to the closed run: acme gets a key of this run.
  EXPECT_FALSE(report.scopes[1].resumed);
  EXPECT_NE(report.scopes[1].new_key, acme_fresh);
  EXPECT_EQ(
      std::set<std::string>(report.scopes[1].old_keys.begin(), report.scopes[1].old_keys.end()),
      (std::set<std::string>{acme_old, acme_fresh}));
  EXPECT_TRUE(UnfinishedJobs().empty());
  ExpectEveryValue();
  const auto starts = AuditRecords(audit::actions::kKeysRotateDataStart);
  ASSERT_FALSE(starts.empty());
  EXPECT_EQ(starts.front().detail,
            "every scope: the global scope and 3 organizations; closed the unfinished run "
            "started by operator earlier (uid 2) at 2023-11-14T22:13:21.000000Z (--restart)");

  // Without an unfinished job, --restart just starts a run.
  ASSERT_OK_AND_ASSIGN(auto plain,
                       RotateDataKeys(*store_, *barrier_, *audit_, clock_, scopes[2], options));
  EXPECT_TRUE(plain.closed_jobs.empty());
  EXPECT_FALSE(plain.resumed_job.has_value());
  ASSERT_EQ(plain.scopes.size(), 1u);
}

TEST_F(KeysTest, OrgRunResumedReportsTheScopeItSkipped) {
  const auto scopes = Populate();
  const Scope acme = scopes[1];
  // A run of acme that rotated it and was killed before closing its job.
  clock_.AdvanceMicros(1'000'000);
  const std::int64_t job = InsertJob("data", acme.org_id(), "operator earlier (uid 2)");
  clock_.AdvanceMicros(1'000'000);
  const std::string fresh = InterruptedRotation(acme, 100);
  {
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    ASSERT_OK_AND_ASSIGN(auto keys, (*txn)->ListScopeDataKeys(acme));
    for (const auto& key : keys) {
      if (key.state == "retired") ASSERT_OK((*txn)->DeleteDataKey(key.id));
    }
    ASSERT_OK((*txn)->Commit());
  }
  ASSERT_OK_AND_ASSIGN(auto report,
                       RotateDataKeys(*store_, *barrier_, *audit_, clock_, acme, Options()));
  ASSERT_TRUE(report.resumed_job.has_value());
  EXPECT_EQ(report.resumed_job->id, job);
  EXPECT_TRUE(report.scopes.empty());
  ASSERT_EQ(report.skipped.size(), 1u);
  EXPECT_EQ(report.skipped.front().scope, acme);
  EXPECT_EQ(report.skipped.front().label, "acme");
  EXPECT_EQ(report.skipped.front().reason, SkipReason::kRotatedByResumedRun);
  EXPECT_EQ(ScopeKeys(acme).front().id, fresh);
  EXPECT_TRUE(UnfinishedJobs().empty());
}

TEST_F(KeysTest, AMasterJobIsResumedOnlyByARunTowardsTheSameKey) {
  Populate();
  // A rotation from A to B, killed: its job names B.
  Open(Ring(kKeyB, {kKeyA}));
  const std::int64_t a_to_b = InsertJob("master", Master(kKeyB).id(), "operator first (uid 2)");
  // A job of an older version, which did not name the key.
  const std::int64_t legacy = InsertJob("master", "", "operator older (uid 4)");
  clock_.AdvanceMicros(1'000'000);

  // Then a rotation from B to C: not a resume of it; the A-to-B job is closed as superseded.
  Open(Ring(kKeyC, {kKeyB, kKeyA}));
  ASSERT_OK_AND_ASSIGN(auto report,
                       RotateMasterKey(*store_, *barrier_, *audit_, clock_, Options()));
  EXPECT_FALSE(report.resumed_job.has_value());
  ASSERT_EQ(report.closed_jobs.size(), 2u);
  EXPECT_EQ(report.closed_jobs[0].job.id, a_to_b);
  EXPECT_EQ(report.closed_jobs[0].reason, JobCloseReason::kSuperseded);
  EXPECT_EQ(report.closed_jobs[1].job.id, legacy);
  EXPECT_EQ(report.closed_jobs[1].reason, JobCloseReason::kSuperseded);
  EXPECT_TRUE(UnfinishedJobs().empty());
  for (const auto& row : DataKeys()) EXPECT_EQ(row.master_key_id, Master(kKeyC).id()) << row.id;
  const auto starts = AuditRecords(audit::actions::kKeysRotateMasterStart);
  ASSERT_EQ(starts.size(), 1u);
  const std::string& detail = starts.front().detail;
  EXPECT_EQ(detail.find("resuming"), std::string::npos) << detail;
  EXPECT_NE(detail.find("; closed the unfinished run to master key " + Master(kKeyB).id() +
                        " started by operator first (uid 2) at "),
            std::string::npos)
      << detail;
  EXPECT_NE(detail.find("; closed the unfinished run started by operator older (uid 4) at "
                        "2023-11-14T22:13:20.000000Z (superseded)"),
            std::string::npos)
      << detail;

  // A killed run towards C is resumed by the next run towards C.
  const std::int64_t to_c = InsertJob("master", Master(kKeyC).id(), "operator second (uid 3)");
  ASSERT_OK_AND_ASSIGN(auto again, RotateMasterKey(*store_, *barrier_, *audit_, clock_, Options()));
  ASSERT_TRUE(again.resumed_job.has_value());
  EXPECT_EQ(again.resumed_job->id, to_c);
  EXPECT_EQ(again.resumed_job->actor, "operator second (uid 3)");
  EXPECT_TRUE(again.closed_jobs.empty());
  EXPECT_NE(AuditRecords(audit::actions::kKeysRotateMasterStart)
                .front()
                .detail.find("; resuming the run started by operator second (uid 3) at "),
            std::string::npos);
  EXPECT_TRUE(UnfinishedJobs().empty());

  // --restart closes it instead.
  const std::int64_t killed = InsertJob("master", Master(kKeyC).id(), "operator third (uid 5)");
  RotateOptions options = Options();
  options.restart = true;
  ASSERT_OK_AND_ASSIGN(auto fresh, RotateMasterKey(*store_, *barrier_, *audit_, clock_, options));
  EXPECT_FALSE(fresh.resumed_job.has_value());
  ASSERT_EQ(fresh.closed_jobs.size(), 1u);
  EXPECT_EQ(fresh.closed_jobs.front().job.id, killed);
  EXPECT_EQ(fresh.closed_jobs.front().reason, JobCloseReason::kRestart);
  EXPECT_TRUE(UnfinishedJobs().empty());
}

TEST_F(KeysTest, AMasterRotationThatStopsOnAnErrorClosesItsJob) {
  Populate();
  Open(Ring(kKeyB, {kKeyA}));
  // A data key that the configured keys cannot unwrap: re-wrapping it fails.
  {
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    ASSERT_OK_AND_ASSIGN(auto keys, (*txn)->ListScopeDataKeys(Scope::Global()));
    ASSERT_FALSE(keys.empty());
    ASSERT_OK((*txn)->RewrapDataKey(keys.front().id, "not a wrapped key", Master(kKeyA).id(),
                                    keys.front().master_key_id));
    ASSERT_OK((*txn)->Commit());
  }
  auto report = RotateMasterKey(*store_, *barrier_, *audit_, clock_, Options());
  ASSERT_FALSE(report);
  EXPECT_TRUE(UnfinishedJobs().empty());
  const auto stops = AuditRecords(audit::actions::kKeysRotateMaster);
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_EQ(stops.front().outcome, "error");
}

TEST_F(KeysTest, JobsOfDeletedOrganizationsAreLeftOutOfStatusAndClosedByTheNextRotation) {
  const auto scopes = Populate();
  const Scope acme = scopes[1];
  const std::int64_t orphan = InsertJob("data", acme.org_id(), "operator earlier (uid 2)");
  const std::int64_t every = InsertJob("data", "*", "operator earlier (uid 2)");
  const std::int64_t global = InsertJob("data", "global", "operator earlier (uid 2)");
  ASSERT_OK(config_->DeleteOrganization(acme.org_id()));
  std::erase_if(expected_, [&](const auto& entry) { return entry.first.first == acme.org_id(); });

  // Status leaves it out (and writes nothing).
  ASSERT_OK_AND_ASSIGN(auto status, GetKeyStatus(*store_, *barrier_));
  ASSERT_EQ(status.unfinished_jobs.size(), 2u);
  EXPECT_EQ(status.unfinished_jobs[0].id, every);
  EXPECT_EQ(status.unfinished_jobs[1].id, global);
  EXPECT_EQ(UnfinishedJobs().size(), 3u);

  // Any rotation closes it; a master rotation leaves the other data jobs alone.
  ASSERT_OK_AND_ASSIGN(auto master,
                       RotateMasterKey(*store_, *barrier_, *audit_, clock_, Options()));
  ASSERT_EQ(master.closed_jobs.size(), 1u);
  EXPECT_EQ(master.closed_jobs.front().job.id, orphan);
  EXPECT_EQ(master.closed_jobs.front().reason, JobCloseReason::kOrganizationDeleted);
  EXPECT_EQ(JobCloseReasonName(JobCloseReason::kOrganizationDeleted), "organization_deleted");
  const auto jobs = UnfinishedJobs();
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0].id, every);
  EXPECT_NE(AuditRecords(audit::actions::kKeysRotateMasterStart)
                .front()
                .detail.find("; closed the unfinished run of deleted organization " +
                             acme.org_id() + " started by operator earlier (uid 2) at "),
            std::string::npos);

  // So does a data rotation.
  const std::int64_t globex_job = InsertJob("data", scopes[2].org_id(), "operator x (uid 6)");
  ASSERT_OK(config_->DeleteOrganization(scopes[2].org_id()));
  std::erase_if(expected_,
                [&](const auto& entry) { return entry.first.first == scopes[2].org_id(); });
  ASSERT_OK_AND_ASSIGN(auto data,
                       RotateDataKeys(*store_, *barrier_, *audit_, clock_, scopes[3], Options()));
  ASSERT_EQ(data.closed_jobs.size(), 1u);
  EXPECT_EQ(data.closed_jobs.front().job.id, globex_job);
  EXPECT_EQ(UnfinishedJobs().size(), 2u);
  ExpectEveryValue();
}

TEST_F(KeysTest, AnOrganizationDeletedDuringItsRotationIsReportedAsSuch) {
  const auto scopes = Populate();
  const Scope acme = scopes[1];
  RotateOptions options = Options(/*batch_size=*/1);
  bool deleted = false;
  options.progress = [&](const Progress& progress) {
    // Once acme has its new key: the organization is deleted meanwhile.
    if (!deleted && progress.scope == "organization acme") {
      deleted = true;
      EXPECT_TRUE(config_->DeleteOrganization(acme.org_id()));
    }
  };
  ASSERT_OK_AND_ASSIGN(auto report,
                       RotateDataKeys(*store_, *barrier_, *audit_, clock_, acme, options));
  EXPECT_TRUE(deleted);
  EXPECT_TRUE(report.scopes.empty());
  ASSERT_EQ(report.skipped.size(), 1u);
  EXPECT_EQ(report.skipped.front().scope, acme);
  EXPECT_EQ(report.skipped.front().label, "acme");
  EXPECT_EQ(report.skipped.front().reason, SkipReason::kOrganizationDeleted);
  EXPECT_EQ(SkipReasonName(SkipReason::kOrganizationDeleted), "organization_deleted");
  EXPECT_FALSE(report.resumed_job.has_value());
  EXPECT_TRUE(ScopeKeys(acme).empty());
  EXPECT_TRUE(UnfinishedJobs().empty());

  // In a run of every scope, the others are rotated.
  const Scope globex = scopes[2];
  deleted = false;
  options.progress = [&](const Progress& progress) {
    if (!deleted && progress.scope == "organization globex") {
      deleted = true;
      EXPECT_TRUE(config_->DeleteOrganization(globex.org_id()));
    }
  };
  ASSERT_OK_AND_ASSIGN(auto all,
                       RotateDataKeys(*store_, *barrier_, *audit_, clock_, std::nullopt, options));
  ASSERT_EQ(all.scopes.size(), 2u);  // global and initech
  ASSERT_EQ(all.skipped.size(), 1u);
  EXPECT_EQ(all.skipped.front().scope, globex);
  EXPECT_EQ(all.skipped.front().reason, SkipReason::kOrganizationDeleted);
}

TEST_F(KeysTest, AValueThatCannotBeOpenedStopsTheRotationAndKeepsTheOldKey) {
  const auto scopes = Populate();
  const Scope acme = scopes[1];
  const std::string old_key = ScopeKeys(acme).front().id;
  {
    // A value moved here from another row: it fails its binding check.
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    ASSERT_OK_AND_ASSIGN(auto source, (*txn)->GetConfig(acme, "secret_0"));
    ASSERT_OK_AND_ASSIGN(auto target, (*txn)->GetConfig(acme, "secret_1"));
    store::ConfigRow forged = *target;
    forged.value = source->value;
    forged.key_id = source->key_id;
    ASSERT_OK((*txn)->UpdateConfig(forged, forged.version));
    ASSERT_OK((*txn)->Commit());
  }
  auto report = RotateDataKeys(*store_, *barrier_, *audit_, clock_, acme, Options(1));
  EXPECT_ERROR_CODE(report, ErrorCode::kIntegrity);
  // The old key is kept (retired): the values it seals stay readable.
  const auto keys = ScopeKeys(acme);
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[1].id, old_key);
  EXPECT_EQ(keys[1].state, "retired");
  const auto stops = AuditRecords(audit::actions::kKeysRotateData);
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_EQ(stops.front().outcome, "error");
  EXPECT_TRUE(stops.front().detail.starts_with("stopped (integrity) after re-encrypting "))
      << stops.front().detail;
  EXPECT_TRUE(stops.front().detail.ends_with("; run `bifrost keys rotate` again to finish"))
      << stops.front().detail;
  // A run that stops on an error closes its job: nothing will resume it.
  EXPECT_TRUE(UnfinishedJobs().empty());
}

// The scenario of a stale job: a run of every scope stops on an error in one scope; much
// later (after a key leak, say) the operator runs it again. The new run must rotate every
// scope, not "resume" the failed run and skip what it had done.
TEST_F(KeysTest, ARunAfterAnErrorStartsAfreshAndRotatesEveryScope) {
  const auto scopes = Populate();
  const Scope globex = scopes[2];
  const std::string globex_original = ScopeKeys(globex).front().id;
  {
    // A value moved here from another row: it fails its binding check.
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    ASSERT_OK_AND_ASSIGN(auto source, (*txn)->GetConfig(globex, "secret_0"));
    ASSERT_OK_AND_ASSIGN(auto target, (*txn)->GetConfig(globex, "secret_1"));
    store::ConfigRow forged = *target;
    forged.value = source->value;
    forged.key_id = source->key_id;
    ASSERT_OK((*txn)->UpdateConfig(forged, forged.version));
    ASSERT_OK((*txn)->Commit());
  }
  clock_.AdvanceMicros(1'000'000);
  EXPECT_ERROR_CODE(RotateDataKeys(*store_, *barrier_, *audit_, clock_, std::nullopt, Options()),
                    ErrorCode::kIntegrity);
  EXPECT_TRUE(UnfinishedJobs().empty());
  const std::string global_after_error = ScopeKeys(Scope::Global()).front().id;
  const std::string acme_after_error = ScopeKeys(scopes[1]).front().id;
  const auto globex_keys = ScopeKeys(globex);
  ASSERT_EQ(globex_keys.size(), 2u);  // the failed scope kept its retired key
  const std::string globex_after_error = globex_keys.front().id;

  clock_.AdvanceMicros(std::int64_t{90} * 24 * 3600 * 1'000'000);  // 90 days later
  Set(globex, "secret_1", "written again");                        // the damaged value repaired
  ASSERT_OK_AND_ASSIGN(
      auto report, RotateDataKeys(*store_, *barrier_, *audit_, clock_, std::nullopt, Options()));
  EXPECT_FALSE(report.resumed_job.has_value());
  EXPECT_TRUE(report.skipped.empty());
  EXPECT_TRUE(report.closed_jobs.empty());
  ASSERT_EQ(report.scopes.size(), 4u);
  for (const auto& rotation : report.scopes) EXPECT_FALSE(rotation.resumed) << rotation.label;
  EXPECT_NE(ScopeKeys(Scope::Global()).front().id, global_after_error);
  EXPECT_NE(ScopeKeys(scopes[1]).front().id, acme_after_error);
  // The failed scope's half rotation is not continued on the key the failed run made 90
  // days ago: that key is retired too, and both old keys are destroyed.
  const ScopeRotation& globex_rotation = report.scopes[2];
  EXPECT_EQ(globex_rotation.scope, globex);
  EXPECT_NE(globex_rotation.new_key, globex_after_error);
  EXPECT_EQ(std::set<std::string>(globex_rotation.old_keys.begin(), globex_rotation.old_keys.end()),
            (std::set<std::string>{globex_original, globex_after_error}));
  ASSERT_EQ(ScopeKeys(globex).size(), 1u);
  EXPECT_TRUE(NotSealedBy(globex, globex_rotation.new_key).empty());
  EXPECT_TRUE(UnfinishedJobs().empty());
  ExpectEveryValue();
  const auto starts = AuditRecords(audit::actions::kKeysRotateDataStart);
  ASSERT_EQ(starts.size(), 2u);
  EXPECT_EQ(starts.front().detail, "every scope: the global scope and 3 organizations");
}

TEST_F(KeysTest, WritersDuringARotationLoseNothing) {
  const auto scopes = Populate(/*secrets_per_scope=*/60);
  const Scope acme = scopes[1];
  // The writer is a second barrier on the same database, as a server in another process
  // would be: its cache still holds the key being retired.
  auto writer_barrier = barrier::Barrier::Open(Ring(kKeyA), *store_, clock_);
  ASSERT_TRUE(writer_barrier) << writer_barrier.error().ToString();
  config::ConfigService writer_config(*store_, *writer_barrier, clock_);
  auto writer_view = writer_config.ForOrg(acme.org_id());
  ASSERT_TRUE(writer_view);

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::map<std::string, std::string> written;  // guarded by mu
  std::atomic<int> writes{0};
  std::atomic<int> failures{0};
  std::thread writer([&] {
    for (int i = 0; !stop.load() || i < 20; ++i) {
      const std::string key = "secret_" + std::to_string(i % 70);  // some new, most updates
      const std::string value = "written " + std::to_string(i) + " during the rotation";
      auto result = writer_view->Set(SecretWrite(key, value));
      if (!result) {
        ++failures;
        continue;
      }
      std::lock_guard lock(mu);
      written[key] = value;
      ++writes;
    }
  });
  const int before = writes.load();
  auto report = RotateDataKeys(*store_, *barrier_, *audit_, clock_, acme, Options(5));
  const int during = writes.load() - before;
  stop.store(true);
  writer.join();
  ASSERT_TRUE(report) << report.error().ToString();
  EXPECT_GT(during, 0) << "the writer made no write while the rotation ran";
  EXPECT_EQ(failures.load(), 0);

  for (const auto& [key, value] : written) expected_[{acme.org_id(), key}] = value;
  ExpectEveryValue();
  const auto keys = ScopeKeys(acme);
  ASSERT_EQ(keys.size(), 1u);  // no retired key left
  EXPECT_EQ(keys.front().id, report->scopes.front().new_key);
  EXPECT_TRUE(NotSealedBy(acme, keys.front().id).empty());
}

// Kill -9 at the crash points, then the same command again. The child opens its own
// connections after the parent closed all of its own, so nothing of SQLite's crosses the
// fork.
TEST_F(KeysTest, KilledRotationsFinishWhenRunAgain) {
  const auto scopes = Populate(/*secrets_per_scope=*/10);
  const Scope acme = scopes[1];

  // A data rotation killed after its second batch of 3.
  Close();
  EXPECT_EXIT(
      {
        ::setenv("BIFROST_TESTING_CRASH_AT", "data-batch:2", 1);
        Open(Ring(kKeyA));
        (void)RotateDataKeys(*store_, *barrier_, *audit_, clock_, acme, Options(3));
        std::exit(0);
      },
      ::testing::KilledBySignal(SIGKILL), "");
  Open(Ring(kKeyA));
  ExpectEveryValue();
  ASSERT_OK_AND_ASSIGN(auto killed, GetKeyStatus(*store_, *barrier_));
  ASSERT_EQ(killed.unfinished.size(), 1u);
  EXPECT_EQ(killed.unfinished.front().values_left, 4);
  ASSERT_EQ(killed.unfinished_jobs.size(), 1u);
  ASSERT_OK_AND_ASSIGN(auto resumed,
                       RotateDataKeys(*store_, *barrier_, *audit_, clock_, acme, Options(3)));
  ASSERT_EQ(resumed.scopes.size(), 1u);
  EXPECT_TRUE(resumed.scopes.front().resumed);
  EXPECT_EQ(resumed.scopes.front().resealed, 4);
  EXPECT_EQ(ScopeKeys(acme).size(), 1u);
  EXPECT_TRUE(UnfinishedJobs().empty());

  // A run of every scope killed just before the global scope's old key is destroyed.
  clock_.AdvanceMicros(1'000'000);
  Close();
  EXPECT_EXIT(
      {
        ::setenv("BIFROST_TESTING_CRASH_AT", "data-before-destroy", 1);
        Open(Ring(kKeyA));
        (void)RotateDataKeys(*store_, *barrier_, *audit_, clock_, std::nullopt, Options());
        std::exit(0);
      },
      ::testing::KilledBySignal(SIGKILL), "");
  Open(Ring(kKeyA));
  ExpectEveryValue();
  EXPECT_EQ(ScopeKeys(Scope::Global()).size(), 2u);
  ASSERT_OK_AND_ASSIGN(
      auto all, RotateDataKeys(*store_, *barrier_, *audit_, clock_, std::nullopt, Options()));
  ASSERT_EQ(all.scopes.size(), 4u);
  EXPECT_TRUE(all.scopes.front().resumed);
  EXPECT_EQ(all.scopes.front().resealed, 0);  // all done before the kill
  EXPECT_EQ(all.scopes.front().old_keys.size(), 1u);
  for (const auto& scope : scopes) EXPECT_EQ(ScopeKeys(scope).size(), 1u) << scope.name();
  ExpectEveryValue();

  // A master rotation killed after its first batch of 2 (of 4).
  Close();
  EXPECT_EXIT(
      {
        ::setenv("BIFROST_TESTING_CRASH_AT", "master-batch:1", 1);
        Open(Ring(kKeyB, {kKeyA}));
        (void)RotateMasterKey(*store_, *barrier_, *audit_, clock_, Options(2));
        std::exit(0);
      },
      ::testing::KilledBySignal(SIGKILL), "");
  Open(Ring(kKeyB, {kKeyA}));
  ExpectEveryValue();
  ASSERT_OK_AND_ASSIGN(auto half, GetKeyStatus(*store_, *barrier_));
  EXPECT_FALSE(half.previous_keys_unused);
  ASSERT_EQ(half.master_keys.size(), 2u);
  EXPECT_EQ(half.master_keys[1].data_keys, 2);
  ASSERT_EQ(half.unfinished_jobs.size(), 1u);
  EXPECT_EQ(half.unfinished_jobs.front().kind, "master");
  EXPECT_EQ(half.unfinished_jobs.front().target, Master(kKeyB).id());  // the new key
  ASSERT_OK_AND_ASSIGN(auto finished,
                       RotateMasterKey(*store_, *barrier_, *audit_, clock_, Options(2)));
  EXPECT_EQ(finished.rewrapped, 2);
  ASSERT_TRUE(finished.resumed_job.has_value());
  EXPECT_EQ(finished.resumed_job->id, half.unfinished_jobs.front().id);
  Open(Ring(kKeyB));
  ExpectEveryValue();
  EXPECT_TRUE(UnfinishedJobs().empty());
}

// A value in the format before data keys: sealed directly by a master key, bound to its
// row (docs/storage-format.md, "Sealed values").
std::string LegacyEnvelope(const crypto::FernetKey& master, const Scope& scope,
                           const std::string& key, std::string_view value, std::int64_t now) {
  const std::string id = scope.is_global() ? "" : scope.org_id();
  std::string bound;
  bound += '\x01';
  bound += scope.is_global() ? 'g' : 'o';
  for (const std::string* part : {&id, &key}) {
    bound += static_cast<char>(part->size() >> 8);
    bound += static_cast<char>(part->size() & 0xFF);
    bound += *part;
  }
  bound += value;
  auto token = master.Encrypt(bound, now);
  EXPECT_TRUE(token);
  std::string envelope = "bf1:";
  envelope += master.id();
  envelope += ':';
  envelope += *token;
  return envelope;
}

TEST_F(KeysTest, ValuesSealedDirectlyByAMasterKeyMoveUnderDataKeys) {
  const auto scopes = Populate(/*secrets_per_scope=*/2);
  const crypto::FernetKey old_master = Master(kKeyA);
  {
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    for (const Scope& scope : {scopes[0], scopes[1]}) {
      store::ConfigRow row;
      row.scope = scope;
      row.key = "legacy";
      row.type = "secret";
      row.value =
          LegacyEnvelope(old_master, scope, "legacy", "from before data keys", clock_.NowSeconds());
      row.key_id = old_master.id();
      row.updated_by = "tester";
      ASSERT_OK((*txn)->InsertConfig(row));
      expected_[{std::string(scope.name()), "legacy"}] = "from before data keys";
    }
    ASSERT_OK((*txn)->Commit());
  }
  Open(Ring(kKeyB, {kKeyA}));
  ExpectEveryValue();
  ASSERT_OK(RotateMasterKey(*store_, *barrier_, *audit_, clock_, Options()));
  ASSERT_OK_AND_ASSIGN(auto after_master, GetKeyStatus(*store_, *barrier_));
  EXPECT_FALSE(after_master.previous_keys_unused);  // the master rotation moves no value
  ASSERT_EQ(after_master.master_keys.size(), 2u);
  EXPECT_EQ(after_master.master_keys[1].data_keys, 0);
  EXPECT_EQ(after_master.master_keys[1].direct_values, 2);

  ASSERT_OK_AND_ASSIGN(
      auto report, RotateDataKeys(*store_, *barrier_, *audit_, clock_, std::nullopt, Options()));
  EXPECT_EQ(report.resealed, 4 * 2 + 2);
  ASSERT_OK_AND_ASSIGN(auto after_data, GetKeyStatus(*store_, *barrier_));
  EXPECT_TRUE(after_data.previous_keys_unused);
  EXPECT_EQ(after_data.master_keys[1].direct_values, 0);
  Open(Ring(kKeyB));
  ExpectEveryValue();
}

// ---- status ----

TEST_F(KeysTest, StatusCountsKeysValuesAndUnfinishedWork) {
  const auto scopes = Populate(/*secrets_per_scope=*/5);
  ASSERT_OK_AND_ASSIGN(auto status, GetKeyStatus(*store_, *barrier_));
  EXPECT_EQ(status.primary_key_id, Master(kKeyA).id());
  EXPECT_EQ(status.organizations, 3);
  EXPECT_EQ(status.data_keys, 4);
  EXPECT_EQ(status.sealed_values, 20);
  ASSERT_EQ(status.master_keys.size(), 1u);
  EXPECT_TRUE(status.master_keys[0].primary);
  EXPECT_TRUE(status.master_keys[0].configured);
  EXPECT_EQ(status.master_keys[0].data_keys, 4);
  EXPECT_EQ(status.master_keys[0].direct_values, 0);
  EXPECT_TRUE(status.unfinished.empty());
  EXPECT_TRUE(status.unfinished_jobs.empty());
  EXPECT_TRUE(status.previous_keys_unused);  // there are none

  const std::string fresh = InterruptedRotation(scopes[2], 3);
  {
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    ASSERT_OK((*txn)->InsertKeyJob({.id = 0,
                                    .kind = "master",
                                    .target = "",
                                    .actor = "operator x (uid 3)",
                                    .started_at = clock_.NowMicros(),
                                    .finished_at = std::nullopt}));
    ASSERT_OK((*txn)->Commit());
  }
  Open(Ring(kKeyB, {kKeyA}));
  ASSERT_OK_AND_ASSIGN(auto mid, GetKeyStatus(*store_, *barrier_));
  EXPECT_EQ(mid.primary_key_id, Master(kKeyB).id());
  EXPECT_EQ(mid.data_keys, 5);  // globex has two until its rotation finishes
  EXPECT_EQ(mid.sealed_values, 20);
  ASSERT_EQ(mid.unfinished.size(), 1u);
  EXPECT_EQ(mid.unfinished.front().label, "globex");
  EXPECT_EQ(mid.unfinished.front().active_key, fresh);
  EXPECT_EQ(mid.unfinished.front().values_left, 2);
  ASSERT_EQ(mid.unfinished_jobs.size(), 1u);
  EXPECT_EQ(mid.unfinished_jobs.front().kind, "master");
  ASSERT_EQ(mid.master_keys.size(), 2u);
  EXPECT_TRUE(mid.master_keys[0].primary);
  EXPECT_EQ(mid.master_keys[1].key_id, Master(kKeyA).id());
  EXPECT_FALSE(mid.master_keys[1].primary);
  EXPECT_TRUE(mid.master_keys[1].configured);
  EXPECT_EQ(mid.master_keys[1].data_keys, 5);
  EXPECT_FALSE(mid.previous_keys_unused);
}

// ---- crash points ----

TEST(CrashPointTest, KillsOnlyAtTheNamedPoint) {
  ::unsetenv("BIFROST_TESTING_CRASH_AT");
  CrashPoint("data-batch:1");  // unset: nothing
  EXPECT_EXIT(
      {
        ::setenv("BIFROST_TESTING_CRASH_AT", "data-batch:2", 1);
        CrashPoint("data-batch:1");
        CrashPoint("data-batch:2");
        std::exit(0);
      },
      ::testing::KilledBySignal(SIGKILL), "");
  EXPECT_EXIT(
      {
        ::setenv("BIFROST_TESTING_CRASH_AT", "data-batch:2", 1);
        CrashPoint("data-batch:20");
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

// ---- key sources ----

class KeySourceTest : public ::testing::Test {
 protected:
  void SetUp() override { ClearKeyEnvironment(); }
  void TearDown() override { ClearKeyEnvironment(); }
  std::string WriteFile(const std::string& name, const std::string& text) {
    const std::string path = dir_.path() + "/" + name;
    std::ofstream(path) << text;
    ::chmod(path.c_str(), 0600);
    return path;
  }
  testing::TempDir dir_;
};

TEST_F(KeySourceTest, TakesEveryVariableOutOfTheEnvironment) {
  ::setenv(kSecretKeyEnv, std::string(kKeyB).c_str(), 1);
  ::setenv(kPreviousKeyEnv, ("\n" + std::string(kKeyA) + "\r\n  \n" + std::string(kKeyC)).c_str(),
           1);
  // The entries themselves, "NAME=value", are overwritten (name included), not only dropped.
  std::vector<std::pair<char*, std::size_t>> entries;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    if (std::string_view(*entry).starts_with("BIFROST_SECRET_KEY")) {
      entries.emplace_back(*entry, std::strlen(*entry));
    }
  }
  ASSERT_EQ(entries.size(), 2u);
  ASSERT_OK_AND_ASSIGN(auto keys, TakeKeysFromEnvironment());
  for (const char* name :
       {kSecretKeyEnv, kSecretKeyFileEnv, kPreviousKeyEnv, kPreviousKeyFileEnv}) {
    EXPECT_EQ(std::getenv(name), nullptr) << name;
  }
  for (const auto& [entry, length] : entries) {
    EXPECT_TRUE(std::all_of(entry, entry + length, [](char c) { return c == '\0'; }));
  }
  ASSERT_TRUE(keys.current);
  EXPECT_EQ(keys.current->text.view(), kKeyB);
  EXPECT_EQ(keys.current->source, "BIFROST_SECRET_KEY");
  ASSERT_EQ(keys.previous.size(), 2u);  // blank lines skipped, "\r\n" tolerated
  EXPECT_EQ(keys.previous[0].text.view(), kKeyA);
  EXPECT_EQ(keys.previous[0].source, "BIFROST_SECRET_KEY_PREVIOUS line 2");
  EXPECT_EQ(keys.previous[1].text.view(), kKeyC);
  EXPECT_EQ(keys.previous[1].source, "BIFROST_SECRET_KEY_PREVIOUS line 4");

  ASSERT_OK_AND_ASSIGN(auto ring, BuildKeyring(*keys.current, keys.previous));
  ASSERT_EQ(ring.keys().size(), 3u);
  EXPECT_EQ(ring.primary().id(), Master(kKeyB).id());
  EXPECT_EQ(ring.keys()[1].id(), Master(kKeyA).id());
  EXPECT_EQ(ring.keys()[2].id(), Master(kKeyC).id());
}

TEST_F(KeySourceTest, ReadsKeyFiles) {
  ::setenv(kSecretKeyFileEnv, WriteFile("current", std::string(kKeyB) + "\n").c_str(), 1);
  ::setenv(kPreviousKeyFileEnv, WriteFile("previous", std::string(kKeyA) + "\n").c_str(), 1);
  ASSERT_OK_AND_ASSIGN(auto keys, TakeKeysFromEnvironment());
  EXPECT_EQ(std::getenv(kSecretKeyFileEnv), nullptr);
  EXPECT_EQ(std::getenv(kPreviousKeyFileEnv), nullptr);
  ASSERT_TRUE(keys.current);
  EXPECT_EQ(keys.current->text.view(), kKeyB);
  EXPECT_EQ(keys.current->source, "BIFROST_SECRET_KEY_FILE");
  ASSERT_EQ(keys.previous.size(), 1u);
  EXPECT_EQ(keys.previous[0].text.view(), kKeyA);
  EXPECT_EQ(keys.previous[0].source, "BIFROST_SECRET_KEY_PREVIOUS_FILE line 1");
}

TEST_F(KeySourceTest, RefusesAmbiguousOrIncompleteSettings) {
  ::setenv(kSecretKeyEnv, std::string(kKeyA).c_str(), 1);
  ::setenv(kSecretKeyFileEnv, "/nonexistent", 1);
  EXPECT_ERROR_CODE(TakeKeysFromEnvironment(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(std::getenv(kSecretKeyEnv), nullptr);

  ::setenv(kSecretKeyEnv, std::string(kKeyA).c_str(), 1);
  ::setenv(kPreviousKeyEnv, std::string(kKeyB).c_str(), 1);
  ::setenv(kPreviousKeyFileEnv, "/nonexistent", 1);
  EXPECT_ERROR_CODE(TakeKeysFromEnvironment(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(std::getenv(kPreviousKeyEnv), nullptr);
  EXPECT_EQ(std::getenv(kSecretKeyEnv), nullptr);  // also taken when the other pair fails

  ::setenv(kPreviousKeyEnv, std::string(kKeyB).c_str(), 1);
  auto without_current = TakeKeysFromEnvironment();
  ASSERT_FALSE(without_current);
  EXPECT_NE(without_current.error().message().find("BIFROST_SECRET_KEY is not"), std::string::npos)
      << without_current.error().message();
  EXPECT_EQ(std::getenv(kPreviousKeyEnv), nullptr);

  ::setenv(kPreviousKeyFileEnv, (dir_.path() + "/missing").c_str(), 1);
  ::setenv(kSecretKeyEnv, std::string(kKeyA).c_str(), 1);
  auto missing = TakeKeysFromEnvironment();
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("cannot open BIFROST_SECRET_KEY_PREVIOUS_FILE"),
            std::string::npos);
  EXPECT_EQ(std::getenv(kSecretKeyEnv), nullptr);

  // Nothing set at all is not an error: the caller decides (serve --dev has a key file).
  ASSERT_OK_AND_ASSIGN(auto none, TakeKeysFromEnvironment());
  EXPECT_FALSE(none.current);
  EXPECT_TRUE(none.previous.empty());
}

TEST_F(KeySourceTest, RefusesRepeatedKeysNamingTheLinesNotTheKeys) {
  const Secret current{crypto::SecureBuffer::From(kKeyA), "BIFROST_SECRET_KEY"};
  std::vector<Secret> previous;
  previous.push_back({crypto::SecureBuffer::From(kKeyB), "BIFROST_SECRET_KEY_PREVIOUS line 1"});
  previous.push_back({crypto::SecureBuffer::From(kKeyA), "BIFROST_SECRET_KEY_PREVIOUS line 2"});
  auto same_as_current = BuildKeyring(current, previous);
  ASSERT_FALSE(same_as_current);
  EXPECT_EQ(same_as_current.error().message(),
            "BIFROST_SECRET_KEY_PREVIOUS line 2 is the current key (BIFROST_SECRET_KEY); list "
            "only older keys there");

  previous[1] = {crypto::SecureBuffer::From(kKeyB), "BIFROST_SECRET_KEY_PREVIOUS line 3"};
  auto repeated = BuildKeyring(current, previous);
  ASSERT_FALSE(repeated);
  EXPECT_EQ(repeated.error().message(),
            "BIFROST_SECRET_KEY_PREVIOUS line 3 repeats BIFROST_SECRET_KEY_PREVIOUS line 1; "
            "list each key once");

  previous[1] = {crypto::SecureBuffer::From("tiny-key-xyz"), "BIFROST_SECRET_KEY_PREVIOUS line 3"};
  auto short_key = BuildKeyring(current, previous);
  ASSERT_FALSE(short_key);
  EXPECT_TRUE(
      short_key.error().message().starts_with("BIFROST_SECRET_KEY_PREVIOUS line 3 is "
                                              "too short"));
  EXPECT_EQ(short_key.error().message().find("tiny-key-xyz"), std::string::npos);
}

// ---- the local installation ----

TEST_F(KeySourceTest, OpenLocalInstallationNeedsAnExistingDatabaseAndAKey) {
  const std::string data = dir_.path() + "/data";
  ::setenv(kSecretKeyEnv, std::string(kKeyA).c_str(), 1);
  auto missing =
      OpenLocalInstallation({.data_dir = data, .command = "keys status"}, SystemClock::Instance());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(),
            "no database in " + data + "; run `bifrost init --data " + data + "` first");
  EXPECT_EQ(std::getenv(kSecretKeyEnv), nullptr);  // taken even so
  EXPECT_FALSE(std::filesystem::exists(data));

  auto no_dir =
      OpenLocalInstallation({.data_dir = "", .command = "keys rotate"}, SystemClock::Instance());
  ASSERT_FALSE(no_dir);
  EXPECT_TRUE(no_dir.error().message().starts_with("keys rotate needs a data directory"));

  {
    FakeClock clock;
    auto store = store::SqliteStore::Open({.data_dir = data, .clock = &clock});
    ASSERT_TRUE(store);
    ASSERT_TRUE(barrier::Barrier::Open(Ring(kKeyA), **store, clock));
  }
  auto no_key =
      OpenLocalInstallation({.data_dir = data, .command = "keys status"}, SystemClock::Instance());
  ASSERT_FALSE(no_key);
  EXPECT_EQ(no_key.error().message(), MissingKeyMessage());

  ::setenv(kSecretKeyEnv, std::string(kKeyC).c_str(), 1);
  auto wrong = OpenLocalInstallation(
      {.data_dir = data, .command = "keys status", .read_only = true}, SystemClock::Instance());
  EXPECT_ERROR_CODE(wrong, ErrorCode::kKeyMismatch);

  ::setenv(kSecretKeyEnv, std::string(kKeyA).c_str(), 1);
  {
    ASSERT_OK_AND_ASSIGN(
        auto read_only,
        OpenLocalInstallation({.data_dir = data, .command = "keys status", .read_only = true},
                              SystemClock::Instance()));
    EXPECT_EQ(read_only.audit, nullptr);
    ASSERT_NE(read_only.barrier, nullptr);
  }

  ::setenv(kSecretKeyEnv, std::string(kKeyA).c_str(), 1);
  ASSERT_OK_AND_ASSIGN(
      auto writable,
      OpenLocalInstallation({.data_dir = data, .command = "keys rotate"}, SystemClock::Instance()));
  EXPECT_NE(writable.audit, nullptr);
}

TEST(OperatorNameTest, NamesTheUser) {
  const std::string name = OperatorName();
  EXPECT_TRUE(name.starts_with("operator ")) << name;
  EXPECT_NE(name.find("uid " + std::to_string(::getuid())), std::string::npos) << name;
}

}  // namespace
}  // namespace bifrost::keys
