// The config model end to end on the embedded SQLite store: organizations, every type,
// org->global fallback, isolation, optimistic concurrency, row binding of secrets,
// wrong-key detection and the canary scan of the raw database files.
#include "config/config_service.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>
#include <utility>

#include "barrier/barrier.h"
#include "common/text.h"
#include "crypto/key_derivation.h"
#include "store/sqlite/sqlite_store.h"
#include "tests/support/subprocess.h"

namespace bifrost::config {
namespace {

using crypto::SecureBuffer;
using store::Scope;

constexpr std::string_view kSecretKey = "correct-horse-battery-staple-0123456789";
constexpr std::string_view kOtherSecretKey = "another-installation-entirely-0123456789";

crypto::Keyring RingFor(std::string_view secret, std::vector<std::string_view> previous = {}) {
  auto primary = crypto::DeriveMasterKey(secret, "BIFROST_SECRET_KEY");
  EXPECT_TRUE(primary);
  std::vector<crypto::FernetKey> others;
  for (auto p : previous) {
    auto key = crypto::DeriveMasterKey(p, "BIFROST_SECRET_KEY_PREVIOUS");
    EXPECT_TRUE(key);
    others.push_back(*key);
  }
  auto ring = crypto::Keyring::Create(*primary, std::move(others));
  EXPECT_TRUE(ring);
  return *ring;
}

// One open installation: store, barrier, service. Heap-held so that moving an
// Installation does not move what the service points at.
struct Installation {
  std::unique_ptr<store::SqliteStore> store;
  std::unique_ptr<barrier::Barrier> barrier;
  std::unique_ptr<ConfigService> service;
  ~Installation() {
    service.reset();  // before the store it uses
    barrier.reset();
  }
  Installation() = default;
  Installation(Installation&&) = default;
  Installation& operator=(Installation&& other) {
    service.reset();
    barrier.reset();
    store.reset();
    store = std::move(other.store);
    barrier = std::move(other.barrier);
    service = std::move(other.service);
    return *this;
  }
};

Result<Installation> OpenInstallation(const std::string& dir, crypto::Keyring ring,
                                      const Clock& clock, Limits limits = {}) {
  Installation inst;
  BIFROST_ASSIGN_OR_RETURN(inst.store, store::SqliteStore::Open({.data_dir = dir}));
  BIFROST_ASSIGN_OR_RETURN(auto barrier,
                           barrier::Barrier::Open(std::move(ring), *inst.store, clock));
  inst.barrier = std::make_unique<barrier::Barrier>(std::move(barrier));
  inst.service = std::make_unique<ConfigService>(*inst.store, *inst.barrier, clock, limits);
  return inst;
}

ConfigWrite Write(std::string key, ConfigType type, std::string_view value,
                  std::optional<std::int64_t> expected_version = std::nullopt) {
  return {.key = std::move(key),
          .type = type,
          .value = SecureBuffer::From(value),
          .description = "",
          .actor = "tester",
          .expected_version = expected_version};
}

class ConfigServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(RingFor(kSecretKey)); }

  void Reopen(crypto::Keyring ring) {
    inst_ = Installation{};
    auto inst = OpenInstallation(dir_.path(), std::move(ring), clock_);
    ASSERT_TRUE(inst) << inst.error().ToString();
    inst_ = std::move(*inst);
  }
  void Close() { inst_ = Installation{}; }

  ConfigService& svc() { return *inst_.service; }
  ScopeConfig Org(const std::string& id) {
    auto view = svc().ForOrg(id);
    EXPECT_TRUE(view) << view.error().ToString();
    return *view;
  }
  std::string NewOrg(std::string_view name) {
    auto org = svc().CreateOrganization(name);
    EXPECT_TRUE(org) << org.error().ToString();
    return org->id;
  }
  std::string RevealString(const ScopeConfig& view, std::string_view key) {
    auto revealed = view.Reveal(key);
    EXPECT_TRUE(revealed) << revealed.error().ToString();
    return revealed ? std::string(revealed->value.view()) : "";
  }
  // Overwrites a row's stored value directly in the store, as an attacker with write access
  // to the database (but not the key) could.
  void ForgeStoredValue(const Scope& scope, std::string_view key, const std::string& value,
                        std::optional<std::string> key_id) {
    auto txn = inst_.store->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    auto row = (*txn)->GetConfig(scope, key);
    ASSERT_TRUE(row && *row);
    store::ConfigRow forged = **row;
    forged.value = value;
    forged.key_id = std::move(key_id);
    ASSERT_TRUE((*txn)->UpdateConfig(forged, forged.version));
    ASSERT_TRUE((*txn)->Commit());
  }
  // The scope's data keys as stored, the active one first.
  std::vector<store::DataKeyRow> ScopeKeys(const Scope& scope) {
    auto txn = inst_.store->Begin(store::TxnMode::kRead);
    EXPECT_TRUE(txn);
    auto rows = (*txn)->ListScopeDataKeys(scope);
    EXPECT_TRUE(rows);
    return *rows;
  }
  std::string ActiveKeyId(const Scope& scope) {
    const auto keys = ScopeKeys(scope);
    EXPECT_FALSE(keys.empty());
    EXPECT_EQ(keys.empty() ? "" : keys.front().state, "active");
    return keys.empty() ? "" : keys.front().id;
  }
  std::pair<std::string, std::optional<std::string>> StoredValue(const Scope& scope,
                                                                 std::string_view key) {
    auto txn = inst_.store->Begin(store::TxnMode::kRead);
    EXPECT_TRUE(txn);
    auto row = (*txn)->GetConfig(scope, key);
    EXPECT_TRUE(row && *row);
    return {(**row).value, (**row).key_id};
  }

