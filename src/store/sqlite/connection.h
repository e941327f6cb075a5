// One SQLite connection with its prepared-statement cache, and the statement handle that
// borrows from it. Internal to store/sqlite/: the only place outside sqlite_store.cc and the
// tests that sees sqlite3.h.
//
// Every connection is configured the same way (WAL, synchronous=FULL, foreign keys on,
// busy timeout, temp_store=MEMORY, secure_delete=ON, defensive mode, untrusted schema) and
// is opened with SQLITE_OPEN_NOMUTEX: a Connection is used by one thread at a time, which
// its owner (SqliteStore) guarantees with the writer slot and the reader pool.
//
// Error messages built here name the operation and SQLite's own message (which names
// tables, columns and constraints, never bound values); they never contain a value that was
// bound to a statement.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/status.h"

namespace bifrost::store::sqlite_internal {

// Maps a SQLite result code to the error model: BUSY/LOCKED (and the I/O conditions where a
// retry may help: FULL, IOERR, CANTOPEN) -> kUnavailable; UNIQUE/PRIMARY KEY -> kAlreadyExists;
// FOREIGN KEY -> kFailedPrecondition; other constraints -> kInvalidArgument;
// CORRUPT/NOTADB -> kCorrupt; anything else -> kInternal.
ErrorCode MapResultCode(int rc);

// An error for a failed SQLite call: "<what>: <sqlite message> (<code name>)". `db` may be
// null; then only the code's generic text is used.
Error MakeSqliteError(int rc, sqlite3* db, std::string_view what);

class Connection;

// A cached prepared statement, borrowed for one execution. Binding errors are remembered and
// reported by the first Step(). Text is bound without copying (SQLITE_STATIC): whatever is
// bound must outlive the Statement. The destructor resets the statement and clears its
// bindings, so no bound value stays referenced by the cache.
class Statement {
 public:
  // Made by Connection::Prepare. `borrowed` is the cache entry's in-use flag, cleared again
  // by the destructor.
  Statement(Connection& connection, sqlite3_stmt* stmt, bool* borrowed, std::string_view what)
      : connection_(&connection), stmt_(stmt), borrowed_(borrowed), what_(what) {}
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Parameters are 1-based, as in SQLite.
  void BindText(int index, std::string_view value);
  void BindOptionalText(int index, const std::optional<std::string>& value);
  void BindInt64(int index, std::int64_t value);
  void BindNull(int index);

  // Advances the statement: true when a row is available, false when done.
  Result<bool> Step();
  // Steps a statement that returns no rows (or whose rows are ignored) to completion.
  Status Run();

  // Columns of the current row, 0-based.
  bool ColumnIsNull(int index) const;
  std::string ColumnText(int index) const;
  std::optional<std::string> ColumnOptionalText(int index) const;
  std::int64_t ColumnInt64(int index) const;

 private:
  void NoteBindResult(int rc);

  Connection* connection_;
  sqlite3_stmt* stmt_;  // null once moved from
  bool* borrowed_;
  std::string_view what_;  // a string literal naming the operation, for error messages
  int bind_rc_ = SQLITE_OK;
};

class Connection {
 public:
  enum class Role {
    kWriter,  // the single read-write connection
    kReader,  // query_only: any write through it fails inside SQLite too
  };

  // Opens `path` (which must exist) and applies the settings above. Errors name the path;
  // a file that is not a database gives kCorrupt.
  static Result<std::unique_ptr<Connection>> Open(const std::string& path, Role role,
                                                  int busy_timeout_ms);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  // Finalizes every cached statement and closes the connection.
  ~Connection();

  // Returns the cached statement for `sql` (preparing it on first use). `sql` must be
  // constant text: values are always bound, never spliced in. `what` names the operation
  // in error messages and must outlive the Statement (use a string literal).
  Result<Statement> Prepare(std::string_view sql, std::string_view what);

  // Runs constant SQL that takes no parameters, possibly several statements (migrations).
  Status ExecScript(const char* sql, std::string_view what);

  // Reads a single-row, single-column result (for pragmas and counters).
  Result<std::string> QueryText(std::string_view sql, std::string_view what);
  Result<std::int64_t> QueryInt64(std::string_view sql, std::string_view what);

  // True while a transaction is open on this connection. SQLite rolls a transaction back
  // by itself after some errors (I/O, SQLITE_FULL, ...); callers check this to notice.
  bool InTransaction() const;
  // Rows changed by the last INSERT/UPDATE/DELETE.
  std::int64_t Changes() const;
  // How long a statement waits for a lock held by another connection before it reports
  // SQLITE_BUSY.
  void SetBusyTimeout(int busy_timeout_ms);

  sqlite3* db() const { return db_; }
  const std::string& path() const { return path_; }
  Role role() const { return role_; }

 private:
  Connection(sqlite3* db, std::string path, Role role)
      : db_(db), path_(std::move(path)), role_(role) {}
  Status Configure(int busy_timeout_ms);

  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  struct CachedStatement {
    sqlite3_stmt* stmt = nullptr;
    bool borrowed = false;  // a Statement currently uses it; a second borrower is a bug
  };

  sqlite3* db_;
  std::string path_;
  Role role_;
  std::unordered_map<std::string, CachedStatement, StringHash, std::equal_to<>> statements_;
};

}  // namespace bifrost::store::sqlite_internal
