#include "workflow/redactor.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/text.h"

namespace bifrost::workflow {

namespace {

using crypto::SecureBuffer;

constexpr std::size_t kMinSecretChars = 4;
constexpr char kHexDigits[] = "0123456789abcdef";

// Code points of well-formed UTF-8, or bytes of anything else.
std::size_t CharCount(std::string_view s) {
  if (!IsValidUtf8(s)) return s.size();
  std::size_t count = 0;
  while (!s.empty()) {
    s.remove_prefix(Utf8SequenceLength(s));
    ++count;
  }
  return count;
}

// The code point of the well-formed sequence of `length` bytes at the start of `s`.
char32_t DecodeUtf8(std::string_view s, std::size_t length) {
  const auto b = [&s](std::size_t i) {
    return static_cast<char32_t>(static_cast<unsigned char>(s[i]));
  };
  switch (length) {
    case 1:
      return b(0);
    case 2:
      return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    case 3:
      return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    default:
      return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
}

// Appends `prefix` and then `digits` lower-case hex digits of `value`.
void AppendHex(SecureBuffer& out, std::string_view prefix, char32_t value, int digits) {
  std::array<char, 12> buf{};
  std::size_t n = 0;
  for (char c : prefix) buf[n++] = c;
  for (int shift = 4 * (digits - 1); shift >= 0; shift -= 4)
    buf[n++] = kHexDigits[(value >> shift) & 0xF];
  out.Append(std::string_view(buf.data(), n));
}

// The short escapes JSON shares with every encoder; false for anything else.
bool AppendJsonShortEscape(SecureBuffer& out, char32_t c) {
  switch (c) {
    case '"':
      out.Append("\\\"");
      return true;
    case '\\':
      out.Append("\\\\");
      return true;
    case '\b':
      out.Append("\\b");
      return true;
    case '\f':
      out.Append("\\f");
      return true;
    case '\n':
      out.Append("\\n");
      return true;
    case '\r':
      out.Append("\\r");
      return true;
    case '\t':
      out.Append("\\t");
      return true;
    default:
      return false;
  }
}

// The JSON string content most encoders emit (nlohmann, Python with ensure_ascii=False,
// JavaScript): short escapes, \u00XX for the other control characters, the rest as is.
// Works on bytes, so it is defined for any input.
SecureBuffer JsonForm(std::string_view s) {
  SecureBuffer out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (AppendJsonShortEscape(out, c)) continue;
    if (c < 0x20) {
      AppendHex(out, "\\u", c, 4);
    } else {
      out.Append(std::string_view(&ch, 1));
    }
  }
  return out;
}

// Python's json.dumps with the default ensure_ascii=True: everything outside printable
// ASCII (DEL included) as \uXXXX in lower-case hex, surrogate pairs above U+FFFF.
// Only for well-formed UTF-8.
SecureBuffer AsciiJsonForm(std::string_view s) {
  SecureBuffer out;
  while (!s.empty()) {
    const std::size_t length = Utf8SequenceLength(s);
    const char32_t c = DecodeUtf8(s, length);
    if (AppendJsonShortEscape(out, c)) {
      // done
    } else if (c >= 0x20 && c < 0x7F) {
      out.Append(s.substr(0, 1));
    } else if (c < 0x10000) {
      AppendHex(out, "\\u", c, 4);
    } else {
      const char32_t v = c - 0x10000;
      AppendHex(out, "\\u", 0xD800 + (v >> 10), 4);
      AppendHex(out, "\\u", 0xDC00 + (v & 0x3FF), 4);
    }
    s.remove_prefix(length);
  }
  return out;
}

// Characters Python's str.isprintable() rejects, other than the unassigned ones (which
// would need the Unicode database): controls, separators other than the ASCII space, the
// common format characters, private use.
bool PythonNonPrintable(char32_t c) {
  return c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD || c == 0x061C || c == 0x1680 ||
         c == 0x180E || (c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F) ||
         (c >= 0x205F && c <= 0x2064) || (c >= 0x2066 && c <= 0x206F) || c == 0x3000 ||
         (c >= 0xE000 && c <= 0xF8FF) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFB) ||
         c == 0xFFFE || c == 0xFFFF || c >= 0xF0000;
}

// The inside of Python's repr() of a str: \\, \n, \r, \t, \xXX / \uXXXX / \UXXXXXXXX for
// what is not printable, and \' when `escape_quote` (repr escapes ' only when the string
// also holds a ", as it then quotes with '). Ill-formed UTF-8 is taken byte by byte.
SecureBuffer ReprForm(std::string_view s, bool escape_quote) {
  const bool utf8 = IsValidUtf8(s);
  SecureBuffer out;
  while (!s.empty()) {
    const std::size_t length = utf8 ? Utf8SequenceLength(s) : 1;
    const char32_t c =
        utf8 ? DecodeUtf8(s, length) : static_cast<char32_t>(static_cast<unsigned char>(s[0]));
    if (c == '\\') {
      out.Append("\\\\");
    } else if (c == '\'' && escape_quote) {
      out.Append("\\'");
    } else if (c == '\n') {
      out.Append("\\n");
    } else if (c == '\r') {
      out.Append("\\r");
    } else if (c == '\t') {
      out.Append("\\t");
    } else if (c < 0x20 || c == 0x7F || (utf8 && PythonNonPrintable(c))) {
      if (c <= 0xFF) {
        AppendHex(out, "\\x", c, 2);
      } else if (c <= 0xFFFF) {
        AppendHex(out, "\\u", c, 4);
      } else {
        AppendHex(out, "\\U", c, 8);
      }
    } else {
      out.Append(s.substr(0, length));
    }
    s.remove_prefix(length);
  }
  return out;
}

// forms_ order: by first byte, then longest first (so the first match is the longest).
bool FormBefore(const SecureBuffer& a, const SecureBuffer& b) {
  if (a.data()[0] != b.data()[0]) return a.data()[0] < b.data()[0];
  return a.size() > b.size();
}

}  // namespace

