// Time source, injected everywhere time matters so tests never depend on the wall clock.
#pragma once

#include <atomic>
#include <cstdint>

namespace bifrost {

// Microseconds since the Unix epoch, UTC. The unit used for every stored timestamp.
using UnixMicros = std::int64_t;

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
