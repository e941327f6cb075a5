// HMAC-SHA256 under a key of its own, for authenticating non-secret data (the audit chain).
// OpenSSL stays behind this header.
//
// Thread-safety: immutable after construction; share freely.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"
#include "crypto/fernet.h"
#include "crypto/secure_buffer.h"

namespace bifrost::crypto {

inline constexpr std::size_t kMacKeySize = 32;
inline constexpr std::size_t kMacSize = 32;

class MacKey {
 public:
  // From exactly kMacKeySize bytes (kInvalidArgument otherwise).
  static Result<MacKey> FromBytes(std::span<const std::uint8_t> key);

  // HMAC-SHA256 over the concatenation of `parts`.
  std::array<std::uint8_t, kMacSize> Mac(std::initializer_list<std::string_view> parts) const;
  // The same, as 64 lower-case hex digits.
  std::string MacHex(std::initializer_list<std::string_view> parts) const;
  // Constant-time comparison of MacHex(parts) with `expected_hex`.
  bool VerifyHex(std::initializer_list<std::string_view> parts,
                 std::string_view expected_hex) const;

  // A stable public identifier: 16 hex digits of HMAC(key, "bifrost mac key id v1").
  const std::string& id() const { return id_; }

  // A copy of the key's kMacKeySize bytes, for storing the key wrapped under a master key
  // (the barrier keeps the audit keys of rotated master keys). Key material: wrap or wipe
  // it, never log it; FromBytes of the result gives back an equal key.
  SecureBuffer ExportBytes() const { return key_.Clone(); }

 private:
  MacKey(SecureBuffer key, std::string id) : key_(std::move(key)), id_(std::move(id)) {}
  SecureBuffer key_;
  std::string id_;
};

// The key of the audit chain, derived from the master key and never equal to any key that
// encrypts: HKDF-SHA256 with IKM = the master key's 32 bytes, salt "bifrost_audit_v1",
// info "bifrost-audit-chain-mac", 32 bytes.
Result<MacKey> DeriveAuditKey(const FernetKey& master);

}  // namespace bifrost::crypto
