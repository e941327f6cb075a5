#include "store/sqlite/connection.h"

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>
#include <utility>

namespace bifrost::store::sqlite_internal {
namespace {

constexpr std::chrono::milliseconds kBusyRetryInterval{2};

}  // namespace

ErrorCode MapResultCode(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
      return ErrorCode::kUnavailable;
    case SQLITE_CONSTRAINT:
      switch (rc) {
        case SQLITE_CONSTRAINT_UNIQUE:
        case SQLITE_CONSTRAINT_PRIMARYKEY:
          return ErrorCode::kAlreadyExists;
        case SQLITE_CONSTRAINT_FOREIGNKEY:
          return ErrorCode::kFailedPrecondition;
        default:
          return ErrorCode::kInvalidArgument;  // CHECK, NOT NULL, STRICT datatype
      }
    case SQLITE_TOOBIG:
      return ErrorCode::kInvalidArgument;
    case SQLITE_READONLY:
      return ErrorCode::kFailedPrecondition;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return ErrorCode::kCorrupt;
    default:
      return ErrorCode::kInternal;
  }
}

Error MakeSqliteError(int rc, sqlite3* db, std::string_view what) {
  std::string message(what);
  message += ": ";
  // sqlite3_errmsg describes the most recent failure on `db`; use it only if that failure
  // is the one being reported. It names tables, columns and constraints, never values.
  if (db != nullptr && sqlite3_extended_errcode(db) == rc) {
    message += sqlite3_errmsg(db);
  } else {
    message += sqlite3_errstr(rc);
  }
  message += " (sqlite code ";
  message += std::to_string(rc);
  message += ")";
  return Error(MapResultCode(rc), std::move(message));
}

// ---- Statement ----

Statement::Statement(Statement&& other) noexcept
    : connection_(other.connection_),
      stmt_(std::exchange(other.stmt_, nullptr)),
      borrowed_(std::exchange(other.borrowed_, nullptr)),
      what_(other.what_),
      bind_rc_(other.bind_rc_) {}

Statement::~Statement() {
  if (stmt_ == nullptr) return;
  // reset() repeats the last step's error code; it was reported by Step() already.
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  if (borrowed_ != nullptr) *borrowed_ = false;
}

void Statement::NoteBindResult(int rc) {
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
}

void Statement::BindText(int index, std::string_view value) {
  // SQLITE_STATIC (a null destructor): no copy; the caller keeps `value` alive.
  NoteBindResult(sqlite3_bind_text64(
      stmt_, index, value.data(), static_cast<sqlite3_uint64>(value.size()), nullptr, SQLITE_UTF8));
}

void Statement::BindOptionalText(int index, const std::optional<std::string>& value) {
  if (value.has_value()) {
    BindText(index, *value);
  } else {
    BindNull(index);
  }
}

void Statement::BindInt64(int index, std::int64_t value) {
  NoteBindResult(sqlite3_bind_int64(stmt_, index, static_cast<sqlite3_int64>(value)));
}

void Statement::BindNull(int index) { NoteBindResult(sqlite3_bind_null(stmt_, index)); }

Result<bool> Statement::Step() {
  if (bind_rc_ != SQLITE_OK) {
    // Not sqlite3_errmsg: a bind failure is not recorded as the connection's last error.
    return Fail(MakeSqliteError(bind_rc_, nullptr, what_));
  }
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return Fail(MakeSqliteError(rc, connection_->db(), what_));
}

Status Statement::Run() {
  while (true) {
    BIFROST_ASSIGN_OR_RETURN(const bool has_row, Step());
    if (!has_row) return Ok();
  }
}

bool Statement::ColumnIsNull(int index) const {
  return sqlite3_column_type(stmt_, index) == SQLITE_NULL;
}

std::string Statement::ColumnText(int index) const {
  // text() before bytes(), as the SQLite documentation prescribes.
  const unsigned char* text = sqlite3_column_text(stmt_, index);
  const int size = sqlite3_column_bytes(stmt_, index);
  if (text == nullptr || size <= 0) return {};
  return {reinterpret_cast<const char*>(text), static_cast<std::size_t>(size)};
}

std::optional<std::string> Statement::ColumnOptionalText(int index) const {
  if (ColumnIsNull(index)) return std::nullopt;
  return ColumnText(index);
}

std::int64_t Statement::ColumnInt64(int index) const {
  return static_cast<std::int64_t>(sqlite3_column_int64(stmt_, index));
}

// ---- Connection ----

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& path, Role role,
                                                     int busy_timeout_ms) {
  // No SQLITE_OPEN_CREATE: the store creates the file itself, with mode 0600, before this.
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    Error error = MakeSqliteError(rc, db, "open database '" + path + "'");
    sqlite3_close_v2(db);  // harmless on null
    return Fail(std::move(error));
  }
  std::unique_ptr<Connection> connection(new Connection(db, path, role));
  BIFROST_RETURN_IF_ERROR(connection->Configure(busy_timeout_ms));
  return connection;
}

Connection::~Connection() {
  for (auto& [sql, cached] : statements_) sqlite3_finalize(cached.stmt);
  statements_.clear();
  sqlite3_close_v2(db_);
}

void Connection::SetBusyTimeout(int busy_timeout_ms) { sqlite3_busy_timeout(db_, busy_timeout_ms); }

