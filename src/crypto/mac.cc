#include "crypto/mac.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "common/base64.h"
#include "common/text.h"
#include "crypto/key_derivation.h"

namespace bifrost::crypto {
namespace {

constexpr std::string_view kIdLabel = "bifrost mac key id v1";
constexpr std::string_view kAuditSalt = "bifrost_audit_v1";
constexpr std::string_view kAuditInfo = "bifrost-audit-chain-mac";

// Fetched once per process: EVP_MAC_fetch walks the provider tables.
EVP_MAC* Hmac() {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  return mac;
}

struct MacCtxDeleter {
  void operator()(EVP_MAC_CTX* c) const { EVP_MAC_CTX_free(c); }
};
using MacCtx = std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter>;

// HMAC-SHA256 of the concatenation of `parts`; false only if OpenSSL fails. The context is
// made per call and freed (OpenSSL cleanses the key schedule when it is freed).
bool HmacSha256(std::span<const std::uint8_t> key, std::initializer_list<std::string_view> parts,
                std::array<std::uint8_t, kMacSize>& out) {
  if (Hmac() == nullptr) return false;
  MacCtx ctx(EVP_MAC_CTX_new(Hmac()));
  if (!ctx) return false;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  if (EVP_MAC_init(ctx.get(), key.data(), key.size(), params) != 1) return false;
  for (const std::string_view part : parts) {
    if (EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(part.data()),
                       part.size()) != 1) {
      return false;
    }
  }
  std::size_t len = 0;
  return EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) == 1 && len == kMacSize;
}

std::string Hex(const std::array<std::uint8_t, kMacSize>& mac) {
  return HexEncode(std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
}

}  // namespace

Result<MacKey> MacKey::FromBytes(std::span<const std::uint8_t> key) {
  if (key.size() != kMacKeySize) {
    std::string message = "a MAC key must be 32 bytes, got ";
    message += std::to_string(key.size());
    return Fail(ErrorCode::kInvalidArgument, std::move(message));
  }
  SecureBuffer bytes = SecureBuffer::From(key);
  std::array<std::uint8_t, kMacSize> id_mac{};
  // Proves that HMAC works with this key, so Mac() can treat a later failure as fatal.
  if (!HmacSha256(bytes.bytes(), {kIdLabel}, id_mac)) {
    return Fail(ErrorCode::kInternal, "HMAC-SHA256 is unavailable");
  }
  std::string id = Hex(id_mac).substr(0, 16);
  return MacKey(std::move(bytes), std::move(id));
}

std::array<std::uint8_t, kMacSize> MacKey::Mac(
    std::initializer_list<std::string_view> parts) const {
  std::array<std::uint8_t, kMacSize> out{};
  if (!HmacSha256(key_.bytes(), parts, out)) {
    // FromBytes already ran HMAC with this key: a failure now is a broken library, and a
    // value that is not a mac must never be returned as one.
    std::fputs("bifrost: OpenSSL HMAC-SHA256 failed\n", stderr);
    std::abort();
  }
  return out;
}

std::string MacKey::MacHex(std::initializer_list<std::string_view> parts) const {
  return Hex(Mac(parts));
}

bool MacKey::VerifyHex(std::initializer_list<std::string_view> parts,
                       std::string_view expected_hex) const {
  const std::string actual = MacHex(parts);
  // The length is public (always 64); only the contents are compared in constant time.
  if (expected_hex.size() != actual.size()) return false;
  return CRYPTO_memcmp(actual.data(), expected_hex.data(), actual.size()) == 0;
}

Result<MacKey> DeriveAuditKey(const FernetKey& master) {
  // FernetKey exposes its bytes only in text form; decode them into a wiped buffer.
  const SecureBuffer text = master.ToBase64();
  const std::string_view encoded = text.view();
  const auto size = Base64UrlDecodedSize(encoded);
  if (!size || *size != kFernetKeySize) {
    return Fail(ErrorCode::kInternal, "the master key has an unexpected encoding");
  }
  SecureBuffer raw(*size);
  const auto written = Base64UrlDecodeInto(encoded, raw.mutable_bytes());
  if (!written || *written != kFernetKeySize) {
    return Fail(ErrorCode::kInternal, "the master key has an unexpected encoding");
  }
  BIFROST_ASSIGN_OR_RETURN(const SecureBuffer derived,
                           HkdfSha256(raw.bytes(), kAuditSalt, kAuditInfo, kMacKeySize));
  return MacKey::FromBytes(derived.bytes());
}

}  // namespace bifrost::crypto
