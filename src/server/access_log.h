// The server's log: JSON lines, one object per line, on one stream (stderr by default).
//
// Two kinds of lines share the format:
//   request lines (one per HTTP request):
//     {"time":"2024-05-01T12:00:00.123456Z","level":"info","msg":"request","method":"GET",
//      "route":"/api/v1/orgs/{org_id}","status":200,"duration_ms":1.234,
//      "request_id":"0123456789abcdef","token_id":"...","client":"127.0.0.1:50000"}
//   event lines (start-up, shutdown, errors):
//     {"time":"...","level":"info"|"warn"|"error","msg":"listening", ...fields}
// "time" is UTC ISO-8601 with microseconds, as the API writes timestamps
// (json_io::FormatTimestamp), from the injected Clock.
//
// What is never logged, by construction: request lines are built from RequestLogEntry, which
// has no field for headers, the query string, the raw path or the body, so an Authorization
// header, a token, a secret value or a body cannot reach the log through them. Routes are
// logged as templates. Event fields are for values the server chooses (addresses, counts,
// signal names); callers must not pass request data or secrets.
//
// Thread-safety: every method may be called from any thread; each line is written whole.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "common/clock.h"

namespace bifrost::server {

struct RequestLogEntry {
  std::string method;          // as sent (bounded by the header size limit)
  std::string route_template;  // "" when no route matched (logged as null)
  int status = 0;
  double duration_ms = 0;
  std::string request_id;
  std::string token_id;        // "" when unauthenticated (logged as null)
  std::string client_address;  // "ip:port"
};

// One extra field of an event line.
struct LogField {
  std::string_view name;
  std::variant<std::string_view, std::int64_t, bool> value;
};

class AccessLog {
 public:
  // `out` and `clock` must outlive the log.
  explicit AccessLog(std::ostream& out, const Clock& clock = SystemClock::Instance());

  void Request(const RequestLogEntry& entry);
  void Event(std::string_view level, std::string_view msg,
             std::initializer_list<LogField> fields = {}) {
    Event(level, msg, std::span<const LogField>(fields.begin(), fields.size()));
  }
  void Event(std::string_view level, std::string_view msg, std::span<const LogField> fields);
  void Info(std::string_view msg, std::initializer_list<LogField> fields = {}) {
    Event("info", msg, fields);
  }
  void Warn(std::string_view msg, std::initializer_list<LogField> fields = {}) {
    Event("warn", msg, fields);
  }
  void Error(std::string_view msg, std::initializer_list<LogField> fields = {}) {
    Event("error", msg, fields);
  }

 private:
  void WriteLine(const std::string& line);

  std::ostream* out_;
  const Clock* clock_;
  std::mutex mu_;
};

// Rate limit for a recurring event line (accept() failing for want of file descriptors, new
// connections refused at the connection cap): at most one line per `interval`, and the
// line says how many events were swallowed since the previous one, so a persistent failure
// cannot flood the log. Time is passed in, so tests need no clock.
// Thread-safety: every method may be called from any thread.
class LogThrottle {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  explicit LogThrottle(std::chrono::steady_clock::duration interval = std::chrono::seconds(1))
      : interval_(interval) {}

  // Records one event at `now`. True when its line should be written; then *suppressed is
  // the number of events swallowed since the last line written (0 for the first).
  bool Allow(TimePoint now, std::int64_t* suppressed);

 private:
  std::chrono::steady_clock::duration interval_;
  std::mutex mu_;
  bool logged_ = false;         // guarded by mu_
  TimePoint last_line_{};       // guarded by mu_
  std::int64_t swallowed_ = 0;  // guarded by mu_
};

}  // namespace bifrost::server
