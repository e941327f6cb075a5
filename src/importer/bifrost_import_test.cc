#include "importer/bifrost_import.h"

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/base64.h"
#include "crypto/key_derivation.h"
#include "crypto/mac.h"
#include "store/sqlite/sqlite_store.h"
#include "tests/support/subprocess.h"

namespace bifrost::importer {
namespace {

using store::Scope;

constexpr std::string_view kTargetSecret = "import-test-target-secret-key-0123456789";
constexpr std::string_view kSourceSecret = "the-python-bifrost-secret-key-abcdef";
const std::string kOrgA = "0b6f3a8e-1d2c-4e5f-8a9b-0c1d2e3f4a5b";
const std::string kOrgB = "7c8d9e0f-1a2b-4c3d-9e4f-5a6b7c8d9e0f";
const std::string kConfigsHeader =
    "id,key,value,config_type,description,organization_id,updated_by,updated_at,integration_id";

// One CSV field as psql writes it: quoted when it holds a comma, quote or line end.
std::string CsvQuote(std::string_view field) {
  if (field.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(field);
  std::string out = "\"";
  for (const char c : field) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string CsvLine(const std::vector<std::string>& fields) {
  std::string line;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) line += ",";
    line += CsvQuote(fields[i]);
  }
  return line + "\n";
}

// A config row of the dump; org "" is the global scope.
struct Row {
  std::string id;
  std::string key;
  std::string value;  // the JSONB text
  std::string type;
  std::string org;
  std::string description;
  std::string updated_by = "alice@example.com";
  std::string updated_at = "2024-05-01 12:34:56.789+00";
  std::string integration;
};

class ImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = store::SqliteStore::Open({.data_dir = dir_.path() + "/data", .clock = &clock_});
    ASSERT_TRUE(opened) << opened.error().ToString();
    store_ = std::move(*opened);
    auto key = crypto::DeriveMasterKey(kTargetSecret, "BIFROST_SECRET_KEY");
    ASSERT_TRUE(key);
    auto ring = crypto::Keyring::Create(*key);
    ASSERT_TRUE(ring);
    auto barrier = barrier::Barrier::Open(std::move(*ring), *store_, clock_);
    ASSERT_TRUE(barrier) << barrier.error().ToString();
    barrier_ = std::make_unique<barrier::Barrier>(std::move(*barrier));
    auto audit_key = crypto::DeriveAuditKey(*key);
    ASSERT_TRUE(audit_key);
    auto audit = audit::AuditLog::Open(*store_, std::move(*audit_key), clock_, {});
    ASSERT_TRUE(audit) << audit.error().ToString();
    audit_ = std::move(*audit);
    auto hkdf = crypto::DeriveLegacyHkdfKey(kSourceSecret, "s");
    auto pbkdf2 = crypto::DeriveLegacyPbkdf2Key(kSourceSecret, "s");
    ASSERT_TRUE(hkdf && pbkdf2);
    hkdf_ = std::make_unique<crypto::FernetKey>(*hkdf);
    pbkdf2_ = std::make_unique<crypto::FernetKey>(*pbkdf2);
    orgs_path_ = dir_.path() + "/organizations.csv";
    configs_path_ = dir_.path() + "/configs.csv";
  }

