#include "crypto/keyring.h"

#include <gtest/gtest.h>

namespace bifrost::crypto {
namespace {

constexpr std::int64_t kNow = 1'700'000'000;

FernetKey NewKey() {
  auto key = FernetKey::Generate();
  EXPECT_TRUE(key);
  return *key;
}

TEST(Keyring, EncryptsWithPrimaryDecryptsWithAnyAndSaysWhich) {
  const FernetKey old_key = NewKey();
  const FernetKey new_key = NewKey();
  auto old_ring = Keyring::Create(old_key);
  ASSERT_TRUE(old_ring);
  auto sealed_old = old_ring->Encrypt("written before rotation", kNow);
  ASSERT_TRUE(sealed_old);
  EXPECT_EQ(sealed_old->key_id, old_key.id());

  auto ring = Keyring::Create(new_key, {old_key});
  ASSERT_TRUE(ring);
  EXPECT_EQ(ring->primary().id(), new_key.id());
  auto sealed_new = ring->Encrypt("written after rotation", kNow);
  ASSERT_TRUE(sealed_new);
  EXPECT_EQ(sealed_new->key_id, new_key.id());

  auto a = ring->Decrypt(sealed_old->token, {.now_seconds = kNow});
  ASSERT_TRUE(a);
  EXPECT_EQ(a->plaintext.view(), "written before rotation");
  EXPECT_EQ(a->key_id, old_key.id());
  auto b = ring->Decrypt(sealed_new->token, {.now_seconds = kNow});
  ASSERT_TRUE(b);
  EXPECT_EQ(b->plaintext.view(), "written after rotation");
  EXPECT_EQ(b->key_id, new_key.id());
  // The old ring cannot read what the new primary wrote.
  auto c = old_ring->Decrypt(sealed_new->token, {.now_seconds = kNow});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error(), FernetError::kBadMac);
}

TEST(Keyring, FindById) {
  const FernetKey a = NewKey();
  const FernetKey b = NewKey();
  auto ring = Keyring::Create(a, {b});
  ASSERT_TRUE(ring);
  ASSERT_NE(ring->Find(b.id()), nullptr);
  EXPECT_EQ(ring->Find(b.id())->id(), b.id());
  EXPECT_EQ(ring->Find("0000000000000000"), nullptr);
  EXPECT_EQ(ring->keys().size(), 2u);
}

TEST(Keyring, RejectsDuplicateKeys) {
  const FernetKey a = NewKey();
  auto ring = Keyring::Create(a, {a});
  ASSERT_FALSE(ring);
  EXPECT_EQ(ring.error().code(), ErrorCode::kInvalidArgument);
}

TEST(Keyring, StructuralErrorsReportedAsSuch) {
  auto ring = Keyring::Create(NewKey(), {NewKey()});
  ASSERT_TRUE(ring);
  auto opened = ring->Decrypt("%%%", {.now_seconds = kNow});
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error(), FernetError::kMalformedBase64);
}

}  // namespace
}  // namespace bifrost::crypto