  testing::TempDir dir_;
  FakeClock clock_;
  Installation inst_;
};

TEST_F(ConfigServiceTest, Organizations) {
  auto acme = svc().CreateOrganization("Acme Corp");
  ASSERT_TRUE(acme);
  EXPECT_TRUE(IsCanonicalUuid(acme->id));
  EXPECT_EQ(acme->created_at, clock_.NowMicros());
  auto dup = svc().CreateOrganization("Acme Corp");
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(dup.error().message(), "an organization named 'Acme Corp' already exists");

  const std::string fixed = "123e4567-e89b-42d3-a456-426614174000";
  auto imported = svc().CreateOrganization("Müller GmbH", fixed);
  ASSERT_TRUE(imported);
  EXPECT_EQ(imported->id, fixed);
  auto same_id = svc().CreateOrganization("Other", fixed);
  ASSERT_FALSE(same_id);
  EXPECT_EQ(same_id.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_FALSE(svc().CreateOrganization("Bad Id", "NOT-A-UUID"));
  EXPECT_FALSE(svc().CreateOrganization(" padded"));

  auto by_name = svc().GetOrganizationByName("Müller GmbH");
  ASSERT_TRUE(by_name);
  EXPECT_EQ(by_name->id, fixed);
  auto list = svc().ListOrganizations();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "Acme Corp");
  EXPECT_EQ((*list)[1].name, "Müller GmbH");

  ASSERT_TRUE(svc().DeleteOrganization(acme->id));
  auto gone = svc().GetOrganization(acme->id);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), ErrorCode::kNotFound);
  auto again = svc().DeleteOrganization(acme->id);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kNotFound);
  auto view = svc().ForOrg(acme->id);
  ASSERT_FALSE(view);
  EXPECT_EQ(view.error().code(), ErrorCode::kNotFound);
}

TEST_F(ConfigServiceTest, EveryTypeRoundTripsAndSecretsAreHidden) {
  const auto org = Org(NewOrg("Acme"));
  struct Case {
    std::string key;
    ConfigType type;
    std::string value;
  } cases[] = {{"name", ConfigType::kString, "Acme Billing"},
               {"retries", ConfigType::kInt, "-42"},
               {"enabled", ConfigType::kBool, "true"},
               {"settings", ConfigType::kJson, R"({"a": [1, 2], "b": null})"},
               {"api_key", ConfigType::kSecret, "sk_live_xxxxx"}};
  for (const auto& c : cases) {
    auto entry = org.Set(Write(c.key, c.type, c.value));
    ASSERT_TRUE(entry) << entry.error().ToString();
    EXPECT_EQ(entry->version, 1);
    EXPECT_EQ(entry->type, c.type);
    EXPECT_EQ(entry->source, Source::kOrg);
    EXPECT_EQ(entry->updated_by, "tester");
    if (c.type == ConfigType::kSecret) {
      EXPECT_FALSE(entry->value.has_value());  // a write response never carries the secret
    } else {
      EXPECT_EQ(entry->value, c.value);
    }
  }
  for (const auto& c : cases) {
    auto entry = org.Get(c.key);
    ASSERT_TRUE(entry);
    EXPECT_EQ(entry->value.has_value(), c.type != ConfigType::kSecret);
    EXPECT_EQ(RevealString(org, c.key), c.value);
  }
  auto listed = org.List();
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 5u);
  for (const auto& e : *listed) {
    EXPECT_EQ(e.value.has_value(), e.type != ConfigType::kSecret) << e.key;
  }
  // The stored form of the secret is an envelope naming the key, never the plaintext; the
  // key is the organization's data key, not the master key.
  auto [stored, key_id] = StoredValue(org.scope(), "api_key");
  EXPECT_TRUE(stored.starts_with("bf1:"));
  EXPECT_EQ(stored.find("sk_live_xxxxx"), std::string::npos);
  ASSERT_TRUE(key_id.has_value());
  EXPECT_EQ(*key_id, ActiveKeyId(org.scope()));
  EXPECT_NE(*key_id, inst_.barrier->keyring().primary().id());
  EXPECT_TRUE(stored.starts_with("bf1:" + *key_id + ":"));
}

TEST_F(ConfigServiceTest, RejectedWritesChangeNothing) {
  const auto org = Org(NewOrg("Acme"));
  ASSERT_TRUE(org.Set(Write("retries", ConfigType::kInt, "3")));
  auto bad = org.Set(Write("retries", ConfigType::kInt, "abc"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.error().message(),
            "config 'retries' has type int but value 'abc' is not a 64-bit integer (decimal, "
            "optional '-', no leading zeros)");
  auto entry = org.Get("retries");
  ASSERT_TRUE(entry);
  EXPECT_EQ(entry->value, "3");
  EXPECT_EQ(entry->version, 1);
  EXPECT_FALSE(org.Set(Write("bad-key", ConfigType::kString, "v")));
  EXPECT_FALSE(org.Set(Write("missing", ConfigType::kSecret, "")));
  auto listed = org.List();
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->size(), 1u);
  ConfigWrite no_actor = Write("x", ConfigType::kString, "v");
  no_actor.actor = "";
  EXPECT_FALSE(org.Set(no_actor));
}

