#include "store/postgres/connection.h"

#include <libpq-fe.h>
#include <poll.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace bifrost::store::postgres_internal {
namespace {

// libpq's error text: its first line, without the trailing newline and the hints on later
// lines ("This probably means the server terminated abnormally ...").
std::string FirstLine(const char* text) {
  if (text == nullptr) return {};
  std::string_view view(text);
  const std::size_t end = view.find('\n');
  if (end != std::string_view::npos) view = view.substr(0, end);
  while (!view.empty() && (view.back() == ' ' || view.back() == '\r')) view.remove_suffix(1);
  return std::string(view);
}

// Removes every occurrence of `secret` from `text`.
std::string Scrub(std::string text, std::string_view secret) {
  if (secret.empty()) return text;
  for (std::size_t at = text.find(secret); at != std::string::npos;
       at = text.find(secret, at + 3)) {
    text.replace(at, secret.size(), "***");
  }
  return text;
}

void IgnoreNotice(void* /*arg*/, const char* /*message*/) {}

}  // namespace

ErrorCode MapSqlState(std::string_view sqlstate) {
  if (sqlstate == "23505") return ErrorCode::kAlreadyExists;
  if (sqlstate == "23503") return ErrorCode::kFailedPrecondition;
  if (sqlstate == "23514" || sqlstate == "23502") return ErrorCode::kInvalidArgument;
  if (sqlstate == "55P03" || sqlstate == "57014" || sqlstate == "40001" || sqlstate == "40P01" ||
      sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03") {
    return ErrorCode::kUnavailable;
  }
  if (sqlstate == "42501" || sqlstate == "25006" || sqlstate == "25P02") {
    return ErrorCode::kFailedPrecondition;
  }
  const std::string_view error_class = sqlstate.substr(0, 2);
  if (error_class == "08" || error_class == "53") return ErrorCode::kUnavailable;
  if (error_class == "22") return ErrorCode::kInvalidArgument;
  return ErrorCode::kInternal;
}

// ---- Param

Param::Param(std::optional<std::string_view> text) {
  if (text.has_value()) value_ = std::string(*text);
}

Param::Param(const std::optional<std::string>& text) : value_(text) {}

Param::Param(std::int64_t value) : value_(std::to_string(value)) {}

Param::Param(std::optional<std::int64_t> value) {
  if (value.has_value()) value_ = std::to_string(*value);
}

// ---- QueryResult

QueryResult::QueryResult(pg_result* result) : result_(result) {}

QueryResult::QueryResult(QueryResult&& other) noexcept
    : result_(std::exchange(other.result_, nullptr)), malformed_(other.malformed_) {}

QueryResult& QueryResult::operator=(QueryResult&& other) noexcept {
  if (this != &other) {
    if (result_ != nullptr) PQclear(result_);
    result_ = std::exchange(other.result_, nullptr);
    malformed_ = other.malformed_;
  }
  return *this;
}

QueryResult::~QueryResult() {
  if (result_ != nullptr) PQclear(result_);
}

int QueryResult::rows() const { return result_ == nullptr ? 0 : PQntuples(result_); }

int QueryResult::columns() const { return result_ == nullptr ? 0 : PQnfields(result_); }

std::int64_t QueryResult::affected_rows() const {
  if (result_ == nullptr) return 0;
  const std::string_view text = PQcmdTuples(result_);
  std::int64_t count = 0;
  if (text.empty()) return 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), count);
  if (ec != std::errc() || end != text.data() + text.size()) {
    malformed_ = true;
    return 0;
  }
  return count;
}

std::string_view QueryResult::command_tag() const {
  return result_ == nullptr ? std::string_view() : std::string_view(PQcmdStatus(result_));
}

bool QueryResult::IsNull(int row, int column) const {
  if (result_ == nullptr || row >= rows() || column >= columns()) return true;
  return PQgetisnull(result_, row, column) != 0;
}

std::string QueryResult::Text(int row, int column) const {
  if (IsNull(row, column)) return {};
  return std::string(PQgetvalue(result_, row, column),
                     static_cast<std::size_t>(PQgetlength(result_, row, column)));
}

std::optional<std::string> QueryResult::OptionalText(int row, int column) const {
  if (IsNull(row, column)) return std::nullopt;
  return Text(row, column);
}

