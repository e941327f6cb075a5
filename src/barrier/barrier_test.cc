#include "barrier/barrier.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <set>
#include <thread>

#include "crypto/key_derivation.h"
#include "store/sqlite/sqlite_store.h"
#include "tests/support/status_matchers.h"
#include "tests/support/subprocess.h"

namespace bifrost::barrier {
namespace {

using store::Scope;

constexpr std::string_view kSecret = "barrier-test-secret-key-0123456789";
constexpr std::string_view kNewSecret = "barrier-test-the-next-secret-key-0123";
constexpr std::string_view kOtherSecret = "barrier-test-another-installation-0123";

const std::string kOrgA = "0b7e5c1e-6a43-4c1a-9d57-3f1f2b0a0001";
const std::string kOrgB = "0b7e5c1e-6a43-4c1a-9d57-3f1f2b0a0002";
const std::string kOrgC = "0b7e5c1e-6a43-4c1a-9d57-3f1f2b0a0003";

crypto::FernetKey Master(std::string_view secret) {
  auto key = crypto::DeriveMasterKey(secret, "BIFROST_SECRET_KEY");
  EXPECT_TRUE(key);
  return *key;
}

// `secret` primary, then `previous` (decrypt only).
crypto::Keyring Ring(std::string_view secret, std::vector<std::string_view> previous = {}) {
  std::vector<crypto::FernetKey> others;
  for (const auto p : previous) others.push_back(Master(p));
  auto ring = crypto::Keyring::Create(Master(secret), std::move(others));
  EXPECT_TRUE(ring);
  return *ring;
}

// A value sealed directly by a master key, as Bifrost wrote it before data keys: the
// documented envelope and row binding (docs/storage-format.md), built here independently.
std::string LegacyEnvelope(const crypto::FernetKey& master, const Scope& scope,
                           std::string_view key, std::string_view value) {
  std::string bound;
  bound += '\x01';
  bound += scope.is_global() ? 'g' : 'o';
  const std::string id = scope.is_global() ? "" : scope.org_id();
  for (const std::string_view part : {std::string_view(id), key}) {
    bound += static_cast<char>(part.size() >> 8);
    bound += static_cast<char>(part.size() & 0xFF);
    bound += part;
  }
  bound += value;
  auto token = master.Encrypt(bound, 1'700'000'000);
  EXPECT_TRUE(token);
  std::string envelope = "bf1:";
  envelope += master.id();
  envelope += ':';
  envelope += *token;
  return envelope;
}

class BarrierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = store::SqliteStore::Open({.data_dir = dir_.path()});
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
  }

  Barrier OpenBarrier(crypto::Keyring ring, OpenOptions options = {}) {
    auto barrier = Barrier::Open(std::move(ring), *store_, clock_, options);
    if (!barrier) {
      ADD_FAILURE() << barrier.error().ToString();
      std::abort();  // no Barrier to return; the failure above says why
    }
    return std::move(*barrier);
  }
  Barrier OpenBarrier() { return OpenBarrier(Ring(kSecret)); }

  void AddOrg(const std::string& id, const std::string& name) {
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    ASSERT_OK((*txn)->InsertOrg({.id = id, .name = name, .created_at = clock_.NowMicros()}));
    ASSERT_OK((*txn)->Commit());
  }

  // Stores `envelope` as the secret (scope, key), replacing any row there.
  void PutRow(const Scope& scope, const std::string& key, const std::string& envelope) {
    auto id = Barrier::EnvelopeKeyId(envelope);
    ASSERT_TRUE(id);
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    store::ConfigRow row{.scope = scope,
                         .key = key,
                         .type = "secret",
                         .value = envelope,
                         .key_id = *id,
                         .description = "",
                         .created_at = 1,
                         .updated_at = 1,
                         .updated_by = "test",
                         .version = 0};
    auto existing = (*txn)->GetConfig(scope, key);
    ASSERT_TRUE(existing);
    if (*existing) {
      ASSERT_OK((*txn)->UpdateConfig(row, (*existing)->version));
    } else {
      ASSERT_OK((*txn)->InsertConfig(row));
    }
    ASSERT_OK((*txn)->Commit());
  }

  // Opens an envelope through a read transaction of its own, as a reveal does.
  Result<crypto::SecureBuffer> OpenValue(const Barrier& barrier, const Scope& scope,
                                         std::string_view key, std::string_view envelope) {
    BIFROST_ASSIGN_OR_RETURN(auto txn, store_->Begin(store::TxnMode::kRead));
    return barrier.Open(*txn, scope, key, envelope);
  }

  std::vector<store::DataKeyRow> DataKeys() {
    auto txn = store_->Begin(store::TxnMode::kRead);
    EXPECT_TRUE(txn);
    auto rows = (*txn)->ListDataKeys("", 10'000);
    EXPECT_TRUE(rows);
    return *rows;
  }

  std::vector<store::DataKeyRow> ScopeKeys(const Scope& scope) {
    auto txn = store_->Begin(store::TxnMode::kRead);
    EXPECT_TRUE(txn);
    auto rows = (*txn)->ListScopeDataKeys(scope);
    EXPECT_TRUE(rows);
    return *rows;
  }

  std::vector<store::KeyCheckRow> KeyChecks() {
    auto txn = store_->Begin(store::TxnMode::kRead);
    EXPECT_TRUE(txn);
    auto rows = (*txn)->ListKeyChecks();
    EXPECT_TRUE(rows);
    return *rows;
  }

  testing::TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<store::SqliteStore> store_;
};

// ---- Sealing with data keys

TEST_F(BarrierTest, ValuesAreSealedByTheScopeDataKeyNotTheMasterKey) {
  const Barrier barrier = OpenBarrier();
  EXPECT_TRUE(DataKeys().empty());  // made on first use
  auto sealed = barrier.Seal(Scope::Global(), "api_key", "sk_live_xxxxx");
  ASSERT_TRUE(sealed) << sealed.error().ToString();
  const std::string& master_id = barrier.keyring().primary().id();
  EXPECT_NE(sealed->key_id, master_id);
  EXPECT_TRUE(sealed->envelope.starts_with("bf1:" + sealed->key_id + ":gAAAAA"));
  EXPECT_EQ(sealed->envelope.find("sk_live"), std::string::npos);
  auto key_id = Barrier::EnvelopeKeyId(sealed->envelope);
  ASSERT_TRUE(key_id);
  EXPECT_EQ(*key_id, sealed->key_id);

  const auto keys = DataKeys();
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].id, sealed->key_id);
  EXPECT_EQ(keys[0].purpose, "config");
  EXPECT_TRUE(keys[0].scope.is_global());
  EXPECT_EQ(keys[0].state, "active");
  EXPECT_EQ(keys[0].master_key_id, master_id);
  EXPECT_EQ(keys[0].created_at, clock_.NowMicros());