TEST_F(ConfigServiceTest, ValueLimitIsConfigurable) {
  Close();
  auto inst = OpenInstallation(dir_.path(), RingFor(kSecretKey), clock_,
                               Limits{.max_value_bytes = 16, .max_description_bytes = 8});
  ASSERT_TRUE(inst);
  const auto global = inst->service->ForGlobal();
  EXPECT_TRUE(global.Set(Write("k", ConfigType::kSecret, std::string(16, 's'))));
  auto too_big = global.Set(Write("k", ConfigType::kSecret, std::string(17, 's')));
  ASSERT_FALSE(too_big);
  EXPECT_EQ(too_big.error().message(), "config 'k' value is 17 bytes, more than the limit of 16");
  ConfigWrite described = Write("d", ConfigType::kString, "v");
  described.description = "123456789";
  EXPECT_FALSE(global.Set(described));
}

TEST_F(ConfigServiceTest, SetDescriptionKeepsTheValueAndTypeOfItsOwnEntryOnly) {
  const auto global = svc().ForGlobal();
  const auto acme = Org(NewOrg("Acme"));
  ASSERT_TRUE(global.Set(Write("region", ConfigType::kString, "eu")));
  ASSERT_TRUE(acme.Set(Write("api_key", ConfigType::kSecret, "sk_live_kept")));
  clock_.AdvanceMicros(1'000'000);
  auto changed = acme.SetDescription("api_key", "the Stripe key", "user:ana@x/1", 1);
  ASSERT_TRUE(changed) << changed.error().ToString();
  EXPECT_EQ(changed->type, ConfigType::kSecret);
  EXPECT_EQ(changed->description, "the Stripe key");
  EXPECT_EQ(changed->version, 2);
  EXPECT_EQ(changed->updated_by, "user:ana@x/1");
  EXPECT_FALSE(changed->value.has_value());
  EXPECT_EQ(RevealString(acme, "api_key"), "sk_live_kept");  // still opens: same row binding
  // Optimistic concurrency, the org's own entries only, the description rules.
  EXPECT_EQ(acme.SetDescription("api_key", "x", "a", 1).error().code(), ErrorCode::kConflict);
  EXPECT_EQ(acme.SetDescription("region", "x", "a", std::nullopt).error().code(),
            ErrorCode::kNotFound);
  EXPECT_EQ(
      acme.SetDescription("api_key", std::string(100'000, 'd'), "a", std::nullopt).error().code(),
      ErrorCode::kInvalidArgument);
  auto global_changed = global.SetDescription("region", "where", "a", std::nullopt);
  ASSERT_TRUE(global_changed);
  EXPECT_EQ(global_changed->value, "eu");
}

TEST_F(ConfigServiceTest, OrgOverridesGlobalAndListSaysWhereFrom) {
  const auto global = svc().ForGlobal();
  const auto acme = Org(NewOrg("Acme"));
  const auto beta = Org(NewOrg("Beta"));
  ASSERT_TRUE(global.Set(Write("api_url", ConfigType::kString, "https://global.example")));
  ASSERT_TRUE(global.Set(Write("api_key", ConfigType::kSecret, "sk_global")));
  ASSERT_TRUE(global.Set(Write("timeout", ConfigType::kInt, "30")));
  ASSERT_TRUE(acme.Set(Write("api_key", ConfigType::kSecret, "sk_acme")));
  ASSERT_TRUE(acme.Set(Write("only_acme", ConfigType::kBool, "true")));

  EXPECT_EQ(RevealString(acme, "api_key"), "sk_acme");
  EXPECT_EQ(RevealString(beta, "api_key"), "sk_global");  // falls back
  EXPECT_EQ(RevealString(global, "api_key"), "sk_global");
  auto inherited = beta.Get("api_url");
  ASSERT_TRUE(inherited);
  EXPECT_EQ(inherited->source, Source::kGlobal);
  EXPECT_TRUE(inherited->scope.is_global());

  auto listed = acme.List();
  ASSERT_TRUE(listed);
  std::vector<std::string> seen;
  for (const auto& e : *listed) {
    seen.push_back(e.key + ":" + std::string(SourceName(e.source)));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"api_key:org", "api_url:global", "only_acme:org",
                                            "timeout:global"}));
  // Only an org entry with a global one behind it is an override.
  for (const auto& e : *listed) EXPECT_EQ(e.overrides_global, e.key == "api_key") << e.key;
  auto global_list = global.List();
  ASSERT_TRUE(global_list);
  EXPECT_EQ(global_list->size(), 3u);

  // Deleting the override uncovers the global value; deleting again is kNotFound and the
  // global entry is untouched.
  ASSERT_TRUE(acme.Delete("api_key"));
  EXPECT_EQ(RevealString(acme, "api_key"), "sk_global");
  auto again = acme.Delete("api_key");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(RevealString(global, "api_key"), "sk_global");

  auto missing = acme.Get("nothing_here");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(missing.error().message(), "config 'nothing_here' is not set in organization " +
                                           acme.scope().org_id() + " or the global scope");
}

