// Small text checks shared by the config model and the store.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bifrost {

// The length of the well-formed UTF-8 sequence at the start of `s` (1 for ASCII), or 0 if
// `s` is empty or starts with an ill-formed one (overlong form, surrogate, above U+10FFFF,
// truncated).
std::size_t Utf8SequenceLength(std::string_view s);

// True if `s` is well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF).
bool IsValidUtf8(std::string_view s);

// `s` as text every store keeps unchanged: valid UTF-8 without NUL. Each byte that does not
// begin a valid sequence (a stray or cut-off byte), and each NUL, becomes U+FFFD; the rest
// is kept. For text a program produced (workflow output), not for input to validate.
std::string ToStorableText(std::string_view s);

// True if `s` contains an ASCII control character (U+0000-U+001F or U+007F).
bool HasControlChar(std::string_view s);

// A canonical lower-case UUID: 8-4-4-4-12 hex digits.
bool IsCanonicalUuid(std::string_view s);

// Formats 16 bytes as a canonical lower-case UUID string.
std::string FormatUuid(const std::array<std::uint8_t, 16>& bytes);

// Lower-case hex of arbitrary bytes.
std::string HexEncode(std::string_view bytes);

// Parses a base-10 int64 in canonical form: optional '-', no '+', no leading zeros, no
// spaces. nullopt when the text is not such a number or is out of range.
std::optional<std::int64_t> ParseCanonicalInt64(std::string_view s);

}  // namespace bifrost

namespace bifrost {

// `s` with ASCII letters lower-cased (other bytes unchanged): for case-insensitive names
// such as header fields and enum spellings.
std::string AsciiLower(std::string_view s);

// `s` without leading and trailing spaces and tabs.
std::string_view TrimSpacesAndTabs(std::string_view s);

// n with a comma between groups of three digits ("1,234,567", "-1,000"): counts for people.
std::string GroupThousands(std::int64_t n);

// `s` quoted for an error message: at most 64 bytes of it, control and non-ASCII bytes as
// \xNN, in single quotes. Only for names and other non-secret input.
std::string QuoteForMessage(std::string_view s);

}  // namespace bifrost
