#include "config/json_text.h"

#include <set>

#include "common/text.h"

namespace bifrost::config::json_text {
namespace {

bool IsWhitespace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

std::size_t SkipWhitespace(std::string_view text, std::size_t i) {
  while (i < text.size() && IsWhitespace(text[i])) ++i;
  return i;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The code unit of the four hex digits at text[i..i+3], or nullopt.
std::optional<std::uint32_t> Hex4(std::string_view text, std::size_t i) {
  if (i + 4 > text.size()) return std::nullopt;
  std::uint32_t value = 0;
  for (std::size_t k = i; k < i + 4; ++k) {
    const int digit = HexValue(text[k]);
    if (digit < 0) return std::nullopt;
    value = value * 16 + static_cast<std::uint32_t>(digit);
  }
  return value;
}

// Scans the string token starting at text[i] == '"'. Returns the index after its closing
// quote, or sets *error_at to where it is malformed.
std::size_t ScanString(std::string_view text, std::size_t i, std::size_t* error_at) {
  const std::size_t n = text.size();
  ++i;
  while (i < n) {
    const char c = text[i];
    if (c == '"') return i + 1;
    if (c == '\\') {
      if (i + 1 >= n) break;
      const char escaped = text[i + 1];
      if (escaped == 'u') {
        const auto unit = Hex4(text, i + 2);
        if (!unit) break;
        if (*unit >= 0xD800 && *unit <= 0xDBFF) {
          // A high surrogate must be followed by an escaped low surrogate.
          if (i + 7 >= n || text[i + 6] != '\\' || text[i + 7] != 'u') break;
          const auto low = Hex4(text, i + 8);
          if (!low || *low < 0xDC00 || *low > 0xDFFF) break;
          i += 12;
        } else if (*unit >= 0xDC00 && *unit <= 0xDFFF) {
          break;  // a low surrogate alone
        } else {
          i += 6;
        }
        continue;
      }
      if (escaped == '"' || escaped == '\\' || escaped == '/' || escaped == 'b' || escaped == 'f' ||
          escaped == 'n' || escaped == 'r' || escaped == 't') {
        i += 2;
        continue;
      }
      break;
    }
    if (static_cast<unsigned char>(c) < 0x20) break;  // control characters must be escaped
    const std::size_t length = Utf8SequenceLength(text.substr(i));
    if (length == 0) break;
    i += length;
  }
  *error_at = i;
  return 0;
}

// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at text[i]: the index after it, or 0.
std::size_t ScanNumber(std::string_view text, std::size_t i) {
  const std::size_t n = text.size();
  if (i < n && text[i] == '-') ++i;
  if (i < n && text[i] == '0') {
    ++i;
  } else if (i < n && text[i] >= '1' && text[i] <= '9') {
    while (i < n && IsDigit(text[i])) ++i;
  } else {
    return 0;
  }
  if (i < n && text[i] == '.') {
    ++i;
    if (i >= n || !IsDigit(text[i])) return 0;
    while (i < n && IsDigit(text[i])) ++i;
  }
  if (i < n && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < n && (text[i] == '+' || text[i] == '-')) ++i;
    if (i >= n || !IsDigit(text[i])) return 0;
    while (i < n && IsDigit(text[i])) ++i;
  }
  return i;
}

// The index after the string token at text[i] in checked text (bounded by its end).
std::size_t SkipString(std::string_view text, std::size_t i) {
  for (++i; i < text.size(); ++i) {
    if (text[i] == '\\') {
      ++i;
    } else if (text[i] == '"') {
      return i + 1;
    }
  }
  return text.size();
}

// The index after the value starting at text[i] in checked text.
std::size_t SkipValue(std::string_view text, std::size_t i) {
  const std::size_t n = text.size();
  if (i >= n) return n;
  if (text[i] == '"') return SkipString(text, i);
  if (text[i] == '{' || text[i] == '[') {
    std::size_t depth = 0;
    while (i < n) {
      const char c = text[i];
      if (c == '"') {
        i = SkipString(text, i);
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') {
        if (--depth == 0) return i + 1;
      }
      ++i;
    }
    return n;
  }
  while (i < n && !IsWhitespace(text[i]) && text[i] != ',' && text[i] != ']' && text[i] != '}' &&
         text[i] != ':') {
    ++i;
  }
  return i;
}

void AppendUtf8(std::uint32_t code_point, std::string& out) {
  if (code_point < 0x80) {
    out.push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else if (code_point < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (code_point >> 12)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (code_point >> 18)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
}

void AppendNewline(int level, int indent, std::string& out) {
  out.push_back('\n');
  if (level > 0 && indent > 0) out.append(static_cast<std::size_t>(level * indent), ' ');
}

}  // namespace

std::optional<CheckError> Check(std::string_view text, const CheckOptions& options) {
  const std::size_t n = text.size();
  const auto fail = [](CheckError::Kind kind, std::size_t offset, std::string key = {}) {
    return std::optional<CheckError>(CheckError{kind, offset, std::move(key)});
  };
  std::vector<char> open;                    // '{' or '[' per open container
  std::vector<std::set<std::string>> names;  // per open container, with reject_duplicate_keys

  // After '{' or ',' in an object: "name" then ':'; returns the index of the value.
  const auto scan_name = [&](std::size_t i) -> std::optional<std::size_t> {
    if (i >= n || text[i] != '"') return std::nullopt;
    std::size_t error_at = 0;
    const std::size_t end = ScanString(text, i, &error_at);
    if (end == 0) return std::nullopt;
    i = SkipWhitespace(text, end);
    if (i >= n || text[i] != ':') return std::nullopt;
    return SkipWhitespace(text, i + 1);
  };

  std::size_t i = SkipWhitespace(text, 0);
  bool want_value = true;
  while (true) {
    if (want_value) {
      if (i >= n) return fail(CheckError::Kind::kSyntax, i);
      const char c = text[i];
      if (c == '{' || c == '[') {
        if (open.size() >= options.max_depth) return fail(CheckError::Kind::kTooDeep, i);
        open.push_back(c);
        if (options.reject_duplicate_keys) names.emplace_back();
        i = SkipWhitespace(text, i + 1);
        if (i < n && text[i] == (c == '{' ? '}' : ']')) {
          open.pop_back();
          if (options.reject_duplicate_keys) names.pop_back();
          ++i;
          want_value = false;
          continue;
        }
        if (c == '{') {
          const std::size_t name_at = i;
          const auto value_at = scan_name(i);
          if (!value_at) return fail(CheckError::Kind::kSyntax, i);
          if (options.reject_duplicate_keys) {
            names.back().insert(
                DecodeString(text.substr(name_at, SkipString(text, name_at) - name_at))
                    .value_or(""));
          }
          i = *value_at;
        }
        continue;
      }
      std::size_t end = 0;
      std::size_t error_at = i;
      if (c == '"') {
        end = ScanString(text, i, &error_at);
      } else if (c == '-' || IsDigit(c)) {
        end = ScanNumber(text, i);
      } else {
        for (const std::string_view literal : {"true", "false", "null"}) {
          if (text.substr(i, literal.size()) == literal) end = i + literal.size();
        }
      }
      if (end == 0) return fail(CheckError::Kind::kSyntax, error_at);
      i = end;
      want_value = false;
      continue;
    }
    // After a value: the end of the text, or ',' / the closing bracket of its container.
    i = SkipWhitespace(text, i);
    if (open.empty()) {
      if (i == n) return std::nullopt;
      return fail(CheckError::Kind::kSyntax, i);
    }
    if (i >= n) return fail(CheckError::Kind::kSyntax, i);
    const bool in_object = open.back() == '{';
    if (text[i] == ',') {
      i = SkipWhitespace(text, i + 1);
      if (in_object) {
        const std::size_t name_at = i;
        const auto value_at = scan_name(i);
        if (!value_at) return fail(CheckError::Kind::kSyntax, i);
        if (options.reject_duplicate_keys) {
          std::string name =
              DecodeString(text.substr(name_at, SkipString(text, name_at) - name_at)).value_or("");
          if (!names.back().insert(name).second) {
            return fail(CheckError::Kind::kDuplicateKey, name_at, std::move(name));
          }
        }
        i = *value_at;
      }
      want_value = true;
      continue;
    }
    if (text[i] == (in_object ? '}' : ']')) {
      open.pop_back();
      if (options.reject_duplicate_keys) names.pop_back();
      ++i;
      continue;
    }
    return fail(CheckError::Kind::kSyntax, i);
  }
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && IsWhitespace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsWhitespace(text.back())) text.remove_suffix(1);
  return text;
}

std::vector<std::pair<std::string, std::string_view>> Members(std::string_view object_text) {
  std::vector<std::pair<std::string, std::string_view>> members;
  const std::string_view text = Trim(object_text);
  const std::size_t n = text.size();
  if (n == 0 || text[0] != '{') return members;
  std::size_t i = SkipWhitespace(text, 1);
  while (i < n && text[i] == '"') {
    const std::size_t name_end = SkipString(text, i);
    std::string name = DecodeString(text.substr(i, name_end - i)).value_or("");
    i = SkipWhitespace(text, name_end);
    if (i >= n || text[i] != ':') break;
    i = SkipWhitespace(text, i + 1);
    const std::size_t value_end = SkipValue(text, i);
    members.emplace_back(std::move(name), text.substr(i, value_end - i));
    i = SkipWhitespace(text, value_end);
    if (i >= n || text[i] != ',') break;
    i = SkipWhitespace(text, i + 1);
  }
  return members;
}

std::optional<std::string_view> Member(std::string_view object_text, std::string_view name) {
  for (const auto& [member_name, value] : Members(object_text)) {
    if (member_name == name) return value;
  }
  return std::nullopt;
}

std::vector<std::string_view> Elements(std::string_view array_text) {
  std::vector<std::string_view> elements;
  const std::string_view text = Trim(array_text);
  const std::size_t n = text.size();
  if (n == 0 || text[0] != '[') return elements;
  std::size_t i = SkipWhitespace(text, 1);
  if (i < n && text[i] == ']') return elements;
  while (i < n) {
    const std::size_t end = SkipValue(text, i);
    if (end == i) break;
    elements.push_back(text.substr(i, end - i));
    i = SkipWhitespace(text, end);
    if (i >= n || text[i] != ',') break;
    i = SkipWhitespace(text, i + 1);
  }
  return elements;
}

std::optional<std::string> DecodeString(std::string_view token) {
  if (token.size() < 2 || token.front() != '"' || token.back() != '"') return std::nullopt;
  const std::string_view body = token.substr(1, token.size() - 2);
  std::string out;
  out.reserve(body.size());
  for (std::size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (c != '\\' || i + 1 >= body.size()) {
      out.push_back(c);
      continue;
    }
    const char escaped = body[++i];
    switch (escaped) {
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'u': {
        const auto unit = Hex4(body, i + 1);
        if (!unit) return std::nullopt;
        i += 4;
        std::uint32_t code_point = *unit;
        if (code_point >= 0xD800 && code_point <= 0xDBFF) {
          const auto low = (i + 2 < body.size() && body[i + 1] == '\\' && body[i + 2] == 'u')
                               ? Hex4(body, i + 3)
                               : std::nullopt;
          if (!low || *low < 0xDC00 || *low > 0xDFFF) return std::nullopt;
          i += 6;
          code_point = 0x10000 + ((code_point - 0xD800) << 10) + (*low - 0xDC00);
        } else if (code_point >= 0xDC00 && code_point <= 0xDFFF) {
          return std::nullopt;
        }
        AppendUtf8(code_point, out);
        break;
      }
      default:
        out.push_back(escaped);  // " \ /
    }
  }
  return out;
}

std::string Minify(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] == '"') {
      const std::size_t end = SkipString(text, i);
      out.append(text.substr(i, end - i));
      i = end;
      continue;
    }
    if (!IsWhitespace(text[i])) out.push_back(text[i]);
    ++i;
  }
  return out;
}