TEST_F(ConfigServiceTest, OrganizationsAreIsolated) {
  const auto acme = Org(NewOrg("Acme"));
  const auto beta = Org(NewOrg("Beta"));
  ASSERT_TRUE(acme.Set(Write("stripe_key", ConfigType::kSecret, "sk_acme_only")));
  auto from_beta = beta.Reveal("stripe_key");
  ASSERT_FALSE(from_beta);
  EXPECT_EQ(from_beta.error().code(), ErrorCode::kNotFound);
  auto beta_list = beta.List();
  ASSERT_TRUE(beta_list);
  EXPECT_TRUE(beta_list->empty());
  EXPECT_FALSE(beta.Delete("stripe_key"));
  EXPECT_EQ(RevealString(acme, "stripe_key"), "sk_acme_only");
  // Deleting an org removes its config and nothing else.
  ASSERT_TRUE(svc().DeleteOrganization(beta.scope().org_id()));
  EXPECT_EQ(RevealString(acme, "stripe_key"), "sk_acme_only");
}

TEST_F(ConfigServiceTest, OptimisticConcurrency) {
  const auto org = Org(NewOrg("Acme"));
  ASSERT_TRUE(org.Set(Write("k", ConfigType::kString, "v1", 0)));
  auto create_again = org.Set(Write("k", ConfigType::kString, "v2", 0));
  ASSERT_FALSE(create_again);
  EXPECT_EQ(create_again.error().code(), ErrorCode::kAlreadyExists);
  clock_.AdvanceMicros(5);
  auto v2 = org.Set(Write("k", ConfigType::kString, "v2", 1));
  ASSERT_TRUE(v2);
  EXPECT_EQ(v2->version, 2);
  EXPECT_EQ(v2->updated_at, v2->created_at + 5);
  auto stale = org.Set(Write("k", ConfigType::kString, "v3", 1));
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code(), ErrorCode::kConflict);
  EXPECT_EQ(org.Get("k")->value, "v2");
  auto absent = org.Set(Write("nope", ConfigType::kString, "v", 3));
  ASSERT_FALSE(absent);
  EXPECT_EQ(absent.error().code(), ErrorCode::kNotFound);
  // Unconditional writes always win and bump the version; a type change is a replace.
  auto v3 = org.Set(Write("k", ConfigType::kSecret, "now a secret"));
  ASSERT_TRUE(v3);
  EXPECT_EQ(v3->version, 3);
  EXPECT_EQ(RevealString(org, "k"), "now a secret");
  auto stale_delete = org.Delete("k", 2);
  ASSERT_FALSE(stale_delete);
  EXPECT_EQ(stale_delete.error().code(), ErrorCode::kConflict);
  EXPECT_TRUE(org.Delete("k", 3));
}