  auto opened = OpenValue(barrier, Scope::Global(), "api_key", sealed->envelope);
  ASSERT_TRUE(opened) << opened.error().ToString();
  EXPECT_EQ(opened->view(), "sk_live_xxxxx");

  // The next value reuses the key; a barrier that never saw it reads it from the store.
  auto second = barrier.Seal(Scope::Global(), "other", "v2");
  ASSERT_TRUE(second);
  EXPECT_EQ(second->key_id, sealed->key_id);
  EXPECT_EQ(DataKeys().size(), 1u);
  const Barrier fresh = OpenBarrier();
  auto again = OpenValue(fresh, Scope::Global(), "api_key", sealed->envelope);
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(again->view(), "sk_live_xxxxx");
  auto third = fresh.Seal(Scope::Global(), "third", "v3");
  ASSERT_TRUE(third);
  EXPECT_EQ(third->key_id, sealed->key_id);
}

// The wrapped form is the documented one: a Fernet token under the master key of
// 0x01 | 'c' | kind | u16 len | org id | the 32 key bytes, whose id is the row's id.
TEST_F(BarrierTest, WrappedKeyFollowsTheDocumentedFormat) {
  AddOrg(kOrgA, "acme");
  const Barrier barrier = OpenBarrier();
  ASSERT_TRUE(barrier.Seal(Scope::Org(kOrgA), "k", "v"));
  const auto keys = ScopeKeys(Scope::Org(kOrgA));
  ASSERT_EQ(keys.size(), 1u);
  auto plain = barrier.keyring().primary().Decrypt(keys[0].wrapped, {});
  ASSERT_TRUE(plain);
  std::string header =
      "\x01"
      "co";
  header += static_cast<char>(0);
  header += static_cast<char>(kOrgA.size());
  header += kOrgA;
  ASSERT_EQ(plain->size(), header.size() + 32);
  EXPECT_EQ(plain->view().substr(0, header.size()), header);
  auto key = crypto::FernetKey::FromBytes(plain->bytes().subspan(header.size()));
  ASSERT_TRUE(key);
  EXPECT_EQ(key->id(), keys[0].id);
}

TEST_F(BarrierTest, EachScopeHasItsOwnDataKey) {
  AddOrg(kOrgA, "acme");
  AddOrg(kOrgB, "globex");
  const Barrier barrier = OpenBarrier();
  std::set<std::string> ids;
  for (const Scope& scope : {Scope::Global(), Scope::Org(kOrgA), Scope::Org(kOrgB)}) {
    auto sealed = barrier.Seal(scope, "k", "v");
    ASSERT_TRUE(sealed) << sealed.error().ToString();
    ids.insert(sealed->key_id);
    const auto keys = ScopeKeys(scope);
    ASSERT_EQ(keys.size(), 1u);
    EXPECT_EQ(keys[0].id, sealed->key_id);
  }
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids.count(barrier.keyring().primary().id()), 0u);

  // An organization that does not exist gets no key, and no value.
  auto missing = barrier.Seal(Scope::Org(kOrgC), "k", "v");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kFailedPrecondition) << missing.error().ToString();
  EXPECT_EQ(DataKeys().size(), 3u);
}

