#include "crypto/key_derivation.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <climits>
#include <memory>
#include <string>

#include "common/text.h"

namespace bifrost::crypto {
namespace {

constexpr std::string_view kSalt = "bifrost_secrets_v1";
constexpr std::string_view kInfo = "bifrost-secrets-encryption";

std::size_t CountCodePoints(std::string_view utf8) {
  std::size_t n = 0;
  for (const char c : utf8) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

}  // namespace

Result<SecureBuffer> HkdfSha256(std::span<const std::uint8_t> ikm, std::string_view salt,
                                std::string_view info, std::size_t length) {
  std::unique_ptr<EVP_KDF, decltype(&EVP_KDF_free)> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr),
                                                        &EVP_KDF_free);
  if (!kdf) return Fail(ErrorCode::kInternal, "HKDF is unavailable");
  std::unique_ptr<EVP_KDF_CTX, decltype(&EVP_KDF_CTX_free)> ctx(EVP_KDF_CTX_new(kdf.get()),
                                                                &EVP_KDF_CTX_free);
  if (!ctx) return Fail(ErrorCode::kInternal, "HKDF is unavailable");
  char digest[] = "SHA256";
  // OSSL_PARAM takes non-const pointers but only reads these buffers.
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_octet_string(
                             OSSL_KDF_PARAM_KEY, const_cast<std::uint8_t*>(ikm.data()), ikm.size()),
                         OSSL_PARAM_construct_octet_string(
                             OSSL_KDF_PARAM_SALT, const_cast<char*>(salt.data()), salt.size()),
                         OSSL_PARAM_construct_octet_string(
                             OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()), info.size()),
                         OSSL_PARAM_construct_end()};
  SecureBuffer out(length);
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) {
    return Fail(ErrorCode::kInternal, "HKDF-SHA256 derivation failed");
  }
  return out;
}

Result<FernetKey> DeriveMasterKey(std::string_view secret, std::string_view source) {
  if (!IsValidUtf8(secret)) {
    return Fail(ErrorCode::kInvalidArgument, std::string(source) + " is not valid UTF-8");
  }
  const std::size_t chars = CountCodePoints(secret);
  if (chars < kMinSecretKeyChars) {
    return Fail(ErrorCode::kInvalidArgument,
                std::string(source) + " is too short: it has " + std::to_string(chars) +
                    " characters and must have at least " + std::to_string(kMinSecretKeyChars));
  }
  BIFROST_ASSIGN_OR_RETURN(
      SecureBuffer key,
      HkdfSha256({reinterpret_cast<const std::uint8_t*>(secret.data()), secret.size()}, kSalt,
                 kInfo, kFernetKeySize));
  return FernetKey::FromBytes(key.bytes());
}

}  // namespace bifrost::crypto

namespace bifrost::crypto {

Result<SecureBuffer> Pbkdf2HmacSha256(std::span<const std::uint8_t> password, std::string_view salt,
                                      unsigned iterations, std::size_t length) {
  if (iterations == 0 || iterations > static_cast<unsigned>(INT_MAX) ||
      length > static_cast<std::size_t>(INT_MAX) ||
      password.size() > static_cast<std::size_t>(INT_MAX) ||
      salt.size() > static_cast<std::size_t>(INT_MAX)) {
    return Fail(ErrorCode::kInvalidArgument, "PBKDF2 parameters out of range");
  }
  SecureBuffer out(length);
  if (PKCS5_PBKDF2_HMAC(reinterpret_cast<const char*>(password.data()),
                        static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha256(),
                        static_cast<int>(out.size()), out.data()) != 1) {
    return Fail(ErrorCode::kInternal, "PBKDF2-HMAC-SHA256 derivation failed");
  }
  return out;
}

namespace {

Status CheckLegacySecret(std::string_view secret, std::string_view source) {
  if (secret.empty()) {
    return Fail(ErrorCode::kInvalidArgument, std::string(source) + " is empty");
  }
  return Ok();
}

std::span<const std::uint8_t> BytesOf(std::string_view text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

}  // namespace

Result<FernetKey> DeriveLegacyHkdfKey(std::string_view secret, std::string_view source) {
  BIFROST_RETURN_IF_ERROR(CheckLegacySecret(secret, source));
  BIFROST_ASSIGN_OR_RETURN(SecureBuffer key,
                           HkdfSha256(BytesOf(secret), kSalt, kInfo, kFernetKeySize));
  return FernetKey::FromBytes(key.bytes());
}

Result<FernetKey> DeriveLegacyPbkdf2Key(std::string_view secret, std::string_view source) {
  BIFROST_RETURN_IF_ERROR(CheckLegacySecret(secret, source));
  BIFROST_ASSIGN_OR_RETURN(
      SecureBuffer key,
      Pbkdf2HmacSha256(BytesOf(secret), kSalt, kLegacyPbkdf2Iterations, kFernetKeySize));
  return FernetKey::FromBytes(key.bytes());
}

}  // namespace bifrost::crypto
