// ConfigValue: a typed value whose text is overwritten when it goes away.
#include <string>
#include <utility>

#include "bifrost/client.h"
#include "sdk/json_raw.h"

namespace bifrost::sdk {
namespace {

constexpr std::string_view kSecretMask = "[SECRET]";

}  // namespace

std::string_view ConfigTypeName(ConfigType type) noexcept {
  switch (type) {
    case ConfigType::kString:
      return "string";
    case ConfigType::kInt:
      return "int";
    case ConfigType::kBool:
      return "bool";
    case ConfigType::kJson:
      return "json";
    case ConfigType::kSecret:
      return "secret";
  }
  return "unknown";
}

ConfigValue::ConfigValue() = default;

ConfigValue::ConfigValue(ConfigType type, std::string text, std::int64_t number, bool flag,
                         bool masked)
    : type_(type), masked_(masked), text_(std::move(text)), int_(number), bool_(flag) {
  internal::Wipe(text);  // a short string's bytes stay behind when it is moved
}

ConfigValue ConfigValue::String(std::string value) {
  ConfigValue out(ConfigType::kString, std::move(value), 0, false, false);
  internal::Wipe(value);
  return out;
}

ConfigValue ConfigValue::Int(std::int64_t value) {
  return ConfigValue(ConfigType::kInt, {}, value, false, false);
}

ConfigValue ConfigValue::Bool(bool value) {
  return ConfigValue(ConfigType::kBool, {}, 0, value, false);
}

ConfigValue ConfigValue::Json(const nlohmann::json& value) {
  std::string text;
  try {
    text = value.dump();  // strict: a string that is not UTF-8 is an error, not altered
  } catch (const nlohmann::json::exception&) {
    throw Error(
        "ConfigValue::Json: the document cannot be serialized (a string in it is not "
        "valid UTF-8)");
  }
  return ConfigValue(ConfigType::kJson, std::move(text), 0, false, false);
}

ConfigValue ConfigValue::JsonText(std::string text) {
  std::size_t error_at = 0;
  if (!internal::IsJson(text, &error_at)) {
    std::string message =
        "ConfigValue::JsonText: the text is not one valid JSON document (at byte ";
    message += std::to_string(error_at);
    message += ")";
    internal::Wipe(text);
    throw Error(message);
  }
  ConfigValue out(ConfigType::kJson, std::move(text), 0, false, false);
  internal::Wipe(text);
  return out;
}

ConfigValue ConfigValue::Secret(std::string value) {
  ConfigValue out(ConfigType::kSecret, std::move(value), 0, false, false);
  internal::Wipe(value);
  return out;
}

ConfigValue ConfigValue::MaskedSecret() {
  return ConfigValue(ConfigType::kSecret, std::string(kSecretMask), 0, false, true);
}

ConfigValue::ConfigValue(const ConfigValue& other) = default;

ConfigValue::ConfigValue(ConfigValue&& other) noexcept
    : type_(other.type_),
      masked_(other.masked_),
      text_(std::move(other.text_)),
      int_(other.int_),
      bool_(other.bool_) {
  internal::Wipe(other.text_);  // a short string's bytes stay in its inline buffer
}

ConfigValue& ConfigValue::operator=(const ConfigValue& other) {
  if (this == &other) return *this;
  internal::Wipe(text_);
  type_ = other.type_;
  masked_ = other.masked_;
  text_ = other.text_;
  int_ = other.int_;
  bool_ = other.bool_;
  return *this;
}

ConfigValue& ConfigValue::operator=(ConfigValue&& other) noexcept {
  if (this == &other) return *this;
  internal::Wipe(text_);
  type_ = other.type_;
  masked_ = other.masked_;
  text_ = std::move(other.text_);
  int_ = other.int_;
  bool_ = other.bool_;
  internal::Wipe(other.text_);
  return *this;
}

ConfigValue::~ConfigValue() { internal::Wipe(text_); }

void ConfigValue::ThrowWrongType(std::string_view wanted) const {
  std::string message = "the config value has type ";
  message += ConfigTypeName(type_);
  message += ", not ";
  message += wanted;
  throw Error(message);
}

const std::string& ConfigValue::AsString() const {
  if (type_ != ConfigType::kString && type_ != ConfigType::kSecret) {
    ThrowWrongType("string or secret");
  }
  return text_;
}

std::int64_t ConfigValue::AsInt() const {
  if (type_ != ConfigType::kInt) ThrowWrongType("int");
  return int_;
}

bool ConfigValue::AsBool() const {
  if (type_ != ConfigType::kBool) ThrowWrongType("bool");
  return bool_;
}

nlohmann::json ConfigValue::AsJson() const {
  if (type_ != ConfigType::kJson) ThrowWrongType("json");
  try {
    return nlohmann::json::parse(text_);
  } catch (const nlohmann::json::exception&) {
    // The text is valid JSON (checked when it arrived): a number no double can hold.
    throw Error(
        "the json config value cannot be represented as nlohmann::json (a number out of "
        "range); read its exact text with Text()");
  }
}

std::string ConfigValue::Text() const {
  switch (type_) {
    case ConfigType::kInt:
      return std::to_string(int_);
    case ConfigType::kBool:
      return bool_ ? "true" : "false";
    case ConfigType::kString:
    case ConfigType::kSecret:
    case ConfigType::kJson:
      break;
  }
  return text_;
}

}  // namespace bifrost::sdk
