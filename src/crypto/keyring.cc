#include "crypto/keyring.h"

namespace bifrost::crypto {

Result<Keyring> Keyring::Create(FernetKey primary, std::vector<FernetKey> others) {
  std::vector<FernetKey> keys;
  keys.reserve(others.size() + 1);
  keys.push_back(std::move(primary));
  for (auto& key : others) {
    for (const auto& existing : keys) {
      if (existing.id() == key.id()) {
        return Fail(ErrorCode::kInvalidArgument,
                    "key " + key.id() + " is listed more than once in the keyring");
      }
    }
    keys.push_back(std::move(key));
  }
  return Keyring(std::move(keys));
}

const FernetKey* Keyring::Find(std::string_view key_id) const {
  for (const auto& key : keys_) {
    if (key.id() == key_id) return &key;
  }
  return nullptr;
}

Result<Keyring::Sealed> Keyring::Encrypt(std::string_view plaintext,
                                         std::int64_t now_seconds) const {
  BIFROST_ASSIGN_OR_RETURN(std::string token, primary().Encrypt(plaintext, now_seconds));
  return Sealed{std::move(token), primary().id()};
}

std::expected<Keyring::Opened, FernetError> Keyring::Decrypt(
    std::string_view token, const FernetDecryptOptions& options) const {
  for (const auto& key : keys_) {
    auto opened = key.Decrypt(token, options);
    if (opened) return Opened{std::move(*opened), key.id()};
    // Only the MAC depends on the key: any other failure is the same for every key.
    if (opened.error() != FernetError::kBadMac) return std::unexpected(opened.error());
  }
  return std::unexpected(FernetError::kBadMac);
}

}  // namespace bifrost::crypto