  // The JSONB text of a secret as the Python Bifrost stores it.
  std::string Secret(std::string_view plaintext, bool pbkdf2 = false) const {
    auto token = (pbkdf2 ? *pbkdf2_ : *hkdf_).Encrypt(plaintext, 1'700'000'000);
    EXPECT_TRUE(token);
    return "{\"value\": \"" + Base64UrlEncode(*token) + "\"}";
  }

  void WriteOrgs(const std::vector<std::pair<std::string, std::string>>& orgs,
                 const std::string& header = "id,name") {
    std::ofstream out(orgs_path_, std::ios::binary | std::ios::trunc);
    out << header << "\n";
    for (const auto& [id, name] : orgs) out << CsvLine({id, name});
  }

  void WriteConfigs(const std::vector<Row>& rows, const std::string& header = kConfigsHeader) {
    std::ofstream out(configs_path_, std::ios::binary | std::ios::trunc);
    out << header << "\n";
    for (const Row& r : rows) {
      out << CsvLine({r.id, r.key, r.value, r.type, r.description, r.org, r.updated_by,
                      r.updated_at, r.integration});
    }
  }

  Result<ImportReport> Run(bool dry_run = false, std::string_view source = kSourceSecret) {
    ImportOptions options;
    options.organizations_csv = orgs_path_;
    options.configs_csv = configs_path_;
    options.source_secret = crypto::SecureBuffer::From(source);
    options.dry_run = dry_run;
    options.actor = "operator test (uid 1000)";
    return ImportBifrost(*store_, *barrier_, *audit_, clock_, options);
  }

  std::optional<store::ConfigRow> Get(const Scope& scope, std::string_view key) {
    auto txn = store_->Begin(store::TxnMode::kRead);
    EXPECT_TRUE(txn);
    auto row = (*txn)->GetConfig(scope, key);
    EXPECT_TRUE(row) << row.error().ToString();
    return row ? *row : std::nullopt;
  }

  // A secret's plaintext as the server would reveal it: through the barrier.
  std::string Reveal(const Scope& scope, std::string_view key) {
    auto txn = store_->Begin(store::TxnMode::kRead);
    EXPECT_TRUE(txn);
    auto row = (*txn)->GetConfig(scope, key);
    if (!row || !*row) return "<missing>";
    auto opened = barrier_->Open(**txn, scope, key, (*row)->value);
    if (!opened) return "<" + opened.error().ToString() + ">";
    return std::string(opened->view());
  }

  std::vector<store::OrgRow> Orgs() {
    auto txn = store_->Begin(store::TxnMode::kRead);
    EXPECT_TRUE(txn);
    auto orgs = (*txn)->ListOrgs();
    EXPECT_TRUE(orgs);
    return orgs ? *orgs : std::vector<store::OrgRow>{};
  }

  std::vector<store::AuditRow> ImportAudit() {
    auto txn = store_->Begin(store::TxnMode::kRead);
    EXPECT_TRUE(txn);
    store::AuditFilter filter;
    filter.action = std::string(audit::actions::kImportBifrost);
    auto rows = (*txn)->ListAudit(filter);
    EXPECT_TRUE(rows);
    return rows ? *rows : std::vector<store::AuditRow>{};
  }

  void InsertOrg(const std::string& id, const std::string& name) {
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    ASSERT_TRUE((*txn)->InsertOrg({.id = id, .name = name, .created_at = 1}));
    ASSERT_TRUE((*txn)->Commit());
  }

  std::string ErrorOf(Result<ImportReport> result) {
    if (result) return "<no error>";
    return result.error().message();
  }

  testing::TempDir dir_;
  FakeClock clock_{1'750'000'000'000'000};
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<barrier::Barrier> barrier_;
  std::unique_ptr<audit::AuditLog> audit_;
  std::unique_ptr<crypto::FernetKey> hkdf_;
  std::unique_ptr<crypto::FernetKey> pbkdf2_;
  std::string orgs_path_;
  std::string configs_path_;
};

TEST_F(ImportTest, ImportsOrganizationsAndEveryTypeAndReencryptsSecrets) {
  WriteOrgs({{kOrgA, "acme"}, {kOrgB, "Beta, \"Inc\""}});
  WriteConfigs({
      {.id = "c1",
       .key = "region",
       .value = R"({"value": "eu-west"})",
       .type = "string",
       .description = "where, \"exactly\"\nsecond line"},
      {.id = "c2", .key = "retries", .value = R"({"value": "05"})", .type = "int", .org = kOrgA},
      {.id = "c3", .key = "beta", .value = R"({"value": true})", .type = "BOOL", .org = kOrgA},
      {.id = "c4",
       .key = "limits",
       .value = R"({"value": {"max": 1.50, "n": [1, 2]}})",
       .type = "json",
       .org = kOrgB},
      {.id = "c5",
       .key = "api_key",
       .value = Secret("sk_live_A 🔑"),
       .type = "secret",
       .org = kOrgA,
       .updated_by = ""},
      {.id = "c6",
       .key = "api_key",
       .value = Secret("sk_live_B", true),
       .type = "SECRET",
       .org = kOrgB,
       .updated_at = "2023-11-30 23:59:59+05:30"},
      {.id = "c7", .key = "shared", .value = Secret("global secret"), .type = "secret"},
  });
  auto report = Run();
  ASSERT_TRUE(report) << report.error().ToString();
  EXPECT_FALSE(report->dry_run);
  EXPECT_EQ(report->organizations_created, 2);
  EXPECT_EQ(report->organizations_existing, 0);
  EXPECT_EQ(report->configs, 7);
  EXPECT_EQ(report->secrets_hkdf, 2);
  EXPECT_EQ(report->secrets_pbkdf2, 1);
  EXPECT_EQ(report->skipped_integration, 0);
  ASSERT_EQ(report->scopes.size(), 3u);
  EXPECT_EQ(report->scopes[0].label, "global");
  EXPECT_EQ(report->scopes[0].org_id, "");
  EXPECT_EQ(report->scopes[0].by_type.at("string"), 1);
  EXPECT_EQ(report->scopes[0].by_type.at("secret"), 1);
  EXPECT_EQ(report->scopes[1].label, "Beta, \"Inc\"");  // by name: 'B' < 'a'
  EXPECT_EQ(report->scopes[1].org_id, kOrgB);
  EXPECT_TRUE(report->scopes[1].created);
  EXPECT_EQ(report->scopes[1].by_type.at("json"), 1);
  EXPECT_EQ(report->scopes[2].label, "acme");
  EXPECT_EQ(report->scopes[2].by_type.at("int"), 1);
  EXPECT_EQ(report->scopes[2].by_type.at("bool"), 1);
  EXPECT_EQ(report->scopes[2].by_type.at("secret"), 1);
  EXPECT_EQ(report->scopes[2].by_type.at("string"), 0);

  const auto orgs = Orgs();
  ASSERT_EQ(orgs.size(), 2u);
  EXPECT_EQ(orgs[0].id, kOrgB);
  EXPECT_EQ(orgs[0].name, "Beta, \"Inc\"");
  EXPECT_EQ(orgs[1].id, kOrgA);
  EXPECT_EQ(orgs[1].created_at, clock_.NowMicros());

  auto region = Get(Scope::Global(), "region");
  ASSERT_TRUE(region);
  EXPECT_EQ(region->type, "string");
  EXPECT_EQ(region->value, "eu-west");
  EXPECT_EQ(region->description, "where, \"exactly\"\nsecond line");
  EXPECT_EQ(region->updated_by, "alice@example.com");
  EXPECT_EQ(region->updated_at, *ParseRfc3339("2024-05-01T12:34:56.789Z"));
  EXPECT_EQ(region->created_at, region->updated_at);
  EXPECT_EQ(region->key_id, std::nullopt);
  EXPECT_EQ(region->version, 1);
  EXPECT_EQ(Get(Scope::Org(kOrgA), "retries")->value, "5");
  EXPECT_EQ(Get(Scope::Org(kOrgA), "beta")->value, "true");
  EXPECT_EQ(Get(Scope::Org(kOrgB), "limits")->value, R"({"max": 1.50, "n": [1, 2]})");

  // Secrets: sealed under this installation's data keys, bound to their rows, never in clear.
  auto secret_a = Get(Scope::Org(kOrgA), "api_key");
  ASSERT_TRUE(secret_a);
  EXPECT_EQ(secret_a->type, "secret");
  EXPECT_TRUE(secret_a->value.starts_with("bf1:")) << secret_a->value;
  ASSERT_TRUE(secret_a->key_id.has_value());
  EXPECT_EQ(*barrier::Barrier::EnvelopeKeyId(secret_a->value), *secret_a->key_id);
  EXPECT_EQ(secret_a->updated_by, "import");
  EXPECT_EQ(Reveal(Scope::Org(kOrgA), "api_key"), "sk_live_A 🔑");
  EXPECT_EQ(Reveal(Scope::Org(kOrgB), "api_key"), "sk_live_B");
  EXPECT_EQ(Reveal(Scope::Global(), "shared"), "global secret");
  EXPECT_EQ(Get(Scope::Org(kOrgB), "api_key")->updated_at,
            *ParseRfc3339("2023-11-30T23:59:59+05:30"));
  // Each organization has its own data key.
  EXPECT_NE(*secret_a->key_id, *Get(Scope::Org(kOrgB), "api_key")->key_id);

  const auto records = ImportAudit();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].outcome, "success");
  EXPECT_EQ(records[0].actor_name, "operator test (uid 1000)");
  EXPECT_EQ(records[0].detail,
            "2 organizations (2 created), 7 configs (by type string 1, int 1, bool 1, json 1, "
            "secret 3), 3 secrets re-encrypted, 0 integration rows skipped");
}

