// JSON as text: the checker against RFC 8259, and the lossless operations on checked text.
#include "config/json_text.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace bifrost::config::json_text {
namespace {

bool Valid(std::string_view text, const CheckOptions& options = {}) {
  return !Check(text, options).has_value();
}

TEST(JsonTextCheckTest, AcceptsEveryKindOfValue) {
  for (const std::string_view text : std::vector<std::string_view>{
           "{}", "[]", "0", "-0", "1", "-12", "3.25", "1e3", "1E+3", "2.5e-3", "true", "false",
           "null", "\"\"", "\"s\"", " \t\r\n{ \"a\" : [ 1 , 2 ] }\n",
           R"({"a":{"b":[{"c":null}],"d":"e"},"f":[]})",
           R"("escapes \" \\ \/ \b \f \n \r \t \u00e9 \uD83D\uDE00")",
           "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
           // Valid JSON that a double cannot hold: accepted as text.
           "123456789012345678901234567890", "1e400", "-1e400", "1e-400",
           R"({"n":123456789012345678901234567890,"f":1e400})",
           // RFC 8259 allows repeated names; only the option refuses them.
           R"({"a":1,"a":2})"}) {
    const auto error = Check(text);
    EXPECT_FALSE(error.has_value()) << text << " refused at byte " << error->offset;
  }
}

TEST(JsonTextCheckTest, RefusesWhatIsNotJson) {
  for (const std::string& text : std::vector<std::string>{
           "", " ", "{", "}", "[", "[1,]", "[,1]", "{,}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}",
           "{a:1}", "{'a':1}", "[1 2]", "{} {}", "1 2", "nul", "tru", "True", "NaN", "Infinity",
           "01", "-", "+1", ".5", "1.", "1.e3", "1e", "1e+", "0x10", "\"open", "\"bad \\x escape\"",
           "\"\\u12\"", "\"\\uZZZZ\"", "\"tab\tinside\"", std::string("\"nul\0\"", 6), "\"\xff\"",
           "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xe2\x82\"",
           // Surrogates must come in pairs, high then low.
           R"("\uD83D")", R"("\uDE00")", R"("\uD83D\u0041")", R"("\uD83Dx")", "[1]\xff",
           "// comment\n1", "[1] /**/"}) {
    EXPECT_TRUE(Check(text).has_value()) << text;
  }
}

TEST(JsonTextCheckTest, ReportsWhereAndWhy) {
  auto error = Check("{\"a\":");
  ASSERT_TRUE(error);
  EXPECT_EQ(error->kind, CheckError::Kind::kSyntax);
  EXPECT_EQ(error->offset, 5u);  // the end of the text
  error = Check("[1,x]");
  ASSERT_TRUE(error);
  EXPECT_EQ(error->offset, 3u);
  error = Check(R"({"k":{"a":1,"b":2,"a":3}})", {.reject_duplicate_keys = true});
  ASSERT_TRUE(error);
  EXPECT_EQ(error->kind, CheckError::Kind::kDuplicateKey);
  EXPECT_EQ(error->key, "a");
  // Names are compared decoded.
  error = Check(R"({"value":1,"\u0076alue":2})", {.reject_duplicate_keys = true});
  ASSERT_TRUE(error);
  EXPECT_EQ(error->key, "value");
  // The same name in different objects is no duplicate.
  EXPECT_TRUE(
      Valid(R"({"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]})", {.reject_duplicate_keys = true}));
}

