#include "cli/duration.h"

#include <limits>

namespace bifrost::cli {

std::optional<std::int64_t> ParseDurationSeconds(std::string_view text) {
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  if (text.empty()) return std::nullopt;
  std::int64_t total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::int64_t number = 0;
    const std::size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      const int digit = text[i] - '0';
      if (number > (kMax - digit) / 10) return std::nullopt;
      number = number * 10 + digit;
      ++i;
    }
    if (i == start || i == text.size()) return std::nullopt;  // no digits, or no unit
    std::int64_t unit = 0;
    switch (text[i]) {
      case 's':
        unit = 1;
        break;
      case 'm':
        unit = 60;
        break;
      case 'h':
        unit = 3600;
        break;
      case 'd':
        unit = 86400;
        break;
      case 'w':
        unit = std::int64_t{7} * 86400;
        break;
      default:
        return std::nullopt;
    }
    ++i;
    if (number > kMax / unit) return std::nullopt;
    const std::int64_t part = number * unit;
    if (total > kMax - part) return std::nullopt;
    total += part;
  }
  if (total == 0) return std::nullopt;
  return total;
}

}  // namespace bifrost::cli
