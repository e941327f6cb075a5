#include "importer/legacy_value.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/base64.h"
#include "crypto/key_derivation.h"

namespace bifrost::importer {
namespace {

using config::ConfigType;

constexpr std::string_view kSourceSecret = "the-old-installations-secret-key-0123456789";

TEST(ParseLegacyConfigType, AcceptsValuesAndEnumNamesInAnyCase) {
  EXPECT_EQ(ParseLegacyConfigType("string").value(), ConfigType::kString);
  EXPECT_EQ(ParseLegacyConfigType("INT").value(), ConfigType::kInt);
  EXPECT_EQ(ParseLegacyConfigType("Bool").value(), ConfigType::kBool);
  EXPECT_EQ(ParseLegacyConfigType(" json ").value(), ConfigType::kJson);
  EXPECT_EQ(ParseLegacyConfigType("SECRET").value(), ConfigType::kSecret);
  auto unknown = ParseLegacyConfigType("float");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().message(),
            "config_type 'float' is unknown: expected string, int, bool, json or secret");
  EXPECT_FALSE(ParseLegacyConfigType(""));
}

struct ValueCase {
  ConfigType type;
  std::string jsonb;
  std::string expected;  // the canonical text
};

TEST(CanonicalLegacyValue, TurnsEachTypeIntoItsCanonicalText) {
  const std::vector<ValueCase> cases = {
      // string: the content of the JSON string, escapes decoded.
      {ConfigType::kString, R"({"value": "plain"})", "plain"},
      {ConfigType::kString, R"({"value": ""})", ""},
      {ConfigType::kString, R"({"value": "a, \"b\"\nc\td \u00e9 日本 \ud83d\udd11"})",
       "a, \"b\"\nc\td é 日本 🔑"},
      {ConfigType::kString, R"( {"value":"x", "other": 1} )", "x"},
      // int: JSON integers and strings holding one; canonical output.
      {ConfigType::kInt, R"({"value": 5})", "5"},
      {ConfigType::kInt, R"({"value": -0})", "0"},
      {ConfigType::kInt, R"({"value": 9223372036854775807})", "9223372036854775807"},
      {ConfigType::kInt, R"({"value": -9223372036854775808})", "-9223372036854775808"},
      {ConfigType::kInt, R"({"value": "42"})", "42"},
      {ConfigType::kInt, R"({"value": " +007 "})", "7"},
      {ConfigType::kInt, R"({"value": "-0"})", "0"},
      {ConfigType::kInt, R"({"value": "-00012"})", "-12"},
      // bool: booleans and their strings in any case.
      {ConfigType::kBool, R"({"value": true})", "true"},
      {ConfigType::kBool, R"({"value": false})", "false"},
      {ConfigType::kBool, R"({"value": "True"})", "true"},
      {ConfigType::kBool, R"({"value": "FALSE"})", "false"},
      // json: the exact text of the value; a string holding a document is that document.
      {ConfigType::kJson, R"({"value": {"b": 1, "a": [1.50, 123456789012345678901234567890]}})",
       R"({"b": 1, "a": [1.50, 123456789012345678901234567890]})"},
      {ConfigType::kJson, R"({"value": [1, "two", null]})", R"([1, "two", null])"},
      {ConfigType::kJson, R"({"value": null})", "null"},
      {ConfigType::kJson, R"({"value": 1e400})", "1e400"},
      {ConfigType::kJson, R"({"value": "{\"a\": 1}"})", R"({"a": 1})"},
      {ConfigType::kJson, R"({"value": " [1,2] "})", "[1,2]"},
      {ConfigType::kJson, R"({"value": "123"})", "123"},
      {ConfigType::kJson, R"({"value": "hello"})", R"("hello")"},
      {ConfigType::kJson, R"({"value": ""})", R"("")"},
      // secret: the stored text, still encrypted.
      {ConfigType::kSecret, R"({"value": "Z0FBQUFBQm1fYWJj"})", "Z0FBQUFBQm1fYWJj"},
  };
  for (const ValueCase& c : cases) {
    auto value = CanonicalLegacyValue(c.type, "k", c.jsonb, {});
    ASSERT_TRUE(value) << c.jsonb << ": " << value.error().ToString();
    EXPECT_EQ(*value, c.expected) << c.jsonb;
  }
}

struct ErrorCase {
  ConfigType type;
  std::string jsonb;
  std::string message;
};

