// Durations on the command line (`--ttl 30m`).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace bifrost::cli {

// Seconds in a duration written as one or more <number><unit> parts, unit one of s, m, h, d,
// w: "90s", "30m", "24h", "7d", "1h30m". nullopt for anything else, for zero and on overflow.
std::optional<std::int64_t> ParseDurationSeconds(std::string_view text);

}  // namespace bifrost::cli
