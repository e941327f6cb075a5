#include "crypto/fernet.h"

#include <gtest/gtest.h>

#include <random>

#include "common/base64.h"
#include "crypto/fernet_testing.h"

namespace bifrost::crypto {
namespace {

constexpr std::int64_t kNow = 1'700'000'000;

FernetKey TestKey() {
  auto key = FernetKey::FromBase64("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=");
  EXPECT_TRUE(key);
  return *key;
}

TEST(Fernet, RoundTripsManySizes) {
  const FernetKey key = TestKey();
  for (std::size_t n : {0u, 1u, 15u, 16u, 17u, 31u, 32u, 1000u, 65536u}) {
    const std::string plaintext(n, 'x');
    auto token = key.Encrypt(plaintext, kNow);
    ASSERT_TRUE(token);
    auto opened = key.Decrypt(*token, {.now_seconds = kNow});
    ASSERT_TRUE(opened) << n;
    EXPECT_EQ(opened->view(), plaintext);
  }
}

TEST(Fernet, FreshIvEveryTime) {
  const FernetKey key = TestKey();
  auto a = key.Encrypt("same", kNow);
  auto b = key.Encrypt("same", kNow);
  ASSERT_TRUE(a && b);
  EXPECT_NE(*a, *b);
}

TEST(Fernet, WrongKeyIsBadMac) {
  auto other = FernetKey::Generate();
  ASSERT_TRUE(other);
  auto token = TestKey().Encrypt("secret", kNow);
  ASSERT_TRUE(token);
  auto opened = other->Decrypt(*token, {.now_seconds = kNow});
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error(), FernetError::kBadMac);
}

TEST(Fernet, TtlIsOptionalAndEnforcedWhenGiven) {
  const FernetKey key = TestKey();
  auto token = key.Encrypt("v", kNow);
  ASSERT_TRUE(token);
  // Without a TTL any age is fine (values at rest never expire).
  EXPECT_TRUE(key.Decrypt(*token, {.now_seconds = kNow + 10'000'000}));
  EXPECT_TRUE(key.Decrypt(*token, {.now_seconds = kNow + 100, .ttl_seconds = 100}));
  auto expired = key.Decrypt(*token, {.now_seconds = kNow + 101, .ttl_seconds = 100});
  ASSERT_FALSE(expired);
  EXPECT_EQ(expired.error(), FernetError::kExpired);
  // Up to 60 s in the future is tolerated, 61 s is not.
  EXPECT_TRUE(key.Decrypt(*token, {.now_seconds = kNow - 60, .ttl_seconds = 100}));
  auto future = key.Decrypt(*token, {.now_seconds = kNow - 61, .ttl_seconds = 100});
  ASSERT_FALSE(future);
  EXPECT_EQ(future.error(), FernetError::kFromTheFuture);
}

TEST(Fernet, UnknownVersionRejected) {
  const FernetKey key = TestKey();
  auto token = key.Encrypt("v", kNow);
  ASSERT_TRUE(token);
  auto raw = Base64UrlDecode(*token);
  ASSERT_TRUE(raw);
  (*raw)[0] = static_cast<char>(0x81);
  auto opened = key.Decrypt(Base64UrlEncode(*raw), {.now_seconds = kNow});
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error(), FernetError::kUnknownVersion);
}

TEST(Fernet, EmptyAndGarbageRejectedWithTheRightError) {
  const FernetKey key = TestKey();
  const std::pair<std::string_view, FernetError> cases[] = {
      {"", FernetError::kTooShort},
      {"=", FernetError::kMalformedBase64},
      {"gA==", FernetError::kTooShort},
      {"gAAAAA", FernetError::kMalformedBase64},
      {"not base64!", FernetError::kMalformedBase64},
      {"gAAAAAAdwJ6w\n", FernetError::kMalformedBase64},
      {"AAAAAAAAAAAA", FernetError::kUnknownVersion},
  };
  for (const auto& [bad, error] : cases) {
    auto opened = key.Decrypt(bad, {.now_seconds = kNow});
    ASSERT_FALSE(opened) << bad;
    EXPECT_EQ(opened.error(), error) << bad;
  }
}

// A validly signed token whose timestamp does not fit in a signed 64-bit integer is refused
// as from the future when a TTL is enforced (no overflow), and accepted without one.
TEST(Fernet, HugeTimestampDoesNotOverflow) {
  const FernetKey key = TestKey();
  auto token = EncryptWithFixedIvForTesting(key, "x", -1, std::array<std::uint8_t, 16>{});
  ASSERT_TRUE(token);  // -1 is stored as 0xFFFFFFFFFFFFFFFF
  auto with_ttl = key.Decrypt(*token, {.now_seconds = kNow, .ttl_seconds = 60});
  ASSERT_FALSE(with_ttl);
  EXPECT_EQ(with_ttl.error(), FernetError::kFromTheFuture);
  EXPECT_TRUE(key.Decrypt(*token, {.now_seconds = kNow}));
}

