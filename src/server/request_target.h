// Parsing the request target ("/path?query") of an HTTP request into the decoded path and
// query parameters handlers see.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace bifrost::server {

struct RequestTarget {
  std::string path;                          // percent-decoded
  std::map<std::string, std::string> query;  // decoded; the last of repeated names wins
};

// Decodes %XX escapes (and '+' as a space when `plus_is_space`, as in query strings).
// nullopt when an escape is not '%' followed by two hex digits.
std::optional<std::string> PercentDecode(std::string_view text, bool plus_is_space);

// Parses an origin-form target. kInvalidArgument when it does not start with '/', holds a
// fragment or a malformed escape, decodes to a control character (NUL included), or encodes
// a '/' inside a path segment (%2F): routes split paths on '/', and an encoded slash would
// silently change which segment a value belongs to, so it is refused rather than guessed at.
// Query parameters without '=' have the empty value; empty pieces ("a=1&&b=2") are skipped.
Result<RequestTarget> ParseRequestTarget(std::string_view target);

}  // namespace bifrost::server
