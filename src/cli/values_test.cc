#include "cli/values.h"

#include <gtest/gtest.h>

namespace bifrost::cli {
namespace {

using nlohmann::json;

TEST(ValueTypeTest, NamesRoundTrip) {
  for (ValueType type : {ValueType::kString, ValueType::kInt, ValueType::kBool, ValueType::kJson,
                         ValueType::kSecret}) {
    EXPECT_EQ(ParseValueType(ValueTypeName(type)), type);
  }
  EXPECT_EQ(ParseValueType("integer"), std::nullopt);
  EXPECT_EQ(ParseValueType("STRING"), std::nullopt);
  EXPECT_EQ(ParseValueType(""), std::nullopt);
}

TEST(InferValueTypeTest, JsonObjectsAndArrays) {
  EXPECT_EQ(InferValueType("{}"), ValueType::kJson);
  EXPECT_EQ(InferValueType("[]"), ValueType::kJson);
  EXPECT_EQ(InferValueType(R"({"a": [1, 2]})"), ValueType::kJson);
  EXPECT_EQ(InferValueType("  [1, \"x\"]\n"), ValueType::kJson);
  // JSON scalars are not inferred as json: they have their own types or are strings.
  EXPECT_EQ(InferValueType("\"quoted\""), ValueType::kString);
  EXPECT_EQ(InferValueType("null"), ValueType::kString);
  EXPECT_EQ(InferValueType("1.5"), ValueType::kString);
  // Looks like JSON but is not.
  EXPECT_EQ(InferValueType("{not json}"), ValueType::kString);
  EXPECT_EQ(InferValueType("[1, 2"), ValueType::kString);
  EXPECT_EQ(InferValueType("{} {}"), ValueType::kString);
}

TEST(InferValueTypeTest, ExactlyTrueOrFalseIsBool) {
  EXPECT_EQ(InferValueType("true"), ValueType::kBool);
  EXPECT_EQ(InferValueType("false"), ValueType::kBool);
  EXPECT_EQ(InferValueType("True"), ValueType::kString);
  EXPECT_EQ(InferValueType("TRUE"), ValueType::kString);
  EXPECT_EQ(InferValueType(" true"), ValueType::kString);
  EXPECT_EQ(InferValueType("yes"), ValueType::kString);
}

TEST(InferValueTypeTest, CanonicalInt64IsInt) {
  EXPECT_EQ(InferValueType("0"), ValueType::kInt);
  EXPECT_EQ(InferValueType("5"), ValueType::kInt);
  EXPECT_EQ(InferValueType("-5"), ValueType::kInt);
  EXPECT_EQ(InferValueType("9223372036854775807"), ValueType::kInt);
  EXPECT_EQ(InferValueType("-9223372036854775808"), ValueType::kInt);
  EXPECT_EQ(InferValueType("9223372036854775808"), ValueType::kString);  // out of range
  EXPECT_EQ(InferValueType("007"), ValueType::kString);  // a zip code stays a string
  EXPECT_EQ(InferValueType("+5"), ValueType::kString);
  EXPECT_EQ(InferValueType("-0"), ValueType::kString);
  EXPECT_EQ(InferValueType("5 "), ValueType::kString);
  EXPECT_EQ(InferValueType("1e3"), ValueType::kString);
}

TEST(InferValueTypeTest, EverythingElseIsString) {
  EXPECT_EQ(InferValueType(""), ValueType::kString);
  EXPECT_EQ(InferValueType("eu-west-1"), ValueType::kString);
  EXPECT_EQ(InferValueType("sk_live_abc"), ValueType::kString);  // never a secret by guess
}

TEST(ValueToJsonTest, ConvertsEachType) {
  EXPECT_EQ(*ValueToJson(ValueType::kInt, "-42", "k"), json(-42));
  EXPECT_EQ(*ValueToJson(ValueType::kInt, "9223372036854775807", "k"),
            json(std::int64_t{9223372036854775807}));
  EXPECT_EQ(*ValueToJson(ValueType::kBool, "true", "k"), json(true));
  EXPECT_EQ(*ValueToJson(ValueType::kBool, "false", "k"), json(false));
  EXPECT_EQ(*ValueToJson(ValueType::kJson, R"({"a":[1,2]})", "k"), json::parse(R"({"a":[1,2]})"));
  EXPECT_EQ(*ValueToJson(ValueType::kJson, "42", "k"), json(42));  // any JSON document
  EXPECT_EQ(*ValueToJson(ValueType::kJson, "\"s\"", "k"), json("s"));
  EXPECT_EQ(*ValueToJson(ValueType::kString, "5", "k"), json("5"));  // --type string wins
  EXPECT_EQ(*ValueToJson(ValueType::kString, "", "k"), json(""));
  EXPECT_EQ(*ValueToJson(ValueType::kSecret, "s3cr3t\nline2", "k"), json("s3cr3t\nline2"));
  EXPECT_EQ(*ValueToJson(ValueType::kString, "caf\xc3\xa9", "k"), json("caf\xc3\xa9"));
  // The JSON type is a JSON integer, not text, on the wire.
  EXPECT_EQ(ValueToJson(ValueType::kInt, "5", "k")->dump(), "5");
  EXPECT_EQ(ValueToJson(ValueType::kString, "5", "k")->dump(), "\"5\"");
}

TEST(ValueToJsonTest, RejectsTextOfTheWrongTypeWithoutEchoingIt) {
  struct Case {
    ValueType type;
    std::string text;
    std::string rule;
  };
  for (const Case& c : std::vector<Case>{
           {ValueType::kInt, "abc_hidden", "is not a 64-bit integer"},
           {ValueType::kInt, "12345678901234567890", "is not a 64-bit integer"},
           {ValueType::kInt, "05", "is not a 64-bit integer"},
           {ValueType::kBool, "yes_hidden", "is not true or false"},
           {ValueType::kJson, "{hidden", "is not one JSON document"},
           {ValueType::kString, "bad\xff_hidden", "not valid UTF-8"},
           {ValueType::kSecret, "bad\xc0\xaf_hidden", "not valid UTF-8"},
           {ValueType::kSecret, "", "is empty"},
       }) {
    auto result = ValueToJson(c.type, c.text, "retries");
    ASSERT_FALSE(result.has_value()) << c.text;
    EXPECT_EQ(result.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(result.error().message().find("config 'retries' has type " +
                                            std::string(ValueTypeName(c.type))),
              std::string::npos)
        << result.error().message();
    EXPECT_NE(result.error().message().find(c.rule), std::string::npos) << result.error().message();
    EXPECT_EQ(result.error().message().find("hidden"), std::string::npos)
        << result.error().message();
  }
}

TEST(ValueToTextTest, StringsRawOthersCompact) {
  EXPECT_EQ(ValueToText(json("plain text")), "plain text");
  EXPECT_EQ(ValueToText(json("multi\nline")), "multi\nline");
  EXPECT_EQ(ValueToText(json(5)), "5");
  EXPECT_EQ(ValueToText(json(-9)), "-9");
  EXPECT_EQ(ValueToText(json(true)), "true");
  EXPECT_EQ(ValueToText(json::parse(R"({ "a" : [ 1, 2 ], "b" : null })")),
            R"({"a":[1,2],"b":null})");
}

}  // namespace
}  // namespace bifrost::cli
