// Randomness from OpenSSL's CSPRNG (RAND_bytes). Used for IVs, data keys and ids.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "common/status.h"

namespace bifrost::crypto {

// Fills `out` with cryptographically secure random bytes. kInternal if the CSPRNG fails
// (it never returns predictable bytes).
Status RandomBytes(std::span<std::uint8_t> out);

// Random bytes for key material, straight from OpenSSL's private generator
// (RAND_priv_bytes), never from the per-thread block that serves IVs: key bytes must not
// sit in memory before they are needed.
Status RandomKeyBytes(std::span<std::uint8_t> out);

// A random (version 4) UUID in canonical lower-case form.
Result<std::string> NewUuidV4();

}  // namespace bifrost::crypto
