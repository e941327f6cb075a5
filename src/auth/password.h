// Password hashing for users (docs/web-ui.md): Argon2id through libargon2, stored as the PHC
// string "$argon2id$v=19$m=65536,t=3,p=1$<salt>$<hash>".
//
// Thread-safety: free functions, safe from any thread. Hashing takes about 64 MiB and tens of
// milliseconds by design; callers bound how many run at once (PasswordHasher).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace bifrost::auth {

// Bytes, inclusive.
inline constexpr std::size_t kMinPasswordBytes = 12;
inline constexpr std::size_t kMaxPasswordBytes = 1024;

// Cost of a new hash. Verification uses the parameters stored in the hash itself.
struct PasswordCost {
  std::uint32_t memory_kib = 64 * 1024;
  std::uint32_t passes = 3;
  std::uint32_t lanes = 1;
};

// OK, or kInvalidArgument saying the rule ("a password is 12 to 1024 bytes", "a password
// must not contain a NUL byte" (it would be cut by C APIs)). Never quotes the password.
Status ValidatePassword(std::string_view password);

// A new PHC string for `password` with a fresh 16-byte salt from the CSPRNG and a 32-byte
// hash. kInvalidArgument as ValidatePassword; kInternal if libargon2 fails (out of memory).
Result<std::string> HashPassword(std::string_view password, const PasswordCost& cost = {});

// Whether `password` matches `phc` (constant-time comparison inside libargon2). false for a
// malformed PHC string or one that is not argon2id, and for a password outside the length
// rule. Refuses stored parameters beyond sane limits (memory > 1 GiB, passes > 16, lanes >
// 16) rather than let a tampered row exhaust the server.
bool VerifyPassword(std::string_view password, std::string_view phc);

// A PHC string of a random password with `cost`: verified against when the email is unknown,
// so that "no such user" takes as long as "wrong password".
const std::string& DummyPasswordHash();

}  // namespace bifrost::auth
