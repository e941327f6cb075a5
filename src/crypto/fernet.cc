#include "crypto/fernet.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <climits>
#include <cstdint>
#include <cstring>

#include "common/base64.h"
#include "common/text.h"
#include "crypto/fernet_testing.h"
#include "crypto/random.h"

namespace bifrost::crypto {
namespace {

constexpr std::uint8_t kVersion = 0x80;
constexpr std::size_t kTimestampSize = 8;
constexpr std::size_t kBlockSize = 16;
constexpr std::size_t kMacSize = 32;
constexpr std::size_t kHeaderSize = 1 + kTimestampSize + kFernetIvSize;
constexpr std::size_t kHalfKey = 16;

// Algorithms are fetched once per process: EVP_*_fetch walks the provider tables and
// costs more than encrypting a short secret.
EVP_CIPHER* Aes128Cbc() {
  static EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "AES-128-CBC", nullptr);
  return cipher;
}
EVP_MAC* Hmac() {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  return mac;
}

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
struct MacCtxDeleter {
  void operator()(EVP_MAC_CTX* c) const { EVP_MAC_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;
using MacCtx = std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter>;

// The bytes of a token (ciphertext, never plaintext), on the stack when small: most
// config secrets are short, and a heap allocation costs as much as the MAC.
class TokenBytes {
 public:
  explicit TokenBytes(std::size_t size) : size_(size) {
    if (size > small_.size()) large_.resize(size);
  }
  std::uint8_t* data() { return large_.empty() ? small_.data() : large_.data(); }
  std::size_t size() const { return size_; }
  std::span<std::uint8_t> span() { return {data(), size_}; }
  std::uint8_t operator[](std::size_t i) { return data()[i]; }

 private:
  std::array<std::uint8_t, 512> small_;
  std::vector<std::uint8_t> large_;
  std::size_t size_;
};

// A keyed HMAC-SHA256 context, ready to be duplicated for each message.
MacCtx NewHmacSha256(std::span<const std::uint8_t> key) {
  if (Hmac() == nullptr) return nullptr;
  MacCtx ctx(EVP_MAC_CTX_new(Hmac()));
  if (!ctx) return nullptr;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  if (EVP_MAC_init(ctx.get(), key.data(), key.size(), params) != 1) return nullptr;
  return ctx;
}

bool MacOf(const EVP_MAC_CTX* keyed, std::span<const std::uint8_t> message,
           std::uint8_t (&out)[kMacSize]) {
  MacCtx ctx(EVP_MAC_CTX_dup(keyed));
  if (!ctx) return false;
  std::size_t len = 0;
  return EVP_MAC_update(ctx.get(), message.data(), message.size()) == 1 &&
         EVP_MAC_final(ctx.get(), out, &len, sizeof(out)) == 1 && len == kMacSize;
}

Result<std::string> HmacLabel(const EVP_MAC_CTX* keyed, std::string_view label) {
  std::uint8_t mac[kMacSize];
  if (!MacOf(keyed, {reinterpret_cast<const std::uint8_t*>(label.data()), label.size()}, mac)) {
    return Fail(ErrorCode::kInternal, "HMAC-SHA256 failed");
  }
  return std::string(reinterpret_cast<const char*>(mac), sizeof(mac));
}

}  // namespace

std::string_view FernetErrorMessage(FernetError error) {
  switch (error) {
    case FernetError::kMalformedBase64: return "token is not valid URL-safe base64";
    case FernetError::kTooShort: return "token is too short to be a Fernet token";
    case FernetError::kUnknownVersion: return "token has an unknown Fernet version byte";
    case FernetError::kBadCiphertextLength:
      return "token ciphertext is not a whole number of AES blocks";
    case FernetError::kBadMac: return "token signature does not verify (wrong key or tampered)";
    case FernetError::kExpired: return "token has expired";
    case FernetError::kFromTheFuture: return "token timestamp is too far in the future";
    case FernetError::kBadPadding: return "token plaintext padding is invalid";
    case FernetError::kCryptoFailure: return "cryptographic library failure";
  }
  return "unknown Fernet error";
}

// Holds the key bytes (wiped on destruction), a keyed HMAC template and the key's id.
// Immutable. Contexts that touch key material or plaintext are either owned here (and die
// with the key) or made per operation: OpenSSL cleanses a context's buffers and key
// schedule when it is freed, so nothing of a secret outlives the call in a reused context.
class FernetKey::Impl {
 public:
  SecureBuffer key;  // signing key (16) || encryption key (16)
  MacCtx mac;        // HMAC-SHA256 keyed with the signing key, duplicated per message
  std::string id;

