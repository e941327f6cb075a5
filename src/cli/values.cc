#include "cli/values.h"

#include <nlohmann/json.hpp>

#include "common/text.h"
#include "config/json_text.h"

namespace bifrost::cli {

std::string_view ValueTypeName(ValueType type) {
  switch (type) {
    case ValueType::kString:
      return "string";
    case ValueType::kInt:
      return "int";
    case ValueType::kBool:
      return "bool";
    case ValueType::kJson:
      return "json";
    case ValueType::kSecret:
      return "secret";
  }
  return "string";
}

std::optional<ValueType> ParseValueType(std::string_view name) {
  for (ValueType type : {ValueType::kString, ValueType::kInt, ValueType::kBool, ValueType::kJson,
                         ValueType::kSecret}) {
    if (ValueTypeName(type) == name) return type;
  }
  return std::nullopt;
}

namespace {

// True when `text` is one JSON document (surrounding whitespace allowed), numbers of any size.
bool IsJsonDocument(std::string_view text) { return !config::json_text::Check(text); }

std::string Subject(std::string_view key) { return "config " + QuoteForMessage(key); }

}  // namespace

ValueType InferValueType(std::string_view text) {
  // Cheap pre-check so that ordinary strings are not run through the JSON checker.
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && (text[first] == '{' || text[first] == '[') &&
      IsJsonDocument(text)) {
    return ValueType::kJson;
  }
  if (text == "true" || text == "false") return ValueType::kBool;
  if (ParseCanonicalInt64(text)) return ValueType::kInt;
  return ValueType::kString;
}

Result<std::string> ValueToJsonText(ValueType type, std::string_view text, std::string_view key) {
  switch (type) {
    case ValueType::kInt: {
      auto number = ParseCanonicalInt64(text);
      if (!number) {
        return Fail(ErrorCode::kInvalidArgument,
                    Subject(key) +
                        " has type int but the value is not a 64-bit integer "
                        "(decimal, optional '-', no leading zeros)");
      }
      return std::to_string(*number);
    }
    case ValueType::kBool:
      if (text == "true" || text == "false") return std::string(text);
      return Fail(ErrorCode::kInvalidArgument,
                  Subject(key) + " has type bool but the value is not true or false");
    case ValueType::kJson:
      if (!IsJsonDocument(text)) {
        return Fail(ErrorCode::kInvalidArgument,
                    Subject(key) + " has type json but the value is not one JSON document");
      }
      return std::string(config::json_text::Trim(text));
    case ValueType::kString:
    case ValueType::kSecret:
      if (!IsValidUtf8(text)) {
        return Fail(ErrorCode::kInvalidArgument, Subject(key) + " has type " +
                                                     std::string(ValueTypeName(type)) +
                                                     " but the value is not valid UTF-8");
      }
      if (type == ValueType::kSecret && text.empty()) {
        return Fail(ErrorCode::kInvalidArgument,
                    Subject(key) + " has type secret but the value is empty");
      }
      // Valid UTF-8, so the strict serialiser cannot throw.
      return nlohmann::json(std::string(text)).dump();
  }
  return Fail(ErrorCode::kInternal, "unknown value type");
}

std::string DisplayValue(std::string_view value_json_text) {
  const std::string_view text = config::json_text::Trim(value_json_text);
  if (auto decoded = config::json_text::DecodeString(text)) return std::move(*decoded);
  return config::json_text::Minify(text);
}

}  // namespace bifrost::cli
