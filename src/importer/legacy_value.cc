#include "importer/legacy_value.h"

#include <optional>

#include "common/text.h"
#include "config/json_text.h"
#include "crypto/key_derivation.h"

namespace bifrost::importer {
namespace {

namespace json_text = config::json_text;
using config::ConfigType;

enum class Kind { kString, kNumber, kBool, kNull, kObject, kArray };

// The kind of a checked, trimmed JSON value.
Kind KindOf(std::string_view v) {
  switch (v.empty() ? '\0' : v.front()) {
    case '"':
      return Kind::kString;
    case '{':
      return Kind::kObject;
    case '[':
      return Kind::kArray;
    case 't':
    case 'f':
      return Kind::kBool;
    case 'n':
      return Kind::kNull;
    default:
      return Kind::kNumber;
  }
}

std::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kString:
      return "a string";
    case Kind::kNumber:
      return "a number";
    case Kind::kBool:
      return "a boolean";
    case Kind::kNull:
      return "null";
    case Kind::kObject:
      return "an object";
    case Kind::kArray:
      return "an array";
  }
  return "a value";
}

Error Invalid(std::string message) {
  return Error(ErrorCode::kInvalidArgument, std::move(message));
}

// "type int needs ..., but the value is a string that is not one".
Error Mismatch(ConfigType type, std::string_view needs, std::string_view found) {
  std::string message = "type ";
  message += config::ConfigTypeName(type);
  message += " needs ";
  message += needs;
  message += " in {\"value\": ...}, but the value is ";
  message += found;
  return Invalid(std::move(message));
}

std::string_view TrimSpaces(std::string_view s) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

// Canonical decimal of an optionally signed run of digits (leading zeros and '+' allowed);
// nullopt when `text` is not such a run or is outside the 64-bit range.
std::optional<std::string> CanonicalInteger(std::string_view text) {
  bool negative = false;
  if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
    negative = text.front() == '-';
    text.remove_prefix(1);
  }
  if (text.empty()) return std::nullopt;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  while (text.size() > 1 && text.front() == '0') text.remove_prefix(1);
  std::string out;
  if (negative && text != "0") out.push_back('-');
  out.append(text);
  if (!ParseCanonicalInt64(out)) return std::nullopt;
  return out;
}

Result<std::string> IntValue(std::string_view v, Kind kind) {
  constexpr std::string_view kNeeds = "a 64-bit integer";
  if (kind == Kind::kNumber) {
    if (v.find_first_of(".eE") != std::string_view::npos) {
      return Fail(Mismatch(ConfigType::kInt, kNeeds, "a number with a fraction or exponent"));
    }
    auto canonical = CanonicalInteger(v);
    if (!canonical) return Fail(Mismatch(ConfigType::kInt, kNeeds, "outside the 64-bit range"));
    return std::move(*canonical);
  }
  if (kind == Kind::kString) {
    const auto decoded = json_text::DecodeString(v);
    const auto canonical = decoded ? CanonicalInteger(TrimSpaces(*decoded)) : std::nullopt;
    if (!canonical) {
      return Fail(Mismatch(ConfigType::kInt, kNeeds,
                           "a string that is not a decimal integer within the 64-bit range"));
    }
    return *canonical;
  }
  return Fail(Mismatch(ConfigType::kInt, kNeeds, KindName(kind)));
}

Result<std::string> BoolValue(std::string_view v, Kind kind) {
  constexpr std::string_view kNeeds = "true or false";
  if (kind == Kind::kBool) return std::string(v);
  if (kind == Kind::kString) {
    const auto decoded = json_text::DecodeString(v);
    const std::string lowered = decoded ? AsciiLower(TrimSpaces(*decoded)) : "";
    if (lowered == "true" || lowered == "false") return lowered;
    return Fail(Mismatch(ConfigType::kBool, kNeeds, "a string other than \"true\" or \"false\""));
  }
  return Fail(Mismatch(ConfigType::kBool, kNeeds, KindName(kind)));
}

