// Several Fernet keys at once, so keys can be rotated without downtime: new values are
// encrypted with the primary key, and a value encrypted with any key of the ring still
// decrypts (the caller learns which key it was, to know what is left to re-encrypt).
//
// Thread-safety: immutable after construction; share freely.
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "crypto/fernet.h"

namespace bifrost::crypto {

class Keyring {
 public:
  // `primary` encrypts; `others` only decrypt. kInvalidArgument if the same key appears
  // twice (two keys with one id).
  static Result<Keyring> Create(FernetKey primary, std::vector<FernetKey> others = {});

  const FernetKey& primary() const { return keys_.front(); }
  // Primary first, then the others in the order given.
  const std::vector<FernetKey>& keys() const { return keys_; }
  // The key with this id, or nullptr.
  const FernetKey* Find(std::string_view key_id) const;

  struct Sealed {
    std::string token;
    std::string key_id;  // always the primary's
  };
  Result<Sealed> Encrypt(std::string_view plaintext, std::int64_t now_seconds) const;

  struct Opened {
    SecureBuffer plaintext;
    std::string key_id;  // the key that authenticated and decrypted the token
  };
  // Tries every key; the token's MAC decides which one it belongs to. The error is the
  // structural error if the token is malformed, kBadMac if no key's MAC matches, or the
  // error of the key whose MAC matched.
  std::expected<Opened, FernetError> Decrypt(std::string_view token,
                                             const FernetDecryptOptions& options) const;

 private:
  explicit Keyring(std::vector<FernetKey> keys) : keys_(std::move(keys)) {}
  std::vector<FernetKey> keys_;
};

}  // namespace bifrost::crypto