TEST_F(ImportTest, DryRunWritesNothing) {
  WriteOrgs({{kOrgA, "acme"}});
  WriteConfigs(
      {{.id = "c1", .key = "api_key", .value = Secret("s"), .type = "secret", .org = kOrgA},
       {.id = "c2", .key = "g", .value = Secret("t"), .type = "secret"}});
  auto report = Run(/*dry_run=*/true);
  ASSERT_TRUE(report) << report.error().ToString();
  EXPECT_TRUE(report->dry_run);
  EXPECT_EQ(report->organizations_created, 1);
  EXPECT_EQ(report->configs, 2);
  EXPECT_TRUE(Orgs().empty());
  EXPECT_FALSE(Get(Scope::Global(), "g"));
  EXPECT_TRUE(ImportAudit().empty());
  {
    auto txn = store_->Begin(store::TxnMode::kRead);
    ASSERT_TRUE(txn);
    auto keys = (*txn)->ListDataKeys("", 100);
    ASSERT_TRUE(keys);
    for (const auto& key : *keys) EXPECT_TRUE(key.scope.is_global()) << key.id;
  }
  // The real run after it works: nothing of the dry run is left in the way.
  auto real = Run();
  ASSERT_TRUE(real) << real.error().ToString();
  EXPECT_EQ(Reveal(Scope::Org(kOrgA), "api_key"), "s");
  EXPECT_EQ(Reveal(Scope::Global(), "g"), "t");
}

