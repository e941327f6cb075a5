// The Store conformance suite. See store_conformance.h for how a backend joins.
//
// Everything here goes through the Store/Txn interface only. Where the interface leaves a
// choice to the backend (whether a transaction stays usable after one of its operations
// failed, the order of ListKeyChecks), the tests do not depend on it: an operation expected
// to fail runs in a transaction of its own, or last.
#include "tests/store_conformance.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <latch>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "common/status.h"
#include "tests/support/status_matchers.h"

namespace bifrost::store {

std::string StoreFactoryName(const ::testing::TestParamInfo<StoreFactory>& info) {
  return info.param.name;
}

void PrintTo(const StoreFactory& factory, std::ostream* os) { *os << factory.name; }

void StoreConformanceTest::SetUp() {
  const char* tmpdir = std::getenv("TMPDIR");
  std::string pattern = (tmpdir != nullptr && *tmpdir != '\0') ? tmpdir : "/tmp";
  pattern += "/bifrost-store-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  ASSERT_NE(::mkdtemp(buffer.data()), nullptr) << "mkdtemp failed for " << pattern;
  scratch_dir_ = buffer.data();
  store_ = GetParam().open(scratch_dir_);
  ASSERT_NE(store_, nullptr) << "backend " << GetParam().name << " did not open";
}

void StoreConformanceTest::TearDown() {
  store_.reset();
  if (!scratch_dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(scratch_dir_, ignored);
  }
}

namespace {

constexpr UnixMicros kT0 = 1'700'000'000'000'000;
constexpr UnixMicros kT1 = kT0 + 1'000'000;
constexpr UnixMicros kT2 = kT0 + 2'000'000;

const std::string kOrgA = "0b7e5c1e-6a43-4c1a-9d57-3f1f2b0a0001";
const std::string kOrgB = "0b7e5c1e-6a43-4c1a-9d57-3f1f2b0a0002";
const std::string kOrgC = "0b7e5c1e-6a43-4c1a-9d57-3f1f2b0a0003";
const std::string kMissingOrg = "0b7e5c1e-6a43-4c1a-9d57-3f1f2b0a00ff";

OrgRow MakeOrg(const std::string& id, const std::string& name, UnixMicros created_at = kT0) {
  return OrgRow{id, name, created_at};
}

ConfigRow MakeConfig(Scope scope, const std::string& key, const std::string& value,
                     const std::string& type = "string") {
  ConfigRow row;
  row.scope = std::move(scope);
  row.key = key;
  row.type = type;
  row.value = value;
  row.description = "the " + key + " setting";
  row.created_at = kT0;
  row.updated_at = kT0;
  row.updated_by = "user:alice";
  return row;
}

ConfigRow MakeSecret(Scope scope, const std::string& key, const std::string& envelope,
                     const std::string& key_id) {
  ConfigRow row = MakeConfig(std::move(scope), key, envelope, "secret");
  row.key_id = key_id;
  return row;
}

// Compares everything the caller controls plus the version.
void ExpectSameRow(const ConfigRow& actual, const ConfigRow& expected) {
  EXPECT_EQ(actual.scope, expected.scope) << "scope " << actual.scope.name();
  EXPECT_EQ(actual.key, expected.key);
  EXPECT_EQ(actual.type, expected.type);
  EXPECT_EQ(actual.value, expected.value);
  EXPECT_EQ(actual.key_id, expected.key_id);
  EXPECT_EQ(actual.description, expected.description);
  EXPECT_EQ(actual.created_at, expected.created_at);
  EXPECT_EQ(actual.updated_at, expected.updated_at);
  EXPECT_EQ(actual.updated_by, expected.updated_by);
  EXPECT_EQ(actual.version, expected.version);
}

std::vector<std::string> Keys(const std::vector<ConfigRow>& rows) {
  std::vector<std::string> keys;
  for (const ConfigRow& row : rows) keys.push_back(row.key);
  return keys;
}

std::vector<std::string> OrgNames(const std::vector<OrgRow>& orgs) {
  std::vector<std::string> names;
  for (const OrgRow& org : orgs) names.push_back(org.name);
  return names;
}

// Runs `body` in a write transaction and commits it.
template <typename Body>
void InWriteTxn(Store& store, Body body) {
  auto txn = store.Begin(TxnMode::kWrite);
  ASSERT_TRUE(txn.has_value()) << txn.error().ToString();
  body(**txn);
  if (::testing::Test::HasFatalFailure()) return;
  ASSERT_OK((*txn)->Commit());
}

// Creates orgs A ("acme") and B ("globex") and commits.
void CreateTwoOrgs(Store& store) {
  InWriteTxn(store, [](Txn& txn) {
    ASSERT_OK(txn.InsertOrg(MakeOrg(kOrgA, "acme")));
    ASSERT_OK(txn.InsertOrg(MakeOrg(kOrgB, "globex")));
  });
}

// Token ids and hashes. Hashes look like the real thing (64 hex digits) and carry a marker
// so that a test can look for them in error messages.
const std::string kTok1 = "7d1c1d8e-3d6c-4b53-9a39-5b0e7c6f0001";
const std::string kTok2 = "7d1c1d8e-3d6c-4b53-9a39-5b0e7c6f0002";
const std::string kTok3 = "7d1c1d8e-3d6c-4b53-9a39-5b0e7c6f0003";
const std::string kTok4 = "7d1c1d8e-3d6c-4b53-9a39-5b0e7c6f0004";
const std::string kTok5 = "7d1c1d8e-3d6c-4b53-9a39-5b0e7c6f0005";
const std::string kMissingTok = "7d1c1d8e-3d6c-4b53-9a39-5b0e7c6f00ff";

std::string HashFor(const std::string& token_id) {
  // "5eed" + the last 4 hex digits of the id, padded to 64 hex digits.
  std::string hash = "5eed" + token_id.substr(token_id.size() - 4);
  hash.resize(64, 'c');
  return hash;
}

TokenRow MakeToken(const std::string& id, std::optional<std::string> org_id,
                   const std::string& role, UnixMicros created_at = kT0) {
  TokenRow row;
  row.id = id;
  row.name = "token " + id.substr(id.size() - 4);
  row.org_id = std::move(org_id);
  row.role = role;
  row.hash = HashFor(id);
  row.created_at = created_at;
  row.created_by = "bootstrap";
  return row;
}

void ExpectSameToken(const TokenRow& actual, const TokenRow& expected) {
  EXPECT_EQ(actual.id, expected.id);
  EXPECT_EQ(actual.name, expected.name);
  EXPECT_EQ(actual.org_id, expected.org_id);
  EXPECT_EQ(actual.role, expected.role);
  EXPECT_EQ(actual.hash, expected.hash);
  EXPECT_EQ(actual.created_at, expected.created_at);
  EXPECT_EQ(actual.created_by, expected.created_by);
  EXPECT_EQ(actual.expires_at, expected.expires_at);
  EXPECT_EQ(actual.last_used_at, expected.last_used_at);
  EXPECT_EQ(actual.revoked_at, expected.revoked_at);
}

std::vector<std::string> TokenIds(const std::vector<TokenRow>& rows) {
  std::vector<std::string> ids;
  for (const TokenRow& row : rows) ids.push_back(row.id);
  return ids;
}

// ---- Backend identity

TEST_P(StoreConformanceTest, ReportsBackendAndSchemaVersion) {
  EXPECT_EQ(store().BackendName(), GetParam().name);
  EXPECT_GE(store().SchemaVersion(), 1);
}

TEST_P(StoreConformanceTest, NewStoreIsEmpty) {
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(auto orgs, txn->ListOrgs());
  EXPECT_TRUE(orgs.empty());
  ASSERT_OK_AND_ASSIGN(auto globals, txn->ListConfigs(Scope::Global()));
  EXPECT_TRUE(globals.empty());
  ASSERT_OK_AND_ASSIGN(auto checks, txn->ListKeyChecks());
  EXPECT_TRUE(checks.empty());
  ASSERT_OK_AND_ASSIGN(auto tokens, txn->ListTokens(std::nullopt));
  EXPECT_TRUE(tokens.empty());
  ASSERT_OK_AND_ASSIGN(auto executions, txn->ListExecutions(ExecutionFilter{}));
  EXPECT_TRUE(executions.empty());
  ASSERT_OK_AND_ASSIGN(auto users, txn->ListUsers(std::nullopt));
  EXPECT_TRUE(users.empty());
  ASSERT_OK(txn->Commit());
}

// ---- Organizations

TEST_P(StoreConformanceTest, OrgInsertGetAndList) {
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertOrg(MakeOrg(kOrgC, "charlie", kT2)));
    ASSERT_OK(txn.InsertOrg(MakeOrg(kOrgA, "alpha", kT0)));
    ASSERT_OK(txn.InsertOrg(MakeOrg(kOrgB, "bravo", kT1)));
  });
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));

  ASSERT_OK_AND_ASSIGN(std::optional<OrgRow> by_id, txn->GetOrgById(kOrgB));
  ASSERT_TRUE(by_id.has_value());
  EXPECT_EQ(by_id->id, kOrgB);
  EXPECT_EQ(by_id->name, "bravo");
  EXPECT_EQ(by_id->created_at, kT1);

  ASSERT_OK_AND_ASSIGN(std::optional<OrgRow> by_name, txn->GetOrgByName("charlie"));
  ASSERT_TRUE(by_name.has_value());
  EXPECT_EQ(by_name->id, kOrgC);
  EXPECT_EQ(by_name->created_at, kT2);

  ASSERT_OK_AND_ASSIGN(std::optional<OrgRow> missing_id, txn->GetOrgById(kMissingOrg));
  EXPECT_FALSE(missing_id.has_value());
  ASSERT_OK_AND_ASSIGN(std::optional<OrgRow> missing_name, txn->GetOrgByName("delta"));
  EXPECT_FALSE(missing_name.has_value());
  // Names are compared exactly.
  ASSERT_OK_AND_ASSIGN(std::optional<OrgRow> other_case, txn->GetOrgByName("ALPHA"));
  EXPECT_FALSE(other_case.has_value());

  ASSERT_OK_AND_ASSIGN(std::vector<OrgRow> orgs, txn->ListOrgs());
  EXPECT_EQ(OrgNames(orgs), (std::vector<std::string>{"alpha", "bravo", "charlie"}));
  ASSERT_EQ(orgs.size(), 3u);
  EXPECT_EQ(orgs[0].id, kOrgA);
  EXPECT_EQ(orgs[2].id, kOrgC);
}

TEST_P(StoreConformanceTest, OrgDuplicateIdOrNameIsAlreadyExists) {
  CreateTwoOrgs(store());
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->InsertOrg(MakeOrg(kOrgA, "another-name")), ErrorCode::kAlreadyExists);
  }
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->InsertOrg(MakeOrg(kOrgC, "globex")), ErrorCode::kAlreadyExists);
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<OrgRow> orgs, txn->ListOrgs());
  EXPECT_EQ(OrgNames(orgs), (std::vector<std::string>{"acme", "globex"}));
  ASSERT_OK_AND_ASSIGN(std::optional<OrgRow> a, txn->GetOrgById(kOrgA));
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->name, "acme");
  ASSERT_OK_AND_ASSIGN(std::optional<OrgRow> c, txn->GetOrgById(kOrgC));
  EXPECT_FALSE(c.has_value());
}

TEST_P(StoreConformanceTest, DeleteOrgCascadesToItsConfigsOnly) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Org(kOrgA), "retries", "3", "int")));
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Org(kOrgA), "db_password", "gAAAAenv", "k1")));
    ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Org(kOrgB), "retries", "5", "int")));
    ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Global(), "retries", "1", "int")));
  });
  InWriteTxn(store(), [](Txn& txn) { ASSERT_OK(txn.DeleteOrg(kOrgA)); });

  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::optional<OrgRow> a, txn->GetOrgById(kOrgA));
  EXPECT_FALSE(a.has_value());
  ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> a_rows, txn->ListConfigs(Scope::Org(kOrgA)));
  EXPECT_TRUE(a_rows.empty());
  ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> a_retries,
                       txn->GetConfig(Scope::Org(kOrgA), "retries"));
  EXPECT_FALSE(a_retries.has_value());
  // The secret went with it: nothing left for a rotation to re-encrypt.
  ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> unsealed, txn->ListConfigsNotSealedBy("k2", 100));
  EXPECT_TRUE(unsealed.empty());

  ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> b_rows, txn->ListConfigs(Scope::Org(kOrgB)));
  ASSERT_EQ(b_rows.size(), 1u);
  EXPECT_EQ(b_rows[0].value, "5");
  ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> globals, txn->ListConfigs(Scope::Global()));
  ASSERT_EQ(globals.size(), 1u);
  EXPECT_EQ(globals[0].value, "1");
  ASSERT_OK_AND_ASSIGN(std::vector<OrgRow> orgs, txn->ListOrgs());
  EXPECT_EQ(OrgNames(orgs), (std::vector<std::string>{"globex"}));
}

TEST_P(StoreConformanceTest, DeleteMissingOrgIsNotFound) {
  CreateTwoOrgs(store());
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->DeleteOrg(kMissingOrg), ErrorCode::kNotFound);
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<OrgRow> orgs, txn->ListOrgs());
  EXPECT_EQ(orgs.size(), 2u);
}

// ---- Config rows

TEST_P(StoreConformanceTest, InsertConfigReturnsVersionOneAndGetReturnsIt) {
  CreateTwoOrgs(store());
  ConfigRow row = MakeConfig(Scope::Org(kOrgA), "feature_flags", R"({"beta":true})", "json");
  row.created_at = kT1;
  row.updated_at = kT1;
  row.version = 42;  // ignored: the store assigns versions

  ConfigRow expected = row;
  expected.version = 1;
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK_AND_ASSIGN(ConfigRow stored, txn.InsertConfig(row));
    ExpectSameRow(stored, expected);
    // A write transaction sees its own writes.
    ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> own, txn.GetConfig(row.scope, row.key));
    ASSERT_TRUE(own.has_value());
    ExpectSameRow(*own, expected);
  });

  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> got, txn->GetConfig(row.scope, row.key));
  ASSERT_TRUE(got.has_value());
  ExpectSameRow(*got, expected);
  ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> missing, txn->GetConfig(row.scope, "feature_flag"));
  EXPECT_FALSE(missing.has_value());
}

TEST_P(StoreConformanceTest, ValuesAreStoredVerbatim) {
  // Quotes, SQL syntax, non-ASCII and a large value: bound, never spliced into SQL.
  const std::string tricky =
      "it's \"quoted\"; DROP TABLE configs; -- \xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91";
  const std::string big(200'000, 'x');
  ConfigRow a = MakeConfig(Scope::Global(), "tricky'key", tricky);
  a.description = tricky;
  a.updated_by = "user:o'brien";
  ConfigRow b = MakeConfig(Scope::Global(), "big", big);
  ConfigRow c = MakeConfig(Scope::Global(), "empty", "");
  c.description = "";
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK(txn.InsertConfig(a));
    ASSERT_OK(txn.InsertConfig(b));
    ASSERT_OK(txn.InsertConfig(c));
  });
  a.version = b.version = c.version = 1;
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  for (const ConfigRow* expected : {&a, &b, &c}) {
    ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> got,
                         txn->GetConfig(Scope::Global(), expected->key));
    ASSERT_TRUE(got.has_value()) << expected->key;
    ExpectSameRow(*got, *expected);
  }
}

TEST_P(StoreConformanceTest, ListConfigsIsOrderedByKeyAndScoped) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    for (const char* key : {"zeta", "alpha", "mid", "alpha_2", "beta"}) {
      ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Org(kOrgA), key, "v")));
    }
    ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Org(kOrgB), "only_b", "v")));
    ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Global(), "only_global", "v")));
  });
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> a_rows, txn->ListConfigs(Scope::Org(kOrgA)));
  EXPECT_EQ(Keys(a_rows), (std::vector<std::string>{"alpha", "alpha_2", "beta", "mid", "zeta"}));
  for (const ConfigRow& row : a_rows) EXPECT_EQ(row.scope, Scope::Org(kOrgA));
  ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> b_rows, txn->ListConfigs(Scope::Org(kOrgB)));
  EXPECT_EQ(Keys(b_rows), (std::vector<std::string>{"only_b"}));
  ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> globals, txn->ListConfigs(Scope::Global()));
  EXPECT_EQ(Keys(globals), (std::vector<std::string>{"only_global"}));
  ASSERT_EQ(globals.size(), 1u);
  EXPECT_TRUE(globals[0].scope.is_global());
}

TEST_P(StoreConformanceTest, DuplicateConfigIsAlreadyExists) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Org(kOrgA), "retries", "3", "int")));
    ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Global(), "retries", "1", "int")));
  });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->InsertConfig(MakeConfig(Scope::Org(kOrgA), "retries", "9", "int")),
                      ErrorCode::kAlreadyExists);
  }
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->InsertConfig(MakeConfig(Scope::Global(), "retries", "9", "int")),
                      ErrorCode::kAlreadyExists);
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> a, txn->GetConfig(Scope::Org(kOrgA), "retries"));
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->value, "3");
  EXPECT_EQ(a->version, 1);
  ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> g, txn->GetConfig(Scope::Global(), "retries"));
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->value, "1");
}

TEST_P(StoreConformanceTest, SameKeyInGlobalAndTwoOrgsAreIndependentRows) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Global(), "timeout", "10", "int")));
    ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Org(kOrgA), "timeout", "20", "int")));
    ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Org(kOrgB), "timeout", "30", "int")));
  });
  InWriteTxn(store(), [](Txn& txn) {
    ConfigRow update = MakeConfig(Scope::Org(kOrgB), "timeout", "31", "int");
    update.updated_at = kT1;
    ASSERT_OK_AND_ASSIGN(ConfigRow stored, txn.UpdateConfig(update, 1));
    EXPECT_EQ(stored.version, 2);
    ASSERT_OK(txn.DeleteConfig(Scope::Org(kOrgA), "timeout", std::nullopt));
  });
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> g, txn->GetConfig(Scope::Global(), "timeout"));
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->value, "10");
  EXPECT_EQ(g->version, 1);
  EXPECT_TRUE(g->scope.is_global());
  ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> a, txn->GetConfig(Scope::Org(kOrgA), "timeout"));
  EXPECT_FALSE(a.has_value());
  ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> b, txn->GetConfig(Scope::Org(kOrgB), "timeout"));
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->value, "31");
  EXPECT_EQ(b->version, 2);
  EXPECT_EQ(b->scope, Scope::Org(kOrgB));
}

TEST_P(StoreConformanceTest, UpdateWithCurrentVersionBumpsVersionAndKeepsCreatedAt) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Org(kOrgA), "endpoint", "http://a")));
  });

  ConfigRow update = MakeConfig(Scope::Org(kOrgA), "endpoint", "gAAAAsealed", "secret");
  update.key_id = "k1";
  update.description = "now a secret";
  update.created_at = kT2;  // ignored: created_at is kept
  update.updated_at = kT1;
  update.updated_by = "user:bob";
  ConfigRow expected = update;
  expected.created_at = kT0;
  expected.version = 2;
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK_AND_ASSIGN(ConfigRow stored, txn.UpdateConfig(update, 1));
    ExpectSameRow(stored, expected);
  });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
    ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> got,
                         txn->GetConfig(Scope::Org(kOrgA), "endpoint"));
    ASSERT_TRUE(got.has_value());
    ExpectSameRow(*got, expected);
  }

  // And back to a plain value: key_id goes away.
  ConfigRow back = MakeConfig(Scope::Org(kOrgA), "endpoint", "http://b");
  back.updated_at = kT2;
  ConfigRow expected_back = back;
  expected_back.created_at = kT0;
  expected_back.version = 3;
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK_AND_ASSIGN(ConfigRow stored, txn.UpdateConfig(back, 2));
    ExpectSameRow(stored, expected_back);
  });
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> got, txn->GetConfig(Scope::Org(kOrgA), "endpoint"));
  ASSERT_TRUE(got.has_value());
  ExpectSameRow(*got, expected_back);
}

TEST_P(StoreConformanceTest, UpdateWithStaleVersionIsConflictAndChangesNothing) {
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Global(), "retries", "1", "int")));
  });
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.UpdateConfig(MakeConfig(Scope::Global(), "retries", "2", "int"), 1));
  });
  for (std::int64_t stale : {std::int64_t{1}, std::int64_t{3}, std::int64_t{0}}) {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    ConfigRow update = MakeConfig(Scope::Global(), "retries", "99", "int");
    update.updated_at = kT2;
    EXPECT_ERROR_CODE(txn->UpdateConfig(update, stale), ErrorCode::kConflict);
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> got, txn->GetConfig(Scope::Global(), "retries"));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->value, "2");
  EXPECT_EQ(got->version, 2);
  EXPECT_EQ(got->updated_at, kT0);
}

TEST_P(StoreConformanceTest, UpdateMissingConfigIsNotFound) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Org(kOrgA), "present", "v")));
  });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->UpdateConfig(MakeConfig(Scope::Global(), "present", "v2"), 1),
                      ErrorCode::kNotFound);
  }
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->UpdateConfig(MakeConfig(Scope::Org(kOrgB), "present", "v2"), 1),
                      ErrorCode::kNotFound);
  }
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->UpdateConfig(MakeConfig(Scope::Org(kMissingOrg), "present", "v2"), 1),
                      ErrorCode::kNotFound);
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> globals, txn->ListConfigs(Scope::Global()));
  EXPECT_TRUE(globals.empty());
  ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> b_rows, txn->ListConfigs(Scope::Org(kOrgB)));
  EXPECT_TRUE(b_rows.empty());
}

TEST_P(StoreConformanceTest, DeleteConfigWithAndWithoutExpectedVersion) {
  InWriteTxn(store(), [](Txn& txn) {
    for (const char* key : {"a", "b", "c"}) {
      ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Global(), key, "v")));
    }
    ASSERT_OK(txn.UpdateConfig(MakeConfig(Scope::Global(), "b", "v2"), 1));
  });
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.DeleteConfig(Scope::Global(), "a", std::nullopt));
    ASSERT_OK(txn.DeleteConfig(Scope::Global(), "b", std::int64_t{2}));
  });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->DeleteConfig(Scope::Global(), "c", std::int64_t{2}),
                      ErrorCode::kConflict);
  }
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->DeleteConfig(Scope::Global(), "a", std::nullopt), ErrorCode::kNotFound);
  }
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->DeleteConfig(Scope::Global(), "zzz", std::int64_t{1}),
                      ErrorCode::kNotFound);
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> rows, txn->ListConfigs(Scope::Global()));
  EXPECT_EQ(Keys(rows), (std::vector<std::string>{"c"}));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].version, 1);
}

TEST_P(StoreConformanceTest, InsertIntoMissingOrgIsFailedPrecondition) {
  CreateTwoOrgs(store());
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->InsertConfig(MakeConfig(Scope::Org(kMissingOrg), "retries", "3")),
                      ErrorCode::kFailedPrecondition);
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  // Reading a missing org's scope is not an error: there is just nothing there.
  ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> got,
                       txn->GetConfig(Scope::Org(kMissingOrg), "retries"));
  EXPECT_FALSE(got.has_value());
  ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> rows, txn->ListConfigs(Scope::Org(kMissingOrg)));
  EXPECT_TRUE(rows.empty());
}

TEST_P(StoreConformanceTest, SecretRowsAndOnlySecretRowsCarryAKeyId) {
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->InsertConfig(MakeConfig(Scope::Global(), "pw", "gAAAA", "secret")),
                      ErrorCode::kInvalidArgument);
  }
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    ConfigRow plain = MakeConfig(Scope::Global(), "name", "x");
    plain.key_id = "k1";
    EXPECT_ERROR_CODE(txn->InsertConfig(plain), ErrorCode::kInvalidArgument);
  }
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->InsertConfig(MakeConfig(Scope::Global(), "n", "1", "float")),
                      ErrorCode::kInvalidArgument);
  }
  {
    // An empty key id would hide the row from ListConfigsNotSealedBy("").
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    ConfigRow sealed = MakeConfig(Scope::Global(), "pw", "gAAAA", "secret");
    sealed.key_id = "";
    EXPECT_ERROR_CODE(txn->InsertConfig(sealed), ErrorCode::kInvalidArgument);
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> rows, txn->ListConfigs(Scope::Global()));
  EXPECT_TRUE(rows.empty());
}

// ---- Transactions

TEST_P(StoreConformanceTest, UncommittedWriteTxnLeavesNoTrace) {
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    ASSERT_OK(txn->InsertOrg(MakeOrg(kOrgA, "acme")));
    ASSERT_OK(txn->InsertConfig(MakeConfig(Scope::Org(kOrgA), "retries", "3", "int")));
    ASSERT_OK(txn->InsertConfig(MakeConfig(Scope::Global(), "retries", "1", "int")));
    ASSERT_OK(txn->InsertKeyCheck(KeyCheckRow{"k1", "check", kT0}));
    // Destroyed without Commit.
  }
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
    ASSERT_OK_AND_ASSIGN(std::vector<OrgRow> orgs, txn->ListOrgs());
    EXPECT_TRUE(orgs.empty());
    ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> globals, txn->ListConfigs(Scope::Global()));
    EXPECT_TRUE(globals.empty());
    ASSERT_OK_AND_ASSIGN(std::vector<KeyCheckRow> checks, txn->ListKeyChecks());
    EXPECT_TRUE(checks.empty());
  }
  // The writer slot was given back: the same rows can be written again.
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertOrg(MakeOrg(kOrgA, "acme")));
    ASSERT_OK_AND_ASSIGN(ConfigRow row,
                         txn.InsertConfig(MakeConfig(Scope::Org(kOrgA), "retries", "3", "int")));
    EXPECT_EQ(row.version, 1);
  });
}

TEST_P(StoreConformanceTest, ReadTxnKeepsItsSnapshotWhileNewOneSeesCommit) {
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertOrg(MakeOrg(kOrgA, "acme")));
    ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Global(), "retries", "1", "int")));
  });

  ASSERT_OK_AND_ASSIGN(auto old_reader, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<OrgRow> before, old_reader->ListOrgs());
  EXPECT_EQ(OrgNames(before), (std::vector<std::string>{"acme"}));

  {
    ASSERT_OK_AND_ASSIGN(auto writer, store().Begin(TxnMode::kWrite));
    ASSERT_OK(writer->InsertOrg(MakeOrg(kOrgB, "globex")));
    ASSERT_OK(writer->UpdateConfig(MakeConfig(Scope::Global(), "retries", "2", "int"), 1));
    // Not committed yet: invisible to every reader.
    ASSERT_OK_AND_ASSIGN(auto mid_reader, store().Begin(TxnMode::kRead));
    ASSERT_OK_AND_ASSIGN(std::optional<OrgRow> uncommitted, mid_reader->GetOrgById(kOrgB));
    EXPECT_FALSE(uncommitted.has_value());
    ASSERT_OK(writer->Commit());
  }

  ASSERT_OK_AND_ASSIGN(std::vector<OrgRow> still, old_reader->ListOrgs());
  EXPECT_EQ(OrgNames(still), (std::vector<std::string>{"acme"}));
  ASSERT_OK_AND_ASSIGN(std::optional<OrgRow> b_old, old_reader->GetOrgById(kOrgB));
  EXPECT_FALSE(b_old.has_value());
  ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> retries_old,
                       old_reader->GetConfig(Scope::Global(), "retries"));
  ASSERT_TRUE(retries_old.has_value());
  EXPECT_EQ(retries_old->value, "1");
  EXPECT_EQ(retries_old->version, 1);

  ASSERT_OK_AND_ASSIGN(auto new_reader, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<OrgRow> after, new_reader->ListOrgs());
  EXPECT_EQ(OrgNames(after), (std::vector<std::string>{"acme", "globex"}));
  ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> retries_new,
                       new_reader->GetConfig(Scope::Global(), "retries"));
  ASSERT_TRUE(retries_new.has_value());
  EXPECT_EQ(retries_new->value, "2");
  EXPECT_EQ(retries_new->version, 2);
  ASSERT_OK(old_reader->Commit());
  ASSERT_OK(new_reader->Commit());
}