// Messages name the rule, never the value (which may be a mistyped secret).
TEST(CanonicalLegacyValue, RefusesWhatTheApiWouldRefuseWithoutQuotingIt) {
  const std::vector<ErrorCase> cases = {
      {ConfigType::kString, R"({"value": 5})",
       "type string needs a JSON string in {\"value\": ...}, but the value is a number"},
      {ConfigType::kString, R"({"value": null})",
       "the value is null, which type string cannot "
       "hold"},
      {ConfigType::kString, R"({"value": "secretish)",
       "the value column is not valid JSON "
       "(error at byte 21)"},
      {ConfigType::kString, R"(["secretish"])",
       "the value column is not a JSON object {\"value\": ...}"},
      {ConfigType::kString, R"({"v": "secretish"})", "the value column has no \"value\" member"},
      {ConfigType::kInt, R"({"value": 1.5})",
       "type int needs a 64-bit integer in {\"value\": ...}, but the value is a number with a "
       "fraction or exponent"},
      {ConfigType::kInt, R"({"value": 9223372036854775808})",
       "type int needs a 64-bit integer in {\"value\": ...}, but the value is outside the "
       "64-bit range"},
      {ConfigType::kInt, R"({"value": "12abc"})",
       "type int needs a 64-bit integer in {\"value\": ...}, but the value is a string that is "
       "not a decimal integer within the 64-bit range"},
      {ConfigType::kInt, R"({"value": ""})",
       "type int needs a 64-bit integer in {\"value\": ...}, but the value is a string that is "
       "not a decimal integer within the 64-bit range"},
      {ConfigType::kInt, R"({"value": true})",
       "type int needs a 64-bit integer in {\"value\": ...}, but the value is a boolean"},
      {ConfigType::kBool, R"({"value": "yes"})",
       "type bool needs true or false in {\"value\": ...}, but the value is a string other "
       "than \"true\" or \"false\""},
      {ConfigType::kBool, R"({"value": 1})",
       "type bool needs true or false in {\"value\": ...}, but the value is a number"},
      {ConfigType::kSecret, R"({"value": ""})", "the secret is empty"},
      {ConfigType::kSecret, R"({"value": {"a": "secretish"}})",
       "type secret needs a JSON string in {\"value\": ...}, but the value is an object"},
  };
  for (const ErrorCase& c : cases) {
    auto value = CanonicalLegacyValue(c.type, "k", c.jsonb, {});
    ASSERT_FALSE(value) << c.jsonb;
    EXPECT_EQ(value.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(value.error().message(), c.message) << c.jsonb;
    EXPECT_EQ(value.error().message().find("secretish"), std::string::npos);
  }
}

TEST(CanonicalLegacyValue, AppliesTheConfigLimits) {
  const std::string big = "{\"value\": \"" + std::string(70 * 1024, 'x') + "\"}";
  auto value = CanonicalLegacyValue(ConfigType::kString, "k", big, {});
  ASSERT_FALSE(value);
  EXPECT_EQ(value.error().message(),
            "config 'k' value is 71680 bytes, more than the limit of 65536");
  EXPECT_TRUE(CanonicalLegacyValue(ConfigType::kString, "k", big, {.max_value_bytes = 80 * 1024}));

  std::string deep = "1";
  for (int i = 0; i < 65; ++i) deep = "[" + deep + "]";
  auto too_deep = CanonicalLegacyValue(ConfigType::kJson, "k", "{\"value\": " + deep + "}", {});
  ASSERT_FALSE(too_deep);
  EXPECT_EQ(too_deep.error().message(), "the value nests deeper than 64 levels");
  // The same document given as a string is checked as the value it holds.
  auto as_string =
      CanonicalLegacyValue(ConfigType::kJson, "k", "{\"value\": \"" + deep + "\"}", {});
  ASSERT_FALSE(as_string);
  EXPECT_EQ(as_string.error().message(),
            "config 'k' has type json but its value nests deeper than 64 levels");
  const std::string ok = deep.substr(1, deep.size() - 2);  // 64 levels
  EXPECT_TRUE(CanonicalLegacyValue(ConfigType::kJson, "k", "{\"value\": " + ok + "}", {}));
}