TEST_F(ImportTest, ASecretThatDoesNotDecryptAbortsEverythingNamingTheRow) {
  WriteOrgs({{kOrgA, "acme"}});
  auto other = crypto::DeriveLegacyHkdfKey("some-other-installation-key-0123", "s");
  ASSERT_TRUE(other);
  auto token = other->Encrypt("sk_live_CANARY", 1'700'000'000);
  ASSERT_TRUE(token);
  WriteConfigs({
      {.id = "c1", .key = "fine", .value = Secret("ok"), .type = "secret", .org = kOrgA},
      {.id = "c2",
       .key = "x",
       .value = R"({"value": 1})",
       .type = "int",
       .org = kOrgA,
       .description = "a\nmulti-line description"},
      {.id = "9f1c",
       .key = "bad_one",
       .value = "{\"value\": \"" + Base64UrlEncode(*token) + "\"}",
       .type = "secret",
       .org = kOrgA},
  });
  const std::string error = ErrorOf(Run());
  EXPECT_EQ(error, configs_path_ +
                       " line 5 (config '9f1c', key 'bad_one'): the secret does not decrypt with "
                       "the source key (neither its HKDF nor its PBKDF2 derivation opens it): is "
                       "the source key the old installation's BIFROST_SECRET_KEY?");
  EXPECT_EQ(error.find("CANARY"), std::string::npos);
  EXPECT_TRUE(Orgs().empty());
  EXPECT_TRUE(ImportAudit().empty());

  // The wrong source key: the first secret names itself.
  WriteConfigs(
      {{.id = "c1", .key = "fine", .value = Secret("ok"), .type = "secret", .org = kOrgA}});
  EXPECT_TRUE(ErrorOf(Run(false, "not-the-old-key-at-all-0123456789"))
                  .starts_with(configs_path_ + " line 2 (config 'c1', key 'fine'): the secret "
                                               "does not decrypt"));
  EXPECT_TRUE(Orgs().empty());
}

TEST_F(ImportTest, RowsThatBreakARuleAreNamedWithTheRule) {
  WriteOrgs({{kOrgA, "acme"}});
  struct Case {
    Row row;
    std::string message;
  };
  const std::string at = configs_path_ + " line 2 (config 'c1'";
  for (const Case& c : {
           Case{{.id = "c1", .key = "bad-key", .value = R"({"value": "x"})", .type = "string"},
                at + "): config key 'bad-key' is invalid: a key is 1 to 255 characters of A-Z, "
                     "a-z, 0-9 and _"},
           Case{{.id = "c1", .key = "k", .value = R"({"value": "x"})", .type = "float"},
                at + ", key 'k'): config_type 'float' is unknown: expected string, int, bool, "
                     "json or secret"},
           Case{{.id = "c1", .key = "k", .value = R"({"value": "abc"})", .type = "int"},
                at + ", key 'k'): type int needs a 64-bit integer in {\"value\": ...}, but the "
                     "value is a string that is not a decimal integer within the 64-bit range"},
           Case{{.id = "c1",
           .key = "k",
           .value = R"({"value": "x"})",
           .type = "string",
           .org = "acme"},
                at + ", key 'k'): organization_id 'acme' is not a UUID"},
           Case{{.id = "c1",
           .key = "k",
           .value = R"({"value": "x"})",
           .type = "string",
           .org = kOrgB},
                at + ", key 'k'): organization " + kOrgB + " is neither in " + orgs_path_ +
                    " nor in this installation"},
           Case{{.id = "c1",
           .key = "k",
           .value = R"({"value": "x"})",
           .type = "string",
           .description = std::string(2000, 'd')},
                at + ", key 'k'): config 'k' description is 2000 bytes, more than the limit of "
                     "1024"},
       }) {
    WriteConfigs({c.row});
    EXPECT_EQ(ErrorOf(Run()), c.message);
  }
  EXPECT_TRUE(Orgs().empty());

  WriteConfigs(
      {{.id = "c1", .key = "k", .value = R"({"value": "x"})", .type = "string", .org = kOrgA},
       {.id = "c2", .key = "k", .value = R"({"value": "y"})", .type = "string", .org = kOrgA}});
  EXPECT_EQ(ErrorOf(Run()), configs_path_ + " line 3 (config 'c2', key 'k'): organization " +
                                kOrgA +
                                " has key 'k' twice (also on line 2); keep one of the "
                                "rows");
}

TEST_F(ImportTest, OrganizationFileProblemsAreNamed) {
  WriteConfigs({});
  WriteOrgs({{"not-a-uuid", "acme"}});
  EXPECT_EQ(ErrorOf(Run()), orgs_path_ +
                                " line 2: organization id 'not-a-uuid' is not a UUID "
                                "(8-4-4-4-12 hex digits)");
  WriteOrgs({{kOrgA, "acme"}, {kOrgA, "other"}});
  EXPECT_EQ(ErrorOf(Run()),
            orgs_path_ + " line 3: organization " + kOrgA + " is listed twice (also on line 2)");
  WriteOrgs({{kOrgA, "acme"}, {kOrgB, "acme"}});
  EXPECT_EQ(ErrorOf(Run()), orgs_path_ +
                                " line 3: the organization name 'acme' is used twice "
                                "(also on line 2); names are unique here");
  WriteOrgs({{kOrgA, " padded"}});
  EXPECT_TRUE(ErrorOf(Run()).starts_with(orgs_path_ + " line 2: organization name ' padded' is "
                                                      "invalid"));
  WriteOrgs({{kOrgA, "acme"}}, "id,title");
  EXPECT_EQ(ErrorOf(Run()), orgs_path_ +
                                " line 1: the header lacks the column(s) name (see "
                                "docs/migrating-from-bifrost.md for the \\copy "
                                "commands)");
  EXPECT_TRUE(Orgs().empty());

  // Upper-case UUIDs (a hand-edited file) are read as the same id.
  std::string upper = kOrgA;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  WriteOrgs({{upper, "acme"}});
  WriteConfigs(
      {{.id = "c1", .key = "k", .value = R"({"value": "x"})", .type = "string", .org = upper}});
  ASSERT_TRUE(Run());
  EXPECT_EQ(Get(Scope::Org(kOrgA), "k")->value, "x");
}

TEST_F(ImportTest, ExistingOrganizationsAreReusedOnlyWhenTheyMatch) {
  InsertOrg(kOrgA, "acme");
  WriteOrgs({{kOrgA, "acme"}, {kOrgB, "beta"}});
  WriteConfigs({{.id = "c1", .key = "k", .value = Secret("v"), .type = "secret", .org = kOrgA}});
  auto report = Run();
  ASSERT_TRUE(report) << report.error().ToString();
  EXPECT_EQ(report->organizations_created, 1);
  EXPECT_EQ(report->organizations_existing, 1);
  ASSERT_EQ(report->scopes.size(), 2u);
  EXPECT_EQ(report->scopes[0].label, "acme");
  EXPECT_FALSE(report->scopes[0].created);
  EXPECT_TRUE(report->scopes[1].created);
  EXPECT_EQ(Reveal(Scope::Org(kOrgA), "k"), "v");

  // An organization of this installation that the file does not list may receive entries.
  WriteOrgs({});
  WriteConfigs(
      {{.id = "c2", .key = "k2", .value = R"({"value": 3})", .type = "int", .org = kOrgB}});
  report = Run();
  ASSERT_TRUE(report) << report.error().ToString();
  ASSERT_EQ(report->scopes.size(), 1u);
  EXPECT_EQ(report->scopes[0].label, "beta");
  EXPECT_FALSE(report->scopes[0].created);
}

TEST_F(ImportTest, AnOrganizationThatDiffersHereIsRefused) {
  InsertOrg(kOrgA, "acme");
  WriteConfigs({});
  WriteOrgs({{kOrgA, "acme renamed"}});
  EXPECT_EQ(ErrorOf(Run()), orgs_path_ + " line 2: organization " + kOrgA +
                                " already exists here named 'acme', not 'acme renamed'; rename "
                                "one of them so the names agree");
  WriteOrgs({{kOrgB, "acme"}});
  EXPECT_EQ(ErrorOf(Run()), orgs_path_ +
                                " line 2: the name 'acme' is taken here by another "
                                "organization (" +
                                kOrgA + ", not " + kOrgB + "); rename one of them");
  EXPECT_EQ(Orgs().size(), 1u);
}

TEST_F(ImportTest, NeverOverwritesAnExistingEntry) {
  InsertOrg(kOrgA, "acme");
  {
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    store::ConfigRow row;
    row.scope = Scope::Global();
    row.key = "region";
    row.type = "string";
    row.value = "here";
    row.updated_by = "someone";
    ASSERT_TRUE((*txn)->InsertConfig(row));
    row.scope = Scope::Org(kOrgA);
    row.key = "taken";
    ASSERT_TRUE((*txn)->InsertConfig(row));
    ASSERT_TRUE((*txn)->Commit());
  }
  WriteOrgs({{kOrgA, "acme"}, {kOrgB, "beta"}});
  WriteConfigs({
      {.id = "c1", .key = "new", .value = R"({"value": "x"})", .type = "string", .org = kOrgB},
      {.id = "c2", .key = "region", .value = R"({"value": "there"})", .type = "string"},
      {.id = "c3", .key = "taken", .value = Secret("s"), .type = "secret", .org = kOrgA},
  });
  EXPECT_EQ(ErrorOf(Run()), configs_path_ +
                                " line 3 (config 'c2', key 'region'): the global scope already has "
                                "config 'region' here (and 1 more rows collide with existing "
                                "entries); the import never overwrites: delete the entries here or "
                                "drop the rows from " +
                                configs_path_);
  EXPECT_EQ(Get(Scope::Global(), "region")->value, "here");
  EXPECT_EQ(Orgs().size(), 1u);
}

TEST_F(ImportTest, IntegrationRowsAreSkippedAndCounted) {
  WriteOrgs({{kOrgA, "acme"}});
  WriteConfigs({
      {.id = "c1", .key = "k", .value = R"({"value": "x"})", .type = "string", .org = kOrgA},
      // Skipped before anything is checked: their keys and types need not fit here.
      {.id = "i1",
       .key = "client-secret",
       .value = "{\"value\": \"junk\"}",
       .type = "secret",
       .org = kOrgA,
       .integration = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"},
      {.id = "i2",
       .key = "k",
       .value = "not json",
       .type = "oauth",
       .integration = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"},
  });
  auto report = Run();
  ASSERT_TRUE(report) << report.error().ToString();
  EXPECT_EQ(report->configs, 1);
  EXPECT_EQ(report->skipped_integration, 2);
  EXPECT_TRUE(ImportAudit().at(0).detail.ends_with(", 2 integration rows skipped"));
}

// The dump of an older schema: no integration_id column, columns in another order, and the
// optional ones absent.
TEST_F(ImportTest, OptionalColumnsMayBeMissing) {
  WriteOrgs({{kOrgA, "acme"}});
  {
    std::ofstream out(configs_path_, std::ios::trunc);
    out << "organization_id,config_type,value,key,id\n"
        << kOrgA << ",secret," << CsvQuote(Secret("v")) << ",k,c1\n";
  }
  auto report = Run();
  ASSERT_TRUE(report) << report.error().ToString();
  auto row = Get(Scope::Org(kOrgA), "k");
  ASSERT_TRUE(row);
  EXPECT_EQ(row->updated_by, "import");
  EXPECT_EQ(row->updated_at, clock_.NowMicros());
  EXPECT_EQ(row->description, "");
  EXPECT_EQ(Reveal(Scope::Org(kOrgA), "k"), "v");
}

TEST_F(ImportTest, TimestampsAsPostgresPrintsThem) {
  WriteOrgs({});
  struct Case {
    std::string text;
    std::optional<std::string> rfc3339;  // nullopt: the import time
  };
  const std::vector<Case> cases = {
      {"2024-05-01 12:34:56.789+00", "2024-05-01T12:34:56.789Z"},
      {"2024-05-01 12:34:56.123456+00", "2024-05-01T12:34:56.123456Z"},
      {"2024-05-01 12:34:56+05:30", "2024-05-01T12:34:56+05:30"},
      {"2024-05-01 12:34:56-07", "2024-05-01T12:34:56-07:00"},
      {"2024-05-01 12:34:56+0200", "2024-05-01T12:34:56+02:00"},
      {"2024-05-01 12:34:56", "2024-05-01T12:34:56Z"},
      {"2024-05-01T12:34:56.5Z", "2024-05-01T12:34:56.5Z"},
      {"infinity", std::nullopt},
      {"", std::nullopt},
      {"0001-01-01 00:00:00+00 BC", std::nullopt},
      {"1900-01-01 00:00:00+00:09:21", std::nullopt},
  };
  std::vector<Row> rows;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    Row row{.value = R"({"value": "x"})", .type = "string", .updated_at = cases[i].text};
    row.id = "c";
    row.id += std::to_string(i);
    row.key = "k";
    row.key += std::to_string(i);
    rows.push_back(row);
  }
  WriteConfigs(rows);
  ASSERT_TRUE(Run());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    std::string key = "k";
    key += std::to_string(i);
    auto row = Get(Scope::Global(), key);
    ASSERT_TRUE(row);
    const UnixMicros expected =
        cases[i].rfc3339 ? *ParseRfc3339(*cases[i].rfc3339) : clock_.NowMicros();
    EXPECT_EQ(row->updated_at, expected) << cases[i].text;
  }
}

TEST_F(ImportTest, AnEmptySourceKeyIsRefused) {
  WriteOrgs({});
  WriteConfigs({});
  EXPECT_EQ(ErrorOf(Run(false, "")), "the source key is empty");
}

}  // namespace
}  // namespace bifrost::importer
