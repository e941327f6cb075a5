#include "cli/values.h"

#include "common/text.h"

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

// nullopt when `text` is not one JSON document (surrounding whitespace allowed).
std::optional<nlohmann::json> ParseJson(std::string_view text) {
  nlohmann::json parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return std::nullopt;
  return parsed;
}

std::string Subject(std::string_view key) { return "config " + QuoteForMessage(key); }

}  // namespace

ValueType InferValueType(std::string_view text) {
  // Cheap pre-check so that ordinary strings are not run through the JSON parser.
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && (text[first] == '{' || text[first] == '[')) {
    auto parsed = ParseJson(text);
    if (parsed && (parsed->is_object() || parsed->is_array())) return ValueType::kJson;
  }
  if (text == "true" || text == "false") return ValueType::kBool;
  if (ParseCanonicalInt64(text)) return ValueType::kInt;
  return ValueType::kString;
}

Result<nlohmann::json> ValueToJson(ValueType type, std::string_view text, std::string_view key) {
  switch (type) {
    case ValueType::kInt: {
      auto number = ParseCanonicalInt64(text);
      if (!number) {
        return Fail(ErrorCode::kInvalidArgument,
                    Subject(key) +
                        " has type int but the value is not a 64-bit integer "
                        "(decimal, optional '-', no leading zeros)");
      }
      return nlohmann::json(*number);
    }
    case ValueType::kBool:
      if (text == "true") return nlohmann::json(true);
      if (text == "false") return nlohmann::json(false);
      return Fail(ErrorCode::kInvalidArgument,
                  Subject(key) + " has type bool but the value is not true or false");
    case ValueType::kJson: {
      auto parsed = ParseJson(text);
      if (!parsed) {
        return Fail(ErrorCode::kInvalidArgument,
                    Subject(key) + " has type json but the value is not one JSON document");
      }
      return std::move(*parsed);
    }
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
      return nlohmann::json(std::string(text));
  }
  return Fail(ErrorCode::kInternal, "unknown value type");
}

std::string ValueToText(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace bifrost::cli