std::int64_t QueryResult::Int64(int row, int column) const {
  if (IsNull(row, column)) {
    malformed_ = true;
    return 0;
  }
  const char* text = PQgetvalue(result_, row, column);
  const char* end = text + PQgetlength(result_, row, column);
  std::int64_t value = 0;
  const auto [stop, ec] = std::from_chars(text, end, value);
  if (ec != std::errc() || stop != end) {
    malformed_ = true;
    return 0;
  }
  return value;
}

std::optional<std::int64_t> QueryResult::OptionalInt64(int row, int column) const {
  if (IsNull(row, column)) return std::nullopt;
  return Int64(row, column);
}

bool QueryResult::Bool(int row, int column) const {
  if (IsNull(row, column)) {
    malformed_ = true;
    return false;
  }
  const std::string_view text(PQgetvalue(result_, row, column),
                              static_cast<std::size_t>(PQgetlength(result_, row, column)));
  if (text == "t" || text == "1") return true;
  if (text != "f" && text != "0") malformed_ = true;
  return false;
}

Status QueryResult::CheckReads(std::string_view what) const {
  if (!malformed_) return Ok();
  std::string message(what);
  message += ": the database returned a value that does not fit its column";
  return Fail(ErrorCode::kCorrupt, std::move(message));
}

// ---- Connection

Result<std::unique_ptr<Connection>> Connection::Open(const ConnectSettings& settings) {
  // The password, to scrub from libpq's messages (which should not contain it anyway).
  std::string password;
  {
    char* parse_error = nullptr;
    PQconninfoOption* options = PQconninfoParse(settings.url.c_str(), &parse_error);
    if (options == nullptr) {
      // libpq's own message may quote the raw text it could not parse, password included.
      if (parse_error != nullptr) PQfreemem(parse_error);
      return Fail(ErrorCode::kInvalidArgument,
                  "invalid PostgreSQL URL '" + settings.redacted_url +
                      "': libpq cannot parse it (percent-encode reserved characters such as "
                      "@ / ? # % in the user name and password)");
    }
    for (PQconninfoOption* option = options; option->keyword != nullptr; ++option) {
      if (std::string_view(option->keyword) == "password" && option->val != nullptr) {
        password = option->val;
      }
    }
    PQconninfoFree(options);
  }

  // Settings before "dbname" are defaults the URL may override; those after it are not.
  // Over TCP, keepalives notice a pooled connection whose server vanished without closing
  // it, and tcp_user_timeout (as long as a statement may take) bounds how long a request
  // waits for a silent host to acknowledge it (both are ignored on Unix sockets).
  const std::string connect_timeout = std::to_string(settings.connect_timeout_seconds);
  const std::string tcp_user_timeout = std::to_string(settings.statement_timeout_ms);
  const char* const keywords[] = {"connect_timeout",     "application_name",
                                  "keepalives",          "keepalives_idle",
                                  "keepalives_interval", "keepalives_count",
                                  "tcp_user_timeout",    "dbname",
                                  "client_encoding",     nullptr};
  const char* const values[] = {
      connect_timeout.c_str(), "bifrost", "1",    "30", "10", "3", tcp_user_timeout.c_str(),
      settings.url.c_str(),    "UTF8",    nullptr};
  PGconn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (conn == nullptr) {
    return Fail(ErrorCode::kUnavailable,
                "cannot connect to '" + settings.redacted_url + "': out of memory");
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    // The password as written between the first ':' and the last '@' (RedactUrl's rule). If
    // libpq read another one, the password held an unencoded '@', '/' or '?' and libpq may
    // have taken part of it for the host or port, which its message would then quote.
    std::string written;
    if (const std::size_t scheme = settings.url.find("://"); scheme != std::string::npos) {
      const std::size_t at = settings.url.rfind('@');
      const std::size_t colon = settings.url.find(':', scheme + 3);
      if (at != std::string::npos && colon != std::string::npos && colon < at) {
        written = settings.url.substr(colon + 1, at - colon - 1);
      }
    }
    std::string reason = Scrub(Scrub(FirstLine(PQerrorMessage(conn)), password), written);
    if (!written.empty() && written != password) {
      reason =
          "the user name and password did not parse as written (percent-encode reserved "
          "characters such as @ / ? # % in them)";
    }
    std::string message = "cannot connect to '" + settings.redacted_url + "': " + reason;
    PQfinish(conn);
    return Fail(ErrorCode::kUnavailable, std::move(message));
  }
  PQsetNoticeProcessor(conn, IgnoreNotice, nullptr);
  PQsetErrorVerbosity(conn, PQERRORS_TERSE);
  // The server cancels a statement after statement_timeout; a server that says nothing for a
  // little longer than that is not going to.
  std::unique_ptr<Connection> connection(
      new Connection(conn, settings.redacted_url, settings.statement_timeout_ms + kAnswerGraceMs));

  BIFROST_ASSIGN_OR_RETURN(
      QueryResult session,
      // idle_in_transaction_session_timeout: a node frozen or cut off in the middle of a
      // write transaction would otherwise keep the cluster's write lock until the server's
      // TCP keepalive noticed (hours); no transaction of ours idles that long between
      // statements.
      connection->Execute(
          "SELECT set_config('statement_timeout', $1, false), "
          "set_config('lock_timeout', $2, false), "
          "set_config('synchronous_commit', 'on', false), "
          "current_setting('server_encoding'), "
          "set_config('idle_in_transaction_session_timeout', $3, false)",
          "configure the session",
          {std::to_string(settings.statement_timeout_ms) + "ms",
           std::to_string(settings.lock_timeout_ms) + "ms",
           std::to_string(settings.statement_timeout_ms + kIdleInTransactionGraceMs) + "ms"}));
  const std::string encoding = session.Text(0, 3);
  if (encoding != "UTF8") {
    return Fail(ErrorCode::kFailedPrecondition,
                "database '" + settings.redacted_url + "' uses the encoding " + encoding +
                    "; bifrost needs a database created with ENCODING 'UTF8'");
  }
  return connection;
}

