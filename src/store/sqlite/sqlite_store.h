// The SQLite backend of the Store: one database file, `<data_dir>/bifrost.db`, in WAL mode.
//
// Connections: one writer, behind a writer slot that a write Txn holds for its whole life
// (its SQLite transaction starts with BEGIN IMMEDIATE, so other processes sharing the file
// are excluded too), and a fixed pool of query-only reader connections for read Txns (each
// pins its WAL snapshot when it begins, so it sees one consistent state however long it
// lives). Readers run concurrently with the writer and with each other; when every reader
// is checked out, Begin(kRead) waits for one to come back.
//
// Files: the data directory is created with mode 0700 if missing; the database file is
// created with mode 0600 (an existing one is tightened to 0600), and SQLite gives its -wal
// and -shm files the same mode. Every connection runs with synchronous=FULL (a committed
// transaction survives power loss), foreign_keys=ON, temp_store=MEMORY (no temp files) and
// secure_delete=ON (freed pages are zeroed, so deleted envelopes and the wrapped data keys
// of a deleted organization do not linger in the file). In WAL mode a deletion writes the
// zeroed page as a new frame of the -wal file; the old version stays in earlier frames, and
// in the database file until the next checkpoint. ReleaseDeletedData checkpoints the WAL
// into the database file and truncates it, so neither holds the deleted bytes afterwards.
//
// Schema: migrations (store/sqlite/migrations.h) are applied by Open() in one write
// transaction; a database newer than this binary is refused. Deleting an organization
// deletes its config rows, tokens, data keys, executions and users through ON DELETE
// CASCADE, and deleting a user deletes its sessions the same way.
//
// Thread-safety: Begin() may be called from any number of threads. Each Txn belongs to one
// thread. Every Txn must be destroyed before the SqliteStore (checked: the destructor aborts
// if one is still alive).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "store/store.h"

namespace bifrost::store {

namespace sqlite_internal {
class Connection;
}  // namespace sqlite_internal

struct SqliteOptions {
  std::string data_dir;        // required; holds bifrost.db and its -wal/-shm files
  int busy_timeout_ms = 5000;  // how long to wait for a lock (writer slot, reader, file)
  int reader_connections = 4;  // size of the reader pool; at least 1
  const Clock* clock = &SystemClock::Instance();  // stamps schema_migrations.applied_at
};

// The settings SQLite reports for one connection, read back with PRAGMA queries.
struct SqliteConnectionSettings {
  std::string role;  // "writer" or "reader"
  std::string journal_mode;
  std::int64_t synchronous = -1;  // 2 = FULL
  std::int64_t foreign_keys = -1;
  std::int64_t busy_timeout_ms = -1;
  std::int64_t temp_store = -1;  // 2 = MEMORY
  std::int64_t secure_delete = -1;
  std::int64_t query_only = -1;
};

class SqliteStore final : public Store {
 public:
  // The database file's name inside data_dir.
  static constexpr std::string_view kDatabaseFileName = "bifrost.db";

  // Opens (creating if needed) `<data_dir>/bifrost.db` and migrates it. Errors:
  // kInvalidArgument for bad options; kFailedPrecondition when data_dir is not a writable
  // directory or the database is newer than this binary; kCorrupt when bifrost.db is not a
  // SQLite database; kUnavailable when the file is locked longer than the busy timeout.
  // Messages name the path.
  static Result<std::unique_ptr<SqliteStore>> Open(const SqliteOptions& options);

  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;
  ~SqliteStore() override;

  // kRead: waits up to the busy timeout for a free reader connection. kWrite: waits up to
  // the busy timeout for the writer slot, then for SQLite's write lock. kUnavailable on
  // timeout.
  Result<std::unique_ptr<Txn>> Begin(TxnMode mode) override;
  int SchemaVersion() const override { return schema_version_; }
  std::string_view BackendName() const override { return "sqlite"; }

  // PRAGMA wal_checkpoint(TRUNCATE) on the writer connection, between transactions: takes
  // the writer slot (waiting up to the busy timeout), then SQLite waits at most 100 ms (its
  // write lock held, so every writer waits too) for every reader (of any process) still using
  // the WAL,
  // copies every frame into the database file (so the latest, zeroed version of each page
  // replaces the old one there), syncs it, and truncates the -wal file to zero bytes.
  // kUnavailable when a writer or a reader kept it from completing; committed data is safe
  // either way. A read Txn held by the calling thread makes it time out.
  Status ReleaseDeletedData() override;

  // The path of the database file.
  const std::string& database_path() const { return database_path_; }

  // Reads back the effective settings of every connection: the writer first, then each
  // reader. Takes the writer slot and every reader in turn, so it must not be called while
  // the calling thread holds a Txn of this store. For diagnostics and tests.
  Result<std::vector<SqliteConnectionSettings>> InspectConnections();

 private:
  friend class SqliteTxn;

  SqliteStore(std::string database_path, int busy_timeout_ms);

  // The writer slot and the reader pool. The Acquire functions wait up to the busy timeout.
  Status AcquireWriter();
  void ReleaseWriter();
  Result<sqlite_internal::Connection*> AcquireReader();
  void ReleaseReader(sqlite_internal::Connection* reader);

  const std::string database_path_;
  const int busy_timeout_ms_;
  int schema_version_ = 0;

  // The writer slot is a flag under a mutex rather than a mutex held across the Txn: a
  // timed wait on a condition variable gives Begin(kWrite) its timeout. (A held
  // std::timed_mutex would do too, but ThreadSanitizer cannot see the
  // pthread_mutex_clocklock behind try_lock_for and reports false races.)
  std::unique_ptr<sqlite_internal::Connection> writer_;
  std::mutex writer_mutex_;
  std::condition_variable writer_cv_;
  bool writer_taken_ = false;  // guarded by writer_mutex_

  std::vector<std::unique_ptr<sqlite_internal::Connection>> readers_;  // owns them all
  std::mutex pool_mutex_;
  std::condition_variable pool_cv_;
  std::vector<sqlite_internal::Connection*> free_readers_;  // guarded by pool_mutex_

  std::atomic<int> live_txns_{0};
};

}  // namespace bifrost::store
