// Test-only access to Fernet encryption with a fixed IV, to reproduce the spec's known
// vectors. Production code must never include this: a repeated IV under one key breaks
// confidentiality.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "crypto/fernet.h"

namespace bifrost::crypto {

Result<std::string> EncryptWithFixedIvForTesting(const FernetKey& key, std::string_view plaintext,
                                                 std::int64_t now_seconds,
                                                 std::span<const std::uint8_t, kFernetIvSize> iv);

}  // namespace bifrost::crypto
