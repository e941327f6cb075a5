#include "auth/password.h"

#include <argon2.h>

#include <array>
#include <charconv>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "common/base64.h"
#include "crypto/random.h"
#include "crypto/secure_buffer.h"

namespace bifrost::auth {
namespace {

constexpr std::size_t kSaltBytes = 16;
constexpr std::size_t kHashBytes = 32;

// Limits on the parameters of a stored hash, so that a tampered row cannot make one
// verification take gigabytes or minutes. New hashes are held to the same limits, so every
// hash this process writes is one it can verify.
constexpr std::uint64_t kMaxMemoryKib = 1024 * 1024;  // 1 GiB
constexpr std::uint64_t kMaxPasses = 16;
constexpr std::uint64_t kMaxLanes = 16;
// A hash of ours is under 100 characters; libargon2 sizes its salt and hash buffers by the
// length of the whole string, so a very long one would only cost memory and time.
constexpr std::size_t kMaxPhcBytes = 512;

// The only form accepted: argon2id, version 0x13. (libargon2 would also take a string
// without "v=", meaning the older version 0x10, which this service never writes.)
constexpr std::string_view kPhcPrefix = "$argon2id$v=19$";

struct StoredCost {
  std::uint64_t memory_kib = 0;
  std::uint64_t passes = 0;
  std::uint64_t lanes = 0;
};

// Consumes `name` followed by a decimal number from the front of `text`. The digits are
// read exactly as libargon2's decoder reads them, so the limits checked here are the
// parameters it will use.
bool ConsumeDecimal(std::string_view& text, std::string_view name, std::uint64_t& value) {
  if (!text.starts_with(name)) return false;
  text.remove_prefix(name.size());
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + digits, value);
  if (ec != std::errc() || end != text.data() + digits) return false;  // out of range
  text.remove_prefix(digits);
  return true;
}

// The m=, t= and p= of "$argon2id$v=19$m=…,t=…,p=…$salt$hash"; false unless the string
// has that shape up to the salt. Salt and hash are left to libargon2.
bool ParseStoredCost(std::string_view phc, StoredCost& cost) {
  if (!phc.starts_with(kPhcPrefix)) return false;
  std::string_view rest = phc.substr(kPhcPrefix.size());
  return ConsumeDecimal(rest, "m=", cost.memory_kib) && ConsumeDecimal(rest, ",t=", cost.passes) &&
         ConsumeDecimal(rest, ",p=", cost.lanes) && rest.starts_with('$');
}

bool WithinLimits(std::uint64_t memory_kib, std::uint64_t passes, std::uint64_t lanes) {
  // The lower bounds are libargon2's own (at least 8 KiB per lane).
  return passes >= 1 && passes <= kMaxPasses && lanes >= 1 && lanes <= kMaxLanes &&
         memory_kib >= 8 * lanes && memory_kib <= kMaxMemoryKib;
}

// Used only if the dummy hash cannot be computed (the CSPRNG or a 64 MiB allocation
// failed): a hash of 32 random bytes that were discarded, with the default cost, so that
// unknown emails still take as long as known ones.
constexpr const char* kFallbackDummyHash =
    "$argon2id$v=19$m=65536,t=3,p=1$RatmkeMxIStbD3ylfW+kSQ$"
    "QM03XiIT6PAXlmNpYsq0cvTqumpzJ0kPrD4EJf6vXZc";

std::string ComputeDummyHash() {
  std::array<std::uint8_t, 32> random{};
  std::array<char, Base64UrlEncodedSize(32)> password{};
  std::string phc;
  if (crypto::RandomKeyBytes(random)) {
    Base64UrlEncodeInto(random, password);
    if (auto hashed = HashPassword(std::string_view(password.data(), password.size()))) {
      phc = std::move(*hashed);
    }
  }
  crypto::SecureWipe(random.data(), random.size());
  crypto::SecureWipe(password.data(), password.size());
  return phc.empty() ? std::string(kFallbackDummyHash) : phc;
}

}  // namespace

Status ValidatePassword(std::string_view password) {
  if (password.size() < kMinPasswordBytes || password.size() > kMaxPasswordBytes) {
    return Fail(ErrorCode::kInvalidArgument, "a password is 12 to 1024 bytes");
  }
  if (password.find('\0') != std::string_view::npos) {
    return Fail(ErrorCode::kInvalidArgument, "a password must not contain a NUL byte");
  }
  return Ok();
}

Result<std::string> HashPassword(std::string_view password, const PasswordCost& cost) {
  BIFROST_RETURN_IF_ERROR(ValidatePassword(password));
  if (!WithinLimits(cost.memory_kib, cost.passes, cost.lanes)) {
    return Fail(ErrorCode::kInvalidArgument,
                "a password hash cost needs 1 to 16 passes, 1 to 16 lanes and 8 KiB per lane "
                "up to 1 GiB of memory");
  }
  std::array<std::uint8_t, kSaltBytes> salt{};
  BIFROST_RETURN_IF_ERROR(crypto::RandomBytes(salt));

  // libargon2 reads the password in place (no copy to wipe here) and wipes its own working
  // memory before freeing it.
  std::vector<char> encoded(argon2_encodedlen(cost.passes, cost.memory_kib, cost.lanes, kSaltBytes,
                                              kHashBytes, Argon2_id));
  const int rc = argon2id_hash_encoded(cost.passes, cost.memory_kib, cost.lanes, password.data(),
                                       password.size(), salt.data(), salt.size(), kHashBytes,
                                       encoded.data(), encoded.size());
  if (rc != ARGON2_OK) {
    return Fail(ErrorCode::kInternal,
                std::string("hashing a password failed: ") + argon2_error_message(rc));
  }
  return std::string(encoded.data());
}

bool VerifyPassword(std::string_view password, std::string_view phc) {
  if (!ValidatePassword(password)) return false;
  if (phc.size() > kMaxPhcBytes || phc.find('\0') != std::string_view::npos) return false;
  StoredCost stored;
  if (!ParseStoredCost(phc, stored)) return false;
  if (!WithinLimits(stored.memory_kib, stored.passes, stored.lanes)) return false;
  // libargon2 wants a NUL-terminated string; the PHC string holds no secret.
  const std::string encoded(phc);
  return argon2id_verify(encoded.c_str(), password.data(), password.size()) == ARGON2_OK;
}

const std::string& DummyPasswordHash() {
  static const std::string phc = ComputeDummyHash();
  return phc;
}

}  // namespace bifrost::auth
