// JSON as text, for the SDK's reading of config entries without losing anything: a json
// config value is stored exactly as sent, and nlohmann::json would turn a 30-digit integer
// into a double and refuse 1e400. So an answer is checked here, split into the exact texts of
// its members, and only the parts that are not config values are parsed with nlohmann.
//
// The checks and splitting are config/json_text's (the server's own); this adds the SDK's
// shapes (nullopt for the wrong kind), string quoting and wiping. Internal to the SDK (not
// installed): src/sdk/ only.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bifrost::sdk::internal {

// True when `text` is exactly one JSON value (RFC 8259: strings of valid UTF-8 with valid
// escapes and paired surrogates), whitespace around it allowed. Iterative: hostile nesting
// costs no stack. On false, `*error_at` (if given) is the byte where the problem was found.
bool IsJson(std::string_view text, std::size_t* error_at = nullptr);

// `text` without the JSON whitespace around it.
std::string_view Trim(std::string_view text);

// The members of a checked object, in order: decoded name and exact value text. nullopt when
// the checked text is not an object.
std::optional<std::vector<std::pair<std::string, std::string_view>>> Members(
    std::string_view checked);

// The exact texts of the elements of a checked array; nullopt when it is not an array.
std::optional<std::vector<std::string_view>> Elements(std::string_view checked);

// The decoded content of a checked string token ("\"a\\n\"" -> "a\n"); nullopt when the
// token is not a string.
std::optional<std::string> DecodeString(std::string_view token);

// `utf8` as a JSON string token, quotes included (only '"', '\\' and control characters are
// escaped). The caller checks that `utf8` is valid UTF-8.
std::string QuoteString(std::string_view utf8);

// Overwrites every byte of the string's buffer (its whole capacity, so a short string's
// inline buffer too), then empties it. Best effort: earlier copies are not reached.
void Wipe(std::string& s) noexcept;

}  // namespace bifrost::sdk::internal
