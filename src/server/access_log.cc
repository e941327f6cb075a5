#include "server/access_log.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "server/json_io.h"

namespace bifrost::server {
namespace {

// Invalid UTF-8 (a method or address is never expected to hold any, but the method comes
// from the client) is replaced rather than failing the line.
std::string Dump(const nlohmann::ordered_json& object) {
  return object.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

nlohmann::ordered_json NullIfEmpty(const std::string& s) {
  return s.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(s);
}

}  // namespace

AccessLog::AccessLog(std::ostream& out, const Clock& clock) : out_(&out), clock_(&clock) {}

void AccessLog::Request(const RequestLogEntry& entry) {
  nlohmann::ordered_json line;
  line["time"] = json_io::FormatTimestamp(clock_->NowMicros());
  line["level"] = "info";
  line["msg"] = "request";
  line["method"] = entry.method;
  line["route"] = NullIfEmpty(entry.route_template);
  line["status"] = entry.status;
  // Milliseconds with microsecond resolution.
  line["duration_ms"] = std::round(entry.duration_ms * 1000.0) / 1000.0;
  line["request_id"] = entry.request_id;
  line["token_id"] = NullIfEmpty(entry.token_id);
  line["client"] = entry.client_address;
  WriteLine(Dump(line));
}

void AccessLog::Event(std::string_view level, std::string_view msg,
                      std::span<const LogField> fields) {
  nlohmann::ordered_json line;
  line["time"] = json_io::FormatTimestamp(clock_->NowMicros());
  line["level"] = level;
  line["msg"] = msg;
  for (const auto& field : fields) {
    const std::string name(field.name);
    if (name == "time" || name == "level" || name == "msg") continue;
    std::visit([&](const auto& v) { line[name] = v; }, field.value);
  }
  WriteLine(Dump(line));
}

void AccessLog::WriteLine(const std::string& line) {
  std::lock_guard lock(mu_);
  *out_ << line << '\n';
  out_->flush();
}

bool LogThrottle::Allow(TimePoint now, std::int64_t* suppressed) {
  std::lock_guard lock(mu_);
  if (logged_ && now - last_line_ < interval_) {
    ++swallowed_;
    return false;
  }
  logged_ = true;
  last_line_ = now;
  *suppressed = swallowed_;
  swallowed_ = 0;
  return true;
}

}  // namespace bifrost::server
