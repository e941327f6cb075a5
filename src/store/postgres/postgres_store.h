// The PostgreSQL backend of the Store: one database shared by any number of `bifrost serve`
// nodes and local commands (docs/deployment.md).
//
// Connections: a pool of up to `pool_size` libpq connections, opened on demand and kept.
// Each Txn borrows one for its whole life; Begin waits (up to lock_timeout_ms) for a free
// one when all are lent out. A connection that broke (the server restarted, the network
// dropped) is closed when its Txn ends and replaced by a fresh one on the next Begin, so
// the store recovers by itself once the database is back: a pooled connection found
// broken at BEGIN is closed and the BEGIN retried on another (at worst a new one), so the
// first transaction after a restart succeeds. With the server down, Begin fails at once
// (connection refused); connect_timeout bounds the wait for a host that does not answer. Every
// statement is prepared once per connection (named prepared statements) and run with bound
// parameters; no value is ever spliced into SQL text.
//
// Transactions:
//   - kRead: BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY: one consistent snapshot for
//     the transaction's whole life.
//   - kWrite: BEGIN (READ COMMITTED), then pg_advisory_xact_lock on one fixed key: write
//     transactions of every node are serialized, as in SQLite, so that each sees every
//     write committed before it (the audit chain's tail, a row's version) and the audit
//     log stays one hash chain whichever nodes append to it. Waiting for that lock is
//     bounded by lock_timeout_ms (then kUnavailable). COMMIT with synchronous_commit=on:
//     an acknowledged write survives the crash of any node and of the database server.
//
// Errors: a connection that cannot be made or is lost, a lock or statement timeout, a
// serialization failure and the database shutting down all map to kUnavailable (the
// server answers 503 and /readyz reports not ready); unique violations to kAlreadyExists,
// foreign-key violations to kFailedPrecondition, as the conformance suite requires.
// PostgreSQL ends a transaction at its first failed statement: after such a failure every
// later call of that Txn returns kFailedPrecondition and nothing of it commits. (Rules the
// store checks itself first, like a duplicate key or a missing org, leave it usable.)
// Text is UTF-8 without NUL bytes: a value with a NUL, or that is not UTF-8, is
// kInvalidArgument. Messages name the database without its password (RedactUrl) and never
// contain a bound value.
//
// Schema: migrations (store/postgres/migrations.h) run in Open() inside one transaction
// holding an advisory lock, so several nodes starting at once migrate exactly once
// and the others wait and then see the finished schema. Version numbers match SQLite's
// (SchemaVersion() is the same number for the same binary). A database newer than this
// binary is refused, and so is one whose encoding is not UTF8. Every text column is
// COLLATE "C", so listings sort by bytes as with SQLite whatever the database's collation.
//
// TLS: whatever the URL asks for (sslmode=require / verify-full, sslrootcert=...) is passed
// to libpq unchanged.
//
// Thread-safety: Begin() may be called from any number of threads. Each Txn belongs to one
// thread. Every Txn must be destroyed before the PostgresStore.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"
#include "store/store.h"

namespace bifrost::store {

struct PostgresOptions {
  // "postgresql://user:password@host:port/dbname?sslmode=require" (or postgres://). Required.
  std::string url;
  int pool_size = 8;                  // connections at most; 1..1000
  int connect_timeout_seconds = 5;    // unless the URL sets connect_timeout
  int lock_timeout_ms = 5000;         // waiting for a pooled connection or the write lock
  int statement_timeout_ms = 30'000;  // any one statement
  const Clock* clock = &SystemClock::Instance();  // stamps schema_migrations.applied_at
};

class PostgresStore final : public Store {
 public:
  // Connects, migrates and returns the store. Errors: kInvalidArgument for a URL libpq
  // cannot parse or that is not a postgresql:// / postgres:// URL, or bad options;
  // kUnavailable when the database cannot be reached; kFailedPrecondition when the schema
  // is newer than this binary or the user may not create it. Messages never contain the
  // password.
  static Result<std::unique_ptr<PostgresStore>> Open(const PostgresOptions& options);

  // Whether `url` names a PostgreSQL database (starts with postgresql:// or postgres://).
  static bool IsPostgresUrl(std::string_view url);
  // `url` with any password replaced by "***" (for messages and logs).
  static std::string RedactUrl(std::string_view url);

  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;
  ~PostgresStore() override;

  Result<std::unique_ptr<Txn>> Begin(TxnMode mode) override;
  int SchemaVersion() const override;
  std::string_view BackendName() const override { return "postgresql"; }
  // VACUUM of the tables that hold sealed values and wrapped keys, so the space of deleted
  // rows is marked free and reused. PostgreSQL may keep old row versions in its WAL and in
  // freed pages until they are overwritten; docs/deployment.md says what that means for
  // backups. kUnavailable when the database cannot be reached.
  Status ReleaseDeletedData() override;

  // The URL without its password.
  const std::string& redacted_url() const;

 private:
  struct Impl;
  explicit PostgresStore(std::unique_ptr<Impl> impl);
  friend class PostgresTxn;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bifrost::store