Connection::~Connection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

bool Connection::broken() const { return broken_ || PQstatus(conn_) != CONNECTION_OK; }

bool Connection::InTransaction() const {
  const PGTransactionStatusType status = PQtransactionStatus(conn_);
  return status == PQTRANS_INTRANS || status == PQTRANS_INERROR || status == PQTRANS_ACTIVE;
}

bool Connection::TransactionAborted() const {
  return PQtransactionStatus(conn_) == PQTRANS_INERROR;
}

bool Connection::UsesSsl() const { return PQsslInUse(conn_) != 0; }

Error Connection::ResultError(pg_result* result, std::string_view what) {
  last_constraint_.clear();
  std::string message(what);
  message += ": ";
  const char* sqlstate = result == nullptr ? nullptr : PQresultErrorField(result, PG_DIAG_SQLSTATE);
  if (result == nullptr || sqlstate == nullptr || PQstatus(conn_) != CONNECTION_OK) {
    // No answer from the server: the connection is gone, or libpq noticed it could not send
    // (a write to a closed socket leaves PQstatus OK until the next read). Either way the
    // connection cannot be trusted any more.
    broken_ = true;
    std::string reason = FirstLine(PQerrorMessage(conn_));
    if (reason.empty() && result != nullptr) reason = FirstLine(PQresultErrorMessage(result));
    if (reason.empty()) reason = "no answer from the server";
    message += "lost the connection to '";
    message += redacted_url_;
    message += "': ";
    message += reason;
    return Error(ErrorCode::kUnavailable, std::move(message));
  }
  const std::string_view state(sqlstate);
  const ErrorCode code = MapSqlState(state);
  if (state.substr(0, 2) == "08" || state.substr(0, 3) == "57P") broken_ = true;
  if (const char* constraint = PQresultErrorField(result, PG_DIAG_CONSTRAINT_NAME)) {
    last_constraint_ = constraint;
  }
  if (state.substr(0, 2) == "22") {
    // A data exception's text may quote the value it rejected ("invalid byte sequence for
    // encoding "UTF8": 0xff"); name the rule only.
    message += "a value is not valid for its column (not UTF-8 text, or out of range)";
  } else {
    message += FirstLine(PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY));
  }
  message += " (SQLSTATE ";
  message += state;
  message += ")";
  return Error(code, std::move(message));
}