std::string Indent(std::string_view text, int indent) {
  std::string out;
  out.reserve(text.size() * 2);
  int level = 0;
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (c == '"') {
      const std::size_t end = SkipString(text, i);
      out.append(text.substr(i, end - i));
      i = end;
      continue;
    }
    if (IsWhitespace(c)) {
      ++i;
      continue;
    }
    if (c == '{' || c == '[') {
      const std::size_t next = SkipWhitespace(text, i + 1);
      out.push_back(c);
      if (next < text.size() && text[next] == (c == '{' ? '}' : ']')) {
        out.push_back(text[next]);
        i = next + 1;
        continue;
      }
      AppendNewline(++level, indent, out);
    } else if (c == '}' || c == ']') {
      AppendNewline(--level, indent, out);
      out.push_back(c);
    } else if (c == ',') {
      out.push_back(c);
      AppendNewline(level, indent, out);
    } else if (c == ':') {
      out.append(": ");
    } else {
      out.push_back(c);
    }
    ++i;
  }
  return out;
}

std::optional<std::string> ReplaceNullMember(std::string_view object_text, std::string_view name,
                                             std::string_view value_text) {
  for (const auto& [member_name, value] : Members(object_text)) {
    if (member_name != name) continue;
    if (value != "null") return std::nullopt;
    const auto at = static_cast<std::size_t>(value.data() - object_text.data());
    std::string out;
    out.reserve(object_text.size() + value_text.size());
    out.append(object_text.substr(0, at));
    out.append(value_text);
    out.append(object_text.substr(at + value.size()));
    return out;
  }
  return std::nullopt;
}

}  // namespace bifrost::config::json_text