// Many writers sealing at once for a scope that has no key yet end up with one key.
TEST_F(BarrierTest, ConcurrentFirstSealsMakeOneKey) {
  AddOrg(kOrgA, "acme");
  const Barrier barrier = OpenBarrier();
  std::vector<std::thread> threads;
  std::vector<std::string> key_ids(8);
  std::atomic<int> failures{0};
  for (std::size_t i = 0; i < key_ids.size(); ++i) {
    threads.emplace_back([&, i] {
      auto sealed = barrier.Seal(Scope::Org(kOrgA), "k", "v");
      if (!sealed) {
        ++failures;
        return;
      }
      key_ids[i] = sealed->key_id;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(std::set<std::string>(key_ids.begin(), key_ids.end()).size(), 1u);
  EXPECT_EQ(DataKeys().size(), 1u);
}

TEST_F(BarrierTest, EnvelopeKeyIdRejectsMalformedEnvelopes) {
  for (std::string_view bad : {"", "bf1:", "bf2:0123456789abcdef:gAAA", "bf1:0123456789abcde:x",
                               "bf1:0123456789ABCDEF:x", "bf1:0123456789abcdefx", "plain"}) {
    auto id = Barrier::EnvelopeKeyId(bad);
    ASSERT_FALSE(id) << bad;
    EXPECT_EQ(id.error().code(), ErrorCode::kCorrupt);
  }
}

// The length-prefixed binding cannot be confused by moving bytes between scope and key.
// Shown with values sealed directly by the master key, where only the binding header stands
// between a value and another row (a data key adds its own scope check on top).
TEST_F(BarrierTest, BindingIsUnambiguous) {
  for (const std::string id : {"ab", "a", "abc", "global"}) AddOrg(id, "org " + id);
  const Barrier barrier = OpenBarrier();
  const std::string envelope =
      LegacyEnvelope(barrier.keyring().primary(), Scope::Org("ab"), "c", "v");
  auto opened = OpenValue(barrier, Scope::Org("ab"), "c", envelope);
  ASSERT_TRUE(opened) << opened.error().ToString();
  EXPECT_EQ(opened->view(), "v");
  for (const auto& [scope, key] :
       {std::pair{Scope::Org("a"), "bc"}, std::pair{Scope::Org("abc"), ""},
        std::pair{Scope::Global(), "c"}, std::pair{Scope::Org("ab"), "C"},
        std::pair{Scope::Org("global"), "c"}}) {
    auto wrong = OpenValue(barrier, scope, key, envelope);
    ASSERT_FALSE(wrong) << scope.name() << "/" << key;
    EXPECT_EQ(wrong.error().code(), ErrorCode::kIntegrity);
    EXPECT_NE(wrong.error().message().find("bound to a different row"), std::string::npos);
  }
  // The same with a data key: within its scope the header decides, across scopes the key.
  auto sealed = barrier.Seal(Scope::Org("ab"), "c", "v");
  ASSERT_TRUE(sealed);
  for (const auto& [scope, key] :
       {std::pair{Scope::Org("a"), "bc"}, std::pair{Scope::Org("ab"), "C"},
        std::pair{Scope::Global(), "c"}}) {
    auto wrong = OpenValue(barrier, scope, key, sealed->envelope);
    ASSERT_FALSE(wrong) << scope.name() << "/" << key;
    EXPECT_EQ(wrong.error().code(), ErrorCode::kIntegrity);
    EXPECT_NE(wrong.error().message().find("bound to a different row"), std::string::npos);
  }
}

// The global scope and an organization whose id happens to read "global" are different rows.
TEST_F(BarrierTest, GlobalScopeIsNotAnOrgNamedGlobal) {
  AddOrg("global", "confusing");
  const Barrier barrier = OpenBarrier();
  auto sealed = barrier.Seal(Scope::Global(), "k", "v");
  ASSERT_TRUE(sealed);
  EXPECT_TRUE(OpenValue(barrier, Scope::Global(), "k", sealed->envelope));
  auto opened = OpenValue(barrier, Scope::Org("global"), "k", sealed->envelope);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code(), ErrorCode::kIntegrity);
  auto org_sealed = barrier.Seal(Scope::Org("global"), "k", "v");
  ASSERT_TRUE(org_sealed);
  EXPECT_NE(org_sealed->key_id, sealed->key_id);
  EXPECT_EQ(OpenValue(barrier, Scope::Global(), "k", org_sealed->envelope).error().code(),
            ErrorCode::kIntegrity);
}

TEST_F(BarrierTest, SealWithRefusesAKeyOfAnotherScope) {
  AddOrg(kOrgA, "acme");
  const Barrier barrier = OpenBarrier();
  auto txn = store_->Begin(store::TxnMode::kWrite);
  ASSERT_TRUE(txn);
  auto key = barrier.ActiveKey(**txn, Scope::Org(kOrgA));
  ASSERT_TRUE(key) << key.error().ToString();
  auto sealed = barrier.SealWith(*key, Scope::Global(), "k", "v");
  ASSERT_FALSE(sealed);
  EXPECT_EQ(sealed.error().code(), ErrorCode::kInvalidArgument);
}

// ---- Values from before data keys, and crypto-shredding

TEST_F(BarrierTest, LegacyValueSealedByTheMasterKeyStillOpens) {
  AddOrg(kOrgA, "acme");
  {
    // A database from before data keys: a key check and values under the master key.
    const Barrier first = OpenBarrier();
    PutRow(Scope::Org(kOrgA), "db_password",
           LegacyEnvelope(first.keyring().primary(), Scope::Org(kOrgA), "db_password", "hunter2"));
    PutRow(Scope::Global(), "api_key",
           LegacyEnvelope(first.keyring().primary(), Scope::Global(), "api_key", "sk_old"));
  }
  const Barrier barrier = OpenBarrier();  // the survey accepts values of a configured key
  auto txn = store_->Begin(store::TxnMode::kRead);
  ASSERT_TRUE(txn);
  auto row = (*txn)->GetConfig(Scope::Org(kOrgA), "db_password");
  ASSERT_TRUE(row && *row);
  EXPECT_EQ((*row)->key_id, barrier.keyring().primary().id());
  auto opened = barrier.Open(**txn, Scope::Org(kOrgA), "db_password", (*row)->value);
  ASSERT_TRUE(opened) << opened.error().ToString();
  EXPECT_EQ(opened->view(), "hunter2");
  auto global = (*txn)->GetConfig(Scope::Global(), "api_key");
  ASSERT_TRUE(global && *global);
  auto global_opened = barrier.Open(**txn, Scope::Global(), "api_key", (*global)->value);
  ASSERT_TRUE(global_opened) << global_opened.error().ToString();
  EXPECT_EQ(global_opened->view(), "sk_old");
  EXPECT_TRUE(DataKeys().empty());  // reading makes no key
}

// Deleting an organization deletes its data keys: its values cannot be opened again, even
// when an old copy of the row (and of the organization) is put back.
TEST_F(BarrierTest, DeletedOrgValuesCannotBeOpenedEvenWhenTheRowIsRestored) {
  AddOrg(kOrgA, "acme");
  const Barrier barrier = OpenBarrier();
  auto sealed = barrier.Seal(Scope::Org(kOrgA), "db_password", "hunter2");
  ASSERT_TRUE(sealed);
  PutRow(Scope::Org(kOrgA), "db_password", sealed->envelope);
  ASSERT_TRUE(OpenValue(barrier, Scope::Org(kOrgA), "db_password", sealed->envelope));
  {
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    ASSERT_OK((*txn)->DeleteOrg(kOrgA));
    ASSERT_OK((*txn)->Commit());
  }
  barrier.Forget(Scope::Org(kOrgA));
  EXPECT_TRUE(DataKeys().empty());

  // The attacker's restore: the organization and the old row, byte for byte.
  AddOrg(kOrgA, "acme");
  PutRow(Scope::Org(kOrgA), "db_password", sealed->envelope);
  const Barrier fresh = OpenBarrier();
  for (const Barrier* b : {&barrier, &fresh}) {
    auto opened = OpenValue(*b, Scope::Org(kOrgA), "db_password", sealed->envelope);
    ASSERT_FALSE(opened);
    EXPECT_EQ(opened.error().code(), ErrorCode::kKeyMismatch);
    EXPECT_EQ(opened.error().message(),
              "stored secret of config 'db_password' in organization " + kOrgA +
                  " was sealed by key " + sealed->key_id +
                  ", which this database no longer has (its organization was deleted) and "
                  "which is not configured");
  }
  // The re-created organization gets a new key of its own.
  auto resealed = barrier.Seal(Scope::Org(kOrgA), "db_password", "new");
  ASSERT_TRUE(resealed) << resealed.error().ToString();
  EXPECT_NE(resealed->key_id, sealed->key_id);
  EXPECT_EQ(OpenValue(barrier, Scope::Org(kOrgA), "db_password", resealed->envelope)->view(),
            "new");
}

// Two servers on one database. Server 2 holds org A's data key in memory (it revealed a
// value); server 1 deletes the organization, so only server 1 forgets the key. The
// organization is then re-created with the same id (an import) and an old copy of its row
// restored: server 2 must not open it from memory. A cache hit is used only while the
// caller's transaction still sees the key's row.
TEST_F(BarrierTest, KeyCachedByAnotherServerIsNotUsedAfterItsOrganizationWasDeleted) {
  AddOrg(kOrgA, "acme");
  const Barrier server1 = OpenBarrier();
  const Barrier server2 = OpenBarrier();
  auto sealed = server2.Seal(Scope::Org(kOrgA), "db_password", "hunter2");
  ASSERT_TRUE(sealed) << sealed.error().ToString();
  PutRow(Scope::Org(kOrgA), "db_password", sealed->envelope);
  ASSERT_OK(OpenValue(server2, Scope::Org(kOrgA), "db_password", sealed->envelope));  // cached

  // A reveal on server 2 whose transaction began before the deletion.
  auto before = store_->Begin(store::TxnMode::kRead);
  ASSERT_TRUE(before);

  {
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    ASSERT_OK((*txn)->DeleteOrg(kOrgA));
    ASSERT_OK((*txn)->Commit());
  }
  server1.Forget(Scope::Org(kOrgA));

  // Its snapshot still holds the key's row: it opens, as every read of that snapshot would.
  auto in_old_snapshot = server2.Open(**before, Scope::Org(kOrgA), "db_password", sealed->envelope);
  ASSERT_TRUE(in_old_snapshot) << in_old_snapshot.error().ToString();
  EXPECT_EQ(in_old_snapshot->view(), "hunter2");
  before->reset();

  // The re-creation (with a new data key of its own, as an import makes it) and the restore.
  AddOrg(kOrgA, "acme");
  std::string new_key;
  {
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    auto active = server1.ActiveKey(**txn, Scope::Org(kOrgA));
    ASSERT_TRUE(active) << active.error().ToString();
    new_key = active->id;
    ASSERT_OK((*txn)->Commit());
  }
  ASSERT_NE(new_key, sealed->key_id);
  PutRow(Scope::Org(kOrgA), "db_password", sealed->envelope);

  for (const Barrier* server : {&server2, &server1, &server2}) {
    auto opened = OpenValue(*server, Scope::Org(kOrgA), "db_password", sealed->envelope);
    ASSERT_FALSE(opened);
    EXPECT_EQ(opened.error().code(), ErrorCode::kKeyMismatch);
    EXPECT_EQ(opened.error().message(),
              "stored secret of config 'db_password' in organization " + kOrgA +
                  " was sealed by key " + sealed->key_id +
                  ", which this database no longer has (its organization was deleted) and "
                  "which is not configured");
  }
  // Server 2 dropped the old key as the scope's active one too: new values get the new key.
  auto resealed = server2.Seal(Scope::Org(kOrgA), "db_password", "new");
  ASSERT_TRUE(resealed) << resealed.error().ToString();
  EXPECT_EQ(resealed->key_id, new_key);
  PutRow(Scope::Org(kOrgA), "db_password", resealed->envelope);
  auto reopened = OpenValue(server2, Scope::Org(kOrgA), "db_password", resealed->envelope);
  ASSERT_TRUE(reopened) << reopened.error().ToString();
  EXPECT_EQ(reopened->view(), "new");
}

// A key made in a write transaction that rolled back stays in memory, but opens nothing
// once its row is gone.
TEST_F(BarrierTest, CachedKeyOfARolledBackTransactionOpensNothing) {
  AddOrg(kOrgA, "acme");
  const Barrier barrier = OpenBarrier();
  std::string envelope;
  {
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    auto made = barrier.CreateDataKey(**txn, Scope::Org(kOrgA), "active");
    ASSERT_TRUE(made) << made.error().ToString();
    auto sealed = barrier.SealWith(*made, Scope::Org(kOrgA), "k", "v");
    ASSERT_TRUE(sealed);
    envelope = sealed->envelope;
    // Inside its transaction the key's row exists: the value opens there.
    auto inside = barrier.Open(**txn, Scope::Org(kOrgA), "k", envelope);
    ASSERT_TRUE(inside) << inside.error().ToString();
    EXPECT_EQ(inside->view(), "v");
    // Destroyed without Commit: rolled back.
  }
  auto opened = OpenValue(barrier, Scope::Org(kOrgA), "k", envelope);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code(), ErrorCode::kKeyMismatch);
}

// A wrapped key is bound to its scope: org A's wrapped key put into org B's row does not
// unwrap there, so B's values are not opened with A's key (nor A's with B's row).
TEST_F(BarrierTest, WrappedKeyCopiedToAnotherOrgFailsItsIntegrityCheck) {
  AddOrg(kOrgA, "acme");
  AddOrg(kOrgB, "globex");
  std::string b_envelope;
  {
    const Barrier writer = OpenBarrier();
    ASSERT_TRUE(writer.Seal(Scope::Org(kOrgA), "k", "a-secret"));
    auto b = writer.Seal(Scope::Org(kOrgB), "k", "b-secret");
    ASSERT_TRUE(b);
    b_envelope = b->envelope;
  }
  const auto a_key = ScopeKeys(Scope::Org(kOrgA)).at(0);
  const auto b_key = ScopeKeys(Scope::Org(kOrgB)).at(0);
  {
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    ASSERT_OK(
        (*txn)->RewrapDataKey(b_key.id, a_key.wrapped, a_key.master_key_id, b_key.master_key_id));
    ASSERT_OK((*txn)->Commit());
  }
  const Barrier barrier = OpenBarrier();  // a fresh cache: the key is read from the row
  auto opened = OpenValue(barrier, Scope::Org(kOrgB), "k", b_envelope);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code(), ErrorCode::kIntegrity);
  EXPECT_NE(opened.error().message().find("is bound to another scope"), std::string::npos)
      << opened.error().message();
  EXPECT_EQ(opened.error().message().find(a_key.wrapped), std::string::npos);
  // Re-wrapping checks the binding too.
  auto rewrapped = barrier.Rewrap(ScopeKeys(Scope::Org(kOrgB)).at(0));
  ASSERT_FALSE(rewrapped);
  EXPECT_EQ(rewrapped.error().code(), ErrorCode::kIntegrity);
  // So does writing: B's active key does not unwrap, so nothing is sealed for B.
  auto sealed = barrier.Seal(Scope::Org(kOrgB), "k2", "v");
  ASSERT_FALSE(sealed);
  EXPECT_EQ(sealed.error().code(), ErrorCode::kIntegrity);
}

