#include "crypto/key_derivation.h"

#include <gtest/gtest.h>

#include "common/text.h"

namespace bifrost::crypto {
namespace {

std::string Hex(const SecureBuffer& b) { return HexEncode(b.view()); }

std::vector<std::uint8_t> Bytes(std::initializer_list<int> values) {
  std::vector<std::uint8_t> out;
  for (int v : values) out.push_back(static_cast<std::uint8_t>(v));
  return out;
}

// RFC 5869, appendix A, test cases 1 and 3 (SHA-256).
TEST(Hkdf, Rfc5869TestCase1) {
  const std::vector<std::uint8_t> ikm(22, 0x0b);
  const auto salt = Bytes({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  const auto info = Bytes({0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9});
  auto okm = HkdfSha256(ikm, {reinterpret_cast<const char*>(salt.data()), salt.size()},
                        {reinterpret_cast<const char*>(info.data()), info.size()}, 42);
  ASSERT_TRUE(okm);
  EXPECT_EQ(Hex(*okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST(Hkdf, Rfc5869TestCase3EmptySaltAndInfo) {
  const std::vector<std::uint8_t> ikm(22, 0x0b);
  auto okm = HkdfSha256(ikm, "", "", 42);
  ASSERT_TRUE(okm);
  EXPECT_EQ(Hex(*okm),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

// Expected keys computed with Python's cryptography HKDF using the Python Bifrost's salt
// and info; the interop test checks the same thing live against Python.
TEST(DeriveMasterKey, MatchesPythonBifrost) {
  auto key = DeriveMasterKey("correct-horse-battery-staple-0123456789", "BIFROST_SECRET_KEY");
  ASSERT_TRUE(key) << key.error().ToString();
  EXPECT_EQ(key->ToBase64().view(), "-KAqgcpEGCdjUpxucPmQYOaM5YRh_TqMe3kfmDesRN4=");
}

TEST(DeriveMasterKey, CountsCharactersNotBytes) {
  // 33 Cyrillic characters: 60+ bytes, and long enough.
  auto key = DeriveMasterKey("ключ-ключ-ключ-ключ-ключ-ключ-клю", "BIFROST_SECRET_KEY");
  ASSERT_TRUE(key) << key.error().ToString();
  EXPECT_EQ(key->ToBase64().view(), "R0xWflMBKczvI39F3dDpF4IuQC_VbBhnyoMN2fPzyUU=");
  // 31 two-byte characters (62 bytes) is still too short.
  auto short_key = DeriveMasterKey("ключключключключключключключклю", "BIFROST_SECRET_KEY");
  ASSERT_FALSE(short_key);
}

TEST(DeriveMasterKey, RefusesShortKeysWithoutEchoingThem) {
  const std::string secret = "tooShortSecretValue-31-chars!!!";
  ASSERT_EQ(secret.size(), 31u);
  auto key = DeriveMasterKey(secret, "BIFROST_SECRET_KEY");
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(key.error().message(),
            "BIFROST_SECRET_KEY is too short: it has 31 characters and must have at least 32");
  EXPECT_EQ(key.error().message().find(secret), std::string::npos);
  EXPECT_TRUE(DeriveMasterKey(secret + "x", "BIFROST_SECRET_KEY"));
}

TEST(DeriveMasterKey, RefusesInvalidUtf8) {
  auto key = DeriveMasterKey(std::string(40, '\xff'), "BIFROST_SECRET_KEY_FILE");
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().message(), "BIFROST_SECRET_KEY_FILE is not valid UTF-8");
}

// RFC 7914 section 11 (PBKDF2-HMAC-SHA256 vectors) and the common "password"/"salt" vectors.
TEST(Pbkdf2, KnownAnswers) {
  const std::string_view password = "password";
  auto one = Pbkdf2HmacSha256(
      {reinterpret_cast<const std::uint8_t*>(password.data()), password.size()}, "salt", 1, 32);
  ASSERT_TRUE(one);
  EXPECT_EQ(Hex(*one), "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b");
  auto many = Pbkdf2HmacSha256(
      {reinterpret_cast<const std::uint8_t*>(password.data()), password.size()}, "salt", 4096, 32);
  ASSERT_TRUE(many);
  EXPECT_EQ(Hex(*many), "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a");
  const std::string_view passwd = "passwd";
  auto longer = Pbkdf2HmacSha256(
      {reinterpret_cast<const std::uint8_t*>(passwd.data()), passwd.size()}, "salt", 1, 64);
  ASSERT_TRUE(longer);
  EXPECT_EQ(Hex(*longer),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
            "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783");
}

TEST(Pbkdf2, RefusesZeroIterations) {
  auto out = Pbkdf2HmacSha256({}, "salt", 0, 32);
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code(), ErrorCode::kInvalidArgument);
}

// Expected keys computed with Python's cryptography (HKDF and PBKDF2HMAC, as the current and
// older Python Bifrost derive them).
TEST(DeriveLegacyKeys, MatchPythonBifrost) {
  struct Case {
    std::string secret, hkdf, pbkdf2;
  };
  for (const Case& c : {
           Case{"correct-horse-battery-staple-0123456789",
                "-KAqgcpEGCdjUpxucPmQYOaM5YRh_TqMe3kfmDesRN4=",
                "fWCpbMXsJik-VJW-yLVNUYiy5_4rvasquGnLJGK-ic0="},
           Case{"short", "7xyUla9sQPNGDa61w9x9lkf7CnraRcqOwQCm6YJdaKs=",
                "_BPQIY9ZgqTFYjsPWZQB_1Lvlzof1TUGbC9v2vzpb98="},
           Case{"ключ", "rLhTqCkNWn9c2jePfhe56lAPdX1fxM2sbNUxm_5eYwM=",
                "HzNSsaVYjX0YctysXJVV4kbU3-VVvxX7SHyZexUF58E="},
       }) {
    auto hkdf = DeriveLegacyHkdfKey(c.secret, "the source key");
    ASSERT_TRUE(hkdf) << hkdf.error().ToString();
    EXPECT_EQ(hkdf->ToBase64().view(), c.hkdf) << c.secret;
    auto pbkdf2 = DeriveLegacyPbkdf2Key(c.secret, "the source key");
    ASSERT_TRUE(pbkdf2) << pbkdf2.error().ToString();
    EXPECT_EQ(pbkdf2->ToBase64().view(), c.pbkdf2) << c.secret;
  }
}

// The legacy HKDF derivation is DeriveMasterKey without the length rule, not another KDF.
TEST(DeriveLegacyKeys, HkdfAgreesWithDeriveMasterKey) {
  const std::string secret = "correct-horse-battery-staple-0123456789";
  auto legacy = DeriveLegacyHkdfKey(secret, "the source key");
  auto current = DeriveMasterKey(secret, "BIFROST_SECRET_KEY");
  ASSERT_TRUE(legacy && current);
  EXPECT_EQ(legacy->id(), current->id());
  EXPECT_FALSE(DeriveMasterKey("short", "BIFROST_SECRET_KEY"));
  EXPECT_TRUE(DeriveLegacyHkdfKey("short", "the source key"));
}

TEST(DeriveLegacyKeys, RefuseAnEmptySecret) {
  for (auto derive : {&DeriveLegacyHkdfKey, &DeriveLegacyPbkdf2Key}) {
    auto key = derive("", "the source key file 'old.key'");
    ASSERT_FALSE(key);
    EXPECT_EQ(key.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(key.error().message(), "the source key file 'old.key' is empty");
  }
}

}  // namespace
}  // namespace bifrost::crypto
