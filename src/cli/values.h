// Config values on the command line: the type named by --type or inferred from the text, and
// the JSON the API expects for it (openapi ConfigWrite.value).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace bifrost::cli {

enum class ValueType { kString, kInt, kBool, kJson, kSecret };

// "string", "int", "bool", "json", "secret".
std::string_view ValueTypeName(ValueType type);
std::optional<ValueType> ParseValueType(std::string_view name);

// The type the Python SDK infers for text given without --type: a JSON object or array is
// json, exactly "true"/"false" is bool, a canonical 64-bit integer is int, anything else is
// string. A secret is never inferred.
ValueType InferValueType(std::string_view text);

// The request's "value" for `text` of `type`: int → JSON integer, bool → JSON boolean, json →
// the parsed document, string and secret → JSON string. kInvalidArgument when the text is not
// a value of that type; the message names `key` and the rule, never the value.
Result<nlohmann::json> ValueToJson(ValueType type, std::string_view text, std::string_view key);

// `value` (as returned by the API) as the text `config get` prints: strings raw, int and bool
// as their literal, json compact.
std::string ValueToText(const nlohmann::json& value);

}  // namespace bifrost::cli