// Within one scope the key's id binds the wrapped key to its row: a retired key's wrapped
// form copied onto the active key's row is refused.
TEST_F(BarrierTest, WrappedKeysSwappedWithinAScopeAreRefused) {
  AddOrg(kOrgA, "acme");
  std::string envelope;
  {
    const Barrier writer = OpenBarrier();
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    auto retired = writer.CreateDataKey(**txn, Scope::Org(kOrgA), "retired");
    ASSERT_TRUE(retired) << retired.error().ToString();
    auto active = writer.ActiveKey(**txn, Scope::Org(kOrgA));
    ASSERT_TRUE(active);
    EXPECT_NE(active->id, retired->id);
    auto sealed = writer.SealWith(*active, Scope::Org(kOrgA), "k", "v");
    ASSERT_TRUE(sealed);
    envelope = sealed->envelope;
    ASSERT_OK((*txn)->Commit());
  }
  const auto keys = ScopeKeys(Scope::Org(kOrgA));
  ASSERT_EQ(keys.size(), 2u);
  {
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    ASSERT_OK((*txn)->RewrapDataKey(keys[0].id, keys[1].wrapped, keys[1].master_key_id,
                                    keys[0].master_key_id));
    ASSERT_OK((*txn)->Commit());
  }
  const Barrier barrier = OpenBarrier();
  auto opened = OpenValue(barrier, Scope::Org(kOrgA), "k", envelope);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code(), ErrorCode::kIntegrity);
  EXPECT_NE(opened.error().message().find("holds a key with another id"), std::string::npos)
      << opened.error().message();
}

