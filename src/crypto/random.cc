#include "crypto/random.h"

#include <openssl/rand.h>
#include <pthread.h>

#include <array>
#include <atomic>
#include <climits>
#include <cstring>
#include <mutex>

#include "common/text.h"
#include "crypto/secure_buffer.h"

namespace bifrost::crypto {
namespace {

// RAND_bytes costs about 0.6 us per call in OpenSSL 3.0 whatever the size, more than a
// whole Fernet encryption. Small requests (IVs, keys, UUIDs) are served from a per-thread
// block of CSPRNG output instead: every byte is handed out once and wiped as it is.
//
// Fork safety: a child process must never hand out bytes its parent also hands out (two
// processes would then use the same IV). A pthread_atfork child handler bumps a generation
// counter, and a block from an older generation is discarded.
constexpr std::size_t kPoolSize = 4096;
constexpr std::size_t kPooledRequestMax = 64;

std::atomic<std::uint64_t> g_fork_generation{0};

void OnForkChild() { g_fork_generation.fetch_add(1, std::memory_order_relaxed); }

struct ThreadPool {
  std::array<std::uint8_t, kPoolSize> bytes{};
  std::size_t used = kPoolSize;  // empty until first refill
  std::uint64_t generation = 0;
  ~ThreadPool() { SecureWipe(bytes.data(), bytes.size()); }
};

Status FillFromOpenSsl(std::span<std::uint8_t> out) {
  std::size_t done = 0;
  while (done < out.size()) {
    const std::size_t chunk = std::min<std::size_t>(out.size() - done, INT_MAX);
    if (RAND_bytes(out.data() + done, static_cast<int>(chunk)) != 1) {
      return Fail(ErrorCode::kInternal, "the system random number generator failed");
    }
    done += chunk;
  }
  return Ok();
}

}  // namespace

Status RandomBytes(std::span<std::uint8_t> out) {
  if (out.size() > kPooledRequestMax) return FillFromOpenSsl(out);
  static std::once_flag registered;
  std::call_once(registered, [] { pthread_atfork(nullptr, nullptr, OnForkChild); });
  thread_local ThreadPool pool;
  const std::uint64_t generation = g_fork_generation.load(std::memory_order_relaxed);
  if (pool.generation != generation) {
    SecureWipe(pool.bytes.data(), pool.bytes.size());
    pool.used = kPoolSize;
    pool.generation = generation;
  }
  if (kPoolSize - pool.used < out.size()) {
    BIFROST_RETURN_IF_ERROR(FillFromOpenSsl(pool.bytes));
    pool.used = 0;
  }
  std::memcpy(out.data(), pool.bytes.data() + pool.used, out.size());
  SecureWipe(pool.bytes.data() + pool.used, out.size());
  pool.used += out.size();
  return Ok();
}

Status RandomKeyBytes(std::span<std::uint8_t> out) {
  if (out.size() > INT_MAX || RAND_priv_bytes(out.data(), static_cast<int>(out.size())) != 1) {
    return Fail(ErrorCode::kInternal, "the system random number generator failed");
  }
  return Ok();
}

Result<std::string> NewUuidV4() {
  std::array<std::uint8_t, 16> bytes{};
  BIFROST_RETURN_IF_ERROR(RandomBytes(bytes));
  bytes[6] = static_cast<std::uint8_t>((bytes[6] & 0x0F) | 0x40);  // version 4
  bytes[8] = static_cast<std::uint8_t>((bytes[8] & 0x3F) | 0x80);  // RFC 4122 variant
  return FormatUuid(bytes);
}

}  // namespace bifrost::crypto