  std::span<const std::uint8_t> encryption_key() const {
    return key.bytes().subspan(kHalfKey, kHalfKey);
  }
};

Result<FernetKey> FernetKey::FromBytes(std::span<const std::uint8_t> key) {
  if (key.size() != kFernetKeySize) {
    return Fail(ErrorCode::kInvalidArgument, "a Fernet key must be 32 bytes, got " +
                                                 std::to_string(key.size()));
  }
  if (Aes128Cbc() == nullptr) return Fail(ErrorCode::kInternal, "AES-128-CBC is unavailable");
  auto impl = std::make_shared<Impl>();
  impl->key = SecureBuffer::From(key);
  impl->mac = NewHmacSha256(impl->key.bytes().subspan(0, kHalfKey));
  if (!impl->mac) return Fail(ErrorCode::kInternal, "HMAC-SHA256 is unavailable");
  // The id is an HMAC under the whole key, so it identifies the key without revealing it.
  MacCtx whole = NewHmacSha256(impl->key.bytes());
  if (!whole) return Fail(ErrorCode::kInternal, "HMAC-SHA256 is unavailable");
  BIFROST_ASSIGN_OR_RETURN(const std::string id_mac, HmacLabel(whole.get(), "bifrost key id v1"));
  impl->id = HexEncode(std::string_view(id_mac).substr(0, 8));
  return FernetKey(std::move(impl));
}

Result<FernetKey> FernetKey::FromBase64(std::string_view key_b64) {
  SecureBuffer raw(kFernetKeySize + 3);
  const auto size = Base64UrlDecodedSize(key_b64);
  if (!size || *size != kFernetKeySize) {
    return Fail(ErrorCode::kInvalidArgument,
                "a Fernet key must be 32 bytes of URL-safe base64 (44 characters)");
  }
  const auto written = Base64UrlDecodeInto(key_b64, raw.mutable_bytes());
  if (!written || *written != kFernetKeySize) {
    return Fail(ErrorCode::kInvalidArgument, "a Fernet key must be URL-safe base64");
  }
  raw.Resize(kFernetKeySize);
  return FromBytes(raw.bytes());
}

Result<FernetKey> FernetKey::Generate() {
  SecureBuffer raw(kFernetKeySize);
  BIFROST_RETURN_IF_ERROR(RandomKeyBytes(raw.mutable_bytes()));
  return FromBytes(raw.bytes());
}

SecureBuffer FernetKey::ToBase64() const {
  SecureBuffer text(Base64UrlEncodedSize(impl_->key.size()));
  Base64UrlEncodeInto(impl_->key.bytes(),
                      {reinterpret_cast<char*>(text.data()), text.size()});
  return text;
}

const std::string& FernetKey::id() const { return impl_->id; }

std::string FernetKey::CheckValue() const {
  MacCtx whole = NewHmacSha256(impl_->key.bytes());
  auto mac = whole ? HmacLabel(whole.get(), "bifrost key check v1")
                   : Result<std::string>(Fail(ErrorCode::kInternal, "HMAC-SHA256 failed"));
  // FromBytes already proved HMAC works for this key; a failure now is a broken library.
  if (!mac) std::abort();
  return Base64UrlEncode(*mac);
}

Result<std::string> FernetKey::Encrypt(std::string_view plaintext,
                                       std::int64_t now_seconds) const {
  std::array<std::uint8_t, kFernetIvSize> iv{};
  BIFROST_RETURN_IF_ERROR(RandomBytes(iv));
  return EncryptWithIv(plaintext, now_seconds, iv);
}

Result<std::string> FernetKey::EncryptWithIv(
    std::string_view plaintext, std::int64_t now_seconds,
    std::span<const std::uint8_t, kFernetIvSize> iv) const {
  const std::size_t padded = (plaintext.size() / kBlockSize + 1) * kBlockSize;
  TokenBytes token(kHeaderSize + padded + kMacSize);
  token.data()[0] = kVersion;
  const auto ts = static_cast<std::uint64_t>(now_seconds);
  for (std::size_t i = 0; i < kTimestampSize; ++i) {
    token.data()[1 + i] = static_cast<std::uint8_t>(ts >> (8 * (kTimestampSize - 1 - i)));
  }
  std::memcpy(token.data() + 1 + kTimestampSize, iv.data(), kFernetIvSize);

  CipherCtx cipher(EVP_CIPHER_CTX_new());
  EVP_CIPHER_CTX* ctx = cipher.get();
  int out1 = 0;
  int out2 = 0;
  if (ctx == nullptr ||
      EVP_EncryptInit_ex2(ctx, Aes128Cbc(), impl_->encryption_key().data(), iv.data(),
                          nullptr) != 1 ||
      EVP_EncryptUpdate(ctx, token.data() + kHeaderSize, &out1,
                        reinterpret_cast<const unsigned char*>(plaintext.data()),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx, token.data() + kHeaderSize + out1, &out2) != 1 ||
      static_cast<std::size_t>(out1 + out2) != padded) {
    return Fail(ErrorCode::kInternal, "AES-128-CBC encryption failed");
  }
  std::uint8_t mac[kMacSize];
  if (!MacOf(impl_->mac.get(), {token.data(), kHeaderSize + padded}, mac)) {
    return Fail(ErrorCode::kInternal, "HMAC-SHA256 failed");
  }
  std::memcpy(token.data() + kHeaderSize + padded, mac, kMacSize);
  return Base64UrlEncode(token.span());
}

std::expected<SecureBuffer, FernetError> FernetKey::Decrypt(
    std::string_view token, const FernetDecryptOptions& options) const {
  const auto size = Base64UrlDecodedSize(token);
  if (!size) return std::unexpected(FernetError::kMalformedBase64);
  TokenBytes raw(*size);
  if (!Base64UrlDecodeInto(token, raw.span())) {
    return std::unexpected(FernetError::kMalformedBase64);
  }
  if (raw.size() > 0 && raw[0] != kVersion) return std::unexpected(FernetError::kUnknownVersion);
  if (raw.size() < kHeaderSize + kMacSize) return std::unexpected(FernetError::kTooShort);
  const std::size_t ciphertext_size = raw.size() - kHeaderSize - kMacSize;
  if (ciphertext_size % kBlockSize != 0) {
    return std::unexpected(FernetError::kBadCiphertextLength);
  }
  if (ciphertext_size == 0) return std::unexpected(FernetError::kTooShort);

  // Authenticate before looking at anything the attacker could have chosen.
  std::uint8_t mac[kMacSize];
  if (!MacOf(impl_->mac.get(), {raw.data(), raw.size() - kMacSize}, mac)) {
    return std::unexpected(FernetError::kCryptoFailure);
  }
  if (CRYPTO_memcmp(mac, raw.data() + raw.size() - kMacSize, kMacSize) != 0) {
    return std::unexpected(FernetError::kBadMac);
  }

  if (options.ttl_seconds) {
    std::uint64_t ts = 0;
    for (std::size_t i = 0; i < kTimestampSize; ++i) ts = (ts << 8) | raw[1 + i];
    // An authenticated timestamp can still be any u64: compute the age without overflow.
    std::int64_t age = 0;
    if (ts > static_cast<std::uint64_t>(INT64_MAX) ||
        __builtin_sub_overflow(options.now_seconds, static_cast<std::int64_t>(ts), &age)) {
      return std::unexpected(FernetError::kFromTheFuture);
    }
    if (age > *options.ttl_seconds) return std::unexpected(FernetError::kExpired);
    if (age < -kFernetMaxClockSkewSeconds) return std::unexpected(FernetError::kFromTheFuture);
  }

  SecureBuffer plaintext(ciphertext_size);
  CipherCtx cipher(EVP_CIPHER_CTX_new());
  EVP_CIPHER_CTX* ctx = cipher.get();
  int out1 = 0;
  int out2 = 0;
  if (ctx == nullptr ||
      EVP_DecryptInit_ex2(ctx, Aes128Cbc(), impl_->encryption_key().data(),
                          raw.data() + 1 + kTimestampSize, nullptr) != 1 ||
      EVP_DecryptUpdate(ctx, plaintext.data(), &out1, raw.data() + kHeaderSize,
                        static_cast<int>(ciphertext_size)) != 1) {
    return std::unexpected(FernetError::kCryptoFailure);
  }
  if (EVP_DecryptFinal_ex(ctx, plaintext.data() + out1, &out2) != 1) {
    return std::unexpected(FernetError::kBadPadding);  // `plaintext` is wiped on return
  }
  plaintext.Resize(static_cast<std::size_t>(out1 + out2));
  return plaintext;
}

Result<std::string> EncryptWithFixedIvForTesting(const FernetKey& key, std::string_view plaintext,
                                                 std::int64_t now_seconds,
                                                 std::span<const std::uint8_t, kFernetIvSize> iv) {
  return key.EncryptWithIv(plaintext, now_seconds, iv);
}

std::optional<std::string> UnwrapLegacyBifrostValue(std::string_view stored) {
  return Base64UrlDecode(stored);
}

}  // namespace bifrost::crypto