// ---- Writers and rotation

// A rotation replaces the active key between a writer's Seal and its write transaction;
// EnsureCurrent seals again under the new key.
TEST_F(BarrierTest, EnsureCurrentResealsAfterTheActiveKeyChanged) {
  const Barrier barrier = OpenBarrier();
  auto sealed = barrier.Seal(Scope::Global(), "k", "value");
  ASSERT_TRUE(sealed);
  const std::string old_key = sealed->key_id;
  {
    // Nothing changed: the envelope is returned as it was.
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    auto same = barrier.EnsureCurrent(**txn, Scope::Global(), "k", "value", *sealed);
    ASSERT_TRUE(same);
    EXPECT_EQ(same->envelope, sealed->envelope);
    EXPECT_EQ(same->key_id, old_key);
  }
  std::string new_key;
  {
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    ASSERT_OK((*txn)->SetDataKeyState(old_key, "retired"));
    auto created = barrier.CreateDataKey(**txn, Scope::Global(), "active");
    ASSERT_TRUE(created) << created.error().ToString();
    new_key = created->id;
    auto current = barrier.EnsureCurrent(**txn, Scope::Global(), "k", "value", *sealed);
    ASSERT_TRUE(current) << current.error().ToString();
    EXPECT_EQ(current->key_id, new_key);
    EXPECT_NE(current->key_id, old_key);
    EXPECT_TRUE(current->envelope.starts_with("bf1:" + new_key + ":"));
    auto opened = barrier.Open(**txn, Scope::Global(), "k", current->envelope);
    ASSERT_TRUE(opened) << opened.error().ToString();
    EXPECT_EQ(opened->view(), "value");
    ASSERT_OK((*txn)->Commit());
  }
  // Later values use the new key, and the old one still opens what it sealed.
  auto next = barrier.Seal(Scope::Global(), "k2", "v2");
  ASSERT_TRUE(next);
  EXPECT_EQ(next->key_id, new_key);
  EXPECT_EQ(OpenValue(barrier, Scope::Global(), "k", sealed->envelope)->view(), "value");
}

// Another process rotated the key: this barrier's memory is stale until a write transaction
// shows it the new key, after which it seals with that key directly.
TEST_F(BarrierTest, EnsureCurrentLearnsAKeyRotatedByAnotherProcess) {
  AddOrg(kOrgA, "acme");
  const Barrier server = OpenBarrier();
  auto first = server.Seal(Scope::Org(kOrgA), "k", "v1");
  ASSERT_TRUE(first);
  std::string new_key;
  {
    const Barrier rotator = OpenBarrier();
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    ASSERT_OK((*txn)->SetDataKeyState(first->key_id, "retired"));
    auto created = rotator.CreateDataKey(**txn, Scope::Org(kOrgA), "active");
    ASSERT_TRUE(created);
    new_key = created->id;
    ASSERT_OK((*txn)->Commit());
  }
  auto stale = server.Seal(Scope::Org(kOrgA), "k", "v2");
  ASSERT_TRUE(stale);
  EXPECT_EQ(stale->key_id, first->key_id);  // from memory
  {
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    auto current = server.EnsureCurrent(**txn, Scope::Org(kOrgA), "k", "v2", *stale);
    ASSERT_TRUE(current);
    EXPECT_EQ(current->key_id, new_key);
  }
  auto fresh = server.Seal(Scope::Org(kOrgA), "k", "v3");
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->key_id, new_key);
}

// A key made in a transaction that rolls back is never used for later values.
TEST_F(BarrierTest, KeyOfARolledBackTransactionIsNotUsed) {
  const Barrier barrier = OpenBarrier();
  std::string rolled_back;
  {
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    auto key = barrier.ActiveKey(**txn, Scope::Global());
    ASSERT_TRUE(key);
    rolled_back = key->id;
    // Destroyed without Commit.
  }
  EXPECT_TRUE(DataKeys().empty());
  auto sealed = barrier.Seal(Scope::Global(), "k", "v");
  ASSERT_TRUE(sealed);
  EXPECT_NE(sealed->key_id, rolled_back);
  ASSERT_EQ(DataKeys().size(), 1u);
  EXPECT_EQ(DataKeys()[0].id, sealed->key_id);
}

