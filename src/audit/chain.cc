// The record format: canonical encoding and macs of the chain, and the JSON-lines form.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "audit/audit.h"
#include "audit/internal.h"
#include "common/text.h"

namespace bifrost::audit {
namespace {

constexpr std::string_view kRecordLabel = "bifrost-audit-v1";
constexpr std::string_view kCheckpointLabel = "bifrost-audit-checkpoint-v1";

// The canonical encoding that the macs cover. Every field is framed (length-prefixed text,
// fixed-width integers, a presence byte before optional text), so no two different rows
// encode to the same bytes: moving a byte from one field into the next, or turning an
// absent field into an empty one, changes the mac.
class Canonical {
 public:
  explicit Canonical(std::string_view label) { Text(label); }

  void Int(std::int64_t v) {
    const auto u = static_cast<std::uint64_t>(v);
    for (int shift = 56; shift >= 0; shift -= 8) {
      out_ += static_cast<char>(static_cast<std::uint8_t>(u >> shift));
    }
  }
  void Text(std::string_view s) {
    // Records are far below 4 GiB; a longer field would make the frame ambiguous, so it is
    // a bug, not an input to handle.
    if (s.size() > std::numeric_limits<std::uint32_t>::max()) {
      std::fputs("bifrost: audit field longer than 4 GiB\n", stderr);
      std::abort();
    }
    const auto n = static_cast<std::uint32_t>(s.size());
    for (int shift = 24; shift >= 0; shift -= 8) {
      out_ += static_cast<char>(static_cast<std::uint8_t>(n >> shift));
    }
    out_ += s;
  }
  void Optional(const std::optional<std::string>& s) {
    if (!s) {
      out_ += '\0';
      return;
    }
    out_ += '\1';
    Text(*s);
  }
  const std::string& bytes() const { return out_; }

 private:
  std::string out_;
};

// Makes text valid UTF-8 without NUL bytes (each offending byte becomes U+FFFD), so that a
// record has exactly one JSON form and survives every sink byte for byte: the database,
// the file and the mac then all see the same text.
std::string CleanText(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  while (!s.empty()) {
    const std::size_t n = Utf8SequenceLength(s);
    if (n == 0 || s[0] == '\0') {
      out += "\xEF\xBF\xBD";
      s.remove_prefix(1);
    } else {
      out.append(s.substr(0, n));
      s.remove_prefix(n);
    }
  }
  return out;
}

std::optional<std::string> CleanOptional(const std::optional<std::string>& s) {
  if (!s) return std::nullopt;
  return CleanText(*s);
}

using Json = nlohmann::ordered_json;

Json OptionalJson(const std::optional<std::string>& s) { return s ? Json(*s) : Json(nullptr); }

// The fields of a JSON line, in the order ToJsonLine writes them.
constexpr std::string_view kJsonFields[] = {
    "seq",        "time",           "time_us",    "action",
    "outcome",    "org_id",         "config_key", "actor_id",
    "actor_name", "client_address", "request_id", "execution_id",
    "detail",     "key_id",         "prev_mac",   "mac"};

}  // namespace

std::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kSuccess:
      return "success";
    case Outcome::kDenied:
      return "denied";
    case Outcome::kError:
      return "error";
  }
  return "error";
}

std::string ChainMac(const crypto::MacKey& key, const store::AuditRow& row) {
  return key.MacHex({internal::RecordContent(row)});
}

std::string CheckpointMac(const crypto::MacKey& key, const store::AuditCheckpoint& checkpoint) {
  return key.MacHex({internal::CheckpointContent(checkpoint)});
}

namespace internal {

std::string RecordContent(const store::AuditRow& row) {
  Canonical c(kRecordLabel);
  c.Int(row.seq);
  c.Int(row.time);
  c.Text(row.action);
  c.Text(row.outcome);
  c.Optional(row.org_id);
  c.Optional(row.config_key);
  c.Optional(row.actor_id);
  c.Optional(row.actor_name);
  c.Text(row.client_address);
  c.Text(row.request_id);
  c.Optional(row.execution_id);
  c.Text(row.detail);
  c.Text(row.key_id);
  c.Text(row.prev_mac);
  return c.bytes();
}

std::string CheckpointContent(const store::AuditCheckpoint& checkpoint) {
  Canonical c(kCheckpointLabel);
  c.Int(checkpoint.first_seq);
  c.Text(checkpoint.prev_mac);
  c.Int(checkpoint.created_at);
  c.Text(checkpoint.key_id);
  return c.bytes();
}

}  // namespace internal