void Redactor::Add(std::string_view secret) {
  if (CharCount(secret) < kMinSecretChars) return;

  std::vector<SecureBuffer> forms;
  forms.push_back(SecureBuffer::From(secret));
  forms.push_back(JsonForm(secret));
  // JSON inside JSON (a workflow returning or printing json.dumps of something holding the
  // secret): the escaped forms escaped once more.
  forms.push_back(JsonForm(forms.back().view()));
  if (IsValidUtf8(secret)) {
    forms.push_back(AsciiJsonForm(secret));
    forms.push_back(JsonForm(forms.back().view()));
  }
  const bool has_single = secret.find('\'') != std::string_view::npos;
  const bool has_double = secret.find('"') != std::string_view::npos;
  // What repr() really prints, and the other spelling of the single quote.
  forms.push_back(ReprForm(secret, has_single && has_double));
  if (has_single) forms.push_back(ReprForm(secret, !has_double));

  std::lock_guard<std::mutex> lock(mu_);
  for (const SecureBuffer& known : secrets_) {
    if (known.Equals(secret)) return;
  }
  secrets_.push_back(SecureBuffer::From(secret));
  for (SecureBuffer& form : forms) {
    const bool known = std::any_of(forms_.begin(), forms_.end(), [&form](const SecureBuffer& f) {
      return f.Equals(form.view());
    });
    if (known) continue;
    auto at = std::upper_bound(forms_.begin(), forms_.end(), form, FormBefore);
    forms_.insert(at, std::move(form));
  }
}

std::size_t Redactor::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return secrets_.size();
}

std::string Redactor::Apply(std::string_view text, bool cut_at_end) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (forms_.empty()) return std::string(text);

  // The forms starting with byte b are forms_[first[b], first[b + 1]), longest first.
  std::array<std::uint32_t, 257> first{};
  for (const SecureBuffer& form : forms_) ++first[form.data()[0] + 1u];
  for (std::size_t b = 1; b < first.size(); ++b) first[b] += first[b - 1];

  std::string out;
  out.reserve(text.size());
  const char* const data = text.data();
  const std::size_t n = text.size();
  std::size_t copied = 0;  // text[0, copied) is in `out` already
  std::size_t i = 0;
  while (i < n) {
    const auto b = static_cast<unsigned char>(data[i]);
    std::size_t match = 0;
    bool cut = false;
    const std::size_t remaining = n - i;
    for (std::uint32_t k = first[b]; k < first[b + 1u]; ++k) {
      const std::string_view form = forms_[k].view();
      if (form.size() <= remaining) {
        if (std::memcmp(data + i, form.data(), form.size()) == 0) {
          match = form.size();
          break;
        }
      } else if (cut_at_end && std::memcmp(data + i, form.data(), remaining) == 0) {
        // The text ends inside what may be this form, and no shorter match can be longer.
        cut = true;
        break;
      }
    }
    if (cut) {
      out.append(data + copied, i - copied);
      out.append(kRedacted);
      return out;
    }
    if (match == 0) {
      ++i;
      continue;
    }
    out.append(data + copied, i - copied);
    out.append(kRedacted);
    i += match;
    copied = i;
  }
  out.append(data + copied, n - copied);
  return out;
}

std::string Redactor::ApplyToJson(std::string_view json_text) const {
  std::string redacted = Apply(json_text);
  if (nlohmann::json::accept(redacted)) return redacted;
  // Invalid UTF-8 (which the text may have had all along) becomes U+FFFD instead of throwing.
  return nlohmann::json(redacted).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace bifrost::workflow
