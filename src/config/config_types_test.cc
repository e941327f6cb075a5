// Every validation rule of the config model, with the exact message a user sees.
#include "config/config_types.h"

#include <gtest/gtest.h>

namespace bifrost::config {
namespace {

std::string ErrorOf(const Status& s) { return s ? "" : s.error().message(); }

TEST(ConfigTypes, NamesRoundTrip) {
  for (auto t : {ConfigType::kString, ConfigType::kInt, ConfigType::kBool, ConfigType::kJson,
                 ConfigType::kSecret}) {
    auto parsed = ParseConfigType(ConfigTypeName(t));
    ASSERT_TRUE(parsed);
    EXPECT_EQ(*parsed, t);
  }
  auto bad = ParseConfigType("float");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(),
            "config type 'float' is unknown; use string, int, bool, json or secret");
  EXPECT_FALSE(ParseConfigType("Secret"));
}

TEST(ValidateKey, AcceptsTheDocumentedAlphabet) {
  EXPECT_TRUE(ValidateKey("api_key"));
  EXPECT_TRUE(ValidateKey("A"));
  EXPECT_TRUE(ValidateKey("STRIPE_KEY_2"));
  EXPECT_TRUE(ValidateKey(std::string(255, 'k')));
}

TEST(ValidateKey, RejectsEverythingElse) {
  for (std::string bad : {std::string(), std::string(256, 'k'), std::string("api-key"),
                          std::string("api.key"), std::string("api key"), std::string("ключ"),
                          std::string("a\nb"), std::string("a/b"), std::string("a\0b", 3)}) {
    auto s = ValidateKey(bad);
    ASSERT_FALSE(s) << bad;
    EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_EQ(ErrorOf(ValidateKey("api-key")),
            "config key 'api-key' is invalid: a key is 1 to 255 characters of A-Z, a-z, 0-9 "
            "and _");
}

TEST(ValidateValue, Int) {
  const Limits limits;
  EXPECT_TRUE(ValidateValue("retries", ConfigType::kInt, "3", limits));
  EXPECT_TRUE(ValidateValue("retries", ConfigType::kInt, "-9223372036854775808", limits));
  EXPECT_EQ(ErrorOf(ValidateValue("retries", ConfigType::kInt, "abc", limits)),
            "config 'retries' has type int but value 'abc' is not a 64-bit integer (decimal, "
            "optional '-', no leading zeros)");
  for (std::string_view bad : {"", "1.5", "9223372036854775808", "007", " 1", "+1", "1e3"}) {
    EXPECT_FALSE(ValidateValue("retries", ConfigType::kInt, bad, limits)) << bad;
  }
}

TEST(ValidateValue, Bool) {
  const Limits limits;
  EXPECT_TRUE(ValidateValue("on", ConfigType::kBool, "true", limits));
  EXPECT_TRUE(ValidateValue("on", ConfigType::kBool, "false", limits));
  for (std::string_view bad : {"True", "1", "yes", "", "false "}) {
    EXPECT_FALSE(ValidateValue("on", ConfigType::kBool, bad, limits)) << bad;
  }
  EXPECT_EQ(ErrorOf(ValidateValue("on", ConfigType::kBool, "yes", limits)),
            "config 'on' has type bool but value 'yes' is not true or false");
}

TEST(ValidateValue, Json) {
  const Limits limits;
  for (std::string_view ok : {"{}", "[]", "1", "\"s\"", "null", "true",
                              R"({"a":[1,2,{"b":null}],"c":"ü"})", " {\"x\": 1} "}) {
    EXPECT_TRUE(ValidateValue("j", ConfigType::kJson, ok, limits)) << ok;
  }
  for (std::string_view bad : {"", "{", "{'a':1}", "[1,]", "{} {}", "nul", "\"\xff\""}) {
    EXPECT_FALSE(ValidateValue("j", ConfigType::kJson, bad, limits)) << bad;
  }
  EXPECT_EQ(ErrorOf(ValidateValue("j", ConfigType::kJson, "{\"a\":", limits)),
            "config 'j' has type json but its value is not a valid JSON document (error at "
            "byte 6)");
  // Nesting is bounded: deep enough to be useful, not enough to exhaust a stack.
  EXPECT_TRUE(
      ValidateValue("j", ConfigType::kJson, std::string(64, '[') + std::string(64, ']'), limits));
  EXPECT_FALSE(
      ValidateValue("j", ConfigType::kJson, std::string(65, '[') + std::string(65, ']'), limits));
  const std::string deep = std::string(10000, '[') + std::string(10000, ']');
  EXPECT_EQ(ErrorOf(ValidateValue("j", ConfigType::kJson, deep, limits)),
            "config 'j' has type json but its value nests deeper than 64 levels");
}

TEST(ValidateValue, JsonNumbersAreTextNotDoubles) {
  // Valid JSON that no double holds exactly is still valid JSON: the value is stored as text.
  const Limits limits;
  for (std::string_view ok : {"123456789012345678901234567890", "1e400", "-1e400",
                              R"({"n":123456789012345678901234567890,"f":1e400,"z":1,"a":2})"}) {
    EXPECT_TRUE(ValidateValue("j", ConfigType::kJson, ok, limits)) << ok;
  }
  for (std::string_view bad : {"NaN", "Infinity", "01", "1.", "+1", R"("\uD800")"}) {
    EXPECT_FALSE(ValidateValue("j", ConfigType::kJson, bad, limits)) << bad;
  }
}

TEST(ValidateValue, StringAndSecretMustBeUtf8) {
  const Limits limits;
  EXPECT_TRUE(ValidateValue("s", ConfigType::kString, "", limits));
  EXPECT_TRUE(ValidateValue("s", ConfigType::kString, "Grüße", limits));
  EXPECT_FALSE(ValidateValue("s", ConfigType::kString, "\xc3\x28", limits));
  EXPECT_TRUE(ValidateValue("k", ConfigType::kSecret, "sk_live_xxxxx", limits));
  EXPECT_EQ(ErrorOf(ValidateValue("k", ConfigType::kSecret, "", limits)),
            "config 'k' has type secret but its value is empty");
  EXPECT_EQ(ErrorOf(ValidateValue("k", ConfigType::kSecret, "sk_live_\xff", limits)),
            "config 'k' has type secret but its value is not valid UTF-8");
}

TEST(ValidateValue, SizeLimitIsConfigurable) {
  Limits limits;
  EXPECT_TRUE(ValidateValue("s", ConfigType::kString, std::string(65536, 'x'), limits));
  EXPECT_EQ(ErrorOf(ValidateValue("s", ConfigType::kString, std::string(65537, 'x'), limits)),
            "config 's' value is 65537 bytes, more than the limit of 65536");
  limits.max_value_bytes = 10;
  EXPECT_FALSE(ValidateValue("s", ConfigType::kSecret, std::string(11, 'x'), limits));
  EXPECT_TRUE(ValidateValue("s", ConfigType::kSecret, std::string(10, 'x'), limits));
}

TEST(ValidateValue, NeverEchoesSecretsAndShortensOtherValues) {
  const Limits limits;
  const std::string canary = "sk_live_CANARY_never_echo_me";
  for (auto type : {ConfigType::kSecret}) {
    for (std::string v : {canary + "\xff", std::string()}) {
      auto s = ValidateValue("k", type, v, limits);
      ASSERT_FALSE(s);
      EXPECT_EQ(s.error().message().find("CANARY"), std::string::npos);
    }
  }
  // A non-secret value longer than a typo (a credential typed into the wrong field, say) is
  // described by its size, never shown, whatever the declared type.
  for (auto type : {ConfigType::kInt, ConfigType::kBool, ConfigType::kJson}) {
    auto s = ValidateValue("k", type, "Tr0ub4dor&3-hunter2x", limits);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().message().find("hunter2"), std::string::npos) << s.error().message();
  }
  const std::string long_value = canary + canary;
  EXPECT_EQ(ErrorOf(ValidateValue("n", ConfigType::kInt, long_value, limits)),
            "config 'n' has type int but value of 56 bytes is not a 64-bit integer (decimal, "
            "optional '-', no leading zeros)");
}

TEST(ValidateOther, DescriptionActorOrgName) {
  const Limits limits;
  EXPECT_TRUE(ValidateDescription("k", "Stripe live key for billing", limits));
  EXPECT_FALSE(ValidateDescription("k", std::string(1025, 'd'), limits));
  EXPECT_FALSE(ValidateDescription("k", "\xff", limits));
  EXPECT_TRUE(ValidateActor("alice@example.com"));
  EXPECT_FALSE(ValidateActor(""));
  EXPECT_FALSE(ValidateActor("a\nb"));
  EXPECT_TRUE(ValidateOrgName("Acme Corp"));
  EXPECT_TRUE(ValidateOrgName("Müller GmbH"));
  for (std::string bad : {std::string(), std::string(" Acme"), std::string("Acme "),
                          std::string("a\tb"), std::string(129, 'n'), std::string("\xff")}) {
    EXPECT_FALSE(ValidateOrgName(bad)) << bad;
  }
}

TEST(ValidateOther, OrgNameMayNotLookLikeAnOrgId) {
  // Clients read a UUID-shaped ORG as an id, so a name of that form could stand for another
  // organization.
  for (std::string bad : {std::string("3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c"),
                          std::string("3F1C2A4E-8B7D-4C1E-9A2B-5D6E7F8A9B0C"),
                          std::string("3f1C2a4E-8b7d-4c1e-9A2b-5d6e7f8a9b0c"),
                          std::string("00000000-0000-0000-0000-000000000000")}) {
    auto s = ValidateOrgName(bad);
    ASSERT_FALSE(s) << bad;
    EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(s.error().message(), "organization name '" + bad +
                                       "' is invalid: it has the form of an organization id (a "
                                       "UUID); choose a name that is not a UUID");
  }
  // Near misses are ordinary names.
  for (std::string ok : {std::string("3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0"),
                         std::string("3f1c2a4e8b7d4c1e9a2b5d6e7f8a9b0c"),
                         std::string("team 3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c"),
                         std::string("{3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c}")}) {
    EXPECT_TRUE(ValidateOrgName(ok)) << ok;
  }
}

}  // namespace
}  // namespace bifrost::config