TEST_F(BarrierTest, ActiveKeyFindsOrMakesTheScopesKey) {
  AddOrg(kOrgA, "acme");
  const Barrier barrier = OpenBarrier();
  auto txn = store_->Begin(store::TxnMode::kWrite);
  ASSERT_TRUE(txn);
  auto made = barrier.ActiveKey(**txn, Scope::Org(kOrgA));
  ASSERT_TRUE(made);
  auto found = barrier.ActiveKey(**txn, Scope::Org(kOrgA));
  ASSERT_TRUE(found);
  EXPECT_EQ(found->id, made->id);
  EXPECT_EQ(found->scope, Scope::Org(kOrgA));
  auto bad_state = barrier.CreateDataKey(**txn, Scope::Org(kOrgA), "spare");
  ASSERT_FALSE(bad_state);
  EXPECT_EQ(bad_state.error().code(), ErrorCode::kInvalidArgument);
  // A second active key in one scope is the store's one-active-key rule.
  auto second = barrier.CreateDataKey(**txn, Scope::Org(kOrgA), "active");
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), ErrorCode::kAlreadyExists);
}

// ---- Master key rotation

TEST_F(BarrierTest, RewrapMovesDataKeysUnderANewPrimary) {
  AddOrg(kOrgA, "acme");
  std::string org_envelope;
  std::string global_envelope;
  {
    const Barrier old_ring = OpenBarrier(Ring(kSecret));
    auto org = old_ring.Seal(Scope::Org(kOrgA), "k", "org-value");
    auto global = old_ring.Seal(Scope::Global(), "k", "global-value");
    ASSERT_TRUE(org && global);
    org_envelope = org->envelope;
    global_envelope = global->envelope;
  }
  const std::string old_id = Master(kSecret).id();
  const std::string new_id = Master(kNewSecret).id();
  {
    const Barrier both = OpenBarrier(Ring(kNewSecret, {kSecret}));
    for (const auto& row : DataKeys()) {
      if (row.purpose == "audit") continue;  // stored by this Open, already under new
      EXPECT_EQ(row.master_key_id, old_id);
      auto rewrapped = both.Rewrap(row);
      ASSERT_TRUE(rewrapped) << rewrapped.error().ToString();
      EXPECT_EQ(rewrapped->id, row.id);
      EXPECT_EQ(rewrapped->scope, row.scope);
      EXPECT_EQ(rewrapped->state, row.state);
      EXPECT_EQ(rewrapped->master_key_id, new_id);
      EXPECT_NE(rewrapped->wrapped, row.wrapped);
      auto txn = store_->Begin(store::TxnMode::kWrite);
      ASSERT_TRUE(txn);
      ASSERT_OK((*txn)->RewrapDataKey(row.id, rewrapped->wrapped, rewrapped->master_key_id,
                                      row.master_key_id));
      ASSERT_OK((*txn)->Commit());
    }
  }
  for (const auto& row : DataKeys()) EXPECT_EQ(row.master_key_id, new_id) << row.id;
  // The old master key can go: the new one alone opens every value.
  const Barrier new_only = OpenBarrier(Ring(kNewSecret));
  EXPECT_EQ(OpenValue(new_only, Scope::Org(kOrgA), "k", org_envelope)->view(), "org-value");
  EXPECT_EQ(OpenValue(new_only, Scope::Global(), "k", global_envelope)->view(), "global-value");

  // A key wrapped by a master key the ring does not have cannot be re-wrapped.
  store::DataKeyRow foreign = DataKeys().at(0);
  foreign.master_key_id = old_id;
  auto refused = new_only.Rewrap(foreign);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kKeyMismatch);
  EXPECT_NE(refused.error().message().find(old_id), std::string::npos);
  // Nor a tampered one.
  store::DataKeyRow tampered = DataKeys().at(0);
  tampered.wrapped[tampered.wrapped.size() - 8] ^= 1;
  auto broken = new_only.Rewrap(tampered);
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().code(), ErrorCode::kIntegrity);
}

// ---- Open: key checks

TEST_F(BarrierTest, FirstOpenRecordsTheKeyAndLaterOpensWriteNothing) {
  const Barrier barrier = OpenBarrier();
  const auto checks = KeyChecks();
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_EQ(checks[0].key_id, barrier.keyring().primary().id());
  EXPECT_EQ(checks[0].check_value, barrier.keyring().primary().CheckValue());
  EXPECT_EQ(checks[0].added_at, clock_.NowMicros());
  EXPECT_TRUE(DataKeys().empty());  // a single key has no audit key to keep
  clock_.AdvanceMicros(1000);
  OpenBarrier();
  const auto checks_after = KeyChecks();
  ASSERT_EQ(checks_after.size(), 1u);
  EXPECT_EQ(checks_after[0].added_at, checks[0].added_at);
}

// A recorded key id alone is not enough: the check value must match too.
TEST_F(BarrierTest, MatchingIdWithWrongCheckValueIsAMismatch) {
  const crypto::Keyring ring = Ring(kSecret);
  {
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    ASSERT_TRUE((*txn)->InsertKeyCheck(
        {.key_id = ring.primary().id(), .check_value = "forged-check-value", .added_at = 1}));
    ASSERT_TRUE((*txn)->Commit());
  }
  auto barrier = Barrier::Open(ring, *store_, clock_);
  ASSERT_FALSE(barrier);
  EXPECT_EQ(barrier.error().code(), ErrorCode::kKeyMismatch);
  EXPECT_NE(barrier.error().message().find("does not match this database"), std::string::npos);
}

TEST_F(BarrierTest, SealedRowsWithoutAKeyCheckAreRefused) {
  const crypto::FernetKey master = Master(kSecret);
  PutRow(Scope::Global(), "orphan", LegacyEnvelope(master, Scope::Global(), "orphan", "v"));
  auto barrier = Barrier::Open(Ring(kSecret), *store_, clock_);
  ASSERT_FALSE(barrier);
  EXPECT_EQ(barrier.error().code(), ErrorCode::kCorrupt);
  EXPECT_TRUE(KeyChecks().empty());  // nothing was adopted
}

// Data keys but no key check: as damaged as sealed values without one.
TEST_F(BarrierTest, DataKeysWithoutAKeyCheckAreRefused) {
  {
    const Barrier barrier = OpenBarrier();
    ASSERT_TRUE(barrier.Seal(Scope::Global(), "k", "v"));
  }
  const auto rows = DataKeys();
  ASSERT_EQ(rows.size(), 1u);
  // The store cannot delete key checks, so copy the key alone into another database.
  testing::TempDir other_dir;
  auto other = store::SqliteStore::Open({.data_dir = other_dir.path()});
  ASSERT_TRUE(other);
  {
    auto txn = (*other)->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    ASSERT_OK((*txn)->InsertDataKey(rows[0]));
    ASSERT_OK((*txn)->Commit());
  }
  auto barrier = Barrier::Open(Ring(kSecret), **other, clock_);
  ASSERT_FALSE(barrier);
  EXPECT_EQ(barrier.error().code(), ErrorCode::kCorrupt);
  auto txn = (*other)->Begin(store::TxnMode::kRead);
  ASSERT_TRUE(txn);
  EXPECT_TRUE((*txn)->ListKeyChecks()->empty());
}

