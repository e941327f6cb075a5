// A byte buffer for plaintext secrets and key material that wipes itself.
//
// Every allocation a SecureBuffer ever owned is overwritten with OPENSSL_cleanse before it
// is returned to the heap: on destruction, on move-assignment over it, and on growth (the
// allocator wipes the old block). It cannot be copied by accident (use Clone()) and has no
// implicit conversion to std::string, so plaintext does not leak into unwiped strings
// without a visible call. There is no small-buffer optimisation to hide bytes in.
//
// Not thread-safe for concurrent mutation, like any container.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <span>
#include <string_view>
#include <vector>

namespace bifrost::crypto {

// Overwrites `n` bytes at `p` in a way the compiler cannot elide.
void SecureWipe(void* p, std::size_t n);

template <typename T>
struct WipingAllocator {
  using value_type = T;
  WipingAllocator() = default;
  template <typename U>
  WipingAllocator(const WipingAllocator<U>&) noexcept {}  // NOLINT(google-explicit-constructor)
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept {
    SecureWipe(p, n * sizeof(T));
    ::operator delete(p);
  }
  template <typename U>
  bool operator==(const WipingAllocator<U>&) const noexcept { return true; }
};

class SecureBuffer {
 public:
  SecureBuffer() = default;
  // `size` zero bytes.
  explicit SecureBuffer(std::size_t size) : bytes_(size, 0) {}
  // A copy of `data`. The caller remains responsible for wiping its own copy.
  static SecureBuffer From(std::string_view data);
  static SecureBuffer From(std::span<const std::uint8_t> data);

  SecureBuffer(SecureBuffer&&) noexcept = default;
  SecureBuffer& operator=(SecureBuffer&&) noexcept = default;
  SecureBuffer(const SecureBuffer&) = delete;
  SecureBuffer& operator=(const SecureBuffer&) = delete;
  ~SecureBuffer() { Clear(); }

  SecureBuffer Clone() const;

  std::uint8_t* data() { return bytes_.data(); }
  const std::uint8_t* data() const { return bytes_.data(); }
  std::size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }
  std::span<const std::uint8_t> bytes() const { return {bytes_.data(), bytes_.size()}; }
  std::span<std::uint8_t> mutable_bytes() { return {bytes_.data(), bytes_.size()}; }
  std::string_view view() const {
    return {reinterpret_cast<const char*>(bytes_.data()), bytes_.size()};
  }

  void Append(std::string_view data);
  void Append(std::span<const std::uint8_t> data);
  // Shrinking wipes the bytes cut off; growing zero-fills.
  void Resize(std::size_t size);
  // Wipes and empties the buffer (capacity is released).
  void Clear();

  // Constant-time comparison of contents (the length is not secret).
  bool Equals(std::string_view other) const;

 private:
  std::vector<std::uint8_t, WipingAllocator<std::uint8_t>> bytes_;
};

}  // namespace bifrost::crypto
