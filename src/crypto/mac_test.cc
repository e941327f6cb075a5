#include "crypto/mac.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <numeric>
#include <string>
#include <vector>

#include "common/base64.h"
#include "common/text.h"
#include "crypto/key_derivation.h"

namespace bifrost::crypto {
namespace {

std::vector<std::uint8_t> Bytes0To31() {
  std::vector<std::uint8_t> key(32);
  std::iota(key.begin(), key.end(), std::uint8_t{0});
  return key;
}

MacKey KeyOf(const std::vector<std::uint8_t>& bytes) {
  auto key = MacKey::FromBytes(bytes);
  if (!key) {
    ADD_FAILURE() << key.error().ToString();
    std::abort();
  }
  return std::move(*key);
}

// Expected values computed with Python:
//   hmac.new(bytes(range(32)), b"what do ya want for nothing?", hashlib.sha256).hexdigest()
TEST(MacKey, KnownHmacSha256Vectors) {
  const MacKey key = KeyOf(Bytes0To31());
  EXPECT_EQ(key.MacHex({"what do ya want for nothing?"}),
            "099805f4ac310786968565c098db515cc50862b420ae31e20238312344bed36a");
  EXPECT_EQ(key.MacHex({}), "d38b42096d80f45f826b44a9d5607de72496a415d3f4a1a8c88e3bb9da8dc1cb");
  EXPECT_EQ(key.MacHex({""}), key.MacHex({}));
}

TEST(MacKey, PartsAreConcatenated) {
  const MacKey key = KeyOf(Bytes0To31());
  EXPECT_EQ(key.MacHex({"what do ", "ya want", "", " for nothing?"}),
            "099805f4ac310786968565c098db515cc50862b420ae31e20238312344bed36a");
  const auto raw = key.Mac({"what do ya want for nothing?"});
  EXPECT_EQ(HexEncode(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size())),
            key.MacHex({"what do ya want for nothing?"}));
}

TEST(MacKey, RejectsWrongKeySizes) {
  for (const std::size_t size : {0u, 16u, 31u, 33u, 64u}) {
    const std::vector<std::uint8_t> bytes(size, 7);
    auto key = MacKey::FromBytes(bytes);
    ASSERT_FALSE(key.has_value()) << size;
    EXPECT_EQ(key.error().code(), ErrorCode::kInvalidArgument);
  }
}

TEST(MacKey, IdIsStableAndDependsOnTheKey) {
  const MacKey key = KeyOf(Bytes0To31());
  // hmac.new(bytes(range(32)), b"bifrost mac key id v1", hashlib.sha256).hexdigest()[:16]
  EXPECT_EQ(key.id(), "ed18267695658e2e");
  EXPECT_EQ(KeyOf(Bytes0To31()).id(), key.id());
  auto other = Bytes0To31();
  other[31] ^= 1;
  EXPECT_NE(KeyOf(other).id(), key.id());
  // The id is the first 8 bytes of the mac of its label.
  EXPECT_EQ(key.MacHex({"bifrost mac key id v1"}).substr(0, 16), key.id());
}

TEST(MacKey, VerifyHexAcceptsOnlyTheExactMac) {
  const MacKey key = KeyOf(Bytes0To31());
  const std::string good = key.MacHex({"a", "b"});
  EXPECT_TRUE(key.VerifyHex({"a", "b"}, good));
  EXPECT_TRUE(key.VerifyHex({"ab"}, good));
  EXPECT_FALSE(key.VerifyHex({"a", "c"}, good));
  for (std::size_t i = 0; i < good.size(); ++i) {
    std::string altered = good;
    altered[i] = altered[i] == '0' ? '1' : '0';
    EXPECT_FALSE(key.VerifyHex({"a", "b"}, altered)) << i;
  }
  EXPECT_FALSE(key.VerifyHex({"a", "b"}, good.substr(0, 63)));
  EXPECT_FALSE(key.VerifyHex({"a", "b"}, good.substr(0, 32)));
  EXPECT_FALSE(key.VerifyHex({"a", "b"}, ""));
  EXPECT_FALSE(key.VerifyHex({"a", "b"}, good + "0"));
  std::string upper = good;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (upper != good) {
    EXPECT_FALSE(key.VerifyHex({"a", "b"}, upper));
  }
}

TEST(MacKey, ExportBytesGivesBackTheSameKey) {
  const std::vector<std::uint8_t> bytes = Bytes0To31();
  const MacKey key = KeyOf(bytes);
  const SecureBuffer exported = key.ExportBytes();
  ASSERT_EQ(exported.size(), kMacKeySize);
  EXPECT_TRUE(std::equal(exported.bytes().begin(), exported.bytes().end(), bytes.begin()));
  // Round trip: the same id and the same macs.
  auto again = MacKey::FromBytes(exported.bytes());
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->id(), key.id());
  EXPECT_EQ(again->MacHex({"abc"}), key.MacHex({"abc"}));
  // A copy: the key keeps working after the exported bytes are wiped.
  SecureBuffer wiped = key.ExportBytes();
  wiped.Clear();
  EXPECT_EQ(key.MacHex({"what do ya want for nothing?"}),
            "099805f4ac310786968565c098db515cc50862b420ae31e20238312344bed36a");
}

