#include "barrier/barrier.h"

#include <gtest/gtest.h>

#include "crypto/key_derivation.h"
#include "store/sqlite/sqlite_store.h"
#include "tests/support/subprocess.h"

namespace bifrost::barrier {
namespace {

using store::Scope;

crypto::Keyring Ring(std::string_view secret) {
  auto key = crypto::DeriveMasterKey(secret, "BIFROST_SECRET_KEY");
  EXPECT_TRUE(key);
  auto ring = crypto::Keyring::Create(*key);
  EXPECT_TRUE(ring);
  return *ring;
}

class BarrierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = store::SqliteStore::Open({.data_dir = dir_.path()});
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
  }
  Barrier OpenBarrier(std::string_view secret = "barrier-test-secret-key-0123456789") {
    auto barrier = Barrier::Open(Ring(secret), *store_, clock_);
    EXPECT_TRUE(barrier) << barrier.error().ToString();
    return std::move(*barrier);
  }

  testing::TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<store::SqliteStore> store_;
};

TEST_F(BarrierTest, SealProducesAVersionedEnvelopeNamingTheKey) {
  const Barrier barrier = OpenBarrier();
  auto sealed = barrier.Seal(Scope::Global(), "api_key", "sk_live_xxxxx");
  ASSERT_TRUE(sealed);
  const std::string& id = barrier.keyring().primary().id();
  EXPECT_EQ(sealed->key_id, id);
  EXPECT_TRUE(sealed->envelope.starts_with("bf1:" + id + ":gAAAAA"));
  EXPECT_EQ(sealed->envelope.find("sk_live"), std::string::npos);
  auto key_id = Barrier::EnvelopeKeyId(sealed->envelope);
  ASSERT_TRUE(key_id);
  EXPECT_EQ(*key_id, id);
  auto opened = barrier.Open(Scope::Global(), "api_key", sealed->envelope);
  ASSERT_TRUE(opened);
  EXPECT_EQ(opened->view(), "sk_live_xxxxx");
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
TEST_F(BarrierTest, BindingIsUnambiguous) {
  const Barrier barrier = OpenBarrier();
  auto sealed = barrier.Seal(Scope::Org("ab"), "c", "v");
  ASSERT_TRUE(sealed);
  EXPECT_TRUE(barrier.Open(Scope::Org("ab"), "c", sealed->envelope));
  for (const auto& [scope, key] : {std::pair{Scope::Org("a"), "bc"}, std::pair{Scope::Org("abc"), ""},
                                   std::pair{Scope::Global(), "c"}, std::pair{Scope::Org("ab"), "C"},
                                   std::pair{Scope::Org("global"), "c"}}) {
    auto opened = barrier.Open(scope, key, sealed->envelope);
    ASSERT_FALSE(opened) << scope.name() << "/" << key;
    EXPECT_EQ(opened.error().code(), ErrorCode::kIntegrity);
  }
}

// The global scope and an organization whose id happens to read "global" are different rows.
TEST_F(BarrierTest, GlobalScopeIsNotAnOrgNamedGlobal) {
  const Barrier barrier = OpenBarrier();
  auto sealed = barrier.Seal(Scope::Global(), "k", "v");
  ASSERT_TRUE(sealed);
  EXPECT_TRUE(barrier.Open(Scope::Global(), "k", sealed->envelope));
  auto opened = barrier.Open(Scope::Org("global"), "k", sealed->envelope);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code(), ErrorCode::kIntegrity);
}

TEST_F(BarrierTest, FirstOpenRecordsTheKeyAndLaterOpensWriteNothing) {
  const Barrier barrier = OpenBarrier();
  auto txn = store_->Begin(store::TxnMode::kRead);
  ASSERT_TRUE(txn);
  auto checks = (*txn)->ListKeyChecks();
  ASSERT_TRUE(checks);
  ASSERT_EQ(checks->size(), 1u);
  EXPECT_EQ((*checks)[0].key_id, barrier.keyring().primary().id());
  EXPECT_EQ((*checks)[0].check_value, barrier.keyring().primary().CheckValue());
  EXPECT_EQ((*checks)[0].added_at, clock_.NowMicros());
  txn->reset();
  clock_.AdvanceMicros(1000);
  OpenBarrier();
  auto again = store_->Begin(store::TxnMode::kRead);
  ASSERT_TRUE(again);
  auto checks_after = (*again)->ListKeyChecks();
  ASSERT_TRUE(checks_after);
  ASSERT_EQ(checks_after->size(), 1u);
  EXPECT_EQ((*checks_after)[0].added_at, (*checks)[0].added_at);
}

// A recorded key id alone is not enough: the check value must match too.
TEST_F(BarrierTest, MatchingIdWithWrongCheckValueIsAMismatch) {
  const crypto::Keyring ring = Ring("barrier-test-secret-key-0123456789");
  {
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    ASSERT_TRUE((*txn)->InsertKeyCheck({.key_id = ring.primary().id(),
                                        .check_value = "forged-check-value",
                                        .added_at = 1}));
    ASSERT_TRUE((*txn)->Commit());
  }
  auto barrier = Barrier::Open(ring, *store_, clock_);
  ASSERT_FALSE(barrier);
  EXPECT_EQ(barrier.error().code(), ErrorCode::kKeyMismatch);
}

TEST_F(BarrierTest, SealedRowsWithoutAKeyCheckAreRefused) {
  {
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn);
    store::ConfigRow row{.scope = Scope::Global(),
                         .key = "orphan",
                         .type = "secret",
                         .value = "bf1:0123456789abcdef:gAAAAA",
                         .key_id = "0123456789abcdef",
                         .description = "",
                         .created_at = 1,
                         .updated_at = 1,
                         .updated_by = "test",
                         .version = 0};
    ASSERT_TRUE((*txn)->InsertConfig(row));
    ASSERT_TRUE((*txn)->Commit());
  }
  auto barrier = Barrier::Open(Ring("barrier-test-secret-key-0123456789"), *store_, clock_);
  ASSERT_FALSE(barrier);
  EXPECT_EQ(barrier.error().code(), ErrorCode::kCorrupt);
  auto txn = store_->Begin(store::TxnMode::kRead);
  ASSERT_TRUE(txn);
  EXPECT_TRUE((*txn)->ListKeyChecks()->empty());  // nothing was adopted
}

}  // namespace
}  // namespace bifrost::barrier
