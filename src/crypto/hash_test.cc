#include "crypto/hash.h"

#include <gtest/gtest.h>

#include <string>

namespace bifrost::crypto {
namespace {

// FIPS 180-2 appendix B and the empty-string digest.
TEST(Sha256Hex, KnownVectors) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256Hex, HashesEveryByteIncludingNul) {
  const std::string with_nul("a\0b", 3);
  EXPECT_EQ(Sha256Hex(with_nul).size(), 64u);
  EXPECT_NE(Sha256Hex(with_nul), Sha256Hex("a"));
  EXPECT_NE(Sha256Hex(with_nul), Sha256Hex("ab"));
  // A million 'a's (FIPS 180-2 B.3): more than one block, and more than any buffer size.
  EXPECT_EQ(Sha256Hex(std::string(1'000'000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Hex, IsLowerCaseHex) {
  const std::string hex = Sha256Hex("bft_token");
  ASSERT_EQ(hex.size(), 64u);
  for (const char c : hex) {
    EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << hex;
  }
}

}  // namespace
}  // namespace bifrost::crypto