TEST_F(ConfigServiceTest, ConcurrentWritersAndReadersAcrossOrgs) {
  std::vector<std::string> orgs;
  for (int i = 0; i < 4; ++i) orgs.push_back(NewOrg("Org " + std::to_string(i)));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const auto view = svc().ForOrg(orgs[static_cast<std::size_t>(t)]);
      if (!view) {
        ++failures;
        return;
      }
      for (int i = 0; i < 50; ++i) {
        const std::string value = "secret-" + std::to_string(t) + "-" + std::to_string(i);
        if (!view->Set(Write("key", ConfigType::kSecret, value))) ++failures;
        auto back = view->Reveal("key");
        if (!back || back->value.view() != value) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  for (std::size_t t = 0; t < orgs.size(); ++t) {
    EXPECT_EQ(RevealString(Org(orgs[t]), "key"), "secret-" + std::to_string(t) + "-49");
    EXPECT_EQ(Org(orgs[t]).Get("key")->version, 50);
  }
}

// A ciphertext copied onto another row fails its integrity check instead of yielding the
// other row's secret: across orgs, across keys, and from global to an org.
TEST_F(ConfigServiceTest, SealedValuesAreBoundToTheirRow) {
  const auto global = svc().ForGlobal();
  const auto acme = Org(NewOrg("Acme"));
  const auto beta = Org(NewOrg("Beta"));
  ASSERT_TRUE(acme.Set(Write("stripe_key", ConfigType::kSecret, "sk_acme")));
  ASSERT_TRUE(acme.Set(Write("other_key", ConfigType::kSecret, "sk_acme_other")));
  ASSERT_TRUE(beta.Set(Write("stripe_key", ConfigType::kSecret, "sk_beta")));
  ASSERT_TRUE(global.Set(Write("stripe_key", ConfigType::kSecret, "sk_global")));
  const auto [acme_env, acme_kid] = StoredValue(acme.scope(), "stripe_key");
  const auto [global_env, global_kid] = StoredValue(Scope::Global(), "stripe_key");

  ForgeStoredValue(beta.scope(), "stripe_key", acme_env, acme_kid);  // another org
  ForgeStoredValue(acme.scope(), "other_key", acme_env, acme_kid);   // another key
  for (const auto& [view, key] : {std::pair{beta, "stripe_key"}, std::pair{acme, "other_key"}}) {
    auto revealed = view.Reveal(key);
    ASSERT_FALSE(revealed) << key;
    EXPECT_EQ(revealed.error().code(), ErrorCode::kIntegrity);
    EXPECT_NE(revealed.error().message().find("bound to a different row"), std::string::npos);
    EXPECT_EQ(revealed.error().message().find("sk_acme"), std::string::npos);
  }
  // Global envelope planted in an org row (and org envelope in the global row).
  ASSERT_TRUE(beta.Set(Write("stripe_key", ConfigType::kSecret, "sk_beta")));
  ForgeStoredValue(beta.scope(), "stripe_key", global_env, global_kid);
  EXPECT_EQ(beta.Reveal("stripe_key").error().code(), ErrorCode::kIntegrity);
  ForgeStoredValue(Scope::Global(), "stripe_key", acme_env, acme_kid);
  EXPECT_EQ(global.Reveal("stripe_key").error().code(), ErrorCode::kIntegrity);
  // The original rows still decrypt.
  EXPECT_EQ(RevealString(acme, "stripe_key"), "sk_acme");
}

TEST_F(ConfigServiceTest, TamperedEnvelopesAreRejectedWithTypedErrors) {
  const auto acme = Org(NewOrg("Acme"));
  ASSERT_TRUE(acme.Set(Write("k", ConfigType::kSecret, "sk_tamper")));
  const auto [env, kid] = StoredValue(acme.scope(), "k");

  std::string flipped = env;
  flipped[flipped.size() - 10] = flipped[flipped.size() - 10] == 'A' ? 'B' : 'A';
  ForgeStoredValue(acme.scope(), "k", flipped, kid);
  EXPECT_EQ(acme.Reveal("k").error().code(), ErrorCode::kIntegrity);

  std::string unknown_key = env;
  unknown_key.replace(4, 16, "0123456789abcdef");
  ForgeStoredValue(acme.scope(), "k", unknown_key, "0123456789abcdef");
  auto r = acme.Reveal("k");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kKeyMismatch);
  EXPECT_NE(r.error().message().find("0123456789abcdef"), std::string::npos);

  ForgeStoredValue(acme.scope(), "k", "plaintext-not-an-envelope", kid);
  EXPECT_EQ(acme.Reveal("k").error().code(), ErrorCode::kCorrupt);
}

TEST_F(ConfigServiceTest, WrongKeyIsRefusedAndChangesNothing) {
  const auto acme = Org(NewOrg("Acme"));
  ASSERT_TRUE(acme.Set(Write("k", ConfigType::kSecret, "sk_keep_me")));
  const std::string org_id = acme.scope().org_id();
  Close();
  const std::string db = dir_.path() + "/bifrost.db";
  const std::string before = testing::ReadFileOrEmpty(db);
  ASSERT_FALSE(before.empty());

  auto wrong = OpenInstallation(dir_.path(), RingFor(kOtherSecretKey), clock_);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), ErrorCode::kKeyMismatch);
  const std::string right_id = RingFor(kSecretKey).primary().id();
  const std::string wrong_id = RingFor(kOtherSecretKey).primary().id();
  // The organization's data key is what the wrong key cannot unwrap.
  EXPECT_EQ(wrong.error().message(),
            "none of the 1 data keys can be unwrapped with the configured keys: they are "
            "wrapped by master key(s) " +
                right_id + ", the configured key(s) are " + wrong_id +
                " (BIFROST_SECRET_KEY, BIFROST_SECRET_KEY_PREVIOUS); set BIFROST_SECRET_KEY to "
                "this database's key, or list it in BIFROST_SECRET_KEY_PREVIOUS");
  EXPECT_EQ(testing::ReadFileOrEmpty(db), before) << "a refused open modified the database";

  Reopen(RingFor(kSecretKey));
  EXPECT_EQ(RevealString(Org(org_id), "k"), "sk_keep_me");
}

// A database without data keys yet is checked against its key checks alone.
TEST_F(ConfigServiceTest, WrongKeyOnADatabaseWithoutSecretsIsAKeyCheckMismatch) {
  ASSERT_TRUE(svc().ForGlobal().Set(Write("plain", ConfigType::kString, "v")));
  Close();
  auto wrong = OpenInstallation(dir_.path(), RingFor(kOtherSecretKey), clock_);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), ErrorCode::kKeyMismatch);
  EXPECT_EQ(wrong.error().message(),
            "BIFROST_SECRET_KEY does not match this database: it was created with key " +
                RingFor(kSecretKey).primary().id() + ", the configured key is " +
                RingFor(kOtherSecretKey).primary().id());
}