store::AuditRow MakeRow(const Event& event, std::int64_t seq, UnixMicros time,
                        std::string_view prev_mac, const crypto::MacKey& key) {
  store::AuditRow row;
  row.seq = seq;
  row.time = time;
  row.action = CleanText(event.action);
  row.outcome = std::string(OutcomeName(event.outcome));
  row.org_id = CleanOptional(event.org_id);
  row.config_key = CleanOptional(event.config_key);
  row.actor_id = CleanOptional(event.actor_id);
  row.actor_name = CleanOptional(event.actor_name);
  row.client_address = CleanText(event.client_address);
  row.request_id = CleanText(event.request_id);
  row.execution_id = CleanOptional(event.execution_id);
  row.detail = CleanText(event.detail);
  row.key_id = key.id();
  row.prev_mac = std::string(prev_mac);
  row.mac = ChainMac(key, row);
  return row;
}

std::string ToJsonLine(const store::AuditRow& row) {
  Json j;
  j["seq"] = row.seq;
  j["time"] = FormatRfc3339(row.time);
  j["time_us"] = row.time;
  j["action"] = row.action;
  j["outcome"] = row.outcome;
  j["org_id"] = OptionalJson(row.org_id);
  j["config_key"] = OptionalJson(row.config_key);
  j["actor_id"] = OptionalJson(row.actor_id);
  j["actor_name"] = OptionalJson(row.actor_name);
  j["client_address"] = row.client_address;
  j["request_id"] = row.request_id;
  j["execution_id"] = OptionalJson(row.execution_id);
  j["detail"] = row.detail;
  j["key_id"] = row.key_id;
  j["prev_mac"] = row.prev_mac;
  j["mac"] = row.mac;
  // Rows made by MakeRow are valid UTF-8; `replace` only keeps a row read back from a
  // tampered database from throwing (its line then no longer matches its mac).
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Result<store::AuditRow> ParseJsonLine(std::string_view line) {
  if (line.find('\n') != std::string_view::npos) {
    return Fail(ErrorCode::kInvalidArgument, "an audit record must be a single line");
  }
  // nlohmann keeps the last of duplicate keys silently; a record with two "seq" members
  // is not one record, so duplicates at the top level are refused.
  std::set<std::string> seen;
  bool duplicate = false;
  Json j;
  try {
    j = Json::parse(line, [&](int depth, Json::parse_event_t event, Json& parsed) {
      if (depth == 1 && event == Json::parse_event_t::key && parsed.is_string()) {
        if (!seen.insert(parsed.get<std::string>()).second) duplicate = true;
      }
      return true;
    });
  } catch (const Json::parse_error& e) {
    // The exception text quotes the input; the byte offset is enough.
    std::string message = "not valid JSON (at byte ";
    message += std::to_string(e.byte);
    message += ')';
    return Fail(ErrorCode::kInvalidArgument, std::move(message));
  }
  if (!j.is_object()) {
    return Fail(ErrorCode::kInvalidArgument, "an audit record must be a JSON object");
  }
  if (duplicate) {
    return Fail(ErrorCode::kInvalidArgument, "an audit record has a duplicate field");
  }
  for (const auto& [name, value] : j.items()) {
    bool known = false;
    for (const std::string_view field : kJsonFields) known = known || field == name;
    if (!known) {
      std::string message = "unknown field ";
      message += QuoteForMessage(name);
      return Fail(ErrorCode::kInvalidArgument, std::move(message));
    }
  }
  auto missing_or_wrong = [](std::string_view name, std::string_view type) {
    std::string message = "field '";
    message += name;
    message += "' is missing or is not ";
    message += type;
    return Fail(ErrorCode::kInvalidArgument, std::move(message));
  };
  auto get_int = [&](std::string_view name) -> Result<std::int64_t> {
    const auto it = j.find(name);
    // Unsigned values above INT64_MAX and floats (1.0) are not seqs or times.
    if (it == j.end() || !it->is_number_integer() ||
        (it->is_number_unsigned() &&
         it->get<std::uint64_t>() >
             static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))) {
      return missing_or_wrong(name, "a 64-bit integer");
    }
    return it->get<std::int64_t>();
  };
  auto get_text = [&](std::string_view name) -> Result<std::string> {
    const auto it = j.find(name);
    if (it == j.end() || !it->is_string()) return missing_or_wrong(name, "a string");
    return it->get<std::string>();
  };
  auto get_optional = [&](std::string_view name) -> Result<std::optional<std::string>> {
    const auto it = j.find(name);
    if (it == j.end() || !(it->is_string() || it->is_null())) {
      return missing_or_wrong(name, "a string or null");
    }
    if (it->is_null()) return std::optional<std::string>();
    return std::optional<std::string>(it->get<std::string>());
  };

  store::AuditRow row;
  BIFROST_ASSIGN_OR_RETURN(row.seq, get_int("seq"));
  if (row.seq < 1) return Fail(ErrorCode::kInvalidArgument, "field 'seq' must be at least 1");
  BIFROST_ASSIGN_OR_RETURN(const std::string time_text, get_text("time"));
  BIFROST_ASSIGN_OR_RETURN(row.time, get_int("time_us"));
  if (time_text != FormatRfc3339(row.time)) {
    return Fail(ErrorCode::kInvalidArgument, "field 'time' does not match 'time_us'");
  }
  BIFROST_ASSIGN_OR_RETURN(row.action, get_text("action"));
  BIFROST_ASSIGN_OR_RETURN(row.outcome, get_text("outcome"));
  BIFROST_ASSIGN_OR_RETURN(row.org_id, get_optional("org_id"));
  BIFROST_ASSIGN_OR_RETURN(row.config_key, get_optional("config_key"));
  BIFROST_ASSIGN_OR_RETURN(row.actor_id, get_optional("actor_id"));
  BIFROST_ASSIGN_OR_RETURN(row.actor_name, get_optional("actor_name"));
  BIFROST_ASSIGN_OR_RETURN(row.client_address, get_text("client_address"));
  BIFROST_ASSIGN_OR_RETURN(row.request_id, get_text("request_id"));
  BIFROST_ASSIGN_OR_RETURN(row.execution_id, get_optional("execution_id"));
  BIFROST_ASSIGN_OR_RETURN(row.detail, get_text("detail"));
  BIFROST_ASSIGN_OR_RETURN(row.key_id, get_text("key_id"));
  BIFROST_ASSIGN_OR_RETURN(row.prev_mac, get_text("prev_mac"));
  BIFROST_ASSIGN_OR_RETURN(row.mac, get_text("mac"));
  return row;
}