TEST(JsonTextCheckTest, DepthCountsOpenContainers) {
  auto nested = [](std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  EXPECT_TRUE(Valid("1", {.max_depth = 0}));
  EXPECT_FALSE(Valid("[]", {.max_depth = 0}));
  EXPECT_TRUE(Valid(nested(64), {.max_depth = 64}));
  const auto error = Check(nested(65), {.max_depth = 64});
  ASSERT_TRUE(error);
  EXPECT_EQ(error->kind, CheckError::Kind::kTooDeep);
  EXPECT_EQ(error->offset, 64u);
  EXPECT_TRUE(Valid(R"({"a":{"b":[1]}})", {.max_depth = 3}));
  EXPECT_FALSE(Valid(R"({"a":{"b":[1]}})", {.max_depth = 2}));
  // No recursion: hostile nesting is just a long scan.
  EXPECT_TRUE(Valid(nested(200'000)));
  EXPECT_EQ(Check(nested(200'000), {.max_depth = 64})->kind, CheckError::Kind::kTooDeep);
}

TEST(JsonTextMembersTest, ExactValueTextsInOrder) {
  const std::string text =
      R"( { "z" : 123456789012345678901234567890 , "a":[1, {"x":"}"}],"s":"q\"]}",)"
      R"( "\u0076alue" : { "b" : 1e400 } , "e" : {} } )";
  ASSERT_TRUE(Valid(text));
  const auto members = Members(text);
  ASSERT_EQ(members.size(), 5u);
  EXPECT_EQ(members[0].first, "z");
  EXPECT_EQ(members[0].second, "123456789012345678901234567890");
  EXPECT_EQ(members[1].first, "a");
  EXPECT_EQ(members[1].second, R"([1, {"x":"}"}])");
  EXPECT_EQ(members[2].second, R"("q\"]}")");
  EXPECT_EQ(members[3].first, "value");
  EXPECT_EQ(members[3].second, R"({ "b" : 1e400 })");
  EXPECT_EQ(members[4].second, "{}");
  EXPECT_EQ(Member(text, "value"), R"({ "b" : 1e400 })");
  EXPECT_EQ(Member(text, "b"), std::nullopt);  // not a top-level member
  EXPECT_TRUE(Members("{}").empty());
  EXPECT_TRUE(Members("[1]").empty());
  EXPECT_TRUE(Members("").empty());
}

TEST(JsonTextElementsTest, ExactElementTexts) {
  const auto elements = Elements(R"([ {"a":"]"} , 1e400,"x" ,[[]], null ])");
  ASSERT_EQ(elements.size(), 5u);
  EXPECT_EQ(elements[0], R"({"a":"]"})");
  EXPECT_EQ(elements[1], "1e400");
  EXPECT_EQ(elements[2], "\"x\"");
  EXPECT_EQ(elements[3], "[[]]");
  EXPECT_EQ(elements[4], "null");
  EXPECT_TRUE(Elements("[]").empty());
  EXPECT_TRUE(Elements("[ ]").empty());
  EXPECT_TRUE(Elements("{}").empty());
}

TEST(JsonTextDecodeStringTest, DecodesEveryEscape) {
  EXPECT_EQ(DecodeString(R"("")"), "");
  EXPECT_EQ(DecodeString(R"("a\"b\\c\/d\b\f\n\r\t")"), "a\"b\\c/d\b\f\n\r\t");
  EXPECT_EQ(DecodeString(R"("\u00e9\u20AC\uD83D\uDE00\u0000")"),
            std::string("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\0", 10));
  EXPECT_EQ(DecodeString("\"caf\xc3\xa9\""), "caf\xc3\xa9");
  EXPECT_EQ(DecodeString("1"), std::nullopt);
  EXPECT_EQ(DecodeString("\""), std::nullopt);
}

TEST(JsonTextLayoutTest, MinifyRemovesOnlyWhitespaceOutsideStrings) {
  EXPECT_EQ(Minify(" { \"a b\" : [ 1 , 123456789012345678901234567890 ] ,\n\"c\":\" x \" } "),
            R"({"a b":[1,123456789012345678901234567890],"c":" x "})");
  EXPECT_EQ(Minify(R"("\" ")"), R"("\" ")");
  EXPECT_EQ(Minify("1e400"), "1e400");
}

TEST(JsonTextLayoutTest, IndentLaysOutAsTheLibraryDoes) {
  for (const std::string text :
       {R"({"a":[1,2,{"b":null,"c":[]}],"d":{},"e":"x: [y], {z}","f":true})", R"([])", R"({})",
        R"(5)", R"("s")", R"([[[]],[{}],[1]])", R"({"k":{"l":{"m":[{"n":"\"q\""}]}}})"}) {
    // Reformatted from a spaced-out copy, it matches dump(2) of the same document.
    const std::string spaced = nlohmann::json::parse(text).dump(4);
    EXPECT_EQ(Indent(spaced, 2), nlohmann::json::parse(text).dump(2)) << text;
    EXPECT_EQ(Minify(spaced), nlohmann::json::parse(text).dump()) << text;
  }
  // And it keeps what the library would change.
  EXPECT_EQ(Indent(R"({"z":123456789012345678901234567890,"a":"\u00e9"})", 2),
            "{\n  \"z\": 123456789012345678901234567890,\n  \"a\": \"\\u00e9\"\n}");
}

TEST(JsonTextReplaceNullMemberTest, PutsTheTextInPlaceOfTheNull) {
  EXPECT_EQ(ReplaceNullMember(R"({"key":"k","value":null,"z":"\"value\":null"})", "value",
                              R"({"n":123456789012345678901234567890})"),
            R"({"key":"k","value":{"n":123456789012345678901234567890},"z":"\"value\":null"})");
  // Only a top-level member counts, whatever comes first in the text.
  EXPECT_EQ(ReplaceNullMember(R"({"a":{"value":null},"value":null})", "value", "1e400"),
            R"({"a":{"value":null},"value":1e400})");
  EXPECT_EQ(ReplaceNullMember(R"({"value":1})", "value", "2"), std::nullopt);
  EXPECT_EQ(ReplaceNullMember(R"({"other":null})", "value", "2"), std::nullopt);
  EXPECT_EQ(ReplaceNullMember("[null]", "value", "2"), std::nullopt);
}

}  // namespace
}  // namespace bifrost::config::json_text