// A new primary master key next to the previous one: values stay where they are (they are
// sealed by data keys), the database learns the new key, and the previous key stays needed
// until the data keys are re-wrapped under the new one.
TEST_F(ConfigServiceTest, NewPrimaryWithPreviousKeyKeepsValuesReadable) {
  const auto acme = Org(NewOrg("Acme"));
  ASSERT_TRUE(acme.Set(Write("old", ConfigType::kSecret, "sealed-before")));
  const std::string org_id = acme.scope().org_id();
  const std::string data_key = ActiveKeyId(acme.scope());
  Reopen(RingFor(kOtherSecretKey, {kSecretKey}));
  const auto view = Org(org_id);
  EXPECT_EQ(RevealString(view, "old"), "sealed-before");
  ASSERT_TRUE(view.Set(Write("new", ConfigType::kSecret, "sealed-after")));
  // A master rotation does not touch values: both are under the org's data key.
  EXPECT_EQ(StoredValue(view.scope(), "new").second, data_key);
  EXPECT_EQ(StoredValue(view.scope(), "old").second, data_key);
  {
    auto txn = inst_.store->Begin(store::TxnMode::kRead);
    ASSERT_TRUE(txn);
    auto checks = (*txn)->ListKeyChecks();
    ASSERT_TRUE(checks);
    EXPECT_EQ(checks->size(), 2u);
  }
  const std::string new_id = inst_.barrier->keyring().primary().id();
  const std::string old_id = RingFor(kSecretKey).primary().id();
  Close();

  // The new key alone cannot unwrap Acme's data key yet: refused, naming Acme.
  auto early = OpenInstallation(dir_.path(), RingFor(kOtherSecretKey), clock_);
  ASSERT_FALSE(early);
  EXPECT_EQ(early.error().code(), ErrorCode::kKeyMismatch);
  EXPECT_NE(early.error().message().find("organization Acme (" + org_id + ")"), std::string::npos)
      << early.error().message();
  EXPECT_NE(early.error().message().find(old_id), std::string::npos);

  // Re-wrap every data key under the new primary (what `bifrost keys rotate` does).
  Reopen(RingFor(kOtherSecretKey, {kSecretKey}));
  {
    auto txn = inst_.store->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    auto rows = (*txn)->ListDataKeys("", 100);
    ASSERT_TRUE(rows);
    for (const auto& row : *rows) {
      if (row.master_key_id == new_id) continue;
      auto rewrapped = inst_.barrier->Rewrap(row);
      ASSERT_TRUE(rewrapped) << rewrapped.error().ToString();
      ASSERT_TRUE((*txn)->RewrapDataKey(row.id, rewrapped->wrapped, rewrapped->master_key_id,
                                        row.master_key_id));
    }
    ASSERT_TRUE((*txn)->Commit());
  }
  Reopen(RingFor(kOtherSecretKey));
  EXPECT_EQ(RevealString(Org(org_id), "old"), "sealed-before");
  EXPECT_EQ(RevealString(Org(org_id), "new"), "sealed-after");
}

TEST_F(ConfigServiceTest, CreatingAnOrganizationMakesItsDataKey) {
  const std::string id = NewOrg("Acme");
  const auto keys = ScopeKeys(Scope::Org(id));
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].purpose, "config");
  EXPECT_EQ(keys[0].state, "active");
  EXPECT_EQ(keys[0].master_key_id, inst_.barrier->keyring().primary().id());
  EXPECT_EQ(keys[0].created_at, clock_.NowMicros());
  // The first secret uses it; no second key is made.
  ASSERT_TRUE(Org(id).Set(Write("k", ConfigType::kSecret, "v")));
  EXPECT_EQ(StoredValue(Scope::Org(id), "k").second, keys[0].id);
  EXPECT_EQ(ScopeKeys(Scope::Org(id)).size(), 1u);

  // A refused creation leaves no key behind.
  auto dup = svc().CreateOrganization("Acme");
  ASSERT_FALSE(dup);
  auto hook_fails = svc().CreateOrganization(
      "Beta", std::nullopt, [](store::Txn&, const Organization&) -> Status {
        return Fail(ErrorCode::kUnavailable, "audit sink down");
      });
  ASSERT_FALSE(hook_fails);
  auto txn = inst_.store->Begin(store::TxnMode::kRead);
  ASSERT_TRUE(txn);
  auto all = (*txn)->ListDataKeys("", 100);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 1u);
}

TEST_F(ConfigServiceTest, SecretsOfTwoOrganizationsUseDifferentKeys) {
  const auto acme = Org(NewOrg("Acme"));
  const auto beta = Org(NewOrg("Beta"));
  const auto global = svc().ForGlobal();
  ASSERT_TRUE(acme.Set(Write("k", ConfigType::kSecret, "a")));
  ASSERT_TRUE(beta.Set(Write("k", ConfigType::kSecret, "b")));
  ASSERT_TRUE(global.Set(Write("k", ConfigType::kSecret, "g")));
  const auto acme_key = StoredValue(acme.scope(), "k").second;
  const auto beta_key = StoredValue(beta.scope(), "k").second;
  const auto global_key = StoredValue(Scope::Global(), "k").second;
  ASSERT_TRUE(acme_key && beta_key && global_key);
  EXPECT_NE(*acme_key, *beta_key);
  EXPECT_NE(*acme_key, *global_key);
  EXPECT_NE(*beta_key, *global_key);
  EXPECT_EQ(*acme_key, ActiveKeyId(acme.scope()));
  EXPECT_EQ(*beta_key, ActiveKeyId(beta.scope()));
  EXPECT_EQ(*global_key, ActiveKeyId(Scope::Global()));
  EXPECT_EQ(RevealString(acme, "k"), "a");
  EXPECT_EQ(RevealString(beta, "k"), "b");
}

