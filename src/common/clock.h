// Time source, injected everywhere time matters so tests never depend on the wall clock.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bifrost {

// Microseconds since the Unix epoch, UTC. The unit used for every stored timestamp.
using UnixMicros = std::int64_t;

// RFC 3339 in UTC with microseconds: "2026-12-02T04:01:17.123456Z".
std::string FormatRfc3339(UnixMicros micros);
// RFC 3339 date-time ("2026-12-02T04:01:17Z", "…17.5+01:00": a fraction of up to 9 digits,
// truncated to microseconds; 'Z' or a ±hh:mm offset; 'T' or 't'), or a date alone
// ("2026-12-02", midnight UTC). nullopt for anything else, including impossible dates.
std::optional<UnixMicros> ParseRfc3339(std::string_view text);

// Thread-safe: implementations may be called from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual UnixMicros NowMicros() const = 0;
  std::int64_t NowSeconds() const { return NowMicros() / 1'000'000; }
};

// The real clock (CLOCK_REALTIME).
class SystemClock final : public Clock {
 public:
  UnixMicros NowMicros() const override;
  // A process-wide instance; it has no state.
  static const Clock& Instance();
};

// A clock that only moves when told to. For tests.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(UnixMicros start = 1'700'000'000'000'000) : now_(start) {}
  UnixMicros NowMicros() const override { return now_.load(); }
  void Set(UnixMicros t) { now_.store(t); }
  void AdvanceMicros(std::int64_t d) { now_.fetch_add(d); }

 private:
  std::atomic<UnixMicros> now_;
};

}  // namespace bifrost