// A stored secret as the Python Bifrost writes it: base64url(Fernet token).
std::string Stored(const crypto::FernetKey& key, std::string_view plaintext) {
  auto token = key.Encrypt(plaintext, 1'700'000'000);
  EXPECT_TRUE(token);
  return Base64UrlEncode(*token);
}

TEST(LegacySecretKeys, OpensHkdfAndPbkdf2SecretsAndSaysWhich) {
  auto keys = LegacySecretKeys::Create(kSourceSecret, "the source key");
  ASSERT_TRUE(keys) << keys.error().ToString();
  auto hkdf = crypto::DeriveLegacyHkdfKey(kSourceSecret, "s");
  auto pbkdf2 = crypto::DeriveLegacyPbkdf2Key(kSourceSecret, "s");
  ASSERT_TRUE(hkdf && pbkdf2);

  auto opened = keys->Open("api_key", Stored(*hkdf, "sk_live_hkdf 🔑"), {});
  ASSERT_TRUE(opened) << opened.error().ToString();
  EXPECT_EQ(opened->plaintext.view(), "sk_live_hkdf 🔑");
  EXPECT_EQ(opened->kdf, LegacySecretKeys::Kdf::kHkdf);

  opened = keys->Open("api_key", Stored(*pbkdf2, "sk_live_pbkdf2"), {});
  ASSERT_TRUE(opened) << opened.error().ToString();
  EXPECT_EQ(opened->plaintext.view(), "sk_live_pbkdf2");
  EXPECT_EQ(opened->kdf, LegacySecretKeys::Kdf::kPbkdf2);

  auto with = keys->OpenWith(LegacySecretKeys::Kdf::kPbkdf2, "api_key",
                             Stored(*pbkdf2, "sk_live_pbkdf2"), {});
  ASSERT_TRUE(with);
  EXPECT_EQ(with->plaintext.view(), "sk_live_pbkdf2");
  auto wrong = keys->OpenWith(LegacySecretKeys::Kdf::kHkdf, "api_key",
                              Stored(*pbkdf2, "sk_live_pbkdf2"), {});
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), ErrorCode::kIntegrity);
}

// The short keys an old installation may have run with still open its secrets.
TEST(LegacySecretKeys, AcceptsAShortSourceKey) {
  auto keys = LegacySecretKeys::Create("short", "the source key");
  ASSERT_TRUE(keys);
  auto hkdf = crypto::DeriveLegacyHkdfKey("short", "s");
  ASSERT_TRUE(hkdf);
  auto opened = keys->Open("k", Stored(*hkdf, "v"), {});
  ASSERT_TRUE(opened);
  EXPECT_EQ(opened->plaintext.view(), "v");
  auto empty = LegacySecretKeys::Create("", "the source key");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().message(), "the source key is empty");
}

TEST(LegacySecretKeys, FailuresNameTheRuleNotTheSecret) {
  auto keys = LegacySecretKeys::Create(kSourceSecret, "the source key");
  ASSERT_TRUE(keys);
  auto other = crypto::DeriveLegacyHkdfKey("another-installation-entirely-0123456789", "s");
  ASSERT_TRUE(other);
  const std::string canary = "sk_live_CANARY_legacy";

  auto wrong_key = keys->Open("k", Stored(*other, canary), {});
  ASSERT_FALSE(wrong_key);
  EXPECT_EQ(wrong_key.error().code(), ErrorCode::kIntegrity);
  EXPECT_EQ(wrong_key.error().message(),
            "the secret does not decrypt with the source key (neither its HKDF nor its PBKDF2 "
            "derivation opens it): is the source key the old installation's "
            "BIFROST_SECRET_KEY?");

  auto not_base64 = keys->Open("k", "not base64 at all!", {});
  ASSERT_FALSE(not_base64);
  EXPECT_EQ(not_base64.error().message(),
            "the secret is not in the Python Bifrost's stored form (base64url of a Fernet "
            "token)");

  // A token stored without the outer base64 layer is not the Python Bifrost's form.
  auto token = other->Encrypt(canary, 1'700'000'000);
  ASSERT_TRUE(token);
  auto single = keys->Open("k", *token, {});
  ASSERT_FALSE(single);

  auto not_fernet = keys->Open("k", Base64UrlEncode(std::string("hello, not a token")), {});
  ASSERT_FALSE(not_fernet);
  EXPECT_EQ(not_fernet.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(not_fernet.error().message().starts_with("the secret is not a valid Fernet token: "))
      << not_fernet.error().message();

  auto hkdf = crypto::DeriveLegacyHkdfKey(kSourceSecret, "s");
  ASSERT_TRUE(hkdf);
  auto empty = keys->Open("k", Stored(*hkdf, ""), {});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().message(), "config 'k' has type secret but its value is empty");
  auto binary = keys->Open("k", Stored(*hkdf, "\xff\xfe" + canary), {});
  ASSERT_FALSE(binary);
  EXPECT_EQ(binary.error().message(),
            "config 'k' has type secret but its value is not valid "
            "UTF-8");

  for (const auto* result : {&wrong_key, &not_base64, &single, &not_fernet, &empty, &binary}) {
    EXPECT_EQ(result->error().message().find("CANARY"), std::string::npos);
  }
}

}  // namespace
}  // namespace bifrost::importer