Result<std::string> JsonValue(std::string_view v, Kind kind) {
  if (kind != Kind::kString) return std::string(v);
  // The Python API takes values as strings, so a json entry set through it holds the
  // document as text. A string that is not a document was a JSON string all along.
  auto decoded = json_text::DecodeString(v);
  if (!decoded) return Fail(Invalid("the value is not a valid JSON string"));
  const std::string_view content = json_text::Trim(*decoded);
  if (!content.empty() && !json_text::Check(content)) return std::string(content);
  return std::string(v);
}

Result<std::string> TextValue(ConfigType type, std::string_view v, Kind kind) {
  if (kind != Kind::kString) return Fail(Mismatch(type, "a JSON string", KindName(kind)));
  auto decoded = json_text::DecodeString(v);
  if (!decoded) return Fail(Invalid("the value is not a valid JSON string"));
  return std::move(*decoded);
}

}  // namespace

Result<ConfigType> ParseLegacyConfigType(std::string_view text) {
  auto type = config::ParseConfigType(AsciiLower(TrimSpaces(text)));
  if (!type) {
    return Fail(ErrorCode::kInvalidArgument,
                "config_type " + QuoteForMessage(text) +
                    " is unknown: expected string, int, bool, json or secret");
  }
  return *type;
}

Result<std::string> CanonicalLegacyValue(ConfigType type, std::string_view key,
                                         std::string_view jsonb, const config::Limits& limits) {
  // The wrapper object adds one level to the value's own nesting.
  if (const auto error = json_text::Check(jsonb, {.max_depth = config::kMaxJsonDepth + 1})) {
    if (error->kind == json_text::CheckError::Kind::kTooDeep) {
      return Fail(Invalid("the value nests deeper than " + std::to_string(config::kMaxJsonDepth) +
                          " levels"));
    }
    std::string message = "the value column is not valid JSON (error at byte ";
    message += std::to_string(error->offset + 1);
    message += ")";
    return Fail(Invalid(std::move(message)));
  }
  const std::string_view document = json_text::Trim(jsonb);
  if (KindOf(document) != Kind::kObject) {
    return Fail(Invalid("the value column is not a JSON object {\"value\": ...}"));
  }
  const auto member = json_text::Member(document, "value");
  if (!member) return Fail(Invalid("the value column has no \"value\" member"));
  const std::string_view v = json_text::Trim(*member);
  const Kind kind = KindOf(v);
  if (kind == Kind::kNull && type != ConfigType::kJson) {
    std::string message = "the value is null, which type ";
    message += config::ConfigTypeName(type);
    message += " cannot hold";
    return Fail(Invalid(std::move(message)));
  }

  std::string out;
  switch (type) {
    case ConfigType::kString: {
      BIFROST_ASSIGN_OR_RETURN(out, TextValue(type, v, kind));
      break;
    }
    case ConfigType::kInt: {
      BIFROST_ASSIGN_OR_RETURN(out, IntValue(v, kind));
      break;
    }
    case ConfigType::kBool: {
      BIFROST_ASSIGN_OR_RETURN(out, BoolValue(v, kind));
      break;
    }
    case ConfigType::kJson: {
      BIFROST_ASSIGN_OR_RETURN(out, JsonValue(v, kind));
      break;
    }
    case ConfigType::kSecret: {
      BIFROST_ASSIGN_OR_RETURN(out, TextValue(type, v, kind));
      if (out.empty()) return Fail(Invalid("the secret is empty"));
      // The plaintext is what gets validated, once it is opened.
      return out;
    }
  }
  BIFROST_RETURN_IF_ERROR(config::ValidateValue(key, type, out, limits));
  return out;
}

std::string_view KdfName(LegacySecretKeys::Kdf kdf) {
  return kdf == LegacySecretKeys::Kdf::kHkdf ? "HKDF" : "PBKDF2";
}

