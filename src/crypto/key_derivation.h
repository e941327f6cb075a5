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

namespace bifrost::crypto {

// ---- Source keys of the import from the Python Bifrost (src/importer/) ----
//
// These derive the master key of *another* installation, to read its secrets once. They
// never make a key this installation seals with: that is DeriveMasterKey alone.

// PBKDF2-HMAC-SHA256 (RFC 8018) of `password` to `length` bytes.
Result<SecureBuffer> Pbkdf2HmacSha256(std::span<const std::uint8_t> password, std::string_view salt,
                                      unsigned iterations, std::size_t length);

// The iteration count older Python Bifrost installations used with PBKDF2.
inline constexpr unsigned kLegacyPbkdf2Iterations = 100'000;

// The Python Bifrost's master key, derived as DeriveMasterKey does (HKDF-SHA256, same salt
// and info) but without the minimum length: an old installation may have run with a shorter
// BIFROST_SECRET_KEY, and its values must still be readable. kInvalidArgument only when the
// secret is empty; the message names `source` and never contains the secret.
Result<FernetKey> DeriveLegacyHkdfKey(std::string_view secret, std::string_view source);

// The master key of older Python Bifrost installations: PBKDF2-HMAC-SHA256 of the UTF-8
// bytes of BIFROST_SECRET_KEY, salt "bifrost_secrets_v1", kLegacyPbkdf2Iterations
// iterations, 32 bytes. Same errors as DeriveLegacyHkdfKey.
Result<FernetKey> DeriveLegacyPbkdf2Key(std::string_view secret, std::string_view source);

}  // namespace bifrost::crypto