// Deleting an organization destroys its data key: its secrets cannot be revealed again, not
// even after an old copy of the organization and its rows is written back.
TEST_F(ConfigServiceTest, DeletingAnOrganizationShredsItsSecrets) {
  const std::string acme_id = NewOrg("Acme");
  const std::string beta_id = NewOrg("Beta");
  ASSERT_TRUE(Org(acme_id).Set(Write("db_password", ConfigType::kSecret, "hunter2")));
  ASSERT_TRUE(Org(beta_id).Set(Write("db_password", ConfigType::kSecret, "beta-secret")));
  const auto [envelope, key_id] = StoredValue(Scope::Org(acme_id), "db_password");
  ASSERT_TRUE(key_id.has_value());
  EXPECT_EQ(RevealString(Org(acme_id), "db_password"), "hunter2");  // its key is in memory

  ASSERT_TRUE(svc().DeleteOrganization(acme_id));
  EXPECT_TRUE(ScopeKeys(Scope::Org(acme_id)).empty());
  EXPECT_EQ(ScopeKeys(Scope::Org(beta_id)).size(), 1u);

  // The restore, as someone with write access to the database (not the key) could do it.
  {
    auto txn = inst_.store->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    ASSERT_TRUE((*txn)->InsertOrg({.id = acme_id, .name = "Acme", .created_at = 1}));
    ASSERT_TRUE((*txn)->InsertConfig({.scope = Scope::Org(acme_id),
                                      .key = "db_password",
                                      .type = "secret",
                                      .value = envelope,
                                      .key_id = key_id,
                                      .description = "",
                                      .created_at = 1,
                                      .updated_at = 1,
                                      .updated_by = "restore",
                                      .version = 0}));
    ASSERT_TRUE((*txn)->Commit());
  }
  for (int pass = 0; pass < 2; ++pass) {
    SCOPED_TRACE(pass == 0 ? "same process" : "after a restart");
    auto revealed = Org(acme_id).Reveal("db_password");
    ASSERT_FALSE(revealed);
    EXPECT_EQ(revealed.error().code(), ErrorCode::kKeyMismatch);
    EXPECT_NE(revealed.error().message().find("no longer has (its organization was deleted)"),
              std::string::npos)
        << revealed.error().message();
    EXPECT_EQ(revealed.error().message().find("hunter2"), std::string::npos);
    Reopen(RingFor(kSecretKey));  // the orphaned row does not block the start
  }
  EXPECT_EQ(RevealString(Org(beta_id), "db_password"), "beta-secret");
}

// Crypto-shredding reaches the files while the store stays open, as a running server keeps
// it: after the deletion neither bifrost.db nor its WAL holds the organization's wrapped data
// key or its sealed values (secure_delete zeroes them in the newest page version, and the
// deletion checkpoints the older versions out of the WAL and truncates it).
TEST_F(ConfigServiceTest, DeletingAnOrganizationLeavesNoWrappedKeyInTheFiles) {
  const std::string acme_id = NewOrg("Acme");
  const std::string beta_id = NewOrg("Beta");
  ASSERT_TRUE(Org(acme_id).Set(Write("db_password", ConfigType::kSecret, "hunter2")));
  ASSERT_TRUE(Org(beta_id).Set(Write("db_password", ConfigType::kSecret, "beta-secret")));
  const auto acme_keys = ScopeKeys(Scope::Org(acme_id));
  const auto beta_keys = ScopeKeys(Scope::Org(beta_id));
  ASSERT_EQ(acme_keys.size(), 1u);
  ASSERT_EQ(beta_keys.size(), 1u);
  const std::string wrapped = acme_keys[0].wrapped;
  const std::string envelope = StoredValue(Scope::Org(acme_id), "db_password").first;
  const std::string db_path = dir_.path() + "/bifrost.db";
  const std::string wal_path = db_path + "-wal";
  EXPECT_NE(testing::ReadFileOrEmpty(wal_path).find(wrapped), std::string::npos)
      << "the scan cannot see the key before the deletion";

  std::vector<Error> failures;
  ASSERT_TRUE(
      svc().DeleteOrganization(acme_id, {}, [&](const Error& e) { failures.push_back(e); }));
  EXPECT_TRUE(failures.empty()) << failures.front().ToString();

  const std::string db = testing::ReadFileOrEmpty(db_path);
  const std::string wal = testing::ReadFileOrEmpty(wal_path);
  ASSERT_FALSE(db.empty());
  for (const auto& [name, bytes] :
       {std::pair{"bifrost.db", db}, std::pair{"bifrost.db-wal", wal}}) {
    EXPECT_EQ(bytes.find(wrapped), std::string::npos) << name;
    EXPECT_EQ(bytes.find(envelope), std::string::npos) << name;
  }
  // What was not deleted is still there for the scan to see.
  EXPECT_NE((db + wal).find(beta_keys[0].wrapped), std::string::npos);
  EXPECT_EQ(RevealString(Org(beta_id), "db_password"), "beta-secret");
}

