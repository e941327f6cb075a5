// Failure counting for sign-in (docs/web-ui.md): at most `max_failures` failures per key
// (a client address, an account) in a sliding window; above it the key is blocked until
// the oldest counted failure leaves the window. In memory, per process.
//
// Thread-safety: safe from any thread.
#pragma once

#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/clock.h"

namespace bifrost::auth {

class FailureLimiter {
 public:
  // `clock` must outlive the limiter. `max_keys` bounds memory: when a new key would exceed
  // it, keys whose failures all left the window are dropped first, then the keys with the
  // oldest last failure.
  FailureLimiter(const Clock& clock, std::size_t max_failures, UnixMicros window_micros,
                 std::size_t max_keys = 100'000);

  // 0 when `key` may try now; otherwise the microseconds until it may (> 0).
  UnixMicros RetryAfter(std::string_view key) const;
  // Counts one failure of `key`.
  void RecordFailure(std::string_view key);
  // Forgets `key`'s failures (after a success).
  void Reset(std::string_view key);
  std::size_t tracked_keys() const;

 private:
  const Clock* clock_;
  std::size_t max_failures_;
  UnixMicros window_;
  std::size_t max_keys_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::deque<UnixMicros>> failures_;  // guarded by mu_
};

}  // namespace bifrost::auth