Status Connection::Configure(int busy_timeout_ms) {
  const std::string what = "configure database '" + path_ + "'";
  auto check = [&](int rc) -> Status {
    if (rc != SQLITE_OK) return Fail(MakeSqliteError(rc, db_, what));
    return Ok();
  };
  BIFROST_RETURN_IF_ERROR(check(sqlite3_extended_result_codes(db_, 1)));
  BIFROST_RETURN_IF_ERROR(check(sqlite3_busy_timeout(db_, busy_timeout_ms)));
  // The file is untrusted storage: no schema tricks (writable_schema, shadow-table writes)
  // and no functions with side effects called from views or triggers stored in it.
  BIFROST_RETURN_IF_ERROR(
      check(sqlite3_db_config(db_, SQLITE_DBCONFIG_DEFENSIVE, 1, static_cast<int*>(nullptr))));
  BIFROST_RETURN_IF_ERROR(
      check(sqlite3_db_config(db_, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, static_cast<int*>(nullptr))));

  // The first statement that reads the file: a non-database fails here with SQLITE_NOTADB.
  // Switching a fresh file to WAL needs an exclusive lock taken while holding a shared one;
  // SQLite does not run the busy handler for that upgrade (it could deadlock), so two
  // processes opening a new database at once can see SQLITE_BUSY here. Retry until the
  // busy timeout; the winner's switch is persistent, so the loser then finds WAL set.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(busy_timeout_ms);
  Result<std::string> journal_mode_result = QueryText("PRAGMA journal_mode=WAL", what);
  while (!journal_mode_result && journal_mode_result.error().code() == ErrorCode::kUnavailable &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(kBusyRetryInterval);
    journal_mode_result = QueryText("PRAGMA journal_mode=WAL", what);
  }
  if (!journal_mode_result && journal_mode_result.error().code() == ErrorCode::kCorrupt) {
    return Fail(ErrorCode::kCorrupt,
                "database file '" + path_ + "' is not a SQLite database or is damaged");
  }
  BIFROST_ASSIGN_OR_RETURN(const std::string journal_mode, std::move(journal_mode_result));
  if (journal_mode != "wal") {
    return Fail(ErrorCode::kFailedPrecondition,
                what + ": journal_mode is '" + journal_mode + "', could not switch to 'wal'");
  }
  BIFROST_RETURN_IF_ERROR(
      ExecScript("PRAGMA synchronous=FULL;"
                 "PRAGMA foreign_keys=ON;"
                 "PRAGMA temp_store=MEMORY;"
                 "PRAGMA secure_delete=ON;",
                 what));
  if (role_ == Role::kReader) BIFROST_RETURN_IF_ERROR(ExecScript("PRAGMA query_only=ON;", what));

  // foreign_keys is silently a no-op inside a transaction or in builds without FK support;
  // the schema relies on it for ON DELETE CASCADE, so read every setting back.
  struct Expected {
    std::string_view pragma;
    std::int64_t value;
  };
  const Expected expected[] = {
      {"PRAGMA foreign_keys", 1},  {"PRAGMA synchronous", 2},  // FULL
      {"PRAGMA temp_store", 2},                                // MEMORY
      {"PRAGMA secure_delete", 1}, {"PRAGMA query_only", role_ == Role::kReader ? 1 : 0},
  };
  for (const Expected& e : expected) {
    BIFROST_ASSIGN_OR_RETURN(const std::int64_t actual, QueryInt64(e.pragma, what));
    if (actual != e.value) {
      return Fail(ErrorCode::kFailedPrecondition, what + ": '" + std::string(e.pragma) + "' is " +
                                                      std::to_string(actual) + ", expected " +
                                                      std::to_string(e.value));
    }
  }
  return Ok();
}

Result<Statement> Connection::Prepare(std::string_view sql, std::string_view what) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    if (sql.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
      return Fail(ErrorCode::kInternal, std::string(what) + ": SQL text too long");
    }
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt);
      return Fail(MakeSqliteError(rc, db_, what));
    }
    if (stmt == nullptr) {
      return Fail(ErrorCode::kInternal, std::string(what) + ": empty SQL statement");
    }
    it = statements_.emplace(std::string(sql), CachedStatement{stmt, false}).first;
  }
  if (it->second.borrowed) {
    return Fail(ErrorCode::kInternal,
                std::string(what) + ": statement is already in use on this connection");
  }
  it->second.borrowed = true;
  return Statement(*this, it->second.stmt, &it->second.borrowed, what);
}

Status Connection::ExecScript(const char* sql, std::string_view what) {
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return Fail(MakeSqliteError(rc, db_, what));
  return Ok();
}

Result<std::string> Connection::QueryText(std::string_view sql, std::string_view what) {
  BIFROST_ASSIGN_OR_RETURN(Statement stmt, Prepare(sql, what));
  BIFROST_ASSIGN_OR_RETURN(const bool has_row, stmt.Step());
  if (!has_row) return Fail(ErrorCode::kInternal, std::string(what) + ": query returned no row");
  std::string value = stmt.ColumnText(0);
  BIFROST_RETURN_IF_ERROR(stmt.Run());
  return value;
}

Result<std::int64_t> Connection::QueryInt64(std::string_view sql, std::string_view what) {
  BIFROST_ASSIGN_OR_RETURN(Statement stmt, Prepare(sql, what));
  BIFROST_ASSIGN_OR_RETURN(const bool has_row, stmt.Step());
  if (!has_row) return Fail(ErrorCode::kInternal, std::string(what) + ": query returned no row");
  const std::int64_t value = stmt.ColumnInt64(0);
  BIFROST_RETURN_IF_ERROR(stmt.Run());
  return value;
}

bool Connection::InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

std::int64_t Connection::Changes() const {
  return static_cast<std::int64_t>(sqlite3_changes64(db_));
}

}  // namespace bifrost::store::sqlite_internal