TEST_P(StoreConformanceTest, WritesOnReadTxnAreRejected) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Global(), "retries", "1", "int")));
  });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
    EXPECT_ERROR_CODE(txn->InsertOrg(MakeOrg(kOrgC, "initech")), ErrorCode::kFailedPrecondition);
    EXPECT_ERROR_CODE(txn->DeleteOrg(kOrgA), ErrorCode::kFailedPrecondition);
    EXPECT_ERROR_CODE(txn->InsertConfig(MakeConfig(Scope::Global(), "new", "v")),
                      ErrorCode::kFailedPrecondition);
    EXPECT_ERROR_CODE(txn->UpdateConfig(MakeConfig(Scope::Global(), "retries", "2", "int"), 1),
                      ErrorCode::kFailedPrecondition);
    EXPECT_ERROR_CODE(txn->DeleteConfig(Scope::Global(), "retries", std::nullopt),
                      ErrorCode::kFailedPrecondition);
    EXPECT_ERROR_CODE(txn->InsertKeyCheck(KeyCheckRow{"k1", "check", kT0}),
                      ErrorCode::kFailedPrecondition);
    EXPECT_ERROR_CODE(txn->InsertToken(MakeToken(kTok1, kOrgA, "admin")),
                      ErrorCode::kFailedPrecondition);
    EXPECT_ERROR_CODE(txn->RevokeToken(kTok1, kT1), ErrorCode::kFailedPrecondition);
    EXPECT_ERROR_CODE(txn->TouchToken(kTok1, kT1), ErrorCode::kFailedPrecondition);
    ASSERT_OK(txn->Commit());  // a read transaction commits trivially
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<OrgRow> orgs, txn->ListOrgs());
  EXPECT_EQ(OrgNames(orgs), (std::vector<std::string>{"acme", "globex"}));
  ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> globals, txn->ListConfigs(Scope::Global()));
  ASSERT_EQ(globals.size(), 1u);
  EXPECT_EQ(globals[0].value, "1");
  EXPECT_EQ(globals[0].version, 1);
  ASSERT_OK_AND_ASSIGN(std::vector<KeyCheckRow> checks, txn->ListKeyChecks());
  EXPECT_TRUE(checks.empty());
  ASSERT_OK_AND_ASSIGN(std::vector<TokenRow> tokens, txn->ListTokens(std::nullopt));
  EXPECT_TRUE(tokens.empty());
}

TEST_P(StoreConformanceTest, TxnIsUnusableAfterCommit) {
  ASSERT_OK_AND_ASSIGN(auto writer, store().Begin(TxnMode::kWrite));
  ASSERT_OK(writer->InsertOrg(MakeOrg(kOrgA, "acme")));
  ASSERT_OK(writer->Commit());
  EXPECT_FALSE(writer->InsertOrg(MakeOrg(kOrgB, "globex")).has_value());
  EXPECT_FALSE(writer->Commit().has_value());
  // The committed transaction no longer holds the writer slot.
  InWriteTxn(store(), [](Txn& txn) { ASSERT_OK(txn.InsertOrg(MakeOrg(kOrgC, "initech"))); });

  ASSERT_OK_AND_ASSIGN(auto reader, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<OrgRow> orgs, reader->ListOrgs());
  EXPECT_EQ(OrgNames(orgs), (std::vector<std::string>{"acme", "initech"}));
}

// ---- Key rotation support

TEST_P(StoreConformanceTest, ListConfigsNotSealedByRespectsKeyIdAndLimit) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Global(), "s1", "env-old-1", "k1")));
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Org(kOrgA), "s2", "env-new-1", "k2")));
    ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Global(), "plain", "v")));
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Org(kOrgA), "s3", "env-old-2", "k1")));
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Org(kOrgB), "s4", "env-old-3", "k0")));
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Org(kOrgB), "s5", "env-new-2", "k2")));
  });

  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
    ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> all, txn->ListConfigsNotSealedBy("k2", 100));
    std::vector<std::string> keys = Keys(all);
    std::sort(keys.begin(), keys.end());
    EXPECT_EQ(keys, (std::vector<std::string>{"s1", "s3", "s4"}));
    for (const ConfigRow& row : all) {
      EXPECT_EQ(row.type, "secret");
      ASSERT_TRUE(row.key_id.has_value());
      EXPECT_NE(*row.key_id, "k2");
      EXPECT_EQ(row.value.rfind("env-old-", 0), 0u) << row.value;
    }

    // The order is stable: a limited call returns a prefix of the full answer.
    ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> first_two, txn->ListConfigsNotSealedBy("k2", 2));
    ASSERT_EQ(first_two.size(), 2u);
    EXPECT_EQ(first_two[0].key, all[0].key);
    EXPECT_EQ(first_two[1].key, all[1].key);
    ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> again, txn->ListConfigsNotSealedBy("k2", 100));
    EXPECT_EQ(Keys(again), Keys(all));

    ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> none, txn->ListConfigsNotSealedBy("k2", 0));
    EXPECT_TRUE(none.empty());
    ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> other_key, txn->ListConfigsNotSealedBy("k9", 100));
    EXPECT_EQ(other_key.size(), 5u);  // every secret, never the plain row
  }

  // A rotation loop: re-seal a batch at a time until nothing is left.
  int batches = 0;
  while (true) {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> batch, txn->ListConfigsNotSealedBy("k2", 2));
    if (batch.empty()) break;
    ASSERT_LE(batch.size(), 2u);
    for (ConfigRow row : batch) {
      const std::int64_t read_version = row.version;
      row.value = "env-new-rotated";
      row.key_id = "k2";
      ASSERT_OK(txn->UpdateConfig(row, read_version));
    }
    ASSERT_OK(txn->Commit());
    ++batches;
    ASSERT_LE(batches, 3) << "rotation does not terminate";
  }
  EXPECT_EQ(batches, 2);
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> s4, txn->GetConfig(Scope::Org(kOrgB), "s4"));
  ASSERT_TRUE(s4.has_value());
  EXPECT_EQ(s4->key_id, std::optional<std::string>("k2"));
  EXPECT_EQ(s4->value, "env-new-rotated");
  EXPECT_EQ(s4->version, 2);
}

TEST_P(StoreConformanceTest, KeyChecksInsertListAndDuplicate) {
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertKeyCheck(KeyCheckRow{"k1", "check-one", kT0}));
    ASSERT_OK(txn.InsertKeyCheck(KeyCheckRow{"k2", "check-two", kT1}));
  });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->InsertKeyCheck(KeyCheckRow{"k1", "check-other", kT2}),
                      ErrorCode::kAlreadyExists);
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<KeyCheckRow> checks, txn->ListKeyChecks());
  std::sort(checks.begin(), checks.end(),
            [](const KeyCheckRow& a, const KeyCheckRow& b) { return a.key_id < b.key_id; });
  ASSERT_EQ(checks.size(), 2u);
  EXPECT_EQ(checks[0].key_id, "k1");
  EXPECT_EQ(checks[0].check_value, "check-one");
  EXPECT_EQ(checks[0].added_at, kT0);
  EXPECT_EQ(checks[1].key_id, "k2");
  EXPECT_EQ(checks[1].check_value, "check-two");
  EXPECT_EQ(checks[1].added_at, kT1);
}

// ---- Re-sealing (data-key rotation)

TEST_P(StoreConformanceTest, ResealConfigReplacesValueAndKeyIdOnly) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Global(), "api_key", "env-g-old", "k1")));
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Org(kOrgA), "api_key", "env-a-old", "k1")));
  });
  // A real change first, so that version, updated_at and updated_by differ from creation.
  ConfigRow changed = MakeSecret(Scope::Org(kOrgA), "api_key", "env-a-v2", "k1");
  changed.updated_at = kT1;
  changed.updated_by = "user:bob";
  changed.description = "changed by bob";
  InWriteTxn(store(), [&](Txn& txn) { ASSERT_OK(txn.UpdateConfig(changed, 1)); });

  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.ResealConfig(Scope::Org(kOrgA), "api_key", "env-a-v2", "env-a-new", "k2"));
    ASSERT_OK(txn.ResealConfig(Scope::Global(), "api_key", "env-g-old", "env-g-new", "k2"));
  });

  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> org_row,
                       txn->GetConfig(Scope::Org(kOrgA), "api_key"));
  ASSERT_TRUE(org_row.has_value());
  ConfigRow expected = changed;
  expected.value = "env-a-new";
  expected.key_id = "k2";
  expected.version = 2;  // a re-encryption is not a change
  ExpectSameRow(*org_row, expected);

  ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> global_row,
                       txn->GetConfig(Scope::Global(), "api_key"));
  ASSERT_TRUE(global_row.has_value());
  ConfigRow expected_global = MakeSecret(Scope::Global(), "api_key", "env-g-new", "k2");
  expected_global.version = 1;
  ExpectSameRow(*global_row, expected_global);
}

TEST_P(StoreConformanceTest, ResealConfigRefusesARowChangedDeletedOrRecreatedSinceRead) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Org(kOrgA), "changed", "env-1", "k1")));
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Org(kOrgA), "deleted", "env-2", "k1")));
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Org(kOrgA), "recreated", "env-3", "k1")));
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Global(), "global_only", "env-4", "k1")));
    ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Org(kOrgA), "plain", "env-5")));
  });
  // What a rotation would have read, before writers got there.
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.UpdateConfig(MakeSecret(Scope::Org(kOrgA), "changed", "env-1b", "k2"), 1));
    ASSERT_OK(txn.DeleteConfig(Scope::Org(kOrgA), "deleted", std::nullopt));
    ASSERT_OK(txn.DeleteConfig(Scope::Org(kOrgA), "recreated", std::nullopt));
    // Same scope, key and version 1 again: only the value tells the rows apart.
    ASSERT_OK_AND_ASSIGN(ConfigRow again, txn.InsertConfig(MakeSecret(
                                              Scope::Org(kOrgA), "recreated", "env-3b", "k1")));
    EXPECT_EQ(again.version, 1);
  });

  struct Attempt {
    Scope scope;
    std::string key;
    std::string expected_value;
  };
  const Attempt attempts[] = {
      {Scope::Org(kOrgA), "changed", "env-1"},
      {Scope::Org(kOrgA), "deleted", "env-2"},
      {Scope::Org(kOrgA), "recreated", "env-3"},
      {Scope::Org(kOrgA), "global_only", "env-4"},  // the global row is not this scope's
      {Scope::Org(kOrgB), "changed", "env-1b"},     // nor is another org's
      {Scope::Org(kOrgA), "plain", "env-5"},        // not a secret
      {Scope::Global(), "missing", "env-6"},
  };
  for (const Attempt& attempt : attempts) {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(
        txn->ResealConfig(attempt.scope, attempt.key, attempt.expected_value, "env-new", "k9"),
        ErrorCode::kConflict);
  }

  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> changed,
                       txn->GetConfig(Scope::Org(kOrgA), "changed"));
  ASSERT_TRUE(changed.has_value());
  EXPECT_EQ(changed->value, "env-1b");
  EXPECT_EQ(changed->key_id, std::optional<std::string>("k2"));
  EXPECT_EQ(changed->version, 2);
  ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> deleted,
                       txn->GetConfig(Scope::Org(kOrgA), "deleted"));
  EXPECT_FALSE(deleted.has_value());
  ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> recreated,
                       txn->GetConfig(Scope::Org(kOrgA), "recreated"));
  ASSERT_TRUE(recreated.has_value());
  EXPECT_EQ(recreated->value, "env-3b");
  ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> global_only,
                       txn->GetConfig(Scope::Global(), "global_only"));
  ASSERT_TRUE(global_only.has_value());
  EXPECT_EQ(global_only->value, "env-4");
  ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> plain, txn->GetConfig(Scope::Org(kOrgA), "plain"));
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(plain->value, "env-5");
  EXPECT_FALSE(plain->key_id.has_value());
}

TEST_P(StoreConformanceTest, ResealConfigNeedsAKeyId) {
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Global(), "s", "env-1", "k1")));
  });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->ResealConfig(Scope::Global(), "s", "env-1", "env-2", ""),
                      ErrorCode::kInvalidArgument);
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> row, txn->GetConfig(Scope::Global(), "s"));
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->value, "env-1");
}

TEST_P(StoreConformanceTest, ListScopeConfigsNotSealedByStaysInItsScope) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    // Key ids on both sides of "k5", so that both "less" and "greater" count as other keys.
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Org(kOrgA), "d", "env-a-d", "k1")));
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Org(kOrgA), "b", "env-a-b", "k9")));
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Org(kOrgA), "a", "env-a-a", "k5")));
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Org(kOrgA), "c", "env-a-c", "k1")));
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Org(kOrgA), "e", "env-a-e", "k50")));
    ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Org(kOrgA), "plain", "v")));
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Org(kOrgB), "a", "env-b-a", "k1")));
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Global(), "a", "env-g-a", "k1")));
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Global(), "z", "env-g-z", "k5")));
  });
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> a,
                       txn->ListScopeConfigsNotSealedBy(Scope::Org(kOrgA), "k5", 100));
  EXPECT_EQ(Keys(a), (std::vector<std::string>{"b", "c", "d", "e"}));
  for (const ConfigRow& row : a) {
    EXPECT_EQ(row.scope, Scope::Org(kOrgA));
    EXPECT_EQ(row.type, "secret");
    EXPECT_EQ(row.value, "env-a-" + row.key);
    EXPECT_EQ(row.version, 1);
  }
  ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> b,
                       txn->ListScopeConfigsNotSealedBy(Scope::Org(kOrgB), "k5", 100));
  EXPECT_EQ(Keys(b), (std::vector<std::string>{"a"}));
  ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> global,
                       txn->ListScopeConfigsNotSealedBy(Scope::Global(), "k5", 100));
  ASSERT_EQ(global.size(), 1u);
  EXPECT_EQ(global[0].value, "env-g-a");
  EXPECT_TRUE(global[0].scope.is_global());
  ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> missing,
                       txn->ListScopeConfigsNotSealedBy(Scope::Org(kMissingOrg), "k5", 100));
  EXPECT_TRUE(missing.empty());

  // A limit gives that many rows, ordered by key; 0 gives none.
  ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> two,
                       txn->ListScopeConfigsNotSealedBy(Scope::Org(kOrgA), "k5", 2));
  ASSERT_EQ(two.size(), 2u);
  EXPECT_LT(two[0].key, two[1].key);
  for (const ConfigRow& row : two) EXPECT_NE(row.key_id, std::optional<std::string>("k5"));
  ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> none,
                       txn->ListScopeConfigsNotSealedBy(Scope::Org(kOrgA), "k5", 0));
  EXPECT_TRUE(none.empty());
  // Every secret of the scope is "not sealed by" a key nobody used.
  ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> all,
                       txn->ListScopeConfigsNotSealedBy(Scope::Org(kOrgA), "k0", 100));
  EXPECT_EQ(Keys(all), (std::vector<std::string>{"a", "b", "c", "d", "e"}));
}

// The loop of a data-key rotation: list a batch, re-seal it, until nothing is left. It ends,
// re-seals every row of the scope exactly once and touches no other scope.
TEST_P(StoreConformanceTest, RotationLoopWithResealConfigFinishes) {
  CreateTwoOrgs(store());
  constexpr int kRows = 23;
  InWriteTxn(store(), [](Txn& txn) {
    for (int i = 0; i < kRows; ++i) {
      std::string key = "s";
      key += std::to_string(100 + i);
      // Old values under three keys, on both sides of the new one.
      const std::string old_key = i % 3 == 0 ? "k1" : (i % 3 == 1 ? "k7" : "k3");
      ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Org(kOrgA), key, "old-" + key, old_key)));
    }
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Org(kOrgB), "other", "old-other", "k1")));
  });
  int batches = 0;
  int resealed = 0;
  std::vector<std::string> seen;
  while (true) {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> batch,
                         txn->ListScopeConfigsNotSealedBy(Scope::Org(kOrgA), "k5", 5));
    if (batch.empty()) break;
    ASSERT_LE(batch.size(), 5u);
    for (std::size_t i = 1; i < batch.size(); ++i) EXPECT_LT(batch[i - 1].key, batch[i].key);
    for (const ConfigRow& row : batch) {
      ASSERT_OK(txn->ResealConfig(row.scope, row.key, row.value, "new-" + row.key, "k5"));
      seen.push_back(row.key);
      ++resealed;
    }
    ASSERT_OK(txn->Commit());
    ++batches;
    ASSERT_LE(batches, 5) << "rotation does not terminate";
  }
  EXPECT_EQ(batches, 5);
  EXPECT_EQ(resealed, kRows);
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(std::adjacent_find(seen.begin(), seen.end()), seen.end()) << "a row came back";

  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> rows, txn->ListConfigs(Scope::Org(kOrgA)));
  ASSERT_EQ(rows.size(), static_cast<std::size_t>(kRows));
  for (const ConfigRow& row : rows) {
    EXPECT_EQ(row.value, "new-" + row.key);
    EXPECT_EQ(row.key_id, std::optional<std::string>("k5"));
    EXPECT_EQ(row.version, 1);
  }
  ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> other, txn->GetConfig(Scope::Org(kOrgB), "other"));
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(other->value, "old-other");
}

TEST_P(StoreConformanceTest, CountSealedConfigsGroupsByScopeAndKey) {
  CreateTwoOrgs(store());
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
    ASSERT_OK_AND_ASSIGN(std::vector<SealedCount> empty, txn->CountSealedConfigs());
    EXPECT_TRUE(empty.empty());
  }
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Org(kOrgB), "x", "e", "k1")));
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Org(kOrgA), "x", "e", "k2")));
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Org(kOrgA), "y", "e", "k1")));
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Org(kOrgA), "z", "e", "k2")));
    ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Org(kOrgA), "plain", "v")));
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Global(), "x", "e", "k9")));
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Global(), "y", "e", "k0")));
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Global(), "z", "e", "k9")));
    ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Global(), "plain", "v")));
  });
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<SealedCount> counts, txn->CountSealedConfigs());
  // Global first, then organizations by id (kOrgA < kOrgB); within a scope by key id.
  ASSERT_EQ(counts.size(), 5u);
  const std::vector<std::tuple<Scope, std::string, std::int64_t>> expected = {
      {Scope::Global(), "k0", 1},   {Scope::Global(), "k9", 2},   {Scope::Org(kOrgA), "k1", 1},
      {Scope::Org(kOrgA), "k2", 2}, {Scope::Org(kOrgB), "k1", 1},
  };
  for (std::size_t i = 0; i < counts.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(counts[i].scope, std::get<0>(expected[i]));
    EXPECT_EQ(counts[i].key_id, std::get<1>(expected[i]));
    EXPECT_EQ(counts[i].count, std::get<2>(expected[i]));
  }
}

// ---- Data keys

DataKeyRow MakeDataKey(const std::string& id, Scope scope, const std::string& state,
                       UnixMicros created_at = kT0, const std::string& purpose = "config") {
  DataKeyRow row;
  row.id = id;
  row.purpose = purpose;
  row.scope = std::move(scope);
  row.state = state;
  row.wrapped = "gAAAAA-wrapped-" + id;
  row.master_key_id = "mk1";
  row.created_at = created_at;
  return row;
}

void ExpectSameDataKey(const DataKeyRow& actual, const DataKeyRow& expected) {
  EXPECT_EQ(actual.id, expected.id);
  EXPECT_EQ(actual.purpose, expected.purpose);
  EXPECT_EQ(actual.scope, expected.scope) << "scope " << actual.scope.name();
  EXPECT_EQ(actual.state, expected.state);
  EXPECT_EQ(actual.wrapped, expected.wrapped);
  EXPECT_EQ(actual.master_key_id, expected.master_key_id);
  EXPECT_EQ(actual.created_at, expected.created_at);
}

std::vector<std::string> DataKeyIds(const std::vector<DataKeyRow>& rows) {
  std::vector<std::string> ids;
  for (const DataKeyRow& row : rows) ids.push_back(row.id);
  return ids;
}

TEST_P(StoreConformanceTest, DataKeyInsertAndGet) {
  CreateTwoOrgs(store());
  DataKeyRow org_key = MakeDataKey("dk-a", Scope::Org(kOrgA), "active", kT1);
  org_key.master_key_id = "0123456789abcdef";
  const DataKeyRow global_key = MakeDataKey("dk-g", Scope::Global(), "active", kT2);
  const DataKeyRow audit_key = MakeDataKey("ak-1", Scope::Global(), "retired", kT0, "audit");
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK(txn.InsertDataKey(org_key));
    ASSERT_OK(txn.InsertDataKey(global_key));
    ASSERT_OK(txn.InsertDataKey(audit_key));
    // A write transaction sees its own writes.
    ASSERT_OK_AND_ASSIGN(std::optional<DataKeyRow> own, txn.GetDataKey("dk-a"));
    ASSERT_TRUE(own.has_value());
  });
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  for (const DataKeyRow* expected :
       std::initializer_list<const DataKeyRow*>{&org_key, &global_key, &audit_key}) {
    ASSERT_OK_AND_ASSIGN(std::optional<DataKeyRow> got, txn->GetDataKey(expected->id));
    ASSERT_TRUE(got.has_value()) << expected->id;
    ExpectSameDataKey(*got, *expected);
  }
  ASSERT_OK_AND_ASSIGN(std::optional<DataKeyRow> missing, txn->GetDataKey("nope"));
  EXPECT_FALSE(missing.has_value());
}

TEST_P(StoreConformanceTest, AtMostOneActiveConfigKeyPerScope) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertDataKey(MakeDataKey("a1", Scope::Org(kOrgA), "active")));
    ASSERT_OK(txn.InsertDataKey(MakeDataKey("b1", Scope::Org(kOrgB), "active")));
    ASSERT_OK(txn.InsertDataKey(MakeDataKey("g1", Scope::Global(), "active")));
    // Retired keys and audit keys do not count.
    ASSERT_OK(txn.InsertDataKey(MakeDataKey("a2", Scope::Org(kOrgA), "retired")));
    ASSERT_OK(txn.InsertDataKey(MakeDataKey("a3", Scope::Org(kOrgA), "retired")));
    ASSERT_OK(txn.InsertDataKey(MakeDataKey("g2", Scope::Global(), "retired")));
    ASSERT_OK(txn.InsertDataKey(MakeDataKey("m1", Scope::Global(), "retired", kT0, "audit")));
    ASSERT_OK(txn.InsertDataKey(MakeDataKey("m2", Scope::Global(), "retired", kT0, "audit")));
  });
  const std::pair<DataKeyRow, const char*> refused[] = {
      {MakeDataKey("a1", Scope::Org(kOrgB), "retired"), "duplicate id"},
      {MakeDataKey("m1", Scope::Global(), "retired", kT0, "audit"), "duplicate audit id"},
      {MakeDataKey("a9", Scope::Org(kOrgA), "active"), "second active key of an org"},
      {MakeDataKey("g9", Scope::Global(), "active"), "second active global key"},
  };
  for (const auto& [row, why] : refused) {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->InsertDataKey(row), ErrorCode::kAlreadyExists);
  }
  // The same rule when a key is made active by SetDataKeyState.
  for (const char* id : {"a2", "g2"}) {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->SetDataKeyState(id, "active"), ErrorCode::kAlreadyExists);
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<DataKeyRow> all, txn->ListDataKeys("", 100));
  EXPECT_EQ(DataKeyIds(all),
            (std::vector<std::string>{"a1", "a2", "a3", "b1", "g1", "g2", "m1", "m2"}));
  ASSERT_OK_AND_ASSIGN(std::optional<DataKeyRow> a1, txn->GetDataKey("a1"));
  ASSERT_TRUE(a1.has_value());
  EXPECT_EQ(a1->scope, Scope::Org(kOrgA));
}

TEST_P(StoreConformanceTest, DataKeyOfMissingOrgIsFailedPrecondition) {
  CreateTwoOrgs(store());
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->InsertDataKey(MakeDataKey("x1", Scope::Org(kMissingOrg), "active")),
                      ErrorCode::kFailedPrecondition);
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::optional<DataKeyRow> row, txn->GetDataKey("x1"));
  EXPECT_FALSE(row.has_value());
}

TEST_P(StoreConformanceTest, InvalidDataKeysAreRejected) {
  CreateTwoOrgs(store());
  DataKeyRow bad_purpose = MakeDataKey("x1", Scope::Global(), "retired");
  bad_purpose.purpose = "signing";
  DataKeyRow bad_state = MakeDataKey("x2", Scope::Global(), "spare");
  DataKeyRow org_audit = MakeDataKey("x3", Scope::Org(kOrgA), "retired", kT0, "audit");
  DataKeyRow active_audit = MakeDataKey("x4", Scope::Global(), "active", kT0, "audit");
  DataKeyRow no_wrapped = MakeDataKey("x5", Scope::Global(), "retired");
  no_wrapped.wrapped.clear();
  DataKeyRow no_master = MakeDataKey("x6", Scope::Global(), "retired");
  no_master.master_key_id.clear();
  for (const DataKeyRow* row :
       {&bad_purpose, &bad_state, &org_audit, &active_audit, &no_wrapped, &no_master}) {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->InsertDataKey(*row), ErrorCode::kInvalidArgument);
  }
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertDataKey(MakeDataKey("g1", Scope::Global(), "retired")));
  });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->SetDataKeyState("g1", "spare"), ErrorCode::kInvalidArgument);
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<DataKeyRow> all, txn->ListDataKeys("", 100));
  EXPECT_EQ(DataKeyIds(all), (std::vector<std::string>{"g1"}));
  EXPECT_EQ(all[0].state, "retired");
}

TEST_P(StoreConformanceTest, ListScopeDataKeysIsActiveFirstThenRetiredByAge) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertDataKey(MakeDataKey("a-old", Scope::Org(kOrgA), "retired", kT0)));
    ASSERT_OK(txn.InsertDataKey(MakeDataKey("a-new", Scope::Org(kOrgA), "active", kT2)));
    ASSERT_OK(txn.InsertDataKey(MakeDataKey("a-mid", Scope::Org(kOrgA), "retired", kT1)));
    ASSERT_OK(txn.InsertDataKey(MakeDataKey("b-1", Scope::Org(kOrgB), "retired", kT0)));
    ASSERT_OK(txn.InsertDataKey(MakeDataKey("g-1", Scope::Global(), "retired", kT1)));
    ASSERT_OK(txn.InsertDataKey(MakeDataKey("g-0", Scope::Global(), "active", kT0)));
    // Audit keys are global but seal no config: never listed as a scope's keys.
    ASSERT_OK(txn.InsertDataKey(MakeDataKey("m-1", Scope::Global(), "retired", kT0, "audit")));
  });
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<DataKeyRow> a, txn->ListScopeDataKeys(Scope::Org(kOrgA)));
  EXPECT_EQ(DataKeyIds(a), (std::vector<std::string>{"a-new", "a-old", "a-mid"}));
  ASSERT_EQ(a.size(), 3u);
  ExpectSameDataKey(a[0], MakeDataKey("a-new", Scope::Org(kOrgA), "active", kT2));
  ASSERT_OK_AND_ASSIGN(std::vector<DataKeyRow> b, txn->ListScopeDataKeys(Scope::Org(kOrgB)));
  EXPECT_EQ(DataKeyIds(b), (std::vector<std::string>{"b-1"}));  // no active key: none first
  ASSERT_OK_AND_ASSIGN(std::vector<DataKeyRow> global, txn->ListScopeDataKeys(Scope::Global()));
  EXPECT_EQ(DataKeyIds(global), (std::vector<std::string>{"g-0", "g-1"}));
  ASSERT_OK_AND_ASSIGN(std::vector<DataKeyRow> none,
                       txn->ListScopeDataKeys(Scope::Org(kMissingOrg)));
  EXPECT_TRUE(none.empty());
}