namespace internal {

Result<ChainTail> ReadTail(store::Txn& txn) {
  BIFROST_ASSIGN_OR_RETURN(const auto last, txn.GetLastAudit());
  if (last) return ChainTail{last->seq + 1, last->mac};
  BIFROST_ASSIGN_OR_RETURN(const auto checkpoint, txn.GetAuditCheckpoint());
  if (checkpoint) return ChainTail{checkpoint->first_seq, checkpoint->prev_mac};
  return ChainTail{1, std::string(kGenesisMac)};
}

Result<std::vector<store::AuditRow>> AppendEvents(store::Txn& txn, const crypto::MacKey& key,
                                                  const Clock& clock,
                                                  std::span<const Event* const> events) {
  BIFROST_ASSIGN_OR_RETURN(ChainTail tail, ReadTail(txn));
  std::vector<store::AuditRow> rows;
  rows.reserve(events.size());
  for (const Event* event : events) {
    store::AuditRow row = MakeRow(*event, tail.next_seq, clock.NowMicros(), tail.prev_mac, key);
    BIFROST_RETURN_IF_ERROR(txn.InsertAudit(row));
    tail.next_seq = row.seq + 1;
    tail.prev_mac = row.mac;
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string ErrnoMessage(int error) {
  char buf[256];
  // GNU strerror_r returns the message, which may or may not be in `buf`.
  return strerror_r(error, buf, sizeof(buf));
}

}  // namespace internal
}  // namespace bifrost::audit
