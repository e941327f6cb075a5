// The public Fernet spec vectors (generate.json, verify.json, invalid.json), every one of
// them, with the clock injected from the vector's "now".
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "crypto/fernet.h"
#include "crypto/fernet_testing.h"

namespace bifrost::crypto {
namespace {

using nlohmann::json;

json LoadVectors(const std::string& name) {
  const char* dir = std::getenv("BIFROST_SHARED_DIR");
  const std::string path = std::string(dir ? dir : BIFROST_SHARED_DIR) + "/fernet-spec/" + name;
  std::ifstream in(path);
  if (!in) ADD_FAILURE() << "cannot open Fernet vectors at " << path;
  std::stringstream text;
  text << in.rdbuf();
  return json::parse(text.str());
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
std::int64_t DaysFromCivil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// "1985-10-26T01:20:01-07:00" -> Unix seconds.
std::int64_t ParseRfc3339(const std::string& s) {
  int y, mo, d, h, mi, se, oh, om;
  char sign;
  EXPECT_EQ(std::sscanf(s.c_str(), "%d-%d-%dT%d:%d:%d%c%d:%d", &y, &mo, &d, &h, &mi, &se, &sign,
                        &oh, &om),
            9)
      << s;
  const std::int64_t offset = (sign == '-' ? -1 : 1) * (oh * 3600 + om * 60);
  return DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 +
         h * 3600 + mi * 60 + se - offset;
}

TEST(FernetVectors, ClockParserIsRight) {
  EXPECT_EQ(ParseRfc3339("1970-01-01T00:00:00+00:00"), 0);
  EXPECT_EQ(ParseRfc3339("1985-10-26T01:20:00-07:00"), 499162800);
}

TEST(FernetVectors, Generate) {
  const json vectors = LoadVectors("generate.json");
  ASSERT_FALSE(vectors.empty());
  for (const auto& v : vectors) {
    auto key = FernetKey::FromBase64(v["secret"].get<std::string>());
    ASSERT_TRUE(key) << key.error().ToString();
    std::array<std::uint8_t, kFernetIvSize> iv{};
    ASSERT_EQ(v["iv"].size(), kFernetIvSize);
    for (std::size_t i = 0; i < kFernetIvSize; ++i) iv[i] = v["iv"][i].get<std::uint8_t>();
    auto token = EncryptWithFixedIvForTesting(*key, v["src"].get<std::string>(),
                                              ParseRfc3339(v["now"].get<std::string>()), iv);
    ASSERT_TRUE(token);
    EXPECT_EQ(*token, v["token"].get<std::string>());
  }
}

TEST(FernetVectors, Verify) {
  const json vectors = LoadVectors("verify.json");
  ASSERT_FALSE(vectors.empty());
  for (const auto& v : vectors) {
    auto key = FernetKey::FromBase64(v["secret"].get<std::string>());
    ASSERT_TRUE(key);
    FernetDecryptOptions options;
    options.now_seconds = ParseRfc3339(v["now"].get<std::string>());
    options.ttl_seconds = v["ttl_sec"].get<std::int64_t>();
    auto plaintext = key->Decrypt(v["token"].get<std::string>(), options);
    ASSERT_TRUE(plaintext) << FernetErrorMessage(plaintext.error());
    EXPECT_EQ(plaintext->view(), v["src"].get<std::string>());
  }
}

// Each invalid vector must fail, and fail for the reason its description gives.
TEST(FernetVectors, Invalid) {
  const std::map<std::string, FernetError> expected = {
      {"incorrect mac", FernetError::kBadMac},
      {"too short", FernetError::kTooShort},
      {"invalid base64", FernetError::kMalformedBase64},
      {"payload size not multiple of block size", FernetError::kBadCiphertextLength},
      {"payload padding error", FernetError::kBadPadding},
      {"far-future TS (unacceptable clock skew)", FernetError::kFromTheFuture},
      {"expired TTL", FernetError::kExpired},
      {"incorrect IV (causes padding error)", FernetError::kBadPadding},
  };
  const json vectors = LoadVectors("invalid.json");
  ASSERT_EQ(vectors.size(), expected.size());
  for (const auto& v : vectors) {
    const std::string desc = v["desc"].get<std::string>();
    SCOPED_TRACE(desc);
    auto key = FernetKey::FromBase64(v["secret"].get<std::string>());
    ASSERT_TRUE(key);
    FernetDecryptOptions options;
    options.now_seconds = ParseRfc3339(v["now"].get<std::string>());
    options.ttl_seconds = v["ttl_sec"].get<std::int64_t>();
    auto plaintext = key->Decrypt(v["token"].get<std::string>(), options);
    ASSERT_FALSE(plaintext);
    ASSERT_TRUE(expected.contains(desc));
    EXPECT_EQ(plaintext.error(), expected.at(desc)) << FernetErrorMessage(plaintext.error());
  }
}

}  // namespace
}  // namespace bifrost::crypto