TEST_P(StoreConformanceTest, ListDataKeysPagesThroughEveryKeyById) {
  CreateTwoOrgs(store());
  std::vector<std::string> ids;
  InWriteTxn(store(), [&](Txn& txn) {
    for (int i = 0; i < 25; ++i) {
      // Not inserted in id order; scopes and purposes mixed.
      std::string id = "dk";
      id += std::to_string(100 + (i * 7) % 25);
      ids.push_back(id);
      const Scope scope = i % 3 == 0 ? Scope::Global() : Scope::Org(i % 3 == 1 ? kOrgA : kOrgB);
      const bool audit = scope.is_global() && i % 2 == 0;
      ASSERT_OK(
          txn.InsertDataKey(MakeDataKey(id, scope, "retired", kT0, audit ? "audit" : "config")));
    }
  });
  std::sort(ids.begin(), ids.end());
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  std::vector<std::string> paged;
  std::string after;
  int pages = 0;
  while (true) {
    ASSERT_OK_AND_ASSIGN(std::vector<DataKeyRow> page, txn->ListDataKeys(after, 10));
    if (page.empty()) break;
    ASSERT_LE(page.size(), 10u);
    for (const DataKeyRow& row : page) paged.push_back(row.id);
    after = page.back().id;
    ++pages;
    ASSERT_LE(pages, 4);
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(paged, ids);
  ASSERT_OK_AND_ASSIGN(std::vector<DataKeyRow> from_middle, txn->ListDataKeys("dk112", 3));
  EXPECT_EQ(DataKeyIds(from_middle), (std::vector<std::string>{"dk113", "dk114", "dk115"}));
  ASSERT_OK_AND_ASSIGN(std::vector<DataKeyRow> zero, txn->ListDataKeys("", 0));
  EXPECT_TRUE(zero.empty());
}

TEST_P(StoreConformanceTest, RewrapDataKeyChecksTheMasterKeyItReplaces) {
  CreateTwoOrgs(store());
  const DataKeyRow original = MakeDataKey("dk-a", Scope::Org(kOrgA), "active", kT1);
  InWriteTxn(store(), [&](Txn& txn) { ASSERT_OK(txn.InsertDataKey(original)); });
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.RewrapDataKey("dk-a", "gAAAAA-rewrapped", "mk2", "mk1"));
  });
  {
    // Another rotation got there first: the row is no longer wrapped by mk1.
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->RewrapDataKey("dk-a", "gAAAAA-stale", "mk3", "mk1"),
                      ErrorCode::kConflict);
  }
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->RewrapDataKey("nope", "gAAAAA-x", "mk2", "mk1"), ErrorCode::kNotFound);
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::optional<DataKeyRow> row, txn->GetDataKey("dk-a"));
  ASSERT_TRUE(row.has_value());
  DataKeyRow expected = original;
  expected.wrapped = "gAAAAA-rewrapped";
  expected.master_key_id = "mk2";
  ExpectSameDataKey(*row, expected);
}

TEST_P(StoreConformanceTest, SetDataKeyStateRotatesTheActiveKey) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertDataKey(MakeDataKey("old", Scope::Org(kOrgA), "active", kT0)));
  });
  // A rotation's first step: retire the old key and add the new one, in one transaction.
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.SetDataKeyState("old", "retired"));
    ASSERT_OK(txn.InsertDataKey(MakeDataKey("new", Scope::Org(kOrgA), "active", kT1)));
    // Setting the state a key already has is fine.
    ASSERT_OK(txn.SetDataKeyState("new", "active"));
  });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->SetDataKeyState("nope", "retired"), ErrorCode::kNotFound);
  }
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
    ASSERT_OK_AND_ASSIGN(std::vector<DataKeyRow> keys, txn->ListScopeDataKeys(Scope::Org(kOrgA)));
    EXPECT_EQ(DataKeyIds(keys), (std::vector<std::string>{"new", "old"}));
    ASSERT_EQ(keys.size(), 2u);
    EXPECT_EQ(keys[0].state, "active");
    EXPECT_EQ(keys[1].state, "retired");
  }
  // The last step: the retired key is destroyed.
  InWriteTxn(store(), [](Txn& txn) { ASSERT_OK(txn.DeleteDataKey("old")); });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->DeleteDataKey("old"), ErrorCode::kNotFound);
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<DataKeyRow> keys, txn->ListScopeDataKeys(Scope::Org(kOrgA)));
  EXPECT_EQ(DataKeyIds(keys), (std::vector<std::string>{"new"}));
  ASSERT_OK_AND_ASSIGN(std::optional<DataKeyRow> old, txn->GetDataKey("old"));
  EXPECT_FALSE(old.has_value());
}

// Crypto-shredding: an organization's data keys go with it; other scopes keep theirs, and a
// re-created organization with the same id starts without keys.
TEST_P(StoreConformanceTest, DeleteOrgCascadesToItsDataKeysOnly) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertDataKey(MakeDataKey("a1", Scope::Org(kOrgA), "active")));
    ASSERT_OK(txn.InsertDataKey(MakeDataKey("a2", Scope::Org(kOrgA), "retired")));
    ASSERT_OK(txn.InsertDataKey(MakeDataKey("b1", Scope::Org(kOrgB), "active")));
    ASSERT_OK(txn.InsertDataKey(MakeDataKey("g1", Scope::Global(), "active")));
    ASSERT_OK(txn.InsertDataKey(MakeDataKey("m1", Scope::Global(), "retired", kT0, "audit")));
  });
  InWriteTxn(store(), [](Txn& txn) { ASSERT_OK(txn.DeleteOrg(kOrgA)); });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
    ASSERT_OK_AND_ASSIGN(std::vector<DataKeyRow> all, txn->ListDataKeys("", 100));
    EXPECT_EQ(DataKeyIds(all), (std::vector<std::string>{"b1", "g1", "m1"}));
    ASSERT_OK_AND_ASSIGN(std::optional<DataKeyRow> a1, txn->GetDataKey("a1"));
    EXPECT_FALSE(a1.has_value());
    ASSERT_OK_AND_ASSIGN(std::vector<DataKeyRow> a, txn->ListScopeDataKeys(Scope::Org(kOrgA)));
    EXPECT_TRUE(a.empty());
  }
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertOrg(MakeOrg(kOrgA, "acme-again")));
    ASSERT_OK_AND_ASSIGN(std::vector<DataKeyRow> fresh, txn.ListScopeDataKeys(Scope::Org(kOrgA)));
    EXPECT_TRUE(fresh.empty());
    // The old ids are free again: nothing half-deleted is left behind.
    ASSERT_OK(txn.InsertDataKey(MakeDataKey("a1", Scope::Org(kOrgA), "active")));
  });
}

// ReleaseDeletedData is implemented by every backend: with no transaction open it succeeds,
// again and again, and changes no row (what it removes from the files is backend-specific
// and tested with each backend).
TEST_P(StoreConformanceTest, ReleaseDeletedDataSucceedsAndChangesNoRow) {
  ASSERT_OK(store().ReleaseDeletedData());  // nothing deleted yet
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertDataKey(MakeDataKey("a1", Scope::Org(kOrgA), "active")));
    ASSERT_OK(txn.InsertDataKey(MakeDataKey("b1", Scope::Org(kOrgB), "active")));
  });
  InWriteTxn(store(), [](Txn& txn) { ASSERT_OK(txn.DeleteOrg(kOrgA)); });
  ASSERT_OK(store().ReleaseDeletedData());
  ASSERT_OK(store().ReleaseDeletedData());
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
    ASSERT_OK_AND_ASSIGN(std::vector<DataKeyRow> all, txn->ListDataKeys("", 100));
    EXPECT_EQ(DataKeyIds(all), (std::vector<std::string>{"b1"}));
    ASSERT_OK_AND_ASSIGN(std::vector<OrgRow> orgs, txn->ListOrgs());
    ASSERT_EQ(orgs.size(), 1u);
    EXPECT_EQ(orgs[0].id, kOrgB);
  }
  // The store goes on working after it.
  InWriteTxn(store(), [](Txn& txn) { ASSERT_OK(txn.InsertOrg(MakeOrg(kOrgA, "acme-again"))); });
}

TEST_P(StoreConformanceTest, UncommittedDataKeysAndJobsLeaveNoTrace) {
  CreateTwoOrgs(store());
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    ASSERT_OK(txn->InsertDataKey(MakeDataKey("a1", Scope::Org(kOrgA), "active")));
    ASSERT_OK(txn->InsertKeyJob(
        KeyJobRow{.kind = "data", .target = "*", .actor = "op", .started_at = kT0}));
    // Destroyed without Commit.
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<DataKeyRow> keys, txn->ListDataKeys("", 100));
  EXPECT_TRUE(keys.empty());
  ASSERT_OK_AND_ASSIGN(std::vector<KeyJobRow> jobs, txn->ListUnfinishedKeyJobs());
  EXPECT_TRUE(jobs.empty());
}

TEST_P(StoreConformanceTest, KeyRotationWritesOnReadTxnAreRejected) {
  CreateTwoOrgs(store());
  std::int64_t job = 0;
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK(txn.InsertConfig(MakeSecret(Scope::Global(), "s", "env-1", "k1")));
    ASSERT_OK(txn.InsertDataKey(MakeDataKey("g1", Scope::Global(), "active")));
    ASSERT_OK_AND_ASSIGN(
        job, txn.InsertKeyJob(
                 KeyJobRow{.kind = "master", .target = "", .actor = "op", .started_at = kT0}));
  });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
    EXPECT_ERROR_CODE(txn->ResealConfig(Scope::Global(), "s", "env-1", "env-2", "k2"),
                      ErrorCode::kFailedPrecondition);
    EXPECT_ERROR_CODE(txn->InsertDataKey(MakeDataKey("g2", Scope::Global(), "retired")),
                      ErrorCode::kFailedPrecondition);
    EXPECT_ERROR_CODE(txn->RewrapDataKey("g1", "w", "mk2", "mk1"), ErrorCode::kFailedPrecondition);
    EXPECT_ERROR_CODE(txn->SetDataKeyState("g1", "retired"), ErrorCode::kFailedPrecondition);
    EXPECT_ERROR_CODE(txn->DeleteDataKey("g1"), ErrorCode::kFailedPrecondition);
    EXPECT_ERROR_CODE(txn->InsertKeyJob(KeyJobRow{
                          .kind = "data", .target = "*", .actor = "op", .started_at = kT0}),
                      ErrorCode::kFailedPrecondition);
    EXPECT_ERROR_CODE(txn->FinishKeyJob(job, kT1), ErrorCode::kFailedPrecondition);
    ASSERT_OK(txn->Commit());
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> s, txn->GetConfig(Scope::Global(), "s"));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->value, "env-1");
  ASSERT_OK_AND_ASSIGN(std::vector<DataKeyRow> keys, txn->ListDataKeys("", 100));
  ASSERT_EQ(keys.size(), 1u);
  ExpectSameDataKey(keys[0], MakeDataKey("g1", Scope::Global(), "active"));
  ASSERT_OK_AND_ASSIGN(std::vector<KeyJobRow> jobs, txn->ListUnfinishedKeyJobs());
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].id, job);
}

// Error messages about data keys name the key, never its wrapped form.
TEST_P(StoreConformanceTest, DataKeyErrorMessagesNeverContainTheWrappedKey) {
  CreateTwoOrgs(store());
  const DataKeyRow row = MakeDataKey("a1", Scope::Org(kOrgA), "active");
  InWriteTxn(store(), [&](Txn& txn) { ASSERT_OK(txn.InsertDataKey(row)); });
  std::vector<Error> errors;
  auto collect = [&](const Status& status) {
    ASSERT_FALSE(status.has_value());
    errors.push_back(status.error());
  };
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    collect(txn->InsertDataKey(row));
  }
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    DataKeyRow second = MakeDataKey("a2", Scope::Org(kOrgA), "active");
    second.wrapped = row.wrapped;
    collect(txn->InsertDataKey(second));
  }
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    collect(txn->RewrapDataKey("a1", row.wrapped, "mk2", "mk9"));
  }
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    DataKeyRow orphan = MakeDataKey("x1", Scope::Org(kMissingOrg), "active");
    orphan.wrapped = row.wrapped;
    collect(txn->InsertDataKey(orphan));
  }
  ASSERT_EQ(errors.size(), 4u);
  for (const Error& error : errors) {
    EXPECT_EQ(error.message().find(row.wrapped), std::string::npos) << error.ToString();
    EXPECT_EQ(error.message().find("gAAAAA"), std::string::npos) << error.ToString();
  }
}

// ---- Key rotation jobs

TEST_P(StoreConformanceTest, KeyJobsInsertFindListAndFinish) {
  std::int64_t master = 0;
  std::int64_t data_all = 0;
  std::int64_t data_org = 0;
  std::int64_t data_all_again = 0;
  std::int64_t done = 0;
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK_AND_ASSIGN(
        master, txn.InsertKeyJob(KeyJobRow{
                    .kind = "master", .target = "", .actor = "op alice", .started_at = kT0}));
    ASSERT_OK_AND_ASSIGN(data_all,
                         txn.InsertKeyJob(KeyJobRow{
                             .kind = "data", .target = "*", .actor = "op bob", .started_at = kT1}));
    ASSERT_OK_AND_ASSIGN(
        data_org, txn.InsertKeyJob(KeyJobRow{
                      .kind = "data", .target = kOrgA, .actor = "op bob", .started_at = kT1}));
    ASSERT_OK_AND_ASSIGN(
        data_all_again,
        txn.InsertKeyJob(
            KeyJobRow{.kind = "data", .target = "*", .actor = "op carol", .started_at = kT1}));
    ASSERT_OK_AND_ASSIGN(done, txn.InsertKeyJob(KeyJobRow{.kind = "data",
                                                          .target = "global",
                                                          .actor = "op",
                                                          .started_at = kT0,
                                                          .finished_at = kT1}));
  });
  EXPECT_LT(master, data_all);
  EXPECT_LT(data_all, data_org);
  EXPECT_LT(data_org, data_all_again);
  EXPECT_LT(data_all_again, done);
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
    // The most recent unfinished job of that kind and target.
    ASSERT_OK_AND_ASSIGN(std::optional<KeyJobRow> all, txn->GetUnfinishedKeyJob("data", "*"));
    ASSERT_TRUE(all.has_value());
    EXPECT_EQ(all->id, data_all_again);
    EXPECT_EQ(all->kind, "data");
    EXPECT_EQ(all->target, "*");
    EXPECT_EQ(all->actor, "op carol");
    EXPECT_EQ(all->started_at, kT1);
    EXPECT_FALSE(all->finished_at.has_value());
    ASSERT_OK_AND_ASSIGN(std::optional<KeyJobRow> m, txn->GetUnfinishedKeyJob("master", ""));
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->id, master);
    EXPECT_EQ(m->actor, "op alice");
    EXPECT_EQ(m->started_at, kT0);
    ASSERT_OK_AND_ASSIGN(std::optional<KeyJobRow> finished,
                         txn->GetUnfinishedKeyJob("data", "global"));
    EXPECT_FALSE(finished.has_value());
    ASSERT_OK_AND_ASSIGN(std::optional<KeyJobRow> other_kind,
                         txn->GetUnfinishedKeyJob("master", "*"));
    EXPECT_FALSE(other_kind.has_value());
    ASSERT_OK_AND_ASSIGN(std::vector<KeyJobRow> unfinished, txn->ListUnfinishedKeyJobs());
    std::vector<std::int64_t> ids;
    for (const KeyJobRow& job : unfinished) ids.push_back(job.id);
    EXPECT_EQ(ids, (std::vector<std::int64_t>{master, data_all, data_org, data_all_again}));
  }
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK(txn.FinishKeyJob(data_all_again, kT2));
    // Finishing again keeps the first time and is not an error.
    ASSERT_OK(txn.FinishKeyJob(data_all_again, kT2 + 5));
    ASSERT_OK(txn.FinishKeyJob(done, kT2));
  });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->FinishKeyJob(done + 1000, kT2), ErrorCode::kNotFound);
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  // The older unfinished "*" job is found again once the newer one finished.
  ASSERT_OK_AND_ASSIGN(std::optional<KeyJobRow> all, txn->GetUnfinishedKeyJob("data", "*"));
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(all->id, data_all);
  ASSERT_OK_AND_ASSIGN(std::vector<KeyJobRow> unfinished, txn->ListUnfinishedKeyJobs());
  ASSERT_EQ(unfinished.size(), 3u);
  EXPECT_EQ(unfinished[0].id, master);
  EXPECT_EQ(unfinished[1].id, data_all);
  EXPECT_EQ(unfinished[2].id, data_org);
  EXPECT_EQ(unfinished[2].target, kOrgA);
}

// ---- Workflow executions

const std::string kExec1 = "3c9e6f2a-1b4d-4e8f-a7c5-0d2e4f6a0001";
const std::string kExec2 = "3c9e6f2a-1b4d-4e8f-a7c5-0d2e4f6a0002";
const std::string kExec3 = "3c9e6f2a-1b4d-4e8f-a7c5-0d2e4f6a0003";
const std::string kExec4 = "3c9e6f2a-1b4d-4e8f-a7c5-0d2e4f6a0004";
const std::string kExec5 = "3c9e6f2a-1b4d-4e8f-a7c5-0d2e4f6a0005";
const std::string kExec6 = "3c9e6f2a-1b4d-4e8f-a7c5-0d2e4f6a0006";
const std::string kExec7 = "3c9e6f2a-1b4d-4e8f-a7c5-0d2e4f6a0007";
const std::string kExec8 = "3c9e6f2a-1b4d-4e8f-a7c5-0d2e4f6a0008";
const std::string kMissingExec = "3c9e6f2a-1b4d-4e8f-a7c5-0d2e4f6a00ff";

// A queued execution: every optional field unset, nothing logged.
ExecutionRow MakeExecution(const std::string& id, const std::string& org_id,
                           UnixMicros created_at = kT0, const std::string& workflow = "sync_users",
                           const std::string& status = "pending") {
  ExecutionRow row;
  row.id = id;
  row.workflow = workflow;
  row.org_id = org_id;
  row.caller_id = kTok1;
  row.caller_name = "ci deploy";
  row.status = status;
  row.parameters = R"({"dry_run":false})";
  row.timeout_seconds = 300;
  row.created_at = created_at;
  return row;
}

void ExpectSameExecution(const ExecutionRow& actual, const ExecutionRow& expected) {
  EXPECT_EQ(actual.id, expected.id);
  EXPECT_EQ(actual.workflow, expected.workflow);
  EXPECT_EQ(actual.org_id, expected.org_id);
  EXPECT_EQ(actual.caller_id, expected.caller_id);
  EXPECT_EQ(actual.caller_name, expected.caller_name);
  EXPECT_EQ(actual.status, expected.status);
  EXPECT_EQ(actual.parameters, expected.parameters);
  EXPECT_EQ(actual.result, expected.result);
  EXPECT_EQ(actual.error, expected.error);
  EXPECT_EQ(actual.logs, expected.logs);
  EXPECT_EQ(actual.logs_truncated, expected.logs_truncated);
  EXPECT_EQ(actual.timeout_seconds, expected.timeout_seconds);
  EXPECT_EQ(actual.created_at, expected.created_at);
  EXPECT_EQ(actual.started_at, expected.started_at);
  EXPECT_EQ(actual.finished_at, expected.finished_at);
  EXPECT_EQ(actual.node_id, expected.node_id);
  EXPECT_EQ(actual.cancel_requested_by, expected.cancel_requested_by);
}

// The start-up sweep of a node that is the only one (no other node is alive): every other
// node's unfinished execution is orphaned.
const std::string kSweeper = "sweeping-node";
constexpr UnixMicros kEveryNodeStale = std::numeric_limits<UnixMicros>::max();

using IdList = std::vector<std::string>;

IdList ExecutionIds(const std::vector<ExecutionRow>& rows) {
  IdList ids;
  for (const ExecutionRow& row : rows) ids.push_back(row.id);
  return ids;
}

// The ids ListExecutions returns, or {"error"} (which no test expects) after reporting one.
IdList ListExecutionIds(Txn& txn, const ExecutionFilter& filter) {
  Result<std::vector<ExecutionRow>> rows = txn.ListExecutions(filter);
  if (!rows) {
    ADD_FAILURE() << rows.error().ToString();
    return {"error"};
  }
  return ExecutionIds(*rows);
}

// The execution as committed, or nullopt (after reporting why) when it cannot be read.
std::optional<ExecutionRow> CommittedExecution(Store& store, const std::string& id) {
  auto txn = store.Begin(TxnMode::kRead);
  if (!txn) {
    ADD_FAILURE() << txn.error().ToString();
    return std::nullopt;
  }
  auto row = (*txn)->GetExecution(id);
  if (!row) {
    ADD_FAILURE() << row.error().ToString();
    return std::nullopt;
  }
  return *row;
}

TEST_P(StoreConformanceTest, ExecutionInsertAndGetRoundTripsEveryField) {
  CreateTwoOrgs(store());
  // Every optional field set, every column a distinct value.
  ExecutionRow full = MakeExecution(kExec1, kOrgA, kT1, "rotate_keys", "failed");
  full.caller_id = kTok2;
  full.caller_name = "alice ✓";  // UTF-8
  full.parameters = R"({"region":"eu-west-1","batch":50})";
  full.result = R"({"partial":[1,2]})";
  full.error = "RuntimeError: upstream returned 503";
  full.logs = "starting\nwarning: slow ✓\n\ttabbed line\n";
  full.logs_truncated = true;
  full.timeout_seconds = 86'400;
  full.started_at = kT1 + 5;
  full.finished_at = kT2;
  // Every optional field unset, empty logs, a zero timeout.
  ExecutionRow bare = MakeExecution(kExec2, kOrgB, kT0);
  bare.parameters = "{}";
  bare.timeout_seconds = 0;
  // Set but empty is not unset.
  ExecutionRow empty = MakeExecution(kExec3, kOrgA, kT2, "sync_users", "success");
  empty.result = "";
  empty.error = "";
  empty.started_at = 0;
  empty.finished_at = 0;
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK(txn.InsertExecution(full));
    ASSERT_OK(txn.InsertExecution(bare));
    ASSERT_OK(txn.InsertExecution(empty));
    // A write transaction sees its own writes.
    ASSERT_OK_AND_ASSIGN(std::optional<ExecutionRow> own, txn.GetExecution(kExec1));
    ASSERT_TRUE(own.has_value());
    ExpectSameExecution(*own, full);
  });

  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  for (const ExecutionRow* expected : {&full, &bare, &empty}) {
    SCOPED_TRACE(expected->id);
    ASSERT_OK_AND_ASSIGN(std::optional<ExecutionRow> got, txn->GetExecution(expected->id));
    ASSERT_TRUE(got.has_value());
    ExpectSameExecution(*got, *expected);
  }
  ASSERT_OK_AND_ASSIGN(std::optional<ExecutionRow> got_bare, txn->GetExecution(kExec2));
  ASSERT_TRUE(got_bare.has_value());
  EXPECT_FALSE(got_bare->result.has_value());
  EXPECT_FALSE(got_bare->error.has_value());
  EXPECT_FALSE(got_bare->started_at.has_value());
  EXPECT_FALSE(got_bare->finished_at.has_value());
  EXPECT_FALSE(got_bare->logs_truncated);
  ASSERT_OK_AND_ASSIGN(std::optional<ExecutionRow> got_empty, txn->GetExecution(kExec3));
  ASSERT_TRUE(got_empty.has_value());
  EXPECT_EQ(got_empty->result, std::optional<std::string>(""));
  EXPECT_EQ(got_empty->error, std::optional<std::string>(""));
  EXPECT_EQ(got_empty->started_at, std::optional<UnixMicros>(0));

  ASSERT_OK_AND_ASSIGN(std::optional<ExecutionRow> missing, txn->GetExecution(kMissingExec));
  EXPECT_FALSE(missing.has_value());
  // Ids are compared exactly.
  std::string upper = kExec1;
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  ASSERT_NE(upper, kExec1);
  ASSERT_OK_AND_ASSIGN(std::optional<ExecutionRow> other_case, txn->GetExecution(upper));
  EXPECT_FALSE(other_case.has_value());
}

TEST_P(StoreConformanceTest, ExecutionDuplicateIdIsAlreadyExists) {
  CreateTwoOrgs(store());
  const ExecutionRow original = MakeExecution(kExec1, kOrgA, kT0);
  InWriteTxn(store(), [&](Txn& txn) { ASSERT_OK(txn.InsertExecution(original)); });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    // Same id, everything else different (another org too).
    ExecutionRow same_id = MakeExecution(kExec1, kOrgB, kT1, "rotate_keys", "running");
    const Status inserted = txn->InsertExecution(same_id);
    EXPECT_ERROR_CODE(inserted, ErrorCode::kAlreadyExists);
    if (!inserted) {
      EXPECT_NE(inserted.error().message().find(kExec1), std::string::npos)
          << inserted.error().message();
    }
  }
  const std::optional<ExecutionRow> stored = CommittedExecution(store(), kExec1);
  ASSERT_TRUE(stored.has_value());
  ExpectSameExecution(*stored, original);
}

TEST_P(StoreConformanceTest, ExecutionOfMissingOrgIsFailedPrecondition) {
  CreateTwoOrgs(store());
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    const Status inserted = txn->InsertExecution(MakeExecution(kExec1, kMissingOrg));
    EXPECT_ERROR_CODE(inserted, ErrorCode::kFailedPrecondition);
    if (!inserted) {
      EXPECT_NE(inserted.error().message().find(kExec1), std::string::npos)
          << inserted.error().message();
      EXPECT_NE(inserted.error().message().find(kMissingOrg), std::string::npos)
          << inserted.error().message();
    }
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::optional<ExecutionRow> row, txn->GetExecution(kExec1));
  EXPECT_FALSE(row.has_value());
  EXPECT_EQ(ListExecutionIds(*txn, ExecutionFilter{}), IdList{});
}

