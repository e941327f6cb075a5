// The JSON helpers of the API: strict parsing limits, timestamps, wiping.
#include "server/json_io.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace bifrost::server::json_io {
namespace {

TEST(FormatTimestampTest, RfcThreeThreeThreeNineUtcWithMicroseconds) {
  EXPECT_EQ(FormatTimestamp(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(FormatTimestamp(1'764'425'528'123'456), "2025-11-29T14:12:08.123456Z");
  EXPECT_EQ(FormatTimestamp(1'700'000'000'000'001), "2023-11-14T22:13:20.000001Z");
  EXPECT_EQ(FormatTimestamp(951'782'400'000'000), "2000-02-29T00:00:00.000000Z");
  // Before the epoch: the fraction still counts forward from the whole second.
  EXPECT_EQ(FormatTimestamp(-1), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(FormatTimestamp(253'402'300'799'999'999), "9999-12-31T23:59:59.999999Z");
}

TEST(FormatTimestampTest, NullWhenAbsent) {
  EXPECT_TRUE(TimestampOrNull(std::nullopt).is_null());
  EXPECT_EQ(TimestampOrNull(0), "1970-01-01T00:00:00.000000Z");
}

TEST(ParseJsonTest, AcceptsDocumentsUpToTheDepthLimit) {
  const std::string deepest = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  EXPECT_TRUE(ParseJson(deepest));
  const std::string deeper = "[" + deepest + "]";
  const auto refused = ParseJson(deeper);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), "the JSON document nests deeper than 64 levels");
  std::string objects;
  for (std::size_t i = 0; i < kMaxJsonDepth + 1; ++i) objects += "{\"a\":";
  objects += "1" + std::string(kMaxJsonDepth + 1, '}');
  EXPECT_FALSE(ParseJson(objects));
  EXPECT_TRUE(ParseJson(deepest, {.max_depth = kMaxJsonDepth, .reject_duplicate_keys = true}));
  EXPECT_FALSE(ParseJson("[[1]]", {.max_depth = 1, .reject_duplicate_keys = true}));
}

TEST(ParseJsonTest, DuplicateKeysAreRefusedUnlessAllowed) {
  const auto refused = ParseJson(R"({"x":{"a":1,"b":2,"a":3}})");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), "the JSON document has the key 'a' twice in one object");
  const auto allowed = ParseJson(R"({"x":{"a":1,"b":2,"a":3}})", {.reject_duplicate_keys = false});
  ASSERT_TRUE(allowed);
  EXPECT_EQ(Dump(*allowed), R"({"x":{"a":3,"b":2}})");
  // The same key in different objects is no duplicate.
  EXPECT_TRUE(ParseJson(R"({"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]})"));
}

TEST(ParseJsonTest, BuildsTheSameDocumentAsTheLibrary) {
  const std::string text =
      R"({"s":"t\u00e9\n\"q\"","i":-42,"u":18446744073709551615,"f":2.5e-3,"b":[true,false,null],)"
      R"("o":{},"a":[],"e":""})";
  const auto parsed = ParseJson(text);
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_EQ(*parsed, Json::parse(text));
  EXPECT_TRUE((*parsed)["i"].is_number_integer());
  EXPECT_TRUE((*parsed)["u"].is_number_unsigned());
  EXPECT_TRUE((*parsed)["f"].is_number_float());
}

TEST(ParseJsonTest, ErrorsGiveAnOffsetAndNeverQuoteTheInput) {
  for (const std::string& text :
       std::vector<std::string>{"", "{", "{\"k\":\"hunter2", "[1,]", "hunter2", "{} x",
                                "{\"k\":\"hunter2\"", "\"hunter2\x01\""}) {
    const auto result = ParseJson(text);
    ASSERT_FALSE(result) << text;
    EXPECT_TRUE(result.error().starts_with("the JSON document is not valid JSON (error at byte "))
        << result.error();
    EXPECT_EQ(result.error().find("hunter2"), std::string::npos) << result.error();
  }
}

TEST(ObjectFieldsTest, TypedReadersNameTheField) {
  const Json object = Json::parse(
      R"({"s":"v","n":5,"big":9223372036854775808,"neg":-9223372036854775808,"f":1.0,"z":null})");
  EXPECT_EQ(OptionalString(object, "s").value(), "v");
  EXPECT_EQ(OptionalString(object, "absent").value(), std::nullopt);
  EXPECT_EQ(OptionalString(object, "n").error(), "field 'n' must be a string, not a number");
  EXPECT_EQ(OptionalString(object, "z").error(), "field 'z' must be a string, not null");
  EXPECT_EQ(OptionalInt64(object, "n").value(), 5);
  EXPECT_EQ(OptionalInt64(object, "neg").value(), INT64_MIN);
  EXPECT_EQ(OptionalInt64(object, "absent").value(), std::nullopt);
  EXPECT_EQ(OptionalInt64(object, "big").error(),
            "field 'big' is outside the signed 64-bit integer range");
  EXPECT_EQ(OptionalInt64(object, "f").error(),
            "field 'f' must be an integer, not a fractional number");
  EXPECT_EQ(OptionalInt64(object, "s").error(), "field 's' must be an integer, not a string");

  EXPECT_EQ(FindUnknownField(object, {"s", "n", "big", "neg", "f", "z"}, "a thing"), std::nullopt);
  EXPECT_EQ(FindUnknownField(Json::parse(R"({"name":1,"nme":2})"), {"name"}, "an organization"),
            "unknown field 'nme' in an organization; the fields are name");
}

TEST(ParseObjectBodyTest, NeedsAJsonObjectWithAJsonContentType) {
  HttpRequest request;
  request.headers["content-type"] = "application/json";
  request.body = R"({"a":1})";
  EXPECT_TRUE(ParseObjectBody(request));
  request.body = "[1]";
  EXPECT_EQ(ParseObjectBody(request).error(),
            "the request body is an array; a JSON object is required");
  request.body = "{\"a\":\"\xff\"}";
  EXPECT_EQ(ParseObjectBody(request).error(), "the request body is not valid UTF-8");
  request.body = "";
  EXPECT_EQ(ParseObjectBody(request).error(),
            "the request body is empty; a JSON object is required");
  request.body = R"({"a":1})";
  request.headers["content-type"] = "text/json";
  EXPECT_EQ(ParseObjectBody(request).error(),
            "the request body must be JSON sent with Content-Type: application/json");
  request.headers.erase("content-type");
  EXPECT_FALSE(ParseObjectBody(request));
}

HttpRequest JsonRequest(std::string body) {
  HttpRequest request;
  request.headers["content-type"] = "application/json";
  request.body = std::move(body);
  return request;
}

TEST(ParseObjectBodyTest, NestsOneLevelMoreThanAValue) {
  // The body object plus a value of kMaxJsonDepth levels.
  const std::string deepest = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  EXPECT_TRUE(ParseObjectBody(JsonRequest(R"({"v":)" + deepest + "}")));
  const auto refused = ParseObjectBody(JsonRequest(R"({"v":[)" + deepest + "]}"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(),
            "the request body nests deeper than 65 levels (the object and a value of at most 64)");
}

TEST(ParseObjectBodyTest, RefusesDuplicateKeysAndBadJsonWithoutQuotingIt) {
  EXPECT_EQ(ParseObjectBody(JsonRequest(R"({"x":{"a":1,"b":2,"a":3}})")).error(),
            "the request body has the key 'a' twice in one object");
  EXPECT_EQ(ParseObjectBody(JsonRequest(R"({"k":"hunter2)")).error(),
            "the request body is not valid JSON (error at byte 14)");
  EXPECT_EQ(ParseObjectBody(JsonRequest(R"("hunter2")")).error(),
            "the request body is a string; a JSON object is required");
  EXPECT_EQ(ParseObjectBody(JsonRequest("1e400")).error(),
            "the request body is a number; a JSON object is required");
}

TEST(ParseObjectBodyKeepingTest, KeepsTheMemberAsTheExactTextSent) {
  const std::string value = R"({ "z" : 123456789012345678901234567890, "a" : [1e400] })";
  const HttpRequest request =
      JsonRequest(R"( {"type": "json", "value" : )" + value + R"(, "n": 5} )");
  const auto body = ParseObjectBodyKeeping(request, "value");
  ASSERT_TRUE(body) << body.error();
  ASSERT_TRUE(body->kept.has_value());
  EXPECT_EQ(*body->kept, value);
  EXPECT_EQ(body->document, Json({{"type", "json"}, {"value", nullptr}, {"n", 5}}));
  // Absent: nullopt, and the document has no such member.
  const auto without = ParseObjectBodyKeeping(JsonRequest(R"({"type":"json"})"), "value");
  ASSERT_TRUE(without);
  EXPECT_FALSE(without->kept.has_value());
  EXPECT_FALSE(without->document.contains("value"));
  // The other members are parsed as ParseObjectBody parses them; 1e400 is no double.
  EXPECT_EQ(ParseObjectBodyKeeping(JsonRequest(R"({"value":1,"n":1e400})"), "value").error(),
            "field 'n' of the request body holds a number out of range");
  EXPECT_EQ(ParseObjectBody(JsonRequest(R"({"value":1e400})")).error(),
            "field 'value' of the request body holds a number out of range");
}

TEST(DumpWithRawFieldTest, SplicesCheckedJsonVerbatim) {
  const Json skeleton = {{"key", "k"}, {"value", nullptr}, {"z", "\"value\":null"}};
  EXPECT_EQ(
      DumpWithRawField(skeleton, "value", R"( {"b":1e400,"a":123456789012345678901234567890} )"),
      R"({"key":"k","value":{"b":1e400,"a":123456789012345678901234567890},)"
      R"("z":"\"value\":null"})");
  EXPECT_EQ(DumpWithRawField(skeleton, "value", "\"s\""),
            R"({"key":"k","value":"s","z":"\"value\":null"})");
  // Never anything that would make the response invalid JSON.
  for (const std::string& bad : std::vector<std::string>{
           "", "{", "1 2", "\"\xff\"", R"(","x":")",
           std::string(kMaxJsonDepth + 1, '[') + std::string(kMaxJsonDepth + 1, ']')}) {
    EXPECT_EQ(DumpWithRawField(skeleton, "value", bad), std::nullopt) << bad;
  }
  EXPECT_EQ(DumpWithRawField(Json{{"value", 1}}, "value", "2"), std::nullopt);
  EXPECT_EQ(DumpWithRawField(Json{{"other", nullptr}}, "value", "2"), std::nullopt);
}

TEST(DumpWithStringFieldTest, WritesWhatDumpWouldWrite) {
  const Json skeleton = {{"key", "k"}, {"value", nullptr}, {"z", "\"value\":null"}, {"n", 1}};
  for (const std::string& text : std::vector<std::string>{
           "", "plain", "quote \" backslash \\ slash /", "\b\f\n\r\t", std::string(1, '\0'),
           "\x01\x1f\x7f", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "null", "\"value\":null",
           std::string(10'000, 'x')}) {
    Json expected = skeleton;
    expected["value"] = text;
    const auto written = DumpWithStringField(skeleton, "value", text);
    ASSERT_TRUE(written) << text;
    EXPECT_EQ(*written, Dump(expected)) << text;
    EXPECT_EQ(Json::parse(*written), expected);
  }
}

TEST(DumpWithStringFieldTest, RefusesWhatItCannotWrite) {
  EXPECT_FALSE(DumpWithStringField(Json{{"value", nullptr}}, "value", "\xff"));
  EXPECT_FALSE(DumpWithStringField(Json{{"value", 1}}, "value", "x"));
  EXPECT_FALSE(DumpWithStringField(Json{{"other", nullptr}}, "value", "x"));
  EXPECT_FALSE(DumpWithStringField(Json::array({nullptr}), "value", "x"));
  EXPECT_EQ(DumpWithStringField(Json{{"va\"lue", nullptr}}, "va\"lue", "x"), R"({"va\"lue":"x"})");
}

TEST(WipeStringsTest, OverwritesEveryStringInPlace) {
  Json document = Json::parse(R"({"a":"secret","b":["x",{"c":"yy"}],"n":1})");
  const char* data = document["a"].get_ref<const std::string&>().data();
  WipeStrings(document);
  EXPECT_EQ(document["a"].get<std::string>(), std::string(6, '\0'));
  EXPECT_EQ(document["a"].get_ref<const std::string&>().data(), data);  // the same storage
  EXPECT_EQ(document["b"][0].get<std::string>(), std::string(1, '\0'));
  EXPECT_EQ(document["b"][1]["c"].get<std::string>(), std::string(2, '\0'));
  EXPECT_EQ(document["n"], 1);
}

}  // namespace
}  // namespace bifrost::server::json_io
