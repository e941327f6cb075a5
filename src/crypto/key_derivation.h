// Deriving Fernet keys from operator-supplied secrets.
#pragma once

#include <cstddef>
#include <string_view>

#include "common/status.h"
#include "crypto/fernet.h"
#include "crypto/secure_buffer.h"

namespace bifrost::crypto {

// BIFROST_SECRET_KEY must be at least this many characters (Unicode code points).
inline constexpr std::size_t kMinSecretKeyChars = 32;

// HKDF-SHA256 (RFC 5869): extract-then-expand to `length` bytes.
Result<SecureBuffer> HkdfSha256(std::span<const std::uint8_t> ikm, std::string_view salt,
                                std::string_view info, std::size_t length);

// The master Fernet key of a Bifrost installation, derived from BIFROST_SECRET_KEY exactly
// as the Python Bifrost derives it: HKDF-SHA256, IKM = the UTF-8 bytes of the secret,
// salt "bifrost_secrets_v1", info "bifrost-secrets-encryption", 32 bytes.
//
// kInvalidArgument when the secret is not UTF-8 or shorter than kMinSecretKeyChars; the
// message names `source` (e.g. "BIFROST_SECRET_KEY") and never contains the secret.
Result<FernetKey> DeriveMasterKey(std::string_view secret, std::string_view source);

}  // namespace bifrost::crypto
