// One libpq connection with its prepared-statement cache, the parameters bound to a
// statement and the result it returns. Internal to store/postgres/: with connection.cc the
// only code that sees libpq-fe.h.
//
// Every connection is opened the same way: the URL as given (TLS and any other libpq
// setting it carries are passed on unchanged), connect_timeout, application_name=bifrost,
// TCP keepalives and tcp_user_timeout unless the URL sets them, client_encoding=UTF8
// always, and then statement_timeout, lock_timeout and synchronous_commit=on for the
// session. A database whose encoding is not UTF8 is refused. A Connection is used by one
// thread at a time, which its owner (PostgresStore's pool) guarantees.
//
// Statements are constant SQL text with $1..$n placeholders. Each text is prepared once
// per connection under a name of its own (PQprepare) and run with PQexecPrepared, every
// value bound as a text parameter; no value is ever spliced into SQL.
//
// Error messages built here name the operation and PostgreSQL's own message (which names
// tables, columns and constraints; the server is asked for terse messages without DETAIL,
// which could quote a value). They never contain a bound value or the password.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/status.h"

// libpq's types, so that this header does not need libpq-fe.h.
struct pg_conn;
struct pg_result;

namespace bifrost::store::postgres_internal {

// Maps a SQLSTATE to the error model: 23505 (unique) -> kAlreadyExists; 23503 (foreign key)
// -> kFailedPrecondition; 23514 (check), 23502 (not null) and class 22 (data exception:
// bad encoding, out of range) -> kInvalidArgument; 55P03 (lock timeout), 57014 (statement
// timeout, cancel), 40001 (serialization), 40P01 (deadlock), 57P01-57P03 (shutdown, cannot
// connect now), 53xxx (out of resources) and class 08 (connection) -> kUnavailable;
// 42501 (insufficient privilege) -> kFailedPrecondition; anything else -> kInternal.
ErrorCode MapSqlState(std::string_view sqlstate);

// One statement parameter: a text value or SQL NULL. Integers are formatted in decimal.
// The value is copied, so a Param may be built from a temporary. Implicit constructors,
// so that a call reads `Run(sql, what, {row.id, row.org_id, row.created_at})`.
class Param {
 public:
  Param(std::nullopt_t) {}  // NOLINT(google-explicit-constructor): SQL NULL
  Param(std::string_view text) : value_(std::string(text)) {}    // NOLINT
  Param(const std::string& text) : value_(text) {}               // NOLINT
  Param(const char* text) : value_(std::string(text)) {}         // NOLINT
  Param(std::optional<std::string_view> text);                   // NOLINT: nullopt -> NULL
  Param(const std::optional<std::string>& text);                 // NOLINT: nullopt -> NULL
  Param(std::int64_t value);                                     // NOLINT
  Param(std::optional<std::int64_t> value);                      // NOLINT: nullopt -> NULL
  Param(int value) : Param(static_cast<std::int64_t>(value)) {}  // NOLINT
  Param(bool value) : value_(value ? "1" : "0") {}               // NOLINT: BIGINT 0/1 columns

  static Param Null() { return Param(std::nullopt); }

  bool is_null() const { return !value_.has_value(); }
  const std::optional<std::string>& value() const { return value_; }

 private:
  std::optional<std::string> value_;
};

// The result of one statement. Owns the PGresult. Row and column indexes are 0-based.
// Reading a value never fails outright: an integer column whose text does not parse reads
// as 0 and is remembered, and CheckReads() then reports kCorrupt. (The schema makes that
// impossible short of a changed database; the check keeps a bad value from passing
// silently.)
class QueryResult {
 public:
  QueryResult() = default;
  explicit QueryResult(pg_result* result);
  QueryResult(QueryResult&& other) noexcept;
  QueryResult& operator=(QueryResult&& other) noexcept;
  QueryResult(const QueryResult&) = delete;
  QueryResult& operator=(const QueryResult&) = delete;
  ~QueryResult();

  int rows() const;
  int columns() const;
  // Rows an INSERT/UPDATE/DELETE changed (or a SELECT returned); 0 when not applicable.
  std::int64_t affected_rows() const;
  // The command tag ("INSERT 0 1", "COMMIT", "ROLLBACK", ...).
  std::string_view command_tag() const;

  bool IsNull(int row, int column) const;
  std::string Text(int row, int column) const;
  std::optional<std::string> OptionalText(int row, int column) const;
  std::int64_t Int64(int row, int column) const;
  std::optional<std::int64_t> OptionalInt64(int row, int column) const;
  // A boolean column ('t'/'f') or a BIGINT 0/1 column.
  bool Bool(int row, int column) const;

  // kCorrupt naming `what` if a value read so far did not parse.
  Status CheckReads(std::string_view what) const;

 private:
  pg_result* result_ = nullptr;
  mutable bool malformed_ = false;
};

// A view of one row of a QueryResult, for row readers: `row.Text(0)`, `row.Int64(5)`.
class Row {
 public:
  Row(const QueryResult& result, int row) : result_(&result), row_(row) {}
  bool IsNull(int column) const { return result_->IsNull(row_, column); }
  std::string Text(int column) const { return result_->Text(row_, column); }
  std::optional<std::string> OptionalText(int column) const {
    return result_->OptionalText(row_, column);
  }
  std::int64_t Int64(int column) const { return result_->Int64(row_, column); }
  std::optional<std::int64_t> OptionalInt64(int column) const {
    return result_->OptionalInt64(row_, column);
  }
  bool Bool(int column) const { return result_->Bool(row_, column); }