TEST_P(StoreConformanceTest, ExecutionWithUnknownStatusIsRejected) {
  CreateTwoOrgs(store());
  const ExecutionRow original = MakeExecution(kExec1, kOrgA);
  InWriteTxn(store(), [&](Txn& txn) { ASSERT_OK(txn.InsertExecution(original)); });
  for (const std::string status : {"done", "", "Pending", "queued"}) {
    SCOPED_TRACE("status '" + status + "'");
    {
      ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
      EXPECT_FALSE(
          txn->InsertExecution(MakeExecution(kExec2, kOrgA, kT0, "w", status)).has_value());
    }
    {
      ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
      ExecutionRow changed = original;
      changed.status = status;
      EXPECT_FALSE(txn->UpdateExecution(changed).has_value());
    }
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  EXPECT_EQ(ListExecutionIds(*txn, ExecutionFilter{}), IdList{kExec1});
  ASSERT_OK_AND_ASSIGN(std::optional<ExecutionRow> stored, txn->GetExecution(kExec1));
  ASSERT_TRUE(stored.has_value());
  ExpectSameExecution(*stored, original);
}

TEST_P(StoreConformanceTest, UpdateExecutionReplacesItsFieldsAndKeepsTheRest) {
  CreateTwoOrgs(store());
  const ExecutionRow original = MakeExecution(kExec1, kOrgA, kT0);
  const ExecutionRow other = MakeExecution(kExec2, kOrgA, kT0);
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK(txn.InsertExecution(original));
    ASSERT_OK(txn.InsertExecution(other));
  });
  // What UpdateExecution keeps, changed in the row it is given: ignored.
  auto with_other_identity = [](ExecutionRow row) {
    row.workflow = "another_workflow";
    row.org_id = kMissingOrg;  // not even an existing org: the column is not written
    row.caller_id = kTok5;
    row.caller_name = "someone else";
    row.parameters = R"({"changed":true})";
    row.timeout_seconds = 1;
    row.created_at = kT2 + 99;
    return row;
  };

  // pending -> running
  ExecutionRow running = original;
  running.status = "running";
  running.started_at = kT1;
  running.logs = "starting\n";
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK(txn.UpdateExecution(with_other_identity(running)));
    // A write transaction sees its own update.
    ASSERT_OK_AND_ASSIGN(std::optional<ExecutionRow> own, txn.GetExecution(kExec1));
    ASSERT_TRUE(own.has_value());
    ExpectSameExecution(*own, running);
  });
  {
    SCOPED_TRACE("running");
    const std::optional<ExecutionRow> stored = CommittedExecution(store(), kExec1);
    ASSERT_TRUE(stored.has_value());
    ExpectSameExecution(*stored, running);
  }

  // running -> success: every replaced field set.
  ExecutionRow success = running;
  success.status = "success";
  success.result = R"({"synced":42})";
  success.error = "warning only";
  success.logs = "starting\nsynced 42 users\n";
  success.logs_truncated = true;
  success.finished_at = kT2;
  InWriteTxn(store(),
             [&](Txn& txn) { ASSERT_OK(txn.UpdateExecution(with_other_identity(success))); });
  {
    SCOPED_TRACE("success");
    const std::optional<ExecutionRow> stored = CommittedExecution(store(), kExec1);
    ASSERT_TRUE(stored.has_value());
    ExpectSameExecution(*stored, success);
  }

  // Every replaced field back to unset (or false, or empty): replaced, not merged.
  ExecutionRow cleared = original;
  cleared.status = "cancelled";
  InWriteTxn(store(),
             [&](Txn& txn) { ASSERT_OK(txn.UpdateExecution(with_other_identity(cleared))); });
  {
    SCOPED_TRACE("cleared");
    const std::optional<ExecutionRow> stored = CommittedExecution(store(), kExec1);
    ASSERT_TRUE(stored.has_value());
    ExpectSameExecution(*stored, cleared);
    EXPECT_FALSE(stored->result.has_value());
    EXPECT_FALSE(stored->error.has_value());
    EXPECT_FALSE(stored->started_at.has_value());
    EXPECT_FALSE(stored->finished_at.has_value());
    EXPECT_FALSE(stored->logs_truncated);
    EXPECT_EQ(stored->logs, "");
  }

  // The other execution was never touched.
  const std::optional<ExecutionRow> untouched = CommittedExecution(store(), kExec2);
  ASSERT_TRUE(untouched.has_value());
  ExpectSameExecution(*untouched, other);
}

TEST_P(StoreConformanceTest, UpdateMissingExecutionIsNotFound) {
  CreateTwoOrgs(store());
  const ExecutionRow original = MakeExecution(kExec1, kOrgA);
  InWriteTxn(store(), [&](Txn& txn) { ASSERT_OK(txn.InsertExecution(original)); });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    ExecutionRow missing = MakeExecution(kMissingExec, kOrgA, kT0, "sync_users", "running");
    missing.started_at = kT1;
    const Status updated = txn->UpdateExecution(missing);
    EXPECT_ERROR_CODE(updated, ErrorCode::kNotFound);
    if (!updated) {
      EXPECT_NE(updated.error().message().find(kMissingExec), std::string::npos)
          << updated.error().message();
    }
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  // Not created by the update, and the existing execution is unchanged.
  ASSERT_OK_AND_ASSIGN(std::optional<ExecutionRow> row, txn->GetExecution(kMissingExec));
  EXPECT_FALSE(row.has_value());
  EXPECT_EQ(ListExecutionIds(*txn, ExecutionFilter{}), IdList{kExec1});
  ASSERT_OK_AND_ASSIGN(std::optional<ExecutionRow> stored, txn->GetExecution(kExec1));
  ASSERT_TRUE(stored.has_value());
  ExpectSameExecution(*stored, original);
}

// Eight executions to list, inserted in this (not the listing) order. Times are offsets from
// kT0; 2, 3 and 4 share a creation time, and so do 5 and 8 (the id breaks the tie).
//
//   id  created org workflow     status
//   1   100     A   sync_users   success
//   2   200     A   rotate_keys  failed
//   3   200     B   sync_users   running
//   4   200     A   sync_users   pending
//   5   300     B   rotate_keys  success
//   6   150     A   sync_users   success
//   7   400     A   rotate_keys  cancelled
//   8   300     A   sync_users   timeout
//
// Newest first: 7, 8, 5, 4, 3, 2, 6, 1.
void InsertExecutionFixture(Store& store) {
  CreateTwoOrgs(store);
  if (::testing::Test::HasFatalFailure()) return;
  InWriteTxn(store, [](Txn& txn) {
    ASSERT_OK(
        txn.InsertExecution(MakeExecution(kExec1, kOrgA, kT0 + 100, "sync_users", "success")));
    ASSERT_OK(
        txn.InsertExecution(MakeExecution(kExec2, kOrgA, kT0 + 200, "rotate_keys", "failed")));
    ASSERT_OK(
        txn.InsertExecution(MakeExecution(kExec3, kOrgB, kT0 + 200, "sync_users", "running")));
    ASSERT_OK(
        txn.InsertExecution(MakeExecution(kExec4, kOrgA, kT0 + 200, "sync_users", "pending")));
    ASSERT_OK(
        txn.InsertExecution(MakeExecution(kExec5, kOrgB, kT0 + 300, "rotate_keys", "success")));
    ASSERT_OK(
        txn.InsertExecution(MakeExecution(kExec6, kOrgA, kT0 + 150, "sync_users", "success")));
    ASSERT_OK(
        txn.InsertExecution(MakeExecution(kExec7, kOrgA, kT0 + 400, "rotate_keys", "cancelled")));
    ASSERT_OK(
        txn.InsertExecution(MakeExecution(kExec8, kOrgA, kT0 + 300, "sync_users", "timeout")));
  });
}

TEST_P(StoreConformanceTest, ListExecutionsIsNewestFirstWithTheIdBreakingTies) {
  InsertExecutionFixture(store());
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<ExecutionRow> all, txn->ListExecutions(ExecutionFilter{}));
  EXPECT_EQ(ExecutionIds(all),
            (IdList{kExec7, kExec8, kExec5, kExec4, kExec3, kExec2, kExec6, kExec1}));
  // Listed rows are whole rows.
  ASSERT_EQ(all.size(), 8u);
  ExpectSameExecution(all[0], MakeExecution(kExec7, kOrgA, kT0 + 400, "rotate_keys", "cancelled"));
  ExpectSameExecution(all[4], MakeExecution(kExec3, kOrgB, kT0 + 200, "sync_users", "running"));
}

TEST_P(StoreConformanceTest, ListExecutionsFiltersAreEachAppliedAndAnded) {
  InsertExecutionFixture(store());
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ExecutionFilter f;

  f = ExecutionFilter{};
  f.org_id = kOrgA;
  EXPECT_EQ(ListExecutionIds(*txn, f), (IdList{kExec7, kExec8, kExec4, kExec2, kExec6, kExec1}));
  f.org_id = kOrgB;
  EXPECT_EQ(ListExecutionIds(*txn, f), (IdList{kExec5, kExec3}));
  f.org_id = kMissingOrg;
  EXPECT_EQ(ListExecutionIds(*txn, f), IdList{});

  f = ExecutionFilter{};
  f.workflow = "sync_users";
  EXPECT_EQ(ListExecutionIds(*txn, f), (IdList{kExec8, kExec4, kExec3, kExec6, kExec1}));
  f.workflow = "rotate_keys";
  EXPECT_EQ(ListExecutionIds(*txn, f), (IdList{kExec7, kExec5, kExec2}));
  f.workflow = "Sync_Users";  // compared exactly
  EXPECT_EQ(ListExecutionIds(*txn, f), IdList{});

  f = ExecutionFilter{};
  f.status = "success";
  EXPECT_EQ(ListExecutionIds(*txn, f), (IdList{kExec5, kExec6, kExec1}));
  f.status = "pending";
  EXPECT_EQ(ListExecutionIds(*txn, f), (IdList{kExec4}));
  f.status = "running";
  EXPECT_EQ(ListExecutionIds(*txn, f), (IdList{kExec3}));
  f.status = "failed";
  EXPECT_EQ(ListExecutionIds(*txn, f), (IdList{kExec2}));
  f.status = "timeout";
  EXPECT_EQ(ListExecutionIds(*txn, f), (IdList{kExec8}));
  f.status = "cancelled";
  EXPECT_EQ(ListExecutionIds(*txn, f), (IdList{kExec7}));

  // Every set field must match.
  f = ExecutionFilter{};
  f.org_id = kOrgA;
  f.workflow = "sync_users";
  EXPECT_EQ(ListExecutionIds(*txn, f), (IdList{kExec8, kExec4, kExec6, kExec1}));
  f.status = "success";
  EXPECT_EQ(ListExecutionIds(*txn, f), (IdList{kExec6, kExec1}));
  f.org_id = kOrgB;
  EXPECT_EQ(ListExecutionIds(*txn, f), IdList{});
  f.workflow = "rotate_keys";
  EXPECT_EQ(ListExecutionIds(*txn, f), (IdList{kExec5}));
  f = ExecutionFilter{};
  f.workflow = "rotate_keys";
  f.status = "failed";
  EXPECT_EQ(ListExecutionIds(*txn, f), (IdList{kExec2}));
  f.org_id = kOrgB;
  EXPECT_EQ(ListExecutionIds(*txn, f), IdList{});
}

TEST_P(StoreConformanceTest, ListExecutionsPagesWithBeforeIdAcrossEqualCreationTimes) {
  InsertExecutionFixture(store());
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  // Pages of 2 split both groups of equal creation times (8|5 ... 4|3).
  {
    SCOPED_TRACE("all, pages of 2");
    ExecutionFilter f;
    f.limit = 2;
    std::vector<IdList> pages;
    for (int i = 0; i < 10; ++i) {
      IdList page = ListExecutionIds(*txn, f);
      pages.push_back(page);
      if (page.empty() || page == IdList{"error"}) break;
      f.before_id = page.back();
    }
    EXPECT_EQ(pages,
              (std::vector<IdList>{
                  {kExec7, kExec8}, {kExec5, kExec4}, {kExec3, kExec2}, {kExec6, kExec1}, {}}));
  }
  {
    SCOPED_TRACE("all, pages of 3");
    ExecutionFilter f;
    f.limit = 3;
    EXPECT_EQ(ListExecutionIds(*txn, f), (IdList{kExec7, kExec8, kExec5}));
    f.before_id = kExec5;
    EXPECT_EQ(ListExecutionIds(*txn, f), (IdList{kExec4, kExec3, kExec2}));
    f.before_id = kExec2;
    EXPECT_EQ(ListExecutionIds(*txn, f), (IdList{kExec6, kExec1}));
    f.before_id = kExec1;
    EXPECT_EQ(ListExecutionIds(*txn, f), IdList{});
  }
  {
    SCOPED_TRACE("org A, pages of 2");
    ExecutionFilter f;
    f.org_id = kOrgA;
    f.limit = 2;
    EXPECT_EQ(ListExecutionIds(*txn, f), (IdList{kExec7, kExec8}));
    f.before_id = kExec8;
    EXPECT_EQ(ListExecutionIds(*txn, f), (IdList{kExec4, kExec2}));
    f.before_id = kExec2;
    EXPECT_EQ(ListExecutionIds(*txn, f), (IdList{kExec6, kExec1}));
    f.before_id = kExec1;
    EXPECT_EQ(ListExecutionIds(*txn, f), IdList{});
  }
  {
    SCOPED_TRACE("cursor of another org and filters");
    // The cursor is a position in the listing order, whichever execution names it: below
    // execution 3 (B, 200) come A's 2 (same time, smaller id), 6 and 1.
    ExecutionFilter f;
    f.org_id = kOrgA;
    f.before_id = kExec3;
    EXPECT_EQ(ListExecutionIds(*txn, f), (IdList{kExec2, kExec6, kExec1}));
    f.workflow = "sync_users";
    EXPECT_EQ(ListExecutionIds(*txn, f), (IdList{kExec6, kExec1}));
    f.status = "success";
    f.before_id = kExec6;
    EXPECT_EQ(ListExecutionIds(*txn, f), (IdList{kExec1}));
  }
  {
    SCOPED_TRACE("without a limit hit");
    ExecutionFilter f;
    f.before_id = kExec4;
    EXPECT_EQ(ListExecutionIds(*txn, f), (IdList{kExec3, kExec2, kExec6, kExec1}));
    f.before_id = kExec7;
    EXPECT_EQ(ListExecutionIds(*txn, f),
              (IdList{kExec8, kExec5, kExec4, kExec3, kExec2, kExec6, kExec1}));
  }
}

TEST_P(StoreConformanceTest, ListExecutionsWithUnknownBeforeIdIsEmpty) {
  InsertExecutionFixture(store());
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ExecutionFilter f;
  f.before_id = kMissingExec;  // sorts after every id: a position would list them all
  EXPECT_EQ(ListExecutionIds(*txn, f), IdList{});
  f.before_id = "";
  EXPECT_EQ(ListExecutionIds(*txn, f), IdList{});
  f.before_id = kMissingExec;
  f.org_id = kOrgA;
  f.workflow = "sync_users";
  f.status = "success";
  EXPECT_EQ(ListExecutionIds(*txn, f), IdList{});
}

TEST_P(StoreConformanceTest, ListExecutionsReturnsAtMostTheLimit) {
  InsertExecutionFixture(store());
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ExecutionFilter f;
  f.limit = 0;
  EXPECT_EQ(ListExecutionIds(*txn, f), IdList{});
  f.limit = 1;
  EXPECT_EQ(ListExecutionIds(*txn, f), (IdList{kExec7}));
  f.limit = 5;
  EXPECT_EQ(ListExecutionIds(*txn, f), (IdList{kExec7, kExec8, kExec5, kExec4, kExec3}));
  f.limit = 8;
  EXPECT_EQ(ListExecutionIds(*txn, f).size(), 8u);
  f.limit = std::numeric_limits<std::size_t>::max();
  EXPECT_EQ(ListExecutionIds(*txn, f).size(), 8u);
  f = ExecutionFilter{};
  f.org_id = kOrgA;
  f.limit = 3;
  EXPECT_EQ(ListExecutionIds(*txn, f), (IdList{kExec7, kExec8, kExec4}));
  f.status = "success";
  f.limit = 1;
  EXPECT_EQ(ListExecutionIds(*txn, f), (IdList{kExec6}));
}

TEST_P(StoreConformanceTest, ListExecutionsDefaultLimitIsOneHundred) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    for (int i = 0; i < 101; ++i) {
      std::string id = "3c9e6f2a-1b4d-4e8f-a7c5-0d2e4f6b";
      std::string n = std::to_string(1000 + i);
      id += n;
      ASSERT_OK(txn.InsertExecution(MakeExecution(id, kOrgA, kT0 + i)));
    }
  });
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<ExecutionRow> page, txn->ListExecutions(ExecutionFilter{}));
  ASSERT_EQ(page.size(), 100u);
  EXPECT_EQ(page.front().created_at, kT0 + 100);
  EXPECT_EQ(page.back().created_at, kT0 + 1);
  ExecutionFilter next;
  next.before_id = page.back().id;
  ASSERT_OK_AND_ASSIGN(std::vector<ExecutionRow> rest, txn->ListExecutions(next));
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].created_at, kT0);
}

// The sweep at start-up: executions a stopped server left pending or running end as failed;
// finished ones are not touched.
TEST_P(StoreConformanceTest, FailOrphanedExecutionsEndsPendingAndRunningOnly) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK_AND_ASSIGN(
        const std::int64_t none,
        txn.FailOrphanedExecutions("server stopped", kT0, kSweeper, kEveryNodeStale));
    EXPECT_EQ(none, 0);
  });
  const ExecutionRow pending = MakeExecution(kExec1, kOrgA, kT0, "sync_users", "pending");
  ExecutionRow running = MakeExecution(kExec2, kOrgA, kT0, "sync_users", "running");
  running.started_at = kT0 + 10;
  running.logs = "halfway\n";
  running.logs_truncated = true;
  ExecutionRow running_b = MakeExecution(kExec3, kOrgB, kT0, "rotate_keys", "running");
  running_b.started_at = kT0 + 20;
  std::vector<ExecutionRow> finished;
  for (const auto& [id, status] : std::vector<std::pair<std::string, std::string>>{
           {kExec4, "success"}, {kExec5, "failed"}, {kExec6, "timeout"}, {kExec7, "cancelled"}}) {
    ExecutionRow row = MakeExecution(id, kOrgA, kT0, "sync_users", status);
    row.started_at = kT0 + 1;
    row.finished_at = kT0 + 2;
    if (status == "success") {
      row.result = "{}";
    } else {
      row.error = status + " before the stop";
    }
    finished.push_back(row);
  }
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK(txn.InsertExecution(pending));
    ASSERT_OK(txn.InsertExecution(running));
    ASSERT_OK(txn.InsertExecution(running_b));
    for (const ExecutionRow& row : finished) ASSERT_OK(txn.InsertExecution(row));
  });

  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK_AND_ASSIGN(
        const std::int64_t failed,
        txn.FailOrphanedExecutions("the server stopped", kT2, kSweeper, kEveryNodeStale));
    EXPECT_EQ(failed, 3);
  });
  auto as_failed = [](ExecutionRow row) {
    row.status = "failed";
    row.error = "the server stopped";
    row.finished_at = kT2;
    return row;
  };
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
    for (const ExecutionRow& row : {pending, running, running_b}) {
      SCOPED_TRACE(row.id);
      ASSERT_OK_AND_ASSIGN(std::optional<ExecutionRow> stored, txn->GetExecution(row.id));
      ASSERT_TRUE(stored.has_value());
      // Only status, error and finished_at change; started_at, result, logs are kept.
      ExpectSameExecution(*stored, as_failed(row));
    }
    for (const ExecutionRow& row : finished) {
      SCOPED_TRACE(row.id);
      ASSERT_OK_AND_ASSIGN(std::optional<ExecutionRow> stored, txn->GetExecution(row.id));
      ASSERT_TRUE(stored.has_value());
      ExpectSameExecution(*stored, row);
    }
    ExecutionFilter unfinished;
    unfinished.status = "pending";
    EXPECT_EQ(ListExecutionIds(*txn, unfinished), IdList{});
    unfinished.status = "running";
    EXPECT_EQ(ListExecutionIds(*txn, unfinished), IdList{});
  }
  // Nothing is left to sweep: a second sweep changes nothing, not even finished_at.
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK_AND_ASSIGN(
        const std::int64_t again,
        txn.FailOrphanedExecutions("stopped again", kT2 + 5, kSweeper, kEveryNodeStale));
    EXPECT_EQ(again, 0);
  });
  const std::optional<ExecutionRow> swept = CommittedExecution(store(), kExec1);
  ASSERT_TRUE(swept.has_value());
  ExpectSameExecution(*swept, as_failed(pending));
  // A new unfinished execution is swept by the next call, alone.
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertExecution(MakeExecution(kExec8, kOrgB, kT2, "sync_users", "pending")));
    ASSERT_OK_AND_ASSIGN(const std::int64_t one,
                         txn.FailOrphanedExecutions("stopped", kT2, kSweeper, kEveryNodeStale));
    EXPECT_EQ(one, 1);
  });
}

TEST_P(StoreConformanceTest, DeleteOrgCascadesToItsExecutionsOnly) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertExecution(MakeExecution(kExec1, kOrgA, kT0, "sync_users", "success")));
    ASSERT_OK(txn.InsertExecution(MakeExecution(kExec2, kOrgA, kT1, "sync_users", "running")));
    ASSERT_OK(txn.InsertExecution(MakeExecution(kExec3, kOrgB, kT1, "sync_users", "pending")));
  });
  InWriteTxn(store(), [](Txn& txn) { ASSERT_OK(txn.DeleteOrg(kOrgA)); });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
    for (const std::string& id : {kExec1, kExec2}) {
      ASSERT_OK_AND_ASSIGN(std::optional<ExecutionRow> gone, txn->GetExecution(id));
      EXPECT_FALSE(gone.has_value()) << id;
    }
    EXPECT_EQ(ListExecutionIds(*txn, ExecutionFilter{}), IdList{kExec3});
    ExecutionFilter of_a;
    of_a.org_id = kOrgA;
    EXPECT_EQ(ListExecutionIds(*txn, of_a), IdList{});
    ASSERT_OK_AND_ASSIGN(std::optional<ExecutionRow> kept, txn->GetExecution(kExec3));
    ASSERT_TRUE(kept.has_value());
    ExpectSameExecution(*kept, MakeExecution(kExec3, kOrgB, kT1, "sync_users", "pending"));
  }
  InWriteTxn(store(), [](Txn& txn) {
    // The deleted running execution is not swept: it is gone.
    ASSERT_OK_AND_ASSIGN(const std::int64_t swept,
                         txn.FailOrphanedExecutions("stopped", kT2, kSweeper, kEveryNodeStale));
    EXPECT_EQ(swept, 1);
    // A re-created org with the same id starts without executions, and the old ids are free
    // again: nothing half-deleted is left behind.
    ASSERT_OK(txn.InsertOrg(MakeOrg(kOrgA, "acme-again")));
    ExecutionFilter of_a;
    of_a.org_id = kOrgA;
    EXPECT_EQ(ListExecutionIds(txn, of_a), IdList{});
    ASSERT_OK(txn.InsertExecution(MakeExecution(kExec1, kOrgA, kT2)));
  });
}

TEST_P(StoreConformanceTest, UncommittedExecutionWritesLeaveNoTrace) {
  CreateTwoOrgs(store());
  const ExecutionRow committed = MakeExecution(kExec1, kOrgA, kT0, "sync_users", "running");
  InWriteTxn(store(), [&](Txn& txn) { ASSERT_OK(txn.InsertExecution(committed)); });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    ASSERT_OK(txn->InsertExecution(MakeExecution(kExec2, kOrgA, kT1)));
    ExecutionRow changed = committed;
    changed.status = "success";
    changed.result = "{}";
    changed.finished_at = kT1;
    ASSERT_OK(txn->UpdateExecution(changed));
    ASSERT_OK(txn->InsertExecution(MakeExecution(kExec3, kOrgB, kT1, "sync_users", "running")));
    ASSERT_OK_AND_ASSIGN(const std::int64_t swept,
                         txn->FailOrphanedExecutions("x", kT2, kSweeper, kEveryNodeStale));
    EXPECT_EQ(swept, 2);
    EXPECT_EQ(ListExecutionIds(*txn, ExecutionFilter{}), (IdList{kExec3, kExec2, kExec1}));
    // Not committed: a reader sees none of it.
    ASSERT_OK_AND_ASSIGN(auto reader, store().Begin(TxnMode::kRead));
    EXPECT_EQ(ListExecutionIds(*reader, ExecutionFilter{}), IdList{kExec1});
    // Destroyed without Commit.
  }
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
    EXPECT_EQ(ListExecutionIds(*txn, ExecutionFilter{}), IdList{kExec1});
    ASSERT_OK_AND_ASSIGN(std::optional<ExecutionRow> inserted, txn->GetExecution(kExec2));
    EXPECT_FALSE(inserted.has_value());
    ASSERT_OK_AND_ASSIGN(std::optional<ExecutionRow> stored, txn->GetExecution(kExec1));
    ASSERT_TRUE(stored.has_value());
    ExpectSameExecution(*stored, committed);
  }
  // The rolled-back ids are free again.
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertExecution(MakeExecution(kExec2, kOrgA, kT2)));
    ASSERT_OK(txn.InsertExecution(MakeExecution(kExec3, kOrgB, kT2)));
  });
}

TEST_P(StoreConformanceTest, ExecutionWritesOnReadTxnAreRejected) {
  CreateTwoOrgs(store());
  const ExecutionRow original = MakeExecution(kExec1, kOrgA, kT0, "sync_users", "running");
  InWriteTxn(store(), [&](Txn& txn) { ASSERT_OK(txn.InsertExecution(original)); });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
    EXPECT_ERROR_CODE(txn->InsertExecution(MakeExecution(kExec2, kOrgA)),
                      ErrorCode::kFailedPrecondition);
    ExecutionRow changed = original;
    changed.status = "success";
    EXPECT_ERROR_CODE(txn->UpdateExecution(changed), ErrorCode::kFailedPrecondition);
    EXPECT_ERROR_CODE(txn->FailOrphanedExecutions("stopped", kT1, kSweeper, kEveryNodeStale),
                      ErrorCode::kFailedPrecondition);
    // Reading still works in the same transaction.
    ASSERT_OK_AND_ASSIGN(std::optional<ExecutionRow> row, txn->GetExecution(kExec1));
    ASSERT_TRUE(row.has_value());
    EXPECT_EQ(ListExecutionIds(*txn, ExecutionFilter{}), IdList{kExec1});
    ASSERT_OK(txn->Commit());
  }
  const std::optional<ExecutionRow> stored = CommittedExecution(store(), kExec1);
  ASSERT_TRUE(stored.has_value());
  ExpectSameExecution(*stored, original);
}

// Several nodes share a database: a node's sweep fails the unfinished executions of nodes
// that are gone (no row, or a heartbeat older than stale_before) and never its own or those
// of a node that is alive; it forgets the stale node rows, never its own.
TEST_P(StoreConformanceTest, FailOrphanedExecutionsSparesLiveNodes) {
  CreateTwoOrgs(store());
  const std::string self = "node-self";
  const std::string alive = "node-alive";
  const std::string dead = "node-dead";
  const std::string unknown = "node-never-registered";
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK(txn.UpsertNode({.id = self, .name = "a", .started_at = kT0, .heartbeat_at = kT0}));
    ASSERT_OK(txn.UpsertNode({.id = alive, .name = "b", .started_at = kT0, .heartbeat_at = kT2}));
    ASSERT_OK(txn.UpsertNode({.id = dead, .name = "c", .started_at = kT0, .heartbeat_at = kT0}));
    const std::vector<std::pair<std::string, std::string>> rows = {
        {kExec1, self}, {kExec2, alive}, {kExec3, dead}, {kExec4, unknown}};
    for (const auto& [id, node] : rows) {
      ExecutionRow row = MakeExecution(id, kOrgA, kT0, "sync_users", "running");
      row.node_id = node;
      ASSERT_OK(txn.InsertExecution(row));
    }
    ExecutionRow finished = MakeExecution(kExec5, kOrgA, kT0, "sync_users", "success");
    finished.node_id = dead;
    finished.result = "{}";
    finished.finished_at = kT1;
    ASSERT_OK(txn.InsertExecution(finished));
  });
  // Stale: a heartbeat before kT1. `self` is stale too but is the caller.
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK_AND_ASSIGN(const std::int64_t failed,
                         txn.FailOrphanedExecutions("its node stopped", kT2, self, kT1));
    EXPECT_EQ(failed, 2);
  });
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  for (const auto& [id, status] :
       std::vector<std::pair<std::string, std::string>>{{kExec1, "running"},
                                                        {kExec2, "running"},
                                                        {kExec3, "failed"},
                                                        {kExec4, "failed"},
                                                        {kExec5, "success"}}) {
    ASSERT_OK_AND_ASSIGN(std::optional<ExecutionRow> row, txn->GetExecution(id));
    ASSERT_TRUE(row.has_value()) << id;
    EXPECT_EQ(row->status, status) << id;
    if (status == "failed") {
      EXPECT_EQ(row->error, "its node stopped");
      EXPECT_EQ(row->finished_at, kT2);
    }
  }
  ASSERT_OK_AND_ASSIGN(std::vector<NodeRow> nodes, txn->ListNodes());
  std::vector<std::string> ids;
  for (const NodeRow& node : nodes) ids.push_back(node.id);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::string>{alive, self}));
}