pg_result* Connection::AwaitResult(bool& timed_out) {
  timed_out = false;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(answer_timeout_ms_);
  // Waits until the socket is readable (or writable, while libpq still has bytes to send);
  // false on timeout or a poll error.
  const auto wait = [&](short events) {
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline - std::chrono::steady_clock::now())
                            .count();
      if (left <= 0) return false;
      pollfd fd{.fd = PQsocket(conn_), .events = events, .revents = 0};
      const int ready = ::poll(&fd, 1, static_cast<int>(left));
      if (ready > 0) return true;
      if (ready < 0 && errno != EINTR) return false;
    }
  };
  while (true) {
    const int flushed = PQflush(conn_);
    if (flushed == 0) break;
    if (flushed < 0) return nullptr;
    if (!wait(POLLIN | POLLOUT)) {
      timed_out = true;
      timed_out_ = true;
      broken_ = true;
      return nullptr;
    }
    if (PQconsumeInput(conn_) == 0) return nullptr;
  }
  pg_result* last = nullptr;
  while (true) {
    while (PQisBusy(conn_) != 0) {
      if (!wait(POLLIN)) {
        if (last != nullptr) PQclear(last);
        timed_out = true;
        timed_out_ = true;
        broken_ = true;
        return nullptr;
      }
      if (PQconsumeInput(conn_) == 0) {
        if (last != nullptr) PQclear(last);
        return nullptr;
      }
    }
    pg_result* result = PQgetResult(conn_);
    if (result == nullptr) return last;
    // As PQexec: the last result, or the first error (the server runs nothing after it).
    if (last != nullptr && PQresultStatus(last) == PGRES_FATAL_ERROR) {
      PQclear(result);
      continue;
    }
    if (last != nullptr) PQclear(last);
    last = result;
  }
}

Result<QueryResult> Connection::Send(int sent, std::string_view what) {
  if (sent == 0) return CheckResult(nullptr, what);
  bool timed_out = false;
  pg_result* result = AwaitResult(timed_out);
  if (timed_out) {
    std::string message(what);
    message += ": '";
    message += redacted_url_;
    message += "' did not answer within ";
    message += std::to_string(answer_timeout_ms_);
    message += " ms";
    return Fail(ErrorCode::kUnavailable, std::move(message));
  }
  return CheckResult(result, what);
}

Result<QueryResult> Connection::CheckResult(pg_result* result, std::string_view what) {
  const ExecStatusType status = result == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(result);
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY) {
    return QueryResult(result);
  }
  Error error = ResultError(result, what);
  if (result != nullptr) PQclear(result);
  return Fail(std::move(error));
}

Result<std::string> Connection::PrepareOnce(std::string_view sql, std::string_view what) {
  if (auto found = statements_.find(sql); found != statements_.end()) return found->second;
  std::string name = "bifrost_";
  name += std::to_string(statements_.size() + 1);
  const std::string text(sql);
  BIFROST_RETURN_IF_ERROR(Send(PQsendPrepare(conn_, name.c_str(), text.c_str(), 0, nullptr), what));
  statements_.emplace(text, name);
  return name;
}

Result<QueryResult> Connection::Execute(std::string_view sql, std::string_view what,
                                        std::span<const Param> params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    const std::optional<std::string>& value = params[i].value();
    if (value.has_value() && value->find('\0') != std::string::npos) {
      std::string message(what);
      message += ": parameter $";
      message += std::to_string(i + 1);
      message += " contains a NUL byte, which PostgreSQL cannot store in text";
      return Fail(ErrorCode::kInvalidArgument, std::move(message));
    }
    values.push_back(value.has_value() ? value->c_str() : nullptr);
  }
  if (broken()) {
    broken_ = true;
    std::string message(what);
    message += ": the connection to '";
    message += redacted_url_;
    message += "' was lost";
    return Fail(ErrorCode::kUnavailable, std::move(message));
  }
  BIFROST_ASSIGN_OR_RETURN(const std::string name, PrepareOnce(sql, what));
  return Send(PQsendQueryPrepared(conn_, name.c_str(), static_cast<int>(values.size()),
                                  values.data(), nullptr, nullptr, 0),
              what);
}

Result<QueryResult> Connection::ExecScript(std::string_view sql, std::string_view what) {
  if (broken()) {
    broken_ = true;
    std::string message(what);
    message += ": the connection to '";
    message += redacted_url_;
    message += "' was lost";
    return Fail(ErrorCode::kUnavailable, std::move(message));
  }
  const std::string text(sql);
  return Send(PQsendQuery(conn_, text.c_str()), what);
}

std::int64_t MonotonicMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace bifrost::store::postgres_internal
