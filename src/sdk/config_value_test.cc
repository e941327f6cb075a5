// ConfigValue: factories, typed accessors, text, masking, copies.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "bifrost/client.h"

namespace bifrost::sdk {
namespace {

using nlohmann::json;

// Expects `call` to throw exactly Error (not a subclass), whose message does not hold `secret`.
template <typename F>
void ExpectError(F&& call, const std::string& secret = "hunter2") {
  try {
    call();
    ADD_FAILURE() << "nothing was thrown";
  } catch (const Error& e) {
    EXPECT_EQ(typeid(e), typeid(Error)) << e.what();
    EXPECT_EQ(e.status(), 0);
    EXPECT_EQ(std::string(e.what()).find(secret), std::string::npos) << e.what();
  }
}

TEST(ConfigTypeTest, Names) {
  EXPECT_EQ(ConfigTypeName(ConfigType::kString), "string");
  EXPECT_EQ(ConfigTypeName(ConfigType::kInt), "int");
  EXPECT_EQ(ConfigTypeName(ConfigType::kBool), "bool");
  EXPECT_EQ(ConfigTypeName(ConfigType::kJson), "json");
  EXPECT_EQ(ConfigTypeName(ConfigType::kSecret), "secret");
}

TEST(ConfigValueTest, DefaultIsAnEmptyString) {
  const ConfigValue value;
  EXPECT_EQ(value.type(), ConfigType::kString);
  EXPECT_EQ(value.AsString(), "");
  EXPECT_FALSE(value.masked());
}

TEST(ConfigValueTest, EachFactoryMakesItsType) {
  const auto s = ConfigValue::String("hello");
  EXPECT_EQ(s.type(), ConfigType::kString);
  EXPECT_EQ(s.AsString(), "hello");
  EXPECT_EQ(s.Text(), "hello");

  const auto i = ConfigValue::Int(std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(i.type(), ConfigType::kInt);
  EXPECT_EQ(i.AsInt(), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(i.Text(), "-9223372036854775808");

  const auto b = ConfigValue::Bool(true);
  EXPECT_EQ(b.type(), ConfigType::kBool);
  EXPECT_TRUE(b.AsBool());
  EXPECT_EQ(b.Text(), "true");
  EXPECT_EQ(ConfigValue::Bool(false).Text(), "false");

  const auto j = ConfigValue::Json({{"b", {1, 2}}, {"a", nullptr}});
  EXPECT_EQ(j.type(), ConfigType::kJson);
  EXPECT_EQ(j.AsJson(), (json{{"a", nullptr}, {"b", {1, 2}}}));
  EXPECT_EQ(j.Text(), R"({"a":null,"b":[1,2]})");

  const auto p = ConfigValue::Secret("hunter2");
  EXPECT_EQ(p.type(), ConfigType::kSecret);
  EXPECT_FALSE(p.masked());
  EXPECT_EQ(p.AsString(), "hunter2");
  EXPECT_EQ(p.Text(), "hunter2");
}

TEST(ConfigValueTest, WrongTypeAccessorsThrowWithoutTheValue) {
  const auto secret = ConfigValue::Secret("hunter2");
  ExpectError([&] { secret.AsInt(); });
  ExpectError([&] { secret.AsBool(); });
  ExpectError([&] { secret.AsJson(); });
  const auto text = ConfigValue::String("hunter2");
  ExpectError([&] { text.AsInt(); });
  ExpectError([&] { ConfigValue::Int(1).AsString(); });
  ExpectError([&] { ConfigValue::Int(1).AsBool(); });
  ExpectError([&] { ConfigValue::Bool(true).AsInt(); });
  ExpectError([&] { ConfigValue::Json(json::array()).AsString(); });
  ExpectError([&] { ConfigValue::Json(json::array()).AsInt(); });
  try {
    ConfigValue::Int(1).AsString();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "the config value has type int, not string or secret");
  }
}

TEST(ConfigValueTest, MaskedSecret) {
  const auto masked = ConfigValue::MaskedSecret();
  EXPECT_EQ(masked.type(), ConfigType::kSecret);
  EXPECT_TRUE(masked.masked());
  EXPECT_EQ(masked.AsString(), "[SECRET]");
  EXPECT_EQ(masked.Text(), "[SECRET]");
  EXPECT_FALSE(ConfigValue::Secret("[SECRET]").masked());
}

TEST(ConfigValueTest, JsonTextIsKeptExactly) {
  const std::string text = " {\"big\": 123456789012345678901234567890, \"e\": 1e400} ";
  const auto value = ConfigValue::JsonText(text);
  EXPECT_EQ(value.type(), ConfigType::kJson);
  EXPECT_EQ(value.Text(), text);
  ExpectError([&] { value.AsJson(); });  // 1e400 does not fit a double

  const auto big = ConfigValue::JsonText("123456789012345678901234567890");
  EXPECT_TRUE(big.AsJson().is_number_float());  // nlohmann's reading: a double
  EXPECT_EQ(big.Text(), "123456789012345678901234567890");
  EXPECT_EQ(ConfigValue::JsonText("null").AsJson(), json(nullptr));
}

TEST(ConfigValueTest, JsonTextMustBeJson) {
  for (const std::string text : {"", " ", "{", "{\"a\":1,}", "[1 2]", "hunter2", "01", "\"\xff\"",
                                 "{} {}", "'a'", "NaN", "[1]]"}) {
    ExpectError([&] { ConfigValue::JsonText(text); });
  }
}

TEST(ConfigValueTest, JsonOfInvalidUtf8IsAnError) {
  ExpectError([] { ConfigValue::Json(json("bad \xff")); });
}

TEST(ConfigValueTest, CopiesAndMoves) {
  const auto original = ConfigValue::Secret(std::string(100, 's'));
  ConfigValue copy = original;
  EXPECT_EQ(copy.AsString(), std::string(100, 's'));
  EXPECT_EQ(copy.type(), ConfigType::kSecret);

  ConfigValue moved = std::move(copy);
  EXPECT_EQ(moved.AsString(), std::string(100, 's'));

  ConfigValue assigned = ConfigValue::Int(1);
  assigned = original;
  EXPECT_EQ(assigned.type(), ConfigType::kSecret);
  EXPECT_EQ(assigned.AsString(), std::string(100, 's'));
  assigned = ConfigValue::Bool(true);
  EXPECT_TRUE(assigned.AsBool());
  assigned = ConfigValue::String("short");
  EXPECT_EQ(assigned.AsString(), "short");

  ConfigValue& self = assigned;
  assigned = self;
  EXPECT_EQ(assigned.AsString(), "short");
  assigned = std::move(self);
  EXPECT_EQ(assigned.AsString(), "short");

  const ConfigValue masked_copy = ConfigValue::MaskedSecret();
  ConfigValue masked = masked_copy;
  EXPECT_TRUE(masked.masked());
}

}  // namespace
}  // namespace bifrost::sdk