TEST_P(StoreConformanceTest, NodesAreUpsertedListedAndDeleted) {
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.UpsertNode(
        {.id = "n2", .name = "host-b :8420", .started_at = kT1, .heartbeat_at = kT1}));
    ASSERT_OK(txn.UpsertNode(
        {.id = "n1", .name = "host-a :8420", .started_at = kT0, .heartbeat_at = kT0}));
    // A heartbeat: name and heartbeat_at change, started_at is kept.
    ASSERT_OK(txn.UpsertNode(
        {.id = "n1", .name = "host-a :8421", .started_at = kT2, .heartbeat_at = kT2}));
  });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
    ASSERT_OK_AND_ASSIGN(std::vector<NodeRow> nodes, txn->ListNodes());
    ASSERT_EQ(nodes.size(), 2u);
    EXPECT_EQ(nodes[0].id, "n1");
    EXPECT_EQ(nodes[0].name, "host-a :8421");
    EXPECT_EQ(nodes[0].started_at, kT0);
    EXPECT_EQ(nodes[0].heartbeat_at, kT2);
    EXPECT_EQ(nodes[1].id, "n2");
    EXPECT_ERROR_CODE(
        txn->UpsertNode({.id = "n3", .name = "x", .started_at = kT0, .heartbeat_at = kT0}),
        ErrorCode::kFailedPrecondition);
    EXPECT_ERROR_CODE(txn->DeleteNode("n1"), ErrorCode::kFailedPrecondition);
  }
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.DeleteNode("n1"));
    EXPECT_ERROR_CODE(txn.DeleteNode("n1"), ErrorCode::kNotFound);
    ASSERT_OK_AND_ASSIGN(std::vector<NodeRow> nodes, txn.ListNodes());
    ASSERT_EQ(nodes.size(), 1u);
    EXPECT_EQ(nodes[0].id, "n2");
  });
}

// A cancel asked for on one node is recorded for the node that runs the execution, which
// finds it by listing its own executions with a request.
TEST_P(StoreConformanceTest, ExecutionCancelRequestsAreRecordedOnce) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    ExecutionRow pending = MakeExecution(kExec1, kOrgA, kT0, "sync_users", "pending");
    pending.node_id = "n1";
    ExecutionRow running = MakeExecution(kExec2, kOrgA, kT1, "sync_users", "running");
    running.node_id = "n1";
    ExecutionRow other = MakeExecution(kExec3, kOrgB, kT1, "sync_users", "running");
    other.node_id = "n2";
    ExecutionRow done = MakeExecution(kExec4, kOrgA, kT1, "sync_users", "success");
    done.node_id = "n1";
    done.result = "{}";
    done.finished_at = kT2;
    for (const ExecutionRow& row : {pending, running, other, done}) {
      ASSERT_OK(txn.InsertExecution(row));
    }
  });
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.RequestExecutionCancel(kExec2, "admin-token"));
    ASSERT_OK(txn.RequestExecutionCancel(kExec2, "someone-later"));  // the first is kept
    ASSERT_OK(txn.RequestExecutionCancel(kExec3, "admin-token"));
    EXPECT_ERROR_CODE(txn.RequestExecutionCancel(kExec4, "admin-token"),
                      ErrorCode::kFailedPrecondition);
    EXPECT_ERROR_CODE(txn.RequestExecutionCancel(kMissingExec, "admin-token"),
                      ErrorCode::kNotFound);
  });
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::optional<ExecutionRow> running, txn->GetExecution(kExec2));
  ASSERT_TRUE(running.has_value());
  EXPECT_EQ(running->cancel_requested_by, "admin-token");
  EXPECT_EQ(running->status, "running");
  ASSERT_OK_AND_ASSIGN(std::optional<ExecutionRow> done, txn->GetExecution(kExec4));
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->cancel_requested_by, std::nullopt);

  ExecutionFilter mine;
  mine.node_id = "n1";
  EXPECT_EQ(ListExecutionIds(*txn, mine), (IdList{kExec4, kExec2, kExec1}));
  mine.cancel_requested = true;
  EXPECT_EQ(ListExecutionIds(*txn, mine), IdList{kExec2});
  ExecutionFilter any_requested;
  any_requested.cancel_requested = true;
  EXPECT_EQ(ListExecutionIds(*txn, any_requested), (IdList{kExec3, kExec2}));
  EXPECT_ERROR_CODE(txn->RequestExecutionCancel(kExec1, "x"), ErrorCode::kFailedPrecondition);
}

// ---- Tokens

TEST_P(StoreConformanceTest, TokenInsertAndGetByIdAndByHash) {
  CreateTwoOrgs(store());
  TokenRow platform = MakeToken(kTok1, std::nullopt, "platform-admin", kT0);
  TokenRow member = MakeToken(kTok2, kOrgA, "member", kT1);
  member.name = "ci deploy ✓";  // names are UTF-8
  member.created_by = "token:root/" + kTok1;
  member.expires_at = kT2 + 3'600'000'000;
  member.last_used_at = kT2;
  member.revoked_at = kT2 + 1;
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK(txn.InsertToken(platform));
    ASSERT_OK(txn.InsertToken(member));
    // A write transaction sees its own writes.
    ASSERT_OK_AND_ASSIGN(std::optional<TokenRow> own, txn.GetTokenById(kTok2));
    ASSERT_TRUE(own.has_value());
    ExpectSameToken(*own, member);
  });

  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  for (const TokenRow* expected : {&platform, &member}) {
    SCOPED_TRACE(expected->id);
    ASSERT_OK_AND_ASSIGN(std::optional<TokenRow> by_id, txn->GetTokenById(expected->id));
    ASSERT_TRUE(by_id.has_value());
    ExpectSameToken(*by_id, *expected);
    ASSERT_OK_AND_ASSIGN(std::optional<TokenRow> by_hash, txn->GetTokenByHash(expected->hash));
    ASSERT_TRUE(by_hash.has_value());
    ExpectSameToken(*by_hash, *expected);
  }
  ASSERT_OK_AND_ASSIGN(std::optional<TokenRow> missing_id, txn->GetTokenById(kMissingTok));
  EXPECT_FALSE(missing_id.has_value());
  ASSERT_OK_AND_ASSIGN(std::optional<TokenRow> missing_hash,
                       txn->GetTokenByHash(HashFor(kMissingTok)));
  EXPECT_FALSE(missing_hash.has_value());
  // Ids and hashes are not interchangeable, and hashes are compared exactly.
  ASSERT_OK_AND_ASSIGN(std::optional<TokenRow> id_as_hash, txn->GetTokenByHash(kTok1));
  EXPECT_FALSE(id_as_hash.has_value());
  ASSERT_OK_AND_ASSIGN(std::optional<TokenRow> hash_as_id, txn->GetTokenById(platform.hash));
  EXPECT_FALSE(hash_as_id.has_value());
  std::string upper = platform.hash;
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  ASSERT_NE(upper, platform.hash);
  ASSERT_OK_AND_ASSIGN(std::optional<TokenRow> other_case, txn->GetTokenByHash(upper));
  EXPECT_FALSE(other_case.has_value());
}

TEST_P(StoreConformanceTest, ListTokensNewestFirstAllOrOneOrg) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    // Inserted out of order; kTok4 and kTok2 share a creation time (the id breaks the tie).
    ASSERT_OK(txn.InsertToken(MakeToken(kTok3, kOrgB, "reader", kT0)));
    ASSERT_OK(txn.InsertToken(MakeToken(kTok4, kOrgA, "admin", kT1)));
    ASSERT_OK(txn.InsertToken(MakeToken(kTok1, std::nullopt, "platform-admin", kT2)));
    ASSERT_OK(txn.InsertToken(MakeToken(kTok2, kOrgA, "member", kT1)));
    ASSERT_OK(txn.InsertToken(MakeToken(kTok5, kOrgA, "reader", kT0)));
  });
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<TokenRow> all, txn->ListTokens(std::nullopt));
  EXPECT_EQ(TokenIds(all), (std::vector<std::string>{kTok1, kTok2, kTok4, kTok3, kTok5}));
  ASSERT_EQ(all.size(), 5u);
  ExpectSameToken(all[0], MakeToken(kTok1, std::nullopt, "platform-admin", kT2));
  ExpectSameToken(all[3], MakeToken(kTok3, kOrgB, "reader", kT0));

  ASSERT_OK_AND_ASSIGN(std::vector<TokenRow> a, txn->ListTokens(kOrgA));
  EXPECT_EQ(TokenIds(a), (std::vector<std::string>{kTok2, kTok4, kTok5}));
  ASSERT_OK_AND_ASSIGN(std::vector<TokenRow> b, txn->ListTokens(kOrgB));
  EXPECT_EQ(TokenIds(b), (std::vector<std::string>{kTok3}));
  ASSERT_OK_AND_ASSIGN(std::vector<TokenRow> none, txn->ListTokens(kMissingOrg));
  EXPECT_TRUE(none.empty());
}

TEST_P(StoreConformanceTest, TokenDuplicateIdOrHashIsAlreadyExists) {
  CreateTwoOrgs(store());
  InWriteTxn(store(),
             [](Txn& txn) { ASSERT_OK(txn.InsertToken(MakeToken(kTok1, kOrgA, "admin", kT0))); });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    TokenRow same_id = MakeToken(kTok1, kOrgB, "reader", kT1);
    EXPECT_ERROR_CODE(txn->InsertToken(same_id), ErrorCode::kAlreadyExists);
  }
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    TokenRow same_hash = MakeToken(kTok2, kOrgB, "reader", kT1);
    same_hash.hash = HashFor(kTok1);
    EXPECT_ERROR_CODE(txn->InsertToken(same_hash), ErrorCode::kAlreadyExists);
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<TokenRow> all, txn->ListTokens(std::nullopt));
  ASSERT_EQ(all.size(), 1u);
  ExpectSameToken(all[0], MakeToken(kTok1, kOrgA, "admin", kT0));
}

TEST_P(StoreConformanceTest, TokenOfMissingOrgIsFailedPrecondition) {
  CreateTwoOrgs(store());
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->InsertToken(MakeToken(kTok1, kMissingOrg, "member")),
                      ErrorCode::kFailedPrecondition);
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::optional<TokenRow> row, txn->GetTokenById(kTok1));
  EXPECT_FALSE(row.has_value());
}

TEST_P(StoreConformanceTest, TokenWithInconsistentRoleAndOrgIsRejected) {
  CreateTwoOrgs(store());
  struct Case {
    std::optional<std::string> org_id;
    std::string role;
  };
  for (const Case& c :
       {Case{kOrgA, "platform-admin"}, Case{std::nullopt, "admin"}, Case{std::nullopt, "member"},
        Case{std::nullopt, "reader"}, Case{kOrgA, "owner"}, Case{std::nullopt, ""}}) {
    SCOPED_TRACE("role '" + c.role + "'" + (c.org_id ? " with org" : " without org"));
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    const TokenRow row = MakeToken(kTok1, c.org_id, c.role);
    const Status inserted = txn->InsertToken(row);
    ASSERT_FALSE(inserted.has_value());
    EXPECT_EQ(inserted.error().message().find(row.hash), std::string::npos)
        << inserted.error().message();
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<TokenRow> all, txn->ListTokens(std::nullopt));
  EXPECT_TRUE(all.empty());
}

TEST_P(StoreConformanceTest, RevokeTokenIsIdempotentAndKeepsTheFirstTime) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertToken(MakeToken(kTok1, kOrgA, "admin", kT0)));
    ASSERT_OK(txn.InsertToken(MakeToken(kTok2, kOrgA, "member", kT0)));
  });
  InWriteTxn(store(), [](Txn& txn) { ASSERT_OK(txn.RevokeToken(kTok1, kT1)); });
  // Again, later and earlier: both succeed and change nothing.
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.RevokeToken(kTok1, kT2));
    ASSERT_OK(txn.RevokeToken(kTok1, kT0));
  });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->RevokeToken(kMissingTok, kT1), ErrorCode::kNotFound);
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::optional<TokenRow> revoked, txn->GetTokenById(kTok1));
  ASSERT_TRUE(revoked.has_value());
  TokenRow expected = MakeToken(kTok1, kOrgA, "admin", kT0);
  expected.revoked_at = kT1;
  ExpectSameToken(*revoked, expected);
  ASSERT_OK_AND_ASSIGN(std::optional<TokenRow> other, txn->GetTokenById(kTok2));
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(other->revoked_at, std::nullopt);
}

TEST_P(StoreConformanceTest, TouchTokenOnlyMovesForward) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertToken(MakeToken(kTok1, kOrgA, "reader", kT0)));
    ASSERT_OK(txn.InsertToken(MakeToken(kTok2, kOrgA, "reader", kT0)));
  });
  // Returns the token's last_used_at as committed.
  auto last_used = [this](const std::string& id) -> std::optional<UnixMicros> {
    auto txn = store().Begin(TxnMode::kRead);
    if (!txn) {
      ADD_FAILURE() << txn.error().ToString();
      return std::nullopt;
    }
    auto row = (*txn)->GetTokenById(id);
    if (!row || !row->has_value()) {
      ADD_FAILURE() << "token " << id << " not readable";
      return std::nullopt;
    }
    return (*row)->last_used_at;
  };
  EXPECT_EQ(last_used(kTok1), std::nullopt);

  InWriteTxn(store(), [](Txn& txn) { ASSERT_OK(txn.TouchToken(kTok1, kT1)); });
  EXPECT_EQ(last_used(kTok1), std::optional<UnixMicros>(kT1));
  // Earlier: succeeds, keeps the later time.
  InWriteTxn(store(), [](Txn& txn) { ASSERT_OK(txn.TouchToken(kTok1, kT0)); });
  EXPECT_EQ(last_used(kTok1), std::optional<UnixMicros>(kT1));
  InWriteTxn(store(), [](Txn& txn) { ASSERT_OK(txn.TouchToken(kTok1, kT2)); });
  EXPECT_EQ(last_used(kTok1), std::optional<UnixMicros>(kT2));
  EXPECT_EQ(last_used(kTok2), std::nullopt);  // only the named token moved
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->TouchToken(kMissingTok, kT2), ErrorCode::kNotFound);
  }
  // Touching changes nothing else, and works on a revoked token too.
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.RevokeToken(kTok1, kT2));
    ASSERT_OK(txn.TouchToken(kTok1, kT2 + 5));
  });
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::optional<TokenRow> row, txn->GetTokenById(kTok1));
  ASSERT_TRUE(row.has_value());
  TokenRow expected = MakeToken(kTok1, kOrgA, "reader", kT0);
  expected.last_used_at = kT2 + 5;
  expected.revoked_at = kT2;
  ExpectSameToken(*row, expected);
}

TEST_P(StoreConformanceTest, DeleteOrgCascadesToItsTokensOnly) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertToken(MakeToken(kTok1, std::nullopt, "platform-admin", kT0)));
    ASSERT_OK(txn.InsertToken(MakeToken(kTok2, kOrgA, "admin", kT0)));
    ASSERT_OK(txn.InsertToken(MakeToken(kTok3, kOrgA, "reader", kT1)));
    ASSERT_OK(txn.InsertToken(MakeToken(kTok4, kOrgB, "member", kT1)));
  });
  InWriteTxn(store(), [](Txn& txn) { ASSERT_OK(txn.DeleteOrg(kOrgA)); });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
    ASSERT_OK_AND_ASSIGN(std::vector<TokenRow> all, txn->ListTokens(std::nullopt));
    EXPECT_EQ(TokenIds(all), (std::vector<std::string>{kTok4, kTok1}));
    ASSERT_OK_AND_ASSIGN(std::vector<TokenRow> a, txn->ListTokens(kOrgA));
    EXPECT_TRUE(a.empty());
    ASSERT_OK_AND_ASSIGN(std::optional<TokenRow> by_hash, txn->GetTokenByHash(HashFor(kTok2)));
    EXPECT_FALSE(by_hash.has_value());
  }
  // The deleted tokens' ids and hashes are free again (nothing half-deleted is left behind).
  InWriteTxn(store(),
             [](Txn& txn) { ASSERT_OK(txn.InsertToken(MakeToken(kTok2, kOrgB, "admin", kT2))); });
}

// Error messages may name token ids and orgs, never a token's hash.
TEST_P(StoreConformanceTest, TokenErrorMessagesNeverContainTheHash) {
  CreateTwoOrgs(store());
  const TokenRow original = MakeToken(kTok1, kOrgA, "admin", kT0);
  InWriteTxn(store(), [&](Txn& txn) { ASSERT_OK(txn.InsertToken(original)); });

  std::vector<Error> errors;
  auto collect = [&](auto&& operation) {
    auto txn = store().Begin(TxnMode::kWrite);
    if (!txn) {
      ADD_FAILURE() << txn.error().ToString();
      return;
    }
    Status status = operation(**txn);
    if (status) {
      ADD_FAILURE() << "operation " << errors.size() << " succeeded";
    } else {
      errors.push_back(status.error());
    }
  };
  collect([&](Txn& txn) { return txn.InsertToken(original); });  // duplicate id and hash
  collect([&](Txn& txn) {
    TokenRow same_hash = MakeToken(kTok2, kOrgA, "member");
    same_hash.hash = original.hash;
    return txn.InsertToken(same_hash);
  });
  collect([&](Txn& txn) {
    TokenRow same_id = MakeToken(kTok1, kOrgA, "member");
    return txn.InsertToken(same_id);
  });
  collect([&](Txn& txn) { return txn.InsertToken(MakeToken(kTok3, kMissingOrg, "member")); });
  collect([&](Txn& txn) { return txn.InsertToken(MakeToken(kTok3, kOrgA, "platform-admin")); });
  collect([&](Txn& txn) { return txn.RevokeToken(kMissingTok, kT1); });
  collect([&](Txn& txn) { return txn.TouchToken(kMissingTok, kT1); });
  ASSERT_EQ(errors.size(), 7u);
  EXPECT_EQ(errors[0].code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(errors[1].code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(errors[2].code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(errors[3].code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(errors[5].code(), ErrorCode::kNotFound);
  EXPECT_EQ(errors[6].code(), ErrorCode::kNotFound);
  for (std::size_t i = 0; i < errors.size(); ++i) {
    const std::string& message = errors[i].message();
    SCOPED_TRACE(i);
    EXPECT_EQ(message.find(original.hash), std::string::npos) << message;
    EXPECT_EQ(message.find(HashFor(kTok3)), std::string::npos) << message;
    // The hash's distinctive prefix does not appear either (no truncated copy).
    EXPECT_EQ(message.find("5eed"), std::string::npos) << message;
  }
  // Messages still say which token or org they are about.
  EXPECT_NE(errors[2].message().find(kTok1), std::string::npos) << errors[2].message();
  EXPECT_NE(errors[3].message().find(kMissingOrg), std::string::npos) << errors[3].message();
}

// ---- Users and sessions

const std::string kUser1 = "a3f0c2d4-5e6f-4a1b-8c2d-3e4f5a6b0001";
const std::string kUser2 = "a3f0c2d4-5e6f-4a1b-8c2d-3e4f5a6b0002";
const std::string kUser3 = "a3f0c2d4-5e6f-4a1b-8c2d-3e4f5a6b0003";
const std::string kUser4 = "a3f0c2d4-5e6f-4a1b-8c2d-3e4f5a6b0004";
const std::string kUser5 = "a3f0c2d4-5e6f-4a1b-8c2d-3e4f5a6b0005";
const std::string kMissingUser = "a3f0c2d4-5e6f-4a1b-8c2d-3e4f5a6b00ff";

const std::string kSess1 = "c5e1a7b9-2d3f-4c5e-9a7b-1d3f5e7a0001";
const std::string kSess2 = "c5e1a7b9-2d3f-4c5e-9a7b-1d3f5e7a0002";
const std::string kSess3 = "c5e1a7b9-2d3f-4c5e-9a7b-1d3f5e7a0003";
const std::string kSess4 = "c5e1a7b9-2d3f-4c5e-9a7b-1d3f5e7a0004";
const std::string kSess5 = "c5e1a7b9-2d3f-4c5e-9a7b-1d3f5e7a0005";
const std::string kMissingSess = "c5e1a7b9-2d3f-4c5e-9a7b-1d3f5e7a00ff";

// A PHC string that is different for every user and carries a marker ("5a17") that a test
// can look for in error messages.
std::string PasswordHashFor(const std::string& user_id) {
  return "$argon2id$v=19$m=65536,t=3,p=4$5a17" + user_id.substr(user_id.size() - 4) +
         "c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA";
}

// Session hashes look like the real thing (64 hex digits) and carry the marker "5e55".
std::string SessionHashFor(const std::string& session_id) {
  std::string hash = "5e55" + session_id.substr(session_id.size() - 4);
  hash.resize(64, 'd');
  return hash;
}

UserRow MakeUser(const std::string& id, const std::string& email, std::optional<std::string> org_id,
                 const std::string& role, UnixMicros created_at = kT0) {
  UserRow row;
  row.id = id;
  row.email = email;
  row.org_id = std::move(org_id);
  row.role = role;
  row.password_hash = PasswordHashFor(id);
  row.created_at = created_at;
  row.created_by = "bootstrap";
  row.updated_at = created_at;
  return row;
}

// A session of `user_id` created (and last seen) at `created_at`, ending an hour later.
SessionRow MakeSession(const std::string& id, const std::string& user_id,
                       UnixMicros created_at = kT0) {
  SessionRow row;
  row.id = id;
  row.user_id = user_id;
  row.hash = SessionHashFor(id);
  row.created_at = created_at;
  row.last_seen_at = created_at;
  row.expires_at = created_at + 3'600'000'000;
  row.client_address = "192.0.2.7:51234";
  return row;
}

void ExpectSameUser(const UserRow& actual, const UserRow& expected) {
  EXPECT_EQ(actual.id, expected.id);
  EXPECT_EQ(actual.email, expected.email);
  EXPECT_EQ(actual.org_id, expected.org_id);
  EXPECT_EQ(actual.role, expected.role);
  EXPECT_EQ(actual.password_hash, expected.password_hash);
  EXPECT_EQ(actual.created_at, expected.created_at);
  EXPECT_EQ(actual.created_by, expected.created_by);
  EXPECT_EQ(actual.updated_at, expected.updated_at);
  EXPECT_EQ(actual.disabled_at, expected.disabled_at);
  EXPECT_EQ(actual.last_login_at, expected.last_login_at);
}

void ExpectSameSession(const SessionRow& actual, const SessionRow& expected) {
  EXPECT_EQ(actual.id, expected.id);
  EXPECT_EQ(actual.user_id, expected.user_id);
  EXPECT_EQ(actual.hash, expected.hash);
  EXPECT_EQ(actual.created_at, expected.created_at);
  EXPECT_EQ(actual.last_seen_at, expected.last_seen_at);
  EXPECT_EQ(actual.expires_at, expected.expires_at);
  EXPECT_EQ(actual.client_address, expected.client_address);
}

std::vector<std::string> UserEmails(const std::vector<UserRow>& rows) {
  std::vector<std::string> emails;
  for (const UserRow& row : rows) emails.push_back(row.email);
  return emails;
}

// The committed user with this id, or nullopt (failing the test if it cannot be read).
std::optional<UserRow> CommittedUser(Store& store, const std::string& id) {
  auto txn = store.Begin(TxnMode::kRead);
  if (!txn) {
    ADD_FAILURE() << txn.error().ToString();
    return std::nullopt;
  }
  auto row = (*txn)->GetUserById(id);
  if (!row) {
    ADD_FAILURE() << row.error().ToString();
    return std::nullopt;
  }
  return *row;
}

// The committed session with this session id's hash, or nullopt.
std::optional<SessionRow> CommittedSession(Store& store, const std::string& id) {
  auto txn = store.Begin(TxnMode::kRead);
  if (!txn) {
    ADD_FAILURE() << txn.error().ToString();
    return std::nullopt;
  }
  auto row = (*txn)->GetSessionByHash(SessionHashFor(id));
  if (!row) {
    ADD_FAILURE() << row.error().ToString();
    return std::nullopt;
  }
  return *row;
}

// The ids of the committed sessions among `ids` (looked up by their hashes), in that order.
std::vector<std::string> LiveSessions(Store& store, const std::vector<std::string>& ids) {
  std::vector<std::string> live;
  for (const std::string& id : ids) {
    if (CommittedSession(store, id).has_value()) live.push_back(id);
  }
  return live;
}

TEST_P(StoreConformanceTest, UserInsertAndGetByIdAndByEmail) {
  CreateTwoOrgs(store());
  const UserRow platform = MakeUser(kUser1, "ops@example.com", std::nullopt, "platform-admin");
  UserRow admin = MakeUser(kUser2, "ana@acme.example", kOrgA, "admin", kT1);
  admin.created_by = "user:ops@example.com/" + kUser1;
  admin.updated_at = kT2;
  admin.disabled_at = kT2 + 1;
  admin.last_login_at = kT2 + 2;
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK(txn.InsertUser(platform));
    ASSERT_OK(txn.InsertUser(admin));
    // A write transaction sees its own writes.
    ASSERT_OK_AND_ASSIGN(std::optional<UserRow> own, txn.GetUserByEmail(admin.email));
    ASSERT_TRUE(own.has_value());
    ExpectSameUser(*own, admin);
  });

  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  for (const UserRow* expected : std::initializer_list<const UserRow*>{&platform, &admin}) {
    SCOPED_TRACE(expected->id);
    ASSERT_OK_AND_ASSIGN(std::optional<UserRow> by_id, txn->GetUserById(expected->id));
    ASSERT_TRUE(by_id.has_value());
    ExpectSameUser(*by_id, *expected);
    ASSERT_OK_AND_ASSIGN(std::optional<UserRow> by_email, txn->GetUserByEmail(expected->email));
    ASSERT_TRUE(by_email.has_value());
    ExpectSameUser(*by_email, *expected);
  }
  ASSERT_OK_AND_ASSIGN(std::optional<UserRow> missing_id, txn->GetUserById(kMissingUser));
  EXPECT_FALSE(missing_id.has_value());
  ASSERT_OK_AND_ASSIGN(std::optional<UserRow> missing_email,
                       txn->GetUserByEmail("nobody@example.com"));
  EXPECT_FALSE(missing_email.has_value());
  // Ids and emails are not interchangeable, and emails are compared exactly (the caller
  // lower-cases them).
  ASSERT_OK_AND_ASSIGN(std::optional<UserRow> id_as_email, txn->GetUserByEmail(kUser1));
  EXPECT_FALSE(id_as_email.has_value());
  ASSERT_OK_AND_ASSIGN(std::optional<UserRow> email_as_id, txn->GetUserById(platform.email));
  EXPECT_FALSE(email_as_id.has_value());
  ASSERT_OK_AND_ASSIGN(std::optional<UserRow> other_case, txn->GetUserByEmail("OPS@example.com"));
  EXPECT_FALSE(other_case.has_value());
}

TEST_P(StoreConformanceTest, ListUsersByEmailAllOrOneOrg) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    // Inserted in an order that is neither the email, the id nor the creation order.
    ASSERT_OK(txn.InsertUser(MakeUser(kUser3, "carol@acme.example", kOrgA, "member", kT0)));
    ASSERT_OK(
        txn.InsertUser(MakeUser(kUser1, "zed@example.com", std::nullopt, "platform-admin", kT1)));
    ASSERT_OK(txn.InsertUser(MakeUser(kUser5, "bob@globex.example", kOrgB, "reader", kT2)));
    ASSERT_OK(txn.InsertUser(MakeUser(kUser2, "alice@acme.example", kOrgA, "admin", kT2)));
    ASSERT_OK(txn.InsertUser(MakeUser(kUser4, "abe@acme.example", kOrgA, "reader", kT1)));
  });
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<UserRow> all, txn->ListUsers(std::nullopt));
  EXPECT_EQ(UserEmails(all), (std::vector<std::string>{"abe@acme.example", "alice@acme.example",
                                                       "bob@globex.example", "carol@acme.example",
                                                       "zed@example.com"}));
  ASSERT_EQ(all.size(), 5u);
  ExpectSameUser(all[2], MakeUser(kUser5, "bob@globex.example", kOrgB, "reader", kT2));
  ExpectSameUser(all[4], MakeUser(kUser1, "zed@example.com", std::nullopt, "platform-admin", kT1));

  ASSERT_OK_AND_ASSIGN(std::vector<UserRow> a, txn->ListUsers(kOrgA));
  EXPECT_EQ(UserEmails(a), (std::vector<std::string>{"abe@acme.example", "alice@acme.example",
                                                     "carol@acme.example"}));
  ASSERT_OK_AND_ASSIGN(std::vector<UserRow> b, txn->ListUsers(kOrgB));
  EXPECT_EQ(UserEmails(b), (std::vector<std::string>{"bob@globex.example"}));
  ASSERT_OK_AND_ASSIGN(std::vector<UserRow> none, txn->ListUsers(kMissingOrg));
  EXPECT_TRUE(none.empty());
}

