// Fernet (https://github.com/fernet/spec), exactly as specified.
//
// Token = base64url( 0x80 | timestamp (u64 BE, seconds) | IV (16) | AES-128-CBC(PKCS7)
//                    ciphertext | HMAC-SHA256 over everything before it ).
// The 32-byte key is the signing key (first 16 bytes) followed by the encryption key (last
// 16 bytes).
//
// Decryption checks the structure, then the MAC (in constant time, before anything is
// decrypted), then the optional TTL, then decrypts. Every failure is a typed FernetError;
// a failed decryption never yields partial plaintext.
//
// Thread-safety: a FernetKey is immutable after construction and may be shared by any
// number of threads.
#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"
#include "crypto/secure_buffer.h"

namespace bifrost::crypto {

inline constexpr std::size_t kFernetKeySize = 32;
inline constexpr std::size_t kFernetIvSize = 16;
// Tokens whose timestamp is at most this far in the future are accepted when a TTL is
// enforced (clocks of different machines drift).
inline constexpr std::int64_t kFernetMaxClockSkewSeconds = 60;

enum class FernetError {
  kMalformedBase64,        // not strict URL-safe base64 with padding
  kTooShort,               // shorter than version + timestamp + IV + one block + MAC
  kUnknownVersion,         // first byte is not 0x80
  kBadCiphertextLength,    // ciphertext is not a whole number of AES blocks
  kBadMac,                 // HMAC does not match: wrong key or tampered token
  kExpired,                // older than the TTL
  kFromTheFuture,          // timestamp further ahead than the allowed clock skew
  kBadPadding,             // authenticated but PKCS7 padding is wrong
  kCryptoFailure,          // OpenSSL reported an internal failure
};

// A human-readable description of the error; never contains token or key bytes.
std::string_view FernetErrorMessage(FernetError error);

struct FernetDecryptOptions {
  std::int64_t now_seconds = 0;             // the current time (injected)
  std::optional<std::int64_t> ttl_seconds;  // reject tokens older than this; none = any age
};

class FernetKey {
 public:
  // From 32 raw bytes (signing key then encryption key).
  static Result<FernetKey> FromBytes(std::span<const std::uint8_t> key);
  // From the URL-safe base64 text form (44 characters) used by Python's Fernet(key).
  static Result<FernetKey> FromBase64(std::string_view key_b64);
  // A fresh random key.
  static Result<FernetKey> Generate();

  // Encrypts with a fresh random IV from the CSPRNG and `now_seconds` as the timestamp.
  Result<std::string> Encrypt(std::string_view plaintext, std::int64_t now_seconds) const;

  std::expected<SecureBuffer, FernetError> Decrypt(std::string_view token,
                                                   const FernetDecryptOptions& options) const;

  // The key in Python's text form. Key material: handle like a secret.
  SecureBuffer ToBase64() const;

  // A stable public identifier of this key: 16 hex characters derived with HMAC from the
  // key under its own label. Reveals nothing about the key; names it in stored values.
  const std::string& id() const;
  // A check value a database stores to recognise this key later without holding it:
  // base64url of HMAC-SHA256(key, "bifrost key check v1"), under a label distinct from id().
  std::string CheckValue() const;

  class Impl;

 private:
  // Encrypts with a caller-chosen IV: only for reproducing the spec's known vectors
  // (crypto/fernet_testing.h). Reusing an IV under one key breaks confidentiality.
  Result<std::string> EncryptWithIv(std::string_view plaintext, std::int64_t now_seconds,
                                    std::span<const std::uint8_t, kFernetIvSize> iv) const;
  friend Result<std::string> EncryptWithFixedIvForTesting(
      const FernetKey& key, std::string_view plaintext, std::int64_t now_seconds,
      std::span<const std::uint8_t, kFernetIvSize> iv);

  explicit FernetKey(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// The Python Bifrost stores a secret as base64url(Fernet token) ("double base64"). Returns
// the inner Fernet token of such a value, or nullopt if it is not valid base64 text.
std::optional<std::string> UnwrapLegacyBifrostValue(std::string_view stored);

}  // namespace bifrost::crypto
