#include "config/config_types.h"

#include <algorithm>

#include "common/text.h"
#include "config/json_text.h"

namespace bifrost::config {
namespace {

constexpr std::size_t kMaxKeyLength = 255;
constexpr std::size_t kMaxActorBytes = 255;
constexpr std::size_t kMaxOrgNameBytes = 128;
// Non-secret values up to this size are quoted in error messages ("value 'abc' is not a
// 64-bit integer"): long enough for a typo, too short for most credentials pasted by mistake.
constexpr std::size_t kShownValueBytes = 16;

std::string Q(std::string_view s) { return QuoteForMessage(s); }

// A non-secret value in an error message, shortened so a mistyped secret stays mostly hidden.
std::string ShownValue(std::string_view value) {
  if (value.size() > kShownValueBytes) {
    return "of " + std::to_string(value.size()) + " bytes";
  }
  return Q(value);
}

}  // namespace

std::string_view ConfigTypeName(ConfigType type) {
  switch (type) {
    case ConfigType::kString: return "string";
    case ConfigType::kInt: return "int";
    case ConfigType::kBool: return "bool";
    case ConfigType::kJson: return "json";
    case ConfigType::kSecret: return "secret";
  }
  return "unknown";
}

Result<ConfigType> ParseConfigType(std::string_view name) {
  for (auto type : {ConfigType::kString, ConfigType::kInt, ConfigType::kBool, ConfigType::kJson,
                    ConfigType::kSecret}) {
    if (ConfigTypeName(type) == name) return type;
  }
  return Fail(ErrorCode::kInvalidArgument,
              "config type " + Q(name) + " is unknown; use string, int, bool, json or secret");
}

std::string_view SourceName(Source source) {
  return source == Source::kOrg ? "org" : "global";
}

Status ValidateKey(std::string_view key) {
  const bool chars_ok = std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '_';
  });
  if (key.empty() || key.size() > kMaxKeyLength || !chars_ok) {
    return Fail(ErrorCode::kInvalidArgument,
                "config key " + Q(key) +
                    " is invalid: a key is 1 to 255 characters of A-Z, a-z, 0-9 and _");
  }
  return Ok();
}

Status ValidateValue(std::string_view key, ConfigType type, std::string_view value,
                     const Limits& limits) {
  const std::string what = "config " + Q(key) + " has type " + std::string(ConfigTypeName(type));
  if (value.size() > limits.max_value_bytes) {
    return Fail(ErrorCode::kInvalidArgument,
                "config " + Q(key) + " value is " + std::to_string(value.size()) +
                    " bytes, more than the limit of " + std::to_string(limits.max_value_bytes));
  }
  switch (type) {
    case ConfigType::kString:
      if (!IsValidUtf8(value)) {
        return Fail(ErrorCode::kInvalidArgument, what + " but its value is not valid UTF-8");
      }
      return Ok();
    case ConfigType::kSecret:
      // Never describe the value itself: it is a secret even when it is malformed.
      if (value.empty()) {
        return Fail(ErrorCode::kInvalidArgument, what + " but its value is empty");
      }
      if (!IsValidUtf8(value)) {
        return Fail(ErrorCode::kInvalidArgument, what + " but its value is not valid UTF-8");
      }
      return Ok();
    case ConfigType::kInt:
      if (!ParseCanonicalInt64(value)) {
        return Fail(ErrorCode::kInvalidArgument,
                    what + " but value " + ShownValue(value) +
                        " is not a 64-bit integer (decimal, optional '-', no leading zeros)");
      }
      return Ok();
    case ConfigType::kBool:
      if (value != "true" && value != "false") {
        return Fail(ErrorCode::kInvalidArgument,
                    what + " but value " + ShownValue(value) + " is not true or false");
      }
      return Ok();
    case ConfigType::kJson: {
      // Checked as text, never converted: the stored text is the value, so a 30-digit
      // integer or 1e400 is as valid here as in RFC 8259.
      const auto error = json_text::Check(value, {.max_depth = kMaxJsonDepth});
      if (!error) return Ok();
      if (error->kind == json_text::CheckError::Kind::kTooDeep) {
        return Fail(ErrorCode::kInvalidArgument,
                    what + " but its value nests deeper than " + std::to_string(kMaxJsonDepth) +
                        " levels");
      }
      // The byte is counted from 1, and one past the end for text that stops too early.
      return Fail(ErrorCode::kInvalidArgument,
                  what + " but its value is not a valid JSON document (error at byte " +
                      std::to_string(error->offset + 1) + ")");
    }
  }
  return Fail(ErrorCode::kInternal, "unhandled config type");
}

Status ValidateDescription(std::string_view key, std::string_view description,
                           const Limits& limits) {
  if (description.size() > limits.max_description_bytes) {
    return Fail(ErrorCode::kInvalidArgument,
                "config " + Q(key) + " description is " + std::to_string(description.size()) +
                    " bytes, more than the limit of " +
                    std::to_string(limits.max_description_bytes));
  }
  if (!IsValidUtf8(description)) {
    return Fail(ErrorCode::kInvalidArgument,
                "config " + Q(key) + " description is not valid UTF-8");
  }
  return Ok();
}

Status ValidateActor(std::string_view actor) {
  if (actor.empty() || actor.size() > kMaxActorBytes || !IsValidUtf8(actor) ||
      HasControlChar(actor)) {
    return Fail(ErrorCode::kInvalidArgument,
                "actor " + Q(actor) +
                    " is invalid: 1 to 255 bytes of UTF-8 without control characters");
  }
  return Ok();
}

Status ValidateOrgName(std::string_view name) {
  const bool trimmed = !name.empty() && name.front() != ' ' && name.back() != ' ';
  if (name.size() > kMaxOrgNameBytes || !trimmed || !IsValidUtf8(name) ||
      HasControlChar(name)) {
    return Fail(ErrorCode::kInvalidArgument,
                "organization name " + Q(name) +
                    " is invalid: 1 to 128 bytes of UTF-8, no control characters, no leading "
                    "or trailing space");
  }
  // The CLI (and any client) reads an ORG that has the form of a UUID as an id: a name of
  // that form could be taken for another organization's id.
  std::string lowered(name);
  for (char& c : lowered) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  if (IsCanonicalUuid(lowered)) {
    return Fail(ErrorCode::kInvalidArgument,
                "organization name " + Q(name) +
                    " is invalid: it has the form of an organization id (a UUID); choose a "
                    "name that is not a UUID");
  }
  return Ok();
}

}  // namespace bifrost::config