// ---- Open: data keys the ring cannot unwrap

TEST_F(BarrierTest, OpenRefusesWhenNoDataKeyCanBeUnwrapped) {
  AddOrg(kOrgA, "acme");
  {
    const Barrier barrier = OpenBarrier(Ring(kSecret));
    ASSERT_TRUE(barrier.Seal(Scope::Org(kOrgA), "k", "v"));
    ASSERT_TRUE(barrier.Seal(Scope::Global(), "k", "v"));
  }
  const auto checks_before = KeyChecks();
  for (const bool read_only : {false, true}) {
    auto barrier =
        Barrier::Open(Ring(kOtherSecret, {kNewSecret}), *store_, clock_, {.read_only = read_only});
    ASSERT_FALSE(barrier);
    EXPECT_EQ(barrier.error().code(), ErrorCode::kKeyMismatch);
    EXPECT_EQ(barrier.error().message(),
              "none of the 2 data keys can be unwrapped with the configured keys: they are "
              "wrapped by master key(s) " +
                  Master(kSecret).id() + ", the configured key(s) are " +
                  Master(kOtherSecret).id() + ", " + Master(kNewSecret).id() +
                  " (BIFROST_SECRET_KEY, BIFROST_SECRET_KEY_PREVIOUS); set BIFROST_SECRET_KEY "
                  "to this database's key, or list it in BIFROST_SECRET_KEY_PREVIOUS");
  }
  // Nothing written: no key check for the wrong key, no audit key for the previous one.
  EXPECT_EQ(KeyChecks().size(), checks_before.size());
  EXPECT_EQ(DataKeys().size(), 2u);
}

TEST_F(BarrierTest, OpenRefusesNamingTheOrganizationsAPreviousKeyIsStillNeededFor) {
  AddOrg(kOrgA, "acme");
  AddOrg(kOrgB, "globex");
  AddOrg(kOrgC, "initech");
  {
    const Barrier old_ring = OpenBarrier(Ring(kSecret));
    ASSERT_TRUE(old_ring.Seal(Scope::Org(kOrgB), "k", "v"));
    ASSERT_TRUE(old_ring.Seal(Scope::Org(kOrgA), "k", "v"));
    ASSERT_TRUE(old_ring.Seal(Scope::Global(), "k", "v"));
  }
  {
    // A new primary, the old one still listed: initech's key is made under the new one.
    const Barrier both = OpenBarrier(Ring(kNewSecret, {kSecret}));
    ASSERT_TRUE(both.Seal(Scope::Org(kOrgC), "k", "v"));
  }
  // The old key removed before `bifrost keys rotate` re-wrapped the others.
  auto barrier = Barrier::Open(Ring(kNewSecret), *store_, clock_);
  ASSERT_FALSE(barrier);
  EXPECT_EQ(barrier.error().code(), ErrorCode::kKeyMismatch);
  const std::string old_id = Master(kSecret).id();
  EXPECT_EQ(barrier.error().message(),
            "a previous master key is still needed but not configured: the global scope, "
            "organizations acme (" +
                kOrgA + "), globex (" + kOrgB +
                ") cannot be read: their data keys are wrapped by master key " + old_id +
                ". List that key in BIFROST_SECRET_KEY_PREVIOUS and run `bifrost keys rotate` "
                "to re-wrap them under the current key before removing it.");
  // With the old key listed again it opens.
  OpenBarrier(Ring(kNewSecret, {kSecret}));
}