// Every single-bit flip of a valid token is rejected, and no mutation crashes or returns
// partial plaintext. Run under ASan in the sanitizer build.
TEST(Fernet, EveryBitFlipRejected) {
  const FernetKey key = TestKey();
  auto token = key.Encrypt("a secret worth protecting", kNow);
  ASSERT_TRUE(token);
  auto raw = Base64UrlDecode(*token);
  ASSERT_TRUE(raw);
  for (std::size_t i = 0; i < raw->size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string mutated = *raw;
      mutated[i] = static_cast<char>(mutated[i] ^ (1 << bit));
      EXPECT_FALSE(key.Decrypt(Base64UrlEncode(mutated), {.now_seconds = kNow}))
          << "byte " << i << " bit " << bit;
    }
  }
}

TEST(Fernet, RandomMutationsNeverCrash) {
  const FernetKey key = TestKey();
  auto token = key.Encrypt("payload", kNow);
  ASSERT_TRUE(token);
  std::mt19937 rng(12345);
  const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/%";
  int rejected = 0;
  for (int round = 0; round < 5000; ++round) {
    std::string mutated = *token;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t pos = rng() % mutated.size();
      switch (rng() % 3) {
        case 0: mutated[pos] = alphabet[rng() % alphabet.size()]; break;
        case 1: mutated.erase(pos, 1 + rng() % 8); break;
        default: mutated.insert(pos, 1, alphabet[rng() % alphabet.size()]); break;
      }
      if (mutated.empty()) mutated.push_back('A');
    }
    if (mutated == *token) continue;
    EXPECT_FALSE(key.Decrypt(mutated, {.now_seconds = kNow})) << mutated;
    ++rejected;
  }
  EXPECT_GT(rejected, 4000);
}

TEST(Fernet, KeyFromBase64Validation) {
  EXPECT_FALSE(FernetKey::FromBase64(""));
  EXPECT_FALSE(FernetKey::FromBase64("c2hvcnQ="));
  // Standard (not URL-safe) alphabet is refused.
  EXPECT_FALSE(FernetKey::FromBase64("cw/0x689RpI+jtRR7oE8h/eQsKImvJapLeSbXpwF4e4="));
  auto key = FernetKey::FromBase64("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=");
  ASSERT_TRUE(key);
  EXPECT_EQ(key->ToBase64().view(), "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=");
  EXPECT_FALSE(FernetKey::FromBytes(std::vector<std::uint8_t>(31)));
}

TEST(Fernet, IdAndCheckValueAreStableDistinctAndNotTheKey) {
  const FernetKey a = TestKey();
  const FernetKey a2 = TestKey();
  auto b = FernetKey::Generate();
  ASSERT_TRUE(b);
  EXPECT_EQ(a.id(), a2.id());
  EXPECT_EQ(a.CheckValue(), a2.CheckValue());
  EXPECT_NE(a.id(), b->id());
  EXPECT_NE(a.CheckValue(), b->CheckValue());
  EXPECT_EQ(a.id().size(), 16u);
  EXPECT_EQ(a.CheckValue().find(a.id()), std::string::npos);
  EXPECT_EQ(a.CheckValue().find(a.ToBase64().view().substr(0, 20)), std::string::npos);
}

TEST(Fernet, ErrorMessagesExist) {
  for (auto e : {FernetError::kMalformedBase64, FernetError::kTooShort,
                 FernetError::kUnknownVersion, FernetError::kBadCiphertextLength,
                 FernetError::kBadMac, FernetError::kExpired, FernetError::kFromTheFuture,
                 FernetError::kBadPadding, FernetError::kCryptoFailure}) {
    EXPECT_FALSE(FernetErrorMessage(e).empty());
  }
}

TEST(Fernet, LegacyUnwrap) {
  const FernetKey key = TestKey();
  auto token = key.Encrypt("legacy", kNow);
  ASSERT_TRUE(token);
  const std::string stored = Base64UrlEncode(*token);
  auto inner = UnwrapLegacyBifrostValue(stored);
  ASSERT_TRUE(inner);
  EXPECT_EQ(*inner, *token);
  EXPECT_FALSE(UnwrapLegacyBifrostValue("not*base64"));
}

}  // namespace
}  // namespace bifrost::crypto
