#include "crypto/secure_buffer.h"

#include <openssl/crypto.h>

namespace bifrost::crypto {

void SecureWipe(void* p, std::size_t n) {
  if (p != nullptr && n > 0) OPENSSL_cleanse(p, n);
}

SecureBuffer SecureBuffer::From(std::string_view data) {
  SecureBuffer out;
  out.Append(data);
  return out;
}

SecureBuffer SecureBuffer::From(std::span<const std::uint8_t> data) {
  SecureBuffer out;
  out.Append(data);
  return out;
}

SecureBuffer SecureBuffer::Clone() const { return From(bytes()); }

void SecureBuffer::Append(std::string_view data) {
  Append(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(data.data()),
                                       data.size()));
}

void SecureBuffer::Append(std::span<const std::uint8_t> data) {
  // Growth reallocates through WipingAllocator, which wipes the old block.
  bytes_.insert(bytes_.end(), data.begin(), data.end());
}

void SecureBuffer::Resize(std::size_t size) {
  if (size < bytes_.size()) SecureWipe(bytes_.data() + size, bytes_.size() - size);
  bytes_.resize(size, 0);
}

void SecureBuffer::Clear() {
  SecureWipe(bytes_.data(), bytes_.size());
  bytes_.clear();
  bytes_.shrink_to_fit();
}

bool SecureBuffer::Equals(std::string_view other) const {
  return other.size() == bytes_.size() &&
         CRYPTO_memcmp(bytes_.data(), other.data(), bytes_.size()) == 0;
}

}  // namespace bifrost::crypto