TEST_P(StoreConformanceTest, UserDuplicateIdOrEmailIsAlreadyExists) {
  CreateTwoOrgs(store());
  const UserRow original = MakeUser(kUser1, "ana@acme.example", kOrgA, "admin");
  InWriteTxn(store(), [&](Txn& txn) { ASSERT_OK(txn.InsertUser(original)); });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->InsertUser(MakeUser(kUser1, "other@globex.example", kOrgB, "reader")),
                      ErrorCode::kAlreadyExists);
  }
  {
    // The same email in another org, or as a platform admin, is still the same person.
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->InsertUser(MakeUser(kUser2, "ana@acme.example", kOrgB, "reader")),
                      ErrorCode::kAlreadyExists);
  }
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(
        txn->InsertUser(MakeUser(kUser3, "ana@acme.example", std::nullopt, "platform-admin")),
        ErrorCode::kAlreadyExists);
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<UserRow> all, txn->ListUsers(std::nullopt));
  ASSERT_EQ(all.size(), 1u);
  ExpectSameUser(all[0], original);
}

TEST_P(StoreConformanceTest, UserOfMissingOrgIsFailedPrecondition) {
  CreateTwoOrgs(store());
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->InsertUser(MakeUser(kUser1, "ana@acme.example", kMissingOrg, "admin")),
                      ErrorCode::kFailedPrecondition);
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::optional<UserRow> by_id, txn->GetUserById(kUser1));
  EXPECT_FALSE(by_id.has_value());
  ASSERT_OK_AND_ASSIGN(std::optional<UserRow> by_email, txn->GetUserByEmail("ana@acme.example"));
  EXPECT_FALSE(by_email.has_value());
}

TEST_P(StoreConformanceTest, UserWithInconsistentRoleAndOrgIsRejected) {
  CreateTwoOrgs(store());
  struct Case {
    std::optional<std::string> org_id;
    std::string role;
  };
  for (const Case& c :
       {Case{kOrgA, "platform-admin"}, Case{std::nullopt, "admin"}, Case{std::nullopt, "member"},
        Case{std::nullopt, "reader"}, Case{kOrgA, "owner"}, Case{std::nullopt, ""}}) {
    SCOPED_TRACE("role '" + c.role + "'" + (c.org_id ? " with org" : " without org"));
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    const UserRow row = MakeUser(kUser1, "ana@acme.example", c.org_id, c.role);
    const Status inserted = txn->InsertUser(row);
    ASSERT_FALSE(inserted.has_value());
    EXPECT_EQ(inserted.error().message().find(row.password_hash), std::string::npos)
        << inserted.error().message();
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<UserRow> all, txn->ListUsers(std::nullopt));
  EXPECT_TRUE(all.empty());
}

TEST_P(StoreConformanceTest, UpdateUserReplacesItsFieldsAndKeepsTheRest) {
  CreateTwoOrgs(store());
  const UserRow original = MakeUser(kUser1, "ana@acme.example", kOrgA, "member", kT0);
  const UserRow other = MakeUser(kUser2, "bob@acme.example", kOrgA, "member", kT0);
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK(txn.InsertUser(original));
    ASSERT_OK(txn.InsertUser(other));
  });

  // Everything the update may change is changed; everything else in the row it is given is
  // different too, and must be ignored.
  UserRow changed = original;
  changed.role = "admin";
  changed.password_hash = PasswordHashFor(kUser5);
  changed.updated_at = kT1;
  changed.disabled_at = kT1 + 1;
  changed.last_login_at = kT1 + 2;
  UserRow ignored = changed;
  ignored.email = "mallory@globex.example";
  ignored.org_id = kOrgB;
  ignored.created_at = kT2;
  ignored.created_by = "someone-else";
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK(txn.UpdateUser(ignored));
    // A write transaction sees its own update.
    ASSERT_OK_AND_ASSIGN(std::optional<UserRow> own, txn.GetUserById(kUser1));
    ASSERT_TRUE(own.has_value());
    ExpectSameUser(*own, changed);
  });
  {
    const std::optional<UserRow> stored = CommittedUser(store(), kUser1);
    ASSERT_TRUE(stored.has_value());
    ExpectSameUser(*stored, changed);
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
    // Still found by its own email, in its own org; not by the email it was handed.
    ASSERT_OK_AND_ASSIGN(std::optional<UserRow> by_email, txn->GetUserByEmail(original.email));
    ASSERT_TRUE(by_email.has_value());
    EXPECT_EQ(by_email->id, kUser1);
    ASSERT_OK_AND_ASSIGN(std::optional<UserRow> by_other, txn->GetUserByEmail(ignored.email));
    EXPECT_FALSE(by_other.has_value());
    ASSERT_OK_AND_ASSIGN(std::vector<UserRow> b, txn->ListUsers(kOrgB));
    EXPECT_TRUE(b.empty());
  }

  // Replaced, not merged: unset optionals become unset (re-enabling a user), and times may
  // move either way.
  UserRow reenabled = changed;
  reenabled.role = "reader";
  reenabled.updated_at = kT0;
  reenabled.disabled_at = std::nullopt;
  reenabled.last_login_at = kT0 + 5;
  InWriteTxn(store(), [&](Txn& txn) { ASSERT_OK(txn.UpdateUser(reenabled)); });
  const std::optional<UserRow> stored = CommittedUser(store(), kUser1);
  ASSERT_TRUE(stored.has_value());
  ExpectSameUser(*stored, reenabled);
  // Only the named user changed.
  const std::optional<UserRow> untouched = CommittedUser(store(), kUser2);
  ASSERT_TRUE(untouched.has_value());
  ExpectSameUser(*untouched, other);
}

TEST_P(StoreConformanceTest, UpdateMissingUserIsNotFound) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertUser(MakeUser(kUser1, "ana@acme.example", kOrgA, "member")));
  });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->UpdateUser(MakeUser(kMissingUser, "ana@acme.example", kOrgA, "admin")),
                      ErrorCode::kNotFound);
  }
  const std::optional<UserRow> stored = CommittedUser(store(), kUser1);
  ASSERT_TRUE(stored.has_value());
  ExpectSameUser(*stored, MakeUser(kUser1, "ana@acme.example", kOrgA, "member"));
  const std::optional<UserRow> missing = CommittedUser(store(), kMissingUser);
  EXPECT_FALSE(missing.has_value());
}

// The org is kept by an update, so a role must still fit it: an org user cannot become a
// platform admin, nor a platform admin an org role, whatever org_id the row carries.
TEST_P(StoreConformanceTest, UpdateUserToARoleThatDoesNotFitItsOrgIsRejected) {
  CreateTwoOrgs(store());
  const UserRow org_user = MakeUser(kUser1, "ana@acme.example", kOrgA, "member");
  const UserRow platform = MakeUser(kUser2, "ops@example.com", std::nullopt, "platform-admin");
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK(txn.InsertUser(org_user));
    ASSERT_OK(txn.InsertUser(platform));
  });
  struct Case {
    const UserRow* user;
    std::optional<std::string> org_id;  // what the row given to UpdateUser says
    std::string role;
  };
  for (const Case& c :
       {Case{&org_user, kOrgA, "platform-admin"}, Case{&org_user, std::nullopt, "platform-admin"},
        Case{&org_user, kOrgA, "owner"}, Case{&platform, std::nullopt, "admin"},
        Case{&platform, kOrgA, "admin"}, Case{&platform, std::nullopt, ""}}) {
    SCOPED_TRACE(c.user->email + " to role '" + c.role + "'");
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    UserRow row = *c.user;
    row.org_id = c.org_id;
    row.role = c.role;
    row.password_hash = PasswordHashFor(kUser5);
    const Status updated = txn->UpdateUser(row);
    ASSERT_FALSE(updated.has_value());
    EXPECT_NE(updated.error().code(), ErrorCode::kNotFound);
    EXPECT_EQ(updated.error().message().find(row.password_hash), std::string::npos)
        << updated.error().message();
  }
  for (const UserRow* expected : {&org_user, &platform}) {
    const std::optional<UserRow> stored = CommittedUser(store(), expected->id);
    ASSERT_TRUE(stored.has_value());
    ExpectSameUser(*stored, *expected);
  }
}

TEST_P(StoreConformanceTest, SessionInsertAndGetByHash) {
  CreateTwoOrgs(store());
  SessionRow first = MakeSession(kSess1, kUser1, kT0);
  SessionRow second = MakeSession(kSess2, kUser1, kT1);
  second.last_seen_at = kT2;
  second.expires_at = kT2 + 43'200'000'000;
  second.client_address = "[2001:db8::1]:443";
  const SessionRow platform = MakeSession(kSess3, kUser2, kT0);
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK(txn.InsertUser(MakeUser(kUser1, "ana@acme.example", kOrgA, "admin")));
    ASSERT_OK(txn.InsertUser(MakeUser(kUser2, "ops@example.com", std::nullopt, "platform-admin")));
    ASSERT_OK(txn.InsertSession(first));
    ASSERT_OK(txn.InsertSession(second));
    ASSERT_OK(txn.InsertSession(platform));
    // A write transaction sees its own writes.
    ASSERT_OK_AND_ASSIGN(std::optional<SessionRow> own, txn.GetSessionByHash(second.hash));
    ASSERT_TRUE(own.has_value());
    ExpectSameSession(*own, second);
  });

  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  for (const SessionRow* expected :
       std::initializer_list<const SessionRow*>{&first, &second, &platform}) {
    SCOPED_TRACE(expected->id);
    ASSERT_OK_AND_ASSIGN(std::optional<SessionRow> by_hash, txn->GetSessionByHash(expected->hash));
    ASSERT_TRUE(by_hash.has_value());
    ExpectSameSession(*by_hash, *expected);
  }
  ASSERT_OK_AND_ASSIGN(std::optional<SessionRow> missing,
                       txn->GetSessionByHash(SessionHashFor(kMissingSess)));
  EXPECT_FALSE(missing.has_value());
  // An id is not a hash, and hashes are compared exactly.
  ASSERT_OK_AND_ASSIGN(std::optional<SessionRow> id_as_hash, txn->GetSessionByHash(kSess1));
  EXPECT_FALSE(id_as_hash.has_value());
  std::string upper = first.hash;
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  ASSERT_NE(upper, first.hash);
  ASSERT_OK_AND_ASSIGN(std::optional<SessionRow> other_case, txn->GetSessionByHash(upper));
  EXPECT_FALSE(other_case.has_value());
}

TEST_P(StoreConformanceTest, SessionDuplicateIdOrHashIsAlreadyExists) {
  CreateTwoOrgs(store());
  const SessionRow original = MakeSession(kSess1, kUser1, kT0);
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK(txn.InsertUser(MakeUser(kUser1, "ana@acme.example", kOrgA, "admin")));
    ASSERT_OK(txn.InsertUser(MakeUser(kUser2, "bob@globex.example", kOrgB, "reader")));
    ASSERT_OK(txn.InsertSession(original));
  });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    SessionRow same_id = MakeSession(kSess1, kUser2, kT1);
    same_id.hash = SessionHashFor(kSess2);
    EXPECT_ERROR_CODE(txn->InsertSession(same_id), ErrorCode::kAlreadyExists);
  }
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    SessionRow same_hash = MakeSession(kSess2, kUser2, kT1);
    same_hash.hash = original.hash;
    EXPECT_ERROR_CODE(txn->InsertSession(same_hash), ErrorCode::kAlreadyExists);
  }
  const std::optional<SessionRow> stored = CommittedSession(store(), kSess1);
  ASSERT_TRUE(stored.has_value());
  ExpectSameSession(*stored, original);
  EXPECT_EQ(LiveSessions(store(), {kSess1, kSess2}), (std::vector<std::string>{kSess1}));
}

TEST_P(StoreConformanceTest, SessionOfMissingUserIsFailedPrecondition) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertUser(MakeUser(kUser1, "ana@acme.example", kOrgA, "admin")));
  });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->InsertSession(MakeSession(kSess1, kMissingUser)),
                      ErrorCode::kFailedPrecondition);
  }
  EXPECT_EQ(LiveSessions(store(), {kSess1}), std::vector<std::string>{});
}

TEST_P(StoreConformanceTest, TouchSessionOnlyMovesForward) {
  CreateTwoOrgs(store());
  const SessionRow original = MakeSession(kSess1, kUser1, kT0);
  const SessionRow other = MakeSession(kSess2, kUser1, kT0);
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK(txn.InsertUser(MakeUser(kUser1, "ana@acme.example", kOrgA, "admin")));
    ASSERT_OK(txn.InsertSession(original));
    ASSERT_OK(txn.InsertSession(other));
  });
  auto last_seen = [this](const std::string& id) -> std::optional<UnixMicros> {
    const std::optional<SessionRow> row = CommittedSession(store(), id);
    if (!row.has_value()) {
      ADD_FAILURE() << "session " << id << " not readable";
      return std::nullopt;
    }
    return row->last_seen_at;
  };
  EXPECT_EQ(last_seen(kSess1), std::optional<UnixMicros>(kT0));

  InWriteTxn(store(), [](Txn& txn) { ASSERT_OK(txn.TouchSession(kSess1, kT1)); });
  EXPECT_EQ(last_seen(kSess1), std::optional<UnixMicros>(kT1));
  // Earlier: succeeds, keeps the later time. The same time: succeeds too.
  InWriteTxn(store(), [](Txn& txn) { ASSERT_OK(txn.TouchSession(kSess1, kT0)); });
  EXPECT_EQ(last_seen(kSess1), std::optional<UnixMicros>(kT1));
  InWriteTxn(store(), [](Txn& txn) { ASSERT_OK(txn.TouchSession(kSess1, kT1)); });
  EXPECT_EQ(last_seen(kSess1), std::optional<UnixMicros>(kT1));
  InWriteTxn(store(), [](Txn& txn) { ASSERT_OK(txn.TouchSession(kSess1, kT2)); });
  EXPECT_EQ(last_seen(kSess1), std::optional<UnixMicros>(kT2));
  EXPECT_EQ(last_seen(kSess2), std::optional<UnixMicros>(kT0));  // only the named one moved
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->TouchSession(kMissingSess, kT2), ErrorCode::kNotFound);
  }
  {
    // Sessions are touched by id, not by hash.
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->TouchSession(original.hash, kT2), ErrorCode::kNotFound);
  }
  // Touching changes nothing else: not even the absolute end.
  const std::optional<SessionRow> row = CommittedSession(store(), kSess1);
  ASSERT_TRUE(row.has_value());
  SessionRow expected = original;
  expected.last_seen_at = kT2;
  ExpectSameSession(*row, expected);
}

TEST_P(StoreConformanceTest, DeleteSessionDeletesOnlyIt) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertUser(MakeUser(kUser1, "ana@acme.example", kOrgA, "admin")));
    ASSERT_OK(txn.InsertSession(MakeSession(kSess1, kUser1)));
    ASSERT_OK(txn.InsertSession(MakeSession(kSess2, kUser1)));
  });
  InWriteTxn(store(), [](Txn& txn) { ASSERT_OK(txn.DeleteSession(kSess1)); });
  EXPECT_EQ(LiveSessions(store(), {kSess1, kSess2}), (std::vector<std::string>{kSess2}));
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->DeleteSession(kSess1), ErrorCode::kNotFound);  // already gone
  }
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->DeleteSession(kMissingSess), ErrorCode::kNotFound);
  }
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->DeleteSession(SessionHashFor(kSess2)), ErrorCode::kNotFound);
  }
  EXPECT_EQ(LiveSessions(store(), {kSess1, kSess2}), (std::vector<std::string>{kSess2}));
  // The user stays, and the deleted session's id and hash are free again.
  EXPECT_TRUE(CommittedUser(store(), kUser1).has_value());
  InWriteTxn(store(),
             [](Txn& txn) { ASSERT_OK(txn.InsertSession(MakeSession(kSess1, kUser1, kT1))); });
}

TEST_P(StoreConformanceTest, DeleteUserSessionsDeletesEveryOneOfTheUserAndCountsThem) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertUser(MakeUser(kUser1, "ana@acme.example", kOrgA, "admin")));
    ASSERT_OK(txn.InsertUser(MakeUser(kUser2, "bob@acme.example", kOrgA, "member")));
    ASSERT_OK(txn.InsertUser(MakeUser(kUser3, "carol@acme.example", kOrgA, "reader")));
    ASSERT_OK(txn.InsertSession(MakeSession(kSess1, kUser1, kT0)));
    ASSERT_OK(txn.InsertSession(MakeSession(kSess2, kUser2, kT0)));
    ASSERT_OK(txn.InsertSession(MakeSession(kSess3, kUser1, kT1)));
    ASSERT_OK(txn.InsertSession(MakeSession(kSess4, kUser1, kT2)));
  });
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK_AND_ASSIGN(const std::int64_t deleted, txn.DeleteUserSessions(kUser1));
    EXPECT_EQ(deleted, 3);
    // Again: nothing left. A user without sessions, and an unknown user: none either.
    ASSERT_OK_AND_ASSIGN(const std::int64_t again, txn.DeleteUserSessions(kUser1));
    EXPECT_EQ(again, 0);
    ASSERT_OK_AND_ASSIGN(const std::int64_t none, txn.DeleteUserSessions(kUser3));
    EXPECT_EQ(none, 0);
    ASSERT_OK_AND_ASSIGN(const std::int64_t unknown, txn.DeleteUserSessions(kMissingUser));
    EXPECT_EQ(unknown, 0);
  });
  EXPECT_EQ(LiveSessions(store(), {kSess1, kSess2, kSess3, kSess4}),
            (std::vector<std::string>{kSess2}));
  // The users stay.
  for (const std::string& id : {kUser1, kUser2, kUser3}) {
    EXPECT_TRUE(CommittedUser(store(), id).has_value()) << id;
  }
}

TEST_P(StoreConformanceTest, DeleteExpiredSessionsDeletesExpiredAndIdleOnesAndCountsThem) {
  CreateTwoOrgs(store());
  constexpr UnixMicros kNow = kT2;
  constexpr UnixMicros kIdleBefore = kT1;
  // Each session is on one side of one of the two limits (both are inclusive).
  auto session = [](const std::string& id, UnixMicros last_seen_at, UnixMicros expires_at) {
    SessionRow row = MakeSession(id, kUser1, kT0);
    row.last_seen_at = last_seen_at;
    row.expires_at = expires_at;
    return row;
  };
  const std::vector<SessionRow> sessions = {
      session(kSess1, kNow, kNow),                  // expires exactly now: gone
      session(kSess2, kNow, kNow + 1),              // active, ends later: kept
      session(kSess3, kIdleBefore, kNow + 10),      // idle exactly up to the limit: gone
      session(kSess4, kIdleBefore + 1, kNow + 10),  // seen just after it: kept
      session(kSess5, kT0, kT0 + 1),                // both expired and idle: gone, counted once
  };
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK(txn.InsertUser(MakeUser(kUser1, "ana@acme.example", kOrgA, "admin")));
    for (const SessionRow& row : sessions) ASSERT_OK(txn.InsertSession(row));
  });
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK_AND_ASSIGN(const std::int64_t deleted, txn.DeleteExpiredSessions(kNow, kIdleBefore));
    EXPECT_EQ(deleted, 3);
    ASSERT_OK_AND_ASSIGN(const std::int64_t again, txn.DeleteExpiredSessions(kNow, kIdleBefore));
    EXPECT_EQ(again, 0);
  });
  EXPECT_EQ(LiveSessions(store(), {kSess1, kSess2, kSess3, kSess4, kSess5}),
            (std::vector<std::string>{kSess2, kSess4}));
  // The kept ones are unchanged.
  const std::optional<SessionRow> kept = CommittedSession(store(), kSess4);
  ASSERT_TRUE(kept.has_value());
  ExpectSameSession(*kept, sessions[3]);
  // Later, both limits pass them too.
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK_AND_ASSIGN(const std::int64_t rest, txn.DeleteExpiredSessions(kNow + 1, kT0));
    EXPECT_EQ(rest, 1);  // kSess2 ends at kNow + 1
    ASSERT_OK_AND_ASSIGN(const std::int64_t idle, txn.DeleteExpiredSessions(kNow, kIdleBefore + 1));
    EXPECT_EQ(idle, 1);  // kSess4 was last seen at kIdleBefore + 1
  });
  EXPECT_EQ(LiveSessions(store(), {kSess2, kSess4}), std::vector<std::string>{});
  // The user stays.
  EXPECT_TRUE(CommittedUser(store(), kUser1).has_value());
}

TEST_P(StoreConformanceTest, DeleteOrgCascadesToItsUsersAndTheirSessionsOnly) {
  CreateTwoOrgs(store());
  const UserRow platform = MakeUser(kUser1, "ops@example.com", std::nullopt, "platform-admin");
  const UserRow b_user = MakeUser(kUser4, "bob@globex.example", kOrgB, "member");
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK(txn.InsertUser(platform));
    ASSERT_OK(txn.InsertUser(MakeUser(kUser2, "ana@acme.example", kOrgA, "admin")));
    ASSERT_OK(txn.InsertUser(MakeUser(kUser3, "abe@acme.example", kOrgA, "reader")));
    ASSERT_OK(txn.InsertUser(b_user));
    ASSERT_OK(txn.InsertSession(MakeSession(kSess1, kUser1)));
    ASSERT_OK(txn.InsertSession(MakeSession(kSess2, kUser2)));
    ASSERT_OK(txn.InsertSession(MakeSession(kSess3, kUser2)));
    ASSERT_OK(txn.InsertSession(MakeSession(kSess4, kUser3)));
    ASSERT_OK(txn.InsertSession(MakeSession(kSess5, kUser4)));
  });
  InWriteTxn(store(), [](Txn& txn) { ASSERT_OK(txn.DeleteOrg(kOrgA)); });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
    ASSERT_OK_AND_ASSIGN(std::vector<UserRow> all, txn->ListUsers(std::nullopt));
    EXPECT_EQ(UserEmails(all), (std::vector<std::string>{"bob@globex.example", "ops@example.com"}));
    ASSERT_OK_AND_ASSIGN(std::vector<UserRow> a, txn->ListUsers(kOrgA));
    EXPECT_TRUE(a.empty());
    ASSERT_OK_AND_ASSIGN(std::optional<UserRow> by_id, txn->GetUserById(kUser2));
    EXPECT_FALSE(by_id.has_value());
    ASSERT_OK_AND_ASSIGN(std::optional<UserRow> by_email, txn->GetUserByEmail("abe@acme.example"));
    EXPECT_FALSE(by_email.has_value());
  }
  // The deleted users' sessions went with them; the others' stayed.
  EXPECT_EQ(LiveSessions(store(), {kSess1, kSess2, kSess3, kSess4, kSess5}),
            (std::vector<std::string>{kSess1, kSess5}));
  const std::optional<UserRow> kept = CommittedUser(store(), kUser4);
  ASSERT_TRUE(kept.has_value());
  ExpectSameUser(*kept, b_user);
  InWriteTxn(store(), [](Txn& txn) {
    // Nothing half-deleted is left behind: no session of a deleted user, the ids, emails and
    // session hashes are free again, and a re-created org with the same id has no users.
    ASSERT_OK_AND_ASSIGN(const std::int64_t orphans, txn.DeleteUserSessions(kUser2));
    EXPECT_EQ(orphans, 0);
    ASSERT_OK(txn.InsertOrg(MakeOrg(kOrgA, "acme-again")));
    ASSERT_OK_AND_ASSIGN(std::vector<UserRow> a, txn.ListUsers(kOrgA));
    EXPECT_TRUE(a.empty());
    ASSERT_OK(txn.InsertUser(MakeUser(kUser2, "ana@acme.example", kOrgA, "admin", kT2)));
    ASSERT_OK(txn.InsertSession(MakeSession(kSess2, kUser2, kT2)));
    ASSERT_OK(txn.InsertUser(MakeUser(kUser5, "abe@acme.example", kOrgA, "admin", kT2)));
    SessionRow reused_hash = MakeSession(kSess3, kUser5, kT2);
    reused_hash.hash = SessionHashFor(kSess4);
    ASSERT_OK(txn.InsertSession(reused_hash));
  });
}

TEST_P(StoreConformanceTest, UserAndSessionWritesOnReadTxnAreRejected) {
  CreateTwoOrgs(store());
  const UserRow user = MakeUser(kUser1, "ana@acme.example", kOrgA, "member");
  const SessionRow session = MakeSession(kSess1, kUser1, kT0);
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK(txn.InsertUser(user));
    ASSERT_OK(txn.InsertSession(session));
  });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
    EXPECT_ERROR_CODE(txn->InsertUser(MakeUser(kUser2, "bob@acme.example", kOrgA, "member")),
                      ErrorCode::kFailedPrecondition);
    UserRow changed = user;
    changed.role = "admin";
    changed.disabled_at = kT1;
    EXPECT_ERROR_CODE(txn->UpdateUser(changed), ErrorCode::kFailedPrecondition);
    EXPECT_ERROR_CODE(txn->InsertSession(MakeSession(kSess2, kUser1)),
                      ErrorCode::kFailedPrecondition);
    EXPECT_ERROR_CODE(txn->TouchSession(kSess1, kT2), ErrorCode::kFailedPrecondition);
    EXPECT_ERROR_CODE(txn->DeleteSession(kSess1), ErrorCode::kFailedPrecondition);
    EXPECT_ERROR_CODE(txn->DeleteUserSessions(kUser1), ErrorCode::kFailedPrecondition);
    EXPECT_ERROR_CODE(txn->DeleteExpiredSessions(kT2 + 3'600'000'000, kT2),
                      ErrorCode::kFailedPrecondition);
    // Reading still works in the same transaction.
    ASSERT_OK_AND_ASSIGN(std::vector<UserRow> all, txn->ListUsers(std::nullopt));
    EXPECT_EQ(all.size(), 1u);
    ASSERT_OK_AND_ASSIGN(std::optional<SessionRow> row, txn->GetSessionByHash(session.hash));
    EXPECT_TRUE(row.has_value());
    ASSERT_OK(txn->Commit());
  }
  const std::optional<UserRow> stored_user = CommittedUser(store(), kUser1);
  ASSERT_TRUE(stored_user.has_value());
  ExpectSameUser(*stored_user, user);
  const std::optional<SessionRow> stored_session = CommittedSession(store(), kSess1);
  ASSERT_TRUE(stored_session.has_value());
  ExpectSameSession(*stored_session, session);
  EXPECT_EQ(LiveSessions(store(), {kSess1, kSess2}), (std::vector<std::string>{kSess1}));
}

