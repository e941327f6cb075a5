// Config values on the command line: the type named by --type or inferred from the text, and
// the JSON the API expects for it (openapi ConfigWrite.value). Values are handled as JSON text
// throughout (config/json_text.h), so a json value round-trips byte for byte.
#pragma once

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

// The JSON text of the request's "value" for `text` of `type`: int -> a JSON integer, bool ->
// a JSON boolean, json -> the text itself (checked, surrounding whitespace removed: never
// parsed and re-serialised, so 123456789012345678901234567890, 1e400 and member order are
// sent as typed), string and secret -> a JSON string. kInvalidArgument when the text is not a
// value of that type; the message names `key` and the rule, never the value.
Result<std::string> ValueToJsonText(ValueType type, std::string_view text, std::string_view key);

// A value's JSON text (as the API returns it, checked JSON) as the text `config get` prints:
// a JSON string decoded, anything else compact but otherwise exactly as sent.
std::string DisplayValue(std::string_view value_json_text);

}  // namespace bifrost::cli
