#include "cli/values.h"

#include <gtest/gtest.h>

#include <string>

namespace bifrost::cli {
namespace {

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

TEST(ValueToJsonTextTest, ConvertsEachType) {
  EXPECT_EQ(*ValueToJsonText(ValueType::kInt, "-42", "k"), "-42");
  EXPECT_EQ(*ValueToJsonText(ValueType::kInt, "9223372036854775807", "k"), "9223372036854775807");
  EXPECT_EQ(*ValueToJsonText(ValueType::kBool, "true", "k"), "true");
  EXPECT_EQ(*ValueToJsonText(ValueType::kBool, "false", "k"), "false");
  EXPECT_EQ(*ValueToJsonText(ValueType::kJson, R"({"a":[1,2]})", "k"), R"({"a":[1,2]})");
  EXPECT_EQ(*ValueToJsonText(ValueType::kJson, "42", "k"), "42");  // any JSON document
  EXPECT_EQ(*ValueToJsonText(ValueType::kJson, "\"s\"", "k"), "\"s\"");
  EXPECT_EQ(*ValueToJsonText(ValueType::kString, "5", "k"), "\"5\"");  // --type string wins
  EXPECT_EQ(*ValueToJsonText(ValueType::kString, "", "k"), "\"\"");
  EXPECT_EQ(*ValueToJsonText(ValueType::kSecret, "s3cr3t\nline2", "k"), "\"s3cr3t\\nline2\"");
  EXPECT_EQ(*ValueToJsonText(ValueType::kString, "caf\xc3\xa9", "k"), "\"caf\xc3\xa9\"");
  EXPECT_EQ(*ValueToJsonText(ValueType::kString, "q\"b\\", "k"), R"("q\"b\\")");
}

TEST(ValueToJsonTextTest, JsonIsSentExactlyAsTyped) {
  // Parsing and re-serialising would turn the integer into 1.2345678901234568e+29, refuse
  // 1e400 and sort the members.
  for (const std::string text :
       {R"({"n":123456789012345678901234567890})", R"({"z":1,"a":[1e400, -0.0]})",
        R"(["\u00e9", "\/"])", "123456789012345678901234567890"}) {
    EXPECT_EQ(*ValueToJsonText(ValueType::kJson, text, "k"), text);
  }
  EXPECT_EQ(*ValueToJsonText(ValueType::kJson, " \n{ \"a\" : 1 }\n", "k"), R"({ "a" : 1 })");
  EXPECT_EQ(InferValueType(R"({"n":123456789012345678901234567890,"f":1e400})"), ValueType::kJson);
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
    auto result = ValueToJsonText(c.type, c.text, "retries");
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

TEST(DisplayValueTest, StringsRawOthersCompactAndExact) {
  EXPECT_EQ(DisplayValue(R"("plain text")"), "plain text");
  EXPECT_EQ(DisplayValue(R"("multi\nline \u00e9")"), "multi\nline \xc3\xa9");
  EXPECT_EQ(DisplayValue("5"), "5");
  EXPECT_EQ(DisplayValue("-9"), "-9");
  EXPECT_EQ(DisplayValue("true"), "true");
  EXPECT_EQ(DisplayValue(R"({ "a" : [ 1, 2 ], "b" : null })"), R"({"a":[1,2],"b":null})");
  EXPECT_EQ(DisplayValue(R"({"z": 123456789012345678901234567890, "a": 1e400})"),
            R"({"z":123456789012345678901234567890,"a":1e400})");
}

}  // namespace
}  // namespace bifrost::cli
