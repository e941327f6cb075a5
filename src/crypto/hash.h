// Cryptographic hashing of non-key data (today: API tokens, which are stored only as their
// SHA-256). OpenSSL stays behind this header.
#pragma once

#include <string>
#include <string_view>

namespace bifrost::crypto {

// SHA-256 of `data` as 64 lower-case hex digits. Never fails: a failure of OpenSSL's digest
// (which does not allocate for SHA-256 with the default provider loaded) is a broken
// process, and it aborts with a message rather than return a hash that is not one.
std::string Sha256Hex(std::string_view data);

}  // namespace bifrost::crypto
