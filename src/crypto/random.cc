#include "crypto/random.h"

#include <openssl/rand.h>

#include <array>
#include <climits>

#include "common/text.h"

namespace bifrost::crypto {

Status RandomBytes(std::span<std::uint8_t> out) {
  std::size_t done = 0;
  while (done < out.size()) {
    const std::size_t chunk = std::min<std::size_t>(out.size() - done, INT_MAX);
    if (RAND_bytes(out.data() + done, static_cast<int>(chunk)) != 1) {
      return Fail(ErrorCode::kInternal, "the system random number generator failed");
    }
    done += chunk;
  }
  return Ok();
}

Result<std::string> NewUuidV4() {
  std::array<std::uint8_t, 16> bytes{};
  BIFROST_RETURN_IF_ERROR(RandomBytes(bytes));
  bytes[6] = static_cast<std::uint8_t>((bytes[6] & 0x0F) | 0x40);  // version 4
  bytes[8] = static_cast<std::uint8_t>((bytes[8] & 0x3F) | 0x80);  // RFC 4122 variant
  return FormatUuid(bytes);
}

}  // namespace bifrost::crypto
