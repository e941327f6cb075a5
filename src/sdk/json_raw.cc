#include "sdk/json_raw.h"

#include "config/json_text.h"

namespace bifrost::sdk::internal {

namespace json_text = config::json_text;

bool IsJson(std::string_view text, std::size_t* error_at) {
  const auto error = json_text::Check(text);
  if (error && error_at != nullptr) *error_at = error->offset;
  return !error.has_value();
}

std::string_view Trim(std::string_view text) { return json_text::Trim(text); }

std::optional<std::vector<std::pair<std::string, std::string_view>>> Members(
    std::string_view checked) {
  if (!Trim(checked).starts_with('{')) return std::nullopt;
  return json_text::Members(checked);
}

std::optional<std::vector<std::string_view>> Elements(std::string_view checked) {
  if (!Trim(checked).starts_with('[')) return std::nullopt;
  return json_text::Elements(checked);
}

std::optional<std::string> DecodeString(std::string_view token) {
  return json_text::DecodeString(token);
}

std::string QuoteString(std::string_view utf8) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(utf8.size() * 6 + 2);  // never reallocates: no stray copy of a secret is left
  out.push_back('"');
  for (const char c : utf8) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (u < 0x20) {
          out += "\\u00";
          out.push_back(kHex[u >> 4]);
          out.push_back(kHex[u & 0xF]);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

void Wipe(std::string& s) noexcept {
  // resize() within the capacity never reallocates: the whole buffer becomes addressable.
  s.resize(s.capacity());
  volatile char* p = s.data();
  for (std::size_t i = 0; i < s.size(); ++i) p[i] = '\0';
  s.clear();
}

}  // namespace bifrost::sdk::internal