TEST_P(StoreConformanceTest, UncommittedUserAndSessionWritesLeaveNoTrace) {
  CreateTwoOrgs(store());
  const UserRow user = MakeUser(kUser1, "ana@acme.example", kOrgA, "member");
  const SessionRow session = MakeSession(kSess1, kUser1, kT0);
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK(txn.InsertUser(user));
    ASSERT_OK(txn.InsertSession(session));
  });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    ASSERT_OK(txn->InsertUser(MakeUser(kUser2, "bob@acme.example", kOrgA, "admin")));
    ASSERT_OK(txn->InsertSession(MakeSession(kSess2, kUser2)));
    UserRow changed = user;
    changed.role = "admin";
    changed.password_hash = PasswordHashFor(kUser5);
    changed.disabled_at = kT1;
    ASSERT_OK(txn->UpdateUser(changed));
    ASSERT_OK(txn->TouchSession(kSess1, kT2));
    ASSERT_OK_AND_ASSIGN(const std::int64_t deleted, txn->DeleteUserSessions(kUser1));
    EXPECT_EQ(deleted, 1);
    // Not committed: a reader sees none of it.
    ASSERT_OK_AND_ASSIGN(auto reader, store().Begin(TxnMode::kRead));
    ASSERT_OK_AND_ASSIGN(std::vector<UserRow> seen, reader->ListUsers(std::nullopt));
    EXPECT_EQ(UserEmails(seen), (std::vector<std::string>{"ana@acme.example"}));
    // Destroyed without Commit.
  }
  const std::optional<UserRow> stored_user = CommittedUser(store(), kUser1);
  ASSERT_TRUE(stored_user.has_value());
  ExpectSameUser(*stored_user, user);
  EXPECT_FALSE(CommittedUser(store(), kUser2).has_value());
  const std::optional<SessionRow> stored_session = CommittedSession(store(), kSess1);
  ASSERT_TRUE(stored_session.has_value());
  ExpectSameSession(*stored_session, session);
  EXPECT_EQ(LiveSessions(store(), {kSess1, kSess2}), (std::vector<std::string>{kSess1}));
  // The rolled-back ids, email and hash are free again.
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertUser(MakeUser(kUser2, "bob@acme.example", kOrgA, "admin")));
    ASSERT_OK(txn.InsertSession(MakeSession(kSess2, kUser2)));
  });
}

// Error messages may name user and session ids, emails and orgs, never a password hash or a
// session's hash.
TEST_P(StoreConformanceTest, UserAndSessionErrorMessagesNeverContainHashes) {
  CreateTwoOrgs(store());
  const UserRow user = MakeUser(kUser1, "ana@acme.example", kOrgA, "admin");
  const SessionRow session = MakeSession(kSess1, kUser1);
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK(txn.InsertUser(user));
    ASSERT_OK(txn.InsertSession(session));
  });

  std::vector<Error> errors;
  auto collect = [&](auto&& operation) {
    auto txn = store().Begin(TxnMode::kWrite);
    if (!txn) {
      ADD_FAILURE() << txn.error().ToString();
      return;
    }
    Status status = operation(**txn);
    if (status) {
      ADD_FAILURE() << "operation " << errors.size() << " succeeded";
    } else {
      errors.push_back(status.error());
    }
  };
  collect([&](Txn& txn) { return txn.InsertUser(user); });  // duplicate id and email
  collect([&](Txn& txn) {
    return txn.InsertUser(MakeUser(kUser2, user.email, kOrgB, "member"));  // same email
  });
  collect([&](Txn& txn) {
    return txn.InsertUser(MakeUser(kUser1, "other@globex.example", kOrgB, "member"));  // same id
  });
  collect([&](Txn& txn) {
    return txn.InsertUser(MakeUser(kUser3, "x@example.com", kMissingOrg, "member"));
  });
  collect([&](Txn& txn) {
    return txn.InsertUser(MakeUser(kUser3, "x@example.com", kOrgA, "platform-admin"));
  });
  collect([&](Txn& txn) {
    UserRow changed = user;
    changed.role = "platform-admin";
    return txn.UpdateUser(changed);
  });
  collect([&](Txn& txn) { return txn.UpdateUser(MakeUser(kMissingUser, "y@x", kOrgA, "admin")); });
  collect([&](Txn& txn) { return txn.InsertSession(session); });  // duplicate id and hash
  collect([&](Txn& txn) {
    SessionRow same_hash = MakeSession(kSess2, kUser1);
    same_hash.hash = session.hash;
    return txn.InsertSession(same_hash);
  });
  collect([&](Txn& txn) { return txn.InsertSession(MakeSession(kSess3, kMissingUser)); });
  collect([&](Txn& txn) { return txn.TouchSession(kMissingSess, kT1); });
  collect([&](Txn& txn) { return txn.DeleteSession(kMissingSess); });
  ASSERT_EQ(errors.size(), 12u);
  EXPECT_EQ(errors[0].code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(errors[1].code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(errors[2].code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(errors[3].code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(errors[6].code(), ErrorCode::kNotFound);
  EXPECT_EQ(errors[7].code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(errors[8].code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(errors[9].code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(errors[10].code(), ErrorCode::kNotFound);
  EXPECT_EQ(errors[11].code(), ErrorCode::kNotFound);
  for (std::size_t i = 0; i < errors.size(); ++i) {
    const std::string& message = errors[i].message();
    SCOPED_TRACE(i);
    // Neither the hashes nor their distinctive markers (no truncated copy).
    EXPECT_EQ(message.find(user.password_hash), std::string::npos) << message;
    EXPECT_EQ(message.find("$argon2id"), std::string::npos) << message;
    EXPECT_EQ(message.find("5a17"), std::string::npos) << message;
    EXPECT_EQ(message.find(session.hash), std::string::npos) << message;
    EXPECT_EQ(message.find("5e55"), std::string::npos) << message;
  }
  // Messages still say which user, session or org they are about.
  EXPECT_NE(errors[2].message().find(kUser1), std::string::npos) << errors[2].message();
  EXPECT_NE(errors[3].message().find(kMissingOrg), std::string::npos) << errors[3].message();
  EXPECT_NE(errors[9].message().find(kMissingUser), std::string::npos) << errors[9].message();
  EXPECT_NE(errors[10].message().find(kMissingSess), std::string::npos) << errors[10].message();
}

// ---- Audit log

// A MAC-like value (64 hex digits) that is different for every seq; the store never checks
// it, so any text does.
std::string MacFor(std::int64_t seq) {
  std::string mac = std::to_string(seq);
  mac.insert(0, 64 - mac.size(), 'a');
  return mac;
}

// A record with every optional field unset; prev_mac/mac chain the way the audit module's do.
AuditRow MakeAudit(std::int64_t seq, UnixMicros time, const std::string& action = "config.read",
                   const std::string& outcome = "success") {
  AuditRow row;
  row.seq = seq;
  row.time = time;
  row.action = action;
  row.outcome = outcome;
  row.client_address = "192.0.2.7:41000";
  row.request_id = "req-";
  row.request_id += std::to_string(seq);
  row.detail = "";
  row.key_id = "ak1";
  row.prev_mac = seq == 1 ? std::string(64, '0') : MacFor(seq - 1);
  row.mac = MacFor(seq);
  return row;
}

void ExpectSameAudit(const AuditRow& actual, const AuditRow& expected) {
  EXPECT_EQ(actual.seq, expected.seq);
  EXPECT_EQ(actual.time, expected.time);
  EXPECT_EQ(actual.action, expected.action);
  EXPECT_EQ(actual.outcome, expected.outcome);
  EXPECT_EQ(actual.org_id, expected.org_id);
  EXPECT_EQ(actual.config_key, expected.config_key);
  EXPECT_EQ(actual.actor_id, expected.actor_id);
  EXPECT_EQ(actual.actor_name, expected.actor_name);
  EXPECT_EQ(actual.client_address, expected.client_address);
  EXPECT_EQ(actual.request_id, expected.request_id);
  EXPECT_EQ(actual.execution_id, expected.execution_id);
  EXPECT_EQ(actual.detail, expected.detail);
  EXPECT_EQ(actual.key_id, expected.key_id);
  EXPECT_EQ(actual.prev_mac, expected.prev_mac);
  EXPECT_EQ(actual.mac, expected.mac);
}

void ExpectSameCheckpoint(const AuditCheckpoint& actual, const AuditCheckpoint& expected) {
  EXPECT_EQ(actual.first_seq, expected.first_seq);
  EXPECT_EQ(actual.prev_mac, expected.prev_mac);
  EXPECT_EQ(actual.created_at, expected.created_at);
  EXPECT_EQ(actual.key_id, expected.key_id);
  EXPECT_EQ(actual.mac, expected.mac);
}

std::vector<std::int64_t> Seqs(const std::vector<AuditRow>& rows) {
  std::vector<std::int64_t> seqs;
  for (const AuditRow& row : rows) seqs.push_back(row.seq);
  return seqs;
}

using SeqList = std::vector<std::int64_t>;

// The seqs ListAudit returns, or {-1} (which no test expects) after reporting an error.
SeqList ListSeqs(Txn& txn, const AuditFilter& filter) {
  Result<std::vector<AuditRow>> rows = txn.ListAudit(filter);
  if (!rows) {
    ADD_FAILURE() << rows.error().ToString();
    return {-1};
  }
  return Seqs(*rows);
}

SeqList ScanSeqs(Txn& txn, std::int64_t from_seq, std::size_t limit) {
  Result<std::vector<AuditRow>> rows = txn.ScanAudit(from_seq, limit);
  if (!rows) {
    ADD_FAILURE() << rows.error().ToString();
    return {-1};
  }
  return Seqs(*rows);
}

// Eight records to filter. Times are offsets from kT0 and are NOT in seq order: record 6
// was written after the clock stepped back, so time and seq order differ.
//
//   seq time org key          action        actor_id actor_name outcome
//   1   100  A   db_url       config.read   tok1     ci         success
//   2   200  A   db_password  config.reveal tok2     alice      success
//   3   300  B   db_password  config.reveal tok1     ci         denied
//   4   400  -   -            auth.login    -        -          denied
//   5   500  A   db_password  config.write  tok2     alice      error
//   6   250  B   db_url       config.read   tok3     alice      success
//   7   600  A   db_url       config.reveal tok1     ci         success
//   8   700  -   -            org.create    -        root       success
std::vector<AuditRow> FilterFixture() {
  struct Spec {
    std::int64_t seq;
    UnixMicros offset;
    std::optional<std::string> org_id;
    std::optional<std::string> config_key;
    std::string action;
    std::optional<std::string> actor_id;
    std::optional<std::string> actor_name;
    std::string outcome;
  };
  const std::optional<std::string> none;
  const Spec specs[] = {
      {1, 100, kOrgA, "db_url", "config.read", kTok1, "ci", "success"},
      {2, 200, kOrgA, "db_password", "config.reveal", kTok2, "alice", "success"},
      {3, 300, kOrgB, "db_password", "config.reveal", kTok1, "ci", "denied"},
      {4, 400, none, none, "auth.login", none, none, "denied"},
      {5, 500, kOrgA, "db_password", "config.write", kTok2, "alice", "error"},
      {6, 250, kOrgB, "db_url", "config.read", kTok3, "alice", "success"},
      {7, 600, kOrgA, "db_url", "config.reveal", kTok1, "ci", "success"},
      {8, 700, none, none, "org.create", none, "root", "success"},
  };
  std::vector<AuditRow> rows;
  for (const Spec& spec : specs) {
    AuditRow row = MakeAudit(spec.seq, kT0 + spec.offset, spec.action, spec.outcome);
    row.org_id = spec.org_id;
    row.config_key = spec.config_key;
    row.actor_id = spec.actor_id;
    row.actor_name = spec.actor_name;
    rows.push_back(std::move(row));
  }
  return rows;
}

void InsertFilterFixture(Store& store) {
  InWriteTxn(store, [](Txn& txn) {
    for (const AuditRow& row : FilterFixture()) ASSERT_OK(txn.InsertAudit(row));
  });
}

TEST_P(StoreConformanceTest, NewStoreHasNoAuditRecordsOrCheckpoint) {
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::optional<AuditRow> last, txn->GetLastAudit());
  EXPECT_FALSE(last.has_value());
  ASSERT_OK_AND_ASSIGN(std::optional<AuditCheckpoint> checkpoint, txn->GetAuditCheckpoint());
  EXPECT_FALSE(checkpoint.has_value());
  EXPECT_EQ(ListSeqs(*txn, AuditFilter{}), SeqList{});
  EXPECT_EQ(ScanSeqs(*txn, 1, 100), SeqList{});
  ASSERT_OK_AND_ASSIGN(std::optional<std::int64_t> first, txn->FirstAuditSeqSince(0));
  EXPECT_FALSE(first.has_value());
}

TEST_P(StoreConformanceTest, AuditInsertAndGetLastReturnsTheHighestSeq) {
  AuditRow first = MakeAudit(1, kT0, "auth.login", "denied");
  AuditRow second = MakeAudit(2, kT1, "config.reveal");
  second.org_id = kOrgA;
  second.config_key = "db_password";
  second.actor_id = kTok1;
  second.actor_name = "ci";
  second.execution_id = "exec-42";
  second.detail = "reason=none";
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK(txn.InsertAudit(first));
    // A write transaction sees its own records.
    ASSERT_OK_AND_ASSIGN(std::optional<AuditRow> last, txn.GetLastAudit());
    ASSERT_TRUE(last.has_value());
    ExpectSameAudit(*last, first);
    ASSERT_OK(txn.InsertAudit(second));
  });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
    ASSERT_OK_AND_ASSIGN(std::optional<AuditRow> last, txn->GetLastAudit());
    ASSERT_TRUE(last.has_value());
    ExpectSameAudit(*last, second);
  }
  // The highest seq, not the latest insert or the latest time.
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertAudit(MakeAudit(5, kT0)));
    ASSERT_OK(txn.InsertAudit(MakeAudit(4, kT2)));
  });
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::optional<AuditRow> last, txn->GetLastAudit());
  ASSERT_TRUE(last.has_value());
  ExpectSameAudit(*last, MakeAudit(5, kT0));
  EXPECT_EQ(ScanSeqs(*txn, 1, 100), (SeqList{1, 2, 4, 5}));
}

TEST_P(StoreConformanceTest, AuditDuplicateSeqIsAlreadyExists) {
  const AuditRow original = MakeAudit(1, kT0);
  InWriteTxn(store(), [&](Txn& txn) { ASSERT_OK(txn.InsertAudit(original)); });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    AuditRow other = MakeAudit(1, kT1, "config.write", "error");
    other.mac = MacFor(99);
    EXPECT_ERROR_CODE(txn->InsertAudit(other), ErrorCode::kAlreadyExists);
  }
  {
    // Also within one transaction.
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    ASSERT_OK(txn->InsertAudit(MakeAudit(2, kT1)));
    EXPECT_ERROR_CODE(txn->InsertAudit(MakeAudit(2, kT2)), ErrorCode::kAlreadyExists);
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<AuditRow> all, txn->ScanAudit(1, 100));
  ASSERT_EQ(all.size(), 1u);
  ExpectSameAudit(all[0], original);
}

TEST_P(StoreConformanceTest, AuditOptionalFieldsRoundTripAsNulloptOrEmpty) {
  // Unset optionals stay unset; set-but-empty ones stay set and empty; the required text
  // fields may be empty (a local command has no client address or request id).
  AuditRow unset = MakeAudit(1, kT0);
  unset.client_address = "";
  unset.request_id = "";
  AuditRow empty = MakeAudit(2, kT0);
  empty.org_id = "";
  empty.config_key = "";
  empty.actor_id = "";
  empty.actor_name = "";
  empty.execution_id = "";
  AuditRow full = MakeAudit(3, kT1, "config.reveal", "error");
  full.org_id = kOrgA;
  full.config_key = "db_password";
  full.actor_id = kTok1;
  full.actor_name = "d\xc3\xa9ploiement 'ci' \"prod\"";  // UTF-8 and quotes, verbatim
  full.execution_id = "exec-1";
  full.detail = "code=unavailable; attempts=3";
  full.client_address = "[2001:db8::1]:443";
  InWriteTxn(store(), [&](Txn& txn) {
    for (const AuditRow* row : {&unset, &empty, &full}) ASSERT_OK(txn.InsertAudit(*row));
  });
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<AuditRow> all, txn->ScanAudit(1, 100));
  ASSERT_EQ(all.size(), 3u);
  ExpectSameAudit(all[0], unset);
  EXPECT_EQ(all[0].org_id, std::nullopt);
  EXPECT_EQ(all[0].actor_name, std::nullopt);
  ExpectSameAudit(all[1], empty);
  EXPECT_EQ(all[1].org_id, std::optional<std::string>(""));
  EXPECT_EQ(all[1].execution_id, std::optional<std::string>(""));
  ExpectSameAudit(all[2], full);
  // ListAudit and GetLastAudit read the same columns.
  ASSERT_OK_AND_ASSIGN(std::vector<AuditRow> listed, txn->ListAudit(AuditFilter{}));
  ASSERT_EQ(listed.size(), 3u);
  ExpectSameAudit(listed[0], full);
  ExpectSameAudit(listed[1], empty);
  ExpectSameAudit(listed[2], unset);
  ASSERT_OK_AND_ASSIGN(std::optional<AuditRow> last, txn->GetLastAudit());
  ASSERT_TRUE(last.has_value());
  ExpectSameAudit(*last, full);
}

TEST_P(StoreConformanceTest, AuditRecordWithUnknownOutcomeOrNonPositiveSeqIsRejected) {
  for (const AuditRow& row :
       {MakeAudit(1, kT0, "config.read", "ok"), MakeAudit(1, kT0, "config.read", ""),
        MakeAudit(1, kT0, "config.read", "Success"), MakeAudit(0, kT0), MakeAudit(-3, kT0)}) {
    std::string trace = "seq ";
    trace += std::to_string(row.seq);
    trace += " outcome '" + row.outcome + "'";
    SCOPED_TRACE(trace);
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    EXPECT_ERROR_CODE(txn->InsertAudit(row), ErrorCode::kInvalidArgument);
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  EXPECT_EQ(ScanSeqs(*txn, std::numeric_limits<std::int64_t>::min(), 100), SeqList{});
}

TEST_P(StoreConformanceTest, ListAuditIsNewestFirstAndEachFilterAloneMatches) {
  InsertFilterFixture(store());
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  auto list = [&](const AuditFilter& filter) { return ListSeqs(*txn, filter); };
  AuditFilter f;
  EXPECT_EQ(list(f), (SeqList{8, 7, 6, 5, 4, 3, 2, 1}));

  // The records come back whole, in seq order (not time order).
  ASSERT_OK_AND_ASSIGN(std::vector<AuditRow> all, txn->ListAudit(AuditFilter{}));
  const std::vector<AuditRow> fixture = FilterFixture();
  ASSERT_EQ(all.size(), fixture.size());
  for (std::size_t i = 0; i < all.size(); ++i) {
    SCOPED_TRACE(i);
    ExpectSameAudit(all[i], fixture[fixture.size() - 1 - i]);
  }

  f = {};
  f.org_id = kOrgA;
  EXPECT_EQ(list(f), (SeqList{7, 5, 2, 1}));
  f.org_id = kOrgB;
  EXPECT_EQ(list(f), (SeqList{6, 3}));
  f.org_id = kMissingOrg;
  EXPECT_EQ(list(f), SeqList{});

  f = {};
  f.config_key = "db_password";
  EXPECT_EQ(list(f), (SeqList{5, 3, 2}));
  f.config_key = "db_url";
  EXPECT_EQ(list(f), (SeqList{7, 6, 1}));
  f.config_key = "DB_URL";  // exact match
  EXPECT_EQ(list(f), SeqList{});

  f = {};
  f.action = "config.reveal";
  EXPECT_EQ(list(f), (SeqList{7, 3, 2}));
  f.action = "config";  // no prefix matching
  EXPECT_EQ(list(f), SeqList{});

  // The actor matches by id or by name.
  f = {};
  f.actor = "alice";
  EXPECT_EQ(list(f), (SeqList{6, 5, 2}));
  f.actor = kTok1;
  EXPECT_EQ(list(f), (SeqList{7, 3, 1}));
  f.actor = kTok3;
  EXPECT_EQ(list(f), (SeqList{6}));
  f.actor = "root";  // a name without an id
  EXPECT_EQ(list(f), (SeqList{8}));
  f.actor = "nobody";
  EXPECT_EQ(list(f), SeqList{});

  f = {};
  f.outcome = "denied";
  EXPECT_EQ(list(f), (SeqList{4, 3}));
  f.outcome = "error";
  EXPECT_EQ(list(f), (SeqList{5}));
  f.outcome = "success";
  EXPECT_EQ(list(f), (SeqList{8, 7, 6, 2, 1}));

  // since is inclusive, until exclusive; both compare the record's time, not its seq.
  f = {};
  f.since = kT0 + 500;
  EXPECT_EQ(list(f), (SeqList{8, 7, 5}));
  f.since = kT0 + 701;
  EXPECT_EQ(list(f), SeqList{});
  f = {};
  f.until = kT0 + 250;
  EXPECT_EQ(list(f), (SeqList{2, 1}));
  f.until = kT0 + 100;
  EXPECT_EQ(list(f), SeqList{});
  f = {};
  f.since = kT0 + 250;
  f.until = kT0 + 500;
  EXPECT_EQ(list(f), (SeqList{6, 4, 3}));
  f.since = kT0 + 500;  // empty interval
  EXPECT_EQ(list(f), SeqList{});

  f = {};
  f.before_seq = 4;
  EXPECT_EQ(list(f), (SeqList{3, 2, 1}));
  f.before_seq = 1;
  EXPECT_EQ(list(f), SeqList{});
  f.before_seq = 100;
  EXPECT_EQ(list(f), (SeqList{8, 7, 6, 5, 4, 3, 2, 1}));

  f = {};
  f.limit = 3;
  EXPECT_EQ(list(f), (SeqList{8, 7, 6}));
  f.limit = 1;
  EXPECT_EQ(list(f), (SeqList{8}));
  f.limit = 0;
  EXPECT_EQ(list(f), SeqList{});
  f.limit = std::numeric_limits<std::size_t>::max();
  EXPECT_EQ(list(f), (SeqList{8, 7, 6, 5, 4, 3, 2, 1}));
  // The default limit is 100: more records than that come back as the newest 100.
  InWriteTxn(store(), [](Txn& w) {
    for (std::int64_t seq = 9; seq <= 120; ++seq) ASSERT_OK(w.InsertAudit(MakeAudit(seq, kT2)));
  });
  ASSERT_OK_AND_ASSIGN(auto fresh, store().Begin(TxnMode::kRead));
  const SeqList newest = ListSeqs(*fresh, AuditFilter{});
  ASSERT_EQ(newest.size(), 100u);
  EXPECT_EQ(newest.front(), 120);
  EXPECT_EQ(newest.back(), 21);
}

TEST_P(StoreConformanceTest, ListAuditAndsEveryFilterThatIsSet) {
  InsertFilterFixture(store());
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  auto list = [&](const AuditFilter& filter) { return ListSeqs(*txn, filter); };

  AuditFilter f;
  f.org_id = kOrgA;
  f.action = "config.reveal";
  EXPECT_EQ(list(f), (SeqList{7, 2}));

  f = {};
  f.org_id = kOrgA;
  f.actor = "alice";
  f.outcome = "success";
  EXPECT_EQ(list(f), (SeqList{2}));

  f = {};
  f.org_id = kOrgB;
  f.config_key = "db_password";
  f.since = kT0 + 300;
  f.until = kT0 + 301;
  EXPECT_EQ(list(f), (SeqList{3}));

  f = {};
  f.org_id = kOrgA;
  f.config_key = "db_url";
  f.actor = "ci";
  EXPECT_EQ(list(f), (SeqList{7, 1}));
  f.before_seq = 7;
  EXPECT_EQ(list(f), (SeqList{1}));

  // Actor and outcome together: alice's records that were not successes.
  f = {};
  f.actor = "alice";
  f.outcome = "error";
  EXPECT_EQ(list(f), (SeqList{5}));
  f.actor = "ci";
  EXPECT_EQ(list(f), SeqList{});  // ci has no error

  // Every field set and matching record 5; then each field alone made to miss.
  AuditFilter all;
  all.org_id = kOrgA;
  all.config_key = "db_password";
  all.action = "config.write";
  all.actor = kTok2;
  all.outcome = "error";
  all.since = kT0 + 500;
  all.until = kT0 + 501;
  all.before_seq = 6;
  all.limit = 10;
  EXPECT_EQ(list(all), (SeqList{5}));
  const std::vector<std::pair<std::string, std::function<void(AuditFilter&)>>> misses = {
      {"org_id", [](AuditFilter& m) { m.org_id = kOrgB; }},
      {"config_key", [](AuditFilter& m) { m.config_key = "db_url"; }},
      {"action", [](AuditFilter& m) { m.action = "config.read"; }},
      {"actor", [](AuditFilter& m) { m.actor = kTok1; }},
      {"outcome", [](AuditFilter& m) { m.outcome = "success"; }},
      {"since", [](AuditFilter& m) { m.since = kT0 + 501; }},
      {"until", [](AuditFilter& m) { m.until = kT0 + 500; }},
      {"before_seq", [](AuditFilter& m) { m.before_seq = 5; }},
      {"limit", [](AuditFilter& m) { m.limit = 0; }},
  };
  for (const auto& [field, miss] : misses) {
    SCOPED_TRACE(field);
    AuditFilter m = all;
    miss(m);
    EXPECT_EQ(list(m), SeqList{});
  }
}

TEST_P(StoreConformanceTest, ListAuditPagesWithBeforeSeq) {
  InsertFilterFixture(store());
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  // Walk everything three at a time, each page starting below the last seq seen.
  std::vector<SeqList> pages;
  AuditFilter f;
  f.limit = 3;
  while (pages.size() < 10) {
    SeqList page = ListSeqs(*txn, f);
    pages.push_back(page);
    if (page.empty()) break;
    f.before_seq = page.back();
  }
  EXPECT_EQ(pages, (std::vector<SeqList>{{8, 7, 6}, {5, 4, 3}, {2, 1}, {}}));

  // The same with a filter: one org's records, two per page.
  pages.clear();
  f = {};
  f.org_id = kOrgA;
  f.limit = 2;
  while (pages.size() < 10) {
    SeqList page = ListSeqs(*txn, f);
    pages.push_back(page);
    if (page.empty()) break;
    f.before_seq = page.back();
  }
  EXPECT_EQ(pages, (std::vector<SeqList>{{7, 5}, {2, 1}, {}}));
}

TEST_P(StoreConformanceTest, ScanAuditIsAscendingFromSeqWithLimit) {
  InsertFilterFixture(store());
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  EXPECT_EQ(ScanSeqs(*txn, 1, 100), (SeqList{1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(ScanSeqs(*txn, 0, 100), (SeqList{1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(ScanSeqs(*txn, 3, 2), (SeqList{3, 4}));
  EXPECT_EQ(ScanSeqs(*txn, 8, 5), (SeqList{8}));
  EXPECT_EQ(ScanSeqs(*txn, 9, 5), SeqList{});
  EXPECT_EQ(ScanSeqs(*txn, 1, 0), SeqList{});
  EXPECT_EQ(ScanSeqs(*txn, 1, std::numeric_limits<std::size_t>::max()),
            (SeqList{1, 2, 3, 4, 5, 6, 7, 8}));
  // Walking the chain in batches visits every record once, in order, whole.
  std::vector<AuditRow> walked;
  std::int64_t next = 1;
  for (int batches = 0; batches < 10; ++batches) {
    ASSERT_OK_AND_ASSIGN(std::vector<AuditRow> batch, txn->ScanAudit(next, 3));
    if (batch.empty()) break;
    for (AuditRow& row : batch) walked.push_back(std::move(row));
    next = walked.back().seq + 1;
  }
  const std::vector<AuditRow> fixture = FilterFixture();
  ASSERT_EQ(walked.size(), fixture.size());
  for (std::size_t i = 0; i < walked.size(); ++i) {
    SCOPED_TRACE(i);
    ExpectSameAudit(walked[i], fixture[i]);
  }
}

TEST_P(StoreConformanceTest, FirstAuditSeqSinceIsTheSmallestSeqAtOrAfterTheTime) {
  InsertFilterFixture(store());
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  auto first = [&](UnixMicros time) -> std::optional<std::int64_t> {
    Result<std::optional<std::int64_t>> seq = txn->FirstAuditSeqSince(time);
    if (!seq) {
      ADD_FAILURE() << seq.error().ToString();
      return -1;
    }
    return *seq;
  };
  using Seq = std::optional<std::int64_t>;
  EXPECT_EQ(first(0), Seq(1));
  EXPECT_EQ(first(kT0 + 100), Seq(1));  // inclusive
  EXPECT_EQ(first(kT0 + 101), Seq(2));
  EXPECT_EQ(first(kT0 + 200), Seq(2));
  // Record 6 has time 250 but seq 3 (time 300) is the smallest seq at or after 250.
  EXPECT_EQ(first(kT0 + 250), Seq(3));
  EXPECT_EQ(first(kT0 + 301), Seq(4));
  EXPECT_EQ(first(kT0 + 700), Seq(8));
  EXPECT_EQ(first(kT0 + 701), std::nullopt);
}

TEST_P(StoreConformanceTest, PruneAuditDeletesBelowTheCheckpointAndReplacesIt) {
  InsertFilterFixture(store());
  const AuditCheckpoint first{4, MacFor(3), kT1, "ak1", std::string(64, 'c')};
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK_AND_ASSIGN(const std::int64_t deleted, txn.PruneAudit(first));
    EXPECT_EQ(deleted, 3);
    // Visible inside the transaction already.
    ASSERT_OK_AND_ASSIGN(std::optional<AuditCheckpoint> seen, txn.GetAuditCheckpoint());
    ASSERT_TRUE(seen.has_value());
    ExpectSameCheckpoint(*seen, first);
  });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
    ASSERT_OK_AND_ASSIGN(std::optional<AuditCheckpoint> checkpoint, txn->GetAuditCheckpoint());
    ASSERT_TRUE(checkpoint.has_value());
    ExpectSameCheckpoint(*checkpoint, first);
    // The rows below first_seq are gone, the later ones kept whole.
    EXPECT_EQ(ScanSeqs(*txn, 0, 100), (SeqList{4, 5, 6, 7, 8}));
    EXPECT_EQ(ListSeqs(*txn, AuditFilter{}), (SeqList{8, 7, 6, 5, 4}));
    AuditFilter org_a;
    org_a.org_id = kOrgA;
    EXPECT_EQ(ListSeqs(*txn, org_a), (SeqList{7, 5}));
    ASSERT_OK_AND_ASSIGN(std::vector<AuditRow> kept, txn->ScanAudit(4, 1));
    ASSERT_EQ(kept.size(), 1u);
    ExpectSameAudit(kept[0], FilterFixture()[3]);
    EXPECT_EQ(kept[0].prev_mac, first.prev_mac);
    ASSERT_OK_AND_ASSIGN(std::optional<AuditRow> last, txn->GetLastAudit());
    ASSERT_TRUE(last.has_value());
    EXPECT_EQ(last->seq, 8);
    ASSERT_OK_AND_ASSIGN(std::optional<std::int64_t> since, txn->FirstAuditSeqSince(0));
    EXPECT_EQ(since, std::optional<std::int64_t>(4));
  }

  // A second prune replaces the checkpoint (there is only ever one) and counts only what
  // it deleted itself.
  const AuditCheckpoint second{6, MacFor(5), kT2, "ak2", std::string(64, 'd')};
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK_AND_ASSIGN(const std::int64_t deleted, txn.PruneAudit(second));
    EXPECT_EQ(deleted, 2);
  });
  // Pruning again at the same place deletes nothing but still replaces the checkpoint.
  const AuditCheckpoint again{6, MacFor(5), kT2 + 1, "ak3", std::string(64, 'e')};
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK_AND_ASSIGN(const std::int64_t deleted, txn.PruneAudit(again));
    EXPECT_EQ(deleted, 0);
  });
  // The log goes on after a prune.
  InWriteTxn(store(), [](Txn& txn) { ASSERT_OK(txn.InsertAudit(MakeAudit(9, kT2))); });

  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::optional<AuditCheckpoint> checkpoint, txn->GetAuditCheckpoint());
  ASSERT_TRUE(checkpoint.has_value());
  ExpectSameCheckpoint(*checkpoint, again);
  EXPECT_EQ(ScanSeqs(*txn, 0, 100), (SeqList{6, 7, 8, 9}));
}