// If the files cannot be released right away (a reader still uses the WAL), the organization
// is deleted all the same: the deletion succeeds and the failure is reported to the caller.
TEST_F(ConfigServiceTest, DeletionSucceedsWhenTheWalCannotBeReleased) {
  testing::TempDir dir;
  auto store = store::SqliteStore::Open({.data_dir = dir.path(), .busy_timeout_ms = 50});
  ASSERT_TRUE(store) << store.error().ToString();
  auto barrier = barrier::Barrier::Open(RingFor(kSecretKey), **store, clock_);
  ASSERT_TRUE(barrier) << barrier.error().ToString();
  {
    ConfigService service(**store, *barrier, clock_);
    auto org = service.CreateOrganization("Acme");
    ASSERT_TRUE(org) << org.error().ToString();
    auto reader = (*store)->Begin(store::TxnMode::kRead);  // e.g. a reveal in progress
    ASSERT_TRUE(reader);

    std::vector<Error> failures;
    auto deleted =
        service.DeleteOrganization(org->id, {}, [&](const Error& e) { failures.push_back(e); });
    ASSERT_TRUE(deleted) << deleted.error().ToString();
    ASSERT_EQ(failures.size(), 1u);
    EXPECT_EQ(failures[0].code(), ErrorCode::kUnavailable) << failures[0].ToString();
    EXPECT_NE(failures[0].message().find("-wal"), std::string::npos) << failures[0].ToString();
    auto gone = service.GetOrganization(org->id);
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().code(), ErrorCode::kNotFound);
    reader->reset();
    // Without a handler the failure is not reported, and the deletion still succeeds.
    auto other = service.CreateOrganization("Beta");
    ASSERT_TRUE(other);
    auto held = (*store)->Begin(store::TxnMode::kRead);
    ASSERT_TRUE(held);
    EXPECT_TRUE(service.DeleteOrganization(other->id));
  }
  ASSERT_TRUE((*store)->ReleaseDeletedData());
}

// A rotation by another process replaces an org's active key after this process cached the
// old one: the next write is stored under the new key all the same.
TEST_F(ConfigServiceTest, WritesAfterAKeyRotationUseTheNewKey) {
  const auto acme = Org(NewOrg("Acme"));
  ASSERT_TRUE(acme.Set(Write("k", ConfigType::kSecret, "v1")));
  const std::string old_key = ActiveKeyId(acme.scope());
  std::string new_key;
  {
    auto rotator = barrier::Barrier::Open(RingFor(kSecretKey), *inst_.store, clock_);
    ASSERT_TRUE(rotator) << rotator.error().ToString();
    auto txn = inst_.store->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    ASSERT_TRUE((*txn)->SetDataKeyState(old_key, "retired"));
    auto created = rotator->CreateDataKey(**txn, acme.scope(), "active");
    ASSERT_TRUE(created) << created.error().ToString();
    new_key = created->id;
    ASSERT_TRUE((*txn)->Commit());
  }
  ASSERT_TRUE(acme.Set(Write("k", ConfigType::kSecret, "v2")));
  ASSERT_TRUE(acme.Set(Write("k2", ConfigType::kSecret, "other")));
  EXPECT_EQ(StoredValue(acme.scope(), "k").second, new_key);
  EXPECT_EQ(StoredValue(acme.scope(), "k2").second, new_key);
  EXPECT_EQ(RevealString(acme, "k"), "v2");
  EXPECT_EQ(RevealString(acme, "k2"), "other");
}

// The canary: a secret's plaintext appears in no database file, while a non-secret value
// written the same way does (so the scan can see what is there).
TEST_F(ConfigServiceTest, SecretPlaintextNeverReachesTheDatabaseFiles) {
  const std::string canary = "CANARY-sk_live_7f3a9c1e5b2d4680-CANARY";
  const std::string visible = "VISIBLE-plain-string-5e8d1c2b-VISIBLE";
  const auto acme = Org(NewOrg("Acme"));
  ASSERT_TRUE(acme.Set(Write("api_key", ConfigType::kSecret, canary)));
  ASSERT_TRUE(svc().ForGlobal().Set(Write("global_key", ConfigType::kSecret, canary)));
  ASSERT_TRUE(acme.Set(Write("plain", ConfigType::kString, visible)));
  // Overwrite and delete too: old versions must not linger in clear either.
  ASSERT_TRUE(acme.Set(Write("api_key", ConfigType::kSecret, canary + "-v2")));
  ASSERT_TRUE(acme.Set(Write("to_delete", ConfigType::kSecret, canary)));
  ASSERT_TRUE(acme.Delete("to_delete"));
  EXPECT_EQ(RevealString(acme, "api_key"), canary + "-v2");

  auto scan = [&](const std::string& label) {
    std::string all;
    std::vector<std::string> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
      files.push_back(entry.path().filename().string());
      all += testing::ReadFileOrEmpty(entry.path().string());
    }
    EXPECT_EQ(all.find("CANARY"), std::string::npos) << label;
    EXPECT_NE(all.find(visible), std::string::npos) << label << ": the scan cannot see data";
    return files;
  };
  // While open, the latest writes sit in the WAL.
  const auto open_files = scan("while open");
  EXPECT_NE(std::find(open_files.begin(), open_files.end(), "bifrost.db-wal"), open_files.end());
  Close();
  scan("after close");
}

}  // namespace
}  // namespace bifrost::config