TEST_F(BarrierTest, RefusalNamesAtMostTenOrganizations) {
  {
    const Barrier barrier = OpenBarrier();
    ASSERT_TRUE(barrier.Seal(Scope::Global(), "k", "v"));  // one key the ring can read
  }
  {
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    for (int i = 0; i < 12; ++i) {
      std::string id = "0b7e5c1e-6a43-4c1a-9d57-3f1f2b0a01";
      id += static_cast<char>('a' + i / 10);
      id += static_cast<char>('0' + i % 10);
      std::string name = "org-";
      name += static_cast<char>('a' + i);
      ASSERT_OK((*txn)->InsertOrg({.id = id, .name = name, .created_at = 1}));
      // Rows the survey reads without unwrapping: only their master key id matters here.
      std::string key_id = "dk";
      key_id += id.substr(id.size() - 2);
      ASSERT_OK((*txn)->InsertDataKey({.id = key_id,
                                       .purpose = "config",
                                       .scope = Scope::Org(id),
                                       .state = "active",
                                       .wrapped = "gAAAAA-not-read",
                                       .master_key_id = "feedfacefeedface",
                                       .created_at = 1}));
    }
    ASSERT_OK((*txn)->Commit());
  }
  auto barrier = Barrier::Open(Ring(kSecret), *store_, clock_);
  ASSERT_FALSE(barrier);
  const std::string& message = barrier.error().message();
  EXPECT_NE(message.find("organizations org-a (0b7e5c1e-6a43-4c1a-9d57-3f1f2b0a01a0), org-b"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("org-j (0b7e5c1e-6a43-4c1a-9d57-3f1f2b0a01a9) and 2 more cannot be read"),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find("org-k"), std::string::npos) << message;
  EXPECT_NE(message.find("wrapped by master key feedfacefeedface."), std::string::npos) << message;
}

// A value sealed directly by a master key that is not configured blocks the start like a
// data key would: its organization is named.
TEST_F(BarrierTest, RefusalCountsValuesSealedDirectlyByAMissingMasterKey) {
  AddOrg(kOrgA, "acme");
  AddOrg(kOrgB, "globex");
  // A database from before data keys: its key check, and a value under its master key.
  OpenBarrier(Ring(kSecret));
  PutRow(Scope::Org(kOrgA), "legacy",
         LegacyEnvelope(Master(kSecret), Scope::Org(kOrgA), "legacy", "old"));
  {
    const Barrier both = OpenBarrier(Ring(kNewSecret, {kSecret}));
    ASSERT_TRUE(both.Seal(Scope::Org(kOrgB), "k", "v"));
  }
  auto barrier = Barrier::Open(Ring(kNewSecret), *store_, clock_);
  ASSERT_FALSE(barrier);
  EXPECT_EQ(barrier.error().code(), ErrorCode::kKeyMismatch);
  EXPECT_EQ(barrier.error().message(),
            "a previous master key is still needed but not configured: organization acme (" +
                kOrgA +
                ") cannot be read: their data keys are wrapped by, or their values sealed "
                "directly by, master key " +
                Master(kSecret).id() +
                ". List that key in BIFROST_SECRET_KEY_PREVIOUS and run `bifrost keys rotate` "
                "to re-wrap them under the current key before removing it.");
}

// ---- Open: audit keys

TEST_F(BarrierTest, PreviousMasterKeysLeaveTheirAuditKeysWrappedUnderThePrimary) {
  OpenBarrier(Ring(kSecret));
  clock_.AdvanceMicros(5);
  const auto old_audit = crypto::DeriveAuditKey(Master(kSecret));
  const auto new_audit = crypto::DeriveAuditKey(Master(kNewSecret));
  ASSERT_TRUE(old_audit && new_audit);
  {
    const Barrier both = OpenBarrier(Ring(kNewSecret, {kSecret}));
    const auto keys = DataKeys();
    ASSERT_EQ(keys.size(), 1u);
    EXPECT_EQ(keys[0].id, old_audit->id());
    EXPECT_EQ(keys[0].purpose, "audit");
    EXPECT_TRUE(keys[0].scope.is_global());
    EXPECT_EQ(keys[0].state, "retired");
    EXPECT_EQ(keys[0].master_key_id, Master(kNewSecret).id());
    EXPECT_EQ(keys[0].created_at, clock_.NowMicros());
    // Both derived keys, primary first; the stored one adds nothing new.
    auto txn = store_->Begin(store::TxnMode::kRead);
    ASSERT_TRUE(txn);
    auto audit_keys = both.AuditKeys(**txn);
    ASSERT_TRUE(audit_keys) << audit_keys.error().ToString();
    ASSERT_EQ(audit_keys->size(), 2u);
    EXPECT_EQ((*audit_keys)[0].id(), new_audit->id());
    EXPECT_EQ((*audit_keys)[1].id(), old_audit->id());
  }
  OpenBarrier(Ring(kNewSecret, {kSecret}));  // again: not stored twice
  EXPECT_EQ(DataKeys().size(), 1u);

  // Without the old master key its audit key is still there, unwrapped by the new one.
  const Barrier new_only = OpenBarrier(Ring(kNewSecret));
  auto txn = store_->Begin(store::TxnMode::kRead);
  ASSERT_TRUE(txn);
  auto audit_keys = new_only.AuditKeys(**txn);
  ASSERT_TRUE(audit_keys) << audit_keys.error().ToString();
  ASSERT_EQ(audit_keys->size(), 2u);
  EXPECT_EQ((*audit_keys)[0].id(), new_audit->id());
  EXPECT_EQ((*audit_keys)[1].id(), old_audit->id());
  EXPECT_EQ((*audit_keys)[1].MacHex({"record"}), old_audit->MacHex({"record"}));
}

TEST_F(BarrierTest, ReadOnlyOpenWritesNothing) {
  {
    const Barrier fresh = OpenBarrier(Ring(kSecret), {.read_only = true});
    EXPECT_TRUE(KeyChecks().empty());  // a fresh database is not adopted by a check
  }
  OpenBarrier(Ring(kSecret));
  {
    // A new primary and a previous key: neither its key check nor the old audit key.
    const Barrier barrier = OpenBarrier(Ring(kNewSecret, {kSecret}), {.read_only = true});
    EXPECT_EQ(KeyChecks().size(), 1u);
    EXPECT_TRUE(DataKeys().empty());
    auto txn = store_->Begin(store::TxnMode::kRead);
    ASSERT_TRUE(txn);
    auto audit_keys = barrier.AuditKeys(**txn);
    ASSERT_TRUE(audit_keys);
    EXPECT_EQ(audit_keys->size(), 2u);  // derived from the ring all the same
  }
  // A key that does not fit is refused read-only too.
  auto wrong = Barrier::Open(Ring(kOtherSecret), *store_, clock_, {.read_only = true});
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), ErrorCode::kKeyMismatch);
}

// No error message carries a plaintext, a key or a wrapped key.
TEST_F(BarrierTest, ErrorMessagesNeverContainSecretsOrKeys) {
  AddOrg(kOrgA, "acme");
  AddOrg(kOrgB, "globex");
  const std::string canary = "CANARY-plaintext-4e1f";
  const Barrier barrier = OpenBarrier();
  auto a = barrier.Seal(Scope::Org(kOrgA), "k", canary);
  ASSERT_TRUE(a);
  std::vector<Error> errors;
  auto copied = OpenValue(barrier, Scope::Org(kOrgB), "k", a->envelope);
  ASSERT_FALSE(copied);
  errors.push_back(copied.error());
  std::string tampered = a->envelope;
  tampered[tampered.size() - 6] = tampered[tampered.size() - 6] == 'A' ? 'B' : 'A';
  auto broken = OpenValue(barrier, Scope::Org(kOrgA), "k", tampered);
  ASSERT_FALSE(broken);
  errors.push_back(broken.error());
  auto refused = Barrier::Open(Ring(kOtherSecret), *store_, clock_);
  ASSERT_FALSE(refused);
  errors.push_back(refused.error());
  const auto keys = DataKeys();
  ASSERT_EQ(keys.size(), 1u);
  store::DataKeyRow moved = keys[0];
  moved.scope = Scope::Org(kOrgB);
  auto rewrap = barrier.Rewrap(moved);
  ASSERT_FALSE(rewrap);
  errors.push_back(rewrap.error());

  const crypto::SecureBuffer master_text = barrier.keyring().primary().ToBase64();
  for (const Error& error : errors) {
    const std::string& message = error.message();
    EXPECT_EQ(message.find(canary), std::string::npos) << message;
    EXPECT_EQ(message.find("gAAAAA"), std::string::npos) << message;
    EXPECT_EQ(message.find(keys[0].wrapped.substr(10, 20)), std::string::npos) << message;
    EXPECT_EQ(message.find(master_text.view()), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace bifrost::barrier
