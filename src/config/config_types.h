// The config model: what an entry is, its types, and the rules every value follows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"
#include "store/store.h"

namespace bifrost::config {

enum class ConfigType { kString, kInt, kBool, kJson, kSecret };

// "string", "int", "bool", "json", "secret".
std::string_view ConfigTypeName(ConfigType type);
// The inverse of ConfigTypeName; kInvalidArgument naming the accepted types otherwise.
Result<ConfigType> ParseConfigType(std::string_view name);

// How deep a json value may nest ("[[1]]" is 2): deep enough for any real document, shallow
// enough that no later recursive walk of it can exhaust the stack.
inline constexpr std::size_t kMaxJsonDepth = 64;

struct Limits {
  std::size_t max_value_bytes = 64 * 1024;
  std::size_t max_description_bytes = 1024;
};

// Where an entry seen from an organization came from.
enum class Source { kOrg, kGlobal };
std::string_view SourceName(Source source);  // "org" | "global"

// An entry as shown to callers. Never carries a secret's value: `value` is empty for
// secrets, and the only way to a secret's plaintext is ScopeConfig::Reveal.
struct ConfigEntry {
  std::string key;
  ConfigType type = ConfigType::kString;
  std::optional<std::string> value;  // nullopt for secrets
  std::string description;
  store::Scope scope = store::Scope::Global();  // the scope the entry is stored in
  Source source = Source::kGlobal;
  UnixMicros created_at = 0;
  UnixMicros updated_at = 0;
  std::string updated_by;
  std::int64_t version = 0;
  // Set by ScopeConfig::List: an organization's entry that hides a global entry of the key.
  bool overrides_global = false;
};

struct Organization {
  std::string id;
  std::string name;
  UnixMicros created_at = 0;
};

// Rules. Each returns kInvalidArgument with a message naming the thing and the rule, and
// never echoes a secret value.
Status ValidateKey(std::string_view key);  // ^[A-Za-z0-9_]{1,255}$
Status ValidateValue(std::string_view key, ConfigType type, std::string_view value,
                     const Limits& limits);
Status ValidateDescription(std::string_view key, std::string_view description,
                           const Limits& limits);
Status ValidateActor(std::string_view actor);  // who made a change
// 1-128 bytes of UTF-8, no control characters, no surrounding spaces, and not of the form of
// a UUID in any letter case (clients read such text as an organization id).
Status ValidateOrgName(std::string_view name);

}  // namespace bifrost::config