 private:
  const QueryResult* result_;
  int row_;
};

// What a Connection needs to connect.
// How much longer than statement_timeout a connection waits for any answer.
inline constexpr int kAnswerGraceMs = 1000;
// How much longer than statement_timeout a session may sit idle inside a transaction before
// PostgreSQL ends it (and releases the write lock it holds).
inline constexpr int kIdleInTransactionGraceMs = 10'000;

struct ConnectSettings {
  std::string url;           // as given, password included; never shown
  std::string redacted_url;  // for messages
  int connect_timeout_seconds = 5;
  int statement_timeout_ms = 30'000;
  int lock_timeout_ms = 5000;
};

class Connection {
 public:
  // Connects and configures the session. kUnavailable when the server cannot be reached or
  // refuses the connection (authentication included: a password may be fixed without a
  // restart), kInvalidArgument when libpq cannot parse the URL, kFailedPrecondition when
  // the database does not use UTF8. Messages name settings.redacted_url.
  static Result<std::unique_ptr<Connection>> Open(const ConnectSettings& settings);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();  // closes the connection (PQfinish)

  // Runs constant SQL `sql` ($1..$n) with `params` as a named prepared statement, preparing
  // it on first use. `what` names the operation in error messages. A parameter containing
  // a NUL byte (which PostgreSQL cannot store in text) gives kInvalidArgument before
  // anything is sent. Server errors map by MapSqlState; a lost connection gives
  // kUnavailable and marks the connection broken.
  Result<QueryResult> Execute(std::string_view sql, std::string_view what,
                              std::span<const Param> params);
  Result<QueryResult> Execute(std::string_view sql, std::string_view what,
                              std::initializer_list<Param> params) {
    return Execute(sql, what, std::span<const Param>(params.begin(), params.size()));
  }

  // Runs constant SQL without parameters through the simple query protocol, possibly
  // several statements (BEGIN, migrations, VACUUM). Returns the last statement's result.
  Result<QueryResult> ExecScript(std::string_view sql, std::string_view what);

  // The constraint the last failed statement violated ("organizations_name_key"), or ""
  // when it was not a constraint violation.
  const std::string& last_constraint() const { return last_constraint_; }

  // True once the connection is known to be unusable: the server closed it or it failed.
  // The pool discards such a connection instead of lending it again.
  bool broken() const;
  // True when the connection broke because the server did not answer in time (rather than
  // closing it): another connection to the same server is no more likely to get an answer.
  bool timed_out() const { return timed_out_; }
  // True while a transaction block is open (or failed and not yet rolled back).
  bool InTransaction() const;
  // True when the open transaction block failed: PostgreSQL refuses every statement but
  // ROLLBACK until it ends.
  bool TransactionAborted() const;
  // Whether the server session uses TLS (libpq's view).
  bool UsesSsl() const;

  const std::string& redacted_url() const { return redacted_url_; }
  // Monotonic milliseconds when the connection was last given back to the pool.
  std::int64_t idle_since_ms() const { return idle_since_ms_; }
  void set_idle_since_ms(std::int64_t ms) { idle_since_ms_ = ms; }

 private:
  Connection(pg_conn* conn, std::string redacted_url, int answer_timeout_ms)
      : conn_(conn),
        redacted_url_(std::move(redacted_url)),
        answer_timeout_ms_(answer_timeout_ms) {}
  // Waits for the result of the query just sent, at most answer_timeout_ms_: a server that
  // stopped answering (frozen, or a network that drops packets without closing the
  // connection) must not hold a request thread for ever. statement_timeout is enforced by
  // the server, so a live server always answers before this deadline. On timeout the
  // connection is marked broken and nullptr is returned with timed_out set.
  pg_result* AwaitResult(bool& timed_out);
  // Turns a failed (or null) result into an Error naming `what`; updates broken_ and
  // last_constraint_.
  Error ResultError(pg_result* result, std::string_view what);
  Result<QueryResult> CheckResult(pg_result* result, std::string_view what);
  // Collects the answer to a query just sent with PQsend* (`sent`: its return value).
  Result<QueryResult> Send(int sent, std::string_view what);
  Result<std::string> PrepareOnce(std::string_view sql, std::string_view what);

  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  pg_conn* conn_;
  std::string redacted_url_;
  bool broken_ = false;
  bool timed_out_ = false;
  int answer_timeout_ms_ = 0;
  std::string last_constraint_;
  std::int64_t idle_since_ms_ = 0;
  // SQL text -> statement name ("s1", "s2", ...), for statements prepared on this
  // connection.
  std::unordered_map<std::string, std::string, StringHash, std::equal_to<>> statements_;
};

// Milliseconds of a monotonic clock, for the pool's idle times and waits.
std::int64_t MonotonicMillis();

}  // namespace bifrost::store::postgres_internal
