// URL-safe base64 (RFC 4648 section 5) with padding, as Fernet uses it.
//
// Decoding is strict: only the URL-safe alphabet, padding required so the length is a
// multiple of 4, '=' only at the end, and unused trailing bits must be zero. Anything else
// is rejected rather than guessed at, so one byte string has exactly one encoding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace bifrost {

std::string Base64UrlEncode(std::span<const std::uint8_t> data);
// The encoded length of `n` bytes (padding included).
constexpr std::size_t Base64UrlEncodedSize(std::size_t n) { return (n + 2) / 3 * 4; }
// Encodes into `out`, which must hold exactly Base64UrlEncodedSize(data.size()) characters:
// for key material, so that no unwiped std::string ever holds it.
void Base64UrlEncodeInto(std::span<const std::uint8_t> data, std::span<char> out);
inline std::string Base64UrlEncode(std::string_view data) {
  return Base64UrlEncode(std::span<const std::uint8_t>(
      reinterpret_cast<const std::uint8_t*>(data.data()), data.size()));
}

// Exact decoded length of `encoded` if its length and padding are well formed; nullopt
// otherwise. Does not look at the other characters.
std::optional<std::size_t> Base64UrlDecodedSize(std::string_view encoded);

// Decodes into `out`, which must hold at least Base64UrlDecodedSize(encoded) bytes. Returns
// the number of bytes written, or nullopt if `encoded` is not strict URL-safe base64 (in
// which case `out` may hold partial output the caller must discard or wipe).
std::optional<std::size_t> Base64UrlDecodeInto(std::string_view encoded,
                                               std::span<std::uint8_t> out);

// Convenience for non-secret data (ciphertexts, tokens): nullopt on malformed input.
std::optional<std::string> Base64UrlDecode(std::string_view encoded);

}  // namespace bifrost
