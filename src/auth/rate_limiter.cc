#include "auth/rate_limiter.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

namespace bifrost::auth {
namespace {

// Whether a failure at `at` still counts at `now`: it leaves the window exactly
// `window` microseconds after it happened.
bool InWindow(UnixMicros at, UnixMicros now, UnixMicros window) { return now - at < window; }

}  // namespace

FailureLimiter::FailureLimiter(const Clock& clock, std::size_t max_failures,
                               UnixMicros window_micros, std::size_t max_keys)
    : clock_(&clock), max_failures_(max_failures), window_(window_micros), max_keys_(max_keys) {
  // A limiter that blocks everything or nothing is a configuration bug, found at start-up.
  if (max_failures_ == 0 || window_ <= 0 || max_keys_ == 0) {
    std::fputs(
        "bifrost: internal error: FailureLimiter needs max_failures, window and max_keys > 0\n",
        stderr);
    std::abort();
  }
}

UnixMicros FailureLimiter::RetryAfter(std::string_view key) const {
  const UnixMicros now = clock_->NowMicros();
  const std::lock_guard<std::mutex> lock(mu_);
  const auto it = failures_.find(std::string(key));
  if (it == failures_.end()) return 0;
  // RecordFailure keeps at most max_failures_ entries, so the key is blocked exactly when
  // all of them are still in the window, until the oldest of them leaves it.
  const std::deque<UnixMicros>& times = it->second;
  if (times.size() < max_failures_) return 0;
  UnixMicros oldest = times.front();
  for (const UnixMicros at : times) {
    if (!InWindow(at, now, window_)) return 0;
    oldest = std::min(oldest, at);
  }
  // Never more than a window, even if the clock was set back after the failures.
  return std::min(window_ - (now - oldest), window_);
}

void FailureLimiter::RecordFailure(std::string_view key) {
  const UnixMicros now = clock_->NowMicros();
  const std::lock_guard<std::mutex> lock(mu_);
  auto it = failures_.find(std::string(key));
  if (it == failures_.end()) {
    if (failures_.size() >= max_keys_) {
      // First the keys none of whose failures count any more.
      std::erase_if(failures_, [&](const auto& entry) {
        return std::none_of(entry.second.begin(), entry.second.end(),
                            [&](UnixMicros at) { return InWindow(at, now, window_); });
      });
    }
    if (failures_.size() >= max_keys_) {
      // Then the keys with the oldest last failure. A 64th of the keys more than needed go
      // at once, so a stream of new keys does not pay for this scan on every failure.
      const std::size_t drop = failures_.size() - max_keys_ + 1 + max_keys_ / 64;
      std::vector<std::pair<UnixMicros, decltype(failures_)::iterator>> by_last;
      by_last.reserve(failures_.size());
      for (auto entry = failures_.begin(); entry != failures_.end(); ++entry) {
        const std::deque<UnixMicros>& times = entry->second;
        by_last.emplace_back(*std::max_element(times.begin(), times.end()), entry);
      }
      std::nth_element(by_last.begin(), by_last.begin() + static_cast<std::ptrdiff_t>(drop - 1),
                       by_last.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      for (std::size_t i = 0; i < drop; ++i) failures_.erase(by_last[i].second);
    }
    it = failures_.emplace(std::string(key), std::deque<UnixMicros>()).first;
  }
  std::deque<UnixMicros>& times = it->second;
  std::erase_if(times, [&](UnixMicros at) { return !InWindow(at, now, window_); });
  times.push_back(now);
  // Only the newest max_failures_ failures can decide when the key may try again.
  while (times.size() > max_failures_) times.pop_front();
}

void FailureLimiter::Reset(std::string_view key) {
  const std::lock_guard<std::mutex> lock(mu_);
  failures_.erase(std::string(key));
}

std::size_t FailureLimiter::tracked_keys() const {
  const std::lock_guard<std::mutex> lock(mu_);
  return failures_.size();
}

}  // namespace bifrost::auth
