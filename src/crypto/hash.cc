#include "crypto/hash.h"

#include <openssl/evp.h>

#include <array>
#include <cstdio>
#include <cstdlib>

#include "common/text.h"
#include "crypto/secure_buffer.h"

namespace bifrost::crypto {

std::string Sha256Hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1 ||
      length != 32) {
    std::fputs("bifrost: OpenSSL SHA-256 failed\n", stderr);
    std::abort();
  }
  std::string hex =
      HexEncode(std::string_view(reinterpret_cast<const char*>(digest.data()), length));
  // The digest of a token is what the store keeps, but the stack copy need not linger.
  SecureWipe(digest.data(), digest.size());
  return hex;
}

}  // namespace bifrost::crypto