Result<LegacySecretKeys> LegacySecretKeys::Create(std::string_view source_secret,
                                                  std::string_view source) {
  BIFROST_ASSIGN_OR_RETURN(crypto::FernetKey hkdf,
                           crypto::DeriveLegacyHkdfKey(source_secret, source));
  BIFROST_ASSIGN_OR_RETURN(crypto::FernetKey pbkdf2,
                           crypto::DeriveLegacyPbkdf2Key(source_secret, source));
  return LegacySecretKeys(std::move(hkdf), std::move(pbkdf2));
}

namespace {

Result<std::string> LegacyToken(std::string_view stored) {
  auto token = crypto::UnwrapLegacyBifrostValue(stored);
  if (!token) {
    return Fail(ErrorCode::kInvalidArgument,
                "the secret is not in the Python Bifrost's stored form (base64url of a Fernet "
                "token)");
  }
  return std::move(*token);
}

Error NotOpened(std::string_view tried) {
  std::string message = "the secret does not decrypt with the source key (";
  message += tried;
  message += "): is the source key the old installation's BIFROST_SECRET_KEY?";
  return Error(ErrorCode::kIntegrity, std::move(message));
}

Error Malformed(crypto::FernetError error) {
  std::string message = "the secret is not a valid Fernet token: ";
  message += crypto::FernetErrorMessage(error);
  return Error(ErrorCode::kInvalidArgument, std::move(message));
}

}  // namespace

Result<LegacySecretKeys::Opened> LegacySecretKeys::Open(std::string_view key,
                                                        std::string_view stored,
                                                        const config::Limits& limits) const {
  BIFROST_ASSIGN_OR_RETURN(const std::string token, LegacyToken(stored));
  // Stored values never expire: no TTL, so the time is not looked at.
  const crypto::FernetDecryptOptions options{.now_seconds = 0, .ttl_seconds = std::nullopt};
  Opened opened;
  auto plaintext = hkdf_.Decrypt(token, options);
  if (!plaintext && plaintext.error() == crypto::FernetError::kBadMac) {
    plaintext = pbkdf2_.Decrypt(token, options);
    opened.kdf = Kdf::kPbkdf2;
  }
  if (!plaintext) {
    if (plaintext.error() == crypto::FernetError::kBadMac) {
      return Fail(NotOpened("neither its HKDF nor its PBKDF2 derivation opens it"));
    }
    return Fail(Malformed(plaintext.error()));
  }
  opened.plaintext = std::move(*plaintext);
  BIFROST_RETURN_IF_ERROR(
      config::ValidateValue(key, ConfigType::kSecret, opened.plaintext.view(), limits));
  return opened;
}

Result<LegacySecretKeys::Opened> LegacySecretKeys::OpenWith(Kdf kdf, std::string_view key,
                                                            std::string_view stored,
                                                            const config::Limits& limits) const {
  BIFROST_ASSIGN_OR_RETURN(const std::string token, LegacyToken(stored));
  const crypto::FernetKey& fernet = kdf == Kdf::kHkdf ? hkdf_ : pbkdf2_;
  auto plaintext = fernet.Decrypt(token, {.now_seconds = 0, .ttl_seconds = std::nullopt});
  if (!plaintext) {
    if (plaintext.error() == crypto::FernetError::kBadMac) {
      std::string tried = "its ";
      tried += KdfName(kdf);
      tried += " derivation does not open it";
      return Fail(NotOpened(tried));
    }
    return Fail(Malformed(plaintext.error()));
  }
  Opened opened{.plaintext = std::move(*plaintext), .kdf = kdf};
  BIFROST_RETURN_IF_ERROR(
      config::ValidateValue(key, ConfigType::kSecret, opened.plaintext.view(), limits));
  return opened;
}

}  // namespace bifrost::importer
