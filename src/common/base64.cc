#include "common/base64.h"

#include <array>
#include <cstdlib>

namespace bifrost {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<std::int8_t, 256> MakeReverse() {
  std::array<std::int8_t, 256> table{};
  for (auto& v : table) v = -1;
  for (int i = 0; i < 64; ++i) table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
  return table;
}
constexpr std::array<std::int8_t, 256> kReverse = MakeReverse();

}  // namespace

std::string Base64UrlEncode(std::span<const std::uint8_t> data) {
  std::string out(Base64UrlEncodedSize(data.size()), '=');
  Base64UrlEncodeInto(data, out);
  return out;
}

void Base64UrlEncodeInto(std::span<const std::uint8_t> data, std::span<char> out) {
  if (out.size() != Base64UrlEncodedSize(data.size())) std::abort();  // a caller bug
  char* o = out.data();
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const std::uint32_t v = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8) |
                            data[i + 2];
    *o++ = kAlphabet[(v >> 18) & 63];
    *o++ = kAlphabet[(v >> 12) & 63];
    *o++ = kAlphabet[(v >> 6) & 63];
    *o++ = kAlphabet[v & 63];
  }
  const std::size_t rest = data.size() - i;
  if (rest > 0) {  // one or two bytes left, then padding
    const std::uint32_t v = (std::uint32_t{data[i]} << 16) |
                            (rest == 2 ? std::uint32_t{data[i + 1]} << 8 : 0);
    *o++ = kAlphabet[(v >> 18) & 63];
    *o++ = kAlphabet[(v >> 12) & 63];
    *o++ = rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    *o = '=';
  }
}

std::optional<std::size_t> Base64UrlDecodedSize(std::string_view encoded) {
  if (encoded.size() % 4 != 0) return std::nullopt;
  if (encoded.empty()) return 0;
  std::size_t pad = 0;
  if (encoded.back() == '=') ++pad;
  if (encoded.size() >= 2 && encoded[encoded.size() - 2] == '=') ++pad;
  return encoded.size() / 4 * 3 - pad;
}

std::optional<std::size_t> Base64UrlDecodeInto(std::string_view encoded,
                                               std::span<std::uint8_t> out) {
  const auto size = Base64UrlDecodedSize(encoded);
  if (!size || out.size() < *size) return std::nullopt;
  std::size_t o = 0;
  for (std::size_t i = 0; i < encoded.size(); i += 4) {
    const bool last = i + 4 == encoded.size();
    std::int32_t c[4];
    int valid = 4;
    for (int j = 0; j < 4; ++j) {
      const char ch = encoded[i + static_cast<std::size_t>(j)];
      if (ch == '=') {
        // Padding only in the last quantum, only in its last two places, and only as a tail.
        if (!last || j < 2) return std::nullopt;
        if (valid == 4) valid = j;
        c[j] = 0;
        continue;
      }
      if (valid != 4) return std::nullopt;  // a character after '='
      c[j] = kReverse[static_cast<unsigned char>(ch)];
      if (c[j] < 0) return std::nullopt;
    }
    const std::uint32_t v = (static_cast<std::uint32_t>(c[0]) << 18) |
                            (static_cast<std::uint32_t>(c[1]) << 12) |
                            (static_cast<std::uint32_t>(c[2]) << 6) |
                            static_cast<std::uint32_t>(c[3]);
    out[o++] = static_cast<std::uint8_t>(v >> 16);
    if (valid == 2) {
      if ((v & 0xFFFF) != 0) return std::nullopt;  // non-canonical trailing bits
      break;
    }
    out[o++] = static_cast<std::uint8_t>(v >> 8);
    if (valid == 3) {
      if ((v & 0xFF) != 0) return std::nullopt;
      break;
    }
    out[o++] = static_cast<std::uint8_t>(v);
  }
  return o;
}

std::optional<std::string> Base64UrlDecode(std::string_view encoded) {
  const auto size = Base64UrlDecodedSize(encoded);
  if (!size) return std::nullopt;
  std::string out(*size, '\0');
  const auto written = Base64UrlDecodeInto(
      encoded, std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(out.data()), out.size()));
  if (!written) return std::nullopt;
  return out;
}

}  // namespace bifrost
