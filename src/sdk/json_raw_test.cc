// The SDK's lossless JSON text helpers.
#include "sdk/json_raw.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace bifrost::sdk::internal {
namespace {

TEST(JsonRawTest, AcceptsValidJson) {
  for (const std::string text :
       {"null", "true", "false", "0", "-0", "1.5e-3", "123456789012345678901234567890", "1e400",
        "\"\"", "\"\\u00e9\\ud83d\\ude00\\n\\\"\"", "\"\xc3\xa9\"", "[]", "{}", " [1, [2, {}]] ",
        "{\"a\":{\"b\":[true,false,null]},\"c\":\"d\"}", "\n\t{ \"a\" : 1 }\r\n"}) {
    EXPECT_TRUE(IsJson(text)) << text;
  }
}

TEST(JsonRawTest, RefusesInvalidJson) {
  for (const std::string text :
       {"",         " ",          "nul",   "True", "01",      "1.",          ".5",
        "-",        "1e",         "+1",    "\"",   "\"\\x\"", "\"\\ud800\"", "\"\\udc00\"",
        "\"\xff\"", "\"a\nb\"",   "[",     "[1,]", "[1 2]",   "{\"a\"}",     "{\"a\":}",
        "{a:1}",    "{\"a\":1,}", "{} {}", "[1]]", "NaN",     "'a'"}) {
    std::size_t at = 12345;
    EXPECT_FALSE(IsJson(text, &at)) << text;
    EXPECT_LE(at, text.size()) << text;
  }
}

TEST(JsonRawTest, DeepNestingCostsNoStack) {
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  EXPECT_TRUE(IsJson(deep));
  EXPECT_FALSE(IsJson(std::string(200000, '[')));
}

TEST(JsonRawTest, MembersAreExactTexts) {
  const std::string text = R"( {"a" : 1e400 , "b\u0021":{"x": [1, 2]},"c":"s\"t", "d":[ ]} )";
  ASSERT_TRUE(IsJson(text));
  const auto members = Members(text);
  ASSERT_TRUE(members.has_value());
  ASSERT_EQ(members->size(), 4u);
  EXPECT_EQ((*members)[0].first, "a");
  EXPECT_EQ((*members)[0].second, "1e400");
  EXPECT_EQ((*members)[1].first, "b!");
  EXPECT_EQ((*members)[1].second, R"({"x": [1, 2]})");
  EXPECT_EQ((*members)[2].second, R"("s\"t")");
  EXPECT_EQ((*members)[3].second, "[ ]");
  EXPECT_FALSE(Members("[1]").has_value());
  EXPECT_TRUE(Members("{}")->empty());
}

TEST(JsonRawTest, ElementsAreExactTexts) {
  const auto elements = Elements(R"([ 1 , "a,b" , {"c": [2]}, [] ])");
  ASSERT_TRUE(elements.has_value());
  ASSERT_EQ(elements->size(), 4u);
  EXPECT_EQ((*elements)[0], "1");
  EXPECT_EQ((*elements)[1], R"("a,b")");
  EXPECT_EQ((*elements)[2], R"({"c": [2]})");
  EXPECT_EQ((*elements)[3], "[]");
  EXPECT_TRUE(Elements("[]")->empty());
  EXPECT_FALSE(Elements("{}").has_value());
}

TEST(JsonRawTest, DecodesStrings) {
  EXPECT_EQ(DecodeString(R"("a\nb\t\"\\\/\b\f\r")"), "a\nb\t\"\\/\b\f\r");
  EXPECT_EQ(DecodeString(R"("\u00e9\ud83d\ude00")"), "\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(DecodeString(R"("")"), "");
  EXPECT_FALSE(DecodeString("1").has_value());
  EXPECT_FALSE(DecodeString(R"("\ud800")").has_value());
}

TEST(JsonRawTest, QuoteStringRoundTrips) {
  const std::string text = std::string("a\"b\\c\nd\x01\x1f\x7f \xc3\xa9/\t\b\f\r") + '\0';
  const std::string quoted = QuoteString(text);
  EXPECT_TRUE(IsJson(quoted)) << quoted;
  EXPECT_EQ(nlohmann::json::parse(quoted).get<std::string>(), text);
  EXPECT_EQ(DecodeString(quoted), text);
  EXPECT_EQ(QuoteString(""), "\"\"");
}

TEST(JsonRawTest, WipeEmptiesTheString) {
  std::string short_text = "hunter2";
  Wipe(short_text);
  EXPECT_TRUE(short_text.empty());
  std::string long_text(1000, 'x');
  Wipe(long_text);
  EXPECT_TRUE(long_text.empty());
  EXPECT_EQ(Trim(" \n a \t"), "a");
}

}  // namespace
}  // namespace bifrost::sdk::internal