TEST_P(StoreConformanceTest, PruneAuditOfAnEmptyPrefixStillStoresTheCheckpoint) {
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertAudit(MakeAudit(1, kT0)));
    ASSERT_OK(txn.InsertAudit(MakeAudit(2, kT1)));
  });
  const AuditCheckpoint checkpoint{1, std::string(64, '0'), kT2, "ak1", MacFor(77)};
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK_AND_ASSIGN(const std::int64_t deleted, txn.PruneAudit(checkpoint));
    EXPECT_EQ(deleted, 0);
  });
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::optional<AuditCheckpoint> stored, txn->GetAuditCheckpoint());
  ASSERT_TRUE(stored.has_value());
  ExpectSameCheckpoint(*stored, checkpoint);
  EXPECT_EQ(ScanSeqs(*txn, 0, 100), (SeqList{1, 2}));
}

TEST_P(StoreConformanceTest, AuditRecordsOutliveTheirOrg) {
  CreateTwoOrgs(store());
  AuditRow of_a = MakeAudit(1, kT0, "config.write");
  of_a.org_id = kOrgA;
  of_a.config_key = "db_url";
  AuditRow of_b = MakeAudit(2, kT0, "config.write");
  of_b.org_id = kOrgB;
  AuditRow deletion = MakeAudit(3, kT1, "org.delete");
  deletion.org_id = kOrgA;
  // A record may name an org the store does not know (or no longer knows).
  AuditRow unknown = MakeAudit(4, kT1, "org.read", "denied");
  unknown.org_id = kMissingOrg;
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK(txn.InsertAudit(of_a));
    ASSERT_OK(txn.InsertAudit(of_b));
    ASSERT_OK(txn.DeleteOrg(kOrgA));
    ASSERT_OK(txn.InsertAudit(deletion));
    ASSERT_OK(txn.InsertAudit(unknown));
  });
  InWriteTxn(store(), [](Txn& txn) { ASSERT_OK(txn.DeleteOrg(kOrgB)); });

  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<OrgRow> orgs, txn->ListOrgs());
  EXPECT_TRUE(orgs.empty());
  ASSERT_OK_AND_ASSIGN(std::vector<AuditRow> all, txn->ScanAudit(1, 100));
  ASSERT_EQ(all.size(), 4u);
  ExpectSameAudit(all[0], of_a);
  ExpectSameAudit(all[1], of_b);
  ExpectSameAudit(all[2], deletion);
  ExpectSameAudit(all[3], unknown);
  AuditFilter f;
  f.org_id = kOrgA;
  EXPECT_EQ(ListSeqs(*txn, f), (SeqList{3, 1}));
  f.org_id = kMissingOrg;
  EXPECT_EQ(ListSeqs(*txn, f), (SeqList{4}));
}

TEST_P(StoreConformanceTest, AuditWritesOnReadTxnAreRejected) {
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertAudit(MakeAudit(1, kT0)));
    ASSERT_OK(txn.InsertAudit(MakeAudit(2, kT1)));
  });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
    EXPECT_ERROR_CODE(txn->InsertAudit(MakeAudit(3, kT2)), ErrorCode::kFailedPrecondition);
    EXPECT_ERROR_CODE(txn->PruneAudit(AuditCheckpoint{2, MacFor(1), kT2, "ak1", MacFor(50)}),
                      ErrorCode::kFailedPrecondition);
    // Reading still works in the same transaction.
    ASSERT_OK_AND_ASSIGN(std::optional<AuditRow> last, txn->GetLastAudit());
    ASSERT_TRUE(last.has_value());
    EXPECT_EQ(last->seq, 2);
    ASSERT_OK(txn->Commit());
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  EXPECT_EQ(ScanSeqs(*txn, 0, 100), (SeqList{1, 2}));
  ASSERT_OK_AND_ASSIGN(std::optional<AuditCheckpoint> checkpoint, txn->GetAuditCheckpoint());
  EXPECT_FALSE(checkpoint.has_value());
}

TEST_P(StoreConformanceTest, UncommittedAuditWritesLeaveNoTrace) {
  InWriteTxn(store(), [](Txn& txn) {
    for (std::int64_t seq = 1; seq <= 3; ++seq) ASSERT_OK(txn.InsertAudit(MakeAudit(seq, kT0)));
  });
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kWrite));
    ASSERT_OK(txn->InsertAudit(MakeAudit(4, kT1)));
    ASSERT_OK_AND_ASSIGN(const std::int64_t deleted,
                         txn->PruneAudit(AuditCheckpoint{3, MacFor(2), kT1, "ak1", MacFor(60)}));
    EXPECT_EQ(deleted, 2);
    ASSERT_OK_AND_ASSIGN(std::optional<AuditRow> last, txn->GetLastAudit());
    ASSERT_TRUE(last.has_value());
    EXPECT_EQ(last->seq, 4);
    // Not committed: a reader sees none of it.
    ASSERT_OK_AND_ASSIGN(auto reader, store().Begin(TxnMode::kRead));
    EXPECT_EQ(ScanSeqs(*reader, 0, 100), (SeqList{1, 2, 3}));
    // Destroyed without Commit.
  }
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
    EXPECT_EQ(ScanSeqs(*txn, 0, 100), (SeqList{1, 2, 3}));
    ASSERT_OK_AND_ASSIGN(std::optional<AuditRow> last, txn->GetLastAudit());
    ASSERT_TRUE(last.has_value());
    EXPECT_EQ(last->seq, 3);
    ASSERT_OK_AND_ASSIGN(std::optional<AuditCheckpoint> checkpoint, txn->GetAuditCheckpoint());
    EXPECT_FALSE(checkpoint.has_value());
  }
  // Seq 4 is free again.
  InWriteTxn(store(), [](Txn& txn) { ASSERT_OK(txn.InsertAudit(MakeAudit(4, kT2))); });
}

// ---- Concurrency

// Records failures seen on worker threads; reported on the test thread.
class ThreadErrors {
 public:
  void Add(const std::string& what) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (errors_.size() < 10) errors_.push_back(what);
    ++count_;
  }
  int Count() {
    std::lock_guard<std::mutex> lock(mutex_);
    return count_;
  }
  std::string Summary() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string out;
    for (const std::string& e : errors_) out += e + "\n";
    return out;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> errors_;
  int count_ = 0;
};

TEST_P(StoreConformanceTest, ConcurrentReadModifyWriteLosesNoUpdate) {
  constexpr int kThreads = 4;
  constexpr int kUpdatesPerThread = 25;
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Global(), "counter", "0", "int")));
  });

  ThreadErrors errors;
  std::atomic<int> conflicts{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      int done = 0;
      int attempts = 0;
      while (done < kUpdatesPerThread && errors.Count() == 0) {
        if (++attempts > 100'000) {
          errors.Add("thread " + std::to_string(t) + " made no progress");
          return;
        }
        // Read in one transaction, write in another: the version is all that ties them.
        ConfigRow current;
        {
          auto reader = store().Begin(TxnMode::kRead);
          if (!reader) return errors.Add("begin read: " + reader.error().ToString());
          auto got = (*reader)->GetConfig(Scope::Global(), "counter");
          if (!got) return errors.Add("get: " + got.error().ToString());
          if (!got->has_value()) return errors.Add("counter row vanished");
          current = **got;
        }
        auto writer = store().Begin(TxnMode::kWrite);
        if (!writer) return errors.Add("begin write: " + writer.error().ToString());
        ConfigRow next = current;
        next.value = std::to_string(std::stoll(current.value) + 1);
        next.updated_by = "thread:" + std::to_string(t);
        auto updated = (*writer)->UpdateConfig(next, current.version);
        if (!updated) {
          if (updated.error().code() == ErrorCode::kConflict) {
            conflicts.fetch_add(1);
            continue;  // someone else won; read again
          }
          return errors.Add("update: " + updated.error().ToString());
        }
        if (updated->version != current.version + 1) {
          return errors.Add("update returned version " + std::to_string(updated->version) +
                            " after " + std::to_string(current.version));
        }
        auto committed = (*writer)->Commit();
        if (!committed) return errors.Add("commit: " + committed.error().ToString());
        ++done;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_EQ(errors.Count(), 0) << errors.Summary();

  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> counter,
                       txn->GetConfig(Scope::Global(), "counter"));
  ASSERT_TRUE(counter.has_value());
  EXPECT_EQ(counter->value, std::to_string(kThreads * kUpdatesPerThread))
      << conflicts.load() << " conflicts were retried";
  EXPECT_EQ(counter->version, 1 + kThreads * kUpdatesPerThread);
}

TEST_P(StoreConformanceTest, ConcurrentReadersSeeConsistentSnapshotsWithoutErrors) {
  constexpr int kReaders = 6;  // more than a typical reader pool
  constexpr int kWrites = 60;
  constexpr int kMinReadsPerReader = 20;
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Global(), "a", "0", "int")));
    ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Global(), "b", "0", "int")));
  });

  ThreadErrors errors;
  std::atomic<bool> writer_done{false};
  std::atomic<std::int64_t> total_reads{0};
  std::latch start(kReaders + 1);

  std::thread writer([&] {
    start.arrive_and_wait();
    for (int i = 1; i <= kWrites && errors.Count() == 0; ++i) {
      auto txn = store().Begin(TxnMode::kWrite);
      if (!txn) {
        errors.Add("begin write: " + txn.error().ToString());
        break;
      }
      // Both rows change together, in one transaction.
      bool ok = true;
      for (const char* key : {"a", "b"}) {
        ConfigRow row = MakeConfig(Scope::Global(), key, std::to_string(i), "int");
        auto updated = (*txn)->UpdateConfig(row, i);
        if (!updated) {
          errors.Add(std::string("update ") + key + ": " + updated.error().ToString());
          ok = false;
          break;
        }
      }
      if (!ok) break;
      auto committed = (*txn)->Commit();
      if (!committed) {
        errors.Add("commit: " + committed.error().ToString());
        break;
      }
    }
    writer_done.store(true);
  });

  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&] {
      start.arrive_and_wait();
      std::int64_t last_seen = 0;
      int reads = 0;
      while ((!writer_done.load() || reads < kMinReadsPerReader) && errors.Count() == 0) {
        auto txn = store().Begin(TxnMode::kRead);
        if (!txn) return errors.Add("begin read: " + txn.error().ToString());
        auto a = (*txn)->GetConfig(Scope::Global(), "a");
        if (!a) return errors.Add("get a: " + a.error().ToString());
        auto list = (*txn)->ListConfigs(Scope::Global());
        if (!list) return errors.Add("list: " + list.error().ToString());
        auto b = (*txn)->GetConfig(Scope::Global(), "b");
        if (!b) return errors.Add("get b: " + b.error().ToString());
        if (!a->has_value() || !b->has_value() || list->size() != 2) {
          return errors.Add("rows missing from a snapshot");
        }
        const ConfigRow& ra = **a;
        const ConfigRow& rb = **b;
        if (ra.value != rb.value || ra.version != rb.version || (*list)[0].value != ra.value ||
            (*list)[1].value != ra.value) {
          return errors.Add("torn snapshot: a=" + ra.value + " b=" + rb.value +
                            " list=" + (*list)[0].value + "," + (*list)[1].value);
        }
        const std::int64_t seen = std::stoll(ra.value);
        if (seen < last_seen) {
          return errors.Add("went back in time: " + std::to_string(seen) + " after " +
                            std::to_string(last_seen));
        }
        last_seen = seen;
        auto committed = (*txn)->Commit();
        if (!committed) return errors.Add("commit read: " + committed.error().ToString());
        ++reads;
      }
      total_reads.fetch_add(reads);
    });
  }
  writer.join();
  for (std::thread& reader : readers) reader.join();
  ASSERT_EQ(errors.Count(), 0) << errors.Summary();
  EXPECT_GE(total_reads.load(), kReaders * kMinReadsPerReader);

  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> a, txn->GetConfig(Scope::Global(), "a"));
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->value, std::to_string(kWrites));
  EXPECT_EQ(a->version, 1 + kWrites);
}

// ---- Copying a database (bifrost migrate)

TEST_P(StoreConformanceTest, CountRowsNamesEveryTableInOrder) {
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
    ASSERT_OK_AND_ASSIGN(std::vector<TableCount> counts, txn->CountRows());
    std::vector<std::string> tables;
    for (const TableCount& count : counts) {
      tables.push_back(count.table);
      EXPECT_EQ(count.rows, 0) << count.table;
    }
    EXPECT_EQ(tables,
              (std::vector<std::string>{"organizations", "configs", "key_checks", "tokens",
                                        "data_keys", "key_jobs", "executions", "users", "sessions",
                                        "nodes", "audit_log", "audit_checkpoint"}));
  }
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Org(kOrgA), "a", "1", "int")));
    ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Global(), "a", "1", "int")));
    ASSERT_OK(txn.InsertToken(MakeToken(kTok1, kOrgA, "admin")));
    ASSERT_OK(txn.InsertUser(MakeUser(kUser1, "a@example.com", kOrgA, "admin")));
    ASSERT_OK(txn.InsertSession(MakeSession(kSess1, kUser1)));
    ASSERT_OK(txn.UpsertNode({.id = "n1", .name = "n", .started_at = kT0, .heartbeat_at = kT0}));
  });
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<TableCount> counts, txn->CountRows());
  std::vector<std::int64_t> rows;
  for (const TableCount& count : counts) rows.push_back(count.rows);
  EXPECT_EQ(rows, (std::vector<std::int64_t>{2, 2, 0, 1, 0, 0, 0, 1, 1, 1, 0, 0}));
}

TEST_P(StoreConformanceTest, RestoreConfigKeepsVersionAndTimes) {
  CreateTwoOrgs(store());
  ConfigRow row = MakeSecret(Scope::Org(kOrgA), "api_key", "gAAAAcopied", "k1");
  row.created_at = kT0;
  row.updated_at = kT1;
  row.updated_by = "token:ci/1";
  row.version = 7;
  ConfigRow plain = MakeConfig(Scope::Global(), "region", "eu", "string");
  plain.version = 3;
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK(txn.RestoreConfig(row));
    ASSERT_OK(txn.RestoreConfig(plain));
    EXPECT_ERROR_CODE(txn.RestoreConfig(row), ErrorCode::kAlreadyExists);
    ConfigRow no_version = MakeConfig(Scope::Org(kOrgB), "x", "1", "int");
    no_version.version = 0;
    EXPECT_ERROR_CODE(txn.RestoreConfig(no_version), ErrorCode::kInvalidArgument);
    ConfigRow orphan = MakeConfig(Scope::Org(kMissingOrg), "x", "1", "int");
    orphan.version = 1;
    EXPECT_ERROR_CODE(txn.RestoreConfig(orphan), ErrorCode::kFailedPrecondition);
  });
  InWriteTxn(store(), [&](Txn& txn) {
    ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> stored,
                         txn.GetConfig(Scope::Org(kOrgA), "api_key"));
    ASSERT_TRUE(stored.has_value());
    EXPECT_EQ(stored->version, 7);
    EXPECT_EQ(stored->value, "gAAAAcopied");
    EXPECT_EQ(stored->key_id, "k1");
    EXPECT_EQ(stored->created_at, kT0);
    EXPECT_EQ(stored->updated_at, kT1);
    EXPECT_EQ(stored->updated_by, "token:ci/1");
    // Optimistic concurrency carries on from the copied version.
    ConfigRow next = *stored;
    next.value = "gAAAAnext";
    EXPECT_ERROR_CODE(txn.UpdateConfig(next, 1), ErrorCode::kConflict);
    ASSERT_OK_AND_ASSIGN(ConfigRow updated, txn.UpdateConfig(next, 7));
    EXPECT_EQ(updated.version, 8);
    ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> region, txn.GetConfig(Scope::Global(), "region"));
    ASSERT_TRUE(region.has_value());
    EXPECT_EQ(region->version, 3);
  });
}

TEST_P(StoreConformanceTest, RestoreKeyJobKeepsIdsAndNewJobsComeAfter) {
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.RestoreKeyJob({.id = 5,
                                 .kind = "master",
                                 .target = "",
                                 .actor = "op",
                                 .started_at = kT0,
                                 .finished_at = kT1}));
    ASSERT_OK(txn.RestoreKeyJob({.id = 9,
                                 .kind = "data",
                                 .target = "*",
                                 .actor = "op",
                                 .started_at = kT1,
                                 .finished_at = std::nullopt}));
    EXPECT_ERROR_CODE(txn.RestoreKeyJob({.id = 9,
                                         .kind = "data",
                                         .target = "*",
                                         .actor = "op",
                                         .started_at = kT1,
                                         .finished_at = std::nullopt}),
                      ErrorCode::kAlreadyExists);
    EXPECT_ERROR_CODE(txn.RestoreKeyJob({.id = 0,
                                         .kind = "data",
                                         .target = "*",
                                         .actor = "op",
                                         .started_at = kT1,
                                         .finished_at = std::nullopt}),
                      ErrorCode::kInvalidArgument);
    ASSERT_OK_AND_ASSIGN(const std::int64_t next, txn.InsertKeyJob({.id = 0,
                                                                    .kind = "data",
                                                                    .target = "global",
                                                                    .actor = "op",
                                                                    .started_at = kT2,
                                                                    .finished_at = std::nullopt}));
    EXPECT_GT(next, 9);
  });
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<KeyJobRow> jobs, txn->ListKeyJobs());
  ASSERT_EQ(jobs.size(), 3u);
  EXPECT_EQ(jobs[0].id, 5);
  EXPECT_EQ(jobs[0].kind, "master");
  EXPECT_EQ(jobs[0].finished_at, kT1);
  EXPECT_EQ(jobs[1].id, 9);
  EXPECT_EQ(jobs[1].target, "*");
  EXPECT_EQ(jobs[1].finished_at, std::nullopt);
  EXPECT_EQ(jobs[2].target, "global");
  ASSERT_OK_AND_ASSIGN(std::vector<KeyJobRow> unfinished, txn->ListUnfinishedKeyJobs());
  EXPECT_EQ(unfinished.size(), 2u);
}

TEST_P(StoreConformanceTest, ListSessionsListsEverySessionById) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertUser(MakeUser(kUser1, "a@example.com", kOrgA, "admin")));
    ASSERT_OK(txn.InsertUser(MakeUser(kUser2, "b@example.com", kOrgB, "reader")));
    ASSERT_OK(txn.InsertSession(MakeSession(kSess3, kUser2, kT1)));
    ASSERT_OK(txn.InsertSession(MakeSession(kSess1, kUser1, kT0)));
    ASSERT_OK(txn.InsertSession(MakeSession(kSess2, kUser1, kT2)));
  });
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<SessionRow> sessions, txn->ListSessions());
  ASSERT_EQ(sessions.size(), 3u);
  ExpectSameSession(sessions[0], MakeSession(kSess1, kUser1, kT0));
  ExpectSameSession(sessions[1], MakeSession(kSess2, kUser1, kT2));
  ExpectSameSession(sessions[2], MakeSession(kSess3, kUser2, kT1));
}

// Callers carry on after an expected refusal (a duplicate, a missing row, a version
// conflict) in the same write transaction, and what they wrote before and after commits.
TEST_P(StoreConformanceTest, WriteTxnStaysUsableAfterExpectedRefusals) {
  CreateTwoOrgs(store());
  InWriteTxn(store(), [](Txn& txn) {
    ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Org(kOrgA), "before", "1", "int")));
    EXPECT_ERROR_CODE(txn.InsertOrg(MakeOrg(kOrgA, "acme-again")), ErrorCode::kAlreadyExists);
    EXPECT_ERROR_CODE(txn.InsertConfig(MakeConfig(Scope::Org(kOrgA), "before", "2", "int")),
                      ErrorCode::kAlreadyExists);
    EXPECT_ERROR_CODE(txn.InsertConfig(MakeConfig(Scope::Org(kMissingOrg), "x", "1", "int")),
                      ErrorCode::kFailedPrecondition);
    ConfigRow stale = MakeConfig(Scope::Org(kOrgA), "before", "3", "int");
    EXPECT_ERROR_CODE(txn.UpdateConfig(stale, 9), ErrorCode::kConflict);
    EXPECT_ERROR_CODE(txn.UpdateConfig(MakeConfig(Scope::Org(kOrgB), "nope", "3", "int"), 1),
                      ErrorCode::kNotFound);
    EXPECT_ERROR_CODE(txn.DeleteConfig(Scope::Org(kOrgB), "nope", std::nullopt),
                      ErrorCode::kNotFound);
    ASSERT_OK(txn.InsertToken(MakeToken(kTok1, kOrgA, "admin")));
    EXPECT_ERROR_CODE(txn.InsertToken(MakeToken(kTok1, kOrgA, "admin")), ErrorCode::kAlreadyExists);
    EXPECT_ERROR_CODE(txn.InsertToken(MakeToken(kTok2, kMissingOrg, "admin")),
                      ErrorCode::kFailedPrecondition);
    EXPECT_ERROR_CODE(txn.RevokeToken(kMissingTok, kT1), ErrorCode::kNotFound);
    ASSERT_OK(txn.InsertUser(MakeUser(kUser1, "a@example.com", kOrgA, "admin")));
    EXPECT_ERROR_CODE(txn.InsertUser(MakeUser(kUser2, "a@example.com", kOrgA, "admin")),
                      ErrorCode::kAlreadyExists);
    EXPECT_ERROR_CODE(txn.InsertSession(MakeSession(kSess1, kMissingUser)),
                      ErrorCode::kFailedPrecondition);
    EXPECT_ERROR_CODE(txn.InsertExecution(MakeExecution(kExec1, kMissingOrg)),
                      ErrorCode::kFailedPrecondition);
    EXPECT_ERROR_CODE(txn.DeleteOrg(kMissingOrg), ErrorCode::kNotFound);
    ASSERT_OK(txn.InsertConfig(MakeConfig(Scope::Org(kOrgA), "after", "1", "int")));
  });
  ASSERT_OK_AND_ASSIGN(auto txn, store().Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> rows, txn->ListConfigs(Scope::Org(kOrgA)));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].key, "after");
  EXPECT_EQ(rows[1].key, "before");
  EXPECT_EQ(rows[1].value, "1");
  ASSERT_OK_AND_ASSIGN(std::optional<TokenRow> token, txn->GetTokenById(kTok1));
  EXPECT_TRUE(token.has_value());
  ASSERT_OK_AND_ASSIGN(std::optional<UserRow> user, txn->GetUserById(kUser1));
  EXPECT_TRUE(user.has_value());
}

}  // namespace
}  // namespace bifrost::store
