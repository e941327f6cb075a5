#include "server/request_target.h"

#include <string>
#include <string_view>

#include "common/text.h"

namespace bifrost::server {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int hi = HexValue(text[i + 1]);
      const int lo = HexValue(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Result<RequestTarget> ParseRequestTarget(std::string_view target) {
  if (target.empty() || target.front() != '/') {
    return Fail(ErrorCode::kInvalidArgument, "the request target must be a path starting with '/'");
  }
  if (target.find('#') != std::string_view::npos) {
    return Fail(ErrorCode::kInvalidArgument, "the request target must not contain a fragment");
  }
  const std::size_t question = target.find('?');
  const std::string_view raw_path = target.substr(0, question);
  RequestTarget result;

  // An encoded slash is refused: see the header.
  for (std::size_t i = 0; i + 2 < raw_path.size(); ++i) {
    if (raw_path[i] == '%' && raw_path[i + 1] == '2' &&
        (raw_path[i + 2] == 'F' || raw_path[i + 2] == 'f')) {
      return Fail(ErrorCode::kInvalidArgument,
                  "the request path contains an encoded '/' (%2F), which no route accepts");
    }
  }
  auto path = PercentDecode(raw_path, /*plus_is_space=*/false);
  if (!path) {
    return Fail(ErrorCode::kInvalidArgument, "the request path has a malformed %-escape");
  }
  if (HasControlChar(*path)) {
    return Fail(ErrorCode::kInvalidArgument, "the request path contains a control character");
  }
  result.path = std::move(*path);

  if (question == std::string_view::npos) return result;
  std::string_view rest = target.substr(question + 1);
  while (!rest.empty()) {
    const std::size_t amp = rest.find('&');
    const std::string_view piece = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (piece.empty()) continue;
    const std::size_t eq = piece.find('=');
    auto name = PercentDecode(piece.substr(0, eq), /*plus_is_space=*/true);
    auto value = PercentDecode(
        eq == std::string_view::npos ? std::string_view() : piece.substr(eq + 1), true);
    if (!name || !value) {
      return Fail(ErrorCode::kInvalidArgument, "the query string has a malformed %-escape");
    }
    if (HasControlChar(*name) || HasControlChar(*value)) {
      return Fail(ErrorCode::kInvalidArgument, "the query string contains a control character");
    }
    result.query.insert_or_assign(std::move(*name), std::move(*value));
  }
  return result;
}

}  // namespace bifrost::server