// The audit key of the master key bytes 0..31, computed with Python (HKDF by hand from hmac):
// salt "bifrost_audit_v1", info "bifrost-audit-chain-mac".
TEST(DeriveAuditKey, KnownAnswer) {
  auto master = FernetKey::FromBytes(Bytes0To31());
  ASSERT_TRUE(master.has_value());
  auto audit = DeriveAuditKey(*master);
  ASSERT_TRUE(audit.has_value()) << audit.error().ToString();
  EXPECT_EQ(audit->id(), "bcc7505879e40729");
  EXPECT_EQ(audit->MacHex({"abc"}),
            "2a8c6cd3f45b6cff306f10edd6351ff71b1d9d46d75bf3c776bec805e51a3089");

  // The same thing through the library's own HKDF.
  auto bytes = HkdfSha256(Bytes0To31(), "bifrost_audit_v1", "bifrost-audit-chain-mac", 32);
  ASSERT_TRUE(bytes.has_value());
  EXPECT_EQ(HexEncode(bytes->view()),
            "aca634670ca4483a0eb4e2ff4e8ad25009aaa0fbf66a37748ad82dbee0c813cf");
}

TEST(DeriveAuditKey, DiffersFromTheMasterKeyMaterial) {
  auto master =
      DeriveMasterKey("an operator secret of at least thirty-two characters", "BIFROST_SECRET_KEY");
  ASSERT_TRUE(master.has_value()) << master.error().ToString();
  auto audit = DeriveAuditKey(*master);
  ASSERT_TRUE(audit.has_value());

  // A MacKey made from the master key's own bytes (what DeriveMasterKey produced) is not the
  // audit key.
  const SecureBuffer text = master->ToBase64();
  const auto decoded = Base64UrlDecode(text.view());
  ASSERT_TRUE(decoded.has_value());
  const std::vector<std::uint8_t> raw(decoded->begin(), decoded->end());
  ASSERT_EQ(raw.size(), 32u);
  EXPECT_NE(KeyOf(raw).id(), audit->id());
  EXPECT_NE(KeyOf(raw).MacHex({"x"}), audit->MacHex({"x"}));
  EXPECT_NE(master->id(), audit->id());

  // Deterministic, and different for another master key.
  auto again = DeriveAuditKey(*master);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->id(), audit->id());
  auto other_master = FernetKey::Generate();
  ASSERT_TRUE(other_master.has_value());
  auto other = DeriveAuditKey(*other_master);
  ASSERT_TRUE(other.has_value());
  EXPECT_NE(other->id(), audit->id());
}

}  // namespace
}  // namespace bifrost::crypto
